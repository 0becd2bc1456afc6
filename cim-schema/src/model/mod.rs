//! CIM in memory: names, types, values, qualifiers, classes, instances and paths (DSP0004).

pub mod datetime;
pub mod element;
pub mod name;
pub mod path;
pub mod qualifier;
pub mod uri;
pub mod value;

pub use datetime::{Datetime, DatetimeError, DatetimeFields};
pub use element::{Class, Instance, Method, Parameter, Property};
pub use name::{Name, NameKey};
pub use path::{key_values_match, ClassPath, InstancePath, KeyBinding, ObjectPath};
pub use qualifier::{
    Flavor, Qualifier, QualifierDeclaration, QualifierList, QualifierTarget, Scope,
};
pub use value::{Char16, CimType, EmbeddedKind, Value};
