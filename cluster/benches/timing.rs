//! Failure detection and re-formation times in simulated seconds (cluster.md T1 and
//! T_reform), p50/p99/max over many seeds per scenario: from the fault to the first survivor
//! installing a membership without the lost node (detection), to every survivor running in it
//! (re-formation), and to the lost node's package running on an adoptive node (takeover,
//! which waits out the fence bound). MEMBER_TIMEOUT 14 s, so T1 = 14 s + one heartbeat
//! interval (3.5 s) + ε. Prints its figures (BENCHMARKS.md records them).
//!
//! `cargo bench -p cimguard-cluster --bench timing` (TIMING_SEEDS sets the seed count per
//! scenario, 200 by default).

use std::time::Duration;

use cimguard_cluster::core::{Event, NodeId, NodeSet, Tiebreaker};
use cimguard_cluster::sim::{Options, Simulation};

/// A fault applied to a formed cluster; returns the groups that may survive (a split
/// leaves the group that wins the lock).
type Fault = fn(&mut Simulation) -> Vec<NodeSet>;

struct Scenario {
    name: &'static str,
    nodes: usize,
    tiebreaker: Tiebreaker,
    fault: Fault,
}

fn set(nodes: &[u32]) -> NodeSet {
    nodes.iter().map(|&n| NodeId(n)).collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn report(what: &str, mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    format!(
        "{what} p50 {:.2} s, p99 {:.2} s, max {:.2} s",
        percentile(&values, 50.0),
        percentile(&values, 99.0),
        values.last().copied().unwrap_or(f64::NAN)
    )
}

fn run(scenario: &Scenario, seeds: u64) {
    let mut detection = Vec::new();
    let mut reformation = Vec::new();
    let mut takeover = Vec::new();
    for seed in 0..seeds {
        let mut options = Options::new(scenario.nodes, seed);
        options.tiebreaker = scenario.tiebreaker;
        // One package on the node that is lost (the last one), able to run everywhere.
        let last = scenario.nodes;
        let mut text = format!("package_name pkg\nnode_name n{last}\n");
        for n in 1..last {
            text.push_str(&format!("node_name n{n}\n"));
        }
        options.packages = vec![text];
        let mut sim = Simulation::new(options);
        sim.start_all();
        let all = NodeSet::first(scenario.nodes);
        let ready = sim
            .run_until(Duration::from_secs(90), |s| {
                s.formed(all) && !s.running_on("pkg").is_empty()
            })
            .unwrap_or_else(|v| panic!("{v}"));
        assert!(ready, "{}: seed {seed} did not start", scenario.name);
        // A random phase against the heartbeat schedule.
        let phase = Duration::from_millis(sim.random(3500));
        sim.run_for(Duration::from_secs(5) + phase)
            .unwrap_or_else(|v| panic!("{v}"));
        let at = sim.now();
        let trace_from = sim.trace().len();
        let groups = (scenario.fault)(&mut sim);
        let lost = NodeId(scenario.nodes as u32 - 1);
        let ok = sim
            .run_until(Duration::from_secs(120), |s| {
                groups
                    .iter()
                    .any(|g| s.formed(*g) && s.running_on("pkg").iter().any(|n| g.contains(n)))
            })
            .unwrap_or_else(|v| panic!("{}: {v}", scenario.name));
        assert!(ok, "{}: seed {seed} did not recover", scenario.name);
        let survivors = groups
            .iter()
            .copied()
            .find(|g| sim.formed(*g))
            .unwrap_or_default();
        let installs: Vec<Duration> = sim.trace()[trace_from..]
            .iter()
            .filter(|r| {
                survivors.contains(r.node)
                    && matches!(r.event, Event::MembershipChanged { after, .. } if after == survivors)
            })
            .map(|r| r.at - at)
            .collect();
        detection.push(
            installs
                .iter()
                .min()
                .copied()
                .unwrap_or_default()
                .as_secs_f64(),
        );
        reformation.push(
            installs
                .iter()
                .max()
                .copied()
                .unwrap_or_default()
                .as_secs_f64(),
        );
        // The package moved only when its node lost.
        if !survivors.contains(lost) {
            takeover.push((sim.now() - at).as_secs_f64());
        }
    }
    println!(
        "{} ({} seeds): {}; {}; {} ({} takeovers)",
        scenario.name,
        seeds,
        report("detection", detection),
        report("re-formation", reformation),
        report("takeover", takeover.clone()),
        takeover.len()
    );
}

fn crash_last(sim: &mut Simulation) -> Vec<NodeSet> {
    let nodes = sim.catalog().capacities.len();
    sim.crash(NodeId(nodes as u32 - 1));
    vec![NodeSet::first(nodes - 1)]
}

fn isolate_last(sim: &mut Simulation) -> Vec<NodeSet> {
    let nodes = sim.catalog().capacities.len();
    let rest = NodeSet::first(nodes - 1);
    let last = set(&[nodes as u32 - 1]);
    sim.partition(&[rest, last]);
    // Two nodes: either wins the lock.
    if nodes == 2 {
        vec![rest, last]
    } else {
        vec![rest]
    }
}

fn deafen_last(sim: &mut Simulation) -> Vec<NodeSet> {
    let nodes = sim.catalog().capacities.len() as u32;
    for other in 0..nodes - 1 {
        sim.cut_oneway(NodeId(other), NodeId(nodes - 1));
    }
    vec![NodeSet::first(nodes as usize - 1)]
}

fn freeze_last(sim: &mut Simulation) -> Vec<NodeSet> {
    let nodes = sim.catalog().capacities.len();
    sim.freeze(NodeId(nodes as u32 - 1));
    vec![NodeSet::first(nodes - 1)]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run small then.
    let full = std::env::args().any(|a| a == "--bench");
    let seeds = std::env::var("TIMING_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if full { 200 } else { 3 });
    let scenarios = [
        Scenario {
            name: "scenario 1, crash, 3 nodes",
            nodes: 3,
            tiebreaker: Tiebreaker::None,
            fault: crash_last,
        },
        Scenario {
            name: "scenario 7, partition 2|1",
            nodes: 3,
            tiebreaker: Tiebreaker::None,
            fault: isolate_last,
        },
        Scenario {
            name: "scenario 9, 2-node split, lock LUN",
            nodes: 2,
            tiebreaker: Tiebreaker::LockLun,
            fault: isolate_last,
        },
        Scenario {
            name: "scenario 10, 2-node split, quorum server",
            nodes: 2,
            tiebreaker: Tiebreaker::QuorumServer,
            fault: isolate_last,
        },
        Scenario {
            name: "scenario 17, deaf node, 3 nodes",
            nodes: 3,
            tiebreaker: Tiebreaker::None,
            fault: deafen_last,
        },
        Scenario {
            name: "scenario 33, frozen node, 3 nodes",
            nodes: 3,
            tiebreaker: Tiebreaker::None,
            fault: freeze_last,
        },
        Scenario {
            name: "crash, 8 nodes",
            nodes: 8,
            tiebreaker: Tiebreaker::None,
            fault: crash_last,
        },
    ];
    for scenario in &scenarios {
        run(scenario, seeds);
    }
}
