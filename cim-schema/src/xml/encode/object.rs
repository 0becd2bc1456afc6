//! Encoding of classes, instances, their members and qualifiers, and the objects-with-path
//! elements.

use crate::model::{
    CimType, Class, Flavor, Instance, InstancePath, Method, Name, ObjectPath, Parameter, Property,
    Qualifier, QualifierDeclaration, QualifierList, Scope,
};

use super::{check_value, embedded_kind_of, unrepresentable, Encoder, NamespaceSpelling};
use crate::xml::error::EncodeError;
use crate::xml::message::Object;
use crate::xml::text;

impl Encoder {
    /// `INSTANCE CLASSNAME=..` with qualifiers and properties.
    pub fn instance(&mut self, instance: &Instance) -> Result<(), EncodeError> {
        self.raw(b"<INSTANCE");
        self.attribute(b"CLASSNAME", instance.class_name.as_str());
        self.raw(b">");
        self.qualifiers(&instance.qualifiers)?;
        // One class comparison per instance, and that only in a namespace with several names.
        let spelling = self
            .spelling
            .as_deref()
            .filter(|_| {
                instance
                    .class_name
                    .matches(NamespaceSpelling::NAMESPACE_CLASS)
            })
            .cloned();
        for property in instance.properties.values() {
            let respelt = match (&spelling, &property.value) {
                (Some(spelling), Some(value)) => {
                    spelling.namespace_name(&instance.class_name, &property.name, value)
                }
                _ => None,
            };
            match respelt {
                Some(value) => {
                    let mut property = property.clone();
                    property.value = Some(value);
                    self.property(&property)?;
                }
                None => self.property(property)?,
            }
        }
        self.raw(b"</INSTANCE>");
        Ok(())
    }

    /// `CLASS NAME SUPERCLASS` with qualifiers, properties and methods.
    pub fn class(&mut self, class: &Class) -> Result<(), EncodeError> {
        self.start_named(b"CLASS", class.name.as_str());
        if let Some(superclass) = &class.superclass {
            self.attribute(b"SUPERCLASS", superclass.as_str());
        }
        self.raw(b">");
        self.qualifiers(&class.qualifiers)?;
        for property in class.properties.values() {
            self.property(property)?;
        }
        for method in class.methods.values() {
            self.method(method)?;
        }
        self.raw(b"</CLASS>");
        Ok(())
    }

    fn qualifiers(&mut self, qualifiers: &QualifierList) -> Result<(), EncodeError> {
        for qualifier in qualifiers.iter() {
            self.qualifier(qualifier)?;
        }
        Ok(())
    }

    fn origin_and_propagated(&mut self, origin: Option<&Name>, propagated: bool) {
        if let Some(origin) = origin {
            self.attribute(b"CLASSORIGIN", origin.as_str());
        }
        if propagated {
            self.raw(b" PROPAGATED=\"true\"");
        }
    }

    /// `PROPERTY`, `PROPERTY.ARRAY` or `PROPERTY.REFERENCE`, by the property's type.
    pub fn property(&mut self, property: &Property) -> Result<(), EncodeError> {
        let name = property.name.as_str();
        if let Some(value) = &property.value {
            if value.is_array() != property.is_array {
                return Err(EncodeError::TypeMismatch {
                    element: name.to_owned(),
                    declared: format!(
                        "{}{}",
                        property.cim_type,
                        if property.is_array { "[]" } else { "" }
                    ),
                });
            }
            check_value(name, &property.cim_type, property.embedded_object, value)?;
        }
        let tag: &[u8] = match (&property.cim_type, property.is_array) {
            (CimType::Reference(_), true) => {
                return Err(unrepresentable(
                    &property.name,
                    "DSP0201 has no element for a reference array property",
                ))
            }
            (CimType::Reference(class), false) => {
                self.start_named(b"PROPERTY.REFERENCE", name);
                if let Some(class) = class {
                    self.attribute(b"REFERENCECLASS", class.as_str());
                }
                b"PROPERTY.REFERENCE"
            }
            (cim_type, is_array) => {
                let tag: &[u8] = if is_array {
                    b"PROPERTY.ARRAY"
                } else {
                    b"PROPERTY"
                };
                self.start_named(tag, name);
                self.raw(b" TYPE=\"");
                self.raw(cim_type.as_str().as_bytes());
                self.raw(b"\"");
                if let (true, Some(size)) = (is_array, property.array_size) {
                    self.raw(b" ARRAYSIZE=\"");
                    text::write_integer(&mut self.out, size);
                    self.raw(b"\"");
                }
                tag
            }
        };
        self.origin_and_propagated(property.class_origin.as_ref(), property.propagated);
        let embedded = property
            .embedded_object
            .or_else(|| property.value.as_ref().and_then(embedded_kind_of));
        if let Some(kind) = embedded {
            self.embedded_attribute(kind);
        }
        // Always an end tag, never `<PROPERTY .../>`: both are the same XML, but
        // sblim-wbemcli's parser rejects the empty-element form.
        self.raw(b">");
        self.qualifiers(&property.qualifiers)?;
        if let Some(value) = &property.value {
            self.value(value, name)?;
        }
        self.end(tag);
        Ok(())
    }

    /// `METHOD NAME TYPE` with qualifiers and parameters.
    pub fn method(&mut self, method: &Method) -> Result<(), EncodeError> {
        if method.return_type.is_reference() {
            return Err(unrepresentable(
                &method.name,
                "DSP0201 has no form for a method returning a reference",
            ));
        }
        self.start_named(b"METHOD", method.name.as_str());
        self.raw(b" TYPE=\"");
        self.raw(method.return_type.as_str().as_bytes());
        self.raw(b"\"");
        self.origin_and_propagated(method.class_origin.as_ref(), method.propagated);
        self.raw(b">");
        self.qualifiers(&method.qualifiers)?;
        for parameter in &method.parameters {
            self.parameter(parameter)?;
        }
        self.raw(b"</METHOD>");
        Ok(())
    }

    /// `PARAMETER`, `PARAMETER.ARRAY`, `PARAMETER.REFERENCE` or `PARAMETER.REFARRAY`.
    pub fn parameter(&mut self, parameter: &Parameter) -> Result<(), EncodeError> {
        let name = parameter.name.as_str();
        let tag: &[u8] = match (&parameter.cim_type, parameter.is_array) {
            (CimType::Reference(class), is_array) => {
                let tag: &[u8] = if is_array {
                    b"PARAMETER.REFARRAY"
                } else {
                    b"PARAMETER.REFERENCE"
                };
                self.start_named(tag, name);
                if let Some(class) = class {
                    self.attribute(b"REFERENCECLASS", class.as_str());
                }
                tag
            }
            (cim_type, is_array) => {
                let tag: &[u8] = if is_array {
                    b"PARAMETER.ARRAY"
                } else {
                    b"PARAMETER"
                };
                self.start_named(tag, name);
                self.raw(b" TYPE=\"");
                self.raw(cim_type.as_str().as_bytes());
                self.raw(b"\"");
                tag
            }
        };
        if let (true, Some(size)) = (parameter.is_array, parameter.array_size) {
            self.raw(b" ARRAYSIZE=\"");
            text::write_integer(&mut self.out, size);
            self.raw(b"\"");
        }
        // An end tag rather than `/>`, for sblim-wbemcli (see `property`).
        self.raw(b">");
        self.qualifiers(&parameter.qualifiers)?;
        self.end(tag);
        Ok(())
    }

    /// `QUALIFIER NAME TYPE` with its flavors (only those that differ from the DTD defaults)
    /// and its value.
    pub fn qualifier(&mut self, qualifier: &Qualifier) -> Result<(), EncodeError> {
        let name = qualifier.name.as_str();
        if let Some(value) = &qualifier.value {
            check_value(name, &qualifier.cim_type, None, value)?;
        }
        self.qualifier_head(b"QUALIFIER", name, &qualifier.cim_type)?;
        if qualifier.propagated {
            self.raw(b" PROPAGATED=\"true\"");
        }
        self.flavors(qualifier.flavor);
        match &qualifier.value {
            None => self.raw(b"/>"),
            Some(value) => {
                self.raw(b">");
                self.value(value, name)?;
                self.raw(b"</QUALIFIER>");
            }
        }
        Ok(())
    }

    fn qualifier_head(
        &mut self,
        tag: &[u8],
        name: &str,
        cim_type: &CimType,
    ) -> Result<(), EncodeError> {
        if cim_type.is_reference() {
            return Err(EncodeError::Unrepresentable {
                element: name.to_owned(),
                reason: "a qualifier cannot have a reference type",
            });
        }
        self.start_named(tag, name);
        self.raw(b" TYPE=\"");
        self.raw(cim_type.as_str().as_bytes());
        self.raw(b"\"");
        Ok(())
    }

    fn flavors(&mut self, flavor: Flavor) {
        if !flavor.overridable {
            self.flag(b"OVERRIDABLE", false);
        }
        if !flavor.to_subclass {
            self.flag(b"TOSUBCLASS", false);
        }
        if flavor.to_instance {
            self.flag(b"TOINSTANCE", true);
        }
        if flavor.translatable {
            self.flag(b"TRANSLATABLE", true);
        }
    }

    /// `QUALIFIER.DECLARATION NAME TYPE ISARRAY ARRAYSIZE` + flavors, `SCOPE` and default.
    pub fn qualifier_declaration(
        &mut self,
        declaration: &QualifierDeclaration,
    ) -> Result<(), EncodeError> {
        let name = declaration.name.as_str();
        if let Some(value) = &declaration.default {
            check_value(name, &declaration.cim_type, None, value)?;
        }
        self.qualifier_head(b"QUALIFIER.DECLARATION", name, &declaration.cim_type)?;
        if declaration.is_array {
            self.flag(b"ISARRAY", true);
        }
        if let Some(size) = declaration.array_size {
            self.raw(b" ARRAYSIZE=\"");
            text::write_integer(&mut self.out, size);
            self.raw(b"\"");
        }
        self.flavors(declaration.flavor);
        self.raw(b">");
        self.scope(declaration.scope);
        if let Some(value) = &declaration.default {
            self.value(value, name)?;
        }
        self.raw(b"</QUALIFIER.DECLARATION>");
        Ok(())
    }

    fn scope(&mut self, scope: Scope) {
        if scope == Scope::default() {
            return;
        }
        self.raw(b"<SCOPE");
        let flags: [(&[u8], bool); 7] = [
            (b"CLASS", scope.class),
            (b"ASSOCIATION", scope.association),
            (b"REFERENCE", scope.reference),
            (b"PROPERTY", scope.property),
            (b"METHOD", scope.method),
            (b"PARAMETER", scope.parameter),
            (b"INDICATION", scope.indication),
        ];
        for (name, set) in flags {
            if set {
                self.flag(name, true);
            }
        }
        self.raw(b"/>");
    }

    /// `VALUE.NAMEDINSTANCE` (`INSTANCENAME` + `INSTANCE`).
    pub fn named_instance(
        &mut self,
        path: &InstancePath,
        instance: &Instance,
    ) -> Result<(), EncodeError> {
        self.raw(b"<VALUE.NAMEDINSTANCE>");
        self.instance_name(path)?;
        self.instance(instance)?;
        self.raw(b"</VALUE.NAMEDINSTANCE>");
        Ok(())
    }

    /// `VALUE.INSTANCEWITHPATH` (`INSTANCEPATH` + `INSTANCE`).
    pub fn instance_with_path(
        &mut self,
        path: &InstancePath,
        instance: &Instance,
    ) -> Result<(), EncodeError> {
        self.raw(b"<VALUE.INSTANCEWITHPATH>");
        self.instance_path(path)?;
        self.instance(instance)?;
        self.raw(b"</VALUE.INSTANCEWITHPATH>");
        Ok(())
    }

    /// `VALUE.OBJECT` (`CLASS` or `INSTANCE`).
    pub fn value_object(&mut self, object: &Object) -> Result<(), EncodeError> {
        self.raw(b"<VALUE.OBJECT>");
        self.object(object)?;
        self.raw(b"</VALUE.OBJECT>");
        Ok(())
    }

    fn object(&mut self, object: &Object) -> Result<(), EncodeError> {
        match object {
            Object::Class(class) => self.class(class),
            Object::Instance(instance) => self.instance(instance),
        }
    }

    /// `VALUE.OBJECTWITHPATH` (`CLASSPATH` + `CLASS` or `INSTANCEPATH` + `INSTANCE`).
    pub fn object_with_path(
        &mut self,
        path: &ObjectPath,
        object: &Object,
    ) -> Result<(), EncodeError> {
        self.raw(b"<VALUE.OBJECTWITHPATH>");
        self.path_and_object(path, object, false)?;
        self.raw(b"</VALUE.OBJECTWITHPATH>");
        Ok(())
    }

    /// `VALUE.OBJECTWITHLOCALPATH` (`LOCALCLASSPATH` + `CLASS` or `LOCALINSTANCEPATH` +
    /// `INSTANCE`).
    pub fn object_with_local_path(
        &mut self,
        path: &ObjectPath,
        object: &Object,
    ) -> Result<(), EncodeError> {
        self.raw(b"<VALUE.OBJECTWITHLOCALPATH>");
        self.path_and_object(path, object, true)?;
        self.raw(b"</VALUE.OBJECTWITHLOCALPATH>");
        Ok(())
    }

    fn path_and_object(
        &mut self,
        path: &ObjectPath,
        object: &Object,
        local: bool,
    ) -> Result<(), EncodeError> {
        match (path, object, local) {
            (ObjectPath::Class(path), Object::Class(_), false) => self.class_path(path)?,
            (ObjectPath::Class(path), Object::Class(_), true) => self.local_class_path(path)?,
            (ObjectPath::Instance(path), Object::Instance(_), false) => self.instance_path(path)?,
            (ObjectPath::Instance(path), Object::Instance(_), true) => {
                self.local_instance_path(path)?;
            }
            _ => {
                return Err(unrepresentable(
                    path.class_name(),
                    "a class path goes with a class and an instance path with an instance",
                ))
            }
        }
        self.object(object)
    }
}
