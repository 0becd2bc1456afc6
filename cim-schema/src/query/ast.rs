//! The parsed form of a query's condition: expressions, operands, property paths and literals,
//! shared by WQL, CQL and FQL. Every node writes itself back as query text (`Display`) that
//! parses to an equal node in the language it came from.

use std::fmt;

use super::pattern::Pattern;
use crate::model::Name;

/// A boolean condition: a WHERE clause or an FQL filter.
#[derive(Clone, Debug, PartialEq)]
pub enum Expression {
    /// All of the expressions hold (`a AND b AND c`).
    And(Vec<Expression>),
    /// One of the expressions holds (`a OR b OR c`).
    Or(Vec<Expression>),
    /// The expression does not hold (`NOT a`).
    Not(Box<Expression>),
    /// `left op right`.
    Comparison {
        /// The left operand.
        left: Operand,
        /// The operator.
        operator: ComparisonOperator,
        /// The right operand.
        right: Operand,
    },
    /// `operand [NOT] LIKE 'pattern'`.
    Like {
        /// The string operand.
        operand: Operand,
        /// The pattern, in the dialect of the query's language.
        pattern: Pattern,
        /// True for `NOT LIKE`.
        negated: bool,
    },
    /// `operand IS [NOT] NULL`.
    IsNull {
        /// The operand.
        operand: Operand,
        /// True for `IS NOT NULL`.
        negated: bool,
    },
    /// `path ISA Class`: the embedded instance (or referenced object, or the queried instance
    /// itself) is of the class or one of its subclasses.
    Isa {
        /// The property (or alias) whose class is tested.
        path: PropertyPath,
        /// The class.
        class_name: Name,
    },
    /// `ANY path op right`, `EVERY path LIKE 'pattern'` (CQL, FQL): a test of each element of an
    /// array property.
    Quantified {
        /// `ANY` or `EVERY`.
        quantifier: Quantifier,
        /// The array property (its last segment may carry `[*]`).
        path: PropertyPath,
        /// The test applied to each element.
        test: ElementTest,
    },
}

/// The quantifier of an array test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Quantifier {
    /// At least one element passes (false for an empty array).
    Any,
    /// Every element passes (true for an empty array).
    Every,
}

/// What a quantified expression tests each array element against.
#[derive(Clone, Debug, PartialEq)]
pub enum ElementTest {
    /// `element op right`.
    Comparison {
        /// The operator.
        operator: ComparisonOperator,
        /// The operand the element is compared with.
        right: Operand,
    },
    /// `element [NOT] LIKE 'pattern'`.
    Like {
        /// The pattern.
        pattern: Pattern,
        /// True for `NOT LIKE`.
        negated: bool,
    },
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ComparisonOperator {
    /// `=`
    Equal,
    /// `<>` (also spelt `!=`)
    NotEqual,
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
}

impl ComparisonOperator {
    /// The operator's spelling (`<>` for not-equal).
    pub fn as_str(self) -> &'static str {
        match self {
            ComparisonOperator::Equal => "=",
            ComparisonOperator::NotEqual => "<>",
            ComparisonOperator::Less => "<",
            ComparisonOperator::LessOrEqual => "<=",
            ComparisonOperator::Greater => ">",
            ComparisonOperator::GreaterOrEqual => ">=",
        }
    }

    /// True for `=` and `<>`, the only operators defined on booleans, references and arrays.
    pub fn is_equality(self) -> bool {
        matches!(
            self,
            ComparisonOperator::Equal | ComparisonOperator::NotEqual
        )
    }
}

/// One side of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// The value of a property of the queried instance.
    Property(PropertyPath),
    /// A constant.
    Literal(Literal),
}

/// A constant in a query.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// A string (quoted in the query). Compared with a datetime, char16 or reference property
    /// it is read as a value of that type.
    String(String),
    /// An integer, decimal, hexadecimal (`0x1F`) or binary (`101B`); its magnitude fits in 64
    /// bits.
    Integer(i128),
    /// A real (`1.5`, `2e10`), always finite.
    Real(f64),
    /// `TRUE` or `FALSE`.
    Boolean(bool),
    /// `NULL`.
    Null,
    /// An array literal `{1, 2, 3}` (FQL), for whole-array comparisons.
    Array(Vec<Literal>),
}

/// A property of the queried instance, possibly inside embedded instances:
/// `SourceInstance.Name`, `x.Prop[2]`, `SourceInstance.CIM_Foo::Name`.
///
/// A first segment that names the query's alias or FROM class (and no property of the
/// instance) stands for the instance itself.
#[derive(Clone, Debug, PartialEq)]
pub struct PropertyPath {
    /// The segments, outermost first; never empty.
    pub segments: Vec<PathSegment>,
}

impl PropertyPath {
    /// A path of plain property names (`PropertyPath::new(["SourceInstance", "Name"])`).
    pub fn new<I, N>(names: I) -> PropertyPath
    where
        I: IntoIterator<Item = N>,
        N: Into<Name>,
    {
        PropertyPath {
            segments: names
                .into_iter()
                .map(|name| PathSegment {
                    scope: None,
                    name: name.into(),
                    index: None,
                })
                .collect(),
        }
    }
}

/// One step of a property path.
#[derive(Clone, Debug, PartialEq)]
pub struct PathSegment {
    /// The class that qualifies the name (`CIM_Foo::Name`): the step is NULL unless the
    /// instance it is taken from is of that class.
    pub scope: Option<Name>,
    /// The property name.
    pub name: Name,
    /// An array subscript.
    pub index: Option<Index>,
}

/// An array subscript.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Index {
    /// `[n]`: the element at zero-based position n.
    Position(u32),
    /// `[*]`: every element (only in a quantified expression).
    All,
}

impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expression::And(items) => write_joined(f, items, " AND "),
            Expression::Or(items) => write_joined(f, items, " OR "),
            Expression::Not(inner) => {
                f.write_str("NOT ")?;
                write_grouped(f, inner)
            }
            Expression::Comparison {
                left,
                operator,
                right,
            } => write!(f, "{left} {} {right}", operator.as_str()),
            Expression::Like {
                operand,
                pattern,
                negated,
            } => {
                let not = if *negated { "NOT " } else { "" };
                write!(f, "{operand} {not}LIKE ")?;
                write_string(f, pattern.source())
            }
            Expression::IsNull { operand, negated } => {
                let not = if *negated { "NOT " } else { "" };
                write!(f, "{operand} IS {not}NULL")
            }
            Expression::Isa { path, class_name } => write!(f, "{path} ISA {class_name}"),
            Expression::Quantified {
                quantifier,
                path,
                test,
            } => {
                let word = match quantifier {
                    Quantifier::Any => "ANY",
                    Quantifier::Every => "EVERY",
                };
                write!(f, "{word} {path} {test}")
            }
        }
    }
}

/// Writes `a SEP b SEP c`, grouping the items that are themselves AND or OR lists so that the
/// text parses back to the same tree.
fn write_joined(f: &mut fmt::Formatter<'_>, items: &[Expression], separator: &str) -> fmt::Result {
    for (position, item) in items.iter().enumerate() {
        if position > 0 {
            f.write_str(separator)?;
        }
        write_grouped(f, item)?;
    }
    Ok(())
}

fn write_grouped(f: &mut fmt::Formatter<'_>, expression: &Expression) -> fmt::Result {
    match expression {
        Expression::And(_) | Expression::Or(_) => write!(f, "({expression})"),
        other => write!(f, "{other}"),
    }
}

impl fmt::Display for ElementTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElementTest::Comparison { operator, right } => {
                write!(f, "{} {right}", operator.as_str())
            }
            ElementTest::Like { pattern, negated } => {
                let not = if *negated { "NOT " } else { "" };
                write!(f, "{not}LIKE ")?;
                write_string(f, pattern.source())
            }
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Property(path) => write!(f, "{path}"),
            Operand::Literal(literal) => write!(f, "{literal}"),
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(text) => write_string(f, text),
            Literal::Integer(value) => write!(f, "{value}"),
            // Debug is the shortest text that reads back as the same f64, with a `.0` or an
            // exponent that keeps it a real.
            Literal::Real(value) => write!(f, "{value:?}"),
            Literal::Boolean(true) => f.write_str("TRUE"),
            Literal::Boolean(false) => f.write_str("FALSE"),
            Literal::Null => f.write_str("NULL"),
            Literal::Array(items) => {
                f.write_str("{")?;
                for (position, item) in items.iter().enumerate() {
                    if position > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Writes a single-quoted string literal, escaping the backslash and the quote.
fn write_string(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    f.write_str("'")?;
    for c in text.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '\'' => f.write_str("\\'")?,
            other => fmt::Write::write_char(f, other)?,
        }
    }
    f.write_str("'")
}

impl fmt::Display for PropertyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, segment) in self.segments.iter().enumerate() {
            if position > 0 {
                f.write_str(".")?;
            }
            write!(f, "{segment}")?;
        }
        Ok(())
    }
}

impl fmt::Display for PathSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(scope) = &self.scope {
            write!(f, "{scope}::")?;
        }
        write!(f, "{}", self.name)?;
        match self.index {
            Some(Index::Position(position)) => write!(f, "[{position}]"),
            Some(Index::All) => f.write_str("[*]"),
            None => Ok(()),
        }
    }
}
