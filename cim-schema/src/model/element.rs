//! Classes, instances, properties, methods and parameters (DSP0004 5.1).

use indexmap::IndexMap;

use super::name::{Name, NameKey};
use super::qualifier::QualifierList;
use super::value::{CimType, EmbeddedKind, Value};

/// A property of a class (its declaration, with a default value) or of an instance (its value).
/// Reference properties are properties whose type is [`CimType::Reference`].
#[derive(Clone, Debug, PartialEq)]
pub struct Property {
    /// The property's name.
    pub name: Name,
    /// Its type; for an array, the element type.
    pub cim_type: CimType,
    /// True for an array property.
    pub is_array: bool,
    /// The fixed size of an array property (`uint8 Data[16]`), if declared.
    pub array_size: Option<u32>,
    /// The value (instance) or default value (class), or NULL.
    pub value: Option<Value>,
    /// Its qualifiers.
    pub qualifiers: QualifierList,
    /// The class that first declared it (the DSP0201 `CLASSORIGIN`), when known.
    pub class_origin: Option<Name>,
    /// True when inherited from a superclass without being overridden here.
    pub propagated: bool,
    /// For a string property that carries an embedded object or instance: which.
    pub embedded_object: Option<EmbeddedKind>,
}

impl Property {
    /// A scalar or array property with a value (or NULL), no qualifiers and no class origin.
    /// `is_array` follows the value; set it by hand for a NULL array.
    pub fn new(name: impl Into<Name>, cim_type: CimType, value: Option<Value>) -> Property {
        let is_array = value.as_ref().is_some_and(Value::is_array);
        Property {
            name: name.into(),
            cim_type,
            is_array,
            array_size: None,
            value,
            qualifiers: QualifierList::new(),
            class_origin: None,
            propagated: false,
            embedded_object: None,
        }
    }

    /// True when the property carries the `Key` qualifier.
    pub fn is_key(&self) -> bool {
        self.qualifiers.is_true("Key")
    }
}

/// A method parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct Parameter {
    /// The parameter's name.
    pub name: Name,
    /// Its type; for an array, the element type.
    pub cim_type: CimType,
    /// True for an array parameter.
    pub is_array: bool,
    /// The fixed size of an array parameter, if declared.
    pub array_size: Option<u32>,
    /// Its qualifiers (`In`, `Out`, `EmbeddedInstance`, ...).
    pub qualifiers: QualifierList,
    /// For a string parameter that carries an embedded object or instance: which.
    pub embedded_object: Option<EmbeddedKind>,
}

/// A method of a class.
#[derive(Clone, Debug, PartialEq)]
pub struct Method {
    /// The method's name.
    pub name: Name,
    /// The type of its return value.
    pub return_type: CimType,
    /// Its parameters in declaration order.
    pub parameters: Vec<Parameter>,
    /// Its qualifiers.
    pub qualifiers: QualifierList,
    /// The class that first declared it, when known.
    pub class_origin: Option<Name>,
    /// True when inherited from a superclass without being overridden here.
    pub propagated: bool,
}

impl Method {
    /// The parameter of that name.
    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters.iter().find(|p| p.name.matches(name))
    }
}

/// A CIM class: its own declarations, or (once resolved by a repository) also what it inherits.
#[derive(Clone, Debug, PartialEq)]
pub struct Class {
    /// The class name (`CIM_ComputerSystem`).
    pub name: Name,
    /// The direct superclass, if any.
    pub superclass: Option<Name>,
    /// The class qualifiers (`Abstract`, `Association`, `Indication`, `Description`, ...).
    pub qualifiers: QualifierList,
    /// The properties, in declaration order (inherited first once resolved).
    pub properties: IndexMap<Name, Property>,
    /// The methods, in declaration order (inherited first once resolved).
    pub methods: IndexMap<Name, Method>,
}

impl Class {
    /// An empty class.
    pub fn new(name: impl Into<Name>, superclass: Option<Name>) -> Class {
        Class {
            name: name.into(),
            superclass,
            qualifiers: QualifierList::new(),
            properties: IndexMap::new(),
            methods: IndexMap::new(),
        }
    }

    /// The property of that name.
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties.get(&NameKey(name))
    }

    /// The method of that name.
    pub fn method(&self, name: &str) -> Option<&Method> {
        self.methods.get(&NameKey(name))
    }

    /// True for an association (`Association` qualifier).
    pub fn is_association(&self) -> bool {
        self.qualifiers.is_true("Association")
    }

    /// True for an indication class (`Indication` qualifier).
    pub fn is_indication(&self) -> bool {
        self.qualifiers.is_true("Indication")
    }

    /// True for an abstract class (`Abstract` qualifier).
    pub fn is_abstract(&self) -> bool {
        self.qualifiers.is_true("Abstract")
    }

    /// The key properties, in order.
    pub fn keys(&self) -> impl Iterator<Item = &Property> {
        self.properties.values().filter(|p| p.is_key())
    }

    /// Adds a property, replacing one of the same name.
    pub fn add_property(&mut self, property: Property) {
        self.properties.insert(property.name.clone(), property);
    }
}

/// A CIM instance: a class name and property values. Its path (keys, namespace, host) is kept
/// beside it where needed, as DSP0201 does (`VALUE.NAMEDINSTANCE`).
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// The instance's creation class.
    pub class_name: Name,
    /// Instance qualifiers (rare; DSP0201 allows them).
    pub qualifiers: QualifierList,
    /// The property values, in order.
    pub properties: IndexMap<Name, Property>,
}

impl Instance {
    /// An instance with no properties.
    pub fn new(class_name: impl Into<Name>) -> Instance {
        Instance {
            class_name: class_name.into(),
            qualifiers: QualifierList::new(),
            properties: IndexMap::new(),
        }
    }

    /// The property of that name.
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties.get(&NameKey(name))
    }

    /// The value of that property, if it is present and not NULL.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.property(name).and_then(|p| p.value.as_ref())
    }

    /// Sets a property, replacing one of the same name (keeping its position).
    pub fn set(&mut self, property: Property) {
        self.properties.insert(property.name.clone(), property);
    }

    /// Builder form of [`Instance::set`].
    pub fn with(mut self, property: Property) -> Instance {
        self.set(property);
        self
    }
}
