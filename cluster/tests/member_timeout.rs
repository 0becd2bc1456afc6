//! MEMBER_TIMEOUT changed online by cmapplyconf (serviceguard.md 3.1: "Online-changeable").
//! Every node announces the lease and grace it takes with each send time, and lowers them no
//! faster than time passes, so a node lost just after the change is waited for as its own
//! timing says, whichever timing the survivors have in effect. The simulator's checkers
//! stop the run at the first violation: S1 (a failover package starts while the node that
//! ran it may still run it) and S3 (a pet beyond the lease and the grace).

mod common;

use std::time::Duration;

use common::{package, seconds, set};

use cimguard_cluster::core::{NodeId, NodeSet};
use cimguard_cluster::sim::{cluster_file, Options, Simulation};
use cimguard_cluster::timing::Timing;

/// A formed three-node cluster with MEMBER_TIMEOUT `member_timeout`, pkgM running on n1.
fn formed(member_timeout: Duration, seed: u64) -> (Simulation, Options) {
    let mut options = Options::new(3, seed);
    options.member_timeout = member_timeout;
    options.packages = vec![package("pkgM", &[1, 2, 3])];
    let mut sim = Simulation::new(options.clone());
    sim.start_all();
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2]))
            && s.running_on("pkgM") == set(&[0]))
        .unwrap());
    sim.run_for(seconds(5)).unwrap();
    (sim, options)
}

/// The simulator's cluster file with MEMBER_TIMEOUT `timeout`.
fn with_member_timeout(options: &Options, timeout: Duration) -> String {
    cluster_file(options).replace(
        &format!("MEMBER_TIMEOUT {}\n", options.member_timeout.as_micros()),
        &format!("MEMBER_TIMEOUT {}\n", timeout.as_micros()),
    )
}

/// The timing `node` has in effect.
fn timing(sim: &Simulation, node: u32) -> Timing {
    sim.core(NodeId(node)).expect("up").settings().timing
}

/// cmapplyconf of MEMBER_TIMEOUT `timeout` on n2, and the time until every node has it in
/// effect.
fn change(sim: &mut Simulation, options: &Options, timeout: Duration) {
    let generation = sim.generation(NodeId(0)).unwrap();
    let text = with_member_timeout(options, timeout);
    sim.apply(NodeId(1), Some(&text), &options.packages)
        .expect("MEMBER_TIMEOUT changes while the cluster runs");
    assert!(sim
        .run_until(seconds(30), |s| (0..3)
            .all(|n| s.generation(NodeId(n)) > Some(generation)
                && timing(s, n).member_timeout == timeout))
        .unwrap());
}

/// Stops `holder`'s process (its watchdog counts on: only the safety timer ends it, as with
/// a hung daemon), and returns how long the package took to start on one of the other two.
/// The run stops with the checkers' violation if they started it while `holder` could
/// still run it.
fn lose(sim: &mut Simulation, holder: u32) -> Duration {
    let others: Vec<u32> = (0..3).filter(|n| *n != holder).collect();
    sim.pause(NodeId(holder));
    let cut = sim.now();
    taken_over(sim, set(&others), "");
    sim.now() - cut
}

/// Runs until pkgM runs on `survivors` alone; panics (saying `what`) with the checkers'
/// violation, or if that does not happen within three minutes.
fn taken_over(sim: &mut Simulation, survivors: NodeSet, what: &str) {
    let taken = sim
        .run_until(seconds(180), |s| {
            let on = s.running_on("pkgM");
            on != NodeSet::EMPTY && on.difference(survivors).is_empty()
        })
        .unwrap_or_else(|violation| panic!("{what}{violation:?}"));
    assert!(taken, "{what}pkgM was not taken over");
}

#[test]
fn lowered_member_timeout_waits_for_a_node_lost_at_once_as_its_old_timing_says() {
    let (mut sim, options) = formed(Duration::from_secs(14), 41);
    let old = timing(&sim, 0);
    change(&mut sim, &options, Duration::from_secs(3));
    let new = timing(&sim, 1);
    assert!(new.fence_bound_max() < old.fence_bound_max() / 3);
    // n1 goes at once: its heartbeats before and just after the change announced the old
    // lease, and it lowers it only as time passes. The survivors have the new timing, yet
    // wait for n1's safety timer (S1 would stop the run otherwise).
    let first = lose(&mut sim, 0);
    assert!(
        first > new.failover_bound(false),
        "taken over in {first:?}, before n1's old lease could end"
    );
    assert!(first < old.failover_bound(false) + seconds(5), "{first:?}");

    // n1 comes back and joins with the new timing; once the old terms are over, a loss
    // takes the new, shorter time.
    sim.restart(NodeId(0));
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    sim.run_for(old.fence_bound_max()).unwrap();
    let holder = (0..3)
        .find(|n| sim.running_on("pkgM").contains(NodeId(*n)))
        .expect("pkgM runs");
    let second = lose(&mut sim, holder);
    assert!(
        second <= new.failover_bound(false) + seconds(1),
        "taken over in {second:?}; the new timing allows {:?}",
        new.failover_bound(false)
    );
}

#[test]
fn raised_member_timeout_is_waited_for_from_the_first_heartbeat_that_announces_it() {
    let (mut sim, options) = formed(Duration::from_secs(3), 43);
    let old = timing(&sim, 0);
    change(&mut sim, &options, Duration::from_secs(20));
    let new = timing(&sim, 2);
    assert!(new.lease > old.lease * 5);
    // n1 pets with the longer lease as soon as its peers echo it; the survivors wait as
    // long (S1 and S3 watch both).
    let taken = lose(&mut sim, 0);
    assert!(taken > old.failover_bound(false) * 3, "{taken:?}");
    assert!(taken < new.failover_bound(false) + seconds(5), "{taken:?}");
}

#[test]
fn a_node_lost_as_it_takes_the_change_is_waited_for_as_its_timing_says() {
    for (seed, from, to) in [(51, 3, 20), (53, 20, 3), (55, 3, 14), (57, 14, 3)] {
        let (from, to) = (Duration::from_secs(from), Duration::from_secs(to));
        let (mut sim, options) = formed(from, seed);
        let generation = sim.generation(NodeId(0)).unwrap();
        let text = with_member_timeout(&options, to);
        sim.apply(NodeId(1), Some(&text), &options.packages)
            .expect("MEMBER_TIMEOUT changes while the cluster runs");
        // The holder stops the moment it has the new timing in effect: the others may
        // have it yet or not, and its last echoes carry either term.
        assert!(sim
            .run_until(seconds(30), |s| s.generation(NodeId(0)) > Some(generation))
            .unwrap());
        let taken = lose(&mut sim, 0);
        let longer = timing(&sim, 1).failover_bound(false).max(
            Timing::derive(
                &cimguard_cluster::config::cluster::parse(&cluster_file(&options), "c")
                    .unwrap()
                    .config,
                "",
            )
            .unwrap()
            .failover_bound(false),
        );
        assert!(taken < longer + seconds(5), "{from:?} -> {to:?}: {taken:?}");
    }
}

#[test]
fn a_member_timeout_the_watchdog_device_cannot_serve_is_refused() {
    let mut options = Options::new(3, 47);
    options.packages = vec![package("pkgM", &[1, 2, 3])];
    options.pet_horizon_min = cimguard_cluster::runtime::watchdog::DEVICE_HORIZON_MIN;
    let mut sim = Simulation::new(options.clone());
    sim.start_all();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    let before = sim.generation(NodeId(0));
    // The fast profile pets 0.54 s ahead: a device counting whole seconds cannot serve it.
    let fast = with_member_timeout(&options, Duration::from_secs(1));
    let refused = sim
        .apply(NodeId(1), Some(&fast), &options.packages)
        .unwrap_err();
    assert!(refused.to_string().contains("watchdog device"), "{refused}");
    sim.run_for(seconds(5)).unwrap();
    assert_eq!(sim.generation(NodeId(0)), before);
    assert_eq!(timing(&sim, 0).member_timeout, Duration::from_secs(14));
    // 3 s reaches 1.5 s ahead: enough.
    change(&mut sim, &options, Duration::from_secs(3));
}

/// Four nodes with a lock LUN, MEMBER_TIMEOUT lowered from 8 to 6 s: n4 holds pkgM and
/// takes the change, but from then on hears neither n1 (the coordinator) nor n3, so its
/// pets rest on the echo the commit carried, of its acceptance under the old timing. Then
/// n4 hangs and n1 crashes. n2 and n3 must wait for n4's timer by the echoes they sent,
/// whose lease is shorter and grace longer: the end of both must not come earlier.
#[test]
fn a_falling_lease_never_ends_lease_and_grace_earlier() {
    for phase in (0..1000).step_by(50) {
        let mut options = Options::new(4, 200);
        options.member_timeout = Duration::from_secs(8);
        options.tiebreaker = cimguard_cluster::core::Tiebreaker::LockLun;
        options.packages = vec![package("pkgM", &[4, 2, 3, 1])];
        let mut sim = Simulation::new(options.clone());
        sim.start_all();
        assert!(sim
            .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2, 3]))
                && s.running_on("pkgM") == set(&[3]))
            .unwrap());
        sim.run_for(seconds(5) + Duration::from_millis(phase))
            .unwrap();
        let generation = sim.generation(NodeId(3)).unwrap();
        let text = with_member_timeout(&options, Duration::from_secs(6));
        sim.apply(NodeId(1), Some(&text), &options.packages)
            .expect("applied");
        assert!(sim
            .run_until(seconds(30), |s| s.generation(NodeId(3)) > Some(generation))
            .unwrap());
        sim.cut_oneway(NodeId(0), NodeId(3));
        sim.cut_oneway(NodeId(2), NodeId(3));
        sim.run_for(Duration::from_millis(1800))
            .unwrap_or_else(|v| panic!("phase {phase} ms: {v:?}"));
        if sim.life(NodeId(3)) != cimguard_cluster::sim::Life::Up {
            continue;
        }
        sim.pause(NodeId(3));
        sim.crash(NodeId(0));
        taken_over(&mut sim, set(&[1, 2]), &format!("phase {phase} ms: "));
    }
}

/// A member that lies (or a damaged heartbeat that passed the seal) echoes a send time this
/// node never made, with a huge term: the echo is dropped, and an echo of a real send time
/// counts with no wider a term than the node announced. Its safety timer stays where the
/// echoes of its own announcements put it (S3 checks each pet against those).
#[test]
fn a_forged_echo_cannot_push_the_safety_timer_out() {
    use cimguard_cluster::core::{Echo, Instant, Term};
    let mut options = Options::new(3, 7);
    options.packages = vec![package("pkgM", &[1, 2, 3])];
    let mut sim = Simulation::new(options);
    sim.start_all();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    for at in [Instant(u64::MAX / 4), Instant(1)] {
        let view = sim.core(NodeId(0)).unwrap().view().clone();
        let envelope =
            common::forged_heartbeat(&sim, (1, 0), (view.epoch, view.members), |heartbeat| {
                heartbeat.sequence = 1 << 40;
                heartbeat.echo = Some(Echo {
                    at,
                    term: Term {
                        lease: seconds(11),
                        grace: seconds(500),
                    },
                });
            });
        sim.forge(NodeId(0), 0, envelope);
        sim.run_for(seconds(2))
            .unwrap_or_else(|v| panic!("echo of {at:?}: {v:?}"));
    }
}
