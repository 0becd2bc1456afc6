//! Static instances held by the repository: created from MOF `instance of`, addressed by the
//! path their key properties make.
//!
//! Instances are kept in a list and found by a scan: the repository holds the few static
//! instances a schema declares (profiles, namespaces), not the dynamic ones of providers.

use super::{resolve, Namespace, Repository, RepositoryError};
use crate::model::{CimType, Class, Instance, InstancePath, KeyBinding, NameKey, Property, Value};

impl Repository {
    /// Adds an instance of an existing, concrete class and returns its path (built from the key
    /// properties in class order, with the namespace set). Every property must exist in the
    /// class with a value of its type; keys must not be NULL; the path must be new.
    pub fn add_instance(
        &mut self,
        namespace: &str,
        instance: Instance,
    ) -> Result<InstancePath, RepositoryError> {
        let ns = self.namespace_ref(namespace)?;
        let path = instance_path(ns, namespace, &instance)?;
        if ns
            .instances
            .iter()
            .any(|(existing, _)| existing.same_instance(&path))
        {
            return Err(RepositoryError::AlreadyExists(format!(
                "instance {}",
                describe(&path)
            )));
        }
        self.namespace_mut(namespace)?
            .instances
            .push((path.clone(), instance));
        Ok(path)
    }

    /// The instance at `path` (namespace and host of the path are not compared).
    pub fn instance(&self, namespace: &str, path: &InstancePath) -> Option<&Instance> {
        let ns = self.namespace(namespace)?;
        ns.instances
            .iter()
            .find(|(p, _)| p.same_instance(path))
            .map(|(_, instance)| instance)
    }

    /// The instances of `class`, and with `deep_inheritance` those of its subclasses too.
    pub fn instances<'a>(
        &'a self,
        namespace: &str,
        class: &str,
        deep_inheritance: bool,
    ) -> Result<Vec<&'a (InstancePath, Instance)>, RepositoryError> {
        let ns = self.namespace_ref(namespace)?;
        let Some(class) = ns.classes.get(&NameKey(class)) else {
            return Err(RepositoryError::InvalidClass(class.to_owned()));
        };
        Ok(ns
            .instances
            .iter()
            .filter(|(path, _)| {
                path.class_name == class.name
                    || (deep_inheritance
                        && resolve::is_a(ns, path.class_name.as_str(), class.name.as_str()))
            })
            .collect())
    }

    /// Replaces the instance at `path` with `instance`, whose keys must name the same instance.
    pub fn modify_instance(
        &mut self,
        namespace: &str,
        path: &InstancePath,
        instance: Instance,
    ) -> Result<(), RepositoryError> {
        let ns = self.namespace_ref(namespace)?;
        let new_path = instance_path(ns, namespace, &instance)?;
        if !new_path.same_instance(path) {
            return Err(RepositoryError::Invalid(
                "a modified instance must keep its class and key values".to_owned(),
            ));
        }
        let ns = self.namespace_mut(namespace)?;
        let slot = ns
            .instances
            .iter_mut()
            .find(|(p, _)| p.same_instance(path))
            .ok_or_else(|| RepositoryError::NotFound(describe(path)))?;
        slot.1 = instance;
        Ok(())
    }

    /// Deletes the instance at `path`.
    pub fn delete_instance(
        &mut self,
        namespace: &str,
        path: &InstancePath,
    ) -> Result<Instance, RepositoryError> {
        let ns = self.namespace_mut(namespace)?;
        let index = ns
            .instances
            .iter()
            .position(|(p, _)| p.same_instance(path))
            .ok_or_else(|| RepositoryError::NotFound(describe(path)))?;
        Ok(ns.instances.remove(index).1)
    }
}

/// Checks an instance against its class and builds its path.
fn instance_path(
    ns: &Namespace,
    namespace: &str,
    instance: &Instance,
) -> Result<InstancePath, RepositoryError> {
    let class = ns
        .classes
        .get(&instance.class_name)
        .ok_or_else(|| RepositoryError::InvalidClass(instance.class_name.to_string()))?;
    if class.is_abstract() {
        return Err(RepositoryError::Invalid(format!(
            "class {} is abstract and cannot have instances",
            class.name
        )));
    }
    for property in instance.properties.values() {
        check_property(class, property)?;
    }
    let mut path = InstancePath::new(class.name.clone()).in_namespace(namespace);
    for key in class.keys() {
        let value = instance
            .value(key.name.as_str())
            .or(key.value.as_ref())
            .ok_or_else(|| RepositoryError::Invalid(format!("key {} is NULL", key.name)))?;
        path.keybindings.push(KeyBinding {
            name: key.name.clone(),
            value: value.clone(),
        });
    }
    Ok(path)
}

/// An instance property must be declared by the class, with a value of the declared type.
fn check_property(class: &Class, property: &Property) -> Result<(), RepositoryError> {
    let declared =
        class
            .property(property.name.as_str())
            .ok_or_else(|| RepositoryError::NoSuchProperty {
                class: class.name.to_string(),
                property: property.name.to_string(),
            })?;
    let Some(value) = &property.value else {
        return Ok(());
    };
    let fits = match value {
        Value::Array(items) => {
            declared.is_array
                && items
                    .iter()
                    .flatten()
                    .all(|item| fits_type(&declared.cim_type, item))
        }
        scalar => !declared.is_array && fits_type(&declared.cim_type, scalar),
    };
    if fits {
        Ok(())
    } else {
        Err(RepositoryError::Invalid(format!(
            "property {}.{} is {}{}, and its value is not",
            class.name,
            declared.name,
            declared.cim_type,
            if declared.is_array { "[]" } else { "" }
        )))
    }
}

/// True when a scalar value is of the declared type (references of any class fit a reference).
fn fits_type(declared: &CimType, value: &Value) -> bool {
    match (declared, value) {
        (CimType::Reference(_), Value::Reference(_)) => true,
        (CimType::String, Value::Instance(_) | Value::Class(_)) => true,
        (declared, value) => value.cim_type().as_ref() == Some(declared),
    }
}

/// A short text naming an instance path in errors (its WBEM URI).
fn describe(path: &InstancePath) -> String {
    path.to_string()
}
