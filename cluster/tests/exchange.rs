//! The configuration exchange over real sockets and TLS: a request and its answer, the key
//! check bound to the connection, the server's name checked, and a trickling stranger cut
//! off at the deadline.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cimguard_cluster::core::{Envelope, Epoch, Incarnation, Message, NodeId};
use cimguard_cluster::runtime::exchange::{self, Request};

const KEY: &[u8] = b"the cluster key of this test, 32";

/// The control-channel material of nodes n1, n2 and n3 under one authority.
fn material(dir: &std::path::Path) -> Vec<cimguard_certs::ControlTls> {
    let authority = cimguard_certs::ensure_cluster_authority(&dir.join("ca"), "exchange").unwrap();
    (1..=3)
        .map(|k| {
            let node_dir = dir.join(format!("n{k}"));
            std::fs::create_dir_all(&node_dir).unwrap();
            let address = IpAddr::V4(Ipv4Addr::new(127, 0, 0, k));
            let paths = cimguard_certs::issue_node_certificate(
                &authority,
                &format!("n{k}"),
                &[address],
                &node_dir,
            )
            .unwrap();
            cimguard_certs::control_tls(&paths).unwrap()
        })
        .collect()
}

fn offer_withdrawn(cluster_id: u64) -> Envelope {
    Envelope {
        cluster_id,
        config_generation: 0,
        from: NodeId(0),
        from_incarnation: Incarnation(3),
        to_incarnation: Incarnation(0),
        message: Message::ConfigWithdraw { serial: 9 },
    }
}

/// The requests a test server took: the client's node, and whether its key check held.
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

/// A server for n2 that answers whether the key check holds under `KEY`, and keeps what it
/// was asked.
fn serve(tls: &cimguard_certs::ControlTls) -> (SocketAddr, Seen) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    let answer: Arc<exchange::Answer> = Arc::new(move |request: Request| {
        let holds = exchange::key_matches(
            KEY,
            request.envelope.cluster_id,
            &request.binding,
            &request.key_check,
        );
        kept.lock().unwrap().push((request.peer.clone(), holds));
        Some(Envelope {
            cluster_id: request.envelope.cluster_id,
            config_generation: 0,
            from: NodeId(1),
            from_incarnation: Incarnation(1),
            to_incarnation: request.envelope.from_incarnation,
            message: Message::ConfigAnswer {
                serial: 9,
                commit: false,
                refusal: (!holds).then(|| "another key".to_owned()),
                epoch_max: Epoch::new(4, NodeId(1)),
            },
        })
    });
    let bound = exchange::serve(
        &[SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)],
        &tls.exchange_server,
        &answer,
    )
    .unwrap();
    (bound[0], seen)
}

#[test]
fn a_request_is_answered_and_its_key_check_holds_on_its_own_connection_only() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = material(dir.path());
    let (address, seen) = serve(&nodes[1]);

    let answer = exchange::request(
        &nodes[0].exchange_client,
        "n2",
        &[address],
        KEY,
        &offer_withdrawn(77),
    )
    .unwrap();
    assert_eq!(answer.to_incarnation, Incarnation(3));
    assert!(matches!(
        answer.message,
        Message::ConfigAnswer { refusal: None, .. }
    ));
    // Another key does not check.
    let answer = exchange::request(
        &nodes[0].exchange_client,
        "n2",
        &[address],
        b"another key, of 32 bytes as well",
        &offer_withdrawn(77),
    )
    .unwrap();
    assert!(matches!(
        answer.message,
        Message::ConfigAnswer {
            refusal: Some(_),
            ..
        }
    ));
    assert_eq!(
        *seen.lock().unwrap(),
        [("n1".to_owned(), true), ("n1".to_owned(), false)]
    );
    // A check made for one connection's keying material holds for no other.
    let binding = [7u8; exchange::BINDING_BYTES];
    let check = exchange::key_check(KEY, 77, &binding);
    assert!(exchange::key_matches(KEY, 77, &binding, &check));
    assert!(!exchange::key_matches(
        KEY,
        77,
        &[8u8; exchange::BINDING_BYTES],
        &check
    ));
    assert!(!exchange::key_matches(KEY, 78, &binding, &check));

    // The server must be the node asked for: n2's server is not n3.
    let refused = exchange::request(
        &nodes[0].exchange_client,
        "n3",
        &[address],
        KEY,
        &offer_withdrawn(77),
    );
    assert!(refused.is_err_and(|e| e.contains("tls handshake")));
    // And the control channel's protocol is not the exchange's.
    let refused = exchange::request(
        &nodes[0].client,
        "n2",
        &[address],
        KEY,
        &offer_withdrawn(77),
    );
    assert!(refused.is_err());
    assert_eq!(seen.lock().unwrap().len(), 2, "neither reached the answer");
}

#[test]
fn connections_that_trickle_are_cut_at_the_deadline_and_free_their_slots() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = material(dir.path());
    let (address, _) = serve(&nodes[1]);
    // Every slot taken by a stranger sending a byte a second (a TLS record header, slowly).
    let mut strangers: Vec<TcpStream> = (0..exchange::CONNECTIONS_MAX)
        .map(|_| TcpStream::connect(address).unwrap())
        .collect();
    let started = Instant::now();
    let bound = exchange::REQUEST_TIMEOUT + Duration::from_secs(10);
    let mut open = strangers.len();
    let mut sent = 0;
    while open > 0 {
        assert!(
            started.elapsed() < bound,
            "{open} connections still open after {:?}",
            started.elapsed()
        );
        open = 0;
        for stranger in &mut strangers {
            let _ = stranger.set_read_timeout(Some(Duration::from_millis(10)));
            let mut byte = [0u8; 1];
            let closed = matches!(stranger.read(&mut byte), Ok(0))
                || stranger.write_all(&[[0x16, 0x03, 0x01][sent % 3]]).is_err();
            if !closed {
                open += 1;
            }
        }
        sent += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(started.elapsed() >= exchange::REQUEST_TIMEOUT - Duration::from_secs(1));
    // The slots are free again: a node's request is answered.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match exchange::request(
            &nodes[0].exchange_client,
            "n2",
            &[address],
            KEY,
            &offer_withdrawn(1),
        ) {
            Ok(_) => break,
            Err(e) => assert!(Instant::now() < deadline, "{e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
