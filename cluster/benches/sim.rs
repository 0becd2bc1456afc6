//! How fast the membership core and the simulator run: core events (inputs handled) per
//! wall second, and simulated seconds per wall second, for a steady cluster and for the
//! randomized fault runs of the test suite. Prints its figures (BENCHMARKS.md records them).
//!
//! `cargo bench -p cimguard-cluster --bench sim` (SIM_BENCH_SEEDS sets the randomized seed
//! count, 2,000 by default).

use std::time::{Duration, Instant};

use cimguard_cluster::core::{NodeSet, Sabotage};
use cimguard_cluster::sim::{random, Options, Simulation};

fn steady(nodes: usize, simulated: Duration) {
    let mut options = Options::new(nodes, 1);
    options.packages = (0..3)
        .map(|p| format!("package_name pkg{p}\nservice_name s\nservice_cmd /bin/s\n"))
        .collect();
    let mut sim = Simulation::new(options);
    sim.start_all();
    let formed = sim
        .run_until(Duration::from_secs(60), |s| s.formed(NodeSet::first(nodes)))
        .unwrap_or(false);
    assert!(formed, "the cluster did not form");
    let steps = sim.steps;
    let start = Instant::now();
    sim.run_for(simulated).unwrap_or_else(|v| panic!("{v}"));
    let wall = start.elapsed().as_secs_f64();
    let events = (sim.steps - steps) as f64;
    println!(
        "steady, {nodes} nodes, 2 networks, MEMBER_TIMEOUT 14 s, 3 packages: {:.0} simulated s in \
         {wall:.3} s: {:.0} simulated s per wall s, {:.0} core events per s",
        simulated.as_secs_f64(),
        simulated.as_secs_f64() / wall,
        events / wall
    );
}

fn randomized(seeds: u64) {
    let start = Instant::now();
    let mut steps = 0;
    let mut simulated = 0.0;
    let mut faults = 0;
    for seed in 0..seeds {
        let summary = random::run(seed, Sabotage::default()).unwrap_or_else(|v| panic!("{v}"));
        steps += summary.steps;
        simulated += summary.simulated.as_secs_f64();
        faults += summary.faults;
    }
    let wall = start.elapsed().as_secs_f64();
    println!(
        "randomized, {seeds} seeds ({faults} faults): {wall:.2} s, {:.0} seeds per s, {:.0} \
         simulated s per wall s, {:.0} core events per s",
        seeds as f64 / wall,
        simulated / wall,
        steps as f64 / wall
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run small then.
    let full = std::env::args().any(|a| a == "--bench");
    let seeds = std::env::var("SIM_BENCH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if full { 2000 } else { 20 });
    let hour = if full { 3600 } else { 60 };
    for nodes in [3, 8, 16] {
        steady(nodes, Duration::from_secs(hour));
    }
    randomized(seeds);
}
