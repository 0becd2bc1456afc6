//! cmapplyconf deleting a node from the running cluster, in the simulator: the node must be
//! out of the cluster (halted or down); it keeps its number, unused, until the cluster is
//! halted; the members stop counting it at once; and the node given the command tells it,
//! over the control channel, so that it goes on unconfigured. One that was down is told
//! when the same cmapplyconf is given again.

mod common;

use common::{await_answer, enrolment_outcome, files_without_n4, package, seconds, set};

use cimguard_cluster::core::{NodeId, Phase, Taken};
use cimguard_cluster::packages::Refusal;
use cimguard_cluster::sim::{Options, Simulation};

/// A running cluster of n1..n4, pkgM on n1..n3.
fn four_running(seed: u64) -> (Simulation, Options) {
    let mut options = Options::new(4, seed);
    options.packages = vec![package("pkgM", &[1, 2, 3])];
    let mut sim = Simulation::new(options.clone());
    sim.start_all();
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2, 3]))
            && !s.running_on("pkgM").is_empty())
        .unwrap());
    // pkgM started (a change waits while it starts).
    sim.run_for(seconds(10)).unwrap();
    (sim, options)
}

fn phase(sim: &Simulation, node: u32) -> Option<Phase> {
    sim.core(NodeId(node)).map(|c| c.phase())
}

/// cmapplyconf of n1..n3 (n4 deleted) given on running `node`: its serial and where the
/// trace stood, or the refusal given at once.
fn delete_n4(sim: &mut Simulation, options: &Options, node: u32) -> Result<(u64, usize), Refusal> {
    let since = sim.trace().len();
    let (_, three) = files_without_n4(options);
    match sim.apply(NodeId(node), Some(&three), &[package("pkgM", &[1, 2, 3])])? {
        Taken::Forwarded(serial) => Ok((serial, since)),
        other => panic!("a deletion is answered later: {other:?}"),
    }
}

/// Whether every member numbers n4 as deleted, and none shows it.
fn deleted_everywhere(sim: &Simulation) -> bool {
    (0..3).all(|n| {
        let Some(core) = sim.core(NodeId(n)) else {
            return false;
        };
        let settings = core.settings();
        settings.nodes == 4
            && settings.config.nodes[3].deleted
            && settings.configured() == set(&[0, 1, 2])
            && sim
                .status(NodeId(n))
                .is_some_and(|s| s.nodes.iter().all(|row| row.name != "n4"))
    })
}

/// cmhaltcl on n1: every one of the first `nodes` nodes halted, heard running by none.
fn halt_all(sim: &mut Simulation, nodes: u32) {
    sim.halt_cluster(NodeId(0), true).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| (0..nodes)
            .all(|n| phase(s, n) == Some(Phase::Halted)))
        .unwrap());
    sim.run_for(seconds(30)).unwrap();
}

/// cmapplyconf of `file` (pkgM on n1..n3) on n1, the cluster halted: answered without a
/// refusal, and the first `kept` nodes start again halted, numbered anew as `file` numbers
/// them (and `also` holds).
fn apply_halted(sim: &mut Simulation, file: &str, kept: u32, also: impl Fn(&Simulation) -> bool) {
    let since = sim.trace().len();
    let Ok(Taken::Forwarded(serial)) =
        sim.apply(NodeId(0), Some(file), &[package("pkgM", &[1, 2, 3])])
    else {
        panic!("a halted cmapplyconf is answered later");
    };
    assert_eq!(await_answer(sim, 0, (serial, since), seconds(10)).0, None);
    assert!(sim
        .run_until(seconds(20), |s| also(s)
            && (0..kept).all(|n| phase(s, n) == Some(Phase::Halted)
                && s.core(NodeId(n))
                    .is_some_and(|c| c.settings().nodes == kept as usize)))
        .unwrap());
}

#[test]
fn a_halted_node_deleted_while_the_cluster_runs_keeps_its_number_and_goes_on_unconfigured() {
    let (mut sim, options) = four_running(61);
    // Deleting a member is refused, saying what to do.
    let refused = delete_n4(&mut sim, &options, 1).expect_err("n4 runs");
    assert_eq!(refused, Refusal::DeletesMember { node: "n4".into() });
    assert!(refused.to_string().contains("cmhaltnode n4"), "{refused}");

    sim.halt_node(NodeId(3), false).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| phase(s, 3) == Some(Phase::Halted)
            && (0..3).all(|n| s.members(NodeId(n)) == set(&[0, 1, 2])))
        .unwrap());
    let before = sim.generation(NodeId(0)).unwrap();
    let owner = sim.running_on("pkgM");
    let serial = delete_n4(&mut sim, &options, 1).expect("n4 is halted");
    assert_eq!(await_answer(&mut sim, 1, serial, seconds(60)), (None, None));
    assert!(deleted_everywhere(&sim));
    for n in 0..3 {
        assert_eq!(sim.generation(NodeId(n)), Some(before + 1));
        assert_eq!(phase(&sim, n), Some(Phase::Running));
    }
    assert_eq!(sim.running_on("pkgM"), owner);
    // n4 took it and goes on unconfigured, its promise kept with the generation that
    // deleted it.
    assert!(sim
        .run_until(seconds(10), |s| s.unconfigured(NodeId(3)))
        .unwrap());
    let kept = sim.persisted(NodeId(3)).config.clone().expect("kept");
    assert!(kept.cluster.nodes[3].deleted && kept.cluster.node("n4").is_none());
    // The same files again: nothing changes, and n4, unconfigured, refuses the offer it is
    // sent over the exchange (told already: passed over).
    let again = delete_n4(&mut sim, &options, 2).expect("nothing to change");
    assert_eq!(await_answer(&mut sim, 2, again, seconds(30)), (None, None));
    let nothing = enrolment_outcome(&sim, 2, again.0);
    assert!(
        nothing.unchanged && nothing.not_reached.is_empty(),
        "{nothing:?}"
    );

    // A node deleted while the cluster ran is added again with the cluster halted only.
    let (four, three) = files_without_n4(&options);
    let again = sim.apply(NodeId(0), Some(&four), &[package("pkgM", &[1, 2, 3])]);
    assert!(
        matches!(&again, Err(Refusal::NeedsHaltedCluster { parameters })
            if parameters.iter().any(|p| p.contains("added again"))),
        "{again:?}"
    );

    // The cluster goes on without it: the owner of pkgM fails, and pkgM moves (two of the
    // three members are a majority: the deleted number counts for nothing).
    let lost = owner.lowest().expect("an owner");
    sim.crash(lost);
    assert!(sim
        .run_until(seconds(120), |s| {
            let moved = s.running_on("pkgM");
            !moved.is_empty() && !moved.contains(lost)
        })
        .unwrap());
    sim.restart(lost);
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());

    // Halted, the cluster takes the same files again and numbers its nodes anew.
    halt_all(&mut sim, 3);
    apply_halted(&mut sim, &three, 3, |_| true);
    assert_eq!(sim.watchdog_resets, 0);
}

/// A running cluster of n1..n4 whose n4 went down, then was deleted by a cmapplyconf given
/// on `giver`: in effect in the cluster, n4 named as not told (its warning returned).
fn deleted_while_down(seed: u64, giver: u32) -> (Simulation, Options, String) {
    let (mut sim, options) = four_running(seed);
    sim.crash(NodeId(3));
    assert!(sim
        .run_until(seconds(60), |s| (0..3)
            .all(|n| s.members(NodeId(n)) == set(&[0, 1, 2])))
        .unwrap());
    let serial = delete_n4(&mut sim, &options, giver).expect("n4 is down");
    let (refusal, warning) = await_answer(&mut sim, giver, serial, seconds(90));
    assert_eq!(refusal, None, "in effect in the cluster");
    assert_eq!(
        enrolment_outcome(&sim, giver, serial.0).not_configured,
        ["n4"]
    );
    assert!(deleted_everywhere(&sim));
    (sim, options, warning.expect("n4 named"))
}

#[test]
fn a_node_deleted_while_it_is_down_is_named_and_told_when_the_command_is_given_again() {
    let (mut sim, options, warning) = deleted_while_down(67, 2);
    assert!(
        warning.contains("n4 did not answer") && warning.contains("give the same cmapplyconf"),
        "{warning}"
    );

    // n4 starts again from the files of before, out of the coordinator's hearing (which
    // would tell it): the members do not take it.
    let coordinator = sim
        .status(NodeId(0))
        .and_then(|s| s.coordinator)
        .expect("a coordinator");
    let giver = (0..3).find(|&n| NodeId(n) != coordinator).unwrap();
    sim.cut_oneway(NodeId(3), coordinator);
    sim.restart(NodeId(3));
    sim.run_for(seconds(40)).unwrap();
    assert!(!sim.unconfigured(NodeId(3)));
    assert_ne!(phase(&sim, 3), Some(Phase::Running));
    assert!((0..3).all(|n| sim.members(NodeId(n)) == set(&[0, 1, 2])));

    // The same cmapplyconf again: n4, running configured, refuses the exchange; it is told
    // over the control channel, and goes on unconfigured.
    let again = delete_n4(&mut sim, &options, giver).expect("nothing to change");
    let (refusal, warning) = await_answer(&mut sim, giver, again, seconds(60));
    assert_eq!(refusal, None);
    assert!(
        warning
            .as_deref()
            .is_some_and(|w| w.contains("n4 took generation")),
        "{warning:?}"
    );
    assert!(!enrolment_outcome(&sim, giver, again.0).unchanged);
    assert!(sim
        .run_until(seconds(10), |s| s.unconfigured(NodeId(3)))
        .unwrap());
    assert!((0..3).all(|n| sim.members(NodeId(n)) == set(&[0, 1, 2])));
    assert_eq!(sim.watchdog_resets, 0);
}

#[test]
fn a_node_deleted_while_it_is_down_is_told_by_the_coordinator_once_heard() {
    let (mut sim, options, _) = deleted_while_down(69, 0);
    // n4 starts again from the files of before: the coordinator hears it, and tells it.
    sim.restart(NodeId(3));
    assert!(sim
        .run_until(seconds(30), |s| s.unconfigured(NodeId(3)))
        .unwrap());
    // The same cmapplyconf again changes nothing: n4, unconfigured, is passed over.
    let again = delete_n4(&mut sim, &options, 1).expect("nothing to change");
    assert_eq!(await_answer(&mut sim, 1, again, seconds(60)), (None, None));
    assert!(enrolment_outcome(&sim, 1, again.0).unchanged);
    assert!((0..3).all(|n| sim.members(NodeId(n)) == set(&[0, 1, 2])));
    assert_eq!(sim.watchdog_resets, 0);
}

/// The NODE_NAME blocks of `names` (in that order) from the simulator's file of `options`.
fn file_of(options: &Options, names: &[&str]) -> String {
    let text = cimguard_cluster::sim::cluster_file(options);
    let first = text.find("NODE_NAME ").expect("a node");
    let mut out = text[..first].to_owned();
    for name in names {
        let at = text
            .find(&format!("NODE_NAME {name}\n"))
            .unwrap_or_else(|| panic!("{name}"));
        let end = text[at + 1..]
            .find("NODE_NAME ")
            .map_or(text.len(), |e| at + 1 + e);
        out.push_str(&text[at..end]);
    }
    out
}

#[test]
fn one_cmapplyconf_deletes_a_halted_node_and_adds_another_numbered_after_it() {
    // A cluster of n1..n4 (pkgM on n1..n3); n5's daemon runs unconfigured (the cluster of
    // five had it deleted with the cluster halted).
    let mut options = Options::new(5, 71);
    options.packages = vec![package("pkgM", &[1, 2, 3])];
    let mut sim = Simulation::new(options.clone());
    sim.start_all();
    let all = set(&[0, 1, 2, 3, 4]);
    assert!(sim.run_until(seconds(120), |s| s.formed(all)).unwrap());
    halt_all(&mut sim, 5);
    let four = file_of(&options, &["n1", "n2", "n3", "n4"]);
    apply_halted(&mut sim, &four, 4, |s| s.unconfigured(NodeId(4)));
    sim.run_cluster(NodeId(0), set(&[0, 1, 2, 3])).unwrap();
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2, 3]))
            && !s.running_on("pkgM").is_empty())
        .unwrap());
    sim.run_for(seconds(10)).unwrap();

    // n4 halted; n5 listed before n1: n4 keeps number 3, deleted, and n5 takes number 4.
    sim.halt_node(NodeId(3), false).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| phase(s, 3) == Some(Phase::Halted)
            && (0..3).all(|n| s.members(NodeId(n)) == set(&[0, 1, 2])))
        .unwrap());
    let changed = file_of(&options, &["n5", "n1", "n2", "n3"]);
    let since = sim.trace().len();
    let Ok(Taken::Forwarded(serial)) =
        sim.apply(NodeId(1), Some(&changed), &[package("pkgM", &[1, 2, 3, 5])])
    else {
        panic!("a change of the nodes is answered later");
    };
    assert_eq!(
        await_answer(&mut sim, 1, (serial, since), seconds(60)),
        (None, None)
    );
    let told = enrolment_outcome(&sim, 1, serial);
    assert_eq!(told.took, ["n5"]);
    assert!(told.not_configured.is_empty(), "{told:?}");
    for n in 0..3 {
        let settings = sim.core(NodeId(n)).unwrap().settings().clone();
        let numbering: Vec<(&str, bool)> = settings
            .config
            .nodes
            .iter()
            .map(|c| (c.name.as_str(), c.deleted))
            .collect();
        assert_eq!(
            numbering,
            [
                ("n1", false),
                ("n2", false),
                ("n3", false),
                ("n4", true),
                ("n5", false)
            ]
        );
    }
    assert!(sim
        .run_until(seconds(20), |s| s.unconfigured(NodeId(3))
            && phase(s, 4) == Some(Phase::Halted))
        .unwrap());
    // cmrunnode on n5 joins it.
    sim.run_node_command(NodeId(4)).unwrap();
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2, 4])))
        .unwrap());
    assert_eq!(sim.watchdog_resets, 0);
}

/// cmrunnode on n4 given `lead` milliseconds after the cmapplyconf that deletes it (before
/// it, when negative): n4 either joined first (the deletion is refused, saying to halt it)
/// or is deleted (left out of every membership of the new generation, told, unconfigured);
/// never a member of a cluster whose generation deletes it.
fn cmrunnode_races_the_deletion(seed: u64, lead: i64) {
    let (mut sim, options) = four_running(seed);
    sim.halt_node(NodeId(3), false).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| phase(s, 3) == Some(Phase::Halted)
            && (0..3).all(|n| s.members(NodeId(n)) == set(&[0, 1, 2])))
        .unwrap());
    sim.run_for(seconds(5)).unwrap();
    let millis = std::time::Duration::from_millis(lead.unsigned_abs());
    if lead < 0 {
        sim.run_node_command(NodeId(3)).unwrap();
        sim.run_for(millis).unwrap();
    }
    let given = delete_n4(&mut sim, &options, 1);
    if lead >= 0 {
        sim.run_for(millis).unwrap();
        let _ = sim.run_node_command(NodeId(3));
    }
    let refusal = match given {
        // n4 is a member already.
        Err(refusal) => Some(refusal.to_string()),
        Ok(serial) => {
            let (refusal, warning) = await_answer(&mut sim, 1, serial, seconds(90));
            // Told (by the node given the command, or by the coordinator hearing it
            // first): not named as not told.
            if refusal.is_none() {
                assert_eq!(warning, None, "{lead}");
                assert!(enrolment_outcome(&sim, 1, serial.0)
                    .not_configured
                    .is_empty());
            }
            refusal
        }
    };
    let after = lead;
    match refusal {
        None => {
            assert!(deleted_everywhere(&sim), "{after:?}");
            assert!(
                sim.run_until(seconds(60), |s| s.unconfigured(NodeId(3)))
                    .unwrap(),
                "{after:?}: n4 not told"
            );
            assert!((0..3).all(|n| sim.members(NodeId(n)) == set(&[0, 1, 2])));
        }
        Some(refusal) => {
            assert!(refusal.contains("cmhaltnode n4"), "{after:?}: {refusal}");
            assert!(sim
                .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2, 3])))
                .unwrap());
            assert!(
                (0..3).all(|n| !sim.core(NodeId(n)).unwrap().settings().config.nodes[3].deleted)
            );
        }
    }
    sim.run_for(seconds(20)).unwrap();
    assert_eq!(sim.watchdog_resets, 0);
}

#[test]
fn cmrunnode_on_the_node_being_deleted_never_makes_it_a_member_of_a_generation_deleting_it() {
    for lead in [
        -4000, -2000, -1500, -1200, -1000, -600, -300, -100, 0, 50, 200, 700, 1500,
    ] {
        cmrunnode_races_the_deletion(5000u64.wrapping_add_signed(lead), lead);
    }
}

#[test]
fn a_node_never_told_is_told_by_the_halted_cmapplyconf_that_numbers_the_nodes_anew() {
    let (mut sim, options, _) = deleted_while_down(73, 0);
    // The cluster halts; n4 starts again from the files of before, in vain.
    halt_all(&mut sim, 3);
    sim.restart(NodeId(3));
    sim.run_for(seconds(10)).unwrap();
    assert_eq!(phase(&sim, 3), Some(Phase::Starting));
    // The halted cmapplyconf of the same files numbers the nodes anew, and tells n4.
    let (_, three) = files_without_n4(&options);
    apply_halted(&mut sim, &three, 3, |s| s.unconfigured(NodeId(3)));
    sim.run_cluster(NodeId(0), set(&[0, 1, 2])).unwrap();
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
}

/// A halted cmapplyconf whose offer n4 (deleted while down, never told) took drops n4's
/// number only once n4 confirmed its commit, which it is sent before the other nodes: here
/// the commit does not reach it, so the offer is given again with the numbers kept, n4's
/// unused, and the answer says so. n4, heard by the running cluster, is told then. (Before,
/// the nodes were numbered anew at once: n4, which missed the commit, was named by no later
/// generation and stayed configured for ever.)
#[test]
fn a_deleted_node_that_took_the_offer_but_missed_the_commit_keeps_its_number() {
    let (mut sim, options, _) = deleted_while_down(73, 0);
    halt_all(&mut sim, 3);
    sim.restart(NodeId(3));
    sim.run_for(seconds(10)).unwrap();
    assert_eq!(phase(&sim, 3), Some(Phase::Starting));
    n4_misses_the_commit(&mut sim, &options);
    // Heard by the running cluster under the number kept, n4 is told.
    told_once_the_cluster_runs(&mut sim);
}

/// A halted cmapplyconf of n1..n3 given on n1: n4 takes the offer, and from then on
/// nothing n1 sends reaches it. Answered without a refusal, naming n4; n1..n3 halted with
/// n4's number kept, and n4 configured still.
fn n4_misses_the_commit(sim: &mut Simulation, options: &Options) {
    let (serial, since) = offer_taken(sim, options, &[3]);
    sim.cut_oneway(NodeId(0), NodeId(3));
    let (refusal, warning) = await_answer(sim, 0, (serial, since), seconds(30));
    assert_eq!(refusal, None);
    let warning = warning.expect("n4 named");
    assert!(
        warning.contains("n4 (took the offer, then did not confirm its commit)")
            && warning.contains("keep their numbers"),
        "{warning}"
    );
    assert!(sim
        .run_until(seconds(20), halted_with_n4s_number_kept)
        .unwrap());
    assert!(!sim.unconfigured(NodeId(3)));
}

/// A halted cmapplyconf of n1..n3 (pkgM on them) given on n1, and taken by the nodes
/// numbered `by` (each persists the generation's sequence as its floor before it answers):
/// its serial and where the trace stood.
fn offer_taken(sim: &mut Simulation, options: &Options, by: &[u32]) -> (u64, usize) {
    let floors: Vec<(u32, u64)> = by
        .iter()
        .map(|&n| (n, sim.persisted(NodeId(n)).sequence_floor))
        .collect();
    let (_, three) = files_without_n4(options);
    let since = sim.trace().len();
    let Ok(Taken::Forwarded(serial)) =
        sim.apply(NodeId(0), Some(&three), &[package("pkgM", &[1, 2, 3])])
    else {
        panic!("a halted cmapplyconf is answered later");
    };
    assert!(sim
        .run_until(seconds(10), |s| floors
            .iter()
            .all(|&(n, floor)| s.persisted(NodeId(n)).sequence_floor > floor))
        .unwrap());
    (serial, since)
}

/// The network healed and cmruncl of n1..n3 given: they form, and n4, deleted under the
/// number kept, is told and goes on unconfigured.
fn told_once_the_cluster_runs(sim: &mut Simulation) {
    sim.heal();
    sim.run_cluster(NodeId(0), set(&[0, 1, 2])).unwrap();
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    assert!(sim
        .run_until(seconds(90), |s| s.unconfigured(NodeId(3)))
        .unwrap());
    assert!((0..3).all(|n| sim.members(NodeId(n)) == set(&[0, 1, 2])));
    assert_eq!(sim.watchdog_resets, 0);
}

#[test]
fn a_node_a_halted_cmapplyconf_deletes_that_misses_the_commit_keeps_its_number_and_is_told() {
    // n4 is a node of the generation in effect: the commit given it before any other node
    // does not reach it. (Had n1 put the generation in effect and failed before its answer,
    // n4 would have come back numbered out of it, heard by nobody.)
    let (mut sim, options) = four_running(89);
    halt_all(&mut sim, 4);
    n4_misses_the_commit(&mut sim, &options);
    assert_eq!(phase(&sim, 3), Some(Phase::Halted));
    // The running cluster tells n4 under the number kept, though it sends nothing (halted).
    told_once_the_cluster_runs(&mut sim);
}

#[test]
fn a_node_a_halted_cmapplyconf_deletes_that_took_the_commit_first_is_passed_over_when_given_again()
{
    // (The simulator numbers its nodes for good: the node deleted is the last one.)
    let (mut sim, options) = four_running(101);
    halt_all(&mut sim, 4);
    let (_, three) = files_without_n4(&options);
    let packages = [package("pkgM", &[1, 2, 3])];
    let (serial, since) = offer_taken(&mut sim, &options, &[1, 2, 3]);
    // From then on nothing n1 sends reaches n2 or n3, so n4 alone takes the commit (it is
    // sent to n4 first).
    sim.cut_oneway(NodeId(0), NodeId(1));
    sim.cut_oneway(NodeId(0), NodeId(2));
    assert!(sim
        .run_until(seconds(10), |s| s.unconfigured(NodeId(3)))
        .unwrap());
    let (refusal, _) = await_answer(&mut sim, 0, (serial, since), seconds(30));
    let refusal = refusal.expect("n2 and n3 missed the commit");
    assert!(
        refusal.contains("n2, n3 did not confirm it")
            && refusal.contains("give the same cmapplyconf again"),
        "{refusal}"
    );
    sim.heal();
    sim.run_for(seconds(15)).unwrap();
    assert!((1..3).all(|n| phase(&sim, n) == Some(Phase::Halted)
        && sim.core(NodeId(n)).is_some_and(|c| c.settings().nodes == 4)));

    // Given again on n2, whose generation still names n4: n4, unconfigured, answers over
    // the exchange, and is passed over.
    let since = sim.trace().len();
    let Ok(Taken::Forwarded(serial)) = sim.apply(NodeId(1), Some(&three), &packages) else {
        panic!("a halted cmapplyconf is answered later");
    };
    let (refusal, _) = await_answer(&mut sim, 1, (serial, since), seconds(30));
    assert_eq!(refusal, None);
    assert!(sim
        .run_until(seconds(20), |s| (0..3).all(|n| phase(s, n)
            == Some(Phase::Halted)
            && s.core(NodeId(n)).is_some_and(|c| {
                let settings = c.settings();
                settings.nodes == 3 && settings.config.node("n4").is_none()
            })))
        .unwrap());
    assert!(sim.unconfigured(NodeId(3)));
    sim.run_cluster(NodeId(0), set(&[0, 1, 2])).unwrap();
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2]))
            && !s.running_on("pkgM").is_empty())
        .unwrap());
    assert_eq!(sim.watchdog_resets, 0);
}

#[test]
fn a_refusal_after_the_commit_given_first_says_the_deleted_node_may_have_taken_it() {
    let (mut sim, options) = four_running(103);
    halt_all(&mut sim, 4);
    let (_, three) = files_without_n4(&options);
    let (serial, since) = offer_taken(&mut sim, &options, &[1, 2, 3]);
    // n4's confirmation of the commit given it first is lost, and n4 goes down as it
    // took it (whether it did, n1 cannot know); n2 goes down, so the offer given again with
    // the numbers kept fails.
    sim.network.drop_kinds.push((NodeId(3), "ConfigAnswer"));
    sim.crash(NodeId(1));
    assert!(sim
        .run_until(seconds(10), |s| s.persisted(NodeId(3)).config.is_some())
        .unwrap());
    sim.crash(NodeId(3));
    let (refusal, _) = await_answer(&mut sim, 0, (serial, since), seconds(30));
    let refusal = refusal.expect("n2 did not answer");
    assert!(
        refusal.contains("n2 did not answer")
            && refusal.contains("nothing was applied, except perhaps on n4")
            && refusal.contains("give the same cmapplyconf again"),
        "{refusal}"
    );
    // n4 did take it: it comes back unconfigured, and the same files given again once n2
    // runs pass it over.
    sim.network.drop_kinds.clear();
    sim.restart(NodeId(3));
    assert!(sim
        .run_until(seconds(10), |s| s.unconfigured(NodeId(3)))
        .unwrap());
    // n2 starts again (its automatic start, in vain: cmhaltnode ends it).
    sim.restart(NodeId(1));
    sim.run_for(seconds(5)).unwrap();
    sim.halt_node(NodeId(1), false).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| phase(s, 1) == Some(Phase::Halted))
        .unwrap());
    apply_halted(&mut sim, &three, 3, |s| s.unconfigured(NodeId(3)));
    assert_eq!(sim.watchdog_resets, 0);
}

#[test]
fn a_halted_cmapplyconf_deletes_a_node_whose_files_were_removed_by_hand() {
    // n4's files were removed (reinstalled, say): its cmcld runs unconfigured while the
    // others' generation still names it. Deleting it needs nothing of it: what it answers
    // over the exchange to a generation that does not name it shows it was told.
    let (mut sim, options) = four_running(97);
    halt_all(&mut sim, 4);
    sim.unconfigure_by_hand(NodeId(3));
    assert!(sim
        .run_until(seconds(10), |s| s.unconfigured(NodeId(3)))
        .unwrap());
    let (_, three) = files_without_n4(&options);
    apply_halted(&mut sim, &three, 3, |_| true);
    assert!(sim.unconfigured(NodeId(3)));
    sim.run_cluster(NodeId(0), set(&[0, 1, 2])).unwrap();
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    assert_eq!(sim.watchdog_resets, 0);
}

#[test]
fn a_deletion_the_members_gave_up_leaves_the_node_free_to_join_again() {
    let (mut sim, options) = four_running(79);
    sim.halt_node(NodeId(3), false).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| phase(s, 3) == Some(Phase::Halted)
            && (0..3).all(|n| s.members(NodeId(n)) == set(&[0, 1, 2])))
        .unwrap());
    let before = sim.generation(NodeId(0));
    // The members' acceptances are lost: each proposal carrying the deletion is accepted
    // and abandoned, until the coordinator gives the change up.
    for n in 0..3 {
        sim.network.drop_kinds.push((NodeId(n), "Accept"));
    }
    let serial = delete_n4(&mut sim, &options, 1).expect("n4 is halted");
    let (refusal, _) = await_answer(&mut sim, 1, serial, seconds(90));
    let refusal = refusal.expect("given up");
    assert!(refusal.contains("nothing was applied"), "{refusal}");
    // The proposal that gives it up is lost as well: the members go on in the membership
    // they had, holding what they accepted.
    sim.run_for(seconds(10)).unwrap();
    sim.network.drop_kinds.clear();
    assert!(sim
        .run_until(seconds(30), |s| (0..3)
            .all(|n| s.members(NodeId(n)) == set(&[0, 1, 2])))
        .unwrap());
    assert!((0..3).all(|n| sim.generation(NodeId(n)) == before));
    // What the members accepted and saw abandoned does not keep n4 out: cmrunnode joins it.
    sim.run_node_command(NodeId(3)).unwrap();
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2, 3])))
        .unwrap());
    assert!((0..4).all(|n| sim.generation(NodeId(n)) == before));
    assert_eq!(sim.watchdog_resets, 0);
}

/// Whether n1..n3 are halted in a generation that keeps n4's number, unused.
fn halted_with_n4s_number_kept(sim: &Simulation) -> bool {
    (0..3).all(|n| {
        phase(sim, n) == Some(Phase::Halted)
            && sim.core(NodeId(n)).is_some_and(|c| {
                let settings = c.settings();
                settings.nodes == 4
                    && settings.config.nodes[3].deleted
                    && settings.configured() == set(&[0, 1, 2])
            })
    })
}

/// cmapplyconf of `file` (pkgM on n1..n3) on n1, the cluster halted: its answer.
fn answer_halted(sim: &mut Simulation, file: &str) -> (Option<String>, Option<String>) {
    let since = sim.trace().len();
    let Ok(Taken::Forwarded(serial)) =
        sim.apply(NodeId(0), Some(file), &[package("pkgM", &[1, 2, 3])])
    else {
        panic!("a halted cmapplyconf is answered later");
    };
    await_answer(sim, 0, (serial, since), seconds(20))
}

#[test]
fn a_node_never_told_and_down_keeps_its_number_through_a_halted_cmapplyconf_and_is_told_once_heard()
{
    let (mut sim, options, _) = deleted_while_down(83, 0);
    halt_all(&mut sim, 3);
    // n4 is still down: the halted cmapplyconf of the same files keeps the numbers, n4's
    // unused, and says why.
    let (_, three) = files_without_n4(&options);
    let (refusal, warning) = answer_halted(&mut sim, &three);
    assert_eq!(refusal, None);
    let warning = warning.expect("n4 named");
    assert!(
        warning.contains("n4 (") && warning.contains("keep their numbers"),
        "{warning}"
    );
    assert!(sim
        .run_until(seconds(20), halted_with_n4s_number_kept)
        .unwrap());
    sim.run_cluster(NodeId(0), set(&[0, 1, 2])).unwrap();
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    // n4 starts again from the files of before the deletion: the running cluster hears it
    // under the number it kept and tells it; it goes on unconfigured.
    sim.restart(NodeId(3));
    assert!(sim
        .run_until(seconds(60), |s| s.unconfigured(NodeId(3)))
        .unwrap());
    assert!((0..3).all(|n| sim.members(NodeId(n)) == set(&[0, 1, 2])));

    // Told now, and reached over the exchange: the next halted cmapplyconf numbers the nodes
    // anew, with no warning.
    halt_all(&mut sim, 3);
    assert_eq!(answer_halted(&mut sim, &three), (None, None));
    assert!(sim
        .run_until(seconds(20), |s| (0..3)
            .all(|n| phase(s, n) == Some(Phase::Halted)
                && s.core(NodeId(n)).is_some_and(|c| c.settings().nodes == 3)))
        .unwrap());
    sim.run_cluster(NodeId(0), set(&[0, 1, 2])).unwrap();
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    assert!(sim.unconfigured(NodeId(3)));
    assert_eq!(sim.watchdog_resets, 0);
}

#[test]
fn a_cluster_started_with_every_node_is_not_held_to_a_membership_of_a_node_since_deleted() {
    // n1..n3 with a lock LUN; pkgM on n1, n2.
    let mut options = Options::new(3, 89);
    options.tiebreaker = cimguard_cluster::core::Tiebreaker::LockLun;
    options.packages = vec![package("pkgM", &[1, 2])];
    let mut sim = Simulation::new(options.clone());
    sim.start_all();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    // (Once every node has heard the others' package tables.)
    sim.run_for(seconds(3)).unwrap();
    // n2 is cut off: n1 and n3 go on as {n1, n3}.
    sim.partition(&[set(&[0, 2]), set(&[1])]);
    assert!(sim
        .run_until(seconds(60), |s| (0..3)
            .all(|n| n == 1 || s.members(NodeId(n)) == set(&[0, 2]))
            && phase(s, 1) != Some(Phase::Running))
        .unwrap());
    // n1 goes down, keeping {n1, n3} as its last membership; n3, half of it, wins the lock
    // of that membership and goes on alone.
    sim.crash(NodeId(0));
    assert!(sim
        .run_until(seconds(60), |s| s.members(NodeId(2)) == set(&[2]))
        .unwrap());
    sim.heal();
    // n2 joins n3; n3 leaves (cmhaltnode) and is deleted; n2 halts the cluster.
    sim.restart(NodeId(1));
    sim.run_node_command(NodeId(1)).ok();
    assert!(sim
        .run_until(seconds(120), |s| s.members(NodeId(1)) == set(&[1, 2]))
        .unwrap());
    sim.halt_node(NodeId(2), false).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| phase(s, 2) == Some(Phase::Halted)
            && s.members(NodeId(1)) == set(&[1]))
        .unwrap());
    let text = cimguard_cluster::sim::cluster_file(&options);
    let two = text[..text.find("NODE_NAME n3\n").expect("n3")].to_owned();
    let since = sim.trace().len();
    let Ok(Taken::Forwarded(serial)) =
        sim.apply(NodeId(1), Some(&two), &[package("pkgM", &[1, 2])])
    else {
        panic!("a deletion is answered later");
    };
    assert_eq!(
        await_answer(&mut sim, 1, (serial, since), seconds(90)).0,
        None
    );
    assert!(sim
        .run_until(seconds(30), |s| s.unconfigured(NodeId(2)))
        .unwrap());
    sim.halt_cluster(NodeId(1), true).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| phase(s, 1) == Some(Phase::Halted))
        .unwrap());
    // n1 starts from its old files, its last membership {n1, n3}, and n2 with it: every
    // node of the cluster. Half of {n1, n3} would need that membership's lock, which n3
    // won long ago; n3 is deleted, and the cluster forms.
    sim.start(NodeId(0));
    sim.run_cluster(NodeId(1), set(&[0, 1])).unwrap();
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1])))
        .unwrap());
    assert_eq!(
        sim.count(|r| matches!(r.event, cimguard_cluster::core::Event::LockNotWon { .. })),
        0
    );
    assert!(sim.unconfigured(NodeId(2)));
}

/// A cmruncl given before an online deletion reached a starting node names the deleted node
/// by its number, which the generation keeps (unused) until the cluster is halted: the node
/// takes the generation while it starts, and tells the others of it to start with the
/// same nodes. They form without the deleted one, which they would otherwise wait for.
#[test]
fn nodes_told_to_start_with_a_node_since_deleted_form_without_it() {
    use cimguard_cluster::core::{cluster_id, Envelope, Incarnation, Message};
    let (mut sim, _, _) = deleted_while_down(71, 0);
    // n1..n3 start again, each out of the others' hearing.
    sim.partition(&[set(&[0]), set(&[1]), set(&[2]), set(&[3])]);
    for n in 0..3 {
        sim.crash(NodeId(n));
        sim.restart(NodeId(n));
    }
    assert!(sim
        .run_until(seconds(10), |s| (0..3)
            .all(|n| phase(s, n) == Some(Phase::Starting)))
        .unwrap());
    // Each is told to start with n1..n4 by another, in the generation that deleted n4 (as
    // one that took the generation while it started after that cmruncl would tell them).
    for n in 0..3u32 {
        let from = sim.core(NodeId((n + 1) % 3)).unwrap();
        let envelope = Envelope {
            cluster_id: cluster_id("simulated"),
            config_generation: from.settings().config_generation,
            from: NodeId((n + 1) % 3),
            from_incarnation: from.incarnation(),
            to_incarnation: Incarnation(0),
            message: Message::Start {
                nodes: set(&[0, 1, 2, 3]),
                names: ["n1", "n2", "n3", "n4"].map(String::from).to_vec(),
            },
        };
        sim.forge(NodeId(n), 0, envelope);
    }
    sim.heal();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    assert!(deleted_everywhere(&sim));
}

/// Four nodes with a lock LUN formed, halted (cmhaltcl) and stopped, for a history to be
/// forged on their disks: the simulation, n1's settings, the membership of the four, and
/// the highest round any node promised.
fn four_stopped_with_a_lock_lun(
    seed: u64,
) -> (
    Simulation,
    cimguard_cluster::core::Settings,
    cimguard_cluster::core::View,
    u64,
) {
    four_stopped(seed, cimguard_cluster::core::Tiebreaker::LockLun)
}

/// As [`four_stopped_with_a_lock_lun`], with `tiebreaker`.
fn four_stopped(
    seed: u64,
    tiebreaker: cimguard_cluster::core::Tiebreaker,
) -> (
    Simulation,
    cimguard_cluster::core::Settings,
    cimguard_cluster::core::View,
    u64,
) {
    let mut options = Options::new(4, seed);
    options.tiebreaker = tiebreaker;
    let mut sim = Simulation::new(options);
    sim.start_all();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1, 2, 3])))
        .unwrap());
    let settings = sim.core(NodeId(0)).expect("up").settings().clone();
    sim.halt_cluster(NodeId(0), true).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| (0..4)
            .all(|n| phase(s, n) == Some(Phase::Halted)))
        .unwrap());
    for n in 0..4 {
        sim.crash(NodeId(n));
    }
    let all = sim
        .persisted(NodeId(0))
        .installed
        .clone()
        .expect("a membership installed");
    let round = (0..4)
        .map(|n| sim.persisted(NodeId(n)).epoch_max.round())
        .max()
        .unwrap_or(0);
    (sim, settings, all, round)
}

/// A membership of `members` of the four of `all` (in their lives there) proposed by
/// `coordinator` in `round`, for a forged history.
fn forged(
    all: &cimguard_cluster::core::View,
    round: u64,
    coordinator: u32,
    members: &[u32],
) -> cimguard_cluster::core::View {
    cimguard_cluster::core::View {
        epoch: cimguard_cluster::core::Epoch::new(round, NodeId(coordinator)),
        members: set(members),
        incarnations: (0..4u32)
            .map(|n| {
                if members.contains(&n) {
                    all.incarnations[n as usize]
                } else {
                    Default::default()
                }
            })
            .collect(),
    }
}

/// The generation deleting n4 that a cmapplyconf made from `settings` with the proposal of
/// `epoch`.
fn deleting_n4(
    settings: &cimguard_cluster::core::Settings,
    epoch: cimguard_cluster::core::Epoch,
) -> std::sync::Arc<cimguard_cluster::config::Generation> {
    let mut cluster = (*settings.config).clone();
    cluster.nodes[3].deleted = true;
    std::sync::Arc::new(cimguard_cluster::config::Generation {
        number: settings.config_generation + epoch.0,
        sequence: settings.config_sequence + 1,
        cluster,
        packages: (*settings.packages).clone(),
    })
}

/// The history of seed 1214424, on four nodes with a lock LUN, forged on their disks:
/// {n1..n4} ran; split in halves, {n2, n3} won the lock and went on; n4 proposed a
/// membership of itself alone, which n1, halting, accepted as a leaver, and lost the lock;
/// then a cmapplyconf deleting n4 rode on n2's proposal of {n1, n2, n3}, accepted by all
/// three and never seen committed. Starting again, n1..n3 carry the deletion on, so n4 is
/// no member of theirs; they are every node the generation keeps, and the memberships of
/// the node it deletes do not count, as they would not once it is in effect. They form,
/// and n4 is told it was deleted. (Before, they lost quorum against n4's membership of one
/// at every start, for ever.)
#[test]
fn nodes_carrying_a_deletion_on_its_way_are_not_held_to_the_deleted_nodes_membership() {
    use cimguard_cluster::core::{Epoch, Incarnation, View};
    let (mut sim, settings, all, round) = four_stopped_with_a_lock_lun(97);
    let view = |round: u64, coordinator: u32, members: &[u32]| View {
        epoch: Epoch::new(round, NodeId(coordinator)),
        members: set(members),
        incarnations: (0..4u32)
            .map(|n| match n {
                0 if members.contains(&0) && members.len() > 1 => {
                    // n1 in a later life: it halted after accepting n4's proposal.
                    Incarnation(all.incarnations[0].0 + 1)
                }
                n if members.contains(&n) => all.incarnations[n as usize],
                _ => Incarnation(0),
            })
            .collect(),
    };
    let halves = view(round + 1, 1, &[1, 2]);
    let alone = view(round + 2, 3, &[3]);
    let carrying = view(round + 3, 1, &[0, 1, 2]);
    let deletion = deleting_n4(&settings, carrying.epoch);
    for n in 0..4 {
        let persisted = sim.persisted_mut(NodeId(n));
        match n {
            0 => {
                persisted.accepted = vec![alone.clone(), carrying.clone()];
                persisted.epoch_max = carrying.epoch;
            }
            1 | 2 => {
                persisted.installed = Some(halves.clone());
                persisted.accepted = vec![carrying.clone()];
                persisted.epoch_max = carrying.epoch;
            }
            _ => {
                persisted.accepted = vec![alone.clone()];
                persisted.epoch_max = alone.epoch;
            }
        }
        if n < 3 {
            persisted.accepted_configs = vec![(carrying.epoch, deletion.clone())];
        }
    }
    for n in 0..4 {
        sim.start(NodeId(n));
    }
    sim.run_cluster(NodeId(0), set(&[0, 1, 2])).unwrap();
    assert!(sim
        .run_until(seconds(120), |s| s.formed(set(&[0, 1, 2])))
        .unwrap());
    assert!(sim
        .run_until(seconds(60), |s| s.unconfigured(NodeId(3))
            && s.core(NodeId(0))
                .is_some_and(
                    |c| c.settings().config_generation == deletion.number
                ))
        .unwrap());
}

/// The history of seed 5910633, on four nodes with a lock LUN, forged on their disks:
/// {n1..n4} ran; split in halves, {n1, n2} won the lock and went on without n4; then n1
/// proposed {n1, n3} with a cmapplyconf deleting n4 (n4 was out), which n3 accepted, and
/// raced the lock of {n1, n2}'s instance; {n2, n4}, n2 taking n4 back in, raced it too and
/// won. The deletion's epoch is the higher. Starting again, n1..n3 carry it on, so n4 is no
/// member of theirs, yet {n2, n4} ran with n4: n4 counts, and the group holds half of it
/// with the lock of its instance, which n4, cut off and started on its own, races too. One
/// side forms. (Before, the group left n4 out of that membership and formed without the
/// lock, and n4 won it: two clusters.)
#[test]
fn nodes_carrying_a_deletion_that_lost_the_lock_race_are_held_to_the_membership_that_won() {
    use cimguard_cluster::core::Event;
    let (mut sim, settings, all, round) = four_stopped_with_a_lock_lun(98);
    let view = |round, coordinator, members: &[u32]| forged(&all, round, coordinator, members);
    let halves = view(round + 1, 0, &[0, 1]);
    let back = view(round + 2, 1, &[1, 3]);
    let carrying = view(round + 3, 0, &[0, 2]);
    let deletion = deleting_n4(&settings, carrying.epoch);
    for n in 0..4 {
        let persisted = sim.persisted_mut(NodeId(n));
        match n {
            // The coordinator of the deletion: its own proposal is kept by its voters.
            0 => {
                persisted.installed = Some(halves.clone());
                persisted.epoch_max = carrying.epoch;
            }
            2 => {
                persisted.accepted = vec![carrying.clone()];
                persisted.accepted_configs = vec![(carrying.epoch, deletion.clone())];
                persisted.epoch_max = carrying.epoch;
            }
            _ => {
                persisted.installed = Some(back.clone());
                persisted.epoch_max = back.epoch;
            }
        }
    }
    for n in 0..4 {
        sim.start(NodeId(n));
    }
    // n4 is cut off from the others and started on its own at the same time.
    sim.partition(&[set(&[0, 1, 2]), set(&[3])]);
    let from = sim.trace().len();
    sim.run_cluster(NodeId(0), set(&[0, 1, 2])).unwrap();
    sim.run_cluster(NodeId(3), set(&[3])).unwrap();
    let group = set(&[0, 1, 2]);
    let alone = set(&[3]);
    // The locks a membership of `nodes` was committed with, if one was.
    let formed = |s: &Simulation, nodes| {
        s.trace()[from..].iter().find_map(|r| match &r.event {
            Event::MembershipChanged { after, locks, .. } if *after == nodes => Some(locks.clone()),
            _ => None,
        })
    };
    let gave_up = |s: &Simulation, nodes: cimguard_cluster::core::NodeSet| {
        nodes.iter().all(|n| phase(s, n.0) != Some(Phase::Starting))
    };
    // The simulator's checker saw only {n1..n4} committed (the rest is forged): had n4
    // formed alone, it fails there already (before the change, it did, the group too).
    assert!(sim
        .run_until(seconds(120), |s| {
            (formed(s, group).is_some() || gave_up(s, group))
                && (formed(s, alone).is_some() || gave_up(s, alone))
        })
        .unwrap());
    let (group_locks, alone_locks) = (formed(&sim, group), formed(&sim, alone));
    assert!(
        group_locks.is_none() || alone_locks.is_none(),
        "two clusters: {{n1, n2, n3}} with locks {group_locks:?}, {{n4}} with {alone_locks:?}"
    );
    assert_eq!(
        group_locks.or(alone_locks),
        Some(vec![back.epoch]),
        "one side formed, with the lock of {{n2, n4}}'s instance"
    );
}

/// cmruncl naming every node but n4, on n3, which accepted a proposal carrying a
/// cmapplyconf that deletes n4 and, after it, a membership of n2 with n4 ({n2, n4}, with n1
/// leaving), no tie-breaker configured. The start is whole (n4 need not be named, as the
/// group may carry the deletion on), but {n2, n4} has a node the change keeps: n4 counts
/// there, and the named nodes hold only n2 of it, half without a tie-breaker. cmruncl says
/// so rather than start a group that would halt at once. (A membership of deleted nodes
/// alone counts for nothing then: see
/// `nodes_carrying_a_deletion_on_its_way_are_not_held_to_the_deleted_nodes_membership`.)
#[test]
fn cmruncl_holding_half_of_a_membership_with_a_node_a_carried_deletion_deletes_is_refused() {
    use cimguard_cluster::core::Tiebreaker;
    let (mut sim, settings, all, round) = four_stopped(99, Tiebreaker::None);
    let view = |round, coordinator, members: &[u32]| forged(&all, round, coordinator, members);
    let carrying = view(round + 1, 0, &[0, 1, 2]);
    let pair = view(round + 2, 1, &[1, 3]);
    let deletion = deleting_n4(&settings, carrying.epoch);
    let persisted = sim.persisted_mut(NodeId(2));
    persisted.accepted = vec![carrying.clone(), pair.clone()];
    persisted.accepted_configs = vec![(carrying.epoch, deletion)];
    persisted.epoch_max = pair.epoch;
    sim.start(NodeId(2));
    let refusal = sim
        .run_cluster(NodeId(2), set(&[0, 1, 2]))
        .expect_err("half of {n2, n4}, no tie-breaker");
    assert_eq!(
        refusal,
        Refusal::RunClusterNotQuorate {
            named: set(&[0, 1, 2]),
            last: set(&[1, 3]),
            lock: false,
        }
    );
    // Named with n4, the four hold all of it.
    assert_eq!(sim.run_cluster(NodeId(2), set(&[0, 1, 2, 3])), Ok(()));
}
