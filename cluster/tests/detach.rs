//! Detached mode, Live Application Detach (serviceguard.md 6.5): cmhaltnode -d and cmhaltcl -d
//! halt the daemon and leave the packages running, unmonitored; they show as detached, count
//! as up, start nowhere else, and are re-attached (their health checked) by cmrunnode and
//! cmruncl. A package found dead on re-attach fails over.

mod common;

use std::time::Duration;

use common::{answers, notices, seconds, set};

use cimguard_cluster::core::{FenceReason, NodeId, NodeSet, Phase, Taken, Tiebreaker};
use cimguard_cluster::packages::{Command, FailureCause, Refusal};
use cimguard_cluster::sim::{Life, Options, Simulation};
use cimguard_cluster::status::{NodeCondition, NodeState, Notice, PackageState, PackageStatus};

fn package(name: &str, nodes: &[u32], extra: &str) -> String {
    let mut text = format!("package_name {name}\n");
    for n in nodes {
        text.push_str(&format!("node_name n{n}\n"));
    }
    text.push_str("service_name s\nservice_cmd /bin/s\n");
    text.push_str(extra);
    text
}

fn cluster(seed: u64, packages: &[String], running: &[(&str, u32)]) -> Simulation {
    let mut options = Options::new(3, seed);
    options.packages = packages.to_vec();
    cluster_of(options, running)
}

/// Three nodes of `options` started, with the packages `running` where they run.
fn cluster_of(options: Options, running: &[(&str, u32)]) -> Simulation {
    let mut sim = Simulation::new(options);
    sim.start_all();
    let all = NodeSet::first(3);
    let ready = sim
        .run_until(seconds(90), |s| {
            s.formed(all)
                && running
                    .iter()
                    .all(|(name, node)| s.running_on(name) == set(&[*node]))
        })
        .unwrap();
    assert!(ready, "the cluster or its packages did not start");
    sim.run_for(seconds(3)).unwrap();
    sim
}

fn two_packages(seed: u64) -> Simulation {
    cluster(
        seed,
        &[package("pkgA", &[1, 2], ""), package("pkgB", &[2, 3], "")],
        &[("pkgA", 0), ("pkgB", 1)],
    )
}

fn halted(sim: &Simulation, node: u32) -> bool {
    sim.life(NodeId(node)) == Life::Up
        && sim.core(NodeId(node)).map(|c| c.phase()) == Some(Phase::Halted)
}

/// The status and state of `package` in `node`'s snapshot.
fn condition(sim: &Simulation, node: u32, package: &str) -> (PackageStatus, PackageState) {
    let snapshot = sim.status(NodeId(node)).unwrap();
    let row = snapshot
        .packages
        .iter()
        .find(|p| p.name == package)
        .unwrap();
    (row.condition.status, row.condition.state)
}

fn started(sim: &Simulation) -> usize {
    notices(sim, "PackageStarted").len()
}

#[test]
fn cmhaltnode_d_leaves_the_packages_running_detached_and_cmrunnode_reattaches_them() {
    let mut sim = two_packages(11);
    let starts = started(&sim);
    sim.detach_node(NodeId(0)).unwrap();
    assert_eq!(sim.detach_node(NodeId(0)), Err(Refusal::Halting));
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[1, 2])) && halted(s, 0))
        .unwrap());
    // Long after MEMBER_TIMEOUT and any fence wait: pkgA runs on n1 only, unmonitored.
    sim.run_for(seconds(90)).unwrap();
    assert_eq!(sim.running_on("pkgA"), set(&[0]));
    assert_eq!(sim.running_on("pkgB"), set(&[1]));
    assert_eq!(sim.watchdog_resets, 0);
    assert!(notices(&sim, "NodeFailed").is_empty());
    assert!(notices(&sim, "NodeHalted").is_empty());
    let told = notices(&sim, "NodeDetached");
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(matches!(
        told[0].notice,
        Notice::NodeDetached {
            node: NodeId(0),
            before: NodeCondition::RUNNING,
            ..
        }
    ));
    // Every member shows it detached on n1, and n1 down, halted.
    for node in [1, 2] {
        assert_eq!(
            condition(&sim, node, "pkgA"),
            (PackageStatus::Detached, PackageState::Detached)
        );
        let snapshot = sim.status(NodeId(node)).unwrap();
        assert_eq!(
            snapshot.nodes[0].condition,
            NodeCondition::down(NodeState::Halted)
        );
        let row = snapshot.packages.iter().find(|p| p.name == "pkgA").unwrap();
        assert_eq!(row.owners, set(&[0]));
        assert!(snapshot
            .to_line()
            .contains("package:pkgA|status=detached\n"));
    }
    // What Serviceguard refuses while a package is detached.
    let a = sim.package("pkgA");
    assert_eq!(
        sim.command(
            NodeId(1),
            Command::Run {
                package: a,
                node: NodeId(1)
            }
        ),
        Err(Refusal::Detached { node: NodeId(0) })
    );
    sim.command(
        NodeId(1),
        Command::Disable {
            package: a,
            node: None,
        },
    )
    .unwrap();
    sim.run_for(seconds(2)).unwrap();
    assert_eq!(
        sim.command(
            NodeId(1),
            Command::Maintenance {
                package: a,
                on: true,
                node: None,
            }
        ),
        Err(Refusal::Detached { node: NodeId(0) })
    );
    let files = vec![
        package("pkgA", &[1, 2], ""),
        package("pkgB", &[2, 3], ""),
        package("pkgC", &[2, 3], ""),
    ];
    assert_eq!(
        sim.apply(NodeId(1), None, &files),
        Err(Refusal::PackagesDetached {
            packages: vec!["pkgA".into()]
        })
    );
    // cmrunnode: the daemon starts again and re-attaches pkgA where it runs.
    sim.run_node(NodeId(0));
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2]))
            && (0..3).all(
                |n| condition(s, n, "pkgA") == (PackageStatus::Up, PackageState::Running)
            ))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    assert_eq!(sim.running_on("pkgA"), set(&[0]));
    // Re-attached, not started again.
    assert_eq!(started(&sim), starts);
    assert!(notices(&sim, "PackageFailed").is_empty());
    // Monitored again: a service failure is acted on.
    sim.command(
        NodeId(2),
        Command::Enable {
            package: a,
            node: None,
        },
    )
    .unwrap();
    sim.run_for(seconds(2)).unwrap();
    sim.kill_service(NodeId(0), "pkgA", 0);
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("pkgA") == set(&[1]))
        .unwrap());
    // And the configuration may change again.
    sim.apply(NodeId(1), None, &files).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| (0..3)
            .all(|n| s.generation(NodeId(n)) > Some(1)))
        .unwrap());
}

#[test]
fn a_package_that_died_while_detached_fails_over_when_its_node_reattaches() {
    let mut sim = two_packages(12);
    sim.detach_node(NodeId(0)).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[1, 2])) && halted(s, 0))
        .unwrap());
    // Nothing notices: the package stays detached.
    sim.kill_package(NodeId(0), "pkgA");
    sim.run_for(seconds(30)).unwrap();
    assert!(sim.running_on("pkgA").is_empty());
    assert_eq!(
        condition(&sim, 1, "pkgA"),
        (PackageStatus::Detached, PackageState::Detached)
    );
    sim.run_node(NodeId(0));
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("pkgA") == set(&[1]))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    let failed = notices(&sim, "PackageFailed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(matches!(
        failed[0].notice,
        Notice::PackageFailed {
            node: NodeId(0),
            cause: FailureCause::DiedWhileDetached,
            ..
        }
    ));
    assert_eq!(notices(&sim, "PackageFailover").len(), 1);
}

#[test]
fn a_machine_that_reboots_while_detached_fails_its_packages_over_when_it_rejoins() {
    let mut sim = two_packages(13);
    sim.detach_node(NodeId(0)).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[1, 2])) && halted(s, 0))
        .unwrap());
    // The machine goes down, its processes with it; it boots and its daemon starts.
    sim.crash(NodeId(0));
    sim.run_for(seconds(10)).unwrap();
    assert_eq!(
        condition(&sim, 2, "pkgA"),
        (PackageStatus::Detached, PackageState::Detached)
    );
    sim.restart(NodeId(0));
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("pkgA") == set(&[1])
            && s.formed(set(&[0, 1, 2])))
        .unwrap());
}

#[test]
fn a_detached_package_counts_as_up_for_its_dependents() {
    let web = package(
        "web",
        &[2, 3],
        "dependency_name d\ndependency_condition db = up\ndependency_location any_node\n",
    );
    let mut sim = cluster(
        14,
        &[package("db", &[1, 2], ""), web],
        &[("db", 0), ("web", 1)],
    );
    sim.detach_node(NodeId(0)).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[1, 2])) && halted(s, 0))
        .unwrap());
    sim.run_for(seconds(60)).unwrap();
    assert_eq!(sim.running_on("web"), set(&[1]));
    assert_eq!(
        condition(&sim, 2, "web"),
        (PackageStatus::Up, PackageState::Running)
    );
    assert!(notices(&sim, "PackageFailed").is_empty());
    // Halting db is refused while web, which depends on it, runs.
    let db = sim.package("db");
    assert_eq!(
        sim.command(
            NodeId(1),
            Command::Halt {
                package: db,
                node: None
            }
        ),
        Err(Refusal::DependentsRunning {
            dependents: vec!["web".into()]
        })
    );
}

#[test]
fn a_preview_of_enabling_a_detached_package_is_refused() {
    let mut sim = two_packages(23);
    sim.detach_node(NodeId(0)).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[1, 2])) && halted(s, 0))
        .unwrap());
    sim.run_for(seconds(5)).unwrap();
    let a = sim.package("pkgA");
    // No cmmodpkg -e -t of a detached package (serviceguard.md 6.5); its halt previews.
    assert_eq!(
        sim.preview(
            NodeId(1),
            &[Command::Enable {
                package: a,
                node: None
            }]
        )
        .map(|p| p.refused),
        Ok(vec![(0, Refusal::Detached { node: NodeId(0) })])
    );
    assert_eq!(
        sim.preview(
            NodeId(2),
            &[Command::Halt {
                package: a,
                node: None
            }]
        )
        .map(|p| p.refused),
        Ok(Vec::new())
    );
}

#[test]
fn cmhaltpkg_on_a_member_halts_a_detached_package_where_it_runs() {
    let mut sim = two_packages(19);
    sim.detach_node(NodeId(0)).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[1, 2])) && halted(s, 0))
        .unwrap());
    let a = sim.package("pkgA");
    // Its halt script runs on n1, whose daemon is halted; it ends halted, AUTO_RUN off.
    sim.command(
        NodeId(2),
        Command::Halt {
            package: a,
            node: None,
        },
    )
    .unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("pkgA").is_empty()
            && condition(s, 1, "pkgA")
                == (PackageStatus::Down, PackageState::Halted))
        .unwrap());
    sim.run_for(seconds(30)).unwrap();
    assert!(sim.running_on("pkgA").is_empty());
    let snapshot = sim.status(NodeId(2)).unwrap();
    let row = snapshot.packages.iter().find(|p| p.name == "pkgA").unwrap();
    assert!(!row.auto_run);
    // Now it may run elsewhere.
    sim.command(
        NodeId(1),
        Command::Run {
            package: a,
            node: NodeId(1),
        },
    )
    .unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("pkgA") == set(&[1]))
        .unwrap());
    // n1 starts again holding nothing detached: pkgA stays where it runs.
    sim.run_node(NodeId(0));
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    sim.run_for(seconds(5)).unwrap();
    assert_eq!(sim.running_on("pkgA"), set(&[1]));
    assert!(notices(&sim, "PackageFailed").is_empty());
}

#[test]
fn cmhaltpkg_is_answered_once_the_detached_node_took_the_halt_and_refused_when_none_did() {
    // Both run on n1 (its primary node).
    let mut sim = cluster(
        31,
        &[package("pkgA", &[1, 2], ""), package("pkgC", &[1, 3], "")],
        &[("pkgA", 0), ("pkgC", 0)],
    );
    sim.detach_node(NodeId(0)).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[1, 2])) && halted(s, 0))
        .unwrap());
    let halt = |package| Command::Halt {
        package,
        node: None,
    };
    // (Every member reports to the new coordinator first.)
    sim.run_for(seconds(3)).unwrap();
    // Given on the coordinator (n2): held, not carried out at once (Done), and answered
    // once n1's halted daemon took the halt.
    let a = sim.package("pkgA");
    let taken = sim.command(NodeId(1), halt(a));
    let Ok(Taken::Forwarded(serial)) = taken else {
        panic!("the command is held for the detached node's answer: {taken:?}");
    };
    assert!(answers(&sim, 1).is_empty());
    assert!(sim
        .run_until(seconds(5), |s| answers(s, 1)
            .iter()
            .any(|(n, _)| *n == serial))
        .unwrap());
    assert!(answers(&sim, 1).contains(&(serial, None)));
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("pkgA").is_empty())
        .unwrap());
    // n1's daemon dies (kill -9 of cmcld leaves pkgC running there, unmonitored): nothing
    // there takes the halt, and cmhaltpkg says so instead of waiting for a halt that cannot
    // come; on the coordinator (n2) and on another member (n3).
    sim.crash(NodeId(0));
    let c = sim.package("pkgC");
    sim.run_for(seconds(1)).unwrap();
    for k in [1, 2] {
        let Ok(Taken::Forwarded(serial)) = sim.command(NodeId(k), halt(c)) else {
            panic!("the command given on n{} is held", k + 1);
        };
        assert!(sim
            .run_until(seconds(10), |s| answers(s, k)
                .iter()
                .any(|(n, _)| *n == serial))
            .unwrap());
        let refusal = answers(&sim, k)
            .into_iter()
            .find(|(n, _)| *n == serial)
            .and_then(|(_, refusal)| refusal)
            .unwrap_or_default();
        assert!(
            refusal.contains("detached on node 0, whose cluster daemon did not answer"),
            "{refusal}"
        );
    }
    // pkgC is still shown detached on n1: the refusal changed nothing but AUTO_RUN.
    assert_eq!(
        condition(&sim, 1, "pkgC"),
        (PackageStatus::Detached, PackageState::Detached)
    );
}

#[test]
fn cmhaltpkg_reaches_a_daemon_started_again_before_it_rejoins() {
    // n1 detaches, then its daemon starts again but cannot join (cut off from the others):
    // it still holds pkgA detached, and halts it when asked.
    let mut sim = two_packages(20);
    sim.detach_node(NodeId(0)).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[1, 2])) && halted(s, 0))
        .unwrap());
    sim.cut_oneway(NodeId(1), NodeId(0));
    sim.cut_oneway(NodeId(2), NodeId(0));
    sim.run_node(NodeId(0));
    sim.run_for(seconds(5)).unwrap();
    assert_eq!(
        sim.core(NodeId(0)).map(|c| c.phase()),
        Some(Phase::Starting)
    );
    sim.heal();
    let a = sim.package("pkgA");
    sim.command(
        NodeId(1),
        Command::Halt {
            package: a,
            node: None,
        },
    )
    .unwrap();
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("pkgA").is_empty()
            && s.formed(set(&[0, 1, 2])))
        .unwrap());
    sim.run_for(seconds(5)).unwrap();
    assert!(sim.running_on("pkgA").is_empty());
    assert!(notices(&sim, "PackageFailed").is_empty());
}

#[test]
fn cmhaltcl_d_stops_the_cluster_and_cmruncl_reattaches_everything() {
    let mut sim = two_packages(15);
    let starts = started(&sim);
    sim.detach_cluster(NodeId(2)).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| (0..3).all(|n| halted(s, n)))
        .unwrap());
    sim.run_for(seconds(60)).unwrap();
    assert_eq!(sim.running_on("pkgA"), set(&[0]));
    assert_eq!(sim.running_on("pkgB"), set(&[1]));
    assert_eq!(notices(&sim, "ClusterHalted").len(), 1);
    // Every halted node shows both packages detached (they run on, unmonitored).
    for n in 0..3 {
        for package in ["pkgA", "pkgB"] {
            assert_eq!(
                condition(&sim, n, package),
                (PackageStatus::Detached, PackageState::Detached),
                "n{} shows {package}",
                n + 1
            );
        }
    }
    // cmruncl: every daemon starts again; the packages are re-attached where they run.
    for n in 0..3 {
        sim.run_node(NodeId(n));
    }
    assert!(sim
        .run_until(seconds(90), |s| s.formed(set(&[0, 1, 2]))
            && condition(s, 2, "pkgA")
                == (PackageStatus::Up, PackageState::Running)
            && condition(s, 2, "pkgB")
                == (PackageStatus::Up, PackageState::Running))
        .unwrap());
    sim.run_for(seconds(10)).unwrap();
    assert_eq!(sim.running_on("pkgA"), set(&[0]));
    assert_eq!(sim.running_on("pkgB"), set(&[1]));
    assert_eq!(started(&sim), starts);
}

#[test]
fn detaching_is_refused_where_serviceguard_refuses_it() {
    // A system multi-node package is configured.
    let system = "package_name sys\npackage_type system_multi_node\nnode_name *\n\
node_fail_fast_enabled yes\nservice_name s\nservice_cmd /bin/s\n"
        .to_string();
    let mut sim = cluster(16, &[package("pkgA", &[1, 2], ""), system], &[("pkgA", 0)]);
    assert!(matches!(
        sim.detach_node(NodeId(0)),
        Err(Refusal::DetachUnsupported { .. })
    ));
    assert!(matches!(
        sim.detach_cluster(NodeId(1)),
        Err(Refusal::DetachUnsupported { .. })
    ));

    let mut sim = two_packages(17);
    let a = sim.package("pkgA");
    // A package here in maintenance mode.
    sim.command(
        NodeId(0),
        Command::Disable {
            package: a,
            node: None,
        },
    )
    .unwrap();
    sim.run_for(seconds(2)).unwrap();
    sim.command(
        NodeId(0),
        Command::Maintenance {
            package: a,
            on: true,
            node: None,
        },
    )
    .unwrap();
    sim.run_for(seconds(2)).unwrap();
    assert_eq!(sim.detach_node(NodeId(0)), Err(Refusal::Maintenance));
    assert_eq!(sim.detach_cluster(NodeId(2)), Err(Refusal::Maintenance));
    // n2 has nothing in maintenance: it may detach.
    sim.detach_node(NodeId(1)).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[0, 2])) && halted(s, 1))
        .unwrap());
    assert_eq!(sim.running_on("pkgB"), set(&[1]));
}

#[test]
fn a_node_that_was_not_detached_starts_nothing_it_does_not_hold() {
    // cmhaltnode (no -d) then cmrunnode: nothing is held as detached.
    let mut sim = two_packages(18);
    sim.halt_node(NodeId(2), false).unwrap();
    assert!(sim.run_until(seconds(30), |s| halted(s, 2)).unwrap());
    sim.run_node(NodeId(2));
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    for n in 0..3 {
        assert_eq!(
            condition(&sim, n, "pkgA"),
            (PackageStatus::Up, PackageState::Running)
        );
    }
    assert!(notices(&sim, "NodeDetached").is_empty());
}

#[test]
fn a_detaching_node_whose_commit_is_lost_still_leaves_gracefully() {
    let mut sim = two_packages(21);
    // n2 proposes the membership without n1; every commit of it is lost, so n1 learns it
    // from the members' heartbeats.
    sim.network.drop_kinds.push((NodeId(1), "Commit"));
    sim.detach_node(NodeId(0)).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[1, 2])) && halted(s, 0))
        .unwrap());
    sim.network.drop_kinds.clear();
    sim.run_for(seconds(60)).unwrap();
    assert_eq!(sim.watchdog_resets, 0);
    assert_eq!(sim.life(NodeId(0)), Life::Up);
    assert_eq!(sim.running_on("pkgA"), set(&[0]));
    assert!(notices(&sim, "NodeFailed").is_empty());
    assert_eq!(
        condition(&sim, 1, "pkgA"),
        (PackageStatus::Detached, PackageState::Detached)
    );
}

#[test]
fn a_node_that_fails_while_detaching_has_its_packages_failed_over() {
    let mut sim = two_packages(22);
    sim.detach_node(NodeId(0)).unwrap();
    // Long enough for the coordinator to record the detach, not for n1 to leave.
    sim.run_for(Duration::from_millis(20)).unwrap();
    assert!(!halted(&sim, 0));
    sim.crash(NodeId(0));
    assert!(sim
        .run_until(seconds(120), |s| s.running_on("pkgA") == set(&[1]))
        .unwrap());
    assert!(!notices(&sim, "NodeFailed").is_empty());
}

/// n3 leaves detached; n2 misses the commit, takes n3 as failed and awaits its fence. The
/// package coordinator n1 crashes and comes back at once: it never saw the detach, and n2's
/// awaited life of n3 comes to it with the new membership. It keeps the package detached on
/// n3 (S1 is checked throughout) instead of starting it elsewhere once the wait is over.
#[test]
fn a_coordinator_started_again_keeps_a_detach_it_did_not_see() {
    for seed in 0..3 {
        let mut options = Options::new(5, 2300 + seed);
        options.packages = vec![package("pkgA", &[3, 1, 2, 4, 5], "")];
        let mut sim = Simulation::new(options);
        sim.start_all();
        let all = NodeSet::first(5);
        assert!(sim
            .run_until(seconds(90), |s| s.formed(all)
                && s.running_on("pkgA") == set(&[2]))
            .unwrap());
        sim.run_for(seconds(3)).unwrap();
        sim.network.drop_kinds.push((NodeId(1), "Commit"));
        sim.detach_node(NodeId(2)).unwrap();
        let rest = set(&[0, 1, 3, 4]);
        assert!(sim
            .run_until(seconds(30), |s| s.formed(rest) && halted(s, 2))
            .unwrap());
        sim.network.drop_kinds.clear();
        sim.crash(NodeId(0));
        sim.restart(NodeId(0));
        assert!(sim
            .run_until(seconds(30), |s| s.formed(rest)
                && s.core(NodeId(0))
                    .is_some_and(|c| c.phase() == Phase::Running))
            .unwrap());
        sim.run_for(seconds(90)).unwrap();
        assert_eq!(sim.running_on("pkgA"), set(&[2]), "seed {seed}");
        assert_eq!(
            condition(&sim, 0, "pkgA"),
            (PackageStatus::Detached, PackageState::Detached),
            "seed {seed}"
        );
    }
}

/// cmruncl -n n2 n3 (after a reboot of both, or their daemons started again): the cluster
/// forms without n1, and pkgA, detached on n1, runs there only.
fn start_without_n1(sim: &mut Simulation, reboot: bool) {
    for n in [1, 2] {
        if reboot {
            sim.crash(NodeId(n));
            sim.restart(NodeId(n));
        } else {
            sim.run_node(NodeId(n));
        }
        sim.run_cluster(NodeId(n), set(&[1, 2])).unwrap();
    }
    assert!(sim
        .run_until(seconds(90), |s| s.formed(set(&[1, 2])))
        .unwrap());
    sim.run_for(seconds(60)).unwrap();
    assert_eq!(sim.running_on("pkgA"), set(&[0]));
    assert_eq!(sim.running_on("pkgB"), set(&[1]));
    assert_eq!(
        condition(sim, 2, "pkgA"),
        (PackageStatus::Detached, PackageState::Detached)
    );
}

#[test]
fn a_cluster_started_again_without_the_detached_node_starts_none_of_its_packages() {
    let mut sim = two_packages(23);
    sim.detach_node(NodeId(0)).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[1, 2])) && halted(s, 0))
        .unwrap());
    // The rest of the cluster halts (cmhaltcl -f), reboots, and is started without n1
    // (cmruncl -n n2 n3): pkgA still runs on n1, detached.
    sim.halt_cluster(NodeId(1), true).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| halted(s, 1) && halted(s, 2))
        .unwrap());
    start_without_n1(&mut sim, true);
    // n1 re-attaches it when it joins.
    sim.run_node(NodeId(0));
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2]))
            && condition(s, 2, "pkgA")
                == (PackageStatus::Up, PackageState::Running))
        .unwrap());
    assert_eq!(sim.running_on("pkgA"), set(&[0]));
}

#[test]
fn after_cmhaltcl_d_a_partial_cmruncl_starts_nothing_detached_elsewhere() {
    let mut sim = two_packages(24);
    sim.detach_cluster(NodeId(0)).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| (0..3).all(|n| halted(s, n)))
        .unwrap());
    // cmruncl -n n2 n3: pkgA may run on n2, but it is detached on n1.
    start_without_n1(&mut sim, false);
    // pkgB, detached on n2, was re-attached there.
    assert_eq!(
        condition(&sim, 2, "pkgB"),
        (PackageStatus::Up, PackageState::Running)
    );
}

/// A halted node whose daemon runs a detached package's halt script (cmhaltpkg given on a
/// member) does not start again meanwhile: cmrunnode is refused until the script ended, and
/// then the node starts again holding nothing.
#[test]
fn cmrunnode_waits_for_a_detached_package_halting_on_the_halted_node() {
    let mut sim = two_packages(23);
    sim.script_latency = Duration::from_secs(5);
    sim.detach_node(NodeId(0)).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[1, 2])) && halted(s, 0))
        .unwrap());
    let a = sim.package("pkgA");
    sim.command(
        NodeId(2),
        Command::Halt {
            package: a,
            node: None,
        },
    )
    .unwrap();
    // The order reaches n1 and its halt script starts (it takes 5 s).
    sim.run_for(Duration::from_secs(1)).unwrap();
    assert_eq!(sim.run_node_command(NodeId(0)), Err(Refusal::Halting));
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("pkgA").is_empty())
        .unwrap());
    sim.run_for(seconds(1)).unwrap();
    sim.run_node_command(NodeId(0)).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    assert!(sim.running_on("pkgA").is_empty());
}

/// n3 comes back and joins the cluster that n2 runs alone (n1 left detached, pkgA running
/// there), and n2 dies before n3 heard the package table from it. n3 wins the lock of
/// {n2, n3}, but alone it does not know what runs where: it halts rather than run the
/// cluster, and pkgA, detached on n1, starts nowhere else. A cluster started again from
/// the nodes' files knows the detach.
#[test]
fn a_joiner_left_alone_before_it_heard_the_package_table_halts() {
    let mut options = Options::new(3, 31);
    options.tiebreaker = Tiebreaker::LockLun;
    options.packages = vec![package("pkgA", &[1, 2, 3], "")];
    let mut sim = cluster_of(options, &[("pkgA", 0)]);
    sim.crash(NodeId(2));
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[0, 1])))
        .unwrap());
    sim.detach_node(NodeId(0)).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[1])) && halted(s, 0))
        .unwrap());
    // n2 dies as soon as n3 took the commit: n3 heard no heartbeat of the membership.
    sim.restart(NodeId(2));
    assert!(sim
        .run_until(seconds(60), |s| s
            .core(NodeId(2))
            .is_some_and(|c| c.phase() == Phase::Running))
        .unwrap());
    // Its cmviewcl does not know what pkgA does yet.
    assert_eq!(condition(&sim, 2, "pkgA").0, PackageStatus::Unknown);
    sim.crash(NodeId(1));
    let reasons = |s: &Simulation| -> Vec<FenceReason> {
        notices(s, "QuorumLost")
            .iter()
            .filter(|r| r.node == NodeId(2))
            .filter_map(|r| match r.notice {
                Notice::QuorumLost { reason, .. } => Some(reason),
                _ => None,
            })
            .collect()
    };
    assert!(sim
        .run_until(seconds(60), |s| !reasons(s).is_empty())
        .unwrap());
    assert_eq!(reasons(&sim), [FenceReason::PackagesUnknown]);
    sim.run_for(seconds(30)).unwrap();
    assert_eq!(sim.running_on("pkgA"), set(&[0]));
    // cmruncl -n n2 n3: the files of n2 hold the detach.
    for n in [1, 2] {
        sim.restart(NodeId(n));
        sim.run_cluster(NodeId(n), set(&[1, 2])).unwrap();
    }
    assert!(sim
        .run_until(seconds(90), |s| s.formed(set(&[1, 2])))
        .unwrap());
    sim.run_for(seconds(30)).unwrap();
    assert_eq!(sim.running_on("pkgA"), set(&[0]));
    assert_eq!(
        condition(&sim, 2, "pkgA"),
        (PackageStatus::Detached, PackageState::Detached)
    );
}
