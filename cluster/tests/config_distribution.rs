//! Configuration distribution (cmapplyconf): a new generation rides on a membership
//! proposal, every member persists it before accepting, and it takes effect with the commit
//! on every member or on none, also when the coordinator dies half way.

mod common;

use std::time::Duration;

use common::{notices, seconds, set};

use cimguard_cluster::core::{Base, NodeId, NodeSet};
use cimguard_cluster::packages::{FailureCause, Refusal, Script, ScriptOutcome};
use cimguard_cluster::sim::{Options, ScriptFault, Simulation};
use cimguard_cluster::status::{Notice, PackageState, PackageStatus};

fn package(name: &str, nodes: &[u32]) -> String {
    let mut text = format!("package_name {name}\n");
    for n in nodes {
        text.push_str(&format!("node_name n{n}\n"));
    }
    text.push_str("service_name s\nservice_cmd /bin/s\nservice_restart 3\n");
    text
}

fn cluster(packages: &[String]) -> Simulation {
    let mut options = Options::new(3, 17);
    options.packages = packages.to_vec();
    let mut sim = Simulation::new(options);
    sim.start_all();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2]))
            && !s.running_on("pkgM").is_empty())
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    sim
}

/// The coordinator, as the first node up sees it.
fn coordinator(sim: &Simulation) -> NodeId {
    (0..3)
        .find_map(|n| sim.status(NodeId(n)))
        .and_then(|s| s.coordinator)
        .expect("a coordinator")
}

fn generations(sim: &Simulation) -> Vec<Option<u64>> {
    (0..3).map(|n| sim.generation(NodeId(n))).collect()
}

#[test]
fn a_package_added_while_others_run_takes_effect_everywhere() {
    let pkg_m = package("pkgM", &[1, 2]);
    let mut sim = cluster(std::slice::from_ref(&pkg_m));
    let started_before = notices(&sim, "PackageStarted").len();
    // "aaa" sorts before pkgM: every package number changes while pkgM runs.
    let files = vec![package("aaa", &[2, 3]), pkg_m];
    sim.apply(NodeId(2), None, &files).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| !s.running_on("aaa").is_empty())
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    // Shown one above the generation the cluster was created with.
    let after = generations(&sim);
    assert_eq!(after, [Some(2); 3]);
    // pkgM kept running where it was, untouched.
    assert_eq!(sim.running_on("pkgM"), set(&[0]));
    assert_eq!(notices(&sim, "PackageStarted").len(), started_before + 1);
    let told = notices(&sim, "ClusterConfigChanged");
    assert_eq!(told.len(), 1, "{told:?}");
    let Notice::ClusterConfigChanged {
        before,
        after: number,
        ref packages,
    } = told[0].notice
    else {
        unreachable!()
    };
    assert_eq!((before, Some(number)), (1, after[0]));
    assert_eq!(packages.added, ["aaa"]);
    assert!(packages.deleted.is_empty() && packages.modified.is_empty());
    // Its services are still watched under the new numbering: a restart counts for pkgM.
    sim.kill_service(NodeId(0), "pkgM", 0);
    sim.run_for(seconds(3)).unwrap();
    let snapshot = sim.status(NodeId(1)).unwrap();
    let m = snapshot.packages.iter().find(|p| p.name == "pkgM").unwrap();
    assert_eq!(m.nodes[0].services[0].condition.restarts, 1);
    assert_eq!(snapshot.generation, after[0].unwrap());
    // The same files again change nothing.
    sim.apply(NodeId(1), None, &files).unwrap();
    sim.run_for(seconds(20)).unwrap();
    assert_eq!(generations(&sim), after);
}

#[test]
fn cmapplyconf_refuses_what_needs_a_halt() {
    let pkg_m = package("pkgM", &[1, 2]);
    let pkg_h = package("pkgH", &[1, 2]) + "auto_run no\n";
    let mut sim = cluster(&[pkg_m.clone(), pkg_h.clone()]);
    assert_eq!(
        sim.apply(NodeId(1), None, std::slice::from_ref(&pkg_h)),
        Err(Refusal::PackageActive {
            package: "pkgM".into(),
            change: "deleted"
        })
    );
    // pkgM runs on n1: n1 may not leave its node list, nor may its dependencies change.
    assert_eq!(
        sim.apply(NodeId(1), None, &[package("pkgM", &[2, 3]), pkg_h.clone()]),
        Err(Refusal::NeedsHaltedPackage {
            package: "pkgM".into(),
            parameter: "node_name"
        })
    );
    let depends = package("pkgM", &[1, 2])
        + "dependency_name d\ndependency_condition pkgH = up\ndependency_location any_node\n";
    assert_eq!(
        sim.apply(NodeId(1), None, &[depends, pkg_h.clone()]),
        Err(Refusal::NeedsHaltedPackage {
            package: "pkgM".into(),
            parameter: "dependency_name"
        })
    );
    // A heartbeat address needs the cluster halted (MEMBER_TIMEOUT does not, see
    // member_timeout.rs).
    let moved = cimguard_cluster::sim::cluster_file(&Options::new(3, 17))
        .replace("HEARTBEAT_IP 10.0.0.2", "HEARTBEAT_IP 10.0.0.12");
    assert_eq!(
        sim.apply(NodeId(1), Some(&moved), &[pkg_m.clone(), pkg_h.clone()]),
        Err(Refusal::NeedsHaltedCluster {
            parameters: vec!["HEARTBEAT_IP"]
        })
    );
    let error = sim
        .apply(NodeId(1), None, &[package("pkgM", &[1, 9])])
        .unwrap_err();
    assert!(error.to_string().contains("n9"), "{error}");
    // A halted package may be deleted.
    sim.apply(NodeId(1), None, std::slice::from_ref(&pkg_m))
        .unwrap();
    assert!(sim
        .run_until(seconds(30), |s| generations(s)
            .iter()
            .all(|g| *g != Some(1)))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    let snapshot = sim.status(NodeId(2)).unwrap();
    assert_eq!(snapshot.packages.len(), 1);
    let told = notices(&sim, "ClusterConfigChanged");
    assert_eq!(told.len(), 1);
    assert!(matches!(
        &told[0].notice,
        Notice::ClusterConfigChanged { packages, .. } if packages.deleted == ["pkgH"]
    ));
}

#[test]
fn a_generation_committed_by_a_coordinator_that_dies_takes_effect_on_the_others() {
    let pkg_m = package("pkgM", &[1, 2]);
    for seed in 0..10 {
        let mut options = Options::new(3, 100 + seed);
        options.packages = vec![pkg_m.clone()];
        options.reboot_after = None;
        let mut sim = Simulation::new(options);
        sim.start_all();
        assert!(sim
            .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
            .unwrap());
        sim.run_for(seconds(5)).unwrap();
        // The commit never leaves the coordinator: it alone installs the new generation,
        // then dies.
        sim.network.drop_kinds.push((NodeId(0), "Commit"));
        sim.apply(NodeId(0), None, &[pkg_m.clone(), package("pkgN", &[2, 3])])
            .unwrap();
        assert!(sim
            .run_until(seconds(30), |s| s.generation(NodeId(0)) != Some(1))
            .unwrap());
        let applied = sim.generation(NodeId(0)).unwrap();
        assert_eq!(applied, 2, "seed {seed}: shown one above the first");
        sim.crash(NodeId(0));
        sim.network.drop_kinds.clear();
        // The survivors carry it on: they accepted it, so it may be in effect (it was).
        assert!(
            sim.run_until(seconds(60), |s| s.formed(set(&[1, 2]))
                && s.generation(NodeId(1)) == Some(applied)
                && s.generation(NodeId(2)) == Some(applied))
                .unwrap(),
            "seed {seed}: {:?}",
            generations(&sim)
        );
        // The old coordinator restarts with it and joins.
        sim.restart(NodeId(0));
        assert!(sim
            .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
            .unwrap());
        assert_eq!(generations(&sim), [Some(applied); 3]);
        assert!(sim
            .run_until(seconds(30), |s| !s.running_on("pkgN").is_empty())
            .unwrap());
    }
}

#[test]
fn a_node_down_during_cmapplyconf_fetches_the_generation_and_joins() {
    let pkg_m = package("pkgM", &[1, 2]);
    let mut sim = cluster(std::slice::from_ref(&pkg_m));
    sim.crash(NodeId(2));
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1])))
        .unwrap());
    sim.apply(NodeId(1), None, &[pkg_m, package("pkgN", &[3, 2])])
        .unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.generation(NodeId(0)) != Some(1))
        .unwrap());
    let applied = sim.generation(NodeId(0));
    sim.restart(NodeId(2));
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    assert_eq!(generations(&sim), [applied; 3]);
    // pkgN took effect while node 3 was away: it runs on its next node, 2, and stays there
    // when node 3 is back (failback manual).
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("pkgN") == set(&[1]))
        .unwrap());
    sim.run_for(seconds(10)).unwrap();
    assert_eq!(sim.running_on("pkgN"), set(&[1]));
}

fn formed(nodes: usize, packages: &[String]) -> Simulation {
    formed_with(Options::new(nodes, 17), packages)
}

fn formed_with(mut options: Options, packages: &[String]) -> Simulation {
    let nodes = options.nodes;
    options.packages = packages.to_vec();
    options.reboot_after = None;
    let mut sim = Simulation::new(options);
    sim.start_all();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(NodeSet::first(nodes)))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    sim
}

#[test]
fn no_package_starts_while_a_change_that_deletes_it_is_on_its_way() {
    let pkg_m = package("pkgM", &[1, 2]);
    let pkg_h = package("pkgH", &[1, 2]) + "auto_run no\n";
    let mut sim = formed(3, &[pkg_m.clone(), pkg_h]);
    sim.apply(NodeId(0), None, std::slice::from_ref(&pkg_m))
        .unwrap();
    let h = sim.package("pkgH");
    assert_eq!(
        sim.command(
            NodeId(0),
            cimguard_cluster::packages::Command::Run {
                package: h,
                node: NodeId(0),
            }
        ),
        Err(Refusal::ConfigurationChanging)
    );
    sim.run_for(seconds(30)).unwrap();
    assert!(sim.running_on("pkgH").is_empty());
    // Added again elsewhere: it starts once, nowhere else (the checkers watch S1).
    sim.apply(NodeId(1), None, &[pkg_m, package("pkgH", &[2, 3])])
        .unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("pkgH") == set(&[1]))
        .unwrap());
    sim.run_for(seconds(30)).unwrap();
}

#[test]
fn files_changed_offline_are_kept_over_a_generation_made_online() {
    let pkg_m = package("pkgM", &[1, 2]);
    let mut sim = formed(3, std::slice::from_ref(&pkg_m));
    sim.apply(NodeId(0), None, &[pkg_m, package("pkgN", &[2, 3])])
        .unwrap();
    sim.run_for(seconds(20)).unwrap();
    let online = sim.generation(NodeId(0)).unwrap();
    assert!(online > 1);
    sim.halt_cluster(NodeId(0), true).unwrap();
    sim.run_for(seconds(30)).unwrap();
    // An offline cmapplyconf wrote generation 100000 on every node.
    for n in 0..3 {
        sim.crash(NodeId(n));
        sim.set_config_generation(NodeId(n), online + 100_000);
    }
    sim.start_all();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    assert_eq!(generations(&sim), [Some(online + 100_000); 3]);
}

/// Five nodes running pkgM; cmapplyconf (adding pkgN) on n1, whose proposal only n5 hears
/// and accepts; then n1 dies before anything is committed.
fn accepted_by_n5_only() -> Simulation {
    accepted_by_n5_only_of(formed(5, &[package("pkgM", &[1, 2])]))
}

/// n1 proposes a new generation that only n5 hears (of the nodes after n4), then dies.
fn accepted_by_n5_only_of(mut sim: Simulation) -> Simulation {
    let pkg_m = package("pkgM", &[1, 2]);
    for n in (1..sim.node_count()).filter(|&n| n != 4) {
        sim.cut_oneway(NodeId(0), NodeId(n as u32));
    }
    sim.apply(NodeId(0), None, &[pkg_m, package("pkgN", &[2, 3])])
        .unwrap();
    assert!(sim
        .run_until(seconds(10), |s| s.core(NodeId(4)).is_some_and(|c| c
            .phase()
            == cimguard_cluster::core::Phase::Reforming))
        .unwrap());
    sim.crash(NodeId(0));
    sim.heal();
    sim
}

#[test]
fn a_generation_accepted_by_one_node_only_is_never_revived() {
    // Only n5 hears the proposal; the coordinator dies before anything is committed.
    let mut sim = accepted_by_n5_only();
    sim.partition(&[set(&[0, 1, 2, 3]), set(&[4])]);
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[1, 2, 3])))
        .unwrap());
    sim.run_for(seconds(60)).unwrap();
    sim.crash(NodeId(4));
    sim.heal();
    sim.restart(NodeId(4));
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[1, 2, 3, 4])))
        .unwrap());
    sim.run_for(seconds(20)).unwrap();
    for n in 1..5 {
        assert_eq!(sim.generation(NodeId(n)), Some(1), "node {n}");
    }
    assert!(sim.running_on("pkgN").is_empty());
}

#[test]
fn a_lost_answer_to_a_configuration_request_is_asked_again() {
    let pkg_m = package("pkgM", &[1, 2]);
    let mut sim = formed(3, std::slice::from_ref(&pkg_m));
    sim.crash(NodeId(2));
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1])))
        .unwrap());
    sim.apply(NodeId(1), None, &[pkg_m, package("pkgN", &[3, 2])])
        .unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.generation(NodeId(0)) != Some(1))
        .unwrap());
    sim.network.drop_kinds.push((NodeId(0), "Config"));
    sim.network.drop_kinds.push((NodeId(1), "Config"));
    sim.restart(NodeId(2));
    sim.run_for(seconds(10)).unwrap();
    sim.network.drop_kinds.clear();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
}

#[test]
fn a_generation_meant_to_be_carried_on_is_forgotten_once_newer_memberships_form_without_it() {
    use cimguard_cluster::core::{Phase, Tiebreaker};
    // Six nodes with a quorum server: in a membership of even size the nodes outlive a lapsed
    // lease by the long grace, so n3, n4 and n6 wait for n2 below (with five, they would
    // be fenced as a minority once n2 and n5 are gone).
    let mut options = Options::new(6, 17);
    options.tiebreaker = Tiebreaker::QuorumServer;
    let mut sim = accepted_by_n5_only_of(formed_with(options, &[package("pkgM", &[1, 2])]));
    sim.pause(NodeId(1));
    // n3 coordinates {2,3,4} and learns the generation from n5; its later proposals are lost.
    assert!(sim
        .run_until(seconds(30), |s| s
            .core(NodeId(2))
            .is_some_and(|c| c.phase() == Phase::Reforming))
        .unwrap());
    sim.network.drop_kinds.push((NodeId(2), "Propose"));
    sim.run_for(Duration::from_millis(500)).unwrap();
    sim.crash(NodeId(4));
    sim.resume(NodeId(1));
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[1, 2, 3, 5])))
        .unwrap());
    sim.network.drop_kinds.clear();
    sim.run_for(seconds(20)).unwrap();
    // n2 runs pkgM (its nodes are n1 and n2): cmhaltnode -f.
    sim.halt_node(NodeId(1), true).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[2, 3, 5])))
        .unwrap());
    sim.run_for(seconds(20)).unwrap();
    assert_eq!(sim.generation(NodeId(2)), Some(1));
    assert!(sim.running_on("pkgN").is_empty());
}

#[test]
fn an_ordered_start_counts_as_running_for_cmapplyconf() {
    let pkg_m = package("pkgM", &[1, 2]);
    let pkg_x = package("pkgX", &[2, 3]) + "auto_run no\n";
    let mut sim = formed(3, &[pkg_m.clone(), pkg_x]);
    let x = sim.package("pkgX");
    // n2's reports do not reach n1 for a moment: the start is ordered, not yet reported.
    sim.network.drop_kinds.push((NodeId(1), "Heartbeat"));
    sim.command(
        NodeId(0),
        cimguard_cluster::packages::Command::Run {
            package: x,
            node: NodeId(1),
        },
    )
    .unwrap();
    assert_eq!(
        sim.apply(NodeId(0), None, std::slice::from_ref(&pkg_m)),
        Err(Refusal::PackageActive {
            package: "pkgX".into(),
            change: "deleted"
        })
    );
}

#[test]
fn a_changed_service_cmd_is_applied_to_a_running_package() {
    // Only service_cmd changes: the package is reconfigured while it runs (the supervisor
    // replaces that service), never left running the old command unseen.
    let pkg_m = package("pkgM", &[1, 2]);
    let mut sim = cluster(std::slice::from_ref(&pkg_m));
    let changed = pkg_m.replace("service_cmd /bin/s", "service_cmd /bin/s2");
    sim.script_latency = seconds(2);
    sim.apply(NodeId(2), None, std::slice::from_ref(&changed))
        .unwrap();
    let state = |s: &Simulation| {
        let snapshot = s.status(NodeId(1)).unwrap();
        let m = snapshot.packages.iter().find(|p| p.name == "pkgM").unwrap();
        m.condition.state
    };
    assert!(sim
        .run_until(seconds(30), |s| state(s) == PackageState::Reconfiguring)
        .unwrap());
    assert!(sim
        .run_until(seconds(30), |s| state(s) == PackageState::Running)
        .unwrap());
    assert_eq!(sim.running_on("pkgM"), set(&[0]));
}

#[test]
fn a_running_package_takes_an_online_change_without_a_restart() {
    let pkg_m = package("pkgM", &[1, 2]);
    let mut sim = cluster(std::slice::from_ref(&pkg_m));
    let started_before = notices(&sim, "PackageStarted").len();
    // A second service, a node added, another failback policy: all while it runs.
    let changed = package("pkgM", &[1, 2, 3])
        + "service_name t\nservice_cmd /bin/t\nservice_restart 1\nfailback_policy automatic\n";
    sim.script_latency = seconds(2);
    sim.apply(NodeId(2), None, std::slice::from_ref(&changed))
        .unwrap();
    let shown = |s: &Simulation| {
        let snapshot = s.status(NodeId(1)).unwrap();
        let m = snapshot.packages.iter().find(|p| p.name == "pkgM").unwrap();
        (
            m.condition.status,
            m.condition.state,
            m.nodes[0].services.len(),
        )
    };
    assert!(sim
        .run_until(seconds(30), |s| shown(s).1 == PackageState::Reconfiguring)
        .unwrap());
    assert_eq!(shown(&sim).0, PackageStatus::Reconfiguring);
    assert!(sim
        .run_until(seconds(30), |s| shown(s)
            == (PackageStatus::Up, PackageState::Running, 2))
        .unwrap());
    assert_eq!(sim.running_on("pkgM"), set(&[0]));
    assert_eq!(notices(&sim, "PackageStarted").len(), started_before);
    let told = notices(&sim, "ClusterConfigChanged");
    assert!(matches!(
        &told[0].notice,
        Notice::ClusterConfigChanged { packages, .. } if packages.modified == ["pkgM"]
    ));
    // The new service is watched: its restart counts.
    sim.kill_service(NodeId(0), "pkgM", 1);
    sim.run_for(seconds(3)).unwrap();
    let snapshot = sim.status(NodeId(2)).unwrap();
    let m = snapshot.packages.iter().find(|p| p.name == "pkgM").unwrap();
    assert_eq!(m.nodes[0].services[1].condition.restarts, 1);
    assert_eq!(m.nodes[0].services[1].max_restarts, Some(1));
}

#[test]
fn a_failed_online_change_fails_the_package_over() {
    let pkg_m = package("pkgM", &[1, 2]);
    let mut sim = cluster(std::slice::from_ref(&pkg_m));
    sim.script_faults.insert(
        ("pkgM".into(), NodeId(0), Script::Reconfigure),
        ScriptFault::Fail,
    );
    let changed = package("pkgM", &[1, 2]) + "service_name t\nservice_cmd /bin/t\n";
    sim.apply(NodeId(0), None, std::slice::from_ref(&changed))
        .unwrap();
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("pkgM") == set(&[1]))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    let failed = notices(&sim, "PackageFailed");
    assert!(matches!(
        failed[0].notice,
        Notice::PackageFailed {
            node: NodeId(0),
            cause: FailureCause::Reconfigure(ScriptOutcome::Failed),
            ..
        }
    ));
}

#[test]
fn adding_a_package_renumbers_without_changing_a_running_dependent() {
    let db = package("pkgM", &[1, 2]);
    let web = package("web", &[1, 2])
        + "dependency_name d\ndependency_condition pkgM = up\ndependency_location same_node\n";
    let mut sim = cluster(&[db.clone(), web.clone()]);
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("web") == set(&[0]))
        .unwrap());
    // "aaa" sorts first: every package number, and web's dependency's, changes.
    sim.apply(NodeId(1), None, &[package("aaa", &[3]), db, web])
        .unwrap();
    assert!(sim
        .run_until(seconds(30), |s| generations(s)
            .iter()
            .all(|g| *g != Some(1)))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    let told = notices(&sim, "ClusterConfigChanged");
    assert!(matches!(
        &told[0].notice,
        Notice::ClusterConfigChanged { packages, .. }
            if packages.added == ["aaa"] && packages.modified.is_empty()
    ));
    assert_eq!(sim.running_on("web"), set(&[0]));
    assert_eq!(sim.running_on("aaa"), set(&[2]));
}

#[test]
fn a_package_being_reconfigured_is_still_monitored() {
    let pkg_m = package("pkgM", &[1, 2]);
    let mut sim = cluster(std::slice::from_ref(&pkg_m));
    sim.script_latency = seconds(10);
    let changed = package("pkgM", &[1, 2]) + "service_name t\nservice_cmd /bin/t\n";
    sim.apply(NodeId(1), None, std::slice::from_ref(&changed))
        .unwrap();
    let state = |s: &Simulation| {
        let snapshot = s.status(NodeId(0)).unwrap();
        let m = snapshot.packages.iter().find(|p| p.name == "pkgM").unwrap();
        (m.condition.state, m.nodes[0].services[0].condition.restarts)
    };
    assert!(sim
        .run_until(seconds(30), |s| state(s).0 == PackageState::Reconfiguring)
        .unwrap());
    // Its first service dies while the change is applied: restarted, and counted.
    sim.kill_service(NodeId(0), "pkgM", 0);
    assert!(sim
        .run_until(seconds(30), |s| state(s) == (PackageState::Running, 1))
        .unwrap());
    assert_eq!(notices(&sim, "ServiceRestarted").len(), 1);
}

/// Whether `node` is halted (its daemon still there).
fn halted(sim: &Simulation, node: u32) -> bool {
    sim.core(NodeId(node))
        .is_some_and(|c| c.phase() == cimguard_cluster::core::Phase::Halted)
}

/// The answer node `node` told for command `serial` (None: not yet).
fn answer(sim: &Simulation, node: u32, serial: u64) -> Option<Option<String>> {
    sim.trace().iter().rev().find_map(|r| match &r.event {
        cimguard_cluster::core::Event::CommandAnswered {
            serial: s, refusal, ..
        } if r.node == NodeId(node) && *s == serial => Some(refusal.clone()),
        _ => None,
    })
}

/// cmapplyconf of `cluster` and `packages` given on halted `node`, and the answer it gets
/// (None: carried out; else the refusal).
fn apply_halted(
    sim: &mut Simulation,
    node: u32,
    cluster: &str,
    packages: &[String],
) -> Option<String> {
    let given = sim.apply(NodeId(node), Some(cluster), packages);
    answered_later(sim, node, &given)
}

/// The answer to a command given on `node` that is answered later (a halted cmapplyconf or
/// cmcheckconf), waited for: None when carried out, else the refusal.
fn answered_later(
    sim: &mut Simulation,
    node: u32,
    given: &Result<cimguard_cluster::core::Taken, Refusal>,
) -> Option<String> {
    let &Ok(cimguard_cluster::core::Taken::Forwarded(serial)) = given else {
        panic!("a halted command is answered later: {given:?}");
    };
    assert!(sim
        .run_until(seconds(10), |s| answer(s, node, serial).is_some())
        .unwrap());
    answer(sim, node, serial).expect("answered")
}

/// cmcheckconf of `cluster` and `packages` given on halted `node`, and the answer it gets
/// (None: every node would take them; else why not).
fn check_halted(
    sim: &mut Simulation,
    node: u32,
    cluster: &str,
    packages: &[String],
) -> Option<String> {
    let given = sim.check_halted(NodeId(node), Some(cluster), packages);
    answered_later(sim, node, &given)
}

/// The simulator's cluster file with MEMBER_TIMEOUT `micros`.
fn with_member_timeout(sim_options: &Options, micros: u64) -> String {
    let text = cimguard_cluster::sim::cluster_file(sim_options);
    let old = format!(
        "MEMBER_TIMEOUT {}\n",
        sim_options.member_timeout.as_micros()
    );
    assert!(text.contains(&old), "{text}");
    text.replace(&old, &format!("MEMBER_TIMEOUT {micros}\n"))
}

/// The MEMBER_TIMEOUT `node` runs with.
fn member_timeout(sim: &Simulation, node: u32) -> Duration {
    sim.core(NodeId(node))
        .expect("up")
        .settings()
        .timing
        .member_timeout
}

#[test]
fn a_halted_cluster_takes_a_change_of_any_parameter_on_every_node_or_on_none() {
    let pkg_m = package("pkgM", &[1, 2]);
    let options = Options::new(3, 23);
    let mut sim = formed_with(options.clone(), std::slice::from_ref(&pkg_m));
    let before = sim.generation(NodeId(0)).unwrap();
    let old_timeout = member_timeout(&sim, 0);
    let new_timeout = old_timeout * 2;
    // MEMBER_TIMEOUT and a heartbeat address: the address needs the cluster halted.
    let changed = with_member_timeout(&options, new_timeout.as_micros() as u64)
        .replace("HEARTBEAT_IP 10.0.0.2", "HEARTBEAT_IP 10.0.0.12");
    assert!(matches!(
        sim.apply(NodeId(1), Some(&changed), std::slice::from_ref(&pkg_m)),
        Err(Refusal::NeedsHaltedCluster { .. })
    ));
    sim.halt_cluster(NodeId(0), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| (0..3).all(|n| halted(s, n)))
        .unwrap());

    // A node that does not answer (its daemon is not running) leaves every node as it was.
    sim.crash(NodeId(2));
    let answered = apply_halted(&mut sim, 1, &changed, std::slice::from_ref(&pkg_m));
    let refusal = answered.expect("refused");
    assert!(
        refusal.contains("n3 did not answer") && refusal.contains("nothing was applied"),
        "{refusal}"
    );
    assert_eq!(sim.generation(NodeId(0)), Some(before));
    assert_eq!(sim.generation(NodeId(1)), Some(before));
    assert_eq!(member_timeout(&sim, 1), old_timeout);

    // With every daemon there (halted), it takes effect on all three.
    sim.restart(NodeId(2));
    sim.halt_node(NodeId(2), true).unwrap();
    assert!(sim.run_until(seconds(30), |s| halted(s, 2)).unwrap());
    let answered = apply_halted(&mut sim, 1, &changed, std::slice::from_ref(&pkg_m));
    assert_eq!(answered, None, "carried out");
    assert_eq!(generations(&sim), [Some(before + 1); 3]);
    for n in 0..3 {
        assert_eq!(member_timeout(&sim, n), new_timeout, "node {n}");
    }
    // The same files again change nothing, and are answered at once by no node refusing.
    assert_eq!(
        apply_halted(&mut sim, 0, &changed, std::slice::from_ref(&pkg_m)),
        None
    );
    assert_eq!(generations(&sim), [Some(before + 1); 3]);

    // While its own cmapplyconf is on its way, the node does not start again (a new life
    // would drop it half way).
    let changed_back = with_member_timeout(&options, old_timeout.as_micros() as u64);
    let Ok(cimguard_cluster::core::Taken::Forwarded(serial)) =
        sim.apply(NodeId(0), Some(&changed_back), std::slice::from_ref(&pkg_m))
    else {
        panic!("a halted cmapplyconf is answered later");
    };
    assert_eq!(
        sim.run_cluster(NodeId(0), NodeSet::first(3)),
        Err(Refusal::ConfigurationChanging)
    );
    assert!(sim
        .run_until(seconds(10), |s| answer(s, 0, serial).is_some())
        .unwrap());
    assert_eq!(answer(&sim, 0, serial), Some(None));
    assert_eq!(generations(&sim), [Some(before + 2); 3]);
    // And back again, given on another node.
    let answered = apply_halted(&mut sim, 2, &changed, std::slice::from_ref(&pkg_m));
    assert_eq!(answered, None);
    let after = before + 3;
    assert_eq!(generations(&sim), [Some(after); 3]);

    // A node added is offered the generation over the configuration exchange; with no
    // cmcld there to take it (n9 is no host of the simulator), nothing is applied, and the
    // answer names the node and what it needs.
    let mut added = format!("{changed}NODE_NAME n9\n");
    for network in 0..options.networks {
        added.push_str(&format!(
            " NETWORK_INTERFACE eth{network}\n  HEARTBEAT_IP 10.{network}.0.9\n"
        ));
    }
    let answered = apply_halted(&mut sim, 0, &added, std::slice::from_ref(&pkg_m));
    let answered = answered.expect("refused");
    assert!(
        answered.contains("n9 did not answer (10.0.0.9, 10.1.0.9: cannot connect)")
            && answered.contains("unconfigured")
            && answered.ends_with("nothing was applied"),
        "{answered}"
    );
    assert_eq!(generations(&sim), [Some(after); 3]);

    // cmruncl: every node starts a new life with the new timing, and forms the cluster.
    sim.run_cluster(NodeId(0), NodeSet::first(3)).unwrap();
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    assert_eq!(generations(&sim), [Some(after); 3]);
    for n in 0..3 {
        assert_eq!(member_timeout(&sim, n), new_timeout, "node {n}");
    }
    assert!(sim
        .run_until(seconds(60), |s| !s.running_on("pkgM").is_empty())
        .unwrap());
    assert_eq!(sim.watchdog_resets, 0);
}

/// cmcheckconf with the cluster halted finds what only another node can tell (an address
/// its host does not have, a node that does not answer, a node added with no cmcld there),
/// as a cmapplyconf of the same files would; and it leaves nothing behind: no node holds an
/// offer or raised the generation it shows next.
#[test]
fn cmcheckconf_with_the_cluster_halted_is_answered_by_every_node_and_changes_nothing() {
    let pkg_m = package("pkgM", &[1, 2]);
    let options = Options::new(3, 31);
    let mut sim = formed_with(options.clone(), std::slice::from_ref(&pkg_m));
    own_addresses_only(&mut sim, &options, 2);
    let before = sim.generation(NodeId(0)).unwrap();
    let old_timeout = member_timeout(&sim, 0);
    let (changed, moved) = changed_and_moved(&options, old_timeout);
    sim.halt_cluster(NodeId(0), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| (0..3).all(|n| halted(s, n)))
        .unwrap());
    let packages = std::slice::from_ref(&pkg_m);

    // Given on n1, told by n3.
    let refusal = check_halted(&mut sim, 0, &moved, packages).expect("refused");
    assert!(
        refusal.contains("n3 cannot send heartbeats from HEARTBEAT_IP 10.0.0.13")
            && !refusal.contains("applied"),
        "{refusal}"
    );

    // Files every node would take: checked, and nothing is in effect or held anywhere. Two
    // given at once on two nodes do not stand in each other's way.
    let serials: Vec<u64> = [1, 2]
        .map(
            |n| match sim.check_halted(NodeId(n), Some(&changed), packages) {
                Ok(cimguard_cluster::core::Taken::Forwarded(serial)) => serial,
                other => panic!("a halted cmcheckconf is answered later: {other:?}"),
            },
        )
        .to_vec();
    assert!(sim
        .run_until(seconds(10), |s| (0..2).all(|i| answer(
            s,
            i as u32 + 1,
            serials[i]
        )
        .is_some()))
        .unwrap());
    assert_eq!(answer(&sim, 1, serials[0]), Some(None));
    assert_eq!(answer(&sim, 2, serials[1]), Some(None));
    assert_eq!(generations(&sim), [Some(before); 3]);
    assert_eq!(member_timeout(&sim, 2), old_timeout);
    // A cmapplyconf on another node right after is taken, with the next generation.
    assert_eq!(apply_halted(&mut sim, 0, &changed, packages), None);
    assert_eq!(generations(&sim), [Some(before + 1); 3]);
    // And the address is refused by cmapplyconf as by cmcheckconf.
    assert_eq!(
        apply_halted(&mut sim, 1, &moved, packages).as_deref(),
        Some(format!("{refusal}; nothing was applied").as_str()),
    );
    assert_eq!(generations(&sim), [Some(before + 1); 3]);
    // Its withdrawal reaches every node.
    sim.run_for(seconds(1)).unwrap();

    // A node added with no cmcld there to answer over the configuration exchange.
    let mut added = format!("{changed}NODE_NAME n9\n");
    for network in 0..options.networks {
        added.push_str(&format!(
            " NETWORK_INTERFACE eth{network}\n  HEARTBEAT_IP 10.{network}.0.9\n"
        ));
    }
    let refusal = check_halted(&mut sim, 1, &added, packages).expect("refused");
    assert!(
        refusal.starts_with("n9 did not answer (10.0.0.9, 10.1.0.9: cannot connect)"),
        "{refusal}"
    );
    // A node whose cmcld does not run.
    sim.crash(NodeId(2));
    let refusal = check_halted(&mut sim, 0, &changed, packages).expect("refused");
    assert_eq!(
        refusal,
        "n3 did not answer: cmcheckconf with the cluster halted needs the cmcld of every node \
         running (halted)"
    );
    assert_eq!(generations(&sim)[..2], [Some(before + 1); 2]);
    // A check on its way gives way to a cmapplyconf given on its node (it holds nothing).
    let Ok(cimguard_cluster::core::Taken::Forwarded(check)) =
        sim.check_halted(NodeId(0), Some(&changed), packages)
    else {
        panic!("a halted cmcheckconf is answered later");
    };
    let applied = apply_halted(&mut sim, 0, &changed, packages).expect("n3 is down");
    assert!(applied.contains("n3 did not answer"), "{applied}");
    let superseded = answer(&sim, 0, check)
        .expect("answered")
        .expect("not checked");
    assert!(
        superseded.starts_with("another cmcheckconf, a cmapplyconf or a cmdeleteconf was given")
            && superseded.ends_with("check them again"),
        "{superseded}"
    );
    // And to another node's cmapplyconf whose offer its node takes (it checked against
    // what it held before), once the one above is withdrawn everywhere.
    sim.run_for(seconds(1)).unwrap();
    let Ok(cimguard_cluster::core::Taken::Forwarded(check)) =
        sim.check_halted(NodeId(0), Some(&changed), packages)
    else {
        panic!("a halted cmcheckconf is answered later");
    };
    let applied = apply_halted(&mut sim, 1, &changed, packages).expect("n3 is down");
    assert!(applied.contains("n3 did not answer"), "{applied}");
    let superseded = answer(&sim, 0, check)
        .expect("answered")
        .expect("not checked");
    assert!(
        superseded.starts_with("a cmapplyconf given on another node was taken meanwhile"),
        "{superseded}"
    );
    sim.run_for(seconds(1)).unwrap();
    // Not on a node in a running cluster (checked there against the cluster as it runs).
    sim.restart(NodeId(2));
    sim.run_cluster(NodeId(0), NodeSet::first(3)).unwrap();
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    assert_eq!(
        sim.check_halted(NodeId(0), Some(&changed), packages),
        Err(Refusal::ClusterNotRunning)
    );
    // Nor on a node halted while the cluster runs on the others: it is given there.
    sim.halt_node(NodeId(2), true).unwrap();
    assert!(sim.run_until(seconds(30), |s| halted(s, 2)).unwrap());
    // (Once it has heard the others' heartbeats since it halted.)
    sim.run_for(seconds(3)).unwrap();
    assert_eq!(
        sim.check_halted(NodeId(2), Some(&changed), packages),
        Err(Refusal::ClusterRunsElsewhere)
    );
}

/// Node `node`'s host has its own heartbeat addresses only (by default the simulator's
/// hosts have every address).
fn own_addresses_only(sim: &mut Simulation, options: &Options, node: u32) {
    let own: Vec<std::net::IpAddr> = (0..options.networks)
        .map(|network| format!("10.{network}.0.{}", node + 1).parse().unwrap())
        .collect();
    sim.set_address_check(
        NodeId(node),
        cimguard_cluster::core::AddressCheck::new(move |address| {
            if own.contains(&address) {
                Ok(())
            } else {
                Err("it is not an address of this node's interfaces".into())
            }
        }),
    );
}

/// The simulator's cluster file with MEMBER_TIMEOUT twice `timeout`, and the same with n3's
/// first HEARTBEAT_IP moved to an address its host does not have (see
/// [`own_addresses_only`]).
fn changed_and_moved(options: &Options, timeout: Duration) -> (String, String) {
    let changed = with_member_timeout(options, timeout.as_micros() as u64 * 2);
    let moved = changed.replace("HEARTBEAT_IP 10.0.0.3\n", "HEARTBEAT_IP 10.0.0.13\n");
    assert_ne!(moved, changed);
    (changed, moved)
}

/// An offer travels on every network: a copy that reaches a node after the offer was
/// withdrawn is not taken (held, it would refuse every other node's change until it
/// expired).
#[test]
fn a_copy_of_a_withdrawn_offer_that_arrives_late_is_not_taken() {
    use cimguard_cluster::config::Generation;
    use cimguard_cluster::core::{cluster_id, Envelope, Incarnation, Message, Taken};
    let pkg_m = package("pkgM", &[1, 2]);
    let options = Options::new(3, 37);
    let mut sim = formed_with(options.clone(), std::slice::from_ref(&pkg_m));
    own_addresses_only(&mut sim, &options, 2);
    let before = sim.generation(NodeId(0)).unwrap();
    let number = sim.generation_number(NodeId(0)).unwrap();
    let (changed, moved) = changed_and_moved(&options, member_timeout(&sim, 0));
    sim.halt_cluster(NodeId(0), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| (0..3).all(|n| halted(s, n)))
        .unwrap());
    let packages = std::slice::from_ref(&pkg_m);
    // Given on n2, refused by n3: withdrawn from n1.
    let given = sim.apply(NodeId(1), Some(&moved), packages);
    let Ok(Taken::Forwarded(serial)) = given else {
        panic!("a halted cmapplyconf is answered later: {given:?}");
    };
    assert!(sim
        .run_until(seconds(10), |s| answer(s, 1, serial).is_some())
        .unwrap());
    assert!(answer(&sim, 1, serial).unwrap().is_some(), "refused");
    sim.run_for(seconds(1)).unwrap();
    // The copy that travelled on the other network, late.
    let cluster = cimguard_cluster::config::cluster::parse(&moved, "moved.ascii")
        .unwrap()
        .config;
    let packages_parsed = vec![
        cimguard_cluster::config::package::parse(&pkg_m, "pkgM.conf")
            .unwrap()
            .config,
    ];
    let late = Envelope {
        cluster_id: cluster_id(&cluster.name),
        config_generation: number,
        from: NodeId(1),
        from_incarnation: sim.core(NodeId(1)).unwrap().incarnation(),
        to_incarnation: Incarnation(0),
        message: Message::ConfigOffer {
            serial,
            config: std::sync::Arc::new(Generation {
                number: number + 1,
                sequence: before + 1,
                cluster,
                packages: packages_parsed,
            }),
        },
    };
    sim.forge(NodeId(0), 1, late);
    sim.run_for(seconds(1)).unwrap();
    // Another node's change is taken at once.
    assert_eq!(apply_halted(&mut sim, 2, &changed, packages), None);
    assert_eq!(generations(&sim), [Some(before + 1); 3]);
}

/// A heartbeat of the running cluster that reaches a node after the cluster halted as a
/// whole (sent before its sender learnt of the cmhaltcl, and overtaken on another network,
/// or replayed) says nothing of a cluster that runs: that cluster halted. The node shows the
/// cluster down and takes a halted cmapplyconf. A heartbeat of a later membership does say
/// so: a cluster formed again elsewhere.
#[test]
fn a_late_heartbeat_of_the_halted_cluster_does_not_hold_a_halted_change_back() {
    use cimguard_cluster::core::Epoch;
    use cimguard_cluster::status::ClusterStatus;
    let pkg_m = package("pkgM", &[1, 2]);
    let options = Options::new(3, 29);
    let mut sim = formed_with(options.clone(), std::slice::from_ref(&pkg_m));
    sim.halt_cluster(NodeId(0), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| (0..3).all(|n| halted(s, n)))
        .unwrap());
    let halted_epoch = sim.core(NodeId(1)).unwrap().view().epoch;
    assert_ne!(halted_epoch, Epoch::NONE);
    // n3's heartbeat of `epoch`, running and not halting, as it arrives at n2.
    let running = |sim: &Simulation, epoch: Epoch| running_heartbeat(sim, 2, 1, epoch);
    let before = sim.generation(NodeId(0)).unwrap();
    let longer = member_timeout(&sim, 0) * 2;
    let changed = with_member_timeout(&options, longer.as_micros() as u64);
    for epoch in [halted_epoch, Epoch::new(1, NodeId(0))] {
        let late = running(&sim, epoch);
        sim.forge(NodeId(1), 0, late);
    }
    assert_eq!(
        sim.status(NodeId(1)).unwrap().status,
        ClusterStatus::Down,
        "n2 shows the halted cluster down"
    );
    let answered = apply_halted(&mut sim, 0, &changed, std::slice::from_ref(&pkg_m));
    assert_eq!(answered, None, "carried out");
    assert_eq!(generations(&sim), [Some(before + 1); 3]);

    // A heartbeat of a membership after the one that halted: a cluster runs there.
    let later = Epoch::new(halted_epoch.round() + 1, NodeId(2));
    let late = running(&sim, later);
    sim.forge(NodeId(1), 0, late);
    assert_ne!(sim.status(NodeId(1)).unwrap().status, ClusterStatus::Down);
    let answered = apply_halted(
        &mut sim,
        0,
        &cimguard_cluster::sim::cluster_file(&options),
        &[pkg_m],
    );
    let refusal = answered.expect("refused");
    assert!(
        refusal.contains("n2 hears the cluster run on other nodes"),
        "{refusal}"
    );
    assert_eq!(generations(&sim), [Some(before + 1); 3]);
}

/// The same for a node halted before the cluster (cmhaltnode), which heard the members halt
/// it: a running heartbeat of that membership from a member it heard halting it, come
/// late, does not hold a halted cmapplyconf back.
#[test]
fn a_late_heartbeat_of_a_member_heard_halting_the_cluster_does_not_hold_a_change_back() {
    let pkg_m = package("pkgM", &[1, 2]);
    let options = Options::new(3, 31);
    let mut sim = formed_with(options.clone(), std::slice::from_ref(&pkg_m));
    sim.halt_node(NodeId(2), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| halted(s, 2) && s.formed(set(&[0, 1])))
        .unwrap());
    let epoch = sim.core(NodeId(1)).unwrap().view().epoch;
    // n3 hears n1 and n2 run without it (well within a MEMBER_TIMEOUT of the change below):
    // once they halt the cluster, what it heard of them counts for nothing.
    sim.run_for(seconds(3)).unwrap();
    sim.halt_cluster(NodeId(0), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| (0..3).all(|n| halted(s, n)))
        .unwrap());
    assert_eq!(sim.core(NodeId(1)).unwrap().view().epoch, epoch);
    // Once the last heartbeats of the halting are in.
    sim.run_for(seconds(1)).unwrap();
    // n2's heartbeat of the membership it halted, running, as it arrives at n3.
    let late = running_heartbeat(&sim, 1, 2, epoch);
    sim.forge(NodeId(2), 0, late);
    let before = sim.generation(NodeId(0)).unwrap();
    let longer = member_timeout(&sim, 0) * 2;
    let changed = with_member_timeout(&options, longer.as_micros() as u64);
    let answered = apply_halted(&mut sim, 0, &changed, std::slice::from_ref(&pkg_m));
    assert_eq!(answered, None, "carried out");
    assert_eq!(generations(&sim), [Some(before + 1); 3]);
    // One of a later membership of n2's still says a cluster runs.
    let later = cimguard_cluster::core::Epoch::new(epoch.round() + 1, NodeId(1));
    let late = running_heartbeat(&sim, 1, 2, later);
    sim.forge(NodeId(2), 0, late);
    let back = cimguard_cluster::sim::cluster_file(&options);
    let refusal = apply_halted(&mut sim, 0, &back, &[pkg_m]).expect("refused");
    assert!(
        refusal.contains("n3 hears the cluster run on other nodes"),
        "{refusal}"
    );
    assert_eq!(generations(&sim), [Some(before + 1); 3]);
}

/// Node `from`'s heartbeat of membership `epoch`, running and not halting, as it arrives at
/// node `to` (naming all three as members: a halted node reads no membership of it).
fn running_heartbeat(
    sim: &Simulation,
    from: u32,
    to: u32,
    epoch: cimguard_cluster::core::Epoch,
) -> cimguard_cluster::core::Envelope {
    common::forged_heartbeat(sim, (from, to), (epoch, NodeSet::first(3)), |_| {})
}

#[test]
fn a_member_that_dies_while_a_cmapplyconf_is_proposed_does_not_use_up_its_attempts() {
    // The coordinator keeps the change and commits it with the survivors once the dead
    // member is left out, whenever in the proposal rounds it died.
    let pkg_m = package("pkgM", &[1, 2]);
    for delay_ms in (0..1500).step_by(50) {
        let mut sim = formed(3, std::slice::from_ref(&pkg_m));
        let coordinator = coordinator(&sim);
        let victim = (0..3).map(NodeId).find(|&n| n != coordinator).unwrap();
        let giver = (0..3)
            .map(NodeId)
            .find(|&n| n != coordinator && n != victim)
            .unwrap();
        sim.apply(giver, None, &[pkg_m.clone(), package("pkgN", &[1, 2])])
            .unwrap();
        sim.run_for(Duration::from_millis(delay_ms)).unwrap();
        sim.crash(victim);
        let changed = sim
            .run_until(seconds(60), |s| {
                s.generation(coordinator) != Some(1) && s.generation(giver) != Some(1)
            })
            .unwrap();
        let refused: Vec<_> = sim
            .trace()
            .iter()
            .filter_map(|r| match &r.event {
                cimguard_cluster::core::Event::ApplyRefused { refusal } => Some(refusal.clone()),
                _ => None,
            })
            .collect();
        assert!(
            changed && refused.is_empty(),
            "killed {victim:?} {delay_ms} ms in: generations {:?}, refused {refused:?}",
            generations(&sim)
        );
    }
}

#[test]
fn a_cmapplyconf_that_a_living_member_never_accepts_is_given_up() {
    // Given at the coordinator, and through the third node (which forwards it): the node
    // it was given at counts it given up, with why, for the command that waits there.
    for forwarded in [false, true] {
        given_up_when_a_living_member_never_accepts(forwarded);
    }
}

fn given_up_when_a_living_member_never_accepts(forwarded: bool) {
    let pkg_m = package("pkgM", &[1, 2]);
    let mut sim = formed(3, std::slice::from_ref(&pkg_m));
    let coordinator = coordinator(&sim);
    let member = (0..3).map(NodeId).find(|&n| n != coordinator).unwrap();
    let third = (0..3)
        .map(NodeId)
        .find(|&n| n != coordinator && n != member)
        .unwrap();
    let giver = if forwarded { third } else { coordinator };
    // The member keeps heartbeating, but none of its acceptances arrive: to the coordinator,
    // a member that refuses the change every time.
    sim.network.drop_kinds.push((member, "Accept"));
    sim.apply(giver, None, &[pkg_m, package("pkgN", &[1, 2])])
        .unwrap();
    let refusals = |s: &Simulation| -> Vec<String> {
        s.trace()
            .iter()
            .filter(|r| r.node == coordinator)
            .filter_map(|r| match &r.event {
                cimguard_cluster::core::Event::ApplyRefused { refusal } => {
                    Some(format!("{refusal:?}"))
                }
                _ => None,
            })
            .collect()
    };
    assert!(sim
        .run_until(seconds(60), |s| !refusals(s).is_empty())
        .unwrap());
    assert!(refusals(&sim)[0].contains("members did not accept it"));
    // Told where it was given, at once (a forwarded change: by a late answer).
    let told = |s: &Simulation, node: NodeId| {
        s.status(node)
            .map(|status| (status.applies_given_up, status.apply_given_up))
    };
    assert!(sim
        .run_until(seconds(1), |s| told(s, giver).is_some_and(|(n, _)| n == 1))
        .unwrap());
    let (_, reason) = told(&sim, giver).unwrap();
    assert!(
        reason
            .as_deref()
            .is_some_and(|r| r.contains("members did not accept it")),
        "{reason:?}"
    );
    for node in (0..3).map(NodeId).filter(|&n| n != giver) {
        assert_eq!(told(&sim, node).map(|(n, _)| n), Some(0), "{node:?}");
    }
    sim.network.drop_kinds.clear();
    // Given up: the membership stays as it was, with the generation it had.
    sim.run_for(seconds(10)).unwrap();
    assert!(sim.formed(set(&[0, 1, 2])));
    assert_eq!(generations(&sim), [Some(1); 3]);
    assert_eq!(told(&sim, giver).map(|(n, _)| n), Some(1), "told once");
}

#[test]
fn each_cmapplyconf_shows_the_generation_one_above_the_one_before() {
    // Online, with a member lost half way, after a coordinator change, and with the cluster
    // halted: every change that takes effect is shown one above the one before, on every
    // node, whatever the proposals that carried it were numbered.
    let pkg_m = package("pkgM", &[1, 2]);
    let mut sim = formed(3, std::slice::from_ref(&pkg_m));
    let mut files = vec![pkg_m];
    let mut numbers = Vec::new();
    for (shown, name) in [(2, "pkgN"), (3, "pkgO"), (4, "pkgP")] {
        files.push(package(name, &[2, 3]));
        let coordinator = coordinator(&sim);
        let giver = (0..3).map(NodeId).find(|&n| n != coordinator).unwrap();
        sim.apply(giver, None, &files).unwrap();
        if shown == 3 {
            // A member dies while the change is on its way; the coordinator goes on.
            let other = (0..3)
                .map(NodeId)
                .find(|&n| n != coordinator && n != giver)
                .unwrap();
            sim.crash(other);
        }
        let up: Vec<NodeId> = (0..3)
            .map(NodeId)
            .filter(|&n| sim.core(n).is_some())
            .collect();
        assert!(
            sim.run_until(seconds(60), |s| up
                .iter()
                .all(|&n| s.generation(n) == Some(shown)))
                .unwrap(),
            "{name}: {:?}",
            generations(&sim)
        );
        numbers.push(sim.generation_number(up[0]).unwrap());
        if shown == 3 {
            // The lost node comes back and takes the generation in effect; then the
            // coordinator changes for the next change.
            let down = (0..3).map(NodeId).find(|n| !up.contains(n)).unwrap();
            sim.restart(down);
            assert!(sim
                .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
                .unwrap());
            assert_eq!(generations(&sim), [Some(3); 3]);
            sim.crash(coordinator);
            sim.run_for(seconds(1)).unwrap();
            sim.restart(coordinator);
            assert!(sim
                .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
                .unwrap());
        }
    }
    // The numbers that tell them apart inside the cluster grow too, and differ.
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");

    // With the cluster halted: one more.
    sim.halt_cluster(NodeId(0), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| (0..3).all(|n| halted(s, n)))
        .unwrap());
    files.push(package("pkgQ", &[1, 3]));
    assert_eq!(
        apply_halted(
            &mut sim,
            2,
            &cimguard_cluster::sim::cluster_file(&Options::new(3, 17)),
            &files
        ),
        None
    );
    assert_eq!(generations(&sim), [Some(5); 3]);
    let told = notices(&sim, "ClusterConfigChanged");
    let shown: Vec<(u64, u64)> = told
        .iter()
        .filter_map(|n| match n.notice {
            Notice::ClusterConfigChanged { before, after, .. } => Some((before, after)),
            _ => None,
        })
        .collect();
    assert!(
        shown.iter().all(|(before, after)| after == &(before + 1)),
        "{shown:?}"
    );
}

#[test]
fn a_change_the_cluster_halted_left_on_one_node_is_never_shown_as_a_later_one() {
    // With the cluster halted, n1's cmapplyconf commits there but its commit reaches no
    // other node; the cluster starts without n1 and takes another change. That change is
    // shown above n1's (every node took n1's offer), and files read on n1 and applied on a
    // member are refused; so are files given with the generation shown here but another
    // configuration's number.
    let pkg_m = package("pkgM", &[1, 2]);
    let options = Options::new(3, 17);
    let text = cimguard_cluster::sim::cluster_file(&options);
    let mut sim = formed(3, std::slice::from_ref(&pkg_m));
    sim.halt_cluster(NodeId(0), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| (0..3).all(|n| halted(s, n)))
        .unwrap());
    sim.network.drop_kinds.push((NodeId(0), "ConfigCommit"));
    let on_n1 = [pkg_m.clone(), package("pkgN", &[1, 2])];
    let refusal = apply_halted(&mut sim, 0, &text, &on_n1).expect("not committed everywhere");
    assert!(
        refusal.contains("generation 2 is in effect on this node"),
        "{refusal}"
    );
    sim.network.drop_kinds.clear();
    assert_eq!(generations(&sim), [Some(2), Some(1), Some(1)]);
    let left_behind = (
        sim.generation(NodeId(0)).unwrap(),
        sim.generation_number(NodeId(0)).unwrap(),
    );
    sim.crash(NodeId(0));
    // cmruncl -n n2 -n n3: each takes it once n1's offer, which it holds, expires.
    for n in [1, 2] {
        let mut started = sim.run_cluster(NodeId(n), set(&[1, 2]));
        for _ in 0..30 {
            if started != Err(Refusal::ConfigurationChanging) {
                break;
            }
            sim.run_for(seconds(1)).unwrap();
            started = sim.run_cluster(NodeId(n), set(&[1, 2]));
        }
        started.unwrap();
    }
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[1, 2])))
        .unwrap());
    assert_eq!(generations(&sim), [None, Some(1), Some(1)]);
    sim.apply(NodeId(1), None, &[pkg_m.clone(), package("pkgO", &[2, 3])])
        .unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.generation(NodeId(1)) == Some(3)
            && s.generation(NodeId(2)) == Some(3))
        .unwrap());
    let (shown, number) = (3, sim.generation_number(NodeId(1)).unwrap());
    // Read on n1, applied on n2: stale.
    let mut from_n1 = on_n1.to_vec();
    from_n1.push(package("pkgP", &[2, 3]));
    assert_eq!(
        sim.apply_on(
            NodeId(1),
            Some(Base {
                generation: left_behind.0,
                number: Some(left_behind.1),
            }),
            None,
            &from_n1,
        ),
        Err(Refusal::ConfigurationStale {
            base: 2,
            in_effect: 3
        })
    );
    // Shown as the generation in effect, but another configuration: refused too.
    let from_n2 = [pkg_m, package("pkgO", &[2, 3]), package("pkgP", &[2, 3])];
    assert_eq!(
        sim.apply_on(
            NodeId(1),
            Some(Base {
                generation: shown,
                number: Some(left_behind.1),
            }),
            None,
            &from_n2,
        ),
        Err(Refusal::ConfigurationDiverged { base: 3 })
    );
    // Read on a member: taken.
    assert!(sim
        .apply_on(
            NodeId(1),
            Some(Base {
                generation: shown,
                number: Some(number),
            }),
            None,
            &from_n2,
        )
        .is_ok());
    assert!(sim
        .run_until(seconds(30), |s| s.generation(NodeId(2)) == Some(4))
        .unwrap());
    // n1 comes back: it takes the cluster's generation, shown above its own.
    sim.restart(NodeId(0));
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    assert_eq!(generations(&sim), [Some(4); 3]);
}

/// cmapplyconf with the cluster halted deletes a node: the node it is given on must stay,
/// and packages naming the deleted node change in the same files. Every node takes it; the
/// nodes kept start a new life, halted, with the new node list, promising at least every
/// epoch any node of the old list had promised; the deleted node's daemon ends. The cluster
/// then forms without it, above every epoch before.
#[test]
fn a_halted_cluster_deletes_a_node_and_forms_without_it() {
    let pkg_m = package("pkgM", &[1, 2, 3, 4]);
    let options = Options::new(4, 29);
    let mut sim = formed_with(options.clone(), std::slice::from_ref(&pkg_m));
    sim.halt_cluster(NodeId(0), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| (0..4).all(|n| halted(s, n)))
        .unwrap());
    let before = sim.generation(NodeId(0)).unwrap();
    let promised = (0..4)
        .map(|n| sim.persisted(NodeId(n)).epoch_max)
        .max()
        .unwrap();
    let lives: Vec<_> = (0..4)
        .map(|n| sim.core(NodeId(n)).unwrap().incarnation())
        .collect();
    let text = cimguard_cluster::sim::cluster_file(&options);
    let without_n4 = text[..text.find("NODE_NAME n4\n").expect("n4")].to_owned();
    let pkg_m_kept = package("pkgM", &[1, 2, 3]);

    // Not given on the node deleted, nor with a package still naming it.
    assert_eq!(
        sim.apply(
            NodeId(3),
            Some(&without_n4),
            std::slice::from_ref(&pkg_m_kept)
        ),
        Err(Refusal::GiverDeleted { node: "n4".into() })
    );
    assert!(matches!(
        sim.apply(NodeId(0), Some(&without_n4), std::slice::from_ref(&pkg_m)),
        Err(Refusal::InvalidConfiguration { .. })
    ));

    let answered = apply_halted(&mut sim, 0, &without_n4, std::slice::from_ref(&pkg_m_kept));
    assert_eq!(answered, None, "carried out");
    assert!(sim
        .run_until(seconds(10), |s| {
            (0..3).all(|n| {
                s.core(NodeId(n)).is_some_and(|c| {
                    c.incarnation() > lives[n as usize]
                        && c.phase() == cimguard_cluster::core::Phase::Halted
                })
            }) && s.core(NodeId(3)).is_none()
        })
        .unwrap());
    for n in 0..3 {
        let core = sim.core(NodeId(n)).unwrap();
        assert_eq!(core.settings().nodes, 3, "n{}", n + 1);
        assert_eq!(sim.generation(NodeId(n)), Some(before + 1));
        assert!(sim.persisted(NodeId(n)).epoch_max >= promised);
    }
    // n4 keeps its promise and the generation that deleted it, and starts no more.
    let deleting = sim
        .persisted(NodeId(3))
        .config
        .clone()
        .expect("the generation");
    assert!(deleting.cluster.nodes.iter().all(|n| n.name != "n4"));
    assert!(sim.persisted(NodeId(3)).epoch_max >= promised);
    sim.restart(NodeId(3));
    assert!(sim.core(NodeId(3)).is_none());

    // The new lives stay halted until cmruncl, which forms the cluster of three.
    sim.run_for(seconds(20)).unwrap();
    assert!((0..3).all(|n| halted(&sim, n)));
    sim.run_cluster(NodeId(0), NodeSet::first(3)).unwrap();
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2]))
            && !s.running_on("pkgM").is_empty())
        .unwrap());
    let epoch = sim.core(NodeId(0)).unwrap().view().epoch;
    assert!(epoch > promised, "{epoch:?} after {promised:?}");
    assert_eq!(sim.watchdog_resets, 0);
}

#[test]
fn cmdeleteconf_deletes_a_halted_clusters_configuration_on_every_node_or_on_none() {
    let pkg_m = package("pkgM", &[1, 2, 3]);
    let mut sim = formed(3, std::slice::from_ref(&pkg_m));
    // Not while the cluster runs.
    assert!(matches!(
        sim.delete_cluster(NodeId(1)),
        Err(Refusal::NeedsHaltedCluster { .. })
    ));
    sim.halt_cluster(NodeId(0), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| (0..3).all(|n| halted(s, n)))
        .unwrap());
    let promised = (0..3)
        .map(|n| sim.persisted(NodeId(n)).epoch_max)
        .max()
        .unwrap();
    let before = sim.generation(NodeId(0)).unwrap();

    // A node that does not answer leaves the configuration everywhere.
    sim.crash(NodeId(2));
    let Ok(cimguard_cluster::core::Taken::Forwarded(serial)) = sim.delete_cluster(NodeId(1)) else {
        panic!("answered later");
    };
    assert!(sim
        .run_until(seconds(10), |s| answer(s, 1, serial).is_some())
        .unwrap());
    let refusal = answer(&sim, 1, serial).unwrap().expect("refused");
    assert!(
        refusal.contains("n3 did not answer") && refusal.ends_with("nothing was applied"),
        "{refusal}"
    );
    assert_eq!(generations(&sim)[..2], [Some(before); 2]);

    // With every daemon there, every node retires: no core runs any more, and each keeps
    // its promises beside a generation that names no node.
    sim.restart(NodeId(2));
    sim.halt_node(NodeId(2), true).unwrap();
    assert!(sim.run_until(seconds(30), |s| halted(s, 2)).unwrap());
    let Ok(cimguard_cluster::core::Taken::Forwarded(serial)) = sim.delete_cluster(NodeId(1)) else {
        panic!("answered later");
    };
    assert!(sim
        .run_until(seconds(10), |s| answer(s, 1, serial).is_some())
        .unwrap());
    assert_eq!(answer(&sim, 1, serial), Some(None), "carried out");
    assert!(sim
        .run_until(seconds(10), |s| (0..3).all(|n| s.core(NodeId(n)).is_none()))
        .unwrap());
    for n in 0..3 {
        let persisted = sim.persisted(NodeId(n));
        let deleted = persisted.config.as_ref().expect("the generation");
        assert!(deleted.cluster.nodes.is_empty() && deleted.packages.is_empty());
        assert!(deleted.sequence > before);
        assert!(persisted.epoch_max >= promised, "n{}", n + 1);
        assert!(persisted.installed.is_none());
    }
}
