//! Package dependencies at run time: a package whose dependency goes down fails with it and
//! follows it; a node that halts halts dependents before what they depend on.

mod common;

use common::{notices, seconds, set};

use cimguard_cluster::core::{Event, NodeId};
use cimguard_cluster::packages::{FailureCause, InstanceState, PackageEvent};
use cimguard_cluster::sim::{Options, Simulation};
use cimguard_cluster::status::Notice;

const DB: &str = "package_name db\nnode_name n1\nnode_name n2\nservice_name s\n\
service_cmd /bin/s\nservice_restart none\n";
const WEB: &str = "package_name web\nnode_name n1\nnode_name n2\nservice_name s\n\
service_cmd /bin/s\ndependency_name d\ndependency_condition db = up\n\
dependency_location same_node\n";

fn cluster() -> Simulation {
    let mut options = Options::new(3, 71);
    options.packages = vec![DB.into(), WEB.into()];
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
    assert_eq!(causes, [FailureCause::Service(0), FailureCause::Dependency]);
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
