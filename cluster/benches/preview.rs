//! The cost of a `-t` preview (cmrunpkg, cmhaltpkg, cmmodpkg): what the daemon spends on the
//! admin connection's thread for one PreviewPackageCommands, with the largest cluster the
//! configuration allows (MAX_CONFIGURED_PACKAGES 300 on 16 nodes, one package in three
//! depending on the one before). Each command is followed by the cluster's placement, so the
//! cost grows with the commands and with what each one sets moving. Prints the median of a
//! few runs of each case (BENCHMARKS.md records them).
//!
//! `cargo bench -p cimguard-cluster --bench preview`

use std::time::{Duration, Instant};

use cimguard_cluster::core::{NodeId, NodeSet};
use cimguard_cluster::packages::{Command, PackageId};
use cimguard_cluster::sim::{Options, Simulation};

const NODES: usize = 16;
const PACKAGES: u32 = 300;

fn cluster() -> Simulation {
    let mut options = Options::new(NODES, 5);
    for p in 0..PACKAGES as usize {
        let mut text = format!("package_name p{p:03}\nauto_run no\n");
        for n in 0..NODES {
            text.push_str(&format!("node_name n{}\n", (p + n) % NODES + 1));
        }
        if p % 3 == 0 && p > 0 {
            text.push_str(&format!(
                "dependency_name d\ndependency_condition p{:03} = up\n\
                 dependency_location any_node\n",
                p - 1
            ));
        }
        text.push_str("service_name s\nservice_cmd /bin/s\n");
        options.packages.push(text);
    }
    let mut sim = Simulation::new(options);
    sim.start_all();
    let formed = sim
        .run_until(Duration::from_secs(120), |s| {
            s.formed(NodeSet::first(NODES))
        })
        .expect("no invariant broken");
    assert!(formed, "the cluster formed");
    sim.run_for(Duration::from_secs(5))
        .expect("no invariant broken");
    sim
}

fn median(sim: &mut Simulation, commands: &[Command]) -> (Duration, usize) {
    let mut times = Vec::new();
    let mut actions = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let planned = sim.preview(NodeId(0), commands);
        times.push(started.elapsed());
        actions = planned.map_or(0, |p| p.planned.len());
    }
    times.sort();
    (times[times.len() / 2], actions)
}

fn main() {
    let mut sim = cluster();
    let package = PackageId;
    // cmmodpkg -e -n for every node and package: 4,800 commands, nothing starts.
    let switching: Vec<Command> = (0..PACKAGES * NODES as u32)
        .map(|i| Command::Enable {
            package: package(i % PACKAGES),
            node: Some(NodeId(i / PACKAGES)),
        })
        .collect();
    // cmmodpkg -e of every package (each starts), then cmhaltpkg of every one, dependents
    // first: 600 commands, each moving one package.
    let mut cycle: Vec<Command> = (0..PACKAGES)
        .map(|p| Command::Enable {
            package: package(p),
            node: None,
        })
        .collect();
    cycle.extend((0..PACKAGES).rev().map(|p| Command::Halt {
        package: package(p),
        node: None,
    }));
    // The same cycle repeated up to the 4,800 commands a preview takes: the worst case.
    let heavy: Vec<Command> = cycle.iter().cycle().take(4800).copied().collect();
    println!("| preview | commands | actions | median of 5 |");
    println!("|---|---|---|---|");
    for (name, commands) in [
        ("cmmodpkg -e -n, every node and package", &switching),
        ("cmmodpkg -e then cmhaltpkg, every package", &cycle),
        ("that cycle repeated to the limit", &heavy),
    ] {
        let (time, actions) = median(&mut sim, commands);
        println!(
            "| {name} | {} | {actions} | {:.1} ms |",
            commands.len(),
            time.as_secs_f64() * 1000.0
        );
    }
}
