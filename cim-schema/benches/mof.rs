#![allow(missing_docs)] // criterion_group! generates undocumented items
//! Benchmarks of the MOF compiler: the complete DMTF CIM Schema 2.41 (1438 classes, about 4 MB
//! in 1441 files) compiled from memory into a fresh repository.

use std::fs;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use cim_schema::mof::{check_syntax, compile, MemoryResolver, SourceFile};
use cim_schema::repository::Repository;

const SCHEMA_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/dmtf/cim-schema-2.41"
);
const ENTRY: &str = "cim_schema_2.41.0.mof";

/// Every `.mof` file of the schema by relative path, with the total size in bytes.
fn schema_files() -> (Vec<(String, Vec<u8>)>, u64) {
    fn walk(dir: &Path, prefix: &str, files: &mut Vec<(String, Vec<u8>)>) {
        for entry in fs::read_dir(dir).expect("the DMTF schema directory") {
            let entry = entry.expect("a directory entry");
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.path().is_dir() {
                walk(&entry.path(), &format!("{name}/"), files);
            } else if name.ends_with(".mof") {
                files.push((name, fs::read(entry.path()).expect("a MOF file")));
            }
        }
    }
    let mut files = Vec::new();
    walk(Path::new(SCHEMA_DIR), "", &mut files);
    let bytes = files.iter().map(|(_, text)| text.len() as u64).sum();
    (files, bytes)
}

fn dmtf_schema(c: &mut Criterion) {
    let (files, bytes) = schema_files();
    let mut resolver = MemoryResolver::new();
    let mut entry = None;
    for (name, text) in &files {
        if name == ENTRY {
            entry = Some(SourceFile::new(ENTRY, text.clone()));
        }
        resolver.insert(name.clone(), text.clone());
    }
    let entry = entry.expect("the schema's entry file");
    let mut group = c.benchmark_group("mof");
    group.throughput(Throughput::Bytes(bytes));
    group.sample_size(20);
    group.bench_function("compile_dmtf_2.41", |b| {
        b.iter(|| {
            let mut repository = Repository::new();
            let compiled = compile(
                &mut repository,
                "root/cimv2",
                std::slice::from_ref(&entry),
                &mut resolver,
            )
            .expect("the DMTF schema compiles");
            assert!(compiled.len() > 1438);
            repository
        });
    });
    let sources: Vec<SourceFile> = files
        .iter()
        .map(|(name, text)| SourceFile::new(name.clone(), text.clone()))
        .collect();
    group.bench_function("parse_dmtf_2.41", |b| {
        b.iter(|| {
            for source in &sources {
                assert!(check_syntax(source).is_empty());
            }
        });
    });
    group.finish();
}

criterion_group!(benches, dmtf_schema);
criterion_main!(benches);
