//! Qualifiers and qualifier declarations (DSP0004 5.6).

use indexmap::IndexMap;

use super::element::Class;
use super::name::{Name, NameKey};
use super::value::{CimType, Value};

/// The flavors of a qualifier (DSP0004 5.6.1.3): how it propagates and whether it may be
/// overridden. Defaults: EnableOverride, ToSubclass, not Translatable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flavor {
    /// EnableOverride (true) or DisableOverride (false): may a subclass change the value?
    pub overridable: bool,
    /// ToSubclass (true) or Restricted (false): does the qualifier propagate to subclasses and
    /// overriding elements?
    pub to_subclass: bool,
    /// Translatable: may the value be localized?
    pub translatable: bool,
    /// ToInstance (deprecated): does the qualifier propagate to instances?
    pub to_instance: bool,
}

impl Default for Flavor {
    fn default() -> Self {
        Flavor {
            overridable: true,
            to_subclass: true,
            translatable: false,
            to_instance: false,
        }
    }
}

/// Where a qualifier may be used (DSP0004 5.6.1.2), as a set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scope {
    /// `class`
    pub class: bool,
    /// `association`
    pub association: bool,
    /// `indication`
    pub indication: bool,
    /// `property`
    pub property: bool,
    /// `reference`
    pub reference: bool,
    /// `method`
    pub method: bool,
    /// `parameter`
    pub parameter: bool,
}

impl Scope {
    /// Every scope (`Scope(any)`).
    pub const ANY: Scope = Scope {
        class: true,
        association: true,
        indication: true,
        property: true,
        reference: true,
        method: true,
        parameter: true,
    };

    /// True when every scope is set.
    pub fn is_any(&self) -> bool {
        *self == Scope::ANY
    }
}

/// A qualifier declaration (`Qualifier Key : boolean = false, Scope(property, reference),
/// Flavor(DisableOverride);`).
#[derive(Clone, Debug, PartialEq)]
pub struct QualifierDeclaration {
    /// The qualifier's name.
    pub name: Name,
    /// The type of its value.
    pub cim_type: CimType,
    /// True for an array-valued qualifier.
    pub is_array: bool,
    /// The fixed size of an array-valued qualifier, if declared.
    pub array_size: Option<u32>,
    /// The default value, or NULL.
    pub default: Option<Value>,
    /// Where it may be used.
    pub scope: Scope,
    /// The default flavors of its uses.
    pub flavor: Flavor,
}

/// A qualifier applied to a class, property, method or parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct Qualifier {
    /// The qualifier's name.
    pub name: Name,
    /// Its type (from the declaration).
    pub cim_type: CimType,
    /// True for an array-valued qualifier.
    pub is_array: bool,
    /// Its value, or NULL.
    pub value: Option<Value>,
    /// Its flavors: the declaration's defaults with any flavor given at the use applied (the
    /// DSP0201 defaults for one decoded from CIM-XML). A class stored in a repository has its
    /// qualifiers' flavors narrowed to what the declarations allow.
    pub flavor: Flavor,
    /// True when the element got this qualifier by propagation from a superclass, not by its
    /// own declaration.
    pub propagated: bool,
}

impl Qualifier {
    /// A qualifier with the default flavors, not propagated.
    pub fn new(name: impl Into<Name>, cim_type: CimType, value: Option<Value>) -> Qualifier {
        let is_array = value.as_ref().is_some_and(Value::is_array);
        Qualifier {
            name: name.into(),
            cim_type,
            is_array,
            value,
            flavor: Flavor::default(),
            propagated: false,
        }
    }
}

/// The qualifiers of one element, in declaration order, looked up case-insensitively.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QualifierList(pub IndexMap<Name, Qualifier>);

impl QualifierList {
    /// An empty list.
    pub fn new() -> QualifierList {
        QualifierList(IndexMap::new())
    }

    /// The qualifier of that name.
    pub fn get(&self, name: &str) -> Option<&Qualifier> {
        self.0.get(&NameKey(name))
    }

    /// Adds a qualifier, replacing one of the same name (keeping its position).
    pub fn insert(&mut self, qualifier: Qualifier) {
        self.0.insert(qualifier.name.clone(), qualifier);
    }

    /// The value of a boolean qualifier: `true` when present with TRUE, or present as a scalar
    /// boolean with no value (DSP0004: a boolean qualifier named without a value, `[Key]`, is
    /// TRUE); `false` when absent, FALSE, or not a scalar boolean.
    pub fn is_true(&self, name: &str) -> bool {
        self.get(name).is_some_and(|q| match &q.value {
            Some(value) => value.as_bool().unwrap_or(false),
            None => q.cim_type == CimType::Boolean && !q.is_array,
        })
    }

    /// The qualifiers in order.
    pub fn iter(&self) -> impl Iterator<Item = &Qualifier> {
        self.0.values()
    }

    /// How many qualifiers there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The kinds of element a qualifier can be applied to, for checking a declaration's scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QualifierTarget {
    /// An ordinary class.
    Class,
    /// An association class.
    Association,
    /// An indication class.
    Indication,
    /// A property that is not a reference.
    Property,
    /// A reference property.
    Reference,
    /// A method.
    Method,
    /// A method parameter.
    Parameter,
    /// An instance or one of its property values: DSP0004 scopes do not cover them, so any
    /// declared qualifier is accepted.
    Instance,
}

impl QualifierTarget {
    /// The kind of a class for the scope check: an association when it says `Association` or
    /// its superclass is one, else an indication when it says `Indication` or its superclass is
    /// one, else an ordinary class. The meta qualifiers propagate and may not be overridden, so
    /// a subclass is of its superclass's kind without restating them. The MOF compiler (which
    /// reads the class's own qualifiers before typing them) and the repository's check both
    /// decide here.
    pub fn of_class(
        own_association: bool,
        own_indication: bool,
        superclass: Option<&Class>,
    ) -> QualifierTarget {
        if own_association || superclass.is_some_and(Class::is_association) {
            QualifierTarget::Association
        } else if own_indication || superclass.is_some_and(Class::is_indication) {
            QualifierTarget::Indication
        } else {
            QualifierTarget::Class
        }
    }

    /// True when a declaration's scope allows this kind of element. An association or an
    /// indication also accepts a qualifier scoped to classes, as they are classes.
    pub fn allowed_by(self, scope: &Scope) -> bool {
        match self {
            QualifierTarget::Class => scope.class,
            QualifierTarget::Association => scope.association || scope.class,
            QualifierTarget::Indication => scope.indication || scope.class,
            QualifierTarget::Property => scope.property,
            QualifierTarget::Reference => scope.reference,
            QualifierTarget::Method => scope.method,
            QualifierTarget::Parameter => scope.parameter,
            QualifierTarget::Instance => true,
        }
    }

    /// The kind with its article, for messages: "an association".
    pub fn describe(self) -> &'static str {
        match self {
            QualifierTarget::Class => "a class",
            QualifierTarget::Association => "an association",
            QualifierTarget::Indication => "an indication",
            QualifierTarget::Property => "a property",
            QualifierTarget::Reference => "a reference",
            QualifierTarget::Method => "a method",
            QualifierTarget::Parameter => "a parameter",
            QualifierTarget::Instance => "an instance",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_boolean_qualifier_without_value_is_true() {
        let mut list = QualifierList::new();
        list.insert(Qualifier::new("Key", CimType::Boolean, None));
        list.insert(Qualifier::new(
            "Off",
            CimType::Boolean,
            Some(Value::Boolean(false)),
        ));
        list.insert(Qualifier::new(
            "On",
            CimType::Boolean,
            Some(Value::Boolean(true)),
        ));
        list.insert(Qualifier::new("Note", CimType::String, None));
        assert!(list.is_true("key"));
        assert!(list.is_true("On"));
        assert!(!list.is_true("Off"));
        assert!(!list.is_true("Note"));
        assert!(!list.is_true("Absent"));
    }

    #[test]
    fn associations_and_indications_accept_class_scoped_qualifiers() {
        let class_only = Scope {
            class: true,
            ..Scope::default()
        };
        assert!(QualifierTarget::Association.allowed_by(&class_only));
        assert!(QualifierTarget::Indication.allowed_by(&class_only));
        assert!(!QualifierTarget::Property.allowed_by(&class_only));
        let association_only = Scope {
            association: true,
            ..Scope::default()
        };
        assert!(!QualifierTarget::Class.allowed_by(&association_only));
        assert!(QualifierTarget::Instance.allowed_by(&Scope::default()));
        assert!(QualifierTarget::Reference.allowed_by(&Scope::ANY));
    }
}
