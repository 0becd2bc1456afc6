//! Which of the core's actions wait for a state file on its way to disk ([`WriteGate`]).
//!
//! The core's rule: a persisted state is on disk before any later message leaves. The timing
//! thread never waits on the disk, so it hands the state to the writer thread and holds the
//! later actions here until the writer confirms. Three kinds of action are not held:
//!
//! - arming and petting the safety timer, and a fence: they never wait for the disk;
//! - a heartbeat, while only the shared map is on its way (not the acceptor's state): it
//!   tells nothing of the map, the network may reorder it with any other message anyway, and
//!   held behind a disk that takes a second or more to sync (common on a busy machine) it
//!   would cost the node its lease: with MEMBER_TIMEOUT at a few seconds, a burst of
//!   subscription writes on a slow disk made a node lose quorum and fence itself.
//!
//! Of several shared maps held before the next acceptor's state, only the newest is written:
//! every action held after them then finds a map at least as new on disk, and a disk slower
//! than the changes writes one map per sync instead of a growing queue of them.

use std::collections::VecDeque;

use crate::core::{Action, Message};

/// The actions held behind a state file on its way to disk.
#[derive(Debug, Default)]
pub struct WriteGate {
    /// The file on its way: `Some(true)` for the acceptor's state (a failure fences),
    /// `Some(false)` for the shared map.
    writing: Option<bool>,
    held: VecDeque<Action>,
}

impl WriteGate {
    /// An open gate: nothing on its way.
    pub fn new() -> WriteGate {
        WriteGate::default()
    }

    /// `action` back if it is to be carried out now; otherwise it is held, in order.
    pub fn admit(&mut self, action: Action) -> Option<Action> {
        if self.writing.is_none() {
            return Some(action);
        }
        let urgent = matches!(
            action,
            Action::ArmSafetyTimer { .. } | Action::PetSafetyTimer { .. } | Action::Fence { .. }
        );
        let heartbeat = matches!(
            &action,
            Action::Send { envelope, .. } if matches!(envelope.message, Message::Heartbeat(_))
        );
        if urgent || (heartbeat && !self.acceptor_pending()) {
            return Some(action);
        }
        self.held.push_back(action);
        None
    }

    /// A state file was handed to the writer (`fatal`: the acceptor's state): what follows
    /// waits for [`WriteGate::written`].
    pub fn writing(&mut self, fatal: bool) {
        self.writing = Some(fatal);
    }

    /// The writer is done with the file on its way (written or not).
    pub fn written(&mut self) {
        self.writing = None;
    }

    /// The next held action to carry out now: none while a file is on its way (call again
    /// after each action carried out, which may write). A shared map is the newest held
    /// before the next acceptor's state; the others are dropped.
    pub fn release(&mut self) -> Option<Action> {
        if self.writing.is_some() {
            return None;
        }
        let mut action = self.held.pop_front()?;
        if let Action::PersistShared(map) = &mut action {
            let until = self
                .held
                .iter()
                .position(|a| matches!(a, Action::Persist(_)))
                .unwrap_or(self.held.len());
            let mut index = 0;
            self.held.retain(|held| {
                index += 1;
                match held {
                    Action::PersistShared(newer) if index <= until => {
                        *map = newer.clone();
                        false
                    }
                    _ => true,
                }
            });
        }
        Some(action)
    }

    /// Whether a state file is on its way to disk.
    pub fn is_writing(&self) -> bool {
        self.writing.is_some()
    }

    /// How many actions are held.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Whether the acceptor's state is on its way to disk or held to be written.
    fn acceptor_pending(&self) -> bool {
        self.writing == Some(true) || self.held.iter().any(|a| matches!(a, Action::Persist(_)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::core::shared::SharedMap;
    use crate::core::{
        Envelope, Epoch, Heartbeat, Incarnation, Instant, Leaving, NodeId, NodeSet, Persisted,
        Phase, Term,
    };

    fn send(message: Message) -> Action {
        Action::Send {
            to: NodeId(1),
            network: 0,
            envelope: Envelope {
                cluster_id: 1,
                config_generation: 1,
                from: NodeId(0),
                from_incarnation: Incarnation(1),
                to_incarnation: Incarnation(1),
                message,
            },
        }
    }

    fn heartbeat(sequence: u64) -> Action {
        send(Message::Heartbeat(Heartbeat {
            sequence,
            sent_at: Instant::from_nanos(0),
            term: Term {
                lease: Duration::from_secs(11),
                grace: Duration::from_secs(1),
            },
            phase: Phase::Running,
            epoch: Epoch::NONE,
            members: NodeSet::EMPTY,
            reach: NodeSet::EMPTY,
            echo: None,
            heard: None,
            packages: Vec::new(),
            restarts: Vec::new(),
            failures: Vec::new(),
            resources: Vec::new(),
            switching: Vec::new(),
            switching_version: (0, 0),
            executed: (0, 0),
            leaving: Leaving::No,
            lock: crate::status::Health::Unknown,
            lock_refusal: None,
        }))
    }

    fn map(key: &str) -> Action {
        let mut map = SharedMap::default();
        assert!(map.merge(crate::core::shared::Entry {
            key: key.into(),
            version: crate::core::shared::Version {
                epoch: Epoch::NONE,
                count: 1,
            },
            value: Some("v".into()),
        }));
        Action::PersistShared(Arc::new(map))
    }

    fn keys(action: &Action) -> Vec<String> {
        match action {
            Action::PersistShared(map) => map.values().map(|(k, _)| k.to_owned()).collect(),
            other => panic!("not a shared map: {other:?}"),
        }
    }

    fn acceptor() -> Action {
        Action::Persist(Persisted::default())
    }

    #[test]
    fn an_open_gate_holds_nothing() {
        let mut gate = WriteGate::new();
        assert!(gate.admit(heartbeat(1)).is_some());
        assert!(gate.admit(send(Message::ConfigRequest)).is_some());
        assert_eq!(gate.held(), 0);
    }

    #[test]
    fn a_heartbeat_passes_the_shared_map_but_not_the_acceptor_state() {
        let mut gate = WriteGate::new();
        gate.writing(false);
        assert!(gate.admit(heartbeat(1)).is_some(), "behind the shared map");
        assert!(gate.admit(send(Message::ConfigRequest)).is_none());
        assert!(gate.admit(acceptor()).is_none());
        assert!(
            gate.admit(heartbeat(2)).is_none(),
            "behind an acceptor state held"
        );
        assert!(gate
            .admit(Action::PetSafetyTimer {
                deadline: Instant::from_nanos(0)
            })
            .is_some());
        assert_eq!(gate.held(), 3);
        gate.written();
        assert!(matches!(gate.release(), Some(Action::Send { .. })));
        assert!(matches!(gate.release(), Some(Action::Persist(_))));
        gate.writing(true);
        assert!(gate.release().is_none(), "the acceptor state is on its way");
        assert!(gate.admit(heartbeat(3)).is_none());
        assert!(gate
            .admit(Action::Fence {
                reason: crate::core::FenceReason::QuorumLost
            })
            .is_some());
        gate.written();
        assert!(matches!(gate.release(), Some(Action::Send { .. })));
        assert!(matches!(gate.release(), Some(Action::Send { .. })));
        assert!(gate.release().is_none());
        assert!(gate.admit(heartbeat(4)).is_some());
    }

    #[test]
    fn only_the_newest_shared_map_before_an_acceptor_state_is_written() {
        let mut gate = WriteGate::new();
        gate.writing(false);
        for action in [
            map("a"),
            send(Message::ConfigRequest),
            map("b"),
            acceptor(),
            map("c"),
        ] {
            assert!(gate.admit(action).is_none());
        }
        gate.written();
        let first = gate.release().expect("a map to write");
        assert_eq!(keys(&first), ["b"], "the newest before the acceptor state");
        gate.writing(false);
        assert!(gate.release().is_none());
        gate.written();
        assert!(matches!(gate.release(), Some(Action::Send { .. })));
        assert!(matches!(gate.release(), Some(Action::Persist(_))));
        gate.writing(true);
        gate.written();
        assert_eq!(keys(&gate.release().expect("the last map")), ["c"]);
        assert!(gate.release().is_none());
    }
}
