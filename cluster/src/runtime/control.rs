//! The control channel: cmcld to cmcld over TCP with mutual TLS under the cluster authority
//! (`cimguard_certs::control_tls`). It carries reformation, configuration distribution and
//! package commands, in order and with retransmission, at any size: cmapplyconf's
//! generations whole, package commands and orders, the membership protocol's messages, and
//! any message too large for a heartbeat datagram. [`route`] draws the lines.
//!
//! Heartbeats travel on the authenticated datagrams only ([`super::auth`]): they carry the
//! send times that quorum leases are built on and are sent every interval anyway, so one lost
//! is harmless, while a TCP stream that waited out a partition would deliver them late, in
//! one backlog, behind its retransmission timer. The membership protocol's small messages
//! (proposal, acceptance, rejection, commit, abandon, halt) travel both ways at once: the
//! datagram is the fast path and needs no connection (a node just started, a connection cut
//! by a partition), and the channel's copy gets through a lossy network that the datagram
//! does not, without waiting for the protocol to repeat itself. The core takes the first copy
//! and ignores the second, as it ignores any duplicate, and a late copy is safe: every time
//! in those messages is a send time or counted from receipt, so lateness only shortens a
//! lease or lengthens a wait (the simulator delivers duplicates, replays and long delays).
//!
//! # Connections
//!
//! Every node listens on each of its heartbeat addresses, on the heartbeat port (TCP). For
//! each peer and network a sender thread keeps one connection, opened from this node's address
//! on that network, and writes frames from a bounded queue: the timing thread never waits on
//! it. A connection is considered only from a configured peer's address on that network, and
//! its handshake must end within a bound. It is accepted once the handshake verified the
//! client's certificate
//! under the cluster authority and the certificate names a configured node other than the
//! receiver; the server then writes one byte, so the client knows before its first frame that
//! it was accepted. Every frame's envelope must come from the node the certificate names.
//! A frame that cannot be written is written again on a new connection once; one that still
//! cannot is counted as not sent. Delivery is at most once: frames the kernel took but a peer
//! that died or was cut off never read are lost, as a datagram would be. The core repeats
//! orders until they are carried out; a command or cmapplyconf given on a node whose
//! coordinator is unreachable at that moment may be lost, as before.
//!
//! # Frame
//!
//! ```text
//! offset  size  field
//!      0     4  length n (little-endian, 1 to FRAME_MAX)
//!      4     n  the envelope ([`crate::wire::encode_envelope`])
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use cimguard_certs::{peer_node_name, ControlTls, CONTROL_ALPN};
use nix::sys::socket::{recv, MsgFlags};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ServerConnection, StreamOwned};
use socket2::{Domain, Protocol, Socket, TcpKeepalive, Type};

use crate::core::{Envelope, Message, NodeId};
use crate::wire;

/// The largest frame written or read: far above any configuration (a generation of hundreds
/// of packages is a few MiB), low enough that a peer cannot make a node allocate without bound.
pub const FRAME_MAX: usize = 64 << 20;
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a TLS handshake and the acceptance byte may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a write may wait, and how long written data may stay unacknowledged by the peer
/// (TCP_USER_TIMEOUT) before the connection is given up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// After a failed connection attempt, frames are not sent (and no attempt is made) this long.
const RETRY_AFTER: Duration = Duration::from_millis(500);
/// A sender with nothing to send and no connection tries to connect this often, so that a
/// frame finds a connection open (a failover's order does not wait for a handshake).
const WARM_INTERVAL: Duration = Duration::from_secs(1);
/// Messages waiting for one sender; more are not sent. They are held unencoded: the
/// configurations in them are shared, not copied, whatever their size.
const QUEUE: usize = 64;
/// Incoming connections still in their handshake at once; more are closed at once.
const HANDSHAKES_MAX: usize = 16;
/// The byte a server writes once it accepted a client.
const ACCEPTED: u8 = 0xAC;

/// Which way a message travels. A message routed to datagrams that does not fit one
/// ([`super::auth::PAYLOAD_MAX`] encoded) goes on the control channel instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// In a heartbeat datagram only: heartbeats.
    Datagram,
    /// On the control channel only: configurations, package commands and orders.
    Control,
    /// Both, the first copy to arrive counting: the membership protocol's messages.
    Both,
}

/// How `message` travels (see the module's documentation for why).
pub fn route(message: &Message) -> Route {
    match message {
        Message::Heartbeat(_) => Route::Datagram,
        Message::Command { .. }
        | Message::Apply { .. }
        | Message::ConfigRequest
        | Message::Config { .. }
        | Message::HaltDetached { .. }
        | Message::DetachedHalted { .. }
        | Message::HaltDetachedTaken { .. }
        | Message::Share { .. }
        | Message::Shared { .. }
        | Message::Order { .. }
        | Message::Answer { .. }
        | Message::HaltNode { .. }
        | Message::Start { .. }
        | Message::StatusRequest { .. }
        | Message::Status { .. }
        | Message::ConfigOffer { .. }
        | Message::ConfigCheck { .. }
        | Message::ConfigCommit { .. }
        | Message::ConfigWithdraw { .. }
        | Message::ConfigAnswer { .. } => Route::Control,
        // A proposal carrying a configuration generation, or an acceptance carrying those it
        // accepted, can be as large as a configuration: not encoded on the timing thread.
        Message::Propose { config, .. } if config.is_some() => Route::Control,
        Message::Accept { configs, .. } if !configs.is_empty() => Route::Control,
        Message::Propose { .. }
        | Message::Accept { .. }
        | Message::Reject { .. }
        | Message::Commit { .. }
        | Message::Abandon { .. }
        | Message::Halt { .. } => Route::Both,
    }
}

/// Why an incoming connection or frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Refused {
    /// The TLS handshake failed: no certificate, one from another authority, another protocol,
    /// or nothing said in time.
    Handshake,
    /// A verified certificate that names no configured node, or this node.
    UnknownNode,
    /// A frame whose envelope names another sender than the certificate.
    WrongSender,
    /// A frame that is empty, too large, or does not decode.
    Malformed,
    /// Too many connections in their handshake at once.
    TooMany,
    /// A connection from an address that is no configured peer's on that network.
    Stranger,
}

impl Refused {
    /// The name shown in the status.
    pub fn name(self) -> &'static str {
        match self {
            Refused::Handshake => "handshake",
            Refused::UnknownNode => "unknown_node",
            Refused::WrongSender => "wrong_sender",
            Refused::Malformed => "malformed",
            Refused::TooMany => "too_many",
            Refused::Stranger => "stranger",
        }
    }
}

/// The channel's counters, as the status shows them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ControlStatus {
    /// Frames written.
    pub frames_sent: u64,
    /// Frames not written: no connection to the peer, or its queue full.
    pub frames_not_sent: u64,
    /// Messages not sent because their encoding is larger than [`FRAME_MAX`].
    pub frames_too_large: u64,
    /// Frames received and handed to the core.
    pub frames_received: u64,
    /// Those frames by the kind of message they carried (`Propose`, `Commit`, `Order`, ...).
    #[serde(default)]
    pub received_by_kind: BTreeMap<String, u64>,
    /// Connections and frames refused, by reason.
    pub refused: BTreeMap<String, u64>,
    /// Outgoing connections open now.
    pub connections_out: u64,
    /// Incoming connections open now (accepted ones).
    pub connections_in: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    not_sent: AtomicU64,
    too_large: AtomicU64,
    received: AtomicU64,
    received_by_kind: Mutex<BTreeMap<&'static str, u64>>,
    refused: Mutex<BTreeMap<Refused, u64>>,
    connections_out: AtomicU64,
    handshakes: AtomicUsize,
    /// The accepted incoming connections, by peer and network, with a number that tells a
    /// replaced one from its replacement.
    incoming: Mutex<BTreeMap<(u32, usize), (u64, TcpStream)>>,
    next_incoming: AtomicU64,
}

impl Counters {
    fn refuse(&self, why: Refused) {
        *self
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(why)
            .or_insert(0) += 1;
    }
}

/// What a node's channel is started with.
pub struct ControlSettings {
    /// The node's TLS configurations.
    pub tls: ControlTls,
    /// This node.
    pub me: NodeId,
    /// Every node's name as its certificate carries it (`cimguard_certs::node_dns_name`),
    /// by node index.
    pub names: Vec<String>,
    /// Every node's address on each network (its heartbeat addresses), by node index.
    pub addresses: Vec<Vec<SocketAddr>>,
}

/// Hands a received envelope, from network `network`, to the daemon; false when the daemon
/// takes no more.
pub type Deliver = dyn Fn(usize, Envelope) -> bool + Send + Sync;
/// Tells the daemon's log of a change in a connection (down, up again).
pub type Tell = dyn Fn(fmt::Arguments<'_>) + Send + Sync;

/// The queue of messages for one peer on one network.
type Queue = SyncSender<Envelope>;

/// A node's control channel: listeners on its addresses and a sender per peer and network.
pub struct ControlChannel {
    /// By peer, then network: the sender's queue (none for this node itself).
    senders: Vec<Vec<Option<Queue>>>,
    counters: Arc<Counters>,
    table: Arc<Table>,
    tell: Arc<Tell>,
}

/// What the listeners and senders share: the TLS configurations, and the peers, which
/// grow when nodes are added to the running cluster.
struct Table {
    tls: ControlTls,
    me: NodeId,
    peers: std::sync::RwLock<Peers>,
}

/// Every node's certificate name and addresses, by node index.
struct Peers {
    names: Vec<String>,
    addresses: Vec<Vec<SocketAddr>>,
}

impl Table {
    fn peers(&self) -> std::sync::RwLockReadGuard<'_, Peers> {
        self.peers.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ControlChannel {
    /// Binds the listeners (an error names the address) and starts the threads.
    pub fn start(
        settings: ControlSettings,
        deliver: &Arc<Deliver>,
        tell: &Arc<Tell>,
    ) -> io::Result<ControlChannel> {
        let counters = Arc::new(Counters::default());
        let ControlSettings {
            tls,
            me,
            names,
            addresses,
        } = settings;
        let mine = addresses.get(me.index()).cloned().unwrap_or_default();
        // The peers are known before the listeners take a connection.
        let table = Arc::new(Table {
            tls,
            me,
            peers: std::sync::RwLock::new(Peers {
                names: Vec::new(),
                addresses: Vec::new(),
            }),
        });
        let mut channel = ControlChannel {
            senders: Vec::new(),
            counters: counters.clone(),
            table: table.clone(),
            tell: tell.clone(),
        };
        channel.add_nodes(&names, &addresses)?;
        for (network, address) in mine.iter().enumerate() {
            let listener = TcpListener::bind(address).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("control channel: cannot bind {address}: {e}"),
                )
            })?;
            let table = table.clone();
            let deliver = deliver.clone();
            let counters = counters.clone();
            thread::Builder::new()
                .name(format!("cmcld-ctl{network}"))
                .spawn(move || listen(&listener, network, &table, &deliver, &counters))?;
        }
        Ok(channel)
    }

    /// Adds nodes after those known (numbered on from them), each with its certificate name
    /// and its address on each network: a generation that adds nodes to the running cluster
    /// took effect. Their connections are let in from now on, and senders start for them.
    /// All or nothing: on an error (a thread that does not start) none is added.
    pub fn add_nodes(&mut self, names: &[String], addresses: &[Vec<SocketAddr>]) -> io::Result<()> {
        let me = self.table.me.index();
        let first = self.senders.len();
        let mine = if first > me {
            self.table
                .peers()
                .addresses
                .get(me)
                .cloned()
                .unwrap_or_default()
        } else {
            addresses.get(me - first).cloned().unwrap_or_default()
        };
        // Started first: should one fail, the queues of those started are dropped and
        // their threads end.
        let mut rows = Vec::new();
        for (offset, row_addresses) in addresses.iter().enumerate() {
            let peer = first + offset;
            let mut row = Vec::new();
            for (network, address) in row_addresses.iter().enumerate() {
                if peer == me {
                    row.push(None);
                    continue;
                }
                let Some(source) = mine.get(network) else {
                    row.push(None);
                    continue;
                };
                let (frames, queue) = mpsc::sync_channel(QUEUE);
                let outgoing = Outgoing {
                    peer: names.get(offset).cloned().unwrap_or_default(),
                    network,
                    address: *address,
                    source: SocketAddr::new(source.ip(), 0),
                    tls: self.table.tls.client.clone(),
                };
                let counters = self.counters.clone();
                let tell = self.tell.clone();
                thread::Builder::new()
                    .name(format!("cmcld-to{peer}.{network}"))
                    .spawn(move || outgoing.run(&queue, &counters, &*tell))?;
                row.push(Some(frames));
            }
            rows.push(row);
        }
        {
            let mut peers = self
                .table
                .peers
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            peers.names.extend(names.iter().cloned());
            peers.addresses.extend(addresses.iter().cloned());
        }
        self.senders.extend(rows);
        Ok(())
    }

    /// How many nodes the channel knows (this one included).
    pub fn nodes(&self) -> usize {
        self.senders.len()
    }

    /// Queues `envelope` for `to` on `network`, never waiting (its sender encodes it); false
    /// when it will not be sent (no such peer, or its queue is full).
    pub fn send(&self, to: NodeId, network: usize, envelope: Envelope) -> bool {
        let queued = self
            .senders
            .get(to.index())
            .and_then(|row| row.get(network))
            .and_then(Option::as_ref)
            .is_some_and(|sender| match sender.try_send(envelope) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            });
        if !queued {
            self.counters.not_sent.fetch_add(1, Ordering::Relaxed);
        }
        queued
    }

    /// The counters now.
    pub fn status(&self) -> ControlStatus {
        let c = &self.counters;
        ControlStatus {
            frames_sent: c.sent.load(Ordering::Relaxed),
            frames_not_sent: c.not_sent.load(Ordering::Relaxed),
            frames_too_large: c.too_large.load(Ordering::Relaxed),
            frames_received: c.received.load(Ordering::Relaxed),
            received_by_kind: c
                .received_by_kind
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|(kind, n)| ((*kind).to_owned(), *n))
                .collect(),
            refused: c
                .refused
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|(why, n)| (why.name().to_owned(), *n))
                .collect(),
            connections_out: c.connections_out.load(Ordering::Relaxed),
            connections_in: c
                .incoming
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len() as u64,
        }
    }
}

fn listen(
    listener: &TcpListener,
    network: usize,
    table: &Arc<Table>,
    deliver: &Arc<Deliver>,
    counters: &Arc<Counters>,
) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            // Out of descriptors, say: do not spin.
            thread::sleep(Duration::from_millis(50));
            continue;
        };
        // Only the peers' own addresses on this network get as far as a handshake (a TCP
        // source address cannot be forged blind), so strangers cannot take the slots.
        let known = stream.peer_addr().is_ok_and(|from| {
            table
                .peers()
                .addresses
                .iter()
                .enumerate()
                .filter(|(k, _)| *k != table.me.index())
                .any(|(_, addresses)| addresses.get(network).is_some_and(|a| a.ip() == from.ip()))
        });
        if !known {
            counters.refuse(Refused::Stranger);
            continue;
        }
        if counters.handshakes.fetch_add(1, Ordering::SeqCst) >= HANDSHAKES_MAX {
            counters.handshakes.fetch_sub(1, Ordering::SeqCst);
            counters.refuse(Refused::TooMany);
            continue;
        }
        let table = table.clone();
        let deliver = deliver.clone();
        let shared = counters.clone();
        let spawned = thread::Builder::new()
            .name(format!("cmcld-ctl{network}-in"))
            .spawn(move || serve(stream, network, &table, &*deliver, &shared));
        if spawned.is_err() {
            counters.handshakes.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Shuts a connection down at a deadline unless dropped first: rustls reads as often as
/// a handshake needs within one call, each read under the socket's timeout, so a peer that
/// trickles a byte at a time would hold the connection for as long as it likes otherwise.
pub(super) struct Deadline {
    _cancel: mpsc::Sender<()>,
}

impl Deadline {
    /// Starts the watch of `stream` for `within`.
    pub(super) fn start(stream: &TcpStream, within: Duration) -> io::Result<Deadline> {
        let stream = stream.try_clone()?;
        let (cancel, cancelled) = mpsc::channel::<()>();
        thread::Builder::new()
            .name("cmcld-deadline".into())
            .spawn(move || {
                if let Err(RecvTimeoutError::Timeout) = cancelled.recv_timeout(within) {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            })?;
        Ok(Deadline { _cancel: cancel })
    }
}

/// Tunes a connected socket: no Nagle delay (frames are messages), keepalive (an idle
/// connection to a node that vanished ends), and a bound on unacknowledged data.
fn tune(stream: &TcpStream) -> io::Result<()> {
    let socket = socket2::SockRef::from(stream);
    socket.set_tcp_nodelay(true)?;
    socket.set_tcp_keepalive(
        &TcpKeepalive::new()
            .with_time(Duration::from_secs(10))
            .with_interval(Duration::from_secs(5))
            .with_retries(3),
    )?;
    socket.set_tcp_user_timeout(Some(WRITE_TIMEOUT))
}

/// One incoming connection: handshake, identity, then frames until it ends.
fn serve(stream: TcpStream, network: usize, table: &Table, deliver: &Deliver, counters: &Counters) {
    let accepted = handshake(stream, table);
    counters.handshakes.fetch_sub(1, Ordering::SeqCst);
    let (mut tls, peer) = match accepted {
        Ok(accepted) => accepted,
        Err(why) => {
            counters.refuse(why);
            return;
        }
    };
    let number = counters.next_incoming.fetch_add(1, Ordering::Relaxed);
    if let Ok(clone) = tls.sock.try_clone() {
        // A peer that connects again has given up its earlier connection (its daemon started
        // again, or its sender lost the connection): the earlier one's reader ends.
        let earlier = counters
            .incoming
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((peer.0, network), (number, clone));
        if let Some((_, earlier)) = earlier {
            let _ = earlier.shutdown(Shutdown::Both);
        }
    }
    read_frames(&mut tls, network, peer, deliver, counters);
    let mut incoming = counters
        .incoming
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if incoming
        .get(&(peer.0, network))
        .is_some_and(|(n, _)| *n == number)
    {
        incoming.remove(&(peer.0, network));
    }
}

fn handshake(
    stream: TcpStream,
    table: &Table,
) -> Result<(StreamOwned<ServerConnection, TcpStream>, NodeId), Refused> {
    let ready = stream
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT)))
        .and_then(|()| tune(&stream));
    if ready.is_err() {
        return Err(Refused::Handshake);
    }
    let connection =
        ServerConnection::new(table.tls.server.clone()).map_err(|_| Refused::Handshake)?;
    let deadline_guard =
        Deadline::start(&stream, HANDSHAKE_TIMEOUT).map_err(|_| Refused::Handshake)?;
    let mut tls = StreamOwned::new(connection, stream);
    // The whole handshake within the bound, not each read: a client that trickles a byte at
    // a time does not hold its slot for longer.
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    while tls.conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || tls.sock.set_read_timeout(Some(left)).is_err() {
            return Err(Refused::Handshake);
        }
        if tls.conn.complete_io(&mut tls.sock).is_err() {
            return Err(Refused::Handshake);
        }
    }
    if tls.conn.alpn_protocol() != Some(CONTROL_ALPN) {
        return Err(Refused::Handshake);
    }
    let name = tls
        .conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(peer_node_name)
        .ok_or(Refused::UnknownNode)?;
    let peer = table
        .peers()
        .names
        .iter()
        .position(|n| *n == name)
        .filter(|&k| k != table.me.index())
        .ok_or(Refused::UnknownNode)?;
    tls.write_all(&[ACCEPTED])
        .and_then(|()| tls.flush())
        .map_err(|_| Refused::Handshake)?;
    drop(deadline_guard);
    // From here the peer may stay quiet as long as it likes; keepalive ends a dead one.
    if tls.sock.set_read_timeout(None).is_err() {
        return Err(Refused::Handshake);
    }
    Ok((tls, NodeId(peer as u32)))
}

fn read_frames(
    tls: &mut StreamOwned<ServerConnection, TcpStream>,
    network: usize,
    peer: NodeId,
    deliver: &Deliver,
    counters: &Counters,
) {
    loop {
        let mut header = [0u8; 4];
        if tls.read_exact(&mut header).is_err() {
            return;
        }
        let length = u32::from_le_bytes(header) as usize;
        if length == 0 || length > FRAME_MAX {
            counters.refuse(Refused::Malformed);
            return;
        }
        let mut frame = Vec::new();
        match Read::by_ref(tls)
            .take(length as u64)
            .read_to_end(&mut frame)
        {
            Ok(n) if n == length => {}
            _ => return,
        }
        match wire::decode_envelope(&frame) {
            // A halted cmapplyconf's messages go between nodes that may number each other
            // differently (one that took a change of the nodes and one that missed it): the
            // sender is the node its certificate names, numbered as this node numbers it.
            Ok(mut envelope)
                if envelope.from == peer
                    || matches!(
                        envelope.message,
                        Message::ConfigOffer { .. }
                            | Message::ConfigCheck { .. }
                            | Message::ConfigCommit { .. }
                            | Message::ConfigWithdraw { .. }
                            | Message::ConfigAnswer { .. }
                    ) =>
            {
                envelope.from = peer;
                counters.received.fetch_add(1, Ordering::Relaxed);
                *counters
                    .received_by_kind
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(envelope.message.kind())
                    .or_insert(0) += 1;
                if !deliver(network, envelope) {
                    return;
                }
            }
            Ok(_) => counters.refuse(Refused::WrongSender),
            Err(_) => counters.refuse(Refused::Malformed),
        }
    }
}

/// One peer on one network, as a sender sees it.
struct Outgoing {
    peer: String,
    network: usize,
    address: SocketAddr,
    source: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
}

impl Outgoing {
    fn run(&self, queue: &Receiver<Envelope>, counters: &Counters, tell: &Tell) {
        let mut connection: Option<StreamOwned<ClientConnection, TcpStream>> = None;
        let mut retry_at: Option<Instant> = None;
        // The trouble last told, so that a peer that stays down is told of once.
        let mut told: Option<String> = None;
        loop {
            let frame = match queue.recv_timeout(WARM_INTERVAL) {
                Ok(envelope) => {
                    let frame = wire::encode_envelope(&envelope);
                    if frame.len() > FRAME_MAX {
                        counters.too_large.fetch_add(1, Ordering::Relaxed);
                        tell(format_args!(
                            "{} of {} bytes to {} not sent: larger than a control frame",
                            envelope.message.kind(),
                            frame.len(),
                            self.peer
                        ));
                        continue;
                    }
                    Some(frame)
                }
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if connection.as_ref().is_some_and(|c| closed_by_peer(&c.sock)) {
                connection = None;
                counters.connections_out.fetch_sub(1, Ordering::Relaxed);
            }
            let mut written = false;
            for _attempt in 0..2 {
                if connection.is_none() {
                    if retry_at.is_some_and(|at| Instant::now() < at) {
                        break;
                    }
                    match self.connect() {
                        Ok(opened) => {
                            connection = Some(opened);
                            counters.connections_out.fetch_add(1, Ordering::Relaxed);
                            retry_at = None;
                            if told.take().is_some() {
                                tell(format_args!(
                                    "control channel to {} on network {} is up again",
                                    self.peer, self.network
                                ));
                            }
                        }
                        Err((e, refused)) => {
                            retry_at = Some(Instant::now() + RETRY_AFTER);
                            // A frame that could not go is worth a line in the log, and so is
                            // a peer that refuses this node (a certificate problem); a peer
                            // merely not up yet, with nothing to send it, is not.
                            if (frame.is_some() || refused) && told.as_deref() != Some(e.as_str()) {
                                tell(format_args!(
                                    "control channel to {} on network {} ({}): {e}",
                                    self.peer, self.network, self.address
                                ));
                                told = Some(e);
                            }
                            break;
                        }
                    }
                }
                let Some(frame) = &frame else {
                    written = true;
                    break;
                };
                let Some(open) = connection.as_mut() else {
                    break;
                };
                if write_frame(open, frame).is_ok() {
                    written = true;
                    break;
                }
                connection = None;
                counters.connections_out.fetch_sub(1, Ordering::Relaxed);
            }
            match (&frame, written) {
                (Some(_), true) => counters.sent.fetch_add(1, Ordering::Relaxed),
                (Some(_), false) => counters.not_sent.fetch_add(1, Ordering::Relaxed),
                (None, _) => 0,
            };
        }
        if connection.is_some() {
            counters.connections_out.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// A new connection, accepted by the peer; or why not, and whether the peer was reached
    /// and refused this node.
    fn connect(&self) -> Result<StreamOwned<ClientConnection, TcpStream>, (String, bool)> {
        let unreachable = |e: String| (e, false);
        let socket = self.socket().map_err(unreachable)?;
        let stream: TcpStream = socket.into();
        let refused = |e: String| (e, true);
        tune(&stream).map_err(|e| unreachable(e.to_string()))?;
        stream
            .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT)))
            .map_err(|e| unreachable(e.to_string()))?;
        let name = ServerName::try_from(self.peer.clone()).map_err(|e| refused(e.to_string()))?;
        let connection =
            ClientConnection::new(self.tls.clone(), name).map_err(|e| refused(e.to_string()))?;
        let mut tls = StreamOwned::new(connection, stream);
        while tls.conn.is_handshaking() {
            // A TLS error (rustls reports it as invalid data) is the peer's refusal or ours;
            // a reset or an end is a peer going away or not quite up.
            tls.conn.complete_io(&mut tls.sock).map_err(|e| {
                let text = format!("tls handshake: {e}");
                if e.kind() == io::ErrorKind::InvalidData {
                    refused(text)
                } else {
                    unreachable(text)
                }
            })?;
        }
        let mut accepted = [0u8; 1];
        match tls.read_exact(&mut accepted) {
            Ok(()) if accepted[0] == ACCEPTED => {}
            Ok(()) => {
                return Err(refused(
                    "the peer does not speak the control channel".into(),
                ))
            }
            Err(e) => return Err(refused(format!("not accepted by the peer: {e}"))),
        }
        tls.sock
            .set_write_timeout(Some(WRITE_TIMEOUT))
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(tls)
    }

    /// A socket connected from this node's address on the network to the peer's.
    fn socket(&self) -> Result<Socket, String> {
        let socket = Socket::new(
            Domain::for_address(self.address),
            Type::STREAM,
            Some(Protocol::TCP),
        )
        .map_err(|e| format!("socket: {e}"))?;
        // From this node's own address on the network, as its heartbeats are.
        socket
            .bind(&self.source.into())
            .map_err(|e| format!("cannot bind {}: {e}", self.source))?;
        socket
            .connect_timeout(&self.address.into(), CONNECT_TIMEOUT)
            .map_err(|e| format!("cannot connect: {e}"))?;
        Ok(socket)
    }
}

/// Writes one frame and pushes it out.
fn write_frame(tls: &mut StreamOwned<ClientConnection, TcpStream>, frame: &[u8]) -> io::Result<()> {
    let length = u32::try_from(frame.len())
        .ok()
        .filter(|&n| n as usize <= FRAME_MAX && n > 0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame size"))?;
    tls.write_all(&length.to_le_bytes())?;
    tls.write_all(frame)?;
    tls.flush()
}

/// Whether the peer closed or reset a connection it never writes on after accepting: anything
/// to read (an end, an alert, a reset) means it is gone, and a frame written now would be lost.
fn closed_by_peer(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match recv(
        stream.as_raw_fd(),
        &mut byte,
        MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
    ) {
        Err(nix::errno::Errno::EAGAIN) => false,
        Ok(_) | Err(_) => true,
    }
}
