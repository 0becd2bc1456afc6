//! How long a switching change (cmmodpkg -d/-e) waits for its answer, which the package
//! coordinator holds until every member holds the change: simulated time from the command
//! to its answer, given on the coordinator and on the other members in turn, on a 3-node
//! cluster with no network delay to speak of (the simulator's 50-250 µs), at the default
//! MEMBER_TIMEOUT (14 s: heartbeats every second) and at 3 s. Prints the mean and the
//! largest of 60 commands for each (BENCHMARKS.md records them).
//!
//! `cargo bench -p cimguard-cluster --bench switching_answer`

use std::time::Duration;

use cimguard_cluster::core::{Event, NodeId, NodeSet, Taken};
use cimguard_cluster::packages::Command;
use cimguard_cluster::sim::{Options, Simulation};

fn answered(sim: &Simulation, node: u32, serial: u64) -> bool {
    sim.trace().iter().any(|r| {
        r.node == NodeId(node)
            && matches!(r.event, Event::CommandAnswered { serial: s, .. } if s == serial)
    })
}

fn measure(member_timeout: Duration) -> (Duration, Duration) {
    let mut options = Options::new(3, 5);
    options.member_timeout = member_timeout;
    options.packages = vec![
        "package_name pkgA\nnode_name n1\nnode_name n2\nnode_name n3\n\
                             service_name s\nservice_cmd /bin/s\n"
            .into(),
    ];
    let mut sim = Simulation::new(options);
    sim.start_all();
    let formed = sim
        .run_until(Duration::from_secs(120), |s| s.formed(NodeSet::first(3)))
        .expect("no invariant broken");
    assert!(formed, "the cluster formed");
    sim.run_for(Duration::from_secs(5))
        .expect("no invariant broken");
    let package = sim.package("pkgA");
    let (mut total, mut longest) = (Duration::ZERO, Duration::ZERO);
    let count = 60;
    for i in 0..count {
        let command = if i % 2 == 0 {
            Command::Disable {
                package,
                node: None,
            }
        } else {
            Command::Enable {
                package,
                node: None,
            }
        };
        let node = i % 3;
        let started = sim.now();
        let taken = sim.command(NodeId(node), command).expect("taken");
        if let Taken::Forwarded(serial) = taken {
            let heard = sim
                .run_until(Duration::from_secs(10), |s| answered(s, node, serial))
                .expect("no invariant broken");
            assert!(heard, "answered");
        }
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
            "MEMBER_TIMEOUT {seconds} s: answer after {:.2} ms mean, {:.2} ms at most",
            mean.as_secs_f64() * 1000.0,
            longest.as_secs_f64() * 1000.0
        );
    }
}
