//! cmapplyconf adding nodes to the running cluster (Serviceguard adds a node online: the
//! node's cmclconfd takes the configuration, and `cmrunnode` starts it afterwards).
//!
//! The node the command is given on (a member) drives it in three steps:
//! 1. **Check.** The generation is offered to each added node over the configuration
//!    exchange ([`Action::Exchange`]); its cmcld runs unconfigured (`core::Unconfigured`) and
//!    takes the offer only if it can start from it (key, certificate, its heartbeat
//!    addresses). One refusal or silence ends the command: nothing was applied.
//! 2. **Apply.** The change goes to the coordinator as any running cmapplyconf does, and
//!    takes effect with the next membership on every member, or on none. The members'
//!    tables grow by the added nodes (their numbers follow the nodes kept, see
//!    `config::keep_node_order`); the added nodes are configured, not members.
//! 3. **Commit.** The generation in effect, numbered as the cluster numbered it, is offered
//!    to the added nodes again, then committed there: each persists it, writes its files and
//!    starts again, halted, as a node of the cluster. `cmrunnode` there joins it.
//!
//! 4. **Retire.** A node the change deletes (it must be out of the cluster: halted or down)
//!    keeps its number, unused, until the cluster is halted. It is offered the generation
//!    in effect, then committed it, over the control channel (it is configured: its cmcld
//!    runs halted): it persists it, removes its files and goes on unconfigured, so that it
//!    never starts again as a node of the cluster, and can be added again.
//!
//! A node that misses step 3 or 4 (down, or this node failed meanwhile) is named in the
//! answer ([`EnrolmentOutcome::not_configured`]). The same cmapplyconf given again on any member,
//! its generation in effect, takes step 3 again for every configured node that is not a
//! member: an unconfigured cmcld takes it; a configured one refuses the exchange's protocol
//! and is passed over; one that cannot be reached is told as such (it may be a configured
//! node that is down).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{cluster_id, same_packages, Node, Taken};
use crate::config::cluster::ClusterConfig;
use crate::config::package::PackageConfig;
use crate::config::Generation;
use crate::core::action::Event;
use crate::core::message::{Envelope, Message, Phase};
use crate::core::types::{Epoch, Incarnation, Instant, NodeId};
use crate::core::unconfigured::{did_not_answer, RUNS_CONFIGURED};
use crate::packages::Refusal;

/// How long each exchange step waits for the added nodes' answers: longer than one request
/// over the exchange may take at one address (1 s to connect, 5 s for the handshake and
/// the request, 6 s for the answer, which the node gives once its state is on disk).
const ENROL_STAGE: Duration = Duration::from_secs(13);

/// How often an exchange step's message goes again to the nodes that have not answered.
const ENROL_RESEND: Duration = Duration::from_millis(500);

/// How long the cluster has to put the change in effect (the coordinator proposes it with
/// the next membership, normally within a second or two).
const ENROL_APPLY_WAIT: Duration = Duration::from_secs(20);

/// The longest the whole command takes (the daemon's wait for its answer covers it): the
/// check, the cluster's, the offer and the commit to the added nodes, and to the deleted
/// ones.
pub const ENROL_ANSWER_WAIT: Duration =
    Duration::from_secs(ENROL_STAGE.as_secs() * 5 + ENROL_APPLY_WAIT.as_secs() + 10);

/// The outcomes kept for the daemon to read with the answers.
const OUTCOMES_KEPT: usize = 8;

/// A node reached over the configuration exchange: its NODE_NAME in lower case, and its
/// heartbeat addresses.
type Reached = (String, Vec<IpAddr>);

/// Where an online addition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The added nodes are offered the change, to check that they can take it.
    Check,
    /// The cluster puts it in effect.
    Apply,
    /// The generation in effect is offered to the added nodes.
    Offer,
    /// ... and committed there.
    Commit,
    /// The generation in effect is offered to the deleted nodes.
    Tell,
    /// ... and committed there.
    Retire,
}

/// How an online addition that put (or found) its generation in effect ended, for the
/// answer's details.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnrolmentOutcome {
    /// The nodes that took the generation in effect (by NODE_NAME, lower case).
    pub took: Vec<String>,
    /// Nodes of the configuration in effect that did not take it: added now and silent,
    /// refusing or not confirming, or refusing when given again (running unconfigured); and
    /// nodes deleted now that were not told so (they keep the configuration of before).
    pub not_configured: Vec<String>,
    /// Given again: nodes that could not be reached over the exchange (configured and
    /// down, or added and not running), each with what went wrong.
    pub not_reached: Vec<(String, String)>,
    /// Given again, and nothing changed anywhere.
    pub unchanged: bool,
}

/// A cmapplyconf given on this member that adds nodes to the running cluster.
#[derive(Debug)]
pub(super) struct Enrolment {
    /// The command's serial (its answer's, [`Event::CommandAnswered`]), also the serial of
    /// the offers and commits the added nodes are sent.
    serial: u64,
    /// The generation the files were merged into (cmapplyconf's compare-and-swap).
    base: Option<u64>,
    /// The change (numbered 0 until the cluster numbers it), then the generation in effect.
    config: Arc<Generation>,
    stage: Stage,
    /// The nodes added, by NODE_NAME in lower case, with their heartbeat addresses.
    added: Vec<(String, Vec<IpAddr>)>,
    /// Those whose answer to the current step is awaited.
    waiting: BTreeSet<String>,
    /// What last went wrong reaching each node over the exchange.
    unreachable: BTreeMap<String, String>,
    /// The nodes that did not take the generation in effect, each with what happened
    /// ("refused it: ...", "did not answer ...").
    refused: Vec<(String, String)>,
    /// The serials the change went to a coordinator under: a refusal or a give-up may come
    /// for any.
    forwarded: Vec<u64>,
    /// The membership the change was last given in: given again in the next one, should
    /// that one not have taken it (a coordinator drops a change of another membership, and
    /// a new coordinator does not know what the old one had pending).
    given_in: Option<Epoch>,
    /// The change is pending on this node, as the coordinator.
    pending_here: bool,
    deadline: Instant,
    resend_at: Instant,
    /// The highest membership epoch promised here and by the added nodes: each added node
    /// promises at least that much (an epoch's low byte is its proposer's number, which a
    /// node deleted earlier may have had).
    floor: Epoch,
    /// Step 3 given again for every node that is not a member (see the module's text).
    quiet: bool,
    /// The nodes deleted, by NODE_NAME in lower case, with their numbers.
    deleted: Vec<(String, NodeId)>,
    /// Added nodes that did not confirm the commit of step 3.
    unconfirmed: Vec<String>,
    /// Deleted nodes that were not told (step 4), each with what happened.
    untold: Vec<(String, String)>,
    /// Given again: deleted nodes the exchange did not reach (down, or not running cmcld),
    /// each with what happened.
    unreached: Vec<(String, String)>,
    /// Given again: the deleted nodes offered the generation over the exchange with the
    /// added ones, to learn which run unconfigured already (they refuse it, and are passed
    /// over) and which run configured still (they refuse the exchange, and are told).
    probing: BTreeSet<String>,
}

impl Node {
    /// cmapplyconf of `cluster` (checked: it only adds nodes, see
    /// [`crate::config::needs_halted_cluster`]) on this member of the running cluster: step
    /// 1 starts, and [`Event::CommandAnswered`] of the serial returned tells how it ended.
    pub(super) fn start_enrolment(
        &mut self,
        now: Instant,
        base: Option<u64>,
        cluster: ClusterConfig,
        packages: Vec<PackageConfig>,
    ) -> Result<Taken, Refusal> {
        let other_pending =
            self.view.coordinator() == Some(self.settings.me) && self.pending_config.is_some();
        if self.enrolment.is_some() || other_pending {
            return Err(Refusal::ConfigurationChanging);
        }
        let added = self.added_by(&cluster);
        let deleted = crate::config::deleted_nodes(&self.settings.config, &cluster)
            .into_iter()
            .map(|(index, name)| (name.to_ascii_lowercase(), NodeId(index as u32)))
            .collect();
        let config = Arc::new(Generation {
            number: 0,
            sequence: self.settings.config_sequence.max(self.sequence_floor) + 1,
            cluster,
            packages,
        });
        Ok(self.enrol(now, Stage::Check, base, config, (added, deleted), false))
    }

    /// The same cmapplyconf again, its generation in effect: every configured node that is
    /// not a member is sent the generation (step 3), which an added node that missed it
    /// takes. None: every node is a member.
    pub(super) fn enrol_again(&mut self, now: Instant) -> Option<Taken> {
        if self.enrolment.is_some() {
            return None;
        }
        let members = self.view.members;
        // Every node not a member; those deleted while the cluster ran too, to be told
        // (step 4) should they still run configured.
        let address = |n: &crate::config::cluster::NodeConfig| {
            (
                n.name.to_ascii_lowercase(),
                n.heartbeat_addresses().collect::<Vec<IpAddr>>(),
            )
        };
        let others: Vec<(String, Vec<IpAddr>)> = self
            .settings
            .config
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| !members.contains(NodeId(*i as u32)))
            .map(|(_, n)| address(n))
            .collect();
        let deleted: Vec<(String, NodeId)> = self
            .settings
            .config
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.deleted)
            .map(|(i, n)| (n.name.to_ascii_lowercase(), NodeId(i as u32)))
            .collect();
        if others.is_empty() {
            return None;
        }
        let generation = self.generation_in_effect();
        let taken = self.enrol(now, Stage::Offer, None, generation, (others, deleted), true);
        if let Some(e) = &mut self.enrolment {
            e.probing = e.deleted.iter().map(|(n, _)| n.clone()).collect();
        }
        Some(taken)
    }

    /// How the online addition answered as `serial` ended (among the last few), when it
    /// ended with its generation in effect.
    pub fn enrolment_outcome(&self, serial: u64) -> Option<&EnrolmentOutcome> {
        self.enrolment_outcomes
            .iter()
            .find(|(s, _)| *s == serial)
            .map(|(_, outcome)| outcome)
    }

    /// The generation in effect, as the added nodes are sent it.
    fn generation_in_effect(&self) -> Arc<Generation> {
        match &self.installed_config {
            Some(config) if config.number == self.settings.config_generation => config.clone(),
            _ => Arc::new(Generation {
                number: self.settings.config_generation,
                sequence: self.settings.config_sequence,
                cluster: (*self.settings.config).clone(),
                packages: (*self.settings.packages).clone(),
            }),
        }
    }

    /// The nodes `cluster` adds to the configuration in effect, with their heartbeat
    /// addresses.
    fn added_by(&self, cluster: &ClusterConfig) -> Vec<(String, Vec<IpAddr>)> {
        let added = crate::config::added_nodes(&self.settings.config, cluster);
        cluster
            .nodes
            .iter()
            .filter(|n| added.contains(&n.name))
            .map(|n| {
                (
                    n.name.to_ascii_lowercase(),
                    n.heartbeat_addresses().collect(),
                )
            })
            .collect()
    }

    fn enrol(
        &mut self,
        now: Instant,
        stage: Stage,
        base: Option<u64>,
        config: Arc<Generation>,
        (added, deleted): (Vec<Reached>, Vec<(String, NodeId)>),
        quiet: bool,
    ) -> Taken {
        self.command_serial += 1;
        let serial = self.command_serial;
        let waiting = if stage == Stage::Tell {
            deleted.iter().map(|(n, _)| n.clone()).collect()
        } else {
            added.iter().map(|(n, _)| n.clone()).collect()
        };
        self.enrolment = Some(Enrolment {
            serial,
            base,
            config,
            stage,
            waiting,
            added,
            deleted,
            unconfirmed: Vec::new(),
            untold: Vec::new(),
            unreached: Vec::new(),
            probing: BTreeSet::new(),
            unreachable: BTreeMap::new(),
            refused: Vec::new(),
            forwarded: Vec::new(),
            given_in: None,
            pending_here: false,
            deadline: now + ENROL_STAGE,
            resend_at: now,
            floor: self.promised,
            quiet,
        });
        self.drive_enrolment(now);
        Taken::Forwarded(serial)
    }

    /// The serial of the online addition under way here, if any (its answer takes longer
    /// than a command's: [`ENROL_ANSWER_WAIT`]).
    pub fn enrolling(&self) -> Option<u64> {
        self.enrolment.as_ref().map(|e| e.serial)
    }

    /// When [`Node::drive_enrolment`] is due.
    pub(super) fn enrolment_timeout(&self) -> Option<Instant> {
        self.enrolment.as_ref().map(|e| match e.stage {
            Stage::Apply => e.deadline,
            _ => e.deadline.min(e.resend_at),
        })
    }

    /// Moves the online addition on.
    pub(super) fn drive_enrolment(&mut self, now: Instant) {
        let Some(e) = &self.enrolment else {
            return;
        };
        // Out of the cluster before the change took effect: it is not this node's to see
        // through any more (a member may still carry it on: cmviewcl there tells).
        if matches!(e.stage, Stage::Check | Stage::Apply) && self.phase == Phase::Halted {
            let how = if e.stage == Stage::Check {
                "this node left the cluster; nothing was applied"
            } else {
                "this node left the cluster before the change took effect: see cmviewcl on \
                 a member, and should it be in effect there, give the same cmapplyconf \
                 again to configure the nodes it adds"
            };
            self.end_enrolment(Some(how.to_owned()));
            return;
        }
        match e.stage {
            Stage::Check if e.waiting.is_empty() => {
                if let Err(refusal) = self.submit_enrolment(now) {
                    self.end_enrolment(Some(format!("{refusal}; nothing was applied")));
                }
                return;
            }
            Stage::Apply => {
                let names = super::node_names(&self.settings.config);
                let nodes = &self.settings.config.nodes;
                let in_effect = e.added.iter().all(|(n, _)| names.contains(n))
                    && e.deleted
                        .iter()
                        .all(|(_, id)| nodes.get(id.index()).is_some_and(|n| n.deleted));
                let moved_on = e.given_in.is_some_and(|epoch| epoch != self.view.epoch);
                if in_effect {
                    let config = self.generation_in_effect();
                    if e.added.is_empty() {
                        let deleted = e.deleted.iter().map(|(n, _)| n.clone()).collect();
                        self.next_stage(now, Stage::Tell, Some(config), Some(deleted));
                    } else {
                        self.next_stage(now, Stage::Offer, Some(config), None);
                    }
                } else if now >= e.deadline {
                    let added = e.added.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
                    let then = if added.is_empty() {
                        "tell the nodes it deletes".to_owned()
                    } else {
                        format!("configure {}", added.join(", "))
                    };
                    self.end_enrolment(Some(format!(
                        "the cluster did not put the change in effect within {} s (see \
                         cmviewcl; should it take effect later, give the same cmapplyconf \
                         again to {then})",
                        ENROL_APPLY_WAIT.as_secs(),
                    )));
                } else if moved_on && self.phase == Phase::Running {
                    // Given again in this membership: the coordinator takes it once (the
                    // same change pending or in effect is answered as taken). Refused here
                    // now (a package failing over, say), the first may still go ahead: the
                    // deadline tells; but not once a node it deletes is a member (no
                    // coordinator takes it then).
                    if let Err(refusal @ Refusal::DeletesMember { .. }) = self.submit_enrolment(now)
                    {
                        self.end_enrolment(Some(format!("{refusal}; nothing was applied")));
                    }
                }
                return;
            }
            Stage::Offer if e.waiting.is_empty() => {
                let took: BTreeSet<String> = but(e.added.iter().map(|(n, _)| n), &e.refused)
                    .filter(|n| !e.quiet || !e.unreachable.contains_key(n))
                    .collect();
                if took.is_empty() {
                    self.tell_deleted(now);
                } else {
                    self.next_stage(now, Stage::Commit, None, Some(took));
                }
                return;
            }
            Stage::Commit if e.waiting.is_empty() => {
                self.tell_deleted(now);
                return;
            }
            Stage::Tell if e.waiting.is_empty() => {
                let took: BTreeSet<String> =
                    but(e.deleted.iter().map(|(n, _)| n), &e.untold).collect();
                if took.is_empty() {
                    self.finish_enrolment();
                } else {
                    self.next_stage(now, Stage::Retire, None, Some(took));
                }
                return;
            }
            Stage::Retire if e.waiting.is_empty() => {
                self.finish_enrolment();
                return;
            }
            _ => {}
        }
        let Some(e) = &mut self.enrolment else {
            return;
        };
        if now >= e.deadline {
            match e.stage {
                Stage::Check => {
                    let silent = did_not_answer(&e.added, &e.waiting, &e.unreachable).join("; ");
                    self.end_enrolment(Some(format!(
                        "{silent}: a node added needs its cmcld running, unconfigured, with \
                         the cluster's key and a certificate of its authority; nothing was \
                         applied"
                    )));
                }
                Stage::Offer => {
                    // Those that did not answer are named at the end.
                    for name in std::mem::take(&mut e.waiting) {
                        if e.probing.remove(&name) {
                            e.added.retain(|(n, _)| *n != name);
                            e.deleted.retain(|(n, _)| *n != name);
                            e.unreached.push((name, "did not answer".to_owned()));
                            continue;
                        }
                        let why = e.unreachable.get(&name).map_or_else(
                            || "did not answer".to_owned(),
                            |w| format!("did not answer ({w})"),
                        );
                        e.refused.push((name, why));
                    }
                    self.drive_enrolment(now);
                }
                Stage::Tell | Stage::Retire => {
                    let why = if e.stage == Stage::Tell {
                        "did not answer"
                    } else {
                        "did not confirm it"
                    };
                    for name in std::mem::take(&mut e.waiting) {
                        e.untold.push((name, why.to_owned()));
                    }
                    self.drive_enrolment(now);
                }
                Stage::Commit => self.tell_deleted(now),
                Stage::Apply => {}
            }
            return;
        }
        if now < e.resend_at {
            return;
        }
        e.resend_at = now + ENROL_RESEND;
        let message = match e.stage {
            Stage::Commit | Stage::Retire => Message::ConfigCommit {
                serial: e.serial,
                number: e.config.number,
                epoch_floor: e.floor,
            },
            _ => Message::ConfigOffer {
                serial: e.serial,
                config: e.config.clone(),
            },
        };
        if matches!(e.stage, Stage::Tell | Stage::Retire) {
            // Over the control channel: a deleted node's number, name and addresses stay
            // (its messages count for nothing else).
            let targets: Vec<NodeId> = e
                .deleted
                .iter()
                .filter(|(n, _)| e.waiting.contains(n))
                .map(|(_, id)| *id)
                .collect();
            for to in targets {
                self.send_to_life(to, Incarnation(0), &message);
            }
            return;
        }
        let cluster_id = cluster_id(&e.config.cluster.name);
        let targets: Vec<(String, Vec<IpAddr>)> = e
            .added
            .iter()
            .filter(|(n, _)| e.waiting.contains(n))
            .cloned()
            .collect();
        for (to, addresses) in targets {
            self.exchange(to, addresses, cluster_id, message.clone());
        }
    }

    /// Step `stage` begins (with `config` as what the added nodes are sent, if given), for
    /// the nodes `waiting` (None: every added node).
    fn next_stage(
        &mut self,
        now: Instant,
        stage: Stage,
        config: Option<Arc<Generation>>,
        waiting: Option<BTreeSet<String>>,
    ) {
        if let Some(e) = &mut self.enrolment {
            e.stage = stage;
            if let Some(config) = config {
                e.config = config;
            }
            e.waiting = waiting.unwrap_or_else(|| e.added.iter().map(|(n, _)| n.clone()).collect());
            e.deadline = now + ENROL_STAGE;
            e.resend_at = now;
        }
        self.drive_enrolment(now);
    }

    /// Step 3 is over (the added nodes that did not confirm its commit are kept to be
    /// named): step 4 begins, if the change deletes nodes.
    fn tell_deleted(&mut self, now: Instant) {
        let Some(e) = &mut self.enrolment else {
            return;
        };
        if e.stage == Stage::Commit {
            let unconfirmed = std::mem::take(&mut e.waiting);
            e.unconfirmed.extend(unconfirmed);
        }
        if e.deleted.is_empty() {
            self.finish_enrolment();
            return;
        }
        let deleted = e.deleted.iter().map(|(n, _)| n.clone()).collect();
        self.next_stage(now, Stage::Tell, None, Some(deleted));
    }

    /// A deleted node's answer (`from`, over the control channel): to step 4 of the change
    /// given here, or to the coordinator telling it ([`Node::deleted_heard`]). True when it
    /// was either.
    pub(super) fn deleted_answered(
        &mut self,
        now: Instant,
        from: NodeId,
        envelope: &Envelope,
    ) -> bool {
        let Message::ConfigAnswer {
            serial,
            commit,
            refusal,
            ..
        } = &envelope.message
        else {
            return false;
        };
        let answer = DeletedAnswer {
            from,
            serial: *serial,
            commit: *commit,
            refusal: refusal.as_deref(),
            to_this_life: envelope.to_incarnation == self.incarnation,
        };
        self.retire_answered(now, &answer) || self.deleted_told_answered(now, &answer)
    }

    /// A deleted node's answer in step 4: true when it is this change's.
    fn retire_answered(&mut self, now: Instant, answer: &DeletedAnswer) -> bool {
        let DeletedAnswer {
            from,
            serial,
            commit,
            refusal,
            to_this_life,
        } = *answer;
        let Some(e) = &mut self.enrolment else {
            return false;
        };
        let Some(name) = e
            .deleted
            .iter()
            .find(|(_, id)| *id == from)
            .map(|(n, _)| n.clone())
        else {
            return false;
        };
        if serial != e.serial {
            return false;
        }
        let expected = match e.stage {
            Stage::Tell => !commit,
            Stage::Retire => commit,
            _ => false,
        };
        if !expected || !to_this_life || !e.waiting.remove(&name) {
            return true;
        }
        if let Some(why) = refusal {
            e.untold.push((name, format!("refused it: {why}")));
        }
        self.drive_enrolment(now);
        true
    }

    /// Step 2: every added node took the offer; the change goes to the coordinator (again,
    /// when the membership it was given in is over), checked again here against the
    /// cluster as it is now.
    fn submit_enrolment(&mut self, now: Instant) -> Result<(), Refusal> {
        let Some(e) = &self.enrolment else {
            return Ok(());
        };
        let first = e.stage == Stage::Check;
        let (base, cluster, packages) =
            (e.base, e.config.cluster.clone(), e.config.packages.clone());
        if self.phase != Phase::Running || self.safety_expired(now) || !self.quorate(now) {
            return Err(Refusal::ClusterNotRunning);
        }
        let epoch = self.view.epoch;
        if !self.in_effect(&cluster, &packages) {
            self.check_base(base)?;
            self.check_apply(&cluster, &packages)?;
            match self.view.coordinator() {
                Some(coordinator) if coordinator != self.settings.me => {
                    let serial = self.forward_apply(coordinator, base, cluster, packages);
                    if let Some(e) = &mut self.enrolment {
                        e.forwarded.push(serial);
                        e.pending_here = false;
                    }
                }
                _ => {
                    let same = self
                        .pending_config
                        .as_ref()
                        .is_some_and(|(c, p)| *c == cluster && same_packages(p, &packages));
                    if !same {
                        if self.pending_config.is_some() {
                            return Err(Refusal::ConfigurationChanging);
                        }
                        self.pending_config = Some((cluster, packages));
                        self.pending_origin = None;
                        self.config_attempts = 0;
                    }
                    if let Some(e) = &mut self.enrolment {
                        e.pending_here = true;
                    }
                }
            }
        }
        if let Some(e) = &mut self.enrolment {
            e.stage = Stage::Apply;
            e.given_in = Some(epoch);
            if first {
                e.deadline = now + ENROL_APPLY_WAIT;
            }
        }
        self.drive_enrolment(now);
        Ok(())
    }

    /// The coordinator's answer to the change this addition forwarded (`serial`), or its
    /// later word that it gave the change up: true when it was this addition's.
    pub(super) fn enrolment_forward_answered(
        &mut self,
        serial: u64,
        refusal: Option<&String>,
    ) -> bool {
        let ours = self
            .enrolment
            .as_ref()
            .is_some_and(|e| e.stage == Stage::Apply && e.forwarded.contains(&serial));
        if ours {
            if let Some(why) = refusal {
                self.end_enrolment(Some(format!("{why}; nothing was applied")));
            }
        }
        ours
    }

    /// The change this node coordinates was given up (`refusal`): the addition given here,
    /// if it was that change, ends with it. True if it did.
    pub(super) fn enrolment_given_up(&mut self, refusal: &Refusal) -> bool {
        let ours = self
            .enrolment
            .as_ref()
            .is_some_and(|e| e.stage == Stage::Apply && e.pending_here);
        if ours {
            self.end_enrolment(Some(format!("{refusal}; nothing was applied")));
        }
        ours
    }

    /// Whether an answer or a failure of the exchange with `name` about `serial` is this
    /// addition's.
    fn enrolment_concerns(&self, serial: Option<u64>, name: &str) -> bool {
        self.enrolment.as_ref().is_some_and(|e| {
            serial.is_none_or(|s| s == e.serial) && e.added.iter().any(|(n, _)| n == name)
        })
    }

    /// An added node's answer (its certificate names `name`) over the exchange: true when
    /// it is this addition's.
    pub(super) fn enrolment_answered(
        &mut self,
        now: Instant,
        name: &str,
        envelope: &Envelope,
    ) -> bool {
        let Message::ConfigAnswer {
            serial,
            commit,
            refusal,
            epoch_max,
        } = &envelope.message
        else {
            return false;
        };
        if !self.enrolment_concerns(Some(*serial), name) {
            return false;
        }
        let Some(e) = &mut self.enrolment else {
            return false;
        };
        let stage_commit = e.stage == Stage::Commit;
        if envelope.to_incarnation != self.incarnation
            || stage_commit != *commit
            || e.stage == Stage::Apply
            || !e.waiting.remove(name)
        {
            return true;
        }
        e.floor = e.floor.max(*epoch_max);
        // It answered: what went wrong reaching it before is over.
        e.unreachable.remove(name);
        if e.probing.remove(name) {
            // Deleted, and its cmcld runs unconfigured (a configured one refuses the
            // exchange): it was told already.
            e.added.retain(|(n, _)| n != name);
            e.deleted.retain(|(n, _)| n != name);
            self.drive_enrolment(now);
            return true;
        }
        if let Some(why) = refusal {
            if e.stage == Stage::Check {
                // One refusal is enough: nothing is put in effect anywhere.
                self.end_enrolment(Some(format!("{why}; nothing was applied")));
                return true;
            }
            e.refused
                .push((name.to_owned(), format!("refused it: {why}")));
        }
        self.drive_enrolment(now);
        true
    }

    /// A request over the exchange to `name` about the change `serial` failed (`why`): true
    /// when it was this addition's.
    pub(super) fn enrolment_unreachable(
        &mut self,
        now: Instant,
        name: &str,
        serial: Option<u64>,
        why: &str,
    ) -> bool {
        if !self.enrolment_concerns(serial, name) {
            return false;
        }
        let Some(e) = &mut self.enrolment else {
            return false;
        };
        if !e.waiting.contains(name) {
            // Answered already (this was an earlier send of the step).
            return true;
        }
        let configured = why.contains(RUNS_CONFIGURED);
        if e.probing.remove(name) {
            // Deleted: running configured, it is told over the control channel (step 4);
            // not reached, it is named.
            e.waiting.remove(name);
            e.added.retain(|(n, _)| n != name);
            if !configured {
                e.deleted.retain(|(n, _)| n != name);
                e.unreached.push((name.to_owned(), why.to_owned()));
            }
            self.drive_enrolment(now);
            return true;
        }
        if e.stage == Stage::Commit && configured {
            // It took the commit and started again as a node of the cluster (its answer
            // was lost): taken.
            e.waiting.remove(name);
            e.unreachable.remove(name);
            self.drive_enrolment(now);
            return true;
        }
        if e.quiet && e.stage == Stage::Offer {
            // Given again: a configured node refuses the exchange (passed over); one not
            // reached is told, once.
            e.waiting.remove(name);
            if configured {
                e.added.retain(|(n, _)| n != name);
            } else {
                e.unreachable.insert(name.to_owned(), why.to_owned());
            }
            self.drive_enrolment(now);
            return true;
        }
        e.unreachable.insert(name.to_owned(), why.to_owned());
        true
    }

    /// Step 3 is over: answered, naming the nodes that did not take the generation.
    fn finish_enrolment(&mut self) {
        let Some(e) = self.enrolment.take() else {
            return;
        };
        let mut outcome = EnrolmentOutcome::default();
        let mut missing: Vec<String> = Vec::new();
        for (name, what) in &e.refused {
            missing.push(format!("{name} {what}"));
            outcome.not_configured.push(name.clone());
        }
        for name in &e.unconfirmed {
            missing.push(format!("{name} did not confirm it"));
            outcome.not_configured.push(name.clone());
        }
        // Deleted and not told: they keep the configuration of before.
        let mut untold = Vec::new();
        for (name, what) in &e.untold {
            untold.push(format!("{name} {what}"));
            outcome.not_configured.push(name.clone());
        }
        for (name, why) in &e.unreached {
            outcome
                .not_reached
                .push((name.clone(), format!("deleted; {why}")));
        }
        let retired: Vec<String> = but(e.deleted.iter().map(|(n, _)| n), &e.untold).collect();
        for (name, _) in &e.added {
            let failed = outcome.not_configured.contains(name);
            match e.unreachable.get(name) {
                Some(why) if e.quiet && !failed => {
                    outcome.not_reached.push((name.clone(), why.clone()));
                }
                _ if !failed => outcome.took.push(name.clone()),
                _ => {}
            }
        }
        let mut told = Vec::new();
        if !untold.is_empty() {
            told.push(format!(
                "generation {} is in effect in the cluster, which no longer counts the nodes \
                 it deletes, but they were not told so: {}; such a node keeps its files and \
                 the cluster refuses it: once its cmcld runs, give the same cmapplyconf again, \
                 and it goes on unconfigured",
                e.config.sequence,
                untold.join("; ")
            ));
        }
        if e.quiet && !retired.is_empty() {
            told.push(format!(
                "{} took generation {} in effect, which deletes it (it goes on unconfigured)",
                retired.join(", "),
                e.config.sequence
            ));
        }
        if !missing.is_empty() {
            told.push(format!(
                "generation {} is in effect in the cluster, but {}: once its cmcld runs \
                 unconfigured, give the same cmapplyconf again",
                e.config.sequence,
                missing.join("; ")
            ));
        }
        if e.quiet && !outcome.took.is_empty() {
            told.push(format!(
                "{} took generation {} in effect (cmrunnode there starts it)",
                outcome.took.join(", "),
                e.config.sequence
            ));
        }
        if !outcome.not_reached.is_empty() {
            told.push(format!(
                "not reached over the configuration exchange: {} (given again once its cmcld \
                 runs, a node added while it was down takes the configuration, and one deleted \
                 while it was down is told)",
                outcome
                    .not_reached
                    .iter()
                    .map(|(n, why)| format!("{n} ({why})"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        outcome.unchanged = e.quiet && outcome.took.is_empty() && retired.is_empty();
        if self.enrolment_outcomes.len() == OUTCOMES_KEPT {
            self.enrolment_outcomes.pop_front();
        }
        self.enrolment_outcomes.push_back((e.serial, outcome));
        self.event(Event::CommandAnswered {
            serial: e.serial,
            refusal: None,
            warning: (!told.is_empty()).then(|| told.join("; ")),
        });
    }

    /// The addition ends before its change took effect (`refusal`): the offer the added
    /// nodes hold is withdrawn.
    fn end_enrolment(&mut self, refusal: Option<String>) {
        let Some(e) = self.enrolment.take() else {
            return;
        };
        if matches!(e.stage, Stage::Check | Stage::Apply) {
            let cluster_id = cluster_id(&e.config.cluster.name);
            let message = Message::ConfigWithdraw { serial: e.serial };
            for (to, addresses) in &e.added {
                self.exchange(to.clone(), addresses.clone(), cluster_id, message.clone());
            }
        }
        self.event(Event::CommandAnswered {
            serial: e.serial,
            refusal,
            warning: None,
        });
    }
}

/// Kept for [`Node::enrolment_outcome`].
pub(super) type Outcomes = VecDeque<(u64, EnrolmentOutcome)>;

/// The names of `nodes` but those `failed` names (with what happened to them).
fn but<'a>(
    nodes: impl Iterator<Item = &'a String> + 'a,
    failed: &'a [(String, String)],
) -> impl Iterator<Item = String> + 'a {
    nodes
        .filter(move |n| !failed.iter().any(|(f, _)| f == *n))
        .cloned()
}

/// A deleted node's [`Message::ConfigAnswer`], as step 4 and the coordinator read it.
#[derive(Clone, Copy)]
struct DeletedAnswer<'a> {
    from: NodeId,
    serial: u64,
    commit: bool,
    refusal: Option<&'a str>,
    /// It answers this life of this node (a later life drops it).
    to_this_life: bool,
}

/// Each deleted node the coordinator told: the serial of the offer and its commit, when it
/// was sent, and how far it went.
pub(super) type DeletedTold = BTreeMap<NodeId, (u64, Instant, Telling)>;

/// How far the coordinator's telling of a deleted node went ([`DeletedTold`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Telling {
    /// The offer was sent.
    Offered,
    /// It took the offer: the commit was sent.
    Committing,
    /// It confirmed the commit: it goes on unconfigured, and is not told again.
    Told,
}

/// How often the coordinator tells again a deleted node it keeps hearing.
const DELETED_TOLD_AGAIN: Duration = Duration::from_secs(5);

/// How often the coordinator tells a deleted node it does not hear: halted (a halted
/// cmcld sends nothing), or down.
const DELETED_TOLD_UNHEARD: Duration = Duration::from_secs(30);

impl Node {
    /// A message of node `from`, deleted while the cluster ran: it was not told (it was down
    /// when the change was applied, say) and runs configured still, starting in vain. The
    /// coordinator offers it the generation in effect over the control channel, then
    /// commits it there (step 4 of an addition), so that it goes on unconfigured without
    /// the same cmapplyconf being given again. Now and then, while it is heard.
    pub(super) fn deleted_heard(&mut self, now: Instant, from: NodeId) {
        self.tell_deleted_node(now, from, DELETED_TOLD_AGAIN);
    }

    /// The coordinator tells the deleted nodes it does not hear as well, less often: one
    /// that took a halted cmapplyconf's offer and halted, then missed its commit, which the
    /// numbers kept for it, runs halted and sends nothing ([`Node::keep_numbers`]). Not one
    /// told already.
    pub(super) fn tell_deleted_unheard(&mut self, now: Instant) {
        if self.phase != Phase::Running || self.view.coordinator() != Some(self.settings.me) {
            return;
        }
        for node in super::deleted_numbers(&self.settings.config).iter() {
            let told = self
                .deleted_told
                .get(&node)
                .is_some_and(|(_, _, how)| *how == Telling::Told);
            // A name deleted and added again since (with the cluster halted) is that node's:
            // the offer would reach it, by name and address.
            let again = self
                .settings
                .config
                .nodes
                .get(node.index())
                .is_some_and(|n| self.settings.config.node(&n.name).is_some());
            if !told && !again {
                self.tell_deleted_node(now, node, DELETED_TOLD_UNHEARD);
            }
        }
    }

    /// Offers deleted node `node` the generation in effect, unless this coordinator sent it
    /// an offer less than `again` ago ([`Node::deleted_heard`]): then the commit, once it
    /// took it.
    fn tell_deleted_node(&mut self, now: Instant, node: NodeId, again: Duration) {
        let coordinating = self.phase == Phase::Running
            && self.view.coordinator() == Some(self.settings.me)
            && self.quorate(now);
        let telling = self
            .enrolment
            .as_ref()
            .is_some_and(|e| e.deleted.iter().any(|(_, id)| *id == node));
        let recently = self
            .deleted_told
            .get(&node)
            .is_some_and(|(_, at, _)| now < *at + again);
        if !coordinating || telling || recently {
            return;
        }
        self.command_serial += 1;
        let serial = self.command_serial;
        self.deleted_told
            .insert(node, (serial, now, Telling::Offered));
        let message = Message::ConfigOffer {
            serial,
            config: self.generation_in_effect(),
        };
        self.send_to_life(node, Incarnation(0), &message);
    }

    /// A deleted node's answer to what [`Node::tell_deleted_node`] sent: the commit follows
    /// the offer it took. True when it was such an answer.
    fn deleted_told_answered(&mut self, now: Instant, answer: &DeletedAnswer) -> bool {
        let from = answer.from;
        let Some((told, at, how)) = self.deleted_told.get(&from).copied() else {
            return false;
        };
        if answer.serial != told || !answer.to_this_life {
            return false;
        }
        match (how, answer.commit, answer.refusal) {
            (Telling::Offered, false, None) => {}
            // Done: it goes on unconfigured.
            (Telling::Committing, true, None) => {
                self.deleted_told.insert(from, (told, at, Telling::Told));
                return true;
            }
            // Refused (told again later), or out of turn.
            _ => return true,
        }
        self.deleted_told
            .insert(from, (told, now, Telling::Committing));
        let message = Message::ConfigCommit {
            serial: told,
            number: self.settings.config_generation,
            epoch_floor: self.promised,
        };
        self.send_to_life(from, Incarnation(0), &message);
        true
    }
}
