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

use cimguard_provider::auth::{AuthMethod, Principal, Role};
use cimguard_provider::service::Peer;
use cimguard_tests::requests::{self, exchange, headers, service};

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
        local_user: None,
        tls: false,
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
