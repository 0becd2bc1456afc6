//! Generic resources (serviceguard.md 5.1 and 6.1): cmsetresource on a node, simple and
//! extended resources, before_package_start as a placement condition and
//! during_package_start as a monitored one, driven through the simulator.

mod common;

use common::{notices, seconds, set};

use cimguard_cluster::core::NodeId;
use cimguard_cluster::packages::{FailureCause, ResourceError, ResourceValue};
use cimguard_cluster::sim::{Options, Simulation};
use cimguard_cluster::status::{ClusterStatus, Health, Notice, PackageState};

fn formed(package: &str) -> Simulation {
    let mut options = Options::new(3, 5);
    options.packages = vec![package.to_string()];
    let mut sim = Simulation::new(options);
    sim.start_all();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    sim
}

const BEFORE: &str = "package_name dbpkg\nnode_name n1\nnode_name n2\n\
generic_resource_name sfm_disk\ngeneric_resource_evaluation_type before_package_start\n";

const DURING: &str = "package_name apppkg\nnode_name n1\nnode_name n2\n\
generic_resource_name cpu_load\ngeneric_resource_up_criteria <80\n";

#[test]
fn a_before_package_start_resource_decides_where_the_package_may_start() {
    let mut sim = formed(BEFORE);
    // Unknown everywhere: the package may start nowhere.
    sim.run_for(seconds(30)).unwrap();
    assert!(sim.running_on("dbpkg").is_empty());
    let snapshot = sim.status(NodeId(2)).unwrap();
    let row = &snapshot.packages[0].nodes[0].resources[0];
    assert_eq!(
        (row.name.as_str(), row.status),
        ("sfm_disk", Health::Unknown)
    );

    // Up on n2 only: it starts there, although n1 comes first in its list.
    sim.set_resource(NodeId(1), "sfm_disk", ResourceValue::Status(true))
        .unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("dbpkg") == set(&[1]))
        .unwrap());
    let changed = notices(&sim, "GenericResourceChanged");
    assert_eq!(changed.len(), 1);
    assert!(matches!(
        changed[0].notice,
        Notice::GenericResourceChanged {
            node: NodeId(1),
            before: Health::Unknown,
            after: Health::Up,
            value: None,
            ..
        }
    ));
    // Every node learns the status from n2's heartbeats.
    sim.run_for(seconds(3)).unwrap();
    let snapshot = sim.status(NodeId(0)).unwrap();
    assert_eq!(
        snapshot.packages[0].nodes[1].resources[0].status,
        Health::Up
    );
    assert!(snapshot
        .to_line()
        .contains("package:dbpkg|generic_resource:sfm_disk|status=up\n"));

    // Down on n2 while running: the package fails there but node switching stays enabled;
    // with the resource up on n1 it moves there.
    sim.set_resource(NodeId(0), "sfm_disk", ResourceValue::Status(true))
        .unwrap();
    sim.run_for(seconds(3)).unwrap();
    sim.set_resource(NodeId(1), "sfm_disk", ResourceValue::Status(false))
        .unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("dbpkg") == set(&[0]))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    let failed = notices(&sim, "PackageFailed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(matches!(
        failed[0].notice,
        Notice::PackageFailed {
            node: NodeId(1),
            cause: FailureCause::GenericResource(0),
            ..
        }
    ));
    let failover = notices(&sim, "PackageFailover");
    assert_eq!(failover.len(), 1, "{failover:?}");
    assert!(matches!(
        failover[0].notice,
        Notice::PackageFailover {
            before: Some(NodeId(1)),
            after: NodeId(0),
            ..
        }
    ));
    let snapshot = sim.status(NodeId(2)).unwrap();
    let db = &snapshot.packages[0];
    assert!(db.nodes.iter().all(|row| row.switching), "{db:#?}");
    assert_eq!(db.nodes[1].instance.state, PackageState::Halted);
    assert_eq!(db.nodes[1].resources[0].status, Health::Down);
}

#[test]
fn a_during_package_start_resource_failing_fails_the_package_over() {
    let mut sim = formed(DURING);
    // An extended resource is 0 until set: 0 < 80, up; the package starts on n1.
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("apppkg") == set(&[0]))
        .unwrap());
    sim.set_resource(NodeId(0), "cpu_load", ResourceValue::Value(50))
        .unwrap();
    sim.run_for(seconds(3)).unwrap();
    assert_eq!(sim.running_on("apppkg"), set(&[0]));
    assert!(
        notices(&sim, "GenericResourceChanged").is_empty(),
        "50 keeps it up"
    );

    sim.set_resource(NodeId(0), "cpu_load", ResourceValue::Value(95))
        .unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("apppkg") == set(&[1]))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    let changed = notices(&sim, "GenericResourceChanged");
    assert_eq!(changed.len(), 1);
    assert!(matches!(
        changed[0].notice,
        Notice::GenericResourceChanged {
            node: NodeId(0),
            value: Some(95),
            before: Health::Up,
            after: Health::Down,
            ..
        }
    ));
    let failed = notices(&sim, "PackageFailed");
    assert_eq!(failed.len(), 1);
    assert!(matches!(
        failed[0].notice,
        Notice::PackageFailed {
            cause: FailureCause::GenericResource(0),
            ..
        }
    ));
    // A during_package_start failure disables node switching to n1.
    let snapshot = sim.status(NodeId(1)).unwrap();
    let app = &snapshot.packages[0];
    assert!(!app.nodes[0].switching);
    assert_eq!(app.nodes[0].instance.state, PackageState::Failed);
    assert_eq!(app.nodes[0].resources[0].value, Some(95));
    assert_eq!(app.nodes[0].resources[0].status, Health::Down);
    assert_eq!(notices(&sim, "PackageFailover").len(), 1);
}

#[test]
fn cmsetresource_refuses_what_serviceguard_refuses() {
    let mut options = Options::new(3, 6);
    options.packages = vec![BEFORE.to_string(), DURING.to_string()];
    let mut sim = Simulation::new(options);
    sim.start_all();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    let node = NodeId(0);
    assert_eq!(
        sim.set_resource(node, "nosuch", ResourceValue::Status(true)),
        Err(ResourceError::Unknown("nosuch".into()))
    );
    let error = sim
        .set_resource(node, "cpu_load", ResourceValue::Status(true))
        .unwrap_err();
    assert!(error.to_string().contains("extended"), "{error}");
    let error = sim
        .set_resource(node, "sfm_disk", ResourceValue::Value(3))
        .unwrap_err();
    assert!(error.to_string().contains("simple"), "{error}");
    for value in [0, -1, 2_147_483_648] {
        assert_eq!(
            sim.set_resource(node, "cpu_load", ResourceValue::Value(value)),
            Err(ResourceError::OutOfRange(value))
        );
    }
    sim.set_resource(node, "cpu_load", ResourceValue::Value(2_147_483_647))
        .unwrap();
    assert!(notices(&sim, "GenericResourceChanged").len() == 1);
}

#[test]
fn a_resource_going_down_while_the_package_starts_fails_the_start() {
    let mut options = Options::new(3, 8);
    options.packages = vec![DURING.to_string()];
    let mut sim = Simulation::new(options);
    sim.script_latency = seconds(5);
    sim.start_all();
    assert!(sim
        .run_until(seconds(60), |s| {
            s.core(NodeId(0)).is_some_and(|c| {
                c.packages()
                    .table()
                    .package(cimguard_cluster::packages::PackageId(0))
                    .instances
                    .contains_key(&NodeId(0))
            })
        })
        .unwrap());
    // The run script is still running on n1.
    sim.set_resource(NodeId(0), "cpu_load", ResourceValue::Value(99))
        .unwrap();
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("apppkg") == set(&[1]))
        .unwrap());
    sim.run_for(seconds(10)).unwrap();
    let started: Vec<NodeId> = notices(&sim, "PackageStarted")
        .iter()
        .map(|r| r.node)
        .collect();
    assert_eq!(started, [NodeId(1)], "never started on n1");
    let failed = notices(&sim, "PackageFailed");
    assert_eq!(failed.len(), 1);
    assert!(matches!(
        failed[0].notice,
        Notice::PackageFailed {
            node: NodeId(0),
            cause: FailureCause::GenericResource(0),
            ..
        }
    ));
    // The instance went from starting to failing: its run was never counted as running.
    assert!(sim.trace().iter().any(|r| matches!(
        r.event,
        cimguard_cluster::core::Event::Package(
            cimguard_cluster::packages::PackageEvent::StateChanged {
                before: Some(cimguard_cluster::packages::InstanceState::Starting),
                after: Some(cimguard_cluster::packages::InstanceState::Failing),
                ..
            }
        )
    )));
    assert_eq!(notices(&sim, "PackageFailover").len(), 1);
}

#[test]
fn a_halted_node_shows_its_own_resource_values_in_the_members_view() {
    // apppkg may run on n1, n2 and n3; n3 halts and sets its resource while halted.
    let text = "package_name apppkg\nnode_name n1\nnode_name n2\nnode_name n3\n\
generic_resource_name cpu_load\ngeneric_resource_up_criteria <80\n";
    let mut sim = formed(text);
    sim.halt_node(NodeId(2), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[0, 1]))
            && s.status(NodeId(2)).unwrap().status == ClusterStatus::Up)
        .unwrap());
    sim.set_resource(NodeId(2), "cpu_load", ResourceValue::Value(55))
        .unwrap();
    sim.run_for(seconds(3)).unwrap();
    // The cluster as the members see it, n3's own resource as n3 knows it.
    let snapshot = sim.status(NodeId(2)).unwrap();
    assert_eq!(snapshot.status, ClusterStatus::Up);
    let row = snapshot.packages[0]
        .nodes
        .iter()
        .find(|row| row.name == "n3")
        .unwrap();
    assert_eq!(row.resources[0].value, Some(55));
    assert_eq!(row.resources[0].status, Health::Up, "55 meets <80");
    sim.set_resource(NodeId(2), "cpu_load", ResourceValue::Value(95))
        .unwrap();
    sim.run_for(seconds(3)).unwrap();
    let snapshot = sim.status(NodeId(2)).unwrap();
    let row = snapshot.packages[0]
        .nodes
        .iter()
        .find(|row| row.name == "n3")
        .unwrap();
    assert_eq!(
        (row.resources[0].value, row.resources[0].status),
        (Some(95), Health::Down)
    );
}
