//! The intrinsic operations of DSP0200 1.4 against an [`ObjectManager`]: parameters checked
//! and typed, the operation run, the result returned as an [`Outcome`] for the HTTP layer to
//! encode (buffered, or streamed item by item).
//!
//! Class and qualifier changes, and anything else not served, answer CIM_ERR_NOT_SUPPORTED.

use std::sync::Arc;

use cim_schema::model::{ClassPath, Instance, InstancePath, Name, ObjectPath, Value};
use cim_schema::repository::{AssociationFilter, ClassQuery, RepositoryError};
use cim_schema::xml::{Data, IMethodCall, Object, Untyped};

use crate::auth::Principal;
use crate::cimom::{typed_path, ObjectManager, Shape};
use crate::error::OperationError;
use crate::provider::{same_keys, RequestContext};
use crate::pull::{Contexts, PullKind, PullRequest};

/// An associated object's path, and its instance when this server serves it (see
/// [`Operation::associated`]).
pub(crate) type Associated = (InstancePath, Option<Arc<Instance>>);

/// A lazily produced sequence of response items.
pub type Items = Box<dyn Iterator<Item = Result<Item, OperationError>> + Send>;

/// One response item: any element, or an instance as its provider shares it (see
/// [`crate::provider::Instances`]), encoded without a copy.
#[derive(Debug)]
// An item moves once, from the operation to the encoder, as `Data` did before; boxing the large
// variant would cost an allocation per item instead.
#[allow(clippy::large_enum_variant)]
pub enum Item {
    /// Any element.
    Data(Data),
    /// `VALUE.NAMEDINSTANCE` (EnumerateInstances).
    NamedInstance(InstancePath, Arc<Instance>),
    /// `VALUE.INSTANCEWITHPATH` (the pull operations).
    InstanceWithPath(InstancePath, Arc<Instance>),
}

impl Item {
    /// The item as [`Data`] (copying a shared instance that is not held only here).
    pub fn into_data(self) -> Data {
        match self {
            Item::Data(data) => data,
            Item::NamedInstance(path, instance) => {
                Data::NamedInstance(path, Arc::unwrap_or_clone(instance))
            }
            Item::InstanceWithPath(path, instance) => {
                Data::InstanceWithPath(path, Arc::unwrap_or_clone(instance))
            }
        }
    }
}

impl From<Data> for Item {
    fn from(data: Data) -> Item {
        Item::Data(data)
    }
}

/// What an operation returns, before encoding.
pub enum Outcome {
    /// No `IRETURNVALUE` (ModifyInstance, DeleteInstance, CloseEnumeration).
    Void,
    /// `IRETURNVALUE` with these items.
    Items(Vec<Data>),
    /// `IRETURNVALUE` with items produced while the response is written.
    Stream(Items),
    /// A pull operation's items, taken from its context while the response is written, then
    /// its `EnumerationContext` and `EndOfSequence`.
    Pull(Box<crate::pull::PullBatch>),
}

/// The state-changing class of an operation, for authorization and the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Reads only.
    Read,
    /// Creates, modifies or deletes an instance.
    Write,
}

/// The intrinsic operations this server answers, with whether each changes state.
pub fn effect(name: &str) -> Effect {
    const WRITES: &[&str] = &[
        "CreateInstance",
        "ModifyInstance",
        "DeleteInstance",
        "SetProperty",
    ];
    if WRITES.iter().any(|w| w.eq_ignore_ascii_case(name)) {
        Effect::Write
    } else {
        Effect::Read
    }
}

/// The class a state-changing call names (`NewInstance`, `ModifiedInstance`,
/// `InstanceName`), for authorization.
pub fn target_class(call: &IMethodCall) -> Option<Name> {
    match call
        .param("NewInstance")
        .or_else(|| call.param("ModifiedInstance"))
        .or_else(|| call.param("InstanceName"))
    {
        Some(Data::Instance(instance)) => Some(instance.class_name.clone()),
        Some(Data::NamedInstance(path, _) | Data::InstanceName(path)) => {
            Some(path.class_name.clone())
        }
        _ => None,
    }
}

/// Runs one intrinsic operation (the caller has authorized it).
pub fn execute(
    manager: &Arc<ObjectManager>,
    contexts: &Arc<Contexts>,
    principal: &Principal,
    call: &IMethodCall,
) -> Result<Outcome, OperationError> {
    let namespace = manager.namespace(&call.namespace)?;
    let context = RequestContext::new(principal, namespace);
    let op = Operation {
        manager,
        call,
        context: &context,
    };
    match call.name.as_str() {
        name if name.eq_ignore_ascii_case("GetClass") => op.get_class(),
        name if name.eq_ignore_ascii_case("EnumerateClasses") => op.enumerate_classes(),
        name if name.eq_ignore_ascii_case("EnumerateClassNames") => op.enumerate_class_names(),
        name if name.eq_ignore_ascii_case("GetQualifier") => op.get_qualifier(),
        name if name.eq_ignore_ascii_case("EnumerateQualifiers") => op.enumerate_qualifiers(),
        name if name.eq_ignore_ascii_case("GetInstance") => op.get_instance(),
        name if name.eq_ignore_ascii_case("EnumerateInstances") => op.enumerate_instances(),
        name if name.eq_ignore_ascii_case("EnumerateInstanceNames") => {
            op.enumerate_instance_names()
        }
        name if name.eq_ignore_ascii_case("Associators") => op.associators(false),
        name if name.eq_ignore_ascii_case("AssociatorNames") => op.associators(true),
        name if name.eq_ignore_ascii_case("References") => op.references(false),
        name if name.eq_ignore_ascii_case("ReferenceNames") => op.references(true),
        name if name.eq_ignore_ascii_case("ExecQuery") => crate::query::exec_query(&op),
        name if name.eq_ignore_ascii_case("OpenQueryInstances") => {
            op.open(contexts, PullKind::Query)
        }
        name if name.eq_ignore_ascii_case("PullInstances") => op.pull(contexts, &[PullKind::Query]),
        name if name.eq_ignore_ascii_case("CreateInstance") => op.create_instance(),
        name if name.eq_ignore_ascii_case("ModifyInstance") => op.modify_instance(),
        name if name.eq_ignore_ascii_case("DeleteInstance") => op.delete_instance(),
        name if name.eq_ignore_ascii_case("GetProperty") => op.get_property(),
        name if name.eq_ignore_ascii_case("SetProperty") => op.set_property(),
        name if name.eq_ignore_ascii_case("OpenEnumerateInstances") => {
            op.open(contexts, PullKind::Instances)
        }
        name if name.eq_ignore_ascii_case("OpenEnumerateInstancePaths") => {
            op.open(contexts, PullKind::InstancePaths)
        }
        name if name.eq_ignore_ascii_case("OpenAssociatorInstances") => {
            op.open(contexts, PullKind::Associators)
        }
        name if name.eq_ignore_ascii_case("OpenAssociatorInstancePaths") => {
            op.open(contexts, PullKind::AssociatorPaths)
        }
        name if name.eq_ignore_ascii_case("OpenReferenceInstances") => {
            op.open(contexts, PullKind::References)
        }
        name if name.eq_ignore_ascii_case("OpenReferenceInstancePaths") => {
            op.open(contexts, PullKind::ReferencePaths)
        }
        name if name.eq_ignore_ascii_case("PullInstancesWithPath") => op.pull(
            contexts,
            &[
                PullKind::Instances,
                PullKind::Associators,
                PullKind::References,
            ],
        ),
        name if name.eq_ignore_ascii_case("PullInstancePaths") => op.pull(
            contexts,
            &[
                PullKind::InstancePaths,
                PullKind::AssociatorPaths,
                PullKind::ReferencePaths,
            ],
        ),
        name if name.eq_ignore_ascii_case("CloseEnumeration") => op.close(contexts),
        name if name.eq_ignore_ascii_case("EnumerationCount") => Err(OperationError::NotSupported(
            "EnumerationCount is not supported".into(),
        )),
        name if CLASS_CHANGES.iter().any(|c| c.eq_ignore_ascii_case(name)) => Err(
            OperationError::NotSupported(format!("{name}: the schema is read-only on this server")),
        ),
        name => Err(OperationError::NotSupported(format!(
            "intrinsic method {name} is not supported"
        ))),
    }
}

/// The operations that would change classes or qualifier declarations.
const CLASS_CHANGES: &[&str] = &[
    "CreateClass",
    "ModifyClass",
    "DeleteClass",
    "SetQualifier",
    "DeleteQualifier",
];

/// One operation in progress.
pub(crate) struct Operation<'a> {
    pub(crate) manager: &'a Arc<ObjectManager>,
    pub(crate) call: &'a IMethodCall,
    pub(crate) context: &'a RequestContext,
}

impl Operation<'_> {
    fn namespace(&self) -> &str {
        &self.context.namespace
    }

    /// Fails on a parameter the operation does not take, or one given twice.
    pub(crate) fn allow(&self, names: &[&str]) -> Result<(), OperationError> {
        for (index, param) in self.call.params.iter().enumerate() {
            if !names.iter().any(|n| param.name.matches(n)) {
                return Err(OperationError::parameter(format!(
                    "{} takes no parameter {}",
                    self.call.name, param.name
                )));
            }
            if self.call.params[..index]
                .iter()
                .any(|p| p.name == param.name)
            {
                return Err(OperationError::parameter(format!(
                    "parameter {} is given twice",
                    param.name
                )));
            }
        }
        Ok(())
    }

    fn param(&self, name: &str) -> Option<&Data> {
        self.call.param(name)
    }

    pub(crate) fn boolean(&self, name: &str, default: bool) -> Result<bool, OperationError> {
        match self.param(name) {
            None | Some(Data::Null) => Ok(default),
            Some(Data::Untyped(text)) => text
                .as_bool()
                .ok_or_else(|| OperationError::parameter(format!("{name} must be a boolean"))),
            Some(Data::Value(Value::Boolean(value))) => Ok(*value),
            Some(_) => Err(OperationError::parameter(format!(
                "{name} must be a boolean"
            ))),
        }
    }

    pub(crate) fn string(&self, name: &str) -> Result<Option<String>, OperationError> {
        match self.param(name) {
            None | Some(Data::Null) => Ok(None),
            Some(Data::Untyped(Untyped::Scalar(text))) => Ok(Some(text.clone())),
            Some(Data::Value(Value::String(text))) => Ok(Some(text.clone())),
            Some(_) => Err(OperationError::parameter(format!(
                "{name} must be a string"
            ))),
        }
    }

    pub(crate) fn uint32(&self, name: &str) -> Result<Option<u32>, OperationError> {
        match self.param(name) {
            None | Some(Data::Null) => Ok(None),
            Some(Data::Untyped(text)) => text
                .as_u32()
                .map(Some)
                .ok_or_else(|| OperationError::parameter(format!("{name} must be a uint32"))),
            Some(Data::Value(Value::Uint32(value))) => Ok(Some(*value)),
            Some(_) => Err(OperationError::parameter(format!(
                "{name} must be a uint32"
            ))),
        }
    }

    /// A `CLASSNAME` parameter, or `None`.
    pub(crate) fn class_name(&self, name: &str) -> Result<Option<Name>, OperationError> {
        match self.param(name) {
            None | Some(Data::Null) => Ok(None),
            Some(Data::ClassName(class)) => Ok(Some(class.clone())),
            Some(Data::Untyped(Untyped::Scalar(text))) if is_class_name(text) => {
                Ok(Some(Name::new(text.as_str())))
            }
            Some(_) => Err(OperationError::parameter(format!(
                "{name} must be a class name"
            ))),
        }
    }

    /// A required `CLASSNAME` parameter naming an existing class.
    pub(crate) fn existing_class(&self, name: &str) -> Result<Name, OperationError> {
        let class = self
            .class_name(name)?
            .ok_or_else(|| OperationError::parameter(format!("{name} is required")))?;
        Ok(self
            .manager
            .class(self.namespace(), class.as_str())?
            .name
            .clone())
    }

    /// An optional filter class name (AssocClass, ResultClass): must exist when given, and
    /// be an association when `association` (DSP0200: AssocClass names an association class;
    /// any other is CIM_ERR_INVALID_PARAMETER).
    fn filter_class(&self, name: &str, association: bool) -> Result<Option<Name>, OperationError> {
        match self.class_name(name)? {
            None => Ok(None),
            Some(class) => {
                let found = self
                    .manager
                    .class(self.namespace(), class.as_str())
                    .map_err(|_| {
                        OperationError::parameter(format!("{name} {class} is not a class"))
                    })?;
                if association && !found.is_association() {
                    return Err(OperationError::parameter(format!(
                        "{name} {class} is not an association"
                    )));
                }
                Ok(Some(class))
            }
        }
    }

    /// The `PropertyList` parameter: `None` when absent or NULL.
    pub(crate) fn property_list(&self) -> Result<Option<Vec<Name>>, OperationError> {
        match self.param("PropertyList") {
            None | Some(Data::Null) => Ok(None),
            Some(Data::Untyped(Untyped::Array(items))) => Ok(Some(
                items
                    .iter()
                    .flatten()
                    .map(|n| Name::new(n.as_str()))
                    .collect(),
            )),
            Some(Data::Value(Value::Array(items))) => Ok(Some(
                items
                    .iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(Name::new)
                    .collect(),
            )),
            Some(_) => Err(OperationError::parameter(
                "PropertyList must be an array of property names",
            )),
        }
    }

    /// A required `INSTANCENAME` parameter.
    pub(crate) fn instance_name(&self, name: &str) -> Result<InstancePath, OperationError> {
        match self.param(name) {
            Some(Data::InstanceName(path)) => Ok(path.clone()),
            None | Some(Data::Null) => {
                Err(OperationError::parameter(format!("{name} is required")))
            }
            Some(_) => Err(OperationError::parameter(format!(
                "{name} must be an instance name"
            ))),
        }
    }

    /// `ObjectName` of the association operations: a class or an instance, of a class of
    /// the namespace. DSP0200 lists no CIM_ERR_INVALID_CLASS for these operations: a class
    /// that does not exist is CIM_ERR_INVALID_PARAMETER (as pywbem's mock server answers).
    /// An instance name without keys names no instance: CIM_ERR_INVALID_PARAMETER (sblim
    /// wbemcli's `ain`, `ai`, `rin` and `ri` of a class path send one, and so does pywbem for
    /// a CIMInstanceName without keys; both read only instance paths back, so the class's
    /// associations, which are class paths, would be an answer neither can read).
    pub(crate) fn object_name(&self) -> Result<ObjectPath, OperationError> {
        let object = match self.param("ObjectName") {
            Some(Data::InstanceName(path)) if path.keybindings.is_empty() => {
                return Err(OperationError::parameter(format!(
                    "ObjectName {} has no keys: it names no instance (a class name asks \
                     about the class)",
                    path.class_name
                )))
            }
            Some(Data::InstanceName(path)) => ObjectPath::Instance(path.clone()),
            Some(Data::ClassName(class)) => ObjectPath::Class(ClassPath::new(class.clone())),
            None | Some(Data::Null) => {
                return Err(OperationError::parameter("ObjectName is required"))
            }
            Some(_) => {
                return Err(OperationError::parameter(
                    "ObjectName must be a class name or an instance name",
                ))
            }
        };
        self.association_class("ObjectName", object.class_name())?;
        Ok(object)
    }

    /// `InstanceName` of the association pull operations, of a class of the namespace (as
    /// [`Operation::object_name`]).
    pub(crate) fn association_target(&self) -> Result<InstancePath, OperationError> {
        let target = self.instance_name("InstanceName")?;
        self.association_class("InstanceName", &target.class_name)?;
        if target.keybindings.is_empty() {
            // Not an instance: the pull operations follow instances' associations only (the
            // class's are Associators and References of a class name).
            return Err(OperationError::parameter(format!(
                "InstanceName {} has no keys: it names no instance",
                target.class_name
            )));
        }
        Ok(target)
    }

    /// Parameter `name` of an association operation names `class`: one of the namespace, or
    /// CIM_ERR_INVALID_PARAMETER.
    fn association_class(&self, name: &str, class: &Name) -> Result<(), OperationError> {
        match self.manager.class(self.namespace(), class.as_str()) {
            Ok(_) => Ok(()),
            Err(OperationError::InvalidClass(_)) => Err(OperationError::parameter(format!(
                "{name}: class {class} does not exist in namespace {}",
                self.namespace()
            ))),
            Err(other) => Err(other),
        }
    }

    pub(crate) fn instance_shape(&self) -> Result<Shape, OperationError> {
        Ok(Shape {
            // DSP0200 1.4 deprecates LocalOnly for instances and lets servers treat it as
            // false; like the servers clients know, apply it only when asked for explicitly.
            local_only: self.boolean("LocalOnly", false)?,
            deep_inheritance: self.boolean("DeepInheritance", true)?,
            include_qualifiers: self.boolean("IncludeQualifiers", false)?,
            include_class_origin: self.boolean("IncludeClassOrigin", false)?,
            property_list: self.property_list()?,
        })
    }

    fn class_query(&self) -> Result<ClassQuery, OperationError> {
        Ok(ClassQuery {
            local_only: self.boolean("LocalOnly", true)?,
            include_qualifiers: self.boolean("IncludeQualifiers", true)?,
            include_class_origin: self.boolean("IncludeClassOrigin", false)?,
            property_list: self
                .property_list()?
                .map(|list| list.iter().map(|n| n.as_str().to_owned()).collect()),
        })
    }

    fn get_class(&self) -> Result<Outcome, OperationError> {
        self.allow(&[
            "ClassName",
            "LocalOnly",
            "IncludeQualifiers",
            "IncludeClassOrigin",
            "PropertyList",
        ])?;
        let class = self
            .class_name("ClassName")?
            .ok_or_else(|| OperationError::parameter("ClassName is required"))?;
        let query = self.class_query()?;
        let class = self
            .manager
            .repository()
            .get_class(self.namespace(), class.as_str(), &query)
            .map_err(|error| repository_error(error, true))?;
        Ok(Outcome::Items(vec![Data::Class(class)]))
    }

    fn enumerate_classes(&self) -> Result<Outcome, OperationError> {
        self.allow(&[
            "ClassName",
            "DeepInheritance",
            "LocalOnly",
            "IncludeQualifiers",
            "IncludeClassOrigin",
        ])?;
        let class = self.class_name("ClassName")?;
        let deep = self.boolean("DeepInheritance", false)?;
        let query = self.class_query()?;
        let classes = self
            .manager
            .repository()
            .classes(
                self.namespace(),
                class.as_ref().map(Name::as_str),
                deep,
                &query,
            )
            .map_err(|error| repository_error(error, false))?;
        Ok(Outcome::Items(
            classes.into_iter().map(Data::Class).collect(),
        ))
    }

    fn enumerate_class_names(&self) -> Result<Outcome, OperationError> {
        self.allow(&["ClassName", "DeepInheritance"])?;
        let class = self.class_name("ClassName")?;
        let deep = self.boolean("DeepInheritance", false)?;
        let names = self
            .manager
            .repository()
            .class_names(self.namespace(), class.as_ref().map(Name::as_str), deep)
            .map_err(|error| repository_error(error, false))?;
        Ok(Outcome::Items(
            names
                .into_iter()
                .map(|n| Data::ClassName(n.clone()))
                .collect(),
        ))
    }

    fn get_qualifier(&self) -> Result<Outcome, OperationError> {
        self.allow(&["QualifierName"])?;
        let name = self
            .string("QualifierName")?
            .ok_or_else(|| OperationError::parameter("QualifierName is required"))?;
        let declaration = self
            .manager
            .repository()
            .qualifier(self.namespace(), &name)
            .ok_or_else(|| OperationError::NotFound(format!("qualifier {name} is not declared")))?;
        Ok(Outcome::Items(vec![Data::QualifierDeclaration(
            declaration.clone(),
        )]))
    }

    fn enumerate_qualifiers(&self) -> Result<Outcome, OperationError> {
        self.allow(&[])?;
        let declarations = self
            .manager
            .repository()
            .qualifiers(self.namespace())
            .map_err(|error| repository_error(error, false))?;
        Ok(Outcome::Items(
            declarations
                .map(|d| Data::QualifierDeclaration(d.clone()))
                .collect(),
        ))
    }

    fn get_instance(&self) -> Result<Outcome, OperationError> {
        self.allow(&[
            "InstanceName",
            "LocalOnly",
            "IncludeQualifiers",
            "IncludeClassOrigin",
            "PropertyList",
        ])?;
        let path = self.instance_name("InstanceName")?;
        let shape = Shape {
            deep_inheritance: true,
            ..self.instance_shape()?
        };
        let instance = Arc::new(self.manager.instance(self.context, &path)?);
        let class = instance.class_name.clone();
        let instance = self
            .manager
            .shape(self.namespace(), instance, &class, &shape);
        Ok(Outcome::Items(vec![Data::Instance(Arc::unwrap_or_clone(
            instance,
        ))]))
    }

    /// The shaped instances of `class`, lazily, with full paths, or local ones when not
    /// `located`.
    pub(crate) fn shaped_instances(
        &self,
        class: &Name,
        shape: Shape,
        located: bool,
    ) -> Result<crate::provider::Instances, OperationError> {
        let manager = self.manager.clone();
        let namespace = self.context.namespace.clone();
        let requested = class.clone();
        let instances = if located {
            self.manager.instances(self.context, class)?
        } else {
            self.manager.local_instances(self.context, class)?
        };
        Ok(Box::new(instances.map(move |item| {
            item.map(|(path, instance)| {
                (
                    path,
                    manager.shape(&namespace, instance, &requested, &shape),
                )
            })
        })))
    }

    fn enumerate_instances(&self) -> Result<Outcome, OperationError> {
        self.allow(&[
            "ClassName",
            "LocalOnly",
            "DeepInheritance",
            "IncludeQualifiers",
            "IncludeClassOrigin",
            "PropertyList",
        ])?;
        let class = self.existing_class("ClassName")?;
        let items = self.shaped_instances(&class, self.instance_shape()?, false)?;
        Ok(Outcome::Stream(Box::new(items.map(|item| {
            item.map(|(path, instance)| Item::NamedInstance(path, instance))
        }))))
    }

    fn enumerate_instance_names(&self) -> Result<Outcome, OperationError> {
        self.allow(&["ClassName"])?;
        let class = self.existing_class("ClassName")?;
        let items = self.manager.local_instances(self.context, &class)?;
        Ok(Outcome::Stream(Box::new(items.map(|item| {
            item.map(|(path, _)| Item::Data(Data::InstanceName(path)))
        }))))
    }

    /// The association filter parameters, checked.
    pub(crate) fn association_filter(
        &self,
        with_result: bool,
    ) -> Result<OwnedFilter, OperationError> {
        Ok(OwnedFilter {
            assoc_class: if with_result {
                self.filter_class("AssocClass", true)?
            } else {
                None
            },
            result_class: self.filter_class("ResultClass", false)?,
            role: self.string("Role")?,
            result_role: if with_result {
                self.string("ResultRole")?
            } else {
                None
            },
        })
    }

    fn associators(&self, names_only: bool) -> Result<Outcome, OperationError> {
        self.traverse(names_only, false)
    }

    fn references(&self, names_only: bool) -> Result<Outcome, OperationError> {
        self.traverse(names_only, true)
    }

    /// Associators, AssociatorNames (`references` false), References and ReferenceNames.
    fn traverse(&self, names_only: bool, references: bool) -> Result<Outcome, OperationError> {
        let mut allowed = if references {
            vec!["ObjectName", "ResultClass", "Role"]
        } else {
            vec![
                "ObjectName",
                "AssocClass",
                "ResultClass",
                "Role",
                "ResultRole",
            ]
        };
        if !names_only {
            allowed.extend(["IncludeQualifiers", "IncludeClassOrigin", "PropertyList"]);
        }
        self.allow(&allowed)?;
        let object = self.object_name()?;
        let filter = self.association_filter(!references)?;
        let path = match object {
            ObjectPath::Class(path) => {
                return self.class_associators(&path.class_name, &filter, names_only, references)
            }
            ObjectPath::Instance(path) => path,
        };
        let shape = self.instance_shape()?;
        let found = if references {
            let found = self.referencing(&path, &filter)?;
            found.into_iter().map(|(p, i)| (p, Some(i))).collect()
        } else {
            self.associated(&path, &filter)?
        };
        Ok(Outcome::Items(
            found
                .into_iter()
                .filter_map(|(path, instance)| {
                    if names_only {
                        return Some(Data::ObjectPath(ObjectPath::Instance(path)));
                    }
                    // An object this server does not serve is named, never returned.
                    let instance = instance?;
                    let class = instance.class_name.clone();
                    let instance = self
                        .manager
                        .shape(self.namespace(), instance, &class, &shape);
                    Some(Data::ObjectWithPath(
                        ObjectPath::Instance(path),
                        Object::Instance(Arc::unwrap_or_clone(instance)),
                    ))
                })
                .collect(),
        ))
    }

    /// Class-level Associators/References: the classes linked through association classes.
    fn class_associators(
        &self,
        class: &Name,
        filter: &OwnedFilter,
        names_only: bool,
        references: bool,
    ) -> Result<Outcome, OperationError> {
        let repository = self.manager.repository();
        let class = &self.manager.class(self.namespace(), class.as_str())?.name;
        let borrowed = filter.borrowed(references);
        let links = repository
            .association_links(self.namespace(), class.as_str(), &borrowed)
            .map_err(|error| repository_error(error, false))?;
        let mut names: Vec<Name> = Vec::new();
        for link in links {
            let name = if references {
                link.association.clone()
            } else {
                match self.result_class_of(link.result_class, filter.result_class.as_ref()) {
                    Some(name) => name,
                    None => continue,
                }
            };
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let host = self.manager.host().to_owned();
        let items = names
            .into_iter()
            .map(|name| {
                let path = ObjectPath::Class(ClassPath {
                    host: Some(host.clone()),
                    namespace: Some(self.namespace().to_owned()),
                    class_name: name.clone(),
                });
                if names_only {
                    Ok(Data::ObjectPath(path))
                } else {
                    let class = repository
                        .get_class(self.namespace(), name.as_str(), &self.class_query()?)
                        .map_err(|error| repository_error(error, false))?;
                    Ok(Data::ObjectWithPath(path, Object::Class(class)))
                }
            })
            .collect::<Result<Vec<_>, OperationError>>()?;
        Ok(Outcome::Items(items))
    }

    /// The class a class-level Associators returns for a reference declared to `declared`:
    /// DSP0200 wants the ResultClass or a subclass of it, and a reference declared to a
    /// superclass of ResultClass can hold ResultClass itself.
    fn result_class_of(&self, declared: &Name, wanted: Option<&Name>) -> Option<Name> {
        let repository = self.manager.repository();
        let Some(wanted) = wanted else {
            return Some(declared.clone());
        };
        if repository.is_a(self.namespace(), declared.as_str(), wanted.as_str()) {
            Some(declared.clone())
        } else if repository.is_a(self.namespace(), wanted.as_str(), declared.as_str()) {
            repository
                .class(self.namespace(), wanted.as_str())
                .map(|class| class.name.clone())
        } else {
            None
        }
    }

    /// The association instances that reference `target` (through `Role` when given).
    pub(crate) fn referencing(
        &self,
        target: &InstancePath,
        filter: &OwnedFilter,
    ) -> Result<Vec<(InstancePath, Arc<Instance>)>, OperationError> {
        let target_class = self
            .manager
            .class(self.namespace(), target.class_name.as_str())?;
        let target = typed_path(target_class, target)?;
        let roles = self
            .manager
            .repository()
            .associations_referencing(self.namespace(), target_class.name.as_str())
            .map_err(|error| repository_error(error, false))?;
        let mut associations: Vec<Name> = Vec::new();
        for role in &roles {
            let wanted = filter.result_class.as_ref().is_none_or(|c| {
                self.manager.repository().is_a(
                    self.namespace(),
                    role.association.as_str(),
                    c.as_str(),
                )
            }) && filter.role.as_ref().is_none_or(|r| role.role.matches(r));
            if wanted && !associations.contains(role.association) {
                associations.push(role.association.clone());
            }
        }
        let mut found = Vec::new();
        let mut seen: Vec<InstancePath> = Vec::new();
        for association in associations {
            for item in self.manager.instances(self.context, &association)? {
                let (path, instance) = item?;
                if seen.iter().any(|p| same_keys(p, &path)) {
                    continue;
                }
                let refers = instance.properties.values().any(|property| {
                    filter
                        .role
                        .as_ref()
                        .is_none_or(|r| property.name.matches(r))
                        && points_at(property.value.as_ref(), &target, self.namespace())
                });
                if refers {
                    seen.push(path.clone());
                    found.push((path, instance));
                }
            }
        }
        Ok(found)
    }

    /// The objects associated with `target`: their paths, and their instances when this
    /// server serves them. An association may name an object another provider serves (the
    /// operating system's CIM_ComputerSystem of HP_SGNodeIdentity): AssociatorNames names it,
    /// as ReferenceNames names the association, and Associators, which must return the
    /// instance, leaves it out.
    pub(crate) fn associated(
        &self,
        target: &InstancePath,
        filter: &OwnedFilter,
    ) -> Result<Vec<Associated>, OperationError> {
        let association_filter = OwnedFilter {
            result_class: filter.assoc_class.clone(),
            role: filter.role.clone(),
            ..OwnedFilter::default()
        };
        let target_class = self
            .manager
            .class(self.namespace(), target.class_name.as_str())?;
        let typed_target = typed_path(target_class, target)?;
        let mut found: Vec<Associated> = Vec::new();
        for (_, association) in self.referencing(target, &association_filter)? {
            for property in association.properties.values() {
                let Some(Value::Reference(other)) = &property.value else {
                    continue;
                };
                let ObjectPath::Instance(other) = other.as_ref() else {
                    continue;
                };
                if filter
                    .result_role
                    .as_ref()
                    .is_some_and(|r| !property.name.matches(r))
                    || points_at(property.value.as_ref(), &typed_target, self.namespace())
                {
                    continue;
                }
                if filter.result_class.as_ref().is_some_and(|c| {
                    !self.manager.repository().is_a(
                        self.namespace(),
                        other.class_name.as_str(),
                        c.as_str(),
                    )
                }) {
                    continue;
                }
                if found.iter().any(|(p, _)| same_keys(p, other)) {
                    continue;
                }
                // A reference naming another host names what that host's agent serves (another
                // node's computer system): named, not looked up here, where an object of the
                // same class and keys would not be it.
                let elsewhere = other
                    .host
                    .as_deref()
                    .is_some_and(|host| !host.eq_ignore_ascii_case(self.manager.host()));
                if elsewhere {
                    let mut path = other.clone();
                    if path.namespace.is_none() {
                        path.namespace = Some(self.context.namespace.to_string());
                    }
                    found.push((path, None));
                    continue;
                }
                match self.resolve_reference(other) {
                    Ok((path, instance)) => found.push((path, Some(instance))),
                    // Its class is served here: the object is gone (or going), not named. A
                    // reference that is no instance name of its class (a key missing) names
                    // nothing either: the association's fault, not this request's.
                    Err(OperationError::NotFound(_) | OperationError::InvalidParameter(_))
                        if self.serves_class_of(other) => {}
                    // Served elsewhere (its class has no provider here, or is not even in
                    // this server's schema): named.
                    Err(
                        OperationError::NotFound(_)
                        | OperationError::InvalidParameter(_)
                        | OperationError::InvalidNamespace(_)
                        | OperationError::InvalidClass(_),
                    ) => {
                        let mut path = other.clone();
                        if path.namespace.is_none() {
                            path.namespace = Some(self.context.namespace.to_string());
                        }
                        if path.host.is_none() {
                            path.host = Some(self.manager.host().to_owned());
                        }
                        found.push((path, None));
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(found)
    }

    /// True when a provider of this server serves `path`'s own class (not only subclasses).
    fn serves_class_of(&self, path: &InstancePath) -> bool {
        let namespace = match &path.namespace {
            Some(namespace) => match self.manager.namespace(namespace) {
                Ok(namespace) => namespace,
                Err(_) => return false,
            },
            None => self.context.namespace.clone(),
        };
        self.manager
            .provider(&namespace, path.class_name.as_str())
            .is_some()
    }

    /// The instance a reference points at, in its own namespace when it names one.
    fn resolve_reference(
        &self,
        path: &InstancePath,
    ) -> Result<(InstancePath, Arc<Instance>), OperationError> {
        let namespace = match &path.namespace {
            Some(namespace) => self.manager.namespace(namespace)?,
            None => self.context.namespace.clone(),
        };
        let context = RequestContext {
            principal: self.context.principal.clone(),
            role: self.context.role,
            namespace: namespace.clone(),
        };
        let instance = self.manager.instance(&context, path)?;
        let mut full = path.clone();
        full.host = Some(self.manager.host().to_owned());
        full.namespace = Some(namespace.to_string());
        Ok((full, Arc::new(instance)))
    }

    fn create_instance(&self) -> Result<Outcome, OperationError> {
        self.allow(&["NewInstance"])?;
        let Some(Data::Instance(instance)) = self.param("NewInstance") else {
            return Err(OperationError::parameter("NewInstance must be an instance"));
        };
        let class = self
            .manager
            .class(self.namespace(), instance.class_name.as_str())?;
        if class.is_abstract() {
            return Err(OperationError::parameter(format!(
                "class {} is abstract",
                class.name
            )));
        }
        let instance = declared_instance(class, instance, true)?;
        let provider = self
            .manager
            .provider(self.namespace(), class.name.as_str())
            .ok_or_else(|| {
                OperationError::NotSupported(format!(
                    "instances of {} cannot be created",
                    class.name
                ))
            })?;
        let path = provider.create(self.context, instance)?;
        Ok(Outcome::Items(vec![Data::InstanceName(path)]))
    }

    fn modify_instance(&self) -> Result<Outcome, OperationError> {
        self.allow(&["ModifiedInstance", "IncludeQualifiers", "PropertyList"])?;
        let Some(Data::NamedInstance(path, instance)) = self.param("ModifiedInstance") else {
            return Err(OperationError::parameter(
                "ModifiedInstance must be a named instance",
            ));
        };
        let class = self
            .manager
            .class(self.namespace(), path.class_name.as_str())?;
        let path = typed_path(class, path)?;
        if !instance.class_name.matches(class.name.as_str()) {
            return Err(OperationError::parameter(format!(
                "ModifiedInstance is of class {} and its path of class {}",
                instance.class_name, class.name
            )));
        }
        let instance = declared_instance(class, instance, false)?;
        let provider = self
            .manager
            .provider(self.namespace(), class.name.as_str())
            .ok_or_else(|| crate::provider::not_found(&path))?;
        let list = self.property_list()?;
        provider.modify(self.context, &path, instance, list.as_deref())?;
        Ok(Outcome::Void)
    }

    /// GetProperty (DSP0200): one property's value of an instance, as GetInstance with that
    /// property alone would give it; nothing when it is NULL. A name the class lacks is
    /// CIM_ERR_NO_SUCH_PROPERTY. (sblim wbemcli's `gp`.)
    fn get_property(&self) -> Result<Outcome, OperationError> {
        self.allow(&["InstanceName", "PropertyName"])?;
        let path = self.instance_name("InstanceName")?;
        let (_, declared) = self.declared_property(&path)?;
        // As GetInstance shows it (a CIM_Namespace's Name in the request's spelling).
        let instance = crate::cimom::spelt_instance(
            crate::cimom::namespace_spelling(&self.call.namespace).as_ref(),
            Arc::new(self.manager.instance(self.context, &path)?),
        );
        Ok(Outcome::Items(
            instance
                .value(declared.name.as_str())
                .map(|value| Data::Value(value.clone()))
                .into_iter()
                .collect(),
        ))
    }

    /// SetProperty (DSP0200): ModifyInstance of one property, with what that allows and
    /// refuses; NewValue absent sets it to NULL. (sblim wbemcli's `sp`.)
    fn set_property(&self) -> Result<Outcome, OperationError> {
        self.allow(&["InstanceName", "PropertyName", "NewValue"])?;
        let path = self.instance_name("InstanceName")?;
        let (class, declared) = self.declared_property(&path)?;
        let value = match self.param("NewValue") {
            None => None,
            Some(data) => crate::methods::typed_value(data, &declared.cim_type, declared.is_array)
                .map_err(|why| {
                    OperationError::TypeMismatch(format!(
                        "NewValue of property {}: {why}",
                        declared.name
                    ))
                })?,
        };
        let mut property = cim_schema::model::Property::new(
            declared.name.clone(),
            declared.cim_type.clone(),
            value,
        );
        property.is_array = declared.is_array;
        property.embedded_object = declared.embedded_object;
        let mut instance = Instance::new(class.name.clone());
        instance.set(property);
        let path = typed_path(class, &path)?;
        let provider = self
            .manager
            .provider(self.namespace(), class.name.as_str())
            .ok_or_else(|| crate::provider::not_found(&path))?;
        provider.modify(
            self.context,
            &path,
            instance,
            Some(std::slice::from_ref(&declared.name)),
        )?;
        Ok(Outcome::Void)
    }

    /// The class of `path` and its property that `PropertyName` names, or the error.
    fn declared_property(
        &self,
        path: &InstancePath,
    ) -> Result<(&cim_schema::model::Class, &cim_schema::model::Property), OperationError> {
        let name = self
            .string("PropertyName")?
            .ok_or_else(|| OperationError::parameter("PropertyName is required"))?;
        let class = self
            .manager
            .class(self.namespace(), path.class_name.as_str())?;
        let declared = class.property(&name).ok_or_else(|| {
            OperationError::NoSuchProperty(format!("class {} has no property {name}", class.name))
        })?;
        Ok((class, declared))
    }

    fn delete_instance(&self) -> Result<Outcome, OperationError> {
        self.allow(&["InstanceName"])?;
        let path = self.instance_name("InstanceName")?;
        let class = self
            .manager
            .class(self.namespace(), path.class_name.as_str())?;
        let path = typed_path(class, &path)?;
        let provider = self
            .manager
            .provider(self.namespace(), class.name.as_str())
            .ok_or_else(|| crate::provider::not_found(&path))?;
        provider.delete(self.context, &path)?;
        Ok(Outcome::Void)
    }

    fn open(&self, contexts: &Arc<Contexts>, kind: PullKind) -> Result<Outcome, OperationError> {
        let request = PullRequest::parse(self, kind)?;
        contexts.open(self, kind, request)
    }

    fn pull(
        &self,
        contexts: &Arc<Contexts>,
        kinds: &[PullKind],
    ) -> Result<Outcome, OperationError> {
        self.allow(&["EnumerationContext", "MaxObjectCount"])?;
        let id = self
            .string("EnumerationContext")?
            .ok_or_else(|| OperationError::parameter("EnumerationContext is required"))?;
        let max = self
            .uint32("MaxObjectCount")?
            .ok_or_else(|| OperationError::parameter("MaxObjectCount is required"))?;
        contexts.pull(self.context, &id, max, kinds)
    }

    fn close(&self, contexts: &Contexts) -> Result<Outcome, OperationError> {
        self.allow(&["EnumerationContext"])?;
        let id = self
            .string("EnumerationContext")?
            .ok_or_else(|| OperationError::parameter("EnumerationContext is required"))?;
        contexts.close(self.context, &id)?;
        Ok(Outcome::Void)
    }
}

/// The association filter parameters, owned.
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnedFilter {
    pub(crate) assoc_class: Option<Name>,
    pub(crate) result_class: Option<Name>,
    pub(crate) role: Option<String>,
    pub(crate) result_role: Option<String>,
}

impl OwnedFilter {
    /// As the repository's filter; for References, ResultClass names the association class.
    fn borrowed(&self, references: bool) -> AssociationFilter<'_> {
        if references {
            AssociationFilter {
                assoc_class: self.result_class.as_ref().map(Name::as_str),
                result_class: None,
                role: self.role.as_deref(),
                result_role: None,
            }
        } else {
            AssociationFilter {
                assoc_class: self.assoc_class.as_ref().map(Name::as_str),
                result_class: self.result_class.as_ref().map(Name::as_str),
                role: self.role.as_deref(),
                result_role: self.result_role.as_deref(),
            }
        }
    }
}

/// True when a reference value points at `target` (in `namespace` when it names none).
fn points_at(value: Option<&Value>, target: &InstancePath, namespace: &str) -> bool {
    let Some(Value::Reference(path)) = value else {
        return false;
    };
    let ObjectPath::Instance(path) = path.as_ref() else {
        return false;
    };
    let same_namespace = path.namespace.as_deref().is_none_or(|n| {
        crate::cimom::unaliased(n).eq_ignore_ascii_case(crate::cimom::unaliased(namespace))
    });
    same_namespace && same_keys(path, target)
}

/// A client's instance (CreateInstance, ModifyInstance) checked against `class`, and copied
/// with the class's spelling of its name and of every property's, in the class's order, and
/// with every property it lacks when `defaults` (a new instance, DSP0200 CreateInstance): the
/// class's default, or NULL, so that the instance shows every property of its class as
/// OpenPegasus's repository shows them (sblim wbemcli's `mi` sets only properties the
/// instance shows); a property the client sent, even as NULL, keeps what it sent:
/// names are case-insensitive (DSP0004), and what is stored is shown to every client later
/// as the schema spells it, not as one client wrote it. (A provider may still add
/// properties of its own making, after these.)
fn declared_instance(
    class: &cim_schema::model::Class,
    instance: &Instance,
    defaults: bool,
) -> Result<Instance, OperationError> {
    check_properties(class, instance)?;
    let properties = class
        .properties
        .values()
        .filter_map(|property| {
            let taken = match instance.property(property.name.as_str()) {
                Some(given) => {
                    let mut given = given.clone();
                    given.name = property.name.clone();
                    given
                }
                None if defaults => {
                    let mut default = cim_schema::model::Property::new(
                        property.name.clone(),
                        property.cim_type.clone(),
                        property.value.clone(),
                    );
                    default.is_array = property.is_array;
                    default.embedded_object = property.embedded_object;
                    default
                }
                None => return None,
            };
            Some((property.name.clone(), taken))
        })
        .collect();
    Ok(Instance {
        class_name: class.name.clone(),
        qualifiers: instance.qualifiers.clone(),
        properties,
    })
}

/// Every property of `instance` exists in `class` with the declared type.
fn check_properties(
    class: &cim_schema::model::Class,
    instance: &Instance,
) -> Result<(), OperationError> {
    for property in instance.properties.values() {
        let declared = class.property(property.name.as_str()).ok_or_else(|| {
            OperationError::NoSuchProperty(format!(
                "class {} has no property {}",
                class.name, property.name
            ))
        })?;
        let same_type = if declared.cim_type.is_reference() {
            property.cim_type.is_reference()
        } else {
            declared.cim_type == property.cim_type
        };
        if !same_type || declared.is_array != property.is_array {
            return Err(OperationError::TypeMismatch(format!(
                "property {} of class {} is {}{}",
                declared.name,
                class.name,
                declared.cim_type.as_str(),
                if declared.is_array { "[]" } else { "" }
            )));
        }
    }
    Ok(())
}

/// True when `text` could be a class name (`IPARAMVALUE` given as `VALUE` by some clients).
fn is_class_name(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// A repository error as the operation's CIM error; `get_class` makes a missing class
/// CIM_ERR_NOT_FOUND, as DSP0200 says for GetClass.
pub(crate) fn repository_error(error: RepositoryError, get_class: bool) -> OperationError {
    match error {
        RepositoryError::InvalidNamespace(namespace) => OperationError::InvalidNamespace(namespace),
        RepositoryError::InvalidClass(class) if get_class => {
            OperationError::NotFound(format!("class {class} does not exist"))
        }
        RepositoryError::InvalidClass(class) => OperationError::InvalidClass(class),
        RepositoryError::NotFound(what) => OperationError::NotFound(what),
        // The schema is read-only while serving and was checked when it was loaded: these
        // come only from changes or from instances, which the repository does not serve here.
        other @ (RepositoryError::NamespaceNotEmpty(_)
        | RepositoryError::AlreadyExists(_)
        | RepositoryError::InvalidSuperclass { .. }
        | RepositoryError::InvalidQualifier(_)
        | RepositoryError::ClassHasChildren(_)
        | RepositoryError::ClassHasInstances(_)
        | RepositoryError::NoSuchProperty { .. }
        | RepositoryError::TypeMismatch { .. }
        | RepositoryError::NullKey { .. }
        | RepositoryError::AbstractClass(_)
        | RepositoryError::OverrideDisabled { .. }
        | RepositoryError::InvalidReference { .. }
        | RepositoryError::Invalid(_)) => {
            tracing::warn!(error = %other, "repository error");
            OperationError::Failed("the class repository could not answer".into())
        }
    }
}
