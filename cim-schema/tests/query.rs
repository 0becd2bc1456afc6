//! The query languages against golden files and properties:
//!
//! - `data/query/parse.txt`: queries in each language and their canonical text (the parsed tree
//!   written back), or the kind and byte offset of their error.
//! - `data/query/match.txt`: queries and the fixture instances each selects.
//! - proptest: no input panics the parsers, and a written-back tree parses to the same tree.
//!
//! Set `QUERY_BLESS=1` to rewrite the expected lines of `parse.txt` from the current output
//! (then review the diff).

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use cim_schema::model::{
    Char16, CimType, Class, Datetime, Instance, InstancePath, ObjectPath, Property, Value,
};
use cim_schema::query::{
    ComparisonOperator, ElementTest, Expression, Filter, Index, Literal, NameEquality,
    NamespaceSchema, Operand, PathSegment, PropertyPath, Quantifier, QueryErrorKind, QueryLanguage,
    SelectQuery, Truth, QUERY_BYTES_MAX, QUERY_DEPTH_MAX,
};
use cim_schema::query::{Pattern, PatternDialect};
use cim_schema::repository::Repository;
use proptest::prelude::*;

const NAMESPACE: &str = "root/cimv2";

fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/query")
        .join(name)
}

// --- fixture ---------------------------------------------------------------------------------

fn repository() -> Repository {
    let mut repository = Repository::new();
    repository.create_namespace(NAMESPACE);
    for (name, superclass) in [
        ("CIM_ManagedElement", None),
        ("CIM_LogicalElement", Some("CIM_ManagedElement")),
        ("HP_SGPackage", Some("CIM_LogicalElement")),
        ("HP_SGFailoverPackage", Some("HP_SGPackage")),
        ("HP_SGNode", Some("CIM_LogicalElement")),
        ("CIM_Indication", None),
        ("CIM_InstIndication", Some("CIM_Indication")),
        ("CIM_InstModification", Some("CIM_InstIndication")),
    ] {
        repository
            .add_class(NAMESPACE, Class::new(name, superclass.map(Into::into)))
            .unwrap();
    }
    repository
}

fn string(name: &str, value: &str) -> Property {
    Property::new(name, CimType::String, Some(Value::from(value)))
}

fn null(name: &str, cim_type: CimType) -> Property {
    Property::new(name, cim_type, None)
}

fn strings(name: &str, values: &[Option<&str>]) -> Property {
    let items = values.iter().map(|v| v.map(Value::from)).collect();
    Property::new(name, CimType::String, Some(Value::Array(items)))
}

fn datetime(name: &str, text: &str) -> Property {
    let value = Value::Datetime(Datetime::parse(text).unwrap());
    Property::new(name, CimType::Datetime, Some(value))
}

fn embedded(name: &str, instance: Instance) -> Property {
    Property::new(
        name,
        CimType::String,
        Some(Value::Instance(Box::new(instance))),
    )
}

#[allow(clippy::too_many_arguments)]
fn package(
    class: &str,
    name: &str,
    status: Option<&str>,
    priority: Option<u32>,
    nodes: Option<&[Option<&str>]>,
    enabled: Option<bool>,
    weight: Option<f64>,
    started: Option<&str>,
    code: Option<char>,
) -> Instance {
    let mut instance = Instance::new(class)
        .with(string("Name", name))
        .with(match status {
            Some(status) => string("Status", status),
            None => null("Status", CimType::String),
        })
        .with(Property::new(
            "Priority",
            CimType::Uint32,
            priority.map(Value::from),
        ))
        .with(Property::new(
            "Enabled",
            CimType::Boolean,
            enabled.map(Value::from),
        ))
        .with(Property::new(
            "Weight",
            CimType::Real64,
            weight.map(Value::from),
        ))
        .with(Property::new(
            "Code",
            CimType::Char16,
            code.map(|c| Value::Char16(Char16::from(c))),
        ));
    instance.set(match nodes {
        Some(nodes) => strings("Nodes", nodes),
        None => {
            let mut property = null("Nodes", CimType::String);
            property.is_array = true;
            property
        }
    });
    instance.set(match started {
        Some(text) => datetime("Started", text),
        None => null("Started", CimType::Datetime),
    });
    instance
}

fn modification(source: Instance, previous: Instance) -> Instance {
    Instance::new("CIM_InstModification")
        .with(embedded("SourceInstance", source))
        .with(embedded("PreviousInstance", previous))
        .with(Property::new(
            "PerceivedSeverity",
            CimType::Uint16,
            Some(Value::Uint16(2)),
        ))
}

/// The fixture instances and their labels in the golden files.
fn instances() -> Vec<(&'static str, Instance)> {
    let pkg1 = package(
        "HP_SGPackage",
        "pkg1",
        Some("up"),
        Some(10),
        Some(&[Some("node1"), Some("node2")]),
        Some(true),
        Some(1.5),
        Some("20260101120000.000000+000"),
        Some('A'),
    )
    .with(Property::new(
        "Cluster",
        CimType::Reference(Some("HP_SGCluster".into())),
        Some(Value::Reference(Box::new(ObjectPath::Instance(
            InstancePath::new("HP_SGCluster").with_key("Name", "prodcl"),
        )))),
    ))
    .with(Property::new(
        "Counters",
        CimType::Sint64,
        Some(Value::Array(vec![
            Some(Value::Sint64(-3)),
            Some(Value::Sint64(7)),
        ])),
    ));
    let pkg2 = package(
        "HP_SGPackage",
        "pkg2",
        Some("down"),
        Some(5),
        Some(&[Some("node2")]),
        Some(false),
        Some(2.0),
        Some("20260101130000.000000+060"),
        Some('B'),
    );
    let pkg3 = package(
        "HP_SGFailoverPackage",
        "dbpkg",
        Some("up"),
        Some(20),
        Some(&[]),
        Some(true),
        None,
        None,
        Some('a'),
    );
    let pkg4 = package(
        "HP_SGPackage",
        "web_pkg",
        Some("Up"),
        None,
        Some(&[Some("node3"), None]),
        None,
        Some(0.5),
        Some("20251231235959.999999+000"),
        None,
    )
    .with(string("Description", "50% done, it's \"fine\""));
    let node = Instance::new("HP_SGNode")
        .with(string("Name", "node1"))
        .with(string("Status", "down"));
    let node_before = Instance::new("HP_SGNode")
        .with(string("Name", "node1"))
        .with(string("Status", "up"));
    let ind1 = modification(pkg2.clone(), {
        let mut before = pkg2.clone();
        before.set(string("Status", "up"));
        before
    });
    let ind2 = modification(pkg1.clone(), pkg1.clone());
    let ind3 = modification(node, node_before);
    vec![
        ("pkg1", pkg1),
        ("pkg2", pkg2),
        ("pkg3", pkg3),
        ("pkg4", pkg4),
        ("ind1", ind1),
        ("ind2", ind2),
        ("ind3", ind3),
    ]
}

// --- goldens ---------------------------------------------------------------------------------

/// The `LANG query` lines of a golden file, each with the expected line after it.
fn cases(text: &str) -> Vec<(usize, QueryLanguage, String, String)> {
    let mut cases = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((number, line)) = lines.next() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (language, query) = line.split_once(' ').unwrap_or((line, ""));
        let language = match language {
            "WQL" => QueryLanguage::Wql,
            "CQL" => QueryLanguage::Cql,
            "FQL" => QueryLanguage::Fql,
            other => panic!("line {}: unknown language {other:?}", number + 1),
        };
        let expected = match lines.next() {
            Some((_, expected)) if expected.starts_with("=>") || expected.starts_with("!!") => {
                expected.to_owned()
            }
            _ => panic!("line {}: the query needs an expected line", number + 1),
        };
        cases.push((number + 1, language, query.to_owned(), expected));
    }
    cases
}

fn parse_outcome(language: QueryLanguage, query: &str) -> String {
    let parsed = match language {
        QueryLanguage::Fql => Filter::parse(query).map(|filter| filter.to_string()),
        other => SelectQuery::parse(other, query).map(|select| select.to_string()),
    };
    match parsed {
        Ok(text) => format!("=> {text}"),
        Err(error) => format!(
            "!! {:?} at {}: {}",
            error.kind, error.position, error.message
        ),
    }
}

#[test]
fn parse_golden() {
    let path = data_path("parse.txt");
    let text = fs::read_to_string(&path).unwrap();
    let bless = std::env::var_os("QUERY_BLESS").is_some();
    let mut blessed = String::new();
    let mut failures = Vec::new();
    let mut expected_of = std::collections::HashMap::new();
    for (line, language, query, expected) in cases(&text) {
        let actual = parse_outcome(language, &query);
        if actual != expected {
            failures.push(format!(
                "line {line}: {query}\n  expected {expected}\n  actual   {actual}"
            ));
        }
        // A canonical text must itself parse to the same canonical text.
        if let Some(canonical) = actual.strip_prefix("=> ") {
            assert_eq!(parse_outcome(language, canonical), actual, "line {line}");
        }
        expected_of.insert(line, actual);
    }
    if bless {
        let mut pending: Option<String> = None;
        for (number, line) in text.lines().enumerate() {
            if let Some(actual) = pending.take() {
                blessed.push_str(&actual);
                blessed.push('\n');
                continue;
            }
            blessed.push_str(line);
            blessed.push('\n');
            pending = expected_of.get(&(number + 1)).cloned();
        }
        fs::write(&path, blessed).unwrap();
        return;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn match_golden() {
    let text = fs::read_to_string(data_path("match.txt")).unwrap();
    let repository = repository();
    let schema = NamespaceSchema {
        repository: &repository,
        namespace: NAMESPACE,
    };
    let instances = instances();
    let mut failures = Vec::new();
    let mut count = 0;
    for (line, language, query, expected) in cases(&text) {
        let selected: Vec<&str> = match language {
            QueryLanguage::Fql => {
                let filter = Filter::parse(&query)
                    .unwrap_or_else(|error| panic!("line {line}: {query}: {error}"));
                instances
                    .iter()
                    .filter(|(_, instance)| filter.matches(instance, &schema))
                    .map(|(label, _)| *label)
                    .collect()
            }
            other => {
                let select = SelectQuery::parse(other, &query)
                    .unwrap_or_else(|error| panic!("line {line}: {query}: {error}"));
                instances
                    .iter()
                    .filter(|(_, instance)| select.matches(instance, &schema))
                    .map(|(label, _)| *label)
                    .collect()
            }
        };
        let actual = if selected.is_empty() {
            "=> (none)".to_owned()
        } else {
            format!("=> {}", selected.join(" "))
        };
        if actual != expected {
            failures.push(format!(
                "line {line}: {query}\n  expected {expected}\n  actual   {actual}"
            ));
        }
        count += 1;
    }
    assert!(count > 50, "the golden file has only {count} cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// --- API behaviour ---------------------------------------------------------------------------

#[test]
fn languages_are_named_case_insensitively() {
    assert_eq!(QueryLanguage::from_name("wql"), Some(QueryLanguage::Wql));
    assert_eq!(
        QueryLanguage::from_name("DMTF:CQL"),
        Some(QueryLanguage::Cql)
    );
    assert_eq!(QueryLanguage::from_name("cql"), Some(QueryLanguage::Cql));
    assert_eq!(
        QueryLanguage::from_name("dmtf:fql"),
        Some(QueryLanguage::Fql)
    );
    assert_eq!(QueryLanguage::from_name("SQL"), None);
    assert_eq!(QueryLanguage::Fql.as_str(), "DMTF:FQL");
    let error = SelectQuery::parse(QueryLanguage::Fql, "SELECT * FROM A").unwrap_err();
    assert_eq!(error.kind, QueryErrorKind::Unsupported);
}

#[test]
fn selected_properties_and_projection() {
    let query = SelectQuery::parse(
        QueryLanguage::Cql,
        "SELECT p.Name, p.Status, Name, SourceInstance.Name FROM HP_SGPackage p",
    )
    .unwrap();
    let names = query.selected_properties().unwrap();
    let spelled: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    assert_eq!(spelled, ["Name", "Status", "SourceInstance"]);
    let (_, pkg1) = &instances()[0];
    let projected = query.project(pkg1);
    assert_eq!(projected.class_name, "HP_SGPackage");
    let kept: Vec<&str> = projected.properties.keys().map(|n| n.as_str()).collect();
    assert_eq!(kept, ["Name", "Status"]);

    let all = SelectQuery::parse(QueryLanguage::Wql, "select * from HP_SGPackage").unwrap();
    assert_eq!(all.selected_properties(), None);
    assert_eq!(all.project(pkg1), *pkg1);
    assert_eq!(all.class_name(), "hp_sgpackage");
    let star = SelectQuery::parse(QueryLanguage::Cql, "SELECT p.* FROM HP_SGPackage AS p").unwrap();
    assert_eq!(star.selected_properties(), None);
}

#[test]
fn indication_filter_selects_status_changes_of_packages() {
    let repository = repository();
    let schema = NamespaceSchema {
        repository: &repository,
        namespace: NAMESPACE,
    };
    let query = SelectQuery::parse(
        QueryLanguage::Wql,
        "SELECT * FROM CIM_InstModification WHERE SourceInstance ISA HP_SGPackage \
         AND SourceInstance.Status <> PreviousInstance.Status",
    )
    .unwrap();
    let selected: Vec<&str> = instances()
        .iter()
        .filter(|(_, instance)| query.matches(instance, &schema))
        .map(|(label, _)| *label)
        .collect();
    assert_eq!(selected, ["ind1"]);
    // Without a repository the subclass relation is unknown: ISA holds only for the class.
    let (_, pkg3) = &instances()[2];
    let isa = SelectQuery::parse(
        QueryLanguage::Cql,
        "SELECT * FROM HP_SGPackage AS p WHERE p ISA HP_SGPackage",
    )
    .unwrap();
    assert!(isa.matches(pkg3, &schema));
    assert!(!isa.matches(pkg3, &NameEquality));
}

#[test]
fn unknown_is_neither_true_nor_false() {
    let (_, pkg3) = &instances()[2];
    let filter = Filter::parse("Weight > 1").unwrap();
    assert_eq!(filter.evaluate(pkg3, &NameEquality), Truth::Unknown);
    let negated = Filter::parse("NOT Weight > 1").unwrap();
    assert_eq!(negated.evaluate(pkg3, &NameEquality), Truth::Unknown);
    assert!(!negated.matches(pkg3, &NameEquality));
    let mismatched = Filter::parse("Name = 5").unwrap();
    assert_eq!(mismatched.evaluate(pkg3, &NameEquality), Truth::Unknown);
}

#[test]
fn errors_locate_the_problem() {
    let error = SelectQuery::parse(QueryLanguage::Wql, "SELECT * FROM A WHERE x = ").unwrap_err();
    assert_eq!((error.kind, error.position), (QueryErrorKind::Syntax, 26));
    let error =
        SelectQuery::parse(QueryLanguage::Wql, "SELECT * FROM A WHERE x LIKE 'a[b'").unwrap_err();
    assert_eq!(error.kind, QueryErrorKind::Syntax);
    assert_eq!(error.position, 31);
    assert!(error.to_string().contains("at byte 31"));
}

#[test]
fn limits_are_errors_not_overflows() {
    let long = format!("a = '{}'", "x".repeat(QUERY_BYTES_MAX));
    assert_eq!(
        Filter::parse(&long).unwrap_err().kind,
        QueryErrorKind::Limit
    );

    let nested = format!("{}a = 1{}", "(".repeat(100_000), ")".repeat(100_000));
    let nested = &nested[..nested.len().min(QUERY_BYTES_MAX)];
    assert_eq!(
        Filter::parse(nested).unwrap_err().kind,
        QueryErrorKind::Limit
    );
    let nots = "NOT ".repeat(QUERY_DEPTH_MAX + 1) + "a = 1";
    assert_eq!(
        Filter::parse(&nots).unwrap_err().kind,
        QueryErrorKind::Limit
    );
    let fine = "NOT ".repeat(QUERY_DEPTH_MAX) + "a = 1";
    assert!(Filter::parse(&fine).is_ok());

    // A long flat chain is not nesting: it parses and evaluates.
    let chain = vec!["a = 1"; 5000].join(" AND ");
    let filter = Filter::parse(&chain).unwrap();
    let instance =
        Instance::new("X").with(Property::new("a", CimType::Uint8, Some(Value::Uint8(1))));
    assert!(filter.matches(&instance, &NameEquality));

    let path = vec!["p"; 17].join(".");
    let error = Filter::parse(&format!("{path} = 1")).unwrap_err();
    assert_eq!(error.kind, QueryErrorKind::Limit);
}

// --- properties ------------------------------------------------------------------------------

const KEYWORDS: [&str; 15] = [
    "select", "from", "where", "and", "or", "not", "is", "null", "isa", "like", "true", "false",
    "as", "any", "every",
];

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,6}".prop_filter("not a keyword", |n| {
        !KEYWORDS.contains(&n.to_lowercase().as_str())
    })
}

fn literal(arrays: bool) -> BoxedStrategy<Literal> {
    let scalar = prop_oneof![
        "[ -~]{0,8}".prop_map(Literal::String),
        any::<i64>().prop_map(|i| Literal::Integer(i.into())),
        any::<u64>().prop_map(|i| Literal::Integer(i.into())),
        (-1e12f64..1e12).prop_map(Literal::Real),
        any::<bool>().prop_map(Literal::Boolean),
    ];
    if arrays {
        prop_oneof![
            4 => scalar.clone(),
            1 => Just(Literal::Null),
            1 => prop::collection::vec(scalar, 0..4).prop_map(Literal::Array),
        ]
        .boxed()
    } else {
        prop_oneof![4 => scalar, 1 => Just(Literal::Null)].boxed()
    }
}

fn path(language: QueryLanguage, all_elements: bool) -> BoxedStrategy<PropertyPath> {
    let scoped = language != QueryLanguage::Fql;
    let indexed = language != QueryLanguage::Wql;
    let segment = (
        prop::option::weighted(0.2, name()),
        name(),
        prop::option::weighted(0.2, 0u32..100),
    )
        .prop_map(move |(scope, name, index)| PathSegment {
            scope: scope.filter(|_| scoped).map(Into::into),
            name: name.into(),
            index: index.filter(|_| indexed).map(Index::Position),
        });
    (prop::collection::vec(segment, 1..4), any::<bool>())
        .prop_map(move |(mut segments, star)| {
            if all_elements {
                if let Some(last) = segments.last_mut() {
                    last.index = star.then_some(Index::All);
                }
            }
            PropertyPath { segments }
        })
        .boxed()
}

fn operator() -> impl Strategy<Value = ComparisonOperator> {
    prop_oneof![
        Just(ComparisonOperator::Equal),
        Just(ComparisonOperator::NotEqual),
        Just(ComparisonOperator::Less),
        Just(ComparisonOperator::LessOrEqual),
        Just(ComparisonOperator::Greater),
        Just(ComparisonOperator::GreaterOrEqual),
    ]
}

fn operand(language: QueryLanguage) -> BoxedStrategy<Operand> {
    prop_oneof![
        path(language, false).prop_map(Operand::Property),
        literal(language == QueryLanguage::Fql).prop_map(Operand::Literal),
    ]
    .boxed()
}

fn pattern(language: QueryLanguage) -> BoxedStrategy<Pattern> {
    let (dialect, source) = match language {
        QueryLanguage::Wql => (PatternDialect::Wql, "([a-z%_']|\\[[a-c]\\]){0,6}"),
        QueryLanguage::Cql => (PatternDialect::Cql, "([a-z.']\\*?){0,6}"),
        QueryLanguage::Fql => (PatternDialect::Fql, "(([a-z.]|\\([a-z]\\))[*+?]?){0,6}"),
    };
    source
        .prop_map(move |text| Pattern::new(dialect, &text).unwrap())
        .boxed()
}

fn expression(language: QueryLanguage) -> BoxedStrategy<Expression> {
    let quantified = language != QueryLanguage::Wql;
    let leaf = prop_oneof![
        (operand(language), operator(), operand(language)).prop_map(|(left, operator, right)| {
            Expression::Comparison {
                left,
                operator,
                right,
            }
        }),
        (operand(language), pattern(language), any::<bool>()).prop_map(
            |(operand, pattern, negated)| Expression::Like {
                operand,
                pattern,
                negated
            }
        ),
        (operand(language), any::<bool>())
            .prop_map(|(operand, negated)| Expression::IsNull { operand, negated }),
        (path(language, false), name()).prop_map(|(path, class)| Expression::Isa {
            path,
            class_name: class.into(),
        }),
        (
            prop::bool::weighted(0.3).prop_map(move |use_it| use_it && quantified),
            any::<bool>(),
            path(language, true),
            operator(),
            operand(language),
            pattern(language),
        )
            .prop_map(move |(use_it, any, path, operator, right, pattern)| {
                let test = if any {
                    ElementTest::Comparison { operator, right }
                } else {
                    ElementTest::Like {
                        pattern,
                        negated: false,
                    }
                };
                if use_it {
                    Expression::Quantified {
                        quantifier: if any {
                            Quantifier::Any
                        } else {
                            Quantifier::Every
                        },
                        path,
                        test,
                    }
                } else {
                    Expression::IsNull {
                        operand: Operand::Literal(Literal::Null),
                        negated: true,
                    }
                }
            }),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expression::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expression::Or),
            inner.prop_map(|e| Expression::Not(Box::new(e))),
        ]
    })
    .boxed()
}

fn language() -> impl Strategy<Value = QueryLanguage> {
    prop_oneof![
        Just(QueryLanguage::Wql),
        Just(QueryLanguage::Cql),
        Just(QueryLanguage::Fql)
    ]
}

/// Text made of query tokens, more likely than random characters to reach deep parser states.
fn token_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("SELECT"),
        Just("*"),
        Just("FROM"),
        Just("WHERE"),
        Just("AND"),
        Just("OR"),
        Just("NOT"),
        Just("IS"),
        Just("NULL"),
        Just("ISA"),
        Just("LIKE"),
        Just("ANY"),
        Just("EVERY"),
        Just("AS"),
        Just("("),
        Just(")"),
        Just("["),
        Just("]"),
        Just("{"),
        Just("}"),
        Just("."),
        Just(","),
        Just("::"),
        Just("="),
        Just("<>"),
        Just("<"),
        Just(">="),
        Just("-"),
        Just("'a%'"),
        Just("\"b\""),
        Just("'[x'"),
        Just("'(a'"),
        Just("12"),
        Just("0x1f"),
        Just("1.5e3"),
        Just("TRUE"),
        Just("Prop"),
        Just("x"),
        Just("CIM_X"),
        Just("[*]"),
        Just("'2026'"),
    ];
    prop::collection::vec(token, 0..30).prop_map(|tokens| tokens.join(" "))
}

fn exercise(language: QueryLanguage, text: &str) {
    let instances = instances();
    match language {
        QueryLanguage::Fql => {
            if let Ok(filter) = Filter::parse(text) {
                for (_, instance) in &instances {
                    filter.evaluate(instance, &NameEquality);
                }
                let again = Filter::parse(&filter.to_string()).unwrap();
                assert_eq!(again, filter);
            }
        }
        other => {
            if let Ok(select) = SelectQuery::parse(other, text) {
                for (_, instance) in &instances {
                    select.evaluate(instance, &NameEquality);
                    select.project(instance);
                }
                let again = SelectQuery::parse(other, &select.to_string()).unwrap();
                assert_eq!(again, select);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(language in language(), text in "\\PC{0,80}") {
        exercise(language, &text);
    }

    #[test]
    fn token_soup_never_panics(language in language(), text in token_soup()) {
        exercise(language, &format!("SELECT * FROM CIM_X WHERE {text}"));
        exercise(language, &text);
    }

    #[test]
    fn written_conditions_parse_back(
        (language, condition) in language().prop_flat_map(|l| (Just(l), expression(l)))
    ) {
        match language {
            QueryLanguage::Fql => {
                let text = condition.to_string();
                let filter = Filter::parse(&text)
                    .unwrap_or_else(|error| panic!("{text}: {error}"));
                prop_assert_eq!(filter.condition(), &condition);
            }
            other => {
                let text = format!("SELECT * FROM CIM_X WHERE {condition}");
                let select = SelectQuery::parse(other, &text)
                    .unwrap_or_else(|error| panic!("{text}: {error}"));
                prop_assert_eq!(select.condition(), Some(&condition));
                let mut rewritten = String::new();
                write!(rewritten, "{select}").unwrap();
                prop_assert_eq!(rewritten, text);
            }
        }
    }
}
