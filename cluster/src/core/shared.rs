//! The shared map: small named values replicated to every member, for the layers above (the
//! WBEM agents keep their indication subscriptions here, so that a subscription made at one
//! node lives on when that node fails). The core knows nothing of what the values mean.
//!
//! Every change goes through the coordinator of the membership, which stamps it with a
//! [`Version`]: its membership's epoch and a count within it. Epochs only grow, and one
//! coordinator stamps within an epoch, so versions are unique and ordered cluster-wide. Every
//! copy keeps, per key, the value of the highest version it heard (a deletion is kept as a
//! tombstone with its version); merging two copies is taking the higher version per key, so
//! copies converge whatever the order in which they hear changes. When a membership is
//! committed, each member sends its copy to the coordinator, which passes on whatever was
//! new to it, and the coordinator sends its copy to every member.
//!
//! Tombstones do not stay for ever: they count toward [`ENTRIES_MAX`], and a monitoring tool
//! that subscribes and unsubscribes on every run would fill the map. The coordinator purges
//! them ([`SharedMap::purge_tombstones`]) and raises the copy's *floor* to the newest version
//! it purged. A copy with floor F holds every live key stamped at or below F that the cluster
//! kept and none that it deleted, so that:
//! - a copy refuses a key it does not hold with a version at or below its floor (a stale copy
//!   of a deleted key, from a node that was down when it was deleted);
//! - a copy that hears a whole copy with a higher floor drops its own keys at or below that
//!   floor which the whole copy lacks (they were deleted), then takes the floor.
//!
//! The floor is persisted and travels with whole copies only.
//!
//! The coordinator purges only once it heard every member's whole copy in its membership
//! (a member whose copy was lost sends it again when the coordinator's next whole copy
//! shows it missing), so no member holds a key it lacks; and only once every configured node
//! is a member, unless tombstones or keys pass their bounds, when it purges whoever is up.
//! Then a node that was down through the purge loses, when it joins, what it alone held at
//! or below the floor: copies of deleted keys, which is the point, but also a change it
//! stamped as coordinator and failed before sending on (acknowledged to its agent). That
//! change would come back when it joins without a purge.

use std::collections::BTreeMap;

use crate::core::Epoch;

/// The longest key.
pub const KEY_BYTES_MAX: usize = 1024;

/// The longest value.
pub const VALUE_BYTES_MAX: usize = 64 * 1024;

/// The most keys the map holds, tombstones included.
pub const ENTRIES_MAX: usize = 16_384;

/// When a value was set: the membership's epoch and a count within it.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Version {
    /// The epoch of the membership whose coordinator stamped it.
    pub epoch: Epoch,
    /// Its count within that epoch (from 1).
    pub count: u64,
}

/// One key's value and version; `None` is a deletion.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// When it was set.
    pub version: Version,
    /// The value; none once deleted.
    pub value: Option<String>,
}

/// Why a change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SharedError {
    /// The key is empty or too long.
    #[error("a shared key must have 1 to {KEY_BYTES_MAX} bytes")]
    Key,
    /// The value is too long.
    #[error("a shared value may have at most {VALUE_BYTES_MAX} bytes")]
    Value,
    /// The map is full.
    #[error("the shared map holds its most keys ({ENTRIES_MAX})")]
    Full,
    /// The coordinator's copy did not take the change (its floor is above the change's
    /// version: a peer told it a floor no coordinator stamped).
    #[error("the coordinator's copy of the shared map did not take the change")]
    NotTaken,
}

/// A node's copy of the shared map.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SharedMap {
    entries: BTreeMap<String, (Version, Option<String>)>,
    /// The newest version purged: a key this copy lacks at or below it was deleted.
    floor: Version,
    /// Counts the changes this copy took (not replicated): readers ask "anything new?".
    #[serde(skip)]
    changes: u64,
}

impl SharedMap {
    /// An empty map.
    pub fn new() -> SharedMap {
        SharedMap::default()
    }

    /// Checks a change before it is stamped.
    pub fn check(&self, key: &str, value: Option<&str>) -> Result<(), SharedError> {
        if key.is_empty() || key.len() > KEY_BYTES_MAX {
            return Err(SharedError::Key);
        }
        if value.is_some_and(|v| v.len() > VALUE_BYTES_MAX) {
            return Err(SharedError::Value);
        }
        if !self.entries.contains_key(key) && self.entries.len() >= ENTRIES_MAX {
            return Err(SharedError::Full);
        }
        Ok(())
    }

    /// The map of the first file format, which had no floor.
    pub fn from_entries(entries: Vec<Entry>) -> SharedMap {
        let mut map = SharedMap::new();
        for entry in entries {
            map.merge(entry);
        }
        map.changes = 0;
        map
    }

    /// Takes `entry` if it is newer than what this copy has for its key; true if taken. A key
    /// this copy lacks is not taken at or below the floor: it was deleted and purged.
    pub fn merge(&mut self, entry: Entry) -> bool {
        if entry.key.is_empty() || entry.key.len() > KEY_BYTES_MAX {
            return false;
        }
        if entry
            .value
            .as_ref()
            .is_some_and(|v| v.len() > VALUE_BYTES_MAX)
        {
            return false;
        }
        match self.entries.get(&entry.key) {
            Some((version, _)) if *version >= entry.version => false,
            None if entry.version <= self.floor => false,
            None if self.entries.len() >= ENTRIES_MAX => false,
            _ => {
                self.entries.insert(entry.key, (entry.version, entry.value));
                self.changes += 1;
                true
            }
        }
    }

    /// Takes another node's whole copy, `entries` with its `floor`: if that floor is higher
    /// than this copy's, first drops the keys at or below it that the whole copy lacks (they
    /// were deleted and purged); then merges the entries, and takes the floor. Returns the
    /// entries taken, and whether this copy changed at all (a drop is a change too).
    pub fn take_whole(&mut self, entries: Vec<Entry>, floor: Version) -> (Vec<Entry>, bool) {
        let mut changed = false;
        // The drop comes first: what it frees makes room for the copy's entries.
        if floor > self.floor {
            let kept: std::collections::BTreeSet<&str> = entries
                .iter()
                .filter(|entry| entry.version <= floor)
                .map(|entry| entry.key.as_str())
                .collect();
            let before = self.entries.len();
            // At or below the floor the whole copy holds only live keys; the others, and
            // every tombstone, were deleted and purged.
            self.entries.retain(|key, (version, value)| {
                *version > floor || (value.is_some() && kept.contains(key.as_str()))
            });
            if self.entries.len() != before {
                self.changes += 1;
                changed = true;
            }
        }
        // Merged against this copy's own floor, which the copy's does not lower.
        let mut taken = Vec::new();
        for entry in entries {
            if self.merge(entry.clone()) {
                taken.push(entry);
            }
        }
        if floor > self.floor {
            self.floor = floor;
            changed = true;
        }
        changed |= !taken.is_empty();
        (taken, changed)
    }

    /// Drops every tombstone and raises the floor to the newest of them; the floor if any
    /// was dropped.
    pub fn purge_tombstones(&mut self) -> Option<Version> {
        let newest = self
            .entries
            .values()
            .filter(|(_, value)| value.is_none())
            .map(|(version, _)| *version)
            .max()?;
        self.entries.retain(|_, (_, value)| value.is_some());
        self.floor = self.floor.max(newest);
        self.changes += 1;
        Some(self.floor)
    }

    /// How many deleted keys this copy still remembers.
    pub fn tombstones(&self) -> usize {
        self.entries.values().filter(|(_, v)| v.is_none()).count()
    }

    /// The newest version purged (the lowest version when none was).
    pub fn floor(&self) -> Version {
        self.floor
    }

    /// The live value at `key` (none when absent or deleted).
    pub fn value(&self, key: &str) -> Option<&str> {
        self.entries.get(key)?.1.as_deref()
    }

    /// The live values (no tombstones), by key.
    pub fn values(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .filter_map(|(k, (_, v))| Some((k.as_str(), v.as_deref()?)))
    }

    /// Every entry, tombstones included, as sent to another copy.
    pub fn entries(&self) -> Vec<Entry> {
        self.entries
            .iter()
            .map(|(key, (version, value))| Entry {
                key: key.clone(),
                version: *version,
                value: value.clone(),
            })
            .collect()
    }

    /// The highest version this copy holds.
    pub fn latest(&self) -> Option<Version> {
        self.entries.values().map(|(v, _)| *v).max()
    }

    /// How many changes this copy took since it was made (loading counts as none).
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// True when the map holds nothing, tombstones included, and never purged anything.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.floor == Version::default()
    }

    /// How many keys the map holds, tombstones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, epoch: u64, count: u64, value: Option<&str>) -> Entry {
        Entry {
            key: key.into(),
            version: Version {
                epoch: Epoch(epoch),
                count,
            },
            value: value.map(str::to_owned),
        }
    }

    #[test]
    fn copies_converge_whatever_the_order_they_hear_changes_in() {
        let changes = [
            entry("a", 1, 1, Some("one")),
            entry("a", 1, 2, Some("two")),
            entry("b", 1, 3, Some("x")),
            entry("b", 2, 1, None),
            entry("c", 2, 2, Some("y")),
        ];
        let mut forward = SharedMap::new();
        for change in changes.iter().cloned() {
            forward.merge(change);
        }
        let mut backward = SharedMap::new();
        for change in changes.iter().rev().cloned() {
            backward.merge(change);
        }
        assert_eq!(forward.entries(), backward.entries());
        let values: Vec<_> = forward.values().collect();
        assert_eq!(values, vec![("a", "two"), ("c", "y")]);
        // An older change heard late is not taken.
        assert!(!forward.merge(entry("a", 1, 1, Some("one"))));
        assert_eq!(
            forward.latest(),
            Some(Version {
                epoch: Epoch(2),
                count: 2
            })
        );
    }

    #[test]
    fn purged_tombstones_free_their_room_and_stale_copies_stay_out() {
        let mut map = SharedMap::new();
        // Twice as many keys set and deleted as the map holds: with a purge now and then it
        // never fills.
        for n in 0..2 * ENTRIES_MAX as u64 {
            let key = format!("k{n}");
            assert_eq!(map.check(&key, Some("v")), Ok(()), "key {n}");
            assert!(map.merge(entry(&key, 1, 2 * n + 1, Some("v"))));
            assert!(map.merge(entry(&key, 1, 2 * n + 2, None)));
            if map.tombstones() >= 1000 {
                map.purge_tombstones();
            }
        }
        assert!(map.purge_tombstones().is_some());
        assert!(map.purge_tombstones().is_none());
        assert_eq!(map.len(), 0);
        assert!(!map.is_empty(), "a map with a floor is not empty");
        let floor = map.floor();
        assert_eq!(floor.count, 4 * ENTRIES_MAX as u64);
        // A stale copy of a deleted key is not taken; a newer one, or one this copy holds,
        // is.
        assert!(!map.merge(entry("k5", 1, 11, Some("v"))));
        assert!(map.merge(entry("k5", 2, 1, Some("again"))));
        assert!(map.merge(entry("k5", 2, 2, Some("later"))));
    }

    #[test]
    fn a_whole_copy_with_a_higher_floor_drops_what_it_deleted() {
        // The coordinator's copy: "gone" deleted and purged, "kept" live from before.
        let mut coordinator = SharedMap::new();
        coordinator.merge(entry("kept", 1, 1, Some("k")));
        coordinator.merge(entry("gone", 1, 2, Some("g")));
        coordinator.merge(entry("gone", 2, 1, None));
        coordinator.merge(entry("dead", 2, 2, None));
        coordinator.purge_tombstones();
        coordinator.merge(entry("new", 2, 3, Some("n")));
        // A stale member: it still has "gone" live and a tombstone of "dead", and a key of
        // its own stamped later.
        let mut member = SharedMap::new();
        member.merge(entry("kept", 1, 1, Some("k")));
        member.merge(entry("gone", 1, 2, Some("g")));
        member.merge(entry("dead", 2, 2, None));
        member.merge(entry("mine", 3, 1, Some("m")));
        let before = member.changes();
        let (taken, changed) = member.take_whole(coordinator.entries(), coordinator.floor());
        assert!(changed);
        assert!(member.changes() > before);
        assert_eq!(taken, vec![entry("new", 2, 3, Some("n"))]);
        assert_eq!(member.floor(), coordinator.floor());
        assert_eq!(
            member.entries(),
            vec![
                entry("kept", 1, 1, Some("k")),
                entry("mine", 3, 1, Some("m")),
                entry("new", 2, 3, Some("n")),
            ]
        );
        // The coordinator, told the member's whole copy with the same floor, takes only
        // what is new to it.
        let (taken, _) = coordinator.take_whole(member.entries(), member.floor());
        assert_eq!(taken, vec![entry("mine", 3, 1, Some("m"))]);
        // A whole copy with a lower floor drops nothing, and what it holds at or below this
        // copy's floor that this copy lacks stays out.
        let mut stale = SharedMap::new();
        stale.merge(entry("gone", 1, 2, Some("g")));
        let (taken, changed) = coordinator.take_whole(stale.entries(), stale.floor());
        assert!(taken.is_empty() && !changed);
        assert_eq!(coordinator.values().count(), 3);
    }

    #[test]
    fn a_full_copy_takes_a_whole_copy_that_replaced_its_keys() {
        // A member back with a full map of keys deleted (and purged) while it was away.
        let mut member = SharedMap::new();
        for n in 0..ENTRIES_MAX as u64 {
            assert!(member.merge(entry(&format!("stale{n}"), 1, n + 1, Some("s"))));
        }
        let mut coordinator = SharedMap::new();
        for n in 0..100 {
            coordinator.merge(entry(&format!("new{n}"), 2, n + 1, Some("n")));
        }
        coordinator.merge(entry("x", 2, 1000, None));
        coordinator.purge_tombstones();
        let (taken, changed) = member.take_whole(coordinator.entries(), coordinator.floor());
        assert!(changed);
        assert_eq!(taken.len(), 100);
        assert_eq!(member.entries(), coordinator.entries());
    }

    #[test]
    fn oversized_and_excess_changes_are_refused() {
        let mut map = SharedMap::new();
        assert_eq!(map.check("", None), Err(SharedError::Key));
        assert_eq!(
            map.check("k", Some(&"v".repeat(VALUE_BYTES_MAX + 1))),
            Err(SharedError::Value)
        );
        for n in 0..ENTRIES_MAX {
            assert!(map.merge(entry(&n.to_string(), 1, n as u64 + 1, Some("v"))));
        }
        assert_eq!(map.check("new", Some("v")), Err(SharedError::Full));
        assert_eq!(map.check("7", Some("v")), Ok(()));
        assert!(!map.merge(entry("new", 2, 1, Some("v"))));
    }
}
