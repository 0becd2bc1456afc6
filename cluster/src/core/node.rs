//! One node's membership state machine.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::action::{
    Action, Base, Event, FenceReason, LockLoss, PackageChanges, Persisted, QuorumServerAnswer,
    QuorumServerAsk, QuorumServerRefusal, QuorumServerRequest, Taken,
};
use super::clique::Reachability;
use super::message::WholeCopy;
use super::message::{Echo, Envelope, Heartbeat, Leaving, Message, Phase, Silence, Term, View};
use super::shared::{Entry, SharedError, SharedMap, Version};
use super::types::{Epoch, Incarnation, Instant, NodeId, NodeSet};
use super::unconfigured::listed;
use crate::config::cluster::{ClusterConfig, ClusterLock};
use crate::config::package::{Lines, PackageConfig};
use crate::config::{needs_halted_cluster, Generation};
use crate::disk_paxos::{DiskFailure, DiskReply, DiskRequest, IoId, LockBlock, Outcome, Proposer};
use crate::packages::{
    unconfirmed_text, Catalog, Command, FailureCause, HaltReason, InstanceState, Manager, Output,
    PackageEvent, PackageId, Refusal, ResourceError, ResourceValue, Script, ScriptOutcome,
    SubnetState, Table,
};
use crate::status::{
    ClusterCondition, ClusterStatus, Health, InterfaceRow, LockRow, NodeCondition, NodeLock,
    NodeRow, NodeState, NodeStatus, Notice, NoticeRef, PackageCondition, ServiceCondition,
    Snapshot, SubnetRow, Summary, SwitchingCondition,
};
use crate::timing::Timing;

mod enrolment;
pub use enrolment::{EnrolmentOutcome, ENROL_ANSWER_WAIT};

/// The tie-breaker for a group of exactly half the previous membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tiebreaker {
    /// None: exactly half halts.
    None,
    /// A lock LUN shared by all nodes (Disk Paxos, one block per node).
    LockLun,
    /// A quorum server.
    QuorumServer,
}

/// What a node needs to know to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This node.
    pub me: NodeId,
    /// The configured node count.
    pub nodes: usize,
    /// The number of heartbeat networks.
    pub networks: usize,
    /// A digest of the cluster's name: messages of other clusters are dropped.
    pub cluster_id: u64,
    /// The configuration generation: peers on another generation are not let in.
    pub config_generation: u64,
    /// The configuration generation as shown ([`Generation::sequence`]).
    pub config_sequence: u64,
    /// The derived timing.
    pub timing: Timing,
    /// The tie-breaker.
    pub tiebreaker: Tiebreaker,
    /// The seed of the node's randomness (back-off after a lost proposal or lock attempt).
    pub seed: u64,
    /// The packages.
    pub catalog: Arc<Catalog>,
    /// The cluster configuration (names, interfaces, the lock), for the status snapshot.
    pub config: Arc<ClusterConfig>,
    /// The package files the catalog was resolved from (cmapplyconf compares with them).
    pub packages: Arc<Vec<PackageConfig>>,
    /// The least a pet must reach ahead (Timing::pet_horizon): what the watchdog device
    /// needs, zero without one. A configuration change below it is refused.
    pub pet_horizon_min: Duration,
    /// Rules broken on purpose, so the simulator can show that its checkers catch them.
    /// Always [`Sabotage::default`] (nothing broken) outside those tests.
    #[doc(hidden)]
    pub sabotage: Sabotage,
    /// The node starts halted, as after cmhaltnode with its daemon staying (a new life after
    /// a cmapplyconf that changed the nodes): cmrunnode or cmruncl starts it.
    pub start_halted: bool,
}

/// Rules the core can be told to break, for the simulator's checker tests only.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sabotage {
    /// Take over from a lost node at once, without the fence wait.
    pub skip_fence_wait: bool,
    /// Commit a group of half or less of the previous membership without the lock.
    pub minority_quorum: bool,
}

impl Settings {
    /// The settings of node `me` of `config`.
    pub fn from_config(
        config: &ClusterConfig,
        timing: Timing,
        me: NodeId,
        config_generation: u64,
        seed: u64,
    ) -> Settings {
        let tiebreaker = match config.lock {
            ClusterLock::None => Tiebreaker::None,
            ClusterLock::LockLun => Tiebreaker::LockLun,
            ClusterLock::QuorumServer { .. } => Tiebreaker::QuorumServer,
        };
        Settings {
            me,
            nodes: config.nodes.len(),
            networks: config.heartbeat_networks().max(1),
            cluster_id: cluster_id(&config.name),
            config_generation,
            // The files a node starts from are numbered as they are shown.
            config_sequence: config_generation,
            timing,
            tiebreaker,
            seed,
            catalog: Arc::new(Catalog::default()),
            config: Arc::new(config.clone()),
            packages: Arc::new(Vec::new()),
            pet_horizon_min: Duration::ZERO,
            sabotage: Sabotage::default(),
            start_halted: false,
        }
    }

    /// The nodes of the cluster: every number but those of nodes deleted while the cluster
    /// ran ([`crate::config::cluster::NodeConfig::deleted`]).
    pub fn configured(&self) -> NodeSet {
        NodeSet::first(self.nodes).difference(deleted_numbers(&self.config))
    }
}

/// The NODE_NAMEs of `config` by number, as compared (names are case-insensitive), with an
/// empty name for a number whose node was deleted while the cluster ran.
fn node_names(config: &ClusterConfig) -> Vec<String> {
    config
        .names_by_number()
        .into_iter()
        .map(str::to_ascii_lowercase)
        .collect()
}

/// The numbers of the nodes `cluster` marks deleted (a node deleted while the cluster ran
/// keeps its number).
fn deleted_numbers(cluster: &ClusterConfig) -> NodeSet {
    cluster
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, node)| node.deleted)
        .map(|(index, _)| NodeId(index as u32))
        .collect()
}

/// What the answer of halted cmapplyconf `apply`, committed, says of the deleted nodes its
/// first offer did not reach ([`Kept`]): those that did not take the commit since may never
/// have been told. None: nothing to say.
fn kept_warning(apply: &HaltedApply) -> Option<String> {
    let kept = apply.kept.as_ref()?;
    // Reached by the offer given again, and confirmed the commit: told after all.
    let told = |node: NodeId, name: &str| {
        apply.took.contains(node)
            && !apply.waiting.contains(node)
            && !apply
                .commit_refused
                .iter()
                .any(|(refused, _)| refused.eq_ignore_ascii_case(name))
    };
    let untold: Vec<&str> = kept
        .unreached
        .iter()
        .filter(|(node, name, _)| !told(*node, name))
        .map(|(_, _, text)| text.as_str())
        .collect();
    let untold = untold.join(", ");
    if kept.numbered_anew {
        return (!untold.is_empty()).then(|| {
            format!(
                "of the nodes deleted (while the cluster ran, or by this change), {untold} \
                 may never have been told: the nodes are numbered anew all the same (no number \
                 is left to keep), so the cluster cannot tell it: once its cmcld runs, stop \
                 it, remove cluster.ascii, packages/ and acceptor from its state directory, \
                 and start it again (unconfigured)"
            )
        });
    }
    let mut parts = Vec::new();
    if !untold.is_empty() {
        parts.push(format!(
            "of the nodes deleted (while the cluster ran, or by this change), {untold} may \
             never have been told: the nodes keep their numbers, each deleted one's unused, \
             so that the running cluster tells it when its cmcld runs again"
        ));
    }
    if kept.reordered {
        parts.push(
            "the order of the NODE_NAMEs in the file is not taken (the nodes keep their \
             numbers while a deleted node may not have been told; added nodes come last)"
                .to_owned(),
        );
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// How the refusal of halted cmapplyconf `apply` ends: nothing was applied, but on the
/// nodes the files delete that were sent the commit before the others and did not
/// confirm it ([`HaltedApply::sent_first`]): one may have taken it, and run unconfigured
/// from then on.
fn nothing_applied(apply: &HaltedApply, config: &ClusterConfig) -> String {
    if apply.sent_first.is_empty() {
        return "; nothing was applied".to_owned();
    }
    let names: Vec<&str> = apply
        .sent_first
        .iter()
        .filter_map(|n| config.nodes.get(n.index()))
        .map(|n| n.name.as_str())
        .collect();
    format!(
        "; nothing was applied, except perhaps on {}, which the files delete: sent the \
         commit before the other nodes, each may have taken it and gone on unconfigured; \
         give the same cmapplyconf again (a node it deletes that runs unconfigured is \
         passed over)",
        names.join(", ")
    )
}

/// Each node of `nodes` that `config` numbers: its number, NODE_NAME in lower case and
/// heartbeat addresses.
fn entries(
    config: &ClusterConfig,
    nodes: NodeSet,
) -> impl Iterator<Item = (NodeId, String, Vec<IpAddr>)> + '_ {
    nodes.iter().filter_map(|node| {
        let n = config.nodes.get(node.index())?;
        Some((
            node,
            n.name.to_ascii_lowercase(),
            n.heartbeat_addresses().collect(),
        ))
    })
}

/// `request` with the race number in the upper half of its id.
fn with_race(request: DiskRequest, race: u64) -> DiskRequest {
    let global = |id: IoId| IoId((race << 32) | (id.0 & 0xffff_ffff));
    match request {
        DiskRequest::Read { id, block } => DiskRequest::Read {
            id: global(id),
            block,
        },
        DiskRequest::Write { id, block, data } => DiskRequest::Write {
            id: global(id),
            block,
            data,
        },
    }
}

/// Every how many heartbeat rounds the coordinator sends its whole shared map again.
const SHARED_RESEND_ROUNDS: u64 = 30;

/// The most tombstones the coordinator keeps while a configured node is not a member; past
/// it (or with the map near full), it purges them anyway, as the map must go on taking
/// changes. A node that was down through it drops its copies of what was deleted when it
/// joins (see [`super::shared`]); what it alone held (a change its coordinator stamped and
/// failed before sending on) at or below the floor is dropped with them.
const SHARED_TOMBSTONES_KEPT: usize = super::shared::ENTRIES_MAX / 4;

/// With this many keys (tombstones included), the coordinator purges whoever is up.
const SHARED_NEAR_FULL: usize = super::shared::ENTRIES_MAX - super::shared::ENTRIES_MAX / 8;

/// The most proposals a node accepts after its installed membership (each is reported to
/// the next coordinator, so none may be dropped).
pub const ACCEPTED_PROPOSALS_MAX: usize = 1024;

/// Forwarded package commands a coordinator keeps while it waits for every member's report
/// after a re-formation; beyond this they are refused.
const DEFERRED_COMMANDS_MAX: usize = 64;

/// Forwarded commands whose answers a node waits for; the daemon gives up on each after a
/// few seconds, so more than this many are never awaited by anyone.
const AWAITED_ANSWERS_MAX: usize = 256;

/// How long the package coordinator waits for a node's daemon to take the halt of a package
/// detached there (a round trip on the control channel) before it refuses the cmhaltpkg:
/// well within the wait of the node the command was given on for the answer.
const HALT_ACK_WAIT: Duration = Duration::from_secs(5);

/// How long cmrunnode NODE, given on this node, keeps telling NODE to start while it is not
/// heard starting: as long as the command waits for it to join (a node just added may
/// still be between its unconfigured daemon and its new life when the command is given).
pub const RUN_OTHER_WAIT: Duration = Duration::from_secs(30);

/// How often cmrunnode NODE tells NODE again (at most: once a heartbeat interval when that
/// is shorter).
const RUN_OTHER_RESEND: Duration = Duration::from_secs(1);

/// How long the package coordinator holds the answer to a change of the switching table
/// for every member to confirm it holds the change (their next heartbeats, normally within
/// an interval): well within the wait of the node the command was given on for the answer.
const SWITCHING_HELD_WAIT: Duration = Duration::from_secs(8);

/// The most commands whose answers are held (detached halts to be taken, switching
/// changes to be confirmed).
const HELD_MAX: usize = 64;

/// How long a cmapplyconf given while the cluster is halted waits for every node at each of
/// its stages (the offer, the commit to the deleted nodes it drops, the offer again with the
/// numbers kept, the commit): all fit in
/// [`HALTED_APPLY_ANSWER_WAIT`].
const HALTED_APPLY_STAGE: Duration = Duration::from_secs(4);

/// How many withdrawn offers a halted node remembers (`withdrawn_offers`): one for
/// each of a few nodes giving changes at once.
const WITHDRAWN_KEPT: usize = 8;

/// The longest a cmapplyconf given while the cluster is halted takes to be answered (the
/// daemon's wait for its answer covers it): four stages at most (the offer, the commit to
/// the deleted nodes it drops, the offer given again with their numbers kept, the commit),
/// and a margin.
pub const HALTED_APPLY_ANSWER_WAIT: Duration =
    Duration::from_secs(HALTED_APPLY_STAGE.as_secs() * 4 + 3);

/// How often a halted cmapplyconf sends its offer or commit again to the nodes that have not
/// answered (the control channel may have dropped it with a connection).
const HALTED_APPLY_RESEND: Duration = Duration::from_millis(500);

/// A cmapplyconf given on this node while the cluster is halted ([`Node::handle_apply`]):
/// the generation goes to every configured node in two stages. Every node must take the
/// offer ([`Message::ConfigOffer`]) before any puts it in effect ([`Message::ConfigCommit`]),
/// so that a node that is not halted, not reachable or in disagreement leaves the
/// configuration as it was everywhere.
#[derive(Debug)]
struct HaltedApply {
    /// The command's serial (the answer's, [`Event::CommandAnswered`]).
    serial: u64,
    /// The serial the offer and the commit are sent under, and answered: the command's,
    /// then a new one for the offer given again with the numbers kept (so that a late
    /// answer to the first offer is not taken for one to the second).
    offer_serial: u64,
    /// The generation.
    config: Arc<Generation>,
    /// Every node took the offer: the commit is on its way.
    committing: bool,
    /// The nodes whose answer to the current stage is awaited.
    waiting: NodeSet,
    /// The nodes the generation adds (not configured here: their cmcld runs unconfigured),
    /// by NODE_NAME in lower case, with their heartbeat addresses in it: reached over the
    /// configuration exchange ([`Action::Exchange`]).
    added: Vec<(String, Vec<IpAddr>)>,
    /// Those whose answer to the current stage is awaited.
    waiting_added: BTreeSet<String>,
    /// What last went wrong reaching a node over the exchange, by NODE_NAME in lower case
    /// (said in the answer when it does not answer).
    unreachable: BTreeMap<String, String>,
    /// The stage's message was sent this many times.
    sends: u32,
    /// The nodes that refused the commit, by NODE_NAME, and why (in effect here all the
    /// same).
    commit_refused: Vec<(String, String)>,
    /// The current stage ends (the nodes still awaited did not answer).
    deadline: Instant,
    /// The awaited nodes are sent the stage's message again.
    resend_at: Instant,
    /// The highest membership epoch promised by this node and those that took the offer
    /// ([`Message::ConfigCommit`]'s `epoch_floor`).
    epoch_floor: Epoch,
    /// The nodes the configuration in effect marks deleted (deleted while the cluster ran)
    /// and the generation leaves out, by number, NODE_NAME in lower case and heartbeat
    /// addresses. Such a node may never have been told (down, or cut off, then): it runs
    /// from its old files when it comes back, numbered as they number it, and only its
    /// number lets the cluster tell it. The generation drops their numbers (renumbers the
    /// nodes as the files list them) only if each of them is reached during the offer.
    deleted: Vec<(NodeId, String, Vec<IpAddr>)>,
    /// Of those, the ones not reached yet during the first offer (and the nodes of
    /// [`HaltedApply::dropping`] that did not confirm the commit given them first).
    untold: NodeSet,
    /// Of those, the ones the exchange could not reach just now (no cmcld there, or not
    /// running): waiting on them longer is in vain.
    unreachable_deleted: NodeSet,
    /// Of those, the ones that refused the first offer on the control channel, and why.
    refused_deleted: BTreeMap<NodeId, String>,
    /// The deleted nodes that took the offer (configured still, they go on unconfigured
    /// with the commit, which is awaited from them).
    took: NodeSet,
    /// The first offer did not reach every deleted node: what became of the numbering.
    kept: Option<Kept>,
    /// Where the deleted nodes that took the first offer, and the nodes the files delete,
    /// are in being told first.
    told_first: ToldFirst,
    /// The nodes of the generation in effect, not deleted there, that the files leave out:
    /// they take the first offer as every node does, then its commit before any other node
    /// ([`ToldFirst`]). Should one not confirm it, the offer is given again with the numbers
    /// kept, its number as a deleted node's ([`Node::keep_numbers`]), and it is awaited no
    /// more: the running cluster tells it once it is heard. Otherwise a node that took the
    /// offer and then missed the commit would come back from its old files, numbered out
    /// of the generation, heard by nobody, with only the command's answer (lost should the
    /// node given the command fail) to say so.
    dropping: NodeSet,
    /// Of those, the ones sent the commit first that did not confirm it: each may have
    /// taken it (its answer lost), so a refusal of the offer given again does not say
    /// that nothing changed anywhere.
    sent_first: NodeSet,
    /// cmcheckconf ([`Node::check_halted`]): the nodes are sent [`Message::ConfigCheck`]
    /// instead of the offer, and once every node took it the command is answered, with
    /// nothing committed or withdrawn (no node holds anything). The deleted nodes are not
    /// asked: what they answer decides only the numbering an apply gives.
    check: bool,
}

/// A halted cmapplyconf whose first offer every node took drops the numbers of the deleted
/// nodes among them ([`HaltedApply::took`]) and of the nodes the files delete
/// ([`HaltedApply::dropping`]): no later generation names them, so such a node that took
/// the offer and then missed the commit could never be told. They are sent the commit
/// before any other node is: should one not confirm it, the offer is given again with the
/// numbers kept ([`Node::keep_numbers`]). Taking it first is right for a node deleted while
/// the cluster ran whether or not the others ever do (deleted in the generation in effect
/// already); one the files delete that took it while the others never do runs unconfigured
/// while their generation still names it, a node down to them, until the same cmapplyconf
/// is given again, which passes it over (the refusal says so, [`nothing_applied`]). The
/// other order would leave it numbered out, which nothing could mend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ToldFirst {
    /// Not begun (or not needed: the generation keeps their numbers).
    No,
    /// The commit is on its way to them ([`HaltedApply::waiting`] is those not confirmed).
    Committing,
    /// Each confirmed it.
    Confirmed,
}

/// A halted cmapplyconf whose first offer did not reach every node deleted while the cluster
/// ran ([`HaltedApply::deleted`]).
#[derive(Debug)]
struct Kept {
    /// Those not reached, each with its NODE_NAME in lower case, and with why ("n4 (...)").
    unreached: Vec<(NodeId, String, String)>,
    /// The files list the nodes in another order, which the numbers kept do not follow.
    reordered: bool,
    /// No number was left to keep: the nodes are numbered as the files list them all the
    /// same.
    numbered_anew: bool,
}

/// A generation that changed the nodes is persisted here: this halted node starts a new
/// life from it ([`Event::Reconfigured`]).
#[derive(Debug)]
struct Reconfigure {
    /// Told then (None: once this node's own cmapplyconf is answered).
    at: Option<Instant>,
    /// This node is not in the new generation.
    retired: bool,
    /// Told already.
    told: bool,
    /// The generation, as shown.
    sequence: u64,
    /// The state the new life starts from: whatever this life persists from now on (it
    /// lingers, halted) is this.
    persisted: Persisted,
}

/// How long a node that took a commit changing the nodes stays in its life before the new
/// one: a resent commit (its answer lost) is answered meanwhile.
const RECONFIGURE_LINGER: Duration = Duration::from_secs(1);

/// A halted cmapplyconf's offer this halted node took ([`Message::ConfigOffer`]), awaiting
/// its commit.
#[derive(Debug)]
struct Offered {
    /// The node the cmapplyconf was given on.
    from: NodeId,
    /// That node's life (its serials start again with each).
    life: Incarnation,
    /// Its serial.
    serial: u64,
    /// The generation.
    config: Arc<Generation>,
    /// Dropped after this (its sender gave up on it by then).
    until: Instant,
}

/// A package command carried out on the package coordinator whose answer is held until
/// what it did is safe: the daemons of the nodes where its package is detached took the
/// halt (cmhaltpkg), and every member holds the switching table it changed (cmmodpkg
/// -e/-d/-m, cmhaltpkg's AUTO_RUN), so that a coordinator failing right after the answer
/// loses nothing it answered done.
#[derive(Debug, Clone)]
struct Held {
    /// The node the command was given on, and its serial there.
    asker: (NodeId, u64),
    /// The command (for the refusal's event).
    command: Command,
    /// The (package, node) halts not yet taken.
    waiting: Vec<(PackageId, NodeId)>,
    /// The version of the switching table with the change, which every member must hold.
    switching: Option<(u64, u64)>,
    /// When the command is refused (or told unconfirmed) if it is still held.
    deadline: Instant,
}

/// A forwarded command a coordinator carries out once every member has reported.
#[derive(Debug, Clone)]
struct Deferred {
    /// The membership it was given in.
    epoch: Epoch,
    /// Who gave it, and its serial there (for the answer).
    from: NodeId,
    serial: u64,
    command: Command,
}

/// A stable digest of a cluster name (FNV-1a; only needs to tell clusters apart, not resist
/// forgery: the transport authenticates peers).
pub fn cluster_id(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte.to_ascii_lowercase())).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Halted by itself before the cluster halted (cmhaltnode, then cmhaltcl on a member, or
/// the last members halting by cmhaltnode): what this node heard of that halt from the
/// members' heartbeats. Halted nodes send none, but a member halts only once every other
/// member's heartbeat of the same membership says it halts and holds nothing, and it sends
/// one last heartbeat saying so itself: a node that heard all of them knows the cluster is
/// down, as the members do.
#[derive(Debug, Clone)]
struct HeardHalt {
    /// The membership that halted.
    epoch: Epoch,
    /// Its members.
    members: NodeSet,
    /// The configuration generation the members ran: their package numbers are this
    /// node's only while it runs the same.
    generation: u64,
    /// Each member's latest heartbeat of `epoch`.
    heard: BTreeMap<NodeId, Heartbeat>,
    /// Nodes of earlier memberships (after this node's) heard leaving by cmhaltnode,
    /// holding nothing, and not members of the next one: halted.
    left: NodeSet,
}

/// What this node knows of one peer.
#[derive(Debug, Clone, Default)]
struct Peer {
    incarnation: Incarnation,
    last_heard: Option<Instant>,
    last_heard_network: Vec<Option<Instant>>,
    network_down: Vec<bool>,
    sequence: u64,
    heartbeat: Option<Heartbeat>,
    /// The peer's latest heartbeat send time (its clock) with its term, echoed back to it.
    sent: Option<Echo>,
    /// When that heartbeat arrived (this node's clock).
    sent_heard: Option<Instant>,
    /// The latest of this node's send times the peer echoed while in our membership.
    echo: Option<Echo>,
    /// When this node last echoed the peer (at the latest, when the send time echoed
    /// arrived), and the term of that echo.
    echo_sent: Option<(Instant, Term)>,
    /// The latest of this node's heartbeat send times that the peer's current life
    /// acknowledged (heard), whatever its phase.
    acked: Option<Instant>,
    /// When the first heartbeat carrying that acknowledgement arrived.
    acked_heard: Option<Instant>,
    /// When this node first heard the peer's current life: its earlier life was gone by then.
    life_heard: Option<Instant>,
    /// Generations already reported as mismatched.
    mismatch_reported: Option<u64>,
}

impl Peer {
    /// Records an echo of the peer's send time that arrived at `at` (this node's clock) with
    /// `term`. The echo kept is the one whose fence bound ends last: an echo of an earlier
    /// send time (a heartbeat older than the acceptance the commit echoed) bounds nothing
    /// the later one does not.
    fn note_echo(&mut self, timing: &Timing, at: Instant, term: Term) {
        let end = |(at, term): (Instant, Term)| at + timing.fence_bound(term);
        if self
            .echo_sent
            .is_none_or(|kept| end((at, term)) >= end(kept))
        {
            self.echo_sent = Some((at, term));
        }
    }
}

/// What a node announced with its send times so far: the last send time, and the latest
/// ends of lease (`at + lease`), of grace (`at + grace`) and of both (`at + lease + grace`).
/// None decreases (see [`Term`]).
#[derive(Debug, Clone, Copy)]
struct Announced {
    last: Instant,
    lease: Instant,
    grace: Instant,
    both: Instant,
}

/// A proposal this node coordinates.
#[derive(Debug)]
struct Proposal {
    view: View,
    accepted: NodeSet,
    silences: Vec<(NodeId, Incarnation, Option<Silence>)>,
    /// Proposals that members (or this node) accepted after their installed membership:
    /// each may have been committed, and is a basis of the quorum rule too.
    bases: Vec<View>,
    /// The configuration generations the bases carried, with the epoch each was accepted with.
    basis_configs: Vec<(Epoch, Arc<Generation>)>,
    /// Proposals whose generation a voter (or this node) gave up, knowing they never commit
    /// with it ([`Message::Accept`]'s `passed_over`), or that their coordinator, a voter,
    /// dropped uncommitted: none is carried on from them.
    given_up: Vec<Epoch>,
    /// The generation this proposal carries (its number).
    config: Option<u64>,
    /// When that generation is carried on: the newest epoch it was accepted with (none for a
    /// cmapplyconf given here).
    carried_from: Option<Epoch>,
    /// Whether it carries the pending cmapplyconf (rather than a generation carried on).
    trial: bool,
    /// When it was sent.
    sent_at: Instant,
    /// Each member's echo of the proposal's send time (this node's clock).
    echoes: Vec<(NodeId, Echo)>,
    /// Each member's acceptance send time (its clock), echoed back in the commit.
    sent: Vec<(NodeId, Echo)>,
    deadline: Instant,
    lock: Option<LockRace>,
    /// The lock instances won so far.
    locks_won: Vec<Epoch>,
    /// Whether a member (or this node) had a membership installed: the proposal re-forms a
    /// running cluster rather than forming one.
    running_before: bool,
    /// Members leaving gracefully: left out of the view, they accept too.
    leavers: NodeSet,
    /// The voters whose package table may stand for the cluster's
    /// ([`crate::packages::Manager::holds_table`]).
    known: NodeSet,
    /// The newest membership a voter knows to have been committed ([`Message::Accept`]).
    committed: Epoch,
    /// The membership each voter that accepted had installed in its life (this node's too).
    installed: Vec<(NodeId, Epoch)>,
}

/// A race for the cluster lock.
#[derive(Debug)]
struct LockRace {
    instance: Epoch,
    deadline: Instant,
    kind: LockKind,
    /// Further instances to win after this one (see `decide_if_complete`).
    remaining: Vec<Epoch>,
}

#[derive(Debug)]
enum LockKind {
    Disk {
        proposer: Box<Proposer>,
        retry_at: Option<Instant>,
        /// Numbers this race: its requests carry it in the upper half of their ids.
        race: u64,
    },
    QuorumServer {
        id: u64,
    },
}

/// How many proposals may carry one cmapplyconf before it is given up.
const CONFIG_ATTEMPTS_MAX: u32 = 5;

/// A configuration generation accepted with the proposal of an epoch.
type AcceptedConfig = (Epoch, Arc<Generation>);

/// A left-out life and how long, from the commit, before it may be taken over.
type FenceWait = (NodeId, Incarnation, Duration);
/// A commit's fence waits and, for those already over, how long ago they ended.
type FenceWaits<'a> = (&'a [FenceWait], &'a [FenceWait]);

/// The upper half of the ids of lock LUN health reads (races count up from 1).
const HEALTH_READ: u64 = 0xffff_ffff;

/// The lock LUN's health as checked.
#[derive(Debug, Default)]
struct LockCheck {
    next: Option<Instant>,
    /// The read on its way: its id and when it counts as stalled.
    outstanding: Option<(u64, Instant)>,
    reads: u64,
    /// The block the outstanding read reads (each node's in turn).
    block: u8,
    /// What the last health read of each block found wrong in it, though it was read: this
    /// node's own is another cluster's or not a lock block, another node's is another
    /// cluster's. A race fails on such a block (a torn write of another node's block, which
    /// a race under way may leave for a moment, is not counted).
    unusable: BTreeMap<u8, String>,
    /// Why it was last told down (None: up).
    told: Option<String>,
}

/// The quorum server's health as polled.
#[derive(Debug, Default)]
struct QuorumServerHealth {
    reachable: bool,
    /// Why the server refused this node at the last answer, if it did.
    refusal: Option<QuorumServerRefusal>,
    next_ping: Option<Instant>,
    outstanding: Option<(u64, Instant)>,
}

/// Whether this node's host can send heartbeats from an address: why not, if it cannot
/// (not an address of the host). The runtime sets one ([`Node::set_address_check`]); the
/// default takes every address.
#[derive(Clone, Default)]
pub struct AddressCheck(Option<Arc<CheckAddress>>);

/// The function behind an [`AddressCheck`].
type CheckAddress = dyn Fn(IpAddr) -> Result<(), String> + Send + Sync;

impl AddressCheck {
    /// The check `check`.
    pub fn new(check: impl Fn(IpAddr) -> Result<(), String> + Send + Sync + 'static) -> Self {
        AddressCheck(Some(Arc::new(check)))
    }

    /// Why node `name` of `cluster` could not send heartbeats from one of its HEARTBEAT_IPs
    /// on this host, if so (none when `cluster` does not name it).
    pub fn refusal(&self, name: &str, cluster: &ClusterConfig) -> Option<String> {
        let check = self.0.as_ref()?;
        let node = cluster.node(name)?;
        node.heartbeat_addresses().find_map(|address| {
            check(address).err().map(|why| {
                format!("{name} cannot send heartbeats from HEARTBEAT_IP {address}: {why}")
            })
        })
    }
}

impl std::fmt::Debug for AddressCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "AddressCheck(set)"
        } else {
            "AddressCheck(none)"
        })
    }
}

/// One node's membership state machine.
#[derive(Debug)]
pub struct Node {
    settings: Settings,
    incarnation: Incarnation,
    rng: ChaCha8Rng,
    phase: Phase,
    view: View,
    /// The highest epoch proposed or accepted here.
    promised: Epoch,
    /// The proposal accepted, awaiting commit until the deadline.
    accepted: Option<(View, Instant)>,
    /// When the installed membership was installed.
    installed_at: Instant,
    /// Every proposal accepted after the installed membership, oldest first. Any of them
    /// may have been committed by its coordinator: the next coordinator must hold quorum
    /// against each (see `decide_if_complete`), and a member that missed a commit installs
    /// the proposal when a peer's heartbeat shows it committed.
    accepted_since: Vec<View>,
    /// The membership an earlier life of this node installed last: committed, so every
    /// membership committed before it is behind it (see `decide_if_complete`). Persisted
    /// as the installed membership until this life installs one.
    installed_before: Option<View>,
    round_max: u64,
    started_at: Instant,
    last_step: Option<Instant>,
    peers: Vec<Peer>,
    heartbeat_sequence: u64,
    next_heartbeat: Instant,
    /// The reach set of the last heartbeats, and when they left: a change is told at once
    /// (at most every quarter interval) so that re-formations settle quickly.
    reach_sent: (NodeSet, Instant),
    /// When the safety timer resets this node unless petted (None: not armed).
    safety_deadline: Option<Instant>,
    last_pet: Instant,
    /// What this node announced with its send times so far (see [`Term`]).
    announced: Option<Announced>,
    /// The widest term of a timing that MEMBER_TIMEOUT replaced, and until when an echo
    /// sent under it may still bound a fence wait.
    replaced_term: Option<(Term, Instant)>,
    /// The earliest send time whose echo renews the lease in the installed membership: the
    /// one the commit echoed (an echo of an older heartbeat carries the term of the
    /// membership before).
    lease_floor: Instant,
    /// This node's acceptances of the proposals in `accepted_since`: the send time and grace
    /// that the coordinator echoes when it commits.
    acceptances: Vec<(Epoch, Echo)>,
    /// Forwarded commands waiting for every member's report (see `on_command`).
    deferred_commands: Vec<Deferred>,
    /// This node lost its quorum lease and fences itself: its last heartbeats say it hears
    /// no one.
    departing: bool,
    candidate: Option<(View, Instant)>,
    proposal: Option<Proposal>,
    backoff_until: Instant,
    fence_waits: Vec<(NodeId, Incarnation, Instant)>,
    /// The latest fence wait end for which heartbeats went out at once (see
    /// `release_fence_waits`).
    fence_waits_announced: Option<Instant>,
    quorum_server: QuorumServerHealth,
    next_request: u64,
    /// Lock LUN races started, and the requests not answered yet (by global id).
    disk_races: u64,
    disk_in_flight: BTreeSet<u64>,
    packages: Manager,
    /// Whether a HaltRisk was last reported as standing.
    halt_risk: bool,
    /// Numbers the package commands (and cmapplyconf) forwarded from this node.
    command_serial: u64,
    /// The serials of those not answered yet (the oldest dropped beyond
    /// [`AWAITED_ANSWERS_MAX`]): an answer counts once, and only for one of them.
    awaited_answers: VecDeque<u64>,
    /// The last command carried out from each node: (epoch, serial).
    commands_seen: Vec<(Epoch, u64)>,
    /// This node's copy of the shared map.
    shared: Arc<SharedMap>,
    /// The last version this node stamped as coordinator.
    shared_stamp: Version,
    /// As a member: the heartbeat round at which it last sent its whole copy.
    shared_sent: Option<u64>,
    /// The heartbeat round at which the coordinator next sends its whole copy.
    shared_resend_at: u64,
    /// The periodic heartbeat rounds sent (one per heartbeat interval, whatever heartbeats
    /// go out between them): they pace the shared map's whole copies.
    rounds: u64,
    /// As coordinator: the members whose whole copies it heard in this membership (itself
    /// included). It purges only once every member is in.
    shared_heard: NodeSet,
    /// The package report version of the last heartbeats: a change is told at once.
    report_sent: u64,
    /// The instance states the last full heartbeats told, and when they were first told:
    /// once the coordinator acknowledges hearing a heartbeat sent then or later, it has them
    /// (restart counts and resource values, which change the report version too, do not
    /// count: a service restarting in a loop must not hold up every command's end).
    report_told: (Vec<(PackageId, InstanceState)>, Option<Instant>),
    /// The switching version (AUTO_RUN, node switching, maintenance, detached) of the last
    /// heartbeats sent: a change goes out at once, not with the next periodic heartbeat.
    switching_sent: (u64, u64),
    /// The notices this life told (the daemon numbers them alike, from 1).
    notices_told: u64,
    /// The number of the PackageFailed notice this node told for each package that failed
    /// here and has not started here since (sent in heartbeats).
    failures_told: BTreeMap<PackageId, u64>,
    /// The number of the NodeFailed notice this node told of each node (as the coordinator
    /// that told it), until that node joins again.
    nodes_failed_told: BTreeMap<NodeId, u64>,
    /// What this node knows of each node's state (for peers outside the membership:
    /// failed, halted, or unknown).
    node_states: Vec<NodeState>,
    /// Whether the membership being installed forms the cluster (no member had a membership
    /// installed: known to its coordinator, and told in the commit).
    forming: bool,
    /// The lock LUN's health: the outcome of this node's last read or write.
    lock_lun: Health,
    lock_check: LockCheck,
    /// Whether this node is halting (cmhaltnode, cmhaltcl).
    leaving: Leaving,
    /// The detached records last persisted.
    marks_persisted: Vec<NodeSet>,
    /// Detached packages this node halts because the coordinator asked (cmhaltpkg given on
    /// a member while this node is outside the membership).
    halting_detached: BTreeSet<PackageId>,
    /// On the package coordinator: commands whose answers are held ([`Held`]): cmhaltpkg of
    /// packages detached on nodes outside the membership, until each node's daemon took the
    /// halt ([`Message::HaltDetachedTaken`]), and switching changes, until every member
    /// holds them; refused (or told unconfirmed) when that did not come in time.
    held: Vec<Held>,
    /// The cluster halted (cmhaltcl) while this node was a member.
    cluster_halted: bool,
    /// The safety timer fenced this node: it is halted for good (its daemon ends).
    fenced: bool,
    /// Whether this node's host can send heartbeats from an address (the runtime's; none
    /// in the simulator, whose hosts have every address).
    address_check: AddressCheck,
    /// Halted: when a heartbeat last said a cluster runs (its sender a member), by sender,
    /// with the epoch it was of.
    heard_cluster: BTreeMap<NodeId, (Instant, Epoch)>,
    /// Halted: when a heartbeat of a running member last arrived (not one starting or
    /// re-forming), by member, with the epoch it was of.
    heard_running: BTreeMap<NodeId, (Instant, Epoch)>,
    /// Halted: the latest epoch at which each node was heard halting with the cluster
    /// (cmhaltcl): its heartbeats of a running cluster of that epoch or before, however
    /// late they come, speak of a cluster that halted.
    heard_halting: BTreeMap<NodeId, Epoch>,
    /// Halted before the cluster halted: what this node heard of that halt ([`HeardHalt`]).
    heard_halt: Option<HeardHalt>,
    /// Halted: the latest membership heard running. A halt of an earlier one, heard late
    /// (overtaken on another network), is over: a cluster ran since.
    heard_running_epoch: Epoch,
    /// Halted: when this node last asked a member for its view ([`Message::StatusRequest`]),
    /// and the serial of that request.
    status_asked: (Option<Instant>, u64),
    /// Halted: the last view a member sent, when it arrived and the request it answered:
    /// what `status` shows while it is fresh.
    remote_status: Option<(Instant, u64, Arc<Snapshot>)>,
    /// A member: when it last sent its view to each node that asked (at most one a heartbeat
    /// interval each).
    status_answered: Vec<Option<Instant>>,
    /// cmruncl -n: the nodes to form the cluster with (else every configured node).
    start_with: Option<NodeSet>,
    /// cmruncl: when [`Message::Start`] was last sent to the nodes named that are not heard
    /// running or starting.
    start_sent: Option<Instant>,
    /// cmrunnode NODE given here: each node told to start, until when it is told, when it
    /// was last told, and the life of it heard last when the command was given
    /// ([`Node::resend_run_other`]).
    telling_to_start: Vec<(NodeId, Instant, Instant, Incarnation)>,
    /// Halted: the cmapplyconf given here, on its way to every node.
    halted_apply: Option<HaltedApply>,
    /// Halted: the offer of another node's cmapplyconf this node took.
    offered: Option<Offered>,
    /// Halted: a generation that changed the nodes is persisted here; a new life follows.
    reconfigure: Option<Reconfigure>,
    /// Halted: the (node, serial) of the last cmapplyconf whose commit this node took (its
    /// offer arriving again later is not taken again).
    committed_offer: Option<(NodeId, Incarnation, u64)>,
    /// Halted: the (node, life, serial) of the last offers withdrawn from this node, newest
    /// last (at most [`WITHDRAWN_KEPT`]). An offer travels on every network, and a copy
    /// may arrive after its withdrawal: taken then, it would be held until it expires, and
    /// refuse every other node's change meanwhile.
    withdrawn_offers: VecDeque<(NodeId, Incarnation, u64)>,
    /// The highest generation as shown of a halted cmapplyconf whose offer this node took
    /// ([`Persisted::sequence_floor`]): changes made here are shown above it.
    sequence_floor: u64,
    /// A cmapplyconf given here that adds nodes to the running cluster
    /// ([`enrolment`]).
    enrolment: Option<enrolment::Enrolment>,
    /// How the last online additions ended, by serial.
    enrolment_outcomes: enrolment::Outcomes,
    /// Nodes deleted while the cluster ran that were heard since (they were not told, and
    /// still run configured): told by the coordinator ([`enrolment`]).
    deleted_told: enrolment::DeletedTold,
    /// On the coordinator: files of a cmapplyconf to propose with the next membership.
    pending_config: Option<(ClusterConfig, Vec<PackageConfig>)>,
    /// Where the pending cmapplyconf was given: the node that forwarded it and the serial
    /// of its command (None: here), told if it is given up.
    pending_origin: Option<(NodeId, u64)>,
    /// The serials of the cmapplyconf this node forwarded and the coordinator took: the
    /// coordinator answers one again, with the refusal, should it give it up.
    applies_forwarded: VecDeque<u64>,
    /// How many cmapplyconf given here were taken, then given up by the coordinator, and
    /// why the last one was ([`Snapshot::applies_given_up`]).
    given_up: (u64, Option<String>),
    /// How many proposals carrying the pending cmapplyconf came to nothing while every
    /// member that did not accept was heard from (it is given up after
    /// [`CONFIG_ATTEMPTS_MAX`]: a member keeps refusing it). A member that fell silent
    /// refused nothing: the next membership leaves it out.
    config_attempts: u32,
    /// On the coordinator: a generation carried by a proposal that may have been committed
    /// (a member accepted it, with the epoch given): the next membership carries it on,
    /// before anything newer.
    adopt: Option<(Epoch, Arc<Generation>)>,

    /// The configuration generations of the proposals accepted (or proposed) here, by the
    /// proposal's epoch.
    accepted_configs: Vec<(Epoch, Arc<Generation>)>,
    /// Proposals accepted (in `accepted_since`, or dropped since) whose generation this
    /// node gave up in this life, knowing they never commit with it: it knew a membership
    /// committed after the acceptance the generation was carried on from (`on_propose`), or
    /// a voter of a proposal of its own reported so (`decide_if_complete`). Also this node's
    /// own proposals that carried a generation and were dropped uncommitted
    /// (`pass_over_own`). Reported with the acceptances still kept, and the own proposals
    /// ([`Message::Accept`]'s `passed_over`). Persisted with them:
    /// a later life that reported them as acceptances that carried nothing would tell
    /// nothing, and another voter's copy of the generation would be carried on.
    passed_over: Vec<Epoch>,
    /// This node's own proposal that carries a generation, from before its Propose leaves
    /// to before its Commit leaves (persisted: `Persisted::own_pending`).
    own_pending: Option<Epoch>,
    /// The generation in effect, when cmapplyconf changed it.
    installed_config: Option<Arc<Generation>>,
    /// Peers asked for their generation: which one, and when (asked again a heartbeat
    /// interval later if no answer came).
    config_asked: Vec<Option<(u64, Instant)>>,
    actions: VecDeque<Action>,
}

impl Node {
    /// A node starting at `now` in `incarnation`, with the state it persisted before.
    pub fn new(
        settings: Settings,
        incarnation: Incarnation,
        persisted: Persisted,
        now: Instant,
    ) -> Node {
        let nodes = settings.nodes;
        let networks = settings.networks;
        let peer = Peer {
            last_heard_network: vec![None; networks],
            network_down: vec![false; networks],
            ..Peer::default()
        };
        let rng = ChaCha8Rng::seed_from_u64(settings.seed ^ incarnation.0.rotate_left(17));
        let config = persisted.config.clone();
        let detached = persisted.detached.clone();
        let installed_epoch = persisted.installed.as_ref().map(|v| v.epoch);
        let mut node = Node {
            rng,
            incarnation,
            phase: if settings.start_halted {
                Phase::Halted
            } else {
                Phase::Starting
            },
            view: View::none(nodes),
            promised: persisted.epoch_max,
            // What an earlier life installed or accepted may have been committed: it is
            // reported to coordinators like a proposal accepted in this life.
            // (An earlier life that installed nothing persisted its own earlier life's
            // membership again, and had it among its acceptances.)
            accepted_since: {
                let mut views: Vec<View> = Vec::new();
                for view in persisted.installed.iter().chain(&persisted.accepted) {
                    if !views.iter().any(|v| v.epoch == view.epoch) {
                        views.push(view.clone());
                    }
                }
                views
            },
            installed_before: persisted.installed,
            accepted: None,
            installed_at: now,
            round_max: persisted.epoch_max.round(),
            started_at: now,
            last_step: None,
            peers: vec![peer; nodes],
            heartbeat_sequence: 0,
            next_heartbeat: now,
            reach_sent: (NodeSet::EMPTY, now),
            safety_deadline: None,
            last_pet: now,
            announced: None,
            replaced_term: None,
            lease_floor: Instant(0),
            acceptances: Vec::new(),
            deferred_commands: Vec::new(),
            departing: false,
            candidate: None,
            proposal: None,
            backoff_until: now,
            fence_waits: Vec::new(),
            fence_waits_announced: None,
            // Taken as reachable until a poll says otherwise.
            quorum_server: QuorumServerHealth {
                reachable: true,
                ..QuorumServerHealth::default()
            },
            next_request: 1,
            disk_races: 0,
            disk_in_flight: BTreeSet::new(),
            packages: Manager::new(settings.me, settings.catalog.clone()),
            halt_risk: false,
            command_serial: 0,
            awaited_answers: VecDeque::new(),
            commands_seen: vec![(Epoch::NONE, 0); nodes],
            shared: Arc::new(SharedMap::new()),
            shared_sent: None,
            shared_resend_at: SHARED_RESEND_ROUNDS,
            rounds: 0,
            shared_heard: NodeSet::EMPTY,
            shared_stamp: Version {
                epoch: Epoch::NONE,
                count: 0,
            },
            report_sent: 0,
            report_told: (Vec::new(), None),
            switching_sent: (0, 0),
            notices_told: 0,
            failures_told: BTreeMap::new(),
            nodes_failed_told: BTreeMap::new(),
            node_states: vec![NodeState::Unknown; nodes],
            forming: false,
            lock_lun: Health::Unknown,
            lock_check: LockCheck::default(),
            leaving: Leaving::No,
            halting_detached: BTreeSet::new(),
            held: Vec::new(),
            marks_persisted: Vec::new(),
            cluster_halted: false,
            fenced: false,
            address_check: AddressCheck::default(),
            heard_cluster: BTreeMap::new(),
            heard_running: BTreeMap::new(),
            heard_halting: BTreeMap::new(),
            heard_halt: None,
            heard_running_epoch: Epoch::NONE,
            status_asked: (None, 0),
            remote_status: None,
            status_answered: vec![None; nodes],
            start_with: None,
            start_sent: None,
            telling_to_start: Vec::new(),
            halted_apply: None,
            offered: None,
            reconfigure: None,
            committed_offer: None,
            withdrawn_offers: VecDeque::new(),
            sequence_floor: persisted.sequence_floor,
            enrolment: None,
            enrolment_outcomes: VecDeque::new(),
            deleted_told: BTreeMap::new(),
            pending_config: None,
            pending_origin: None,
            applies_forwarded: VecDeque::new(),
            given_up: (0, None),
            config_attempts: 0,
            adopt: None,

            accepted_configs: persisted.accepted_configs,
            // Only of acceptances still kept, or of this node's own proposals (a damaged
            // file tells nothing of others). An own proposal an earlier life left pending
            // never committed (its Commit would have followed the state that clears it):
            // passed over, as one dropped (one over ACCEPTED_PROPOSALS_MAX at most, until
            // the next record or install bounds them again).
            passed_over: persisted
                .passed_over
                .into_iter()
                .chain(persisted.own_pending.filter(|e| {
                    e.coordinator() == settings.me
                        && installed_epoch.is_none_or(|installed| *e > installed)
                }))
                .filter(|e| reported_over(*e, settings.me, &persisted.accepted))
                .fold(Vec::new(), |mut epochs, e| {
                    if !epochs.contains(&e) {
                        epochs.push(e);
                    }
                    epochs
                }),
            own_pending: None,
            installed_config: None,
            config_asked: vec![None; nodes],
            actions: VecDeque::new(),
            settings,
        };
        // A generation cmapplyconf made takes effect again on a restart (not an older one
        // than the settings': a driver may number the files it starts from; cmcld's daemon
        // numbers them 1 and writes them again from a later generation before it starts).
        if let Some(config) = config {
            if config.number > node.settings.config_generation {
                node.apply_generation(now, &config);
            } else if config.number == node.settings.config_generation {
                // The files are this generation, shown as it was given: a cluster made
                // again after a deletion is numbered 1, and shown after the deleted one.
                node.settings.config_sequence = config.sequence;
            }
        }
        // What this node left running detached is held here until it re-attaches it; what
        // other nodes left detached is occupied there.
        node.packages.adopt_detached(&detached);
        node.packages.restore_marks(&persisted.detached_marks);
        node.marks_persisted = node.packages.detached_sets().collect();
        node
    }

    /// This node.
    pub fn id(&self) -> NodeId {
        self.settings.me
    }

    /// This node's incarnation.
    pub fn incarnation(&self) -> Incarnation {
        self.incarnation
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The proposal this node accepted and waits to see committed, if it waits on one.
    pub fn waiting_on(&self) -> Option<Epoch> {
        self.accepted.as_ref().map(|(view, _)| view.epoch)
    }

    /// Whether this node is halting (cmhaltnode, cmhaltcl, with or without -d), and how.
    pub fn leaving(&self) -> Leaving {
        self.leaving
    }

    /// The installed membership.
    pub fn view(&self) -> &View {
        &self.view
    }

    /// The package manager (its table is this node's view of where packages run).
    pub fn packages(&self) -> &Manager {
        &self.packages
    }

    /// Takes the shared map an earlier life persisted (before the first input).
    pub fn load_shared(&mut self, map: SharedMap) {
        self.shared = Arc::new(map);
    }

    /// This node's copy of the shared map.
    pub fn shared(&self) -> &SharedMap {
        &self.shared
    }

    /// Sets the shared value `key` (deletes it with `None`): the coordinator stamps the
    /// change and spreads it to every member. Refused unless this node runs in a quorate
    /// cluster. A forwarded change is answered by the coordinator
    /// ([`Event::CommandAnswered`]) once it holds it.
    pub fn handle_share(
        &mut self,
        now: Instant,
        key: String,
        value: Option<String>,
    ) -> Result<Taken, Refusal> {
        if self.phase != Phase::Running || self.safety_expired(now) || !self.quorate(now) {
            return Err(Refusal::ClusterNotRunning);
        }
        self.shared
            .check(&key, value.as_deref())
            .map_err(Refusal::Shared)?;
        let taken = match self.view.coordinator() {
            Some(coordinator) if coordinator != self.settings.me => {
                let epoch = self.view.epoch;
                self.forward(coordinator, |serial| Message::Share {
                    epoch,
                    serial,
                    key,
                    value,
                })
            }
            _ => {
                self.stamp_shared(key, value).map_err(Refusal::Shared)?;
                Taken::Done
            }
        };
        self.step(now);
        Ok(taken)
    }

    /// As coordinator: stamps a change of the shared map, keeps it (persisted first) and
    /// sends it to every other member.
    fn stamp_shared(&mut self, key: String, value: Option<String>) -> Result<(), SharedError> {
        let version = if self.shared_stamp.epoch == self.view.epoch {
            Version {
                epoch: self.view.epoch,
                count: self.shared_stamp.count + 1,
            }
        } else {
            Version {
                epoch: self.view.epoch,
                count: 1,
            }
        };
        self.shared_stamp = version;
        let entry = Entry {
            key,
            version,
            value,
        };
        if !Arc::make_mut(&mut self.shared).merge(entry.clone()) {
            return Err(SharedError::NotTaken);
        }
        self.actions
            .push_back(Action::PersistShared(self.shared.clone()));
        self.spread_shared(vec![entry], None);
        Ok(())
    }

    /// Sends `entries` of the shared map to every other member; `whole` when they are this
    /// copy's every entry.
    fn spread_shared(&mut self, entries: Vec<Entry>, whole: Option<WholeCopy>) {
        let message = Message::Shared { entries, whole };
        let others: Vec<NodeId> = self
            .view
            .members
            .iter()
            .filter(|&node| node != self.settings.me)
            .collect();
        for node in others {
            self.send(node, &message);
        }
    }

    /// A change of the shared map forwarded by `from` to this node as coordinator.
    fn on_share(
        &mut self,
        now: Instant,
        from: NodeId,
        (epoch, serial): (Epoch, u64),
        (key, value): (String, Option<String>),
    ) {
        let coordinator = self.view.coordinator() == Some(self.settings.me);
        if !coordinator || epoch != self.view.epoch || !self.quorate(now) {
            // Not answered: the sender's membership has moved on, and it bounds its wait.
            return;
        }
        let last = &mut self.commands_seen[from.index()];
        if (epoch, serial) <= *last {
            return;
        }
        *last = (epoch, serial);
        match self
            .shared
            .check(&key, value.as_deref())
            .and_then(|()| self.stamp_shared(key, value))
        {
            Ok(()) => self.answer(from, serial, None),
            Err(error) => self.answer(from, serial, Some(&Refusal::Shared(error))),
        }
    }

    /// Entries of the shared map from `from` (its whole copy when `whole` is set): the
    /// newer ones are kept; the coordinator passes on to every member what was new to it.
    /// An entry or a floor stamped in an epoch this node never promised (another cluster's,
    /// or a peer's bug) is not taken: nothing could ever replace it. Nor is a floor of this
    /// membership or later from anyone but its coordinator, the only node that purges in it.
    fn on_shared(&mut self, from: NodeId, mut entries: Vec<Entry>, whole: Option<WholeCopy>) {
        let newest = self.promised.max(self.view.epoch);
        if whole.is_some_and(|w| w.floor.epoch > newest) {
            return;
        }
        entries.retain(|entry| entry.version.epoch <= newest);
        let me = self.settings.me;
        let coordinator = self.view.coordinator();
        let floor_before = self.shared.floor();
        let (new, changed) = {
            let shared = Arc::make_mut(&mut self.shared);
            match whole {
                Some(w) => {
                    let floor = if w.floor.epoch < self.view.epoch || coordinator == Some(from) {
                        w.floor
                    } else {
                        floor_before
                    };
                    shared.take_whole(entries, floor)
                }
                None => {
                    let new: Vec<Entry> = entries
                        .into_iter()
                        .filter(|entry| shared.merge(entry.clone()))
                        .collect();
                    let changed = !new.is_empty();
                    (new, changed)
                }
            }
        };
        if changed {
            self.actions
                .push_back(Action::PersistShared(self.shared.clone()));
        }
        let member = self.view.members.contains(from);
        if coordinator == Some(me) {
            if whole.is_some() && member {
                self.shared_heard.insert(from);
            }
            if self.shared.floor() > floor_before {
                // A member's copy told of a purge this copy missed: every member hears
                // what it dropped now, not at the next resend.
                self.spread_whole();
            } else if !new.is_empty() {
                self.spread_shared(new, None);
            }
        } else if let Some(w) = whole {
            // The coordinator did not hear this node's copy (lost, or still on its way if
            // sent a moment ago): again.
            let recent = self
                .shared_sent
                .is_some_and(|at| self.rounds < at + SHARED_RESEND_ROUNDS / 6);
            if coordinator == Some(from) && !w.heard.contains(me) && !recent {
                self.send_whole_to(from);
            }
        }
    }

    /// As coordinator: sends the whole copy to every other member.
    fn spread_whole(&mut self) {
        let whole = WholeCopy {
            floor: self.shared.floor(),
            heard: self.shared_heard,
        };
        self.spread_shared(self.shared.entries(), Some(whole));
    }

    /// As a member: sends this node's whole copy to the coordinator `to`.
    fn send_whole_to(&mut self, to: NodeId) {
        self.shared_sent = Some(self.rounds);
        let message = Message::Shared {
            entries: self.shared.entries(),
            whole: Some(WholeCopy {
                floor: self.shared.floor(),
                heard: NodeSet::EMPTY,
            }),
        };
        self.send(to, &message);
    }

    /// After a membership is committed: the members send their copies of the shared map to
    /// the coordinator, which sends its own to every member.
    fn exchange_shared(&mut self) {
        self.shared_heard = NodeSet::EMPTY;
        self.shared_heard.insert(self.settings.me);
        self.shared_resend_at = self.rounds + SHARED_RESEND_ROUNDS;
        let coordinator = self.view.coordinator();
        if coordinator == Some(self.settings.me) {
            if !self.shared.is_empty() {
                self.spread_whole();
            }
        } else if let Some(coordinator) = coordinator {
            // Even an empty copy: the coordinator purges only once it heard every member's.
            self.send_whole_to(coordinator);
        }
    }

    /// As coordinator, now and then: purges the shared map's tombstones once it heard every
    /// member's whole copy in this membership (so that no member holds a key this copy
    /// lacks) and either every configured node is a member, or there are too many
    /// tombstones or keys to wait for the others; then the whole copy goes out with its new
    /// floor.
    fn purge_shared(&mut self) {
        let tombstones = self.shared.tombstones();
        if tombstones == 0 {
            return;
        }
        let members = self.view.members;
        if members.intersection(self.shared_heard) != members {
            return;
        }
        let everyone = members == self.settings.configured();
        let pressed = tombstones > SHARED_TOMBSTONES_KEPT || self.shared.len() >= SHARED_NEAR_FULL;
        if !everyone && !pressed {
            return;
        }
        if Arc::make_mut(&mut self.shared).purge_tombstones().is_some() {
            self.actions
                .push_back(Action::PersistShared(self.shared.clone()));
        }
    }

    /// A package command (cmrunpkg, cmhaltpkg, cmmodpkg) given on this node: refused at once
    /// when Serviceguard would refuse it, else carried out by the package coordinator.
    ///
    /// A forwarded command is answered by the coordinator ([`Event::CommandAnswered`]).
    pub fn handle_command(&mut self, now: Instant, command: Command) -> Result<Taken, Refusal> {
        if self.phase != Phase::Running || self.safety_expired(now) || !self.quorate(now) {
            return Err(Refusal::ClusterNotRunning);
        }
        let members = self.placeable(now);
        // The coordinator checks the command against the table it keeps. Another node's copy
        // may not have the last change yet (a cmmodpkg -e carried out a moment ago through
        // another node): a node that forwards refuses at once only what the configuration
        // alone rules out, and leaves the rest to the coordinator, whose refusal comes back
        // as the answer.
        let coordinator = self.view.coordinator();
        match self.packages.check_command(members, &command) {
            Err(refusal)
                if refusal.is_by_configuration()
                    || coordinator.is_none_or(|c| c == self.settings.me) =>
            {
                return Err(refusal)
            }
            _ => {}
        }
        if let Command::Maintenance {
            package, on: true, ..
        } = command
        {
            // Not for a package whose node is detaching it (serviceguard.md 6.5).
            let detaching = self.detaching(now);
            let active = self
                .packages
                .table()
                .package(package)
                .nodes_where(InstanceState::occupies);
            if !active.intersection(detaching).is_empty() {
                return Err(Refusal::Halting);
            }
        }
        let taken = match coordinator {
            Some(coordinator) if coordinator != self.settings.me => {
                let epoch = self.view.epoch;
                self.forward(coordinator, |serial| Message::Command {
                    epoch,
                    serial,
                    command,
                })
            }
            _ => {
                if self.config_in_flight() && starts(&command) {
                    return Err(Refusal::ConfigurationChanging);
                }
                let detached = self.detached_targets(&command);
                let before = self.packages.switching_version();
                self.packages.apply_command(now, members, &command)?;
                let switching = self.switching_to_hold(before);
                if detached.is_empty() && switching.is_none() {
                    Taken::Done
                } else {
                    // Answered once the nodes where it is detached took the halt and every
                    // member holds the switching change.
                    self.command_serial += 1;
                    let asker = (self.settings.me, self.command_serial);
                    self.hold_answer(now, asker, command, detached, switching);
                    self.await_answer()
                }
            }
        };
        self.step(now);
        Ok(taken)
    }

    /// cmrunpkg, cmhaltpkg or cmmodpkg with -t given on this node: what `commands`, in turn,
    /// would start and halt, as this node's copy of the package table tells
    /// ([`crate::packages::PreviewBasis::preview`]), with each command that would be
    /// refused; nothing is done. Refused as a whole when the cluster is not running here.
    pub fn preview_commands(
        &mut self,
        now: Instant,
        commands: &[Command],
    ) -> Result<crate::packages::Previewed, Refusal> {
        Ok(self.preview_basis(now)?.preview(commands))
    }

    /// What a preview needs, copied ([`crate::packages::PreviewBasis`]), so that it can run
    /// off the timing thread; refused as [`Node::preview_commands`] refuses a preview.
    pub fn preview_basis(
        &mut self,
        now: Instant,
    ) -> Result<crate::packages::PreviewBasis, Refusal> {
        if self.phase != Phase::Running || self.safety_expired(now) || !self.quorate(now) {
            return Err(Refusal::ClusterNotRunning);
        }
        // A coordinator new to the membership knows the table once every member reported,
        // and carries out no command before: a preview says so too.
        if self.view.coordinator() == Some(self.settings.me) && !self.packages.informed() {
            return Err(Refusal::Reforming);
        }
        let members = self.placeable(now);
        Ok(self.packages.preview_basis(now, members))
    }

    /// cmsetresource on this node: sets generic resource `name` (a simple resource's status,
    /// an extended one's value). Packages running here whose resource goes down fail.
    pub fn handle_resource(
        &mut self,
        now: Instant,
        name: &str,
        setting: ResourceValue,
    ) -> Result<(), ResourceError> {
        // The package manager's clock first: a failure it starts is timed from now.
        self.packages.tick(now);
        self.packages.set_resource(name, setting)?;
        if self.phase != Phase::Halted && !self.safety_expired(now) {
            self.step(now);
        } else {
            self.drain_packages(now);
        }
        Ok(())
    }

    /// The subnet monitor's word on monitored subnet `subnet` on this node: its first state
    /// (at start, or once a new configuration monitors it) or a change. Packages running
    /// here that monitor it fail when it goes down (the node fails fast for one with
    /// node_fail_fast_enabled) and the package coordinator fails them over to a node where
    /// their subnets are up; no package starts on a node where one of its monitored subnets
    /// is down. The state reaches the other members in heartbeats. A subnet that no package
    /// monitors (any more) is ignored.
    /// A PARTIAL subnet absent from this node does not keep its packages off it.
    pub fn handle_subnet(&mut self, now: Instant, subnet: IpAddr, state: SubnetState) {
        self.packages.tick(now);
        self.packages.set_subnet(subnet, state);
        if self.phase != Phase::Halted && !self.safety_expired(now) {
            self.step(now);
        } else {
            self.drain_packages(now);
        }
    }

    /// cmruncl [-n node]... on a starting node: form the cluster with these nodes (all
    /// must be reachable) instead of waiting for every configured node, unless a cluster
    /// already runs, which the node joins. The operator vouches that the others are down.
    ///
    /// On a halted node (its daemon still there) it starts the named nodes that are halted
    /// too ([`Message::Start`]) and this one ([`Event::StartAgain`]): each starts a new life,
    /// and the command given again on the new life forms the cluster with them.
    pub fn handle_run_cluster(&mut self, now: Instant, nodes: NodeSet) -> Result<(), Refusal> {
        let me = self.settings.me;
        let halted = self.phase == Phase::Halted;
        // Refused here before any other node is told.
        self.check_run_cluster(now, nodes)?;
        // The named nodes that are halted start (those running or starting ignore it).
        let message = self.start_message(nodes);
        for node in nodes.iter().filter(|&n| n != me) {
            self.send_to_life(node, Incarnation(0), &message);
        }
        self.start_sent = Some(now);
        if halted {
            self.end_check("the node started (cmruncl)");
            self.event(Event::StartAgain);
            return Ok(());
        }
        self.start_with = Some(nodes);
        self.step(now);
        Ok(())
    }

    /// [`Message::Start`] naming `nodes`, by number and by name.
    fn start_message(&self, nodes: NodeSet) -> Message {
        let names = nodes.iter().map(|n| self.name_of(n).to_owned()).collect();
        Message::Start { nodes, names }
    }

    /// cmruncl, forming: the nodes named that are not heard, or heard halted, are told to
    /// start again, once per heartbeat interval (one may have been busy when the command was
    /// given: still in its earlier life after a cmapplyconf that changed the nodes, say).
    fn resend_start(&mut self, now: Instant) {
        let Some(nodes) = self.start_with else {
            return;
        };
        if self.phase != Phase::Starting || self.view.epoch != Epoch::NONE {
            return;
        }
        let interval = self.settings.timing.heartbeat_interval;
        if self
            .start_sent
            .is_some_and(|at| now.saturating_since(at) < interval)
        {
            return;
        }
        self.start_sent = Some(now);
        let me = self.settings.me;
        let message = self.start_message(nodes);
        let member_timeout = self.settings.timing.member_timeout;
        let halted: Vec<NodeId> = nodes
            .iter()
            .filter(|&n| n != me && n.index() < self.settings.nodes)
            .filter(|n| {
                let peer = &self.peers[n.index()];
                let fresh = peer
                    .last_heard
                    .is_some_and(|at| now.saturating_since(at) < member_timeout);
                !fresh
                    || peer
                        .heartbeat
                        .as_ref()
                        .is_none_or(|h| h.phase == Phase::Halted)
            })
            .collect();
        for node in halted {
            self.send_to_life(node, Incarnation(0), &message);
        }
    }

    /// cmruncl -t [-n node]... on this node: what the cluster formed with `nodes` would
    /// start where ([`crate::packages::Manager::formation_basis`]), nothing done; refused as
    /// cmruncl would be ([`Node::check_run_cluster`]).
    pub fn formation_preview_basis(
        &mut self,
        now: Instant,
        nodes: NodeSet,
    ) -> Result<crate::packages::PreviewBasis, Refusal> {
        self.check_run_cluster(now, nodes)?;
        Ok(self.packages.formation_basis(nodes))
    }

    /// Whether cmruncl naming `nodes` may go on here: not on a node of a running cluster
    /// (nor a fenced one), only naming configured nodes and this one, and on a halted node
    /// not while a detached package's halt runs here or a cmapplyconf of the halted cluster
    /// is on its way.
    fn check_run_cluster(&self, now: Instant, nodes: NodeSet) -> Result<(), Refusal> {
        let me = self.settings.me;
        let halted = self.phase == Phase::Halted;
        let in_a_cluster = self.phase != Phase::Starting || self.view.epoch != Epoch::NONE;
        if self.fenced || (!halted && in_a_cluster) {
            return Err(Refusal::AlreadyMember);
        }
        if !nodes.contains(me) || nodes.iter().any(|n| n.index() >= self.settings.nodes) {
            return Err(Refusal::RunClusterNotNamed { node: me });
        }
        if halted {
            if !self.halting_detached.is_empty() {
                return Err(Refusal::Halting);
            }
            if self.halted_config_changing(now) {
                return Err(Refusal::ConfigurationChanging);
            }
        }
        if let Some(last) = self.unquorate_start(nodes) {
            return Err(Refusal::RunClusterNotQuorate {
                named: nodes,
                last,
                lock: self.settings.tiebreaker != Tiebreaker::None,
            });
        }
        Ok(())
    }

    /// cmruncl naming `nodes`: a membership this node knows (the last it installed, those
    /// it accepted since, an earlier life's among them) that the nodes could not hold to
    /// quorum when forming: the rule the forming group's commit applies
    /// (`decide_if_complete`), over this node's own memberships. Without it, they
    /// would form and halt at once, and the command, given again on each new life, would
    /// have them form and halt again. None when each membership keeps its quorum. Named
    /// every configured node, the cluster starts whole: the nodes a generation this node
    /// accepted deletes need not be named, as the group may carry it on, and they count as
    /// the commit counts them then (`quorum_counts`). The group may still know a newer
    /// membership than this node does; the commit decides then.
    fn unquorate_start(&self, nodes: NodeSet) -> Option<NodeSet> {
        // Of the proposals accepted and not dropped since (as persisted): one abandoned, or
        // this node's own, carries nothing on.
        let carried = self
            .accepted_configs
            .iter()
            .filter(|(e, _)| self.accepted_since.iter().any(|v| v.epoch == *e))
            .fold(NodeSet::EMPTY, |all, (_, c)| {
                all.union(deleted_numbers(&c.cluster))
            });
        let whole = self
            .settings
            .configured()
            .difference(carried)
            .difference(nodes)
            .is_empty();
        let in_effect = deleted_numbers(&self.settings.config);
        let committed = self.committed();
        let lock = self.settings.tiebreaker != Tiebreaker::None;
        std::iter::once(&self.view)
            .filter(|v| v.epoch != Epoch::NONE)
            .chain(&self.accepted_since)
            .filter(|basis| basis.epoch >= committed)
            .find(|basis| {
                let (previous, survivors) =
                    quorum_counts(basis.members, nodes, whole.then_some((in_effect, carried)));
                previous != 0 && 2 * survivors < previous + usize::from(!lock)
            })
            .map(|basis| basis.members)
    }

    /// cmrunnode on this node: a halted node whose daemon is still there starts a new life
    /// ([`Event::StartAgain`]), joining the cluster if it runs. A node that runs or is
    /// starting is refused, and so is a fenced one (its daemon ends).
    pub fn handle_run_node(&mut self, now: Instant) -> Result<(), Refusal> {
        if self.phase != Phase::Halted || self.fenced {
            return Err(Refusal::AlreadyMember);
        }
        // A detached package's halt script runs here (cmhaltpkg given on a member): a new
        // life would lose it.
        if !self.halting_detached.is_empty() {
            return Err(Refusal::Halting);
        }
        if self.halted_config_changing(now) {
            return Err(Refusal::ConfigurationChanging);
        }
        self.end_check("the node started (cmrunnode)");
        self.event(Event::StartAgain);
        Ok(())
    }

    /// cmrunnode NODE given on this node for another node: [`Message::Start`] naming that
    /// node alone. Halted there (its daemon still there), it starts a new life and joins
    /// the cluster; starting or running, it ignores it. It is told again every
    /// [`RUN_OTHER_RESEND`] for [`RUN_OTHER_WAIT`] until a new life of it is heard: a node
    /// just added may still be between its unconfigured daemon and its new life, and a
    /// message may be lost. Whether it joined is for the command to watch.
    pub fn handle_run_other_node(&mut self, now: Instant, node: NodeId) -> Result<(), Refusal> {
        if node == self.settings.me {
            return self.handle_run_node(now);
        }
        if node.index() >= self.settings.nodes {
            return Err(Refusal::NotAnAllowedNode { node });
        }
        self.tell_to_start(node);
        let life = self.peers[node.index()].incarnation;
        self.telling_to_start.retain(|(n, ..)| *n != node);
        self.telling_to_start
            .push((node, now + RUN_OTHER_WAIT, now, life));
        Ok(())
    }

    /// cmrunnode NODE's word to NODE: [`Message::Start`] naming it alone, to whichever life
    /// it runs.
    fn tell_to_start(&mut self, node: NodeId) {
        let mut nodes = NodeSet::EMPTY;
        nodes.insert(node);
        let message = self.start_message(nodes);
        self.send_to_life(node, Incarnation(0), &message);
    }

    /// How often cmrunnode NODE tells NODE again.
    fn run_other_resend(&self) -> Duration {
        RUN_OTHER_RESEND.min(self.settings.timing.heartbeat_interval)
    }

    /// cmrunnode NODE given here: NODE told to start again every [`RUN_OTHER_RESEND`] until
    /// a new life of it is heard (or it is a member), [`RUN_OTHER_WAIT`] passed, or this
    /// node leaves the cluster.
    fn resend_run_other(&mut self, now: Instant) {
        if self.telling_to_start.is_empty() {
            return;
        }
        // (Not called halted: a halted life never tells again.)
        if self.leaving != Leaving::No {
            self.telling_to_start.clear();
            return;
        }
        let resend = self.run_other_resend();
        let configured = self.settings.configured();
        let (peers, members) = (&self.peers, self.view.members);
        let mut due = Vec::new();
        self.telling_to_start
            .retain_mut(|(node, until, sent, life)| {
                if now >= *until
                    || !configured.contains(*node)
                    || members.contains(*node)
                    || peers[node.index()].incarnation > *life
                {
                    return false;
                }
                if now.saturating_since(*sent) >= resend {
                    *sent = now;
                    due.push(*node);
                }
                true
            });
        for node in due {
            self.tell_to_start(node);
        }
    }

    /// [`Message::Start`] from a node given cmruncl: this node starts a new life if it is
    /// halted (not fenced) and named; starting and in no cluster yet, it forms with the
    /// nodes named, as if given the same cmruncl (the lowest of them coordinates the
    /// forming, wherever the command was given). From a node given cmrunnode for this one
    /// (this node named alone, which cmruncl given elsewhere never does), a node already
    /// starting goes on as it is: it joins the cluster it hears.
    fn on_start(&mut self, now: Instant, envelope: &Envelope) {
        let me = self.settings.me;
        let Message::Start { nodes, names } = &envelope.message else {
            return;
        };
        let valid = envelope.from != me
            && envelope.from.index() < self.settings.nodes
            && envelope.cluster_id == self.settings.cluster_id
            && (envelope.to_incarnation == Incarnation(0)
                || envelope.to_incarnation == self.incarnation);
        // Node numbers mean the same nodes only within one configuration generation: from
        // another (a halted node that missed an online cmapplyconf, or a change of the
        // nodes), this node goes by its name.
        let same_generation = envelope.config_generation == self.settings.config_generation;
        let named = if same_generation {
            nodes.contains(me)
        } else {
            let mine = self.name_of(me);
            names.iter().any(|n| n.eq_ignore_ascii_case(mine))
        };
        if !valid || !named || self.fenced {
            return;
        }
        let cmrunnode = same_generation && nodes.iter().eq([me]);
        if self.phase == Phase::Halted {
            // Not while a detached package's halt script runs here, nor while a cmapplyconf
            // given with the cluster halted is on its way here: the command given again once
            // it has finished (or cmrunnode's next word) starts this node.
            if self.halting_detached.is_empty() && !self.halted_config_changing(now) {
                self.end_check("the node started (cmruncl given on another node)");
                self.event(Event::StartAgain);
            }
        } else if self.phase == Phase::Starting
            && self.view.epoch == Epoch::NONE
            && same_generation
            && nodes.iter().all(|n| n.index() < self.settings.nodes)
            && !self.safety_expired(now)
            && !cmrunnode
        {
            self.start_with = Some(*nodes);
            self.step(now);
        }
    }

    /// A halted node's request for this member's view, or a member's answer to this halted
    /// node. Taken from outside the membership, within one configuration generation (node
    /// numbers mean the same nodes only there).
    fn on_status_message(&mut self, now: Instant, network: usize, envelope: Envelope) {
        let valid = envelope.from != self.settings.me
            && envelope.from.index() < self.settings.nodes
            && envelope.cluster_id == self.settings.cluster_id
            && envelope.config_generation == self.settings.config_generation;
        if !valid {
            return;
        }
        let from = envelope.from;
        match envelope.message {
            // Only a member of a running cluster answers: another's view is no better than
            // the asker's own.
            Message::StatusRequest { serial }
                if self.phase == Phase::Running && !self.safety_expired(now) =>
            {
                let interval = self.settings.timing.heartbeat_interval;
                if self.status_answered[from.index()]
                    .is_some_and(|at| now.saturating_since(at) < interval / 2)
                {
                    return;
                }
                let snapshot = self.local_status(now);
                if snapshot.status == ClusterStatus::Up {
                    self.status_answered[from.index()] = Some(now);
                    let snapshot = Arc::new(snapshot);
                    // On the network the request came by only: a view can be large, and
                    // the next request is a heartbeat interval away.
                    self.send_on(from, network, Message::Status { serial, snapshot });
                }
            }
            Message::Status { serial, snapshot }
                if self.phase == Phase::Halted
                    && serial <= self.status_asked.1
                    && self
                        .remote_status
                        .as_ref()
                        .is_none_or(|(_, held, _)| serial > *held)
                    && snapshot.status == ClusterStatus::Up
                    && snapshot.name == self.settings.config.name
                    && snapshot.generation == self.settings.config_sequence =>
            {
                self.remote_status = Some((now, serial, snapshot));
            }
            _ => {}
        }
    }

    /// Halted, hearing a cluster run: the view a member sent while it is fresh (younger than
    /// MEMBER_TIMEOUT, as what this node hears of the cluster), shown as this node's.
    fn remote_view(&self, now: Instant) -> Option<Snapshot> {
        if self.phase != Phase::Halted {
            return None;
        }
        let fresh = |at: Instant| now.saturating_since(at) < self.settings.timing.member_timeout;
        let (at, _, snapshot) = self.remote_status.as_ref()?;
        // Not one of an earlier generation (this node took a cmapplyconf since).
        if !fresh(*at)
            || !self.heard_cluster_at().is_some_and(fresh)
            || snapshot.generation != self.settings.config_sequence
        {
            return None;
        }
        let mut view = Snapshot::clone(snapshot);
        view.observer = self.settings.me;
        Some(view)
    }

    /// cmhaltnode on this node: halt its packages (only with `force`; without it the
    /// command is refused while packages run or are halt_aborted here), then leave the
    /// membership gracefully: the others take the node out without a fence wait, and its
    /// failover packages start where they can (AUTO_RUN stays as it is).
    pub fn handle_halt_node(&mut self, now: Instant, force: bool) -> Result<(), Refusal> {
        self.check_halt_node(now, force)?;
        self.start_halt(now, false);
        Ok(())
    }

    /// The refusals of cmhaltnode [-f] on this node.
    fn check_halt_node(&mut self, now: Instant, force: bool) -> Result<(), Refusal> {
        if self.phase == Phase::Halted || self.safety_expired(now) {
            return Err(Refusal::ClusterNotRunning);
        }
        if self.leaving != Leaving::No {
            return Err(Refusal::Halting);
        }
        if self.phase != Phase::Starting && !force {
            self.refuse_if_running(|node| node == self.settings.me)?;
        }
        Ok(())
    }

    /// cmhaltnode [-d] on this node, its refusals checked: the halt starts.
    fn start_halt(&mut self, now: Instant, detach: bool) {
        if detach {
            self.start_leaving(now, Leaving::DetachNode);
        } else if self.phase == Phase::Starting {
            // Not in a cluster yet: nothing to hand over (what it holds detached stays
            // detached).
            self.leave_done();
        } else {
            self.start_leaving(now, Leaving::Node);
        }
    }

    /// cmhaltnode [-f | -d] NODE given on this node for another member: sent to it, which
    /// halts as [`Node::handle_halt_node`] or [`Node::handle_detach_node`] would and answers
    /// ([`Event::CommandAnswered`]).
    pub fn handle_halt_other(
        &mut self,
        now: Instant,
        node: NodeId,
        force: bool,
        detach: bool,
    ) -> Result<Taken, Refusal> {
        if node == self.settings.me {
            if detach {
                self.handle_detach_node(now)?;
            } else {
                self.handle_halt_node(now, force)?;
            }
            return Ok(Taken::Done);
        }
        // A cmrunnode of it given here is over.
        self.telling_to_start.retain(|(n, ..)| *n != node);
        if self.phase != Phase::Running || self.safety_expired(now) || !self.quorate(now) {
            return Err(Refusal::ClusterNotRunning);
        }
        if !self.view.members.contains(node) {
            return Err(Refusal::NodeNotUp { node });
        }
        let epoch = self.view.epoch;
        let taken = self.forward(node, |serial| Message::HaltNode {
            epoch,
            serial,
            force,
            detach,
        });
        self.step(now);
        Ok(taken)
    }

    /// cmhaltnode given on a member for this node.
    fn on_halt_node(
        &mut self,
        now: Instant,
        from: NodeId,
        (epoch, serial): (Epoch, u64),
        (force, detach): (bool, bool),
    ) {
        if epoch != self.view.epoch {
            // Not answered: the sender's membership has moved on, and it bounds its wait.
            return;
        }
        let last = &mut self.commands_seen[from.index()];
        if (epoch, serial) <= *last {
            return;
        }
        *last = (epoch, serial);
        let checked = if detach {
            self.check_detach_node(now)
        } else {
            self.check_halt_node(now, force)
        };
        // Answered before the halt starts: the answer is the first of this node's actions
        // to go out, ahead of the heartbeats and proposals that take it out of the
        // membership, after which its connections may close.
        self.answer(from, serial, checked.as_ref().err());
        if checked.is_ok() {
            self.start_halt(now, detach);
        }
    }

    /// cmhaltnode -d on this node: its packages keep running, detached and unmonitored,
    /// and the node leaves the membership once every member has recorded them as detached
    /// (so that none starts them elsewhere). Refused as Serviceguard refuses it
    /// (serviceguard.md 6.5): with system multi-node packages configured, with a package
    /// here starting, halting, halt_aborted or in maintenance, with a member unreachable,
    /// during a configuration change.
    pub fn handle_detach_node(&mut self, now: Instant) -> Result<(), Refusal> {
        self.check_detach_node(now)?;
        self.start_halt(now, true);
        Ok(())
    }

    /// The refusals of cmhaltnode -d on this node.
    fn check_detach_node(&mut self, now: Instant) -> Result<(), Refusal> {
        if self.phase != Phase::Running || self.safety_expired(now) || !self.quorate(now) {
            return Err(Refusal::ClusterNotRunning);
        }
        if self.leaving != Leaving::No {
            return Err(Refusal::Halting);
        }
        self.check_detach(now, |node| node == self.settings.me)
    }

    /// cmhaltcl -d given on this node: every member leaves its packages running, detached,
    /// and the cluster stops; cmruncl re-attaches them. Refused as cmhaltnode -d is, for
    /// the packages of every member.
    pub fn handle_detach_cluster(&mut self, now: Instant) -> Result<(), Refusal> {
        if self.phase != Phase::Running || self.safety_expired(now) || !self.quorate(now) {
            return Err(Refusal::ClusterNotRunning);
        }
        if self.leaving.cluster() {
            return Err(Refusal::Halting);
        }
        self.check_detach(now, |_| true)?;
        self.start_leaving(now, Leaving::DetachCluster);
        Ok(())
    }

    /// The refusals of cmhaltnode -d and cmhaltcl -d for the packages on the nodes `on`
    /// selects.
    fn check_detach(&self, now: Instant, on: impl Fn(NodeId) -> bool) -> Result<(), Refusal> {
        let catalog = self.packages.catalog();
        if let Some(def) = catalog
            .packages
            .iter()
            .find(|p| p.kind == crate::config::package::PackageType::SystemMultiNode)
        {
            return Err(Refusal::DetachUnsupported {
                reason: format!(
                    "system multi-node package {} is configured in the cluster",
                    def.name
                ),
            });
        }
        if self.config_in_flight() {
            return Err(Refusal::ConfigurationChanging);
        }
        let mut unreachable = self.view.members.difference(self.reach(now));
        unreachable.remove(self.settings.me);
        if !unreachable.is_empty() {
            return Err(Refusal::NodesUnreachable { nodes: unreachable });
        }
        let table = self.packages.planning_table();
        for id in catalog.ids() {
            let state = table.package(id);
            for (&node, &instance) in &state.instances {
                if !on(node) || !instance.occupies() {
                    continue;
                }
                match instance {
                    // Detached already (its node halted with -d).
                    InstanceState::Detached if !self.view.members.contains(node) => {}
                    InstanceState::HaltAborted => return Err(Refusal::HaltAborted { node }),
                    InstanceState::Running if state.maintenance => {
                        return Err(Refusal::Maintenance)
                    }
                    InstanceState::Running => {}
                    _ => return Err(Refusal::InTransition),
                }
            }
        }
        Ok(())
    }

    /// cmhaltcl given on this node: every member halts its packages (only with `force`;
    /// without it the command is refused while any package runs), then the whole cluster
    /// stops. The others learn it from this node's heartbeats.
    pub fn handle_halt_cluster(&mut self, now: Instant, force: bool) -> Result<(), Refusal> {
        if self.phase != Phase::Running || self.safety_expired(now) || !self.quorate(now) {
            return Err(Refusal::ClusterNotRunning);
        }
        if self.leaving.cluster() {
            return Err(Refusal::Halting);
        }
        if !force {
            self.refuse_if_running(|_| true)?;
        }
        self.start_leaving(now, Leaving::Cluster);
        Ok(())
    }

    /// cmapplyconf given on this node: a new configuration generation (the cluster file and
    /// every package file, checked by cmcheckconf's rules). It takes effect with the next
    /// membership the coordinator commits, on every member or on none: each member persists
    /// it before accepting. Refused for cluster parameters that need the cluster halted,
    /// and for packages that run and would be deleted or changed.
    ///
    /// `base` is the generation the files were merged into: refused when another is in
    /// effect (here, and again on the coordinator), so that a change applied in between is
    /// not undone. Files that are the generation in effect change nothing:
    /// [`Taken::Unchanged`], and nothing is distributed.
    ///
    /// On a halted node (its daemon still there) with the cluster halted, every parameter
    /// may change but the nodes themselves: the generation goes to every configured node's
    /// halted daemon and takes effect on all of them or on none ([`HaltedApply`]), answered
    /// as [`Event::CommandAnswered`] of the serial [`Taken::Forwarded`] gives. Each daemon
    /// keeps its sockets until the cluster starts again (cmruncl, cmrunnode), whose new
    /// life reads the files written with the generation.
    pub fn handle_apply(
        &mut self,
        now: Instant,
        base: Option<Base>,
        cluster: ClusterConfig,
        packages: Vec<PackageConfig>,
    ) -> Result<Taken, Refusal> {
        // The files' generation is checked as shown here, and the forwarded change checked
        // again on the coordinator. Its identity is checked only here: a member has the
        // cluster's, which the coordinator has.
        if let Some(Base {
            generation,
            number: Some(number),
        }) = base
        {
            if generation == self.settings.config_sequence
                && number != self.settings.config_generation
            {
                return Err(Refusal::ConfigurationDiverged { base: generation });
            }
        }
        let base = base.map(|b| b.generation);
        if self.phase == Phase::Halted && !self.fenced {
            return self.apply_halted(now, base, (cluster, packages), false);
        }
        if self.phase != Phase::Running || self.safety_expired(now) || !self.quorate(now) {
            return Err(Refusal::ClusterNotRunning);
        }
        self.check_base(base)?;
        // The nodes kept keep their numbers; added ones follow.
        let cluster = crate::config::keep_node_order(&self.settings.config, cluster);
        if self.in_effect(&cluster, &packages) {
            // On the coordinator, another change on its way is told rather than "no
            // changes" (a node that forwards does not know of it).
            if self.pending_config.is_some() && self.view.coordinator() == Some(self.settings.me) {
                return Err(Refusal::ConfigurationChanging);
            }
            // Nodes of it that are not members are sent it again: one that runs
            // unconfigured (an addition's last step missed it) takes it now.
            if let Some(taken) = self.enrol_again(now) {
                return Ok(taken);
            }
            return Ok(Taken::Unchanged);
        }
        if self.enrolment.is_some() {
            return Err(Refusal::ConfigurationChanging);
        }
        self.check_apply(&cluster, &packages)?;
        // Nodes added or deleted: the nodes concerned are told, and the answer waits.
        let config = &self.settings.config;
        if !crate::config::added_nodes(config, &cluster).is_empty()
            || !crate::config::deleted_nodes(config, &cluster).is_empty()
        {
            return self.start_enrolment(now, base, cluster, packages);
        }
        let taken = match self.view.coordinator() {
            Some(coordinator) if coordinator != self.settings.me => {
                self.forward_apply(coordinator, base, cluster, packages);
                if self.applies_forwarded.len() == AWAITED_ANSWERS_MAX {
                    self.applies_forwarded.pop_front();
                }
                self.applies_forwarded.push_back(self.command_serial);
                self.await_answer()
            }
            _ => {
                if !self.pending_is(&cluster, &packages) {
                    if self.pending_config.is_some() {
                        return Err(Refusal::ConfigurationChanging);
                    }
                    self.pending_config = Some((cluster, packages));
                    self.pending_origin = None;
                    self.config_attempts = 0;
                }
                Taken::Done
            }
        };
        self.step(now);
        Ok(taken)
    }

    /// Sends the change `cluster` and `packages`, merged into generation `base`, to the
    /// `coordinator` under a new command serial, which it returns ([`Message::Apply`]).
    fn forward_apply(
        &mut self,
        coordinator: NodeId,
        base: Option<u64>,
        cluster: ClusterConfig,
        packages: Vec<PackageConfig>,
    ) -> u64 {
        self.command_serial += 1;
        let message = Message::Apply {
            epoch: self.view.epoch,
            serial: self.command_serial,
            base,
            config: Arc::new(Generation {
                number: 0,
                sequence: 0,
                cluster,
                packages,
            }),
        };
        self.send(coordinator, &message);
        self.command_serial
    }

    /// cmdeleteconf (without packages) on this halted node, the cluster halted: the
    /// cluster's configuration is deleted from every node, as a halted cmapplyconf of a
    /// generation with no node and no package (every node takes it or none does, see
    /// [`HaltedApply`]). Each node persists it, keeping the epochs it promised (a cluster
    /// made again under the same name proposes above them, which a quorum server's grants
    /// need), its daemon removes the configuration files and goes on unconfigured, ready for
    /// the cmapplyconf that creates a cluster again. Answered as [`Event::CommandAnswered`]
    /// of the serial [`Taken::Forwarded`] gives.
    pub fn handle_delete_cluster(&mut self, now: Instant) -> Result<Taken, Refusal> {
        if self.phase != Phase::Halted || self.fenced {
            return Err(Refusal::NeedsHaltedCluster {
                parameters: vec!["the cluster's configuration (cmdeleteconf)"],
            });
        }
        let mut cluster = (*self.settings.config).clone();
        cluster.nodes.clear();
        self.apply_halted(now, None, (cluster, Vec::new()), false)
    }

    /// Ends the cmcheckconf on its way here, if there is one, answered with `why` it was not
    /// checked on every node (nothing to withdraw: no node holds anything).
    fn end_check(&mut self, why: &str) {
        if let Some(apply) = self.halted_apply.take_if(|a| a.check) {
            self.event(Event::CommandAnswered {
                serial: apply.serial,
                refusal: Some(format!(
                    "{why}: the files were not checked on every node; check them again"
                )),
                warning: None,
            });
        }
    }

    /// cmcheckconf on this halted node, the cluster halted: every node of the generation
    /// checks `cluster` and `packages` as it would check a cmapplyconf's offer of them (its
    /// own heartbeat addresses and timing, its generation, what it holds), the nodes added
    /// over the configuration exchange, and none keeps anything. Answered as
    /// [`Event::CommandAnswered`] of the serial [`Taken::Forwarded`] gives: no refusal when
    /// a cmapplyconf of the files given here now would find every node take them; else
    /// the first node's refusal, or the nodes that did not answer. Refused at once
    /// ([`Refusal::ClusterNotRunning`]) on a node that is not halted (starting, running or
    /// fenced), where the running cluster's own checks apply ([`Node::check_change`]).
    pub fn check_halted(
        &mut self,
        now: Instant,
        cluster: ClusterConfig,
        packages: Vec<PackageConfig>,
    ) -> Result<Taken, Refusal> {
        if self.phase != Phase::Halted || self.fenced {
            return Err(Refusal::ClusterNotRunning);
        }
        self.apply_halted(now, None, (cluster, packages), true)
    }

    /// cmapplyconf on this halted node (see [`Node::handle_apply`]), or cmcheckconf when
    /// `check` ([`Node::check_halted`]).
    fn apply_halted(
        &mut self,
        now: Instant,
        base: Option<u64>,
        (cluster, packages): (ClusterConfig, Vec<PackageConfig>),
        check: bool,
    ) -> Result<Taken, Refusal> {
        if self.halted_config_changing(now) || self.enrolment.is_some() {
            return Err(Refusal::ConfigurationChanging);
        }
        if self.hears_cluster(now, None) {
            return Err(Refusal::ClusterRunsElsewhere);
        }
        self.check_base(base)?;
        let me = self.name_of(self.settings.me).to_owned();
        self.check_halted_change(&cluster, &packages, &me)?;
        if let Some(reason) = self.address_check.refusal(&me, &cluster) {
            return Err(Refusal::InvalidConfiguration { reason });
        }
        // The files in effect already are given to every node again, under their own
        // number: a node that missed them (it was down for the last cmapplyconf) takes them.
        // Above every generation this node knows of, one a proposal carried that it accepted
        // included (such a generation may be in effect elsewhere: its number is taken).
        // Shown as the one in effect plus one, or as one such accepted generation plus one.
        let current = self.settings.config_generation;
        let shown = self.settings.config_sequence;
        let (number, sequence) = if self.in_effect(&cluster, &packages) {
            (current, shown)
        } else {
            (
                current.max(self.accepted_number()) + 1,
                shown.max(self.accepted_sequence()).max(self.sequence_floor) + 1,
            )
        };
        self.command_serial += 1;
        let serial = self.command_serial;
        let old = node_names(&self.settings.config);
        let added: Vec<(String, Vec<IpAddr>)> = cluster
            .nodes
            .iter()
            .filter(|n| !old.contains(&n.name.to_ascii_lowercase()))
            .map(|n| {
                (
                    n.name.to_ascii_lowercase(),
                    n.heartbeat_addresses().collect(),
                )
            })
            .collect();
        let waiting_added = added.iter().map(|(name, _)| name.clone()).collect();
        // The nodes deleted while the cluster ran that the files leave out (a cluster's
        // deletion needs no node told: its own files are gone with it).
        let deleted: Vec<(NodeId, String, Vec<IpAddr>)> = if cluster.nodes.is_empty() || check {
            Vec::new()
        } else {
            self.settings
                .config
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.deleted && cluster.node(&n.name).is_none())
                .map(|(index, n)| {
                    (
                        NodeId(index as u32),
                        n.name.to_ascii_lowercase(),
                        n.heartbeat_addresses().collect(),
                    )
                })
                .collect()
        };
        let untold = deleted.iter().map(|(node, _, _)| *node).collect();
        let dropping: NodeSet = if cluster.nodes.is_empty() || check {
            NodeSet::EMPTY
        } else {
            self.others()
                .iter()
                .filter(|n| cluster.node(self.name_of(*n)).is_none())
                .collect()
        };
        // A cmcheckconf on its way here gives way (it holds nothing).
        self.end_check(
            "another cmcheckconf, a cmapplyconf or a cmdeleteconf was given on this node \
             meanwhile",
        );
        self.halted_apply = Some(HaltedApply {
            serial,
            offer_serial: serial,
            config: Arc::new(Generation {
                number,
                sequence,
                cluster,
                packages,
            }),
            committing: false,
            waiting: self.others(),
            added,
            waiting_added,
            unreachable: BTreeMap::new(),
            sends: 0,
            commit_refused: Vec::new(),
            deadline: now + HALTED_APPLY_STAGE,
            resend_at: now,
            epoch_floor: self.promised,
            deleted,
            untold,
            unreachable_deleted: NodeSet::EMPTY,
            refused_deleted: BTreeMap::new(),
            took: NodeSet::EMPTY,
            kept: None,
            told_first: ToldFirst::No,
            dropping,
            sent_first: NodeSet::EMPTY,
            check,
        });
        self.drive_halted_apply(now);
        Ok(Taken::Forwarded(serial))
    }

    /// Whether the cluster's configuration was deleted here (cmdeleteconf committed: the
    /// generation persisted for the next life names no node).
    pub fn cluster_deleted(&self) -> bool {
        self.reconfigure.as_ref().is_some_and(|r| {
            r.persisted
                .config
                .as_ref()
                .is_some_and(|g| g.cluster.nodes.is_empty())
        })
    }

    /// The configuration generation in effect here as shown, or the one a cmapplyconf given
    /// with the cluster halted persisted for the next life when it changed the nodes.
    pub fn generation_taken(&self) -> u64 {
        self.reconfigure
            .as_ref()
            .map_or(self.settings.config_sequence, |r| r.sequence)
    }

    /// Whether a cmapplyconf given with the cluster halted is on its way here: this node's
    /// own, or another's whose offer it took (a new life, or a daemon that ends, would drop
    /// it half way). Either ends on its own: its stages and the offer are bounded. A
    /// cmcheckconf holds nothing, and does not count: a new life ends it first
    /// ([`Node::end_check`]).
    pub fn halted_config_changing(&self, now: Instant) -> bool {
        self.halted_apply.as_ref().is_some_and(|a| !a.check)
            || self.offered.as_ref().is_some_and(|o| now < o.until)
            || self.reconfigure.is_some()
    }

    /// The highest generation number of the proposals this node accepted (0: none).
    fn accepted_number(&self) -> u64 {
        self.accepted_max(|c| c.number)
    }

    /// The highest of `value` over the generations of the proposals this node accepted (0:
    /// none).
    fn accepted_max(&self, value: impl Fn(&Generation) -> u64) -> u64 {
        self.accepted_configs
            .iter()
            .map(|(_, c)| value(c))
            .max()
            .unwrap_or(0)
    }

    /// Whether generation `config` may come after the one in effect here: numbered above it,
    /// and made from it or from a later one (shown above it). One shown no later was made
    /// from an earlier generation, by a coordinator that had not taken the one in effect:
    /// members that have it refuse it, so it can never have been committed after it, and
    /// is never taken over it (that would undo a change in effect, and show two
    /// configurations under one generation).
    fn follows_in_effect(&self, config: &Generation) -> bool {
        config.number > self.settings.config_generation
            && config.sequence > self.settings.config_sequence
    }

    /// The highest generation as shown of the proposals this node accepted (0: none).
    fn accepted_sequence(&self) -> u64 {
        self.accepted_max(|c| c.sequence)
    }

    /// The NODE_NAME of configured node `node` (empty for another number).
    fn name_of(&self, node: NodeId) -> &str {
        self.settings
            .config
            .nodes
            .get(node.index())
            .map_or("", |n| n.name.as_str())
    }

    /// Whether generation `config` lists other nodes than those in effect here, or in
    /// another order (node numbers would change).
    fn changes_nodes(&self, config: &Generation) -> bool {
        node_names(&self.settings.config) != node_names(&config.cluster)
    }

    /// Every configured node but this one.
    fn others(&self) -> NodeSet {
        let mut others = self.settings.configured();
        others.remove(self.settings.me);
        others
    }

    /// Halted: whether a heartbeat of a running member was heard within MEMBER_TIMEOUT (the
    /// cluster runs elsewhere), other than `halted`'s, a node known to be halted since
    /// (it gave a cmapplyconf of the halted cluster): its last heartbeat, sent as the
    /// cluster halted, may have come after this node had halted.
    fn hears_cluster(&self, now: Instant, halted: Option<NodeId>) -> bool {
        self.heard_running.iter().any(|(&node, &(at, _))| {
            Some(node) != halted && now.saturating_since(at) < self.settings.timing.member_timeout
        })
    }

    /// Halted: when a heartbeat last said a cluster runs.
    fn heard_cluster_at(&self) -> Option<Instant> {
        self.heard_cluster.values().map(|&(at, _)| at).max()
    }

    /// The refusals of a change made while the cluster is halted, on any node it reaches:
    /// the nodes may be added (their cmcld runs unconfigured and takes the generation over
    /// the configuration exchange), deleted or reordered, and `giver`, the node the
    /// cmapplyconf was given on, stays; the files resolve and give a safe timing; no package
    /// is detached here (its node re-attaches it when it starts).
    fn check_halted_change(
        &self,
        cluster: &ClusterConfig,
        packages: &[PackageConfig],
        giver: &str,
    ) -> Result<(), Refusal> {
        let new = node_names(cluster);
        // No node left: the cluster's configuration is deleted (cmdeleteconf), which has
        // nothing to resolve or time.
        if !new.is_empty() {
            if !new.contains(&giver.to_ascii_lowercase()) {
                return Err(Refusal::GiverDeleted {
                    node: giver.to_owned(),
                });
            }
            Catalog::resolve(cluster, packages).map_err(|e| Refusal::InvalidConfiguration {
                reason: e.to_string(),
            })?;
            self.check_timing(cluster)?;
        }
        if !self.halting_detached.is_empty() {
            return Err(Refusal::Halting);
        }
        let detached = self.detached_held();
        if !detached.is_empty() {
            return Err(Refusal::PackagesDetached { packages: detached });
        }
        Ok(())
    }

    /// Moves a halted cmapplyconf on: sends its stage's message to the nodes that have not
    /// answered, goes from the offer to the commit once every node took it, and answers the
    /// command once every node confirmed the commit or the stage's time is up.
    fn drive_halted_apply(&mut self, now: Instant) {
        self.tell_dropped_first(now);
        let Some(apply) = &self.halted_apply else {
            return;
        };
        // A deleted node not reached yet is waited for while it may still answer: the
        // exchange has not found it unreachable, and the stage has time left.
        let refused: NodeSet = apply.refused_deleted.keys().copied().collect();
        let deleted_waited = !apply
            .untold
            .difference(apply.unreachable_deleted)
            .difference(refused)
            .is_empty()
            && now < apply.deadline;
        if apply.waiting.is_empty()
            && apply.waiting_added.is_empty()
            && !apply.committing
            && !deleted_waited
            && !apply.untold.is_empty()
        {
            self.keep_numbers(now);
        }
        let Some(apply) = &self.halted_apply else {
            return;
        };
        if apply.check
            && apply.waiting.is_empty()
            && apply.waiting_added.is_empty()
            && !apply.committing
        {
            // Every node would take the offer: the check is over, and nothing is held.
            let serial = apply.serial;
            self.halted_apply = None;
            self.event(Event::CommandAnswered {
                serial,
                refusal: None,
                warning: None,
            });
            return;
        }
        if apply.waiting.is_empty()
            && apply.waiting_added.is_empty()
            && !apply.committing
            && apply.untold.is_empty()
        {
            // Every node took the offer: in effect here first, then on every other node
            // and on the deleted nodes that took it.
            let config = apply.config.clone();
            let floor = apply.epoch_floor;
            // The deleted nodes that took the offer are awaited, unless they confirmed it
            // first; the nodes the files delete likewise, when numbered anew all the same
            // (with the numbers kept, one that took the offer given again is of `took`).
            let took = match (&apply.kept, apply.told_first) {
                (_, ToldFirst::Confirmed) => NodeSet::EMPTY,
                (Some(kept), _) if kept.numbered_anew => apply.took.union(apply.dropping),
                _ => apply.took,
            };
            let dropping = apply.dropping;
            self.take_halted_config(now, &config, floor, true);
            let others = self.others().difference(dropping).union(took);
            if let Some(apply) = &mut self.halted_apply {
                apply.committing = true;
                apply.waiting = others;
                apply.waiting_added = apply.added.iter().map(|(name, _)| name.clone()).collect();
                apply.sends = 0;
                apply.deadline = now + HALTED_APPLY_STAGE;
                apply.resend_at = now;
            }
        }
        let Some(apply) = &mut self.halted_apply else {
            return;
        };
        let serial = apply.serial;
        let offer_serial = apply.offer_serial;
        let old = &self.settings.config.nodes;
        let named = |node: NodeId| old.get(node.index()).map_or("", |n| n.name.as_str());
        let nodes = |set: NodeSet| -> String {
            set.iter()
                .map(|n| named(n).to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let finished = apply.waiting.is_empty()
            && apply.waiting_added.is_empty()
            && (apply.committing || apply.untold.is_empty());
        if finished || now >= apply.deadline {
            let refusal = if !apply.committing {
                let mut silent = Vec::new();
                if !apply.waiting.is_empty() {
                    let command = if apply.check {
                        "cmcheckconf"
                    } else {
                        "cmapplyconf"
                    };
                    silent.push(format!(
                        "{} did not answer: {command} with the cluster halted needs the \
                         cmcld of every node running (halted)",
                        nodes(apply.waiting)
                    ));
                }
                for (name, addresses) in &apply.added {
                    if !apply.waiting_added.contains(name) {
                        continue;
                    }
                    let why = apply
                        .unreachable
                        .get(name)
                        .map_or_else(|| format!("at {}", listed(addresses)), |e| format!("({e})"));
                    silent.push(format!(
                        "{name} did not answer {why}: a node added needs its cmcld running, \
                         unconfigured, with the cluster's key and a certificate of its \
                         authority"
                    ));
                }
                Some(if apply.check {
                    silent.join("; ")
                } else {
                    format!(
                        "{}{}",
                        silent.join("; "),
                        nothing_applied(apply, &self.settings.config)
                    )
                })
            } else if apply.config.cluster.nodes.is_empty() {
                // cmdeleteconf: a node that did not take it still has the configuration,
                // and its own cmdeleteconf reaches the others (unconfigured by now).
                let mut missing: Vec<String> = apply
                    .commit_refused
                    .iter()
                    .map(|(node, why)| format!("{node} refused it: {why}"))
                    .collect();
                if !apply.waiting.is_empty() {
                    missing.push(format!("{} did not confirm it", nodes(apply.waiting)));
                }
                (!missing.is_empty()).then(|| {
                    format!(
                        "the cluster's configuration is deleted on this node, but {}: give \
                         cmdeleteconf again on each of them",
                        missing.join("; ")
                    )
                })
            } else {
                // A node the change deletes is out of the new generation's reach: giving
                // the command again does not reach it.
                let kept = node_names(&apply.config.cluster);
                let deleted = |node: NodeId| {
                    old.get(node.index())
                        .is_some_and(|n| !kept.contains(&n.name.to_ascii_lowercase()))
                };
                let gone_name = |name: &str| !kept.contains(&name.to_ascii_lowercase());
                // A deleted node whose number the generation keeps is told by the running
                // cluster, as kept_warning says: no cleaning by hand.
                let numbered = |name: &str| {
                    apply
                        .config
                        .cluster
                        .nodes
                        .iter()
                        .any(|n| n.deleted && n.name.eq_ignore_ascii_case(name))
                };
                let mut missing: Vec<String> = Vec::new();
                let mut left_behind: Vec<String> = Vec::new();
                for (node, why) in &apply.commit_refused {
                    if numbered(node) {
                        continue;
                    }
                    let text = format!("{node} refused it: {why}");
                    if gone_name(node) {
                        left_behind.push(text);
                    } else {
                        missing.push(text);
                    }
                }
                let (gone, stayed): (Vec<NodeId>, Vec<NodeId>) = apply
                    .waiting
                    .iter()
                    .filter(|&n| !numbered(named(n)))
                    .partition(|&n| deleted(n));
                if !stayed.is_empty() {
                    let set: NodeSet = stayed.into_iter().collect();
                    missing.push(format!("{} did not confirm it", nodes(set)));
                }
                if !apply.waiting_added.is_empty() {
                    missing.push(format!(
                        "{} did not confirm it",
                        apply
                            .waiting_added
                            .iter()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                if !gone.is_empty() {
                    let set: NodeSet = gone.into_iter().collect();
                    left_behind.push(format!("{} did not confirm it", nodes(set)));
                }
                let mut parts = Vec::new();
                if !missing.is_empty() {
                    parts.push(format!(
                        "{}: give the same cmapplyconf again before starting the cluster",
                        missing.join("; ")
                    ));
                }
                if !left_behind.is_empty() {
                    parts.push(format!(
                        "of the nodes it deletes, {}: stop cmcld there, remove \
                         cluster.ascii, packages/ and acceptor from its state directory, \
                         and start it again (unconfigured)",
                        left_behind.join("; ")
                    ));
                }
                (!parts.is_empty()).then(|| {
                    format!(
                        "generation {} is in effect on this node, but {}",
                        apply.config.sequence,
                        parts.join("; and ")
                    )
                })
            };
            let mut refusal = refusal;
            let mut warning = None;
            if let Some(apply) = self.halted_apply.take() {
                if apply.check {
                    // Nothing held anywhere: nothing to withdraw.
                } else if !apply.committing {
                    self.withdraw_offer(&apply);
                } else {
                    // Said with the refusal, should there be one.
                    warning = kept_warning(&apply);
                    if let Some(why) = &mut refusal {
                        if let Some(kept) = warning.take() {
                            why.push_str("; and ");
                            why.push_str(&kept);
                        }
                    }
                }
            }
            self.event(Event::CommandAnswered {
                serial,
                refusal,
                warning,
            });
            // Answered: a generation that changed the nodes is put in effect by a new life.
            if let Some(reconfigure) = &mut self.reconfigure {
                reconfigure.at.get_or_insert(now);
            }
            self.drive_reconfigure(now);
            return;
        }
        if now >= apply.resend_at {
            apply.resend_at = now + HALTED_APPLY_RESEND;
            apply.sends += 1;
            let message = if apply.committing {
                Message::ConfigCommit {
                    serial: offer_serial,
                    number: apply.config.number,
                    epoch_floor: apply.epoch_floor,
                }
            } else if apply.check {
                Message::ConfigCheck {
                    serial: offer_serial,
                    config: apply.config.clone(),
                }
            } else {
                Message::ConfigOffer {
                    serial: offer_serial,
                    config: apply.config.clone(),
                }
            };
            let waiting = apply.waiting;
            let mut exchange: Vec<(String, Vec<IpAddr>)> = apply
                .added
                .iter()
                .filter(|(name, _)| apply.waiting_added.contains(name))
                .cloned()
                .collect();
            // A node of this generation that does not answer on the control channel may
            // run unconfigured: added by an earlier change whose commit it missed (the
            // exchange is how it is reached). Tried from the stage's second send on.
            if apply.sends > 1 {
                exchange.extend(waiting.iter().filter_map(|n| {
                    let node = self.settings.config.nodes.get(n.index())?;
                    Some((
                        node.name.to_ascii_lowercase(),
                        node.heartbeat_addresses().collect(),
                    ))
                }));
            }
            // A deleted node not reached yet may run unconfigured (told, its files gone):
            // the exchange finds it so at once, which the control channel cannot.
            if !apply.committing {
                exchange.extend(
                    apply
                        .deleted
                        .iter()
                        .filter(|(node, _, _)| {
                            apply.untold.contains(*node)
                                && !apply.refused_deleted.contains_key(node)
                        })
                        .map(|(_, name, addresses)| (name.clone(), addresses.clone())),
                );
            }
            let cluster_id = cluster_id(&apply.config.cluster.name);
            // A node deleted while the cluster ran that was never told (down then, and
            // since) is sent the stages too: should it run, halted, it takes the generation,
            // which deletes it, and goes on unconfigured. Whether it answers the first offer
            // decides the numbering (see keep_numbers); the commit is awaited from it once
            // it took the offer.
            let to = if apply.check {
                waiting
            } else {
                deleted_numbers(&self.settings.config)
                    .union(waiting)
                    .union(apply.dropping)
            };
            for node in to.iter() {
                self.send_to_life(node, Incarnation(0), &message);
            }
            for (to, addresses) in exchange {
                self.exchange(to, addresses, cluster_id, message.clone());
            }
        }
    }

    /// The step of a halted cmapplyconf that commits its first offer to the deleted nodes
    /// that took it before any other node ([`ToldFirst`]): begun once every node took the
    /// offer; over once each confirmed the commit (the others are sent it then), or when
    /// one refused it or the stage's time is up: those are untold, and the offer is given
    /// again with the numbers kept.
    fn tell_dropped_first(&mut self, now: Instant) {
        let Some(apply) = &mut self.halted_apply else {
            return;
        };
        let offer_taken = apply.waiting.is_empty()
            && apply.waiting_added.is_empty()
            && !apply.committing
            && apply.untold.is_empty();
        let first = apply.took.union(apply.dropping);
        if offer_taken
            && apply.kept.is_none()
            && !first.is_empty()
            && apply.told_first == ToldFirst::No
        {
            apply.told_first = ToldFirst::Committing;
            apply.committing = true;
            apply.waiting = first;
            apply.sends = 0;
            apply.deadline = now + HALTED_APPLY_STAGE;
            apply.resend_at = now;
            return;
        }
        if apply.told_first != ToldFirst::Committing
            || (!apply.waiting.is_empty() && now < apply.deadline)
        {
            return;
        }
        let config = &self.settings.config;
        let names: Vec<(NodeId, String)> = apply
            .deleted
            .iter()
            .filter(|(node, _, _)| apply.took.contains(*node))
            .map(|(node, name, _)| (*node, name.clone()))
            .chain(entries(config, apply.dropping).map(|(node, name, _)| (node, name)))
            .collect();
        let mut untold = apply.waiting;
        for (node, name) in &names {
            if apply.waiting.contains(*node) {
                apply.unreachable.insert(
                    name.clone(),
                    "took the offer, then did not confirm its commit".to_owned(),
                );
            }
            let refused = apply
                .commit_refused
                .iter()
                .position(|(n, _)| n.eq_ignore_ascii_case(name));
            if let Some(at) = refused {
                let (_, why) = apply.commit_refused.remove(at);
                apply.refused_deleted.insert(*node, why);
                untold.insert(*node);
            }
        }
        apply.committing = false;
        apply.waiting = NodeSet::EMPTY;
        apply.sent_first = untold.intersection(apply.dropping);
        if untold.is_empty() {
            // Told: the others are sent the commit now (drive_halted_apply).
            apply.told_first = ToldFirst::Confirmed;
        } else {
            apply.told_first = ToldFirst::No;
            apply.untold = untold;
            self.keep_numbers(now);
        }
    }

    /// Every node took a halted cmapplyconf's first offer, but a node deleted while the
    /// cluster ran, which the files leave out, was not reached ([`HaltedApply::deleted`]),
    /// or a node the files delete did not confirm the commit given it first
    /// ([`HaltedApply::dropping`]): it may never have been told, and would come back
    /// numbered as its old files number it, waiting in vain to join. The offer is given
    /// again, under a new serial, with the numbers in effect kept
    /// ([`crate::config::keep_node_order`]): the deleted node's number stays, unused, so that
    /// the cluster tells it when it is heard again, and the answer says so. Should no number
    /// be left for that, the nodes are numbered as the files list them all the same, and the
    /// answer says how to clean the node up by hand.
    fn keep_numbers(&mut self, now: Instant) {
        let others = self.others();
        let current = (
            self.settings.config_generation,
            self.settings.config_sequence,
        );
        let Some(apply) = &self.halted_apply else {
            return;
        };
        let dropping = entries(&self.settings.config, apply.dropping);
        let unreached: Vec<(NodeId, String, String)> = apply
            .deleted
            .iter()
            .cloned()
            .chain(dropping)
            .filter(|(node, _, _)| apply.untold.contains(*node))
            .map(|(node, name, addresses)| {
                let why = match (
                    apply.refused_deleted.get(&node),
                    apply.unreachable.get(&name),
                ) {
                    (Some(why), _) => format!("refused it: {why}"),
                    (None, Some(why)) => why.clone(),
                    (None, None) => format!("at {}", listed(&addresses)),
                };
                let text = format!("{name} ({why})");
                (node, name, text)
            })
            .collect();
        let cluster =
            crate::config::keep_node_order(&self.settings.config, apply.config.cluster.clone());
        if cluster.nodes.len() > NodeSet::CAPACITY {
            if let Some(apply) = &mut self.halted_apply {
                apply.untold = NodeSet::EMPTY;
                apply.kept = Some(Kept {
                    unreached,
                    reordered: false,
                    numbered_anew: true,
                });
            }
            return;
        }
        let reordered = node_names(&cluster.as_written()) != node_names(&apply.config.cluster);
        let packages = apply.config.packages.clone();
        // The first offer's number is above every one this node knows (a deleted entry in
        // effect makes it a new generation): the next is too.
        let (number, sequence) = if self.in_effect(&cluster, &packages) {
            current
        } else {
            (apply.config.number + 1, apply.config.sequence)
        };
        self.command_serial += 1;
        let offer_serial = self.command_serial;
        let Some(apply) = &mut self.halted_apply else {
            return;
        };
        apply.offer_serial = offer_serial;
        apply.config = Arc::new(Generation {
            number,
            sequence,
            cluster,
            packages,
        });
        // The nodes the files delete are deleted nodes of the new offer: sent it, not
        // awaited (see drive_halted_apply).
        apply.waiting = others.difference(apply.dropping);
        apply.waiting_added = apply.added.iter().map(|(name, _)| name.clone()).collect();
        apply.untold = NodeSet::EMPTY;
        apply.unreachable_deleted = NodeSet::EMPTY;
        apply.refused_deleted.clear();
        apply.took = NodeSet::EMPTY;
        apply.sends = 0;
        apply.deadline = now + HALTED_APPLY_STAGE;
        apply.resend_at = now;
        apply.kept = Some(Kept {
            unreached,
            reordered,
            numbered_anew: false,
        });
    }

    /// Sends `message` of cluster `cluster_id` to node `to` at `addresses` over the
    /// configuration exchange.
    fn exchange(&mut self, to: String, addresses: Vec<IpAddr>, cluster_id: u64, message: Message) {
        self.actions.push_back(Action::Exchange {
            to,
            addresses,
            envelope: Envelope {
                cluster_id,
                config_generation: self.settings.config_generation,
                from: self.settings.me,
                from_incarnation: self.incarnation,
                to_incarnation: Incarnation(0),
                message,
            },
        });
    }

    /// Tells every node of a halted cmapplyconf that did not go ahead to drop its offer
    /// ([`Message::ConfigWithdraw`]): those that took it would otherwise refuse to start, or
    /// to take another change, until it expires.
    fn withdraw_offer(&mut self, apply: &HaltedApply) {
        // The first offer too, when it was given again with the numbers kept (a node that
        // took the first only would hold it).
        let mut serials = vec![apply.serial];
        if apply.offer_serial != apply.serial {
            serials.push(apply.offer_serial);
        }
        let mut told = NodeSet::first(self.settings.nodes);
        told.remove(self.settings.me);
        let cluster_id = cluster_id(&apply.config.cluster.name);
        for serial in serials {
            let message = Message::ConfigWithdraw { serial };
            for node in told.iter() {
                self.send_to_life(node, Incarnation(0), &message);
            }
            for (to, addresses) in &apply.added {
                self.exchange(to.clone(), addresses.clone(), cluster_id, message.clone());
            }
        }
    }

    /// The answer of node `name`, not configured here, to a halted cmapplyconf's offer or
    /// commit sent over the configuration exchange ([`Action::Exchange`]). `name` is the
    /// NODE_NAME the answering node's certificate carries.
    pub fn handle_exchange_answer(&mut self, now: Instant, name: &str, envelope: Envelope) {
        let name = name.to_ascii_lowercase();
        if self.enrolment_answered(now, &name, &envelope) {
            return;
        }
        if envelope.to_incarnation != self.incarnation {
            return;
        }
        let configured = self
            .settings
            .config
            .position(&name)
            .map(|i| NodeId(i as u32))
            .filter(|&n| n != self.settings.me);
        let Message::ConfigAnswer {
            serial,
            commit,
            refusal,
            epoch_max,
        } = envelope.message
        else {
            return;
        };
        let Some(apply) = &mut self.halted_apply else {
            return;
        };
        if apply.offer_serial != serial || apply.committing != commit {
            return;
        }
        // A deleted node that answers on the exchange runs unconfigured: told already (each
        // number of that name: one deleted, added again and deleted again has two).
        let numbers: Vec<NodeId> = apply
            .deleted
            .iter()
            .filter(|(_, n, _)| *n == name)
            .map(|(node, _, _)| *node)
            .collect();
        // The same name may be a node of this generation too, which the files delete
        // (deleted, added again, and deleted again).
        let dropped = configured.is_some_and(|node| apply.dropping.contains(node));
        let told_deleted = !numbers.is_empty() && !commit;
        if told_deleted {
            for node in &numbers {
                apply.untold.remove(*node);
            }
        }
        if !numbers.is_empty() && !dropped {
            if told_deleted {
                self.drive_halted_apply(now);
            }
            return;
        }
        let awaited = match configured {
            // A node of this generation that runs unconfigured (see drive_halted_apply).
            Some(node) if apply.waiting.contains(node) => {
                apply.waiting.remove(node);
                true
            }
            _ => apply.waiting_added.remove(&name),
        };
        // One the files delete runs unconfigured already: told (it took the commit given it
        // first, whose answer was lost), or its files removed by hand. Nothing is left to
        // tell it, whatever it answers to a generation that does not name it.
        let refusal = if dropped { None } else { refusal };
        if awaited {
            self.answered_halted_apply(now, name, commit, refusal, epoch_max);
        } else if told_deleted {
            self.drive_halted_apply(now);
        }
    }

    /// A request over the configuration exchange to node `name` about the change `serial`
    /// failed (`why`): said in the answer should the node not answer at all.
    pub fn handle_exchange_failure(
        &mut self,
        now: Instant,
        name: &str,
        serial: Option<u64>,
        why: &str,
    ) {
        if self.enrolment_unreachable(now, &name.to_ascii_lowercase(), serial, why) {
            return;
        }
        if let Some(apply) = &mut self.halted_apply {
            let name = name.to_ascii_lowercase();
            // A deleted node that cannot be reached is waited for no longer; one whose
            // cmcld runs configured answers on the control channel.
            for (node, _, _) in apply.deleted.iter().filter(|(_, n, _)| *n == name) {
                if why.contains(crate::core::RUNS_CONFIGURED) {
                    apply.unreachable_deleted.remove(*node);
                } else {
                    apply.unreachable_deleted.insert(*node);
                }
            }
            apply.unreachable.insert(name, why.to_owned());
            self.drive_halted_apply(now);
        }
    }

    /// A node's answer to this node's halted cmapplyconf's current stage, which awaited it.
    fn answered_halted_apply(
        &mut self,
        now: Instant,
        name: String,
        commit: bool,
        refusal: Option<String>,
        epoch_max: Epoch,
    ) {
        let Some(apply) = &mut self.halted_apply else {
            return;
        };
        let serial = apply.serial;
        if !commit {
            apply.epoch_floor = apply.epoch_floor.max(epoch_max);
        }
        if let Some(why) = refusal {
            if !commit {
                // One refusal is enough: nothing is put in effect anywhere.
                let mut refusal = why;
                if let Some(apply) = self.halted_apply.take().filter(|a| !a.check) {
                    self.withdraw_offer(&apply);
                    refusal.push_str(&nothing_applied(&apply, &self.settings.config));
                }
                self.event(Event::CommandAnswered {
                    serial,
                    refusal: Some(refusal),
                    warning: None,
                });
                return;
            }
            apply.commit_refused.push((name, why));
        }
        self.drive_halted_apply(now);
    }

    /// A halted cmapplyconf's generation takes effect on this halted node: its files are
    /// written (the next life reads them, sockets and all), then it is persisted and in
    /// effect. The same generation again (given again after a node missed it) only writes
    /// the files again.
    ///
    /// A generation that changes the nodes is persisted for a new life to take
    /// ([`Node::reconfigure`]): `giver`, this node gave the cmapplyconf (its life ends once
    /// the command is answered); `floor`, the commit's epoch floor.
    fn take_halted_config(
        &mut self,
        now: Instant,
        config: &Arc<Generation>,
        floor: Epoch,
        giver: bool,
    ) {
        if self.changes_nodes(config) {
            self.reconfigure(now, config, floor, giver);
            return;
        }
        let same = config.number == self.settings.config_generation
            && self.in_effect(&config.cluster, &config.packages);
        if !same {
            self.apply_generation(now, config);
        }
        // A generation a proposal of the running cluster carried and this node accepted is
        // over: it is never taken at the next start in place of this one.
        self.accepted_configs.clear();
        // Persisted first: a daemon that starts from a generation later than its files
        // writes them again (runtime::daemon), so a crash between the two leaves neither half.
        self.actions.push_back(Action::Persist(self.persisted()));
        self.actions
            .push_back(Action::WriteConfiguration(config.clone()));
    }

    /// A halted cmapplyconf's generation that deletes or reorders nodes, committed here. This
    /// core's node numbers are positions in the old list, so it never takes the
    /// generation: its state is persisted as the new list numbers nodes, the files are
    /// written, and a new life starts from them, halted ([`Event::Reconfigured`]).
    ///
    /// What the new life starts from: no membership installed or accepted (every node of
    /// the old list took the offer halted and hearing no cluster, so no membership of the
    /// old numbering can ever be committed after this one); the detached records by name;
    /// the epochs promised raised to `floor`, the highest any node of the change had
    /// promised, as an epoch names its proposer by number. A node the generation deletes
    /// keeps its promise and floor, and the generation that deleted it; its daemon removes
    /// its files.
    fn reconfigure(&mut self, now: Instant, config: &Arc<Generation>, floor: Epoch, giver: bool) {
        if self.reconfigure.is_some() {
            return;
        }
        let old: Vec<String> = node_names(&self.settings.config);
        let new: Vec<String> = node_names(&config.cluster);
        let retired = !new.contains(&old[self.settings.me.index()]);
        let renumber = |set: NodeSet| -> NodeSet {
            set.iter()
                .filter_map(|n| {
                    let name = old.get(n.index()).filter(|name| !name.is_empty())?;
                    let at = new.iter().position(|m| m == name)?;
                    Some(NodeId(at as u32))
                })
                .collect()
        };
        let persisted = Persisted {
            epoch_max: self.promised.max(floor),
            installed: None,
            accepted: Vec::new(),
            // Kept by a deleted node too: a daemon that starts from files of before the
            // change finds itself missing from it, removes them and goes on unconfigured.
            config: Some(config.clone()),
            accepted_configs: Vec::new(),
            // Refused unless empty (check_halted_change).
            detached: Vec::new(),
            detached_marks: if retired {
                Vec::new()
            } else {
                self.packages
                    .marks()
                    .into_iter()
                    .map(|(package, nodes)| (package, renumber(nodes)))
                    .filter(|(_, nodes)| !nodes.is_empty())
                    .collect()
            },
            sequence_floor: self.sequence_floor.max(config.sequence),
            passed_over: Vec::new(),
            own_pending: None,
        };
        self.accepted_configs.clear();
        self.actions.push_back(Action::Persist(persisted.clone()));
        if !retired {
            self.actions
                .push_back(Action::WriteConfiguration(config.clone()));
        }
        self.reconfigure = Some(Reconfigure {
            at: (!giver).then_some(now + RECONFIGURE_LINGER),
            retired,
            told: false,
            sequence: config.sequence,
            persisted,
        });
    }

    /// Tells [`Event::Reconfigured`] once its time came.
    fn drive_reconfigure(&mut self, now: Instant) {
        let Some(reconfigure) = &mut self.reconfigure else {
            return;
        };
        if reconfigure.told || reconfigure.at.is_none_or(|at| now < at) {
            return;
        }
        reconfigure.told = true;
        let retired = reconfigure.retired;
        self.event(Event::Reconfigured { retired });
    }

    /// A halted cmapplyconf's messages ([`Message::ConfigOffer`], [`Message::ConfigCommit`],
    /// [`Message::ConfigWithdraw`], [`Message::ConfigAnswer`]) and a halted cmcheckconf's
    /// ([`Message::ConfigCheck`]), taken from any configured node whatever its generation.
    fn on_halted_config(&mut self, now: Instant, envelope: Envelope) {
        let me = self.settings.me;
        let from = envelope.from;
        let valid = from != me
            && from.index() < self.settings.nodes
            && envelope.cluster_id == self.settings.cluster_id
            && (envelope.to_incarnation == Incarnation(0)
                || envelope.to_incarnation == self.incarnation);
        if !valid {
            return;
        }
        if self.deleted_answered(now, from, &envelope) {
            return;
        }
        // The sender's serials start again with each of its lives: an offer is its life's, and
        // an answer goes to that life only (a later life drops it).
        let life = envelope.from_incarnation;
        match envelope.message {
            Message::ConfigOffer { serial, config } => {
                if self.committed_offer == Some((from, life, serial))
                    || self.withdrawn_offers.contains(&(from, life, serial))
                {
                    // A copy that arrived after the commit or the withdrawal (it travels on
                    // every network).
                    return;
                }
                let refusal = self.check_offer(now, from, &config).err();
                let taken_already = self.retired_by(config.number);
                if refusal.is_none() && !taken_already {
                    // This node's own check, if one is on its way, was against what it held
                    // before this offer: it ends.
                    self.end_check("a cmapplyconf given on another node was taken meanwhile");
                    // Offered a generation that deletes it while starting (in vain): it
                    // stops at once, so that it forms no cluster (cmruncl -n) meanwhile.
                    if self.phase == Phase::Starting {
                        self.halt_gracefully();
                    }
                    // Persisted before the answer leaves: once every node took the offer,
                    // the giver may put it in effect.
                    if config.sequence > self.sequence_floor {
                        self.sequence_floor = config.sequence;
                        self.actions.push_back(Action::Persist(self.persisted()));
                    }
                    self.offered = Some(Offered {
                        from,
                        life,
                        serial,
                        config,
                        until: now + HALTED_APPLY_STAGE * 3,
                    });
                }
                self.answer_halted_config((from, life), serial, false, refusal);
            }
            Message::ConfigCommit {
                serial,
                number,
                epoch_floor,
            } => {
                // A generation that deletes this node may be given by two members at once
                // (the one the command was given on, and the coordinator hearing this node):
                // the commit of either is taken.
                let offered = self
                    .offered
                    .as_ref()
                    .filter(|o| {
                        o.config.number == number
                            && ((o.from, o.life, o.serial) == (from, life, serial)
                                || self.retiring(from, &o.config))
                    })
                    .map(|o| o.config.clone());
                let refusal = match offered {
                    Some(config) if self.out_of_cluster(self.deleted_by(from, &config)) => {
                        // Deleted while it was starting (in vain): it stops trying.
                        if self.phase == Phase::Starting {
                            self.halt_gracefully();
                        }
                        self.offered = None;
                        self.committed_offer = Some((from, life, serial));
                        self.take_halted_config(now, &config, epoch_floor, false);
                        None
                    }
                    // Taken already (the commit came again, or another member's).
                    None if self.committed_offer == Some((from, life, serial))
                        || self.retired_by(number) =>
                    {
                        None
                    }
                    _ => Some(format!(
                        "{} holds no offer of this change (it expired, or the node started \
                         again)",
                        self.name_of(me)
                    )),
                };
                self.answer_halted_config((from, life), serial, true, refusal);
            }
            // cmcheckconf: checked as the offer would be, and nothing kept.
            Message::ConfigCheck { serial, config } => {
                let refusal = self.check_offer(now, from, &config).err();
                self.answer_halted_config((from, life), serial, false, refusal);
            }
            Message::ConfigWithdraw { serial } => {
                if self
                    .offered
                    .as_ref()
                    .is_some_and(|o| (o.from, o.life, o.serial) == (from, life, serial))
                {
                    self.offered = None;
                }
                // Kept whether or not the offer was held: it may not have arrived yet.
                let key = (from, life, serial);
                if !self.withdrawn_offers.contains(&key) {
                    if self.withdrawn_offers.len() == WITHDRAWN_KEPT {
                        self.withdrawn_offers.pop_front();
                    }
                    self.withdrawn_offers.push_back(key);
                }
            }
            Message::ConfigAnswer {
                serial,
                commit,
                refusal,
                epoch_max,
            } => {
                let Some(apply) = &mut self.halted_apply else {
                    return;
                };
                if apply.offer_serial != serial || apply.committing != commit {
                    return;
                }
                // A deleted node's answer to the offer (awaited at the commit once it took it),
                // or, once the numbers are kept, one of a node the files delete.
                let deleted = deleted_numbers(&self.settings.config).contains(from)
                    || (apply.kept.is_some() && apply.dropping.contains(from));
                if deleted && !commit && !apply.waiting.contains(from) && !apply.check {
                    match refusal {
                        None => {
                            apply.took.insert(from);
                            apply.untold.remove(from);
                        }
                        Some(why) => {
                            apply.refused_deleted.insert(from, why);
                        }
                    }
                    self.drive_halted_apply(now);
                    return;
                }
                if !apply.waiting.contains(from) {
                    return;
                }
                apply.waiting.remove(from);
                let name = self.name_of(from).to_owned();
                self.answered_halted_apply(now, name, commit, refusal, epoch_max);
            }
            _ => {}
        }
    }

    /// Answers the offer or check (`commit` false) or the commit of `serial` that node `from`
    /// sent in its life `life`: taken, or `refusal`.
    fn answer_halted_config(
        &mut self,
        (from, life): (NodeId, Incarnation),
        serial: u64,
        commit: bool,
        refusal: Option<String>,
    ) {
        let answer = Message::ConfigAnswer {
            serial,
            commit,
            refusal,
            epoch_max: self.promised,
        };
        self.send_to_life(from, life, &answer);
    }

    /// Whether this halted node takes the offer `config` of `from`'s cmapplyconf;
    /// why not, in the words the answer carries (this node by name: the giver may number
    /// the nodes otherwise, after a change of the nodes this node missed).
    fn check_offer(&self, now: Instant, from: NodeId, config: &Generation) -> Result<(), String> {
        let me = self.name_of(self.settings.me);
        let retiring = self.retiring(from, config);
        if !self.out_of_cluster(self.deleted_by(from, config)) {
            return Err(format!(
                "{me} is not halted (it is starting or runs in a cluster): halt it first \
                 (cmhaltnode), or apply with the cluster running"
            ));
        }
        if !retiring && self.hears_cluster(now, Some(from)) {
            return Err(format!(
                "{me} hears the cluster run on other nodes: apply there, with the cluster running"
            ));
        }
        // Deleted by this generation already (another member told it first): nothing to
        // take again.
        if retiring && self.retired_by(config.number) {
            return Ok(());
        }
        // A node gives one cmapplyconf at a time: its new offer replaces its earlier one.
        // Two members giving the generation that deletes this node give one change.
        let other_offer = self.offered.as_ref().is_some_and(|o| {
            now < o.until && o.from != from && !(retiring && o.config.number == config.number)
        });
        if self.halted_apply.as_ref().is_some_and(|a| !a.check) || other_offer {
            return Err(format!(
                "another configuration change is being applied on {me}: try again shortly"
            ));
        }
        let own = self.settings.config_generation;
        let newer = config.number > own
            || (config.number == own && self.in_effect(&config.cluster, &config.packages));
        if !newer {
            return Err(format!(
                "{me} has configuration generation {}, not older than the {} offered: apply \
                 the files on {me}, after reading its configuration (cmgetconf)",
                self.settings.config_sequence, config.sequence
            ));
        }
        // A generation accepted may be in effect elsewhere, unless it is the one offered.
        // Not one that deletes this node from the cluster that runs without it, or that
        // keeps its number for that: every node of it took it, none has the accepted one in
        // effect (the running cluster would have it, or one after it).
        // Dropped proposals (abandoned, or this node's own) carried nothing on.
        let accepted_other = self
            .accepted_configs
            .iter()
            .filter(|(e, _)| self.accepted_since.iter().any(|v| v.epoch == *e))
            .any(|(_, c)| {
                c.number > config.number || (c.number == config.number && **c != *config)
            });
        if accepted_other && config.number != own && !retiring {
            return Err(format!(
                "{me} accepted generation {} of a change made while the cluster ran, which \
                 may be in effect elsewhere: give cmapplyconf on {me}",
                self.accepted_sequence()
            ));
        }
        if self.reconfigure.is_some() {
            return Err(format!(
                "{me} is starting again with the nodes of the change it took: try again shortly"
            ));
        }
        if retiring {
            return Ok(());
        }
        if let Some(why) = self.address_check.refusal(me, &config.cluster) {
            return Err(why);
        }
        self.check_halted_change(&config.cluster, &config.packages, self.name_of(from))
            .map_err(|refusal| format!("on {me}: {refusal}"))
    }

    /// Sets how this node checks that its host can send heartbeats from an address: the
    /// HEARTBEAT_IPs of a cmapplyconf given with the cluster halted are checked so, on the
    /// node given it and on each node offered it (the change is refused otherwise, and
    /// nothing is applied: a node given an address it does not have could not start).
    pub fn set_address_check(&mut self, check: AddressCheck) {
        self.address_check = check;
    }

    /// Whether generation `config`, offered by `from`, deletes this node from the cluster
    /// that runs without it (told by the member that gave the cmapplyconf: numbers stay while
    /// the cluster runs, so this node's and the giver's are theirs in the generation too). It
    /// takes that whatever it hears, the cluster going on without it.
    fn retiring(&self, from: NodeId, config: &Generation) -> bool {
        let named_alike = |node: usize| {
            let before = self.settings.config.nodes.get(node);
            let after = config.cluster.nodes.get(node);
            before
                .zip(after)
                .is_some_and(|(b, a)| !b.deleted && b.name.eq_ignore_ascii_case(&a.name))
        };
        let index = self.settings.me.index();
        config.cluster.nodes.get(index).is_some_and(|n| n.deleted)
            && named_alike(index)
            && named_alike(from.index())
            && config
                .cluster
                .nodes
                .get(from.index())
                .is_some_and(|n| !n.deleted)
    }

    /// Whether generation `config`, offered by `from`, deletes this node while it may be
    /// starting in vain: the cluster ran on without it ([`Node::retiring`]), or is halted
    /// for the change and this node starts automatically (which needs every node of its
    /// generation, the others halted).
    fn deleted_by(&self, from: NodeId, config: &Generation) -> bool {
        self.retiring(from, config)
            || (self.start_with.is_none()
                && config
                    .cluster
                    .node(self.name_of(self.settings.me))
                    .is_none())
    }

    /// Whether this node took generation `number`, which deletes it, and is about to go on
    /// unconfigured.
    fn retired_by(&self, number: u64) -> bool {
        self.reconfigure.as_ref().is_some_and(|r| {
            r.retired
                && r.persisted
                    .config
                    .as_ref()
                    .is_some_and(|c| c.number == number)
        })
    }

    /// Whether this node is out of any cluster, as a halted cmapplyconf needs it: halted;
    /// or, when the generation offered deletes it (`leaving`), also starting, which it does
    /// in vain (a cluster that deleted it while running no longer hears it; one halted to
    /// change does not run, and it cannot form one without the others).
    fn out_of_cluster(&self, leaving: bool) -> bool {
        !self.fenced && (self.phase == Phase::Halted || (leaving && self.phase == Phase::Starting))
    }

    /// cmcheckconf while the cluster runs: the refusal a cmapplyconf of `cluster` and
    /// `packages` would meet on this node now (parameters that need the cluster halted,
    /// running packages deleted or changed, detached packages), with nothing taken.
    /// [`Refusal::ClusterNotRunning`] when this node is in no running cluster: the files
    /// are then checked against the configuration, and, the node halted, by every node
    /// ([`Node::check_halted`]).
    /// A change already on its way is not a refusal here: it tells about the moment of the
    /// apply, not about the files.
    pub fn check_change(
        &mut self,
        now: Instant,
        cluster: &ClusterConfig,
        packages: &[PackageConfig],
    ) -> Result<(), Refusal> {
        if self.phase != Phase::Running || self.safety_expired(now) || !self.quorate(now) {
            return Err(Refusal::ClusterNotRunning);
        }
        let cluster = &crate::config::keep_node_order(&self.settings.config, cluster.clone());
        if self.in_effect(cluster, packages) {
            return Ok(());
        }
        self.check_apply(cluster, packages)
    }

    /// cmapplyconf's compare-and-swap: refused unless the files were merged into the
    /// generation in effect (None: not checked).
    fn check_base(&self, base: Option<u64>) -> Result<(), Refusal> {
        let in_effect = self.settings.config_sequence;
        match base {
            Some(base) if base != in_effect => Err(Refusal::ConfigurationStale { base, in_effect }),
            _ => Ok(()),
        }
    }

    /// Whether `cluster` and `packages` are the change this coordinator has on its way
    /// already (the same cmapplyconf given again).
    fn pending_is(&self, cluster: &ClusterConfig, packages: &[PackageConfig]) -> bool {
        self.pending_config
            .as_ref()
            .is_some_and(|(c, p)| c == cluster && same_packages(p, packages))
    }

    /// Whether `cluster` gives a timing this node can run: one that makes fencing safe
    /// (Timing::derive), and whose pets reach far enough ahead for the watchdog device when
    /// the node has one.
    fn check_timing(&self, cluster: &ClusterConfig) -> Result<(), Refusal> {
        let timing =
            Timing::derive(cluster, "").map_err(|findings| Refusal::InvalidConfiguration {
                reason: findings
                    .iter()
                    .map(|d| d.reason.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            })?;
        if timing.pet_horizon() < self.settings.pet_horizon_min {
            return Err(Refusal::InvalidConfiguration {
                reason: format!(
                    "{} uses a watchdog device, which needs the safety timer to reach at least \
                     {:.1} s ahead; with this MEMBER_TIMEOUT it would reach {:.2} s",
                    self.settings.config.nodes[self.settings.me.index()].name,
                    self.settings.pet_horizon_min.as_secs_f64(),
                    timing.pet_horizon().as_secs_f64()
                ),
            });
        }
        Ok(())
    }

    /// The refusals of cmapplyconf against the configuration in effect and the packages as
    /// this node knows them.
    fn check_apply(
        &self,
        cluster: &ClusterConfig,
        packages: &[PackageConfig],
    ) -> Result<(), Refusal> {
        let parameters = needs_halted_cluster(&self.settings.config, cluster);
        if !parameters.is_empty() {
            return Err(Refusal::NeedsHaltedCluster { parameters });
        }
        // A node is deleted while the cluster runs only once it is out of it (halted or
        // down): its number stays, unused.
        for (index, node) in crate::config::deleted_nodes(&self.settings.config, cluster) {
            if index == self.settings.me.index() {
                return Err(Refusal::GiverDeleted { node });
            }
            if self.view.members.contains(NodeId(index as u32)) {
                return Err(Refusal::DeletesMember { node });
            }
        }
        self.check_timing(cluster)?;
        // Nothing applies while packages are detached (serviceguard.md 6.5), or while
        // members are detaching them.
        let old = self.packages.catalog();
        let table = self.packages.table();
        let detached: Vec<String> = old
            .ids()
            .filter(|id| {
                let state = table.package(*id);
                !state.detached.is_empty()
                    || state
                        .instances
                        .values()
                        .any(|s| *s == InstanceState::Detached)
            })
            .map(|id| old.package(id).name.clone())
            .collect();
        if !detached.is_empty() {
            return Err(Refusal::PackagesDetached { packages: detached });
        }
        if self.leaving.detaches()
            || self.peers.iter().any(|p| {
                p.heartbeat
                    .as_ref()
                    .is_some_and(|h| h.epoch == self.view.epoch && h.leaving.detaches())
            })
        {
            return Err(Refusal::Halting);
        }
        let catalog =
            Catalog::resolve(cluster, packages).map_err(|e| Refusal::InvalidConfiguration {
                reason: e.to_string(),
            })?;
        let old = self.packages.catalog();
        // Starts ordered and not reported yet count as running.
        let table = self.packages.planning_table();
        for id in old.ids() {
            let state = table.package(id);
            let active = state.nodes_where(InstanceState::occupies);
            if active.is_empty() {
                continue;
            }
            let def = old.package(id);
            let Some(new) = catalog.find(&def.name) else {
                return Err(Refusal::PackageActive {
                    package: def.name.clone(),
                    change: "deleted",
                });
            };
            let (old_def, new_def) = (
                def.normalized(old),
                catalog.package(new).normalized(&catalog),
            );
            if old_def == new_def {
                continue;
            }
            // Changed while it runs: only what Serviceguard applies online, and not while
            // it starts, halts or changes already.
            if state.instances.values().any(|s| s.is_transitional()) {
                return Err(Refusal::InTransition);
            }
            // A halt_aborted package can be neither run nor changed (serviceguard.md 6.4).
            if let Some(node) = state
                .nodes_where(|s| s == InstanceState::HaltAborted)
                .lowest()
            {
                return Err(Refusal::HaltAborted { node });
            }
            // A restart limit may not fall below the restarts a service has had already.
            for node in active.iter() {
                let counts = self.packages.restarts(id, node);
                let exceeded = new_def.0.services.iter().any(|service| {
                    let crate::config::package::ServiceRestart::Times(limit) = service.restart
                    else {
                        return false;
                    };
                    def.services
                        .iter()
                        .position(|s| s.name == service.name)
                        .and_then(|i| counts.get(i))
                        .is_some_and(|done| *done > limit)
                });
                if exceeded {
                    return Err(Refusal::NeedsHaltedPackage {
                        package: def.name.clone(),
                        parameter: "service_restart",
                    });
                }
            }
            if let Some(parameter) = crate::packages::admin::needs_halt(&old_def, &new_def, active)
            {
                return Err(Refusal::NeedsHaltedPackage {
                    package: def.name.clone(),
                    parameter,
                });
            }
        }
        Ok(())
    }

    /// Whether a generation proposed by a coordinator (or sent by a member) may take effect
    /// here: it resolves, and changes nothing that needs the cluster halted.
    fn check_config(&self, config: &Generation) -> bool {
        needs_halted_cluster(&self.settings.config, &config.cluster).is_empty()
            && !deleted_numbers(&config.cluster).contains(self.settings.me)
            && Catalog::resolve(&config.cluster, &config.packages).is_ok()
    }

    /// Whether this coordinator has a configuration change on its way.
    fn config_in_flight(&self) -> bool {
        self.pending_config.is_some()
            || self.adopt.is_some()
            || self.proposal.as_ref().is_some_and(|p| p.config.is_some())
    }

    /// Whether `config` is what is in effect already (a repeated cmapplyconf).
    fn in_effect(&self, cluster: &ClusterConfig, packages: &[PackageConfig]) -> bool {
        *self.settings.config == *cluster && same_packages(&self.settings.packages, packages)
    }

    /// A generation that adds nodes (after those in effect, online) took effect: the tables
    /// kept by node number grow to `nodes`. The added nodes are not members, and the views
    /// held name them with no life (the installed one too, so that the next candidate, with
    /// every configured node, compares equal to it).
    fn grow(&mut self, nodes: usize) {
        let networks = self.settings.networks;
        let peer = Peer {
            last_heard_network: vec![None; networks],
            network_down: vec![false; networks],
            ..Peer::default()
        };
        self.peers.resize(nodes, peer);
        self.commands_seen.resize(nodes, (Epoch::NONE, 0));
        self.node_states.resize(nodes, NodeState::Unknown);
        self.status_answered.resize(nodes, None);
        self.config_asked.resize(nodes, None);
        if self.view.incarnations.len() < nodes {
            self.view.incarnations.resize(nodes, Incarnation(0));
        }
        if let Some((view, _)) = &mut self.candidate {
            if view.incarnations.len() < nodes {
                view.incarnations.resize(nodes, Incarnation(0));
            }
        }
        self.settings.nodes = nodes;
    }

    /// A generation takes effect here: the catalog, the package manager and the timing
    /// follow it. A new MEMBER_TIMEOUT is announced from the next send time on; what was
    /// announced and echoed before keeps its own term (see [`Term`]).
    fn apply_generation(&mut self, now: Instant, config: &Arc<Generation>) {
        let Ok(catalog) = Catalog::resolve(&config.cluster, &config.packages) else {
            return;
        };
        let old = self.packages.catalog();
        let mut changes = PackageChanges::default();
        for def in &catalog.packages {
            match old.find(&def.name) {
                None => changes.added.push(def.name.clone()),
                Some(id) if old.package(id).normalized(old) != def.normalized(&catalog) => {
                    changes.modified.push(def.name.clone());
                }
                Some(_) => {}
            }
        }
        for def in &old.packages {
            if catalog.find(&def.name).is_none() {
                changes.deleted.push(def.name.clone());
            }
        }
        let catalog = Arc::new(catalog);
        if config.cluster.nodes.len() > self.settings.nodes {
            self.grow(config.cluster.nodes.len());
        }
        if let Ok(timing) = Timing::derive(&config.cluster, "") {
            let before = std::mem::replace(&mut self.settings.timing, timing);
            if before.fence_bound_max() > timing.fence_bound_max() {
                // MEMBER_TIMEOUT lowered: echoes this node sent under the old timing, and
                // its own announcements, still count for as long as the old bound.
                let until = now + before.fence_bound_max();
                let term = before.term(true);
                self.replaced_term = match self.replaced_term {
                    Some((wider, later))
                        if now < later && before.fence_bound(wider) > before.fence_bound(term) =>
                    {
                        Some((wider, later.max(until)))
                    }
                    _ => Some((term, until)),
                };
            }
        }
        self.settings.config = Arc::new(config.cluster.clone());
        self.settings.packages = Arc::new(config.packages.clone());
        self.settings.catalog = catalog.clone();
        self.settings.config_generation = config.number;
        let before = std::mem::replace(&mut self.settings.config_sequence, config.sequence);
        self.packages.reconfigure(catalog.clone());
        self.actions.push_back(Action::Catalog(catalog));
        self.installed_config = Some(config.clone());
        if self
            .adopt
            .as_ref()
            .is_some_and(|(_, a)| !self.follows_in_effect(a))
        {
            self.adopt = None;
        }
        if self
            .pending_config
            .as_ref()
            .is_some_and(|(cluster, packages)| self.in_effect(cluster, packages))
        {
            self.pending_config = None;
            self.pending_origin = None;
        }
        self.event(Event::ConfigChanged {
            before,
            after: config.sequence,
            number: config.number,
            packages: changes,
        });
    }

    /// Tells where the pending cmapplyconf was given that it is given up: the node that
    /// forwarded it answers its command again, with `refusal` (a late answer it counts in
    /// its status); one given here is counted here.
    fn tell_given_up(&mut self, refusal: &Refusal) {
        if self.pending_origin.is_none() && self.enrolment_given_up(refusal) {
            return;
        }
        match self.pending_origin.take() {
            Some((node, serial)) if node != self.settings.me => {
                self.answer(node, serial, Some(refusal));
            }
            _ => self.count_given_up(refusal.to_string()),
        }
    }

    /// Counts a cmapplyconf given here that the coordinator took, then gave up, for `reason`.
    fn count_given_up(&mut self, reason: String) {
        self.given_up.0 += 1;
        self.given_up.1 = Some(reason);
    }

    /// cmapplyconf forwarded by a member, on the coordinator.
    fn on_apply(
        &mut self,
        now: Instant,
        from: NodeId,
        (epoch, serial): (Epoch, u64),
        (base, config): (Option<u64>, &Generation),
    ) {
        let coordinator = self.view.coordinator() == Some(self.settings.me);
        if !coordinator || epoch != self.view.epoch || !self.quorate(now) {
            // Not answered: the sender's membership has moved on, and it bounds its wait.
            return;
        }
        // The sender checked `base` and "unchanged" against its own generation in effect;
        // checked again here, where the change is decided (the compare-and-swap).
        let stale = self.check_base(base);
        if stale.is_ok()
            && (self.in_effect(&config.cluster, &config.packages)
                || self.pending_is(&config.cluster, &config.packages))
        {
            // Sent again (on every network), or applied already.
            self.answer(from, serial, None);
            return;
        }
        let checked = stale.and_then(|()| {
            if self.pending_config.is_some() {
                Err(Refusal::ConfigurationChanging)
            } else {
                self.check_apply(&config.cluster, &config.packages)
            }
        });
        match checked {
            Ok(()) => {
                self.pending_config = Some((config.cluster.clone(), config.packages.clone()));
                self.pending_origin = Some((from, serial));
                self.config_attempts = 0;
                self.answer(from, serial, None);
            }
            Err(refusal) => {
                self.answer(from, serial, Some(&refusal));
                self.event(Event::ApplyRefused { refusal });
            }
        }
    }

    /// Sends `to` the message `make` builds with a new command serial, and waits for its
    /// answer ([`Message::Answer`]).
    fn forward(&mut self, to: NodeId, make: impl FnOnce(u64) -> Message) -> Taken {
        self.command_serial += 1;
        let message = make(self.command_serial);
        self.send(to, &message);
        self.await_answer()
    }

    /// Waits for the answer to the command just forwarded.
    fn await_answer(&mut self) -> Taken {
        if self.awaited_answers.len() == AWAITED_ANSWERS_MAX {
            self.awaited_answers.pop_front();
        }
        self.awaited_answers.push_back(self.command_serial);
        Taken::Forwarded(self.command_serial)
    }

    /// Answers the command `serial` of `to` (see [`Message::Answer`]).
    fn answer(&mut self, to: NodeId, serial: u64, refusal: Option<&Refusal>) {
        self.answer_text(to, serial, refusal.map(ToString::to_string));
    }

    /// Answers the command `serial` of `to` with the refusal's text, if refused.
    fn answer_text(&mut self, to: NodeId, serial: u64, refusal: Option<String>) {
        self.answer_with(to, serial, refusal, None);
    }

    /// Answers the command `serial` of `to`: refused (`refusal`), or carried out, with a
    /// warning if `warning`.
    fn answer_with(
        &mut self,
        to: NodeId,
        serial: u64,
        refusal: Option<String>,
        warning: Option<String>,
    ) {
        if to == self.settings.me {
            self.event(Event::CommandAnswered {
                serial,
                refusal,
                warning,
            });
        } else {
            self.send(
                to,
                &Message::Answer {
                    serial,
                    refusal,
                    warning,
                },
            );
        }
    }

    /// Refuses with the packages active on the nodes `on` selects.
    fn refuse_if_running(&self, on: impl Fn(NodeId) -> bool) -> Result<(), Refusal> {
        let catalog = self.packages.catalog();
        let table = self.packages.table();
        let packages: Vec<String> = catalog
            .ids()
            .filter(|id| {
                table
                    .package(*id)
                    .instances
                    .iter()
                    .any(|(node, state)| on(*node) && state.occupies())
            })
            .map(|id| catalog.package(id).name.clone())
            .collect();
        if packages.is_empty() {
            Ok(())
        } else {
            Err(Refusal::PackagesRunning { packages })
        }
    }

    fn start_leaving(&mut self, now: Instant, leaving: Leaving) {
        self.leaving = leaving;
        if leaving.detaches() {
            self.packages.detach();
            self.actions.push_back(Action::Persist(self.persisted()));
        } else {
            self.packages.leave();
        }
        self.drain_packages(now);
        // Tell the others at once: the coordinator places nothing more here.
        self.send_heartbeats(now);
        self.step(now);
    }

    /// Whether this node is halting and holds no package any more (with -d: none but
    /// running ones, recorded by every member as detached here).
    fn ready_to_leave(&self) -> bool {
        let report = self.packages.report();
        holds_nothing(self.leaving, &report)
            && (!self.leaving.detaches() || self.detach_recorded(self.settings.me, &report))
    }

    /// Whether member `node` halting as its heartbeat `heartbeat` says is ready to go.
    fn peer_ready(&self, node: NodeId, heartbeat: &Heartbeat) -> bool {
        heartbeat_ready(heartbeat)
            && (!heartbeat.leaving.detaches() || self.detach_recorded(node, &heartbeat.packages))
    }

    /// Whether the packages `instances` of `node` (halting with cmhaltnode -d) are
    /// recorded as detached there in this node's switching table, and every other member
    /// has reported a copy at least as new: whichever member coordinates next keeps them
    /// occupied.
    fn detach_recorded(&self, node: NodeId, instances: &[(PackageId, InstanceState)]) -> bool {
        let table = self.packages.table();
        let recorded = instances.iter().all(|(id, s)| {
            !s.occupies()
                || table
                    .packages
                    .get(id.index())
                    .is_some_and(|p| p.detached.contains(node))
        });
        let version = self.packages.switching_version();
        let me = self.settings.me;
        recorded
            && self.view.members.iter().all(|m| {
                m == me
                    || self.peers[m.index()].heartbeat.as_ref().is_some_and(|h| {
                        h.epoch == self.view.epoch && h.switching_version >= version
                    })
            })
    }

    /// Whether every member among `leavers` that halts with cmhaltnode -d has its packages
    /// recorded as detached here: a membership without it is accepted only then, so that
    /// this node, should it coordinate next, keeps them occupied.
    fn detachers_recorded(&self, leavers: NodeSet) -> bool {
        let me = self.settings.me;
        let table = self.packages.table();
        leavers.iter().all(|node| {
            let marked = table.packages.iter().any(|p| p.detached.contains(node));
            let heartbeat = self.peers[node.index()]
                .heartbeat
                .as_ref()
                .filter(|h| h.epoch == self.view.epoch);
            node == me
                || !self.view.members.contains(node)
                || match heartbeat {
                    Some(h) => h.leaving != Leaving::DetachNode || self.peer_ready(node, h),
                    // No word from it in this membership: only a plain halt is taken on
                    // trust.
                    None => !marked,
                }
        })
    }

    /// The members halting with cmhaltnode -d or cmhaltcl -d.
    fn detaching(&self, now: Instant) -> NodeSet {
        self.members_leaving(now, Leaving::detaches)
    }

    /// This node and the members whose latest heartbeat says they halt as `how` accepts.
    fn members_leaving(&self, now: Instant, how: impl Fn(Leaving) -> bool) -> NodeSet {
        let mut nodes: NodeSet = self
            .view
            .members
            .iter()
            .filter(|&node| {
                self.member_heartbeat(now, node)
                    .is_some_and(|h| how(h.leaving))
            })
            .collect();
        if how(self.leaving) {
            nodes.insert(self.settings.me);
        }
        nodes
    }

    /// The running members that may be given packages: not halting.
    fn placeable(&self, now: Instant) -> NodeSet {
        self.view
            .members
            .difference(self.members_leaving(now, |l| l != Leaving::No))
    }

    /// The latest heartbeat of member `node`, if fresh and sent in this membership.
    fn member_heartbeat(&self, now: Instant, node: NodeId) -> Option<&Heartbeat> {
        let peer = self.peers.get(node.index())?;
        if node == self.settings.me
            || !self.view.has(node, peer.incarnation)
            || !self.fresh(peer.last_heard, now)
        {
            return None;
        }
        peer.heartbeat
            .as_ref()
            .filter(|h| h.epoch == self.view.epoch)
    }

    /// The members ready to leave the membership (cmhaltnode done with their packages).
    fn leavers(&self, now: Instant) -> NodeSet {
        self.view
            .members
            .iter()
            .filter(|&node| {
                self.member_heartbeat(now, node)
                    .is_some_and(|h| h.leaving.node() && self.peer_ready(node, h))
            })
            .collect()
    }

    /// This node has left gracefully: it holds nothing, so it stops and disarms its
    /// safety timer.
    fn leave_done(&mut self) {
        let (node, incarnation) = (self.settings.me, self.incarnation);
        let detached = self.leaving.detaches();
        self.event(Event::NodeHalted {
            node,
            incarnation,
            detached,
        });
        self.halt_gracefully();
    }

    fn halt_gracefully(&mut self) {
        if self.leaving.detaches() {
            // What runs on, detached, is re-attached when the node starts again: persisted
            // before the safety timer stops guarding it.
            self.actions.push_back(Action::Persist(self.persisted()));
        }
        if self.safety_deadline.take().is_some() {
            self.actions.push_back(Action::DisarmSafetyTimer);
        }
        self.abandon_proposal();
        self.accepted = None;
        self.set_phase(Phase::Halted);
    }

    /// cmhaltcl: once this node and every member are halting the cluster with no package
    /// left, the cluster stops.
    fn check_cluster_halt(&mut self, now: Instant) {
        if self.phase != Phase::Running {
            return;
        }
        // A member's cmhaltcl reaches every node with its heartbeats.
        let asked = self
            .view
            .members
            .iter()
            .filter_map(|node| self.member_heartbeat(now, node))
            .map(|h| h.leaving)
            .find(|l| l.cluster());
        if let Some(asked) = asked {
            if !self.leaving.cluster() {
                self.start_leaving(now, asked);
                return;
            }
        }
        if !self.ready_to_leave() {
            return;
        }
        // cmhaltcl: every member done. The last members leaving by cmhaltnode: there is no
        // one to take them out, so the cluster halts with them, as for cmhaltcl.
        let done = match self.leaving {
            l if l.cluster() => self.others_done(now, Leaving::cluster),
            l if l.node() => self.others_done(now, |l| l != Leaving::No),
            _ => false,
        };
        if done {
            // The last word: the others learn that this node is done too.
            self.send_heartbeats(now);
            if self.leaving.detaches() {
                // cmhaltcl -d: every member's packages run on, detached.
                self.packages.show_left_detached(self.view.members);
            }
            self.event(Event::ClusterHalted);
            if self.leaving.node() {
                self.leave_done();
            } else {
                self.halt_gracefully();
            }
        }
    }

    /// Whether every other member is halting as `halting` accepts and holds nothing, or its
    /// life is over (it runs again, in a new life, and holds nothing here).
    fn others_done(&self, now: Instant, halting: impl Fn(Leaving) -> bool) -> bool {
        let me = self.settings.me;
        self.view.members.iter().all(|node| {
            let gone = self.peers[node.index()].incarnation > self.view.incarnations[node.index()];
            node == me
                || gone
                || self
                    .member_heartbeat(now, node)
                    .is_some_and(|h| halting(h.leaving) && self.peer_ready(node, h))
        })
    }

    /// A package script ended on this node.
    pub fn handle_script(
        &mut self,
        now: Instant,
        package: PackageId,
        script: Script,
        outcome: ScriptOutcome,
    ) {
        if self.safety_expired(now) {
            return;
        }
        self.packages.tick(now);
        if self.phase == Phase::Halted {
            // Only a detached package halted on request runs a script on a halted node.
            if self.halting_detached.contains(&package) {
                self.packages.on_script(package, script, outcome);
                self.drain_packages(now);
                self.tell_detached_halted();
            }
            return;
        }
        self.packages.on_script(package, script, outcome);
        self.tell_detached_halted();
        self.step(now);
    }

    /// A service of a package exited on this node.
    pub fn handle_service_exit(&mut self, now: Instant, package: PackageId, service: usize) {
        if self.phase == Phase::Halted || self.safety_expired(now) {
            return;
        }
        self.packages.tick(now);
        self.packages.on_service_exit(package, service);
        self.step(now);
    }

    /// The health check of a detached package ended on this node (re-attach): `alive` when
    /// its services still run.
    pub fn handle_check(&mut self, now: Instant, package: PackageId, alive: bool) {
        if self.phase == Phase::Halted || self.safety_expired(now) {
            return;
        }
        self.packages.tick(now);
        self.packages.on_check(package, alive);
        // It is no longer held as detached once checked.
        self.actions.push_back(Action::Persist(self.persisted()));
        self.step(now);
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether this node may act for the cluster now (start packages): it is running in a
    /// membership and its quorum lease holds (cluster.md S2).
    pub fn quorate(&self, now: Instant) -> bool {
        self.phase == Phase::Running
            && self
                .quorate_until()
                .is_some_and(|(until, _, _)| now < until)
    }

    /// The next action, in order.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Node::handle_timeout`] must run next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Halted {
            // A halted cmapplyconf's next send or the end of its stage; a new life's start.
            let apply = self
                .halted_apply
                .as_ref()
                .map(|a| a.resend_at.min(a.deadline));
            let reconfigure = self
                .reconfigure
                .as_ref()
                .filter(|r| !r.told)
                .and_then(|r| r.at);
            return apply
                .into_iter()
                .chain(reconfigure)
                .chain(self.enrolment_timeout())
                .min();
        }
        let timing = &self.settings.timing;
        let mut next = self.next_heartbeat;
        // Deadlines already handled at the last step are not due again.
        let handled = self.last_step;
        let mut consider = |at: Option<Instant>| {
            if let Some(at) = at {
                if handled.is_none_or(|last| at > last) {
                    next = next.min(at);
                }
            }
        };
        for (index, peer) in self.peers.iter().enumerate() {
            if index != self.settings.me.index() {
                consider(peer.last_heard.map(|at| at + timing.member_timeout));
            }
        }
        if let Some(deadline) = self.safety_deadline {
            consider(Some(self.last_pet + timing.heartbeat_interval / 2));
            consider(Some(deadline));
        }
        consider(self.quorate_until().map(|(until, _, _)| until));
        consider(
            self.candidate
                .as_ref()
                .map(|(_, since)| *since + timing.settle),
        );
        consider(Some(self.backoff_until));
        consider(self.packages.next_deadline());
        // A change of the packages not sent yet goes out as soon as heartbeats may.
        if self.phase != Phase::Halted && self.reports_pending() {
            consider(Some(self.reach_sent.1 + timing.heartbeat_interval / 4));
        }
        for held in &self.held {
            consider(Some(held.deadline));
        }
        consider(self.accepted.as_ref().map(|(_, deadline)| *deadline));
        if let Some(proposal) = &self.proposal {
            consider(Some(proposal.deadline));
            if let Some(race) = &proposal.lock {
                consider(Some(race.deadline));
                if let LockKind::Disk { retry_at, .. } = &race.kind {
                    consider(*retry_at);
                }
            }
        }
        // Each one: a wait over but not confirmed yet stays listed (its echo releases it).
        for wait in &self.fence_waits {
            consider(Some(wait.2));
        }
        let resend = self.run_other_resend();
        for (_, _, sent, _) in &self.telling_to_start {
            consider(Some(*sent + resend));
        }
        consider(self.quorum_server.next_ping);
        consider(self.lock_check.next);
        consider(self.lock_check.outstanding.map(|(_, deadline)| deadline));
        consider(self.quorum_server.outstanding.map(|(_, deadline)| deadline));
        if self.phase == Phase::Starting {
            consider(Some(self.started_at + timing.auto_start_timeout));
        }
        // Not `consider`: an addition's step may end at a deadline handled already.
        Some(self.enrolment_timeout().map_or(next, |at| next.min(at)))
    }

    /// Time passed: send heartbeats, detect silence, re-form, pet or stop petting.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.drive_halted_apply(now);
        self.drive_enrolment(now);
        self.tell_deleted_unheard(now);
        self.drive_reconfigure(now);
        self.step(now);
    }

    /// A message arrived on heartbeat network `network`.
    pub fn handle_message(&mut self, now: Instant, network: usize, envelope: Envelope) {
        self.packages.tick(now);
        // A node deleted while the cluster ran is not heard, but for its answer to being
        // told so (see the enrolment).
        let deleted = deleted_numbers(&self.settings.config).contains(envelope.from);
        if deleted && !matches!(envelope.message, Message::ConfigAnswer { .. }) {
            self.deleted_heard(now, envelope.from);
            return;
        }
        if matches!(
            envelope.message,
            Message::HaltDetached { .. }
                | Message::DetachedHalted { .. }
                | Message::HaltDetachedTaken { .. }
        ) {
            self.on_detached_message(now, envelope);
            return;
        }
        if matches!(envelope.message, Message::Start { .. }) {
            self.on_start(now, &envelope);
            return;
        }
        if matches!(
            envelope.message,
            Message::ConfigOffer { .. }
                | Message::ConfigCheck { .. }
                | Message::ConfigCommit { .. }
                | Message::ConfigWithdraw { .. }
                | Message::ConfigAnswer { .. }
        ) {
            self.on_halted_config(now, envelope);
            return;
        }
        if matches!(
            envelope.message,
            Message::StatusRequest { .. } | Message::Status { .. }
        ) {
            self.on_status_message(now, network, envelope);
            return;
        }
        if self.phase == Phase::Halted {
            // A halted node still hears the members' heartbeats: its view says whether a
            // cluster runs without it (cmrunnode joins it) or not (cmruncl forms one).
            if let Message::Heartbeat(heartbeat) = &envelope.message {
                let from = envelope.from;
                let ours = from != self.settings.me
                    && from.index() < self.settings.nodes
                    && envelope.cluster_id == self.settings.cluster_id
                    && heartbeat.epoch != Epoch::NONE;
                if ours && heartbeat.leaving.cluster() {
                    // Halting with the cluster: what it said of that cluster before, it
                    // takes back.
                    let floor = self.heard_halting.entry(from).or_insert(Epoch::NONE);
                    *floor = (*floor).max(heartbeat.epoch);
                    let floor = *floor;
                    self.heard_cluster
                        .retain(|&n, (_, e)| n != from || *e > floor);
                    self.heard_running
                        .retain(|&n, (_, e)| n != from || *e > floor);
                }
                if ours && heartbeat.leaving != Leaving::No {
                    self.hear_halt(from, envelope.config_generation, heartbeat);
                }
                if ours
                    && heartbeat.phase != Phase::Halted
                    // Not one halting with the cluster (cmhaltcl) or by itself: the first
                    // has no cluster to go on with, the second's peers say whether it does.
                    && heartbeat.leaving == Leaving::No
                    // Nor one of a cluster that halted as a whole, sent before its sender
                    // learnt of the cmhaltcl and come late (overtaken on another network,
                    // say): this node halted with it, every member halting it (or in a new
                    // life already), or heard the sender halt it; a cluster that runs
                    // since has a later epoch.
                    && !(self.cluster_halted && heartbeat.epoch <= self.view.epoch)
                    && self
                        .heard_halting
                        .get(&from)
                        .is_none_or(|&floor| heartbeat.epoch > floor)
                {
                    self.heard_cluster.insert(from, (now, heartbeat.epoch));
                    // A cluster runs again since the halt heard.
                    self.heard_running_epoch = self.heard_running_epoch.max(heartbeat.epoch);
                    if self
                        .heard_halt
                        .as_ref()
                        .is_some_and(|record| heartbeat.epoch > record.epoch)
                    {
                        self.heard_halt = None;
                    }
                    if heartbeat.phase == Phase::Running {
                        self.heard_running.insert(from, (now, heartbeat.epoch));
                    }
                    // A view of another membership is out of date: not shown.
                    if self
                        .remote_status
                        .as_ref()
                        .is_some_and(|(_, _, snapshot)| snapshot.epoch != heartbeat.epoch)
                    {
                        self.remote_status = None;
                    }
                    // And asks a member for its view, once per heartbeat interval, so that
                    // cmviewcl here shows the running cluster.
                    let interval = self.settings.timing.heartbeat_interval;
                    if heartbeat.phase == Phase::Running
                        && envelope.config_generation == self.settings.config_generation
                        && self
                            .status_asked
                            .0
                            .is_none_or(|at| now.saturating_since(at) >= interval)
                    {
                        let serial = self.status_asked.1 + 1;
                        self.status_asked = (Some(now), serial);
                        // On the network the heartbeat came by: one answer, not one per
                        // network.
                        self.send_on(envelope.from, network, Message::StatusRequest { serial });
                    }
                }
            }
            return;
        }
        if self.phase == Phase::Halted || !self.admit(now, &envelope) {
            return;
        }
        if self.safety_expired(now) {
            return;
        }
        let from = envelope.from;
        let mut envelope = envelope;
        // Node sets name configured nodes only (a peer that lies is not believed past them).
        let configured = self.settings.configured();
        match &mut envelope.message {
            Message::Heartbeat(heartbeat) => {
                heartbeat.members = heartbeat.members.intersection(configured);
                heartbeat.reach = heartbeat.reach.intersection(configured);
                for entry in &mut heartbeat.switching {
                    entry.switching = entry.switching.intersection(configured);
                }
            }
            Message::Propose { view, leavers, .. } => {
                view.members = view.members.intersection(configured);
                *leavers = leavers.intersection(configured);
            }
            Message::Commit {
                leavers,
                fence_waits,
                overdue,
                ..
            } => {
                *leavers = leavers.intersection(configured);
                fence_waits.retain(|(node, _, _)| configured.contains(*node));
                overdue.retain(|(node, _, _)| configured.contains(*node));
            }
            Message::Accept {
                silences, accepted, ..
            } => {
                silences.retain(|(node, _, _)| configured.contains(*node));
                for view in accepted {
                    view.members = view.members.intersection(configured);
                }
            }
            _ => {}
        }
        // Sent to an earlier life of this node: a heartbeat still says the sender is alive and
        // what it hears (the sender does not know this life yet), but its echo is not ours;
        // anything else is a stale conversation.
        let current = envelope.to_incarnation == Incarnation(0)
            || envelope.to_incarnation == self.incarnation;
        match envelope.message {
            Message::Heartbeat(mut heartbeat) => {
                if !current {
                    heartbeat.echo = None;
                    heartbeat.heard = None;
                }
                self.on_heartbeat(now, network, from, heartbeat);
            }
            _ if !current => {}
            Message::Propose {
                epoch,
                view,
                sent_at,
                term,
                installed,
                leavers,
                config,
                carried_from,
            } => self.on_propose(
                now,
                from,
                (epoch, installed),
                (view, leavers, config, carried_from),
                Echo {
                    at: sent_at,
                    term: term.bounded(),
                },
            ),
            Message::Accept {
                epoch,
                installed,
                silences,
                echo,
                sent_at,
                term,
                accepted,
                configs,
                passed_over,
                known,
                committed,
            } => self.on_accept(
                now,
                from,
                epoch,
                (installed, committed),
                silences,
                (
                    known,
                    echo,
                    Echo {
                        at: sent_at,
                        term: term.bounded(),
                    },
                    accepted,
                    (configs, passed_over),
                ),
            ),
            Message::Reject { epoch, highest } => self.on_reject(now, epoch, highest),
            Message::Commit {
                epoch,
                fence_waits,
                overdue,
                echoes,
                locks,
                leavers,
                forming,
            } => self.on_commit(
                now,
                from,
                epoch,
                (&fence_waits, &overdue),
                (echoes, locks, leavers, forming),
            ),
            Message::Command {
                epoch,
                serial,
                command,
            } => self.on_command(now, from, epoch, serial, command),
            Message::Share {
                epoch,
                serial,
                key,
                value,
            } => self.on_share(now, from, (epoch, serial), (key, value)),
            Message::Shared { entries, whole } => self.on_shared(from, entries, whole),
            Message::Apply {
                epoch,
                serial,
                base,
                config,
            } => self.on_apply(now, from, (epoch, serial), (base, &config)),
            Message::HaltNode {
                epoch,
                serial,
                force,
                detach,
            } => self.on_halt_node(now, from, (epoch, serial), (force, detach)),
            // Taken before admission (a halted node hears them).
            Message::Start { .. }
            | Message::StatusRequest { .. }
            | Message::Status { .. }
            | Message::ConfigOffer { .. }
            | Message::ConfigCheck { .. }
            | Message::ConfigCommit { .. }
            | Message::ConfigWithdraw { .. }
            | Message::ConfigAnswer { .. } => {}
            Message::Answer {
                serial,
                refusal,
                warning,
            } => {
                // Sent on every control connection: the first copy counts.
                let forwarded = self.applies_forwarded.iter().position(|&s| s == serial);
                let ours = self.enrolment_forward_answered(serial, refusal.as_ref());
                if ours {
                    // An online addition's change, forwarded to the coordinator: answered
                    // there (see enrolment).
                } else if let Some(at) = self.awaited_answers.iter().position(|&s| s == serial) {
                    self.awaited_answers.remove(at);
                    // A cmapplyconf refused at once is not pending anywhere.
                    if let (Some(index), Some(_)) = (forwarded, &refusal) {
                        self.applies_forwarded.remove(index);
                    }
                    self.event(Event::CommandAnswered {
                        serial,
                        refusal,
                        warning,
                    });
                } else if let (Some(index), Some(reason)) = (forwarded, refusal) {
                    // A cmapplyconf the coordinator took, then gave up.
                    self.applies_forwarded.remove(index);
                    self.count_given_up(reason);
                }
            }
            Message::ConfigRequest => {
                if let Some(config) = self.installed_config.clone() {
                    self.send(from, &Message::Config { config });
                }
            }
            Message::Config { config } => {
                // Committed (a member had it in effect): a node outside any membership
                // takes it, so that it can join.
                if self.phase == Phase::Starting
                    && config.number > self.settings.config_generation
                    && self.check_config(&config)
                {
                    self.apply_generation(now, &config);
                    self.actions.push_back(Action::Persist(self.persisted()));
                }
            }
            Message::Order {
                epoch,
                serial,
                order,
            } => {
                let from_coordinator = self.view.coordinator() == Some(from);
                if self.phase == Phase::Running && epoch == self.view.epoch && from_coordinator {
                    let quorate = self.quorate(now);
                    self.packages
                        .on_remote_order(epoch.0, serial, order, quorate);
                }
            }
            Message::Abandon { epoch } => {
                if epoch.coordinator() == from {
                    self.drop_accepted(|v| v.epoch == epoch);
                    if self
                        .accepted
                        .as_ref()
                        .is_some_and(|(v, _)| v.epoch == epoch)
                    {
                        self.accepted = None;
                    }
                }
            }
            Message::Halt { epoch, reason } => {
                // Its coordinator dropped the proposal, which will never be committed (a
                // coordinator sends Halt only for its own proposal, taken before), as an
                // Abandon says: what it carried must not be carried on by a later life,
                // whether or not this node still waits on it. (Seeds 2208342 and 3471009: a
                // deletion that a half which lost the lock race had accepted was carried on
                // by a cmruncl long after the cluster had run on with the deleted node; its
                // epoch, higher than those of that line, did not show it was behind them.)
                if epoch.coordinator() == from {
                    self.drop_accepted(|v| v.epoch == epoch);
                }
                if self
                    .accepted
                    .as_ref()
                    .is_some_and(|(v, _)| v.epoch == epoch)
                {
                    // A group's reasons only: this node did not race the lock itself.
                    self.fence(match reason {
                        FenceReason::PackagesUnknown => reason,
                        _ => FenceReason::QuorumLost,
                    });
                }
            }
            // Taken before the admission checks.
            Message::HaltDetached { .. }
            | Message::DetachedHalted { .. }
            | Message::HaltDetachedTaken { .. } => {}
        }
        self.step(now);
    }

    /// The lock LUN answered request `id`.
    pub fn handle_disk(&mut self, now: Instant, id: IoId, result: Result<DiskReply, DiskFailure>) {
        if self.phase == Phase::Halted || self.safety_expired(now) {
            return;
        }
        self.disk_in_flight.remove(&id.0);
        let health_read = self.lock_check.outstanding.is_some_and(|(i, _)| i == id.0);
        if health_read {
            self.lock_check.outstanding = None;
            // The block itself is checked too: one written by another cluster (the cluster
            // renamed without the lock set up again, or a LUN given to two clusters) or
            // unreadable as a lock block fails every race, however well the disk answers.
            // A read that failed tells nothing of what the block holds: what the last read
            // of it found stands.
            if let Ok(DiskReply::Read(bytes)) = &result {
                use crate::disk_paxos::BlockError;
                let block = self.lock_check.block;
                let own = usize::from(block) == self.settings.me.index();
                let owner = self.name_of(NodeId(u32::from(block)));
                let unusable = match LockBlock::decode(bytes, self.settings.cluster_id) {
                    Err(e) if own => Some(format!("this node's block: {e}")),
                    // Never a torn write (the checksum is checked first): a race fails on it.
                    Err(
                        e @ (BlockError::OtherCluster { .. }
                        | BlockError::UnknownFormatVersion { .. }),
                    ) => Some(format!("{owner}'s block: {e}")),
                    _ => None,
                };
                match unusable {
                    Some(why) => self.lock_check.unusable.insert(block, why),
                    None => self.lock_check.unusable.remove(&block),
                };
            }
        }
        if health_read || id.0 >> 32 != HEALTH_READ {
            let why = match &result {
                Err(failure) => Some(failure.to_string()),
                Ok(_) => self.lock_unusable(),
            };
            self.set_lock_lun(why, health_read);
        }
        if let Some(LockKind::Disk { proposer, race, .. }) = self
            .proposal
            .as_mut()
            .and_then(|p| p.lock.as_mut())
            .map(|race| &mut race.kind)
        {
            if id.0 >> 32 == *race {
                proposer.handle_reply(IoId(id.0 & 0xffff_ffff), result);
            }
        }
        self.step(now);
    }

    /// The quorum server answered request `id` (an error: unreachable, refused, timed out).
    #[allow(
        clippy::needless_pass_by_value,
        reason = "the driver hands the answer over"
    )]
    pub fn handle_quorum_server(
        &mut self,
        now: Instant,
        id: u64,
        answer: Result<QuorumServerAnswer, String>,
    ) {
        if self.phase == Phase::Halted || self.safety_expired(now) {
            return;
        }
        let refusal = match &answer {
            Ok(QuorumServerAnswer::Refused(why)) => Some(*why),
            _ => None,
        };
        // A refusing server answers, but cannot break a tie for this node.
        let usable = answer.is_ok() && refusal.is_none();
        if self.quorum_server.outstanding.map(|(i, _)| i) == Some(id) {
            self.quorum_server.outstanding = None;
            self.quorum_server.refusal = refusal;
            self.set_quorum_server_reachable(usable);
        }
        let racing = matches!(
            self.proposal.as_ref().and_then(|p| p.lock.as_ref()).map(|r| &r.kind),
            Some(LockKind::QuorumServer { id: racing }) if *racing == id
        );
        if racing {
            self.quorum_server.refusal = refusal;
            self.set_quorum_server_reachable(usable);
            match answer {
                Ok(QuorumServerAnswer::Granted) => self.lock_won(now),
                Ok(QuorumServerAnswer::Denied) => self.lock_lost(LockLoss::HeldByOther),
                Ok(QuorumServerAnswer::Refused(why)) => {
                    self.lock_lost(LockLoss::QuorumServer(format!("refused: {why:?}")));
                }
                Ok(QuorumServerAnswer::Pong) => {
                    self.lock_lost(LockLoss::QuorumServer("answered a ping".into()));
                }
                Err(error) => self.lock_lost(LockLoss::QuorumServer(error)),
            }
        }
        self.step(now);
    }

    fn admit(&mut self, now: Instant, envelope: &Envelope) -> bool {
        let from = envelope.from;
        if from == self.settings.me
            || from.index() >= self.settings.nodes
            || envelope.cluster_id != self.settings.cluster_id
        {
            return false;
        }
        // A node asking for the configuration, and the answer, pass whatever the
        // generations: that is how a node that missed a cmapplyconf catches up.
        let config_exchange = matches!(
            envelope.message,
            Message::ConfigRequest | Message::Config { .. }
        );
        // A generation this node accepted with a proposal: members that installed it before
        // this node speak it.
        let accepted = self
            .accepted_configs
            .iter()
            .find(|(_, c)| c.number == envelope.config_generation)
            .map(|(_, c)| c.clone());
        if let Some(config) = &accepted {
            // A peer has it in effect, so it was committed: a node outside any membership
            // takes it at once (a member takes it with the membership that carries it).
            if self.phase == Phase::Starting && config.number > self.settings.config_generation {
                self.apply_generation(now, config);
                self.actions.push_back(Action::Persist(self.persisted()));
            }
        }
        let accepted = accepted.is_some();
        if envelope.config_generation != self.settings.config_generation
            && !config_exchange
            && !accepted
        {
            // A newer generation than this node's, while it is outside any membership: ask
            // for it (once per peer and generation).
            let interval = self.settings.timing.heartbeat_interval;
            let asked = &mut self.config_asked[from.index()];
            let due = asked.is_none_or(|(generation, at)| {
                generation != envelope.config_generation || now >= at + interval
            });
            if self.phase == Phase::Starting
                && envelope.config_generation > self.settings.config_generation
                && due
            {
                *asked = Some((envelope.config_generation, now));
                // To the life that spoke (this node may not know it yet).
                self.send_to_life(from, envelope.from_incarnation, &Message::ConfigRequest);
            }
            let peer = &mut self.peers[from.index()];
            if peer.mismatch_reported != Some(envelope.config_generation) {
                peer.mismatch_reported = Some(envelope.config_generation);
                self.event(Event::ConfigMismatch {
                    node: from,
                    number: envelope.config_generation,
                });
            }
            return false;
        }
        let peer = &mut self.peers[from.index()];
        if envelope.from_incarnation < peer.incarnation {
            return false;
        }
        if envelope.from_incarnation > peer.incarnation {
            // A new life: nothing of the old one holds. Tell it at once who this node hears,
            // so that its joining does not wait a heartbeat interval. (What its old life
            // proposed and this node accepted stays: the old life may have committed it.)
            self.reach_sent.0 = NodeSet(u32::MAX);
            let networks = self.settings.networks;
            *peer = Peer {
                incarnation: envelope.from_incarnation,
                last_heard_network: vec![None; networks],
                network_down: vec![false; networks],
                echo_sent: peer.echo_sent,
                life_heard: Some(now),
                ..Peer::default()
            };
        }
        true
    }

    /// cmhaltpkg of a detached package: the request, on the node that detached it (halted,
    /// or started again and not a member yet), and the answer, on the coordinator. They
    /// pass whatever the phase and generation: a halted node takes no other message.
    fn on_detached_message(&mut self, now: Instant, envelope: Envelope) {
        let from = envelope.from;
        if from == self.settings.me
            || from.index() >= self.settings.nodes
            || envelope.cluster_id != self.settings.cluster_id
            || self.safety_expired(now)
        {
            return;
        }
        match envelope.message {
            Message::HaltDetached { package } => {
                // A member re-attaches what it holds: the cluster monitors it again.
                let member = matches!(self.phase, Phase::Running | Phase::Reforming);
                let Some(id) = self.packages.catalog().find(&package) else {
                    return;
                };
                if member {
                    return;
                }
                if self.packages.halt_detached(id) {
                    self.halting_detached.insert(id);
                    self.send(from, &Message::HaltDetachedTaken { package });
                    self.drain_packages(now);
                } else {
                    self.send(from, &Message::DetachedHalted { package });
                }
            }
            Message::DetachedHalted { package } => {
                let coordinator = self.phase == Phase::Running
                    && self.view.coordinator() == Some(self.settings.me)
                    && self.quorate(now);
                let id = self.packages.catalog().find(&package);
                // An answer all the same to a command held here, coordinator or not now.
                if let Some(id) = id {
                    self.halt_taken(from, id);
                }
                if let (true, Some(id)) = (coordinator, id) {
                    self.packages.on_detached_halted(from, id);
                    self.step(now);
                }
            }
            Message::HaltDetachedTaken { package } => {
                if let Some(id) = self.packages.catalog().find(&package) {
                    self.halt_taken(from, id);
                }
            }
            _ => {}
        }
    }

    /// The nodes outside the membership where a cmhaltpkg `command` finds its package
    /// detached (the coordinator asks their daemons to halt it).
    fn detached_targets(&self, command: &Command) -> Vec<(PackageId, NodeId)> {
        let Command::Halt { package, node } = *command else {
            return Vec::new();
        };
        let state = self.packages.table().package(package);
        state
            .instances
            .iter()
            .filter(|(n, s)| {
                **s == InstanceState::Detached
                    && state.detached.contains(**n)
                    && !self.view.members.contains(**n)
                    && node.is_none_or(|wanted| wanted == **n)
            })
            .map(|(n, _)| (package, *n))
            .collect()
    }

    /// Holds the answer to `asker`'s command (its node and serial) until the daemons of
    /// `targets` took the halt of their detached package (for [`HALT_ACK_WAIT`] at most) and
    /// every member holds the switching table of version `switching` (for
    /// [`SWITCHING_HELD_WAIT`] at most).
    fn hold_answer(
        &mut self,
        now: Instant,
        asker: (NodeId, u64),
        command: Command,
        targets: Vec<(PackageId, NodeId)>,
        switching: Option<(u64, u64)>,
    ) {
        if self.held.len() >= HELD_MAX {
            // Bounded: the oldest is answered as it stands (its wait was cut short).
            let oldest = self.held.remove(0);
            self.give_up_held(&oldest);
        }
        let wait = if targets.is_empty() {
            SWITCHING_HELD_WAIT
        } else {
            HALT_ACK_WAIT
        };
        self.held.push(Held {
            asker,
            command,
            waiting: targets,
            switching,
            deadline: now + wait,
        });
        // The members take a switching change with this heartbeat and confirm it at once
        // (rather than with the next ones, a quarter interval apart): the command's answer
        // waits for them.
        if switching.is_some() && self.phase == Phase::Running {
            self.send_heartbeats(now);
        }
    }

    /// The version of the switching table a command just changed from `before`, while a
    /// member lacks it: the command's answer waits for it. None when the command changed
    /// none, or every member holds it already (a lone member), so that the answer comes at
    /// once and never later within the call that took the command.
    fn switching_to_hold(&self, before: (u64, u64)) -> Option<(u64, u64)> {
        Some(self.packages.switching_version())
            .filter(|v| *v != before && !self.lacking_switching(*v).is_empty())
    }

    /// The members that have not reported (in this membership) a copy of the switching
    /// table at least as new as `version`.
    fn lacking_switching(&self, version: (u64, u64)) -> NodeSet {
        let me = self.settings.me;
        self.view
            .members
            .iter()
            .filter(|&m| {
                m != me
                    && !self.peers[m.index()].heartbeat.as_ref().is_some_and(|h| {
                        h.epoch == self.view.epoch && h.switching_version >= version
                    })
            })
            .collect()
    }

    /// Whether a held command's halts were all taken and every member holds its switching
    /// change.
    fn held_done(&self, held: &Held) -> bool {
        held.waiting.is_empty()
            && held
                .switching
                .is_none_or(|v| self.lacking_switching(v).is_empty())
    }

    /// Answers the held commands waiting for nothing more.
    fn release_held(&mut self) {
        if self.held.iter().all(|held| !self.held_done(held)) {
            return;
        }
        let (done, waiting): (Vec<Held>, Vec<Held>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|held| self.held_done(held));
        self.held = waiting;
        for held in done {
            self.answer(held.asker.0, held.asker.1, None);
        }
    }

    /// Node `from`'s daemon took the halt of detached package `id` (or did not hold it):
    /// the commands waiting for nothing else are answered.
    fn halt_taken(&mut self, from: NodeId, id: PackageId) {
        for held in &mut self.held {
            held.waiting.retain(|&(p, n)| (p, n) != (id, from));
        }
        self.release_held();
    }

    /// Commands still held at their deadline are answered as they stand.
    fn expire_held(&mut self, now: Instant) {
        if self.held.iter().all(|held| now < held.deadline) {
            return;
        }
        let (late, waiting): (Vec<Held>, Vec<Held>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|held| now >= held.deadline);
        self.held = waiting;
        for held in &late {
            self.give_up_held(held);
        }
    }

    /// Answers a held command whose wait ended: refused when a detached halt was not taken
    /// (a node outside the cluster did not answer; one that joined meanwhile holds the
    /// package as a member again, re-attached, and ignored the request); told unconfirmed
    /// when a member has not shown the switching change (it was made, and is kept unless
    /// the coordinator fails before that member takes it).
    fn give_up_held(&mut self, held: &Held) {
        let refusal = match held.waiting.first() {
            Some(&(_, node)) if self.view.members.contains(node) => Refusal::Reattached { node },
            Some(&(_, node)) => Refusal::DetachedUnheard { node },
            None => {
                let lacking = held
                    .switching
                    .map_or(NodeSet::EMPTY, |v| self.lacking_switching(v));
                if lacking.is_empty() {
                    self.answer(held.asker.0, held.asker.1, None);
                } else {
                    self.tell_unconfirmed(held, lacking);
                }
                return;
            }
        };
        self.refuse(held.asker.0, held.asker.1, held.command, refusal);
    }

    /// Tells the node a held command was given on that it was carried out, with a warning
    /// that the members `lacking` have not confirmed its switching change.
    fn tell_unconfirmed(&mut self, held: &Held, lacking: NodeSet) {
        let text = unconfirmed_text(lacking);
        self.answer_with(held.asker.0, held.asker.1, None, Some(text));
    }

    /// This node stops coordinating (it halts): the commands it holds are refused. One that
    /// awaited only the members' confirmation of a switching change is carried out if some
    /// member holds the change (the next coordinator takes the newest copy among the
    /// members), and refused as perhaps lost if none does.
    fn drop_held(&mut self) {
        let me = self.settings.me;
        for held in std::mem::take(&mut self.held) {
            if held.waiting.is_empty() {
                let lacking = held
                    .switching
                    .map_or(NodeSet::EMPTY, |v| self.lacking_switching(v));
                let others = self.view.members.iter().filter(|&m| m != me).count();
                if !lacking.is_empty() && lacking.len() == others {
                    let text = self.refusal_text(&held.command, &Refusal::CoordinatorHalted);
                    self.answer_text(held.asker.0, held.asker.1, Some(text));
                } else {
                    self.answer(held.asker.0, held.asker.1, None);
                }
            } else {
                self.refuse(
                    held.asker.0,
                    held.asker.1,
                    held.command,
                    Refusal::ClusterNotRunning,
                );
            }
        }
    }

    /// Detached packages halted here on request that are done: the others learn it, and
    /// what this node holds detached is persisted again.
    fn tell_detached_halted(&mut self) {
        let done: Vec<PackageId> = self
            .halting_detached
            .iter()
            .copied()
            .filter(|id| !self.packages.holds(*id))
            .collect();
        if done.is_empty() {
            return;
        }
        self.actions.push_back(Action::Persist(self.persisted()));
        for id in done {
            self.halting_detached.remove(&id);
            let package = self.packages.catalog().package(id).name.clone();
            for to in self.others().iter() {
                self.send(
                    to,
                    &Message::DetachedHalted {
                        package: package.clone(),
                    },
                );
            }
        }
    }

    /// The safety timer ran out while this node was not running: it has been reset (or would
    /// have been) and must do nothing more.
    fn safety_expired(&mut self, now: Instant) -> bool {
        match self.safety_deadline {
            Some(deadline) if now >= deadline => {
                self.fence(FenceReason::SafetyTimerExpired);
                true
            }
            _ => false,
        }
    }

    fn step(&mut self, now: Instant) {
        if self.phase == Phase::Halted || self.safety_expired(now) {
            return;
        }
        let timing = self.settings.timing;
        if let Some(last) = self.last_step {
            let gap = now.saturating_since(last);
            if gap > timing.heartbeat_interval * 2 {
                self.event(Event::ScheduleGap { gap });
            }
        }
        self.last_step = Some(now);
        if self.phase == Phase::Starting && now >= self.started_at + timing.auto_start_timeout {
            self.event(Event::AutoStartGaveUp);
            self.set_phase(Phase::Halted);
            return;
        }
        if now >= self.next_heartbeat {
            self.rounds += 1;
            self.send_heartbeats(now);
            self.next_heartbeat = (self.next_heartbeat + timing.heartbeat_interval).max(now);
        } else if self.reach(now) != self.reach_sent.0
            && now >= self.reach_sent.1 + timing.heartbeat_interval / 4
        {
            self.send_heartbeats(now);
        }
        self.watch_networks(now);
        self.resend_start(now);
        self.resend_run_other(now);
        self.pet(now);
        self.check_accepted(now);
        self.drive_lock(now);
        if self.phase != Phase::Halted {
            self.reform(now);
        }
        self.poll_quorum_server(now);
        self.check_lock_lun(now);
        self.release_fence_waits(now);
        self.run_deferred_commands(now);
        self.release_held();
        self.expire_held(now);
        self.check_cluster_halt(now);
        if self.phase == Phase::Halted {
            return;
        }
        self.run_packages(now);
    }

    /// The package coordinator's placement (on the coordinator, while quorate), then what
    /// the package manager wants done.
    fn run_packages(&mut self, now: Instant) {
        let coordinator = self.view.coordinator() == Some(self.settings.me);
        // Nothing is placed while a configuration change is on its way: it was checked
        // against the packages as they run, and must still fit them when it takes effect.
        if self.phase == Phase::Running
            && coordinator
            && self.quorate(now)
            && !self.config_in_flight()
        {
            let placeable = self.placeable(now);
            let detaching = self.detaching(now);
            self.packages.coordinate(now, placeable, detaching);
        }
        self.drain_packages(now);
        self.persist_marks();
        if self.phase != Phase::Halted
            && self.reports_pending()
            && now >= self.reach_sent.1 + self.settings.timing.heartbeat_interval / 4
        {
            self.send_heartbeats(now);
        }
    }

    /// Whether the cluster's coordinator has heard this node's latest report of its
    /// package instances (it acknowledged a heartbeat that carried it), so that a command it
    /// judges next sees them as they are here. True on the coordinator itself, and out of a
    /// running cluster.
    fn reports_heard(&self) -> bool {
        let me = self.settings.me;
        let coordinator = match self.view.coordinator() {
            Some(c) if c != me && self.phase == Phase::Running => c,
            _ => return true,
        };
        if self.packages.report() != self.report_told.0 {
            return false;
        }
        self.report_told.1.is_none_or(|at| {
            self.peers[coordinator.index()]
                .acked
                .is_some_and(|acked| acked >= at)
        })
    }

    /// Whether the packages' instances or switching changed since the last heartbeats.
    fn reports_pending(&self) -> bool {
        self.packages.version() != self.report_sent
            || self.packages.switching_version() != self.switching_sent
    }

    fn drain_packages(&mut self, now: Instant) {
        self.packages.tick(now);
        loop {
            let outputs = self.packages.take_outputs();
            if outputs.is_empty() {
                return;
            }
            for output in outputs {
                match output {
                    Output::Action(action) => self.actions.push_back(Action::Package(action)),
                    Output::Event(event) => self.event(Event::Package(event)),
                    Output::Order { to, order, .. } if to == self.settings.me => {
                        let quorate = self.quorate(now);
                        self.packages.on_order(order, quorate);
                    }
                    Output::Order { to, serial, order } => {
                        let epoch = self.view.epoch;
                        self.send(
                            to,
                            &Message::Order {
                                epoch,
                                serial,
                                order,
                            },
                        );
                    }
                    Output::FailFast => {
                        self.fence(FenceReason::FailFast);
                        return;
                    }
                    Output::HaltDetached { to, package } => {
                        let package = self.packages.catalog().package(package).name.clone();
                        self.send(to, &Message::HaltDetached { package });
                    }
                }
            }
        }
    }

    fn send_heartbeats(&mut self, now: Instant) {
        self.send_heartbeats_to(now, None);
        // Now and then the coordinator sends its whole shared map again: a member that
        // missed a change (a lost control frame) catches up without waiting for the next
        // membership, every SHARED_RESEND_ROUNDS periodic rounds (not heartbeats: those sent
        // early, for a switching change say, would make it more often).
        if self.rounds >= self.shared_resend_at
            && self.phase == Phase::Running
            && self.view.coordinator() == Some(self.settings.me)
        {
            self.shared_resend_at = self.rounds + SHARED_RESEND_ROUNDS;
            self.purge_shared();
            if !self.shared.is_empty() {
                self.spread_whole();
            }
        }
    }

    /// Sends a heartbeat to every peer, or to `only` that one (the others see the sequence
    /// skip a number, which they allow).
    fn send_heartbeats_to(&mut self, now: Instant, only: Option<NodeId>) {
        self.heartbeat_sequence += 1;
        let reach = self.reach(now);
        // What every peer has been told: not by a heartbeat to one of them only.
        if only.is_none() {
            self.reach_sent = (reach, now);
        }
        // Members echo while running and while re-forming, so that leases hold through
        // attempts that fail. A member this node reported silent to a coordinator (in its
        // own proposal, or an acceptance that may still be committed) gets no echo until
        // that is settled: the fence wait computed from the report must stay true.
        let echoing = matches!(self.phase, Phase::Running | Phase::Reforming)
            && self.view.epoch != Epoch::NONE;
        let mut unechoed = NodeSet::EMPTY;
        let own = self.proposal.as_ref().map(|p| &p.view);
        for proposal in self.accepted_since.iter().chain(own) {
            unechoed = unechoed.union(self.view.members.difference(proposal.members));
        }
        let term = self.term_now(now, None);
        let packages = self.packages.report();
        let restarts = self.packages.restart_report();
        let failures: Vec<(PackageId, u64)> =
            self.failures_told.iter().map(|(&p, &n)| (p, n)).collect();
        let resources = self.packages.resource_report();
        if only.is_none() {
            if self.report_told.0 != packages {
                self.report_told = (packages.clone(), Some(now));
            }
            self.report_sent = self.packages.version();
            self.switching_sent = self.packages.switching_version();
        }
        let switching = self.packages.switching();
        let switching_version = self.packages.switching_version();
        let lock = self.own_lock_health();
        let others = self.others();
        for index in 0..self.settings.nodes {
            let to = NodeId(index as u32);
            if !others.contains(to) || only.is_some_and(|only| only != to) {
                continue;
            }
            let peer = &mut self.peers[index];
            // A peer whose heartbeats keep coming without acknowledging a newer one of this
            // node gets no echo: it may have stopped hearing its members, and the survivors'
            // wait counts from the last echo it was sent, not from when it is found out. (A
            // peer not heard at all needs no such care: its echoed send time stays put.)
            let hears = match (peer.acked_heard, peer.last_heard) {
                (Some(acked), Some(heard)) => {
                    heard.saturating_since(acked) < self.settings.timing.ack_stale_max
                }
                _ => true,
            };
            let echo = if echoing
                && hears
                && self.view.has(to, peer.incarnation)
                && !unechoed.contains(to)
            {
                peer.sent
            } else {
                None
            };
            if let Some(echo) = echo {
                // The echoed send time is before its arrival: the silence counts from there.
                let timing = self.settings.timing;
                peer.note_echo(&timing, peer.sent_heard.unwrap_or(now), echo.term);
            }
            let heartbeat = Heartbeat {
                sequence: self.heartbeat_sequence,
                sent_at: now,
                term,
                phase: self.phase,
                epoch: self.view.epoch,
                members: self.view.members,
                reach,
                echo,
                heard: peer.sent.map(|sent| sent.at),
                packages: packages.clone(),
                restarts: restarts.clone(),
                failures: failures.clone(),
                resources: resources.clone(),
                switching: switching.clone(),
                switching_version,
                executed: self.packages.executed(),
                leaving: self.leaving,
                lock,
                lock_refusal: self.quorum_server.refusal,
            };
            self.send(to, &Message::Heartbeat(heartbeat));
        }
    }

    /// The peers heard within MEMBER_TIMEOUT (none once this node is departing).
    fn reach(&self, now: Instant) -> NodeSet {
        if self.departing {
            return NodeSet::EMPTY;
        }
        self.peers
            .iter()
            .enumerate()
            .filter(|(index, peer)| {
                *index != self.settings.me.index() && self.fresh(peer.last_heard, now)
            })
            .map(|(index, _)| NodeId(index as u32))
            .collect()
    }

    fn fresh(&self, heard: Option<Instant>, now: Instant) -> bool {
        heard.is_some_and(|at| now < at + self.settings.timing.member_timeout)
    }

    fn on_heartbeat(
        &mut self,
        now: Instant,
        network: usize,
        from: NodeId,
        mut heartbeat: Heartbeat,
    ) {
        heartbeat.echo = heartbeat.echo.and_then(|echo| self.own_echo(echo));
        let peer = &mut self.peers[from.index()];
        if let Some(slot) = peer.last_heard_network.get_mut(network) {
            *slot = Some(now);
        }
        if heartbeat.sequence <= peer.sequence {
            return;
        }
        peer.sequence = heartbeat.sequence;
        peer.last_heard = Some(now);
        if peer.acked_heard.is_none() || heartbeat.heard != peer.acked {
            peer.acked = heartbeat.heard;
            peer.acked_heard = Some(now);
        }
        peer.sent = Some(Echo {
            at: heartbeat.sent_at,
            term: heartbeat.term.bounded(),
        });
        peer.sent_heard = Some(now);
        let counts = matches!(self.phase, Phase::Running | Phase::Reforming)
            && matches!(heartbeat.phase, Phase::Running | Phase::Reforming)
            && heartbeat.epoch == self.view.epoch
            && self.view.has(from, peer.incarnation);
        if counts {
            if let Some(echo) = heartbeat.echo.filter(|e| e.at >= self.lease_floor) {
                // The latest send time wins (its term bounds the earlier ones').
                if peer.echo.is_none_or(|e| echo.at > e.at) {
                    peer.echo = Some(echo);
                }
            }
        }
        let incarnation = peer.incarnation;
        let same_view = self.view.epoch != Epoch::NONE
            && heartbeat.epoch == self.view.epoch
            && self.view.has(from, incarnation);
        let mut adopted = false;
        if same_view {
            self.packages.on_report(
                from,
                &heartbeat.packages,
                heartbeat.executed,
                &heartbeat.restarts,
                &heartbeat.resources,
            );
            let before = self.packages.switching_version();
            self.packages
                .on_switching(heartbeat.switching_version, &heartbeat.switching);
            adopted = self.packages.switching_version() != before;
        }
        self.round_max = self.round_max.max(heartbeat.epoch.round());
        let member = self.view.has(from, incarnation);
        let epoch = heartbeat.epoch;
        let newer = heartbeat.epoch > self.view.epoch;
        let members = heartbeat.members;
        let echo = heartbeat.echo;
        let report_changed = peer
            .heartbeat
            .as_ref()
            .is_none_or(|h| h.packages != heartbeat.packages);
        peer.heartbeat = Some(heartbeat);
        let me = self.settings.me;
        let life = self.incarnation;
        let committed = self.accepted_since.iter().position(|view| {
            view.epoch == epoch
                && view.members == members
                && view.has(from, incarnation)
                && view.has(me, life)
        });
        // A member whose fence wait is over answers the package coordinator's heartbeat at
        // once: the coordinator takes over only on an echo of a send time after the wait's
        // end, which the next periodic heartbeat would bring up to an interval later.
        // So does a member that took a newer switching table from the coordinator: the
        // coordinator holds the command's answer until every member has it.
        if same_view
            && self.view.coordinator() == Some(from)
            && from != me
            && (adopted || self.fence_waits.iter().any(|(_, _, at)| now >= *at))
        {
            self.send_heartbeats_to(now, Some(from));
        }
        // The coordinator answers a member's new report of its packages at once: the member
        // counts a run or halt there as ended once the coordinator acknowledged hearing it
        // (Snapshot::reports_heard), which the next periodic heartbeat would bring up to an
        // interval later.
        if same_view && self.view.coordinator() == Some(me) && from != me && report_changed {
            self.send_heartbeats_to(now, Some(from));
        }
        if let (true, Some(index)) = (newer, committed) {
            // The commit was lost on the way here (or is slower than this heartbeat):
            // install what was accepted. The heartbeat's echo serves as the commit's.
            let view = self.accepted_since.remove(index);
            // This node's acceptance is echoed too: the coordinator had it when it committed.
            let accepted = self
                .acceptances
                .iter()
                .find(|(e, _)| *e == epoch)
                .map(|(_, echo)| (epoch.coordinator(), *echo));
            let echoes: Vec<(NodeId, Echo)> = echo
                .map(|e| (from, e))
                .into_iter()
                .chain(accepted)
                .collect();
            self.install(now, view, (None, NodeSet::EMPTY), Vec::new(), &echoes);
        } else if member
            && newer
            && !members.contains(self.settings.me)
            && self.phase != Phase::Starting
        {
            // Accepted as a leaver in that very membership: with -d, the version check of
            // ready_to_leave cannot hold any more (the members speak the new epoch).
            let left_as_leaver = self
                .accepted_since
                .iter()
                .any(|v| v.epoch == epoch && v.members == members);
            if self.leaving.node() && (self.ready_to_leave() || left_as_leaver) {
                // Left out while leaving (the commit was lost on the way here): it holds
                // nothing, so it halts as it meant to.
                self.leave_done();
            } else {
                self.fence(FenceReason::Excluded);
            }
        }
    }

    fn watch_networks(&mut self, now: Instant) {
        if self.settings.networks < 2 {
            return;
        }
        let member_timeout = self.settings.timing.member_timeout;
        let mut events = Vec::new();
        for (index, peer) in self.peers.iter_mut().enumerate() {
            if peer.last_heard.is_none_or(|at| now >= at + member_timeout) {
                continue;
            }
            for network in 0..peer.last_heard_network.len() {
                let silent =
                    peer.last_heard_network[network].is_some_and(|at| now >= at + member_timeout);
                if silent != peer.network_down[network] {
                    peer.network_down[network] = silent;
                    let node = NodeId(index as u32);
                    events.push(if silent {
                        Event::NetworkDown { node, network }
                    } else {
                        Event::NetworkUp { node, network }
                    });
                }
            }
        }
        for event in events {
            self.event(event);
        }
    }

    /// The end of the quorum lease and the grace that follows it: the echo of the peer that
    /// completes a majority, plus the lease, and that echo's grace. A membership of one is
    /// always quorate.
    ///
    /// A proposal this node accepted after its installed membership may have been committed
    /// without this node learning it (the commit lost), and its members then count this node
    /// alive only as long as their own echoes say (their silences): so the echoes must also
    /// come from a majority of each such proposal, or a majority of the old membership that
    /// is a minority of the new one (echoing one another) would keep this node going after
    /// the new membership took over from it.
    ///
    /// Returns the lease's end, the grace after it and the send time it rests on.
    fn quorate_until(&self) -> Option<(Instant, Duration, Instant)> {
        if !matches!(self.phase, Phase::Running | Phase::Reforming) {
            return None;
        }
        let me = self.settings.me;
        let life = self.incarnation;
        // Over the bases that need echoes: the earliest lease end, the earliest end of lease
        // and grace, and the earliest send time they rest on.
        let mut bound: Option<(Instant, Instant, Instant)> = None;
        let bases = std::iter::once(&self.view).chain(
            self.accepted_since
                .iter()
                .filter(|basis| basis.has(me, life)),
        );
        for basis in bases {
            let needed = basis.members.len() / 2;
            if needed == 0 {
                continue;
            }
            // Only members of the installed membership echo in it. A later send time never
            // has an earlier end of lease, nor of lease and grace (see `Term`): the latest
            // echoes end last.
            let mut echoes: Vec<Echo> = basis
                .members
                .iter()
                .filter(|&m| m != me && self.view.members.contains(m))
                .filter_map(|m| self.peers[m.index()].echo)
                .collect();
            echoes.sort_unstable_by_key(|e| std::cmp::Reverse(e.at));
            let echo = echoes.get(needed - 1)?;
            let until = echo.at + echo.term.lease;
            let end = until + echo.term.grace;
            bound = Some(match bound {
                None => (until, end, echo.at),
                Some((u, e, f)) => (u.min(until), e.min(end), f.min(echo.at)),
            });
        }
        Some(match bound {
            None => (
                Instant(u64::MAX),
                self.settings.timing.short_grace,
                Instant(u64::MAX),
            ),
            Some((until, end, from)) => (until, end.saturating_since(until), from),
        })
    }

    /// The longest a failover from a member of the installed membership can take, as
    /// [`Timing::failover_bound`] gives it for this membership's grace (the long one in a
    /// membership of even size with a tie-breaker).
    pub fn failover_bound(&self) -> Duration {
        self.settings
            .timing
            .failover_bound(self.long_grace_in(&self.view))
    }

    /// Whether a lease may lapse in `view` through a re-formation its node survives: a
    /// membership of even size, with a tie-breaker.
    fn long_grace_in(&self, view: &View) -> bool {
        let size = view.members.len();
        self.settings.tiebreaker != Tiebreaker::None && size >= 2 && size % 2 == 0
    }

    /// The earliest send time the current lease rests on (every member completing the
    /// majority echoed a send time at least this late), when the lease holds now. A
    /// membership of one needs no echo.
    fn lease_confirmed_from(&self, now: Instant) -> Option<Instant> {
        let (_, _, from) = self.quorate_until().filter(|(until, _, _)| now < *until)?;
        Some(from)
    }

    /// The term to announce with a send time `now` (see [`Term`]). The lease is the
    /// timing's. The grace is the long one while the installed membership, or `joining` (a
    /// proposal this node makes or accepts), has an even size and a tie-breaker exists; after
    /// that it falls back to the short one. Each falls back no faster than time passes, after
    /// the membership shrank or MEMBER_TIMEOUT was lowered, so that none of `now + lease`,
    /// `now + grace` and `now + lease + grace` ever decreases: the grace makes up for a lease
    /// that falls back while the grace does too.
    fn term_now(&mut self, now: Instant, joining: Option<&View>) -> Term {
        let timing = self.settings.timing;
        let long = self.long_grace_in(&self.view) || joining.is_some_and(|v| self.long_grace_in(v));
        let term = timing.term(long);
        let before = self.announced.unwrap_or(Announced {
            last: now,
            lease: now,
            grace: now,
            both: now,
        });
        let lease = term.lease.max(before.lease.saturating_since(now));
        let grace = term
            .grace
            .max(before.grace.saturating_since(now))
            .max(before.both.saturating_since(now).saturating_sub(lease));
        self.announced = Some(Announced {
            last: before.last.max(now),
            lease: before.lease.max(now + lease),
            grace: before.grace.max(now + grace),
            both: before.both.max(now + lease + grace),
        });
        Term { lease, grace }
    }

    /// The newest membership this node knows to have been committed: the one it installed,
    /// or the one an earlier life installed last.
    fn committed(&self) -> Epoch {
        let before = self
            .installed_before
            .as_ref()
            .map_or(Epoch::NONE, |v| v.epoch);
        self.view.epoch.max(before)
    }

    /// An echo of this node's own send time, as far as it can be true: none of a send time
    /// later than this node's last, and its term no wider than this node announced (a peer
    /// that lies or is damaged must not push this node's safety timer out).
    fn own_echo(&self, echo: Echo) -> Option<Echo> {
        let announced = self.announced?;
        if echo.at > announced.last {
            return None;
        }
        let lease = echo
            .term
            .lease
            .min(announced.lease.saturating_since(echo.at));
        let grace = echo
            .term
            .grace
            .min(announced.grace.saturating_since(echo.at))
            .min(
                announced
                    .both
                    .saturating_since(echo.at)
                    .saturating_sub(lease),
            );
        Some(Echo {
            at: echo.at,
            term: Term { lease, grace },
        })
    }

    /// The longest fence bound an echo that this node sent may still need, and the widest
    /// term it could have carried: the timing's, an earlier timing's while echoes sent under
    /// it may still count (MEMBER_TIMEOUT lowered online), and those its peers announced
    /// lately (a peer lowers its term no faster than time passes, see [`Term`]).
    fn widest(&self, now: Instant) -> (Duration, Term) {
        let timing = self.settings.timing;
        let mut widest = (timing.fence_bound_max(), timing.term(true));
        let mut consider = |term: Term| {
            let bound = timing.fence_bound(term);
            if bound > widest.0 {
                widest = (bound, term);
            }
        };
        if let Some((term, until)) = self.replaced_term {
            if now < until {
                consider(term);
            }
        }
        for peer in &self.peers {
            // The send time of `sent` is on the peer's clock: its arrival counts here.
            let heard = peer
                .sent_heard
                .zip(peer.sent)
                .map(|(at, sent)| (at, sent.term));
            for (at, term) in [peer.echo_sent, heard].into_iter().flatten() {
                if now < at + timing.fence_bound(term) {
                    consider(term);
                }
            }
        }
        widest
    }

    fn pet(&mut self, now: Instant) {
        if self.safety_deadline.is_none() {
            return;
        }
        let timing = self.settings.timing;
        let due = now >= self.last_pet + timing.heartbeat_interval / 2;
        let lease = self.quorate_until();
        if let Some((until, _, _)) = lease {
            // Whether the lapse can be survived is the installed membership's to say, not the
            // echo's grace: a heartbeat sent just after a proposal of an even membership
            // carries a long grace already decaying (see `grace_now`), which is no reason to
            // give up the tie-break that the membership is entitled to.
            if now >= until && !self.long_grace_in(&self.view) {
                // A majority has not echoed this node for a lease, and its membership cannot
                // go on with half (odd size, or no tie-breaker): it is in no quorate group.
                // Say so and stop now rather than when the safety timer fires; a last
                // heartbeat tells the peers this node hears none of them, so that those that
                // still hear it (a one-way loss) re-form without waiting for its silence.
                self.departing = true;
                self.send_heartbeats(now);
                self.fence(FenceReason::QuorumLost);
                return;
            }
        }
        let Some((until, grace, _)) = lease.filter(|(until, _, _)| now < *until) else {
            return;
        };
        if due {
            let deadline = until.min(now + timing.lease) + grace;
            self.last_pet = now;
            self.safety_deadline = Some(deadline);
            self.actions.push_back(Action::PetSafetyTimer { deadline });
        }
    }

    /// A member waiting for a commit that does not come stops waiting, and may propose.
    fn check_accepted(&mut self, now: Instant) {
        if self
            .accepted
            .as_ref()
            .is_some_and(|(_, deadline)| now >= *deadline)
        {
            self.accepted = None;
        }
    }

    /// Who may be in the next membership: this node, the members of the installed one (same
    /// life) heard recently, and starting nodes that are not in another membership.
    fn reachability(&self, now: Instant) -> Reachability {
        let me = self.settings.me;
        let mut eligible = NodeSet::EMPTY;
        let mut rows = vec![NodeSet::EMPTY; self.settings.nodes];
        // A node done halting its packages for cmhaltnode leaves the membership.
        if !(self.leaving.node() && self.ready_to_leave()) {
            eligible.insert(me);
        }
        rows[me.index()] = self.reach(now);
        for (index, peer) in self.peers.iter().enumerate() {
            let node = NodeId(index as u32);
            if node == me || !self.fresh(peer.last_heard, now) {
                continue;
            }
            let Some(heartbeat) = &peer.heartbeat else {
                continue;
            };
            rows[index] = heartbeat.reach;
            let member = self.view.has(node, peer.incarnation);
            let joiner = heartbeat.phase == Phase::Starting && heartbeat.epoch == Epoch::NONE;
            let in_cluster = self.view.epoch != Epoch::NONE || heartbeat.phase == Phase::Starting;
            let leaves = member && heartbeat.leaving.node() && self.peer_ready(node, heartbeat);
            if heartbeat.phase != Phase::Halted && (member || joiner) && in_cluster && !leaves {
                eligible.insert(node);
            }
        }
        Reachability { eligible, rows }
    }

    fn candidate_view(&self, now: Instant) -> View {
        let previous = self.view.members;
        // A node a generation on its way deletes is in no membership of it (members accept
        // none that has it): one starting meanwhile (cmrunnode racing the cmapplyconf) is
        // left out, and told it was deleted once the generation is in effect.
        let members = self
            .reachability(now)
            .best_clique(previous)
            .difference(self.being_deleted());
        let mut incarnations = vec![Incarnation(0); self.settings.nodes];
        for node in members.iter() {
            incarnations[node.index()] = if node == self.settings.me {
                self.incarnation
            } else {
                self.peers[node.index()].incarnation
            };
        }
        View {
            epoch: Epoch::NONE,
            members,
            incarnations,
        }
    }

    /// The nodes that a generation on its way deletes (pending on this coordinator, to be
    /// carried on, or accepted with a proposal), and that the one in effect does not.
    fn being_deleted(&self) -> NodeSet {
        let on_its_way = self
            .pending_config
            .iter()
            .map(|(cluster, _)| cluster)
            .chain(self.adopt.iter().map(|(_, adopt)| &adopt.cluster))
            // Accepted with a proposal that may have been committed (one dropped since, by
            // its coordinator or by a later one, never will: it is not carried on).
            .chain(
                self.accepted_configs
                    .iter()
                    .filter(|(e, _)| self.accepted_since.iter().any(|v| v.epoch == *e))
                    .map(|(_, config)| &config.cluster),
            );
        let mut deleted = NodeSet::EMPTY;
        for cluster in on_its_way {
            for node in deleted_numbers(cluster).iter() {
                deleted.insert(node);
            }
        }
        deleted.difference(deleted_numbers(&self.settings.config))
    }

    /// Whether a member has not installed this node's membership (it missed the commit and
    /// the heartbeats that would have told it): proposing the same members again brings it in.
    fn member_lags(&self, now: Instant) -> bool {
        // Heartbeats sent before the commit arrived are not lagging.
        let settled = self.installed_at + self.settings.timing.propose_timeout;
        self.view.members.iter().any(|node| {
            let peer = &self.peers[node.index()];
            node != self.settings.me
                && self.fresh(peer.last_heard, now)
                && peer.last_heard.is_some_and(|heard| heard > settled)
                && peer
                    .heartbeat
                    .as_ref()
                    .is_some_and(|h| h.epoch < self.view.epoch)
        })
    }

    /// Who proposes `candidate`: its lowest node that is already a member (a starting node
    /// never coordinates its own joining), else its lowest node.
    fn coordinator_of(&self, candidate: &View) -> Option<NodeId> {
        let running = candidate
            .members
            .iter()
            .find(|&node| self.view.has(node, candidate.incarnations[node.index()]));
        running.or_else(|| candidate.members.lowest())
    }

    /// Whether a peer belongs to a running cluster this node is not in.
    fn cluster_elsewhere(&self, now: Instant) -> bool {
        self.peers.iter().any(|peer| {
            self.fresh(peer.last_heard, now)
                && peer
                    .heartbeat
                    .as_ref()
                    .is_some_and(|h| h.epoch != Epoch::NONE && h.phase != Phase::Halted)
        })
    }

    fn reform(&mut self, now: Instant) {
        if self.phase == Phase::Halted {
            return;
        }
        // A proposal of this node that got no answer in time is dropped for good.
        if self
            .proposal
            .as_ref()
            .is_some_and(|p| p.lock.is_none() && now >= p.deadline)
        {
            self.abandon_proposal();
        }
        // An acceptance that came to nothing (no commit by its deadline, no proposal of this
        // node's own): back to running in the installed membership, echoing again.
        if self.phase == Phase::Reforming
            && self.proposal.is_none()
            && self.accepted.is_none()
            && self.view.epoch != Epoch::NONE
        {
            self.set_phase(Phase::Running);
        }
        let candidate = self.candidate_view(now);
        let stable = self.phase == Phase::Running
            && candidate.members == self.view.members
            && candidate.incarnations == self.view.incarnations
            && !self.member_lags(now)
            && self.pending_config.is_none()
            && self.adopt.is_none();
        if stable {
            self.candidate = None;
            return;
        }
        match &self.candidate {
            Some((view, _))
                if view.members == candidate.members
                    && view.incarnations == candidate.incarnations => {}
            _ => self.candidate = Some((candidate.clone(), now)),
        }
        let Some((_, since)) = self.candidate else {
            return;
        };
        let coordinator = self.coordinator_of(&candidate) == Some(self.settings.me);
        let settled = now >= since + self.settings.timing.settle;
        if !coordinator || !settled || now < self.backoff_until {
            return;
        }
        if self.accepted.is_some() {
            return;
        }
        if let Some(proposal) = &self.proposal {
            let same = proposal.view.members == candidate.members
                && proposal.view.incarnations == candidate.incarnations;
            if proposal.lock.is_some() || (same && now < proposal.deadline) {
                return;
            }
        }
        if self.view.epoch == Epoch::NONE {
            // Automatic start: a cluster of every configured node, or join a running one;
            // cmruncl -n names the nodes to start with instead. Not a node a generation on
            // its way deletes, named or not, nor one the generation in effect deleted after
            // the command named it: the candidate leaves it out, and the cluster starts
            // without it (waiting for it would wait for ever).
            let wanted = self
                .start_with
                .unwrap_or_else(|| self.settings.configured())
                .intersection(self.settings.configured())
                .difference(self.being_deleted());
            let everyone = candidate.members.intersection(wanted) == wanted;
            if !everyone || self.cluster_elsewhere(now) {
                return;
            }
        }
        self.propose(now, candidate);
    }

    fn propose(&mut self, now: Instant, mut view: View) {
        self.round_max = self.round_max.max(self.promised.round()) + 1;
        let epoch = Epoch::new(self.round_max, self.settings.me);
        view.epoch = epoch;
        self.promise(epoch);
        let mut accepted = NodeSet::EMPTY;
        accepted.insert(self.settings.me);
        // A generation that may have taken effect somewhere (this node, or a member,
        // accepted it with an earlier proposal) is carried on first; else a cmapplyconf
        // rides on the proposal, numbered by its epoch.
        let current = self.settings.config_generation;
        let carried = self
            .accepted_configs
            .iter()
            .filter(|(e, _)| self.accepted_since.iter().any(|v| v.epoch == *e))
            .filter(|(_, c)| self.follows_in_effect(c))
            .max_by_key(|(e, c)| (c.number, *e))
            .cloned();
        let adopted = [carried, self.adopt.clone()]
            .into_iter()
            .flatten()
            .filter(|(_, c)| self.follows_in_effect(c))
            .max_by_key(|(e, c)| (c.number, *e));
        let carried_from = adopted.as_ref().map(|(e, _)| *e);
        let adopted = adopted.map(|(_, c)| c);
        // The proposal this one replaces is dropped (below): on record before a refusal of
        // the change it carried is told.
        self.pass_over_own();
        // A cmapplyconf is checked again against the packages as they run now, and given
        // up when members keep refusing it.
        if adopted.is_none() {
            if let Some((cluster, packages)) = &self.pending_config {
                let checked = if self.config_attempts >= CONFIG_ATTEMPTS_MAX {
                    Err(Refusal::InvalidConfiguration {
                        reason: "members did not accept it".into(),
                    })
                } else {
                    self.check_apply(cluster, packages)
                };
                if let Err(refusal) = checked {
                    self.pending_config = None;
                    self.config_attempts = 0;
                    self.tell_given_up(&refusal);
                    self.event(Event::ApplyRefused { refusal });
                }
            }
        }
        let trial = adopted.is_none() && self.pending_config.is_some();
        let config = adopted.or_else(|| {
            self.pending_config.as_ref().map(|(cluster, packages)| {
                Arc::new(Generation {
                    number: fresh_generation(current, epoch),
                    sequence: self.settings.config_sequence.max(self.sequence_floor) + 1,
                    cluster: cluster.clone(),
                    packages: packages.clone(),
                })
            })
        });
        let silences = self.silences(now, &view);
        let leavers = self.leavers(now).difference(view.members);
        let basis_configs: Vec<(Epoch, Arc<Generation>)> = self
            .accepted_configs
            .iter()
            .filter(|(e, _)| self.accepted_since.iter().any(|v| v.epoch == *e))
            .cloned()
            .collect();
        // On record before the Propose leaves: a later life that finds it still pending
        // knows the proposal never committed, had this life died proposing.
        self.own_pending = config.as_ref().map(|_| epoch);
        if let Some(config) = &config {
            self.accepted_configs.push((epoch, config.clone()));
            self.actions.push_back(Action::Persist(self.persisted()));
        }
        // After the proposal it replaces is dropped: that one may be among them.
        self.abandon_proposal();
        let me = self.settings.me;
        let given_up = self
            .passed_over
            .iter()
            .copied()
            .filter(|e| reported_over(*e, me, &self.accepted_since))
            .collect();
        self.proposal = Some(Proposal {
            view: view.clone(),
            accepted,
            silences,
            bases: self.accepted_since.clone(),
            basis_configs,
            given_up,
            config: config.as_ref().map(|c| c.number),
            carried_from,
            trial,
            sent_at: now,
            echoes: Vec::new(),
            sent: Vec::new(),
            deadline: now + self.settings.timing.propose_timeout,
            lock: None,
            locks_won: Vec::new(),
            running_before: self.view.epoch != Epoch::NONE,
            leavers,
            known: [self.settings.me]
                .into_iter()
                .filter(|_| self.packages.holds_table())
                .collect(),
            committed: self.committed(),
            installed: vec![(self.settings.me, self.view.epoch)],
        });
        if self.phase == Phase::Running {
            self.set_phase(Phase::Reforming);
        }
        let mut to = view.members.union(leavers);
        to.remove(self.settings.me);
        // Announced only to those who hear it: a membership of one echoes nothing.
        if !to.is_empty() {
            let term = self.term_now(now, Some(&view));
            for member in to.iter() {
                self.send(
                    member,
                    &Message::Propose {
                        epoch,
                        view: view.clone(),
                        sent_at: now,
                        term,
                        installed: self.view.epoch,
                        leavers,
                        config: config.clone(),
                        carried_from,
                    },
                );
            }
        }
        self.decide_if_complete(now);
    }

    /// A command forwarded by a member: carried out once, by the coordinator, in the
    /// membership it was given in.
    fn on_command(
        &mut self,
        now: Instant,
        from: NodeId,
        epoch: Epoch,
        serial: u64,
        command: Command,
    ) {
        let coordinator = self.view.coordinator() == Some(self.settings.me);
        if !coordinator || epoch != self.view.epoch || !self.quorate(now) {
            // Not answered: the sender's membership has moved on, and it bounds its wait.
            return;
        }
        let last = &mut self.commands_seen[from.index()];
        if (epoch, serial) <= *last {
            return;
        }
        *last = (epoch, serial);
        if !self.packages.informed() {
            // Just re-formed: carried out once every member has reported (the table may be
            // behind a member's until then).
            if self.deferred_commands.len() < DEFERRED_COMMANDS_MAX {
                self.deferred_commands.push(Deferred {
                    epoch,
                    from,
                    serial,
                    command,
                });
            } else {
                self.refuse(from, serial, command, Refusal::Reforming);
            }
            return;
        }
        self.carry_out(now, from, serial, command);
    }

    /// Carries out a forwarded command on the coordinator, or tells why not, and answers
    /// the node that gave it.
    fn carry_out(&mut self, now: Instant, from: NodeId, serial: u64, command: Command) {
        if self.config_in_flight() && starts(&command) {
            self.refuse(from, serial, command, Refusal::ConfigurationChanging);
            return;
        }
        let members = self.placeable(now);
        let detached = self.detached_targets(&command);
        let before = self.packages.switching_version();
        match self.packages.apply_command(now, members, &command) {
            Ok(()) => {
                let switching = self.switching_to_hold(before);
                if detached.is_empty() && switching.is_none() {
                    self.answer(from, serial, None);
                } else {
                    self.hold_answer(now, (from, serial), command, detached, switching);
                }
            }
            Err(refusal) => self.refuse(from, serial, command, refusal),
        }
    }

    /// Refuses a forwarded command: answers the node that gave it, and tells.
    /// The refusal names the package, as the giving node's own refusals do.
    fn refuse(&mut self, from: NodeId, serial: u64, command: Command, refusal: Refusal) {
        let text = self.refusal_text(&command, &refusal);
        self.answer_text(from, serial, Some(text));
        self.event(Event::CommandRefused { command, refusal });
    }

    /// The text of `refusal` of `command`, naming its package.
    fn refusal_text(&self, command: &Command, refusal: &Refusal) -> String {
        match self
            .packages
            .catalog()
            .packages
            .get(command.package().index())
        {
            Some(def) => refusal.naming(&def.name).to_string(),
            None => refusal.to_string(),
        }
    }

    /// Carries out the forwarded commands deferred until every member reported, or refuses
    /// them when the membership they were given in has gone.
    fn run_deferred_commands(&mut self, now: Instant) {
        if self.deferred_commands.is_empty() {
            return;
        }
        let coordinator = self.view.coordinator() == Some(self.settings.me);
        let current = coordinator && self.quorate(now);
        if current && !self.packages.informed() {
            return;
        }
        for deferred in std::mem::take(&mut self.deferred_commands) {
            let Deferred {
                epoch,
                from,
                serial,
                command,
            } = deferred;
            if !current || epoch != self.view.epoch {
                self.refuse(from, serial, command, Refusal::Reforming);
            } else {
                self.carry_out(now, from, serial, command);
            }
        }
    }

    /// Drops the proposal this node coordinates, for good (it will never commit it), and
    /// tells its members, so they stop counting it as possibly committed.
    fn abandon_proposal(&mut self) {
        self.abandon_proposal_halting(NodeSet::EMPTY);
    }

    /// Drops this node's proposal: `halted` members are told to halt, the others that it
    /// is abandoned. Never both: a Halt is taken only for the proposal a member accepted,
    /// and an Abandon that overtook it would have cleared that.
    fn abandon_proposal_halting(&mut self, halted: NodeSet) {
        self.pass_over_own();
        let Some(proposal) = self.proposal.take() else {
            return;
        };
        let epoch = proposal.view.epoch;
        for member in proposal.view.members.iter() {
            if member == self.settings.me {
                continue;
            }
            if halted.contains(member) {
                let reason = FenceReason::QuorumLost;
                self.send(member, &Message::Halt { epoch, reason });
            } else {
                self.send(member, &Message::Abandon { epoch });
            }
        }
        // Members refuse a cmapplyconf by not accepting it; one that also fell silent
        // (dead, cut off) may have refused nothing, and is left out of the next membership.
        if proposal.trial {
            let voters = proposal.view.members.union(proposal.leavers);
            let refusers = voters.difference(proposal.accepted);
            // The life proposed to: one that started since never saw the proposal.
            let heard_since = |m: NodeId| {
                let peer = &self.peers[m.index()];
                peer.incarnation == proposal.view.incarnations[m.index()]
                    && peer.last_heard.is_some_and(|at| at >= proposal.sent_at)
            };
            if !refusers.is_empty() && refusers.iter().all(heard_since) {
                self.config_attempts += 1;
            }
        }
    }

    /// A proposal of this node's that carried a generation, dropped without a commit: no
    /// Commit of it was ever sent (`commit` is the only sender, and takes the proposal), so
    /// it never takes effect anywhere. Persisted and reported with the acceptances passed
    /// over ([`Message::Accept`]'s `passed_over`): the generation is carried on from no
    /// member's acceptance of it (seed 6618811: a cmapplyconf deleting n4 rode on a proposal
    /// that one member accepted before it fenced; the coordinator gave the change up, yet
    /// every later start carried the deletion on from that member's acceptance, and lost
    /// quorum against a membership the deleted node made half of). Kept until a membership
    /// after it is installed: then every proposal this node votes in knows a committed
    /// membership after it.
    ///
    /// Called while the proposal is still this node's, before anything that follows from
    /// its drop is sent (a refusal of the change it carried, an Abandon, a Halt).
    fn pass_over_own(&mut self) {
        let Some(proposal) = &self.proposal else {
            return;
        };
        let epoch = proposal.view.epoch;
        if proposal.config.is_none() || self.passed_over.contains(&epoch) {
            return;
        }
        // Bounded as the acceptances are: the oldest record goes first (forgetting one only
        // lets its generation be carried on, as before it was given up).
        let me = self.settings.me;
        let own = self
            .passed_over
            .iter()
            .filter(|e| e.coordinator() == me)
            .count();
        if own >= ACCEPTED_PROPOSALS_MAX {
            if let Some(oldest) = self.passed_over.iter().position(|e| e.coordinator() == me) {
                self.passed_over.remove(oldest);
            }
        }
        self.passed_over.push(epoch);
        if self.own_pending == Some(epoch) {
            self.own_pending = None;
        }
        self.actions.push_back(Action::Persist(self.persisted()));
    }

    /// Drops the acceptances `dropped` picks, proposals that will never be committed, with
    /// the generations they carried, and persists that: neither this life nor a later one
    /// reports them or carries them on (an Abandon, a Halt, or their coordinator proposing
    /// again says so).
    fn drop_accepted(&mut self, dropped: impl Fn(&View) -> bool) {
        let epochs: Vec<Epoch> = self
            .accepted_since
            .iter()
            .filter(|v| dropped(v))
            .map(|v| v.epoch)
            .collect();
        if epochs.is_empty() {
            return;
        }
        self.accepted_since.retain(|v| !epochs.contains(&v.epoch));
        self.accepted_configs.retain(|(e, _)| !epochs.contains(e));
        self.actions.push_back(Action::Persist(self.persisted()));
    }

    /// The state to persist.
    fn persisted(&self) -> Persisted {
        if let Some(reconfigure) = &self.reconfigure {
            return reconfigure.persisted.clone();
        }
        Persisted {
            epoch_max: self.promised,
            installed: if self.view.epoch != Epoch::NONE {
                Some(self.view.clone())
            } else {
                self.installed_before.clone()
            },
            accepted: self.accepted_since.clone(),
            config: self.installed_config.clone(),
            accepted_configs: self
                .accepted_configs
                .iter()
                .filter(|(epoch, _)| self.accepted_since.iter().any(|v| v.epoch == *epoch))
                .cloned()
                .collect(),
            detached: self.detached_held(),
            detached_marks: self.packages.marks(),
            sequence_floor: self.sequence_floor,
            passed_over: self
                .passed_over
                .iter()
                .filter(|e| reported_over(**e, self.settings.me, &self.accepted_since))
                .copied()
                .collect(),
            own_pending: self.own_pending,
        }
    }

    /// The detached records changed since they were persisted: persist them again.
    fn persist_marks(&mut self) {
        // Runs with every step: compared without building the named list.
        if self
            .packages
            .detached_sets()
            .ne(self.marks_persisted.iter().copied())
        {
            self.marks_persisted = self.packages.detached_sets().collect();
            self.actions.push_back(Action::Persist(self.persisted()));
        }
    }

    /// The packages this node holds as detached: after it halted with -d, every one it
    /// holds; before it re-attached them, those it still checks.
    fn detached_held(&self) -> Vec<String> {
        if self.leaving.detaches() {
            // Persisted from the start of the detach (with every acceptance, at the
            // latest), so that a daemon that dies on the way still knows them.
            self.packages
                .held(|s| matches!(s, InstanceState::Running | InstanceState::Detached))
        } else {
            self.packages.held(|s| s == InstanceState::Detached)
        }
    }

    /// Raises the promise and persists it before anything is said about it.
    fn promise(&mut self, epoch: Epoch) {
        self.promised = epoch;
        self.actions.push_back(Action::Persist(self.persisted()));
    }

    /// For each member of the installed membership left out of `view`, how long ago this node
    /// last echoed it.
    fn silences(&self, now: Instant, view: &View) -> Vec<(NodeId, Incarnation, Option<Silence>)> {
        let mut silences: Vec<_> = self
            .view
            .members
            .iter()
            .filter(|&m| m != self.settings.me)
            .filter(|&m| !view.has(m, self.view.incarnations[m.index()]))
            .map(|m| {
                let echo_sent = self.peers[m.index()].echo_sent;
                (
                    m,
                    self.view.incarnations[m.index()],
                    echo_sent.map(|(at, term)| Silence {
                        elapsed: now.saturating_since(at),
                        term,
                    }),
                )
            })
            .collect();
        // Lives still awaited from earlier re-formations travel on, so that every member
        // of the new membership (a joining coordinator too) knows them: a wait of `r` left
        // is the silence `bound - r` under the widest term.
        let (bound, term) = self.widest(now);
        for &(node, incarnation, deadline) in &self.fence_waits {
            if !view.has(node, incarnation) {
                let remaining = deadline.saturating_since(now);
                silences.push((
                    node,
                    incarnation,
                    Some(Silence {
                        elapsed: bound.saturating_sub(remaining),
                        term,
                    }),
                ));
            }
        }
        silences
    }

    fn send(&mut self, to: NodeId, message: &Message) {
        let to_incarnation = self.peers[to.index()].incarnation;
        self.send_to_life(to, to_incarnation, message);
    }

    /// Sends `message` to whatever life of `to` on heartbeat network `network` only.
    fn send_on(&mut self, to: NodeId, network: usize, message: Message) {
        self.send_one(to, network, Incarnation(0), message);
    }

    /// Sends `message` to life `to_incarnation` of `to` (0: any) on network `network`.
    fn send_one(
        &mut self,
        to: NodeId,
        network: usize,
        to_incarnation: Incarnation,
        message: Message,
    ) {
        self.actions.push_back(Action::Send {
            to,
            network,
            envelope: Envelope {
                cluster_id: self.settings.cluster_id,
                config_generation: self.settings.config_generation,
                from: self.settings.me,
                from_incarnation: self.incarnation,
                to_incarnation,
                message,
            },
        });
    }

    fn send_to_life(&mut self, to: NodeId, to_incarnation: Incarnation, message: &Message) {
        for network in 0..self.settings.networks {
            self.send_one(to, network, to_incarnation, message.clone());
        }
    }

    fn on_propose(
        &mut self,
        now: Instant,
        from: NodeId,
        (epoch, proposer_installed): (Epoch, Epoch),
        (view, leavers, config, carried_from): (
            View,
            NodeSet,
            Option<Arc<Generation>>,
            Option<Epoch>,
        ),
        proposed: Echo,
    ) {
        self.round_max = self.round_max.max(epoch.round());
        // A coordinator that proposes again has dropped, for good, its earlier proposals
        // that it never installed (what it commits it installs at once, so a proposal above
        // its installed epoch was never committed).
        // Dropped whether or not this proposal is accepted.
        let life = self.peers[from.index()].incarnation;
        self.drop_accepted(|v| {
            v.epoch.coordinator() == from
                && v.epoch < epoch
                && v.epoch > proposer_installed
                && v.has(from, life)
        });
        // The same proposal again (it travels on every network, and may be duplicated on
        // the way): already answered.
        if self.accepted_since.iter().any(|v| v.epoch == epoch) || self.view.epoch == epoch {
            return;
        }
        let highest = self.promised.max(self.view.epoch);
        // Beyond the bound, accept nothing more until a membership is installed: every
        // accepted proposal must be reported, none may be forgotten.
        //
        // Nor a proposal of a coordinator whose installed membership is older than this
        // node's: it can never be committed. Its coordinator cannot commit without this
        // node's acceptance, and gives the proposal up on it (`on_accept`: a member installed
        // a newer membership; had the coordinator installed one since proposing, it gave the
        // proposal up then). Accepted, it would still be kept and reported as what may have
        // been committed, with the generation it carries: a sibling, perhaps, of one in
        // effect elsewhere (made from the same generation by a coordinator cut off before the
        // newer membership formed, and numbered above it by its later epoch), which the next
        // coordinator would then carry on over the one that took effect. Paxos carries on the
        // value of the highest accepted proposal because every accepted proposal could have
        // been chosen; refusing the ones that could not keeps that true. Refused, the
        // coordinator gives it up all the same (`on_reject`), and this node goes on echoing
        // the members it would have left out.
        if epoch <= highest
            || self.accepted_since.len() >= ACCEPTED_PROPOSALS_MAX
            || proposer_installed < self.view.epoch
        {
            self.send(from, &Message::Reject { epoch, highest });
            return;
        }
        let me = self.settings.me;
        // A node done halting for cmhaltnode accepts only the membership without it (as a
        // leaver); any other node only one with it.
        let leaving = self.leaving.node() && self.ready_to_leave();
        let place = if leaving {
            leavers.contains(me) && !view.members.contains(me) && self.view.members.contains(me)
        } else {
            view.has(me, self.incarnation)
        };
        let acceptable = view.epoch == epoch
            && view.members.contains(from)
            && epoch.coordinator() == from
            && place
            && config.as_ref().is_none_or(|c| {
                let current = self.settings.config_generation;
                let fresh = c.number == fresh_generation(current, epoch);
                // A new cmapplyconf must also fit the packages as this node knows them; one
                // carried on may be in effect somewhere already and is taken as it is.
                (c.number == current || self.follows_in_effect(c))
                    && self.check_config(c)
                    && deleted_numbers(&c.cluster)
                        .intersection(view.members)
                        .is_empty()
                    && (!fresh || self.check_apply(&c.cluster, &c.packages).is_ok())
            })
            && view.incarnations.len() == self.settings.nodes
            && self.detachers_recorded(leavers)
            && view.members.iter().filter(|&m| m != me).all(|m| {
                let peer = &self.peers[m.index()];
                peer.incarnation == view.incarnations[m.index()] && self.fresh(peer.last_heard, now)
            });
        if !acceptable {
            return;
        }
        // Another coordinator with a higher epoch: stand down.
        self.abandon_proposal();
        let silences = self.silences(now, &view);
        let term = self.term_now(now, Some(&view));
        self.acceptances.push((epoch, Echo { at: now, term }));
        let accepted_before = self.accepted_since.clone();
        let deadline =
            now + self.settings.timing.propose_timeout * 2 + self.settings.timing.lock_timeout;
        self.accepted_since.push(view.clone());
        let accepted = &self.accepted_since;
        self.acceptances
            .retain(|(e, _)| accepted.iter().any(|v| v.epoch == *e));
        let me = self.settings.me;
        self.passed_over.retain(|e| reported_over(*e, me, accepted));
        // Another coordinator leads: what this node meant to carry on is its now (this
        // acceptance reports it).
        self.adopt = None;
        // A generation carried on from an acceptance older than a membership this node
        // knows committed never takes effect with this proposal: the acceptance reports
        // that membership, and the coordinator gives the proposal up on it
        // (`decide_if_complete`). Kept, it would outlive a lost Abandon, and the next
        // coordinator would carry it on from this acceptance, later than that membership.
        // A voter that knows of no such membership cannot tell and keeps it; the next
        // coordinator carries it on from there unless a voter of its group gave it up, or
        // is the coordinator that dropped the proposal (in any life: `passed_over` is
        // persisted). With the Abandon lost and the coordinator gone, a group of such voters
        // alone may still carry it on (a hole this narrows, and does not close).
        let committed = self.committed();
        let passed_over = carried_from.is_some_and(|e| e < committed);
        let config_carried = config.is_some();
        if let Some(config) = config.filter(|_| !passed_over) {
            // Persisted with the promise, before the acceptance leaves.
            self.accepted_configs.push((epoch, config));
        }
        if passed_over && config_carried {
            self.passed_over.push(epoch);
        }
        self.accepted = Some((view, deadline));
        // Persisted (with the proposal) before the acceptance leaves.
        self.promise(epoch);
        if self.phase == Phase::Running {
            self.set_phase(Phase::Reforming);
        }
        let installed = self.view.epoch;
        let timing = self.settings.timing;
        self.peers[from.index()].note_echo(&timing, now, proposed.term);
        self.send(
            from,
            &Message::Accept {
                epoch,
                installed,
                silences,
                echo: proposed,
                sent_at: now,
                term,
                configs: self
                    .accepted_configs
                    .iter()
                    .filter(|(e, _)| accepted_before.iter().any(|v| v.epoch == *e))
                    .cloned()
                    .collect(),
                passed_over: self
                    .passed_over
                    .iter()
                    .filter(|e| reported_over(**e, self.settings.me, &accepted_before))
                    .copied()
                    .collect(),
                accepted: accepted_before,
                known: self.packages.holds_table(),
                committed,
            },
        );
    }

    fn on_accept(
        &mut self,
        now: Instant,
        from: NodeId,
        epoch: Epoch,
        (installed, committed): (Epoch, Epoch),
        silences: Vec<(NodeId, Incarnation, Option<Silence>)>,
        (known, echo, sent, accepted, (configs, passed_over)): (
            bool,
            Echo,
            Echo,
            Vec<View>,
            Reported,
        ),
    ) {
        let own = self.own_echo(echo);
        // A generation a member accepted with a proposal before the latest membership this
        // node knows committed (installed in this life or an earlier one) was not in effect
        // then, or that membership carries it: carried on now, it would revive a change the
        // cluster formed without (its deletions lifting the quorum rule off that membership:
        // seed 2244906).
        let known_committed = self.committed();
        let Some(proposal) = &mut self.proposal else {
            return;
        };
        // Only proposals after this node's installed membership may have been committed
        // without it knowing (as for the bases of the quorum rule).
        let installed_epoch = self.view.epoch;
        if proposal.view.epoch == epoch && proposal.lock.is_none() {
            proposal.basis_configs.extend(
                configs
                    .into_iter()
                    .filter(|(e, _)| *e > known_committed && *e != epoch),
            );
        }
        if proposal.view.epoch != epoch || proposal.lock.is_some() {
            return;
        }
        if installed > self.view.epoch {
            // A member knows a newer membership: this node's view is stale.
            self.abandon_proposal();
            return;
        }
        let voter = proposal.view.members.contains(from) || proposal.leavers.contains(from);
        if !voter || proposal.accepted.contains(from) {
            return;
        }
        proposal.accepted.insert(from);
        // Only proposals before this one that the voter reports accepted, or coordinated.
        proposal.given_up.extend(
            passed_over
                .into_iter()
                .filter(|e| *e < epoch && reported_over(*e, from, &accepted)),
        );
        proposal.installed.push((from, installed));
        proposal.running_before |= installed != Epoch::NONE;
        if known {
            proposal.known.insert(from);
        }
        // Believed only as a membership the member reports otherwise too (installed, or among
        // its acceptances, where an earlier life's last membership stays): a lying or damaged
        // acceptance must not lift the quorum rule off every basis.
        let credible = committed < epoch
            && (committed <= installed_epoch
                || committed == installed
                || accepted.iter().any(|v| v.epoch == committed));
        if credible {
            proposal.committed = proposal.committed.max(committed);
        }
        if let Some(echo) = own {
            proposal.echoes.push((from, echo));
        }
        for view in accepted {
            if view.epoch > self.view.epoch && view.epoch != epoch {
                proposal.bases.push(view);
            }
        }
        proposal.sent.push((from, sent));
        // Only members of the previous membership vouch for its left-out nodes.
        if self.view.has(from, self.peers[from.index()].incarnation) {
            proposal.silences.extend(silences);
        }
        self.decide_if_complete(now);
    }

    fn on_reject(&mut self, now: Instant, epoch: Epoch, highest: Epoch) {
        self.round_max = self.round_max.max(highest.round());
        if self
            .proposal
            .as_ref()
            .is_some_and(|p| p.view.epoch == epoch && p.lock.is_none())
        {
            self.abandon_proposal();
            let jitter = self.rng.next_u64() % 1000;
            self.backoff_until = now + self.settings.timing.settle * (jitter as u32) / 1000;
        }
    }

    fn on_commit(
        &mut self,
        now: Instant,
        from: NodeId,
        epoch: Epoch,
        fence_waits: FenceWaits<'_>,
        (echoes, locks, leavers, forming): (Vec<(NodeId, Echo)>, Vec<Epoch>, NodeSet, bool),
    ) {
        let me = self.settings.me;
        // Only for the installs below (a commit's notices are its coordinator's).
        self.forming = forming;
        let echo: Vec<(NodeId, Echo)> = echoes
            .iter()
            .filter(|(node, _)| *node == me)
            .filter_map(|(_, echo)| Some((from, self.own_echo(*echo)?)))
            .collect();
        let matches = self
            .accepted
            .as_ref()
            .is_some_and(|(view, _)| view.epoch == epoch && epoch.coordinator() == from);
        if matches {
            if let Some((view, _)) = self.accepted.take() {
                if view.has(me, self.incarnation) {
                    self.install(now, view, (Some(fence_waits), leavers), locks, &echo);
                } else if leavers.contains(me) {
                    // This node's cmhaltnode is done.
                    self.leave_done();
                }
            }
        } else if epoch > self.view.epoch && epoch.coordinator() == from {
            // The commit of a proposal accepted before a later one (which this node now
            // awaits), or arriving after this node installed an earlier committed one: it
            // is committed, so it is installed all the same.
            let accepted = self
                .accepted_since
                .iter()
                .position(|v| v.epoch == epoch && v.has(me, self.incarnation));
            if let Some(index) = accepted {
                let view = self.accepted_since.remove(index);
                self.install(now, view, (Some(fence_waits), leavers), locks, &echo);
            }
        } else if forming && epoch == self.view.epoch && epoch.coordinator() == from {
            // Installed already, learnt from a heartbeat that overtook the commit.
            self.packages.on_formed();
        }
        self.forming = false;
    }

    /// With every acceptance in, applies the quorum rule. The previous membership is the
    /// installed one, and also every proposal a member accepted after it: such a proposal
    /// may have been committed by its coordinator without this node knowing, so the new
    /// membership must hold quorum against it as well (as a view change builds on the
    /// latest view that may have been decided). Each basis the group holds exactly half of
    /// needs its own lock. Bases older than a membership a voter knows committed are behind
    /// it and do not count; and a running cluster re-forms only around a member whose
    /// package table stands.
    fn decide_if_complete(&mut self, now: Instant) {
        let Some(proposal) = &self.proposal else {
            return;
        };
        // Leavers vote too: they accepted the membership without them and join no other.
        let voters = proposal.view.members.union(proposal.leavers);
        if proposal.accepted != voters || proposal.lock.is_some() {
            return;
        }
        // A generation accepted with a proposal older than the newest membership a voter
        // knows committed was not in effect when that one was committed, or it carries it
        // (so the member knows it): carried on, it would revive a change the cluster ran on
        // without. (Seed 3250065: a cmapplyconf deleting n5, accepted in a half that lost the
        // lock, was carried on by a cmruncl after the cluster had run with n5 alone; its
        // deletion lifted the quorum rule off that membership.) Given up for good, here and
        // in what this node carries. The voters that knew that membership kept none with
        // this acceptance (`on_propose`); the others keep theirs until this node's Abandon
        // or next proposal reaches them, or a membership after it is installed.
        //
        // So is one accepted with a proposal whose generation a voter (or this node) gave
        // up, knowing the proposal never commits with it (`passed_over`: it knew a
        // membership committed after the acceptance the generation was carried on from, or
        // a voter of its own proposal told it so). Its other voters may not know, and the
        // Abandon of its coordinator may have been lost with it.
        let floor = proposal.committed;
        let given_up = proposal.given_up.clone();
        let dead = |e: Epoch| e < floor || given_up.contains(&e);
        if proposal.carried_from.is_some_and(dead) {
            self.accepted_configs.retain(|(e, _)| !dead(*e));
            // What a voter gave up, this node gave up for the same reason: told on.
            for &epoch in &given_up {
                let kept = self.accepted_since.iter().any(|v| v.epoch == epoch);
                if kept && !self.passed_over.contains(&epoch) {
                    self.passed_over.push(epoch);
                }
            }
            if self.adopt.as_ref().is_some_and(|(e, _)| dead(*e)) {
                self.adopt = None;
            }
            self.actions.push_back(Action::Persist(self.persisted()));
            self.abandon_proposal();
            return;
        }
        // A member accepted a generation with a proposal that may have been committed:
        // it may be in effect somewhere, so the membership must carry it (as Paxos carries
        // on the value of the highest accepted proposal). Propose again with it.
        let newest = proposal
            .basis_configs
            .iter()
            .filter(|(e, c)| !dead(*e) && self.follows_in_effect(c))
            .max_by_key(|(e, c)| (c.number, *e))
            .cloned();
        if let Some(newest) = newest {
            if proposal.config != Some(newest.1.number) {
                self.adopt = Some(newest);
                self.abandon_proposal();
                return;
            }
        }
        // A running cluster re-forms only around a member that knows what runs where: a
        // group of nodes that joined and never heard the table from one that held it would
        // start what runs detached on a halted node, or what a lost member was ordered to run
        // under a list since changed. Leavers do not count: they halt.
        if proposal.running_before
            && proposal
                .known
                .intersection(proposal.view.members)
                .is_empty()
        {
            self.halt_group(FenceReason::PackagesUnknown);
            return;
        }
        let mut bases: Vec<View> = Vec::new();
        if self.view.epoch != Epoch::NONE {
            bases.push(self.view.clone());
        }
        for basis in &proposal.bases {
            if !bases.iter().any(|b| b.epoch == basis.epoch) {
                bases.push(basis.clone());
            }
        }
        // Committed memberships form one line, each held to quorum against the one before:
        // one older than a membership a voter knows committed (installed, in this life or an
        // earlier one) is behind it, and whoever still runs by it lost to that line. A
        // starting node keeps what an earlier life installed as a basis; racing the lock
        // instance of one long since won by another group would be lost for ever.
        bases.retain(|b| b.epoch >= proposal.committed);
        if self.halt_excluded_voters(&bases) {
            return;
        }
        let Some(proposal) = &self.proposal else {
            return;
        };
        // A cluster started with every configured node (its members share the generation
        // in effect, none ran before): the nodes that generation deletes are not counted in
        // the memberships before it. A node excluded and stopped keeps its last membership;
        // with the others since deleted and a lock, the group would race that membership's
        // instance, decided long ago for a group that a member here was part of, and lose it
        // again and again. A deleted node that was never told runs by its own bases, which
        // the memberships after it left behind.
        //
        // A generation this membership carries on (accepted with a proposal that may have
        // been committed) may also never have been: its deleted node may have joined again
        // since, in a membership of kept nodes that committed (seed 5910633: the deletion
        // rode on a proposal that lost the lock race, while the winners took the node back
        // in and ran on with it). Every kept node votes here, so a basis with a kept member
        // is one this group's own members knew, and the deleted node counts in it: the
        // group races its lock if the node makes exactly half. Only a basis of deleted
        // nodes alone leaves them out (`quorum_counts`): a kept node's acceptance of such
        // a proposal (as a leaver) stays on record, maybe for ever, and the group would lose
        // quorum against it at every start (seed 1214424: the deleted node's proposal of
        // itself alone, which had lost the lock race). That is a liveness choice, not a
        // proof: such a membership may have been committed, with a kept node leaving it
        // (cmhaltnode) after the winners of the lock race had taken the node back in, and
        // the group does not race its lock then. A node the carried generation adds has
        // never run: it need not vote.
        let carried = proposal.config.and_then(|number| {
            self.accepted_configs
                .iter()
                .find(|(e, c)| *e == proposal.view.epoch && c.number == number)
        });
        debug_assert!(
            proposal.config.is_none() || carried.is_some(),
            "the generation a proposal carries is kept with its epoch"
        );
        let in_effect = deleted_numbers(&self.settings.config);
        let carried = carried.map_or(NodeSet::EMPTY, |(_, c)| deleted_numbers(&c.cluster));
        let whole = !proposal.running_before
            && self
                .settings
                .configured()
                .difference(carried)
                .difference(voters)
                .is_empty();
        let mut instances = Vec::new();
        for basis in bases {
            // Serviceguard counts nodes: a node of the basis that is in the group in a later
            // life counts too (its earlier life is over, it cannot be in a rival group).
            let (previous, survivors) =
                quorum_counts(basis.members, voters, whole.then_some((in_effect, carried)));
            if previous == 0 || 2 * survivors > previous || self.settings.sabotage.minority_quorum {
                continue;
            }
            if 2 * survivors == previous && self.settings.tiebreaker != Tiebreaker::None {
                instances.push(basis.epoch);
            } else {
                self.halt_group(FenceReason::QuorumLost);
                return;
            }
        }
        // Lowest instance first: racing a lower one after a higher one would find this
        // node's own block already on the higher instance.
        instances.sort();
        instances.dedup();
        if instances.is_empty() {
            self.commit(now);
        } else {
            let deadline = now + self.settings.timing.lock_timeout;
            self.start_lock_race(now, instances, deadline);
        }
    }

    /// A proposal a voter accepted that may have been committed (one of `bases`, after the
    /// membership installed here) and that leaves out a voter's life which had installed an
    /// earlier membership excluded that life: once committed, its members take over what
    /// that life ran when its lease is over, so it must be gone by then, and no group may
    /// hold it, whatever quorum it has. (Seed 2807771: {n1, n4} was committed leaving n2
    /// out; n2 proposed {n2, n4}, which n4 had accepted after {n1, n4}, won the lock of
    /// {n1, n4}'s instance for the half it held of it, and ran on while n1 took its packages
    /// over.) Such voters are told to halt, this node too if it is one, and the proposal is
    /// dropped: the others form again without them. Whether there was one.
    fn halt_excluded_voters(&mut self, bases: &[View]) -> bool {
        let me = self.settings.me;
        let Some(proposal) = &self.proposal else {
            return false;
        };
        let installed_view = self.view.epoch;
        // The life proposed (this node's own among them); none for a node not proposed, or
        // a number a lying acceptance made up.
        let life = |node: NodeId| {
            proposal
                .view
                .incarnations
                .get(node.index())
                .copied()
                .unwrap_or(Incarnation(0))
        };
        let reported = |node: NodeId| {
            proposal
                .installed
                .iter()
                .find(|(n, _)| *n == node)
                .map(|(_, installed)| *installed)
        };
        // Never committed: its coordinator, a voter here in the same life, had not installed
        // it (a coordinator installs what it commits at once), and gave it up for good when
        // it took this proposal.
        let never_committed = |b: &View| {
            let coordinator = b.epoch.coordinator();
            b.has(coordinator, life(coordinator))
                && reported(coordinator).is_some_and(|installed| installed < b.epoch)
        };
        let excluded: NodeSet = proposal
            .installed
            .iter()
            .filter(|(node, installed)| {
                *installed != Epoch::NONE
                    && proposal.view.members.contains(*node)
                    && bases.iter().any(|b| {
                        b.epoch > installed_view
                            && b.epoch > *installed
                            && !b.has(*node, life(*node))
                            && !never_committed(b)
                    })
            })
            .map(|(node, _)| *node)
            .collect();
        if excluded.is_empty() {
            return false;
        }
        self.abandon_proposal_halting(excluded);
        if excluded.contains(me) {
            self.fence(FenceReason::QuorumLost);
        }
        true
    }

    /// Races for the lock of the first of `instances`, then of the others, all within one
    /// lock timeout from `deadline`.
    fn start_lock_race(&mut self, now: Instant, mut instances: Vec<Epoch>, deadline: Instant) {
        if instances.is_empty() {
            self.commit(now);
            return;
        }
        let instance = instances.remove(0);
        let Some(proposal) = &mut self.proposal else {
            return;
        };
        let group = proposal.view.members;
        let kind = match self.settings.tiebreaker {
            Tiebreaker::LockLun => {
                match Proposer::new(
                    self.settings.cluster_id,
                    self.settings.me.0 as u8,
                    self.settings.nodes as u8,
                    instance.0,
                    u64::from(group.0),
                ) {
                    Ok(proposer) => {
                        self.disk_races += 1;
                        LockKind::Disk {
                            proposer: Box::new(proposer),
                            retry_at: None,
                            race: self.disk_races,
                        }
                    }
                    Err(error) => {
                        self.lock_lost(LockLoss::CannotRace(format!("{error:?}")));
                        return;
                    }
                }
            }
            Tiebreaker::QuorumServer => {
                let id = self.next_request;
                self.next_request += 1;
                self.actions
                    .push_back(Action::QuorumServer(QuorumServerRequest {
                        id,
                        kind: QuorumServerAsk::Acquire { instance, group },
                        timeout: self.settings.timing.lock_timeout,
                    }));
                LockKind::QuorumServer { id }
            }
            Tiebreaker::None => return,
        };
        proposal.lock = Some(LockRace {
            instance,
            deadline,
            kind,
            remaining: instances,
        });
        self.drive_lock(now);
    }

    /// Moves a lock race on: issues disk requests, retries after a conflict, decides.
    fn drive_lock(&mut self, now: Instant) {
        let Some(race) = self.proposal.as_mut().and_then(|p| p.lock.as_mut()) else {
            return;
        };
        if now >= race.deadline {
            let disk_requests_pending = self.disk_in_flight.len();
            self.lock_lost(LockLoss::TimedOut {
                after: self.settings.timing.lock_timeout,
                disk_requests_pending,
            });
            return;
        }
        let group = u64::from(self.proposal.as_ref().map_or(0, |p| p.view.members.0));
        let Some(race) = self.proposal.as_mut().and_then(|p| p.lock.as_mut()) else {
            return;
        };
        let LockKind::Disk {
            proposer,
            retry_at,
            race,
        } = &mut race.kind
        else {
            return;
        };
        let race = *race;
        // Disk Paxos forbids a new attempt on this node's block while writes of an earlier
        // one may still land: wait for them (the lock deadline still runs).
        if self.disk_in_flight.iter().any(|id| id >> 32 != race) {
            return;
        }
        if let Some(at) = *retry_at {
            if now < at {
                return;
            }
            *retry_at = None;
            proposer.retry();
        }
        let mut requests = Vec::new();
        while let Some(request) = proposer.poll_request() {
            requests.push(request);
        }
        let outcome = proposer.outcome().cloned();
        for request in requests {
            let request = with_race(request, race);
            self.disk_in_flight.insert(request.id().0);
            self.actions.push_back(Action::Disk(request));
        }
        match outcome {
            None => {}
            Some(Outcome::Decided(value)) if value == group => self.lock_won(now),
            Some(Outcome::Conflict { .. }) => {
                let jitter = u32::try_from(self.rng.next_u64() % 1000).unwrap_or(0);
                let delay = self.settings.timing.heartbeat_interval / 4 * jitter / 1000;
                if let Some(LockKind::Disk { retry_at, .. }) = self
                    .proposal
                    .as_mut()
                    .and_then(|p| p.lock.as_mut())
                    .map(|r| &mut r.kind)
                {
                    *retry_at = Some(now + delay);
                }
            }
            Some(Outcome::Decided(_)) => self.lock_lost(LockLoss::HeldByOther),
            Some(Outcome::Failed(why)) => self.lock_lost(LockLoss::DiskFailed(why)),
            Some(Outcome::Superseded { .. }) => self.lock_lost(LockLoss::Superseded),
        }
    }

    /// One lock won: the next instance, or the commit.
    fn lock_won(&mut self, now: Instant) {
        let Some(proposal) = self.proposal.as_mut() else {
            return;
        };
        let Some(race) = proposal.lock.take() else {
            return;
        };
        proposal.locks_won.push(race.instance);
        self.start_lock_race(now, race.remaining, race.deadline);
    }

    fn lock_lost(&mut self, why: LockLoss) {
        let instance = self
            .proposal
            .as_ref()
            .and_then(|p| p.lock.as_ref())
            .map_or(self.view.epoch, |race| race.instance);
        self.event(Event::LockNotWon { instance, why });
        self.event(Event::QuorumLost {
            reason: FenceReason::LockLost,
        });
        self.halt_members(FenceReason::QuorumLost);
        self.fence(FenceReason::LockLost);
    }

    fn halt_group(&mut self, reason: FenceReason) {
        self.halt_members(reason);
        self.fence(reason);
    }

    /// Drops this node's proposal and tells its other members to halt, for `reason`.
    fn halt_members(&mut self, reason: FenceReason) {
        self.pass_over_own();
        if let Some(proposal) = self.proposal.take() {
            let epoch = proposal.view.epoch;
            for member in proposal.view.members.iter() {
                if member != self.settings.me {
                    self.send(member, &Message::Halt { epoch, reason });
                }
            }
        }
    }

    fn commit(&mut self, now: Instant) {
        let Some(proposal) = self.proposal.take() else {
            return;
        };
        let locks = proposal.locks_won.clone();
        let timing = self.settings.timing;
        let leavers = proposal.leavers;
        // Each wait's end relative to now, in nanoseconds (negative: over already); the
        // latest end over the members' reports counts.
        let mut ends: Vec<(NodeId, Incarnation, i128)> = Vec::new();
        for (node, incarnation, silence) in &proposal.silences {
            // A leaver holds nothing and halts: no wait (an earlier life of it still waits).
            if leavers.contains(*node) && self.view.has(*node, *incarnation) {
                continue;
            }
            let mut end = silence.map_or(0, |s| {
                let bound = timing.fence_bound(s.term.bounded());
                bound.as_nanos() as i128 - s.elapsed.as_nanos() as i128
            });
            if self.settings.sabotage.skip_fence_wait {
                end = 0;
            }
            match ends
                .iter_mut()
                .find(|(n, i, _)| n == node && i == incarnation)
            {
                Some(entry) => entry.2 = entry.2.max(end),
                None => ends.push((*node, *incarnation, end)),
            }
        }
        // A member in a new life (this node too, started afresh) vouches for nothing its
        // earlier life echoed: that life may have completed a left-out node's lease. It was
        // gone when the new one was first heard (or started), so each wait runs from then at
        // the latest, with the long grace.
        let earlier_lives: Vec<Instant> = proposal
            .view
            .members
            .iter()
            .filter_map(|m| {
                if m == self.settings.me {
                    (self.view.epoch == Epoch::NONE).then_some(self.started_at)
                } else if self.view.members.contains(m)
                    && !self.view.has(m, self.peers[m.index()].incarnation)
                {
                    Some(self.peers[m.index()].life_heard.unwrap_or(self.started_at))
                } else {
                    None
                }
            })
            .collect();
        if let Some(earliest) = earlier_lives.into_iter().min() {
            let (bound, _) = self.widest(now);
            let end = bound.as_nanos() as i128 - now.saturating_since(earliest).as_nanos() as i128;
            for entry in &mut ends {
                entry.2 = entry.2.max(end);
            }
        }
        let nanos = |n: i128| Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX));
        let fence_waits: Vec<FenceWait> = ends
            .iter()
            .map(|&(node, incarnation, end)| (node, incarnation, nanos(end.max(0))))
            .collect();
        let overdue: Vec<FenceWait> = ends
            .iter()
            .filter(|(_, _, end)| *end < 0)
            .map(|&(node, incarnation, end)| (node, incarnation, nanos(-end)))
            .collect();
        let epoch = proposal.view.epoch;
        if self.own_pending == Some(epoch) {
            // No longer pending, on record before any Commit leaves.
            self.own_pending = None;
            self.actions.push_back(Action::Persist(self.persisted()));
        }
        for member in proposal.view.members.union(leavers).iter() {
            if member != self.settings.me {
                self.send(
                    member,
                    &Message::Commit {
                        epoch,
                        fence_waits: fence_waits.clone(),
                        overdue: overdue.clone(),
                        echoes: proposal.sent.clone(),
                        locks: locks.clone(),
                        leavers,
                        forming: !proposal.running_before,
                    },
                );
                // The commit echoes the member's acceptance, with its term.
                if let Some((_, echo)) = proposal.sent.iter().find(|(n, _)| *n == member) {
                    let timing = self.settings.timing;
                    self.peers[member.index()].note_echo(&timing, now, echo.term);
                }
            }
        }
        self.forming = !proposal.running_before;
        self.install(
            now,
            proposal.view,
            (Some((&fence_waits, &overdue)), leavers),
            locks,
            &proposal.echoes,
        );
        self.forming = false;
    }

    /// Installs a membership. `fence_waits` is `None` when the commit was lost and the
    /// membership is learnt from a heartbeat: every left-out node then waits the full bound.
    fn install(
        &mut self,
        now: Instant,
        view: View,
        (fence_waits, leavers): (Option<FenceWaits<'_>>, NodeSet),
        locks: Vec<Epoch>,
        echoes: &[(NodeId, Echo)],
    ) {
        let committed = fence_waits.is_some();
        let before = std::mem::replace(&mut self.view, view);
        // Nodes added online after this view was proposed (taken from a member since): the
        // view names them with no life, as every view held does.
        if self.view.incarnations.len() < self.settings.nodes {
            self.view
                .incarnations
                .resize(self.settings.nodes, Incarnation(0));
        }
        self.installed_at = now;
        let installed = self.view.epoch;
        // A configuration generation carried by this membership takes effect with it.
        let config = self
            .accepted_configs
            .iter()
            .find(|(epoch, _)| *epoch == installed)
            .map(|(_, config)| config.clone());
        if let Some(config) = config {
            if config.number != self.settings.config_generation {
                self.apply_generation(now, &config);
            }
        }
        self.accepted_configs
            .retain(|(epoch, _)| *epoch > installed);
        self.accepted_since.retain(|v| v.epoch > installed);
        self.passed_over.retain(|epoch| *epoch > installed);
        self.acceptances.retain(|(epoch, _)| *epoch > installed);
        // What to carry on is decided afresh from the bases of the next proposal.
        self.adopt = None;
        self.promised = self.promised.max(self.view.epoch);
        self.actions.push_back(Action::Persist(self.persisted()));
        let failed = self.await_fences(now, &before, fence_waits, leavers);
        // A life that is a member again (it had missed a commit and never learnt it was left
        // out) keeps what it runs: nothing of it is taken over.
        let view = &self.view;
        let back: Vec<NodeId> = self
            .fence_waits
            .iter()
            .filter(|(node, incarnation, _)| view.has(*node, *incarnation))
            .map(|(node, _, _)| *node)
            .collect();
        self.fence_waits
            .retain(|(node, incarnation, _)| !view.has(*node, *incarnation));
        for node in back {
            // Back in the same life: what it runs is reported again, nothing waits for it
            // (unless another of its lives is still awaited).
            if !self.fence_waits.iter().any(|(n, _, _)| *n == node) {
                self.packages.on_back(node);
            }
        }
        // Members that were ready to leave with -d when last heard: what they detached
        // stays detached even if this node takes them as failed (it missed the commit that
        // took them out, or an earlier life of theirs is still awaited). So does what a
        // failed life this node was never a member with detached: another member awaits it
        // and this node cannot tell whether the commit that took it out let it leave.
        let detached_leavers: NodeSet = (0..self.settings.nodes)
            .map(|n| NodeId(n as u32))
            .filter(|&node| {
                node != self.settings.me
                    && (self.peers[node.index()]
                        .heartbeat
                        .as_ref()
                        .is_some_and(|h| h.leaving.detaches() && heartbeat_ready(h))
                        || (failed.contains(node) && !before.members.contains(node)))
            })
            .collect();
        self.packages.on_membership(
            self.view.epoch.0,
            self.view.members,
            failed,
            detached_leavers,
        );
        if self.forming {
            self.packages.on_formed();
        }
        // Running in the cluster again: what this node left detached is re-attached.
        self.packages.reattach();
        for node in self.view.members.iter() {
            if !before.has(node, self.view.incarnations[node.index()]) && node != self.settings.me {
                self.event(Event::NodeJoined { node });
            }
        }
        for peer in &mut self.peers {
            peer.echo = None;
        }
        self.lease_floor = echoes
            .iter()
            .map(|(_, echo)| echo.at)
            .max()
            .unwrap_or(Instant(0));
        for &(node, echo) in echoes {
            if let Some(peer) = self.peers.get_mut(node.index()) {
                if peer.echo.is_none_or(|e| echo.at > e.at) {
                    peer.echo = Some(echo);
                }
            }
        }
        self.candidate = None;
        if self
            .proposal
            .as_ref()
            .is_some_and(|p| p.view.epoch != installed)
        {
            self.abandon_proposal();
        }
        self.proposal = None;
        self.accepted = None;
        let same_lives = before.members == self.view.members
            && self
                .view
                .members
                .iter()
                .all(|node| before.has(node, self.view.incarnations[node.index()]));
        self.event(Event::MembershipChanged {
            before_epoch: before.epoch,
            before: before.members,
            after_epoch: self.view.epoch,
            after: self.view.members,
            same_lives,
            locks,
            left: leavers.intersection(before.members),
            generation_number: self.settings.config_generation,
        });
        self.set_phase(Phase::Running);
        self.exchange_shared();
        self.check_halt_risk();
        if self.safety_deadline.is_none() {
            let timing = self.settings.timing;
            // Without a full lease yet, the commit's echo (of this node's acceptance) still
            // bounds how long the group may count this node alive: the coordinator sent it,
            // and its silence report covers it, so the first heartbeats have that long.
            let echoed = echoes
                .iter()
                .max_by_key(|(_, echo)| echo.at)
                .map_or((now, timing.short_grace, now), |(_, echo)| {
                    (echo.at + echo.term.lease, echo.term.grace, echo.at)
                });
            let (until, grace, _) = self.quorate_until().unwrap_or(echoed);
            // Never beyond that echo's lease and grace, even when the commit came late (this
            // node stalled): a deadline already passed resets the node at once, as the group
            // counts it gone by then.
            let deadline = until.min(now + timing.lease) + grace;
            self.actions.push_back(Action::ArmSafetyTimer { deadline });
            self.safety_deadline = Some(deadline);
            self.last_pet = now;
        }
        if self.settings.tiebreaker == Tiebreaker::QuorumServer
            && self.quorum_server.next_ping.is_none()
        {
            self.quorum_server.next_ping = Some(now);
        }
        // The package coordinator places nothing until every member has reported in the new
        // membership, which would take up to a heartbeat interval after the takeover is
        // allowed: a member that had the commit reports to it at once. Only when the
        // coordinator is the one that committed (it installed before sending the commit): to
        // any other member the report could arrive before the commit does, and a newer
        // epoch in a heartbeat before the commit reads as a lost commit.
        let coordinator = self.view.coordinator();
        if committed
            && coordinator == Some(installed.coordinator())
            && coordinator != Some(self.settings.me)
        {
            self.send_heartbeats_to(now, coordinator);
        }
    }

    /// Records the lives the new membership must see fenced before taking over from them:
    /// the commit's list (the left-out members, and lives still awaited by any member), each
    /// left-out member of this node's previous membership, and, when the commit was lost,
    /// every node outside the membership for the full bound. Returns the nodes awaited.
    fn await_fences(
        &mut self,
        now: Instant,
        before: &View,
        fence_waits: Option<FenceWaits<'_>>,
        leavers: NodeSet,
    ) -> NodeSet {
        let (bound, _) = self.widest(now);
        let me = self.settings.me;
        let overdue: &[FenceWait] = fence_waits.map_or(&[], |(_, overdue)| overdue);
        let mut waits: Vec<(NodeId, Incarnation, Duration)> = match fence_waits {
            Some((waits, _)) => waits.to_vec(),
            None => {
                // Without the commit this node does not know which lives the group still
                // awaits: as package coordinator it places nothing for a full bound.
                self.packages.hold(now + bound);
                Vec::new()
            }
        };
        for node in before.members.iter() {
            let incarnation = before.incarnations[node.index()];
            if node == me || self.view.has(node, incarnation) {
                continue;
            }
            if leavers.contains(node) {
                // Its last heartbeat says whether it left its packages running.
                let detached = self.peers[node.index()]
                    .heartbeat
                    .as_ref()
                    .is_some_and(|h| h.leaving.detaches());
                self.event(Event::NodeHalted {
                    node,
                    incarnation,
                    detached,
                });
                continue;
            }
            self.event(Event::NodeFailed { node, incarnation });
            if !waits
                .iter()
                .any(|(n, i, _)| *n == node && *i == incarnation)
            {
                // The coordinator did not know this life (this node missed a commit).
                waits.push((node, incarnation, bound));
            }
        }
        let mut failed = NodeSet::EMPTY;
        for (node, incarnation, wait) in waits {
            if node == me || self.view.has(node, incarnation) {
                continue;
            }
            failed.insert(node);
            // A wait over before the commit ended that long before it (at the latest, when
            // it arrived here).
            let over = overdue
                .iter()
                .find(|(n, i, _)| *n == node && *i == incarnation)
                .map(|(_, _, ago)| *ago)
                .filter(|_| wait.is_zero());
            let deadline = match over {
                Some(ago) => Instant(
                    now.0
                        .saturating_sub(u64::try_from(ago.as_nanos()).unwrap_or(u64::MAX)),
                ),
                None => now + wait,
            };
            match self
                .fence_waits
                .iter_mut()
                .find(|(n, i, _)| *n == node && *i == incarnation)
            {
                Some(entry) => entry.2 = entry.2.max(deadline),
                None => self.fence_waits.push((node, incarnation, deadline)),
            }
        }
        failed
    }

    fn poll_quorum_server(&mut self, now: Instant) {
        if let Some((_, deadline)) = self.quorum_server.outstanding {
            if now >= deadline {
                // No answer: unreachable now, whatever it answered before.
                self.quorum_server.outstanding = None;
                self.quorum_server.refusal = None;
                self.set_quorum_server_reachable(false);
            }
        }
        let due = self.quorum_server.next_ping.is_some_and(|at| now >= at);
        if !due || self.quorum_server.outstanding.is_some() {
            return;
        }
        let timing = self.settings.timing;
        let id = self.next_request;
        self.next_request += 1;
        self.quorum_server.outstanding = Some((id, now + timing.lock_timeout));
        self.quorum_server.next_ping = Some(now + timing.quorum_server_polling_interval);
        self.actions
            .push_back(Action::QuorumServer(QuorumServerRequest {
                id,
                kind: QuorumServerAsk::Ping,
                timeout: self.settings.timing.lock_timeout,
            }));
    }

    /// Reads one lock LUN block every lock check interval while running, every node's in
    /// turn; a read that fails, or does not answer within the lock timeout, makes the LUN
    /// unhealthy, and so does a block no race can succeed on ([`LockCheck::unusable`]).
    /// (Health reads write nothing, so they never hold up a lock race.)
    fn check_lock_lun(&mut self, now: Instant) {
        let timing = self.settings.timing;
        if self.settings.tiebreaker != Tiebreaker::LockLun || self.phase != Phase::Running {
            return;
        }
        if let Some((_, deadline)) = self.lock_check.outstanding {
            if now >= deadline {
                self.lock_check.outstanding = None;
                self.set_lock_lun(
                    Some("a read did not answer within the lock timeout".into()),
                    true,
                );
            } else {
                return;
            }
        }
        let next = *self.lock_check.next.get_or_insert(now);
        if now < next {
            return;
        }
        self.lock_check.next = Some(now + timing.lock_check_interval);
        // Every node's block in turn: a block of another cluster anywhere fails every race.
        let blocks = self.settings.nodes.max(1) as u64;
        let block = (self.lock_check.reads % blocks) as u8;
        self.lock_check.reads += 1;
        let id = (HEALTH_READ << 32) | (self.lock_check.reads & 0xffff_ffff);
        let stall = timing.lock_timeout.max(Duration::from_secs(1));
        self.lock_check.outstanding = Some((id, now + stall));
        self.lock_check.block = block;
        self.actions.push_back(Action::Disk(DiskRequest::Read {
            id: IoId(id),
            block,
        }));
    }

    /// Why the lock LUN cannot serve a race though it answers (a block found unusable by
    /// the health reads; this node's own first), if so.
    fn lock_unusable(&self) -> Option<String> {
        let own = self.settings.me.index() as u8;
        self.lock_check
            .unusable
            .get(&own)
            .or_else(|| self.lock_check.unusable.values().next())
            .cloned()
    }

    /// The lock LUN is healthy (`why` None), or not and why. `check`: told by the periodic
    /// check, whose new reason for staying down is told too (a race's I/O, whose failures
    /// name each block, changes only the health).
    fn set_lock_lun(&mut self, why: Option<String>, check: bool) {
        let health = if why.is_none() {
            Health::Up
        } else {
            Health::Down
        };
        // Told when it changes, and when it stays down for another reason.
        if self.lock_lun != health || (check && self.lock_check.told != why) {
            let before = std::mem::replace(&mut self.lock_lun, health);
            if health == Health::Down && before != Health::Down {
                self.notice(Notice::LockLunUnhealthy {
                    before,
                    after: health,
                });
            }
            self.lock_check.told.clone_from(&why);
            self.actions.push_back(Action::Event(Event::LockLunHealth {
                healthy: health == Health::Up,
                why,
            }));
        }
    }

    fn set_quorum_server_reachable(&mut self, reachable: bool) {
        if self.quorum_server.reachable != reachable {
            self.quorum_server.reachable = reachable;
            self.event(if reachable {
                Event::QuorumServerReachable
            } else {
                Event::QuorumServerUnreachable
            });
        }
        self.check_halt_risk();
    }

    /// Reports when the cluster becomes (or stops being) one split from halting entirely.
    fn check_halt_risk(&mut self) {
        let members = self.view.members.len();
        let tiebreaker_down =
            self.settings.tiebreaker == Tiebreaker::QuorumServer && !self.quorum_server.reachable;
        let at_risk =
            self.phase == Phase::Running && tiebreaker_down && members >= 2 && members % 2 == 0;
        if at_risk != self.halt_risk {
            self.halt_risk = at_risk;
            self.event(Event::HaltRisk { at_risk, members });
        }
    }

    fn release_fence_waits(&mut self, now: Instant) {
        // A wait is over when its bound passed and this node still holds its lease through
        // echoes of send times after that: the members echoing it had not moved on to a
        // newer membership by then, so the awaited life cannot have renewed its lease in
        // one (it was certainly reset before any could be committed).
        let confirmed = self.lease_confirmed_from(now);
        let (due, waiting): (Vec<_>, Vec<_>) = self
            .fence_waits
            .drain(..)
            .partition(|(_, _, at)| now >= *at && confirmed.is_some_and(|from| from >= *at));
        self.fence_waits = waiting;
        let (due, held): (Vec<_>, Vec<_>) = due.into_iter().partition(|(node, incarnation, _)| {
            // A life that is a member of a proposal this node accepted after its installed
            // membership may be running in that membership, if it was committed: no
            // takeover from it while that stands.
            !self
                .accepted_since
                .iter()
                .any(|v| v.has(*node, *incarnation))
        });
        self.fence_waits.extend(held);
        // A wait over but not confirmed: heartbeats at once, so that the echoes confirming it
        // come now rather than an interval later (the coordinator's members answer it at once).
        let over = self
            .fence_waits
            .iter()
            .map(|(_, _, at)| *at)
            .filter(|at| now >= *at)
            .max();
        if over.is_some_and(|at| self.fence_waits_announced.is_none_or(|done| at > done)) {
            self.fence_waits_announced = over;
            self.send_heartbeats(now);
        }
        for (node, incarnation, _) in due {
            // Another life of the same node may still be awaited.
            if !self.fence_waits.iter().any(|(n, _, _)| *n == node) {
                self.packages.on_takeover_allowed(node);
            }
            self.event(Event::TakeoverAllowed { node, incarnation });
        }
    }

    fn fence(&mut self, reason: FenceReason) {
        if self.phase == Phase::Halted {
            return;
        }
        // Persisted before the fence: a later life tells the proposal was dropped.
        self.pass_over_own();
        if reason != FenceReason::LockLost {
            self.event(Event::QuorumLost { reason });
        }
        self.actions.push_back(Action::Fence { reason });
        self.fenced = true;
        self.proposal = None;
        self.accepted = None;
        self.set_phase(Phase::Halted);
    }

    fn set_phase(&mut self, phase: Phase) {
        if phase == Phase::Halted && !self.held.is_empty() {
            self.drop_held();
        }
        if self.phase != phase {
            let before = std::mem::replace(&mut self.phase, phase);
            self.event(Event::PhaseChanged {
                before,
                after: phase,
            });
        }
    }

    fn event(&mut self, event: Event) {
        self.notices(&event);
        self.actions.push_back(Action::Event(event));
    }

    /// The cluster's condition by phase (the snapshot also tells a lapsed lease).
    fn cluster_condition(&self) -> ClusterCondition {
        ClusterCondition {
            status: match self.phase {
                Phase::Running => ClusterStatus::Up,
                Phase::Starting | Phase::Reforming => ClusterStatus::Starting,
                Phase::Halted => ClusterStatus::Down,
            },
            epoch: self.view.epoch,
            members: self.view.members,
        }
    }

    /// Whether this node committed the installed membership: cluster-wide notices are its
    /// to report.
    fn reports_cluster(&self) -> bool {
        self.view.epoch != Epoch::NONE && self.view.epoch.coordinator() == self.settings.me
    }

    fn notice(&mut self, notice: Notice) {
        self.numbered_notice(notice);
    }

    /// Tells `notice`; its number in this life.
    fn numbered_notice(&mut self, notice: Notice) -> u64 {
        self.actions.push_back(Action::Notice(notice));
        self.notices_told += 1;
        self.notices_told
    }

    /// The notice of the failure that made `package` leave `from`: the PackageFailed that
    /// node told (this node's own, or the one its latest heartbeat of its current life
    /// names), else the NodeFailed this node told of it.
    fn failure_told(&self, package: PackageId, from: NodeId) -> Option<NoticeRef> {
        if from == self.settings.me {
            return self.failures_told.get(&package).map(|&number| NoticeRef {
                node: from,
                incarnation: self.incarnation.0,
                number,
            });
        }
        let peer = self.peers.get(from.index())?;
        let failed = peer.heartbeat.as_ref().and_then(|heartbeat| {
            heartbeat
                .failures
                .iter()
                .find(|(p, _)| *p == package)
                .map(|&(_, number)| NoticeRef {
                    node: from,
                    incarnation: peer.incarnation.0,
                    number,
                })
        });
        failed.or_else(|| {
            self.nodes_failed_told.get(&from).map(|&number| NoticeRef {
                node: self.settings.me,
                incarnation: self.incarnation.0,
                number,
            })
        })
    }

    /// The catalogue notices of `event`, and the node states it changes.
    fn notices(&mut self, event: &Event) {
        let me = self.settings.me;
        match *event {
            // The same members in the same lives (a re-formation that carried a configuration
            // change, or waited for a lagging member): the membership did not change, and
            // ClusterReformed says it did.
            Event::MembershipChanged {
                same_lives: true, ..
            } if !self.forming => {}
            Event::MembershipChanged {
                before_epoch,
                before,
                after_epoch,
                after,
                ..
            } if self.reports_cluster() => {
                let old = ClusterCondition {
                    status: if before_epoch == Epoch::NONE {
                        ClusterStatus::Starting
                    } else {
                        ClusterStatus::Up
                    },
                    epoch: before_epoch,
                    members: before,
                };
                let new = ClusterCondition {
                    status: ClusterStatus::Up,
                    epoch: after_epoch,
                    members: after,
                };
                self.notice(if self.forming {
                    Notice::ClusterUp {
                        before: old,
                        after: new,
                    }
                } else {
                    Notice::ClusterReformed {
                        before: old,
                        after: new,
                    }
                });
            }
            Event::NodeJoined { node } => {
                // The membership is installed already: the node's state before is what
                // this node knew of it.
                let before = NodeCondition::down(match self.node_states[node.index()] {
                    NodeState::Running | NodeState::Reforming => NodeState::Failed,
                    state => state,
                });
                self.node_states[node.index()] = NodeState::Running;
                // A failover from its new life follows no failure of an earlier one.
                self.nodes_failed_told.remove(&node);
                if self.reports_cluster() && !self.forming {
                    self.notice(Notice::NodeJoined {
                        node,
                        before,
                        after: NodeCondition::RUNNING,
                    });
                }
            }
            Event::NodeHalted { node, detached, .. } if node != me => {
                self.node_states[node.index()] = NodeState::Halted;
                if self.reports_cluster() {
                    let (before, after) = (
                        NodeCondition::RUNNING,
                        NodeCondition::down(NodeState::Halted),
                    );
                    self.notice(if detached {
                        Notice::NodeDetached {
                            node,
                            before,
                            after,
                        }
                    } else {
                        Notice::NodeHalted {
                            node,
                            before,
                            after,
                        }
                    });
                }
            }
            Event::ConfigChanged {
                before,
                after,
                ref packages,
                ..
            } if self.reports_cluster() => {
                let packages = packages.clone();
                self.notice(Notice::ClusterConfigChanged {
                    before,
                    after,
                    packages,
                });
            }
            Event::ClusterHalted => {
                self.cluster_halted = true;
                for node in self.view.members.iter() {
                    self.node_states[node.index()] = NodeState::Halted;
                }
                if self.view.coordinator() == Some(me) {
                    let before = self.cluster_condition();
                    self.notice(Notice::ClusterHalted {
                        before,
                        after: ClusterCondition {
                            status: ClusterStatus::Down,
                            ..before
                        },
                    });
                }
            }
            Event::NodeFailed { node, incarnation } => {
                self.node_states[node.index()] = NodeState::Failed;
                if self.reports_cluster() {
                    let number = self.numbered_notice(Notice::NodeFailed {
                        node,
                        incarnation,
                        before: NodeCondition::RUNNING,
                        after: NodeCondition::down(NodeState::Failed),
                    });
                    self.nodes_failed_told.insert(node, number);
                }
            }
            Event::QuorumLost { reason } if reason != FenceReason::FailFast => {
                let before = self.cluster_condition();
                let after = ClusterCondition {
                    status: ClusterStatus::Down,
                    ..before
                };
                self.notice(Notice::QuorumLost {
                    reason,
                    before,
                    after,
                });
            }
            Event::QuorumServerUnreachable => self.notice(Notice::QuorumServerUnreachable {
                before: Health::Up,
                after: Health::Down,
            }),
            Event::QuorumServerReachable => self.notice(Notice::QuorumServerReachable {
                before: Health::Down,
                after: Health::Up,
            }),
            Event::NetworkDown { node, network } => self.notice(Notice::NetworkInterfaceDown {
                node,
                network,
                before: Health::Up,
                after: Health::Down,
            }),
            Event::NetworkUp { node, network } => self.notice(Notice::NetworkInterfaceUp {
                node,
                network,
                before: Health::Down,
                after: Health::Up,
            }),
            Event::Package(ref event) => {
                if let PackageEvent::StateChanged {
                    package,
                    after: Some(InstanceState::Starting),
                    ..
                } = *event
                {
                    self.failures_told.remove(&package);
                }
                match package_notice(me, event) {
                    Some(Notice::PackageFailover {
                        package,
                        before,
                        after,
                        ..
                    }) => {
                        let follows = before.and_then(|from| self.failure_told(package, from));
                        self.notice(Notice::PackageFailover {
                            package,
                            before,
                            after,
                            follows,
                        });
                    }
                    Some(notice @ Notice::PackageFailed { package, .. }) => {
                        let number = self.numbered_notice(notice);
                        self.failures_told.insert(package, number);
                    }
                    Some(notice) => self.notice(notice),
                    None => {}
                }
            }
            _ => {}
        }
    }

    /// The cluster lock as this node sees it: its lock LUN's health, or whether the quorum
    /// server answers its polls (one that answers with a refusal is up); unknown before the
    /// first read or poll, and with no lock.
    fn own_lock_health(&self) -> Health {
        match &self.settings.config.lock {
            ClusterLock::None => Health::Unknown,
            ClusterLock::QuorumServer { .. } => match (
                self.quorum_server.next_ping,
                self.quorum_server.reachable,
                self.quorum_server.refusal,
            ) {
                (None, _, _) => Health::Unknown,
                (Some(_), true, _) | (Some(_), false, Some(_)) => Health::Up,
                (Some(_), false, None) => Health::Down,
            },
            ClusterLock::LockLun => self.lock_lun,
        }
    }

    /// The cluster lock as `node` sees it ([`NodeLock`]): this node's own, a member's from
    /// its last heartbeat in this membership, unknown for the others (not heard as members).
    fn node_lock(&self, node: NodeId, up: NodeSet) -> Option<NodeLock> {
        let device = match &self.settings.config.lock {
            ClusterLock::None => return None,
            ClusterLock::QuorumServer { .. } => None,
            ClusterLock::LockLun => self
                .settings
                .config
                .nodes
                .get(node.index())
                .and_then(|n| n.lock_lun.clone()),
        };
        let (status, refusal) = if node == self.settings.me {
            (self.own_lock_health(), self.quorum_server.refusal)
        } else if up.contains(node) {
            self.peers[node.index()]
                .heartbeat
                .as_ref()
                .filter(|h| h.epoch == self.view.epoch)
                .map_or((Health::Unknown, None), |h| (h.lock, h.lock_refusal))
        } else {
            (Health::Unknown, None)
        };
        Some(NodeLock {
            device,
            status,
            refusal,
        })
    }

    /// Halted: a member's heartbeat says it halts (cmhaltcl or cmhaltnode, -d or not) in
    /// its membership. Recorded when that membership came after this node's (this node
    /// halted by itself before) and after any heard running, for [`Node::halt_heard`].
    fn hear_halt(&mut self, from: NodeId, generation: u64, heartbeat: &Heartbeat) {
        let me = self.settings.me;
        if self.cluster_halted
            || heartbeat.epoch <= self.view.epoch
            || heartbeat.epoch < self.heard_running_epoch
            || !heartbeat.members.contains(from)
            || heartbeat.members.contains(me)
            // Configured nodes only (a peer that lies is not believed past them).
            || !heartbeat
                .members
                .difference(self.settings.configured())
                .is_empty()
        {
            return;
        }
        match &self.heard_halt {
            Some(record) if record.epoch > heartbeat.epoch => return,
            // The members of one membership are the same in every member's heartbeat; a
            // heartbeat that says otherwise is not believed.
            Some(record) if record.epoch == heartbeat.epoch => {
                if record.members != heartbeat.members {
                    return;
                }
            }
            earlier => {
                // Members of the earlier membership that were leaving by cmhaltnode,
                // holding nothing, and are not members of this one: they halted.
                let mut left = NodeSet::EMPTY;
                if let Some(earlier) = earlier {
                    left = earlier.left;
                    for (&node, last) in &earlier.heard {
                        if last.leaving.node()
                            && heartbeat_ready(last)
                            && !heartbeat.members.contains(node)
                        {
                            left.insert(node);
                        }
                    }
                }
                self.heard_halt = Some(HeardHalt {
                    epoch: heartbeat.epoch,
                    members: heartbeat.members,
                    generation,
                    heard: BTreeMap::new(),
                    left: left.difference(heartbeat.members),
                });
            }
        }
        let Some(record) = &mut self.heard_halt else {
            return;
        };
        // A copy come late (overtaken on another network) does not replace a later one.
        if record
            .heard
            .get(&from)
            .is_none_or(|last| heartbeat.sequence > last.sequence)
        {
            record.heard.insert(from, heartbeat.clone());
        }
    }

    /// Halted by itself before the cluster halted: the halt, once this node heard every
    /// member of the halting membership say it halts (cmhaltcl, or cmhaltnode by them all)
    /// and holds nothing (with -d: nothing but what it leaves running, recorded as detached
    /// there in the newest switching table, which every member holds). Every member then
    /// halts, as each waits for just that (`check_cluster_halt`; a halt once asked is never
    /// taken back, and a membership formed without a member that died halting halts too):
    /// the cluster is down, and stays down until a cmruncl (whose heartbeats, of a later
    /// membership, drop the record). Until every member was heard so, `None`.
    fn halt_heard(&self) -> Option<&HeardHalt> {
        let record = self.heard_halt.as_ref()?;
        if self.phase != Phase::Halted || self.cluster_halted || record.epoch <= self.view.epoch {
            return None;
        }
        let newest = record.heard.values().max_by_key(|h| h.switching_version)?;
        // As each member waits for it before it halts: the instances left running recorded
        // in the newest copy, and every member holding that copy.
        let recorded = |node: NodeId, heartbeat: &Heartbeat| {
            heartbeat.switching_version >= newest.switching_version
                && heartbeat.packages.iter().all(|(id, state)| {
                    !state.occupies()
                        || newest
                            .switching
                            .iter()
                            .any(|entry| entry.package == *id && entry.detached.contains(node))
                })
        };
        let done = record.members.iter().all(|node| {
            record.heard.get(&node).is_some_and(|heartbeat| {
                heartbeat_ready(heartbeat)
                    && (!heartbeat.leaving.detaches() || recorded(node, heartbeat))
            })
        });
        done.then_some(record)
    }

    /// The package table shown by a node that heard the cluster halt ([`Node::halt_heard`]):
    /// each member's instances as it last reported them (after cmhaltcl -d, the ones left
    /// running as detached), the newest switching table the members sent, and the packages
    /// detached on other nodes as that table records them. Shown only: the node's own
    /// table stays as it is.
    fn halted_cluster_table(&self, record: &HeardHalt) -> Table {
        let configured = self.settings.configured();
        let mut table = self.packages.table().clone();
        if let Some(newest) = record.heard.values().max_by_key(|h| h.switching_version) {
            for entry in &newest.switching {
                if let Some(state) = table.packages.get_mut(entry.package.index()) {
                    state.auto_run = entry.auto_run;
                    state.switching = entry.switching;
                    state.maintenance = entry.maintenance;
                    state.maintenance_node = entry.maintenance_node;
                    state.detached = entry.detached.intersection(configured);
                    state.failures_noted = entry.failures_noted;
                    state.ran = entry.ran;
                }
            }
        }
        for state in &mut table.packages {
            state.awaiting_fence = NodeSet::EMPTY;
            state.instances.clear();
            for node in state.detached.iter() {
                if !record.members.contains(node) {
                    state.instances.insert(node, InstanceState::Detached);
                }
            }
        }
        for (&node, heartbeat) in &record.heard {
            for &(id, instance) in &heartbeat.packages {
                let Some(state) = table.packages.get_mut(id.index()) else {
                    continue;
                };
                let instance = if heartbeat.leaving.detaches() && instance.occupies() {
                    state.detached.insert(node);
                    InstanceState::Detached
                } else {
                    instance
                };
                state.instances.insert(node, instance);
            }
        }
        table
    }

    /// A node's status and state as this node knows them.
    fn node_condition(&self, node: NodeId) -> NodeCondition {
        let me = self.settings.me;
        if self.phase == Phase::Halted {
            let halted_with_cluster = self
                .halt_heard()
                .is_some_and(|record| record.members.union(record.left).contains(node));
            return NodeCondition::down(match (node == me, self.node_states[node.index()]) {
                (true, _) => NodeState::Halted,
                (false, _) if halted_with_cluster => NodeState::Halted,
                (false, state @ (NodeState::Failed | NodeState::Halted)) => state,
                (false, _) => NodeState::Unknown,
            });
        }
        if self.view.members.contains(node) {
            return NodeCondition {
                status: NodeStatus::Up,
                state: if self.phase == Phase::Running {
                    NodeState::Running
                } else {
                    NodeState::Reforming
                },
            };
        }
        if node == me {
            // Looking for a cluster to form or join: not a member yet.
            return NodeCondition::down(NodeState::Unknown);
        }
        NodeCondition::down(match self.node_states[node.index()] {
            NodeState::Running | NodeState::Reforming => NodeState::Failed,
            state => state,
        })
    }

    /// Whether heartbeats pass on heartbeat network `network` of `node`, as this node
    /// sees it.
    fn network_health(&self, now: Instant, node: NodeId, network: usize) -> Health {
        let hears = |peer: &Peer| {
            peer.last_heard_network
                .get(network)
                .copied()
                .flatten()
                .is_some_and(|at| self.fresh(Some(at), now))
        };
        let fresh = |index: usize, peer: &Peer| {
            index != self.settings.me.index() && self.fresh(peer.last_heard, now)
        };
        if node == self.settings.me {
            let mut heard = self.peers.iter().enumerate().filter(|(i, p)| fresh(*i, p));
            match heard.next() {
                None => Health::Unknown,
                Some((_, first)) if hears(first) => Health::Up,
                Some(_) if heard.any(|(_, p)| hears(p)) => Health::Up,
                Some(_) => Health::Down,
            }
        } else {
            let peer = &self.peers[node.index()];
            if !fresh(node.index(), peer) {
                Health::Unknown
            } else if hears(peer) {
                Health::Up
            } else {
                Health::Down
            }
        }
    }

    /// Everything `cmviewcl -v` shows, as this node knows it at `now`: halted, while it hears
    /// a cluster run, as a member of that cluster knows it, with this node's own row as this
    /// node knows it (halted, whatever the member made of its leaving).
    pub fn status(&self, now: Instant) -> Snapshot {
        let local = self.local_status(now);
        let Some(mut view) = self.remote_view(now) else {
            return local;
        };
        // Rows by number (a node deleted while the cluster ran has none).
        let me = self.settings.me;
        let mine = local.nodes.iter().find(|row| row.id == me);
        let theirs = view.nodes.iter_mut().find(|row| row.id == me);
        let name = match (mine, theirs) {
            (Some(mine), Some(row)) if mine.name == row.name => {
                row.clone_from(mine);
                mine.name.clone()
            }
            // The member's nodes are not this node's (it should not be, within one
            // generation): its own view, then.
            _ => return local,
        };
        // What only this node knows: its cluster lock (its own device, as its I/O finds
        // it), the cmapplyconf given here that were given up, and its generic resources and
        // monitored subnets in each package.
        view.lock = local.lock;
        view.reports_heard = local.reports_heard;
        view.applies_given_up = local.applies_given_up;
        view.apply_given_up = local.apply_given_up;
        let name = &name;
        for package in &mut view.packages {
            let Some(own) = local.packages.iter().find(|p| p.name == package.name) else {
                continue;
            };
            let mine = own.nodes.iter().find(|row| row.name == *name);
            let theirs = package.nodes.iter_mut().find(|row| row.name == *name);
            if let (Some(mine), Some(row)) = (mine, theirs) {
                row.resources.clone_from(&mine.resources);
                row.subnets.clone_from(&mine.subnets);
            }
        }
        view
    }

    /// Everything `cmviewcl -v` shows, as this node knows it at `now`.
    fn local_status(&self, now: Instant) -> Snapshot {
        let config = &self.settings.config;
        let me = self.settings.me;
        let mut status = self.cluster_condition().status;
        if status == ClusterStatus::Up && !self.quorate(now) {
            status = ClusterStatus::Unknown;
        }
        // Out of a cluster that may still run elsewhere (this node halted, or was fenced):
        // only a cluster halted as a whole, or never formed, is known to be down.
        // Halted by itself, it may have heard the members halt it since.
        let halt = self.halt_heard();
        if status == ClusterStatus::Down
            && !self.cluster_halted
            && halt.is_none()
            && self.view.epoch != Epoch::NONE
        {
            status = ClusterStatus::Unknown;
        }
        // Halted, it hears a cluster run: not down (cmrunnode joins it).
        let heard = self
            .heard_cluster_at()
            .is_some_and(|at| now.saturating_since(at) < self.settings.timing.member_timeout);
        if self.phase == Phase::Halted && status == ClusterStatus::Down && heard {
            status = ClusterStatus::Unknown;
        }
        let node_names: Vec<String> = config.nodes.iter().map(|n| n.name.clone()).collect();
        let up = if matches!(self.phase, Phase::Running | Phase::Reforming) {
            self.view.members
        } else {
            NodeSet::EMPTY
        };
        let catalog = self.packages.catalog();
        // A node deleted while the cluster ran is not shown (its number stays unused).
        let nodes: Vec<NodeRow> = config
            .in_cluster()
            .map(|(index, node_config)| {
                let node = NodeId(index as u32);
                let condition = self.node_condition(node);
                let mut network = 0;
                let interfaces = node_config
                    .interfaces
                    .iter()
                    .map(|interface| {
                        let mut addresses = Vec::new();
                        let mut health = Health::Unknown;
                        for address in &interface.heartbeat_ips {
                            addresses.push((*address, Some(network)));
                            health = match (health, self.network_health(now, node, network)) {
                                (Health::Down, _) | (_, Health::Down) => Health::Down,
                                (Health::Up, _) | (_, Health::Up) => Health::Up,
                                _ => Health::Unknown,
                            };
                            network += 1;
                        }
                        addresses.extend(interface.stationary_ips.iter().map(|a| (*a, None)));
                        InterfaceRow {
                            name: interface.name.clone(),
                            addresses,
                            status: health,
                        }
                    })
                    .collect();
                // The monitored subnets the node has: one it has no address on is left out.
                let subnets = catalog
                    .subnets
                    .iter()
                    .filter_map(|subnet| {
                        let setting = catalog
                            .subnet(*subnet)
                            .and_then(|index| self.packages.resource(node, index));
                        (setting != Some(ResourceValue::Absent))
                            .then(|| SubnetRow::of(*subnet, node, up, setting))
                    })
                    .collect();
                NodeRow {
                    id: node,
                    name: node_config.name.clone(),
                    condition,
                    summary: if condition == NodeCondition::RUNNING {
                        Summary::Ok
                    } else {
                        Summary::Degraded
                    },
                    interfaces,
                    subnets,
                    lock: self.node_lock(node, up),
                }
            })
            .collect();
        // The members halting their packages (not detaching them).
        let halting = self.members_leaving(now, |l| l != Leaving::No && !l.detaches());
        // After the halt heard, what the members last said they hold, not what this node
        // knew when it left.
        let halted_table = halt
            .filter(|record| record.generation == self.settings.config_generation)
            .map(|record| self.halted_cluster_table(record));
        let restarts = |id: PackageId, node: NodeId| match halt.and_then(|r| r.heard.get(&node)) {
            Some(heartbeat) if halted_table.is_some() => {
                let services = self.packages.catalog().package(id).services.len();
                let mut counts = heartbeat
                    .restarts
                    .iter()
                    .find(|(package, _)| *package == id)
                    .map(|(_, counts)| counts.clone())
                    .unwrap_or_default();
                counts.resize(services, 0);
                counts
            }
            _ => self.packages.restarts(id, node),
        };
        let mut packages = crate::status::package_rows(
            self.packages.catalog(),
            halted_table.as_ref().unwrap_or(self.packages.table()),
            (up, halting),
            &node_names,
            &restarts,
            &|node, index| self.packages.resource(node, index),
        );
        for row in &mut packages {
            if let Some(file) = self.settings.packages.iter().find(|p| p.name == row.name) {
                row.description.clone_from(&file.description);
                row.node_fail_fast = file.node_fail_fast;
                row.run_script_timeout = file.run_script_timeout;
                row.halt_script_timeout = file.halt_script_timeout;
                for dependency in &mut row.dependencies {
                    if let Some(own) = file
                        .dependencies
                        .iter()
                        .find(|d| d.package == dependency.name)
                    {
                        dependency.label.clone_from(&own.name);
                    }
                }
                row.ip_addresses = file
                    .ip_subnets
                    .iter()
                    .flat_map(|(subnet, addresses)| addresses.iter().map(|a| (*a, *subnet)))
                    .collect();
            }
        }
        // Just joined, before every member has reported what it runs, the table knows
        // only what the members have told so far: not shown as if it were all.
        // A halt heard from members of another configuration generation: the cluster is
        // down, but their package numbers are not this node's.
        let other_generation =
            halt.is_some_and(|record| record.generation != self.settings.config_generation);
        if status == ClusterStatus::Unknown
            || (up != NodeSet::EMPTY && !self.packages.known())
            || other_generation
        {
            // Out of touch with a cluster that may run elsewhere: what its packages do is
            // not known here.
            let unknown = PackageCondition {
                status: crate::status::PackageStatus::Unknown,
                state: crate::status::PackageState::Unknown,
            };
            for row in &mut packages {
                row.condition = unknown;
                row.summary = Summary::Degraded;
                row.owners = NodeSet::EMPTY;
                for node in &mut row.nodes {
                    node.current = false;
                    node.instance = unknown;
                    for service in &mut node.services {
                        service.condition.status = Health::Unknown;
                    }
                    // This node's own generic resources and subnets are what it sets and
                    // sees itself: known here, in touch or not.
                    if node.node == me {
                        continue;
                    }
                    for resource in &mut node.resources {
                        resource.status = Health::Unknown;
                    }
                    for subnet in &mut node.subnets {
                        subnet.status = Health::Unknown;
                    }
                }
            }
        }
        let lock = match &config.lock {
            ClusterLock::None => LockRow::None,
            ClusterLock::QuorumServer { host, .. } => LockRow::QuorumServer {
                host: host.clone(),
                status: self.own_lock_health(),
                refusal: self.quorum_server.refusal,
            },
            ClusterLock::LockLun => LockRow::LockLun {
                device: config
                    .nodes
                    .get(me.index())
                    .and_then(|n| n.lock_lun.clone()),
                status: self.own_lock_health(),
            },
        };
        let ok = nodes.iter().all(|n| n.summary == Summary::Ok)
            && packages.iter().all(|p| p.summary == Summary::Ok);
        Snapshot {
            name: config.name.clone(),
            observer: me,
            reports_heard: self.reports_heard(),
            applies_given_up: self.given_up.0,
            apply_given_up: self.given_up.1.clone(),
            status,
            summary: if ok { Summary::Ok } else { Summary::Degraded },
            generation: self.settings.config_sequence,
            epoch: self.view.epoch,
            coordinator: self.view.coordinator().filter(|_| up != NodeSet::EMPTY),
            member_timeout: self.settings.timing.member_timeout,
            max_configured_packages: config.max_configured_packages,
            auto_start_timeout: config.auto_start_timeout,
            network_polling_interval: config.network_polling_interval,
            qs_polling_interval: match &config.lock {
                ClusterLock::QuorumServer {
                    polling_interval, ..
                } => Some(*polling_interval),
                _ => None,
            },
            lock,
            nodes,
            packages,
        }
    }
}

/// Whether `node` may report the proposal of `epoch` as passed over (`passed_over`): one
/// of its `accepted` acceptances, or its own proposal ([`Node::pass_over_own`]).
fn reported_over(epoch: Epoch, node: NodeId, accepted: &[View]) -> bool {
    epoch.coordinator() == node || accepted.iter().any(|v| v.epoch == epoch)
}

/// The generations a member reports with its acceptances ([`Message::Accept`]'s `configs`),
/// and the acceptances whose generation it gave up (`passed_over`).
type Reported = (Vec<AcceptedConfig>, Vec<Epoch>);

/// How many members of a basis count for the quorum rule, and how many of them are in
/// `group`. All of them, unless the cluster starts whole (every kept node in the group:
/// `whole` gives the nodes the generation in effect deletes and those a generation carried
/// on deletes): then all but the first, and none at all when the rest are all of the
/// second. Why, at `decide_if_complete`.
fn quorum_counts(
    basis: NodeSet,
    group: NodeSet,
    whole: Option<(NodeSet, NodeSet)>,
) -> (usize, usize) {
    let counted = match whole {
        Some((in_effect, carried)) => {
            let kept = basis.difference(in_effect);
            if kept.difference(carried).is_empty() {
                NodeSet::EMPTY
            } else {
                kept
            }
        }
        None => basis,
    };
    (counted.len(), counted.intersection(group).len())
}

/// The number of a generation that cmapplyconf makes from generation `current` with the
/// proposal of `epoch`: above `current`, and different for every proposal (epochs are unique
/// and grow).
fn fresh_generation(current: u64, epoch: Epoch) -> u64 {
    current.saturating_add(epoch.0)
}

/// Whether two sets of package files say the same, in whatever order they were given (the
/// catalog orders packages by name: cmapplyconf -P of one file lists it last) and whatever
/// lines they were read from (cmgetconf writes a file of its own layout).
pub(crate) fn same_packages(a: &[PackageConfig], b: &[PackageConfig]) -> bool {
    fn by_name(set: &[PackageConfig]) -> Vec<PackageConfig> {
        let mut sorted: Vec<PackageConfig> = set
            .iter()
            .map(|p| PackageConfig {
                lines: Lines::default(),
                ..p.clone()
            })
            .collect();
        sorted.sort_by(|x, y| x.name.cmp(&y.name));
        sorted
    }
    a.len() == b.len() && by_name(a) == by_name(b)
}

/// Whether a command may start a package (refused while a configuration change is on its
/// way).
fn starts(command: &Command) -> bool {
    matches!(command, Command::Run { .. } | Command::Enable { .. })
}

/// Whether a heartbeat's sender is halting and holds no package any more.
fn heartbeat_ready(heartbeat: &Heartbeat) -> bool {
    holds_nothing(heartbeat.leaving, &heartbeat.packages)
}

/// Whether a node halting as `leaving` holds none of the package instances it reports
/// (with -d: none but running ones, which it leaves running).
fn holds_nothing(leaving: Leaving, instances: &[(PackageId, InstanceState)]) -> bool {
    leaving != Leaving::No
        && instances
            .iter()
            .all(|(_, s)| !s.occupies() || (leaving.detaches() && *s == InstanceState::Running))
}

/// The catalogue notice of a package event of node `me`, if it is one.
fn package_notice(me: NodeId, event: &PackageEvent) -> Option<Notice> {
    Some(match *event {
        PackageEvent::StateChanged {
            package,
            before,
            after,
            reason,
            cause,
            ..
        } => {
            let (old, new) = (PackageCondition::of(before), PackageCondition::of(after));
            match after {
                // Re-attached, or reconfigured while it ran: not a start.
                Some(InstanceState::Running)
                    if matches!(
                        before,
                        Some(InstanceState::Detached | InstanceState::Reconfiguring)
                    ) =>
                {
                    return None
                }
                Some(InstanceState::Running) => Notice::PackageStarted {
                    package,
                    node: me,
                    before: old,
                    after: new,
                },
                None if reason == Some(HaltReason::Command) => Notice::PackageHalted {
                    package,
                    node: me,
                    before: old,
                    after: new,
                },
                // A before_package_start resource went down: failed, but it ends halted
                // (node switching stays enabled).
                None if matches!(
                    reason,
                    Some(HaltReason::Failure | HaltReason::DependencyFailed)
                ) =>
                {
                    Notice::PackageFailed {
                        package,
                        node: me,
                        cause: cause.unwrap_or(FailureCause::Ordered),
                        before: old,
                        after: new,
                    }
                }
                Some(InstanceState::Failed | InstanceState::HaltAborted) => Notice::PackageFailed {
                    package,
                    node: me,
                    cause: cause.unwrap_or(FailureCause::Ordered),
                    before: old,
                    after: new,
                },
                _ => return None,
            }
        }
        PackageEvent::ServiceFailed {
            package,
            service,
            restarts,
        } => Notice::ServiceFailed {
            package,
            service,
            node: me,
            before: ServiceCondition {
                status: Health::Up,
                restarts,
            },
            after: ServiceCondition {
                status: Health::Down,
                restarts,
            },
        },
        PackageEvent::ServiceRestarted {
            package,
            service,
            restarts,
        } => Notice::ServiceRestarted {
            package,
            service,
            node: me,
            before: ServiceCondition {
                status: Health::Down,
                restarts: restarts.saturating_sub(1),
            },
            after: ServiceCondition {
                status: Health::Up,
                restarts,
            },
        },
        PackageEvent::SwitchingChanged {
            package,
            before,
            auto_run,
            switching,
        } => Notice::PackageSwitchingChanged {
            package,
            before: SwitchingCondition {
                auto_run: before.0,
                switching: before.1,
            },
            after: SwitchingCondition {
                auto_run,
                switching,
            },
        },
        PackageEvent::Failover {
            package,
            from,
            node,
        } => Notice::PackageFailover {
            package,
            before: from,
            after: node,
            follows: None,
        },
        PackageEvent::Failback {
            package,
            from,
            node,
        } => Notice::PackageFailback {
            package,
            before: from,
            after: node,
        },
        PackageEvent::SubnetChanged {
            subnet,
            before,
            after,
        } => {
            if after == Health::Down {
                Notice::SubnetDown {
                    node: me,
                    subnet,
                    before,
                    after,
                }
            } else {
                Notice::SubnetUp {
                    node: me,
                    subnet,
                    before,
                    after,
                }
            }
        }
        PackageEvent::ResourceChanged {
            package,
            resource,
            before,
            after,
            value,
        } => Notice::GenericResourceChanged {
            package,
            resource,
            node: me,
            value,
            before,
            after,
        },
    })
}
