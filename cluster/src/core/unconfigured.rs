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

use std::collections::{BTreeSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::action::{Action, Event, Persisted};
use super::message::{Envelope, Message};
use super::node::cluster_id;
use super::types::{Incarnation, Instant, NodeId};
use crate::config::cluster::ClusterConfig;
use crate::config::package::PackageConfig;
use crate::config::Generation;

/// How long the cluster's creation waits for every node at each of its stages (the offer,
/// the commit), as a halted cmapplyconf of a configured node does.
const CREATE_STAGE: Duration = Duration::from_secs(4);

/// How often the creation's offer or commit goes again to the nodes that have not answered.
const CREATE_RESEND: Duration = Duration::from_millis(500);

/// The cluster's creation, given on this node: the first cmapplyconf, which every node of
/// the cluster file (each unconfigured) takes, or none.
#[derive(Debug)]
struct Creating {
    serial: u64,
    config: Arc<Generation>,
    committing: bool,
    /// Every other node, by NODE_NAME in lower case, with its heartbeat addresses.
    targets: Vec<(String, Vec<IpAddr>)>,
    /// Those whose answer to the current stage is awaited.
    waiting: BTreeSet<String>,
    /// Those that refused the commit, and why.
    refused: Vec<(String, String)>,
    /// What last went wrong reaching each node over the exchange.
    unreachable: std::collections::BTreeMap<String, String>,
    deadline: Instant,
    resend_at: Instant,
    /// The highest epoch any node promised (the commit's floor).
    floor: super::types::Epoch,
    /// cmcheckconf ([`Unconfigured::handle_check_create`]): the nodes are sent
    /// [`Message::ConfigCheck`], and once every node took it the command is answered with
    /// nothing committed, withdrawn or persisted anywhere.
    check: bool,
}

/// What a request over the configuration exchange to a node whose cmcld runs configured
/// fails with (it refuses the exchange's protocol at the handshake): an online addition
/// given again passes such a node over.
pub const RUNS_CONFIGURED: &str =
    "its cmcld runs as a node of a cluster (it does not take the configuration exchange)";

/// Each node of `targets` (NODE_NAME in lower case, heartbeat addresses) still `waiting`
/// for, with what went wrong reaching it over the exchange (`unreachable`), or where it was
/// sought.
pub(super) fn did_not_answer(
    targets: &[(String, Vec<IpAddr>)],
    waiting: &BTreeSet<String>,
    unreachable: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    targets
        .iter()
        .filter(|(n, _)| waiting.contains(n))
        .map(|(name, addresses)| match unreachable.get(name) {
            Some(e) => format!("{name} did not answer ({e})"),
            None => format!("{name} did not answer at {}", listed(addresses)),
        })
        .collect()
}

/// `addresses` as an answer lists them: "10.0.0.4, 10.1.0.4".
pub(crate) fn listed(addresses: &[IpAddr]) -> String {
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// How long an offer is held for its commit: longer than a giver's stage (an online
/// addition's waits 13 s for every node's answer before it commits).
const OFFER_HELD: Duration = Duration::from_secs(30);

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
    /// The cluster's creation given here.
    creating: Option<Creating>,
    /// The last cluster deletion (cmdeleteconf) offered here: nothing to take for a node
    /// configured in no cluster, so it is answered taken, and its commit too.
    deletion: Option<(String, Incarnation, u64)>,
    /// Numbers the creations given here.
    serial: u64,
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
            creating: None,
            deletion: None,
            serial: 0,
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

    /// Whether an offer is held, a commit taken or a creation under way: the daemon does not
    /// end meanwhile. A creation's check (cmcheckconf) holds nothing, and does not count.
    pub fn changing(&self, now: Instant) -> bool {
        self.committed.is_some()
            || self.creating.as_ref().is_some_and(|c| !c.check)
            || self.offered.as_ref().is_some_and(|o| now < o.until)
    }

    /// cmapplyconf given on this node: creates the cluster of `cluster` (which names this
    /// node) with `packages`, checked already (they resolve, their timing is safe). The
    /// generation (number 1) is offered to every other node of the file, each of which must
    /// run cmcld unconfigured with the cluster key; once every one took it, it is committed
    /// everywhere, this node first, and [`Event::CommandAnswered`] of the serial returned
    /// tells how it went. This node then starts its life as a node of the cluster, halted
    /// (cmruncl starts the cluster).
    pub fn handle_create(
        &mut self,
        now: Instant,
        cluster: ClusterConfig,
        packages: Vec<PackageConfig>,
    ) -> Result<u64, String> {
        self.create(now, (cluster, packages), false)
    }

    /// cmcheckconf given on this node for the cluster `cluster` would create: every other
    /// node of the file checks the generation as it would check the creation's offer (its
    /// key, its heartbeat addresses and timing, what it holds), and keeps nothing.
    /// [`Event::CommandAnswered`] of the serial returned tells how it went: no refusal when
    /// a cmapplyconf of the same files given here now would find every node take them.
    pub fn handle_check_create(
        &mut self,
        now: Instant,
        cluster: ClusterConfig,
        packages: Vec<PackageConfig>,
    ) -> Result<u64, String> {
        self.create(now, (cluster, packages), true)
    }

    /// The cluster's creation ([`Unconfigured::handle_create`]), or its check when `check`.
    fn create(
        &mut self,
        now: Instant,
        (cluster, packages): (ClusterConfig, Vec<PackageConfig>),
        check: bool,
    ) -> Result<u64, String> {
        self.handle_timeout(now);
        let me = self.name.clone();
        if self.changing(now) {
            return Err(format!(
                "another configuration change is being applied on {me}: try again shortly"
            ));
        }
        // A check on its way here gives way (it holds nothing).
        self.end_check(
            now,
            "another cmcheckconf or a cmapplyconf was given on this node meanwhile",
        );
        if cluster.node(&me).is_none() {
            return Err(format!(
                "{me} is not a node of cluster {}: give the command on one of its nodes",
                cluster.name
            ));
        }
        let targets: Vec<(String, Vec<IpAddr>)> = cluster
            .in_cluster()
            .map(|(_, n)| n)
            .filter(|n| !n.name.eq_ignore_ascii_case(&me))
            .map(|n| {
                (
                    n.name.to_ascii_lowercase(),
                    n.heartbeat_addresses().collect(),
                )
            })
            .collect();
        self.serial += 1;
        let sequence = self.persisted.sequence_floor + 1;
        let config = Arc::new(Generation {
            number: 1,
            sequence,
            cluster,
            packages,
        });
        self.creating = Some(Creating {
            serial: self.serial,
            config,
            committing: false,
            waiting: targets.iter().map(|(n, _)| n.clone()).collect(),
            targets,
            refused: Vec::new(),
            unreachable: Default::default(),
            deadline: now + CREATE_STAGE,
            resend_at: now,
            floor: self.persisted.epoch_max,
            check,
        });
        self.drive_creation(now);
        Ok(self.serial)
    }

    /// A request over the configuration exchange to node `name` failed (`why`): said in the
    /// creation's answer should the node not answer at all.
    pub fn handle_exchange_failure(&mut self, name: &str, why: &str) {
        if let Some(creating) = &mut self.creating {
            creating
                .unreachable
                .insert(name.to_ascii_lowercase(), why.to_owned());
        }
    }

    /// An answer over the configuration exchange from node `name` (its certificate's) to
    /// this node's creation.
    pub fn handle_exchange_answer(&mut self, now: Instant, name: &str, envelope: Envelope) {
        let name = name.to_ascii_lowercase();
        let Message::ConfigAnswer {
            serial,
            commit,
            refusal,
            epoch_max,
        } = envelope.message
        else {
            return;
        };
        let Some(creating) = &mut self.creating else {
            return;
        };
        if envelope.to_incarnation != self.incarnation
            || creating.serial != serial
            || creating.committing != commit
            || !creating.waiting.remove(&name)
        {
            return;
        }
        if !commit {
            creating.floor = creating.floor.max(epoch_max);
        }
        if let Some(why) = refusal {
            if !commit {
                // One refusal is enough: nothing is put in effect anywhere.
                let refusal = if creating.check {
                    why
                } else {
                    format!("{why}; nothing was applied")
                };
                self.end_creation(now, Some(refusal));
                return;
            }
            creating.refused.push((name, why));
        }
        self.drive_creation(now);
    }

    /// Moves the creation on: its stage's message to the nodes that have not answered, from
    /// the offer to the commit once every node took it, and its answer at the end.
    fn drive_creation(&mut self, now: Instant) {
        let Some(creating) = &mut self.creating else {
            return;
        };
        if creating.check && creating.waiting.is_empty() {
            // Every node would take the offer: the check is over, and nothing is held.
            self.end_creation(now, None);
            return;
        }
        if creating.waiting.is_empty() && !creating.committing {
            // Every node took the offer: in effect here first, then on every other node.
            let key = (self.name.clone(), self.incarnation, creating.serial);
            let config = creating.config.clone();
            let floor = creating.floor;
            creating.committing = true;
            creating.waiting = creating.targets.iter().map(|(n, _)| n.clone()).collect();
            creating.deadline = now + CREATE_STAGE;
            creating.resend_at = now;
            self.take(now, key, &config, floor);
            // Its new life waits for the answer.
            if let Some((_, at)) = &mut self.committed {
                *at = Instant::from_nanos(u64::MAX);
            }
        }
        let Some(creating) = &mut self.creating else {
            return;
        };
        if creating.waiting.is_empty() || now >= creating.deadline {
            let names = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>().join(", ");
            let refusal = if !creating.committing {
                let silent =
                    did_not_answer(&creating.targets, &creating.waiting, &creating.unreachable);
                let needs = format!(
                    "{}: each node of a new cluster needs its cmcld running, unconfigured, \
                     with the cluster's key and a certificate of its authority",
                    silent.join("; ")
                );
                Some(if creating.check {
                    needs
                } else {
                    format!("{needs}; nothing was applied")
                })
            } else {
                let mut missing: Vec<String> = creating
                    .refused
                    .iter()
                    .map(|(n, why)| format!("{n} refused it: {why}"))
                    .collect();
                if !creating.waiting.is_empty() {
                    missing.push(format!("{} did not confirm it", names(&creating.waiting)));
                }
                (!missing.is_empty()).then(|| {
                    format!(
                        "cluster {} is configured on {}, but {}: give the same cmapplyconf \
                         again before starting the cluster",
                        creating.config.cluster.name,
                        self.name,
                        missing.join("; ")
                    )
                })
            };
            self.end_creation(now, refusal);
            return;
        }
        if now >= creating.resend_at {
            creating.resend_at = now + CREATE_RESEND;
            let message = if creating.committing {
                Message::ConfigCommit {
                    serial: creating.serial,
                    number: creating.config.number,
                    epoch_floor: creating.floor,
                }
            } else if creating.check {
                Message::ConfigCheck {
                    serial: creating.serial,
                    config: creating.config.clone(),
                }
            } else {
                Message::ConfigOffer {
                    serial: creating.serial,
                    config: creating.config.clone(),
                }
            };
            let me = creating.config.cluster.position(&self.name).unwrap_or(0);
            let cluster_id = cluster_id(&creating.config.cluster.name);
            let targets: Vec<_> = creating
                .targets
                .iter()
                .filter(|(to, _)| creating.waiting.contains(to))
                .cloned()
                .collect();
            for (to, addresses) in targets {
                self.exchange(
                    to,
                    addresses,
                    (cluster_id, NodeId(me as u32)),
                    message.clone(),
                );
            }
        }
    }

    /// Sends `message` of cluster `cluster_id`, from this node numbered `from` there, to node
    /// `to` at `addresses` over the configuration exchange.
    fn exchange(
        &mut self,
        to: String,
        addresses: Vec<IpAddr>,
        (cluster_id, from): (u64, NodeId),
        message: Message,
    ) {
        self.actions.push_back(Action::Exchange {
            to,
            addresses,
            envelope: Envelope {
                cluster_id,
                config_generation: 0,
                from,
                from_incarnation: self.incarnation,
                to_incarnation: Incarnation(0),
                message,
            },
        });
    }

    /// Ends the creation's check on its way here, if there is one, answered with `why` it was
    /// not checked on every node.
    fn end_check(&mut self, now: Instant, why: &str) {
        if self.creating.as_ref().is_some_and(|c| c.check) {
            self.end_creation(
                now,
                Some(format!(
                    "{why}: the files were not checked on every node; check them again"
                )),
            );
        }
    }

    /// The creation is answered (`refusal`: why it was not, or not everywhere). An offer
    /// that did not go ahead is withdrawn; one committed here starts this node's new life a
    /// moment after the answer.
    fn end_creation(&mut self, now: Instant, refusal: Option<String>) {
        let Some(creating) = self.creating.take() else {
            return;
        };
        // A check left nothing held to withdraw.
        if !creating.committing && !creating.check {
            let cluster_id = cluster_id(&creating.config.cluster.name);
            let message = Message::ConfigWithdraw {
                serial: creating.serial,
            };
            for (to, addresses) in &creating.targets {
                self.exchange(
                    to.clone(),
                    addresses.clone(),
                    (cluster_id, NodeId(0)),
                    message.clone(),
                );
            }
        }
        self.actions
            .push_back(Action::Event(Event::CommandAnswered {
                serial: creating.serial,
                refusal,
                warning: None,
            }));
        if let Some((_, at)) = &mut self.committed {
            *at = now + CONFIGURED_LINGER;
        }
    }

    /// The next action to carry out.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Unconfigured::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let creation = self.creating.as_ref().map(|c| c.deadline.min(c.resend_at));
        let own = match &self.committed {
            Some((_, at)) if !self.told => Some(*at),
            _ => self.offered.as_ref().map(|o| o.until),
        };
        match (creation, own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passed: an offer expires, a committed generation starts its new life.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.drive_creation(now);
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
            // A cluster's deletion (a generation naming no node) finds nothing to delete here:
            // a node that missed its commit and gives it again gets this node's yes.
            Message::ConfigOffer { serial, config } if config.cluster.nodes.is_empty() => {
                let refusal = (envelope.cluster_id != cluster_id(&config.cluster.name))
                    .then(|| format!("the offer to {} is not of the cluster it names", self.name));
                if refusal.is_none() {
                    self.deletion = Some((key.0, key.1, serial));
                }
                (serial, false, refusal, config.cluster.name.clone(), None)
            }
            Message::ConfigCommit { serial, .. }
                if self.deletion == Some((key.0.clone(), key.1, serial)) =>
            {
                (serial, true, None, String::new(), None)
            }
            Message::ConfigOffer { serial, config } => {
                let key = (key.0, key.1, serial);
                let refusal = self
                    .check_offer(now, &peer, &key, &envelope.cluster_id, &config)
                    .err();
                let at = config.cluster.position(&self.name);
                if refusal.is_none() && self.committed.as_ref().is_none_or(|(k, _)| *k != key) {
                    self.end_check(
                        now,
                        "a cmapplyconf given on another node was taken meanwhile",
                    );
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
            // cmcheckconf on a node of the cluster (halted) that would add this one: checked
            // as the offer would be, and nothing kept.
            Message::ConfigCheck { serial, config } => {
                let key = (key.0, key.1, serial);
                let refusal = self
                    .check_offer(now, &peer, &key, &envelope.cluster_id, &config)
                    .err();
                let at = config.cluster.position(&self.name);
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
                let (cluster, at) = self
                    .persisted
                    .config
                    .as_ref()
                    .map_or((String::new(), None), |c| {
                        (c.cluster.name.clone(), c.cluster.position(&self.name))
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
        let names = |name: &str| config.cluster.node(name).is_some();
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
        // What this node would start from: a generation it could not start with is refused
        // now, not found at its next start.
        crate::packages::Catalog::resolve(&config.cluster, &config.packages)
            .map_err(|e| format!("{me} cannot take the configuration offered: {e}"))?;
        crate::timing::Timing::derive(&config.cluster, "").map_err(|findings| {
            format!(
                "{me} cannot take the configuration offered: {}",
                findings
                    .iter()
                    .map(|d| d.reason.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?;
        if self.creating.as_ref().is_some_and(|c| !c.check) {
            return Err(format!(
                "another configuration change is being applied on {me} (a cluster's \
                 creation): try again shortly"
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
            passed_over: Vec::new(),
            own_pending: None,
        };
        self.actions
            .push_back(Action::Persist(self.persisted.clone()));
        self.actions
            .push_back(Action::WriteConfiguration(config.clone()));
        self.committed = Some((key, now + CONFIGURED_LINGER));
    }
}
