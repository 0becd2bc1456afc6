//! cmcld, the node daemon: it loads the applied configuration from its state directory and
//! drives one [`Node`] with real sockets, disks, timers and the safety timer.
//!
//! # Threads
//!
//! - The **timing thread** owns the core. It waits for the next input or the core's next
//!   timeout, hands it to the core and carries out the actions. It never waits on disk, on
//!   logging or on a lock held by other work: heartbeats leave through non-blocking UDP
//!   sockets, the safety timer is petted through a pipe, state goes to the writer thread, log
//!   lines to the logger thread, lock LUN I/O to its own thread.
//! - One **receiver** per heartbeat network: datagram, authentication ([`super::auth`]),
//!   decoding ([`crate::wire`]), then to the timing thread.
//! - The **writer** persists the acceptor state and the shared map ([`super::state_file`]).
//!   The core's rule that a persisted state is on disk before any later message leaves is
//!   kept by holding the later actions until the writer confirms ([`super::write_gate`]); the
//!   safety timer's pets and a fence are never held, nor heartbeats behind the shared map.
//! - The **control channel** ([`super::control`]): TCP with mutual TLS under the cluster
//!   authority, on the heartbeat port of every heartbeat address, for configurations and
//!   package commands; a listener per network, a reader per accepted connection and a sender
//!   per peer and network, fed by the timing thread without waiting.
//! - The **admin socket** (`cmcld.sock` in the state directory, owner only) answers status
//!   requests and commands, one JSON line each way ([`Request`], [`Reply`]).
//! - The **network monitor** ([`super::network::Monitor`]) follows the interfaces through
//!   netlink and tells each change of a monitored_subnet, which the core acts on
//!   ([`Node::handle_subnet`]). Before anything runs, the daemon
//!   removes the relocatable addresses an earlier life of it left behind
//!   ([`super::network`], "Clean start").
//!
//! # State directory
//!
//! ```text
//! cluster.ascii       the applied cluster file
//! packages/*.conf     the applied package files
//! cluster.key         the heartbeat key (32 bytes or more; owner-only permissions)
//! qs-ca.pem           the authority of the quorum server's certificate (with QS_HOST)
//! control-ca.pem      the cluster authority's certificate (the control channel's trust anchor)
//! control.pem         this node's control-channel certificate, then the authority's
//! control-key.pem     its key (owner-only)
//! incarnation         the boot counter: every start takes the next life
//! acceptor            the core's persisted state
//! cmcld.sock          the admin socket
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read as _, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{killpg, Signal};
use nix::sys::socket::{sendto, MsgFlags, SockaddrStorage};
use nix::unistd::{getpgrp, Pid};

use super::auth::{Opener, Rejected, Sealer, PAYLOAD_MAX};
use super::control::{self, ControlChannel, ControlSettings, ControlStatus, Route};
use super::lock_lun::LockLun;
use super::network::{self, Monitor, MonitorEvent, SubnetChange};
use super::quorum_server::{ClientSettings, QuorumClient, Unavailable, STEP_TIMEOUT_MIN};
use super::state_file;
use super::supervisor::{Groups, Report, Supervisor};
use super::watchdog::{self, SafetyTimer, SafetyTimers};
use super::write_gate::WriteGate;
use crate::config::cluster::{self, ClusterConfig, ClusterLock};
use crate::config::package::{self, PackageConfig};
use crate::config::Severity;
use crate::core::{
    Action, Envelope, Incarnation, Instant, Node, NodeId, NodeSet, Persisted, Phase,
    QuorumServerAnswer, QuorumServerRequest, Settings, Taken,
};
use crate::disk_paxos::{DiskFailure, DiskReply, IoId};
use crate::packages::{
    Catalog, Command, PackageAction, PackageId, Refusal, ResourceValue, SubnetState,
};
use crate::status::Snapshot;
use crate::timing::Timing;
use crate::wire;

/// The words with which a daemon configured in no cluster answers (its admin socket, and so
/// its agent): "node N is not configured in a cluster: ...".
pub const NOT_CONFIGURED: &str = "is not configured in a cluster";

/// The words with which a daemon configured in no cluster answers once it took a
/// generation that adds it, for the second before its new life (as a halted node of the
/// cluster) starts: "node N took the configuration of cluster C: its cmcld starts again as
/// a node of it". A command given meanwhile may wait for the new life.
pub const STARTING_CONFIGURED: &str = "its cmcld starts again as a node of it";

/// Serviceguard's heartbeat port (hacl-hb).
pub const HEARTBEAT_PORT: u16 = 5300;
/// Admin connections served at once.
const ADMIN_CONNECTIONS_MAX: u64 = 16;
/// The longest admin request line.
const ADMIN_LINE_MAX: usize = 1 << 20;
/// An admin connection idle this long is closed.
const ADMIN_IDLE: Duration = Duration::from_secs(300);

/// The shortest heartbeat key accepted.
pub const KEY_MIN_BYTES: usize = 32;

/// How a daemon is started.
#[derive(Debug, Clone)]
pub struct Options {
    /// The state directory.
    pub state_dir: PathBuf,
    /// This node's NODE_NAME.
    pub node: String,
    /// The UDP port of the heartbeat networks, the same on every node.
    pub heartbeat_port: u16,
    /// End the daemon when the node halts (cmhaltnode, cmhaltcl). Without it the daemon
    /// stays, halted: its admin socket (and agent) answer, and cmrunnode or cmruncl starts
    /// the node again ([`Ended::StartAgain`]).
    pub exit_on_halt: bool,
    /// Start halted, as after cmhaltnode with the daemon staying: a new life after a
    /// cmapplyconf that changed the nodes ([`Ended::StartHalted`]).
    pub start_halted: bool,
    /// Where the daemon of a node configured in no cluster listens for the configuration
    /// exchange, on the heartbeat port (TCP): the addresses a cmapplyconf that adds the node
    /// names as its HEARTBEAT_IPs. Empty: every address.
    pub config_listen: Vec<IpAddr>,
}

/// SIGTERM or SIGINT came (set by the signal thread, read where an input may no longer be
/// read: a daemon about to start again ends instead).
static TERMINATED: AtomicBool = AtomicBool::new(false);

/// Whether SIGTERM or SIGINT came: a caller about to start the daemon again
/// ([`Ended::StartAgain`]) ends instead.
pub fn terminated() -> bool {
    TERMINATED.load(Ordering::SeqCst)
}

/// How a daemon that started ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The node halted (and the daemon was to end then), or was told to end (SIGTERM,
    /// SIGINT) and halted first.
    Halted,
    /// The node, halted, was told to start again (cmrunnode, or a cmruncl naming it): the
    /// caller starts the daemon again as a new life (cmcld executes itself again).
    StartAgain,
    /// A cmapplyconf given with the cluster halted deleted or reordered nodes, and its
    /// generation is in the state directory: the caller starts the daemon again as a new
    /// life, halted ([`Options::start_halted`]).
    StartHalted,
    /// A cmapplyconf given with the cluster halted deleted this node: its configuration
    /// files are removed (the cluster key, the certificates and the persisted promises
    /// stay), and the caller starts the daemon again, unconfigured: a later cmapplyconf may
    /// add the node again.
    Removed,
}

/// Why a daemon could not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

pub(super) fn fail<T>(what: impl Into<String>) -> Result<T, StartError> {
    Err(StartError(what.into()))
}

/// A request on the admin socket, by names (the daemon maps them to the core's numbers).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// The node's view of the cluster and the daemon's own state.
    Status,
    /// The notices (the event catalogue) this daemon's life told after number `after`, at
    /// most [`NOTICES_PER_REPLY`]: a reader keeps the last number it got and asks again.
    Notices {
        /// The last number already read (0: from the first kept).
        after: u64,
        /// When `after` is the last notice told, how long to wait for the next before answering with none
        /// (milliseconds, at most [`NOTICES_WAIT_MAX`]; 0: answer at once). A reader that
        /// waits so hears of a notice as soon as it is told, without asking again and again.
        #[serde(default, skip_serializing_if = "is_zero")]
        wait_ms: u64,
        /// Whether a reply with notices also carries the cluster's status as of the reply
        /// (what a reader needs to name the notices' elements, without a second request).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        with_status: bool,
    },
    /// Answered once what the node shows of the cluster's membership and packages changed
    /// after change number `after` (where each package runs and in which state, its
    /// switching), or after `wait_ms` (at most [`NOTICES_WAIT_MAX`]) with none: a reader
    /// that compares the cluster's models (the agent's lifecycle indications) looks at
    /// once, and sees short-lived states (failing, starting) it would miss by polling.
    StatusChange {
        /// The last change number the reader has (0: any).
        after: u64,
        /// How long to wait for a change (milliseconds).
        wait_ms: u64,
    },
    /// The configuration in effect (cmgetconf), as files.
    Configuration,
    /// Sets (or, with no value, deletes) a value of the cluster's shared map: answered once
    /// the coordinator holds it and has sent it to every member.
    Share {
        /// The key.
        key: String,
        /// The value.
        value: Option<String>,
    },
    /// The shared map as this node has it; only whether it changed when it is the copy
    /// `unless` names.
    Shared {
        /// A copy the reader has: the `(incarnation, changes)` of an earlier answer.
        unless: Option<(u64, u64)>,
    },
    /// cmrunpkg [-n node] package.
    RunPackage {
        /// The package.
        package: String,
        /// Where (this node when absent).
        node: Option<String>,
    },
    /// cmhaltpkg [-n node] package.
    HaltPackage {
        /// The package.
        package: String,
        /// Only this node's instance (multi-node packages).
        node: Option<String>,
    },
    /// Halts `package` everywhere after the running packages that depend on it (`= up`),
    /// each the same way: the CIM method HP_SGPackage.RequestStateChange(3). (cmhaltpkg itself,
    /// [`Request::HaltPackage`], refuses while dependents run.)
    HaltPackageAndDependents {
        /// The package.
        package: String,
    },
    /// cmmodpkg -e [-n node] package.
    EnablePackage {
        /// The package.
        package: String,
        /// The node, for node switching.
        node: Option<String>,
    },
    /// cmmodpkg -d [-n node] package.
    DisablePackage {
        /// The package.
        package: String,
        /// The node, for node switching.
        node: Option<String>,
    },
    /// cmmodpkg -R -s service package: resets the service's restart counter.
    ResetRestarts {
        /// The package.
        package: String,
        /// service_name.
        service: String,
    },
    /// cmmodpkg -m on|off [-n node] package: maintenance mode.
    Maintenance {
        /// The package.
        package: String,
        /// On or off.
        on: bool,
        /// `-n`: where a package that is down is to run in maintenance.
        #[serde(default)]
        node: Option<String>,
    },
    /// cmruncl -n node... on a starting node.
    RunCluster {
        /// The nodes to form the cluster with.
        nodes: Vec<String>,
    },
    /// cmhaltnode [-f] [-d] [node]: this node, or another member (which halts as if given
    /// it itself, and answers).
    HaltNode {
        /// -f: halt its packages too.
        force: bool,
        /// -d: leave its packages running, detached.
        detach: bool,
        /// The node (absent: this one).
        #[serde(default)]
        node: Option<String>,
    },
    /// cmsetresource -r name -s up|down (a simple resource) or cmsetresource -r name value
    /// (an extended one), on this node.
    SetResource {
        /// generic_resource_name.
        name: String,
        /// The status or the value.
        value: ResourceValue,
    },
    /// cmapplyconf: a new configuration generation, from the files' text (each checked by
    /// cmcheckconf's rules first), distributed to every member with the next membership.
    Apply {
        /// The cluster file (absent: the one in effect).
        cluster: Option<FileText>,
        /// Every package file of the new generation (a package left out is deleted).
        /// Absent: the packages in effect, as they are.
        #[serde(default)]
        packages: Option<Vec<FileText>>,
        /// The generation the files were merged into ([`Reply::Configuration`]'s): refused
        /// when another is in effect by then. Absent: not checked.
        #[serde(default)]
        base: Option<u64>,
        /// Its number ([`Reply::Configuration`]'s `number`), when known.
        #[serde(default)]
        base_number: Option<u64>,
    },
    /// cmdeleteconf (no package): the halted cluster's configuration is deleted from every
    /// node, each of whose daemons goes on unconfigured ([`Reply::InEffect`] once it is,
    /// with the generation that deleted it).
    DeleteCluster,
    /// cmrunpkg, cmhaltpkg, cmmodpkg -e/-d with -t: what the commands, in turn, would start
    /// and halt, and why each command that would be refused would be, nothing done
    /// ([`Reply::Preview`]); Refused as a whole when the cluster is not running here.
    Preview {
        /// The commands, in the order given.
        commands: Vec<PreviewCommand>,
    },
    /// cmruncl -t [-n node]...: what the cluster formed with these nodes (none: every
    /// configured node) would start where, nothing done ([`Reply::Preview`]); Refused as
    /// cmruncl would be (on a node of a running cluster).
    PreviewRunCluster {
        /// The nodes, by name.
        #[serde(default)]
        nodes: Vec<String>,
    },
    /// cmcheckconf: the files checked as [`Request::Apply`] checks them, and against the
    /// cluster as it runs (the refusals a cmapplyconf of them would meet now); with the
    /// cluster halted, or on a node configured in none for the cluster they would create, by
    /// every node of it, as each would check the cmapplyconf's offer. Nothing is applied.
    /// Done when they would be taken; Findings with every finding; Refused with the reason.
    CheckApply {
        /// The cluster file (absent: the one in effect).
        cluster: Option<FileText>,
        /// Every package file of the generation checked (absent: the packages in effect).
        #[serde(default)]
        packages: Option<Vec<FileText>>,
    },
    /// cmhaltcl [-f] [-d].
    HaltCluster {
        /// -f: halt the packages too.
        force: bool,
        /// -d: leave the packages running, detached.
        detach: bool,
    },
    /// cmrunnode on this node: a halted node (its daemon still there) starts again and
    /// joins the cluster.
    RunNode,
    /// cmrunnode NODE given on another node: NODE, halted with its daemon still there, is
    /// told to start again and join (Message::Start naming it alone).
    RunOtherNode {
        /// NODE_NAME of the node to start.
        node: String,
    },
}

impl Request {
    /// Its name on the socket (`apply`, `halt_node`, ...), for logs: the request itself may
    /// carry whole configuration files.
    pub fn name(&self) -> String {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(fields)) => fields
                .get("request")
                .and_then(|name| name.as_str())
                .unwrap_or("?")
                .to_owned(),
            _ => "?".to_owned(),
        }
    }
}

/// One package command of a [`Request::Preview`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreviewCommand {
    /// cmrunpkg [-n node] package (this node when absent).
    Run {
        /// The package.
        package: String,
        /// Where.
        node: Option<String>,
    },
    /// cmhaltpkg [-n node] package.
    Halt {
        /// The package.
        package: String,
        /// Only this node's instance.
        node: Option<String>,
    },
    /// cmmodpkg -e [-n node] package.
    Enable {
        /// The package.
        package: String,
        /// The node, for node switching.
        node: Option<String>,
    },
    /// cmmodpkg -d [-n node] package.
    Disable {
        /// The package.
        package: String,
        /// The node, for node switching.
        node: Option<String>,
    },
}

impl PreviewCommand {
    /// The package it is given for.
    pub fn package(&self) -> &str {
        match self {
            PreviewCommand::Run { package, .. }
            | PreviewCommand::Halt { package, .. }
            | PreviewCommand::Enable { package, .. }
            | PreviewCommand::Disable { package, .. } => package,
        }
    }
}

/// A start or halt a previewed command would make ([`Reply::Preview`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlannedAction {
    /// The package.
    pub package: String,
    /// The node (NODE_NAME).
    pub node: String,
    /// Started there; else halted.
    pub start: bool,
}

/// A configuration file given to [`Request::Apply`]: its name (for the findings) and text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileText {
    /// The file's name as the operator gave it.
    pub name: String,
    /// Its content.
    pub text: String,
}

/// The answer on the admin socket.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// The status.
    Status(Box<DaemonStatus>),
    /// The configuration in effect: the cluster file and every package file, as
    /// Serviceguard's ASCII files.
    Configuration {
        /// The cluster file.
        cluster: String,
        /// The package files, by package name.
        packages: Vec<String>,
        /// The configuration generation they are (as shown).
        #[serde(default)]
        generation: u64,
        /// Its number: the cluster's identity of it (give it back with the generation as
        /// the base of a change). Absent from a daemon that does not tell it.
        #[serde(default)]
        number: Option<u64>,
    },
    /// The command was taken.
    Done,
    /// The command was carried out, with a warning the asker should pass on (a switching
    /// change some members had not confirmed holding when the wait for them ended).
    Warned(String),
    /// cmapplyconf with the cluster halted: the change is in effect on every node (this
    /// one included) as this generation. cmapplyconf that added nodes to the running
    /// cluster: in effect in the cluster, and the nodes added took it, but for those the
    /// warning names.
    InEffect {
        /// The configuration generation now in effect.
        generation: u64,
        /// What the asker should know (nodes added that did not take the generation).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        warning: Option<String>,
        /// Nodes of the configuration in effect known to run unconfigured that did not take
        /// it (an online addition's): the same files given again once their cmcld runs.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        not_configured: Vec<String>,
    },
    /// cmapplyconf of the configuration in effect: nothing to change, nothing distributed.
    Unchanged,
    /// cmapplyconf of the configuration in effect given again, and nothing changed, with
    /// what the asker should know (nodes not reached over the configuration exchange).
    UnchangedWith {
        /// What to tell.
        note: String,
    },
    /// What previewed commands would start and halt, in order, and why each command that
    /// would be refused would be ([`Request::Preview`]).
    Preview {
        /// The starts and halts.
        actions: Vec<PlannedAction>,
        /// The refusals, in the commands' order, each naming its package.
        #[serde(default)]
        refused: Vec<String>,
    },
    /// The files of a [`Request::CheckApply`] do not check: every finding, a line each.
    Findings(String),
    /// The shared map.
    Shared {
        /// The daemon's life and the changes its copy took in it: names this copy.
        copy: (u64, u64),
        /// The live values by key; none when the reader has this copy already.
        values: Option<Vec<(String, String)>>,
    },
    /// The number of the latest change of what the node shows ([`Request::StatusChange`]).
    StatusChange {
        /// Changes seen in this daemon's life.
        changes: u64,
    },
    /// The notices asked for.
    Notices {
        /// The daemon's life: numbers start again at 1 in a new life.
        incarnation: u64,
        /// The number of the last notice told in this life (a reader whose cursor is below
        /// the first kept one has missed `first - cursor - 1` notices).
        told: u64,
        /// The notices after the cursor, oldest first.
        notices: Vec<NumberedNotice>,
        /// When asked `with_status` and there are notices: the cluster's status as this
        /// node sees it when it answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<Box<Snapshot>>,
    },
    /// Refused, with Serviceguard's reason.
    Refused(String),
    /// The request could not be understood or carried out.
    Error(String),
}

/// The notices a daemon keeps for readers (the agent reads them every fraction of a second).
pub const NOTICES_KEPT: usize = 4096;

/// The most notices one reply carries.
pub const NOTICES_PER_REPLY: usize = 512;

/// The longest a notices request waits for a notice: well within the 10 s an
/// [`AdminClient`](super::admin::AdminClient) waits for an answer by default.
pub const NOTICES_WAIT_MAX: Duration = Duration::from_secs(5);

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// One notice, numbered in the order this daemon's life told it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NumberedNotice {
    /// Its number (1, 2, ... in this life).
    pub number: u64,
    /// When it was told, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The notice.
    pub notice: crate::status::Notice,
}

/// The node's view of the cluster and the daemon's own state.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DaemonStatus {
    /// NODE_NAME.
    pub node: String,
    /// This life's incarnation.
    pub incarnation: u64,
    /// The daemon's process id.
    pub pid: u32,
    /// What `cmviewcl -v` shows, as this node sees it.
    pub cluster: Snapshot,
    /// The safety timer in use.
    pub safety_timer: String,
    /// Whether the daemon's memory is locked (mlockall), or why not.
    pub memory_locked: Result<(), String>,
    /// Whether the timing thread runs under SCHED_RR, or why not.
    pub realtime: Result<(), String>,
    /// Heartbeat datagrams dropped, by reason (forged, replayed, foreign, ...).
    pub datagrams_rejected: BTreeMap<String, u64>,
    /// Authenticated datagrams that did not decode, or whose sender did not match.
    pub messages_undecodable: u64,
    /// Messages not sent because they were too large for a datagram and for a control frame.
    pub messages_too_large: u64,
    /// The control channel's frames, connections and refusals.
    #[serde(default)]
    pub control: ControlStatus,
    /// The longest a failover from a member can take in the current membership, in seconds
    /// (detection, re-formation and the survivors' wait; the package's start comes on top).
    pub failover_bound_seconds: f64,
    /// Every monitored_subnet of the packages, and its state on this node (as the network
    /// monitor last told): up, down, or absent (no interface has an address on it).
    #[serde(default)]
    pub monitored_subnets: BTreeMap<IpAddr, SubnetState>,
    /// The access policy in effect, for the agent.
    #[serde(default)]
    pub access: AccessView,
    /// The process id of each service running on this node, by package and service name.
    #[serde(default)]
    pub service_pids: BTreeMap<String, BTreeMap<String, u32>>,
}

/// The cluster's access policy in effect: who may do what from where (the agent applies it
/// to its users).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AccessView {
    /// The cluster file's USER_NAME / USER_HOST / USER_ROLE triples.
    pub cluster: Vec<cluster::AccessPolicy>,
    /// Each package's user_name / user_host lines (PACKAGE_ADMIN of that package), by
    /// package name.
    pub packages: BTreeMap<String, Vec<(Option<String>, String)>>,
    /// Every heartbeat and stationary address of every node in the cluster
    /// (CLUSTER_MEMBER_NODE): not of a node deleted while the cluster ran.
    pub node_addresses: Vec<IpAddr>,
}

impl AccessView {
    /// The policy of a configuration.
    pub fn of(config: &ClusterConfig, packages: &[PackageConfig]) -> AccessView {
        AccessView {
            cluster: config.access.clone(),
            packages: packages
                .iter()
                .filter(|p| !p.access.is_empty())
                .map(|p| (p.name.clone(), p.access.clone()))
                .collect(),
            // CLUSTER_MEMBER_NODE: not a node deleted while the cluster ran.
            node_addresses: config
                .in_cluster()
                .flat_map(|(_, n)| &n.interfaces)
                .flat_map(|i| i.heartbeat_ips.iter().chain(&i.stationary_ips))
                .copied()
                .collect(),
        }
    }
}

/// How the timing thread answers an admin request.
enum Answer {
    /// At once.
    Now(Reply),
    /// When the package coordinator answers the command forwarded with this serial.
    Later(u64),
    /// When a change after `after` is seen, or at `until` with none.
    OnChange {
        after: u64,
        until: std::time::Instant,
    },
    /// When a notice after `after` is told, or at `until` with none.
    OnNotice {
        after: u64,
        until: std::time::Instant,
        with_status: bool,
    },
}

/// The counters a digest of what the node shows is made at: the epoch, the members, the
/// phase, the generation, the package table's touches, the switching version.
type ShownKey = (u64, u32, Phase, u64, u64, (u64, u64));

/// What the node showed of the membership and the packages at the last look
/// ([`Driver::changes_seen`]).
#[derive(Default)]
struct Shown {
    /// The counters the digest was made at: while they stay, so does the digest.
    key: Option<ShownKey>,
    /// The digest.
    digest: u64,
    /// The changes seen in this life.
    changes: u64,
}

/// A status-change request waiting for a change.
struct ChangeWaiter {
    after: u64,
    until: std::time::Instant,
    reply: mpsc::Sender<Reply>,
}

/// A notices request waiting for a notice.
struct NoticeWaiter {
    after: u64,
    until: std::time::Instant,
    with_status: bool,
    reply: mpsc::Sender<Reply>,
}

/// The package coordinator's answer to a command given on this node
/// ([`crate::core::Event::CommandAnswered`]).
#[derive(Debug, Default)]
struct Answered {
    /// None: carried out; else why not.
    refusal: Option<String>,
    /// Carried out with this warning.
    warning: Option<String>,
}

/// An admin request waiting for the package coordinator's answer.
struct Awaiting {
    serial: u64,
    /// When it is given up on.
    deadline: std::time::Instant,
    reply: mpsc::Sender<Reply>,
    /// A change of the shared map (key, value): answered only once this node's copy shows
    /// it too, so that whoever made it reads it back from this node at once.
    share: Option<(String, Option<String>)>,
    /// The coordinator took the change; the reply waits for this node's copy.
    taken: bool,
    /// The coordinator the command went to (in its incarnation): should it leave the
    /// membership before it answers, no answer comes, and the reply says so at once.
    coordinator: Option<(NodeId, Incarnation)>,
    /// A cmapplyconf given with the cluster halted: once carried out, its generation is in
    /// effect here and everywhere ([`Reply::InEffect`]).
    applied_halted: bool,
    /// A cmapplyconf that adds nodes to the running cluster: once answered, its generation
    /// is in effect here ([`Reply::InEffect`]).
    enrolled: bool,
    /// A cmcheckconf given with the cluster halted ([`Node::check_halted`]): nothing is
    /// carried out, whatever the answer.
    check: bool,
}

/// The answer to a command the core took.
fn taken(taken: Taken) -> Option<Answer> {
    match taken {
        Taken::Done => None,
        Taken::Forwarded(serial) => Some(Answer::Later(serial)),
        Taken::Unchanged => Some(Answer::Now(Reply::Unchanged)),
    }
}

/// What the timing thread is given.
enum Input {
    Message {
        network: usize,
        envelope: Envelope,
    },
    Disk {
        id: IoId,
        result: Result<DiskReply, DiskFailure>,
    },
    Written {
        result: io::Result<()>,
        /// The file was the acceptor state, whose loss the node cannot survive (not the
        /// shared map, which the members hold too).
        fatal: bool,
    },
    Admin {
        request: Request,
        reply: mpsc::Sender<Reply>,
    },
    /// The cluster file and packages in effect, for a check made on the admin connection's
    /// thread.
    ConfigInEffect {
        reply: mpsc::Sender<(Arc<ClusterConfig>, Arc<Vec<PackageConfig>>)>,
    },
    /// What a preview needs, for [`Request::Preview`] on the admin connection's thread.
    PreviewBasis {
        reply: mpsc::Sender<Result<PreviewInputs, Reply>>,
    },
    /// What a preview of cmruncl on `nodes` needs, for [`Request::PreviewRunCluster`].
    FormationBasis {
        nodes: Vec<String>,
        reply: mpsc::Sender<Result<PreviewInputs, Reply>>,
    },
    /// [`Request::CheckApply`]'s files, parsed and checked on the admin connection's thread:
    /// what the running cluster would refuse ([`Node::check_change`]), or, the node halted,
    /// what any node of the halted cluster would ([`Node::check_halted`]).
    CheckChange {
        cluster: ClusterConfig,
        packages: Vec<PackageConfig>,
        reply: mpsc::Sender<Reply>,
    },
    Supervisor(Report),
    QuorumServer {
        id: u64,
        answer: Result<QuorumServerAnswer, String>,
    },
    Subnet(SubnetChange),
    /// The answer of node `to` over the configuration exchange ([`Action::Exchange`]), or
    /// what went wrong.
    Exchanged {
        to: String,
        /// The serial of the change the request was about.
        serial: Option<u64>,
        result: Result<Envelope, String>,
    },
    /// SIGTERM or SIGINT: halt the node (as cmhaltnode -f) and end.
    Terminate,
}

/// The safety timer's process groups, told through the watcher's pipe.
struct FenceGroups(Arc<Mutex<SafetyTimers>>);

impl Groups for FenceGroups {
    fn add(&self, group: i32) {
        let _ = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add_group(group);
    }

    fn forget(&self, group: i32) {
        let _ = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .forget_group(group);
    }
}

/// The log: lines go to a thread of their own that writes them to standard error, so the
/// timing thread never waits on a slow terminal or disk.
#[derive(Clone)]
pub(super) struct Log {
    lines: mpsc::Sender<String>,
    node: Arc<str>,
}

impl Log {
    fn start(node: &str) -> Log {
        let (lines, receiver) = mpsc::channel::<String>();
        let _ = thread::Builder::new()
            .name("cmcld-log".into())
            .spawn(move || {
                let stderr = io::stderr();
                for line in receiver {
                    let mut out = stderr.lock();
                    let _ = writeln!(out, "{line}");
                }
            });
        Log {
            lines,
            node: node.into(),
        }
    }

    pub(super) fn say(&self, what: impl fmt::Display) {
        let _ = self.lines.send(format!("cmcld[{}]: {what}", self.node));
    }
}

/// The counters the receivers keep.
#[derive(Default)]
struct Counters {
    undecodable: AtomicU64,
    /// Admin replies given out by the timing thread and not yet written by their connection:
    /// a halting daemon waits for them, so that the cmhaltcl that halted it hears "done".
    unwritten: Mutex<usize>,
    written: Condvar,
}

impl Counters {
    fn reply_given(&self) {
        *self.unwritten.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }

    fn reply_written(&self) {
        let mut unwritten = self.unwritten.lock().unwrap_or_else(|p| p.into_inner());
        *unwritten = unwritten.saturating_sub(1);
        self.written.notify_all();
    }

    /// Waits until every reply given out is written, or `limit` passed.
    fn wait_for_replies(&self, limit: Duration) {
        let unwritten = self.unwritten.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self
            .written
            .wait_timeout_while(unwritten, limit, |n| *n > 0);
    }
}

/// Everything read from the state directory.
struct Loaded {
    /// Held for the daemon's life.
    _lock: Flock<std::fs::File>,
    config: ClusterConfig,
    packages: Vec<PackageConfig>,
    key: Vec<u8>,
    control: cimguard_certs::ControlTls,
    /// Every node's name as control-channel certificates carry it, by node index.
    names: Vec<String>,
    me: NodeId,
    incarnation: Incarnation,
    persisted: Persisted,
    /// Said in the log once it runs: the files were written again from the generation in
    /// effect.
    rewritten: Option<u64>,
    /// Said in the log once it runs: what clearing this node's lock block for the cluster's
    /// new name did, when the files were written again with a new name.
    lock_cleared: Option<String>,
}

/// What a daemon starts as.
enum Started {
    /// A node of the cluster its files name.
    Configured(Box<Loaded>),
    /// A node configured in no cluster (no cluster file): it waits for a cmapplyconf that
    /// adds it ([`super::unconfigured`]).
    Unconfigured(Box<super::unconfigured::Bare>),
}

fn load(options: &Options) -> Result<Started, StartError> {
    let dir = &options.state_dir;
    // One daemon per state directory: a second one would take the first one's life and
    // remove its half-written state.
    let lock_path = dir.join("cmcld.lock");
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .or_else(|e| fail(format!("{}: {e}", lock_path.display())))?;
    let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock).or_else(|(_, errno)| {
        fail(format!(
            "{}: another cmcld runs with this state directory ({errno})",
            lock_path.display()
        ))
    })?;
    let persisted = match state_file::read(&dir.join("acceptor")) {
        Ok(None) => Persisted::default(),
        Ok(Some(bytes)) => wire::decode_persisted(&bytes)
            .or_else(|e| fail(format!("{}: {e}", dir.join("acceptor").display())))?,
        Err(e) => return fail(format!("{}: {e}", dir.join("acceptor").display())),
    };
    let cluster_path = dir.join("cluster.ascii");
    // The cluster's configuration was deleted (cmdeleteconf), and the daemon stopped before
    // its files were removed: removed now, as that daemon would have.
    let deleted = persisted
        .config
        .as_ref()
        .is_some_and(|g| g.cluster.nodes.is_empty());
    if deleted && cluster_path.exists() {
        remove_configuration(dir).or_else(|e| {
            fail(format!(
                "{}: the cluster's configuration was deleted (cmdeleteconf), but its files \
                 cannot be removed: {e}",
                dir.display()
            ))
        })?;
    }
    // Deleted from the cluster by a cmapplyconf (the generation persisted is the one that
    // deleted it, which only its retirement persists), and stopped before its files were
    // removed: removed now, as that daemon would have, and it goes on unconfigured. Only
    // files of that cluster that name this node: a daemon started under another name (a
    // host renamed, --node mistyped) finds itself missing from the generation too, and is
    // refused below, its files untouched.
    let retired = persisted
        .config
        .as_ref()
        .filter(|g| g.retires(&options.node));
    let of_that_cluster = |g: &crate::config::Generation| {
        std::fs::read_to_string(&cluster_path)
            .ok()
            .and_then(|text| cluster::parse(&text, "cluster.ascii").ok())
            .is_some_and(|checked| {
                checked.config.name.eq_ignore_ascii_case(&g.cluster.name)
                    && checked.config.position(&options.node).is_some()
            })
    };
    let mut said = None;
    if let Some(g) = retired.filter(|g| of_that_cluster(g)) {
        remove_configuration(dir).or_else(|e| {
            fail(format!(
                "{}: node {} was deleted from cluster {} (configuration generation {}), but \
                 its files cannot be removed: {e}; remove cluster.ascii and packages/ there, \
                 and it starts unconfigured",
                dir.display(),
                options.node,
                g.cluster.name,
                g.sequence
            ))
        })?;
        said = Some(format!(
            "deleted from cluster {} (configuration generation {}) before this start: its \
             configuration files are removed from {}; the daemon goes on unconfigured",
            g.cluster.name,
            g.sequence,
            dir.display()
        ));
    }
    if !cluster_path.exists() {
        let names_me =
            |g: &&Arc<crate::config::Generation>| g.cluster.node(&options.node).is_some();
        match persisted.config.as_ref().filter(names_me) {
            // Added to a cluster while unconfigured, and stopped between persisting the
            // generation and writing its files: written now.
            Some(g) => write_configuration(dir, g).or_else(|e| {
                fail(format!(
                    "{}: cannot write configuration generation {} into it: {e}",
                    dir.display(),
                    g.sequence
                ))
            })?,
            None => {
                let key = read_key(&dir.join("cluster.key"))?;
                let control = read_own_control_tls(dir, &options.node)?;
                let incarnation = next_incarnation(dir)?;
                return Ok(Started::Unconfigured(Box::new(super::unconfigured::Bare {
                    lock,
                    key,
                    control,
                    incarnation,
                    persisted,
                    said,
                })));
            }
        }
    }
    let text = std::fs::read_to_string(&cluster_path)
        .or_else(|e| fail(format!("{}: {e}", cluster_path.display())))?;
    let config = match cluster::parse(&text, &cluster_path.display().to_string()) {
        Ok(checked) => checked.config,
        Err(findings) => {
            let lines: Vec<String> = findings.iter().map(ToString::to_string).collect();
            return fail(lines.join("\n"));
        }
    };
    let mut packages = Vec::new();
    let package_dir = dir.join("packages");
    if package_dir.is_dir() {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&package_dir)
            .or_else(|e| fail(format!("{}: {e}", package_dir.display())))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|e| e == "conf"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path)
                .or_else(|e| fail(format!("{}: {e}", path.display())))?;
            match package::parse(&text, &path.display().to_string()) {
                Ok(checked) => packages.push(checked.config),
                Err(findings) => {
                    let lines: Vec<String> = findings.iter().map(ToString::to_string).collect();
                    return fail(lines.join("\n"));
                }
            }
        }
    }
    // The configuration in effect: the files are the first generation, and a later one a
    // cmapplyconf made is in the persisted state, which the core takes over the files. Where
    // the files say otherwise (a daemon stopped between persisting a generation taken with
    // the cluster halted and writing its files, or files edited by hand since) they are
    // written again from it, so that this life's sockets, certificates and cluster identity
    // follow the generation in effect too.
    let mut rewritten = None;
    let mut lock_cleared = None;
    let (config, packages) = match persisted.config.as_ref().filter(|g| g.number > 1) {
        Some(g)
            if g.cluster.as_written() != config
                || !crate::core::same_packages(&g.packages, &packages) =>
        {
            // Renamed (and stopped before its lock block was cleared): cleared now, from
            // the name the files still have.
            let index = g.cluster.position(&options.node);
            // Not in the generation in effect, files of another cluster or not naming it
            // (the files of a node it deleted were removed above).
            if index.is_none() {
                return fail(format!(
                    "node {} is not in cluster {} (configuration generation {}), the \
                     configuration in effect in {}: started under another name (--node), or \
                     deleted from the cluster while files not of it were put there; nothing \
                     was changed",
                    options.node,
                    g.cluster.name,
                    g.sequence,
                    dir.display()
                ));
            }
            let previous = crate::core::cluster_id(&config.name);
            if let Some(reset) = index.and_then(|i| LockReset::renaming(previous, &g.cluster, i)) {
                // Not ended in time: its write could land in a lock race of this life, over
                // a ballot.
                let told = clear_lock_block(reset)
                    .or_else(|e| fail(format!("{e}; the node does not start")))?;
                lock_cleared = Some(told);
            }
            write_configuration(dir, g).or_else(|e| {
                fail(format!(
                    "{}: cannot write configuration generation {} into it: {e}",
                    dir.display(),
                    g.sequence
                ))
            })?;
            rewritten = Some(g.sequence);
            (g.cluster.clone(), g.packages.clone())
        }
        // The files are the generation's, whose nodes deleted while the cluster ran keep
        // their numbers (they are in no file).
        Some(g) => (g.cluster.clone(), packages),
        None => (config, packages),
    };
    let Some(index) = config.position(&options.node) else {
        return fail(format!(
            "{}: node {} is not in the cluster {}",
            cluster_path.display(),
            options.node,
            config.name
        ));
    };
    let key_path = dir.join("cluster.key");
    let key = read_key(&key_path)?;
    let (control, names) = read_control_tls(dir, &config, index)?;
    let incarnation = next_incarnation(dir)?;
    Ok(Started::Configured(Box::new(Loaded {
        _lock: lock,
        config,
        packages,
        key,
        control,
        names,
        me: NodeId(index as u32),
        incarnation,
        persisted,
        rewritten,
        lock_cleared,
    })))
}

/// This life's number: the boot counter plus one, on disk before this life says a word.
fn next_incarnation(dir: &Path) -> Result<Incarnation, StartError> {
    let counter_path = dir.join("incarnation");
    let previous = match state_file::read(&counter_path) {
        Ok(None) => 0,
        Ok(Some(bytes)) if bytes.len() == 8 => {
            u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]))
        }
        Ok(Some(_)) => return fail(format!("{}: not a boot counter", counter_path.display())),
        Err(e) => return fail(format!("{}: {e}", counter_path.display())),
    };
    let incarnation = previous + 1;
    state_file::write(&counter_path, &incarnation.to_le_bytes())
        .or_else(|e| fail(format!("{}: {e}", counter_path.display())))?;
    Ok(Incarnation(incarnation))
}

/// A job of the writer thread.
enum WriteJob {
    /// A state file ([`state_file::write`]); `fatal`: a failure fences the node.
    State {
        path: PathBuf,
        bytes: Vec<u8>,
        fatal: bool,
    },
    /// A generation's files ([`write_configuration`]), and this node's lock block cleared
    /// when the generation renames the cluster ([`reset_lock_block`]).
    Configuration {
        dir: PathBuf,
        config: Arc<crate::config::Generation>,
        lock_reset: Option<LockReset>,
    },
}

/// How long the writer waits for [`reset_lock_block`].
const LOCK_RESET_WAIT: Duration = Duration::from_secs(5);

/// This node's block of the lock LUN, to be cleared of what the cluster wrote under its
/// previous name: a block carries the cluster's id (a digest of CLUSTER_NAME), and one of
/// another id fails every lock race, as Disk Paxos must for a LUN given to two clusters.
#[derive(Debug)]
struct LockReset {
    /// The LUN of this node in the new generation.
    path: PathBuf,
    /// This node's block, of `blocks`.
    block: usize,
    blocks: usize,
    /// The cluster's id before, and in the new generation.
    previous: u64,
    next: u64,
}

impl LockReset {
    /// Node `index`'s block of `cluster`'s lock LUN, when the cluster was called otherwise
    /// (its id `previous`); none without a lock LUN or a new name.
    fn renaming(previous: u64, cluster: &ClusterConfig, index: usize) -> Option<LockReset> {
        let next = crate::core::cluster_id(&cluster.name);
        if cluster.lock != ClusterLock::LockLun || next == previous {
            return None;
        }
        Some(LockReset {
            path: cluster.nodes.get(index)?.lock_lun.clone()?,
            block: index,
            blocks: cluster.nodes.len(),
            previous,
            next,
        })
    }
}

/// [`reset_lock_block`] on a thread of its own, waited for at most [`LOCK_RESET_WAIT`]: a
/// LUN that hangs holds up neither the caller nor what waits for it (a commit's messages,
/// a daemon's start) for long. What was done, for the log; Err when it did not end in time
/// (its write may still land later) or could not start.
fn clear_lock_block(reset: LockReset) -> Result<String, String> {
    let (done, finished) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name("cmcld-lock-reset".into())
        .spawn(move || {
            let _ = done.send(reset_lock_block(&reset));
        });
    match spawned {
        Ok(_) => finished.recv_timeout(LOCK_RESET_WAIT).map_err(|_| {
            "the lock LUN did not answer the clearing of this node's block for the cluster's \
             new name in time: every lock race on it may fail"
                .to_owned()
        }),
        Err(e) => Err(format!(
            "this node's block of the lock LUN was not cleared for the cluster's new name: {e}"
        )),
    }
}

/// Clears this node's lock block (all zeros: never written) if the cluster wrote it under
/// its previous id; a block of a third cluster is left as it is. Done while the cluster is
/// halted everywhere (cmapplyconf with the cluster halted), so no lock race is under way,
/// and every race after it is for a later membership epoch, which nothing written before
/// takes part in. What was done, for the log.
fn reset_lock_block(reset: &LockReset) -> String {
    use crate::disk_paxos::{BlockError, DiskReply, DiskRequest, IoId, LockBlock, BLOCK_BYTES};
    let path = reset.path.display();
    let cleared = (|| {
        let lun = LockLun::open(&reset.path, reset.blocks).map_err(|e| e.to_string())?;
        let block = u8::try_from(reset.block).map_err(|_| "no such block".to_owned())?;
        let read = DiskRequest::Read { id: IoId(0), block };
        let Ok(DiskReply::Read(bytes)) = lun.perform(&read) else {
            return Err("its block could not be read".to_owned());
        };
        match LockBlock::decode(&bytes, reset.previous) {
            Ok(None) => return Ok(false),
            Ok(Some(_)) => {}
            Err(BlockError::OtherCluster { found }) if found == reset.next => return Ok(false),
            Err(e) => return Err(format!("left as it is: {e}")),
        }
        let write = DiskRequest::Write {
            id: IoId(1),
            block,
            data: Box::new([0; BLOCK_BYTES]),
        };
        lun.perform(&write).map_err(|e| e.to_string())?;
        Ok(true)
    })();
    match cleared {
        Ok(true) => format!(
            "cleared this node's block of the lock LUN {path}, written under the cluster's \
             previous name"
        ),
        Ok(false) => format!("this node's block of the lock LUN {path} needs no clearing"),
        Err(e) => format!(
            "warning: this node's block of the lock LUN {path} was not cleared for the \
             cluster's new name ({e}): every lock race on the LUN fails until it is (with \
             the cluster halted, zero the 512 bytes at offset {} of the LUN)",
            reset.block * super::lock_lun::STRIDE
        ),
    }
}

/// Writes generation `config` into the state directory `dir` as the files a node starts
/// from: `cluster.ascii` and `packages/NAME.conf` for each package, each replaced whole
/// (written beside, synced, renamed), then the package files of packages no longer there
/// removed, and the directories synced.
pub(super) fn write_configuration(
    dir: &Path,
    config: &crate::config::Generation,
) -> io::Result<()> {
    use crate::config::write::{cluster_ascii, package_ascii};
    let packages_dir = dir.join("packages");
    std::fs::create_dir_all(&packages_dir)?;
    let mut names = BTreeSet::new();
    for package in &config.packages {
        // Names were checked by the parser where the files were read; a peer's message is
        // checked again here, as the name becomes a path.
        let name = &package.name;
        let plain = name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !plain {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("package name {name:?} cannot name a file"),
            ));
        }
        let file = format!("{name}.conf");
        replace_text(&packages_dir.join(&file), &package_ascii(package))?;
        names.insert(file);
    }
    for entry in std::fs::read_dir(&packages_dir)? {
        let path = entry?.path();
        let stale = path.extension().is_some_and(|e| e == "conf")
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_none_or(|n| !names.contains(n));
        if stale {
            std::fs::remove_file(&path)?;
        }
    }
    std::fs::File::open(&packages_dir)?.sync_all()?;
    replace_text(&dir.join("cluster.ascii"), &cluster_ascii(&config.cluster))?;
    std::fs::File::open(dir)?.sync_all()
}

/// Removes the configuration files of a node deleted from its cluster: cluster.ascii, the
/// package files and the shared map. The key, certificates, boot counter and acceptor state
/// (with the epochs it promised, and the generation that deleted it) stay: the daemon goes
/// on unconfigured, and its heartbeats, were it to send any, name it, which no node of the
/// cluster numbers any longer (they are refused as from an unknown sender).
fn remove_configuration(dir: &Path) -> io::Result<()> {
    let gone = |result: io::Result<()>| match result {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    gone(std::fs::remove_file(dir.join("cluster.ascii")))?;
    gone(std::fs::remove_file(dir.join("shared")))?;
    gone(std::fs::remove_dir_all(dir.join("packages")))?;
    std::fs::File::open(dir)?.sync_all()
}

/// Replaces the file at `path` with `text`: written beside it (mode 0600), synced, renamed
/// over it. The directory is synced by the caller.
fn replace_text(path: &Path, text: &str) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut staged = path.as_os_str().to_owned();
    staged.push(".new");
    let staged = PathBuf::from(staged);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&staged)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&staged, path)
}

/// Reads the control channel's material and checks that the certificate is this node's; with
/// every node's name as certificates carry it.
fn read_control_tls(
    dir: &Path,
    config: &ClusterConfig,
    me: usize,
) -> Result<(cimguard_certs::ControlTls, Vec<String>), StartError> {
    let names = config
        .nodes
        .iter()
        .map(|n| cimguard_certs::node_dns_name(&n.name))
        .collect::<Result<Vec<String>, _>>()
        .or_else(|e| fail(format!("{e}: node names must be host names (the control channel's certificates carry them)")))?;
    let tls = read_own_control_tls(dir, &names[me])?;
    Ok((tls, names))
}

/// Reads the control channel's material and checks that the certificate is node `node`'s.
fn read_own_control_tls(dir: &Path, node: &str) -> Result<cimguard_certs::ControlTls, StartError> {
    let name = cimguard_certs::node_dns_name(node).or_else(|e| {
        fail(format!(
            "{e}: node names must be host names (the control channel's certificates carry them)"
        ))
    })?;
    let paths = cimguard_certs::ControlPaths::in_directory(dir);
    let tls = cimguard_certs::control_tls(&paths).or_else(|e| {
        let mut why = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(inner) = source {
            why.push_str(&format!(": {inner}"));
            source = inner.source();
        }
        fail(format!(
            "the control channel: {why} (make the material with `cimguard cluster-certs`)"
        ))
    })?;
    if tls.node != name {
        return fail(format!(
            "{}: the certificate is node {}'s, not this node's ({name})",
            paths.cert.display(),
            tls.node,
        ));
    }
    Ok(tls)
}

/// Reads the heartbeat key: at least [`KEY_MIN_BYTES`] bytes, readable by its owner only.
pub fn read_key(path: &Path) -> Result<Vec<u8>, StartError> {
    let metadata = std::fs::metadata(path).or_else(|e| fail(format!("{}: {e}", path.display())))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        return fail(format!(
            "{}: the heartbeat key must be readable by its owner only (mode {:o})",
            path.display(),
            metadata.permissions().mode() & 0o777
        ));
    }
    let key = std::fs::read(path).or_else(|e| fail(format!("{}: {e}", path.display())))?;
    if key.len() < KEY_MIN_BYTES {
        return fail(format!(
            "{}: the heartbeat key has {} bytes, at least {KEY_MIN_BYTES} are needed",
            path.display(),
            key.len()
        ));
    }
    Ok(key)
}

/// Locks the daemon's memory (mlockall) so that the timing path is never paged out; where
/// that is refused (no CAP_IPC_LOCK, a small RLIMIT_MEMLOCK) the reason is returned for the
/// log and the status, and the daemon carries on.
///
/// Pages are locked as they are first touched (`MCL_ONFAULT`, Linux 4.4 and later), not
/// all at once: with `MCL_FUTURE` alone every new mapping is filled and locked whole, so
/// each thread's 2 MiB stack became 2 MiB of resident memory, and the agent's threads under
/// 64 clients took 190 MiB of stacks they barely touch (BENCHMARKS.md, load soak). A kernel
/// that does not know the flag gets the plain lock.
fn lock_memory() -> Result<(), String> {
    use nix::sys::mman::{mlockall, MlockAllFlags};
    let whole = MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let on_fault = whole | MlockAllFlags::from_bits_retain(nix::libc::MCL_ONFAULT);
        match mlockall(on_fault) {
            Err(nix::errno::Errno::EINVAL) => {}
            other => return other.map_err(|errno| format!("mlockall refused: {errno}")),
        }
    }
    mlockall(whole).map_err(|errno| format!("mlockall refused: {errno}"))
}

/// Puts the calling thread (the timing thread) under SCHED_RR at a middle real-time
/// priority, so that ordinary load cannot delay heartbeats and the safety timer's pets
/// (cluster.md, "Lessons for our engine"); where that is refused the reason is returned for
/// the log and the status, and the daemon carries on under the normal policy.
fn realtime_priority() -> Result<(), String> {
    use thread_priority::unix::{
        set_thread_priority_and_policy, thread_native_id, RealtimeThreadSchedulePolicy,
        ThreadSchedulePolicy,
    };
    use thread_priority::{ThreadPriority, ThreadPriorityValue};
    let priority = ThreadPriorityValue::try_from(REALTIME_PRIORITY)
        .map_err(|e| format!("SCHED_RR priority {REALTIME_PRIORITY}: {e}"))?;
    set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Crossplatform(priority),
        ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::RoundRobin),
    )
    .map_err(|e| format!("SCHED_RR refused: {e}"))
}

/// The timing thread's real-time priority (of 1 to 99): above ordinary work, below the
/// kernel's own real-time threads.
const REALTIME_PRIORITY: u8 = 50;

/// SIGTERM and SIGINT become an input, `make()` (a parent may have blocked them: unblocked
/// here, before the daemon's threads start, so every thread inherits that), and set
/// [`terminated`].
pub(super) fn take_termination<T: Send + 'static>(
    inputs: mpsc::Sender<T>,
    make: fn() -> T,
) -> Result<(), StartError> {
    let terms = [nix::sys::signal::SIGTERM, nix::sys::signal::SIGINT];

    let mut unblock = nix::sys::signal::SigSet::empty();
    for signal in terms {
        unblock.add(signal);
    }
    nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_UNBLOCK,
        Some(&unblock),
        None,
    )
    .or_else(|e| fail(format!("cannot unblock SIGTERM and SIGINT: {e}")))?;
    let mut signals = signal_hook::iterator::Signals::new(terms.map(|s| s as i32))
        .or_else(|e| fail(format!("cannot take SIGTERM and SIGINT: {e}")))?;
    thread::Builder::new()
        .name("cmcld-signals".into())
        .spawn(move || {
            for _ in signals.forever() {
                TERMINATED.store(true, Ordering::SeqCst);
                if inputs.send(make()).is_err() {
                    return;
                }
            }
        })
        .or_else(|e| fail(format!("signal thread: {e}")))?;
    Ok(())
}

/// The monotonic clock the core is driven with.
#[derive(Clone, Copy)]
pub(super) struct Clock(pub(super) std::time::Instant);

impl Clock {
    pub(super) fn now(self) -> Instant {
        Instant::from_nanos(u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }
}

/// Runs the daemon until the node halts and the daemon is to end ([`Ended::Halted`]: with
/// [`Options::exit_on_halt`], or after SIGTERM or SIGINT), until the halted node is told to
/// start again ([`Ended::StartAgain`]), or until it must not run any longer (fenced: the
/// safety timer kills the process group at once; this returns only if it has not yet).
pub fn run(options: &Options, fence: SafetyTimers) -> Result<Ended, StartError> {
    let log = Log::start(&options.node);
    let loaded = match load(options)? {
        Started::Configured(loaded) => *loaded,
        Started::Unconfigured(bare) => {
            return super::unconfigured::run(options, *bare, fence, &log);
        }
    };
    let memory_locked = lock_memory();
    if let Err(why) = &memory_locked {
        log.say(format_args!(
            "warning: {why}; the timing path may be paged out under memory pressure"
        ));
    }
    let Loaded {
        _lock,
        config,
        packages,
        key,
        control,
        names,
        me,
        incarnation,
        persisted,
        rewritten,
        lock_cleared,
    } = loaded;
    if let Some(told) = lock_cleared {
        log.say(told);
    }
    if let Some(number) = rewritten {
        log.say(format_args!(
            "the state directory's cluster.ascii and packages/ differed from configuration \
             generation {number}, which is in effect: written again from it (change the \
             configuration with cmapplyconf, with the cluster halted if need be)"
        ));
    }
    let timing = Timing::derive(&config, "cluster.ascii").or_else(|findings| {
        let lines: Vec<String> = findings.iter().map(ToString::to_string).collect();
        fail(lines.join("\n"))
    })?;
    if fence.has_device() {
        watchdog::check_horizon(timing.pet_horizon()).or_else(fail)?;
    }
    let safety_timer = fence.describe();
    log.say(format_args!("safety timer: {safety_timer}"));
    let catalog = Catalog::resolve(&config, &packages)
        .or_else(|e| fail(format!("the packages do not fit the cluster: {e}")))?;
    // The files are the first generation; a later one the node had in effect (cmapplyconf)
    // is in its persisted state, and the core takes it from there.
    let mut settings = Settings::from_config(
        &config,
        timing,
        me,
        1,
        incarnation.0 ^ u64::from(std::process::id()),
    );
    settings.catalog = Arc::new(catalog);
    settings.packages = Arc::new(packages);
    settings.start_halted = options.start_halted;
    if fence.has_device() {
        // cmapplyconf may lower MEMBER_TIMEOUT online: not below what the device serves.
        settings.pet_horizon_min = watchdog::DEVICE_HORIZON_MIN;
    }
    remove_stale_addresses(&log, &settings.packages, &persisted);

    // Sockets: one per heartbeat network, on this node's address for it.
    let my_config = &config.nodes[me.index()];
    let mut sockets = Vec::new();
    for (network, address) in my_config.heartbeat_addresses().enumerate() {
        let bind = SocketAddr::new(address, options.heartbeat_port);
        let socket = UdpSocket::bind(bind).or_else(|e| {
            fail(format!(
                "heartbeat network {network}: cannot bind {bind}: {e}"
            ))
        })?;
        sockets.push(Arc::new(socket));
    }
    let peers: Vec<Vec<SocketAddr>> = config
        .nodes
        .iter()
        .map(|n| {
            n.heartbeat_addresses()
                .map(|a: IpAddr| SocketAddr::new(a, options.heartbeat_port))
                .collect()
        })
        .collect();

    let (inputs, received) = mpsc::channel::<Input>();
    take_termination(inputs.clone(), || Input::Terminate)?;

    let counters = Arc::new(Counters::default());
    let node_names: Vec<&str> = config.nodes.iter().map(|n| n.name.as_str()).collect();
    let opener = Arc::new(Mutex::new(Opener::new(
        &key,
        crate::core::cluster_id(&config.name),
        me.0,
        &node_names,
    )));
    for (network, socket) in sockets.iter().enumerate() {
        let receiver = socket
            .try_clone()
            .or_else(|e| fail(format!("heartbeat socket: {e}")))?;
        let inputs = inputs.clone();
        let opener = opener.clone();
        let counters = counters.clone();
        thread::Builder::new()
            .name(format!("cmcld-rx{network}"))
            .spawn(move || receive(&receiver, network, &opener, &counters, &inputs))
            .or_else(|e| fail(format!("receiver thread: {e}")))?;
    }

    let exchange_tls = control.exchange_client.clone();
    // The control channel, on the heartbeat port (TCP) of the same addresses.
    let control = {
        let inputs = Mutex::new(inputs.clone());
        let deliver: Arc<control::Deliver> = Arc::new(move |network, envelope| {
            inputs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .send(Input::Message { network, envelope })
                .is_ok()
        });
        let log = log.clone();
        let tell: Arc<control::Tell> = Arc::new(move |line| log.say(line));
        let settings = ControlSettings {
            tls: control,
            me,
            names,
            addresses: peers.clone(),
        };
        ControlChannel::start(settings, &deliver, &tell).or_else(|e| fail(e.to_string()))?
    };

    // The writer.
    let (writes, to_write) = mpsc::channel::<WriteJob>();
    {
        let inputs = inputs.clone();
        let log = log.clone();
        thread::Builder::new()
            .name("cmcld-writer".into())
            .spawn(move || {
                for job in to_write {
                    let (result, fatal) = match job {
                        WriteJob::State { path, bytes, fatal } => {
                            (state_file::write(&path, &bytes), fatal)
                        }
                        // The next life starts from these files: a node that cannot write
                        // them must not take part.
                        WriteJob::Configuration {
                            dir,
                            config,
                            lock_reset,
                        } => {
                            // Cleared first: once the files have the new name, the next
                            // start no longer knows the old one. Done before the files
                            // count as written (a new life started right after would cut
                            // it short); a write of it that lands late is harmless here,
                            // as the cluster is halted until this life ends.
                            if let Some(reset) = lock_reset {
                                match clear_lock_block(reset) {
                                    Ok(told) => log.say(told),
                                    Err(e) => log.say(format_args!("warning: {e}")),
                                }
                            }
                            (write_configuration(&dir, &config), true)
                        }
                    };
                    if inputs.send(Input::Written { result, fatal }).is_err() {
                        return;
                    }
                }
            })
            .or_else(|e| fail(format!("writer thread: {e}")))?;
    }

    // The lock LUN.
    let disk = if config.lock == ClusterLock::LockLun {
        let Some(path) = my_config.lock_lun.clone() else {
            return fail("CLUSTER_LOCK_LUN is not set for this node");
        };
        let lun = LockLun::open(&path, config.nodes.len())
            .or_else(|e| fail(format!("{}: {e}", path.display())))?;
        if !lun.direct() {
            log.say(format_args!(
                "warning: {} does not take O_DIRECT; writes are synced instead",
                path.display()
            ));
        }
        let inputs = inputs.clone();
        Some(
            lun.spawn(move |id, result| {
                let _ = inputs.send(Input::Disk { id, result });
            })
            .or_else(|e| fail(format!("lock LUN thread: {e}")))?,
        )
    } else {
        None
    };

    // The quorum server client: one connection kept open, polled by the core.
    let quorum = if let ClusterLock::QuorumServer {
        host,
        alternate,
        polling_interval,
        ..
    } = &config.lock
    {
        let ca = options.state_dir.join("qs-ca.pem");
        let mut client = ClientSettings::new(
            host,
            alternate.as_deref(),
            ca,
            &config.name,
            &config.nodes[me.index()].name,
        );
        // The core's own limit for a tie-break; it ignores later answers.
        client.timeout = settings.timing.lock_timeout.max(STEP_TIMEOUT_MIN);
        client.reconnect_interval = (*polling_interval).min(Duration::from_secs(10));
        let inputs = inputs.clone();
        Some(
            QuorumClient::spawn(client, move |id, answer| {
                let _ = inputs.send(Input::QuorumServer { id, answer });
            })
            .or_else(|e| fail(format!("quorum server client: {e}")))?,
        )
    } else {
        None
    };

    // The admin socket.
    let quorum_check = Arc::new(QuorumCheck {
        ca: options.state_dir.join("qs-ca.pem"),
        me: config.nodes[me.index()].name.clone(),
    });
    {
        let inputs = Mutex::new(inputs.clone());
        let counters = counters.clone();
        serve_admin_socket(
            &options.state_dir,
            &log,
            Arc::new(move |stream| {
                let inputs = inputs.lock().unwrap_or_else(|p| p.into_inner()).clone();
                serve_admin(stream, &inputs, &counters, &quorum_check)
            }),
        )?;
    }
    let fence = Arc::new(Mutex::new(fence));
    let supervisor = {
        let inputs = inputs.clone();
        Supervisor::new(
            &options.node,
            &options.state_dir,
            Arc::new(FenceGroups(fence.clone())),
            move |report| {
                let _ = inputs.send(Input::Supervisor(report));
            },
        )
    };
    let monitor = start_monitor(&log, &settings.packages, inputs.clone())?;
    let exchange_inputs = inputs.clone();
    drop(inputs);

    // The timing thread is this one; the threads started above keep the normal policy.
    let realtime = realtime_priority();
    if let Err(why) = &realtime {
        log.say(format_args!(
            "warning: {why}; heartbeats and the safety timer may be delayed under CPU load"
        ));
    }
    let clock = Clock(std::time::Instant::now());
    let mut node = Node::new(settings, incarnation, persisted, clock.now());
    node.set_address_check(host_addresses());
    // The shared map of earlier lives; a damaged one is dropped (the members send their
    // copies when this node joins).
    let shared_path = options.state_dir.join("shared");
    match state_file::read(&shared_path) {
        Ok(None) => {}
        Ok(Some(bytes)) => match wire::decode_shared(&bytes) {
            Ok(map) => node.load_shared(map),
            Err(e) => log.say(format_args!(
                "{}: {e}; the shared map is taken from the members",
                shared_path.display()
            )),
        },
        Err(e) => log.say(format_args!(
            "{}: {e}; the shared map is taken from the members",
            shared_path.display()
        )),
    }
    log.say(format_args!(
        "started as node {} of cluster {} (life {}, heartbeats on {} network(s), safety timer: process fence)",
        config.nodes[me.index()].name,
        config.name,
        incarnation.0,
        sockets.len()
    ));
    let mut driver = Driver {
        node,
        clock,
        log,
        // One sequence per receiver, so that each sees its own datagrams numbered without
        // gaps and the replay window (64) spans many heartbeat rounds on every network.
        sealers: Vec::new(),
        sealer: Sealer::new(
            &key,
            crate::core::cluster_id(&config.name),
            me.0,
            &config.nodes[me.index()].name,
            incarnation.0,
        ),
        sockets,
        peers,
        heartbeat_port: options.heartbeat_port,
        control,
        writes,
        state_dir: options.state_dir.clone(),
        gate: WriteGate::new(),
        disk,
        quorum,
        fence: fence.clone(),
        supervisor,
        catalog: Arc::new(Catalog::default()),
        names: None,
        notices: VecDeque::new(),
        notices_told: 0,
        counters,
        opener,
        config: Arc::new(config),
        memory_locked,
        realtime,
        safety_timer,
        name: options.node.clone(),
        stop: None,
        monitor,
        subnets: BTreeMap::new(),
        awaiting: Vec::new(),
        early_answers: VecDeque::new(),
        notice_waiters: Vec::new(),
        change_waiters: Vec::new(),
        shown: Shown::default(),
        exit_on_halt: options.exit_on_halt,
        terminating: false,
        control_queued: 0,
        control_unqueued: 0,
        exchange: super::exchange::Requests::new(exchange_tls, &key, options.heartbeat_port, {
            let inputs = Mutex::new(exchange_inputs);
            Arc::new(move |to, serial, result| {
                let _ = inputs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .send(Input::Exchanged { to, serial, result });
            })
        }),
    };
    driver.sealers = vec![driver.sealer.clone(); driver.peers.len()];
    driver.catalog = driver.node.settings().catalog.clone();
    driver.names = Some(driver.node.status(driver.clock.now()));
    driver.monitor_subnets();
    let result = driver.run(&received);
    drop(driver);
    // The safety timers close as the daemon's exit would close them: armed (a fence under
    // way), they fence; disarmed, they end. Closed here, not when the last holder lets go
    // (the supervisor's threads may hold the set a while): a daemon that starts again
    // waits for its watcher to end before executing itself.
    fence.lock().unwrap_or_else(|p| p.into_inner()).close_all();
    drop(fence);
    let _ = std::fs::remove_file(options.state_dir.join("cmcld.sock"));
    result
}

/// Every monitored_subnet of `packages`.
fn monitored_subnets(packages: &[PackageConfig]) -> BTreeSet<IpAddr> {
    packages
        .iter()
        .flat_map(|p| p.monitored_subnets.iter().map(|(subnet, _)| *subnet))
        .collect()
}

/// Removes the relocatable addresses of the packages this node does not run, left on its
/// interfaces by an earlier life that was fenced or killed; those of the packages it adopts
/// (left running detached) stay. `packages` are the files' generation; `persisted` has the
/// generation in effect, when cmapplyconf changed it, and the detached packages.
fn remove_stale_addresses(log: &Log, packages: &[PackageConfig], persisted: &Persisted) {
    let applied = persisted.config.as_ref().map(|g| g.packages.as_slice());
    let every = packages.iter().chain(applied.unwrap_or_default());
    let (adopted, others): (Vec<&PackageConfig>, Vec<&PackageConfig>) =
        every.partition(|p| persisted.detached.contains(&p.name));
    let kept: BTreeSet<IpAddr> = adopted
        .iter()
        .flat_map(|p| network::package_addresses(p))
        .collect();
    let stale: BTreeSet<IpAddr> = others
        .iter()
        .flat_map(|p| network::package_addresses(p))
        .filter(|a| !kept.contains(a))
        .collect();
    if stale.is_empty() {
        return;
    }
    let stale: Vec<IpAddr> = stale.into_iter().collect();
    match network::remove_addresses(&stale) {
        Ok(removed) => {
            for gone in removed {
                log.say(format_args!(
                    "removed {}/{} from {}: a relocatable address of a package this node does not run, left by an earlier life",
                    gone.address, gone.prefix, gone.interface
                ));
            }
        }
        Err(e) => log.say(format_args!(
            "warning: cannot remove the relocatable addresses an earlier life left: {e}"
        )),
    }
}

/// Starts the network monitor, telling the timing thread of subnet changes. Without netlink
/// the daemon starts only when no package monitors a subnet.
fn start_monitor(
    log: &Log,
    packages: &[PackageConfig],
    inputs: mpsc::Sender<Input>,
) -> Result<Option<Monitor>, StartError> {
    let subnets = monitored_subnets(packages);
    let trouble = log.clone();
    let started = Monitor::start(subnets.iter().copied(), move |event| match event {
        MonitorEvent::Subnet(change) => {
            let _ = inputs.send(Input::Subnet(change));
        }
        MonitorEvent::Trouble(line) => trouble.say(line),
    });
    match started {
        Ok(monitor) => Ok(Some(monitor)),
        Err(e) if subnets.is_empty() => {
            log.say(format_args!("warning: no network monitor: {e}"));
            Ok(None)
        }
        Err(e) => fail(format!("the network monitor cannot start: {e}")),
    }
}

/// Reads datagrams from one network for the timing thread.
fn receive(
    socket: &UdpSocket,
    network: usize,
    opener: &Mutex<Opener>,
    counters: &Counters,
    inputs: &mpsc::Sender<Input>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let Ok((length, _from)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        let datagram = &buffer[..length];
        let opened = {
            let mut opener = opener.lock().unwrap_or_else(|p| p.into_inner());
            opener
                .open(datagram)
                .map(|o| (o.sender, o.incarnation, o.payload.to_vec()))
        };
        let Ok((sender, life, payload)) = opened else {
            continue;
        };
        match wire::decode_envelope(&payload) {
            // The sealed header and the message must name the same sender and life.
            Ok(envelope)
                if envelope.from == NodeId(sender) && envelope.from_incarnation.0 == life =>
            {
                if inputs.send(Input::Message { network, envelope }).is_err() {
                    return;
                }
            }
            _ => {
                counters.undecodable.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn serve_admin(
    stream: UnixStream,
    inputs: &mpsc::Sender<Input>,
    counters: &Counters,
    quorum_check: &QuorumCheck,
) -> io::Result<()> {
    stream.set_read_timeout(Some(ADMIN_IDLE))?;
    let mut reader = BufReader::new(stream.try_clone()?).take(0);
    let mut writer = stream;
    let mut line = String::new();
    loop {
        line.clear();
        reader.set_limit(ADMIN_LINE_MAX as u64);
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if !line.ends_with('\n') && line.len() >= ADMIN_LINE_MAX {
            let reply = serde_json::json!({"error": "request line too long"});
            writeln!(writer, "{reply}")?;
            return Ok(());
        }
        let reply = match serde_json::from_str::<Request>(line.trim()) {
            Err(e) => Reply::Error(format!("not a request: {e}")),
            Ok(Request::HaltPackageAndDependents { package }) => {
                halt_with_dependents(inputs, counters, &package, &mut Vec::new())
            }
            Ok(Request::CheckApply { cluster, packages }) => {
                check_apply(inputs, counters, quorum_check, cluster, packages.as_deref())
            }
            Ok(Request::Preview { commands }) => preview(inputs, &commands),
            Ok(Request::PreviewRunCluster { nodes }) => preview_run_cluster(inputs, nodes),
            Ok(
                request @ Request::Apply {
                    cluster: Some(_), ..
                },
            ) => {
                let refusal = match &request {
                    Request::Apply {
                        cluster: Some(file),
                        ..
                    } => quorum_check.refusal(file),
                    _ => None,
                };
                match refusal {
                    Some(refusal) => Reply::Refused(refusal),
                    None => ask_apply(inputs, counters, request),
                }
            }
            Ok(request) => {
                let (reply, answer) = mpsc::channel();
                if inputs.send(Input::Admin { request, reply }).is_err() {
                    Reply::Error("the daemon is stopping".into())
                } else {
                    match answer.recv_timeout(Duration::from_secs(30)) {
                        Ok(reply) => {
                            let written = write_reply(&mut writer, &reply);
                            counters.reply_written();
                            written?;
                            continue;
                        }
                        Err(_) => Reply::Error("the daemon did not answer".into()),
                    }
                }
            }
        };
        write_reply(&mut writer, &reply)?;
    }
}

/// How an admin connection is served (its requests read and answered until it ends).
pub(super) type ServeAdmin = dyn Fn(UnixStream) -> io::Result<()> + Send + Sync;

/// Binds the admin socket `cmcld.sock` in `state_dir` (owner only; a stale one replaced)
/// and serves each connection with `serve` on a thread of its own, at most
/// [`ADMIN_CONNECTIONS_MAX`] at once (one more is told so and closed).
pub(super) fn serve_admin_socket(
    state_dir: &Path,
    log: &Log,
    serve: Arc<ServeAdmin>,
) -> Result<(), StartError> {
    let socket_path = state_dir.join("cmcld.sock");
    let _ = std::fs::remove_file(&socket_path);
    let listener = UnixListener::bind(&socket_path)
        .or_else(|e| fail(format!("{}: {e}", socket_path.display())))?;
    std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(0o600))
        .or_else(|e| fail(format!("{}: {e}", socket_path.display())))?;
    let log = log.clone();
    thread::Builder::new()
        .name("cmcld-admin".into())
        .spawn(move || {
            let open = Arc::new(AtomicU64::new(0));
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                if open.fetch_add(1, Ordering::SeqCst) >= ADMIN_CONNECTIONS_MAX {
                    open.fetch_sub(1, Ordering::SeqCst);
                    let _ = writeln!(
                        stream,
                        "{}",
                        serde_json::json!({"error": "too many admin connections"})
                    );
                    continue;
                }
                let serve = serve.clone();
                let log = log.clone();
                let count = open.clone();
                let spawned = thread::Builder::new()
                    .name("cmcld-admin-conn".into())
                    .spawn(move || {
                        if let Err(e) = serve(stream) {
                            log.say(format_args!("admin connection: {e}"));
                        }
                        count.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    open.fetch_sub(1, Ordering::SeqCst);
                }
            }
        })
        .or_else(|e| fail(format!("admin thread: {e}")))?;
    Ok(())
}

/// `text` with every `node N` (a node number, as the core writes one) replaced by that node's
/// NODE_NAME, for the operator.
fn name_nodes(text: &str, names: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("node ") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "node ".len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        match after[..digits]
            .parse::<usize>()
            .ok()
            .and_then(|i| names.get(i))
        {
            Some(name) => {
                out.push_str(name);
                rest = &after[digits..];
            }
            None => {
                out.push_str("node ");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether this host can send heartbeats from an address: a UDP socket binds to it (on a
/// port of the system's choosing, so that the node's own heartbeat sockets do not stand in
/// the way). An address of no interface of the host cannot be bound.
pub(super) fn host_addresses() -> crate::core::AddressCheck {
    crate::core::AddressCheck::new(|address| {
        UdpSocket::bind(SocketAddr::new(address, 0))
            .map(drop)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AddrNotAvailable => {
                    "it is not an address of this node's interfaces".to_owned()
                }
                _ => e.to_string(),
            })
    })
}

/// cmcheckconf -C and cmapplyconf -C of a cluster file whose tie-breaker is a quorum server
/// fail while it does not answer this node (serviceguard.md 4.2): a cluster configured so
/// could not break a tie. Asked on the admin connection's thread, never the timing thread.
pub(super) struct QuorumCheck {
    /// The authority the quorum server's certificate must chain to (the node's).
    pub(super) ca: PathBuf,
    /// This node's NODE_NAME.
    pub(super) me: String,
}

impl QuorumCheck {
    /// How long each step (connecting to an address, the handshake, the answer) may take.
    const STEP: Duration = Duration::from_secs(3);

    /// Pings the quorum server `file` names (QS_HOST, then QS_ADDR) as this node of that
    /// cluster; the refusal to give when it does not answer or refuses this node. None when
    /// it answers, or the file names none (one that does not parse is refused with its
    /// findings by the check that follows).
    pub(super) fn refusal(&self, file: &FileText) -> Option<String> {
        let checked = cluster::parse(&file.text, &file.name).ok()?;
        let ClusterLock::QuorumServer {
            host, alternate, ..
        } = &checked.config.lock
        else {
            return None;
        };
        match super::quorum_server::ping(
            (host, alternate.as_deref()),
            &self.ca,
            &checked.config.name,
            &self.me,
            Self::STEP,
        ) {
            Ok(()) => None,
            Err(refused @ Unavailable::Refused { .. }) => Some(refused.to_string()),
            Err(silent @ Unavailable::Silent { .. }) => Some(format!(
                "{silent}; a cluster file naming it is checked and applied only while it runs"
            )),
        }
    }
}

/// One request to the timing thread, answered within 30 s (the reply is used here, so it
/// counts as written).
fn ask(inputs: &mpsc::Sender<Input>, counters: &Counters, request: Request) -> Reply {
    ask_with(inputs, counters, |reply| Input::Admin { request, reply })
}

/// [`Request::Apply`] on the timing thread: answered within 30 s, or, for an online
/// addition, a little longer than it may take.
fn ask_apply(inputs: &mpsc::Sender<Input>, counters: &Counters, request: Request) -> Reply {
    let wait = crate::core::ENROL_ANSWER_WAIT + Duration::from_secs(5);
    ask_within(inputs, counters, wait, |reply| Input::Admin {
        request,
        reply,
    })
}

/// The input `make` builds around a reply channel, given to the timing thread and answered
/// within 30 s (the reply is used here, so it counts as written).
fn ask_with(
    inputs: &mpsc::Sender<Input>,
    counters: &Counters,
    make: impl FnOnce(mpsc::Sender<Reply>) -> Input,
) -> Reply {
    ask_within(inputs, counters, Duration::from_secs(30), make)
}

/// [`ask_with`], answered within `wait`.
fn ask_within(
    inputs: &mpsc::Sender<Input>,
    counters: &Counters,
    wait: Duration,
    make: impl FnOnce(mpsc::Sender<Reply>) -> Input,
) -> Reply {
    let (reply, answer) = mpsc::channel();
    if inputs.send(make(reply)).is_err() {
        return Reply::Error("the daemon is stopping".into());
    }
    match answer.recv_timeout(wait) {
        Ok(reply) => {
            counters.reply_written();
            reply
        }
        Err(_) => Reply::Error("the daemon did not answer".into()),
    }
}

/// [`Request::CheckApply`], on the admin connection's thread: the files are parsed and
/// checked here (any user may ask, and up to a request line of text must not hold up the
/// timing thread), and only the check against the cluster (as it runs, or every node of it
/// halted) goes to the timing thread.
fn check_apply(
    inputs: &mpsc::Sender<Input>,
    counters: &Counters,
    quorum_check: &QuorumCheck,
    cluster: Option<FileText>,
    packages: Option<&[FileText]>,
) -> Reply {
    if let Some(refusal) = cluster.as_ref().and_then(|f| quorum_check.refusal(f)) {
        return Reply::Refused(refusal);
    }
    let (reply, answer) = mpsc::channel();
    if inputs.send(Input::ConfigInEffect { reply }).is_err() {
        return Reply::Error("the daemon is stopping".into());
    }
    let Ok(in_effect) = answer.recv_timeout(Duration::from_secs(30)) else {
        return Reply::Error("the daemon did not answer".into());
    };
    let (cluster, packages) =
        match checked_generation((&in_effect.0, &in_effect.1), cluster, packages) {
            Ok(checked) => checked,
            Err(Reply::Error(findings)) => return Reply::Findings(findings),
            Err(other) => return other,
        };
    // This node's own HEARTBEAT_IPs are checked here, as cmapplyconf checks them on every
    // node (the others' only cmapplyconf can ask).
    if let Some(why) = host_addresses().refusal(&quorum_check.me, &cluster) {
        return Reply::Findings(why);
    }
    ask_with(inputs, counters, |reply| Input::CheckChange {
        cluster,
        packages,
        reply,
    })
}

/// What the timing thread gives a preview: the manager's state copied, and the node names.
struct PreviewInputs {
    basis: crate::packages::PreviewBasis,
    names: Vec<String>,
    /// This node: where cmrunpkg without -n runs the package.
    me: NodeId,
}

/// [`Request::PreviewRunCluster`], on the admin connection's thread: the timing thread copies
/// the packages as a forming cluster would take them, and the placement is previewed here.
fn preview_run_cluster(inputs: &mpsc::Sender<Input>, nodes: Vec<String>) -> Reply {
    let PreviewInputs { basis, names, .. } =
        match preview_inputs(inputs, |reply| Input::FormationBasis { nodes, reply }) {
            Ok(inputs) => inputs,
            Err(reply) => return reply,
        };
    let catalog = basis.catalog().clone();
    let previewed = basis.preview(&[]);
    Reply::Preview {
        actions: planned_actions(previewed.planned, &catalog, &names),
        refused: Vec::new(),
    }
}

/// What the timing thread gives a preview (`input` made around the reply channel), or the
/// reply that says why there is none.
fn preview_inputs(
    inputs: &mpsc::Sender<Input>,
    input: impl FnOnce(mpsc::Sender<Result<PreviewInputs, Reply>>) -> Input,
) -> Result<PreviewInputs, Reply> {
    let (reply, answer) = mpsc::channel();
    if inputs.send(input(reply)).is_err() {
        return Err(Reply::Error("the daemon is stopping".into()));
    }
    match answer.recv_timeout(Duration::from_secs(30)) {
        Ok(answer) => answer,
        Err(_) => Err(Reply::Error("the daemon did not answer".into())),
    }
}

/// The planned starts and halts of a preview, by names.
fn planned_actions(
    planned: Vec<crate::packages::Planned>,
    catalog: &Catalog,
    names: &[String],
) -> Vec<PlannedAction> {
    planned
        .into_iter()
        .map(|p| PlannedAction {
            package: catalog.package(p.package).name.clone(),
            node: names
                .get(p.node.index())
                .cloned()
                .unwrap_or_else(|| p.node.to_string()),
            start: p.start,
        })
        .collect()
}

/// [`Request::Preview`], on the admin connection's thread: the timing thread only copies what
/// the preview needs ([`Node::preview_basis`]); the preview itself (up to
/// [`PREVIEW_COMMANDS_MAX`] commands, each followed by the placement, a fifth of a second with
/// 300 packages on 16 nodes) runs here, so that no user holds up the heartbeats with it.
fn preview(inputs: &mpsc::Sender<Input>, commands: &[PreviewCommand]) -> Reply {
    if commands.len() > PREVIEW_COMMANDS_MAX {
        return Reply::Error(format!(
            "{} commands: a preview takes at most {PREVIEW_COMMANDS_MAX}",
            commands.len()
        ));
    }
    if commands.is_empty() {
        return Reply::Error("a preview needs at least one command".into());
    }
    let PreviewInputs { basis, names, me } =
        match preview_inputs(inputs, |reply| Input::PreviewBasis { reply }) {
            Ok(inputs) => inputs,
            Err(reply) => return reply,
        };
    let catalog = basis.catalog().clone();
    // A package or node that does not exist refuses the command it is named in; the others
    // are previewed all the same.
    let node_id = |name: &str| {
        names
            .iter()
            // Exactly, as NODE_NAME is configured.
            .position(|n| n == name)
            .map(|i| NodeId(i as u32))
            .ok_or_else(|| format!("{name} is not a node of this cluster"))
    };
    let node = |n: &Option<String>| n.as_deref().map(node_id).transpose();
    let mut given = Vec::with_capacity(commands.len());
    // (index of the command, why) for those that do not make a command.
    let mut unmade = Vec::new();
    for (index, command) in commands.iter().enumerate() {
        let name = command.package();
        let Some(package) = catalog.find(name) else {
            unmade.push((index, format!("{name} is not a package of this cluster")));
            continue;
        };
        let built = match command {
            PreviewCommand::Run { node: n, .. } => node(n).map(|n| Command::Run {
                package,
                node: n.unwrap_or(me),
            }),
            PreviewCommand::Halt { node: n, .. } => {
                node(n).map(|node| Command::Halt { package, node })
            }
            PreviewCommand::Enable { node: n, .. } => {
                node(n).map(|node| Command::Enable { package, node })
            }
            PreviewCommand::Disable { node: n, .. } => {
                node(n).map(|node| Command::Disable { package, node })
            }
        };
        match built {
            Ok(built) => given.push((index, built)),
            Err(why) => unmade.push((index, format!("package {name}: {why}"))),
        }
    }
    let made: Vec<Command> = given.iter().map(|(_, command)| *command).collect();
    let previewed = basis.preview(&made);
    let mut refused: Vec<(usize, String)> = previewed
        .refused
        .into_iter()
        .map(|(at, refusal)| {
            let index = given[at].0;
            let package = commands[index].package();
            (
                index,
                name_nodes(&refusal.naming(package).to_string(), &names),
            )
        })
        .chain(unmade)
        .collect();
    refused.sort_by_key(|(index, _)| *index);
    Reply::Preview {
        actions: planned_actions(previewed.planned, &catalog, &names),
        refused: refused.into_iter().map(|(_, why)| why).collect(),
    }
}

/// The longest the halt of a package waits for the packages that depend on it to halt.
const SUCCESSORS_HALT_WAIT: Duration = Duration::from_secs(300);

/// How often that wait looks at the packages.
const SUCCESSORS_POLL: Duration = Duration::from_millis(250);

/// [`Request::HaltPackageAndDependents`]: the running packages that depend on `package`
/// (`= up`) are halted first, each the same way, and once they are down the package itself.
/// The package must be one that cmhaltpkg would halt but for its dependents; a dependent
/// that is already halting or down is waited for, not halted again. `halting` holds the
/// packages of this cascade, so a dependency cycle ends.
fn halt_with_dependents(
    inputs: &mpsc::Sender<Input>,
    counters: &Counters,
    package: &str,
    halting: &mut Vec<String>,
) -> Reply {
    halting.push(package.to_owned());
    let status = |inputs: &mpsc::Sender<Input>| match ask(inputs, counters, Request::Status) {
        Reply::Status(status) => Ok(status.cluster),
        other => Err(other),
    };
    // The dependents that run (or are starting) and are not part of this cascade yet.
    let dependents = |cluster: &Snapshot, halting: &[String]| -> Vec<String> {
        cluster
            .packages
            .iter()
            .filter(|p| {
                !p.owners.is_empty()
                    && !halting.contains(&p.name)
                    && p.dependencies.iter().any(|d| {
                        d.name == package && d.condition == package::DependencyCondition::Up
                    })
            })
            .map(|p| p.name.clone())
            .collect()
    };
    let cluster = match status(inputs) {
        Ok(cluster) => cluster,
        Err(reply) => return reply,
    };
    let first = dependents(&cluster, halting);
    // Not running as a whole: cmhaltpkg's own answer.
    let running = cluster
        .packages
        .iter()
        .find(|p| p.name == package)
        .is_some_and(|p| p.condition.state == crate::status::PackageState::Running);
    if !running {
        return ask(
            inputs,
            counters,
            Request::HaltPackage {
                package: package.to_owned(),
                node: None,
            },
        );
    }
    let mut waited: Vec<String> = Vec::new();
    // What the cluster said of the dependents' halts it carried out.
    let mut warnings: Vec<String> = Vec::new();
    for dependent in first {
        // Read again: halting one dependent may have halted another (a shared successor).
        let cluster = match status(inputs) {
            Ok(cluster) => cluster,
            Err(reply) => return reply,
        };
        let still_running = cluster
            .packages
            .iter()
            .find(|p| p.name == dependent)
            .is_some_and(|p| {
                !p.owners.is_empty() && p.condition.state == crate::status::PackageState::Running
            });
        if still_running && !halting.contains(&dependent) {
            match halt_with_dependents(inputs, counters, &dependent, halting) {
                Reply::Done => {}
                Reply::Warned(warning) => warnings.push(warning),
                other => return other,
            }
        }
        waited.push(dependent);
    }
    let deadline = std::time::Instant::now() + SUCCESSORS_HALT_WAIT;
    loop {
        let cluster = match status(inputs) {
            Ok(cluster) => cluster,
            Err(reply) => return reply,
        };
        let left: Vec<&str> = cluster
            .packages
            .iter()
            .filter(|p| waited.contains(&p.name) && !p.owners.is_empty())
            .map(|p| p.name.as_str())
            .collect();
        if left.is_empty() {
            break;
        }
        if std::time::Instant::now() >= deadline {
            return Reply::Refused(format!(
                "the packages that depend on {package} ({}) did not halt within {} s",
                left.join(", "),
                SUCCESSORS_HALT_WAIT.as_secs()
            ));
        }
        thread::sleep(SUCCESSORS_POLL);
    }
    // The package coordinator may not have heard yet that the dependents are down (this
    // node saw it first), and then refuses the halt: it is given again until the coordinator
    // takes it or refuses it for another reason.
    let deadline = std::time::Instant::now() + HALT_CONFIRM_WAIT;
    loop {
        let reply = ask(
            inputs,
            counters,
            Request::HaltPackage {
                package: package.to_owned(),
                node: None,
            },
        );
        match &reply {
            Reply::Refused(why)
                if why.starts_with(&dependents_running(package))
                    && std::time::Instant::now() < deadline =>
            {
                thread::sleep(SUCCESSORS_POLL);
            }
            // The dependents' warnings (their AUTO_RUN changes) with this halt's own.
            Reply::Done | Reply::Warned(_) if !warnings.is_empty() => {
                if let Reply::Warned(own) = reply {
                    warnings.push(own);
                }
                return Reply::Warned(warnings.join("; "));
            }
            _ => return reply,
        }
    }
}

/// How long a cascade's last halt is given again while the coordinator still sees
/// dependents running.
const HALT_CONFIRM_WAIT: Duration = Duration::from_secs(30);

/// How [`Refusal::DependentsRunning`] of `package` begins, as a halt of it is refused: the
/// text up to its list of dependents.
fn dependents_running(package: &str) -> String {
    let text = Refusal::DependentsRunning {
        dependents: Vec::new(),
    }
    .naming(package)
    .to_string();
    match text.split_once(':') {
        Some((start, _)) => start.to_owned(),
        None => text,
    }
}

/// The most commands one [`Request::Preview`] takes: every instance of the most packages
/// a cluster may have (MAX_CONFIGURED_PACKAGES 300) on the most nodes (16).
pub const PREVIEW_COMMANDS_MAX: usize = 300 * 16;

/// How long an admin request forwarded to the package coordinator waits for its answer.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// Answers kept that came before their request waited for them.
const EARLY_ANSWERS_MAX: usize = 16;

/// How long a change of the shared map the coordinator took waits, before it is answered,
/// for this node's copy to show it.
const SHARE_SHOWN_WAIT: Duration = Duration::from_secs(2);

fn write_reply(writer: &mut UnixStream, reply: &Reply) -> io::Result<()> {
    let mut text = serde_json::to_string(reply).map_err(io::Error::other)?;
    text.push('\n');
    writer.write_all(text.as_bytes())
}

/// Why the timing loop ended.
enum Stop {
    Halted,
    /// Halted, and told to start again (cmrunnode, cmruncl).
    StartAgain,
    /// Halted, with a generation that changed the nodes persisted ([`Ended::StartHalted`],
    /// or [`Ended::Removed`] when `retired`).
    Reconfigured {
        retired: bool,
    },
    Fenced(String),
}

struct Driver {
    node: Node,
    clock: Clock,
    log: Log,
    sealers: Vec<Sealer>,
    /// A sealer that never sealed: each node added online gets a copy.
    sealer: Sealer,
    sockets: Vec<Arc<UdpSocket>>,
    peers: Vec<Vec<SocketAddr>>,
    heartbeat_port: u16,
    control: ControlChannel,
    /// The state files to write, each with its content, in order (the acceptor state, the
    /// shared map).
    writes: mpsc::Sender<WriteJob>,
    /// The state directory.
    state_dir: PathBuf,
    /// Holds the actions that wait for a state file on its way to disk.
    gate: WriteGate,
    disk: Option<mpsc::Sender<crate::disk_paxos::DiskRequest>>,
    quorum: Option<mpsc::Sender<QuorumServerRequest>>,
    fence: Arc<Mutex<SafetyTimers>>,
    supervisor: Supervisor,
    /// The catalog the core's package numbers refer to, as of the actions performed so far.
    catalog: Arc<Catalog>,
    /// A status taken when the catalog last changed: what the log names nodes, packages,
    /// services and resources by (its states are not read).
    names: Option<Snapshot>,
    /// The notices this life told, numbered from 1, the latest [`NOTICES_KEPT`].
    notices: VecDeque<NumberedNotice>,
    /// The number of the last notice told.
    notices_told: u64,
    counters: Arc<Counters>,
    opener: Arc<Mutex<Opener>>,
    config: Arc<ClusterConfig>,
    memory_locked: Result<(), String>,
    realtime: Result<(), String>,
    /// What the safety timer is (the process fence, and the watchdog device when configured).
    safety_timer: String,
    name: String,
    stop: Option<Stop>,
    monitor: Option<Monitor>,
    /// The monitored subnets' states as the monitor told them.
    subnets: BTreeMap<IpAddr, SubnetState>,
    /// Admin requests waiting for the package coordinator's answer.
    awaiting: Vec<Awaiting>,
    /// Answers that came before their request waited for them (the core answered while the
    /// request was still being taken), newest last: taken when it starts waiting.
    early_answers: VecDeque<(u64, Answered)>,
    /// Notices requests waiting for a notice.
    notice_waiters: Vec<NoticeWaiter>,
    /// Status-change requests waiting for a change.
    change_waiters: Vec<ChangeWaiter>,
    /// What the node showed at the last look ([`Request::StatusChange`]).
    shown: Shown,
    /// End when the node halts ([`Options::exit_on_halt`]).
    exit_on_halt: bool,
    /// SIGTERM or SIGINT came: end once halted.
    terminating: bool,
    /// Frames queued on the control channel, and refused at queueing, so far.
    control_queued: u64,
    control_unqueued: u64,
    /// Requests over the configuration exchange ([`Action::Exchange`]).
    exchange: super::exchange::Requests,
}

impl Driver {
    fn run(&mut self, inputs: &mpsc::Receiver<Input>) -> Result<Ended, StartError> {
        self.drain();
        loop {
            if let Some(stop) = self.stop.take() {
                // Readers waiting for a notice get what there is now, not an error.
                for waiter in std::mem::take(&mut self.notice_waiters) {
                    let reply = self.notices_after(waiter.after, waiter.with_status);
                    self.give(&waiter.reply, reply);
                }
                let changes = self.shown.changes;
                for waiter in std::mem::take(&mut self.change_waiters) {
                    self.give(&waiter.reply, Reply::StatusChange { changes });
                }
                if !matches!(stop, Stop::Fenced(_)) {
                    self.finish_writing(inputs, Duration::from_secs(5));
                }
                return match stop {
                    Stop::Halted => {
                        self.counters.wait_for_replies(Duration::from_secs(2));
                        self.log.say("halted");
                        Ok(Ended::Halted)
                    }
                    Stop::StartAgain => {
                        self.counters.wait_for_replies(Duration::from_secs(2));
                        self.flush_control(Duration::from_secs(3));
                        // Told to end meanwhile (a shutdown racing a cmrunnode): it ends.
                        if terminated() {
                            self.log.say("halted");
                            return Ok(Ended::Halted);
                        }
                        self.log.say("starting again as a new life");
                        Ok(Ended::StartAgain)
                    }
                    Stop::Reconfigured { retired: false } => {
                        self.counters.wait_for_replies(Duration::from_secs(2));
                        self.flush_control(Duration::from_secs(3));
                        if terminated() {
                            self.log.say(
                                "halted; the nodes changed (cmapplyconf): the next start \
                                 takes the new generation",
                            );
                            return Ok(Ended::Halted);
                        }
                        self.log.say(
                            "the nodes changed (cmapplyconf): starting again as a new life, \
                             halted, numbered as the new generation numbers the nodes",
                        );
                        Ok(Ended::StartHalted)
                    }
                    Stop::Reconfigured { retired: true } => {
                        self.counters.wait_for_replies(Duration::from_secs(2));
                        self.flush_control(Duration::from_secs(3));
                        // The cluster's configuration deleted (cmdeleteconf): its lock blocks
                        // go with it, each node clearing its own, so that a cluster made
                        // again on the LUN under another name finds none of this one's.
                        if let Some(reset) = self.lock_reset_deleted() {
                            let told = clear_lock_block(reset).unwrap_or_else(|e| e);
                            self.log.say(format_args!("cmdeleteconf: {told}"));
                        }
                        let removed = remove_configuration(&self.state_dir);
                        let cluster = &self.node.settings().config.name;
                        match removed {
                            Ok(()) => self.log.say(format_args!(
                                "deleted from cluster {cluster} (cmapplyconf, or cmdeleteconf): \
                                 its configuration files are removed from {}; the daemon goes \
                                 on unconfigured",
                                self.state_dir.display()
                            )),
                            Err(e) => {
                                self.log.say(format_args!(
                                    "deleted from cluster {cluster} (cmapplyconf, or \
                                     cmdeleteconf), but its configuration files could not all \
                                     be removed ({e}): \
                                     remove cluster.ascii and packages/ from {} by hand; the \
                                     daemon ends",
                                    self.state_dir.display()
                                ));
                                return Ok(Ended::Halted);
                            }
                        }
                        if terminated() {
                            return Ok(Ended::Halted);
                        }
                        Ok(Ended::Removed)
                    }
                    Stop::Fenced(why) => {
                        // The watcher kills this process group and the packages' groups now;
                        // the daemon does nothing more meanwhile. Still here later, the
                        // watcher is gone: exit (its pipe closing is the last resort).
                        thread::sleep(Duration::from_secs(5));
                        self.log.say(format_args!(
                            "fenced ({why}) and the safety timer did not act: killing the packages and the daemon"
                        ));
                        self.self_fence()
                    }
                };
            }
            let now = self.clock.now();
            self.end_when_halted(now);
            if self.stop.is_some() {
                continue;
            }
            let deadline = self.node.poll_timeout();
            let mut wait = deadline.map_or(Duration::from_secs(1), |d| d.saturating_since(now));
            let first = self.awaiting.iter().map(|a| a.deadline);
            let first = first
                .chain(self.notice_waiters.iter().map(|w| w.until))
                .chain(self.change_waiters.iter().map(|w| w.until))
                .min();
            if let Some(first) = first {
                wait = wait.min(first.saturating_duration_since(std::time::Instant::now()));
            }
            if self.terminating {
                // Told to end: whether it may end now is asked again within a second.
                wait = wait.min(Duration::from_secs(1));
            }
            match inputs.recv_timeout(wait) {
                Ok(input) => self.input(input),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return fail("every input of the daemon closed");
                }
            }
            let now = self.clock.now();
            if self.node.poll_timeout().is_some_and(|d| d <= now) {
                self.node.handle_timeout(now);
            }
            self.drain();
            self.expire_answers();
            self.answer_changes();
        }
    }

    /// Waits up to `limit` for the state file on its way to disk, so that a next life (or
    /// the next start) reads what this one wrote last, and a late write of this life never
    /// replaces a file the next one wrote. The held actions stay unsent; other inputs are
    /// for this life and are dropped.
    fn finish_writing(&mut self, inputs: &mpsc::Receiver<Input>, limit: Duration) {
        let until = std::time::Instant::now() + limit;
        while self.gate.is_writing() {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match inputs.recv_timeout(left) {
                Ok(Input::Written { result, fatal }) => {
                    if let Err(e) = result {
                        let what = if fatal {
                            "the node's state"
                        } else {
                            "the shared map"
                        };
                        self.log.say(format_args!("cannot persist {what}: {e}"));
                    }
                    self.gate.written();
                }
                Ok(_) => {}
                Err(_) => {
                    self.log.say(format_args!(
                        "the state writer did not finish within {} s",
                        limit.as_secs()
                    ));
                    return;
                }
            }
        }
    }

    fn input(&mut self, input: Input) {
        let now = self.clock.now();
        match input {
            Input::Message { network, envelope } => {
                self.node.handle_message(now, network, envelope);
            }
            Input::Disk { id, result } => self.node.handle_disk(now, id, result),
            Input::Written {
                result: Err(e),
                fatal: false,
            } => {
                // The members hold the map too; the next change or membership writes it again.
                self.log
                    .say(format_args!("cannot persist the shared map: {e}"));
                self.gate.written();
                self.release_held();
            }
            Input::Written { result, .. } => {
                if let Err(e) = result {
                    // A node that cannot keep its promises must not take part any longer.
                    self.log
                        .say(format_args!("cannot persist the node's state: {e}"));
                    self.fence_now("the state directory cannot be written");
                    return;
                }
                self.gate.written();
                self.release_held();
            }
            Input::Admin { request, reply } => {
                let share = match &request {
                    Request::Share { key, value } => Some((key.clone(), value.clone())),
                    _ => None,
                };
                let applied_halted =
                    matches!(request, Request::Apply { .. } | Request::DeleteCluster)
                        && self.node.phase() == Phase::Halted;
                match self.admin(now, request) {
                    Answer::Now(answer) => self.give(&reply, answer),
                    Answer::Later(serial) => {
                        let view = self.node.view();
                        // An online addition is answered by this node, once the nodes it
                        // adds took the generation in effect.
                        let enrolling = self.node.enrolling() == Some(serial);
                        let coordinator = view
                            .coordinator()
                            .and_then(|c| view.incarnations.get(c.index()).map(|&life| (c, life)))
                            .filter(|_| !enrolling);
                        let wait = if enrolling {
                            crate::core::ENROL_ANSWER_WAIT
                        } else if applied_halted {
                            crate::core::HALTED_APPLY_ANSWER_WAIT
                        } else {
                            ANSWER_WAIT
                        };
                        self.awaiting.push(Awaiting {
                            serial,
                            deadline: std::time::Instant::now() + wait,
                            reply,
                            share,
                            taken: false,
                            coordinator,
                            applied_halted,
                            enrolled: enrolling,
                            check: false,
                        });
                        if let Some(at) = self.early_answers.iter().position(|(s, _)| *s == serial)
                        {
                            let (_, answer) = self.early_answers.remove(at).unwrap_or_default();
                            self.answered(serial, answer);
                        }
                    }
                    Answer::OnChange { after, until } => {
                        self.change_waiters.push(ChangeWaiter {
                            after,
                            until,
                            reply,
                        });
                    }
                    Answer::OnNotice {
                        after,
                        until,
                        with_status,
                    } => {
                        self.notice_waiters.push(NoticeWaiter {
                            after,
                            until,
                            with_status,
                            reply,
                        });
                    }
                }
            }
            Input::ConfigInEffect { reply } => {
                let settings = self.node.settings();
                let _ = reply.send((settings.config.clone(), settings.packages.clone()));
            }
            Input::PreviewBasis { reply } => {
                let names = self.names_in_cluster();
                let answer = match self.node.preview_basis(now) {
                    Ok(basis) => Ok(PreviewInputs {
                        basis,
                        names,
                        me: self.node.id(),
                    }),
                    Err(refusal) => Err(Reply::Refused(name_nodes(&refusal.to_string(), &names))),
                };
                let _ = reply.send(answer);
            }
            Input::FormationBasis { nodes, reply } => {
                let names = self.names_in_cluster();
                let answer = self
                    .node_set(&nodes)
                    .and_then(|set| {
                        self.node
                            .formation_preview_basis(now, set)
                            .map_err(|refusal| {
                                Reply::Refused(name_nodes(&refusal.to_string(), &names))
                            })
                    })
                    .map(|basis| PreviewInputs {
                        basis,
                        names: names.clone(),
                        me: self.node.id(),
                    });
                let _ = reply.send(answer);
            }
            Input::CheckChange {
                cluster,
                packages,
                reply,
            } if self.node.phase() == Phase::Halted => {
                // The cluster halted: every node checks the files as it would check a
                // cmapplyconf's offer of them, and the reply waits for their answers.
                match self.node.check_halted(now, cluster, packages) {
                    Ok(Taken::Forwarded(serial)) => {
                        self.log.say(format_args!(
                            "cmcheckconf with the cluster halted (command {serial}): the \
                             files are checked on every node"
                        ));
                        self.awaiting.push(Awaiting {
                            serial,
                            deadline: std::time::Instant::now()
                                + crate::core::HALTED_APPLY_ANSWER_WAIT,
                            reply,
                            share: None,
                            taken: false,
                            coordinator: None,
                            applied_halted: false,
                            enrolled: false,
                            check: true,
                        });
                        if let Some(at) = self.early_answers.iter().position(|(s, _)| *s == serial)
                        {
                            let (_, answer) = self.early_answers.remove(at).unwrap_or_default();
                            self.answered(serial, answer);
                        }
                    }
                    // Fenced: the files were checked against the configuration alone.
                    Ok(_) | Err(Refusal::ClusterNotRunning) => self.give(&reply, Reply::Done),
                    Err(Refusal::ClusterRunsElsewhere) => self.give(
                        &reply,
                        Reply::Refused(
                            "the cluster runs on other nodes without this one: give cmcheckconf \
                             on a node that runs it, where the files are checked against the \
                             cluster as it runs"
                                .into(),
                        ),
                    ),
                    Err(refusal) => self.give(
                        &reply,
                        Reply::Refused(name_nodes(&refusal.to_string(), &self.node_names())),
                    ),
                }
            }
            Input::CheckChange {
                cluster,
                packages,
                reply,
            } => {
                let answer = match self.node.check_change(now, &cluster, &packages) {
                    // A node in no running cluster checks the files against the
                    // configuration alone, which the connection did.
                    Ok(()) | Err(Refusal::ClusterNotRunning) => Reply::Done,
                    Err(refusal) => {
                        Reply::Refused(name_nodes(&refusal.to_string(), &self.node_names()))
                    }
                };
                self.give(&reply, answer);
            }
            Input::Supervisor(report) => self.report(now, report),
            Input::QuorumServer { id, answer } => {
                self.node.handle_quorum_server(now, id, answer);
            }
            Input::Exchanged { to, serial, result } => {
                if let Some(line) = self.exchange.ended(&to, &result) {
                    self.log.say(line);
                }
                match result {
                    Ok(envelope) => self.node.handle_exchange_answer(now, &to, envelope),
                    Err(why) => self.node.handle_exchange_failure(now, &to, serial, &why),
                }
            }
            Input::Subnet(change) => {
                // A monitored_subnet going down on this node fails the packages that
                // monitor it here, as a generic resource going down does.
                if self.subnet_changed(change) {
                    self.node.handle_subnet(now, change.subnet, change.state);
                }
            }
            Input::Terminate => self.terminate(now),
        }
    }

    /// SIGTERM or SIGINT (a system shutdown, `systemctl stop`): a halted node's daemon ends
    /// at once; a running one halts the node first, as cmhaltnode -f does (its packages halt
    /// and fail over, the others re-form without waiting for it), then ends.
    ///
    /// A halted node in the middle of a cmapplyconf given with the cluster halted (its own,
    /// or an offer it took) ends once that is over ([`Driver::end_when_halted`]): ended half
    /// way, some nodes would have the new generation and others not, and the command would
    /// only hear that the agent stopped.
    fn terminate(&mut self, now: Instant) {
        self.terminating = true;
        if self.node.phase() == Phase::Halted {
            if self.node.halted_config_changing(now) {
                self.log.say(
                    "told to end: ending once the configuration change on its way (a \
                     cmapplyconf with the cluster halted) is over",
                );
            }
            self.end_when_halted(now);
            return;
        }
        match self.node.handle_halt_node(now, true) {
            Ok(()) => self
                .log
                .say("told to end: halting the node (cmhaltnode -f) first"),
            Err(refusal) => self.log.say(format_args!(
                "told to end: ending once the node has halted ({refusal})"
            )),
        }
    }

    /// Told to end and halted: ends, unless a cmapplyconf given with the cluster halted is on
    /// its way here (it ends within its stages' bound; this is asked again at every turn).
    fn end_when_halted(&mut self, now: Instant) {
        if self.terminating
            && self.stop.is_none()
            && self.node.phase() == Phase::Halted
            && !self.node.halted_config_changing(now)
        {
            self.stop = Some(Stop::Halted);
        }
    }

    /// A monitored subnet changed on this node (or was first seen): logged and kept for the
    /// status; whether it is monitored still. A change for a subnet no package monitors any
    /// longer (cmapplyconf removed it while the change was on its way) is dropped.
    fn subnet_changed(&mut self, SubnetChange { subnet, state }: SubnetChange) -> bool {
        let monitored = self
            .monitor
            .as_ref()
            .is_some_and(|m| m.states().contains_key(&subnet));
        if !monitored {
            return false;
        }
        let before = self.subnets.insert(subnet, state);
        let word = match state {
            SubnetState::Up => "up",
            SubnetState::Down => "down",
            SubnetState::Absent => "not configured (no interface has an address on it)",
        };
        match before {
            None => self.log.say(format_args!(
                "monitored subnet {subnet} is {word} on this node"
            )),
            Some(was) if was != state => self.log.say(format_args!(
                "monitored subnet {subnet} went {word} on this node"
            )),
            Some(_) => {}
        }
        true
    }

    /// Monitors the subnets of the packages in effect (after a configuration change too).
    fn monitor_subnets(&mut self) {
        let subnets = monitored_subnets(&self.node.settings().packages);
        self.subnets.retain(|subnet, _| subnets.contains(subnet));
        if let Some(monitor) = &self.monitor {
            monitor.set_subnets(subnets);
        }
    }

    fn drain(&mut self) {
        while let Some(action) = self.node.poll_action() {
            if self.stop.is_some() {
                // Fenced or halted: nothing more is carried out.
                return;
            }
            if let Some(action) = self.gate.admit(action) {
                self.perform(action);
            }
        }
    }

    /// Carries out the actions the gate holds, until one of them writes again (none once the
    /// node is fenced or halted).
    fn release_held(&mut self) {
        while self.stop.is_none() {
            let Some(action) = self.gate.release() else {
                break;
            };
            self.perform(action);
        }
    }

    /// Hands the state file `name` to the writer; what follows waits until it is written
    /// (heartbeats only for the acceptor's state). `fatal`: a failure to write it fences the
    /// node.
    fn write_state(&mut self, name: &str, bytes: Vec<u8>, fatal: bool) {
        self.gate.writing(fatal);
        let path = self.state_dir.join(name);
        if self
            .writes
            .send(WriteJob::State { path, bytes, fatal })
            .is_err()
        {
            self.fence_now("the state writer stopped");
        }
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::Send {
                to,
                network,
                envelope,
            } => self.send(to, network, envelope),
            Action::Persist(state) => {
                self.write_state("acceptor", wire::encode_persisted(&state), true);
            }
            Action::Exchange {
                to,
                addresses,
                envelope,
            } => self.exchange.send(to, &addresses, envelope),
            Action::PersistShared(map) => {
                self.write_state("shared", wire::encode_shared(&map), false);
            }
            Action::WriteConfiguration(config) => {
                self.log.say(format_args!(
                    "writing configuration generation {} into the state directory",
                    config.sequence
                ));
                self.gate.writing(true);
                let lock_reset = self.lock_reset(&config.cluster);
                let job = WriteJob::Configuration {
                    dir: self.state_dir.clone(),
                    config,
                    lock_reset,
                };
                if self.writes.send(job).is_err() {
                    self.fence_now("the state writer stopped");
                }
            }
            Action::ArmSafetyTimer { deadline } | Action::PetSafetyTimer { deadline } => {
                let within = deadline.saturating_since(self.clock.now());
                let petted = self.fence().pet(within);
                if let Err(e) = petted {
                    self.fence_now(&format!("the safety timer failed: {e}"));
                }
            }
            Action::DisarmSafetyTimer => {
                let disarmed = self.fence().disarm();
                if let Err(e) = disarmed {
                    self.log.say(format_args!("the safety timer failed: {e}"));
                }
            }
            Action::Fence { reason } => {
                self.fence_now(&format!("{reason:?}"));
            }
            Action::Disk(request) => {
                let sent = self.disk.as_ref().is_some_and(|d| d.send(request).is_ok());
                if !sent {
                    self.log.say("lock LUN request with no lock LUN");
                }
            }
            Action::QuorumServer(request) => {
                let sent = self
                    .quorum
                    .as_ref()
                    .is_some_and(|q| q.send(request).is_ok());
                if !sent {
                    let now = self.clock.now();
                    self.node.handle_quorum_server(
                        now,
                        request.id,
                        Err("no quorum server client".into()),
                    );
                }
            }
            Action::Package(action) => self.package(action),
            Action::Event(crate::core::Event::CommandAnswered {
                serial,
                refusal,
                warning,
            }) => {
                let check = self.awaiting.iter().any(|a| a.serial == serial && a.check);
                let answer = match (&refusal, &warning) {
                    (Some(refusal), _) => refusal.clone(),
                    (None, _) if check => "every node takes the files (cmcheckconf)".to_owned(),
                    (None, Some(warning)) => format!("carried out; {warning}"),
                    (None, None) => "carried out".to_owned(),
                };
                self.log
                    .say(format_args!("command {serial} answered: {answer}"));
                self.answered(serial, Answered { refusal, warning });
            }
            Action::Event(event) => {
                if let crate::core::Event::PhaseChanged {
                    after: Phase::Halted,
                    ..
                } = event
                {
                    if self.stop.is_none() && (self.exit_on_halt || self.terminating) {
                        self.stop = Some(Stop::Halted);
                    } else if self.stop.is_none() {
                        self.log.say(
                            "halted; the daemon stays: cmrunnode (or a cmruncl naming this \
                             node) starts it again, SIGTERM ends it",
                        );
                    }
                }
                if event == crate::core::Event::StartAgain && self.stop.is_none() {
                    self.stop = Some(Stop::StartAgain);
                }
                if let crate::core::Event::Reconfigured { retired } = event {
                    // Before any other stop but a fence: the generation is persisted, and
                    // this core's node numbers are no longer the cluster's.
                    if !matches!(self.stop, Some(Stop::Fenced(_))) {
                        self.stop = Some(Stop::Reconfigured { retired });
                    }
                }
                self.log.say(format_args!("{event:?}"));
            }
            Action::Notice(notice) => {
                match &self.names {
                    Some(names) => self.log.say(format_args!(
                        "{}: {}",
                        notice.event_id(),
                        notice.message(names)
                    )),
                    None => self.log.say(format_args!("{notice:?}")),
                }
                self.notices_told += 1;
                if self.notices.len() == NOTICES_KEPT {
                    self.notices.pop_front();
                }
                self.notices.push_back(NumberedNotice {
                    number: self.notices_told,
                    at_ms: std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                    notice,
                });
                for waiter in std::mem::take(&mut self.notice_waiters) {
                    let reply = self.notices_after(waiter.after, waiter.with_status);
                    self.give(&waiter.reply, reply);
                }
            }
            Action::Catalog(catalog) => {
                self.catalog = catalog;
                self.add_nodes();
                // Built here, once per configuration, not for each notice on this thread.
                self.names = Some(self.node.status(self.clock.now()));
                self.monitor_subnets();
            }
        }
    }

    /// The generation in effect names more nodes than the sockets know (cmapplyconf added
    /// them to the running cluster, after the others): their heartbeat addresses, a sealer
    /// each, their name digests and their control-channel connections are added.
    fn add_nodes(&mut self) {
        let config = self.node.settings().config.clone();
        let socket_address = |n: &cluster::NodeConfig, port: u16| -> Vec<SocketAddr> {
            n.heartbeat_addresses()
                .map(|a| SocketAddr::new(a, port))
                .collect()
        };
        let known = self.peers.len();
        if config.nodes.len() > known {
            let added = &config.nodes[known..];
            let names: Vec<&str> = added.iter().map(|n| n.name.as_str()).collect();
            self.opener
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .add_nodes(&names);
            self.peers
                .extend(added.iter().map(|n| socket_address(n, self.heartbeat_port)));
            self.sealers
                .extend(std::iter::repeat_n(self.sealer.clone(), added.len()));
            self.config = config.clone();
            self.log.say(format_args!(
                "nodes added to the cluster: {} (numbered from {known})",
                names.join(", ")
            ));
        }
        // Tried again with the next generation should it fail (a thread that did not start).
        let connected = self.control.nodes();
        if config.nodes.len() > connected {
            let added = &config.nodes[connected..];
            let certificate_names: Vec<String> = added
                .iter()
                .map(|n| cimguard_certs::node_dns_name(&n.name).unwrap_or_default())
                .collect();
            let addresses: Vec<Vec<SocketAddr>> = added
                .iter()
                .map(|n| socket_address(n, self.heartbeat_port))
                .collect();
            if let Err(e) = self.control.add_nodes(&certificate_names, &addresses) {
                self.log.say(format_args!(
                    "warning: the control channel to the nodes added ({}) did not start: {e}",
                    certificate_names.join(", ")
                ));
            }
        }
    }

    /// Queues `envelope` on the control channel, counting what was queued.
    fn control_send(&mut self, to: NodeId, network: usize, envelope: Envelope) {
        if self.control.send(to, network, envelope) {
            self.control_queued += 1;
        } else {
            self.control_unqueued += 1;
        }
    }

    /// Waits, at most `limit`, until the control channel has written (or given up on) every
    /// frame queued so far: a daemon about to start again lets its last messages (a cmruncl's
    /// [`Message::Start`]) leave first.
    fn flush_control(&self, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let status = self.control.status();
            // Refused at queueing counts as not sent too.
            let done = status.frames_sent + status.frames_not_sent + status.frames_too_large;
            if done >= self.control_queued + self.control_unqueued
                || std::time::Instant::now() >= deadline
            {
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn send(&mut self, to: NodeId, network: usize, envelope: Envelope) {
        let route = control::route(&envelope.message);
        // Configurations and package commands go on the control channel unencoded: its
        // sender threads encode them, so a large generation never costs the timing thread.
        if route == Route::Control {
            self.control_send(to, network, envelope);
            return;
        }
        let Some(address) = self
            .peers
            .get(to.index())
            .and_then(|addresses| addresses.get(network))
        else {
            return;
        };
        let Some(socket) = self.sockets.get(network) else {
            return;
        };
        let payload = wire::encode_envelope(&envelope);
        if payload.len() > PAYLOAD_MAX {
            self.control_send(to, network, envelope);
            return;
        }
        let Some(sealer) = self.sealers.get_mut(to.index()) else {
            return;
        };
        let datagram = sealer.seal(&payload);
        // Never blocking (the receivers share the socket, blocking): a full socket buffer or
        // an unreachable peer loses this datagram, as a network would; the protocol repeats
        // what matters.
        let _ = sendto(
            socket.as_raw_fd(),
            &datagram,
            &SockaddrStorage::from(*address),
            MsgFlags::MSG_DONTWAIT,
        );
        if route == Route::Both {
            self.control_send(to, network, envelope);
        }
    }

    fn fence_now(&mut self, why: &str) {
        self.log
            .say(format_args!("safety timer: resetting this node now: {why}"));
        if self.fence().pet(Duration::ZERO).is_err() {
            // No watcher to do it: the daemon does it itself, at once.
            self.self_fence();
        }
        self.stop = Some(Stop::Fenced(why.to_string()));
    }

    /// Kills every package process group and this daemon's own group, with SIGKILL.
    fn self_fence(&self) -> ! {
        for services in self.supervisor.groups().into_values() {
            for group in services {
                let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
            }
        }
        let _ = killpg(getpgrp(), Signal::SIGKILL);
        std::process::abort()
    }

    fn fence(&self) -> std::sync::MutexGuard<'_, SafetyTimers> {
        self.fence.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a package action to the supervisor, by name.
    fn package(&mut self, action: PackageAction) {
        let id = match action {
            PackageAction::Run { package }
            | PackageAction::Halt { package }
            | PackageAction::Reconfigure { package }
            | PackageAction::Check { package }
            | PackageAction::RestartService { package, .. } => package,
        };
        let Some(name) = self
            .catalog
            .packages
            .get(id.0 as usize)
            .map(|p| p.name.clone())
        else {
            self.log
                .say(format_args!("package action for unknown package {}", id.0));
            return;
        };
        let packages = self.node.settings().packages.clone();
        let Some(config) = packages.iter().find(|p| p.name == name) else {
            self.log
                .say(format_args!("package {name} has no configuration"));
            return;
        };
        match action {
            PackageAction::Run { .. } => self.supervisor.run(config),
            PackageAction::Halt { .. } => self.supervisor.halt(config),
            PackageAction::Reconfigure { .. } => self.supervisor.reconfigure(config),
            PackageAction::Check { .. } => self.supervisor.check(config),
            PackageAction::RestartService {
                service, restarts, ..
            } => self.supervisor.restart_service(config, service, restarts),
        }
    }

    /// A report of the supervisor, to the core by the current package numbers.
    fn report(&mut self, now: Instant, report: Report) {
        let find = |name: &str| -> Option<PackageId> { self.node.settings().catalog.find(name) };
        match report {
            Report::Script {
                package,
                script,
                outcome,
            } => {
                if let Some(id) = find(&package) {
                    self.node.handle_script(now, id, script, outcome);
                }
            }
            Report::ServiceExited { package, service } => {
                if let Some(id) = find(&package) {
                    self.node.handle_service_exit(now, id, service);
                }
            }
            Report::Checked { package, alive } => {
                if let Some(id) = find(&package) {
                    self.node.handle_check(now, id, alive);
                }
            }
            Report::Notice { package, line } => {
                self.log.say(format_args!("package {package}: {line}"));
            }
        }
    }

    fn node_id(&self, name: &str) -> Result<NodeId, Reply> {
        self.config
            .in_cluster()
            // Exactly, as NODE_NAME is configured (the agent's checks compare so too).
            .find(|(_, n)| n.name == name)
            .map(|(i, _)| NodeId(i as u32))
            .ok_or_else(|| Reply::Error(format!("{name} is not a node of this cluster")))
    }

    /// The nodes named (cmruncl -n); none: every configured node.
    fn node_set(&self, names: &[String]) -> Result<NodeSet, Reply> {
        if names.is_empty() {
            return Ok(self.node.settings().configured());
        }
        let mut set = NodeSet::EMPTY;
        for name in names {
            set.insert(self.node_id(name)?);
        }
        Ok(set)
    }

    fn admin(&mut self, now: Instant, request: Request) -> Answer {
        let outcome = match self.admin_request(now, request) {
            Ok(Some(answer)) => answer,
            Ok(None) => Answer::Now(Reply::Done),
            Err(reply) => Answer::Now(reply),
        };
        self.drain();
        outcome
    }

    /// The NODE_NAMEs, by node number.
    fn node_names(&self) -> Vec<String> {
        self.node
            .settings()
            .config
            .nodes
            .iter()
            .map(|n| n.name.clone())
            .collect()
    }

    /// The NODE_NAMEs by node number, empty for a node deleted while the cluster ran (no
    /// command names it).
    fn names_in_cluster(&self) -> Vec<String> {
        let settings = self.node.settings();
        let names = settings.config.names_by_number();
        names.into_iter().map(str::to_owned).collect()
    }

    /// Gives `answer` to the admin connection waiting on `reply`.
    fn give(&self, reply: &mpsc::Sender<Reply>, answer: Reply) {
        self.counters.reply_given();
        if reply.send(answer).is_err() {
            // The connection gave up waiting: nothing will be written.
            self.counters.reply_written();
        }
    }

    /// This node's lock block to clear when generation `cluster` renames the cluster (see
    /// [`LockReset`]); none without a lock LUN or a new name.
    /// This node's lock block, to clear when the cluster's configuration was deleted
    /// (cmdeleteconf: the generation persisted names no node) and the cluster had a lock LUN.
    fn lock_reset_deleted(&self) -> Option<LockReset> {
        if !self.node.cluster_deleted() || self.config.lock != ClusterLock::LockLun {
            return None;
        }
        let me = self.node.settings().me.index();
        Some(LockReset {
            path: self.config.nodes.get(me)?.lock_lun.clone()?,
            block: me,
            blocks: self.config.nodes.len(),
            previous: crate::core::cluster_id(&self.config.name),
            // No cluster has the id 0 on purpose: every block of this cluster's is cleared.
            next: 0,
        })
    }

    fn lock_reset(&self, cluster: &ClusterConfig) -> Option<LockReset> {
        let settings = self.node.settings();
        // This node's block in the new generation (which may number the nodes otherwise).
        let me = &settings.config.nodes.get(settings.me.index())?.name;
        let index = cluster.position(me)?;
        LockReset::renaming(settings.cluster_id, cluster, index)
    }

    /// The package coordinator answered the forwarded command `serial`.
    fn answered(&mut self, serial: u64, answer: Answered) {
        let Some(at) = self
            .awaiting
            .iter()
            .position(|a| a.serial == serial && !a.taken)
        else {
            // Perhaps before its request waits for it: kept a while (bounded).
            if self.early_answers.len() == EARLY_ANSWERS_MAX {
                self.early_answers.pop_front();
            }
            self.early_answers.push_back((serial, answer));
            return;
        };
        let Answered { refusal, warning } = answer;
        if refusal.is_none() {
            let awaiting = &mut self.awaiting[at];
            if let Some((key, value)) = &awaiting.share {
                if self.node.shared().value(key) != value.as_deref() {
                    // The coordinator's change is on its way to this node's copy (or was
                    // lost, and comes with the next whole copy): the reply waits for it.
                    awaiting.taken = true;
                    awaiting.deadline = std::time::Instant::now() + SHARE_SHOWN_WAIT;
                    return;
                }
            }
        }
        let awaiting = self.awaiting.swap_remove(at);
        let reply = match (refusal, warning) {
            // Put in effect here before the other nodes were told to: its generation is
            // this node's now.
            // Its warning: a deleted node not reached kept its number.
            (None, warning) if awaiting.applied_halted => Reply::InEffect {
                generation: self.node.generation_taken(),
                warning: warning.map(|w| name_nodes(&w, &self.node_names())),
                not_configured: Vec::new(),
            },
            (None, warning) if awaiting.enrolled => {
                let outcome = self
                    .node
                    .enrolment_outcome(serial)
                    .cloned()
                    .unwrap_or_default();
                if outcome.unchanged && outcome.not_configured.is_empty() {
                    // Given again, and no node took it: nothing changed.
                    match warning {
                        None => Reply::Unchanged,
                        Some(note) => Reply::UnchangedWith {
                            note: name_nodes(&note, &self.node_names()),
                        },
                    }
                } else {
                    let names = self.node_names();
                    let spelt = |name: &String| {
                        names
                            .iter()
                            .find(|n| n.eq_ignore_ascii_case(name))
                            .cloned()
                            .unwrap_or_else(|| name.clone())
                    };
                    Reply::InEffect {
                        generation: self.node.settings().config_sequence,
                        warning: warning.map(|w| name_nodes(&w, &names)),
                        not_configured: outcome.not_configured.iter().map(spelt).collect(),
                    }
                }
            }
            (None, None) => Reply::Done,
            (None, Some(warning)) => Reply::Warned(name_nodes(&warning, &self.node_names())),
            (Some(why), _) => Reply::Refused(name_nodes(&why, &self.node_names())),
        };
        self.give(&awaiting.reply, reply);
    }

    /// The notices told after number `after`, as a reply; with the status if asked and
    /// there are any.
    fn notices_after(&self, after: u64, with_status: bool) -> Reply {
        let notices: Vec<NumberedNotice> = self
            .notices
            .iter()
            .filter(|n| n.number > after)
            .take(NOTICES_PER_REPLY)
            .cloned()
            .collect();
        let status = (with_status && !notices.is_empty())
            .then(|| Box::new(self.node.status(self.clock.now())));
        Reply::Notices {
            incarnation: self.node.incarnation().0,
            told: self.notices_told,
            notices,
            status,
        }
    }

    /// The changes of what this node shows of the membership and the packages seen so far,
    /// looking now ([`Request::StatusChange`]).
    fn changes_seen(&mut self) -> u64 {
        use std::hash::{Hash, Hasher};
        let view = self.node.view();
        let packages = self.node.packages();
        // Cheap: counters and numbers. Only when one of them moved is the package table
        // hashed, so the timing thread does not hash it on every datagram.
        let key = (
            view.epoch.0,
            view.members.0,
            self.node.phase(),
            self.node.settings().config_generation,
            packages.touched(),
            packages.switching_version(),
        );
        if self.shown.key == Some(key) {
            return self.shown.changes;
        }
        self.shown.key = Some(key);
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (key.0, key.1, key.2, key.3, packages.table_digest()).hash(&mut hasher);
        let digest = hasher.finish();
        if digest != self.shown.digest {
            self.shown.digest = digest;
            self.shown.changes += 1;
        }
        self.shown.changes
    }

    /// Answers the status-change requests: at once on a change, with none once their wait
    /// is over. Nothing is looked at while none waits (the agent's lifecycle thread waits
    /// nearly always: [`Driver::changes_seen`] is cheap until the package table moves).
    fn answer_changes(&mut self) {
        if self.change_waiters.is_empty() {
            return;
        }
        let changes = self.changes_seen();
        let now = std::time::Instant::now();
        let (answered, waiting): (Vec<ChangeWaiter>, Vec<ChangeWaiter>) =
            std::mem::take(&mut self.change_waiters)
                .into_iter()
                .partition(|w| w.after != changes || w.until <= now);
        self.change_waiters = waiting;
        for waiter in answered {
            self.give(&waiter.reply, Reply::StatusChange { changes });
        }
    }

    /// Gives up on the answers not given in time; answers the shared-map changes that this
    /// node's copy now shows, and the notices requests whose wait is over (with none).
    fn expire_answers(&mut self) {
        let now = std::time::Instant::now();
        let (over, waiting): (Vec<NoticeWaiter>, Vec<NoticeWaiter>) =
            std::mem::take(&mut self.notice_waiters)
                .into_iter()
                .partition(|w| w.until <= now);
        self.notice_waiters = waiting;
        for waiter in over {
            let reply = self.notices_after(waiter.after, waiter.with_status);
            self.give(&waiter.reply, reply);
        }
        let shared = self.node.shared();
        let view = self.node.view();
        let gone = |a: &Awaiting| {
            !a.taken
                && a.coordinator
                    .is_some_and(|(node, life)| !view.has(node, life))
        };
        let (late, waiting): (Vec<Awaiting>, Vec<Awaiting>) = std::mem::take(&mut self.awaiting)
            .into_iter()
            .partition(|a| {
                a.deadline <= now
                    || gone(a)
                    || (a.taken
                        && a.share
                            .as_ref()
                            .is_some_and(|(key, value)| shared.value(key) == value.as_deref()))
            });
        self.awaiting = waiting;
        let names = self.node_names();
        for awaiting in late {
            if awaiting.taken {
                // Shown here, or not yet after SHARE_SHOWN_WAIT: the cluster holds it all the
                // same (a newer change of the key, or a lost message the next whole copy
                // brings, keeps this copy from showing it).
                self.give(&awaiting.reply, Reply::Done);
                continue;
            }
            if awaiting.check {
                // Refused, not an error: the files must not pass as checked alone.
                self.give(
                    &awaiting.reply,
                    Reply::Refused(format!(
                        "the nodes' answers to cmcheckconf did not come within {} s",
                        crate::core::HALTED_APPLY_ANSWER_WAIT.as_secs()
                    )),
                );
                continue;
            }
            let why = match awaiting.coordinator {
                Some((node, life)) if !self.node.view().has(node, life) => format!(
                    "the package coordinator ({}) left the cluster before it answered",
                    names
                        .get(node.index())
                        .map_or_else(|| format!("node {}", node.index()), Clone::clone)
                ),
                _ => format!(
                    "the package coordinator did not answer within {} s",
                    ANSWER_WAIT.as_secs()
                ),
            };
            self.give(
                &awaiting.reply,
                Reply::Error(format!(
                    "{why}: the command may or may not have been carried out (see cmviewcl)"
                )),
            );
        }
    }

    fn admin_request(&mut self, now: Instant, request: Request) -> Result<Option<Answer>, Reply> {
        let names = self.node_names();
        let refused = |r: Refusal| Reply::Refused(name_nodes(&r.to_string(), &names));
        // A package command's refusal names its package.
        let refused_package = |name: &str, r: Refusal| {
            Reply::Refused(name_nodes(&r.naming(name).to_string(), &names))
        };
        let package = |node: &Node, name: &str| {
            node.settings()
                .catalog
                .find(name)
                .ok_or_else(|| Reply::Error(format!("{name} is not a package of this cluster")))
        };
        // Which of the package commands that take an optional node this is.
        enum Kind {
            Halt,
            Enable,
            Disable,
        }
        let request_kind = match &request {
            Request::EnablePackage { .. } => Kind::Enable,
            Request::DisablePackage { .. } => Kind::Disable,
            _ => Kind::Halt,
        };
        match request {
            // The admin connection carries it out as a series of requests.
            Request::HaltPackageAndDependents { .. } => Err(Reply::Error(
                "halt_package_and_dependents is carried out by the admin connection".into(),
            )),
            Request::Share { key, value } => {
                let taken_as = self.node.handle_share(now, key, value).map_err(refused)?;
                Ok(taken(taken_as))
            }
            Request::Shared { unless } => {
                let shared = self.node.shared();
                let copy = (self.node.incarnation().0, shared.changes());
                let values = (unless != Some(copy)).then(|| {
                    shared
                        .values()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect()
                });
                Ok(Some(Answer::Now(Reply::Shared { copy, values })))
            }
            Request::StatusChange { after, wait_ms } => {
                let changes = self.changes_seen();
                if wait_ms > 0 && changes == after {
                    let wait = Duration::from_millis(wait_ms).min(NOTICES_WAIT_MAX);
                    return Ok(Some(Answer::OnChange {
                        after,
                        until: std::time::Instant::now() + wait,
                    }));
                }
                Ok(Some(Answer::Now(Reply::StatusChange { changes })))
            }
            Request::Notices {
                after,
                wait_ms,
                with_status,
            } => {
                // Only a reader caught up with this life waits: one whose cursor is from
                // another life is answered at once, so it sees the new incarnation.
                if wait_ms > 0 && self.notices_told == after {
                    let wait = Duration::from_millis(wait_ms).min(NOTICES_WAIT_MAX);
                    return Ok(Some(Answer::OnNotice {
                        after,
                        until: std::time::Instant::now() + wait,
                        with_status,
                    }));
                }
                Ok(Some(Answer::Now(self.notices_after(after, with_status))))
            }
            Request::Status => {
                let rejected = self
                    .opener
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .rejected()
                    .iter()
                    .map(|(reason, count)| (rejected_name(*reason).to_string(), *count))
                    .collect();
                let channel = self.control.status();
                Ok(Some(Answer::Now(Reply::Status(Box::new(DaemonStatus {
                    node: self.name.clone(),
                    incarnation: self.node.incarnation().0,
                    pid: std::process::id(),
                    cluster: self.node.status(now),
                    safety_timer: self.safety_timer.clone(),
                    memory_locked: self.memory_locked.clone(),
                    realtime: self.realtime.clone(),
                    datagrams_rejected: rejected,
                    messages_undecodable: self.counters.undecodable.load(Ordering::Relaxed),
                    messages_too_large: channel.frames_too_large,
                    control: channel,
                    failover_bound_seconds: self.node.failover_bound().as_secs_f64(),
                    monitored_subnets: self.subnets.clone(),
                    access: AccessView::of(
                        &self.node.settings().config,
                        &self.node.settings().packages,
                    ),
                    service_pids: self.supervisor.service_pids(),
                })))))
            }
            Request::Configuration => {
                let settings = self.node.settings();
                Ok(Some(Answer::Now(Reply::Configuration {
                    cluster: crate::config::write::cluster_ascii(&settings.config),
                    packages: settings
                        .packages
                        .iter()
                        .map(crate::config::write::package_ascii)
                        .collect(),
                    generation: settings.config_sequence,
                    number: Some(settings.config_generation),
                })))
            }
            Request::RunPackage {
                package: name,
                node,
            } => {
                let package = package(&self.node, &name)?;
                let node = match node {
                    Some(n) => self.node_id(&n)?,
                    None => self.node.id(),
                };
                let taken_as = self
                    .node
                    .handle_command(now, Command::Run { package, node })
                    .map_err(|r| refused_package(&name, r))?;
                Ok(taken(taken_as))
            }
            Request::HaltPackage {
                package: name,
                node,
            }
            | Request::EnablePackage {
                package: name,
                node,
            }
            | Request::DisablePackage {
                package: name,
                node,
            } => {
                let package = package(&self.node, &name)?;
                let node = node.map(|n| self.node_id(&n)).transpose()?;
                let command = match request_kind {
                    Kind::Halt => Command::Halt { package, node },
                    Kind::Enable => Command::Enable { package, node },
                    Kind::Disable => Command::Disable { package, node },
                };
                let taken_as = self
                    .node
                    .handle_command(now, command)
                    .map_err(|r| refused_package(&name, r))?;
                Ok(taken(taken_as))
            }
            Request::ResetRestarts {
                package: name,
                service,
            } => {
                let package = package(&self.node, &name)?;
                let index = self
                    .node
                    .settings()
                    .catalog
                    .package(package)
                    .services
                    .iter()
                    .position(|s| s.name == service)
                    .ok_or_else(|| {
                        Reply::Error(format!("{service} is not a service of package {name}"))
                    })?;
                let service =
                    u16::try_from(index).map_err(|_| Reply::Error("too many services".into()))?;
                let taken_as = self
                    .node
                    .handle_command(now, Command::ResetRestarts { package, service })
                    .map_err(|r| refused_package(&name, r))?;
                Ok(taken(taken_as))
            }
            Request::Maintenance {
                package: name,
                on,
                node,
            } => {
                let package = package(&self.node, &name)?;
                let node = node.map(|n| self.node_id(&n)).transpose()?;
                let taken_as = self
                    .node
                    .handle_command(now, Command::Maintenance { package, on, node })
                    .map_err(|r| refused_package(&name, r))?;
                Ok(taken(taken_as))
            }
            Request::SetResource { name, value } => {
                self.node
                    .handle_resource(now, &name, value)
                    .map_err(|e| Reply::Refused(e.to_string()))?;
                Ok(None)
            }
            Request::Apply {
                cluster,
                packages,
                base,
                base_number,
            } => {
                let base = base.map(|generation| crate::core::Base {
                    generation,
                    number: base_number,
                });
                let settings = self.node.settings();
                let (cluster, packages) = checked_generation(
                    (&settings.config, &settings.packages),
                    cluster,
                    packages.as_deref(),
                )?;
                let halted = self.node.phase() == Phase::Halted;
                let taken_as = self
                    .node
                    .handle_apply(now, base, cluster, packages)
                    .map_err(refused)?;
                if let (true, Taken::Forwarded(serial)) = (halted, &taken_as) {
                    self.log.say(format_args!(
                        "cmapplyconf with the cluster halted (command {serial}): the new \
                         configuration is offered to every node"
                    ));
                }
                Ok(taken(taken_as))
            }
            Request::DeleteCluster => {
                let taken_as = self.node.handle_delete_cluster(now).map_err(refused)?;
                if let Taken::Forwarded(serial) = &taken_as {
                    self.log.say(format_args!(
                        "cmdeleteconf (command {serial}): the cluster's deletion is offered to \
                         every node"
                    ));
                }
                Ok(taken(taken_as))
            }
            // Previewed on the admin connection's thread (preview).
            Request::Preview { .. } => {
                Err(Reply::Error("preview is answered on its connection".into()))
            }
            // Checked on the admin connection's thread (check_apply).
            Request::CheckApply { .. } => Err(Reply::Error(
                "check_apply is answered on its connection".into(),
            )),
            Request::RunCluster { nodes } => {
                let set = self.node_set(&nodes)?;
                self.node.handle_run_cluster(now, set).map_err(refused)?;
                Ok(None)
            }
            // Previewed on the admin connection's thread (preview_run_cluster).
            Request::PreviewRunCluster { .. } => Err(Reply::Error(
                "preview_run_cluster is answered on its connection".into(),
            )),
            Request::HaltNode {
                force,
                detach,
                node: Some(name),
            } => {
                let node = self.node_id(&name)?;
                let taken_as = self
                    .node
                    .handle_halt_other(now, node, force, detach)
                    .map_err(refused)?;
                Ok(taken(taken_as))
            }
            Request::HaltNode {
                force,
                detach,
                node: None,
            } => {
                if detach {
                    self.node.handle_detach_node(now)
                } else {
                    self.node.handle_halt_node(now, force)
                }
                .map_err(refused)?;
                Ok(None)
            }
            Request::HaltCluster { force, detach } => {
                if detach {
                    self.node.handle_detach_cluster(now)
                } else {
                    self.node.handle_halt_cluster(now, force)
                }
                .map_err(refused)?;
                Ok(None)
            }
            Request::RunNode => {
                self.node.handle_run_node(now).map_err(refused)?;
                Ok(None)
            }
            Request::RunOtherNode { node } => {
                let id = self.node_id(&node)?;
                self.node.handle_run_other_node(now, id).map_err(refused)?;
                Ok(None)
            }
        }
    }
}

/// The files of a cmapplyconf, read and checked as cmcheckconf does: every finding that is an
/// error refuses the whole set (all of them are told).
/// The files of a cluster's creation (cmapplyconf on a node configured in no cluster),
/// checked as cmapplyconf checks them, with the timing they give.
pub(super) fn checked_new_cluster(
    cluster: Option<FileText>,
    packages: Option<&[FileText]>,
) -> Result<(ClusterConfig, Vec<PackageConfig>), Reply> {
    let Some(file) = cluster else {
        return Err(Reply::Refused(
            "this node is not configured in a cluster: give the cluster file (cmapplyconf -C) \
             to create one"
                .into(),
        ));
    };
    let parsed = cluster::parse(&file.text, &file.name)
        .map_err(|errors| {
            Reply::Error(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        })?
        .config;
    let (cluster, packages) =
        checked_generation((&parsed, &[]), Some(file), Some(packages.unwrap_or(&[])))?;
    Timing::derive(&cluster, "").map_err(|findings| {
        Reply::Error(
            findings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    Ok((cluster, packages))
}

fn checked_generation(
    (in_effect, packages_in_effect): (&ClusterConfig, &[PackageConfig]),
    cluster: Option<FileText>,
    packages: Option<&[FileText]>,
) -> Result<(ClusterConfig, Vec<PackageConfig>), Reply> {
    let mut findings: Vec<String> = Vec::new();
    let cluster = match cluster {
        None => Some(in_effect.clone()),
        Some(file) => match cluster::parse(&file.text, &file.name) {
            Ok(checked) => Some(checked.config),
            Err(errors) => {
                findings.extend(errors.iter().map(ToString::to_string));
                None
            }
        },
    };
    // No package files: the packages in effect, checked again against the cluster file.
    let (parsed, names): (Vec<PackageConfig>, Vec<String>) = match packages {
        None => (
            packages_in_effect.to_vec(),
            packages_in_effect
                .iter()
                .map(|p| format!("package {} (in effect)", p.name))
                .collect(),
        ),
        Some(files) => {
            let mut parsed = Vec::new();
            for file in files {
                match package::parse(&file.text, &file.name) {
                    Ok(checked) => parsed.push(checked.config),
                    Err(errors) => findings.extend(errors.iter().map(ToString::to_string)),
                }
            }
            (parsed, files.iter().map(|f| f.name.clone()).collect())
        }
    };
    if let (Some(cluster), true) = (&cluster, findings.is_empty()) {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        findings.extend(
            package::check_set(cluster, &parsed, &names)
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .map(ToString::to_string),
        );
    }
    match cluster {
        Some(cluster) if findings.is_empty() => Ok((cluster, parsed)),
        _ => Err(Reply::Error(findings.join("\n"))),
    }
}

fn rejected_name(reason: Rejected) -> &'static str {
    match reason {
        Rejected::Malformed => "malformed",
        Rejected::ForeignCluster => "foreign_cluster",
        Rejected::UnknownSender => "unknown_sender",
        Rejected::BadTag => "bad_tag",
        Rejected::Replayed => "replayed",
        Rejected::OldIncarnation => "old_incarnation",
    }
}

#[cfg(test)]
mod tests {
    use super::{dependents_running, name_nodes, AccessView, Reply, Request};
    use crate::packages::Refusal;

    /// CLUSTER_MEMBER_NODE matches the addresses of the nodes in the cluster, not those of
    /// a node deleted while it ran (its number stays, with its addresses).
    #[test]
    fn the_access_view_leaves_out_a_node_deleted_while_the_cluster_ran() {
        let text = crate::sim::cluster_file(&crate::sim::Options::new(3, 1));
        let mut config = crate::config::cluster::parse(&text, "c.ascii")
            .expect("the simulator's cluster file")
            .config;
        let n3: Vec<std::net::IpAddr> = config.nodes[2].heartbeat_addresses().collect();
        assert!(!n3.is_empty());
        assert!(AccessView::of(&config, &[])
            .node_addresses
            .iter()
            .any(|a| n3.contains(a)));
        config.nodes[2].deleted = true;
        let view = AccessView::of(&config, &[]);
        assert!(!view.node_addresses.iter().any(|a| n3.contains(a)));
        assert!(!view.node_addresses.is_empty());
    }

    #[test]
    fn a_configuration_and_an_apply_without_the_generation_number_still_read() {
        // As a daemon or a client from before the number was told writes them: the number
        // is absent, never 0 (which no generation has, and would be refused as a base).
        let reply: Reply = serde_json::from_str(
            r#"{"configuration":{"cluster":"c","packages":[],"generation":3}}"#,
        )
        .expect("reads");
        let Reply::Configuration {
            generation, number, ..
        } = reply
        else {
            panic!("{reply:?}")
        };
        assert_eq!((generation, number), (3, None));
        let request: Request =
            serde_json::from_str(r#"{"request":"apply","packages":[],"base":3}"#).expect("reads");
        assert!(matches!(
            request,
            Request::Apply {
                base: Some(3),
                base_number: None,
                ..
            }
        ));
    }

    #[test]
    fn the_cascade_knows_the_dependents_refusal() {
        let refusal = Refusal::DependentsRunning {
            dependents: vec!["web".into()],
        };
        assert_eq!(
            dependents_running("db"),
            "packages that depend on db are running"
        );
        assert!(refusal
            .naming("db")
            .to_string()
            .starts_with(&dependents_running("db")));
        assert!(!refusal
            .naming("web")
            .to_string()
            .starts_with(&dependents_running("db")));
    }

    #[test]
    fn node_numbers_become_names() {
        let names: Vec<String> = (1..=11).map(|k| format!("n{k}")).collect();
        assert_eq!(
            name_nodes("the package is already running on node 1", &names),
            "the package is already running on n2"
        );
        assert_eq!(name_nodes("node 10 and node 0.", &names), "n11 and n1.");
        assert_eq!(name_nodes("node 99 node x", &names), "node 99 node x");
    }
}
