#![allow(missing_docs)] // criterion_group! generates undocumented items
//! Benchmarks of the xml code (filled in by the xml work).

use criterion::{criterion_group, criterion_main, Criterion};

fn placeholder(_c: &mut Criterion) {}

criterion_group!(benches, placeholder);
criterion_main!(benches);
