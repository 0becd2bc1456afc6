//! Static instances held by the repository: created from MOF `instance of` (or CreateInstance),
//! addressed by the path their key properties make.
//!
//! Each namespace keeps its instances in insertion order and indexes them by a canonical form
//! of their path (class name and key values in the class's key order, key values converted to
//! the declared key types), so that adding and finding an instance cost no scan. Paths coming
//! from clients are matched loosely where DSP0201 leaves them loose: key names in any case and
//! order, integer keys of any integer type that holds the value (an untyped CIM-XML KEYVALUE
//! decodes as `uint64`/`sint64`), and references compared by class and keys (by the same rule)
//! regardless of host and namespace, as [`crate::model::key_values_match`] compares them.
//! String key values compare exactly.

use std::fmt::Write as _;

use super::{resolve, Namespace, Repository, RepositoryError};
use crate::model::{
    key_values_match, Char16, CimType, Class, Datetime, Instance, InstancePath, KeyBinding,
    NameKey, ObjectPath, Property, Value,
};

impl Repository {
    /// Adds an instance of an existing, concrete class and returns its path (built from the key
    /// properties in class order, with the namespace set). Every property must exist in the
    /// class with a value of its type; keys must not be NULL (a key the instance omits takes
    /// the class's default value); the path must be new.
    pub fn add_instance(
        &mut self,
        namespace: &str,
        instance: Instance,
    ) -> Result<InstancePath, RepositoryError> {
        let ns = self.namespace_ref(namespace)?;
        let (path, key) = instance_path(ns, namespace, &instance)?;
        if find(ns, &key, &path.keybindings).is_some() {
            return Err(RepositoryError::AlreadyExists(format!("instance {path}")));
        }
        let ns = self.namespace_mut(namespace)?;
        ns.instance_index
            .entry(key)
            .or_default()
            .push(ns.instances.len());
        ns.instances.push((path.clone(), instance));
        Ok(path)
    }

    /// GetInstance: the instance at `path`, with the path the repository built for it. The
    /// path's namespace and host are not compared (the namespace argument chooses).
    pub fn instance_at(
        &self,
        namespace: &str,
        path: &InstancePath,
    ) -> Option<&(InstancePath, Instance)> {
        let ns = self.namespace(namespace)?;
        let index = position(ns, path)?;
        ns.instances.get(index)
    }

    /// The instance at `path` (see [`Repository::instance_at`]).
    pub fn instance(&self, namespace: &str, path: &InstancePath) -> Option<&Instance> {
        self.instance_at(namespace, path)
            .map(|(_, instance)| instance)
    }

    /// EnumerateInstances: the instances of `class`, and with `deep_inheritance` those of its
    /// subclasses too, in the order they were added.
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

    /// ModifyInstance: replaces the instance at `path` with `instance`, which must satisfy its
    /// class as [`Repository::add_instance`] requires and keep the same class and key values.
    pub fn modify_instance(
        &mut self,
        namespace: &str,
        path: &InstancePath,
        instance: Instance,
    ) -> Result<(), RepositoryError> {
        let ns = self.namespace_ref(namespace)?;
        let index =
            position(ns, path).ok_or_else(|| RepositoryError::NotFound(path.to_string()))?;
        let (new_path, key) = instance_path(ns, namespace, &instance)?;
        if find(ns, &key, &new_path.keybindings) != Some(index) {
            return Err(RepositoryError::Invalid(
                "a modified instance must keep its class and key values".to_owned(),
            ));
        }
        let ns = self.namespace_mut(namespace)?;
        if let Some(slot) = ns.instances.get_mut(index) {
            slot.1 = instance;
        }
        Ok(())
    }

    /// DeleteInstance: removes the instance at `path` and returns it.
    pub fn delete_instance(
        &mut self,
        namespace: &str,
        path: &InstancePath,
    ) -> Result<Instance, RepositoryError> {
        let ns = self.namespace_ref(namespace)?;
        let index =
            position(ns, path).ok_or_else(|| RepositoryError::NotFound(path.to_string()))?;
        let ns = self.namespace_mut(namespace)?;
        let (_, instance) = ns.instances.remove(index);
        // Removing shifts the later instances down by one.
        ns.instance_index.retain(|_, bucket| {
            bucket.retain(|i| *i != index);
            for i in bucket.iter_mut() {
                if *i > index {
                    *i -= 1;
                }
            }
            !bucket.is_empty()
        });
        Ok(instance)
    }
}

/// Where the instance at `path` is in `ns.instances`.
fn position(ns: &Namespace, path: &InstancePath) -> Option<usize> {
    let class = ns.classes.get(&path.class_name)?;
    let keys = typed_keys(class, path)?;
    find(ns, &index_key(class, &keys), &keys)
}

/// The stored instance whose index key is `key` and whose keys match `keys` (in class order).
fn find(ns: &Namespace, key: &str, keys: &[KeyBinding]) -> Option<usize> {
    ns.instance_index.get(key)?.iter().copied().find(|&i| {
        ns.instances.get(i).is_some_and(|(stored, _)| {
            stored.keybindings.len() == keys.len()
                && stored
                    .keybindings
                    .iter()
                    .zip(keys)
                    .all(|(a, b)| key_values_match(&a.value, &b.value))
        })
    })
}

/// Checks an instance against its class and builds its path and index key.
fn instance_path(
    ns: &Namespace,
    namespace: &str,
    instance: &Instance,
) -> Result<(InstancePath, String), RepositoryError> {
    let class = ns
        .classes
        .get(&instance.class_name)
        .ok_or_else(|| RepositoryError::InvalidClass(instance.class_name.to_string()))?;
    if class.is_abstract() {
        return Err(RepositoryError::AbstractClass(class.name.to_string()));
    }
    for property in instance.properties.values() {
        check_property(class, property)?;
    }
    let mut path = InstancePath::new(class.name.clone()).in_namespace(namespace);
    for key in class.keys() {
        let value = instance
            .value(key.name.as_str())
            .or(key.value.as_ref())
            .ok_or_else(|| RepositoryError::NullKey {
                class: class.name.to_string(),
                property: key.name.to_string(),
            })?;
        path.keybindings.push(KeyBinding {
            name: key.name.clone(),
            value: value.clone(),
        });
    }
    let key = index_key(class, &path.keybindings);
    Ok((path, key))
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
        Err(RepositoryError::TypeMismatch {
            class: class.name.to_string(),
            property: declared.name.to_string(),
            expected: format!(
                "{}{}",
                declared.cim_type,
                if declared.is_array { "[]" } else { "" }
            ),
        })
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

/// The keys of a path in its class's key order, converted to the declared key types. `None`
/// when the path does not name exactly the class's keys or a value cannot be of its key's type.
fn typed_keys(class: &Class, path: &InstancePath) -> Option<Vec<KeyBinding>> {
    let mut keys = Vec::with_capacity(path.keybindings.len());
    for declared in class.keys() {
        let value = path.key(declared.name.as_str())?;
        keys.push(KeyBinding {
            name: declared.name.clone(),
            value: coerce(&declared.cim_type, value)?,
        });
    }
    (keys.len() == path.keybindings.len()).then_some(keys)
}

/// The index key of an instance: the lower-cased class name and the canonical text of each
/// key value, in class order. Paths of one instance have equal index keys; paths of different
/// instances rarely do (references are indexed without host and namespace), and lookups
/// compare the keys themselves.
fn index_key(class: &Class, keys: &[KeyBinding]) -> String {
    let mut key = class.name.as_str().to_lowercase();
    for binding in keys {
        key.push('\0');
        canonical(&binding.value, &mut key);
    }
    key
}

/// A key value converted to the declared type when it is of another type that represents the
/// same value (an integer of another width, a real32 in a real64, a datetime or char16 given
/// as a string).
fn coerce(declared: &CimType, value: &Value) -> Option<Value> {
    if fits_type(declared, value) {
        return Some(value.clone());
    }
    if declared.is_integer() {
        return Value::from_integer(declared, value.as_integer()?);
    }
    match (declared, value) {
        (CimType::Real64, Value::Real32(v)) => Some(Value::Real64(f64::from(*v))),
        (CimType::Real32, Value::Real64(v)) => {
            // Truncation is the point: the key matches only if nothing was lost.
            #[allow(clippy::cast_possible_truncation)]
            let narrow = *v as f32;
            (f64::from(narrow) == *v).then_some(Value::Real32(narrow))
        }
        (CimType::Datetime, Value::String(s)) => Datetime::parse(s).ok().map(Value::Datetime),
        (CimType::Char16, Value::String(s)) => {
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some(Value::Char16(Char16::from(c))),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Appends a canonical text of a key value: values that [`key_values_match`] takes for the
/// same give equal texts. Integers are their value whatever their width, reals their `real64`
/// value, strings, `char16` and datetimes their text; a reference is its class and keys (names
/// lower-cased, sorted), without host or namespace.
///
/// The `write!`s go to a `String`, which cannot fail, so their results are ignored.
fn canonical(value: &Value, out: &mut String) {
    if let Some(n) = value.as_integer() {
        let _ = write!(out, "int({n})");
        return;
    }
    match value {
        Value::Reference(path) => match path.as_ref() {
            ObjectPath::Class(path) => {
                let _ = write!(out, "class({})", path.class_name.as_str().to_lowercase());
            }
            ObjectPath::Instance(path) => {
                let _ = write!(out, "ref({}", path.class_name.as_str().to_lowercase());
                let mut keys: Vec<(String, &Value)> = path
                    .keybindings
                    .iter()
                    .map(|k| (k.name.as_str().to_lowercase(), &k.value))
                    .collect();
                keys.sort_by(|a, b| a.0.cmp(&b.0));
                for (name, value) in keys {
                    let _ = write!(out, ",{name}=");
                    canonical(value, out);
                }
                out.push(')');
            }
        },
        Value::Real32(v) => canonical_real(f64::from(*v), out),
        Value::Real64(v) => canonical_real(*v, out),
        Value::String(s) => {
            let _ = write!(out, "text({s:?})");
        }
        Value::Char16(c) => match c.to_char() {
            Some(c) => {
                let _ = write!(out, "text({:?})", c.to_string());
            }
            // A lone surrogate matches no string.
            None => {
                let _ = write!(out, "{c:?}");
            }
        },
        Value::Datetime(d) => {
            let _ = write!(out, "text({:?})", d.as_str());
        }
        // Debug spells the variant and the exact value: Boolean(true) differs from
        // String("true").
        other => {
            let _ = write!(out, "{other:?}");
        }
    }
}

/// A real by its value: 0.0 and -0.0 are equal, so they index the same.
fn canonical_real(v: f64, out: &mut String) {
    let v = if v == 0.0 { 0.0 } else { v };
    let _ = write!(out, "real({:x})", v.to_bits());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_keys_convert_to_the_declared_width() {
        assert_eq!(
            coerce(&CimType::Uint16, &Value::Uint64(7)),
            Some(Value::Uint16(7))
        );
        assert_eq!(coerce(&CimType::Uint8, &Value::Sint64(-1)), None);
        assert_eq!(coerce(&CimType::Uint8, &Value::Uint64(256)), None);
        assert_eq!(coerce(&CimType::String, &Value::Uint64(1)), None);
        assert_eq!(
            coerce(&CimType::Real32, &Value::Real64(0.5)),
            Some(Value::Real32(0.5))
        );
        assert_eq!(coerce(&CimType::Real32, &Value::Real64(0.1)), None);
        assert_eq!(
            coerce(&CimType::Char16, &Value::from("x")),
            Some(Value::Char16(Char16::from('x')))
        );
    }

    #[test]
    fn references_compare_by_class_and_keys() {
        let a = InstancePath::new("CIM_A")
            .with_key("Name", "x")
            .with_key("Id", 1u32);
        let b = InstancePath::new("cim_a")
            .with_key("id", 1u32)
            .with_key("NAME", "x")
            .in_namespace("root/cimv2");
        let (mut left, mut right) = (String::new(), String::new());
        canonical(
            &Value::Reference(Box::new(ObjectPath::Instance(a))),
            &mut left,
        );
        canonical(
            &Value::Reference(Box::new(ObjectPath::Instance(b))),
            &mut right,
        );
        assert_eq!(left, right);
        let (mut upper, mut lower) = (String::new(), String::new());
        canonical(&Value::from("X"), &mut upper);
        canonical(&Value::from("x"), &mut lower);
        assert_ne!(upper, lower);
    }
}
