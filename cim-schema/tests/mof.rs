//! The MOF compiler against golden files, hostile inputs and arbitrary bytes.
//!
//! Golden files: every `tests/data/mof/*.mof` is compiled (includes served from
//! `tests/data/mof/`) into namespace `root/test`; the result is dumped as text and compared with
//! the `.out` file beside it: the compiled elements and the repository's content, or the
//! located errors. `MOF_GOLDEN_UPDATE=1 cargo test -p cim-schema --test mof` rewrites the `.out`
//! files (review the diff before committing).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use cim_schema::model::{CimType, Flavor, QualifierList, Scope, Value};
use cim_schema::mof::{
    self, check_syntax, compile, Compiled, IncludeResolver, MemoryResolver, MofErrorKind,
    NoIncludes, SourceFile, ERRORS_MAX, INCLUDE_DEPTH_MAX,
};
use cim_schema::repository::Repository;

const NAMESPACE: &str = "root/test";

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mof")
}

/// Every file under `tests/data/mof`, by path relative to it.
fn data_files() -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, prefix: &str, files: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                walk(&entry.path(), &format!("{name}/"), files);
            } else {
                files.insert(name, fs::read(entry.path()).unwrap());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(&data_dir(), "", &mut files);
    files
}

fn resolver(files: &BTreeMap<String, Vec<u8>>) -> MemoryResolver {
    let mut resolver = MemoryResolver::new();
    for (name, text) in files {
        resolver.insert(name.clone(), text.clone());
    }
    resolver
}

#[test]
fn golden_files() {
    let files = data_files();
    let update = std::env::var_os("MOF_GOLDEN_UPDATE").is_some();
    let mut failures = Vec::new();
    let mut count = 0;
    for (name, text) in &files {
        let Some(stem) = name.strip_suffix(".mof") else {
            continue;
        };
        if name.contains('/') {
            continue;
        }
        count += 1;
        let actual = compile_and_dump(name, text, &mut resolver(&files));
        let expected_path = data_dir().join(format!("{stem}.out"));
        if update {
            fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{name}: output differs from {stem}.out\n--- actual ---\n{actual}"
            ));
        }
    }
    assert!(count >= 20, "only {count} golden files found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The compiled elements and the namespaces' contents, or the errors, as stable text.
fn compile_and_dump(name: &str, text: &[u8], resolver: &mut dyn IncludeResolver) -> String {
    let mut repository = Repository::new();
    let source = SourceFile::new(name, text.to_vec());
    let mut out = String::new();
    match compile(&mut repository, NAMESPACE, &[source], resolver) {
        Err(errors) => {
            for error in &errors.0 {
                writeln!(out, "{error}").unwrap();
            }
        }
        Ok(compiled) => {
            let mut namespaces: Vec<&str> = Vec::new();
            for item in &compiled {
                let namespace = match item {
                    Compiled::Qualifier { namespace, .. }
                    | Compiled::Class { namespace, .. }
                    | Compiled::Instance { namespace, .. } => namespace.as_str(),
                };
                if !namespaces.contains(&namespace) {
                    namespaces.push(namespace);
                }
                writeln!(out, "compiled {item}").unwrap();
            }
            for namespace in namespaces {
                dump_namespace(&repository, namespace, &mut out);
            }
        }
    }
    out
}

fn dump_namespace(repository: &Repository, namespace: &str, out: &mut String) {
    let ns = repository.namespace(namespace).unwrap();
    writeln!(out, "namespace {namespace}").unwrap();
    for declaration in ns.qualifiers.values() {
        writeln!(
            out,
            "  qualifier {} : {}{} = {} scope({}) flavor({})",
            declaration.name,
            declaration.cim_type,
            array_suffix(declaration.is_array, declaration.array_size),
            value(declaration.default.as_ref()),
            scope(&declaration.scope),
            flavor(&declaration.flavor),
        )
        .unwrap();
    }
    for class in ns.classes.values() {
        let superclass = class
            .superclass
            .as_ref()
            .map_or(String::new(), |s| format!(" : {s}"));
        writeln!(out, "  class {}{superclass}", class.name).unwrap();
        qualifiers(&class.qualifiers, "    ", out);
        // Only what the class declares: inherited elements are the repository's business.
        for property in class.properties.values().filter(|p| !p.propagated) {
            writeln!(
                out,
                "    property {} : {}{} = {}{}",
                property.name,
                property.cim_type,
                array_suffix(property.is_array, property.array_size),
                value(property.value.as_ref()),
                embedded(property.embedded_object),
            )
            .unwrap();
            qualifiers(&property.qualifiers, "      ", out);
        }
        for method in class.methods.values().filter(|m| !m.propagated) {
            writeln!(out, "    method {} : {}", method.name, method.return_type).unwrap();
            qualifiers(&method.qualifiers, "      ", out);
            for parameter in &method.parameters {
                writeln!(
                    out,
                    "      parameter {} : {}{}{}",
                    parameter.name,
                    parameter.cim_type,
                    array_suffix(parameter.is_array, parameter.array_size),
                    embedded(parameter.embedded_object),
                )
                .unwrap();
                qualifiers(&parameter.qualifiers, "        ", out);
            }
        }
    }
    for (path, instance) in &ns.instances {
        let compiled = Compiled::Instance {
            namespace: namespace.to_owned(),
            path: path.clone(),
        };
        writeln!(out, "  {compiled}").unwrap();
        qualifiers(&instance.qualifiers, "    ", out);
        for property in instance.properties.values() {
            writeln!(
                out,
                "    {} : {}{} = {}",
                property.name,
                property.cim_type,
                array_suffix(property.is_array, property.array_size),
                value(property.value.as_ref()),
            )
            .unwrap();
            qualifiers(&property.qualifiers, "      ", out);
        }
    }
}

fn qualifiers(list: &QualifierList, indent: &str, out: &mut String) {
    for qualifier in list.iter().filter(|q| !q.propagated) {
        writeln!(
            out,
            "{indent}[{} : {}{} = {} flavor({})]",
            qualifier.name,
            qualifier.cim_type,
            array_suffix(qualifier.is_array, None),
            value(qualifier.value.as_ref()),
            flavor(&qualifier.flavor),
        )
        .unwrap();
    }
}

fn array_suffix(is_array: bool, size: Option<u32>) -> String {
    match (is_array, size) {
        (false, _) => String::new(),
        (true, None) => "[]".to_owned(),
        (true, Some(n)) => format!("[{n}]"),
    }
}

fn value(value: Option<&Value>) -> String {
    value.map_or_else(|| "NULL".to_owned(), |v| format!("{v:?}"))
}

fn embedded(kind: Option<cim_schema::model::EmbeddedKind>) -> String {
    kind.map_or(String::new(), |k| format!(" embedded {k:?}"))
}

fn scope(scope: &Scope) -> String {
    if scope.is_any() {
        return "any".to_owned();
    }
    let names = [
        (scope.class, "class"),
        (scope.association, "association"),
        (scope.indication, "indication"),
        (scope.property, "property"),
        (scope.reference, "reference"),
        (scope.method, "method"),
        (scope.parameter, "parameter"),
    ];
    let set: Vec<&str> = names.iter().filter(|n| n.0).map(|n| n.1).collect();
    set.join(", ")
}

fn flavor(flavor: &Flavor) -> String {
    let mut words = vec![
        if flavor.overridable {
            "EnableOverride"
        } else {
            "DisableOverride"
        },
        if flavor.to_subclass {
            "ToSubclass"
        } else {
            "Restricted"
        },
    ];
    if flavor.translatable {
        words.push("Translatable");
    }
    if flavor.to_instance {
        words.push("ToInstance");
    }
    words.join(", ")
}

// ----- typed results the golden dumps show, asserted directly -----

#[test]
fn qualifier_values_are_typed_and_flavored_by_their_declarations() {
    let files = data_files();
    let mut repository = Repository::new();
    let source = SourceFile::new("classes.mof", files["classes.mof"].clone());
    compile(&mut repository, NAMESPACE, &[source], &mut resolver(&files)).unwrap();
    let base = repository.class(NAMESPACE, "test_base").unwrap();
    let state = base.property("state").unwrap();
    let value_map = state.qualifiers.get("valuemap").unwrap();
    assert_eq!(value_map.cim_type, CimType::String);
    assert!(value_map.is_array);
    assert_eq!(
        value_map
            .value
            .as_ref()
            .and_then(Value::as_array)
            .map(<[_]>::len),
        Some(4)
    );
    let values = state.qualifiers.get("Values").unwrap();
    assert!(values.flavor.translatable);
    assert_eq!(state.value, Some(Value::Uint16(0)));
    // `[Key]` written bare is TRUE, with the declaration's DisableOverride.
    let key = base
        .property("InstanceID")
        .unwrap()
        .qualifiers
        .get("key")
        .unwrap();
    assert_eq!(key.value, Some(Value::Boolean(true)));
    assert!(!key.flavor.overridable);
    assert!(base.is_abstract());
    let derived = repository.class(NAMESPACE, "Test_Derived").unwrap();
    let reset = derived.method("reset").unwrap();
    assert_eq!(
        reset.parameter("Made").unwrap().cim_type,
        CimType::Reference(Some("Test_Base".into()))
    );
    assert!(reset.parameter("Names").unwrap().is_array);
    let component = repository.class(NAMESPACE, "Test_Component").unwrap();
    assert!(component.is_association());
    assert_eq!(
        component.property("GroupComponent").unwrap().cim_type,
        CimType::Reference(Some("Test_Base".into()))
    );
    assert!(repository
        .class(NAMESPACE, "Test_Alert")
        .unwrap()
        .is_indication());
}

// ----- hostile inputs -----

fn errors_of(text: &[u8], resolver: &mut dyn IncludeResolver) -> Vec<mof::MofError> {
    let mut repository = Repository::new();
    let source = SourceFile::new("input.mof", text.to_vec());
    match compile(&mut repository, NAMESPACE, &[source], resolver) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.0,
    }
}

#[test]
fn invalid_utf8_is_a_located_error() {
    let errors = errors_of(b"class A {\n  string S = \"\xff\xfe\"; };", &mut NoIncludes);
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_string(),
        "input.mof:2:15: the file is not valid utf-8"
    );
    assert_eq!(
        check_syntax(&SourceFile::new("x", b"\xc3".to_vec())).len(),
        1
    );
}

#[test]
fn deep_nesting_and_long_runs_are_errors_not_crashes() {
    let run = 200_000;
    let inputs = [
        "[".repeat(run),
        "{".repeat(run),
        "}".repeat(run),
        "class A {".repeat(run / 10),
        format!("class A {{ uint8 X[] = {}; }};", "{".repeat(run)),
        format!("instance of A {{ X = {}", "(".repeat(run)),
        format!("[Description({})] class A {{}};", "\"x\" ".repeat(run)),
        "9".repeat(run),
        format!("class A {{ string S = \"{}\"; }};", "\\x".repeat(run)),
    ];
    for input in inputs {
        let errors = errors_of(input.as_bytes(), &mut NoIncludes);
        assert!(!errors.is_empty(), "no error for {}", &input[..20]);
        assert!(errors.len() <= ERRORS_MAX + 1);
    }
}

#[test]
fn compilation_stops_after_max_errors() {
    let text = "class ;\n".repeat(ERRORS_MAX * 3);
    let errors = errors_of(text.as_bytes(), &mut NoIncludes);
    assert_eq!(errors.len(), ERRORS_MAX + 1);
    assert_eq!(errors[ERRORS_MAX].kind, MofErrorKind::TooManyErrors);
    assert_eq!(errors[ERRORS_MAX - 1].line, ERRORS_MAX as u32);
}

/// Serves an endless chain of distinct files, each including the next.
struct EndlessIncludes(u64);

impl IncludeResolver for EndlessIncludes {
    fn resolve(&mut self, _name: &str, _including_file: &str) -> Result<SourceFile, String> {
        self.0 += 1;
        Ok(SourceFile::new(
            format!("file{}.mof", self.0),
            b"#pragma include (\"next.mof\")".as_slice(),
        ))
    }
}

#[test]
fn include_depth_is_bounded() {
    let mut resolver = EndlessIncludes(0);
    let errors = errors_of(b"#pragma include (\"next.mof\")", &mut resolver);
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].kind,
        MofErrorKind::IncludeDepth(INCLUDE_DEPTH_MAX)
    );
    assert_eq!(resolver.0, INCLUDE_DEPTH_MAX as u64 - 1);
}

#[test]
fn a_failed_class_is_not_added_and_later_ones_are() {
    let text = b"Qualifier Key : boolean = false, Scope(property);\n\
        class A { [Key] string Id; uint8 X = 256; };\n\
        class B { [Key] string Id; };";
    let mut repository = Repository::new();
    let source = SourceFile::new("input.mof", text.as_slice());
    let errors = compile(&mut repository, NAMESPACE, &[source], &mut NoIncludes).unwrap_err();
    assert_eq!(errors.0.len(), 1);
    assert_eq!(errors.0[0].line, 2);
    assert!(repository.class(NAMESPACE, "A").is_none());
    assert!(repository.class(NAMESPACE, "B").is_some());
}

#[test]
fn files_compile_in_order_into_one_namespace() {
    let first = SourceFile::new(
        "q.mof",
        b"Qualifier Key : boolean = false, Scope(property);".as_slice(),
    );
    let second = SourceFile::new("c.mof", b"class A { [Key] string Id; };".as_slice());
    let mut repository = Repository::new();
    let compiled = compile(
        &mut repository,
        NAMESPACE,
        &[first.clone(), second.clone()],
        &mut NoIncludes,
    )
    .unwrap();
    assert_eq!(compiled.len(), 2);
    // In the other order, the qualifier is used before it is declared.
    let errors = compile(
        &mut Repository::new(),
        NAMESPACE,
        &[second, first],
        &mut NoIncludes,
    )
    .unwrap_err();
    assert_eq!(
        errors.to_string(),
        "c.mof:1:12: qualifier Key is not declared"
    );
}

#[test]
fn syntax_check_needs_no_repository() {
    let source = SourceFile::new(
        "s.mof",
        b"class A { [Anything] string S; };\nclass ;".as_slice(),
    );
    let errors = check_syntax(&source);
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_string(),
        "s.mof:2:7: expected a class name, found \";\""
    );
}

// ----- arbitrary input never panics -----

/// Fragments of MOF, so that random sequences get deep into the grammar.
const FRAGMENTS: &[&str] = &[
    "class",
    "instance",
    "of",
    "as",
    "$a",
    "Qualifier",
    "Scope",
    "Flavor",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    ";",
    ",",
    ":",
    "=",
    "#pragma",
    "include",
    "namespace",
    "\"x\"",
    "\"\\x41\"",
    "'c'",
    "1",
    "-1",
    "0x10",
    "101b",
    "1.5",
    "300",
    "NULL",
    "TRUE",
    "Key",
    "Description",
    "ValueMap",
    "string",
    "uint8",
    "uint16",
    "REF",
    "A",
    "B",
    "any",
    "property",
    "DisableOverride",
    "In",
    "EmbeddedObject",
    "datetime",
    "\"20240101000000.000000+000\"",
    "\"A.Id=\\\"1\\\"\"",
];

/// The qualifier declarations the random sequences may use.
const PRELUDE: &str = "Qualifier Key : boolean = false, Scope(property, reference);\n\
    Qualifier Description : string, Scope(any);\n\
    Qualifier ValueMap : string[], Scope(property);\n\
    Qualifier In : boolean = true, Scope(parameter);\n\
    Qualifier EmbeddedObject : boolean, Scope(property, parameter);\n\
    class A { [Key] string Id; B REF R; uint8 N; };\n";

/// Serves any include with the same random text.
struct Echo(Vec<u8>);

impl IncludeResolver for Echo {
    fn resolve(&mut self, name: &str, _including_file: &str) -> Result<SourceFile, String> {
        Ok(SourceFile::new(name, self.0.clone()))
    }
}

proptest! {
    // 512 cases by default; PROPTEST_CASES=100000 for a longer hunt.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(512),
    ))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = errors_of(&bytes, &mut Echo(bytes.clone()));
        let _ = check_syntax(&SourceFile::new("x", bytes));
    }

    #[test]
    fn arbitrary_token_sequences_never_panic(
        picks in proptest::collection::vec(0..FRAGMENTS.len(), 0..80),
    ) {
        let mut text = PRELUDE.to_owned();
        for pick in picks {
            text.push_str(FRAGMENTS[pick]);
            text.push(' ');
        }
        let errors = errors_of(text.as_bytes(), &mut Echo(text.clone().into_bytes()));
        for error in errors {
            prop_assert!(error.line >= 1 && error.column >= 1);
            prop_assert_eq!(error.file.is_empty(), false);
        }
    }
}

/// Serves two files that each include the other's successor twice: no cycle, but the number
/// of compilations doubles with each level.
struct Doubling;

impl IncludeResolver for Doubling {
    fn resolve(&mut self, name: &str, _including_file: &str) -> Result<SourceFile, String> {
        let level: usize = name.parse().map_err(|_| "bad name".to_owned())?;
        let next = level + 1;
        Ok(SourceFile::new(
            name,
            format!("#pragma include (\"{next}\")\n#pragma include (\"{next}\")\n").into_bytes(),
        ))
    }
}

#[test]
fn include_fan_out_is_bounded() {
    let errors = errors_of(b"#pragma include (\"0\")", &mut Doubling);
    assert!(errors.iter().any(|e| e.kind
        == MofErrorKind::TooManyIncludes(mof::INCLUDED_FILES_MAX)
        || e.kind == MofErrorKind::IncludeDepth(INCLUDE_DEPTH_MAX)));
    assert!(errors.len() <= ERRORS_MAX + 1);
}
