//! The membership candidate: the best fully connected group of nodes, chosen the same way on
//! every node so that asymmetric and non-transitive partitions converge (cluster.md
//! scenarios 17 and 18).

use super::types::{NodeId, NodeSet};

/// Who hears whom: `rows[p]` is the set of nodes `p` hears. An edge counts only when both
/// ends hear each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reachability {
    /// The nodes that may be chosen.
    pub eligible: NodeSet,
    /// What each node hears, by node index.
    pub rows: Vec<NodeSet>,
}

impl Reachability {
    /// The nodes `node` is joined to both ways, among the eligible ones.
    fn neighbours(&self, node: NodeId) -> NodeSet {
        let hears = self.rows.get(node.index()).copied().unwrap_or_default();
        hears
            .iter()
            .filter(|&peer| {
                peer != node
                    && self.eligible.contains(peer)
                    && self
                        .rows
                        .get(peer.index())
                        .is_some_and(|row| row.contains(node))
            })
            .collect()
    }

    /// The best clique: the most members of `previous` (keep the running membership), then
    /// the most nodes, then the lowest node numbers. Every maximal clique is considered
    /// (Bron-Kerbosch with pivoting; at most 16 nodes).
    pub fn best_clique(&self, previous: NodeSet) -> NodeSet {
        let neighbours: Vec<NodeSet> = (0..self.rows.len() as u32)
            .map(|n| self.neighbours(NodeId(n)))
            .collect();
        let mut best = NodeSet::EMPTY;
        bron_kerbosch(
            &neighbours,
            NodeSet::EMPTY,
            self.eligible,
            NodeSet::EMPTY,
            previous,
            &mut best,
        );
        best
    }
}

/// Whether `candidate` is preferred to `incumbent`.
pub fn better(candidate: NodeSet, incumbent: NodeSet, previous: NodeSet) -> bool {
    let key = |set: NodeSet| (set.intersection(previous).len(), set.len());
    match key(candidate).cmp(&key(incumbent)) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        // Same counts: the set holding the lowest node where they differ wins.
        std::cmp::Ordering::Equal => {
            let differ = NodeSet(candidate.0 ^ incumbent.0);
            differ
                .lowest()
                .is_some_and(|lowest| candidate.contains(lowest))
        }
    }
}

fn bron_kerbosch(
    neighbours: &[NodeSet],
    clique: NodeSet,
    mut candidates: NodeSet,
    mut excluded: NodeSet,
    previous: NodeSet,
    best: &mut NodeSet,
) {
    if candidates.is_empty() && excluded.is_empty() {
        if better(clique, *best, previous) {
            *best = clique;
        }
        return;
    }
    let pivot = candidates
        .union(excluded)
        .iter()
        .max_by_key(|p| neighbours[p.index()].intersection(candidates).len());
    let pivot_neighbours = pivot.map_or(NodeSet::EMPTY, |p| neighbours[p.index()]);
    for node in candidates.difference(pivot_neighbours).iter() {
        let mut grown = clique;
        grown.insert(node);
        let around = neighbours[node.index()];
        bron_kerbosch(
            neighbours,
            grown,
            candidates.intersection(around),
            excluded.intersection(around),
            previous,
            best,
        );
        candidates.remove(node);
        excluded.insert(node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(nodes: &[u32]) -> NodeSet {
        nodes.iter().map(|&n| NodeId(n)).collect()
    }

    /// A reachability where the listed pairs hear each other both ways.
    fn links(count: u32, pairs: &[(u32, u32)]) -> Reachability {
        let mut rows = vec![NodeSet::EMPTY; count as usize];
        for &(a, b) in pairs {
            rows[a as usize].insert(NodeId(b));
            rows[b as usize].insert(NodeId(a));
        }
        Reachability {
            eligible: NodeSet::first(count as usize),
            rows,
        }
    }

    #[test]
    fn a_fully_connected_group_is_chosen_whole() {
        let r = links(3, &[(0, 1), (1, 2), (0, 2)]);
        assert_eq!(r.best_clique(set(&[0, 1, 2])), set(&[0, 1, 2]));
    }

    #[test]
    fn non_transitive_partition_keeps_the_lowest_pair() {
        // 0-1 and 1-2 hear each other, 0-2 do not.
        let r = links(3, &[(0, 1), (1, 2)]);
        assert_eq!(r.best_clique(set(&[0, 1, 2])), set(&[0, 1]));
    }

    #[test]
    fn previous_members_win_over_lower_numbers() {
        let r = links(3, &[(0, 1), (1, 2)]);
        assert_eq!(r.best_clique(set(&[1, 2])), set(&[1, 2]));
    }

    #[test]
    fn one_way_links_do_not_count() {
        let mut r = links(3, &[(0, 1)]);
        // 2 hears 0 and 1, they do not hear it.
        r.rows[2] = set(&[0, 1]);
        assert_eq!(r.best_clique(set(&[0, 1, 2])), set(&[0, 1]));
    }

    #[test]
    fn larger_groups_win_and_ties_go_to_the_lowest_node() {
        let r = links(4, &[(0, 1), (2, 3)]);
        assert_eq!(r.best_clique(set(&[0, 1, 2, 3])), set(&[0, 1]));
        let r = links(5, &[(0, 1), (2, 3), (3, 4), (2, 4)]);
        assert_eq!(r.best_clique(set(&[0, 1, 2, 3, 4])), set(&[2, 3, 4]));
    }

    #[test]
    fn ineligible_nodes_are_left_out() {
        let mut r = links(3, &[(0, 1), (1, 2), (0, 2)]);
        r.eligible.remove(NodeId(2));
        assert_eq!(r.best_clique(set(&[0, 1, 2])), set(&[0, 1]));
    }
}
