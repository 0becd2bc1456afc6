//! The request benchmark's in-process path (`benches/request.rs`: header checks, decoding, the
//! operation, the encoded response; no sockets) run a fixed number of times, for counting
//! instructions under callgrind, which is deterministic where wall-clock timing on a shared
//! machine is not:
//!
//! ```sh
//! cargo build --release -p cimguard-tests --example request_profile
//! valgrind --tool=callgrind target/release/examples/request_profile enumerate_object_manager 1
//! valgrind --tool=callgrind target/release/examples/request_profile enumerate_object_manager 1001
//! ```
//!
//! The difference of the two totals divided by 1,000 is the instructions per request; the
//! kinds are `enumerate_object_manager`, `associators_referenced_profile` and
//! `enumerate_profile_names`. `scripts/request-instructions` runs all three.

use std::net::SocketAddr;

use bytes::Bytes;
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

fn main() {
    let mut arguments = std::env::args().skip(1);
    let kind = arguments.next().unwrap_or_else(usage);
    let iterations: u32 = arguments
        .next()
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(usage);
    let (method, body, expect) = match kind.as_str() {
        "enumerate_object_manager" => (
            "EnumerateInstances",
            requests::enumerate_object_manager(),
            "<INSTANCE CLASSNAME=\"CIM_ObjectManager\"",
        ),
        "associators_referenced_profile" => (
            "Associators",
            requests::associators_referenced_profile(),
            "<IRETURNVALUE",
        ),
        "enumerate_profile_names" => (
            "EnumerateInstanceNames",
            requests::enumerate_profile_names(),
            "<INSTANCENAME CLASSNAME=\"CIM_RegisteredProfile\"",
        ),
        _ => usage(),
    };
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
    let headers = headers(method);
    // Only the first response is checked, so that the count is the server's work alone.
    let first = exchange(&service, &peer, &principal, &headers, body.as_bytes());
    let text = String::from_utf8_lossy(&first);
    assert!(
        text.contains(expect) && !text.contains("<ERROR"),
        "{kind}: {text}"
    );
    for _ in 1..iterations {
        let response = exchange(&service, &peer, &principal, &headers, body.as_bytes());
        assert_eq!(
            response.len(),
            first.len(),
            "{kind}: the same response each time"
        );
    }
    println!("{kind}: {iterations} requests, {} bytes each", first.len());
}

fn usage<T>() -> T {
    eprintln!(
        "usage: request_profile enumerate_object_manager|associators_referenced_profile|\
         enumerate_profile_names ITERATIONS"
    );
    std::process::exit(2)
}

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
