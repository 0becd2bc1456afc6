#![allow(missing_docs)] // criterion_group! generates undocumented items
//! The CIM work of one request, in process and on one core: header checks, decoding, the
//! operation against the standard object manager, and the encoded response, without sockets,
//! TLS or hyper (the WBEM server benchmark `cargo bench -p cimguard-tests --bench wbem` measures
//! those). This is the part of the server's CPU per request that is cimguard's own; it runs
//! with cmwbemd's allocator.
//!
//! `cargo bench -p cimguard-tests --bench request`

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{criterion_group, criterion_main, Criterion};

use cimguard_provider::auth::{AuthMethod, Principal, Role};
use cimguard_provider::service::Peer;
use cimguard_tests::requests::{self, exchange, headers, service};

/// The allocator cmwbemd uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn request(c: &mut Criterion) {
    let service = service();
    let peer = Peer {
        address: SocketAddr::from(([127, 0, 0, 1], 40000)),
        certificate_name: None,
        local_user: None,
        tls: false,
    };
    let principal = Principal {
        name: "anonymous".into(),
        role: Role::FullAdmin,
        method: AuthMethod::Basic,
    };
    let mut group = c.benchmark_group("request");
    for (name, method, body, expect) in [
        (
            "enumerate_object_manager",
            "EnumerateInstances",
            requests::enumerate_object_manager(),
            "<INSTANCE CLASSNAME=\"CIM_ObjectManager\"",
        ),
        (
            "associators_referenced_profile",
            "Associators",
            requests::associators_referenced_profile(),
            "<IRETURNVALUE",
        ),
        (
            "enumerate_profile_names",
            "EnumerateInstanceNames",
            requests::enumerate_profile_names(),
            "<INSTANCENAME CLASSNAME=\"CIM_RegisteredProfile\"",
        ),
    ] {
        let headers = headers(method);
        let first = exchange(&service, &peer, &principal, &headers, body.as_bytes());
        let text = String::from_utf8_lossy(&first);
        assert!(
            text.contains(expect) && !text.contains("<ERROR"),
            "{name}: {text}"
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(exchange(
                    &service,
                    &peer,
                    &principal,
                    &headers,
                    black_box(body.as_bytes()),
                ))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, request);
criterion_main!(benches);
