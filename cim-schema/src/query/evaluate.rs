//! Evaluates a condition against an instance with SQL's three-valued logic: a comparison with
//! NULL, or between values of types that do not compare, is unknown, and a query selects an
//! instance only when its condition is true.

use std::cmp::Ordering;

use super::ast::{
    ComparisonOperator, ElementTest, Expression, Index, Literal, Operand, Quantifier,
};
use super::ast::{PathSegment, PropertyPath};
use super::pattern::Pattern;
use super::Schema;
use crate::model::{Datetime, DatetimeFields, Instance, Name, ObjectPath, Value};

/// A truth value of three-valued logic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Truth {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// The condition involves NULL or values that do not compare.
    Unknown,
}

impl Truth {
    fn from_bool(value: bool) -> Truth {
        if value {
            Truth::True
        } else {
            Truth::False
        }
    }

    fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }

    fn and(self, other: Truth) -> Truth {
        match (self, other) {
            (Truth::False, _) | (_, Truth::False) => Truth::False,
            (Truth::True, Truth::True) => Truth::True,
            _ => Truth::Unknown,
        }
    }

    fn or(self, other: Truth) -> Truth {
        match (self, other) {
            (Truth::True, _) | (_, Truth::True) => Truth::True,
            (Truth::False, Truth::False) => Truth::False,
            _ => Truth::Unknown,
        }
    }
}

/// What an expression is evaluated against.
pub(super) struct Context<'a> {
    pub instance: &'a Instance,
    pub schema: &'a dyn Schema,
    /// Names that stand for the instance itself at the head of a path: the FROM class and the
    /// alias.
    pub roots: [Option<&'a Name>; 2],
}

/// An operand's value: NULL, a scalar, or an array.
enum Resolved<'a> {
    Null,
    Scalar(Scalar<'a>),
    Values(&'a [Option<Value>]),
    Literals(&'a [Literal]),
}

#[derive(Clone, Copy)]
enum Scalar<'a> {
    Integer(i128),
    Real(f64),
    String(&'a str),
    Boolean(bool),
    Char16(u16),
    Datetime(Datetime),
    Reference(&'a ObjectPath),
    Instance(&'a Instance),
    /// An embedded class: compares with nothing.
    Opaque,
}

/// How two scalars relate.
#[derive(Clone, Copy)]
enum Order {
    Ordered(Ordering),
    /// Only equality is defined (booleans, references, instances).
    Equality(bool),
    Incomparable,
}

impl Order {
    fn reverse(self) -> Order {
        match self {
            Order::Ordered(ordering) => Order::Ordered(ordering.reverse()),
            other => other,
        }
    }
}

impl<'a> Context<'a> {
    pub(super) fn evaluate(&self, expression: &'a Expression) -> Truth {
        match expression {
            Expression::And(items) => items
                .iter()
                .fold(Truth::True, |truth, item| truth.and(self.evaluate(item))),
            Expression::Or(items) => items
                .iter()
                .fold(Truth::False, |truth, item| truth.or(self.evaluate(item))),
            Expression::Not(inner) => self.evaluate(inner).not(),
            Expression::Comparison {
                left,
                operator,
                right,
            } => self.comparison(left, *operator, right),
            Expression::Like {
                operand,
                pattern,
                negated,
            } => {
                let truth = like(&self.operand(operand), pattern);
                if *negated {
                    truth.not()
                } else {
                    truth
                }
            }
            Expression::IsNull { operand, negated } => {
                let is_null = matches!(self.operand(operand), Resolved::Null);
                Truth::from_bool(is_null != *negated)
            }
            Expression::Isa { path, class_name } => self.isa(path, class_name),
            Expression::Quantified {
                quantifier,
                path,
                test,
            } => self.quantified(*quantifier, path, test),
        }
    }

    fn comparison(
        &self,
        left: &'a Operand,
        operator: ComparisonOperator,
        right: &'a Operand,
    ) -> Truth {
        // `x = NULL` and `x <> NULL` test for NULL, as WQL clients expect.
        let null_literal = |operand: &Operand| matches!(operand, Operand::Literal(Literal::Null));
        let other = match (null_literal(left), null_literal(right)) {
            (true, true) => return Truth::from_bool(operator == ComparisonOperator::Equal),
            (true, false) => Some(right),
            (false, true) => Some(left),
            (false, false) => None,
        };
        if let Some(other) = other {
            let is_null = matches!(self.operand(other), Resolved::Null);
            return match operator {
                ComparisonOperator::Equal => Truth::from_bool(is_null),
                ComparisonOperator::NotEqual => Truth::from_bool(!is_null),
                _ => Truth::Unknown,
            };
        }
        compare(&self.operand(left), operator, &self.operand(right))
    }

    fn isa(&self, path: &'a PropertyPath, class_name: &Name) -> Truth {
        let class = match self.path(path) {
            Resolved::Null => return Truth::Unknown,
            Resolved::Scalar(Scalar::Instance(instance)) => &instance.class_name,
            Resolved::Scalar(Scalar::Reference(reference)) => reference.class_name(),
            _ => return Truth::False,
        };
        Truth::from_bool(self.schema.is_a(class.as_str(), class_name.as_str()))
    }

    fn quantified(
        &self,
        quantifier: Quantifier,
        path: &'a PropertyPath,
        test: &'a ElementTest,
    ) -> Truth {
        let Resolved::Values(elements) = self.path(path) else {
            return Truth::Unknown;
        };
        let right = match test {
            ElementTest::Comparison { right, .. } => Some(self.operand(right)),
            ElementTest::Like { .. } => None,
        };
        let mut result = match quantifier {
            Quantifier::Any => Truth::False,
            Quantifier::Every => Truth::True,
        };
        for element in elements {
            let element = element.as_ref().map_or(Resolved::Null, resolve_value);
            let truth = match (test, &right) {
                (ElementTest::Comparison { operator, .. }, Some(right)) => {
                    compare(&element, *operator, right)
                }
                (ElementTest::Like { pattern, negated }, _) => {
                    let truth = like(&element, pattern);
                    if *negated {
                        truth.not()
                    } else {
                        truth
                    }
                }
                (ElementTest::Comparison { .. }, None) => Truth::Unknown,
            };
            result = match quantifier {
                Quantifier::Any => result.or(truth),
                Quantifier::Every => result.and(truth),
            };
        }
        result
    }

    fn operand(&self, operand: &'a Operand) -> Resolved<'a> {
        match operand {
            Operand::Property(path) => self.path(path),
            Operand::Literal(literal) => resolve_literal(literal),
        }
    }

    fn is_root(&self, name: &Name) -> bool {
        self.roots.iter().flatten().any(|root| *root == name)
    }

    /// Follows a property path through embedded instances. A missing property, a NULL, an
    /// index out of range or a step through something that is not an instance gives NULL.
    fn path(&self, path: &'a PropertyPath) -> Resolved<'a> {
        let mut segments: &[PathSegment] = &path.segments;
        let mut current = self.instance;
        if let Some(first) = segments.first() {
            let plain = first.scope.is_none() && first.index.is_none();
            if plain && self.is_root(&first.name) && current.property(first.name.as_str()).is_none()
            {
                segments = &segments[1..];
                if segments.is_empty() {
                    return Resolved::Scalar(Scalar::Instance(current));
                }
            }
        }
        for (position, segment) in segments.iter().enumerate() {
            if let Some(scope) = &segment.scope {
                if !self
                    .schema
                    .is_a(current.class_name.as_str(), scope.as_str())
                {
                    return Resolved::Null;
                }
            }
            let Some(mut value) = current.value(segment.name.as_str()) else {
                return Resolved::Null;
            };
            if let Some(Index::Position(index)) = segment.index {
                let element = usize::try_from(index)
                    .ok()
                    .and_then(|index| value.as_array()?.get(index));
                match element {
                    Some(Some(element)) => value = element,
                    _ => return Resolved::Null,
                }
            }
            if position + 1 == segments.len() {
                return resolve_value(value);
            }
            match value {
                Value::Instance(inner) => current = inner,
                _ => return Resolved::Null,
            }
        }
        Resolved::Null
    }
}

fn resolve_value(value: &Value) -> Resolved<'_> {
    Resolved::Scalar(match value {
        Value::Array(items) => return Resolved::Values(items),
        Value::Boolean(b) => Scalar::Boolean(*b),
        Value::Real32(r) => Scalar::Real(f64::from(*r)),
        Value::Real64(r) => Scalar::Real(*r),
        Value::Char16(c) => Scalar::Char16(c.0),
        Value::String(s) => Scalar::String(s),
        Value::Datetime(d) => Scalar::Datetime(*d),
        Value::Reference(path) => Scalar::Reference(path),
        Value::Instance(instance) => Scalar::Instance(instance),
        Value::Class(_) => Scalar::Opaque,
        integer => match integer.as_integer() {
            Some(value) => Scalar::Integer(value),
            None => Scalar::Opaque,
        },
    })
}

fn resolve_literal(literal: &Literal) -> Resolved<'_> {
    Resolved::Scalar(match literal {
        Literal::Null => return Resolved::Null,
        Literal::Array(items) => return Resolved::Literals(items),
        Literal::String(s) => Scalar::String(s),
        Literal::Integer(i) => Scalar::Integer(*i),
        Literal::Real(r) => Scalar::Real(*r),
        Literal::Boolean(b) => Scalar::Boolean(*b),
    })
}

fn like(operand: &Resolved<'_>, pattern: &Pattern) -> Truth {
    match operand {
        Resolved::Scalar(Scalar::String(text)) => Truth::from_bool(pattern.is_match(text)),
        Resolved::Scalar(Scalar::Char16(unit)) => match char::from_u32(u32::from(*unit)) {
            Some(c) => Truth::from_bool(pattern.is_match(c.encode_utf8(&mut [0; 4]))),
            None => Truth::Unknown,
        },
        _ => Truth::Unknown,
    }
}

fn compare(left: &Resolved<'_>, operator: ComparisonOperator, right: &Resolved<'_>) -> Truth {
    match (left, right) {
        (Resolved::Null, _) | (_, Resolved::Null) => Truth::Unknown,
        (Resolved::Scalar(a), Resolved::Scalar(b)) => apply(operator, order(*a, *b)),
        (Resolved::Scalar(_), _) | (_, Resolved::Scalar(_)) => Truth::Unknown,
        (a, b) if operator.is_equality() => {
            let a = array_elements(a);
            let b = array_elements(b);
            let equal = if a.len() == b.len() {
                a.iter().zip(&b).fold(Truth::True, |truth, (x, y)| {
                    truth.and(compare(x, ComparisonOperator::Equal, y))
                })
            } else {
                Truth::False
            };
            if operator == ComparisonOperator::Equal {
                equal
            } else {
                equal.not()
            }
        }
        _ => Truth::Unknown,
    }
}

fn array_elements<'a>(array: &Resolved<'a>) -> Vec<Resolved<'a>> {
    match array {
        Resolved::Values(items) => items
            .iter()
            .map(|item| item.as_ref().map_or(Resolved::Null, resolve_value))
            .collect(),
        Resolved::Literals(items) => items.iter().map(resolve_literal).collect(),
        _ => Vec::new(),
    }
}

fn apply(operator: ComparisonOperator, order: Order) -> Truth {
    match order {
        Order::Ordered(ordering) => Truth::from_bool(match operator {
            ComparisonOperator::Equal => ordering == Ordering::Equal,
            ComparisonOperator::NotEqual => ordering != Ordering::Equal,
            ComparisonOperator::Less => ordering == Ordering::Less,
            ComparisonOperator::LessOrEqual => ordering != Ordering::Greater,
            ComparisonOperator::Greater => ordering == Ordering::Greater,
            ComparisonOperator::GreaterOrEqual => ordering != Ordering::Less,
        }),
        Order::Equality(equal) => match operator {
            ComparisonOperator::Equal => Truth::from_bool(equal),
            ComparisonOperator::NotEqual => Truth::from_bool(!equal),
            _ => Truth::Unknown,
        },
        Order::Incomparable => Truth::Unknown,
    }
}

/// How two scalars compare, by their types: numbers numerically (integers exactly), strings
/// by code point (case-sensitive), a string against a datetime, char16 or reference read as
/// one.
fn order(a: Scalar<'_>, b: Scalar<'_>) -> Order {
    use Scalar as S;
    match (a, b) {
        (S::Integer(x), S::Integer(y)) => Order::Ordered(x.cmp(&y)),
        (S::Integer(_) | S::Real(_), S::Integer(_) | S::Real(_)) => {
            match real(a).partial_cmp(&real(b)) {
                Some(ordering) => Order::Ordered(ordering),
                None => Order::Incomparable,
            }
        }
        (S::String(x), S::String(y)) => Order::Ordered(x.cmp(y)),
        (S::Boolean(x), S::Boolean(y)) => Order::Equality(x == y),
        (S::Char16(x), S::Char16(y)) => Order::Ordered(x.cmp(&y)),
        (S::Char16(x), S::String(text)) => {
            let mut units = text.encode_utf16();
            match (units.next(), units.next()) {
                (Some(y), None) => Order::Ordered(x.cmp(&y)),
                _ => Order::Incomparable,
            }
        }
        (S::Datetime(x), S::Datetime(y)) => datetime_order(&x, &y),
        (S::Datetime(x), S::String(text)) => match Datetime::parse(text) {
            Ok(y) => datetime_order(&x, &y),
            Err(_) => Order::Incomparable,
        },
        (S::Reference(x), S::Reference(y)) => Order::Equality(references_equal(x, y)),
        (S::Reference(x), S::String(text)) => match text.parse::<ObjectPath>() {
            Ok(y) => Order::Equality(references_equal(x, &y)),
            Err(_) => Order::Incomparable,
        },
        (S::Instance(x), S::Instance(y)) => Order::Equality(x == y),
        (S::String(_), S::Char16(_) | S::Datetime(_) | S::Reference(_)) => order(b, a).reverse(),
        _ => Order::Incomparable,
    }
}

fn real(scalar: Scalar<'_>) -> f64 {
    match scalar {
        // Integer literals and CIM integers fit in 65 bits; the nearest f64 is what a mixed
        // comparison with a real means.
        Scalar::Integer(value) => value as f64,
        Scalar::Real(value) => value,
        _ => f64::NAN,
    }
}

fn references_equal(a: &ObjectPath, b: &ObjectPath) -> bool {
    match (a, b) {
        (ObjectPath::Instance(x), ObjectPath::Instance(y)) => x.same_instance(y),
        (ObjectPath::Class(x), ObjectPath::Class(y)) => {
            let both = |p: Option<&str>, q: Option<&str>| match (p, q) {
                (Some(p), Some(q)) => p.eq_ignore_ascii_case(q),
                _ => true,
            };
            x.class_name == y.class_name
                && both(x.namespace.as_deref(), y.namespace.as_deref())
                && both(x.host.as_deref(), y.host.as_deref())
        }
        _ => false,
    }
}

/// Datetimes compare as points in time (timestamps, across UTC offsets) or as durations
/// (intervals). Equal text is equal; otherwise a wildcarded datetime, or a timestamp against
/// an interval, does not compare.
fn datetime_order(a: &Datetime, b: &Datetime) -> Order {
    if a == b {
        return Order::Ordered(Ordering::Equal);
    }
    match (datetime_key(a), datetime_key(b)) {
        (Some((x_interval, x)), Some((y_interval, y))) if x_interval == y_interval => {
            Order::Ordered(x.cmp(&y))
        }
        _ => Order::Incomparable,
    }
}

/// Whether the datetime is an interval, and its microseconds since 0000-03-01 UTC (or its
/// length); `None` when a field is wildcarded.
fn datetime_key(datetime: &Datetime) -> Option<(bool, i128)> {
    let full_microseconds = |microseconds: Option<(u32, u8)>| match microseconds {
        Some((value, 6)) => Some(i128::from(value)),
        _ => None,
    };
    match datetime.fields() {
        DatetimeFields::Timestamp {
            year,
            month,
            day,
            hour,
            minute,
            second,
            microseconds,
            utc_offset_minutes,
        } => {
            let days = days_from_civil(i128::from(year?), i128::from(month?), i128::from(day?));
            let minutes = (days * 24 + i128::from(hour?)) * 60 + i128::from(minute?)
                - i128::from(utc_offset_minutes);
            let seconds = minutes * 60 + i128::from(second?);
            Some((
                false,
                seconds * 1_000_000 + full_microseconds(microseconds)?,
            ))
        }
        DatetimeFields::Interval {
            days,
            hours,
            minutes,
            seconds,
            microseconds,
        } => {
            let minutes = (i128::from(days?) * 24 + i128::from(hours?)) * 60 + i128::from(minutes?);
            let seconds = minutes * 60 + i128::from(seconds?);
            Some((true, seconds * 1_000_000 + full_microseconds(microseconds)?))
        }
    }
}

/// Days from 0000-03-01 in the proleptic Gregorian calendar (H. Hinnant's algorithm).
fn days_from_civil(year: i128, month: i128, day: i128) -> i128 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_valued_connectives() {
        use Truth::{False, True, Unknown};
        assert_eq!(Unknown.and(False), False);
        assert_eq!(Unknown.and(True), Unknown);
        assert_eq!(Unknown.or(True), True);
        assert_eq!(Unknown.or(False), Unknown);
        assert_eq!(Unknown.not(), Unknown);
    }

    #[test]
    fn timestamps_compare_across_offsets() {
        let utc = Datetime::parse("20260101120000.000000+000").unwrap();
        let east = Datetime::parse("20260101130000.000000+060").unwrap();
        let later = Datetime::parse("20260101120000.000001+000").unwrap();
        assert!(matches!(
            datetime_order(&utc, &east),
            Order::Ordered(Ordering::Equal)
        ));
        assert!(matches!(
            datetime_order(&utc, &later),
            Order::Ordered(Ordering::Less)
        ));
        let wildcard = Datetime::parse("20260101******.******+000").unwrap();
        assert!(matches!(
            datetime_order(&utc, &wildcard),
            Order::Incomparable
        ));
        let interval = Datetime::parse("00000001000000.000000:000").unwrap();
        assert!(matches!(
            datetime_order(&utc, &interval),
            Order::Incomparable
        ));
    }

    #[test]
    fn civil_days_count_leap_years() {
        assert_eq!(
            days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28),
            2
        );
        assert_eq!(
            days_from_civil(1900, 3, 1) - days_from_civil(1900, 2, 28),
            1
        );
        assert_eq!(days_from_civil(1970, 1, 1), 719_468);
    }
}
