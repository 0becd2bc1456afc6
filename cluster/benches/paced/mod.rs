//! The timing loop the command benches share: a 3-node simulated cluster with one package,
//! commands a moment apart (not in step with the heartbeats), each timed in simulated time,
//! and the mean and the largest printed for each MEMBER_TIMEOUT.

use std::time::Duration;

use cimguard_cluster::core::NodeSet;
use cimguard_cluster::sim::{Options, Simulation};

/// A 3-node cluster at `member_timeout` with `package` (its file), formed, `ready` holding,
/// and 5 s more run.
pub fn cluster(
    member_timeout: Duration,
    package: &str,
    ready: impl Fn(&Simulation) -> bool,
) -> Simulation {
    let mut options = Options::new(3, 5);
    options.member_timeout = member_timeout;
    options.packages = vec![package.into()];
    let mut sim = Simulation::new(options);
    sim.start_all();
    let formed = sim
        .run_until(Duration::from_secs(120), |s| {
            s.formed(NodeSet::first(3)) && ready(s)
        })
        .expect("no invariant broken");
    assert!(formed, "the cluster formed");
    sim.run_for(Duration::from_secs(5))
        .expect("no invariant broken");
    sim
}

/// Runs `count` commands: `one(sim, i)` gives the i-th and returns how long it took; the
/// next comes a moment later. The mean and the largest.
pub fn measure(
    sim: &mut Simulation,
    count: u32,
    mut one: impl FnMut(&mut Simulation, u32) -> Duration,
) -> (Duration, Duration) {
    let (mut total, mut longest) = (Duration::ZERO, Duration::ZERO);
    for i in 0..count {
        let took = one(sim, i);
        total += took;
        longest = longest.max(took);
        // Commands a moment apart, not in step with the heartbeats.
        sim.run_for(Duration::from_millis(137 + 61 * u64::from(i)))
            .expect("no invariant broken");
    }
    (total / count, longest)
}

/// Prints `what` with the mean and the largest of `run` at the default MEMBER_TIMEOUT (14 s)
/// and at 3 s.
pub fn report(what: &str, run: impl Fn(Duration) -> (Duration, Duration)) {
    for seconds in [14, 3] {
        let (mean, longest) = run(Duration::from_secs(seconds));
        println!(
            "MEMBER_TIMEOUT {seconds} s: {what} {:.2} ms mean, {:.2} ms at most",
            mean.as_secs_f64() * 1000.0,
            longest.as_secs_f64() * 1000.0
        );
    }
}
