//! cmapplyconf adding a node to the running cluster, in the simulator: the node's daemon runs
//! unconfigured (n4, deleted from the cluster with it halted), takes the generation over the
//! configuration exchange once the cluster put it in effect, and joins with cmrunnode. The
//! node the command is given on may fail at any point: the members keep one generation, and
//! the same cmapplyconf given again on another member configures a node that missed it.

mod common;

use common::{await_answer, enrolment_outcome, files_without_n4, package, seconds, set};

use cimguard_cluster::core::{Event, NodeId, NodeSet, Phase, Taken};
use cimguard_cluster::packages::Command;
use cimguard_cluster::sim::{Options, Simulation};

/// A cluster of n1..n3 running pkgM, n4's daemon unconfigured (the cluster of four had it
/// deleted with the cluster halted).
fn three_and_n4_unconfigured(seed: u64) -> (Simulation, Options) {
    three_and_the_rest_unconfigured(4, seed)
}

/// A cluster of n1..n3 running pkgM, the daemons of the other `hosts` unconfigured (the
/// cluster of all of them had them deleted with the cluster halted).
fn three_and_the_rest_unconfigured(hosts: usize, seed: u64) -> (Simulation, Options) {
    let mut options = Options::new(hosts, seed);
    options.packages = vec![package("pkgM", &[1, 2, 3])];
    let mut sim = Simulation::new(options.clone());
    sim.start_all();
    let all: Vec<u32> = (0..hosts as u32).collect();
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&all)))
        .unwrap());
    sim.halt_cluster(NodeId(0), true).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| all.iter().all(|&n| halted(s, n)))
        .unwrap());
    // Until no node hears the cluster run any more.
    sim.run_for(seconds(30)).unwrap();
    let (_, without_n4) = files_without_n4(&options);
    let since = sim.trace().len();
    let given = sim.apply(NodeId(0), Some(&without_n4), &[package("pkgM", &[1, 2, 3])]);
    let Ok(Taken::Forwarded(serial)) = given else {
        panic!("{given:?}");
    };
    let serial = (serial, since);
    assert_eq!(await_answer(&mut sim, 0, serial, seconds(10)), (None, None));
    // Each in its new life, numbered as the three.
    assert!(sim
        .run_until(seconds(20), |s| (0..3).all(
            |n| halted(s, n) && s.core(NodeId(n)).is_some_and(|c| c.settings().nodes == 3)
        ) && all[3..]
            .iter()
            .all(|&n| s.unconfigured(NodeId(n))))
        .unwrap());
    sim.run_cluster(NodeId(0), NodeSet::first(3)).unwrap();
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2]))
            && !s.running_on("pkgM").is_empty())
        .unwrap());
    // pkgM started (a change waits while it starts).
    sim.run_for(seconds(10)).unwrap();
    (sim, options)
}

fn halted(sim: &Simulation, node: u32) -> bool {
    sim.core(NodeId(node))
        .is_some_and(|c| c.phase() == Phase::Halted)
}

/// cmapplyconf of the four nodes (pkgM on all four) given on running `node`: its serial, and
/// where the trace stood.
fn add_n4(sim: &mut Simulation, options: &Options, node: u32) -> (u64, usize) {
    let since = sim.trace().len();
    let (four, _) = files_without_n4(options);
    let given = sim.apply(NodeId(node), Some(&four), &[package("pkgM", &[1, 2, 3, 4])]);
    let Ok(Taken::Forwarded(serial)) = given else {
        panic!("an addition is answered later: {given:?}");
    };
    (serial, since)
}

/// Waits (at most 5 s) until `node` reforms after trace record `since`: the change given
/// there rides on a proposal.
fn wait_reforming(sim: &mut Simulation, node: u32, since: usize) {
    assert!(sim
        .run_until(seconds(5), |s| s.trace().iter().skip(since).any(|r| {
            r.node == NodeId(node)
                && matches!(
                    r.event,
                    Event::PhaseChanged {
                        after: Phase::Reforming,
                        ..
                    }
                )
        }))
        .unwrap());
}

/// A member that does not coordinate.
fn not_coordinating(sim: &Simulation) -> u32 {
    let coordinator = sim
        .status(NodeId(0))
        .and_then(|s| s.coordinator)
        .expect("a coordinator");
    (0..3)
        .find(|&n| NodeId(n) != coordinator)
        .expect("a member")
}

#[test]
fn a_node_added_while_the_cluster_runs_takes_the_generation_and_joins_with_cmrunnode() {
    let (mut sim, options) = three_and_n4_unconfigured(41);
    let before = sim.generation(NodeId(0)).unwrap();
    let owner = sim.running_on("pkgM");
    let epoch = sim.core(NodeId(0)).unwrap().view().epoch;
    let giver = not_coordinating(&sim);
    let serial = add_n4(&mut sim, &options, giver);
    assert_eq!(
        await_answer(&mut sim, giver, serial, seconds(60)),
        (None, None)
    );
    // In effect on every member, which number n4 after themselves; pkgM did not move.
    for n in 0..3 {
        let core = sim.core(NodeId(n)).unwrap();
        assert_eq!(core.phase(), Phase::Running);
        assert_eq!(core.settings().nodes, 4);
        assert_eq!(sim.generation(NodeId(n)), Some(before + 1));
    }
    assert_eq!(sim.running_on("pkgM"), owner);
    assert!(sim.core(NodeId(0)).unwrap().view().epoch > epoch);
    // n4 starts again as a node of the cluster, halted, its promise above the cluster's.
    assert!(sim.run_until(seconds(10), |s| halted(s, 3)).unwrap());
    assert_eq!(sim.generation(NodeId(3)), Some(before + 1));
    assert!(sim.persisted(NodeId(3)).epoch_max >= epoch);
    sim.run_for(seconds(20)).unwrap();
    assert!(halted(&sim, 3));
    assert!((0..3).all(|n| sim.members(NodeId(n)) == set(&[0, 1, 2])));

    // cmrunnode there joins it.
    sim.run_node_command(NodeId(3)).unwrap();
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2, 3])))
        .unwrap());
    assert_eq!(sim.running_on("pkgM"), owner);
    assert_eq!(sim.watchdog_resets, 0);
}

#[test]
fn a_node_to_add_that_is_down_is_named_and_nothing_is_applied() {
    let (mut sim, options) = three_and_n4_unconfigured(43);
    let before = sim.generation(NodeId(0)).unwrap();
    sim.crash(NodeId(3));
    let serial = add_n4(&mut sim, &options, 0);
    let (refusal, _) = await_answer(&mut sim, 0, serial, seconds(30));
    let refusal = refusal.expect("refused");
    assert!(
        refusal.contains("n4 did not answer") && refusal.ends_with("nothing was applied"),
        "{refusal}"
    );
    for n in 0..3 {
        assert_eq!(sim.generation(NodeId(n)), Some(before));
        assert_eq!(sim.core(NodeId(n)).unwrap().settings().nodes, 3);
    }
}

/// The node the addition is given on crashes `after` into it. Whatever it had done by then,
/// the members keep one generation, and either n4 took it or it did not take effect; a
/// generation in effect without n4 configured is mended by the same cmapplyconf given on
/// another member.
fn giver_crashes(seed: u64, after: std::time::Duration) {
    let (mut sim, options) = three_and_n4_unconfigured(seed);
    let before = sim.generation(NodeId(0)).unwrap();
    let giver = not_coordinating(&sim);
    add_n4(&mut sim, &options, giver);
    sim.run_for(after).unwrap();
    sim.crash(NodeId(giver));
    let others: Vec<u32> = (0..3).filter(|&n| n != giver).collect();
    assert!(sim
        .run_until(seconds(120), |s| {
            let members: NodeSet = others.iter().map(|&n| NodeId(n)).collect();
            others.iter().all(|&n| s.members(NodeId(n)) == members)
        })
        .unwrap());
    // n4's offer, if any, expires; a commit it took has started its configured life.
    sim.run_for(seconds(20)).unwrap();
    let generations: Vec<Option<u64>> = others.iter().map(|&n| sim.generation(NodeId(n))).collect();
    assert!(
        generations.windows(2).all(|w| w[0] == w[1]),
        "{generations:?}"
    );
    let in_effect = generations[0].unwrap();
    if in_effect == before {
        // Not applied: n4 is still unconfigured.
        assert!(sim.unconfigured(NodeId(3)), "after {after:?}");
        return;
    }
    assert_eq!(in_effect, before + 1, "after {after:?}");
    let other = others[0];
    if sim.unconfigured(NodeId(3)) {
        // The generation is in effect, but n4 missed it: given again, n4 takes it.
        let serial = add_n4(&mut sim, &options, other);
        let (refusal, warning) = await_answer(&mut sim, other, serial, seconds(30));
        assert_eq!(refusal, None);
        assert!(
            warning
                .as_deref()
                .is_some_and(|w| w.contains("n4 took generation")),
            "{warning:?}"
        );
    }
    assert!(
        sim.run_until(seconds(10), |s| halted(s, 3)).unwrap(),
        "after {after:?}"
    );
    assert_eq!(sim.generation(NodeId(3)), Some(in_effect));
    sim.run_node_command(NodeId(3)).unwrap();
    let mut joined: Vec<u32> = others.clone();
    joined.push(3);
    assert!(
        sim.run_until(seconds(120), |s| s.formed(set(&joined)))
            .unwrap(),
        "after {after:?}"
    );
    // The same files again change nothing; the giver, down, is told as not reached.
    let serial = add_n4(&mut sim, &options, other);
    let (refusal, warning) = await_answer(&mut sim, other, serial, seconds(30));
    assert_eq!(refusal, None);
    let giver_name = format!("n{}", giver + 1);
    assert!(
        warning
            .as_deref()
            .is_some_and(|w| w.contains("not reached") && w.contains(&giver_name)),
        "{warning:?}"
    );
    let outcome = enrolment_outcome(&sim, other, serial.0);
    assert!(outcome.unchanged && outcome.took.is_empty(), "{outcome:?}");
    assert_eq!(outcome.not_reached.len(), 1, "{outcome:?}");
}

/// How the addition `serial` given on `node` ended.
#[test]
fn a_node_added_that_goes_down_before_it_takes_the_generation_takes_it_when_given_again() {
    let (mut sim, options) = three_and_n4_unconfigured(47);
    let before = sim.generation(NodeId(0)).unwrap();
    let serial = add_n4(&mut sim, &options, 1);
    // n4 took the check (the change rides on a proposal: the giver reforms); it goes down
    // before the cluster put the change in effect.
    wait_reforming(&mut sim, 1, serial.1);
    sim.crash(NodeId(3));
    let (refusal, warning) = await_answer(&mut sim, 1, serial, seconds(60));
    assert_eq!(refusal, None, "in effect in the cluster");
    let warning = warning.expect("n4 named");
    assert!(
        warning.contains("n4 did not answer")
            && warning.contains("give the same cmapplyconf again"),
        "{warning}"
    );
    assert_eq!(enrolment_outcome(&sim, 1, serial.0).not_configured, ["n4"]);
    for n in 0..3 {
        assert_eq!(sim.generation(NodeId(n)), Some(before + 1));
    }

    // Given again while n4 is down: nothing changes, and n4 is told as not reached.
    let again = add_n4(&mut sim, &options, 2);
    let (refusal, warning) = await_answer(&mut sim, 2, again, seconds(30));
    assert_eq!(refusal, None);
    assert!(
        warning
            .as_deref()
            .is_some_and(|w| w.contains("not reached") && w.contains("n4")),
        "{warning:?}"
    );
    let told = enrolment_outcome(&sim, 2, again.0);
    assert!(told.unchanged && told.not_configured.is_empty(), "{told:?}");

    // n4's cmcld runs again, unconfigured: given again, n4 takes it and joins.
    sim.restart(NodeId(3));
    assert!(sim.unconfigured(NodeId(3)));
    let third = add_n4(&mut sim, &options, 0);
    let (refusal, warning) = await_answer(&mut sim, 0, third, seconds(30));
    assert_eq!(refusal, None);
    assert!(
        warning
            .as_deref()
            .is_some_and(|w| w.contains("n4 took generation")),
        "{warning:?}"
    );
    assert_eq!(enrolment_outcome(&sim, 0, third.0).took, ["n4"]);
    assert!(sim.run_until(seconds(10), |s| halted(s, 3)).unwrap());
    sim.run_node_command(NodeId(3)).unwrap();
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2, 3])))
        .unwrap());
}

#[test]
fn an_addition_is_given_again_in_the_next_membership_when_the_coordinator_dies() {
    let (mut sim, options) = three_and_n4_unconfigured(53);
    let before = sim.generation(NodeId(0)).unwrap();
    let coordinator = sim
        .status(NodeId(0))
        .and_then(|s| s.coordinator)
        .expect("a coordinator");
    let giver = not_coordinating(&sim);
    // pkgM halted first: its failover would refuse the change given again.
    let pkg_m = sim.package("pkgM");
    sim.command(
        NodeId(giver),
        Command::Halt {
            package: pkg_m,
            node: None,
        },
    )
    .unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("pkgM").is_empty())
        .unwrap());
    sim.run_for(seconds(5)).unwrap();
    let serial = add_n4(&mut sim, &options, giver);
    // The coordinator dies as the change reaches it.
    sim.run_for(std::time::Duration::from_millis(2)).unwrap();
    sim.crash(coordinator);
    assert_eq!(
        await_answer(&mut sim, giver, serial, seconds(60)),
        (None, None)
    );
    assert_eq!(sim.generation(NodeId(giver)), Some(before + 1));
    assert!(sim.run_until(seconds(10), |s| halted(s, 3)).unwrap());
}

#[test]
fn the_giver_may_crash_at_any_point_of_an_addition() {
    // Through the exchange's first round trip, the proposal and its commit, and the second.
    let early = [
        0, 100, 200, 300, 500, 700, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000,
    ];
    let later = (1..40).map(|step| step * 100_000);
    for (seed, micros) in early.into_iter().chain(later).enumerate() {
        giver_crashes(100 + seed as u64, std::time::Duration::from_micros(micros));
    }
}

#[test]
fn of_two_nodes_added_one_that_goes_down_before_the_last_step_is_named_and_the_other_joins() {
    // Five hosts; n4 and n5 deleted with the cluster halted, then added while it runs.
    let (mut sim, options) = three_and_the_rest_unconfigured(5, 59);
    let text = cimguard_cluster::sim::cluster_file(&options);
    let before = sim.generation(NodeId(0)).unwrap();

    // Both added; n5 goes down once both took the check.
    let since = sim.trace().len();
    let Ok(Taken::Forwarded(serial)) =
        sim.apply(NodeId(1), Some(&text), &[package("pkgM", &[1, 2, 3])])
    else {
        panic!("an addition is answered later");
    };
    let serial = (serial, since);
    wait_reforming(&mut sim, 1, since);
    sim.crash(NodeId(4));
    let (refusal, warning) = await_answer(&mut sim, 1, serial, seconds(60));
    assert_eq!(refusal, None);
    let warning = warning.expect("n5 named");
    assert!(
        warning.contains("n5 did not answer") && !warning.contains("n4"),
        "{warning}"
    );
    let told = enrolment_outcome(&sim, 1, serial.0);
    assert_eq!(told.took, ["n4"]);
    assert_eq!(told.not_configured, ["n5"]);
    for n in 0..3 {
        assert_eq!(sim.generation(NodeId(n)), Some(before + 1));
        assert_eq!(sim.core(NodeId(n)).unwrap().settings().nodes, 5);
    }
    // n4 joins; the cluster runs with n5 configured and down.
    assert!(sim.run_until(seconds(10), |s| halted(s, 3)).unwrap());
    sim.run_node_command(NodeId(3)).unwrap();
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2, 3])))
        .unwrap());
    assert_eq!(sim.watchdog_resets, 0);
}

#[test]
fn a_node_down_while_another_is_added_and_deleted_takes_the_generation_when_it_starts_again() {
    let (mut sim, options) = three_and_n4_unconfigured(71);
    let before = sim.generation(NodeId(0)).unwrap();
    sim.crash(NodeId(2));
    assert!(sim
        .run_until(seconds(60), |s| (0..2)
            .all(|n| s.members(NodeId(n)) == set(&[0, 1])))
        .unwrap());
    // n4 added while n3 is down, then deleted again (halted, it never ran).
    let serial = add_n4(&mut sim, &options, 0);
    assert_eq!(await_answer(&mut sim, 0, serial, seconds(60)).0, None);
    assert!(sim.run_until(seconds(10), |s| halted(s, 3)).unwrap());
    let (_, three) = files_without_n4(&options);
    let since = sim.trace().len();
    let Ok(Taken::Forwarded(serial)) =
        sim.apply(NodeId(1), Some(&three), &[package("pkgM", &[1, 2, 3])])
    else {
        panic!("a deletion is answered later");
    };
    assert_eq!(
        await_answer(&mut sim, 1, (serial, since), seconds(60)).0,
        None
    );
    assert!(sim
        .run_until(seconds(10), |s| s.unconfigured(NodeId(3)))
        .unwrap());
    let in_effect = sim.generation(NodeId(0));
    assert_eq!(in_effect, Some(before + 2));

    // n3 starts again from the generation before both, in which n4 has no number: it takes
    // the one in effect, where n4's number is kept, unused, and joins.
    sim.restart(NodeId(2));
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    assert_eq!(sim.generation(NodeId(2)), in_effect);
    let settings = sim.core(NodeId(2)).unwrap().settings();
    assert!(settings.config.nodes[3].deleted);
    assert_eq!(settings.configured(), set(&[0, 1, 2]));
    assert!(sim.unconfigured(NodeId(3)));
    assert_eq!(sim.watchdog_resets, 0);
}

/// cmrunnode NODE given on a member as soon as the addition is answered: the added node may
/// still be between its unconfigured daemon and its new life, which the first word to start
/// does not reach. It is told again until it is heard starting, and joins.
#[test]
fn cmrunnode_given_on_a_member_as_soon_as_the_addition_is_answered_joins_the_node() {
    let (mut sim, options) = three_and_n4_unconfigured(43);
    let giver = not_coordinating(&sim);
    let serial = add_n4(&mut sim, &options, giver);
    assert_eq!(
        await_answer(&mut sim, giver, serial, seconds(60)),
        (None, None)
    );
    assert!(sim.configured_soon(NodeId(3)), "n4 not between lives");
    sim.run_other_node(NodeId(giver), NodeId(3)).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[0, 1, 2, 3])))
        .unwrap());
}
