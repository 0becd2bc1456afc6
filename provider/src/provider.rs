//! The instance provider trait: where instances come from. The object manager dispatches every
//! instance operation to the provider registered for the instance's creation class and applies
//! the DSP0200 options (DeepInheritance, LocalOnly, PropertyList, IncludeClassOrigin,
//! IncludeQualifiers) itself, uniformly, to whatever the provider returns.

use std::sync::Arc;

use cim_schema::model::{Instance, InstancePath, Method, Name, ObjectPath, Value};

use crate::error::OperationError;

/// A lazily produced sequence of instances with their paths (host and namespace may be left
/// out; the object manager fills them). Lazy so that a large enumeration streams through the
/// server with bounded memory. The instances are shared: a provider that keeps its instances
/// hands out references to them, not copies, and the object manager copies one only when the
/// request's options change it (see [`crate::cimom::ObjectManager::shape`]).
pub type Instances =
    Box<dyn Iterator<Item = Result<(InstancePath, Arc<Instance>), OperationError>> + Send>;

/// Who asks, and in which namespace.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The authenticated principal's name (user name or certificate common name).
    pub principal: Arc<str>,
    /// Its role (a provider lets FULL_ADMIN act on what other users own).
    pub role: crate::auth::Role,
    /// The namespace of the operation, as the object manager spells it (`root/interop`).
    pub namespace: Arc<str>,
}

impl RequestContext {
    /// The context of `principal`'s request in `namespace`.
    pub fn new(principal: &crate::auth::Principal, namespace: Arc<str>) -> RequestContext {
        RequestContext {
            principal: Arc::from(principal.name.as_str()),
            role: principal.role,
            namespace,
        }
    }
}

/// The result of an extrinsic method.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MethodOutput {
    /// The return value (NULL when `None`).
    pub return_value: Option<Value>,
    /// The output parameters.
    pub out_params: Vec<(Name, Option<Value>)>,
}

/// Serves the instances of one or more classes. Every method but [`InstanceProvider::enumerate`]
/// has a default: [`InstanceProvider::get`] searches the enumeration, the others answer
/// CIM_ERR_NOT_SUPPORTED.
pub trait InstanceProvider: Send + Sync {
    /// Every instance whose creation class is exactly `class`.
    fn enumerate(
        &self,
        context: &RequestContext,
        class: &Name,
    ) -> Result<Instances, OperationError>;

    /// The instance at `path` (its class is `path.class_name`), or CIM_ERR_NOT_FOUND.
    fn get(
        &self,
        context: &RequestContext,
        path: &InstancePath,
    ) -> Result<Instance, OperationError> {
        for item in self.enumerate(context, &path.class_name)? {
            let (candidate, instance) = item?;
            if same_keys(&candidate, path) {
                return Ok(Arc::unwrap_or_clone(instance));
            }
        }
        Err(not_found(path))
    }

    /// CreateInstance: stores `instance` and returns its path.
    fn create(
        &self,
        context: &RequestContext,
        instance: Instance,
    ) -> Result<InstancePath, OperationError> {
        let _ = (context, instance);
        Err(OperationError::NotSupported(
            "this class does not support CreateInstance".into(),
        ))
    }

    /// ModifyInstance: replaces the properties of `property_list` (all when `None`) of the
    /// instance at `path` by those of `instance`.
    fn modify(
        &self,
        context: &RequestContext,
        path: &InstancePath,
        instance: Instance,
        property_list: Option<&[Name]>,
    ) -> Result<(), OperationError> {
        let _ = (context, path, instance, property_list);
        Err(OperationError::NotSupported(
            "this class does not support ModifyInstance".into(),
        ))
    }

    /// DeleteInstance.
    fn delete(&self, context: &RequestContext, path: &InstancePath) -> Result<(), OperationError> {
        let _ = (context, path);
        Err(OperationError::NotSupported(
            "this class does not support DeleteInstance".into(),
        ))
    }

    /// InvokeMethod on an instance or (static methods) a class; `params` are typed against the
    /// method's declaration and checked for `In` already.
    fn invoke(
        &self,
        context: &RequestContext,
        target: &ObjectPath,
        method: &Method,
        params: Vec<(Name, Option<Value>)>,
    ) -> Result<MethodOutput, OperationError> {
        let _ = (context, target, params);
        Err(OperationError::NotSupported(format!(
            "method {} is not supported by this provider",
            method.name
        )))
    }
}

/// True when the two paths name the same instance: same class and key values of the same
/// meaning (see [`cim_schema::model::key_values_match`]: a reference key without host or
/// namespace matches one with them), ignoring the paths' own host and namespace (the object
/// manager has already matched the namespace).
pub fn same_keys(left: &InstancePath, right: &InstancePath) -> bool {
    left.class_name == right.class_name
        && left.keybindings.len() == right.keybindings.len()
        && left.keybindings.iter().all(|k| {
            right
                .key(k.name.as_str())
                .is_some_and(|v| cim_schema::model::key_values_match(&k.value, v))
        })
}

/// CIM_ERR_NOT_FOUND for an instance path.
pub fn not_found(path: &InstancePath) -> OperationError {
    OperationError::NotFound(format!("no instance {}", path_text(path)))
}

/// The path as text for descriptions: its WBEM URI form, without the `/:` that form puts
/// before a path with no namespace.
pub fn path_text(path: &InstancePath) -> String {
    let text = path.to_string();
    match text.strip_prefix("/:") {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}
