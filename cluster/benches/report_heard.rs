//! How long after a member shows a run or halt of its own package ended the package
//! coordinator acknowledges having its report (`Snapshot::reports_heard`), which is when
//! RequestStateChange, cmrunpkg and cmhaltpkg given through that member return: simulated
//! time, on a 3-node cluster with no network delay to speak of (the simulator's 50-250 µs),
//! at the default MEMBER_TIMEOUT (14 s: heartbeats every second) and at 3 s, alternating
//! halts and runs of a package on n2 given there. Prints the mean and the largest of 40
//! (BENCHMARKS.md records them).
//!
//! `cargo bench -p cimguard-cluster --bench report_heard`

mod paced;

use std::time::Duration;

use cimguard_cluster::core::NodeId;
use cimguard_cluster::packages::Command;
use cimguard_cluster::sim::Simulation;
use cimguard_cluster::status::PackageState;

/// pkgA's state on n2 as n2 shows it, and whether the coordinator has n2's report.
fn shown(sim: &Simulation) -> (Option<PackageState>, bool) {
    let status = sim.status(NodeId(1)).expect("n2 runs");
    let state = status
        .packages
        .iter()
        .find(|p| p.name == "pkgA")
        .and_then(|p| p.nodes.iter().find(|n| n.name == "n2"))
        .map(|n| n.instance.state);
    (state, status.reports_heard)
}

fn measure(member_timeout: Duration) -> (Duration, Duration) {
    let mut sim = paced::cluster(
        member_timeout,
        "package_name pkgA\nnode_name n2\nnode_name n1\nnode_name n3\n\
         service_name s\nservice_cmd /bin/s\n",
        |s| shown(s).0 == Some(PackageState::Running),
    );
    let package = sim.package("pkgA");
    paced::measure(&mut sim, 40, |sim, i| {
        let (command, goal) = if i % 2 == 0 {
            (
                Command::Halt {
                    package,
                    node: None,
                },
                PackageState::Halted,
            )
        } else {
            (
                Command::Run {
                    package,
                    node: NodeId(1),
                },
                PackageState::Running,
            )
        };
        sim.command(NodeId(1), command).expect("taken");
        let ended = sim
            .run_until(Duration::from_secs(30), |s| shown(s).0 == Some(goal))
            .expect("no invariant broken");
        assert!(ended, "the run or halt ended");
        let started = sim.now();
        let heard = sim
            .run_until(Duration::from_secs(10), |s| shown(s).1)
            .expect("no invariant broken");
        assert!(heard, "the coordinator acknowledged the report");
        sim.now() - started
    })
}

fn main() {
    paced::report("report heard after the end", measure);
}
