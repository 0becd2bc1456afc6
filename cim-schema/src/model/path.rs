//! Object paths: class paths and instance paths with namespace, host and keybindings
//! (DSP0004 8.2, DSP0201 5.3). Their WBEM URI form (DSP0207) is in [`super::uri`].

use super::name::Name;
use super::value::Value;

/// The path of a class or of an instance.
#[derive(Clone, Debug, PartialEq)]
pub enum ObjectPath {
    /// A class path.
    Class(ClassPath),
    /// An instance path.
    Instance(InstancePath),
}

impl ObjectPath {
    /// The class named by the path (the creation class, for an instance).
    pub fn class_name(&self) -> &Name {
        match self {
            ObjectPath::Class(path) => &path.class_name,
            ObjectPath::Instance(path) => &path.class_name,
        }
    }

    /// The namespace, if the path has one.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            ObjectPath::Class(path) => path.namespace.as_deref(),
            ObjectPath::Instance(path) => path.namespace.as_deref(),
        }
    }

    /// The host (`host[:port]`), if the path has one.
    pub fn host(&self) -> Option<&str> {
        match self {
            ObjectPath::Class(path) => path.host.as_deref(),
            ObjectPath::Instance(path) => path.host.as_deref(),
        }
    }
}

/// The path of a class: `//host/root/cimv2:CIM_System`.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassPath {
    /// The host (`host[:port]`), or `None` for a local path.
    pub host: Option<String>,
    /// The namespace (`root/cimv2`), or `None` for a path relative to one.
    pub namespace: Option<String>,
    /// The class name.
    pub class_name: Name,
}

impl ClassPath {
    /// A class path with neither host nor namespace.
    pub fn new(class_name: impl Into<Name>) -> ClassPath {
        ClassPath {
            host: None,
            namespace: None,
            class_name: class_name.into(),
        }
    }
}

/// The path of an instance: its creation class and the values of its keys.
#[derive(Clone, Debug, PartialEq)]
pub struct InstancePath {
    /// The host (`host[:port]`), or `None` for a local path.
    pub host: Option<String>,
    /// The namespace (`root/cimv2`), or `None` for a path relative to one.
    pub namespace: Option<String>,
    /// The creation class.
    pub class_name: Name,
    /// The key property values; empty for a keyless singleton.
    pub keybindings: Vec<KeyBinding>,
}

impl InstancePath {
    /// An instance path with neither host nor namespace nor keys.
    pub fn new(class_name: impl Into<Name>) -> InstancePath {
        InstancePath {
            host: None,
            namespace: None,
            class_name: class_name.into(),
            keybindings: Vec::new(),
        }
    }

    /// Builder: adds a keybinding.
    pub fn with_key(mut self, name: impl Into<Name>, value: impl Into<Value>) -> InstancePath {
        self.keybindings.push(KeyBinding {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    /// Builder: sets the namespace.
    pub fn in_namespace(mut self, namespace: impl Into<String>) -> InstancePath {
        self.namespace = Some(namespace.into());
        self
    }

    /// The value of the key of that name.
    pub fn key(&self, name: &str) -> Option<&Value> {
        self.keybindings
            .iter()
            .find(|k| k.name.matches(name))
            .map(|k| &k.value)
    }

    /// True when both paths name the same instance: same class and the same keys with values
    /// of the same meaning ([`key_values_match`]), in any order (names case-insensitive). Host
    /// and namespace are compared only when both paths have them.
    pub fn same_instance(&self, other: &InstancePath) -> bool {
        self.class_name == other.class_name
            && same_location(self.namespace.as_deref(), other.namespace.as_deref())
            && same_location(self.host.as_deref(), other.host.as_deref())
            && same_keys(&self.keybindings, other)
    }
}

/// True when two keybinding values name the same thing, whatever variant each was decoded as
/// (a keybinding without a `TYPE` decodes as `uint64`, `sint64`, `real64`, `string`):
///
/// - integers of any widths with the same value;
/// - `real32` and `real64` with the same value;
/// - a string and a `char16` or `datetime` of that text;
/// - references to the same object: the same class, host and namespace compared only when both
///   have them (case-insensitive, without leading `/`), the same keys by this rule;
/// - otherwise, equal values.
///
/// Every comparison of instance paths (the model's [`InstancePath::same_instance`], the
/// repository's lookups) uses this one rule.
pub fn key_values_match(a: &Value, b: &Value) -> bool {
    if let (Some(a), Some(b)) = (a.as_integer(), b.as_integer()) {
        return a == b;
    }
    match (a, b) {
        (Value::Reference(a), Value::Reference(b)) => same_object(a, b),
        (Value::Real32(a), Value::Real64(b)) | (Value::Real64(b), Value::Real32(a)) => {
            f64::from(*a) == *b
        }
        (Value::String(s), Value::Char16(c)) | (Value::Char16(c), Value::String(s)) => {
            let mut chars = s.chars();
            matches!((chars.next(), chars.next()), (Some(only), None) if c.to_char() == Some(only))
        }
        (Value::String(s), Value::Datetime(d)) | (Value::Datetime(d), Value::String(s)) => {
            s == d.as_str()
        }
        (a, b) => a == b,
    }
}

/// True when two object paths name the same object (see [`key_values_match`]).
fn same_object(a: &ObjectPath, b: &ObjectPath) -> bool {
    a.class_name() == b.class_name()
        && same_location(a.namespace(), b.namespace())
        && same_location(a.host(), b.host())
        && match (a, b) {
            (ObjectPath::Class(_), ObjectPath::Class(_)) => true,
            (ObjectPath::Instance(a), ObjectPath::Instance(b)) => same_keys(&a.keybindings, b),
            _ => false,
        }
}

/// The same number of keys, each in `other` with a value of the same meaning.
fn same_keys(keys: &[KeyBinding], other: &InstancePath) -> bool {
    keys.len() == other.keybindings.len()
        && keys.iter().all(|k| {
            other
                .key(k.name.as_str())
                .is_some_and(|v| key_values_match(&k.value, v))
        })
}

/// Hosts or namespaces: equal ignoring case and leading slashes, or either one absent.
fn same_location(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a
            .trim_start_matches('/')
            .eq_ignore_ascii_case(b.trim_start_matches('/')),
        _ => true,
    }
}

/// One key of an instance path.
///
/// The value is a scalar: string, boolean, a number, char16, datetime or a reference. A
/// keybinding decoded from CIM-XML without a `TYPE` attribute has the widest type its text
/// allows: `sint64` for a negative integer, `uint64` for another integer, `real64` for a real.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyBinding {
    /// The key property's name.
    pub name: Name,
    /// Its value.
    pub value: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Char16, Datetime};

    fn reference(path: InstancePath) -> Value {
        Value::Reference(Box::new(ObjectPath::Instance(path)))
    }

    #[test]
    fn key_values_compare_by_meaning() {
        assert!(key_values_match(&Value::Uint64(7), &Value::Uint16(7)));
        assert!(key_values_match(&Value::Sint64(-1), &Value::Sint8(-1)));
        assert!(!key_values_match(&Value::Uint64(7), &Value::from("7")));
        assert!(key_values_match(&Value::Real32(0.5), &Value::Real64(0.5)));
        assert!(key_values_match(
            &Value::from("x"),
            &Value::Char16(Char16::from('x'))
        ));
        let text = "20240102030405.000000+000";
        let datetime = Value::Datetime(Datetime::parse(text).unwrap());
        assert!(key_values_match(&datetime, &Value::from(text)));
        assert!(!key_values_match(&Value::from("X"), &Value::from("x")));
    }

    #[test]
    fn nested_reference_keys_compare_by_meaning() {
        let typed = InstancePath::new("CIM_Outer").with_key(
            "Inner",
            reference(InstancePath::new("CIM_Inner").with_key("Id", 5u16)),
        );
        let untyped = InstancePath::new("cim_outer")
            .with_key(
                "inner",
                reference(
                    InstancePath::new("CIM_Inner")
                        .with_key("ID", 5u64)
                        .in_namespace("/root/cimv2"),
                ),
            )
            .in_namespace("root/cimv2");
        assert!(typed.same_instance(&untyped));
        assert!(untyped.same_instance(&typed));
        let other = InstancePath::new("CIM_Outer").with_key(
            "Inner",
            reference(InstancePath::new("CIM_Inner").with_key("Id", 6u64)),
        );
        assert!(!typed.same_instance(&other));
    }
}
