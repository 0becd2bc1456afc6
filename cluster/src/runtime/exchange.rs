//! The configuration exchange: how a node that gives a cmapplyconf reaches a node that is
//! not configured in its cluster yet, whose cmcld runs unconfigured (Serviceguard's
//! cmclconfd; [`crate::core::Unconfigured`]).
//!
//! TCP on the heartbeat port, TLS 1.3 with both ends' certificates from the cluster
//! authority, as on the control channel, but under its own ALPN
//! ([`cimguard_certs::CONFIG_ALPN`]), and one request and one answer a connection: the
//! unconfigured node knows no addresses to accept from or to call back, and never calls
//! anybody. The client checks that the server's certificate names the node it wants; the
//! server learns the client's NODE_NAME from its certificate, and the core checks that it is
//! a node of the offered generation.
//!
//! The request carries a key check beside the envelope: an HMAC under the cluster key of the
//! cluster's identity and of keying material exported from this connection's TLS session
//! (RFC 5705), so that a node holding another key (which would drop every heartbeat of its
//! peers once configured) refuses the offer in words, the key never travels, and a check
//! seen once is worth nothing on another connection.
//!
//! # Frames
//!
//! ```text
//! request: length n (u32, little-endian) | key check (16 bytes) | envelope (n - 16 bytes)
//! answer:  length n (u32, little-endian) | envelope (n bytes)
//! ```
//!
//! A connection is bounded throughout: the handshake and the request within
//! [`REQUEST_TIMEOUT`] (a deadline that shuts the socket, whatever the reads), the answer
//! within [`ANSWER_TIMEOUT`], at most [`CONNECTIONS_MAX`] at once.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use cimguard_certs::{node_dns_name, peer_node_name, CONFIG_ALPN};
use ring::hmac;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection, StreamOwned};

use crate::core::Envelope;
use crate::wire;

/// The length of the key check.
pub const KEY_CHECK_BYTES: usize = 16;
/// The largest request or answer: as a control-channel frame.
const FRAME_MAX: usize = super::control::FRAME_MAX;
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the handshake and the request may take, on either end.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client waits for the answer: the server persists a commit and writes the
/// configuration's files before it answers.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(6);
/// Connections served at once; more are closed at once.
pub const CONNECTIONS_MAX: usize = 16;

/// The length of the keying material a key check binds (exported from the TLS session).
pub const BINDING_BYTES: usize = 32;

/// The label of that keying material (RFC 5705).
const BINDING_LABEL: &[u8] = b"EXPORTER-cimguard-config-key-check";

/// The keying material of `connection`'s session that a key check binds, or why not.
fn binding<Data>(
    connection: &rustls::ConnectionCommon<Data>,
) -> Result<[u8; BINDING_BYTES], String> {
    connection
        .export_keying_material([0u8; BINDING_BYTES], BINDING_LABEL, None)
        .map_err(|e| format!("tls exporter: {e}"))
}

/// The key check of cluster `cluster_id` under `key` on the connection whose exported
/// keying material is `binding` (HMAC-SHA256, truncated).
pub fn key_check(
    key: &[u8],
    cluster_id: u64,
    binding: &[u8; BINDING_BYTES],
) -> [u8; KEY_CHECK_BYTES] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, &key_check_input(cluster_id, binding));
    let mut check = [0u8; KEY_CHECK_BYTES];
    check.copy_from_slice(&tag.as_ref()[..KEY_CHECK_BYTES]);
    check
}

/// What the key check signs.
fn key_check_input(cluster_id: u64, binding: &[u8; BINDING_BYTES]) -> Vec<u8> {
    let mut input = b"cimguard key check\0".to_vec();
    input.extend_from_slice(&cluster_id.to_le_bytes());
    input.extend_from_slice(binding);
    input
}

/// Whether `check` is the key check of `cluster_id` under `key` on the connection of
/// `binding` (in constant time).
pub fn key_matches(
    key: &[u8],
    cluster_id: u64,
    binding: &[u8; BINDING_BYTES],
    check: &[u8; KEY_CHECK_BYTES],
) -> bool {
    // Compared as HMAC verification compares, in constant time.
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, &key_check_input(cluster_id, binding));
    let ours = &tag.as_ref()[..KEY_CHECK_BYTES];
    ours.iter()
        .zip(check.iter())
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

/// A request as the server took it.
#[derive(Debug)]
pub struct Request {
    /// The NODE_NAME the client's certificate names.
    pub peer: String,
    /// The request's key check.
    pub key_check: [u8; KEY_CHECK_BYTES],
    /// The connection's keying material the key check binds.
    pub binding: [u8; BINDING_BYTES],
    /// The envelope.
    pub envelope: Envelope,
}

/// Answers a request: the envelope to send back, or none (the connection closes).
pub type Answer = dyn Fn(Request) -> Option<Envelope> + Send + Sync;

/// Binds `addresses` (an error names the address) and serves each on a thread of its own.
pub fn serve(
    addresses: &[SocketAddr],
    tls: &Arc<ServerConfig>,
    answer: &Arc<Answer>,
) -> io::Result<Vec<SocketAddr>> {
    let busy = Arc::new(AtomicUsize::new(0));
    let mut bound = Vec::new();
    for address in addresses {
        let listener = TcpListener::bind(address).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("configuration exchange: cannot bind {address}: {e}"),
            )
        })?;
        bound.push(listener.local_addr()?);
        let tls = tls.clone();
        let answer = answer.clone();
        let busy = busy.clone();
        thread::Builder::new()
            .name("cmcld-exchange".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else {
                        thread::sleep(Duration::from_millis(50));
                        continue;
                    };
                    if busy.fetch_add(1, Ordering::SeqCst) >= CONNECTIONS_MAX {
                        busy.fetch_sub(1, Ordering::SeqCst);
                        continue;
                    }
                    let tls = tls.clone();
                    let answer = answer.clone();
                    let done = busy.clone();
                    let spawned = thread::Builder::new()
                        .name("cmcld-exchange-in".into())
                        .spawn(move || {
                            let _ = serve_one(stream, &tls, &*answer);
                            done.fetch_sub(1, Ordering::SeqCst);
                        });
                    if spawned.is_err() {
                        busy.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            })?;
    }
    Ok(bound)
}

/// One connection: handshake, request, answer.
fn serve_one(stream: TcpStream, tls: &Arc<ServerConfig>, answer: &Answer) -> Result<(), String> {
    stream
        .set_write_timeout(Some(REQUEST_TIMEOUT))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|e| e.to_string())?;
    let connection = ServerConnection::new(tls.clone()).map_err(|e| e.to_string())?;
    let guard =
        super::control::Deadline::start(&stream, REQUEST_TIMEOUT).map_err(|e| e.to_string())?;
    let mut tls = StreamOwned::new(connection, stream);
    // The handshake and the request within the bound, not each read: a client that
    // trickles a byte at a time does not hold its slot for longer.
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let until = |tls: &mut StreamOwned<ServerConnection, TcpStream>| {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("the request took too long".to_owned());
        }
        tls.sock
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())
    };
    while tls.conn.is_handshaking() {
        until(&mut tls)?;
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| e.to_string())?;
    }
    if tls.conn.alpn_protocol() != Some(CONFIG_ALPN) {
        return Err("another protocol".into());
    }
    let peer = tls
        .conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(peer_node_name)
        .ok_or("a certificate that names no node")?;
    until(&mut tls)?;
    let frame = read_frame(&mut tls)?;
    if frame.len() <= KEY_CHECK_BYTES {
        return Err("a request too short".into());
    }
    let mut key_check = [0u8; KEY_CHECK_BYTES];
    key_check.copy_from_slice(&frame[..KEY_CHECK_BYTES]);
    drop(guard);
    let binding = binding(&tls.conn)?;
    let envelope = wire::decode_envelope(&frame[KEY_CHECK_BYTES..]).map_err(|e| e.to_string())?;
    let Some(reply) = answer(Request {
        peer,
        key_check,
        binding,
        envelope,
    }) else {
        return Ok(());
    };
    write_frame(&mut tls, &wire::encode_envelope(&reply)).map_err(|e| e.to_string())?;
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(())
}

/// Where an answer (or what went wrong) of a request of [`Requests`] goes: the node's name,
/// the serial of the change the request was about ([`Message::config_serial`]) and the
/// result.
pub type Answered = dyn Fn(String, Option<u64>, Result<Envelope, String>) + Send + Sync;

/// A daemon's requests over the exchange, each on a thread of its own, one at a time per
/// node: a request to a node with one under way is dropped (the core sends its stage's
/// message again).
pub struct Requests {
    tls: Arc<ClientConfig>,
    key: Arc<[u8]>,
    port: u16,
    answered: Arc<Answered>,
    /// The nodes a request is under way to.
    in_flight: std::collections::BTreeSet<String>,
    /// For each of those, the latest request that came meanwhile: sent once it ends (a
    /// withdrawal must not be lost behind an offer still on its way).
    pending: std::collections::BTreeMap<String, (Vec<std::net::IpAddr>, Envelope)>,
    /// What last went wrong with each node, as logged (each trouble is told once).
    told: std::collections::BTreeMap<String, String>,
}

impl Requests {
    /// Requests under `tls` and cluster key `key`, to the nodes' addresses on `port`, whose
    /// answers go to `answered`.
    pub fn new(tls: Arc<ClientConfig>, key: &[u8], port: u16, answered: Arc<Answered>) -> Self {
        Requests {
            tls,
            key: key.into(),
            port,
            answered,
            in_flight: Default::default(),
            pending: Default::default(),
            told: Default::default(),
        }
    }

    /// Sends `envelope` to node `to` at `addresses`; with a request to it under way, once
    /// that one ends (only the latest waits).
    pub fn send(&mut self, to: String, addresses: &[std::net::IpAddr], envelope: Envelope) {
        if self.in_flight.contains(&to) {
            self.pending.insert(to, (addresses.to_vec(), envelope));
            return;
        }
        let addresses: Vec<SocketAddr> = addresses
            .iter()
            .map(|ip| SocketAddr::new(*ip, self.port))
            .collect();
        let tls = self.tls.clone();
        let key = self.key.clone();
        let answered = self.answered.clone();
        let name = to.clone();
        let spawned = thread::Builder::new()
            .name("cmcld-exchange-to".into())
            .spawn(move || {
                let result = request(&tls, &name, &addresses, &key, &envelope);
                answered(name, envelope.message.config_serial(), result);
            });
        if spawned.is_ok() {
            self.in_flight.insert(to);
        }
    }

    /// The request to `to` ended with `result` (as handed to the `answered` callback): the
    /// next may go. What to tell the log, if anything: a new trouble, or the end of one.
    pub fn ended(&mut self, to: &str, result: &Result<Envelope, String>) -> Option<String> {
        self.in_flight.remove(to);
        if let Some((addresses, envelope)) = self.pending.remove(to) {
            self.send(to.to_owned(), &addresses, envelope);
        }
        match result {
            Ok(_) => self
                .told
                .remove(to)
                .map(|_| format!("{to} answers on the configuration exchange")),
            Err(e) if self.told.get(to) != Some(e) => {
                self.told.insert(to.to_owned(), e.clone());
                Some(format!("configuration exchange with {to}: {e}"))
            }
            Err(_) => None,
        }
    }
}

/// Sends `envelope` to node `to` at the first of `addresses` that takes it, with the key
/// check of the envelope's cluster under `key`, and returns the answer. The error says what
/// went wrong at each address.
pub fn request(
    tls: &Arc<ClientConfig>,
    to: &str,
    addresses: &[SocketAddr],
    key: &[u8],
    envelope: &Envelope,
) -> Result<Envelope, String> {
    let name = node_dns_name(to).map_err(|e| e.to_string())?;
    let encoded = wire::encode_envelope(envelope);
    let mut failures = Vec::new();
    for address in addresses {
        match request_at(tls, &name, *address, (key, envelope.cluster_id), &encoded) {
            Ok(answer) => return Ok(answer),
            Err(e) => failures.push(format!("{address}: {e}")),
        }
    }
    Err(failures.join("; "))
}

fn request_at(
    tls: &Arc<ClientConfig>,
    name: &str,
    address: SocketAddr,
    (key, cluster_id): (&[u8], u64),
    encoded: &[u8],
) -> Result<Envelope, String> {
    let stream = TcpStream::connect_timeout(&address, CONNECT_TIMEOUT)
        .map_err(|e| format!("cannot connect: {e}"))?;
    stream
        .set_nodelay(true)
        .and_then(|()| stream.set_read_timeout(Some(REQUEST_TIMEOUT)))
        .and_then(|()| stream.set_write_timeout(Some(REQUEST_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let server = ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
    let connection = ClientConnection::new(tls.clone(), server).map_err(|e| e.to_string())?;
    let mut tls = StreamOwned::new(connection, stream);
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    while tls.conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("tls handshake: timed out".into());
        }
        tls.sock
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        tls.conn.complete_io(&mut tls.sock).map_err(|e| {
            // A configured daemon's control channel refuses the protocol: told apart from
            // a node that cannot be reached.
            let refused_protocol = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .is_some_and(|inner| {
                    *inner
                        == rustls::Error::AlertReceived(
                            rustls::AlertDescription::NoApplicationProtocol,
                        )
                });
            if refused_protocol {
                crate::core::RUNS_CONFIGURED.to_owned()
            } else {
                format!("tls handshake: {e}")
            }
        })?;
    }
    if tls.conn.alpn_protocol() != Some(CONFIG_ALPN) {
        return Err(crate::core::RUNS_CONFIGURED.into());
    }
    let mut body = key_check(key, cluster_id, &binding(&tls.conn)?).to_vec();
    body.extend_from_slice(encoded);
    write_frame(&mut tls, &body).map_err(|e| format!("cannot send: {e}"))?;
    tls.sock
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let frame = read_frame(&mut tls).map_err(|e| format!("no answer: {e}"))?;
    wire::decode_envelope(&frame).map_err(|e| format!("an answer that does not decode: {e}"))
}

fn write_frame(stream: &mut impl Write, body: &[u8]) -> io::Result<()> {
    let length = u32::try_from(body.len())
        .ok()
        .filter(|&n| n as usize <= FRAME_MAX && n > 0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame size"))?;
    stream.write_all(&length.to_le_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn read_frame(stream: &mut impl Read) -> Result<Vec<u8>, String> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).map_err(|e| e.to_string())?;
    let length = u32::from_le_bytes(header) as usize;
    if length == 0 || length > FRAME_MAX {
        return Err(format!("a frame of {length} bytes"));
    }
    let mut frame = Vec::new();
    match stream.take(length as u64).read_to_end(&mut frame) {
        Ok(n) if n == length => Ok(frame),
        Ok(_) => Err("the frame ended early".into()),
        Err(e) => Err(e.to_string()),
    }
}
