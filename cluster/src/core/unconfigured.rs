//! A node whose cmcld belongs to no cluster yet: Serviceguard's cmclconfd. Its daemon holds
//! the cluster key and its control-channel certificate, but no cluster file; it answers a
//! halted cmapplyconf that adds it over the configuration exchange (`runtime::exchange`),
//! in the same two stages as a configured halted node ([`Message::ConfigOffer`], then
//! [`Message::ConfigCommit`]). Once a generation that names it is committed here, it is
//! persisted and its files written, and the daemon starts a new life from them, halted
//! ([`Event::Reconfigured`]).
//!
//! Sans-IO, as [`super::Node`]: the driver hands it each request with the NODE_NAME the
//! requester's certificate carries, carries out the [`Action`]s it returns in order (a
//! [`Action::Persist`] and a [`Action::WriteConfiguration`] are on disk before the answer
//! leaves), and calls [`Unconfigured::handle_timeout`] at [`Unconfigured::poll_timeout`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::action::{Action, Event, Persisted};
use super::message::{Envelope, Message};
use super::node::cluster_id;
use super::types::{Incarnation, Instant, NodeId};
use crate::config::Generation;

/// How long an offer is held for its commit: as long as a configured node holds one
/// (three stages of the giver's).
const OFFER_HELD: Duration = Duration::from_secs(12);

/// How long a node that took a commit stays unconfigured before its new life: a resent
/// commit (its answer lost) is answered meanwhile.
const CONFIGURED_LINGER: Duration = Duration::from_secs(1);

/// An offer taken, awaiting its commit.
#[derive(Debug)]
struct Offer {
    /// The giver, by NODE_NAME (lower case), its life and the command's serial there.
    from: (String, Incarnation, u64),
    config: Arc<Generation>,
    until: Instant,
}

/// An unconfigured node's core.
#[derive(Debug)]
pub struct Unconfigured {
    /// This node's NODE_NAME, in lower case.
    name: String,
    /// This daemon's life.
    incarnation: Incarnation,
    /// What this node's earlier lives promised (a node deleted from a cluster keeps it).
    persisted: Persisted,
    offered: Option<Offer>,
    /// The offer committed here, and when the new life starts.
    committed: Option<((String, Incarnation, u64), Instant)>,
    told: bool,
    actions: VecDeque<Action>,
}

impl Unconfigured {
    /// The core of node `name` in life `incarnation`, with the state its earlier lives
    /// persisted (default for a node never configured).
    pub fn new(name: &str, incarnation: Incarnation, persisted: Persisted) -> Unconfigured {
        Unconfigured {
            name: name.to_ascii_lowercase(),
            incarnation,
            persisted,
            offered: None,
            committed: None,
            told: false,
            actions: VecDeque::new(),
        }
    }

    /// This node's NODE_NAME (lower case).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The state persisted (the last [`Action::Persist`]'s, or the one it started with).
    pub fn persisted(&self) -> &Persisted {
        &self.persisted
    }

    /// The generation committed here (its new life starts from it), if any.
    pub fn committed(&self) -> Option<&Arc<Generation>> {
        self.committed.as_ref().and(self.persisted.config.as_ref())
    }

    /// Whether an offer is held or a commit taken: the daemon does not end meanwhile.
    pub fn changing(&self, now: Instant) -> bool {
        self.committed.is_some() || self.offered.as_ref().is_some_and(|o| now < o.until)
    }

    /// The next action to carry out.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Unconfigured::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.committed {
            Some((_, at)) if !self.told => Some(*at),
            _ => self.offered.as_ref().map(|o| o.until),
        }
    }

    /// Time passed: an offer expires, a committed generation starts its new life.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.offered.as_ref().is_some_and(|o| now >= o.until) {
            self.offered = None;
        }
        if let Some((_, at)) = &self.committed {
            if !self.told && now >= *at {
                self.told = true;
                self.actions
                    .push_back(Action::Event(Event::Reconfigured { retired: false }));
            }
        }
    }

    /// A request of the exchange from node `peer` (the NODE_NAME its certificate names):
    /// the answer to send back on the same connection, once the actions pushed meanwhile
    /// are carried out. None: not a request this node answers (no answer is sent).
    pub fn handle_request(
        &mut self,
        now: Instant,
        peer: &str,
        envelope: Envelope,
    ) -> Option<Envelope> {
        self.handle_timeout(now);
        let peer = peer.to_ascii_lowercase();
        let key = (peer.clone(), envelope.from_incarnation, 0);
        let (serial, commit, refusal, cluster, index) = match envelope.message {
            Message::ConfigOffer { serial, config } => {
                let key = (key.0, key.1, serial);
                let refusal = self
                    .check_offer(now, &peer, &key, &envelope.cluster_id, &config)
                    .err();
                let at = config
                    .cluster
                    .nodes
                    .iter()
                    .position(|n| n.name.eq_ignore_ascii_case(&self.name));
                if refusal.is_none() && self.committed.as_ref().is_none_or(|(k, _)| *k != key) {
                    // Persisted before the answer leaves, as on a configured node: it may
                    // be in effect on the giver alone, so nothing later here is shown as it.
                    if config.sequence > self.persisted.sequence_floor {
                        self.persisted.sequence_floor = config.sequence;
                        self.actions
                            .push_back(Action::Persist(self.persisted.clone()));
                    }
                    self.offered = Some(Offer {
                        from: key,
                        config: config.clone(),
                        until: now + OFFER_HELD,
                    });
                }
                (serial, false, refusal, config.cluster.name.clone(), at)
            }
            Message::ConfigCommit {
                serial,
                number,
                epoch_floor,
            } => {
                let key = (key.0, key.1, serial);
                let offered = self
                    .offered
                    .as_ref()
                    .filter(|o| o.from == key && o.config.number == number)
                    .map(|o| o.config.clone());
                let refusal = match offered {
                    Some(config) => {
                        self.offered = None;
                        self.take(now, key, &config, epoch_floor);
                        None
                    }
                    None if self.committed.as_ref().is_some_and(|(k, _)| *k == key) => None,
                    None => Some(format!(
                        "{} holds no offer of this change (it expired, or its cmcld started \
                         again)",
                        self.name
                    )),
                };
                let (cluster, at) =
                    self.persisted
                        .config
                        .as_ref()
                        .map_or((String::new(), None), |c| {
                            (
                                c.cluster.name.clone(),
                                c.cluster
                                    .nodes
                                    .iter()
                                    .position(|n| n.name.eq_ignore_ascii_case(&self.name)),
                            )
                        });
                (serial, true, refusal, cluster, at)
            }
            Message::ConfigWithdraw { serial } => {
                let key = (key.0, key.1, serial);
                if self.offered.as_ref().is_some_and(|o| o.from == key) {
                    self.offered = None;
                }
                (
                    serial,
                    false,
                    Some(format!("{} dropped the offer", self.name)),
                    String::new(),
                    None,
                )
            }
            _ => return None,
        };
        Some(Envelope {
            cluster_id: if cluster.is_empty() {
                envelope.cluster_id
            } else {
                cluster_id(&cluster)
            },
            config_generation: 0,
            from: NodeId(index.unwrap_or(0) as u32),
            from_incarnation: self.incarnation,
            to_incarnation: envelope.from_incarnation,
            message: Message::ConfigAnswer {
                serial,
                commit,
                refusal,
                epoch_max: self.persisted.epoch_max,
            },
        })
    }

    /// Whether this node takes the offer `config` of `peer`; why not, in the words the
    /// answer carries.
    fn check_offer(
        &self,
        now: Instant,
        peer: &str,
        key: &(String, Incarnation, u64),
        envelope_cluster: &u64,
        config: &Generation,
    ) -> Result<(), String> {
        let me = &self.name;
        if *envelope_cluster != cluster_id(&config.cluster.name) {
            return Err(format!(
                "the offer to {me} is not of the cluster it names ({})",
                config.cluster.name
            ));
        }
        let names = |name: &str| {
            config
                .cluster
                .nodes
                .iter()
                .any(|n| n.name.eq_ignore_ascii_case(name))
        };
        if !names(me) {
            return Err(format!(
                "{me} is not a node of cluster {} as offered",
                config.cluster.name
            ));
        }
        if peer == me || !names(peer) {
            return Err(format!(
                "{me} takes a configuration only from another node of it, not from {peer}"
            ));
        }
        if let Some((committed, _)) = &self.committed {
            if committed != key {
                return Err(format!(
                    "{me} took another configuration a moment ago and is starting with it: \
                     read its configuration (cmgetconf) and apply again"
                ));
            }
        }
        let other = self
            .offered
            .as_ref()
            .is_some_and(|o| now < o.until && (o.from.0 != key.0 || o.from.1 != key.1));
        if other {
            return Err(format!(
                "another configuration change is being applied on {me}: try again shortly"
            ));
        }
        Ok(())
    }

    /// The commit of the offer `key` of `config`: persisted as its new life starts from it
    /// (no membership installed or accepted, the epochs promised raised to `floor`), then
    /// its files written.
    fn take(
        &mut self,
        now: Instant,
        key: (String, Incarnation, u64),
        config: &Arc<Generation>,
        floor: super::types::Epoch,
    ) {
        self.persisted = Persisted {
            epoch_max: self.persisted.epoch_max.max(floor),
            installed: None,
            accepted: Vec::new(),
            config: Some(config.clone()),
            accepted_configs: Vec::new(),
            detached: Vec::new(),
            detached_marks: Vec::new(),
            sequence_floor: self.persisted.sequence_floor.max(config.sequence),
        };
        self.actions
            .push_back(Action::Persist(self.persisted.clone()));
        self.actions
            .push_back(Action::WriteConfiguration(config.clone()));
        self.committed = Some((key, now + CONFIGURED_LINGER));
    }
}
