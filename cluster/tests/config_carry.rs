//! A configuration generation carried on across coordinators: one that took effect somewhere
//! is never replaced by a sibling made from the same generation by a coordinator that did
//! not know of it (two configurations shown under one generation).

mod common;

use common::{package, seconds};

use cimguard_cluster::core::{Event, NodeId, NodeSet, Phase, Taken, Tiebreaker};
use cimguard_cluster::sim::{Options, Simulation};

const A: NodeId = NodeId(0);
const B: NodeId = NodeId(1);
const C: NodeId = NodeId(2);

/// How many times `node` went (back) to re-forming: each is a proposal of its own or an
/// acceptance.
fn reformings(sim: &Simulation, node: NodeId) -> usize {
    sim.count(|r| {
        r.node == node
            && matches!(
                r.event,
                Event::PhaseChanged {
                    after: Phase::Reforming,
                    ..
                }
            )
    })
}

/// The generation numbers that took effect on each node, in order.
fn taken(sim: &Simulation, node: NodeId) -> Vec<(u64, u64)> {
    sim.trace()
        .iter()
        .filter(|r| r.node == node)
        .filter_map(|r| match r.event {
            Event::ConfigChanged { after, number, .. } => Some((after, number)),
            _ => None,
        })
        .collect()
}

/// The scenario (five nodes A to E): A, the coordinator, is cut off from B and C (it still
/// talks to D and E, whose echoes keep its lease), and takes a cmapplyconf (S) whose
/// proposals are lost. B, C, D and E re-form without A; B takes another cmapplyconf (G)
/// and commits it, but its commits are lost and B dies: G is in effect on B alone, and
/// was reported applied there. A, unaware (it hears no one any more, and lives out its
/// lease), proposes S again with a higher epoch (so S is numbered above G); the proposal
/// reaches D and E, and A dies. C, D and E re-form. S could never have been committed: A
/// gives up a proposal that a member with a newer membership accepts. Yet when D and E
/// accepted it, the next coordinator carried S on over G (two configurations shown as
/// generation 2), or, without a tie-breaker, D and E stopped echoing C for the sake of that
/// proposal and every survivor lost its lease.
fn lost_update(tiebreaker: Tiebreaker, seed: u64) -> (Simulation, u64) {
    let nodes = nodes(tiebreaker);
    let mut options = Options::new(nodes, seed);
    options.tiebreaker = tiebreaker;
    let mut sim = Simulation::new(options);
    sim.start_all();
    let everyone = NodeSet::first(nodes);
    let partners: Vec<NodeId> = (3..nodes as u32).map(NodeId).collect();
    assert!(sim.run_until(seconds(60), |s| s.formed(everyone)).unwrap());
    sim.run_for(seconds(5)).unwrap();
    let first = sim.core(A).unwrap().view().epoch;

    // A loses B and C both ways; its proposals are lost on the way (a lossy network).
    sim.cut_link(A, B);
    sim.cut_link(A, C);
    sim.network.drop_kinds.push((A, "Propose"));
    let sibling = vec![package("pkgS", &[1, 2])];
    assert_eq!(sim.apply(A, None, &sibling), Ok(Taken::Done));

    // B, C, D and E re-form without A. Once D and E accept (and stop echoing A), A hears
    // no one any more: it never learns of the new membership, and lives out its lease.
    assert!(sim
        .run_until(seconds(60), |s| {
            partners.iter().all(|&n| {
                s.core(n)
                    .is_some_and(|c| c.phase() == Phase::Reforming || c.view().epoch != first)
            })
        })
        .unwrap());
    let mut rest = everyone;
    rest.remove(A);
    for node in rest.iter() {
        sim.cut_oneway(node, A);
    }
    assert!(sim.run_until(seconds(10), |s| s.formed(rest)).unwrap());

    // G: committed and in effect on B alone, which dies.
    sim.network.drop_kinds.push((B, "Commit"));
    let applied = vec![package("pkgG", &[2, 3])];
    assert_eq!(sim.apply(B, None, &applied), Ok(Taken::Done));
    assert!(sim
        .run_until(seconds(10), |s| s.generation_number(B) != Some(1))
        .unwrap());
    let g = sim.generation_number(B).unwrap();
    assert_eq!(sim.generation(B), Some(2));
    sim.crash(B);

    // A's next proposal of S gets through to D and E; then A dies.
    sim.network.drop_kinds.retain(|&(n, _)| n != A);
    let before = reformings(&sim, A);
    assert!(sim
        .run_until(seconds(10), |s| reformings(s, A) > before)
        .unwrap());
    sim.run_for(std::time::Duration::from_millis(50)).unwrap();
    assert!(
        sim.core(A).is_some(),
        "A still runs when its proposal arrives"
    );
    sim.crash(A);
    sim.network.drop_kinds.clear();
    (sim, g)
}

/// Five nodes (A, B, C and A's partners D and E), but four with a lock LUN (it serves no
/// more): then D is A's only partner, and the survivors C and D hold exactly half of A's
/// last proposal (a lock race if D kept it).
fn nodes(tiebreaker: Tiebreaker) -> usize {
    if tiebreaker == Tiebreaker::LockLun {
        4
    } else {
        5
    }
}

fn check_carried_on(tiebreaker: Tiebreaker, seed: u64) {
    let (mut sim, g) = lost_update(tiebreaker, seed);
    let nodes = nodes(tiebreaker);
    let survivors: Vec<NodeId> = (2..nodes as u32).map(NodeId).collect();
    let rest: NodeSet = survivors.iter().copied().collect();
    let settled = sim.run_until(seconds(120), |s| {
        s.formed(rest) && survivors.iter().all(|&n| s.generation_number(n) == Some(g))
    });
    let shown: Vec<_> = survivors.iter().map(|&n| taken(&sim, n)).collect();
    let members: Vec<_> = survivors.iter().map(|&n| sim.members(n)).collect();
    assert_eq!(
        settled,
        Ok(true),
        "seed {seed}, {tiebreaker:?}: G ({g}) took effect on B; the survivors took {shown:?}, \
         members {members:?}"
    );
    // The dead come back with G, and join.
    sim.heal();
    sim.restart(A);
    sim.restart(B);
    let everyone = NodeSet::first(nodes);
    assert_eq!(
        sim.run_until(seconds(120), |s| s.formed(everyone)),
        Ok(true),
        "seed {seed}, {tiebreaker:?}"
    );
    for node in (0..nodes as u32).map(NodeId) {
        assert_eq!(sim.generation_number(node), Some(g), "{node:?}");
        assert_eq!(sim.generation(node), Some(2), "{node:?}");
        // Generation 2 never took effect anywhere as anything but G.
        assert!(
            taken(&sim, node).iter().all(|&taken| taken == (2, g)),
            "{node:?}: {:?}",
            taken(&sim, node)
        );
    }
}

#[test]
fn a_generation_in_effect_wins_over_a_sibling_a_stale_coordinator_proposed_later() {
    for seed in 0..4 {
        check_carried_on(Tiebreaker::None, seed);
    }
}

#[test]
fn the_same_with_a_lock_lun() {
    for seed in 0..4 {
        check_carried_on(Tiebreaker::LockLun, seed);
    }
}

#[test]
fn the_same_with_a_quorum_server() {
    for seed in 0..4 {
        check_carried_on(Tiebreaker::QuorumServer, seed);
    }
}
