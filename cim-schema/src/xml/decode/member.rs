//! Decoding of properties, methods, parameters, classes, instances and of the parameter
//! contents ([`Data`]).

use indexmap::map::Entry;
use indexmap::IndexMap;

use crate::model::{
    CimType, Class, EmbeddedKind, Instance, InstancePath, Method, Name, ObjectPath, Parameter,
    Property, QualifierList, Value,
};

use super::object::Typing;
use super::parser::{Element, Parser, Result};
use crate::xml::message::{Data, Object, Untyped};

/// The most properties [`Parser::instance`] reserves room for ahead of time.
const PROPERTIES_HINT_MAX: usize = 256;

impl<'a> Parser<'a> {
    /// Adds a property, refusing a second one of the same name (hashing the name once).
    fn add_property(
        &self,
        properties: &mut IndexMap<Name, Property>,
        property: Property,
    ) -> Result<()> {
        match properties.entry(property.name.clone()) {
            Entry::Occupied(_) => {
                Err(self.not_valid(format!("duplicate property {}", property.name)))
            }
            Entry::Vacant(slot) => {
                slot.insert(property);
                Ok(())
            }
        }
    }

    /// An opened `INSTANCE`, which this closes.
    pub fn instance(&mut self, element: &Element<'a>) -> Result<Instance> {
        let [class_name] = self.attributes(element, [b"CLASSNAME"])?;
        let mut instance = Instance::new(Name::new(self.required(
            class_name,
            element,
            "CLASSNAME",
        )?));
        // Instances of one response tend to have the same properties: size the map for as
        // many as the previous instance had, so that it does not grow (and move) repeatedly.
        instance.properties.reserve(self.properties_hint);
        while let Some(child) = self.child()? {
            match child.name {
                b"QUALIFIER" if instance.properties.is_empty() => {
                    let qualifier = self.qualifier(&child)?;
                    instance.qualifiers.insert(qualifier);
                }
                b"PROPERTY" | b"PROPERTY.ARRAY" | b"PROPERTY.REFERENCE" => {
                    let property = self.property(&child)?;
                    self.add_property(&mut instance.properties, property)?;
                }
                _ => return Err(self.unexpected(&child)),
            }
        }
        self.properties_hint = instance.properties.len().min(PROPERTIES_HINT_MAX);
        Ok(instance)
    }

    /// An opened `CLASS`, which this closes.
    pub fn class(&mut self, element: &Element<'a>) -> Result<Class> {
        let [name, superclass] = self.attributes(element, [b"NAME", b"SUPERCLASS"])?;
        let name = self.required(name, element, "NAME")?;
        let mut class = Class::new(Name::new(name), superclass.map(Name::new));
        while let Some(child) = self.child()? {
            match child.name {
                b"QUALIFIER" if class.properties.is_empty() && class.methods.is_empty() => {
                    let qualifier = self.qualifier(&child)?;
                    class.qualifiers.insert(qualifier);
                }
                b"PROPERTY" | b"PROPERTY.ARRAY" | b"PROPERTY.REFERENCE"
                    if class.methods.is_empty() =>
                {
                    let property = self.property(&child)?;
                    self.add_property(&mut class.properties, property)?;
                }
                b"METHOD" => {
                    let method = self.method(&child)?;
                    if class.methods.contains_key(&method.name) {
                        return Err(self.not_valid(format!("duplicate method {}", method.name)));
                    }
                    class.methods.insert(method.name.clone(), method);
                }
                _ => return Err(self.unexpected(&child)),
            }
        }
        Ok(class)
    }

    /// An opened `PROPERTY`, `PROPERTY.ARRAY` or `PROPERTY.REFERENCE`, which this closes.
    pub fn property(&mut self, element: &Element<'a>) -> Result<Property> {
        let [name, cim_type, origin, propagated, embedded, legacy, array_size, reference_class] =
            self.attributes(
                element,
                [
                    b"NAME",
                    b"TYPE",
                    b"CLASSORIGIN",
                    b"PROPAGATED",
                    b"EmbeddedObject",
                    b"EMBEDDEDOBJECT",
                    b"ARRAYSIZE",
                    b"REFERENCECLASS",
                ],
            )?;
        let name = Name::new(self.required(name, element, "NAME")?);
        let is_array = element.name == b"PROPERTY.ARRAY";
        let cim_type = match element.name {
            b"PROPERTY.REFERENCE" => CimType::Reference(reference_class.map(Name::new)),
            _ => self.cim_type(element, cim_type)?,
        };
        let embedded_object = self.embedded_kind(embedded, legacy)?;
        let array_size = if is_array {
            self.array_size(array_size.as_deref())?
        } else {
            None
        };
        let mut property = Property {
            name,
            cim_type,
            is_array,
            array_size,
            value: None,
            qualifiers: QualifierList::new(),
            class_origin: origin.map(Name::new),
            propagated: self.flag(propagated.as_deref(), "PROPAGATED", false)?,
            embedded_object,
        };
        self.property_content(&mut property)?;
        Ok(property)
    }

    fn property_content(&mut self, property: &mut Property) -> Result<()> {
        let typing = Typing {
            cim_type: &property.cim_type,
            embedded: property.embedded_object,
        };
        let reference = property.cim_type.is_reference();
        let mut value = None;
        while let Some(child) = self.child()? {
            match child.name {
                b"QUALIFIER" if value.is_none() => {
                    let qualifier = self.qualifier(&child)?;
                    property.qualifiers.insert(qualifier);
                }
                b"VALUE" if value.is_none() && !property.is_array && !reference => {
                    value = Some(self.typed_scalar(typing)?);
                }
                b"VALUE.ARRAY" if value.is_none() && property.is_array => {
                    value = Some(self.typed_array(typing)?);
                }
                b"VALUE.REFERENCE" if value.is_none() && reference => {
                    value = Some(Value::Reference(Box::new(self.value_reference()?)));
                }
                _ => return Err(self.unexpected(&child)),
            }
        }
        property.value = value;
        Ok(())
    }

    /// An opened `METHOD`, which this closes.
    pub fn method(&mut self, element: &Element<'a>) -> Result<Method> {
        let [name, cim_type, origin, propagated] =
            self.attributes(element, [b"NAME", b"TYPE", b"CLASSORIGIN", b"PROPAGATED"])?;
        let name = Name::new(self.required(name, element, "NAME")?);
        let mut method = Method {
            name,
            return_type: self.cim_type(element, cim_type)?,
            parameters: Vec::new(),
            qualifiers: QualifierList::new(),
            class_origin: origin.map(Name::new),
            propagated: self.flag(propagated.as_deref(), "PROPAGATED", false)?,
        };
        while let Some(child) = self.child()? {
            match child.name {
                b"QUALIFIER" if method.parameters.is_empty() => {
                    let qualifier = self.qualifier(&child)?;
                    method.qualifiers.insert(qualifier);
                }
                b"PARAMETER"
                | b"PARAMETER.ARRAY"
                | b"PARAMETER.REFERENCE"
                | b"PARAMETER.REFARRAY" => method.parameters.push(self.parameter(&child)?),
                _ => return Err(self.unexpected(&child)),
            }
        }
        Ok(method)
    }

    /// An opened `PARAMETER*` element, which this closes. Its embedded-object kind comes from
    /// the `EmbeddedObject`/`EmbeddedInstance` qualifiers, as DSP0201 has no attribute for it.
    fn parameter(&mut self, element: &Element<'a>) -> Result<Parameter> {
        let [name, cim_type, reference_class, array_size] =
            self.attributes(element, [b"NAME", b"TYPE", b"REFERENCECLASS", b"ARRAYSIZE"])?;
        let name = Name::new(self.required(name, element, "NAME")?);
        let (cim_type, is_array) = match element.name {
            b"PARAMETER.REFERENCE" => (CimType::Reference(reference_class.map(Name::new)), false),
            b"PARAMETER.REFARRAY" => (CimType::Reference(reference_class.map(Name::new)), true),
            b"PARAMETER.ARRAY" => (self.cim_type(element, cim_type)?, true),
            _ => (self.cim_type(element, cim_type)?, false),
        };
        let array_size = if is_array {
            self.array_size(array_size.as_deref())?
        } else {
            None
        };
        let mut qualifiers = QualifierList::new();
        while let Some(child) = self.child()? {
            if child.name != b"QUALIFIER" {
                return Err(self.unexpected(&child));
            }
            let qualifier = self.qualifier(&child)?;
            qualifiers.insert(qualifier);
        }
        let embedded_object = if qualifiers.is_true("EmbeddedObject") {
            Some(EmbeddedKind::Object)
        } else if qualifiers.get("EmbeddedInstance").is_some() {
            Some(EmbeddedKind::Instance)
        } else {
            None
        };
        Ok(Parameter {
            name,
            cim_type,
            is_array,
            array_size,
            qualifiers,
            embedded_object,
        })
    }

    /// An opened element holding a path then an object, which this closes; `local` selects
    /// `LOCALCLASSPATH`/`LOCALINSTANCEPATH` over `CLASSPATH`/`INSTANCEPATH`.
    fn path_and_object(&mut self, local: bool) -> Result<(ObjectPath, Object)> {
        let child = self.required_child("a path")?;
        let path = match (child.name, local) {
            (b"CLASSPATH", false) => ObjectPath::Class(self.class_path()?),
            (b"INSTANCEPATH", false) => ObjectPath::Instance(self.instance_path()?),
            (b"LOCALCLASSPATH", true) => ObjectPath::Class(self.local_class_path()?),
            (b"LOCALINSTANCEPATH", true) => ObjectPath::Instance(self.local_instance_path()?),
            _ => return Err(self.unexpected(&child)),
        };
        let child = self.required_child("an object")?;
        let object = match (&path, child.name) {
            (ObjectPath::Class(_), b"CLASS") => Object::Class(self.class(&child)?),
            (ObjectPath::Instance(_), b"INSTANCE") => Object::Instance(self.instance(&child)?),
            _ => return Err(self.unexpected(&child)),
        };
        self.end_empty()?;
        Ok((path, object))
    }

    /// An opened element holding an instance path of the given form then an `INSTANCE`.
    fn path_and_instance(&mut self, path_element: &[u8]) -> Result<(InstancePath, Instance)> {
        let child = self.required_child("an instance path")?;
        let path = match child.name {
            b"INSTANCENAME" if path_element == b"INSTANCENAME" => self.instance_name(&child)?,
            b"INSTANCEPATH" if path_element == b"INSTANCEPATH" => self.instance_path()?,
            _ => return Err(self.unexpected(&child)),
        };
        let child = self.required_child("INSTANCE")?;
        if child.name != b"INSTANCE" {
            return Err(self.unexpected(&child));
        }
        let instance = self.instance(&child)?;
        self.end_empty()?;
        Ok((path, instance))
    }

    /// Any element a parameter or return value may hold (opened), which this closes.
    /// `typing` types `VALUE` and `VALUE.ARRAY`; without it they stay [`Data::Untyped`]
    /// (unless `embedded` says they hold embedded objects, which are decoded).
    pub fn data(
        &mut self,
        element: &Element<'a>,
        typing: Option<&CimType>,
        embedded: Option<EmbeddedKind>,
    ) -> Result<Data> {
        let typing = match (typing, embedded) {
            (Some(cim_type), _) => Some(Typing { cim_type, embedded }),
            (None, Some(_)) => Some(Typing {
                cim_type: &CimType::String,
                embedded,
            }),
            (None, None) => None,
        };
        Ok(match element.name {
            b"VALUE" => match typing {
                Some(typing) => Data::Value(self.typed_scalar(typing)?),
                None => Data::Untyped(Untyped::Scalar(self.text()?.into_owned())),
            },
            b"VALUE.ARRAY" => match typing {
                Some(typing) => Data::Value(self.typed_array(typing)?),
                None => Data::Untyped(self.untyped_array()?),
            },
            b"VALUE.REFERENCE" => Data::Value(Value::Reference(Box::new(self.value_reference()?))),
            b"VALUE.REFARRAY" => Data::Value(self.reference_array()?),
            b"CLASSNAME" => Data::ClassName(self.class_name(element)?),
            b"INSTANCENAME" => Data::InstanceName(self.instance_name(element)?),
            b"QUALIFIER.DECLARATION" => {
                Data::QualifierDeclaration(self.qualifier_declaration(element)?)
            }
            b"CLASS" => Data::Class(self.class(element)?),
            b"INSTANCE" => Data::Instance(self.instance(element)?),
            b"VALUE.NAMEDINSTANCE" => {
                let (path, instance) = self.path_and_instance(b"INSTANCENAME")?;
                Data::NamedInstance(path, instance)
            }
            b"INSTANCEPATH" => Data::InstancePath(self.instance_path()?),
            b"OBJECTPATH" => Data::ObjectPath(self.object_path()?),
            b"VALUE.INSTANCEWITHPATH" => {
                let (path, instance) = self.path_and_instance(b"INSTANCEPATH")?;
                Data::InstanceWithPath(path, instance)
            }
            b"VALUE.OBJECTWITHPATH" => {
                let (path, object) = self.path_and_object(false)?;
                Data::ObjectWithPath(path, object)
            }
            b"VALUE.OBJECTWITHLOCALPATH" => {
                let (path, object) = self.path_and_object(true)?;
                Data::ObjectWithLocalPath(path, object)
            }
            b"VALUE.OBJECT" => {
                let child = self.required_child("CLASS or INSTANCE")?;
                let object = match child.name {
                    b"CLASS" => Object::Class(self.class(&child)?),
                    b"INSTANCE" => Object::Instance(self.instance(&child)?),
                    _ => return Err(self.unexpected(&child)),
                };
                self.end_empty()?;
                Data::Object(object)
            }
            _ => return Err(self.unexpected(element)),
        })
    }
}
