//! The small fixed-width types of the core: time, node identities, node sets, epochs.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// A point on one node's monotonic clock (nanoseconds since an arbitrary origin). The core
/// never reads a clock: the driver passes `now`. Instants of different nodes are never
/// compared.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Instant(pub u64);

impl Instant {
    /// The instant `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Instant {
        Instant(nanos)
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    fn add(self, duration: Duration) -> Instant {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(nanos))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;

    fn sub(self, duration: Duration) -> Instant {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_sub(nanos))
    }
}

/// A node: its index in the cluster file's NODE_NAME order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The index, for tables indexed by node.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {}", self.0)
    }
}

/// One life of a node's daemon. A restarted daemon takes a larger one (the driver keeps a
/// boot counter on disk), so that its old self is never mistaken for it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Incarnation(pub u64);

/// A set of nodes (at most [`NodeSet::CAPACITY`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct NodeSet(pub u32);

impl NodeSet {
    /// The most nodes a set holds (the cluster file allows 16).
    pub const CAPACITY: usize = 32;
    /// No nodes.
    pub const EMPTY: NodeSet = NodeSet(0);

    /// Nodes `0..count`.
    pub fn first(count: usize) -> NodeSet {
        if count >= Self::CAPACITY {
            NodeSet(u32::MAX)
        } else {
            NodeSet((1u32 << count) - 1)
        }
    }

    /// Whether `node` is in the set.
    pub fn contains(self, node: NodeId) -> bool {
        node.index() < Self::CAPACITY && self.0 & (1 << node.0) != 0
    }

    /// Adds `node` (ignored beyond the capacity).
    pub fn insert(&mut self, node: NodeId) {
        if node.index() < Self::CAPACITY {
            self.0 |= 1 << node.0;
        }
    }

    /// Removes `node`.
    pub fn remove(&mut self, node: NodeId) {
        if node.index() < Self::CAPACITY {
            self.0 &= !(1 << node.0);
        }
    }

    /// The number of nodes.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The nodes in both sets.
    pub fn intersection(self, other: NodeSet) -> NodeSet {
        NodeSet(self.0 & other.0)
    }

    /// The nodes in either set.
    pub fn union(self, other: NodeSet) -> NodeSet {
        NodeSet(self.0 | other.0)
    }

    /// The nodes of `self` not in `other`.
    pub fn difference(self, other: NodeSet) -> NodeSet {
        NodeSet(self.0 & !other.0)
    }

    /// The lowest node, the coordinator of a membership.
    pub fn lowest(self) -> Option<NodeId> {
        (self.0 != 0).then(|| NodeId(self.0.trailing_zeros()))
    }

    /// The nodes in increasing order.
    pub fn iter(self) -> impl Iterator<Item = NodeId> {
        (0..Self::CAPACITY as u32)
            .filter(move |bit| self.0 & (1 << bit) != 0)
            .map(NodeId)
    }
}

impl fmt::Debug for NodeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(|n| n.0)).finish()
    }
}

impl FromIterator<NodeId> for NodeSet {
    fn from_iter<I: IntoIterator<Item = NodeId>>(iter: I) -> NodeSet {
        let mut set = NodeSet::EMPTY;
        for node in iter {
            set.insert(node);
        }
        set
    }
}

/// A membership generation: a round number and the coordinator that proposed it, so that two
/// coordinators never propose the same epoch. Epochs only grow on every node, across restarts
/// (the highest one seen is persisted before it is acknowledged).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Epoch(pub u64);

impl Epoch {
    /// No membership yet.
    pub const NONE: Epoch = Epoch(0);

    /// The epoch of `round` proposed by `coordinator`.
    pub fn new(round: u64, coordinator: NodeId) -> Epoch {
        Epoch((round << 8) | u64::from(coordinator.0 & 0xff))
    }

    /// The round number.
    pub fn round(self) -> u64 {
        self.0 >> 8
    }

    /// The coordinator that proposed it.
    pub fn coordinator(self) -> NodeId {
        NodeId((self.0 & 0xff) as u32)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0 >> 8, self.0 & 0xff)
    }
}
