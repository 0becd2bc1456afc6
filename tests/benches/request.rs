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

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::FutureExt;
use http::{HeaderMap, HeaderValue, Method};
use http_body_util::BodyExt;

use cimguard_provider::auth::{AuthMethod, Principal, Role};
use cimguard_provider::config::ServerConfig;
use cimguard_provider::http::answer;
use cimguard_provider::interop::{standard_object_manager, InteropSettings};
use cimguard_provider::service::{Peer, Service};
use cimguard_tests::requests;

/// The allocator cmwbemd uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn service() -> Service {
    let settings = InteropSettings {
        product: "cimguard".into(),
        version: "0.1.0".into(),
        system_name: "node1".into(),
        profiles: Vec::new(),
    };
    let manager = standard_object_manager("node1", &settings).expect("the standard manager");
    let config = ServerConfig {
        danger_allow_anonymous: true,
        ..ServerConfig::default()
    };
    Service::new(config, manager, None, None)
}

fn headers(method: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=\"utf-8\""),
    );
    headers.insert("CIMOperation", HeaderValue::from_static("MethodCall"));
    headers.insert(
        "CIMMethod",
        HeaderValue::from_str(method).expect("a header value"),
    );
    headers.insert("CIMObject", HeaderValue::from_static("root%2Finterop"));
    headers
}

/// One request answered and its body collected, as the listener would send it.
fn exchange(
    service: &Service,
    peer: &Peer,
    principal: &Principal,
    headers: &HeaderMap,
    body: &[u8],
) -> Bytes {
    let response = answer(service, peer, principal, &Method::POST, headers, body);
    assert_eq!(response.status(), http::StatusCode::OK);
    response
        .into_body()
        .collect()
        .now_or_never()
        .expect("a buffered body is ready at once")
        .expect("infallible")
        .to_bytes()
}

fn request(c: &mut Criterion) {
    let service = service();
    let peer = Peer {
        address: SocketAddr::from(([127, 0, 0, 1], 40000)),
        certificate_name: None,
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
