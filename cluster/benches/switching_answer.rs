//! How long a switching change (cmmodpkg -d/-e) waits for its answer, which the package
//! coordinator holds until every member holds the change: simulated time from the command
//! to its answer, given on the coordinator and on the other members in turn, on a 3-node
//! cluster with no network delay to speak of (the simulator's 50-250 µs), at the default
//! MEMBER_TIMEOUT (14 s: heartbeats every second) and at 3 s. Prints the mean and the
//! largest of 60 commands for each (BENCHMARKS.md records them).
//!
//! `cargo bench -p cimguard-cluster --bench switching_answer`

mod paced;

use std::time::Duration;

use cimguard_cluster::core::{Event, NodeId, Taken};
use cimguard_cluster::packages::Command;
use cimguard_cluster::sim::Simulation;

fn answered(sim: &Simulation, node: u32, serial: u64) -> bool {
    sim.trace().iter().any(|r| {
        r.node == NodeId(node)
            && matches!(r.event, Event::CommandAnswered { serial: s, .. } if s == serial)
    })
}

fn measure(member_timeout: Duration) -> (Duration, Duration) {
    let mut sim = paced::cluster(
        member_timeout,
        "package_name pkgA\nnode_name n1\nnode_name n2\nnode_name n3\n\
         service_name s\nservice_cmd /bin/s\n",
        |_| true,
    );
    let package = sim.package("pkgA");
    paced::measure(&mut sim, 60, |sim, i| {
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
        sim.now() - started
    })
}

fn main() {
    paced::report("answer after", measure);
}
