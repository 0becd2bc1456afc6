//! cmmodpkg -R -s (reset a service's restart counter) and cmmodpkg -m on|off (maintenance
//! mode), serviceguard.md 5.2 and 6.6.

mod common;

use common::{notices, seconds, set};

use cimguard_cluster::core::NodeId;
use cimguard_cluster::core::Taken;
use cimguard_cluster::packages::{Command, Refusal};
use cimguard_cluster::sim::{Options, Simulation};
use cimguard_cluster::status::PackageState;

fn cluster(restart: &str) -> Simulation {
    let mut options = Options::new(3, 61);
    options.packages = vec![format!(
        "package_name dbpkg\nnode_name n1\nnode_name n2\nservice_name db\nservice_cmd /bin/db\n\
         service_restart {restart}\n"
    )];
    let mut sim = Simulation::new(options);
    sim.start_all();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2]))
            && s.running_on("dbpkg") == set(&[0]))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    sim
}

fn restarts(sim: &Simulation, observer: u32) -> u32 {
    let snapshot = sim.status(NodeId(observer)).unwrap();
    snapshot.packages[0].nodes[0].services[0].condition.restarts
}

#[test]
fn cmmodpkg_r_resets_the_restart_counter_where_the_package_runs() {
    let mut sim = cluster("2");
    let id = sim.package("dbpkg");
    for _ in 0..2 {
        sim.kill_service(NodeId(0), "dbpkg", 0);
        sim.run_for(seconds(2)).unwrap();
    }
    assert_eq!(restarts(&sim, 2), 2);
    assert_eq!(
        sim.command(
            NodeId(2),
            Command::ResetRestarts {
                package: id,
                service: 3
            }
        ),
        Err(Refusal::UnknownService)
    );
    sim.command(
        NodeId(2),
        Command::ResetRestarts {
            package: id,
            service: 0,
        },
    )
    .unwrap();
    sim.run_for(seconds(3)).unwrap();
    assert_eq!(restarts(&sim, 0), 0);
    assert_eq!(restarts(&sim, 2), 0);
    // The counter starts again: two more restarts before the package fails.
    sim.kill_service(NodeId(0), "dbpkg", 0);
    sim.run_for(seconds(2)).unwrap();
    assert_eq!(sim.running_on("dbpkg"), set(&[0]));
    assert_eq!(restarts(&sim, 1), 1);
    assert!(notices(&sim, "PackageFailed").is_empty());
    // No counter to reset where nothing runs.
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
    sim.run_for(seconds(2)).unwrap();
    assert_eq!(
        sim.command(
            NodeId(0),
            Command::ResetRestarts {
                package: id,
                service: 0
            }
        ),
        Err(Refusal::NotRunning { node: None })
    );
    // Nor a halt, which names the node asked about (the daemon gives its NODE_NAME).
    let halt_again = sim.command(
        NodeId(0),
        Command::Halt {
            package: id,
            node: Some(NodeId(1)),
        },
    );
    assert_eq!(
        halt_again,
        Err(Refusal::NotRunning {
            node: Some(NodeId(1))
        })
    );
    assert_eq!(
        halt_again.unwrap_err().to_string(),
        "the package is not running on node 1"
    );
}

#[test]
fn in_maintenance_mode_failures_are_not_acted_on() {
    let mut sim = cluster("none");
    let id = sim.package("dbpkg");
    let on = Command::Maintenance {
        package: id,
        on: true,
        node: None,
    };
    // Refused by the coordinator (n2's copy of the table may be behind): the answer says so,
    // naming the package.
    let Ok(Taken::Forwarded(asked)) = sim.command(NodeId(1), on) else {
        panic!("not forwarded");
    };
    assert_eq!(
        common::answer_to(&mut sim, 1, asked),
        Some(Refusal::SwitchingEnabled.naming("dbpkg").to_string())
    );
    sim.command(
        NodeId(1),
        Command::Disable {
            package: id,
            node: None,
        },
    )
    .unwrap();
    sim.run_for(seconds(2)).unwrap();
    sim.command(NodeId(1), on).unwrap();
    sim.run_for(seconds(2)).unwrap();
    for observer in 0..3 {
        let snapshot = sim.status(NodeId(observer)).unwrap();
        assert_eq!(
            snapshot.packages[0].condition.state,
            PackageState::Maintenance
        );
    }
    // The service dies: told, but the package neither fails nor moves.
    sim.kill_service(NodeId(0), "dbpkg", 0);
    sim.run_for(seconds(20)).unwrap();
    assert_eq!(notices(&sim, "ServiceFailed").len(), 1);
    assert!(notices(&sim, "PackageFailed").is_empty());
    assert_eq!(sim.running_on("dbpkg"), set(&[0]));
    // Out of maintenance, the service that died in it is a failure then: with no restart
    // left, the package fails, rather than run on, unwatched, without it.
    sim.command(
        NodeId(1),
        Command::Maintenance {
            package: id,
            on: false,
            node: None,
        },
    )
    .unwrap();
    assert!(sim
        .run_until(seconds(10), |s| notices(s, "PackageFailed").len() == 1)
        .unwrap());
    assert!(sim
        .run_until(seconds(10), |s| s.running_on("dbpkg").is_empty())
        .unwrap());
}

#[test]
fn a_service_that_died_in_maintenance_mode_restarts_as_it_ends() {
    let mut sim = cluster("1");
    let id = sim.package("dbpkg");
    sim.command(
        NodeId(1),
        Command::Disable {
            package: id,
            node: None,
        },
    )
    .unwrap();
    sim.run_for(seconds(2)).unwrap();
    let maintenance = |on| Command::Maintenance {
        package: id,
        on,
        node: None,
    };
    sim.command(NodeId(1), maintenance(true)).unwrap();
    sim.run_for(seconds(2)).unwrap();
    sim.kill_service(NodeId(0), "dbpkg", 0);
    sim.run_for(seconds(10)).unwrap();
    // Not acted on while in maintenance.
    assert_eq!(restarts(&sim, 0), 0);
    sim.command(NodeId(2), maintenance(false)).unwrap();
    // Taken as it ends: its one restart, and the package runs on where it was.
    assert!(sim.run_until(seconds(10), |s| restarts(s, 2) == 1).unwrap());
    assert_eq!(sim.running_on("dbpkg"), set(&[0]));
    assert!(notices(&sim, "PackageFailed").is_empty());
    assert_eq!(
        sim.status(NodeId(2)).unwrap().packages[0].condition.state,
        PackageState::Running
    );
    // Watched again: the next death, with no restart left, fails it.
    sim.kill_service(NodeId(0), "dbpkg", 0);
    assert!(sim
        .run_until(seconds(10), |s| notices(s, "PackageFailed").len() == 1)
        .unwrap());
}

#[test]
fn a_package_that_is_down_runs_in_maintenance_mode_on_the_node_named() {
    let mut sim = cluster("none");
    let id = sim.package("dbpkg");
    sim.command(
        NodeId(0),
        Command::Disable {
            package: id,
            node: None,
        },
    )
    .unwrap();
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
    sim.run_for(seconds(2)).unwrap();
    let maintenance = |on, node| Command::Maintenance {
        package: id,
        on,
        node,
    };
    // Down, it needs the node it is to run on; n3 is not one of its nodes.
    assert_eq!(
        sim.command(NodeId(0), maintenance(true, None)),
        Err(Refusal::MaintenanceNeedsNode)
    );
    assert_eq!(
        sim.command(NodeId(0), maintenance(true, Some(NodeId(2)))),
        Err(Refusal::NotAnAllowedNode { node: NodeId(2) })
    );
    sim.command(NodeId(0), maintenance(true, Some(NodeId(1))))
        .unwrap();
    sim.run_for(seconds(2)).unwrap();
    assert_eq!(
        sim.status(NodeId(2)).unwrap().packages[0].condition.state,
        PackageState::Maintenance
    );
    // It starts there only.
    let run = |node| Command::Run {
        package: id,
        node: NodeId(node),
    };
    assert_eq!(
        sim.command(NodeId(0), run(0)),
        Err(Refusal::MaintenanceElsewhere { node: NodeId(1) })
    );
    sim.command(NodeId(0), run(1)).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("dbpkg") == set(&[1]))
        .unwrap());
    sim.run_for(seconds(2)).unwrap();
    // In maintenance there, a failure is not acted on.
    sim.kill_service(NodeId(1), "dbpkg", 0);
    sim.run_for(seconds(10)).unwrap();
    assert!(notices(&sim, "PackageFailed").is_empty());
    assert_eq!(sim.running_on("dbpkg"), set(&[1]));
    assert_eq!(
        sim.status(NodeId(0)).unwrap().packages[0].condition.state,
        PackageState::Maintenance
    );
    // Maintenance ends when its node halts; the package halts with it and stays down
    // (AUTO_RUN is off).
    sim.halt_node(NodeId(1), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("dbpkg").is_empty()
            && s.status(NodeId(0))
                .is_some_and(
                    |v| v.packages[0].condition.state != PackageState::Maintenance
                ))
        .unwrap());
}
