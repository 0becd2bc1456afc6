//! What the core asks of its driver, and what it reports.

use std::sync::Arc;
use std::time::Duration;

use super::message::{Envelope, Phase, View};
use super::types::{Epoch, Incarnation, NodeId, NodeSet};
use crate::config::Generation;
use crate::disk_paxos::DiskRequest;
use crate::packages::{Command, PackageAction, PackageEvent, Refusal};

/// One thing for the driver to do. Actions come in order and must be carried out in order:
/// a [`Action::Persist`] is on disk before any later [`Action::Send`] leaves.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send `envelope` to `to` on heartbeat network `network`.
    Send {
        /// The peer.
        to: NodeId,
        /// The heartbeat network (index in HEARTBEAT_IP order).
        network: usize,
        /// The message.
        envelope: Envelope,
    },
    /// Send `envelope` over the configuration exchange to node `to`, which is not configured
    /// in this node's generation (a node a halted cmapplyconf adds, whose cmcld runs
    /// unconfigured): tried at `addresses` (its heartbeat addresses in the generation that
    /// adds it, on the heartbeat port) in turn. Its answer comes back through
    /// `Node::handle_exchange_answer`. A driver with a request to `to` still under way
    /// drops this one (the core sends its stage's message again).
    Exchange {
        /// The node's NODE_NAME (its certificate's name).
        to: String,
        /// Its addresses.
        addresses: Vec<std::net::IpAddr>,
        /// The message.
        envelope: Envelope,
    },
    /// Write this state to stable storage (synced) before anything that follows.
    Persist(Persisted),
    /// Write this generation's files into the node's state directory (the cluster file and
    /// one file per package, replacing those there; synced) before anything that follows:
    /// a cmapplyconf given while the cluster was halted, which the node's next life starts
    /// from (its sockets and certificates follow the cluster file).
    WriteConfiguration(Arc<Generation>),
    /// Write the shared map to stable storage (synced) before anything that follows, except
    /// heartbeats, which tell nothing of the map. Of several maps waiting for the disk, the
    /// driver may write only the newest.
    PersistShared(Arc<crate::core::shared::SharedMap>),
    /// Arm the safety timer (watchdog) to expire at `deadline` unless petted (see
    /// [`Action::PetSafetyTimer`] for how the driver sets it).
    ArmSafetyTimer {
        /// When the timer fires.
        deadline: super::types::Instant,
    },
    /// Pet the safety timer so that it expires at `deadline` (the end of the quorum lease
    /// plus the grace), on the clock the core is driven with. The driver sets the watchdog
    /// to `deadline - now` read when it pets, so a daemon stopped between the decision and
    /// the pet does not push the expiry later; a watchdog that counts whole seconds rounds
    /// down (firing early is safe, late is not). A deadline already past means: let it fire.
    PetSafetyTimer {
        /// When the timer fires.
        deadline: super::types::Instant,
    },
    /// Disarm the safety timer: the node left the cluster gracefully.
    DisarmSafetyTimer,
    /// Reset this node now: it must not run packages any longer.
    Fence {
        /// Why.
        reason: FenceReason,
    },
    /// Read or write a block of the lock LUN; answer with `Node::handle_disk`.
    Disk(DiskRequest),
    /// Ask the quorum server; answer with `Node::handle_quorum_server`.
    QuorumServer(QuorumServerRequest),
    /// Run a package script or restart a service; answer with `Node::handle_script`.
    Package(PackageAction),
    /// Something happened that the layers above report.
    Event(Event),
    /// An entry of the event catalogue, with the state before and after.
    Notice(crate::status::Notice),
    /// A new configuration generation took effect: from this action on, package numbers
    /// (in actions, and in `handle_script` and `handle_service_exit`) are this catalog's.
    /// A driver that keeps package numbers across its own work (a script still running)
    /// maps them by name.
    Catalog(Arc<crate::packages::Catalog>),
}

/// What the core keeps on stable storage across restarts: an acceptor's state, as in Paxos.
/// A new life that forgot what its old one accepted or installed could let a coordinator
/// count it as a survivor of a membership it knows nothing of.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Persisted {
    /// The highest membership epoch this node has proposed, accepted or installed.
    pub epoch_max: Epoch,
    /// The last membership installed (by this life, or by an earlier one when this life has
    /// installed none).
    pub installed: Option<View>,
    /// The proposals accepted after it.
    pub accepted: Vec<View>,
    /// The configuration generation in effect, when cmapplyconf changed it (None: the one
    /// the node was started with).
    pub config: Option<Arc<Generation>>,
    /// The configuration generations carried by accepted proposals (by the proposal's
    /// epoch): persisted before the acceptance leaves, so that a commit takes effect on
    /// every member.
    pub accepted_configs: Vec<(Epoch, Arc<Generation>)>,
    /// The packages this node left running when it halted with cmhaltnode -d or cmhaltcl
    /// -d, by name, until it re-attaches them (and those whose re-attach check is under
    /// way).
    pub detached: Vec<String>,
    /// Every package detached anywhere in the cluster, by name, with its nodes, as this
    /// node last knew it: a cluster started again without those nodes starts none of them.
    pub detached_marks: Vec<(String, NodeSet)>,
    /// The highest generation as shown of a change this node took the offer of with the
    /// cluster halted: it may be in effect on the node that gave it alone (its commit lost),
    /// so no later change here is shown as it.
    pub sequence_floor: u64,
    /// Of the proposals accepted after it, those whose generation this node gave up,
    /// knowing they never commit with it, and its own proposals that carried a generation
    /// and that it dropped uncommitted: reported in every later life, so that no
    /// coordinator carries the generation on from another voter that kept it.
    pub passed_over: Vec<Epoch>,
    /// This node's own proposal that carries a generation, from the state persisted before
    /// its Propose leaves to the one persisted before its Commit leaves. Found by a later
    /// life, the proposal never committed (no Commit of it left): it is passed over as one
    /// dropped uncommitted (`passed_over`), though its node died instead of dropping it.
    pub own_pending: Option<Epoch>,
}

/// The packages a configuration change adds, deletes and modifies, by name.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct PackageChanges {
    /// Added.
    pub added: Vec<String>,
    /// Deleted.
    pub deleted: Vec<String>,
    /// Modified.
    pub modified: Vec<String>,
}

/// Why a node fences itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FenceReason {
    /// The group this node is in holds less than half of the previous membership, or exactly
    /// half without the cluster lock.
    QuorumLost,
    /// The group needed the cluster lock and another group holds it, or it could not be had
    /// (I/O error, timeout, quorum server unreachable).
    LockLost,
    /// A newer membership was formed without this node.
    Excluded,
    /// The safety timer was not petted in time (the node was paused, or starved): it must not
    /// act any more.
    SafetyTimerExpired,
    /// A package with node_fail_fast_enabled, or a service with service_fail_fast_enabled,
    /// failed here.
    FailFast,
    /// No member of the group holds the package table (none took part in forming the
    /// cluster, nor has heard every member of one membership since it joined): what runs
    /// where, a package left detached on a halted node for one, is not known, so the group
    /// must not run the cluster on.
    PackagesUnknown,
}

/// Why a group did not get the cluster lock ([`Event::LockNotWon`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockLoss {
    /// Another group holds it.
    HeldByOther,
    /// The race did not end within the lock timeout: the lock LUN's I/O (or the quorum
    /// server's answer) took longer.
    TimedOut {
        /// The lock timeout.
        after: Duration,
        /// Lock LUN requests still unanswered then.
        disk_requests_pending: usize,
    },
    /// The lock LUN failed (I/O error, an unusable block).
    DiskFailed(String),
    /// The lock LUN holds a later race: this node's view of the membership is stale.
    Superseded,
    /// The quorum server could not be asked, or refused this node.
    QuorumServer(String),
    /// The race could not start (a configuration beyond the lock's limits).
    CannotRace(String),
}

/// A request to the quorum server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumServerRequest {
    /// Identifies the answer.
    pub id: u64,
    /// What is asked.
    pub kind: QuorumServerAsk,
    /// The core's limit for the answer (the tie-break's, which follows MEMBER_TIMEOUT): a
    /// later answer is ignored, so the client's steps need not wait longer.
    pub timeout: Duration,
}

/// What a node asks the quorum server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuorumServerAsk {
    /// Grant the lock of `instance` (the membership being left) to `group`.
    Acquire {
        /// The epoch of the membership that split.
        instance: Epoch,
        /// The group asking.
        group: NodeSet,
    },
    /// Are you there (every QS_POLLING_INTERVAL).
    Ping,
}

/// The quorum server's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuorumServerAnswer {
    /// The lock is this group's.
    Granted,
    /// Another group holds the lock.
    Denied,
    /// The answer to a ping.
    Pong,
    /// The server answered but refused this node's connection: it cannot break a tie for
    /// it, and cmviewcl says why.
    Refused(QuorumServerRefusal),
}

/// Why a quorum server refuses a node (cmviewcl's quorum server states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuorumServerRefusal {
    /// The node is not in its authorization file (qs_authfile): `access denied`.
    AccessDenied,
    /// It speaks another protocol version: `unsupported version`.
    UnsupportedVersion,
    /// Another reason (a cluster id conflict, no room for another cluster, ...), or one this
    /// version does not know.
    #[serde(other)]
    Other,
}

/// Events of the membership, each with what it was before where that means something.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// This node's phase changed.
    PhaseChanged {
        /// Before.
        before: Phase,
        /// After.
        after: Phase,
    },
    /// A membership was installed on this node (the first one forms the cluster).
    MembershipChanged {
        /// The epoch before (NONE: the cluster formed).
        before_epoch: Epoch,
        /// The members before.
        before: NodeSet,
        /// The new epoch.
        after_epoch: Epoch,
        /// The new members.
        after: NodeSet,
        /// Whether they are the members before, in the same lives (the membership did not
        /// change: a re-formation that carried a configuration change, say).
        same_lives: bool,
        /// The lock instances (epochs of earlier memberships) this group won to form it;
        /// empty when it held a majority.
        locks: Vec<Epoch>,
        /// Members that left gracefully, having accepted the new membership: they count for
        /// the quorum rule.
        left: NodeSet,
        /// The number of the configuration generation in effect with it
        /// ([`crate::config::Generation::number`]).
        generation_number: u64,
    },
    /// A member left the cluster gracefully (cmhaltnode): it halted its packages and
    /// accepted the membership without it. Reported by the members, and by the node itself.
    NodeHalted {
        /// The node.
        node: NodeId,
        /// Its life.
        incarnation: Incarnation,
        /// It detached its packages (cmhaltnode -d): they run on, unmonitored.
        detached: bool,
    },
    /// The whole cluster halted (cmhaltcl): every member halted its packages and stops.
    ClusterHalted,
    /// This halted node is to start a new life (cmrunnode, or a cmruncl naming it): its
    /// daemon starts again as a newly started one would.
    StartAgain,
    /// A cmapplyconf given with the cluster halted changed the nodes (deleted or reordered
    /// some), and its generation is persisted here: this halted node's daemon starts a new
    /// life, halted, from it (node numbers are positions in the node list: a running core
    /// never takes another list). `retired`: this node is no longer in the cluster; its
    /// daemon removes its configuration files and goes on unconfigured. Told by an
    /// unconfigured node too ([`crate::core::Unconfigured`]) once a generation that adds it
    /// is persisted there (`retired` false).
    Reconfigured {
        /// The node was deleted from the cluster.
        retired: bool,
    },
    /// A configuration generation took effect here (cmapplyconf).
    ConfigChanged {
        /// The generation before (as shown: [`crate::config::Generation::sequence`]).
        before: u64,
        /// The generation now (as shown).
        after: u64,
        /// The number of the generation now ([`crate::config::Generation::number`]).
        number: u64,
        /// Packages added, deleted and modified, by name.
        packages: PackageChanges,
    },
    /// cmapplyconf given on another node was refused by the coordinator.
    ApplyRefused {
        /// Why.
        refusal: Refusal,
    },
    /// A node joined the membership.
    NodeJoined {
        /// The node.
        node: NodeId,
    },
    /// A member was left out of the new membership (silence, a new incarnation, or the
    /// partition rule).
    NodeFailed {
        /// The node.
        node: NodeId,
        /// The life that failed.
        incarnation: Incarnation,
    },
    /// The survivors' wait for a failed node is over: it is certainly reset, its packages
    /// may start elsewhere.
    TakeoverAllowed {
        /// The node.
        node: NodeId,
        /// The life that failed.
        incarnation: Incarnation,
    },
    /// This node lost quorum and is about to fence itself.
    QuorumLost {
        /// Why.
        reason: FenceReason,
    },
    /// This node's group did not get the cluster lock it raced for, and why: told before the
    /// `QuorumLost` it leads to, so that the log says whether another group won or the
    /// tie-breaker could not be had in time.
    LockNotWon {
        /// The lock instance (the epoch of the membership being left).
        instance: Epoch,
        /// Why.
        why: LockLoss,
    },
    /// The quorum server stopped answering (the cluster keeps running; a tie-break now
    /// would halt it).
    QuorumServerUnreachable,
    /// The cluster is one fault from halting entirely: the tie-breaker cannot be reached and
    /// the membership has an even number of nodes, so a split into halves (for two nodes,
    /// the loss of either) would halt every node (cluster.md scenarios 13 and 14). Reported
    /// when it becomes true, and `at_risk: false` when it no longer is.
    HaltRisk {
        /// Whether the risk stands.
        at_risk: bool,
        /// The membership's size.
        members: usize,
    },
    /// The quorum server answers again.
    QuorumServerReachable,
    /// The lock LUN's reads or writes started failing or stalling (`healthy: false`), or
    /// succeed again.
    LockLunHealth {
        /// Whether it is healthy now.
        healthy: bool,
        /// Why not: the failure, or what is wrong with this node's block.
        why: Option<String>,
    },
    /// A peer speaks with another configuration generation: it is not let in.
    ConfigMismatch {
        /// The peer.
        node: NodeId,
        /// The number of its generation ([`crate::config::Generation::number`]).
        number: u64,
    },
    /// The core was not run for longer than expected (the daemon was paused or starved).
    ScheduleGap {
        /// How long.
        gap: Duration,
    },
    /// AUTO_START_TIMEOUT passed without all configured nodes: the node gives up starting.
    AutoStartGaveUp,
    /// A heartbeat network to a peer went silent while another still carries heartbeats.
    NetworkDown {
        /// The peer.
        node: NodeId,
        /// The network.
        network: usize,
    },
    /// A package event of this node (or, for placement, of the coordinator).
    Package(PackageEvent),
    /// The package coordinator refused a command given on another node (the table had
    /// moved on since that node checked it).
    CommandRefused {
        /// The command.
        command: Command,
        /// Why.
        refusal: Refusal,
    },
    /// The package coordinator answered a command (or cmapplyconf) given on this node and
    /// forwarded to it ([`Taken::Forwarded`]).
    CommandAnswered {
        /// The serial [`Taken::Forwarded`] gave.
        serial: u64,
        /// None: carried out; else why not, in the core's words (nodes as `node N`).
        refusal: Option<String>,
        /// Carried out (`refusal` None) with a warning, in the core's words: a switching
        /// change some members had not confirmed holding when the wait for them ended.
        warning: Option<String>,
    },
    /// A heartbeat network to a peer carries heartbeats again.
    NetworkUp {
        /// The peer.
        node: NodeId,
        /// The network.
        network: usize,
    },
}

/// The generation cmapplyconf's files were merged into, as GetConfiguration gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Base {
    /// The generation as shown ([`Generation::sequence`]).
    pub generation: u64,
    /// Its number ([`Generation::number`]), when known: tells apart two configurations
    /// shown alike (a node's that never became the cluster's).
    pub number: Option<u64>,
}

/// How a command given on this node was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Carried out here (this node coordinates the packages).
    Done,
    /// Forwarded to the package coordinator, whose answer comes as
    /// [`Event::CommandAnswered`] with this serial (or never, when the membership changes
    /// on the way: the caller bounds its wait).
    Forwarded(u64),
    /// cmapplyconf of the configuration in effect: there is nothing to change, and nothing
    /// is distributed (no new generation follows).
    Unchanged,
}
