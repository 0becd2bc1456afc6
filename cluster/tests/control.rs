//! The control channel over real loopback TCP with real TLS: a frame far larger than a
//! heartbeat datagram goes from one node to another; a client with a certificate of another
//! authority, one naming no configured node, and a genuine node that sends in another node's
//! name, and any client from an address that is no node's, are refused and counted, and
//! nothing of theirs reaches the node. A halted cmapplyconf's messages are taken as from the
//! node the certificate names, whatever number they carry (the sender may number the nodes
//! as a change of the nodes does).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cimguard_certs::{control_tls, ensure_cluster_authority, issue_node_certificate, ControlTls};
use cimguard_cluster::core::{Envelope, Epoch, FenceReason, Incarnation, Message, NodeId};
use cimguard_cluster::runtime::auth::PAYLOAD_MAX;
use cimguard_cluster::runtime::control::{
    route, ControlChannel, ControlSettings, ControlStatus, Deliver, Route, Tell,
};
use cimguard_cluster::wire;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

const NAMES: [&str; 2] = ["n1", "n2"];

/// Loopback addresses of their own for this test, on one free port.
fn addresses(first: u8) -> Vec<Vec<SocketAddr>> {
    let probe = TcpListener::bind((Ipv4Addr::new(127, 0, 0, first), 0)).unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    (0..NAMES.len() as u8)
        .map(|k| {
            vec![SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(127, 0, 0, first + k)),
                port,
            )]
        })
        .collect()
}

fn node_tls(authority_dir: &Path, node: &str, dir: &Path) -> ControlTls {
    let authority = ensure_cluster_authority(authority_dir, "testcluster").unwrap();
    let paths = issue_node_certificate(&authority, node, &[], dir).unwrap();
    control_tls(&paths).unwrap()
}

fn envelope(from: u32, message: Message) -> Envelope {
    Envelope {
        cluster_id: 7,
        config_generation: 1,
        from: NodeId(from),
        from_incarnation: Incarnation(1),
        to_incarnation: Incarnation(0),
        message,
    }
}

struct Node {
    channel: ControlChannel,
    received: mpsc::Receiver<(usize, Envelope)>,
}

fn start(me: u32, tls: ControlTls, addresses: &[Vec<SocketAddr>]) -> Node {
    let (deliver, received) = mpsc::channel();
    let deliver = std::sync::Mutex::new(deliver);
    let deliver: Arc<Deliver> = Arc::new(move |network, envelope| {
        deliver.lock().unwrap().send((network, envelope)).is_ok()
    });
    let tell: Arc<Tell> = Arc::new(|line| eprintln!("{line}"));
    let settings = ControlSettings {
        tls,
        me: NodeId(me),
        names: NAMES.iter().map(|n| (*n).to_owned()).collect(),
        addresses: addresses.to_vec(),
    };
    let channel = ControlChannel::start(settings, &deliver, &tell).unwrap();
    Node { channel, received }
}

/// Waits until `check` holds for the node's status, or panics with the last one.
fn wait_for(node: &Node, what: &str, check: impl Fn(&ControlStatus) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = node.channel.status();
        if check(&status) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {status:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Connects from `from` (port 0) to `to` as a client with `tls`, sends `frame` and returns
/// whether the server accepted the connection.
fn raw_send(
    tls: &ControlTls,
    from: SocketAddr,
    to: SocketAddr,
    server: &str,
    frame: &[u8],
) -> bool {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(from.ip(), 0).into()).unwrap();
    socket.connect(&to.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let name = ServerName::try_from(server.to_owned()).unwrap();
    let connection = ClientConnection::new(tls.client.clone(), name).unwrap();
    let mut tls = StreamOwned::new(connection, stream);
    let mut accepted = [0u8; 1];
    if tls.read_exact(&mut accepted).is_err() {
        return false;
    }
    tls.write_all(&(frame.len() as u32).to_le_bytes()).unwrap();
    tls.write_all(frame).unwrap();
    tls.flush().unwrap();
    true
}

/// Configurations, commands and orders travel on the channel; the membership protocol's
/// messages on both the channel and datagrams; heartbeats on datagrams only.
#[test]
fn reformation_commands_and_configurations_travel_on_the_channel() {
    let epoch = Epoch(7);
    for control in [
        Message::ConfigRequest,
        Message::HaltDetached {
            package: "p".into(),
        },
        Message::DetachedHalted {
            package: "p".into(),
        },
    ] {
        assert_eq!(route(&control), Route::Control, "{control:?}");
    }
    for both in [
        Message::Reject {
            epoch,
            highest: epoch,
        },
        Message::Commit {
            epoch,
            fence_waits: Vec::new(),
            overdue: Vec::new(),
            echoes: Vec::new(),
            locks: Vec::new(),
            leavers: Default::default(),
            forming: false,
        },
        Message::Abandon { epoch },
        Message::Halt {
            epoch,
            reason: FenceReason::QuorumLost,
        },
    ] {
        assert_eq!(route(&both), Route::Both, "{both:?}");
    }
}

#[test]
fn a_frame_larger_than_a_datagram_crosses_and_only_cluster_nodes_are_heard() {
    let directory = tempfile::tempdir().unwrap();
    let ca = directory.path().join("ca");
    let addresses = addresses(71);
    let n1 = start(
        0,
        node_tls(&ca, "n1", &directory.path().join("n1")),
        &addresses,
    );
    let n2 = start(
        1,
        node_tls(&ca, "n2", &directory.path().join("n2")),
        &addresses,
    );

    // One MiB in one message, far beyond a heartbeat datagram.
    let big = Message::HaltDetached {
        package: "p".repeat(1 << 20),
    };
    let sent = envelope(0, big);
    let frame = wire::encode_envelope(&sent);
    assert!(frame.len() > PAYLOAD_MAX);
    assert_eq!(route(&sent.message), Route::Control);
    assert!(n1.channel.send(NodeId(1), 0, sent.clone()));
    let (network, received) = n2
        .received
        .recv_timeout(Duration::from_secs(20))
        .expect("the large message arrives");
    assert_eq!((network, &received), (0, &sent));
    wait_for(&n1, "n1 counts the frame sent", |s| {
        s.frames_sent == 1 && s.connections_out >= 1
    });
    wait_for(&n2, "n2 counts the frame received", |s| {
        s.frames_received == 1 && s.connections_in >= 1
    });

    // The other way too.
    let back = envelope(1, Message::ConfigRequest);
    assert!(n2.channel.send(NodeId(0), 0, back.clone()));
    let (_, received) = n1.received.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(received, back);

    // A certificate of another authority, though it names n1: refused in the handshake.
    let foreign = node_tls(
        &directory.path().join("other-ca"),
        "n1",
        &directory.path().join("foreign"),
    );
    let probe = envelope(0, Message::ConfigRequest);
    let probe_frame = wire::encode_envelope(&probe);
    assert!(!raw_send(
        &foreign,
        addresses[0][0],
        addresses[1][0],
        "n2",
        &probe_frame
    ));
    wait_for(&n2, "the foreign authority refused", |s| {
        s.refused.get("handshake") == Some(&1)
    });

    // A genuine node's certificate, from an address that is no node's: not even a handshake.
    let elsewhere = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 0);
    let genuine = node_tls(&ca, "n1", &directory.path().join("n1-again"));
    assert!(!raw_send(
        &genuine,
        elsewhere,
        addresses[1][0],
        "n2",
        &probe_frame
    ));
    wait_for(&n2, "the stranger refused", |s| {
        s.refused.get("stranger") == Some(&1) && s.refused.get("handshake") == Some(&1)
    });

    // The cluster's authority, but a node that is not configured.
    let stranger = node_tls(&ca, "n9", &directory.path().join("n9"));
    assert!(!raw_send(
        &stranger,
        addresses[0][0],
        addresses[1][0],
        "n2",
        &probe_frame
    ));
    wait_for(&n2, "the unknown node refused", |s| {
        s.refused.get("unknown_node") == Some(&1)
    });

    // A genuine n1 certificate, and a frame claiming to come from node 5.
    let lie = wire::encode_envelope(&envelope(5, Message::ConfigRequest));
    assert!(raw_send(
        &genuine,
        addresses[0][0],
        addresses[1][0],
        "n2",
        &lie
    ));
    wait_for(&n2, "the lying sender refused", |s| {
        s.refused.get("wrong_sender") == Some(&1)
    });
    // The same connection's kind, with the right sender, is heard: the refusals above were
    // for what they said, not for who connected.
    assert!(raw_send(
        &genuine,
        addresses[0][0],
        addresses[1][0],
        "n2",
        &probe_frame
    ));
    let (_, received) = n2.received.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(received, probe);
    assert!(
        n2.received.try_recv().is_err(),
        "nothing refused was delivered"
    );

    // A halted cmapplyconf's answer numbered as a node that took a change of the nodes
    // numbers it (n1 as node 3): taken as from n1, as this node numbers it.
    let renumbered = envelope(
        3,
        Message::ConfigAnswer {
            serial: 1,
            commit: true,
            refusal: None,
            epoch_max: Epoch(9),
        },
    );
    assert!(raw_send(
        &genuine,
        addresses[0][0],
        addresses[1][0],
        "n2",
        &wire::encode_envelope(&renumbered)
    ));
    let (_, received) = n2.received.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(
        received,
        Envelope {
            from: NodeId(0),
            ..renumbered
        }
    );
    assert_eq!(n2.channel.status().refused.get("wrong_sender"), Some(&1));
}
