//! The quorum server (`cmqsd`) and its client: the tie-breaker that runs outside the cluster
//! (serviceguard.md 4.2).
//!
//! # Protocol
//!
//! TCP port [`PORT`] (1238, `hacl-qs`), TLS 1.2 or 1.3 with ALPN [`ALPN`]. Each message is a
//! 4-byte big-endian length followed by that many bytes of one JSON object, at most
//! [`FRAME_BYTES_MAX`] bytes. The object's `type` names the message:
//!
//! ```text
//! client                                         server
//! {"type":"hello","version":1,"cluster_name":..,
//!  "cluster_id":..,"node_name":..}          -->
//!                                           <--  {"type":"welcome"}
//!                                                | {"type":"denied","reason":"access denied"}
//! {"type":"ping","id":7}                    -->
//!                                           <--  {"type":"pong","id":7}
//! {"type":"acquire","id":8,"instance":513,
//!  "group":3}                               -->
//!                                           <--  {"type":"granted","id":8}
//!                                                | {"type":"denied","id":8,"holder":12}
//! ```
//!
//! A denied hello is followed by the end of the connection. There is no release: the state is
//! memory-only and old instances expire. Both halves of a split ask for the same instance (the
//! epoch of the membership that split), so a server that forgot a grant must not give that
//! instance to the other half: a restarted server denies every acquire for
//! [`ArbiterLimits::startup_quiet`], longer than any cluster waits for an answer (a node whose
//! request is not answered in time treats the lock as lost and ignores a later answer), and a
//! cluster's forgotten instances are remembered by name after its memory area goes.
//!
//! # Parts
//!
//! - [`Arbiter`]: the decisions, without IO: per cluster and per instance, the first group to
//!   ask gets the lock, the same group again is granted, another group is denied.
//! - [`AuthFile`]: the authorization file (`qs_authfile`): host names or addresses, `+` for any.
//! - [`QuorumServer`]: the server, one thread per connection on std sockets.
//! - [`QuorumClient`]: one node's connection, kept open and re-opened on failure; it answers
//!   the core's [`QuorumServerRequest`]s.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::ToSocketAddrs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::StreamOwned;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::core::{
    Epoch, NodeSet, QuorumServerAnswer, QuorumServerAsk, QuorumServerRefusal, QuorumServerRequest,
};

/// The quorum server's TCP port (`hacl-qs`).
pub const PORT: u16 = 1238;
/// The protocol version this code speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The largest message, in bytes of JSON (the length prefix not counted).
pub const FRAME_BYTES_MAX: usize = 64 * 1024;
/// The TLS application protocol both sides insist on, so that no other TLS service (the WBEM
/// server's `http/1.1`) is mistaken for a quorum server.
pub const ALPN: &[u8] = b"cimguard-qs/1";
/// The longest cluster or node name accepted in a hello, in bytes.
pub const NAME_BYTES_MAX: usize = 255;

// ---------------------------------------------------------------------------------------------
// Protocol

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// The first message of a connection.
    Hello {
        /// The client's [`PROTOCOL_VERSION`].
        version: u32,
        /// CLUSTER_NAME.
        cluster_name: String,
        /// The digest of CLUSTER_NAME ([`crate::core::cluster_id`]).
        cluster_id: u64,
        /// NODE_NAME of the client (for the log).
        node_name: String,
    },
    /// Are you there.
    Ping {
        /// Echoed in the answer.
        id: u64,
    },
    /// Grant the lock of `instance` to `group`.
    Acquire {
        /// Echoed in the answer.
        id: u64,
        /// The epoch of the membership that split.
        instance: Epoch,
        /// The node indices of the group asking.
        group: NodeSet,
    },
}

/// The server's answer to a hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HelloReply {
    /// The connection may send requests.
    Welcome,
    /// The connection is refused and closes.
    Denied {
        /// Why ([`Refusal`]'s text).
        reason: String,
        /// Why, for the client's status (cmviewcl's quorum server state); absent from a
        /// server that does not say it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refusal: Option<QuorumServerRefusal>,
    },
}

/// The server's answer to a request after the hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// The answer to a ping.
    Pong {
        /// The ping's id.
        id: u64,
    },
    /// The lock of the instance is the asking group's.
    Granted {
        /// The request's id.
        id: u64,
    },
    /// The lock of the instance is another group's.
    Denied {
        /// The request's id.
        id: u64,
        /// The group holding it; empty when the instance is too old to be remembered.
        holder: NodeSet,
    },
}

/// Why a message could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between two messages.
    #[error("connection closed")]
    Closed,
    /// Reading or writing failed (including timeouts and TLS errors).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The length prefix announces more than [`FRAME_BYTES_MAX`].
    #[error("message of {bytes} bytes exceeds the limit of {FRAME_BYTES_MAX}")]
    TooLarge {
        /// The announced length.
        bytes: usize,
    },
    /// The bytes are not a message of the protocol.
    #[error("malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Writes one length-prefixed JSON message and flushes it.
pub fn write_frame<W: Write, T: Serialize>(writer: &mut W, message: &T) -> Result<(), FrameError> {
    let body = serde_json::to_vec(message)?;
    if body.len() > FRAME_BYTES_MAX {
        return Err(FrameError::TooLarge { bytes: body.len() });
    }
    // The length fits: it is at most FRAME_BYTES_MAX.
    let length = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(&body);
    writer.write_all(&frame)?;
    writer.flush()?;
    Ok(())
}

/// Reads one length-prefixed JSON message. The length is checked before anything is
/// allocated.
pub fn read_frame<R: Read, T: DeserializeOwned>(reader: &mut R) -> Result<T, FrameError> {
    let mut header = [0u8; 4];
    let mut filled = 0;
    while filled < header.len() {
        match reader.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            // rustls reports a peer that closed without close_notify this way.
            Err(error) if filled == 0 && error.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(FrameError::Closed)
            }
            Err(error) => return Err(error.into()),
        }
    }
    let bytes = u32::from_be_bytes(header) as usize;
    if bytes > FRAME_BYTES_MAX {
        return Err(FrameError::TooLarge { bytes });
    }
    let mut body = vec![0u8; bytes];
    reader.read_exact(&mut body)?;
    Ok(serde_json::from_slice(&body)?)
}

// ---------------------------------------------------------------------------------------------
// Arbiter

/// The limits of the [`Arbiter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArbiterLimits {
    /// Clusters served at once (Serviceguard QS A.04: 150).
    pub clusters_max: usize,
    /// Instances remembered per cluster: the newest are kept.
    pub instances_per_cluster_max: usize,
    /// How long a grant is remembered. It must exceed the cluster's own lock timeout by far:
    /// a request that arrives later than this for a forgotten instance is denied.
    pub instance_age_max: Duration,
    /// After a (re)start every acquire is denied this long: a grant given before the restart
    /// is forgotten, and the other half of that split may still be asking. It must exceed
    /// the longest quorum server timeout of any cluster served (0.2 x MEMBER_TIMEOUT +
    /// QS_TIMEOUT_EXTENSION; MEMBER_TIMEOUT is at most 300 s).
    pub startup_quiet: Duration,
}

impl Default for ArbiterLimits {
    fn default() -> Self {
        ArbiterLimits {
            clusters_max: 150,
            instances_per_cluster_max: 64,
            instance_age_max: Duration::from_secs(600),
            startup_quiet: Duration::from_secs(150),
        }
    }
}

impl Refusal {
    /// What the client's status says of it.
    pub fn kind(&self) -> QuorumServerRefusal {
        match self {
            Refusal::NotAuthorized => QuorumServerRefusal::AccessDenied,
            Refusal::UnsupportedVersion { .. } => QuorumServerRefusal::UnsupportedVersion,
            _ => QuorumServerRefusal::Other,
        }
    }
}

/// Why a hello is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The client's address is not in the authorization file.
    #[error("access denied")]
    NotAuthorized,
    /// The client speaks another protocol version.
    #[error("unsupported version {version} (the server speaks {PROTOCOL_VERSION})")]
    UnsupportedVersion {
        /// The client's version.
        version: u32,
    },
    /// Another cluster id is registered under this cluster name.
    #[error("cluster id conflict: another cluster named {cluster_name} is registered")]
    ClusterIdConflict {
        /// The name.
        cluster_name: String,
    },
    /// The server serves as many clusters as it may.
    #[error("too many clusters: the server serves {clusters_max} already")]
    ClustersFull {
        /// [`ArbiterLimits::clusters_max`].
        clusters_max: usize,
    },
    /// A cluster or node name is empty or longer than [`NAME_BYTES_MAX`].
    #[error("invalid cluster or node name")]
    InvalidName,
    /// The first message was not a hello.
    #[error("expected a hello")]
    ExpectedHello,
}

/// The answer to an acquire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The lock is the asking group's.
    Granted,
    /// The lock is `holder`'s; an empty holder means the instance is older than anything
    /// remembered (or the request made no sense), and nobody may have it now.
    Denied {
        /// The group that holds it.
        holder: NodeSet,
    },
}

/// The quorum server's decisions, without IO: the "special area in memory per cluster" of
/// Serviceguard's quorum server.
///
/// Clusters are known by name and id while a connection of theirs is open
/// ([`register`](Self::register) / [`unregister`](Self::unregister)) or while they hold a
/// grant. Grants are forgotten when more than [`ArbiterLimits::instances_per_cluster_max`]
/// newer ones exist or after [`ArbiterLimits::instance_age_max`]; an acquire for an instance
/// at or below the newest forgotten one is denied, since its grant may have gone to anyone.
#[derive(Debug, Clone)]
pub struct Arbiter {
    limits: ArbiterLimits,
    clusters: HashMap<String, Area>,
    /// Acquires are denied until then (see [`ArbiterLimits::startup_quiet`]).
    quiet_until: Option<Instant>,
    /// The newest forgotten instance of clusters whose area is gone, by name (bounded).
    forgotten: HashMap<String, Epoch>,
}

/// One cluster's memory.
#[derive(Debug, Clone)]
struct Area {
    id: u64,
    connections: usize,
    grants: BTreeMap<Epoch, Grant>,
    forgotten_through: Option<Epoch>,
}

#[derive(Debug, Clone, Copy)]
struct Grant {
    group: NodeSet,
    granted_at: Instant,
}

impl Arbiter {
    /// An arbiter that knows no cluster and grants at once (no quiet period: for a server
    /// that has never granted anything, and for tests).
    pub fn new(limits: ArbiterLimits) -> Arbiter {
        Arbiter {
            limits,
            clusters: HashMap::new(),
            quiet_until: None,
            forgotten: HashMap::new(),
        }
    }

    /// An arbiter of a server starting at `now`: it denies every acquire for
    /// [`ArbiterLimits::startup_quiet`].
    pub fn starting(limits: ArbiterLimits, now: Instant) -> Arbiter {
        let mut arbiter = Arbiter::new(limits);
        arbiter.quiet_until = Some(now + limits.startup_quiet);
        arbiter
    }

    /// A connection of cluster `cluster_name` with id `cluster_id` said hello. On success the
    /// caller must [`unregister`](Self::unregister) when the connection ends.
    pub fn register(
        &mut self,
        now: Instant,
        cluster_name: &str,
        cluster_id: u64,
    ) -> Result<(), Refusal> {
        self.expire(now);
        if let Some(area) = self.clusters.get_mut(cluster_name) {
            if area.id != cluster_id {
                return Err(Refusal::ClusterIdConflict {
                    cluster_name: cluster_name.to_string(),
                });
            }
            area.connections += 1;
            return Ok(());
        }
        if self.clusters.len() >= self.limits.clusters_max {
            return Err(Refusal::ClustersFull {
                clusters_max: self.limits.clusters_max,
            });
        }
        let forgotten_through = self.forgotten.remove(cluster_name);
        self.clusters.insert(
            cluster_name.to_string(),
            Area {
                id: cluster_id,
                connections: 1,
                grants: BTreeMap::new(),
                forgotten_through,
            },
        );
        Ok(())
    }

    /// A registered connection of `cluster_name` ended.
    pub fn unregister(&mut self, now: Instant, cluster_name: &str) {
        if let Some(area) = self.clusters.get_mut(cluster_name) {
            area.connections = area.connections.saturating_sub(1);
        }
        self.expire(now);
    }

    /// `group` of cluster `cluster_name` (id `cluster_id`) asks for the lock of `instance`.
    pub fn acquire(
        &mut self,
        now: Instant,
        cluster_name: &str,
        cluster_id: u64,
        instance: Epoch,
        group: NodeSet,
    ) -> Decision {
        let nobody = Decision::Denied {
            holder: NodeSet::EMPTY,
        };
        self.expire(now);
        if self.quiet_until.is_some_and(|until| now < until) {
            return nobody;
        }
        let instances_max = self.limits.instances_per_cluster_max;
        let Some(area) = self
            .clusters
            .get_mut(cluster_name)
            .filter(|area| area.id == cluster_id)
        else {
            return nobody;
        };
        if group.is_empty() {
            return nobody;
        }
        if let Some(grant) = area.grants.get(&instance) {
            return if grant.group == group {
                Decision::Granted
            } else {
                Decision::Denied {
                    holder: grant.group,
                }
            };
        }
        if area
            .forgotten_through
            .is_some_and(|through| instance <= through)
        {
            return nobody;
        }
        // Full, and older than everything remembered: it would be forgotten at once.
        if area.grants.len() >= instances_max
            && area
                .grants
                .keys()
                .next()
                .is_some_and(|&oldest| instance < oldest)
        {
            return nobody;
        }
        area.grants.insert(
            instance,
            Grant {
                group,
                granted_at: now,
            },
        );
        while area.grants.len() > instances_max {
            if let Some((oldest, _)) = area.grants.pop_first() {
                area.forget(oldest);
            }
        }
        Decision::Granted
    }

    /// The group holding the lock of `instance` of `cluster_name`, if remembered.
    pub fn holder(&self, cluster_name: &str, instance: Epoch) -> Option<NodeSet> {
        self.clusters
            .get(cluster_name)?
            .grants
            .get(&instance)
            .map(|grant| grant.group)
    }

    /// The clusters known now.
    pub fn clusters(&self) -> usize {
        self.clusters.len()
    }

    /// The limits.
    pub fn limits(&self) -> ArbiterLimits {
        self.limits
    }

    /// Forgets grants older than the age limit, then clusters with no connection and no grant.
    fn expire(&mut self, now: Instant) {
        let age_max = self.limits.instance_age_max;
        for area in self.clusters.values_mut() {
            let old: Vec<Epoch> = area
                .grants
                .iter()
                .filter(|(_, grant)| now.saturating_duration_since(grant.granted_at) > age_max)
                .map(|(&instance, _)| instance)
                .collect();
            for instance in old {
                area.grants.remove(&instance);
                area.forget(instance);
            }
        }
        let forgotten = &mut self.forgotten;
        self.clusters.retain(|name, area| {
            let keep = area.connections > 0 || !area.grants.is_empty();
            if !keep {
                if let Some(through) = area.forgotten_through {
                    forgotten.insert(name.clone(), through);
                }
            }
            keep
        });
        // Bounded: past the bound the oldest memories go (their instances are long past any
        // cluster's lock timeout).
        let bound = self.limits.clusters_max.saturating_mul(4).max(16);
        while self.forgotten.len() > bound {
            let Some(oldest) = self
                .forgotten
                .iter()
                .min_by_key(|(_, through)| **through)
                .map(|(name, _)| name.clone())
            else {
                break;
            };
            self.forgotten.remove(&oldest);
        }
    }
}

impl Area {
    fn forget(&mut self, instance: Epoch) {
        self.forgotten_through = Some(self.forgotten_through.map_or(instance, |t| t.max(instance)));
    }
}

// ---------------------------------------------------------------------------------------------
// Authorization file

/// The authorization file: the addresses that may connect. One host name or IP address per
/// line, `+` for any host, `#` starts a comment. Names are resolved when the file is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthFile {
    any: bool,
    addresses: HashSet<IpAddr>,
    unresolved: Vec<String>,
}

/// Why an authorization file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    /// It cannot be read.
    #[error("cannot read the authorization file {}: {error}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// A line holds more than one word.
    #[error("line {line} of the authorization file holds more than one host: {text}")]
    Syntax {
        /// The line number, from 1.
        line: usize,
        /// The line.
        text: String,
    },
}

impl AuthFile {
    /// Any host may connect (`+`).
    pub fn any() -> AuthFile {
        AuthFile {
            any: true,
            ..AuthFile::default()
        }
    }

    /// Exactly these addresses may connect.
    pub fn from_addresses(addresses: impl IntoIterator<Item = IpAddr>) -> AuthFile {
        AuthFile {
            addresses: addresses.into_iter().map(|a| a.to_canonical()).collect(),
            ..AuthFile::default()
        }
    }

    /// Reads the file at `path`, resolving host names with the system's resolver.
    pub fn load(path: &Path) -> Result<AuthFile, AuthFileError> {
        let text = std::fs::read_to_string(path).map_err(|error| AuthFileError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        AuthFile::parse_with(&text, resolve_host)
    }

    /// Parses the text of a file, resolving each name with `resolve`. Names that do not
    /// resolve are kept in [`unresolved`](Self::unresolved) (for a warning), not refused: one
    /// stale entry must not keep the server from starting.
    pub fn parse_with(
        text: &str,
        mut resolve: impl FnMut(&str) -> io::Result<Vec<IpAddr>>,
    ) -> Result<AuthFile, AuthFileError> {
        let mut file = AuthFile::default();
        for (index, line) in text.lines().enumerate() {
            let content = line.split('#').next().unwrap_or("");
            let mut words = content.split_whitespace();
            let Some(host) = words.next() else { continue };
            if words.next().is_some() {
                return Err(AuthFileError::Syntax {
                    line: index + 1,
                    text: line.to_string(),
                });
            }
            if host == "+" {
                file.any = true;
            } else if let Ok(address) = host.parse::<IpAddr>() {
                file.addresses.insert(address.to_canonical());
            } else {
                match resolve(host) {
                    Ok(addresses) if !addresses.is_empty() => file
                        .addresses
                        .extend(addresses.into_iter().map(|a| a.to_canonical())),
                    Ok(_) | Err(_) => file.unresolved.push(host.to_string()),
                }
            }
        }
        Ok(file)
    }

    /// Whether `address` may connect.
    pub fn allows(&self, address: IpAddr) -> bool {
        self.any || self.addresses.contains(&address.to_canonical())
    }

    /// The names that did not resolve when the file was read.
    pub fn unresolved(&self) -> &[String] {
        &self.unresolved
    }
}

fn resolve_host(host: &str) -> io::Result<Vec<IpAddr>> {
    Ok((host, 0u16)
        .to_socket_addrs()?
        .map(|address| address.ip())
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Server

/// The limits of the [`QuorumServer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Open connections at most (Serviceguard QS A.04: 300 nodes in all).
    pub connections_max: usize,
    /// The time to finish the TLS handshake and send the hello.
    pub handshake_timeout: Duration,
    /// The time a connection may stay silent between requests. Clients ping every
    /// QS_POLLING_INTERVAL (Serviceguard's default: 300 s), so it must be longer than that.
    pub idle_timeout: Duration,
    /// The time to write one answer.
    pub write_timeout: Duration,
    /// The arbiter's limits.
    pub arbiter: ArbiterLimits,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            connections_max: 512,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(900),
            write_timeout: Duration::from_secs(10),
            arbiter: ArbiterLimits::default(),
        }
    }
}

/// The quorum server: accepts connections on any number of listeners (one thread each, see
/// [`serve`](Self::serve)), one thread per connection, and logs one line per connection and
/// per decision to stderr.
#[derive(Debug)]
pub struct QuorumServer {
    tls: Arc<ServerConfig>,
    authorized: RwLock<Arc<AuthFile>>,
    arbiter: Mutex<Arbiter>,
    limits: ServerLimits,
    /// The open connections, to count them and to close them on shutdown.
    /// The sockets are shared with their threads, not duplicated: one descriptor each.
    connections: Mutex<HashMap<u64, Arc<TcpStream>>>,
    next_connection: AtomicU64,
    stopping: AtomicBool,
    /// The listeners' addresses, to wake their accept calls on shutdown.
    listening: Mutex<Vec<SocketAddr>>,
}

/// Serves `listener` until the server is shut down, which this function's caller cannot do:
/// for a server that stops, use [`QuorumServer::new`] and [`QuorumServer::serve`].
pub fn serve(
    listener: TcpListener,
    tls: &ServerConfig,
    authorized: AuthFile,
    limits: ServerLimits,
) -> io::Result<()> {
    QuorumServer::new(tls, authorized, limits).serve(listener)
}

impl QuorumServer {
    /// A server with the TLS configuration `tls` (its ALPN list is replaced with [`ALPN`]),
    /// admitting the hosts of `authorized`.
    pub fn new(
        tls: &ServerConfig,
        authorized: AuthFile,
        limits: ServerLimits,
    ) -> Arc<QuorumServer> {
        let mut tls = tls.clone();
        tls.alpn_protocols = vec![ALPN.to_vec()];
        Arc::new(QuorumServer {
            tls: Arc::new(tls),
            authorized: RwLock::new(Arc::new(authorized)),
            arbiter: Mutex::new(Arbiter::starting(limits.arbiter, Instant::now())),
            limits,
            connections: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            listening: Mutex::new(Vec::new()),
        })
    }

    /// Accepts connections on `listener` until [`shutdown`](Self::shutdown); blocks.
    #[allow(
        clippy::needless_pass_by_value,
        reason = "serving owns the listener: the port closes when serving ends"
    )]
    pub fn serve(self: &Arc<Self>, listener: TcpListener) -> io::Result<()> {
        lock(&self.listening).push(listener.local_addr()?);
        for incoming in listener.incoming() {
            if self.stopping.load(Ordering::SeqCst) {
                break;
            }
            match incoming {
                Ok(stream) => self.admit(stream),
                Err(error) => {
                    log(format_args!("accept failed: {error}"));
                    // Out of descriptors or memory: give the connections time to end rather
                    // than spin.
                    thread::sleep(Duration::from_millis(100));
                }
            }
        }
        Ok(())
    }

    /// Stops accepting, closes every open connection and makes [`serve`](Self::serve)
    /// return. The grants are forgotten with the server.
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for address in lock(&self.listening).iter() {
            let mut wake = *address;
            if wake.ip().is_unspecified() {
                wake.set_ip(match wake {
                    SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
                });
            }
            // The accept loop sees `stopping` on the next connection; this is it.
            let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        }
        for stream in lock(&self.connections).values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Whether the authorization file in effect allows `address`.
    fn allows(&self, address: IpAddr) -> bool {
        self.authorized
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .allows(address)
    }

    /// Replaces the authorization file (on SIGHUP). Open connections stay, but a host the new
    /// file leaves out is refused its next lock request, and its connection ends.
    pub fn set_authorized(&self, authorized: AuthFile) {
        *self
            .authorized
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(authorized);
    }

    /// The connections open now.
    pub fn connections(&self) -> usize {
        lock(&self.connections).len()
    }

    /// The clusters known now.
    pub fn clusters(&self) -> usize {
        lock(&self.arbiter).clusters()
    }

    fn admit(self: &Arc<Self>, stream: TcpStream) {
        let stream = Arc::new(stream);
        let peer = match stream.peer_addr() {
            Ok(peer) => peer,
            Err(error) => {
                log(format_args!("connection without a peer address: {error}"));
                return;
            }
        };
        if self.stopping.load(Ordering::SeqCst) {
            return;
        }
        let id = self.next_connection.fetch_add(1, Ordering::Relaxed);
        {
            let mut connections = lock(&self.connections);
            if connections.len() >= self.limits.connections_max {
                log(format_args!(
                    "{peer}: refused: {} connections are open already",
                    connections.len()
                ));
                return;
            }
            connections.insert(id, Arc::clone(&stream));
        }
        let server = Arc::clone(self);
        let spawned = thread::Builder::new()
            .name("cmqsd-connection".into())
            .spawn(move || {
                let mut session = Session {
                    peer,
                    cluster: None,
                };
                let why = match server.converse(stream, &mut session) {
                    Ok(()) => "closed by the client".to_string(),
                    Err(why) => why,
                };
                if let Some((cluster_name, _, node_name)) = &session.cluster {
                    lock(&server.arbiter).unregister(Instant::now(), cluster_name);
                    log(format_args!(
                        "{peer}: node {node_name:?} of cluster {cluster_name:?}: connection ended: {why}"
                    ));
                } else {
                    log(format_args!("{peer}: connection ended: {why}"));
                }
                lock(&server.connections).remove(&id);
            });
        if let Err(error) = spawned {
            log(format_args!("{peer}: refused: no thread: {error}"));
            lock(&self.connections).remove(&id);
        }
    }

    /// One connection, from the handshake to its end; the error says why it ended.
    fn converse(&self, stream: Arc<TcpStream>, session: &mut Session) -> Result<(), String> {
        let peer = session.peer;
        stream
            .set_write_timeout(Some(self.limits.write_timeout))
            .map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let connection = ServerConnection::new(Arc::clone(&self.tls)).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + self.limits.handshake_timeout;
        let mut tls = StreamOwned::new(connection, DeadlineStream::new(stream, Some(deadline)));
        let hello: Request = read_frame(&mut tls).map_err(|e| format!("before hello: {e}"))?;
        let Request::Hello {
            version,
            cluster_name,
            cluster_id,
            node_name,
        } = hello
        else {
            return self.refuse(&mut tls, &Refusal::ExpectedHello);
        };
        if let Err(refusal) =
            self.welcome(peer.ip(), version, &cluster_name, cluster_id, &node_name)
        {
            log(format_args!(
                "{peer}: node {} of cluster {} (id {cluster_id:#x}) denied: {refusal}",
                shown(&node_name),
                shown(&cluster_name)
            ));
            return self.refuse(&mut tls, &refusal);
        }
        log(format_args!(
            "{peer}: node {node_name:?} of cluster {cluster_name:?} (id {cluster_id:#x}) connected"
        ));
        session.cluster = Some((cluster_name.clone(), cluster_id, node_name.clone()));
        write_frame(&mut tls, &HelloReply::Welcome).map_err(|e| e.to_string())?;
        tls.sock.deadline = None;
        tls.sock.idle = Some(self.limits.idle_timeout);
        loop {
            let request: Request = match read_frame(&mut tls) {
                Ok(request) => request,
                Err(FrameError::Closed) => return Ok(()),
                Err(error) => return Err(error.to_string()),
            };
            let reply = match request {
                Request::Ping { id } => Reply::Pong { id },
                Request::Acquire {
                    id,
                    instance,
                    group,
                } => {
                    // A host taken out of the authorization file (SIGHUP) since its hello
                    // gets no lock: its connection ends.
                    if !self.allows(peer.ip()) {
                        let refusal = Refusal::NotAuthorized;
                        log(format_args!(
                            "{peer}: node {node_name:?} of cluster {cluster_name:?}: {refusal}"
                        ));
                        return Err(refusal.to_string());
                    }
                    let decision = lock(&self.arbiter).acquire(
                        Instant::now(),
                        &cluster_name,
                        cluster_id,
                        instance,
                        group,
                    );
                    log(format_args!(
                        "{peer}: node {node_name:?} of cluster {cluster_name:?}: lock of instance {instance} for group {group:?}: {decision:?}"
                    ));
                    match decision {
                        Decision::Granted => Reply::Granted { id },
                        Decision::Denied { holder } => Reply::Denied { id, holder },
                    }
                }
                Request::Hello { .. } => return Err("a second hello".into()),
            };
            write_frame(&mut tls, &reply).map_err(|e| e.to_string())?;
        }
    }

    fn welcome(
        &self,
        address: IpAddr,
        version: u32,
        cluster_name: &str,
        cluster_id: u64,
        node_name: &str,
    ) -> Result<(), Refusal> {
        if !self.allows(address) {
            return Err(Refusal::NotAuthorized);
        }
        if version != PROTOCOL_VERSION {
            return Err(Refusal::UnsupportedVersion { version });
        }
        let valid = |name: &str| !name.is_empty() && name.len() <= NAME_BYTES_MAX;
        if !valid(cluster_name) || !valid(node_name) {
            return Err(Refusal::InvalidName);
        }
        lock(&self.arbiter).register(Instant::now(), cluster_name, cluster_id)
    }

    fn refuse<S: Read + Write>(
        &self,
        tls: &mut StreamOwned<ServerConnection, S>,
        refusal: &Refusal,
    ) -> Result<(), String> {
        let reply = HelloReply::Denied {
            reason: refusal.to_string(),
            refusal: Some(refusal.kind()),
        };
        write_frame(tls, &reply).map_err(|e| e.to_string())?;
        tls.conn.send_close_notify();
        let _ = tls.flush();
        Err(format!("denied: {refusal}"))
    }
}

/// What the server knows of one connection.
struct Session {
    peer: SocketAddr,
    /// Cluster name, id and node name once welcomed (and registered with the arbiter).
    cluster: Option<(String, u64, String)>,
}

/// A socket whose reads end at a deadline (the handshake's), or after a silence (`idle`).
#[derive(Debug)]
struct DeadlineStream {
    stream: Arc<TcpStream>,
    deadline: Option<Instant>,
    idle: Option<Duration>,
}

impl DeadlineStream {
    fn new(stream: Arc<TcpStream>, deadline: Option<Instant>) -> DeadlineStream {
        DeadlineStream {
            stream,
            deadline,
            idle: None,
        }
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let timeout = match self.deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
                }
                Some(left)
            }
            None => self.idle,
        };
        self.stream.set_read_timeout(timeout)?;
        (&*self.stream).read(buffer)
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        (&*self.stream).write(buffer)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self.stream).flush()
    }
}

/// Takes a lock whatever a panicking holder left: every critical section here leaves the
/// data whole (counters, map inserts and removals).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn log(message: fmt::Arguments<'_>) {
    eprintln!("cmqsd: {message}");
}

// ---------------------------------------------------------------------------------------------
// Client

/// What a [`QuorumClient`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// The server's addresses, tried in order: QS_HOST then QS_ADDR, each `host` or
    /// `host:port` (port [`PORT`] by default; IPv6 literals in brackets when with a port).
    pub addresses: Vec<String>,
    /// The PEM file of the authority that signed the server's certificate.
    pub ca_cert: PathBuf,
    /// The name the server's certificate must carry; `None`: the host part of each address.
    pub server_name: Option<String>,
    /// CLUSTER_NAME.
    pub cluster_name: String,
    /// The cluster's id ([`crate::core::cluster_id`] of CLUSTER_NAME).
    pub cluster_id: u64,
    /// This node's NODE_NAME.
    pub node_name: String,
    /// The limit of each step: connecting to one address, the TLS handshake and hello, one
    /// request's answer.
    pub timeout: Duration,
    /// How often to try to connect again while disconnected and idle.
    pub reconnect_interval: Duration,
}

/// The shortest limit of a client step (connecting, the handshake, one answer).
pub const STEP_TIMEOUT_MIN: Duration = Duration::from_millis(200);

impl ClientSettings {
    /// Settings for node `node_name` of `cluster_name` reaching QS_HOST `host` (and QS_ADDR
    /// `alternate`), trusting the authority in `ca_cert`; 5 s steps, reconnecting every 10 s.
    pub fn new(
        host: &str,
        alternate: Option<&str>,
        ca_cert: PathBuf,
        cluster_name: &str,
        node_name: &str,
    ) -> ClientSettings {
        ClientSettings {
            addresses: std::iter::once(host)
                .chain(alternate)
                .map(String::from)
                .collect(),
            ca_cert,
            server_name: None,
            cluster_name: cluster_name.to_string(),
            cluster_id: crate::core::cluster_id(cluster_name),
            node_name: node_name.to_string(),
            timeout: Duration::from_secs(5),
            reconnect_interval: Duration::from_secs(10),
        }
    }
}

/// Why [`ping`] found the quorum server unable to break a tie for a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// It answered with a refusal of the node.
    Refused {
        /// QS_HOST (and QS_ADDR), as a message names them.
        named: String,
        /// The node.
        node: String,
        /// Its reason.
        why: QuorumServerRefusal,
    },
    /// It did not answer (or its authority could not be read).
    Silent {
        /// QS_HOST (and QS_ADDR), as a message names them.
        named: String,
        /// The node.
        node: String,
        /// What failed.
        error: String,
    },
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::Refused { named, node, why } => write!(
                f,
                "the quorum server {named} refuses {node}: {}",
                match why {
                    QuorumServerRefusal::AccessDenied => {
                        "access denied (its qs_authfile must list every node)"
                    }
                    QuorumServerRefusal::UnsupportedVersion => {
                        "unsupported version (the quorum server and the nodes must speak the \
                         same protocol version)"
                    }
                    QuorumServerRefusal::Other => "refused",
                }
            ),
            Unavailable::Silent { named, node, error } => {
                write!(
                    f,
                    "the quorum server {named} does not answer {node}: {error}"
                )
            }
        }
    }
}

impl std::error::Error for Unavailable {}

/// Pings the quorum server at QS_HOST `host` (then QS_ADDR `alternate`) as node `node_name`
/// of cluster `cluster_name`, trusting the authority in `ca_cert`, each step (connecting to an
/// address, the handshake, the answer) within `step`: what cmcheckconf -C, cmapplyconf -C
/// and cmquerycl -q ask before a file names it (serviceguard.md 4.2).
pub fn ping(
    (host, alternate): (&str, Option<&str>),
    ca_cert: &Path,
    cluster_name: &str,
    node_name: &str,
    step: Duration,
) -> Result<(), Unavailable> {
    let named = match alternate {
        Some(alternate) => format!("{host} (or {alternate})"),
        None => host.to_owned(),
    };
    let mut settings =
        ClientSettings::new(host, alternate, ca_cert.to_owned(), cluster_name, node_name);
    settings.timeout = step;
    let answer = QuorumClient::new(settings)
        .map_err(|e| format!("{}: {e}", ca_cert.display()))
        .and_then(|mut client| client.request(QuorumServerAsk::Ping));
    match answer {
        Ok(QuorumServerAnswer::Refused(why)) => Err(Unavailable::Refused {
            named,
            node: node_name.to_owned(),
            why,
        }),
        Ok(_) => Ok(()),
        Err(error) => Err(Unavailable::Silent {
            named,
            node: node_name.to_owned(),
            error,
        }),
    }
}

/// The TLS configuration of a client that trusts the authorities in the PEM file `ca_cert`
/// and offers [`ALPN`].
pub fn client_tls(ca_cert: &Path) -> io::Result<Arc<ClientConfig>> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let mut roots = RootCertStore::empty();
    let certificates = CertificateDer::pem_file_iter(ca_cert)
        .map_err(|e| invalid(format!("{}: {e}", ca_cert.display())))?;
    for certificate in certificates {
        let certificate =
            certificate.map_err(|e| invalid(format!("{}: {e}", ca_cert.display())))?;
        roots
            .add(certificate)
            .map_err(|e| invalid(format!("{}: {e}", ca_cert.display())))?;
    }
    if roots.is_empty() {
        return Err(invalid(format!("{}: no certificate", ca_cert.display())));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// One node's connection to the quorum server, kept open between requests and opened again
/// (trying each address in turn) when it fails.
///
/// [`spawn`](Self::spawn) runs it on a thread of its own for the node daemon;
/// [`request`](Self::request) asks one question, blocking (for commands such as
/// `cmquerycl -q`).
pub struct QuorumClient {
    settings: ClientSettings,
    tls: Arc<ClientConfig>,
    connection: Option<StreamOwned<ClientConnection, TcpStream>>,
    /// The address that worked last, tried first.
    preferred: usize,
    next_id: u64,
}

impl fmt::Debug for QuorumClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuorumClient")
            .field("settings", &self.settings)
            .field("connected", &self.connection.is_some())
            .finish_non_exhaustive()
    }
}

impl QuorumClient {
    /// A client that has not connected yet. Fails if the authority file cannot be read.
    pub fn new(settings: ClientSettings) -> io::Result<QuorumClient> {
        if settings.addresses.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no quorum server address",
            ));
        }
        let tls = client_tls(&settings.ca_cert)?;
        Ok(QuorumClient {
            settings,
            tls,
            connection: None,
            preferred: 0,
            next_id: 1,
        })
    }

    /// Runs a client on a thread of its own: it connects at once, keeps the connection open,
    /// reconnects every [`ClientSettings::reconnect_interval`] while it is down, and answers
    /// every request sent to the returned sender exactly once, through `answer` (on that
    /// thread), in order. An error answer means the server could not be reached, refused
    /// the connection or did not answer in time; requests queued while one failed get the
    /// same error at once rather than waiting their turn. The thread ends when the sender is
    /// dropped.
    pub fn spawn(
        settings: ClientSettings,
        mut answer: impl FnMut(u64, Result<QuorumServerAnswer, String>) + Send + 'static,
    ) -> io::Result<mpsc::Sender<QuorumServerRequest>> {
        let mut client = QuorumClient::new(settings)?;
        let (sender, requests) = mpsc::channel::<QuorumServerRequest>();
        thread::Builder::new()
            .name("cimguard-quorum-client".into())
            .spawn(move || {
                let _ = client.connect_if_needed();
                loop {
                    let next = if client.is_connected() {
                        requests
                            .recv()
                            .map_err(|_| mpsc::RecvTimeoutError::Disconnected)
                    } else {
                        requests.recv_timeout(client.settings.reconnect_interval)
                    };
                    match next {
                        Ok(request) => {
                            // The core's limit follows MEMBER_TIMEOUT, which cmapplyconf may
                            // have changed since the client started.
                            client.settings.timeout = request.timeout.max(STEP_TIMEOUT_MIN);
                            let result = client.request(request.kind);
                            let failure = result.as_ref().err().cloned();
                            answer(request.id, result);
                            if let Some(error) = failure {
                                while let Ok(queued) = requests.try_recv() {
                                    answer(queued.id, Err(error.clone()));
                                }
                            }
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            let _ = client.connect_if_needed();
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
            })?;
        Ok(sender)
    }

    /// Whether a connection is open (as far as this side knows).
    pub fn is_connected(&self) -> bool {
        self.connection.is_some()
    }

    /// Asks the server, connecting first if needed. A failure on a connection opened for an
    /// earlier request (the server restarted since) is retried once on a new connection:
    /// both questions are idempotent.
    pub fn request(&mut self, ask: QuorumServerAsk) -> Result<QuorumServerAnswer, String> {
        if let Some(mut connection) = self.connection.take() {
            let id = self.take_id();
            if let Ok(answer) = exchange(&mut connection, id, ask) {
                self.connection = Some(connection);
                return Ok(answer);
            }
        }
        let mut connection = match self.connect() {
            Ok(connection) => connection,
            // The server answered, refusing this node for a reason cmviewcl shows: that
            // is its answer. (Other refusals stay errors, with their text.)
            Err(ConnectError {
                refusal:
                    Some(
                        why @ (QuorumServerRefusal::AccessDenied
                        | QuorumServerRefusal::UnsupportedVersion),
                    ),
                ..
            }) => return Ok(QuorumServerAnswer::Refused(why)),
            Err(error) => return Err(error.text),
        };
        let id = self.take_id();
        let address = &self.settings.addresses[self.preferred];
        let answer = exchange(&mut connection, id, ask)
            .map_err(|e| format!("quorum server {address}: {e}"))?;
        self.connection = Some(connection);
        Ok(answer)
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn connect_if_needed(&mut self) -> Result<(), String> {
        if self.connection.is_none() {
            self.connection = Some(self.connect().map_err(|e| e.text)?);
        }
        Ok(())
    }

    /// Connects to the first address that answers with a welcome, starting with the one that
    /// worked last. When none does and one refused this node, the error says why.
    fn connect(&mut self) -> Result<StreamOwned<ClientConnection, TcpStream>, ConnectError> {
        let count = self.settings.addresses.len();
        let mut failures = Vec::new();
        let mut refusal = None;
        for step in 0..count {
            let index = (self.preferred + step) % count;
            let address = &self.settings.addresses[index];
            match self.connect_to(address) {
                Ok(connection) => {
                    self.preferred = index;
                    return Ok(connection);
                }
                Err(error) => {
                    refusal = refusal.or(error.refusal);
                    failures.push(format!("{address}: {}", error.text));
                }
            }
        }
        let what = if refusal.is_some() {
            "quorum server refused this node"
        } else {
            "quorum server unreachable"
        };
        Err(ConnectError {
            text: format!("{what}: {}", failures.join("; ")),
            refusal,
        })
    }

    fn connect_to(
        &self,
        address: &str,
    ) -> Result<StreamOwned<ClientConnection, TcpStream>, ConnectError> {
        let (host, port) = split_address(address);
        let timeout = self.settings.timeout;
        let targets: Vec<SocketAddr> = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve: {e}"))?
            .collect();
        let mut last = String::from("no address");
        let mut stream = None;
        for target in targets {
            match TcpStream::connect_timeout(&target, timeout) {
                Ok(connected) => {
                    stream = Some(connected);
                    break;
                }
                Err(error) => last = error.to_string(),
            }
        }
        let stream = stream.ok_or(last)?;
        let io = |e: io::Error| e.to_string();
        stream.set_read_timeout(Some(timeout)).map_err(io)?;
        stream.set_write_timeout(Some(timeout)).map_err(io)?;
        let _ = stream.set_nodelay(true);
        let name = self.settings.server_name.clone().unwrap_or(host);
        let name = ServerName::try_from(name).map_err(|e| format!("server name: {e}"))?;
        let connection =
            ClientConnection::new(Arc::clone(&self.tls), name).map_err(|e| e.to_string())?;
        let mut tls = StreamOwned::new(connection, stream);
        let hello = Request::Hello {
            version: PROTOCOL_VERSION,
            cluster_name: self.settings.cluster_name.clone(),
            cluster_id: self.settings.cluster_id,
            node_name: self.settings.node_name.clone(),
        };
        write_frame(&mut tls, &hello).map_err(|e| e.to_string())?;
        match read_frame::<_, HelloReply>(&mut tls).map_err(|e| e.to_string())? {
            HelloReply::Welcome => Ok(tls),
            HelloReply::Denied { reason, refusal } => Err(ConnectError {
                text: format!("denied: {reason}"),
                refusal: Some(refusal.unwrap_or(QuorumServerRefusal::Other)),
            }),
        }
    }
}

/// Why a connection to the quorum server was not opened: the text, and whether (and why) the
/// server refused this node rather than not being reached.
#[derive(Debug, Clone)]
struct ConnectError {
    text: String,
    refusal: Option<QuorumServerRefusal>,
}

impl From<String> for ConnectError {
    fn from(text: String) -> ConnectError {
        ConnectError {
            text,
            refusal: None,
        }
    }
}

/// One request and its answer on an open connection.
fn exchange(
    connection: &mut StreamOwned<ClientConnection, TcpStream>,
    id: u64,
    ask: QuorumServerAsk,
) -> Result<QuorumServerAnswer, String> {
    let request = match ask {
        QuorumServerAsk::Ping => Request::Ping { id },
        QuorumServerAsk::Acquire { instance, group } => Request::Acquire {
            id,
            instance,
            group,
        },
    };
    write_frame(connection, &request).map_err(|e| e.to_string())?;
    let reply: Reply = read_frame(connection).map_err(|e| e.to_string())?;
    match (ask, reply) {
        (QuorumServerAsk::Ping, Reply::Pong { id: answered }) if answered == id => {
            Ok(QuorumServerAnswer::Pong)
        }
        (QuorumServerAsk::Acquire { .. }, Reply::Granted { id: answered }) if answered == id => {
            Ok(QuorumServerAnswer::Granted)
        }
        (QuorumServerAsk::Acquire { .. }, Reply::Denied { id: answered, .. }) if answered == id => {
            Ok(QuorumServerAnswer::Denied)
        }
        (_, reply) => Err(format!("unexpected answer {reply:?} to request {id}")),
    }
}

/// `host`, `host:port`, `[v6]:port` or a bare IPv6 literal, as (host, port).
fn split_address(address: &str) -> (String, u16) {
    if let Ok(socket) = address.parse::<SocketAddr>() {
        return (socket.ip().to_string(), socket.port());
    }
    if let Ok(ip) = address.parse::<IpAddr>() {
        return (ip.to_string(), PORT);
    }
    if let Some((host, port)) = address.rsplit_once(':') {
        if let Ok(port) = port.parse::<u16>() {
            return (
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                port,
            );
        }
    }
    (address.to_string(), PORT)
}

/// A name from a peer as a log shows it: quoted and escaped (no forged lines, no terminal
/// escapes), and at most 64 characters of it.
fn shown(name: &str) -> String {
    let cut: String = name.chars().take(64).collect();
    if cut.len() < name.len() {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_with_the_default_port() {
        assert_eq!(split_address("qs"), ("qs".into(), PORT));
        assert_eq!(split_address("qs:99"), ("qs".into(), 99));
        assert_eq!(split_address("10.0.0.1"), ("10.0.0.1".into(), PORT));
        assert_eq!(split_address("10.0.0.1:7"), ("10.0.0.1".into(), 7));
        assert_eq!(split_address("::1"), ("::1".into(), PORT));
        assert_eq!(split_address("[::1]:8"), ("::1".into(), 8));
    }
}
