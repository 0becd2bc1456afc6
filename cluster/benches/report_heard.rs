//! How long after a member shows a run or halt of its own package ended the package
//! coordinator acknowledges having its report (`Snapshot::reports_heard`), which is when
//! RequestStateChange, cmrunpkg and cmhaltpkg given through that member return: simulated
//! time, on a 3-node cluster with no network delay to speak of (the simulator's 50-250 µs),
//! at the default MEMBER_TIMEOUT (14 s: heartbeats every second) and at 3 s, alternating
//! halts and runs of a package on n2 given there. Prints the mean and the largest of 40
//! (BENCHMARKS.md records them).
//!
//! `cargo bench -p cimguard-cluster --bench report_heard`

use std::time::Duration;

use cimguard_cluster::core::{NodeId, NodeSet};
use cimguard_cluster::packages::Command;
use cimguard_cluster::sim::{Options, Simulation};
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
    let mut options = Options::new(3, 5);
    options.member_timeout = member_timeout;
    options.packages = vec![
        "package_name pkgA\nnode_name n2\nnode_name n1\nnode_name n3\n\
         service_name s\nservice_cmd /bin/s\n"
            .into(),
    ];
    let mut sim = Simulation::new(options);
    sim.start_all();
    let formed = sim
        .run_until(Duration::from_secs(120), |s| {
            s.formed(NodeSet::first(3)) && shown(s).0 == Some(PackageState::Running)
        })
        .expect("no invariant broken");
    assert!(formed, "the cluster formed, pkgA on n2");
    sim.run_for(Duration::from_secs(5))
        .expect("no invariant broken");
    let package = sim.package("pkgA");
    let (mut total, mut longest) = (Duration::ZERO, Duration::ZERO);
    let count = 40;
    for i in 0..count {
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
        let took = sim.now() - started;
        total += took;
        longest = longest.max(took);
        // Commands a moment apart, not in step with the heartbeats.
        sim.run_for(Duration::from_millis(137 + 61 * u64::from(i)))
            .expect("no invariant broken");
    }
    (total / count, longest)
}

fn main() {
    for seconds in [14, 3] {
        let (mean, longest) = measure(Duration::from_secs(seconds));
        println!(
            "MEMBER_TIMEOUT {seconds} s: report heard {:.2} ms mean, {:.2} ms at most after the end",
            mean.as_secs_f64() * 1000.0,
            longest.as_secs_f64() * 1000.0
        );
    }
}
