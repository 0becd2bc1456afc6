//! Package dependencies at run time: a package whose dependency goes down fails with it and
//! follows it; a node that halts halts dependents before what they depend on.

mod common;

use common::{notices, seconds, set};

use cimguard_cluster::core::{Event, NodeId};
use cimguard_cluster::packages::{FailureCause, InstanceState, PackageEvent, Script};
use cimguard_cluster::sim::{Options, ScriptFault, Simulation};
use cimguard_cluster::status::{Notice, PackageState, PackageStatus};

const DB: &str = "package_name db\nnode_name n1\nnode_name n2\nservice_name s\n\
service_cmd /bin/s\nservice_restart none\n";
const WEB: &str = "package_name web\nnode_name n1\nnode_name n2\nservice_name s\n\
service_cmd /bin/s\ndependency_name d\ndependency_condition db = up\n\
dependency_location same_node\n";

fn cluster() -> Simulation {
    cluster_of(71, vec![DB.into(), WEB.into()])
}

/// A cluster of three (seed `seed`) with `packages`, db and web running on n1.
fn cluster_of(seed: u64, packages: Vec<String>) -> Simulation {
    let mut options = Options::new(3, seed);
    options.packages = packages;
    let mut sim = Simulation::new(options);
    sim.start_all();
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("db") == set(&[0])
            && s.running_on("web") == set(&[0]))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    sim
}

#[test]
fn a_dependent_fails_with_its_dependency_and_follows_it() {
    let mut sim = cluster();
    sim.kill_service(NodeId(0), "db", 0);
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("db") == set(&[1])
            && s.running_on("web") == set(&[1]))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    let failed = notices(&sim, "PackageFailed");
    let causes: Vec<FailureCause> = failed
        .iter()
        .map(|r| match r.notice {
            Notice::PackageFailed { cause, .. } => cause,
            _ => unreachable!(),
        })
        .collect();
    // web halts first (it ends halted: its failure does not bar it from n1), db waits for
    // it (fail_wait), then db's halt script runs.
    assert_eq!(causes, [FailureCause::Dependency, FailureCause::Service(0)]);
    let states = states_of(&sim, 0);
    let named = |n: &str, s| (n.to_string(), s);
    assert_eq!(
        states,
        [
            named("db", InstanceState::FailWait),
            named("web", InstanceState::Failing),
            named("db", InstanceState::Failing),
            named("db", InstanceState::Failed),
        ]
    );
    // web's failure does not bar it from n1; db's does.
    let snapshot = sim.status(NodeId(2)).unwrap();
    let switching = |name: &str| {
        let p = snapshot.packages.iter().find(|p| p.name == name).unwrap();
        p.nodes.iter().map(|r| r.switching).collect::<Vec<_>>()
    };
    assert_eq!(switching("db"), [false, true]);
    assert_eq!(switching("web"), [true, true]);
    assert_eq!(notices(&sim, "PackageFailover").len(), 2);
}

#[test]
fn a_halting_node_halts_dependents_first() {
    let mut sim = cluster();
    sim.halt_node(NodeId(0), true).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("db") == set(&[1])
            && s.running_on("web") == set(&[1]))
        .unwrap());
    let halts: Vec<String> = sim
        .trace()
        .iter()
        .filter(|r| r.node == NodeId(0))
        .filter_map(|r| match r.event {
            Event::Package(PackageEvent::StateChanged {
                package,
                after: Some(InstanceState::Halting),
                ..
            }) => Some(sim.catalog().package(package).name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(halts, ["web", "db"]);
    // web started on n2 only once db ran there.
    assert!(notices(&sim, "PackageFailed").is_empty());
}

#[test]
fn a_dependent_starts_once_its_dependency_runs() {
    let mut options = Options::new(3, 72);
    options.packages = vec![DB.into(), WEB.into()];
    let mut sim = Simulation::new(options);
    sim.script_latency = seconds(4);
    sim.start_all();
    assert!(sim
        .run_until(seconds(90), |s| s.running_on("web") == set(&[0]))
        .unwrap());
    sim.run_for(seconds(10)).unwrap();
    let when = |name: &str, state: InstanceState| {
        sim.trace()
            .iter()
            .find(|r| match r.event {
                Event::Package(PackageEvent::StateChanged {
                    package,
                    after: Some(s),
                    ..
                }) => s == state && sim.catalog().package(package).name == name,
                _ => false,
            })
            .map(|r| r.at)
            .unwrap()
    };
    assert!(when("web", InstanceState::Starting) >= when("db", InstanceState::Running));
}

/// The package-level status and state `node` shows for `name`.
fn shown(sim: &Simulation, node: u32, name: &str) -> (PackageStatus, PackageState) {
    let snapshot = sim.status(NodeId(node)).unwrap();
    let row = snapshot.packages.iter().find(|p| p.name == name).unwrap();
    (row.condition.status, row.condition.state)
}

#[test]
fn a_dependent_shows_start_wait_while_its_dependency_starts() {
    let mut options = Options::new(3, 73);
    options.packages = vec![DB.into(), WEB.into()];
    let mut sim = Simulation::new(options);
    // db's run script on n1 never ends: web waits for it.
    sim.script_faults
        .insert(("db".into(), NodeId(0), Script::Run), ScriptFault::Hang);
    sim.start_all();
    assert!(sim
        .run_until(seconds(90), |s| s.status(NodeId(2)).is_some_and(
            |snapshot| {
                snapshot
                    .packages
                    .iter()
                    .any(|p| p.name == "db" && p.condition.state == PackageState::Starting)
            }
        ))
        .unwrap());
    sim.run_for(seconds(5)).unwrap();
    for node in 0..3 {
        assert_eq!(
            shown(&sim, node, "web"),
            (PackageStatus::StartWait, PackageState::StartWait)
        );
    }
    assert!(sim
        .status(NodeId(1))
        .unwrap()
        .to_line()
        .contains("package:web|state=start_wait\n"));
}

#[test]
fn a_dependency_shows_halt_wait_while_its_dependent_halts_on_a_halting_node() {
    let mut sim = cluster();
    // web's halt script on n1 never ends: db waits for it.
    sim.script_faults
        .insert(("web".into(), NodeId(0), Script::Halt), ScriptFault::Hang);
    sim.halt_node(NodeId(0), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| shown(s, 1, "web").1
            == PackageState::Halting)
        .unwrap());
    sim.run_for(seconds(2)).unwrap();
    for node in 0..3 {
        assert_eq!(
            shown(&sim, node, "db"),
            (PackageStatus::HaltWait, PackageState::HaltWait)
        );
    }
    assert_eq!(sim.running_on("db"), set(&[0]));
}

#[test]
fn a_dependency_failing_while_its_dependent_starts_waits_for_that_start_then_both_move() {
    let mut options = Options::new(3, 74);
    options.packages = vec![DB.into(), WEB.into()];
    let mut sim = Simulation::new(options);
    sim.script_latency = seconds(8);
    sim.start_all();
    // db runs on n1; web's run script is under way there.
    assert!(sim
        .run_until(seconds(120), |s| shown(s, 2, "web").1
            == PackageState::Starting)
        .unwrap());
    sim.kill_service(NodeId(0), "db", 0);
    sim.run_for(seconds(1)).unwrap();
    assert_eq!(shown(&sim, 2, "db").1, PackageState::FailWait);
    // web's start ends, web halts, then db: both start again on n2.
    assert!(sim
        .run_until(seconds(180), |s| s.running_on("db") == set(&[1])
            && s.running_on("web") == set(&[1]))
        .unwrap());
}

/// The states the packages went through on node `node`, in order, other than running and
/// starting.
fn states_of(sim: &Simulation, node: u32) -> Vec<(String, InstanceState)> {
    sim.trace()
        .iter()
        .filter(|r| r.node == NodeId(node))
        .filter_map(|r| match r.event {
            Event::Package(PackageEvent::StateChanged {
                package,
                after: Some(s),
                ..
            }) if s != InstanceState::Running && s != InstanceState::Starting => {
                Some((sim.catalog().package(package).name.clone(), s))
            }
            _ => None,
        })
        .collect()
}

fn with_successor_halt_timeout(timeout: &str) -> Simulation {
    cluster_of(
        73,
        vec![
            format!("{DB}successor_halt_timeout {timeout}\n"),
            WEB.into(),
        ],
    )
}

#[test]
fn successor_halt_timeout_zero_halts_a_failed_package_beside_its_dependents() {
    let mut sim = with_successor_halt_timeout("0");
    sim.kill_service(NodeId(0), "db", 0);
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("db") == set(&[1])
            && s.running_on("web") == set(&[1]))
        .unwrap());
    // No fail_wait: db's halt starts with web's.
    let named = |n: &str, s| (n.to_string(), s);
    assert_eq!(
        states_of(&sim, 0)[..2],
        [
            named("db", InstanceState::Failing),
            named("web", InstanceState::Failing),
        ]
    );
}

#[test]
fn successor_halt_timeout_bounds_the_wait_for_a_dependent_that_does_not_halt() {
    let mut sim = with_successor_halt_timeout("5");
    // web's halt script never ends (no halt_script_timeout): db waits 5 s for it, then halts.
    sim.script_faults
        .insert(("web".into(), NodeId(0), Script::Halt), ScriptFault::Hang);
    sim.kill_service(NodeId(0), "db", 0);
    assert!(sim
        .run_until(seconds(4), |s| states_of(s, 0)
            .contains(&("db".to_string(), InstanceState::FailWait)))
        .unwrap());
    let waiting_since = sim.now();
    assert!(sim
        .run_until(seconds(30), |s| states_of(s, 0)
            .contains(&("db".to_string(), InstanceState::Failed)))
        .unwrap());
    let failing_at = sim
        .trace()
        .iter()
        .find(|r| {
            r.node == NodeId(0)
                && matches!(
                    r.event,
                    Event::Package(PackageEvent::StateChanged {
                        before: Some(InstanceState::FailWait),
                        after: Some(InstanceState::Failing),
                        ..
                    })
                )
        })
        .expect("db left fail_wait")
        .at;
    let waited = failing_at.saturating_sub(waiting_since);
    assert!(
        waited >= seconds(4) && waited <= seconds(7),
        "db waited {waited:?} in fail_wait"
    );
    // web is still halting (its script hangs), db is failed.
    assert_eq!(
        states_of(&sim, 0).last(),
        Some(&("db".to_string(), InstanceState::Failed))
    );
}

/// cmrunpkg -n of a package whose dependency is not met on that node is refused naming the
/// node and what is not met.
#[test]
fn cmrunpkg_where_a_dependency_is_not_met_names_the_node_and_the_dependency() {
    use cimguard_cluster::packages::{Command, Refusal};
    let mut sim = cluster();
    let web = sim.package("web");
    // web runs on n1 with db; on n2, db = up (same_node) is not met.
    sim.command(
        NodeId(0),
        Command::Halt {
            package: web,
            node: None,
        },
    )
    .unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("web").is_empty())
        .unwrap());
    let refused = sim
        .command(
            NodeId(0),
            Command::Run {
                package: web,
                node: NodeId(1),
            },
        )
        .unwrap_err();
    assert_eq!(
        refused,
        Refusal::DependenciesNotMet {
            node: NodeId(1),
            unmet: vec!["db = up on it".into()],
        }
    );
    assert_eq!(
        refused.naming("web").to_string(),
        "the dependencies of package web are not met on node 1: db = up on it"
    );
}
