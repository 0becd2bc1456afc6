//! Typing MOF literals: a literal becomes a [`Value`] of the declared type of what it
//! initializes (a qualifier, a property default, an instance value), with range checks.

use std::fmt;

use indexmap::IndexMap;

use super::error::{Fault, MofErrorKind};
use super::parser::{Initializer, Literal, LiteralValue};
use crate::model::{Char16, CimType, Datetime, Name, ObjectPath, Value};

/// What a value initializes, for error messages.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Subject<'a> {
    /// A qualifier (declaration default or use).
    Qualifier(&'a str),
    /// A property (class default or instance value).
    Property(&'a str),
}

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Qualifier(name) => write!(f, "qualifier {name}"),
            Subject::Property(name) => write!(f, "property {name}"),
        }
    }
}

/// The declared shape of what a value initializes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target<'t> {
    pub subject: Subject<'t>,
    pub cim_type: &'t CimType,
    pub is_array: bool,
    pub array_size: Option<u32>,
    /// Accept a scalar for an array by making a one-element array (qualifier uses such as
    /// `ValueMap("1")` are commonly written this way).
    pub wrap_scalar: bool,
}

impl Target<'_> {
    fn expected(&self) -> String {
        if self.is_array {
            format!("{}[]", self.cim_type)
        } else {
            self.cim_type.to_string()
        }
    }

    fn mismatch(&self, offset: usize, found: &'static str) -> Fault {
        Fault::new(
            offset,
            MofErrorKind::TypeMismatch {
                what: self.subject.to_string(),
                expected: self.expected(),
                found,
            },
        )
    }
}

/// Aliases defined so far (`$name` to the path of the aliased instance or class).
pub(crate) type Aliases = IndexMap<Name, ObjectPath>;

/// Types an initializer for `target`; NULL gives `None`.
pub(crate) fn convert(
    initializer: Initializer<'_>,
    target: &Target<'_>,
    aliases: &Aliases,
) -> Result<Option<Value>, Fault> {
    match initializer {
        Initializer::Array { items, offset } => {
            if !target.is_array {
                return Err(target.mismatch(offset, "an array"));
            }
            if let Some(size) = target.array_size {
                if items.len() > size as usize {
                    return Err(Fault::new(
                        offset,
                        MofErrorKind::ArraySize {
                            what: target.subject.to_string(),
                            size,
                            found: items.len(),
                        },
                    ));
                }
            }
            let values = items
                .into_iter()
                .map(|item| scalar(item, target, aliases))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(Value::Array(values)))
        }
        Initializer::Scalar(literal) if target.is_array => {
            if literal.value == LiteralValue::Null {
                Ok(None)
            } else if target.wrap_scalar {
                Ok(Some(Value::Array(vec![scalar(literal, target, aliases)?])))
            } else {
                Err(target.mismatch(literal.offset, literal.value.describe()))
            }
        }
        Initializer::Scalar(literal) => scalar(literal, target, aliases),
    }
}

/// Types one literal (a scalar, or an array element) for the element type of `target`.
fn scalar(
    literal: Literal<'_>,
    target: &Target<'_>,
    aliases: &Aliases,
) -> Result<Option<Value>, Fault> {
    let offset = literal.offset;
    let found = literal.value.describe();
    let value = match (literal.value, target.cim_type) {
        (LiteralValue::Null, _) => return Ok(None),
        (LiteralValue::Integer(n), cim_type) if cim_type.is_integer() || cim_type.is_real() => {
            integer(n, cim_type).ok_or_else(|| {
                Fault::new(
                    offset,
                    MofErrorKind::OutOfRange {
                        value: n.to_string(),
                        cim_type: cim_type.to_string(),
                    },
                )
            })?
        }
        (LiteralValue::Real(r), cim_type @ (CimType::Real32 | CimType::Real64)) => {
            let fits =
                r.is_finite() && (*cim_type == CimType::Real64 || r.abs() <= f64::from(f32::MAX));
            if !fits {
                return Err(Fault::new(
                    offset,
                    MofErrorKind::OutOfRange {
                        value: r.to_string(),
                        cim_type: cim_type.to_string(),
                    },
                ));
            }
            if *cim_type == CimType::Real64 {
                Value::Real64(r)
            } else {
                // In range (checked above): the narrowing only rounds.
                Value::Real32(r as f32)
            }
        }
        (LiteralValue::String(s), CimType::String) => Value::String(s.into_owned()),
        (LiteralValue::String(s), CimType::Datetime) => Value::Datetime(
            Datetime::parse(&s).map_err(|e| Fault::new(offset, MofErrorKind::from(e)))?,
        ),
        (LiteralValue::String(s), CimType::Reference(_)) => {
            // MOF writes references as WBEM URIs (DSP0207), usually local: `CIM_X.Id="1"`.
            let path = s.parse::<ObjectPath>().map_err(|_| {
                Fault::new(
                    offset,
                    MofErrorKind::InvalidObjectPath(s.clone().into_owned()),
                )
            })?;
            Value::Reference(Box::new(path))
        }
        (LiteralValue::Alias(alias), CimType::Reference(_)) => {
            let path = aliases.get(&crate::model::NameKey(alias)).ok_or_else(|| {
                Fault::new(offset, MofErrorKind::UndefinedAlias(alias.to_owned()))
            })?;
            Value::Reference(Box::new(path.clone()))
        }
        (LiteralValue::Char16(c), CimType::Char16) => Value::Char16(Char16(c)),
        (LiteralValue::Boolean(b), CimType::Boolean) => Value::Boolean(b),
        _ => return Err(target.mismatch(offset, found)),
    };
    Ok(Some(value))
}

/// An integer literal as a value of an integer or real type; `None` when out of range.
fn integer(n: i128, cim_type: &CimType) -> Option<Value> {
    match cim_type {
        // Integers are at most 2^64 in magnitude: within both real ranges, possibly rounded.
        CimType::Real32 => Some(Value::Real32(n as f32)),
        CimType::Real64 => Some(Value::Real64(n as f64)),
        _ => Value::from_integer(cim_type, n),
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn target(cim_type: &CimType, is_array: bool) -> Target<'_> {
        Target {
            subject: Subject::Property("P"),
            cim_type,
            is_array,
            array_size: None,
            wrap_scalar: false,
        }
    }

    fn literal(value: LiteralValue<'_>) -> Initializer<'_> {
        Initializer::Scalar(Literal { value, offset: 0 })
    }

    #[test]
    fn integers_are_range_checked_per_type() {
        let aliases = Aliases::new();
        let uint8 = CimType::Uint8;
        assert_eq!(
            convert(
                literal(LiteralValue::Integer(255)),
                &target(&uint8, false),
                &aliases
            ),
            Ok(Some(Value::Uint8(255)))
        );
        let error = convert(
            literal(LiteralValue::Integer(300)),
            &target(&uint8, false),
            &aliases,
        )
        .unwrap_err();
        assert_eq!(error.kind.to_string(), "300 is out of range for uint8");
        let sint64 = CimType::Sint64;
        assert_eq!(
            convert(
                literal(LiteralValue::Integer(-5)),
                &target(&sint64, false),
                &aliases
            ),
            Ok(Some(Value::Sint64(-5)))
        );
        let real32 = CimType::Real32;
        assert_eq!(
            convert(
                literal(LiteralValue::Integer(2)),
                &target(&real32, false),
                &aliases
            ),
            Ok(Some(Value::Real32(2.0)))
        );
        assert!(convert(
            literal(LiteralValue::Real(1e300)),
            &target(&real32, false),
            &aliases
        )
        .is_err());
    }

    #[test]
    fn shapes_and_kinds_must_match() {
        let aliases = Aliases::new();
        let string = CimType::String;
        let array = Initializer::Array {
            items: vec![Literal {
                value: LiteralValue::String(Cow::Borrowed("a")),
                offset: 1,
            }],
            offset: 0,
        };
        assert!(convert(array.clone(), &target(&string, false), &aliases).is_err());
        assert_eq!(
            convert(array, &target(&string, true), &aliases),
            Ok(Some(Value::Array(vec![Some(Value::from("a"))])))
        );
        let error = convert(
            literal(LiteralValue::Boolean(true)),
            &target(&string, false),
            &aliases,
        )
        .unwrap_err();
        assert_eq!(
            error.kind.to_string(),
            "property P expects string, found a boolean"
        );
        assert_eq!(
            convert(
                literal(LiteralValue::Null),
                &target(&string, true),
                &aliases
            ),
            Ok(None)
        );
        let reference = CimType::Reference(Some(Name::new("X")));
        assert!(matches!(
            convert(
                literal(LiteralValue::Alias("nope")),
                &target(&reference, false),
                &aliases
            ),
            Err(Fault {
                kind: MofErrorKind::UndefinedAlias(_),
                ..
            })
        ));
    }
}
