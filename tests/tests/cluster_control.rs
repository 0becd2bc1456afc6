//! The control channel between real `cmcld` processes: a cmapplyconf far larger than a
//! heartbeat datagram reaches every node and its packages can be run from any node; a node
//! whose certificate comes from another authority is refused by every peer, which count it,
//! and says so in its log; a node started again is reached on new connections; a
//! re-formation's proposal, acceptances and commit travel on the channel.

use std::sync::Arc;
use std::time::Duration;

use cimguard_cluster::config::{cluster, package, Generation};
use cimguard_cluster::core::{Envelope, Epoch, Incarnation, Message, NodeId};
use cimguard_cluster::runtime::auth::PAYLOAD_MAX;
use cimguard_cluster::runtime::daemon::{FileText, Reply, Request};
use cimguard_cluster::wire;
use cimguard_tests::cluster::TestCluster;

const MEMBER_TIMEOUT: Duration = Duration::from_secs(3);
/// Generous bounds for a loaded CI machine; timings are the benchmark's business.
const BOUND: Duration = Duration::from_secs(60);
const PACKAGES: usize = 100;

/// Package `i`: four services with long command lines, not started on its own.
fn package_text(i: usize) -> String {
    let mut text = format!(
        "package_name big{i:03}\npackage_type failover\nnode_name n1\nnode_name n2\nnode_name n3\nauto_run no\n"
    );
    for s in 0..4 {
        text.push_str(&format!(
            "service_name svc{s}\nservice_cmd \"exec sleep 1000 # {}\"\nservice_halt_timeout 2\n",
            "x".repeat(150)
        ));
    }
    text
}

fn all_up(cluster: &TestCluster) -> bool {
    (1..=3).all(|k| {
        cluster
            .members(k)
            .is_some_and(|(members, _)| members.len() == 3)
    })
}

#[test]
fn a_configuration_larger_than_a_datagram_reaches_every_node() {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.start_all();
    cluster.wait_for(BOUND, "three members", |c| all_up(c));
    let files: Vec<FileText> = (0..PACKAGES)
        .map(|i| FileText {
            name: format!("big{i:03}.conf"),
            text: package_text(i),
        })
        .collect();

    // What n3 sends its coordinator does not fit a datagram.
    let cluster_text = std::fs::read_to_string(cluster.dir(3).join("cluster.ascii")).unwrap();
    let generation = Generation {
        number: 0,
        sequence: 0,
        cluster: cluster::parse(&cluster_text, "cluster.ascii")
            .unwrap()
            .config,
        packages: files
            .iter()
            .map(|f| package::parse(&f.text, &f.name).unwrap().config)
            .collect(),
    };
    let apply = Envelope {
        cluster_id: 1,
        config_generation: 1,
        from: NodeId(2),
        from_incarnation: Incarnation(1),
        to_incarnation: Incarnation(1),
        message: Message::Apply {
            epoch: Epoch(1),
            serial: 1,
            base: None,
            config: Arc::new(generation),
        },
    };
    let size = wire::encode_envelope(&apply).len();
    assert!(size > PAYLOAD_MAX, "{size} bytes");

    let reply = cluster
        .request(
            3,
            &Request::Apply {
                cluster: None,
                packages: Some(files),
                base: None,
                base_number: None,
            },
        )
        .unwrap();
    assert_eq!(reply, Reply::Done);
    cluster.wait_for(BOUND, "the new generation on every node", |c| {
        (1..=3).all(|k| {
            c.status(k)
                .is_ok_and(|s| s.cluster.generation > 1 && s.cluster.packages.len() == PACKAGES)
        })
    });

    // A package command given on n3 for a package the new generation added.
    let run = Request::RunPackage {
        package: "big042".into(),
        node: Some("n2".into()),
    };
    assert_eq!(cluster.request(3, &run).unwrap(), Reply::Done);
    cluster.wait_for(BOUND, "big042 runs on n2", |c| {
        (1..=3).all(|k| c.owners(k, "big042") == Some(vec!["n2".to_owned()]))
    });
    for k in 1..=3 {
        let status = cluster.status(k).unwrap();
        assert_eq!(status.messages_too_large, 0, "n{k}");
        assert!(
            status.control.frames_received > 0,
            "n{k}: {:?}",
            status.control
        );
        assert!(
            status.control.refused.is_empty(),
            "n{k}: {:?}",
            status.control
        );
    }
}

#[test]
fn a_node_of_another_authority_is_refused_by_every_peer() {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    // n3's material from an authority of its own: it trusts it, nobody else does.
    let other =
        cimguard_certs::ensure_cluster_authority(&cluster.path().join("other-ca"), "testcluster")
            .unwrap();
    let addresses = ["127.0.0.3".parse().unwrap(), "127.0.1.3".parse().unwrap()];
    cimguard_certs::issue_node_certificate(&other, "n3", &addresses, &cluster.dir(3)).unwrap();
    cluster.start_all();
    // n3 keeps trying to connect (a sender without a connection tries every second), and
    // n1 and n2 refuse it in the handshake; n3 refuses their connections the same way.
    cluster.wait_for(BOUND, "n1 and n2 refuse n3, n3 refuses them", |c| {
        (1..=3).all(|k| {
            c.status(k)
                .is_ok_and(|s| s.control.refused.get("handshake").is_some_and(|n| *n > 0))
        })
    });
    // Between n1 and n2 the channel works.
    cluster.wait_for(BOUND, "n1 and n2 connected to each other", |c| {
        (1..=2).all(|k| c.status(k).is_ok_and(|s| s.control.connections_in >= 1))
    });
    // n3's log says why, naming the peer.
    cluster.wait_for(BOUND, "n3's log names the refusal", |c| {
        c.log(3).contains("control channel to n")
    });
}

#[test]
fn a_node_started_again_is_reached_on_a_new_connection() {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.add_package(
        "pkgA",
        "package_name pkgA\npackage_type failover\nnode_name n1\nnode_name n2\nnode_name n3\n\
         auto_run no\nservice_name svc\nservice_cmd \"exec sleep 1000\"\nservice_halt_timeout 2\n",
    );
    cluster.start_all();
    cluster.wait_for(BOUND, "three members", |c| all_up(c));
    cluster.wait_for(BOUND, "n1 connected to n2", |c| {
        c.status(2).is_ok_and(|s| s.control.connections_in >= 1)
    });
    let first_life = cluster.status(2).unwrap().incarnation;

    // n2 killed and started again: the connections to its first life are gone with it.
    cluster.signal(2, "KILL");
    cluster.wait_for(BOUND, "n2's daemon gone", |c| c.exited(2).is_some());
    cluster.start(2);
    cluster.wait_for(BOUND, "n2 back in a new life", |c| {
        all_up(c) && c.status(2).is_ok_and(|s| s.incarnation > first_life)
    });

    // cmrunpkg on the coordinator (n1), whose order goes to n2's new life.
    let run = Request::RunPackage {
        package: "pkgA".into(),
        node: Some("n2".into()),
    };
    // Refused while n2's first life is still awaited (its safety timer's bound), as
    // Serviceguard refuses it; taken once that is over.
    cluster.wait_for(BOUND, "cmrunpkg -n n2 taken", |c| {
        c.request(1, &run).is_ok_and(|reply| reply == Reply::Done)
    });
    cluster.wait_for(BOUND, "pkgA runs on n2", |c| {
        (1..=3).all(|k| c.owners(k, "pkgA") == Some(vec!["n2".to_owned()]))
    });
    let status = cluster.status(2).unwrap();
    assert!(status.control.frames_received > 0, "{:?}", status.control);
    assert!(status.control.refused.is_empty(), "{:?}", status.control);
}

/// How many frames of `kind` node `k` received on the control channel.
fn received(cluster: &TestCluster, k: usize, kind: &str) -> u64 {
    cluster
        .status(k)
        .ok()
        .and_then(|s| s.control.received_by_kind.get(kind).copied())
        .unwrap_or(0)
}

#[test]
fn a_reformation_travels_on_the_control_channel() {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.start_all();
    cluster.wait_for(BOUND, "three members", |c| all_up(c));
    // Every node connected to each of its two peers on both heartbeat networks (the
    // senders connect when idle too).
    cluster.wait_for(BOUND, "every connection open", |c| {
        (1..=3).all(|k| {
            c.status(k)
                .is_ok_and(|s| s.control.connections_out == 4 && s.control.connections_in == 4)
        })
    });
    let before: Vec<[u64; 3]> = (1..=2)
        .map(|k| ["Propose", "Accept", "Commit"].map(|kind| received(&cluster, k, kind)))
        .collect();

    // n3 lost: n1 (the lowest survivor) proposes the two survivors, n2 accepts, n1 commits.
    cluster.signal(3, "KILL");
    cluster.wait_for(BOUND, "n1 and n2 re-formed", |c| {
        (1..=2).all(|k| {
            c.members(k)
                .is_some_and(|(members, _)| members == ["n1", "n2"])
        })
    });
    // The frames' datagram copies may settle the membership before the control channel's
    // copies are counted: wait for those (bounded) rather than look once.
    let [propose, _, commit] = before[1];
    let [_, accept, _] = before[0];
    cluster.wait_for(
        BOUND,
        "the Propose, Accept and Commit on the control channel",
        |c| {
            received(c, 2, "Propose") > propose
                && received(c, 2, "Commit") > commit
                && received(c, 1, "Accept") > accept
        },
    );
    for k in 1..=2 {
        let status = cluster.status(k).unwrap();
        assert!(
            status.control.refused.is_empty(),
            "n{k}: {:?}",
            status.control
        );
    }
}
