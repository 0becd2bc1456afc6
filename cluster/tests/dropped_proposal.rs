//! A proposal its coordinator took back uncommitted carries nothing on: the members that
//! accepted it drop it, and the generation it carried, whatever they did since.

mod common;

use common::{package, seconds};

use cimguard_cluster::core::{
    cluster_id, Envelope, Epoch, Event, FenceReason, Incarnation, Instant, Message, NodeId,
    NodeSet, Phase, Taken, Term, Tiebreaker,
};
use cimguard_cluster::packages::Refusal;
use cimguard_cluster::sim::{Life, Options, Simulation};

const A: NodeId = NodeId(0);
const B: NodeId = NodeId(1);
const C: NodeId = NodeId(2);

/// The proposals `node` accepted and keeps as possibly committed (persisted), and those of
/// them that carry a generation.
fn kept(sim: &Simulation, node: NodeId) -> (Vec<Epoch>, Vec<Epoch>) {
    let persisted = sim.persisted(node);
    (
        persisted.accepted.iter().map(|v| v.epoch).collect(),
        persisted.accepted_configs.iter().map(|(e, _)| *e).collect(),
    )
}

/// Three nodes; A takes a cmapplyconf, B accepts the proposal that carries it (C never
/// hears of it), and no acceptance gets through, so it is never committed. B is then cut
/// off from A (it hears nothing of A's giving the proposal up), stops waiting on the
/// proposal, and keeps it as possibly committed. What A sends when it takes a proposal
/// back for good (Abandon, or Halt when its group lost the lock race) comes late.
/// Returns the membership installed before, and the proposal's epoch.
fn accepted_then_cut_off(seed: u64) -> (Simulation, Epoch, Epoch) {
    accepted_then_cut_off_among(seed, 3, [A, B, C])
}

/// The same in a cluster of `nodes`, with the nodes in the roles of A, B and C given: the
/// others (a fourth) go down first, and A coordinates the membership of the three. Up to
/// B's acceptance.
fn accepted_among(seed: u64, nodes: usize, roles: [NodeId; 3]) -> (Simulation, Epoch, Epoch) {
    let [a, b, c] = roles;
    let mut sim = Simulation::new(Options::new(nodes, seed));
    sim.start_all();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(NodeSet::first(nodes)))
        .unwrap());
    let three = NodeSet::from_iter(roles);
    for node in NodeSet::first(nodes).difference(three).iter() {
        sim.crash(node);
    }
    assert!(sim.run_until(seconds(60), |s| s.formed(three)).unwrap());
    sim.run_for(seconds(5)).unwrap();
    let installed = sim.core(b).unwrap().view().epoch;

    for node in three.iter() {
        sim.network.drop_kinds.push((node, "Accept"));
    }
    sim.cut_oneway(a, c);
    let change = vec![package("pkgS", &[1, 2])];
    assert_eq!(sim.apply(a, None, &change), Ok(Taken::Done));
    let carried = |s: &Simulation| {
        kept(s, b)
            .1
            .into_iter()
            .find(|e| e.coordinator() == a && *e > installed)
    };
    assert!(sim
        .run_until(seconds(10), |s| carried(s).is_some())
        .unwrap());
    let epoch = carried(&sim).unwrap();
    (sim, installed, epoch)
}

/// The same, where B is then cut off from A.
fn accepted_then_cut_off_among(
    seed: u64,
    nodes: usize,
    roles: [NodeId; 3],
) -> (Simulation, Epoch, Epoch) {
    let [a, b, _] = roles;
    let (mut sim, installed, epoch) = accepted_among(seed, nodes, roles);
    sim.cut_oneway(a, b);
    assert!(sim
        .run_until(seconds(30), |s| s
            .core(b)
            .is_some_and(|c| c.waiting_on() != Some(epoch)))
        .unwrap());
    assert!(
        kept(&sim, b).0.contains(&epoch),
        "B kept {:?}",
        kept(&sim, b)
    );
    (sim, installed, epoch)
}

/// A node's life and configuration generation, as its messages carry them.
fn sender(sim: &Simulation, node: NodeId) -> (NodeId, Incarnation, u64) {
    let core = sim.core(node).unwrap();
    (node, core.incarnation(), core.settings().config_generation)
}

/// `message` as it left `from` (in the life and generation given), arriving at B.
fn to_b(sim: &Simulation, from: (NodeId, Incarnation, u64), message: Message) -> Envelope {
    let (node, life, generation) = from;
    Envelope {
        cluster_id: cluster_id("simulated"),
        config_generation: generation,
        from: node,
        from_incarnation: life,
        to_incarnation: sim.core(B).unwrap().incarnation(),
        message,
    }
}

/// A Halt for `epoch`.
fn halt(epoch: Epoch) -> Message {
    Message::Halt {
        epoch,
        reason: FenceReason::QuorumLost,
    }
}

#[test]
fn a_late_halt_drops_the_acceptance_and_the_generation_it_carried() {
    for seed in 0..4 {
        let (mut sim, _, epoch) = accepted_then_cut_off(seed);
        let envelope = to_b(&sim, sender(&sim, A), halt(epoch));
        sim.forge(B, 0, envelope);
        let (accepted, configs) = kept(&sim, B);
        assert!(
            !accepted.contains(&epoch) && !configs.contains(&epoch),
            "seed {seed}: B keeps {epoch:?} after its coordinator's Halt: {accepted:?}, \
             configs {configs:?}"
        );
        // No longer waiting on it, B had no reason of the proposal's to halt.
        assert_eq!(sim.life(B), Life::Up, "seed {seed}");
        assert_ne!(sim.core(B).unwrap().phase(), Phase::Halted, "seed {seed}");
    }
}

/// A Halt that names a proposal of another coordinator is no word on it.
#[test]
fn a_halt_from_another_node_drops_nothing() {
    let (mut sim, _, epoch) = accepted_then_cut_off(7);
    let envelope = to_b(&sim, sender(&sim, C), halt(epoch));
    sim.forge(B, 0, envelope);
    assert!(
        kept(&sim, B).0.contains(&epoch),
        "B kept {:?}",
        kept(&sim, B)
    );
    assert!(
        kept(&sim, B).1.contains(&epoch),
        "B kept {:?}",
        kept(&sim, B)
    );
}

/// A takes the proposal back uncommitted, and later restarts: B, which accepted it, never
/// heard that A gave it up, and A's new life is not the one that proposed it. A still
/// knows (it persisted that it gave the proposal up), and the group that forms (A
/// coordinating it) carries nothing on: the change never takes effect. Carried on from B's
/// acceptance, it would take effect after A had given it up (seed 6618811, where a
/// cmapplyconf deleting a node came back that way, and the group lost quorum against a
/// membership the deleted node made half of, again and again).
#[test]
fn a_change_its_coordinator_gave_up_is_not_carried_on_after_the_coordinator_restarts() {
    for seed in 0..4 {
        given_up_then_restarted(seed, 3, [A, B, C]);
    }
}

/// The same in a cluster of four: the first node is down while the others run, and the
/// node that gave the proposal up (the second) is a voter of the group that forms with all
/// four (the first coordinates it). It tells the coordinator in its acceptance.
#[test]
fn a_voter_that_gave_its_own_change_up_tells_the_coordinator() {
    for seed in 0..4 {
        given_up_then_restarted(seed, 4, [B, C, NodeId(3)]);
    }
}

/// A dies while its proposal, which B accepted with the change it carries, is under way
/// (it sent no Commit: its state, persisted before the Propose left, still says the
/// proposal pending). Everyone restarts, and the group that forms carries nothing on: A's
/// new life counts the proposal passed over, as if it had given it up, and says so as its
/// coordinator, or as a voter (four nodes, the first coordinating).
#[test]
fn a_change_whose_coordinator_died_proposing_is_not_carried_on() {
    for seed in 0..4 {
        for (nodes, roles) in [(3, [A, B, C]), (4, [B, C, NodeId(3)])] {
            let [a, b, _] = roles;
            let (mut sim, _, epoch) = accepted_among(seed, nodes, roles);
            // A's state says the proposal is pending: no Commit of it left.
            assert_eq!(sim.persisted(a).own_pending, Some(epoch), "seed {seed}");
            sim.crash(a);
            restarted_carrying_nothing(sim, seed, nodes, b);
        }
    }
}

/// The story of the two tests above: in a cluster of `nodes`, with the nodes in the roles
/// of A, B and C given.
fn given_up_then_restarted(seed: u64, nodes: usize, roles: [NodeId; 3]) {
    let [a, b, _] = roles;
    let (mut sim, _, epoch) = accepted_then_cut_off_among(seed, nodes, roles);
    // A proposes again: it dropped the proposal B accepted.
    assert!(
        sim.run_until(seconds(30), |s| s.persisted(a).epoch_max > epoch)
            .unwrap(),
        "seed {seed}"
    );
    restarted_carrying_nothing(sim, seed, nodes, b);
}

/// Every node of `sim` crashes and starts again: the cluster forms with all of them, and
/// none takes the change (pkgS) that `b` accepted, in effect or not.
fn restarted_carrying_nothing(mut sim: Simulation, seed: u64, nodes: usize, b: NodeId) {
    let before = sim.generation_number(b).unwrap();
    let everyone = NodeSet::first(nodes);
    for node in everyone.iter() {
        sim.crash(node);
    }
    sim.heal();
    sim.network.drop_kinds.clear();
    for node in everyone.iter() {
        sim.restart(node);
    }
    assert!(
        sim.run_until(seconds(60), |s| s.formed(everyone)).unwrap(),
        "seed {seed}"
    );
    sim.run_for(seconds(5)).unwrap();
    for node in everyone.iter() {
        let (_, packages) = sim.config_in_effect(node).unwrap();
        assert!(
            packages.iter().all(|p| p.name != "pkgS"),
            "seed {seed}: {node:?} took the change A gave up (generation {:?}, before \
             {before})",
            sim.generation_number(node)
        );
        assert_eq!(sim.generation_number(node), Some(before), "seed {seed}");
    }
}

/// Whether `node` is halted, its daemon still there.
fn halted(sim: &Simulation, node: NodeId) -> bool {
    sim.core(node).is_some_and(|c| c.phase() == Phase::Halted)
}

/// The answer `node` told for command `serial` (None: not yet; Some(None): carried out).
fn answer(sim: &Simulation, node: NodeId, serial: u64) -> Option<Option<String>> {
    sim.trace().iter().rev().find_map(|r| match &r.event {
        Event::CommandAnswered {
            serial: s, refusal, ..
        } if r.node == node && *s == serial => Some(refusal.clone()),
        _ => None,
    })
}

/// cmapplyconf of `cluster` and `packages` given on halted `node`: refused at once, or the
/// answer it gets later (None: carried out; else the refusal).
fn apply_halted(
    sim: &mut Simulation,
    node: NodeId,
    cluster: &str,
    packages: &[String],
) -> Result<Option<String>, Refusal> {
    let given = sim.apply(node, Some(cluster), packages)?;
    let Taken::Forwarded(serial) = given else {
        panic!("a halted cmapplyconf is answered later: {given:?}");
    };
    assert!(sim
        .run_until(seconds(10), |s| answer(s, node, serial).is_some())
        .unwrap());
    Ok(answer(sim, node, serial).expect("answered"))
}

/// B accepted a cmapplyconf's proposal and was told it is abandoned (an abandoned proposal
/// carries nothing on), then halted before any membership formed again. With the whole
/// cluster halted, a cmapplyconf given on C (which never heard of the abandoned change, and
/// numbers its own below it) is offered to B, which takes it: the generation it accepted
/// was never in effect anywhere.
#[test]
fn an_abandoned_acceptance_does_not_hold_a_halted_cmapplyconf_back() {
    for seed in 0..4 {
        let (mut sim, installed, epoch) = accepted_then_cut_off(seed);
        let envelope = to_b(&sim, sender(&sim, A), Message::Abandon { epoch });
        sim.forge(B, 0, envelope);
        assert!(!kept(&sim, B).0.contains(&epoch), "seed {seed}");
        // A dies (it would give its change again), and B halts before anything forms.
        sim.crash(A);
        sim.heal();
        sim.network.drop_kinds.clear();
        sim.halt_node(B, true).unwrap();
        assert!(
            sim.run_until(seconds(30), |s| halted(s, B)).unwrap(),
            "seed {seed}"
        );
        // C runs on alone, and is halted; A starts again, and is halted.
        assert!(
            sim.run_until(seconds(60), |s| s
                .core(C)
                .is_some_and(|c| c.phase() == Phase::Running))
                .unwrap(),
            "seed {seed}"
        );
        sim.halt_cluster(C, true).unwrap();
        sim.restart(A);
        sim.halt_node(A, true).unwrap();
        assert!(
            sim.run_until(seconds(60), |s| [A, B, C].iter().all(|&n| halted(s, n)))
                .unwrap(),
            "seed {seed}"
        );
        assert_eq!(sim.core(B).unwrap().view().epoch, installed, "seed {seed}");
        let before = sim.generation(C).unwrap();
        let cluster = cimguard_cluster::sim::cluster_file(&Options::new(3, seed));
        let change = [package("pkgT", &[1, 2])];
        // Refused while a node still goes by a running heartbeat heard within a member
        // timeout (a late or replayed one among them): given again until then.
        let deadline = sim.now() + seconds(60);
        let answered = loop {
            let answered = apply_halted(&mut sim, C, &cluster, &change);
            let heard = |why: &str| why.contains("hears the cluster run");
            match answered {
                Err(Refusal::ClusterRunsElsewhere) => {}
                Ok(Some(ref why)) if heard(why) => {}
                _ => break answered,
            }
            assert!(sim.now() < deadline, "seed {seed}: {answered:?}");
            sim.run_for(seconds(1)).unwrap();
        };
        assert_eq!(answered, Ok(None), "seed {seed}: carried out");
        for node in [A, B, C] {
            assert_eq!(
                sim.generation(node),
                Some(before + 1),
                "seed {seed}, {node:?}"
            );
        }
    }
}

/// A coordinator that proposes again has dropped its earlier proposals it never installed:
/// a member drops the one it accepted, with its generation, even when it refuses the new
/// proposal (it promised a later epoch since), and a later life does not report it.
#[test]
fn a_refused_proposal_of_the_same_coordinator_still_drops_its_earlier_one() {
    let mut tried = 0;
    for seed in 0..8 {
        let (mut sim, installed, epoch) = accepted_then_cut_off(seed);
        // A's later proposal below comes late (A may be dead by the time it arrives).
        let a = sender(&sim, A);
        // B or C proposes without A, which B no longer hears: B promises beyond A's round.
        let beyond = |s: &Simulation| s.persisted(B).epoch_max.round() > epoch.round() + 1;
        assert!(sim
            .run_until(seconds(30), |s| beyond(s) || s.life(B) != Life::Up)
            .unwrap());
        if sim.life(B) != Life::Up {
            continue;
        }
        // A's next proposal, in B's promised round: no later than the promise (A is n1,
        // the lowest of a round), and after the proposal B accepted.
        let promised = sim.persisted(B).epoch_max;
        let next = Epoch::new(promised.round(), A);
        assert!(next <= promised && next > epoch, "seed {seed}");
        tried += 1;
        let mut view = sim.core(B).unwrap().view().clone();
        view.epoch = next;
        let term = Term {
            lease: seconds(11),
            grace: seconds(1),
        };
        let propose = Message::Propose {
            epoch: next,
            view,
            sent_at: Instant(1),
            term,
            installed,
            leavers: NodeSet::EMPTY,
            config: None,
            carried_from: None,
        };
        let envelope = to_b(&sim, a, propose);
        sim.forge(B, 0, envelope);
        let (accepted, configs) = kept(&sim, B);
        assert!(
            !accepted.contains(&epoch) && !configs.contains(&epoch),
            "seed {seed}: B keeps {epoch:?} after A proposed {next:?} (B promised \
             {promised:?}): {accepted:?}, configs {configs:?}"
        );
        assert!(
            !accepted.contains(&next),
            "seed {seed}: B accepted {next:?}"
        );
    }
    assert!(tried > 0, "no seed had B promise beyond A's proposal");
}

/// A proposal that carries a generation on from an acceptance older than a membership one
/// of its voters knows committed is given up by its coordinator (the cluster ran without
/// that generation since), and carries nothing on from its voters either, told or not.
///
/// Z's cmapplyconf rides on a proposal only X accepts; it is never committed, and Z and X
/// die. M, Y and W form a membership without them, then all three restart too. cmruncl on
/// X (which knows of nothing later) proposes a membership carrying the generation on, above
/// the others' promises. They accept, each reporting the membership it installed, and X
/// gives the proposal up; its Abandon is lost, and X dies. cmruncl on M, without X: the
/// group M forms must not take the generation, from a proposal later than the membership
/// they all installed.
#[test]
fn a_generation_passed_over_is_not_carried_on_by_its_voters() {
    for seed in 0..4 {
        passed_over(seed, false, false);
    }
}

/// The same with a voter of X's proposal that knows of no later membership (V, cut off
/// with X while M, Y and W formed, with a quorum server for their half): it keeps the
/// generation with its acceptance, and reports it to M's group. The others report that
/// they gave it up (they knew of a later membership), so M's group knows it never took
/// effect.
#[test]
fn a_generation_a_voter_gave_up_is_not_carried_on_from_another() {
    for seed in 0..4 {
        passed_over(seed, true, false);
    }
}

/// The same, with M, Y and W restarted before M's group forms: what a voter gave up it
/// knows in a later life too (it is persisted with the acceptance).
#[test]
fn a_generation_given_up_stays_given_up_across_a_restart() {
    for seed in 0..4 {
        passed_over(seed, true, true);
    }
}

const Z: NodeId = NodeId(0);
const X: NodeId = NodeId(1);
const M: NodeId = NodeId(2);
const Y: NodeId = NodeId(3);
const W: NodeId = NodeId(4);
const V: NodeId = NodeId(5);

/// The story of the three tests above; `unknowing`: with V; `restarted`: M, Y and W start
/// a new life before M's group forms.
fn passed_over(seed: u64, unknowing: bool, restarted: bool) {
    let formed = NodeSet::from_iter([M, Y, W]);
    let missed: &[NodeId] = if unknowing { &[Z, X, V] } else { &[Z, X] };
    let mut options = Options::new(if unknowing { 6 } else { 5 }, seed);
    if unknowing {
        options.tiebreaker = Tiebreaker::QuorumServer;
    }
    let count = options.nodes;
    let mut sim = Simulation::new(options);
    sim.start_all();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(NodeSet::first(count)))
        .unwrap());
    sim.run_for(seconds(5)).unwrap();
    let before = sim.generation_number(M).unwrap();

    // Only X hears Z's proposal, and no acceptance gets through.
    for node in 0..count {
        sim.network.drop_kinds.push((NodeId(node as u32), "Accept"));
    }
    for node in [M, Y, W, V].into_iter().take(count - 2) {
        sim.cut_oneway(Z, node);
    }
    let change = vec![package("pkgS", &[1, 2])];
    assert_eq!(sim.apply(Z, None, &change), Ok(Taken::Done));
    let from_z = |s: &Simulation| kept(s, X).1.into_iter().find(|e| e.coordinator() == Z);
    assert!(sim.run_until(seconds(10), |s| from_z(s).is_some()).unwrap());
    let first = from_z(&sim).unwrap();
    for &node in missed {
        sim.crash(node);
    }
    sim.heal();
    sim.network.drop_kinds.clear();
    assert!(
        sim.run_until(seconds(60), |s| s.formed(formed)).unwrap(),
        "seed {seed}"
    );
    let passed_over = sim.core(M).unwrap().view().epoch;
    assert!(passed_over > first, "seed {seed}");
    assert_eq!(sim.generation_number(M), Some(before), "seed {seed}");
    sim.run_for(seconds(2)).unwrap();

    // Everyone down; all but Z start again, and cmruncl on X names them.
    for node in formed.iter() {
        sim.crash(node);
    }
    let voters: NodeSet = missed[1..].iter().copied().chain(formed.iter()).collect();
    for node in voters.iter() {
        sim.restart(node);
    }
    sim.network.drop_kinds.push((X, "Abandon"));
    sim.run_for(seconds(1)).unwrap();
    sim.run_cluster(X, voters).unwrap();
    let accepted_from_x = |s: &Simulation, node: NodeId| {
        s.persisted(node)
            .accepted
            .iter()
            .any(|v| v.epoch.coordinator() == X && v.epoch > passed_over)
    };
    let others: NodeSet = voters.difference(NodeSet::from_iter([X]));
    assert!(
        sim.run_until(seconds(30), |s| others
            .iter()
            .all(|n| accepted_from_x(s, n)))
            .unwrap(),
        "seed {seed}"
    );
    // Whatever X says after this is lost.
    sim.network.drop_kinds.push((X, "Propose"));
    assert!(
        sim.run_until(seconds(10), |s| !kept(s, X).1.contains(&first))
            .unwrap(),
        "seed {seed}: X still carries {first:?}: {:?}",
        kept(&sim, X)
    );
    sim.crash(X);
    sim.network.drop_kinds.clear();

    // The others still keep X's proposal as possibly committed: M, Y and W without the
    // generation, V with it. M forms with them.
    for node in others.iter() {
        assert!(accepted_from_x(&sim, node), "seed {seed}, {node:?}");
        let with_it = kept(&sim, node).1.iter().any(|e| e.coordinator() == X);
        assert_eq!(
            with_it,
            node == V,
            "seed {seed}, {node:?}: {:?}",
            kept(&sim, node)
        );
    }
    if restarted {
        for node in formed.iter() {
            sim.crash(node);
            sim.restart(node);
        }
        for node in formed.iter() {
            assert!(accepted_from_x(&sim, node), "seed {seed}, {node:?}");
        }
    }
    let deadline = sim.now() + seconds(60);
    loop {
        match sim.run_cluster(M, others) {
            Ok(()) => break,
            Err(refusal) => assert!(sim.now() < deadline, "seed {seed}: {refusal:?}"),
        }
        sim.run_for(seconds(1)).unwrap();
    }
    assert!(
        sim.run_until(seconds(60), |s| s.formed(others)).unwrap(),
        "seed {seed}"
    );
    sim.run_for(seconds(5)).unwrap();
    for node in others.iter() {
        let (_, packages) = sim.config_in_effect(node).unwrap();
        assert!(
            packages.iter().all(|p| p.name != "pkgS"),
            "seed {seed}: {node:?} took the generation the cluster ran without (number {:?}, \
             before {before})",
            sim.generation_number(node)
        );
    }
}
