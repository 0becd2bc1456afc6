//! cmviewcl's formats (table, `-v`, `-f line`, selections) compared with golden files, for
//! clusters driven through the simulator into the states an operator meets: everything up,
//! a failed-over package with node switching disabled, a halted node with an unowned
//! package. `UPDATE_GOLDEN=1 cargo test -p cimguard-cluster --test view` rewrites the files
//! (then read the difference before committing it).

mod common;

use common::{seconds, set};

use cimguard_cluster::core::{NodeId, NodeSet, Tiebreaker};
use cimguard_cluster::packages::Command;
use cimguard_cluster::sim::{Options, Simulation};
use cimguard_cluster::status::Snapshot;
use cimguard_cluster::view::{self, Level, Selection};

const DBPKG: &str = "package_name dbpkg\npackage_description Example database\n\
    node_name n1\nnode_name n2\nnode_name n3\nauto_run yes\n\
    service_name db_monitor\nservice_cmd /bin/db\nservice_restart 2\n";
const WEBPKG: &str = "package_name webpkg\nnode_name n2\nnode_name n3\nnode_name n1\n\
    auto_run yes\nfailback_policy automatic\nservice_name web\nservice_cmd /bin/web\n\
    dependency_name db\ndependency_condition dbpkg = up\ndependency_location any_node\n";
const MONPKG: &str = "package_name monpkg\npackage_type multi_node\nnode_name n1\n\
    node_name n2\nnode_name n3\nauto_run yes\nservice_name mon\nservice_cmd /bin/mon\n";

/// Three nodes with a quorum server, dbpkg on n1, webpkg on n2, monpkg everywhere.
fn cluster() -> Simulation {
    let mut options = Options::new(3, 11);
    options.tiebreaker = Tiebreaker::QuorumServer;
    options.packages = vec![DBPKG.into(), WEBPKG.into(), MONPKG.into()];
    let mut sim = Simulation::new(options);
    sim.start_all();
    let ready = sim
        .run_until(seconds(90), |s| {
            s.formed(NodeSet::first(3))
                && s.running_on("dbpkg") == set(&[0])
                && s.running_on("webpkg") == set(&[1])
                && s.running_on("monpkg") == NodeSet::first(3)
        })
        .unwrap();
    assert!(ready, "the cluster did not start its packages");
    sim.run_for(seconds(5)).unwrap();
    sim
}

fn status(sim: &Simulation, node: u32) -> Snapshot {
    sim.status(NodeId(node)).expect("the node is up")
}

/// Compares `text` with `cluster/tests/golden/NAME`, or writes it there with UPDATE_GOLDEN.
fn golden(name: &str, text: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).expect("the golden file is written");
        return;
    }
    let wanted = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(
        text, wanted,
        "{name} differs from the golden file; printed:\n{text}"
    );
}

fn all() -> Selection {
    Selection::default()
}

/// `-f line -s config`.
fn config() -> Selection {
    Selection {
        config: true,
        ..Selection::default()
    }
}

fn verbose() -> Selection {
    Selection {
        verbose: true,
        ..Selection::default()
    }
}

#[test]
fn everything_up() {
    let sim = cluster();
    let snapshot = status(&sim, 1);
    golden("up.table", &view::table(&snapshot, &all()));
    golden("up.verbose", &view::table(&snapshot, &verbose()));
    golden("up.line", &view::line(&snapshot, &all()));
    // -s config: the configuration alone; no status of any kind.
    let configured = view::line(&snapshot, &config());
    golden("up.s-config.line", &configured);
    for attribute in [
        "status=",
        "state=",
        "summary=",
        "switching=",
        "restarts=",
        "owner=",
    ] {
        assert!(
            !configured
                .lines()
                .any(|l| l.contains(&format!("|{attribute}")) || l.starts_with(attribute)),
            "{attribute} in the configuration view:\n{configured}"
        );
    }
    let config_one = Selection {
        packages: vec!["webpkg".into()],
        config: true,
        ..Selection::default()
    };
    golden(
        "up.s-config.p-webpkg.line",
        &view::line(&snapshot, &config_one),
    );
    // -p drops the package's prefix; -n the node's; -l cluster keeps the cluster's lines.
    let one = Selection {
        packages: vec!["dbpkg".into()],
        ..Selection::default()
    };
    golden("up.p-dbpkg.line", &view::line(&snapshot, &one));
    let one_verbose = Selection {
        verbose: true,
        ..one.clone()
    };
    golden("up.p-dbpkg.verbose", &view::table(&snapshot, &one_verbose));
    let node = Selection {
        nodes: vec!["n2".into()],
        ..Selection::default()
    };
    golden("up.n-n2.line", &view::line(&snapshot, &node));
    golden("up.n-n2.table", &view::table(&snapshot, &node));
    let level = Selection {
        level: Some(Level::Cluster),
        ..Selection::default()
    };
    golden("up.l-cluster.line", &view::line(&snapshot, &level));
    golden("up.l-cluster.table", &view::table(&snapshot, &level));
    // -l package and -p: a multi-node package under the MULTI_NODE_PACKAGES header, with
    // the SYSTEM column, as in the full view; -l node: no package at all.
    let packages = Selection {
        level: Some(Level::Package),
        ..Selection::default()
    };
    golden("up.l-package.table", &view::table(&snapshot, &packages));
    // -l package -n n2: the packages active on n2 only (webpkg, monpkg's instance there).
    let on_n2 = Selection {
        level: Some(Level::Package),
        nodes: vec!["n2".into()],
        ..Selection::default()
    };
    golden("up.l-package.n-n2.table", &view::table(&snapshot, &on_n2));
    golden("up.l-package.n-n2.line", &view::line(&snapshot, &on_n2));
    assert_eq!(on_n2.unmatched(&snapshot), None);
    // -p with -n: the package where it is active, or nothing (and a note on why).
    let db_on = |node: &str| Selection {
        packages: vec!["dbpkg".into()],
        nodes: vec![node.into()],
        ..Selection::default()
    };
    let db_node = snapshot
        .nodes
        .iter()
        .find(|n| {
            snapshot
                .packages
                .iter()
                .any(|p| p.name == "dbpkg" && p.owners.contains(n.id))
        })
        .map(|n| n.name.clone())
        .expect("dbpkg runs");
    let elsewhere = snapshot
        .nodes
        .iter()
        .map(|n| n.name.clone())
        .find(|n| *n != db_node)
        .expect("three nodes");
    assert_eq!(
        view::table(&snapshot, &db_on(&db_node)),
        view::table(&snapshot, &one)
    );
    assert_eq!(db_on(&db_node).unmatched(&snapshot), None);
    for format in [view::table, view::line] {
        assert_eq!(format(&snapshot, &db_on(&elsewhere)), "");
    }
    assert_eq!(
        db_on(&elsewhere).unmatched(&snapshot).as_deref(),
        Some(format!("package dbpkg is not active on node {elsewhere}").as_str())
    );
    // Nodes alone, or packages alone: never a note.
    assert_eq!(node.unmatched(&snapshot), None);
    assert_eq!(one.unmatched(&snapshot), None);
    let multi_node = Selection {
        packages: vec!["monpkg".into()],
        ..Selection::default()
    };
    golden("up.p-monpkg.table", &view::table(&snapshot, &multi_node));
    let nodes = Selection {
        level: Some(Level::Node),
        ..Selection::default()
    };
    golden("up.l-node.table", &view::table(&snapshot, &nodes));
    // Every node sees the same cluster.
    assert_eq!(
        view::table(&status(&sim, 0), &all()),
        view::table(&snapshot, &all())
    );
    assert!(one.check(&snapshot).is_ok());
    assert!(Selection {
        packages: vec!["nosuch".into()],
        ..Selection::default()
    }
    .check(&snapshot)
    .is_err());
}

#[test]
fn a_service_failure_fails_the_package_over_and_disables_switching_to_the_node() {
    let mut sim = cluster();
    let configured = view::line(&status(&sim, 1), &config());
    // db_monitor exits three times on n1: two restarts, then the package fails over.
    for restarts in 0..3 {
        sim.kill_service(NodeId(0), "dbpkg", 0);
        let moved = sim
            .run_until(seconds(30), |s| {
                s.running_on("dbpkg") != set(&[0])
                    || status(s, 1).packages[0].nodes[0]
                        .services
                        .first()
                        .is_some_and(|svc| svc.condition.restarts > restarts)
            })
            .unwrap();
        assert!(moved, "restart {restarts}");
        sim.run_for(seconds(2)).unwrap();
    }
    let ready = sim
        .run_until(seconds(60), |s| s.running_on("dbpkg") == set(&[1]))
        .unwrap();
    assert!(ready, "dbpkg did not fail over to n2");
    sim.run_for(seconds(5)).unwrap();
    let snapshot = status(&sim, 1);
    golden("failover.verbose", &view::table(&snapshot, &verbose()));
    golden("failover.line", &view::line(&snapshot, &all()));
    // A failover changes status, never the configuration view.
    assert_eq!(view::line(&snapshot, &config()), configured);
}

#[test]
fn a_halted_node_and_a_halted_package() {
    let mut sim = cluster();
    let configured = view::line(&status(&sim, 0), &config());
    sim.halt_node(NodeId(2), true).expect("cmhaltnode -f n3");
    let halted = sim
        .run_until(seconds(60), |s| {
            status(s, 0).nodes[2].condition.state.as_str() == "halted"
        })
        .unwrap();
    assert!(halted, "n3 did not halt");
    let formed = sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1])))
        .unwrap();
    assert!(formed, "n1 and n2 did not re-form");
    sim.run_for(seconds(5)).unwrap();
    let webpkg = sim
        .status(NodeId(0))
        .and_then(|s| s.packages.iter().find(|p| p.name == "webpkg").map(|p| p.id))
        .expect("webpkg");
    sim.command(
        NodeId(0),
        Command::Halt {
            package: webpkg,
            node: None,
        },
    )
    .expect("cmhaltpkg webpkg");
    let down = sim
        .run_until(seconds(60), |s| s.running_on("webpkg").is_empty())
        .unwrap();
    assert!(down, "webpkg did not halt");
    sim.run_for(seconds(5)).unwrap();
    let snapshot = status(&sim, 0);
    golden("halted.table", &view::table(&snapshot, &all()));
    golden("halted.verbose", &view::table(&snapshot, &verbose()));
    golden("halted.line", &view::line(&snapshot, &all()));
    // A halted node and package are configured as before.
    assert_eq!(view::line(&snapshot, &config()), configured);
}
