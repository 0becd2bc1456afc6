#![allow(missing_docs)] // criterion_group! generates undocumented items
//! Throughput of the CIM-XML codec on an EnumerateInstances response of 10,000 HP_SGPackage
//! instances (VALUE.NAMEDINSTANCE, about 25 properties each), one core.
//!
//! `cargo bench -p cim-schema --bench xml`. The decode figure leaves out freeing the decoded
//! message; `decode_and_drop` includes it.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use cim_schema::model::{Instance, InstancePath};
use cim_schema::xml::{begin_imethod_response, decode, Limits};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// How many instances the response carries.
const INSTANCES: usize = 10_000;

/// Chunk size the streaming encoder hands out, as a server would send them.
const CHUNK_BYTES: usize = 64 * 1024;

fn encode_response(packages: &[(InstancePath, Instance)]) -> usize {
    let mut writer = begin_imethod_response("1001", "EnumerateInstances");
    let mut total = 0;
    for (path, instance) in packages {
        writer
            .write_named_instance(path, instance)
            .expect("sample instances encode");
        if writer.buffered_len() >= CHUNK_BYTES {
            total += black_box(writer.take_chunk()).len();
        }
    }
    total + writer.finish(&[]).expect("finish").len()
}

fn codec(c: &mut Criterion) {
    let packages: Vec<_> = (0..INSTANCES).map(common::sg_package).collect();
    let mut writer = begin_imethod_response("1001", "EnumerateInstances");
    for (path, instance) in &packages {
        writer
            .write_named_instance(path, instance)
            .expect("sample instances encode");
    }
    let body = writer.finish(&[]).expect("finish");
    let limits = Limits::DEFAULT;
    assert!(decode(&body, &limits).is_ok());

    let mut group = c.benchmark_group("xml");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.sample_size(20);
    group.bench_function("encode_enumerate_instances_10k", |b| {
        b.iter(|| encode_response(black_box(&packages)));
    });
    // Decoding proper: the caller frees the message after using it, so freeing is left out
    // of this figure (criterion drops the outputs after timing)...
    group.bench_function("decode_enumerate_instances_10k", |b| {
        b.iter_with_large_drop(|| decode(black_box(&body), &limits).expect("decodes"));
    });
    // ...and here included, for the whole cost of a decoded response.
    group.bench_function("decode_and_drop_enumerate_instances_10k", |b| {
        b.iter(|| decode(black_box(&body), &limits).expect("decodes"));
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
