//! What nodes say to each other. The runtime encodes these on the wire; the core only sees
//! them typed, after the envelope's cluster and configuration checks.

use std::sync::Arc;
use std::time::Duration;

use super::action::FenceReason;
use super::types::{Epoch, Incarnation, Instant, NodeId, NodeSet};
use crate::config::Generation;
use crate::packages::{Command, InstanceState, Order, PackageId, ResourceValue, Switching};
use crate::status::Snapshot;
use crate::timing::SAFETY_TIMEOUT_MAX;

/// Every message travels in an envelope that says who sent it, in which life, to which life of
/// the receiver, and under which configuration.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Envelope {
    /// Identifies the cluster (a digest of CLUSTER_NAME): a message of another cluster is
    /// dropped.
    pub cluster_id: u64,
    /// The configuration generation of the sender: members must agree (scenario 39).
    pub config_generation: u64,
    /// The sender.
    pub from: NodeId,
    /// The sender's incarnation.
    pub from_incarnation: Incarnation,
    /// The receiver's incarnation as the sender knows it (zero: unknown). A message addressed
    /// to an earlier life of the receiver is dropped.
    pub to_incarnation: Incarnation,
    /// The message.
    pub message: Message,
}

/// A node's part in the cluster, as it tells its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Phase {
    /// Looking for a cluster to form or join.
    Starting,
    /// A member of a committed membership, not re-forming.
    Running,
    /// A member that has accepted a proposal for a new membership.
    Reforming,
    /// Out of the cluster: halted, or fenced.
    Halted,
}

/// The membership a node has installed: its epoch and members with their incarnations.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct View {
    /// The epoch.
    pub epoch: Epoch,
    /// The members.
    pub members: NodeSet,
    /// Each member's incarnation, indexed by node (zero for non-members).
    pub incarnations: Vec<Incarnation>,
}

impl View {
    /// No membership.
    pub fn none(nodes: usize) -> View {
        View {
            epoch: Epoch::NONE,
            members: NodeSet::EMPTY,
            incarnations: vec![Incarnation(0); nodes],
        }
    }

    /// Whether `node` in `incarnation` is a member.
    pub fn has(&self, node: NodeId, incarnation: Incarnation) -> bool {
        self.members.contains(node)
            && self.incarnations.get(node.index()).copied() == Some(incarnation)
    }

    /// The coordinator: the lowest member.
    pub fn coordinator(&self) -> Option<NodeId> {
        self.members.lowest()
    }
}

/// The messages of the membership protocol.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Message {
    /// Sent to every peer on every heartbeat network every heartbeat interval.
    Heartbeat(Heartbeat),
    /// A coordinator proposes a new membership.
    Propose {
        /// The proposed epoch (a new round of this coordinator).
        epoch: Epoch,
        /// The proposed members and their incarnations.
        view: View,
        /// The send time on the coordinator's clock, echoed in the acceptance.
        sent_at: Instant,
        /// The lease and grace the coordinator takes from an echo of that send time (see
        /// [`Term`]).
        term: Term,
        /// The coordinator's installed membership: its earlier proposals above this epoch
        /// were never committed (a coordinator installs what it commits at once).
        installed: Epoch,
        /// Members leaving gracefully (cmhaltnode): left out of the view, they accept too,
        /// and count for the quorum rule, since they join no other group.
        leavers: NodeSet,
        /// A new configuration generation (cmapplyconf): it takes effect with the
        /// membership, on every member or on none.
        config: Option<Arc<Generation>>,
        /// When `config` is carried on (it may have taken effect with an earlier
        /// proposal): the epoch of the proposal that the coordinator, or a member, accepted
        /// it with. None for a new cmapplyconf.
        carried_from: Option<Epoch>,
    },
    /// A member accepts a proposal and promises to accept none with a lower epoch.
    Accept {
        /// The proposal's epoch.
        epoch: Epoch,
        /// The epoch the member has installed.
        installed: Epoch,
        /// For each member of the installed membership left out of the proposal, how long
        /// ago this node last echoed it (none: never echoed).
        silences: Vec<(NodeId, Incarnation, Option<Silence>)>,
        /// The proposal's send time (coordinator's clock): once committed, it renews the
        /// coordinator's lease like a heartbeat echo.
        echo: Echo,
        /// The send time on the member's clock, echoed in the commit.
        sent_at: Instant,
        /// The lease and grace that go with that send time (see [`Term`]).
        term: Term,
        /// Every proposal this member accepted after its installed membership: each may
        /// have been committed, so the coordinator must hold quorum against each too.
        accepted: Vec<View>,
        /// The configuration generations those proposals carried: one that may have taken
        /// effect is carried on by the next membership.
        configs: Vec<(Epoch, Arc<Generation>)>,
        /// Those of the proposals whose generation the member gave up (in this life or an
        /// earlier one: it is persisted), knowing they never commit with it: it knew a
        /// membership committed after the acceptance the generation was carried on from, or
        /// a voter of its own proposal reported so. Also the member's own proposals that
        /// carried a generation and that it dropped uncommitted. The coordinator carries that
        /// generation on from no other member's acceptance of them (with no such member in
        /// the group, nothing tells it).
        passed_over: Vec<Epoch>,
        /// Whether the member's package table may stand for the cluster's (it took part in
        /// forming the cluster, or has heard every member of one membership since it
        /// joined): a group re-forming a running cluster with no such member halts.
        known: bool,
        /// The newest membership the member knows to have been committed: its installed
        /// one, or the one an earlier life of it installed last. Memberships before it are
        /// behind it, and the quorum rule does not hold the proposal against them.
        committed: Epoch,
    },
    /// A member refuses a proposal.
    Reject {
        /// The proposal's epoch.
        epoch: Epoch,
        /// The highest epoch the member knows, so the coordinator can go above it.
        highest: Epoch,
    },
    /// The coordinator commits the membership: every member installs it.
    Commit {
        /// The proposal's epoch.
        epoch: Epoch,
        /// How long, from receipt, before each left-out node (and life) may be taken over.
        fence_waits: Vec<(NodeId, Incarnation, Duration)>,
        /// For the waits that were over when the coordinator committed (zero above): how long
        /// ago they ended. A takeover needs echoes of send times after a wait's end.
        overdue: Vec<(NodeId, Incarnation, Duration)>,
        /// Each member's acceptance send time (its clock): the first echo of the new
        /// membership, so that a lease holds from the start.
        echoes: Vec<(NodeId, Echo)>,
        /// The lock instances won to form it (a group of exactly half).
        locks: Vec<Epoch>,
        /// The members that left gracefully: no fence wait, they halt.
        leavers: NodeSet,
        /// The membership forms the cluster (no member had one installed): each member's
        /// package table is its own records, as good as any other's.
        forming: bool,
    },
    /// The coordinator dropped its proposal and will never commit it.
    Abandon {
        /// The proposal's epoch.
        epoch: Epoch,
    },
    /// The coordinator found the group without quorum: every member halts and fences.
    Halt {
        /// The proposal's epoch.
        epoch: Epoch,
        /// Why the group halts: [`FenceReason::QuorumLost`] (or the lock lost), or
        /// [`FenceReason::PackagesUnknown`].
        reason: FenceReason,
    },
    /// A package command given on the sender, for the package coordinator to carry out.
    Command {
        /// The membership it was given in.
        epoch: Epoch,
        /// Numbers the sender's commands (duplicates are carried out once).
        serial: u64,
        /// The command.
        command: Command,
    },
    /// cmapplyconf given on the sender, for the coordinator to propose (the generation's
    /// number is not set yet).
    Apply {
        /// The membership it was given in.
        epoch: Epoch,
        /// Numbers the sender's commands, as for [`Message::Command`] (the answer names it).
        serial: u64,
        /// The generation the files were merged into (cmapplyconf read it with cmgetconf's
        /// GetConfiguration): the coordinator refuses them when another is in effect, so
        /// that two operators' changes never undo each other. None: not checked.
        base: Option<u64>,
        /// The files.
        config: Arc<Generation>,
    },
    /// A node outside the membership asks for the configuration generation in effect (it
    /// heard a newer one than its own). Let through whatever the generations.
    ConfigRequest,
    /// The configuration generation in effect on the sender, to a node that asked. Let
    /// through whatever the generations.
    Config {
        /// The generation.
        config: Arc<Generation>,
    },
    /// cmhaltpkg of a package detached on the receiver, from the package coordinator: the
    /// receiver (its daemon halted, or started again and not yet a member) halts it. By
    /// name: the receiver's configuration may be older.
    HaltDetached {
        /// The package.
        package: String,
    },
    /// The sender no longer runs this package it had detached (its halt script succeeded,
    /// or it did not hold it): sent to every node, for whichever coordinates.
    DetachedHalted {
        /// The package.
        package: String,
    },
    /// The receiver's answer to [`Message::HaltDetached`] when it began the halt (how it
    /// ends follows as [`Message::DetachedHalted`]): the package coordinator learns that a
    /// daemon there took it, and answers the cmhaltpkg.
    HaltDetachedTaken {
        /// The package.
        package: String,
    },
    /// The package coordinator orders a start or halt on the receiver.
    Order {
        /// The membership the order was given in.
        epoch: Epoch,
        /// The coordinator's order number (each order is carried out once).
        serial: u64,
        /// The order.
        order: Order,
    },
    /// The coordinator's answer to a [`Message::Command`] or [`Message::Apply`] of the
    /// receiver (or a node's answer to [`Message::HaltNode`]): carried out (for cmapplyconf:
    /// taken, the generation follows with the next membership), or refused and why, in the
    /// core's words (nodes as `node N`).
    Answer {
        /// The serial of the command answered.
        serial: u64,
        /// None: carried out; else why not.
        refusal: Option<String>,
        /// Carried out, with what the asker should know of it: a switching change some
        /// members had not confirmed holding when the wait for them ended.
        warning: Option<String>,
    },
    /// cmhaltnode [-f | -d] of the receiver, given on the sender (a member of the same
    /// membership): the receiver halts as if given it itself, and answers.
    HaltNode {
        /// The membership it was given in.
        epoch: Epoch,
        /// Numbers the sender's commands, as for [`Message::Command`].
        serial: u64,
        /// -f: halt its packages first.
        force: bool,
        /// -d: leave its packages running, detached.
        detach: bool,
    },
    /// cmruncl given on a node of a halted cluster (or one forming): each node named that is
    /// halted, its daemon still there, starts a new life and looks for the cluster to form.
    /// Also cmrunnode NODE given on another node: NODE named alone, which cmruncl never
    /// does (it names the node given it); a node already starting ignores that one.
    Start {
        /// The nodes named (`cmruncl -n`; cmruncl's sender among them).
        nodes: NodeSet,
        /// Their NODE_NAMEs: a halted node of another generation, which may number the
        /// nodes otherwise (a cmapplyconf that deleted or reordered nodes, which one of
        /// the two missed), goes by these.
        names: Vec<String>,
    },
    /// A halted node that hears a cluster run asks a member for its view (cmviewcl on a
    /// halted node shows the running cluster, as Serviceguard's does). Let through from
    /// outside the membership.
    StatusRequest {
        /// Numbers the asker's requests: the answer names it, so that a late answer does not
        /// replace a newer one.
        serial: u64,
    },
    /// A member's view, everything `cmviewcl -v` shows, to a halted node that asked.
    Status {
        /// The request answered.
        serial: u64,
        /// The view, as the member knows it.
        snapshot: Arc<Snapshot>,
    },
    /// cmapplyconf given on a node of a halted cluster: the sender offers the generation to
    /// every configured node. Each halted node (its daemon still there) checks it and answers
    /// ([`Message::ConfigAnswer`]); none puts it in effect before [`Message::ConfigCommit`],
    /// which follows only once every node took the offer. Let through whatever the
    /// generations.
    ConfigOffer {
        /// Numbers the sender's commands: the answers name it.
        serial: u64,
        /// The generation, numbered.
        config: Arc<Generation>,
    },
    /// Every node took the [`Message::ConfigOffer`] of `serial`: the receiver puts the
    /// generation in effect (persisted, its files written) and answers.
    ConfigCommit {
        /// The offer's serial.
        serial: u64,
        /// The offered generation's number.
        number: u64,
        /// The highest membership epoch any node that took the offer had promised: a node
        /// whose number the generation changes promises at least that much in its next
        /// life (an epoch's low byte is its proposer's number, so a node that takes
        /// another's number proposes above every epoch that number ever stood for).
        epoch_floor: Epoch,
    },
    /// The [`Message::ConfigOffer`] of `serial` is withdrawn (a node did not take it, or
    /// did not answer): the receiver drops it at once, rather than when it expires, so that
    /// the cluster may start (cmruncl) or another change be applied right away.
    ConfigWithdraw {
        /// The offer's serial.
        serial: u64,
    },
    /// cmcheckconf given on a node of a halted cluster, or on an unconfigured node for the
    /// cluster it would create: each node checks `config` as it would check a
    /// [`Message::ConfigOffer`] of it, answers ([`Message::ConfigAnswer`], `commit` false),
    /// and keeps nothing (no offer held, nothing persisted).
    ConfigCheck {
        /// Numbers the sender's commands: the answer names it.
        serial: u64,
        /// The generation, numbered as an offer of it would be.
        config: Arc<Generation>,
    },
    /// A node's answer to [`Message::ConfigOffer`] or [`Message::ConfigCheck`] (`commit`
    /// false) or [`Message::ConfigCommit`] (`commit` true).
    ConfigAnswer {
        /// The offer's serial.
        serial: u64,
        /// The answer is to the commit.
        commit: bool,
        /// None: taken; else why not, in the receiver's words.
        refusal: Option<String>,
        /// The highest membership epoch the answering node has promised (for the commit's
        /// `epoch_floor`).
        epoch_max: Epoch,
    },
    /// A change of the shared map given on the sender, for the coordinator to stamp and
    /// spread (answered like [`Message::Command`]).
    Share {
        /// The membership it was given in.
        epoch: Epoch,
        /// Numbers the sender's commands, as for [`Message::Command`].
        serial: u64,
        /// The key.
        key: String,
        /// The value; none deletes it.
        value: Option<String>,
    },
    /// Entries of the shared map: a change the coordinator stamped, to every member; or a
    /// whole copy, after a membership was committed, between the members and the coordinator,
    /// and now and then (or after a purge) from the coordinator to every member.
    Shared {
        /// The entries.
        entries: Vec<crate::core::shared::Entry>,
        /// Set for a whole copy (see [`crate::core::shared`]); none for a change.
        whole: Option<WholeCopy>,
    },
}

/// What marks a [`Message::Shared`] as the sender's whole copy of the shared map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WholeCopy {
    /// The copy's floor: the newest version purged.
    pub floor: crate::core::shared::Version,
    /// From the coordinator: the members whose whole copies it heard in this membership (a
    /// member not among them sends its copy again). Empty from a member.
    pub heard: NodeSet,
}

impl Message {
    /// The variant's name, for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Heartbeat(_) => "Heartbeat",
            Message::Propose { .. } => "Propose",
            Message::Accept { .. } => "Accept",
            Message::Reject { .. } => "Reject",
            Message::Commit { .. } => "Commit",
            Message::Abandon { .. } => "Abandon",
            Message::Halt { .. } => "Halt",
            Message::Command { .. } => "Command",
            Message::Apply { .. } => "Apply",
            Message::ConfigRequest => "ConfigRequest",
            Message::Config { .. } => "Config",
            Message::HaltDetached { .. } => "HaltDetached",
            Message::DetachedHalted { .. } => "DetachedHalted",
            Message::Order { .. } => "Order",
            Message::Answer { .. } => "Answer",
            Message::HaltDetachedTaken { .. } => "HaltDetachedTaken",
            Message::Share { .. } => "Share",
            Message::Shared { .. } => "Shared",
            Message::HaltNode { .. } => "HaltNode",
            Message::Start { .. } => "Start",
            Message::StatusRequest { .. } => "StatusRequest",
            Message::Status { .. } => "Status",
            Message::ConfigOffer { .. } => "ConfigOffer",
            Message::ConfigCommit { .. } => "ConfigCommit",
            Message::ConfigAnswer { .. } => "ConfigAnswer",
            Message::ConfigWithdraw { .. } => "ConfigWithdraw",
            Message::ConfigCheck { .. } => "ConfigCheck",
        }
    }

    /// The serial of a configuration change's message (offer, check, commit, withdrawal,
    /// answer).
    pub fn config_serial(&self) -> Option<u64> {
        match self {
            Message::ConfigOffer { serial, .. }
            | Message::ConfigCheck { serial, .. }
            | Message::ConfigCommit { serial, .. }
            | Message::ConfigWithdraw { serial }
            | Message::ConfigAnswer { serial, .. } => Some(*serial),
            _ => None,
        }
    }
}

/// What a node announces with a send time: quorate until `lease` after an echo of it, the
/// node lets its safety timer run `grace` beyond that, and the peers that echoed it wait as
/// long (stretched by the clocks' drift) before taking its packages over (timing.rs).
///
/// Both come from the node's timing, and travel with the send time because that timing
/// changes: MEMBER_TIMEOUT is changed online by cmapplyconf, and the grace is the long one
/// only in a membership of even size with a tie-breaker. None of a node's `at + lease`, `at +
/// grace` and `at + lease + grace` decreases from one send to the next: after a change to
/// shorter ones, each falls back at most as fast as time passes (the grace making up for a
/// lease that falls back). So the last echo a survivor sent bounds every deadline the node
/// could have set from an earlier one, whatever timing the survivor itself has in effect. A
/// node takes an echo of its own send time with no wider a term than it announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Term {
    /// How long after the send time an echo of it keeps the node quorate.
    pub lease: Duration,
    /// How long after the end of that lease the node's safety timer may run.
    pub grace: Duration,
}

impl Term {
    /// The term as a peer believes it: no node of a valid configuration announces a lease
    /// and grace beyond [`SAFETY_TIMEOUT_MAX`] (a larger one is damage, and would keep a
    /// lost node's packages down for longer than any configuration allows).
    pub fn bounded(self) -> Term {
        let lease = self.lease.min(SAFETY_TIMEOUT_MAX);
        Term {
            lease,
            grace: self.grace.min(SAFETY_TIMEOUT_MAX - lease),
        }
    }
}

/// A send time of a node, on its own clock, echoed back to it by a peer, with the term the
/// node announced with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Echo {
    /// The send time, on the echoed node's clock.
    pub at: Instant,
    /// The lease and grace the echoed node announced with it.
    pub term: Term,
}

/// How long ago a member last echoed a node left out of a proposal, and the term of that echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Silence {
    /// Time since the echo left, on the reporting member's clock.
    pub elapsed: Duration,
    /// The lease and grace the echoed node announced with the send time echoed.
    pub term: Term,
}

/// A heartbeat: liveness, the sender's view of the cluster, and the echo that renews the
/// receiver's quorum lease.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Heartbeat {
    /// Counts the sender's heartbeats in this incarnation (the same on every network), so
    /// duplicates and reordered copies are recognised.
    pub sequence: u64,
    /// The send time on the sender's clock, echoed back by the receiver.
    pub sent_at: Instant,
    /// The lease and grace the sender takes from an echo of this heartbeat (see [`Term`]).
    pub term: Term,
    /// The sender's phase.
    pub phase: Phase,
    /// The sender's installed membership epoch.
    pub epoch: Epoch,
    /// The sender's installed members.
    pub members: NodeSet,
    /// The peers the sender has heard within MEMBER_TIMEOUT.
    pub reach: NodeSet,
    /// The send time (receiver's clock) of the receiver's latest heartbeat, with its term,
    /// when the sender is running in the same membership as the receiver.
    pub echo: Option<Echo>,
    /// The send time (receiver's clock) of the receiver's latest heartbeat that the sender
    /// heard, in any phase: it tells the receiver that the sender hears it. A peer whose
    /// acknowledgement lags is echoed no more (see `Timing::echo_lag_max`).
    pub heard: Option<Instant>,
    /// The sender's package instances.
    pub packages: Vec<(PackageId, InstanceState)>,
    /// The sender's service restart counts, for the packages where a service restarted.
    pub restarts: Vec<(PackageId, Vec<u32>)>,
    /// The number of the PackageFailed notice the sender told, in this life, for each
    /// package that failed there and has not started there since: the coordinator's
    /// PackageFailover points at it.
    pub failures: Vec<(PackageId, u64)>,
    /// The generic resources set on the sender (cmsetresource), by resource number.
    pub resources: Vec<(u16, ResourceValue)>,
    /// The sender's copy of the switching table, and its version.
    pub switching: Vec<Switching>,
    /// The version of that copy (the newest wins).
    pub switching_version: (u64, u64),
    /// The last package order the sender carried out: (epoch, serial).
    pub executed: (u64, u64),
    /// Whether the sender is halting (cmhaltnode, or cmhaltcl for the whole cluster).
    pub leaving: Leaving,
    /// The cluster lock as the sender sees it: its lock LUN's health, or whether the quorum
    /// server answers its polls (unknown before it knows, and with no lock).
    pub lock: crate::status::Health,
    /// Why the quorum server refused the sender's connection at its last poll, if it did.
    pub lock_refusal: Option<super::QuorumServerRefusal>,
}

/// A node halting gracefully.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Leaving {
    /// Not halting.
    No,
    /// cmhaltnode: it halts its packages, then leaves the membership.
    Node,
    /// cmhaltcl: every node halts its packages, then the whole cluster stops.
    Cluster,
    /// cmhaltnode -d: its packages run on, detached; once the members have recorded them
    /// as detached it leaves the membership.
    DetachNode,
    /// cmhaltcl -d: every node leaves its packages running, detached, and the whole cluster
    /// stops.
    DetachCluster,
}

impl Leaving {
    /// cmhaltnode, with or without -d.
    pub fn node(self) -> bool {
        matches!(self, Leaving::Node | Leaving::DetachNode)
    }

    /// cmhaltcl, with or without -d.
    pub fn cluster(self) -> bool {
        matches!(self, Leaving::Cluster | Leaving::DetachCluster)
    }

    /// With -d: the packages keep running.
    pub fn detaches(self) -> bool {
        matches!(self, Leaving::DetachNode | Leaving::DetachCluster)
    }
}
