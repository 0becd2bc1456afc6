//! cmhaltnode, cmrunnode and cmhaltcl (serviceguard.md 5.2 and 6.4): a node leaves
//! gracefully, after its packages halted, without a fence wait and without needing the
//! cluster lock; the whole cluster halts; a halted node joins again.

mod common;

use common::{notices, package, seconds, set};

use cimguard_cluster::core::{Event, NodeId, NodeSet, Phase, Tiebreaker};
use cimguard_cluster::packages::Refusal;
use cimguard_cluster::sim::{Life, Options, Simulation};
use cimguard_cluster::status::{ClusterStatus, NodeCondition, NodeState, Notice};

fn cluster(mut options: Options, packages: &[(&str, &[u32])]) -> Simulation {
    options.packages = packages
        .iter()
        .map(|(n, nodes)| package(n, nodes))
        .collect();
    let all = NodeSet::first(options.nodes);
    let mut sim = Simulation::new(options);
    sim.start_all();
    let ready = sim
        .run_until(seconds(90), |s| {
            s.formed(all) && packages.iter().all(|(n, _)| !s.running_on(n).is_empty())
        })
        .unwrap();
    assert!(ready, "the cluster or its packages did not start");
    sim.run_for(seconds(3)).unwrap();
    sim
}

fn halted(sim: &Simulation, node: u32) -> bool {
    sim.life(NodeId(node)) == Life::Up
        && sim.core(NodeId(node)).map(|c| c.phase()) == Some(Phase::Halted)
}

#[test]
fn cmhaltnode_leaves_at_once_without_a_failure() {
    let mut sim = cluster(Options::new(3, 1), &[("pkgA", &[1, 2])]);
    // Packages run on n1: refused without -f.
    assert_eq!(
        sim.halt_node(NodeId(0), false),
        Err(Refusal::PackagesRunning {
            packages: vec!["pkgA".into()]
        })
    );
    let asked = sim.now();
    sim.halt_node(NodeId(2), false).unwrap();
    assert_eq!(sim.halt_node(NodeId(2), false), Err(Refusal::Halting));
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[0, 1])) && halted(s, 2))
        .unwrap());
    // A re-formation, not a silence detected after MEMBER_TIMEOUT.
    assert!(sim.now() - asked < sim.timing().member_timeout);
    sim.run_for(seconds(30)).unwrap();
    assert_eq!(sim.watchdog_resets, 0);
    assert!(notices(&sim, "NodeFailed").is_empty());
    let told = notices(&sim, "NodeHalted");
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].node, NodeId(0));
    assert!(matches!(
        told[0].notice,
        Notice::NodeHalted {
            node: NodeId(2),
            before: NodeCondition::RUNNING,
            ..
        }
    ));
    let snapshot = sim.status(NodeId(1)).unwrap();
    assert_eq!(
        snapshot.nodes[2].condition,
        NodeCondition::down(NodeState::Halted)
    );
    assert!(snapshot.to_line().contains("node:n3|state=halted\n"));
    // cmrunnode: it joins again.
    sim.crash(NodeId(2));
    sim.restart(NodeId(2));
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    sim.run_for(seconds(2)).unwrap();
    assert!(matches!(
        notices(&sim, "NodeJoined")[0].notice,
        Notice::NodeJoined {
            node: NodeId(2),
            before: NodeCondition {
                state: NodeState::Halted,
                ..
            },
            ..
        }
    ));
    assert_eq!(sim.running_on("pkgA"), set(&[0]));
}

#[test]
fn cmhaltnode_f_halts_the_packages_and_they_fail_over_without_a_fence_wait() {
    let mut sim = cluster(Options::new(3, 2), &[("pkgA", &[1, 2]), ("pkgB", &[1, 3])]);
    assert_eq!(sim.running_on("pkgA"), set(&[0]));
    let asked = sim.now();
    sim.halt_node(NodeId(0), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| {
            s.running_on("pkgA") == set(&[1]) && s.running_on("pkgB") == set(&[2])
        })
        .unwrap());
    // Long before a lost node could be taken over (MEMBER_TIMEOUT plus the grace).
    assert!(sim.now() - asked < sim.timing().member_timeout);
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[1, 2])) && halted(s, 0))
        .unwrap());
    sim.run_for(seconds(5)).unwrap();
    assert_eq!(notices(&sim, "PackageHalted").len(), 2);
    assert!(notices(&sim, "NodeFailed").is_empty());
    // The coordinator left: the next one tells it.
    let told = notices(&sim, "NodeHalted");
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].node, NodeId(1));
    // Global switching stays on.
    let snapshot = sim.status(NodeId(1)).unwrap();
    assert!(snapshot.packages.iter().all(|p| p.auto_run));
    assert_eq!(sim.watchdog_resets, 0);
}

#[test]
fn one_node_of_two_halts_without_the_cluster_lock() {
    let mut options = Options::new(2, 3);
    options.tiebreaker = Tiebreaker::QuorumServer;
    let mut sim = cluster(options, &[]);
    // The quorum server is gone: a failure of either node would now halt the other
    // (scenario 14), but a graceful halt does not need the lock.
    sim.quorum_server.up = false;
    sim.run_for(seconds(60)).unwrap();
    sim.halt_node(NodeId(1), false).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[0])) && halted(s, 1))
        .unwrap());
    sim.run_for(seconds(60)).unwrap();
    assert!(sim.formed(set(&[0])));
    assert!(notices(&sim, "QuorumLost").is_empty());
    assert_eq!(sim.watchdog_resets, 0);
}

#[test]
fn cmhaltcl_halts_every_package_then_every_node() {
    let mut sim = cluster(Options::new(3, 4), &[("pkgA", &[1, 2]), ("pkgB", &[3, 1])]);
    assert!(matches!(
        sim.halt_cluster(NodeId(1), false),
        Err(Refusal::PackagesRunning { .. })
    ));
    sim.halt_cluster(NodeId(1), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| (0..3).all(|n| halted(s, n)))
        .unwrap());
    assert!(sim.running_on("pkgA").is_empty() && sim.running_on("pkgB").is_empty());
    assert_eq!(notices(&sim, "PackageHalted").len(), 2);
    let told = notices(&sim, "ClusterHalted");
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].node, NodeId(0));
    assert!(notices(&sim, "NodeFailed").is_empty());
    assert!(notices(&sim, "PackageFailover").is_empty());
    assert_eq!(sim.watchdog_resets, 0);
    for node in 0..3 {
        let snapshot = sim.status(NodeId(node)).unwrap();
        assert_eq!(snapshot.status, ClusterStatus::Down);
    }
    // cmruncl: the cluster forms again and the packages start.
    for node in 0..3 {
        sim.crash(NodeId(node));
    }
    sim.start_all();
    assert!(sim
        .run_until(seconds(90), |s| {
            s.formed(set(&[0, 1, 2]))
                && !s.running_on("pkgA").is_empty()
                && !s.running_on("pkgB").is_empty()
        })
        .unwrap());
}

#[test]
fn a_halted_node_sees_the_running_cluster_as_a_member_does() {
    let mut sim = cluster(Options::new(3, 5), &[("pkgA", &[1, 2])]);
    sim.halt_node(NodeId(2), false).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[0, 1])) && halted(s, 2))
        .unwrap());
    // cmviewcl on the halted node shows the running cluster (as Serviceguard's does): a
    // member's view, asked for while it hears the members' heartbeats.
    assert!(sim
        .run_until(seconds(5), |s| s.status(NodeId(2)).unwrap().status
            == ClusterStatus::Up)
        .unwrap());
    let snapshot = sim.status(NodeId(2)).unwrap();
    assert_eq!(snapshot.observer, NodeId(2));
    assert_eq!(snapshot.nodes[0].condition, NodeCondition::RUNNING);
    assert_eq!(
        snapshot.nodes[2].condition,
        NodeCondition::down(NodeState::Halted)
    );
    let package = snapshot.packages.iter().find(|p| p.name == "pkgA").unwrap();
    assert_eq!(package.condition.state.as_str(), "running");
    assert_eq!(package.owners, set(&[0]));
    // It follows the cluster: pkgA halted there shows halted here.
    let id = sim.package("pkgA");
    sim.command(
        NodeId(0),
        cimguard_cluster::packages::Command::Halt {
            package: id,
            node: None,
        },
    )
    .unwrap();
    assert!(sim
        .run_until(seconds(10), |s| {
            let snapshot = s.status(NodeId(2)).unwrap();
            let row = snapshot.packages.iter().find(|p| p.name == "pkgA").unwrap();
            row.condition.state.as_str() == "halted"
        })
        .unwrap());
    // With the cluster gone, it no longer hears one: its own view again, which cannot know.
    sim.crash(NodeId(0));
    sim.crash(NodeId(1));
    // Nothing happens on a halted node with no one to hear: time passes by itself.
    let member_timeout = sim.status(NodeId(2)).unwrap().member_timeout;
    sim.run_for(member_timeout * 2).unwrap();
    assert_eq!(
        sim.status(NodeId(2)).unwrap().status,
        ClusterStatus::Unknown
    );
}

#[test]
fn cmruncl_n_forms_with_the_nodes_named() {
    let mut options = Options::new(4, 6);
    options.packages = vec![package("pkgA", &[4, 2])];
    let mut sim = Simulation::new(options);
    // Two of four nodes start: automatic start waits for all of them (scenario 26).
    sim.start(NodeId(1));
    sim.start(NodeId(2));
    sim.run_for(seconds(60)).unwrap();
    assert!(!sim.formed(set(&[1, 2])));
    // cmruncl -n n2 -n n3 on both.
    for node in [1, 2] {
        sim.run_cluster(NodeId(node), set(&[1, 2])).unwrap();
    }
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[1, 2])))
        .unwrap());
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("pkgA") == set(&[1]))
        .unwrap());
    assert_eq!(
        sim.run_cluster(NodeId(1), set(&[1, 2])),
        Err(Refusal::AlreadyMember)
    );
    // The others join when they start.
    sim.start(NodeId(0));
    sim.start(NodeId(3));
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2, 3])))
        .unwrap());
}

#[test]
fn cmhaltnode_on_every_member_halts_the_cluster() {
    let mut sim = cluster(Options::new(3, 7), &[("pkgA", &[1, 2])]);
    for node in 0..3 {
        sim.halt_node(NodeId(node), true).unwrap();
    }
    assert!(sim
        .run_until(seconds(60), |s| (0..3).all(|n| halted(s, n)))
        .unwrap());
    assert!(sim.running_on("pkgA").is_empty());
    assert_eq!(sim.watchdog_resets, 0);
}

#[test]
fn a_node_that_joins_shows_no_package_halted_that_runs() {
    let mut sim = cluster(Options::new(3, 7), &[("pkgA", &[1, 2])]);
    sim.halt_node(NodeId(2), false).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[0, 1])) && halted(s, 2))
        .unwrap());
    // cmrunnode on n3: from the moment it is a member, its view of pkgA (running on n1) is
    // unknown until the members have reported, then running; never halted.
    sim.run_node_command(NodeId(2)).unwrap();
    let wrong = std::cell::Cell::new(None);
    let state = |s: &Simulation| {
        let snapshot = s.status(NodeId(2)).unwrap();
        let row = snapshot.packages.iter().find(|p| p.name == "pkgA").unwrap();
        row.condition.state.as_str()
    };
    assert!(sim
        .run_until(seconds(60), |s| {
            let member = s.members(NodeId(2)).contains(NodeId(2));
            if member && state(s) == "halted" {
                wrong.set(Some(s.now()));
            }
            member && state(s) == "running"
        })
        .unwrap());
    assert_eq!(
        wrong.get(),
        None,
        "n3 showed pkgA halted while it ran on n1"
    );
}

/// n1's last membership, {n1, n3}, lost the lock race that followed it to n3, which went on
/// with n2; n2 then ran alone (winning the lock of {n2, n3}) and halted the cluster. cmruncl
/// -n n1 n2 forms: the group is held to n2's last membership, committed after n1's, not to
/// n1's, whose lock instance n3 won long ago (raced again, it would be lost at every start).
#[test]
fn cmruncl_n_is_not_held_to_a_membership_a_later_one_left_behind() {
    let mut options = Options::new(3, 8);
    options.tiebreaker = Tiebreaker::LockLun;
    let mut sim = cluster(options, &[("pkgA", &[1, 2, 3])]);
    sim.crash(NodeId(1));
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 2])))
        .unwrap());
    let behind = sim.core(NodeId(0)).unwrap().view().epoch;
    // n1 dies; n3 wins the lock of {n1, n3} and runs on alone.
    sim.crash(NodeId(0));
    assert!(sim.run_until(seconds(60), |s| s.formed(set(&[2]))).unwrap());
    sim.restart(NodeId(1));
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[1, 2])))
        .unwrap());
    // (Once n2 has heard n3's package table.)
    sim.run_for(seconds(3)).unwrap();
    sim.crash(NodeId(2));
    assert!(sim.run_until(seconds(60), |s| s.formed(set(&[1]))).unwrap());
    sim.halt_cluster(NodeId(1), true).unwrap();
    assert!(sim.run_until(seconds(60), |s| halted(s, 1)).unwrap());
    // cmruncl -n n1 n2, with n3 down: n1 boots, n2's daemon starts again.
    sim.restart(NodeId(0));
    sim.run_node(NodeId(1));
    for node in [0, 1] {
        sim.run_cluster(NodeId(node), set(&[0, 1])).unwrap();
    }
    let formed = sim
        .run_until(seconds(90), |s| s.formed(set(&[0, 1])))
        .unwrap();
    let raced: Vec<_> = sim
        .trace()
        .iter()
        .filter_map(|r| match r.event {
            Event::LockNotWon { instance, .. } => Some(instance),
            _ => None,
        })
        .filter(|&instance| instance == behind)
        .collect();
    assert!(formed, "raced {behind:?} again: {raced:?}");
}
