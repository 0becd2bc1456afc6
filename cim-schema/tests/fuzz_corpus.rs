//! Replays the committed cargo-fuzz seed corpora (`fuzz/corpus/`) through the same entry points
//! as the fuzz targets, so that every test run checks the seeds still decode or compile without
//! a panic, that the well-formed seeds still succeed, and that the regression seeds (inputs a
//! fuzz run found mishandled, named `regression-*`) are refused.

use std::fs;
use std::path::{Path, PathBuf};

use cim_schema::mof::{self, MemoryResolver, SourceFile};
use cim_schema::repository::Repository;
use cim_schema::xml::{self, Limits};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    corpus_of_at_least(target, 20)
}

fn corpus_of_at_least(target: &str, least: usize) -> Vec<(PathBuf, Vec<u8>)> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= least,
        "the {target} seed corpus has only {} files",
        files.len()
    );
    files
}

#[test]
fn xml_seeds_decode_without_panic() {
    let limits = Limits::default();
    let mut decoded = 0;
    for (path, bytes) in corpus("xml_decode") {
        let results = [
            xml::decode(&bytes, &limits).is_ok(),
            xml::decode_instance(&bytes, &limits).is_ok(),
            xml::decode_class(&bytes, &limits).is_ok(),
            xml::decode_instance_path(&bytes, &limits).is_ok(),
            xml::decode_object_path(&bytes, &limits).is_ok(),
            xml::decode_qualifier_declaration(&bytes, &limits).is_ok(),
            xml::decode_data(&bytes, &limits).is_ok(),
            xml::decode_export_responses(&bytes, &limits).is_ok(),
        ];
        // A regression seed is an input a fuzz run found mishandled: it must be refused.
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("regression-") {
            assert!(
                !results.contains(&true),
                "{}: a decoder accepts this regression seed",
                path.display()
            );
            continue;
        }
        // Every other seed is a valid message or fragment: some entry point must accept it.
        assert!(
            results.contains(&true),
            "{}: no decoder accepts this seed",
            path.display()
        );
        decoded += 1;
    }
    assert!(decoded >= 20);
}

#[test]
fn query_seeds_parse() {
    use cim_schema::query::{Filter, Pattern, PatternDialect, QueryLanguage, SelectQuery};
    // The fuzz target's layout: a language byte (0 WQL, 1 CQL, 2 FQL, 3 a LIKE pattern with
    // its dialect byte, the pattern, NUL and a subject), then the text. Every seed is valid.
    for (path, bytes) in corpus_of_at_least("query", 15) {
        let (&pick, rest) = bytes.split_first().expect("a language byte");
        let text = std::str::from_utf8(rest).expect("UTF-8");
        let parsed = match pick % 4 {
            0 => SelectQuery::parse(QueryLanguage::Wql, text)
                .map(drop)
                .map_err(|e| e.to_string()),
            1 => SelectQuery::parse(QueryLanguage::Cql, text)
                .map(drop)
                .map_err(|e| e.to_string()),
            2 => Filter::parse(text).map(drop).map_err(|e| e.to_string()),
            _ => {
                let (&dialect, rest) = text.as_bytes().split_first().expect("a dialect byte");
                let dialect = [
                    PatternDialect::Wql,
                    PatternDialect::Cql,
                    PatternDialect::Fql,
                ][usize::from(dialect % 3)];
                let rest = std::str::from_utf8(rest).expect("UTF-8");
                let (source, subject) = rest.split_once('\0').expect("a NUL");
                Pattern::new(dialect, source)
                    .map_err(|e| format!("{e:?}"))
                    .and_then(|p| p.is_match(subject).then_some(()).ok_or("no match".into()))
            }
        };
        assert_eq!(parsed, Ok(()), "{}", path.display());
    }
}

/// The files the MOF golden tests include, by their path below `tests/data/mof`.
fn golden_includes() -> MemoryResolver {
    fn walk(resolver: &mut MemoryResolver, root: &Path, folder: &Path) {
        for entry in fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(resolver, root, &path);
            } else {
                let relative = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                resolver.insert(relative, fs::read(&path).unwrap());
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mof");
    let mut resolver = MemoryResolver::new();
    walk(&mut resolver, &root, &root);
    resolver
}

#[test]
fn mof_seeds_compile_without_panic() {
    for (path, bytes) in corpus("mof_compile") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut resolver = golden_includes();
        let mut repository = Repository::new();
        let source = SourceFile::new(name.clone(), bytes);
        let result = mof::compile(&mut repository, "root/fuzz", &[source], &mut resolver);
        // The compiler's error goldens must fail and its other goldens compile; the DMTF files
        // lack the qualifiers or superclasses they need alone, so they only must not panic.
        if name.starts_with("seed-err_") {
            assert!(result.is_err(), "{name}: an error seed compiled");
        } else if !name.starts_with("seed-dmtf-") {
            assert!(result.is_ok(), "{name}: {}", result.unwrap_err());
        }
    }
}
