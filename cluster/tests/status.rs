//! The outputs for the layers above: the status snapshot (everything `cmviewcl -v` shows) as
//! each node sees it, and the catalogue notices with their state before and after, driven
//! through the simulator.

mod common;

use common::{notices, seconds, set};

use cimguard_cluster::core::{FenceReason, NodeId, NodeSet, Tiebreaker};
use cimguard_cluster::packages::{Command, FailureCause};
use cimguard_cluster::sim::{Options, Simulation};
use cimguard_cluster::status::{
    ClusterStatus, Health, LockRow, NodeCondition, NodeLock, NodeState, NodeStatus, Notice,
    NoticeRef, PackageCondition, PackageState, PackageStatus, Snapshot, Summary,
};

fn package(name: &str, nodes: &[u32], extra: &str) -> String {
    let mut text = format!("package_name {name}\n");
    for n in nodes {
        text.push_str(&format!("node_name n{n}\n"));
    }
    text.push_str(extra);
    text
}

/// A formed cluster with `packages`, each running somewhere.
fn cluster(mut options: Options, packages: &[(&str, String)]) -> Simulation {
    options.packages = packages.iter().map(|(_, text)| text.clone()).collect();
    let nodes = NodeSet::first(options.nodes);
    let mut sim = Simulation::new(options);
    sim.start_all();
    let ready = sim
        .run_until(seconds(90), |s| {
            s.formed(nodes) && packages.iter().all(|(n, _)| !s.running_on(n).is_empty())
        })
        .unwrap();
    assert!(ready, "the cluster or its packages did not start");
    sim.run_for(seconds(5)).unwrap();
    sim
}

fn status(sim: &Simulation, node: u32) -> Snapshot {
    sim.status(NodeId(node)).expect("the node is up")
}

const SERVICE: &str = "service_name db_monitor\nservice_cmd /bin/db\nservice_restart 2\n";

fn up_running() -> PackageCondition {
    PackageCondition {
        status: PackageStatus::Up,
        state: PackageState::Running,
    }
}

#[test]
fn formation_is_one_cluster_up_notice_and_every_node_sees_the_same_cluster() {
    let mut options = Options::new(3, 7);
    options.tiebreaker = Tiebreaker::QuorumServer;
    let sim = cluster(
        options,
        &[
            ("dbpkg", package("dbpkg", &[1, 2], SERVICE)),
            (
                "monpkg",
                package(
                    "monpkg",
                    &[1, 2, 3],
                    "package_type multi_node\nservice_name mon_agent\nservice_cmd /bin/mon\n",
                ),
            ),
        ],
    );
    // One ClusterUp, from the coordinator; no NodeJoined for the nodes that formed it.
    let up = notices(&sim, "ClusterUp");
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0].node, NodeId(0));
    let Notice::ClusterUp { before, after } = up[0].notice else {
        unreachable!()
    };
    assert_eq!(before.status, ClusterStatus::Starting);
    assert_eq!(
        (after.status, after.members),
        (ClusterStatus::Up, set(&[0, 1, 2]))
    );
    assert!(notices(&sim, "NodeJoined").is_empty());
    assert!(notices(&sim, "ClusterReformed").is_empty());
    // Each start is reported by the node it started on, from starting to up/running.
    let started = notices(&sim, "PackageStarted");
    assert_eq!(started.len(), 4, "{started:?}");
    for record in &started {
        let Notice::PackageStarted {
            node,
            before,
            after,
            ..
        } = record.notice
        else {
            unreachable!()
        };
        assert_eq!(node, record.node);
        assert_eq!(before.state, PackageState::Starting);
        assert_eq!(after, up_running());
    }

    for observer in 0..3 {
        let snapshot = status(&sim, observer);
        assert_eq!(snapshot.name, "simulated");
        assert_eq!(snapshot.status, ClusterStatus::Up);
        assert_eq!(snapshot.summary, Summary::Ok, "{snapshot:#?}");
        assert_eq!(snapshot.coordinator, Some(NodeId(0)));
        assert_eq!(snapshot.member_timeout, seconds(14));
        assert_eq!(
            snapshot.lock,
            LockRow::QuorumServer {
                host: "qs.example".into(),
                status: Health::Up,
                refusal: None,
            }
        );
        for node in &snapshot.nodes {
            assert_eq!(node.condition, NodeCondition::RUNNING);
            assert_eq!(node.interfaces.len(), 2);
            for interface in &node.interfaces {
                assert_eq!(interface.status, Health::Up, "{observer} {node:?}");
            }
        }
        let db = &snapshot.packages[0];
        assert_eq!(db.name, "dbpkg");
        assert_eq!(db.condition, up_running());
        assert_eq!(db.owners, set(&[0]));
        assert!(db.auto_run);
        let rows: Vec<(usize, bool, bool)> = db
            .nodes
            .iter()
            .map(|r| (r.order, r.switching, r.current))
            .collect();
        assert_eq!(rows, [(1, true, true), (2, true, false)]);
        assert_eq!(db.nodes[0].services.len(), 1);
        assert_eq!(db.nodes[0].services[0].name, "db_monitor");
        assert_eq!(db.nodes[0].services[0].max_restarts, Some(2));
        assert_eq!(db.nodes[0].services[0].condition.restarts, 0);
        // Where it does not run, its service is listed down.
        assert_eq!(db.nodes[1].services.len(), 1);
        assert_eq!(db.nodes[1].services[0].condition.status, Health::Down);
        let mon = &snapshot.packages[1];
        assert_eq!(mon.condition, up_running());
        assert_eq!(mon.owners, set(&[0, 1, 2]));
    }

    let line = status(&sim, 1).to_line();
    for expected in [
        "name=simulated",
        "status=up",
        "summary=ok",
        "member_timeout=14000000",
        "quorum_server:qs.example|status=up",
        "node:n1|state=running",
        "node:n3|interface:eth1|status=up",
        "node:n3|interface:eth1|ip_address:10.1.0.3|heartbeat=yes",
        "package:dbpkg|status=up",
        "package:dbpkg|autorun=enabled",
        "package:dbpkg|owner=n1",
        "package:dbpkg|service:db_monitor|restarts=0",
        "package:dbpkg|service:db_monitor|max_restarts=2",
        "package:dbpkg|node:n1|is_current=yes",
        "package:dbpkg|node:n2|switching=enabled",
        "package:monpkg|type=multi_node",
        "package:monpkg|node:n3|package_state=running",
        "package:monpkg|node:n2|service:mon_agent|status=up",
        "package:monpkg|node:n2|service:mon_agent|max_restarts=0",
    ] {
        assert!(
            line.lines().any(|l| l == expected),
            "{expected} missing:\n{line}"
        );
    }
    // A multi-node package is told node by node: each node's lines (order, status,
    // services) form one block.
    let blocks: Vec<&str> = line
        .lines()
        .filter_map(|l| l.strip_prefix("package:monpkg|node:"))
        .map(|l| l.split_once('|').unwrap().0)
        .collect();
    let mut runs = blocks.clone();
    runs.dedup();
    assert_eq!(runs, ["n1", "n2", "n3"], "{line}");
    assert!(blocks.len() > 3 * 6, "{line}");
}

#[test]
fn service_failures_restarts_and_the_failover_are_told_with_before_and_after() {
    let mut sim = cluster(
        Options::new(3, 35),
        &[("dbpkg", package("dbpkg", &[1, 2, 3], SERVICE))],
    );
    for round in 0..2u32 {
        sim.kill_service(NodeId(0), "dbpkg", 0);
        sim.run_for(seconds(3)).unwrap();
        let restarted = notices(&sim, "ServiceRestarted");
        let Notice::ServiceRestarted {
            node,
            before,
            after,
            ..
        } = restarted.last().unwrap().notice
        else {
            unreachable!()
        };
        assert_eq!(node, NodeId(0));
        assert_eq!((before.status, before.restarts), (Health::Down, round));
        assert_eq!((after.status, after.restarts), (Health::Up, round + 1));
    }
    assert_eq!(notices(&sim, "ServiceFailed").len(), 2);
    // The counts reach the other nodes with the heartbeats.
    let peer = status(&sim, 2);
    assert_eq!(peer.packages[0].nodes[0].services[0].condition.restarts, 2);
    assert!(status(&sim, 2)
        .to_line()
        .contains("package:dbpkg|service:db_monitor|restarts=2\n"));

    // The third failure exhausts the restarts.
    sim.kill_service(NodeId(0), "dbpkg", 0);
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("dbpkg") == set(&[1]))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    let failed = notices(&sim, "PackageFailed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    let Notice::PackageFailed {
        node,
        cause,
        before,
        after,
        ..
    } = failed[0].notice
    else {
        unreachable!()
    };
    assert_eq!((node, cause), (NodeId(0), FailureCause::Service(0)));
    assert_eq!(before.state, PackageState::Failing);
    assert_eq!(
        (after.status, after.state),
        (PackageStatus::Down, PackageState::Failed)
    );
    let switching = notices(&sim, "PackageSwitchingChanged");
    assert_eq!(switching.len(), 1);
    let Notice::PackageSwitchingChanged { before, after, .. } = switching[0].notice else {
        unreachable!()
    };
    assert_eq!(before.switching, set(&[0, 1, 2]));
    assert_eq!(after.switching, set(&[1, 2]));
    assert!(before.auto_run && after.auto_run);
    let failover = notices(&sim, "PackageFailover");
    assert_eq!(failover.len(), 1);
    assert_eq!(failover[0].node, NodeId(0), "the coordinator tells it");
    assert!(matches!(
        failover[0].notice,
        Notice::PackageFailover {
            before: Some(NodeId(0)),
            after: NodeId(1),
            ..
        }
    ));
    // cmviewcl -v after the failover (serviceguard.md 2.3): switching to n1 disabled, n2
    // current, restarts back to 0 on the new node.
    let snapshot = status(&sim, 2);
    let db = &snapshot.packages[0];
    assert_eq!(db.condition, up_running());
    let rows: Vec<(bool, bool, PackageState)> = db
        .nodes
        .iter()
        .map(|r| (r.switching, r.current, r.instance.state))
        .collect();
    assert_eq!(
        rows,
        [
            (false, false, PackageState::Failed),
            (true, true, PackageState::Running),
            (true, false, PackageState::Halted),
        ]
    );
    assert_eq!(db.nodes[1].services[0].condition.restarts, 0);
}

#[test]
fn node_failure_and_return_are_told_once_by_the_coordinator() {
    let mut options = Options::new(3, 3);
    options.reboot_after = None;
    let mut sim = cluster(options, &[]);
    sim.crash(NodeId(2));
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1])))
        .unwrap());
    sim.run_for(seconds(2)).unwrap();
    let failed = notices(&sim, "NodeFailed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].node, NodeId(0));
    let Notice::NodeFailed {
        node,
        before,
        after,
        ..
    } = failed[0].notice
    else {
        unreachable!()
    };
    assert_eq!(node, NodeId(2));
    assert_eq!(before, NodeCondition::RUNNING);
    assert_eq!(after, NodeCondition::down(NodeState::Failed));
    let reformed = notices(&sim, "ClusterReformed");
    assert_eq!(reformed.len(), 1);
    let Notice::ClusterReformed { before, after } = reformed[0].notice else {
        unreachable!()
    };
    assert_eq!(before.members, set(&[0, 1, 2]));
    assert_eq!(after.members, set(&[0, 1]));
    assert!(after.epoch > before.epoch);
    let snapshot = status(&sim, 1);
    assert_eq!(snapshot.summary, Summary::Degraded);
    let lost = &snapshot.nodes[2];
    assert_eq!(
        (lost.condition.status, lost.condition.state),
        (NodeStatus::Down, NodeState::Failed)
    );
    assert!(lost.interfaces.iter().all(|i| i.status == Health::Unknown));
    assert!(snapshot.to_line().contains("node:n3|state=failed\n"));

    sim.restart(NodeId(2));
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    sim.run_for(seconds(2)).unwrap();
    let joined = notices(&sim, "NodeJoined");
    assert_eq!(joined.len(), 1, "{joined:?}");
    assert!(matches!(
        joined[0].notice,
        Notice::NodeJoined {
            node: NodeId(2),
            before: NodeCondition {
                state: NodeState::Failed,
                ..
            },
            after: NodeCondition::RUNNING,
        }
    ));
    assert_eq!(notices(&sim, "ClusterUp").len(), 1, "no second ClusterUp");
    assert_eq!(status(&sim, 2).summary, Summary::Ok);

    // The coordinator itself fails: the next one tells it.
    sim.crash(NodeId(0));
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[1, 2])))
        .unwrap());
    sim.run_for(seconds(2)).unwrap();
    let failed = notices(&sim, "NodeFailed");
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[1].node, NodeId(1));
    assert_eq!(status(&sim, 2).coordinator, Some(NodeId(1)));
}

#[test]
fn a_halt_by_command_and_switching_changes_are_told() {
    let mut sim = cluster(
        Options::new(3, 11),
        &[("dbpkg", package("dbpkg", &[2, 3], SERVICE))],
    );
    let id = sim.package("dbpkg");
    sim.command(
        NodeId(2),
        Command::Halt {
            package: id,
            node: None,
        },
    )
    .unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("dbpkg").is_empty())
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    let halted = notices(&sim, "PackageHalted");
    assert_eq!(halted.len(), 1, "{halted:?}");
    assert_eq!(halted[0].node, NodeId(1));
    let switching = notices(&sim, "PackageSwitchingChanged");
    assert_eq!(switching.len(), 1);
    let Notice::PackageSwitchingChanged { before, after, .. } = switching[0].notice else {
        unreachable!()
    };
    assert!(before.auto_run && !after.auto_run);
    for observer in 0..3 {
        let snapshot = status(&sim, observer);
        let db = &snapshot.packages[0];
        assert_eq!(
            (db.condition.status, db.condition.state, db.auto_run),
            (PackageStatus::Down, PackageState::Halted, false)
        );
        assert!(db.owners.is_empty());
        assert_eq!(snapshot.summary, Summary::Degraded);
        let line = snapshot.to_line();
        assert!(line.contains("package:dbpkg|autorun=disabled\n"), "{line}");
        assert!(!line.contains("package:dbpkg|owner="), "{line}");
    }
    // cmmodpkg -e: AUTO_RUN on again, and the package starts.
    sim.command(
        NodeId(0),
        Command::Enable {
            package: id,
            node: None,
        },
    )
    .unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("dbpkg") == set(&[1]))
        .unwrap());
    assert_eq!(notices(&sim, "PackageSwitchingChanged").len(), 2);
}

#[test]
fn the_tie_breaker_and_the_networks_are_told_as_each_node_sees_them() {
    let mut sim = cluster(
        {
            let mut options = Options::new(3, 12);
            options.tiebreaker = Tiebreaker::QuorumServer;
            options
        },
        &[],
    );
    sim.quorum_server.up = false;
    sim.run_for(seconds(120)).unwrap();
    let unreachable = notices(&sim, "QuorumServerUnreachable");
    assert_eq!(unreachable.len(), 3, "each node tells its own polls");
    assert!(unreachable.iter().all(|r| matches!(
        r.notice,
        Notice::QuorumServerUnreachable {
            before: Health::Up,
            after: Health::Down
        }
    )));
    assert!(matches!(
        status(&sim, 0).lock,
        LockRow::QuorumServer {
            status: Health::Down,
            ..
        }
    ));
    sim.quorum_server.up = true;
    sim.run_for(seconds(120)).unwrap();
    assert_eq!(notices(&sim, "QuorumServerReachable").len(), 3);

    // Node n3 loses its second network: the others see that interface down, the cluster
    // stays as it is.
    sim.cut_network(NodeId(2), 1);
    sim.run_for(seconds(30)).unwrap();
    let down = notices(&sim, "NetworkInterfaceDown");
    let mut about: Vec<(NodeId, NodeId, usize)> = down
        .iter()
        .map(|r| match r.notice {
            Notice::NetworkInterfaceDown { node, network, .. } => (r.node, node, network),
            _ => unreachable!(),
        })
        .filter(|(_, node, _)| *node == NodeId(2))
        .collect();
    // Each node tells it once, in whatever order they see it.
    about.sort_unstable();
    assert_eq!(
        about,
        [(NodeId(0), NodeId(2), 1), (NodeId(1), NodeId(2), 1)]
    );
    let snapshot = status(&sim, 0);
    let n3 = &snapshot.nodes[2];
    assert_eq!(n3.condition, NodeCondition::RUNNING);
    assert_eq!(
        n3.interfaces.iter().map(|i| i.status).collect::<Vec<_>>(),
        [Health::Up, Health::Down]
    );
    // n1 still hears n2 on its second network: its own interface is up.
    assert_eq!(snapshot.nodes[0].interfaces[1].status, Health::Up);
    // n3 hears nobody on its second network.
    assert_eq!(status(&sim, 2).nodes[2].interfaces[1].status, Health::Down);
    sim.heal();
    sim.run_for(seconds(30)).unwrap();
    assert!(notices(&sim, "NetworkInterfaceUp").len() >= 2);
    assert_eq!(status(&sim, 0).nodes[2].interfaces[1].status, Health::Up);
}

#[test]
fn a_node_cut_off_alone_tells_it_lost_quorum() {
    let mut sim = cluster(Options::new(3, 21), &[]);
    sim.partition(&[set(&[0, 1]), set(&[2])]);
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1])))
        .unwrap());
    sim.run_for(seconds(30)).unwrap();
    let lost = notices(&sim, "QuorumLost");
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0].node, NodeId(2));
    let Notice::QuorumLost {
        reason,
        before,
        after,
    } = lost[0].notice
    else {
        unreachable!()
    };
    assert_eq!(reason, FenceReason::QuorumLost);
    assert_eq!(before.members, set(&[0, 1, 2]));
    assert_eq!(after.status, ClusterStatus::Down);
}

#[test]
fn a_lock_lun_is_checked_once_the_cluster_runs_and_by_the_race_that_uses_it() {
    let mut options = Options::new(2, 9);
    options.tiebreaker = Tiebreaker::LockLun;
    let mut sim = Simulation::new(options);
    sim.start(NodeId(0));
    sim.run_for(seconds(1)).unwrap();
    assert_eq!(
        status(&sim, 0).lock,
        LockRow::LockLun {
            device: Some("/dev/sdlock".into()),
            status: Health::Unknown
        },
        "not read before the cluster runs"
    );
    sim.start(NodeId(1));
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1])))
        .unwrap());
    sim.run_for(seconds(1)).unwrap();
    assert_eq!(
        status(&sim, 0).lock,
        LockRow::LockLun {
            device: Some("/dev/sdlock".into()),
            status: Health::Up
        }
    );
    sim.disk.failing = true;
    sim.run_for(seconds(70)).unwrap();
    assert!(matches!(
        status(&sim, 1).lock,
        LockRow::LockLun {
            status: Health::Down,
            ..
        }
    ));
    sim.disk.failing = false;
    sim.partition(&[set(&[0]), set(&[1])]);
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0])) || s.formed(set(&[1])))
        .unwrap());
    let winner = if sim.formed(set(&[0])) { 0 } else { 1 };
    // The race's own reads and writes count: healthy again on the winner.
    assert!(matches!(
        status(&sim, winner).lock,
        LockRow::LockLun {
            status: Health::Up,
            ..
        }
    ));
}

/// Every node's status shows each node's view of the cluster lock (cmviewcl -v shows it
/// under each node): its own path to the lock LUN, and the health that node last told in
/// its heartbeats; unknown for a node that is not running in the cluster.
#[test]
fn each_node_shows_every_members_lock_lun_as_that_member_sees_it() {
    let mut options = Options::new(3, 21);
    options.tiebreaker = Tiebreaker::LockLun;
    let mut sim = cluster(options, &[]);
    let locks = |sim: &Simulation, observer: u32| -> Vec<Option<NodeLock>> {
        status(sim, observer)
            .nodes
            .into_iter()
            .map(|n| n.lock)
            .collect()
    };
    let lock = |status| {
        Some(NodeLock {
            device: Some("/dev/sdlock".into()),
            status,
            refusal: None,
        })
    };
    assert!(sim
        .run_until(seconds(70), |s| (0..3)
            .all(|o| locks(s, o) == vec![lock(Health::Up); 3]))
        .unwrap());
    // The disk fails: each node finds it at its next check and tells the others.
    sim.disk.failing = true;
    assert!(sim
        .run_until(seconds(70), |s| (0..3)
            .all(|o| locks(s, o) == vec![lock(Health::Down); 3]))
        .unwrap());
    sim.disk.failing = false;
    // n3 halts: not known any more.
    sim.halt_node(NodeId(2), false).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1])))
        .unwrap());
    assert_eq!(locks(&sim, 0)[2], lock(Health::Unknown));
    assert_eq!(locks(&sim, 1)[2], lock(Health::Unknown));
    // Without a cluster lock, no node shows one.
    let sim = cluster(Options::new(3, 22), &[]);
    assert_eq!(locks(&sim, 0), vec![None; 3]);
}

/// A lock LUN that answers but whose block of a node another cluster wrote (a cluster
/// renamed without setting the lock up again, or one LUN given to two clusters) fails every
/// lock race of that node: its check reads the block itself and shows the lock down, and
/// up again once the block is its own cluster's.
#[test]
fn a_lock_block_of_another_cluster_shows_the_lock_down() {
    use cimguard_cluster::disk_paxos::LockBlock;
    let mut options = Options::new(3, 23);
    options.tiebreaker = Tiebreaker::LockLun;
    let mut sim = cluster(options, &[]);
    let health = |sim: &Simulation, observer: u32, node: usize| {
        status(sim, observer).nodes[node]
            .lock
            .as_ref()
            .map(|l| l.status)
    };
    assert!(sim
        .run_until(seconds(70), |s| (0..3)
            .all(|n| health(s, 0, n) == Some(Health::Up)))
        .unwrap());
    let foreign = LockBlock {
        instance: 3,
        mbal: cimguard_cluster::disk_paxos::Ballot(4),
        bal: cimguard_cluster::disk_paxos::Ballot(4),
        value: 9,
    };
    sim.disk.blocks[1] = *foreign.encode(0x5eed);
    // Every node reads every block in turn: each shows the lock down, as each node's race
    // would fail on that block.
    assert!(sim
        .run_until(seconds(300), |s| (0..3)
            .all(|n| health(s, 0, n) == Some(Health::Down)))
        .unwrap());
    // The reason is told (cmcld's log says the event): n2's own block, and n2's block as
    // the others read it.
    let told = |node: u32, words: &str| {
        sim.trace().iter().any(|r| {
            r.node == NodeId(node)
                && matches!(
                    &r.event,
                    cimguard_cluster::core::Event::LockLunHealth { healthy: false, why: Some(why) }
                        if why.contains("another cluster") && why.contains(words)
                )
        })
    };
    assert!(told(1, "this node's block"));
    assert!(told(0, "n2's block"));
    assert!(told(2, "n2's block"));
    // A read of that block that fails (a bad sector) tells nothing of what it holds: the
    // lock never shows up while the block is there.
    sim.disk.failing_blocks.insert(1);
    let deadline = sim.now() + seconds(250);
    while sim.now() < deadline {
        sim.run_for(seconds(5)).unwrap();
        for n in 0..3 {
            assert_eq!(health(&sim, n as u32, n), Some(Health::Down), "n{}", n + 1);
        }
    }
    sim.disk.failing_blocks.clear();
    sim.disk.blocks[1] = [0; cimguard_cluster::disk_paxos::BLOCK_BYTES];
    assert!(sim
        .run_until(seconds(300), |s| (0..3)
            .all(|n| health(s, 0, n) == Some(Health::Up)))
        .unwrap());
}

#[test]
fn a_failing_or_hung_lock_lun_is_told_once_per_node_without_a_reformation() {
    let mut options = Options::new(4, 15);
    options.tiebreaker = Tiebreaker::LockLun;
    let mut sim = cluster(options, &[]);
    // The periodic check (every 30 NETWORK_POLLING_INTERVALs: a minute) finds it healthy.
    sim.run_for(seconds(70)).unwrap();
    for node in 0..4 {
        assert!(matches!(
            status(&sim, node).lock,
            LockRow::LockLun {
                status: Health::Up,
                ..
            }
        ));
    }
    let epoch = status(&sim, 0).epoch;
    sim.disk.failing = true;
    sim.run_for(seconds(70)).unwrap();
    let unhealthy = notices(&sim, "LockLunUnhealthy");
    assert_eq!(unhealthy.len(), 4, "{unhealthy:?}");
    assert!(unhealthy.iter().all(|r| matches!(
        r.notice,
        Notice::LockLunUnhealthy {
            before: Health::Up,
            after: Health::Down
        }
    )));
    assert!(matches!(
        status(&sim, 2).lock,
        LockRow::LockLun {
            status: Health::Down,
            ..
        }
    ));
    // Healthy again, then hung: a read that never answers counts as a failure too.
    sim.disk.failing = false;
    sim.run_for(seconds(70)).unwrap();
    assert!(matches!(
        status(&sim, 2).lock,
        LockRow::LockLun {
            status: Health::Up,
            ..
        }
    ));
    sim.disk.hung = true;
    sim.run_for(seconds(70)).unwrap();
    assert_eq!(notices(&sim, "LockLunUnhealthy").len(), 8);
    assert_eq!(status(&sim, 0).epoch, epoch, "no re-formation");
    assert_eq!(status(&sim, 0).status, ClusterStatus::Up);
}

#[test]
fn what_an_operator_starts_after_a_failure_is_no_failover() {
    let mut sim = cluster(
        Options::new(3, 44),
        &[(
            "dbpkg",
            package(
                "dbpkg",
                &[1, 2, 3],
                "service_name s\nservice_cmd /bin/s\nservice_restart none\n",
            ),
        )],
    );
    let id = sim.package("dbpkg");
    sim.command(
        NodeId(0),
        Command::Disable {
            package: id,
            node: None,
        },
    )
    .unwrap();
    sim.run_for(seconds(3)).unwrap();
    // Fails on n1; AUTO_RUN is off, so it stays down.
    sim.kill_service(NodeId(0), "dbpkg", 0);
    sim.run_for(seconds(10)).unwrap();
    assert!(sim.running_on("dbpkg").is_empty());
    assert_eq!(notices(&sim, "PackageFailed").len(), 1);
    // The operator starts it on n2, halts it, and enables AUTO_RUN again.
    sim.command(
        NodeId(0),
        Command::Run {
            package: id,
            node: NodeId(1),
        },
    )
    .unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("dbpkg") == set(&[1]))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    sim.command(
        NodeId(0),
        Command::Halt {
            package: id,
            node: None,
        },
    )
    .unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("dbpkg").is_empty())
        .unwrap());
    sim.command(
        NodeId(0),
        Command::Enable {
            package: id,
            node: None,
        },
    )
    .unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("dbpkg") == set(&[1]))
        .unwrap());
    sim.run_for(seconds(20)).unwrap();
    assert!(notices(&sim, "PackageFailover").is_empty());
}

#[test]
fn a_package_of_a_lost_node_shows_relocate_wait_until_the_fence_wait_ends() {
    // Four nodes with a lock LUN: the membership of even size gives its nodes the long
    // grace, so the survivors wait beyond the re-formation (in a membership of three the
    // wait ends about when the re-formation does).
    let mut options = Options::new(4, 31);
    options.tiebreaker = Tiebreaker::LockLun;
    let mut sim = cluster(
        options,
        &[
            ("dbpkg", package("dbpkg", &[3, 1], "")),
            (
                "monpkg",
                package(
                    "monpkg",
                    &[1, 2, 3],
                    "package_type multi_node\nauto_run no\n",
                ),
            ),
        ][..1],
    );
    sim.crash(NodeId(2));
    assert!(sim
        .run_until(seconds(40), |s| s.formed(set(&[0, 1, 3])))
        .unwrap());
    let db = &status(&sim, 1).packages[0];
    assert_eq!(
        (db.condition.status, db.condition.state),
        (PackageStatus::Down, PackageState::RelocateWait)
    );
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("dbpkg") == set(&[0]))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    assert_eq!(status(&sim, 1).packages[0].condition, up_running());
}

#[test]
fn a_multi_node_package_that_may_not_run_on_a_node_shows_blocked_there() {
    let mut options = Options::new(3, 32);
    options.packages = vec![package(
        "monpkg",
        &[1, 2, 3],
        "package_type multi_node\nauto_run no\n",
    )];
    let mut sim = Simulation::new(options);
    sim.start_all();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    sim.run_for(seconds(5)).unwrap();
    let snapshot = status(&sim, 0);
    assert!(snapshot.packages[0]
        .nodes
        .iter()
        .all(|row| row.instance.state == PackageState::Blocked));
    assert!(snapshot
        .to_line()
        .contains("package:monpkg|node:n2|package_state=blocked\n"));
}

/// A multi-node instance that ran and was halted shows halted, not blocked (blocked is for
/// one that never ran there); one whose dependency is unmet and never ran shows blocked
/// though AUTO_RUN is on.
#[test]
fn a_multi_node_instance_that_ran_and_was_halted_shows_halted() {
    let mut options = Options::new(3, 34);
    options.packages = vec![
        package(
            "monpkg",
            &[1, 2, 3],
            "package_type multi_node\nservice_name m\nservice_cmd /bin/m\n",
        ),
        package(
            "needy",
            &[1, 2, 3],
            "package_type multi_node\nauto_run yes\n\
             dependency_name need\ndependency_condition absent = up\n\
             dependency_location same_node\n",
        ),
        package("absent", &[1], "auto_run no\n"),
    ];
    let mut sim = Simulation::new(options);
    sim.start_all();
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("monpkg") == set(&[0, 1, 2]))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    let states = |sim: &Simulation, observer: u32, package: &str| -> Vec<PackageState> {
        status(sim, observer)
            .packages
            .iter()
            .find(|p| p.name == package)
            .expect("the package")
            .nodes
            .iter()
            .map(|row| row.instance.state)
            .collect()
    };
    assert_eq!(states(&sim, 0, "needy"), vec![PackageState::Blocked; 3]);
    let monpkg = sim.package("monpkg");
    sim.command(
        NodeId(0),
        Command::Halt {
            package: monpkg,
            node: Some(NodeId(1)),
        },
    )
    .unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("monpkg") == set(&[0, 2]))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    assert_eq!(
        states(&sim, 0, "monpkg"),
        vec![
            PackageState::Running,
            PackageState::Halted,
            PackageState::Running
        ]
    );
    sim.command(
        NodeId(0),
        Command::Halt {
            package: monpkg,
            node: None,
        },
    )
    .unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("monpkg").is_empty())
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    // Every node's copy agrees.
    for observer in 0..3 {
        assert_eq!(
            states(&sim, observer, "monpkg"),
            vec![PackageState::Halted; 3],
            "n{}",
            observer + 1
        );
    }
    // n2 halts and joins again: the instance never ran there since it joined, and may not
    // start (AUTO_RUN off after the halt): blocked again.
    sim.halt_node(NodeId(1), false).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 2]))
            && s.core(NodeId(1)).is_some_and(
                |c| c.phase() == cimguard_cluster::core::Phase::Halted
            ))
        .unwrap());
    sim.run_node(NodeId(1));
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    sim.run_for(seconds(5)).unwrap();
    let every_node_shows = |sim: &Simulation, expected: [PackageState; 3]| {
        for observer in 0..3 {
            assert_eq!(
                states(sim, observer, "monpkg"),
                expected,
                "n{}",
                observer + 1
            );
        }
    };
    every_node_shows(
        &sim,
        [
            PackageState::Halted,
            PackageState::Blocked,
            PackageState::Halted,
        ],
    );
    // n3 ran it (Halted above); it crashes and its new life is back within the same
    // re-formation (a member and failed at once): that life ran nothing yet either.
    let before = status(&sim, 0).epoch;
    sim.crash(NodeId(2));
    sim.restart(NodeId(2));
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2]))
            && status(s, 0).epoch != before)
        .unwrap());
    sim.run_for(seconds(5)).unwrap();
    every_node_shows(
        &sim,
        [
            PackageState::Halted,
            PackageState::Blocked,
            PackageState::Blocked,
        ],
    );
}

#[test]
fn a_node_out_of_the_cluster_shows_its_packages_unknown() {
    let mut sim = cluster(
        Options::new(3, 33),
        &[("pkgA", package("pkgA", &[1, 2], SERVICE))],
    );
    sim.halt_node(NodeId(2), false).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[0, 1])))
        .unwrap());
    // Halted, it shows the cluster as a member does while it hears one; cut off, it cannot
    // know.
    sim.partition(&[set(&[0, 1]), set(&[2])]);
    let member_timeout = status(&sim, 2).member_timeout;
    sim.run_for(member_timeout * 2).unwrap();
    let out = status(&sim, 2);
    assert_eq!(out.status, ClusterStatus::Unknown);
    assert_eq!(
        out.packages[0].condition,
        PackageCondition {
            status: PackageStatus::Unknown,
            state: PackageState::Unknown,
        }
    );
    assert!(out.to_line().contains("package:pkgA|status=unknown\n"));
    let row = &out.packages[0];
    assert!(row.owners.is_empty());
    assert!(row.nodes.iter().all(|n| !n.current
        && n.instance.status == PackageStatus::Unknown
        && n.services
            .iter()
            .all(|s| s.condition.status == Health::Unknown)));
    assert_eq!(status(&sim, 0).packages[0].condition, up_running());
}

#[test]
fn a_multi_node_package_starting_on_some_nodes_shows_changing() {
    let mut options = Options::new(3, 34);
    options.packages = vec![package(
        "monpkg",
        &[1, 2, 3],
        &format!("package_type multi_node\n{SERVICE}"),
    )];
    let mut sim = Simulation::new(options);
    // Its run script on n3 never ends.
    sim.script_faults.insert(
        (
            "monpkg".into(),
            NodeId(2),
            cimguard_cluster::packages::Script::Run,
        ),
        cimguard_cluster::sim::ScriptFault::Hang,
    );
    sim.start_all();
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("monpkg") == set(&[0, 1, 2]))
        .unwrap());
    sim.run_for(seconds(5)).unwrap();
    for node in 0..3 {
        assert_eq!(
            status(&sim, node).packages[0].condition,
            PackageCondition {
                status: PackageStatus::Changing,
                state: PackageState::Changing,
            }
        );
    }
}

/// serviceguard.md 1.6(b): only a failover package fails over, and only to another node. A
/// multi-node package's instance that starts again on a node that crashed and came back is
/// a start, never "fails over from n2 to n2".
#[test]
fn a_multi_node_instance_back_on_its_restarted_node_is_no_failover() {
    let mut sim = cluster(
        Options::new(3, 34),
        &[(
            "monpkg",
            package("monpkg", &[1, 2, 3], "package_type multi_node\n"),
        )],
    );
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("monpkg") == set(&[0, 1, 2]))
        .unwrap());
    sim.crash(NodeId(1));
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 2])))
        .unwrap());
    sim.run_for(seconds(5)).unwrap();
    sim.restart(NodeId(1));
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2]))
            && s.running_on("monpkg") == set(&[0, 1, 2]))
        .unwrap());
    sim.run_for(seconds(10)).unwrap();
    let failovers = notices(&sim, "PackageFailover");
    assert!(failovers.is_empty(), "{failovers:?}");
    assert!(!notices(&sim, "PackageStarted").is_empty());
}

#[test]
fn a_failover_points_at_the_failure_it_follows_as_the_failed_node_numbered_it() {
    let mut options = Options::new(3, 11);
    options.reboot_after = None;
    let no_restart = "service_name db_monitor\nservice_cmd /bin/db\nservice_restart 0\n";
    // Runs on n2 (not the coordinator), fails over to n3, then to n1.
    let mut sim = cluster(
        options,
        &[("dbpkg", package("dbpkg", &[2, 3, 1], no_restart))],
    );
    assert_eq!(sim.running_on("dbpkg"), set(&[1]));

    // A package failure: the PackageFailed told by n2, numbered in n2's life.
    sim.kill_service(NodeId(1), "dbpkg", 0);
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("dbpkg") == set(&[2])
            && !notices(s, "PackageFailover").is_empty())
        .unwrap());
    let failed = notices(&sim, "PackageFailed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].node, NodeId(1));
    let failover = notices(&sim, "PackageFailover");
    assert_eq!(failover.len(), 1, "{failover:?}");
    assert_eq!(failover[0].node, NodeId(0), "the coordinator tells it");
    let Notice::PackageFailover {
        before, follows, ..
    } = failover[0].notice
    else {
        unreachable!()
    };
    assert_eq!(before, Some(NodeId(1)));
    assert_eq!(
        follows,
        Some(NoticeRef {
            node: NodeId(1),
            incarnation: failed[0].incarnation.0,
            number: failed[0].number,
        })
    );
    // (The simulator numbers each life's notices as the daemon does: the core's number and
    // the record's agree.)

    // A node loss: the failover follows the coordinator's NodeFailed.
    sim.crash(NodeId(2));
    assert!(sim
        .run_until(seconds(90), |s| s.running_on("dbpkg") == set(&[0])
            && notices(s, "PackageFailover").len() == 2)
        .unwrap());
    let node_failed = notices(&sim, "NodeFailed");
    assert_eq!(node_failed.len(), 1, "{node_failed:?}");
    let failover = notices(&sim, "PackageFailover");
    let Notice::PackageFailover {
        before, follows, ..
    } = failover[1].notice
    else {
        unreachable!()
    };
    assert_eq!(before, Some(NodeId(2)));
    assert_eq!(
        follows,
        Some(NoticeRef {
            node: node_failed[0].node,
            incarnation: node_failed[0].incarnation.0,
            number: node_failed[0].number,
        })
    );
}

/// A node shows a halt of its own package ended (its view) before the coordinator has its
/// report; `reports_heard` says when the coordinator has it too, so that a command waiting
/// for the end returns only when a command given next (judged by the coordinator) sees the
/// package halted.
#[test]
fn a_members_own_halt_counts_as_heard_once_the_coordinator_has_its_report() {
    let sim = &mut cluster(
        Options::new(3, 41),
        &[("pkgA", package("pkgA", &[2, 1, 3], SERVICE))],
    );
    assert_eq!(sim.running_on("pkgA"), set(&[1]));
    assert!(status(sim, 1).reports_heard && status(sim, 0).reports_heard);
    let halted = |sim: &Simulation, observer: u32| {
        status(sim, observer)
            .packages
            .iter()
            .find(|p| p.name == "pkgA")
            .is_some_and(|p| p.condition.state == PackageState::Halted)
    };
    use cimguard_cluster::package_wait::{Goal, PackageWait, Progress};
    let row = |sim: &Simulation| {
        status(sim, 1)
            .packages
            .into_iter()
            .find(|p| p.name == "pkgA")
            .expect("pkgA")
    };
    // cmhaltpkg's wait, as the agent of n2 (where pkgA runs) keeps it.
    let mut wait = PackageWait::new(&row(sim), Goal::Halt(None), std::time::Instant::now());
    let a = sim.package("pkgA");
    sim.command(
        NodeId(1),
        Command::Halt {
            package: a,
            node: None,
        },
    )
    .unwrap();
    assert!(sim.run_until(seconds(30), |s| halted(s, 1)).unwrap());
    // Halted here first: the coordinator has not heard yet, and the wait goes on.
    assert!(!status(sim, 1).reports_heard);
    assert!(!halted(sim, 0));
    let now = std::time::Instant::now();
    assert_eq!(wait.observe(&status(sim, 1), now), Progress::Waiting);
    assert!(sim
        .run_until(seconds(30), |s| halted(s, 1) && status(s, 1).reports_heard)
        .unwrap());
    assert!(halted(sim, 0), "heard, so the coordinator shows it halted");
    assert_eq!(
        wait.observe(&status(sim, 1), now),
        Progress::Done(Vec::new())
    );
}

/// A node halted by itself (cmhaltnode) in a formed cluster with pkgA on n1 and n2: the
/// other two have re-formed without it.
fn halted_alone(seed: u64) -> Simulation {
    let mut sim = cluster(
        Options::new(3, seed),
        &[("pkgA", package("pkgA", &[1, 2], SERVICE))],
    );
    sim.halt_node(NodeId(2), false).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[0, 1])))
        .unwrap());
    sim
}

/// Whether every node, halted or not, shows the cluster down.
fn all_show_down(sim: &Simulation) -> bool {
    (0..3).all(|n| {
        sim.status(NodeId(n))
            .is_some_and(|out| out.status == ClusterStatus::Down)
    })
}

/// Asserts that `snapshot` shows every node halted.
fn every_node_halted(snapshot: &Snapshot) {
    for row in &snapshot.nodes {
        assert_eq!(
            row.condition,
            NodeCondition::down(NodeState::Halted),
            "{}",
            row.name
        );
    }
}

/// Everything n3 shows but its own view of the networks, which is its own.
fn without_interfaces(snapshot: &Snapshot) -> String {
    snapshot
        .to_line()
        .lines()
        .filter(|line| !line.contains("|interface:"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_node_halted_before_the_cluster_shows_it_halted_as_the_members_do() {
    let mut sim = halted_alone(33);
    sim.halt_cluster(NodeId(0), true).unwrap();
    assert!(sim.run_until(seconds(60), all_show_down).unwrap());
    let member = status(&sim, 0);
    let out = status(&sim, 2);
    assert_eq!(member.status, ClusterStatus::Down);
    every_node_halted(&out);
    assert_eq!(
        out.packages[0].condition,
        PackageCondition {
            status: PackageStatus::Down,
            state: PackageState::Halted,
        }
    );
    assert_eq!(without_interfaces(&out), without_interfaces(&member));

    // cmruncl -n n1 n2: n3 shows the running cluster, then the next halt again.
    sim.run_cluster(NodeId(0), set(&[0, 1])).unwrap();
    assert!(sim
        .run_until(seconds(90), |s| {
            s.formed(set(&[0, 1]))
                && !s.running_on("pkgA").is_empty()
                && s.status(NodeId(2))
                    .is_some_and(|out| out.status == ClusterStatus::Up)
        })
        .unwrap());
    sim.halt_cluster(NodeId(1), true).unwrap();
    assert!(sim.run_until(seconds(60), all_show_down).unwrap());
    let out = status(&sim, 2);
    every_node_halted(&out);
    assert_eq!(out.packages, status(&sim, 0).packages);
}

#[test]
fn a_node_halted_before_the_last_members_halted_by_cmhaltnode_shows_the_cluster_halted() {
    let mut sim = halted_alone(36);
    sim.halt_node(NodeId(1), true).unwrap();
    assert!(sim.run_until(seconds(30), |s| s.formed(set(&[0]))).unwrap());
    // n1, the last member, halts by cmhaltnode: the cluster halts with it.
    sim.halt_node(NodeId(0), true).unwrap();
    assert!(sim.run_until(seconds(60), all_show_down).unwrap());
    let out = status(&sim, 2);
    every_node_halted(&out);
    assert_eq!(
        without_interfaces(&out),
        without_interfaces(&status(&sim, 0))
    );
}

#[test]
fn a_node_halted_before_cmhaltcl_d_shows_the_packages_detached_where_they_run() {
    let mut sim = halted_alone(34);
    let owner = sim.running_on("pkgA");
    assert!(!owner.is_empty());
    sim.detach_cluster(NodeId(0)).unwrap();
    assert!(sim.run_until(seconds(60), all_show_down).unwrap());
    let out = status(&sim, 2);
    let row = &out.packages[0];
    assert_eq!(row.condition.state, PackageState::Detached);
    assert_eq!(row.owners, owner);
    assert_eq!(
        without_interfaces(&out),
        without_interfaces(&status(&sim, 0))
    );
}

#[test]
fn a_node_halted_before_the_cluster_that_missed_a_member_halting_cannot_tell() {
    let mut sim = halted_alone(35);
    // n3 does not hear n2 (nor n2's last heartbeat): the halt may not be over.
    sim.cut_oneway(NodeId(1), NodeId(2));
    sim.halt_cluster(NodeId(0), true).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| {
            s.status(NodeId(0))
                .is_some_and(|out| out.status == ClusterStatus::Down)
                && s.status(NodeId(1))
                    .is_some_and(|out| out.status == ClusterStatus::Down)
        })
        .unwrap());
    let member_timeout = status(&sim, 2).member_timeout;
    sim.run_for(member_timeout * 2).unwrap();
    let out = status(&sim, 2);
    assert_eq!(out.status, ClusterStatus::Unknown);
    assert_eq!(out.packages[0].condition.status, PackageStatus::Unknown);
    assert_eq!(
        out.nodes[1].condition,
        NodeCondition::down(NodeState::Unknown)
    );
}
