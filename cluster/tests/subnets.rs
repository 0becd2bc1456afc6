//! Monitored subnets (serviceguard.md 5.1 monitored_subnet, 6.1 item 6): the subnet monitor's
//! word reaches the core on each node; a subnet going down where a package runs fails it
//! there and the package coordinator fails it over to a node where its subnets are up; no
//! package starts where one of its subnets is down; the node is eligible again once the
//! subnet is back (its failure does not disable node switching). Driven through the
//! simulator.

mod common;

use std::net::IpAddr;

use common::{notices, seconds, set};

use cimguard_cluster::core::{NodeId, NodeSet};
use cimguard_cluster::packages::{Command, FailureCause, PackageId, Refusal};
use cimguard_cluster::sim::{Life, Options, Simulation};
use cimguard_cluster::status::{Health, Notice, PackageState};

fn subnet() -> IpAddr {
    "10.20.0.0".parse().unwrap()
}

/// Package `name` on nodes `nodes` (1-based), monitoring 10.20.0.0, with a service.
fn package(name: &str, nodes: &[u32], extra: &str) -> String {
    let mut text = format!("package_name {name}\n");
    for n in nodes {
        text.push_str(&format!("node_name n{n}\n"));
    }
    text.push_str("monitored_subnet 10.20.0.0\nservice_name s\nservice_cmd /bin/s\n");
    text.push_str(extra);
    text
}

/// A formed three-node cluster with `packages`, each running where `running` says.
fn cluster(seed: u64, packages: &[String], running: &[(&str, u32)]) -> Simulation {
    let mut options = Options::new(3, seed);
    options.packages = packages.to_vec();
    // Heartbeats (which carry the subnet states) go through the wire encoding.
    options.through_wire = true;
    let mut sim = Simulation::new(options);
    sim.start_all();
    let ready = sim
        .run_until(seconds(90), |s| {
            s.formed(NodeSet::first(3))
                && running
                    .iter()
                    .all(|(name, node)| s.running_on(name) == set(&[*node]))
        })
        .unwrap();
    assert!(ready, "the cluster or its packages did not start");
    sim
}

/// Whether every node that is up sees package `id` halted everywhere (a command checks
/// against the table of the node it is given on).
fn halted_everywhere(sim: &Simulation, id: PackageId) -> bool {
    (0..sim.node_count() as u32).all(|n| {
        sim.core(NodeId(n))
            .is_none_or(|c| c.packages().table().package(id).instances.is_empty())
    })
}

/// The status of 10.20.0.0 on `node` for package `package` in `observer`'s snapshot.
fn subnet_status(sim: &Simulation, observer: u32, package: usize, node: usize) -> Health {
    let snapshot = sim.status(NodeId(observer)).unwrap();
    let row = &snapshot.packages[package].nodes[node];
    assert_eq!(row.subnets.len(), 1, "{row:#?}");
    assert_eq!(row.subnets[0].subnet, subnet());
    row.subnets[0].status
}

#[test]
fn a_subnet_going_down_fails_the_package_over_and_its_node_is_eligible_again_when_it_returns() {
    let mut sim = cluster(7001, &[package("dbpkg", &[1, 2], "")], &[("dbpkg", 0)]);
    // Until the monitor has said anything, the subnet counts as up (once n3 has every
    // member's report).
    assert!(sim
        .run_until(seconds(10), |s| subnet_status(s, 2, 0, 0) == Health::Up)
        .unwrap());
    sim.set_subnet(NodeId(0), subnet(), true);
    sim.set_subnet(NodeId(1), subnet(), true);
    sim.run_for(seconds(3)).unwrap();
    assert!(notices(&sim, "NetworkInterfaceDown").is_empty());

    sim.set_subnet(NodeId(0), subnet(), false);
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("dbpkg") == set(&[1]))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    let down = notices(&sim, "NetworkInterfaceDown");
    assert_eq!(down.len(), 1, "{down:?}");
    assert_eq!(
        down[0].notice,
        Notice::SubnetDown {
            node: NodeId(0),
            subnet: subnet(),
            before: Health::Up,
            after: Health::Down,
        }
    );
    let failed = notices(&sim, "PackageFailed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(matches!(
        failed[0].notice,
        Notice::PackageFailed {
            node: NodeId(0),
            cause: FailureCause::Subnet(s),
            ..
        } if s == subnet()
    ));
    let failover = notices(&sim, "PackageFailover");
    assert_eq!(failover.len(), 1, "{failover:?}");
    assert!(matches!(
        failover[0].notice,
        Notice::PackageFailover {
            before: Some(NodeId(0)),
            after: NodeId(1),
            ..
        }
    ));
    // Every member knows, from n1's heartbeats; node switching to n1 stays enabled and the
    // package ends halted there, not failed.
    let snapshot = sim.status(NodeId(2)).unwrap();
    let db = &snapshot.packages[0];
    assert!(db.nodes.iter().all(|row| row.switching), "{db:#?}");
    assert_eq!(db.nodes[0].instance.state, PackageState::Halted);
    assert_eq!(subnet_status(&sim, 2, 0, 0), Health::Down);
    assert_eq!(subnet_status(&sim, 2, 0, 1), Health::Up);
    assert_eq!(snapshot.nodes[0].subnets[0].status, Health::Down);
    let line = snapshot.to_line();
    for expected in [
        "node:n1|subnet:10.20.0.0|status=down\n",
        "node:n2|subnet:10.20.0.0|status=up\n",
        "package:dbpkg|node:n1|subnet:10.20.0.0|status=down\n",
        "package:dbpkg|subnet:10.20.0.0|status=up\n",
    ] {
        assert!(line.contains(expected), "{expected} not in\n{line}");
    }
    // Subnets are not generic resources.
    assert!(db.nodes.iter().all(|row| row.resources.is_empty()));
    assert!(!line.contains("generic_resource"), "{line}");
    assert!(notices(&sim, "GenericResourceChanged").is_empty());

    // Back up: told, and the package stays where it is (failback_policy manual).
    sim.set_subnet(NodeId(0), subnet(), true);
    sim.run_for(seconds(5)).unwrap();
    let up = notices(&sim, "NetworkInterfaceUp");
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(
        up[0].notice,
        Notice::SubnetUp {
            node: NodeId(0),
            subnet: subnet(),
            before: Health::Down,
            after: Health::Up,
        }
    );
    assert_eq!(sim.running_on("dbpkg"), set(&[1]));
    assert_eq!(subnet_status(&sim, 2, 0, 0), Health::Up);

    // n1 is eligible again: cmhaltpkg, then cmrunpkg -n n1 starts it there.
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
        .run_until(seconds(60), |s| halted_everywhere(s, id))
        .unwrap());
    sim.command(
        NodeId(2),
        Command::Run {
            package: id,
            node: NodeId(0),
        },
    )
    .unwrap();
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("dbpkg") == set(&[0]))
        .unwrap());
}

#[test]
fn with_automatic_failback_the_package_returns_when_its_subnet_does() {
    let mut sim = cluster(
        7002,
        &[package("dbpkg", &[1, 2], "failback_policy automatic\n")],
        &[("dbpkg", 0)],
    );
    sim.set_subnet(NodeId(0), subnet(), false);
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("dbpkg") == set(&[1]))
        .unwrap());
    // Its primary node is up but its subnet is not: it stays on n2.
    sim.run_for(seconds(30)).unwrap();
    assert_eq!(sim.running_on("dbpkg"), set(&[1]));
    assert!(notices(&sim, "PackageFailback").is_empty());

    sim.set_subnet(NodeId(0), subnet(), true);
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("dbpkg") == set(&[0]))
        .unwrap());
    let failback = notices(&sim, "PackageFailback");
    assert_eq!(failback.len(), 1, "{failback:?}");
    assert!(matches!(
        failback[0].notice,
        Notice::PackageFailback {
            before: NodeId(1),
            after: NodeId(0),
            ..
        }
    ));
}

#[test]
fn a_package_is_not_placed_where_its_subnet_is_down() {
    let mut options = Options::new(3, 7003);
    options.packages = vec![package("dbpkg", &[1, 2], "")];
    let mut sim = Simulation::new(options);
    sim.start_all();
    // The monitor's first word comes at the daemon's start, before it is in a cluster.
    sim.set_subnet(NodeId(0), subnet(), false);
    assert!(sim
        .run_until(seconds(90), |s| s.formed(NodeSet::first(3))
            && s.running_on("dbpkg") == set(&[1]))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    // It never started on n1, its primary.
    let started: Vec<NodeId> = notices(&sim, "PackageStarted")
        .iter()
        .map(|r| r.node)
        .collect();
    assert_eq!(started, [NodeId(1)]);
    assert!(notices(&sim, "PackageFailed").is_empty());
    assert_eq!(subnet_status(&sim, 1, 0, 0), Health::Down);

    // cmrunpkg -n n1 is refused while the subnet is down there, on any node.
    let id = sim.package("dbpkg");
    sim.command(
        NodeId(1),
        Command::Halt {
            package: id,
            node: None,
        },
    )
    .unwrap();
    assert!(sim
        .run_until(seconds(60), |s| halted_everywhere(s, id))
        .unwrap());
    let refused = Some(
        Refusal::SubnetDown {
            node: NodeId(0),
            subnet: subnet(),
        }
        .naming("dbpkg")
        .to_string(),
    );
    for given_on in 0..3 {
        let run = Command::Run {
            package: id,
            node: NodeId(0),
        };
        // At once on the coordinator, in its answer elsewhere.
        assert_eq!(common::refusal(&mut sim, given_on, run), refused);
    }
    let error = Refusal::SubnetDown {
        node: NodeId(0),
        subnet: subnet(),
    }
    .to_string();
    assert!(error.contains("monitored_subnet 10.20.0.0"), "{error}");

    // Down on n2 too: with AUTO_RUN back on, the package starts nowhere...
    sim.set_subnet(NodeId(1), subnet(), false);
    sim.run_for(seconds(3)).unwrap();
    sim.command(
        NodeId(2),
        Command::Enable {
            package: id,
            node: None,
        },
    )
    .unwrap();
    sim.run_for(seconds(30)).unwrap();
    assert!(sim.running_on("dbpkg").is_empty());
    // ...until one of its nodes has the subnet again.
    sim.set_subnet(NodeId(1), subnet(), true);
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("dbpkg") == set(&[1]))
        .unwrap());
}

#[test]
fn a_subnet_going_down_where_the_package_does_not_run_changes_only_the_status() {
    let mut sim = cluster(7004, &[package("dbpkg", &[1, 2], "")], &[("dbpkg", 0)]);
    sim.set_subnet(NodeId(1), subnet(), false);
    sim.run_for(seconds(10)).unwrap();
    assert_eq!(sim.running_on("dbpkg"), set(&[0]));
    assert!(notices(&sim, "PackageFailed").is_empty());
    assert!(notices(&sim, "PackageFailover").is_empty());
    let down = notices(&sim, "NetworkInterfaceDown");
    assert_eq!(down.len(), 1, "{down:?}");
    assert!(matches!(
        down[0].notice,
        Notice::SubnetDown {
            node: NodeId(1),
            ..
        }
    ));
    assert_eq!(subnet_status(&sim, 0, 0, 1), Health::Down);
    assert_eq!(subnet_status(&sim, 0, 0, 0), Health::Up);
    // The same word again is no change.
    sim.set_subnet(NodeId(1), subnet(), false);
    sim.run_for(seconds(3)).unwrap();
    assert_eq!(notices(&sim, "NetworkInterfaceDown").len(), 1);

    // A subnet no package monitors (cmapplyconf took it out while the change was on its
    // way) is ignored, down or up.
    let before = sim.status(NodeId(0)).unwrap();
    let other: IpAddr = "10.99.0.0".parse().unwrap();
    sim.set_subnet(NodeId(0), other, false);
    sim.run_for(seconds(5)).unwrap();
    sim.set_subnet(NodeId(0), other, true);
    sim.run_for(seconds(5)).unwrap();
    assert_eq!(sim.running_on("dbpkg"), set(&[0]));
    assert_eq!(notices(&sim, "NetworkInterfaceDown").len(), 1);
    assert!(notices(&sim, "NetworkInterfaceUp").is_empty());
    let after = sim.status(NodeId(0)).unwrap();
    assert_eq!(before.packages, after.packages);
    assert_eq!(before.nodes, after.nodes);
}

#[test]
fn node_fail_fast_enabled_resets_the_node_whose_subnet_goes_down() {
    let mut sim = cluster(
        7005,
        &[package("dbpkg", &[1, 2], "node_fail_fast_enabled yes\n")],
        &[("dbpkg", 0)],
    );
    sim.set_subnet(NodeId(0), subnet(), false);
    sim.run_for(seconds(1)).unwrap();
    assert_eq!(sim.life(NodeId(0)), Life::Down);
    assert!(sim
        .run_until(seconds(90), |s| s.running_on("dbpkg") == set(&[1]))
        .unwrap());
}

#[test]
fn a_subnet_going_down_while_the_package_starts_fails_the_start() {
    let mut options = Options::new(3, 7006);
    options.packages = vec![package("dbpkg", &[1, 2], "")];
    let mut sim = Simulation::new(options);
    sim.script_latency = seconds(5);
    sim.start_all();
    assert!(sim
        .run_until(seconds(60), |s| {
            s.core(NodeId(0)).is_some_and(|c| {
                c.packages()
                    .table()
                    .package(PackageId(0))
                    .instances
                    .contains_key(&NodeId(0))
            })
        })
        .unwrap());
    // The run script is still running on n1.
    sim.set_subnet(NodeId(0), subnet(), false);
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("dbpkg") == set(&[1]))
        .unwrap());
    sim.run_for(seconds(10)).unwrap();
    let started: Vec<NodeId> = notices(&sim, "PackageStarted")
        .iter()
        .map(|r| r.node)
        .collect();
    assert_eq!(started, [NodeId(1)], "never started on n1");
    let failed = notices(&sim, "PackageFailed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(matches!(
        failed[0].notice,
        Notice::PackageFailed {
            node: NodeId(0),
            cause: FailureCause::Subnet(_),
            ..
        }
    ));
    let snapshot = sim.status(NodeId(1)).unwrap();
    assert!(snapshot.packages[0].nodes[0].switching);
}

#[test]
fn a_running_package_that_a_new_configuration_makes_monitor_a_down_subnet_fails_over() {
    // pkgA monitors 10.20.0.0; pkgB, on n1, does not yet.
    let plain = "package_name pkgB\nnode_name n1\nnode_name n2\n\
                 service_name s\nservice_cmd /bin/s\n";
    let mut sim = cluster(
        7007,
        &[package("pkgA", &[2, 3], ""), plain.to_string()],
        &[("pkgA", 1), ("pkgB", 0)],
    );
    sim.set_subnet(NodeId(0), subnet(), false);
    sim.run_for(seconds(5)).unwrap();
    assert_eq!(sim.running_on("pkgB"), set(&[0]));

    let monitored = format!("{plain}monitored_subnet 10.20.0.0\n");
    sim.apply(NodeId(0), None, &[package("pkgA", &[2, 3], ""), monitored])
        .unwrap();
    assert!(sim
        .run_until(seconds(60), |s| s.running_on("pkgB") == set(&[1]))
        .unwrap());
    let failed = notices(&sim, "PackageFailed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(matches!(
        failed[0].notice,
        Notice::PackageFailed {
            node: NodeId(0),
            cause: FailureCause::Subnet(_),
            ..
        }
    ));
}

#[test]
fn subnet_states_outlive_a_configuration_change_that_renumbers_them() {
    let mut sim = cluster(7008, &[package("dbpkg", &[1, 2], "")], &[("dbpkg", 0)]);
    sim.set_subnet(NodeId(1), subnet(), false);
    assert!(sim
        .run_until(seconds(30), |s| subnet_status(s, 2, 0, 1) == Health::Down)
        .unwrap());
    // A new package with a generic resource: the subnet's number among the node settings
    // moves up by one.
    let extra = "package_name aaa\nnode_name n3\ngeneric_resource_name disk\n\
                 generic_resource_evaluation_type before_package_start\n";
    sim.apply(
        NodeId(0),
        None,
        &[package("dbpkg", &[1, 2], ""), extra.to_string()],
    )
    .unwrap();
    assert!(sim
        .run_until(seconds(60), |s| (0..3).all(|n| s
            .core(NodeId(n))
            .unwrap()
            .packages()
            .catalog()
            .packages
            .len()
            == 2))
        .unwrap());
    sim.run_for(seconds(5)).unwrap();
    let db = sim.package("dbpkg");
    for observer in 0..3 {
        let snapshot = sim.status(NodeId(observer)).unwrap();
        let row = &snapshot.packages[db.index()];
        assert_eq!(row.nodes[1].subnets[0].status, Health::Down, "{row:#?}");
        assert_eq!(row.nodes[0].subnets[0].status, Health::Up, "{row:#?}");
        assert_eq!(snapshot.nodes[1].subnets[0].status, Health::Down);
    }
    // Still kept off n2: when n1 fails, the package has nowhere to go.
    sim.set_subnet(NodeId(0), subnet(), false);
    sim.run_for(seconds(30)).unwrap();
    assert!(sim.running_on("dbpkg").is_empty());
    assert!(notices(&sim, "PackageStarted").len() == 1);
}
