//! Query languages over CIM instances: WQL and DMTF:CQL SELECT statements (DSP0202) for
//! ExecQuery, OpenQueryInstances and indication filters, and DMTF:FQL filters (DSP0212) for the
//! pull operations' FilterQuery. Parsing and evaluation only: this module does no IO, keeps no
//! state between calls and knows classes only through the [`Schema`] trait (for `ISA` and
//! `Class::Prop` scopes).
//!
//! - [`SelectQuery`]: `SELECT * | p1, p2 FROM Class [[AS] alias] [WHERE condition]` in WQL or
//!   CQL, with [`SelectQuery::matches`] and [`SelectQuery::project`].
//! - [`Filter`]: an FQL condition alone, with [`Filter::matches`].
//! - [`Expression`] and its parts: the condition tree both share; every node implements
//!   `Display`, writing text that parses back to an equal tree.
//!
//! Conditions have comparisons (`= <> != < <= > >=`), `AND`, `OR`, `NOT`, parentheses,
//! `IS [NOT] NULL`, `ISA`, `[NOT] LIKE` (WQL wildcards, CQL basic patterns or FQL regular
//! expressions: see [`pattern`]), dotted paths into embedded instances (`SourceInstance.Name`,
//! `SourceInstance.CIM_Foo::Name`), and in CQL and FQL array subscripts (`Prop[0]`) and
//! `ANY`/`EVERY` array tests (`ANY Prop = 'x'`, also `ANY Prop[*] = 'x'`); FQL adds array
//! literals (`Prop = {1, 2}`). Keywords and names are case-insensitive; string comparison is
//! case-sensitive.
//!
//! Evaluation uses three-valued logic: NULL, a missing property, or values whose types do not
//! compare make a comparison unknown, and only a true condition selects an instance. Values
//! compare by type: integers of any width exactly, reals numerically, a string literal against
//! a datetime, char16 or reference property read as one of those (datetimes compare as points
//! in time). Nothing a client sends can panic: input length and nesting are bounded by
//! [`QUERY_BYTES_MAX`], [`QUERY_DEPTH_MAX`] and [`PATH_SEGMENTS_MAX`], and LIKE patterns match
//! in linear time.
//!
//! ```
//! use cim_schema::model::{CimType, Instance, Property, Value};
//! use cim_schema::query::{NameEquality, QueryLanguage, SelectQuery};
//!
//! let query = SelectQuery::parse(
//!     QueryLanguage::Wql,
//!     "SELECT Name FROM HP_SGPackage WHERE Status <> 'up' AND Name LIKE 'db%'",
//! )
//! .unwrap();
//! let package = Instance::new("HP_SGPackage")
//!     .with(Property::new("Name", CimType::String, Some(Value::from("dbpkg"))))
//!     .with(Property::new("Status", CimType::String, Some(Value::from("down"))));
//! assert!(query.matches(&package, &NameEquality));
//! assert_eq!(query.project(&package).properties.len(), 1);
//! ```

mod ast;
mod evaluate;
mod lexer;
mod parser;
pub mod pattern;

use std::fmt;

pub use ast::{
    ComparisonOperator, ElementTest, Expression, Index, Literal, Operand, PathSegment,
    PropertyPath, Quantifier,
};
pub use evaluate::Truth;
pub use pattern::{Pattern, PatternDialect};

use crate::model::{Instance, Name};
use crate::repository::Repository;
use evaluate::Context;
use parser::Parser;

/// The longest query text accepted, in bytes.
pub const QUERY_BYTES_MAX: usize = 64 * 1024;
/// How deeply parentheses and NOT may nest in a condition.
pub const QUERY_DEPTH_MAX: usize = 64;
/// How many steps a property path may have (`A.B.C` has three).
pub const PATH_SEGMENTS_MAX: usize = 16;

/// A query language a client can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueryLanguage {
    /// `WQL` (DSP0202 annex, as WBEM clients use it).
    Wql,
    /// `DMTF:CQL` (DSP0202).
    Cql,
    /// `DMTF:FQL` (DSP0212), the pull operations' filter language.
    Fql,
}

impl QueryLanguage {
    /// The language a client names, case-insensitively: `WQL`, `DMTF:CQL` (or `CQL`),
    /// `DMTF:FQL`.
    pub fn from_name(name: &str) -> Option<QueryLanguage> {
        let name = name.trim();
        [
            ("WQL", QueryLanguage::Wql),
            ("DMTF:CQL", QueryLanguage::Cql),
            ("CQL", QueryLanguage::Cql),
            ("DMTF:FQL", QueryLanguage::Fql),
        ]
        .into_iter()
        .find(|(spelling, _)| spelling.eq_ignore_ascii_case(name))
        .map(|(_, language)| language)
    }

    /// The name clients use (`WQL`, `DMTF:CQL`, `DMTF:FQL`).
    pub fn as_str(self) -> &'static str {
        match self {
            QueryLanguage::Wql => "WQL",
            QueryLanguage::Cql => "DMTF:CQL",
            QueryLanguage::Fql => "DMTF:FQL",
        }
    }
}

impl fmt::Display for QueryLanguage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which kind of failure a [`QueryError`] is; the server maps it to a CIM status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueryErrorKind {
    /// The text is not a query of the language (`CIM_ERR_INVALID_QUERY`, 15).
    Syntax,
    /// The language cannot be used this way, such as FQL for a SELECT statement
    /// (`CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED`, 14).
    Unsupported,
    /// The query exceeds a limit of this implementation: length, nesting or path steps
    /// (`CIM_ERR_INVALID_QUERY`, 15).
    Limit,
}

/// Why a query was refused, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {position} of the query)")]
pub struct QueryError {
    /// What kind of failure.
    pub kind: QueryErrorKind,
    /// What is wrong, in lowercase.
    pub message: String,
    /// The byte offset in the query text where the problem was found.
    pub position: usize,
}

impl QueryError {
    fn new(kind: QueryErrorKind, message: impl Into<String>, position: usize) -> QueryError {
        QueryError {
            kind,
            message: message.into(),
            position,
        }
    }
}

/// What a query needs to know of the class hierarchy.
pub trait Schema {
    /// True when `class` is `ancestor` or one of its subclasses (names case-insensitive).
    fn is_a(&self, class: &str, ancestor: &str) -> bool;
}

/// A namespace of a [`Repository`] as a [`Schema`].
#[derive(Clone, Copy, Debug)]
pub struct NamespaceSchema<'a> {
    /// The repository.
    pub repository: &'a Repository,
    /// The namespace whose classes are meant (`root/cimv2`).
    pub namespace: &'a str,
}

impl Schema for NamespaceSchema<'_> {
    fn is_a(&self, class: &str, ancestor: &str) -> bool {
        self.repository.is_a(self.namespace, class, ancestor)
    }
}

/// A [`Schema`] that knows no inheritance: a class is only itself. For tests and for callers
/// without a repository.
#[derive(Clone, Copy, Debug, Default)]
pub struct NameEquality;

impl Schema for NameEquality {
    fn is_a(&self, class: &str, ancestor: &str) -> bool {
        crate::model::name::eq_ignore_case(class, ancestor)
    }
}

/// What a SELECT statement returns of each instance.
#[derive(Clone, Debug, PartialEq)]
pub enum SelectList {
    /// `*` (or CQL `alias.*`): every property.
    All,
    /// The listed properties.
    Properties(Vec<PropertyPath>),
}

/// A parsed WQL or CQL SELECT statement over one class.
#[derive(Clone, Debug, PartialEq)]
pub struct SelectQuery {
    language: QueryLanguage,
    select: SelectList,
    class_name: Name,
    alias: Option<Name>,
    condition: Option<Expression>,
}

impl SelectQuery {
    /// Parses a SELECT statement in WQL or CQL. FQL has no SELECT statement and gives an
    /// [`QueryErrorKind::Unsupported`] error.
    pub fn parse(language: QueryLanguage, text: &str) -> Result<SelectQuery, QueryError> {
        if language == QueryLanguage::Fql {
            return Err(QueryError::new(
                QueryErrorKind::Unsupported,
                "DMTF:FQL is a filter language and has no SELECT statement",
                0,
            ));
        }
        let parts = Parser::new(language, text)?.select()?;
        Ok(SelectQuery {
            language,
            select: parts.select,
            class_name: parts.class_name,
            alias: parts.alias,
            condition: parts.condition,
        })
    }

    /// The language it was written in.
    pub fn language(&self) -> QueryLanguage {
        self.language
    }

    /// The FROM class.
    pub fn class_name(&self) -> &Name {
        &self.class_name
    }

    /// The CQL alias of the FROM class (`FROM CIM_X AS x`).
    pub fn alias(&self) -> Option<&Name> {
        self.alias.as_ref()
    }

    /// The SELECT list as written.
    pub fn select_list(&self) -> &SelectList {
        &self.select
    }

    /// The WHERE condition, if any.
    pub fn condition(&self) -> Option<&Expression> {
        self.condition.as_ref()
    }

    /// The top-level properties selected, each once, in order; `None` for `*`. A path into an
    /// embedded instance selects its top-level property; an alias or class prefix is skipped.
    pub fn selected_properties(&self) -> Option<Vec<Name>> {
        let SelectList::Properties(paths) = &self.select else {
            return None;
        };
        let mut names: Vec<Name> = Vec::new();
        for path in paths {
            let name = self.top_level(path);
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        Some(names)
    }

    fn top_level<'a>(&'a self, path: &'a PropertyPath) -> &'a Name {
        match path.segments.as_slice() {
            [first, second, ..]
                if first.scope.is_none()
                    && first.index.is_none()
                    && (first.name == self.class_name
                        || self.alias.as_ref() == Some(&first.name)) =>
            {
                &second.name
            }
            [first, ..] => &first.name,
            // The parser never builds an empty path; a hand-built one selects nothing useful.
            [] => &self.class_name,
        }
    }

    /// The three-valued truth of the WHERE condition for `instance` (true without WHERE).
    pub fn evaluate(&self, instance: &Instance, schema: &dyn Schema) -> Truth {
        let Some(condition) = &self.condition else {
            return Truth::True;
        };
        Context {
            instance,
            schema,
            roots: [Some(&self.class_name), self.alias.as_ref()],
        }
        .evaluate(condition)
    }

    /// True when the WHERE condition is true for `instance` (unknown counts as false). The
    /// FROM class is not checked here: the caller enumerates its instances.
    pub fn matches(&self, instance: &Instance, schema: &dyn Schema) -> bool {
        self.evaluate(instance, schema) == Truth::True
    }

    /// A copy of `instance` with only the selected properties (all of them for `*`).
    pub fn project(&self, instance: &Instance) -> Instance {
        let Some(names) = self.selected_properties() else {
            return instance.clone();
        };
        let mut projected = Instance::new(instance.class_name.clone());
        projected.qualifiers = instance.qualifiers.clone();
        projected.properties = instance
            .properties
            .iter()
            .filter(|(name, _)| names.contains(name))
            .map(|(name, property)| (name.clone(), property.clone()))
            .collect();
        projected
    }
}

impl fmt::Display for SelectQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SELECT ")?;
        match &self.select {
            SelectList::All => f.write_str("*")?,
            SelectList::Properties(paths) => {
                for (position, path) in paths.iter().enumerate() {
                    if position > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{path}")?;
                }
            }
        }
        write!(f, " FROM {}", self.class_name)?;
        if let Some(alias) = &self.alias {
            write!(f, " AS {alias}")?;
        }
        if let Some(condition) = &self.condition {
            write!(f, " WHERE {condition}")?;
        }
        Ok(())
    }
}

/// A parsed DMTF:FQL filter (DSP0212): a condition over an instance's properties.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    condition: Expression,
}

impl Filter {
    /// Parses an FQL filter.
    pub fn parse(text: &str) -> Result<Filter, QueryError> {
        Ok(Filter {
            condition: Parser::new(QueryLanguage::Fql, text)?.filter()?,
        })
    }

    /// The condition.
    pub fn condition(&self) -> &Expression {
        &self.condition
    }

    /// The three-valued truth of the filter for `instance`.
    pub fn evaluate(&self, instance: &Instance, schema: &dyn Schema) -> Truth {
        Context {
            instance,
            schema,
            roots: [None, None],
        }
        .evaluate(&self.condition)
    }

    /// True when the filter is true for `instance` (unknown counts as false).
    pub fn matches(&self, instance: &Instance, schema: &dyn Schema) -> bool {
        self.evaluate(instance, schema) == Truth::True
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.condition)
    }
}
