//! Heartbeat authentication over real loopback UDP sockets: genuine datagrams pass (also
//! reordered), spoofed ones from another socket, replays, foreign clusters, earlier lives,
//! senders under another node's number and damaged datagrams are dropped and counted.

use std::net::UdpSocket;
use std::time::Duration;

use cimguard_cluster::runtime::auth::{Opener, Rejected, Sealer};

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
const CLUSTER: u64 = 0x5eed;
const NAMES: [&str; 3] = ["n1", "n2", "n3"];

/// Receiver (node 1) and sender (node 0) sockets on loopback.
fn sockets() -> (UdpSocket, UdpSocket) {
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.connect(receiver.local_addr().unwrap()).unwrap();
    (receiver, sender)
}

fn receive(socket: &UdpSocket) -> Vec<u8> {
    let mut buffer = vec![0u8; 65536];
    let (length, _) = socket.recv_from(&mut buffer).unwrap();
    buffer.truncate(length);
    buffer
}

#[test]
fn genuine_heartbeats_pass_and_spoofed_or_replayed_ones_are_dropped() {
    let (receiver, sender) = sockets();
    let mut node0 = Sealer::new(KEY, CLUSTER, 0, NAMES[0], 1);
    let mut opener = Opener::new(KEY, CLUSTER, 1, &NAMES);

    // Genuine, in order and reordered (two networks).
    let first = node0.seal(b"hb 1");
    let second = node0.seal(b"hb 2");
    sender.send(&second).unwrap();
    sender.send(&first).unwrap();
    let got = receive(&receiver);
    let opened = opener.open(&got).unwrap();
    assert_eq!(
        (opened.sender, opened.incarnation, opened.payload),
        (0, 1, &b"hb 2"[..])
    );
    let got = receive(&receiver);
    assert_eq!(opener.open(&got).unwrap().payload, b"hb 1");

    // A replay of a captured datagram, from any socket.
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    attacker.connect(receiver.local_addr().unwrap()).unwrap();
    attacker.send(&first).unwrap();
    assert_eq!(opener.open(&receive(&receiver)), Err(Rejected::Replayed));

    // A spoofed heartbeat claiming to be node 0, sealed under another key.
    let mut forger = Sealer::new(b"not the cluster key at all......", CLUSTER, 0, NAMES[0], 1);
    attacker.send(&forger.seal(b"hb 99")).unwrap();
    assert_eq!(opener.open(&receive(&receiver)), Err(Rejected::BadTag));

    // A genuine datagram altered on the way.
    let mut altered = node0.seal(b"hb 3");
    altered[40] ^= 1;
    attacker.send(&altered).unwrap();
    assert_eq!(opener.open(&receive(&receiver)), Err(Rejected::BadTag));

    // Another cluster, an unknown sender, this node itself, garbage.
    let mut foreign = Sealer::new(KEY, CLUSTER + 1, 0, NAMES[0], 1);
    attacker.send(&foreign.seal(b"x")).unwrap();
    assert_eq!(
        opener.open(&receive(&receiver)),
        Err(Rejected::ForeignCluster)
    );
    let mut stranger = Sealer::new(KEY, CLUSTER, 7, "n8", 1);
    attacker.send(&stranger.seal(b"x")).unwrap();
    assert_eq!(
        opener.open(&receive(&receiver)),
        Err(Rejected::UnknownSender)
    );
    let mut myself = Sealer::new(KEY, CLUSTER, 1, NAMES[1], 1);
    attacker.send(&myself.seal(b"x")).unwrap();
    assert_eq!(
        opener.open(&receive(&receiver)),
        Err(Rejected::UnknownSender)
    );
    attacker.send(b"CGHB garbage").unwrap();
    assert_eq!(opener.open(&receive(&receiver)), Err(Rejected::Malformed));

    // Genuine, from n3 numbered as node 0 (it numbers the nodes as before a cmapplyconf
    // that reordered them) in a higher life: not n1, and n1's life heard stays.
    let mut renumbered = Sealer::new(KEY, CLUSTER, 0, "n3", 99);
    attacker.send(&renumbered.seal(b"x")).unwrap();
    assert_eq!(
        opener.open(&receive(&receiver)),
        Err(Rejected::UnknownSender)
    );

    // A new life of node 0 starts its sequence again; its old life is then refused.
    let mut reborn = Sealer::new(KEY, CLUSTER, 0, NAMES[0], 2);
    sender.send(&reborn.seal(b"hb new life")).unwrap();
    assert_eq!(
        opener.open(&receive(&receiver)).unwrap().payload,
        b"hb new life"
    );
    sender.send(&node0.seal(b"hb old life")).unwrap();
    assert_eq!(
        opener.open(&receive(&receiver)),
        Err(Rejected::OldIncarnation)
    );

    let counts = opener.rejected();
    assert_eq!(counts.get(&Rejected::Replayed), Some(&1));
    assert_eq!(counts.get(&Rejected::BadTag), Some(&2));
    assert_eq!(counts.get(&Rejected::UnknownSender), Some(&3));
    assert_eq!(counts.values().sum::<u64>(), 9);
}

#[test]
fn the_replay_window_takes_late_datagrams_once_and_refuses_the_too_old() {
    let mut sealer = Sealer::new(KEY, CLUSTER, 2, NAMES[2], 5);
    let mut opener = Opener::new(KEY, CLUSTER, 0, &NAMES);
    let frames: Vec<Vec<u8>> = (0..100).map(|i| sealer.seal(&[i as u8])).collect();
    // 100 arrives first; 40 (60 behind) is late but inside the window; 30 is too old.
    assert!(opener.open(&frames[99]).is_ok());
    assert!(opener.open(&frames[39]).is_ok());
    assert_eq!(opener.open(&frames[39]), Err(Rejected::Replayed));
    assert_eq!(opener.open(&frames[29]), Err(Rejected::Replayed));
    // A length that does not match the datagram.
    let mut short = frames[0].clone();
    short.truncate(short.len() - 1);
    assert_eq!(opener.open(&short), Err(Rejected::Malformed));
}

proptest::proptest! {
    /// Whatever arrives, opening it answers (no panic), and only a sealed datagram passes.
    #[test]
    fn arbitrary_datagrams_are_refused_without_a_panic(bytes in proptest::collection::vec(0u8..=255, 0..200)) {
        let mut opener = Opener::new(KEY, CLUSTER, 0, &NAMES);
        proptest::prop_assert!(opener.open(&bytes).is_err());
    }
}
