//! Arbitrary text into the WQL, DMTF:CQL and DMTF:FQL parsers, the LIKE pattern compilers and
//! the evaluator. Any text gives a query or an error, never a panic, a hang or runaway
//! memory; a query that parses is written back (`Display`) as text that parses to the same
//! tree, and evaluates and projects on an instance with every kind of property.
//!
//! The first byte picks the language: 0 WQL, 1 CQL, 2 FQL, 3 a LIKE pattern (the rest is
//! `dialect byte, pattern, NUL, subject`).
#![no_main]

use cim_schema::model::{CimType, Datetime, Instance, Property, Value};
use cim_schema::query::{
    Filter, NameEquality, Pattern, PatternDialect, QueryErrorKind, QueryLanguage, SelectQuery,
};
use libfuzzer_sys::fuzz_target;

fn sample() -> Instance {
    let embedded = Instance::new("HP_SGNode")
        .with(Property::new(
            "Name",
            CimType::String,
            Some(Value::from("node1")),
        ))
        .with(Property::new(
            "Status",
            CimType::Uint16,
            Some(Value::Uint16(2)),
        ));
    let when = "20261202143000.000000+000"
        .parse::<Datetime>()
        .ok()
        .map(Value::Datetime);
    Instance::new("HP_SGPackage")
        .with(Property::new(
            "Name",
            CimType::String,
            Some(Value::from("dbpkg")),
        ))
        .with(Property::new(
            "Status",
            CimType::String,
            Some(Value::from("up")),
        ))
        .with(Property::new(
            "Restarts",
            CimType::Uint32,
            Some(Value::Uint32(3)),
        ))
        .with(Property::new(
            "Offset",
            CimType::Sint64,
            Some(Value::Sint64(-7)),
        ))
        .with(Property::new(
            "Load",
            CimType::Real64,
            Some(Value::Real64(0.5)),
        ))
        .with(Property::new(
            "Enabled",
            CimType::Boolean,
            Some(Value::Boolean(true)),
        ))
        .with(Property::new("Started", CimType::Datetime, when))
        .with(Property::new("Missing", CimType::String, None))
        .with(Property::new(
            "Nodes",
            CimType::String,
            Some(Value::Array(vec![
                Some(Value::from("node1")),
                None,
                Some(Value::from("node2")),
            ])),
        ))
        .with(Property::new(
            "Codes",
            CimType::Uint16,
            Some(Value::Array(vec![
                Some(Value::Uint16(1)),
                Some(Value::Uint16(9)),
            ])),
        ))
        .with(Property::new(
            "Owner",
            CimType::String,
            Some(Value::Instance(Box::new(embedded))),
        ))
}

/// A text that parsed, written back, parses to the same tree; only a limit (the written text
/// is longer or nests deeper by its parentheses) may refuse it.
fn round_trip<T: std::fmt::Debug + std::fmt::Display>(
    text: &str,
    query: &T,
    parse: impl Fn(&str) -> Result<T, cim_schema::query::QueryError>,
) {
    let shown = query.to_string();
    match parse(&shown) {
        // Debug, not PartialEq: a NaN literal equals itself here.
        Ok(again) => assert_eq!(
            format!("{again:?}"),
            format!("{query:?}"),
            "{text:?} was written back as {shown:?}"
        ),
        Err(error) => assert_eq!(
            error.kind,
            QueryErrorKind::Limit,
            "{text:?} was written back as {shown:?}, which fails: {error}"
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let instance = sample();
    match pick % 4 {
        0 | 1 => {
            let language = if pick % 4 == 0 {
                QueryLanguage::Wql
            } else {
                QueryLanguage::Cql
            };
            if let Ok(query) = SelectQuery::parse(language, text) {
                let _ = query.evaluate(&instance, &NameEquality);
                let _ = query.project(&instance);
                let _ = query.selected_properties();
                round_trip(text, &query, |t| SelectQuery::parse(language, t));
            }
        }
        2 => {
            if let Ok(filter) = Filter::parse(text) {
                let _ = filter.evaluate(&instance, &NameEquality);
                round_trip(text, &filter, Filter::parse);
            }
        }
        _ => {
            let Some((&dialect, rest)) = text.as_bytes().split_first() else {
                return;
            };
            let dialect = match dialect % 3 {
                0 => PatternDialect::Wql,
                1 => PatternDialect::Cql,
                _ => PatternDialect::Fql,
            };
            // A UTF-8 text split at a NUL byte splits into UTF-8 texts.
            let rest = std::str::from_utf8(rest).unwrap_or_default();
            let (source, subject) = rest.split_once('\0').unwrap_or((rest, "dbpkg"));
            if let Ok(pattern) = Pattern::new(dialect, source) {
                let _ = pattern.is_match(subject);
            }
        }
    }
});
