//! CIM data types and values (DSP0004 intrinsic types, arrays, NULL, embedded objects).

use std::fmt;

use super::datetime::Datetime;
use super::element::{Class, Instance};
use super::name::Name;
use super::path::ObjectPath;

/// A CIM intrinsic data type (DSP0004 5.2). Arrays are a property of the element that holds the
/// value (`is_array`), not of the type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CimType {
    /// `boolean`
    Boolean,
    /// `uint8`
    Uint8,
    /// `sint8`
    Sint8,
    /// `uint16`
    Uint16,
    /// `sint16`
    Sint16,
    /// `uint32`
    Uint32,
    /// `sint32`
    Sint32,
    /// `uint64`
    Uint64,
    /// `sint64`
    Sint64,
    /// `real32`
    Real32,
    /// `real64`
    Real64,
    /// `char16`: one UCS-2 character.
    Char16,
    /// `string`, also the carrier type of embedded objects and instances.
    String,
    /// `datetime`: a timestamp or an interval.
    Datetime,
    /// `<class> REF`: a reference to an instance of the named class (`None` when the class is not
    /// known, as in an instance's PROPERTY.REFERENCE without REFERENCECLASS).
    Reference(Option<Name>),
}

impl CimType {
    /// The type's DSP0201 `TYPE` attribute spelling (`"uint32"`); `"reference"` for references.
    pub fn as_str(&self) -> &'static str {
        match self {
            CimType::Boolean => "boolean",
            CimType::Uint8 => "uint8",
            CimType::Sint8 => "sint8",
            CimType::Uint16 => "uint16",
            CimType::Sint16 => "sint16",
            CimType::Uint32 => "uint32",
            CimType::Sint32 => "sint32",
            CimType::Uint64 => "uint64",
            CimType::Sint64 => "sint64",
            CimType::Real32 => "real32",
            CimType::Real64 => "real64",
            CimType::Char16 => "char16",
            CimType::String => "string",
            CimType::Datetime => "datetime",
            CimType::Reference(_) => "reference",
        }
    }

    /// Parses a DSP0201 `TYPE` attribute or a MOF type keyword, case-insensitively. References
    /// are not named this way and give `None`, as does any unknown word.
    pub fn from_keyword(word: &str) -> Option<CimType> {
        const TYPES: [(&str, CimType); 14] = [
            ("boolean", CimType::Boolean),
            ("uint8", CimType::Uint8),
            ("sint8", CimType::Sint8),
            ("uint16", CimType::Uint16),
            ("sint16", CimType::Sint16),
            ("uint32", CimType::Uint32),
            ("sint32", CimType::Sint32),
            ("uint64", CimType::Uint64),
            ("sint64", CimType::Sint64),
            ("real32", CimType::Real32),
            ("real64", CimType::Real64),
            ("char16", CimType::Char16),
            ("string", CimType::String),
            ("datetime", CimType::Datetime),
        ];
        TYPES
            .iter()
            .find(|(keyword, _)| keyword.eq_ignore_ascii_case(word))
            .map(|(_, cim_type)| cim_type.clone())
    }

    /// True for the integer types.
    pub fn is_integer(&self) -> bool {
        matches!(
            self,
            CimType::Uint8
                | CimType::Sint8
                | CimType::Uint16
                | CimType::Sint16
                | CimType::Uint32
                | CimType::Sint32
                | CimType::Uint64
                | CimType::Sint64
        )
    }

    /// True for `real32` and `real64`.
    pub fn is_real(&self) -> bool {
        matches!(self, CimType::Real32 | CimType::Real64)
    }

    /// True for references.
    pub fn is_reference(&self) -> bool {
        matches!(self, CimType::Reference(_))
    }
}

impl fmt::Display for CimType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CimType::Reference(Some(class)) => write!(f, "{class} REF"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// Which kind of embedded object a string-typed element carries (the `EmbeddedObject` XML
/// attribute; the `EmbeddedObject` and `EmbeddedInstance` qualifiers in MOF).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EmbeddedKind {
    /// `EmbeddedObject="object"`: a class or an instance.
    Object,
    /// `EmbeddedObject="instance"`: an instance.
    Instance,
}

/// A `char16` value: one UTF-16 code unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Char16(pub u16);

impl Char16 {
    /// The value as a Rust `char`, or `None` for a lone surrogate.
    pub fn to_char(self) -> Option<char> {
        char::from_u32(u32::from(self.0))
    }
}

impl From<char> for Char16 {
    /// Characters outside the Basic Multilingual Plane do not fit and become U+FFFD.
    fn from(c: char) -> Self {
        let code = u32::from(c);
        Char16(u16::try_from(code).unwrap_or(0xFFFD))
    }
}

/// A non-NULL CIM value: a scalar, or an array whose elements may each be NULL.
///
/// NULL itself is `Option::<Value>::None` wherever a value may be absent.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `boolean`
    Boolean(bool),
    /// `uint8`
    Uint8(u8),
    /// `sint8`
    Sint8(i8),
    /// `uint16`
    Uint16(u16),
    /// `sint16`
    Sint16(i16),
    /// `uint32`
    Uint32(u32),
    /// `sint32`
    Sint32(i32),
    /// `uint64`
    Uint64(u64),
    /// `sint64`
    Sint64(i64),
    /// `real32`
    Real32(f32),
    /// `real64`
    Real64(f64),
    /// `char16`
    Char16(Char16),
    /// `string`
    String(String),
    /// `datetime`
    Datetime(Datetime),
    /// A reference: the path of the referenced object.
    Reference(Box<ObjectPath>),
    /// An embedded instance (a string-typed element with `EmbeddedObject`/`EmbeddedInstance`).
    Instance(Box<Instance>),
    /// An embedded class (a string-typed element with `EmbeddedObject="object"`).
    Class(Box<Class>),
    /// An array; every element is a scalar of the element's declared type, or NULL.
    Array(Vec<Option<Value>>),
}

impl Value {
    /// The CIM type of a scalar value; for an array, the type of its first non-NULL element.
    /// Embedded objects are `string`; an empty or all-NULL array gives `None`.
    pub fn cim_type(&self) -> Option<CimType> {
        Some(match self {
            Value::Boolean(_) => CimType::Boolean,
            Value::Uint8(_) => CimType::Uint8,
            Value::Sint8(_) => CimType::Sint8,
            Value::Uint16(_) => CimType::Uint16,
            Value::Sint16(_) => CimType::Sint16,
            Value::Uint32(_) => CimType::Uint32,
            Value::Sint32(_) => CimType::Sint32,
            Value::Uint64(_) => CimType::Uint64,
            Value::Sint64(_) => CimType::Sint64,
            Value::Real32(_) => CimType::Real32,
            Value::Real64(_) => CimType::Real64,
            Value::Char16(_) => CimType::Char16,
            Value::String(_) | Value::Instance(_) | Value::Class(_) => CimType::String,
            Value::Datetime(_) => CimType::Datetime,
            Value::Reference(path) => CimType::Reference(Some(path.class_name().clone())),
            Value::Array(items) => return items.iter().flatten().find_map(Value::cim_type),
        })
    }

    /// True for [`Value::Array`].
    pub fn is_array(&self) -> bool {
        matches!(self, Value::Array(_))
    }

    /// The string, for a `string` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// `n` as a value of the integer type `cim_type`, or `None` when it does not fit or the
    /// type is not an integer type.
    pub fn from_integer(cim_type: &CimType, n: i128) -> Option<Value> {
        Some(match cim_type {
            CimType::Uint8 => Value::Uint8(u8::try_from(n).ok()?),
            CimType::Sint8 => Value::Sint8(i8::try_from(n).ok()?),
            CimType::Uint16 => Value::Uint16(u16::try_from(n).ok()?),
            CimType::Sint16 => Value::Sint16(i16::try_from(n).ok()?),
            CimType::Uint32 => Value::Uint32(u32::try_from(n).ok()?),
            CimType::Sint32 => Value::Sint32(i32::try_from(n).ok()?),
            CimType::Uint64 => Value::Uint64(u64::try_from(n).ok()?),
            CimType::Sint64 => Value::Sint64(i64::try_from(n).ok()?),
            _ => return None,
        })
    }

    /// The value of any integer type widened to `i128`.
    pub fn as_integer(&self) -> Option<i128> {
        Some(match *self {
            Value::Uint8(v) => v.into(),
            Value::Sint8(v) => v.into(),
            Value::Uint16(v) => v.into(),
            Value::Sint16(v) => v.into(),
            Value::Uint32(v) => v.into(),
            Value::Sint32(v) => v.into(),
            Value::Uint64(v) => v.into(),
            Value::Sint64(v) => v.into(),
            _ => return None,
        })
    }

    /// The boolean, for a `boolean` value.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The elements, for an array.
    pub fn as_array(&self) -> Option<&[Option<Value>]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Boolean(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}

macro_rules! value_from_number {
    ($($rust:ty => $variant:ident),* $(,)?) => {
        $(impl From<$rust> for Value {
            fn from(v: $rust) -> Self {
                Value::$variant(v)
            }
        })*
    };
}

value_from_number!(
    u8 => Uint8, i8 => Sint8, u16 => Uint16, i16 => Sint16, u32 => Uint32, i32 => Sint32,
    u64 => Uint64, i64 => Sint64, f32 => Real32, f64 => Real64,
);
