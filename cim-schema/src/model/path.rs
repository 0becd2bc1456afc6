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

    /// True when both paths name the same instance: same class and the same keys with equal
    /// values, in any order (names case-insensitive). Host and namespace are compared only when
    /// both paths have them.
    pub fn same_instance(&self, other: &InstancePath) -> bool {
        fn both_equal(a: Option<&str>, b: Option<&str>, fold: bool) -> bool {
            match (a, b) {
                (Some(a), Some(b)) if fold => a.eq_ignore_ascii_case(b),
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
        }
        self.class_name == other.class_name
            && both_equal(self.namespace.as_deref(), other.namespace.as_deref(), true)
            && both_equal(self.host.as_deref(), other.host.as_deref(), true)
            && self.keybindings.len() == other.keybindings.len()
            && self
                .keybindings
                .iter()
                .all(|k| other.key(k.name.as_str()) == Some(&k.value))
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
