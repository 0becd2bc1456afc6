//! The invariants of cluster.md, checked after every simulated event.

use std::collections::BTreeMap;
use std::fmt;

use crate::core::{Epoch, Event, Incarnation, NodeId, NodeSet};

/// A broken invariant, with the seed that replays it.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The invariant (S2, S3, S4, L1, LOCK; HALT, of the messages sent).
    pub invariant: &'static str,
    /// What happened.
    pub detail: String,
    /// Simulated time, in seconds.
    pub at_seconds: f64,
    /// The seed of the run.
    pub seed: u64,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invariant {} broken at {:.3} s: {} (replay with SIM_SEED={})",
            self.invariant, self.at_seconds, self.detail, self.seed
        )
    }
}

impl std::error::Error for Violation {}

/// Whether a node's life is over (crashed, fenced, reset by its watchdog).
pub trait Lives {
    /// Whether `node` in `incarnation` may still be running anything.
    fn alive(&self, node: NodeId, incarnation: Incarnation) -> bool;
}

/// The invariant checker: it sees every event of every node, in simulated-time order.
#[derive(Debug, Default)]
pub struct Checker {
    /// Members installed under each epoch (S4).
    epochs: BTreeMap<Epoch, NodeSet>,
    /// The highest epoch each node installed, across its lives (S4).
    highest: BTreeMap<NodeId, Epoch>,
    /// The groups that won the lock of each instance (one at most).
    lock_winners: BTreeMap<Epoch, NodeSet>,
    /// Every membership committed (by its coordinator), by epoch.
    committed: BTreeMap<Epoch, NodeSet>,
    generations: BTreeMap<Epoch, u64>,
    /// The generation number each generation as shown took effect with, on any node: one
    /// shown number never names two configurations.
    shown: BTreeMap<u64, u64>,
    /// The nodes that told they were deleted from the cluster (`Reconfigured { retired }`)
    /// and have installed no membership since: out of every membership before, they are no
    /// part of the base of the quorum rule (as the nodes' own rule leaves deleted nodes out).
    retired: NodeSet,
    /// Counts, for reports.
    pub memberships_installed: u64,
    /// Takeovers checked.
    pub takeovers_checked: u64,
}

impl Checker {
    /// Checks one event of `node` at simulated time `at_seconds`.
    pub fn observe(
        &mut self,
        node: NodeId,
        event: &Event,
        lives: &dyn Lives,
        seed: u64,
        at_seconds: f64,
    ) -> Result<(), Violation> {
        let fail = |invariant, detail: String| Violation {
            invariant,
            detail,
            at_seconds,
            seed,
        };
        match event {
            Event::Reconfigured { retired: true } => self.retired.insert(node),
            Event::ConfigChanged { after, number, .. } => match self.shown.get(after) {
                Some(n) if n != number => {
                    return Err(fail(
                        "CONFIG",
                        format!(
                            "generation {after} took effect on {node} as number {number}, and \
                             as {n} elsewhere"
                        ),
                    ))
                }
                _ => {
                    self.shown.insert(*after, *number);
                }
            },
            Event::MembershipChanged {
                before_epoch,
                before,
                after_epoch,
                after,
                locks,
                left,
                generation_number: generation,
                ..
            } => {
                // A membership takes effect with one configuration generation everywhere.
                match self.generations.get(after_epoch) {
                    Some(g) if g != generation => {
                        return Err(fail(
                            "CONFIG",
                            format!(
                                "epoch {after_epoch} installed with generation {generation} on \
                                 {node} and {g} elsewhere"
                            ),
                        ))
                    }
                    _ => {
                        self.generations.insert(*after_epoch, *generation);
                    }
                }
                // Members that left gracefully accepted the new membership and join no other
                // group: they count as survivors for the quorum rule.
                let voters = after.union(*left);
                self.memberships_installed += 1;
                if let Some(previous) = self.highest.get(&node) {
                    if after_epoch <= previous {
                        return Err(fail(
                            "S4",
                            format!("{node} installed epoch {after_epoch} after {previous}"),
                        ));
                    }
                }
                self.highest.insert(node, *after_epoch);
                if after.contains(node) {
                    self.retired.remove(node);
                }
                match self.epochs.get(after_epoch) {
                    Some(members) if members != after => {
                        return Err(fail(
                            "S4",
                            format!(
                                "epoch {after_epoch} installed with {after:?} on {node} and \
                                 {members:?} elsewhere"
                            ),
                        ))
                    }
                    _ => {
                        self.epochs.insert(*after_epoch, *after);
                    }
                }
                // The quorum rule is the coordinator's decision, taken on its previous
                // membership; a member that missed a commit installs from an older one.
                if *before_epoch != Epoch::NONE && after_epoch.coordinator() == node {
                    let survivors = voters.intersection(*before).len();
                    let previous = before.len();
                    let majority = 2 * survivors > previous;
                    let tie = 2 * survivors == previous && locks.contains(before_epoch);
                    if !majority && !tie {
                        return Err(fail(
                            "S2",
                            format!(
                                "{node} installed {after:?} (epoch {after_epoch}) from \
                                 {before:?}: {survivors} of {previous} without the lock"
                            ),
                        ));
                    }
                }
                if after_epoch.coordinator() == node {
                    // Whatever the coordinator knew: the new membership holds quorum against
                    // the latest membership committed before it (cluster.md S2), leaving out
                    // the nodes that have since been deleted and know it: they run in no group.
                    let latest = self
                        .committed
                        .range(..*after_epoch)
                        .next_back()
                        .map(|(e, m)| (*e, *m));
                    if let Some((latest_epoch, latest)) = latest {
                        let base = latest.difference(self.retired);
                        let survivors = voters.intersection(base).len();
                        let majority = base.is_empty() || 2 * survivors > base.len();
                        let tie = 2 * survivors == base.len() && locks.contains(&latest_epoch);
                        if !majority && !tie {
                            return Err(fail(
                                "S2",
                                format!(
                                    "{node} committed {after:?} (epoch {after_epoch}): {survivors} \
                                     of {base:?}, the membership committed before it (epoch \
                                     {latest_epoch}) less the nodes deleted since, without its \
                                     lock"
                                ),
                            ));
                        }
                    }
                    self.committed.insert(*after_epoch, *after);
                    for instance in locks {
                        match self.lock_winners.get(instance) {
                            Some(winner) if winner != after => {
                                return Err(fail(
                                    "LOCK",
                                    format!(
                                        "the lock of epoch {instance} went to {winner:?} and \
                                         to {after:?}"
                                    ),
                                ))
                            }
                            _ => {
                                self.lock_winners.insert(*instance, *after);
                            }
                        }
                    }
                }
            }
            Event::TakeoverAllowed {
                node: lost,
                incarnation,
            } => {
                self.takeovers_checked += 1;
                if lives.alive(*lost, *incarnation) {
                    return Err(fail(
                        "S3",
                        format!(
                            "{node} may take over from {lost} (life {}) while it still runs",
                            incarnation.0
                        ),
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct AllAlive;

    impl Lives for AllAlive {
        fn alive(&self, _: NodeId, _: Incarnation) -> bool {
            true
        }
    }

    fn set(nodes: &[u32]) -> NodeSet {
        let mut set = NodeSet::default();
        for node in nodes {
            set.insert(NodeId(*node));
        }
        set
    }

    /// The coordinator's event for a membership formed from cold.
    fn formed(round: u64, coordinator: u32, members: &[u32]) -> Event {
        Event::MembershipChanged {
            before_epoch: Epoch::NONE,
            before: NodeSet::default(),
            after_epoch: Epoch::new(round, NodeId(coordinator)),
            after: set(members),
            same_lives: false,
            locks: Vec::new(),
            left: NodeSet::default(),
            generation_number: round,
        }
    }

    fn observe(checker: &mut Checker, node: u32, event: &Event) -> Result<(), Violation> {
        checker.observe(NodeId(node), event, &AllAlive, 0, 0.0)
    }

    #[test]
    fn a_deleted_node_that_knows_it_is_left_out_of_the_quorum_base() {
        let mut checker = Checker::default();
        observe(&mut checker, 0, &formed(4, 0, &[0, 2])).unwrap();
        // n2 is deleted, and tells so; n0 and n1 then form alone: 1 of {0, 2}, but n2 runs in
        // no group any more.
        observe(&mut checker, 2, &Event::Reconfigured { retired: true }).unwrap();
        observe(&mut checker, 0, &formed(5, 0, &[0, 1])).unwrap();
    }

    #[test]
    fn a_node_deleted_without_knowing_it_still_counts() {
        let mut checker = Checker::default();
        observe(&mut checker, 0, &formed(4, 0, &[0, 2])).unwrap();
        let violation = observe(&mut checker, 0, &formed(5, 0, &[0, 1])).unwrap_err();
        assert_eq!(violation.invariant, "S2", "{violation}");
    }

    #[test]
    fn a_deleted_node_added_again_counts_again() {
        let mut checker = Checker::default();
        observe(&mut checker, 2, &Event::Reconfigured { retired: true }).unwrap();
        // n2 is added again and joins n0: from then on it is part of the base.
        observe(&mut checker, 0, &formed(4, 0, &[0, 2])).unwrap();
        observe(&mut checker, 2, &formed(4, 0, &[0, 2])).unwrap();
        // n0 and n1 alone are 1 of {0, 2} again.
        let violation = observe(&mut checker, 1, &formed(5, 1, &[0, 1])).unwrap_err();
        assert_eq!(violation.invariant, "S2", "{violation}");
    }
}
