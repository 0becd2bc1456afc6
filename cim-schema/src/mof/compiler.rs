//! The compiler proper: walks the productions of each file, follows includes through the
//! caller's resolver, types qualifiers and values, and writes into a [`Repository`].

use std::fmt;

use super::convert::{convert, Aliases, Subject, Target};
use super::error::{Fault, MofError, MofErrorKind, MofErrors};
use super::literal::class_path;
use super::parser::{
    ArraySpec, ClassDecl, Feature, Initializer, InstanceDecl, LiteralValue, MethodDecl,
    ParameterDecl, Parser, Pragma, Production, PropertyDecl, QualifierDecl, QualifierUse,
    ValueDecl,
};
use super::{IncludeResolver, SourceFile, ERRORS_MAX, INCLUDED_FILES_MAX, INCLUDE_DEPTH_MAX};
use crate::model::{
    Class, EmbeddedKind, Instance, InstancePath, Method, Name, NameKey, ObjectPath, Parameter,
    Property, Qualifier, QualifierDeclaration, QualifierList, Value,
};
// The scope check names element kinds as the model does.
use crate::model::QualifierTarget as ElementKind;
use crate::repository::Repository;

/// One element the compiler added to the repository.
#[derive(Clone, Debug, PartialEq)]
pub enum Compiled {
    /// A qualifier declaration.
    Qualifier {
        /// The namespace it went into.
        namespace: String,
        /// The qualifier's name.
        name: Name,
    },
    /// A class.
    Class {
        /// The namespace it went into.
        namespace: String,
        /// The class name.
        name: Name,
        /// Its superclass, if any.
        superclass: Option<Name>,
    },
    /// An instance.
    Instance {
        /// The namespace it went into.
        namespace: String,
        /// Its path, as the repository built it from the keys.
        path: InstancePath,
    },
}

impl fmt::Display for Compiled {
    /// `qualifier Key`, `class CIM_Foo : CIM_Bar`, `instance /root/cimv2:CIM_Foo.Name="x"` (the
    /// instance path as a WBEM URI).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compiled::Qualifier { name, .. } => write!(f, "qualifier {name}"),
            Compiled::Class {
                name,
                superclass: Some(superclass),
                ..
            } => write!(f, "class {name} : {superclass}"),
            Compiled::Class { name, .. } => write!(f, "class {name}"),
            Compiled::Instance { path, .. } => write!(f, "instance {path}"),
        }
    }
}

/// Compiles MOF files one after the other into a repository; see [`super::compile`] for the
/// one-call form.
///
/// ```
/// use cim_schema::mof::{Compiler, NoIncludes, SourceFile};
/// use cim_schema::repository::Repository;
///
/// let mut repository = Repository::new();
/// let mut resolver = NoIncludes;
/// let mut compiler = Compiler::new(&mut repository, &mut resolver, "root/cimv2");
/// compiler.compile_file(&SourceFile::new(
///     "a.mof",
///     b"Qualifier Key : boolean = false, Scope(property);\n\
///       class A { [Key] string Id; };".as_slice(),
/// ));
/// let compiled = compiler.finish().unwrap();
/// assert_eq!(compiled[1].to_string(), "class A");
/// assert!(repository.class("root/cimv2", "a").is_some());
/// ```
pub struct Compiler<'r> {
    repository: &'r mut Repository,
    resolver: &'r mut dyn IncludeResolver,
    namespace: String,
    aliases: Aliases,
    compiled: Vec<Compiled>,
    errors: Vec<MofError>,
    /// The names of the files being compiled, outermost first, to refuse include cycles.
    include_stack: Vec<String>,
    /// How many files were included so far.
    included_files: usize,
}

impl<'r> Compiler<'r> {
    /// A compiler writing into `namespace` of `repository` (created if missing) until a
    /// `#pragma namespace` switches.
    pub fn new(
        repository: &'r mut Repository,
        resolver: &'r mut dyn IncludeResolver,
        namespace: &str,
    ) -> Compiler<'r> {
        repository.create_namespace(namespace);
        Compiler {
            repository,
            resolver,
            namespace: namespace.to_owned(),
            aliases: Aliases::new(),
            compiled: Vec::new(),
            errors: Vec::new(),
            include_stack: Vec::new(),
            included_files: 0,
        }
    }

    /// Compiles one file (and what it includes). Errors are collected; compilation goes on with
    /// the next production after each, until [`ERRORS_MAX`].
    pub fn compile_file(&mut self, source: &SourceFile) {
        if self.stopped() {
            return;
        }
        let text = match std::str::from_utf8(&source.text) {
            Ok(text) => text,
            Err(error) => {
                let fault = Fault::new(error.valid_up_to(), MofErrorKind::InvalidUtf8);
                self.report(source, fault);
                return;
            }
        };
        self.include_stack.push(source.name.clone());
        let mut parser = Parser::new(text);
        while let Some(production) = parser.next_production() {
            let result = match production {
                Ok(production) => self.production(production, source),
                Err(fault) => {
                    parser.recover();
                    Err(fault)
                }
            };
            if let Err(fault) = result {
                self.report(source, fault);
            }
            if self.stopped() {
                break;
            }
        }
        self.include_stack.pop();
    }

    /// What was compiled, in order, or every error found.
    pub fn finish(self) -> Result<Vec<Compiled>, MofErrors> {
        if self.errors.is_empty() {
            Ok(self.compiled)
        } else {
            Err(MofErrors(self.errors))
        }
    }

    /// The namespace productions currently go into.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn stopped(&self) -> bool {
        self.errors.len() > ERRORS_MAX
    }

    fn report(&mut self, source: &SourceFile, fault: Fault) {
        if self.stopped() {
            return;
        }
        let kind = if self.errors.len() == ERRORS_MAX {
            MofErrorKind::TooManyErrors
        } else {
            fault.kind
        };
        self.errors
            .push(MofError::at(&source.name, &source.text, fault.offset, kind));
    }

    fn production(&mut self, production: Production<'_>, source: &SourceFile) -> Result<(), Fault> {
        match production {
            Production::Pragma(pragma) => self.pragma(&pragma, source),
            Production::Qualifier(declaration) => self.qualifier_declaration(declaration),
            Production::Class(class) => self.class(class),
            Production::Instance(instance) => self.instance(instance),
        }
    }

    fn pragma(&mut self, pragma: &Pragma<'_>, source: &SourceFile) -> Result<(), Fault> {
        if pragma.name.eq_ignore_ascii_case("include") {
            self.include(pragma, source)
        } else if pragma.name.eq_ignore_ascii_case("namespace") {
            // A namespace name is identifiers separated by `/` (DSP0004 8.2, DSP0221): leading
            // and trailing slashes are dropped, and nothing left (`""`, `"/"`) names none.
            let namespace = pragma.value.trim().trim_matches('/');
            if namespace.is_empty() {
                return Err(Fault::new(
                    pragma.offset,
                    MofErrorKind::InvalidPragma {
                        name: pragma.name.to_owned(),
                        reason: "the namespace is empty",
                    },
                ));
            }
            self.namespace = namespace.to_owned();
            self.repository.create_namespace(&self.namespace);
            Ok(())
        } else {
            // locale, instancelocale, source, nonlocal...: they do not change what is compiled
            // into a single repository, and DSP0221 lets compilers ignore unknown pragmas.
            Ok(())
        }
    }

    fn include(&mut self, pragma: &Pragma<'_>, source: &SourceFile) -> Result<(), Fault> {
        if self.include_stack.len() >= INCLUDE_DEPTH_MAX {
            return Err(Fault::new(
                pragma.offset,
                MofErrorKind::IncludeDepth(INCLUDE_DEPTH_MAX),
            ));
        }
        if self.included_files >= INCLUDED_FILES_MAX {
            return Err(Fault::new(
                pragma.offset,
                MofErrorKind::TooManyIncludes(INCLUDED_FILES_MAX),
            ));
        }
        self.included_files += 1;
        let included = self
            .resolver
            .resolve(&pragma.value, &source.name)
            .map_err(|reason| {
                Fault::new(
                    pragma.offset,
                    MofErrorKind::Include {
                        file: pragma.value.to_string(),
                        reason,
                    },
                )
            })?;
        if self.include_stack.contains(&included.name) {
            return Err(Fault::new(
                pragma.offset,
                MofErrorKind::IncludeCycle(included.name),
            ));
        }
        self.compile_file(&included);
        Ok(())
    }

    fn qualifier_declaration(&mut self, declaration: QualifierDecl<'_>) -> Result<(), Fault> {
        let (is_array, array_size) = shape(declaration.array);
        let default = match declaration.default {
            Some(initializer) => {
                let target = Target {
                    subject: Subject::Qualifier(declaration.name),
                    cim_type: &declaration.cim_type,
                    is_array,
                    array_size,
                    wrap_scalar: true,
                };
                convert(initializer, &target, &self.aliases)?
            }
            None => None,
        };
        let name = Name::new(declaration.name);
        self.repository
            .set_qualifier(
                &self.namespace,
                QualifierDeclaration {
                    name: name.clone(),
                    cim_type: declaration.cim_type,
                    is_array,
                    array_size,
                    default,
                    scope: declaration.scope,
                    flavor: declaration.flavor,
                },
            )
            .map_err(|e| Fault::new(declaration.offset, e.into()))?;
        self.compiled.push(Compiled::Qualifier {
            namespace: self.namespace.clone(),
            name,
        });
        Ok(())
    }

    /// Types a qualifier list against the declarations in the current namespace.
    fn qualifiers(
        &self,
        uses: Vec<QualifierUse<'_>>,
        kind: ElementKind,
    ) -> Result<QualifierList, Fault> {
        let mut list = QualifierList::new();
        for used in uses {
            let declaration = self
                .repository
                .qualifier(&self.namespace, used.name)
                .ok_or_else(|| {
                    Fault::new(
                        used.offset,
                        MofErrorKind::UnknownQualifier(used.name.to_owned()),
                    )
                })?;
            if !kind.allowed_by(&declaration.scope) {
                return Err(Fault::new(
                    used.offset,
                    MofErrorKind::QualifierScope {
                        qualifier: declaration.name.to_string(),
                        element: kind.describe(),
                    },
                ));
            }
            if list.get(used.name).is_some() {
                return Err(Fault::new(
                    used.offset,
                    MofErrorKind::DuplicateQualifier(used.name.to_owned()),
                ));
            }
            list.insert(self.qualifier(used, declaration)?);
        }
        Ok(list)
    }

    fn qualifier(
        &self,
        used: QualifierUse<'_>,
        declaration: &QualifierDeclaration,
    ) -> Result<Qualifier, Fault> {
        let value = match used.value {
            Some(initializer) => {
                let target = Target {
                    subject: Subject::Qualifier(declaration.name.as_str()),
                    cim_type: &declaration.cim_type,
                    is_array: declaration.is_array,
                    array_size: declaration.array_size,
                    wrap_scalar: true,
                };
                convert(initializer, &target, &self.aliases)?
            }
            // A boolean qualifier named alone (`[Key]`) means TRUE; any other takes the default
            // of its declaration.
            None if declaration.cim_type == crate::model::CimType::Boolean
                && !declaration.is_array =>
            {
                Some(Value::Boolean(true))
            }
            None => declaration.default.clone(),
        };
        let mut flavor = declaration.flavor;
        for word in used.flavors {
            word.apply(&mut flavor);
        }
        Ok(Qualifier {
            name: declaration.name.clone(),
            cim_type: declaration.cim_type.clone(),
            is_array: declaration.is_array,
            value,
            flavor,
            propagated: false,
        })
    }

    /// Whether a class is an association or an indication: by its own qualifiers, or by its
    /// superclass (the meta qualifiers propagate and may not be overridden).
    fn class_kind(&self, class: &ClassDecl<'_>) -> ElementKind {
        let own = |name: &str| {
            class.qualifiers.iter().any(|q| {
                q.name.eq_ignore_ascii_case(name)
                    && match &q.value {
                        None => true,
                        Some(Initializer::Scalar(literal)) => {
                            literal.value == LiteralValue::Boolean(true)
                        }
                        Some(Initializer::Array { .. }) => false,
                    }
            })
        };
        let superclass = class
            .superclass
            .and_then(|(name, _)| self.repository.class(&self.namespace, name));
        ElementKind::of_class(own("Association"), own("Indication"), superclass)
    }

    fn class(&mut self, declaration: ClassDecl<'_>) -> Result<(), Fault> {
        let kind = self.class_kind(&declaration);
        let superclass = declaration.superclass.map(|(name, _)| Name::new(name));
        let mut class = Class::new(declaration.name, superclass.clone());
        class.qualifiers = self.qualifiers(declaration.qualifiers, kind)?;
        for feature in declaration.features {
            match feature {
                Feature::Property(property) => {
                    let offset = property.offset;
                    let property = self.property(property)?;
                    if class.properties.contains_key(&property.name)
                        || class.methods.contains_key(&property.name)
                    {
                        return Err(Fault::new(
                            offset,
                            MofErrorKind::DuplicateProperty(property.name.to_string()),
                        ));
                    }
                    class.properties.insert(property.name.clone(), property);
                }
                Feature::Method(method) => {
                    let offset = method.offset;
                    let method = self.method(method)?;
                    if class.methods.contains_key(&method.name)
                        || class.properties.contains_key(&method.name)
                    {
                        return Err(Fault::new(
                            offset,
                            MofErrorKind::DuplicateMethod(method.name.to_string()),
                        ));
                    }
                    class.methods.insert(method.name.clone(), method);
                }
            }
        }
        let name = class.name.clone();
        self.repository
            .add_class(&self.namespace, class)
            .map_err(|e| Fault::new(declaration.offset, e.into()))?;
        if let Some((alias, _)) = declaration.alias {
            self.aliases.insert(Name::new(alias), class_path(&name));
        }
        self.compiled.push(Compiled::Class {
            namespace: self.namespace.clone(),
            name,
            superclass,
        });
        Ok(())
    }

    fn property(&self, declaration: PropertyDecl<'_>) -> Result<Property, Fault> {
        let kind = if declaration.cim_type.is_reference() {
            ElementKind::Reference
        } else {
            ElementKind::Property
        };
        let qualifiers = self.qualifiers(declaration.qualifiers, kind)?;
        let embedded_object = embedded_kind(&qualifiers);
        check_embedded(
            embedded_object,
            &declaration.cim_type,
            declaration.name,
            declaration.offset,
        )?;
        let (is_array, array_size) = shape(declaration.array);
        let value = match declaration.default {
            Some(initializer) => {
                let target = Target {
                    subject: Subject::Property(declaration.name),
                    cim_type: &declaration.cim_type,
                    is_array,
                    array_size,
                    wrap_scalar: false,
                };
                convert(initializer, &target, &self.aliases)?
            }
            None => None,
        };
        Ok(Property {
            name: Name::new(declaration.name),
            cim_type: declaration.cim_type,
            is_array,
            array_size,
            value,
            qualifiers,
            class_origin: None,
            propagated: false,
            embedded_object,
        })
    }

    fn method(&self, declaration: MethodDecl<'_>) -> Result<Method, Fault> {
        let qualifiers = self.qualifiers(declaration.qualifiers, ElementKind::Method)?;
        let mut parameters: Vec<Parameter> = Vec::with_capacity(declaration.parameters.len());
        for parameter in declaration.parameters {
            if parameters.iter().any(|p| p.name.matches(parameter.name)) {
                return Err(Fault::new(
                    parameter.offset,
                    MofErrorKind::DuplicateParameter(parameter.name.to_owned()),
                ));
            }
            parameters.push(self.parameter(parameter)?);
        }
        Ok(Method {
            name: Name::new(declaration.name),
            return_type: declaration.return_type,
            parameters,
            qualifiers,
            class_origin: None,
            propagated: false,
        })
    }

    fn parameter(&self, declaration: ParameterDecl<'_>) -> Result<Parameter, Fault> {
        let qualifiers = self.qualifiers(declaration.qualifiers, ElementKind::Parameter)?;
        let embedded_object = embedded_kind(&qualifiers);
        check_embedded(
            embedded_object,
            &declaration.cim_type,
            declaration.name,
            declaration.offset,
        )?;
        let (is_array, array_size) = shape(declaration.array);
        Ok(Parameter {
            name: Name::new(declaration.name),
            cim_type: declaration.cim_type,
            is_array,
            array_size,
            qualifiers,
            embedded_object,
        })
    }

    fn instance(&mut self, declaration: InstanceDecl<'_>) -> Result<(), Fault> {
        let class = self
            .repository
            .class(&self.namespace, declaration.class)
            .ok_or_else(|| {
                Fault::new(
                    declaration.offset,
                    MofErrorKind::UnknownClass(declaration.class.to_owned()),
                )
            })?;
        let mut instance = Instance::new(class.name.clone());
        instance.qualifiers = self.qualifiers(declaration.qualifiers, ElementKind::Instance)?;
        for value in declaration.values {
            if instance.properties.contains_key(&NameKey(value.name)) {
                return Err(Fault::new(
                    value.offset,
                    MofErrorKind::DuplicateProperty(value.name.to_owned()),
                ));
            }
            instance.set(self.instance_value(class, value)?);
        }
        if let Some((alias, offset)) = declaration.alias {
            if self.aliases.contains_key(&NameKey(alias)) {
                return Err(Fault::new(
                    offset,
                    MofErrorKind::DuplicateAlias(alias.to_owned()),
                ));
            }
        }
        let path = self
            .repository
            .add_instance(&self.namespace, instance)
            .map_err(|e| Fault::new(declaration.offset, e.into()))?;
        if let Some((alias, _)) = declaration.alias {
            self.aliases
                .insert(Name::new(alias), ObjectPath::Instance(path.clone()));
        }
        self.compiled.push(Compiled::Instance {
            namespace: self.namespace.clone(),
            path,
        });
        Ok(())
    }

    /// One `Name = value;` of an instance, typed by the class's property of that name.
    fn instance_value(&self, class: &Class, value: ValueDecl<'_>) -> Result<Property, Fault> {
        let property = class.property(value.name).ok_or_else(|| {
            Fault::new(
                value.offset,
                MofErrorKind::UnknownProperty {
                    class: class.name.to_string(),
                    property: value.name.to_owned(),
                },
            )
        })?;
        let qualifiers = self.qualifiers(value.qualifiers, ElementKind::Instance)?;
        let target = Target {
            subject: Subject::Property(value.name),
            cim_type: &property.cim_type,
            is_array: property.is_array,
            array_size: property.array_size,
            wrap_scalar: false,
        };
        Ok(Property {
            name: property.name.clone(),
            cim_type: property.cim_type.clone(),
            is_array: property.is_array,
            array_size: property.array_size,
            value: convert(value.value, &target, &self.aliases)?,
            qualifiers,
            class_origin: None,
            propagated: false,
            embedded_object: property.embedded_object,
        })
    }
}

/// `(is_array, array_size)` from `[]`, `[N]` or nothing.
fn shape(array: ArraySpec) -> (bool, Option<u32>) {
    match array {
        None => (false, None),
        Some(size) => (true, size),
    }
}

/// `EmbeddedObject` (TRUE) makes an embedded object, `EmbeddedInstance("Class")` an embedded
/// instance.
fn embedded_kind(qualifiers: &QualifierList) -> Option<EmbeddedKind> {
    if qualifiers.is_true("EmbeddedObject") {
        Some(EmbeddedKind::Object)
    } else if qualifiers
        .get("EmbeddedInstance")
        .is_some_and(|q| q.value.is_some())
    {
        Some(EmbeddedKind::Instance)
    } else {
        None
    }
}

fn check_embedded(
    embedded: Option<EmbeddedKind>,
    cim_type: &crate::model::CimType,
    name: &str,
    offset: usize,
) -> Result<(), Fault> {
    if embedded.is_some() && *cim_type != crate::model::CimType::String {
        return Err(Fault::new(
            offset,
            MofErrorKind::EmbeddedNotString(name.to_owned()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mof::NoIncludes;

    fn compile_text(text: &str) -> (Repository, Result<Vec<Compiled>, MofErrors>) {
        let mut repository = Repository::new();
        let mut resolver = NoIncludes;
        let mut compiler = Compiler::new(&mut repository, &mut resolver, "root/t");
        compiler.compile_file(&SourceFile::new("t.mof", text.as_bytes().to_vec()));
        let result = compiler.finish();
        (repository, result)
    }

    #[test]
    fn compiled_elements_display_as_one_line_each() {
        let path = InstancePath::new("CIM_X")
            .with_key("Name", "a\"b")
            .with_key("Id", 7u32)
            .with_key("On", true);
        let instance = Compiled::Instance {
            namespace: "root/t".to_owned(),
            path,
        };
        assert_eq!(
            instance.to_string(),
            r#"instance /:CIM_X.Name="a\"b",Id=7,On=TRUE"#
        );
        let class = Compiled::Class {
            namespace: "root/t".to_owned(),
            name: Name::new("CIM_Foo"),
            superclass: Some(Name::new("CIM_Bar")),
        };
        assert_eq!(class.to_string(), "class CIM_Foo : CIM_Bar");
    }

    #[test]
    fn a_subclass_of_an_association_takes_association_qualifiers() {
        let (repository, result) = compile_text(
            "Qualifier Association : boolean = false, Scope(association);\n\
             Qualifier Composition : boolean = false, Scope(association);\n\
             [Association] class A { };\n\
             [Composition] class B : A { };\n\
             [Composition] class C { };",
        );
        let errors = result.unwrap_err();
        assert_eq!(errors.0.len(), 1);
        assert_eq!(
            errors.0[0].to_string(),
            "t.mof:5:2: qualifier Composition is not allowed on a class"
        );
        assert!(repository.class("root/t", "B").is_some());
    }

    #[test]
    fn a_namespace_pragma_switches_and_creates() {
        let (repository, result) =
            compile_text("#pragma namespace (\"/root/other/\")\nclass A { };");
        let compiled = result.unwrap();
        assert!(matches!(
            &compiled[0],
            Compiled::Class { namespace, .. } if namespace == "root/other"
        ));
        assert!(repository.class("root/other", "A").is_some());
        assert!(repository.class("root/t", "A").is_none());
    }

    #[test]
    fn a_namespace_pragma_of_slashes_only_is_refused() {
        for text in [
            "#pragma namespace (\"/\")\n",
            "#pragma namespace (\" // \")\n",
        ] {
            let (repository, result) = compile_text(&format!("{text}class A {{ }};"));
            let errors = result.unwrap_err();
            assert_eq!(errors.0.len(), 1, "{text}");
            assert!(
                errors.0[0].to_string().contains("the namespace is empty"),
                "{}",
                errors.0[0]
            );
            // The class went into the namespace in force, and no namespace "" was created.
            assert!(repository.class("root/t", "A").is_some());
            assert!(repository.namespace("").is_none());
        }
    }
}
