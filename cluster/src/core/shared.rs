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
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
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
}

/// A node's copy of the shared map.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SharedMap {
    entries: BTreeMap<String, (Version, Option<String>)>,
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

    /// Takes `entry` if it is newer than what this copy has for its key; true if taken.
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
            None if self.entries.len() >= ENTRIES_MAX => false,
            _ => {
                self.entries.insert(entry.key, (entry.version, entry.value));
                self.changes += 1;
                true
            }
        }
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

    /// True when the map holds nothing, tombstones included.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
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
