//! Heartbeat authentication: every datagram a node sends on a heartbeat network is sealed
//! with HMAC-SHA256 under the cluster key (created by cmapplyconf and distributed with the
//! configuration), with the sender, its life and a sequence number. Receivers drop foreign
//! clusters, unknown senders, forged tags, replays and datagrams of a sender's earlier lives,
//! and count each kind.
//!
//! The sender is a node number (its place in the cluster's node list) and a digest of its
//! NODE_NAME: cmapplyconf may delete or reorder nodes, and a node that numbers them as
//! before (it missed the change), or a replay of one that did, must never pass for the node
//! that holds its number now, nor move the life last heard under that number.
//!
//! # Frame
//!
//! ```text
//! offset  size  field
//!      0     4  magic "CGHB"
//!      4     1  version (2)
//!      5     8  cluster id
//!     13     4  sender (node index)
//!     17     8  sender's name digest ([`name_digest`])
//!     25     8  sender's incarnation
//!     33     8  sequence (counts the sender's sealed datagrams in this life, from 1)
//!     41     4  payload length
//!     45     n  payload
//!   45+n    32  HMAC-SHA256 of bytes 0..45+n
//! ```
//!
//! Integers are little-endian. A receiver accepts a sequence above the highest it has seen
//! from that life, or one of the 64 below it not seen yet (datagrams on two networks
//! overtake each other); anything else is a replay. HMAC comes from ring, already in the
//! dependency tree for TLS.

use std::collections::BTreeMap;

use ring::hmac;

const MAGIC: &[u8; 4] = b"CGHB";
/// 2 added the sender's name digest.
const VERSION: u8 = 2;
const HEADER: usize = 45;
const TAG: usize = 32;
/// Sequences this far below the highest seen are still accepted once.
const WINDOW: u64 = 64;
/// The largest payload sealed or accepted.
pub const PAYLOAD_MAX: usize = 60 * 1024;

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rejected {
    /// Too short, wrong magic or version, or a length that does not match.
    Malformed,
    /// Another cluster's (a different cluster id).
    ForeignCluster,
    /// A sender that is not a configured node (by number, or by name under that number),
    /// or this node itself.
    UnknownSender,
    /// The tag does not verify: forged, damaged, or under another key.
    BadTag,
    /// A sequence seen already from that life, or too old to tell.
    Replayed,
    /// From an earlier life of the sender than one heard already.
    OldIncarnation,
}

/// Seals this node's datagrams.
#[derive(Debug, Clone)]
pub struct Sealer {
    key: hmac::Key,
    cluster_id: u64,
    me: u32,
    name: [u8; 8],
    incarnation: u64,
    sequence: u64,
}

/// The digest of a NODE_NAME that frames carry beside the node's number: the first 8 bytes
/// of SHA-256 over a label and the name in lower case (names are case-insensitive).
pub fn name_digest(name: &str) -> [u8; 8] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(b"cimguard node name\0");
    context.update(name.to_ascii_lowercase().as_bytes());
    let digest = context.finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    first
}

impl Sealer {
    /// A sealer for node `me` (NODE_NAME `name`) in life `incarnation`, under `key`.
    pub fn new(key: &[u8], cluster_id: u64, me: u32, name: &str, incarnation: u64) -> Sealer {
        Sealer {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            cluster_id,
            me,
            name: name_digest(name),
            incarnation,
            sequence: 0,
        }
    }

    /// The datagram carrying `payload` (at most [`PAYLOAD_MAX`] bytes).
    pub fn seal(&mut self, payload: &[u8]) -> Vec<u8> {
        assert!(
            payload.len() <= PAYLOAD_MAX,
            "a heartbeat payload too large"
        );
        self.sequence += 1;
        let mut frame = Vec::with_capacity(HEADER + payload.len() + TAG);
        frame.extend_from_slice(MAGIC);
        frame.push(VERSION);
        frame.extend_from_slice(&self.cluster_id.to_le_bytes());
        frame.extend_from_slice(&self.me.to_le_bytes());
        frame.extend_from_slice(&self.name);
        frame.extend_from_slice(&self.incarnation.to_le_bytes());
        frame.extend_from_slice(&self.sequence.to_le_bytes());
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(payload);
        let tag = hmac::sign(&self.key, &frame);
        frame.extend_from_slice(tag.as_ref());
        frame
    }
}

/// What a receiver knows of one sender.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    incarnation: u64,
    highest: u64,
    /// Bit i: sequence `highest - i` was seen.
    window: u64,
}

/// Opens the datagrams a node receives.
#[derive(Debug)]
pub struct Opener {
    key: hmac::Key,
    cluster_id: u64,
    me: u32,
    /// The name digest of each node, by number.
    names: Vec<[u8; 8]>,
    seen: BTreeMap<u32, Seen>,
    rejected: BTreeMap<Rejected, u64>,
}

/// An accepted datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened<'a> {
    /// The sender's node index.
    pub sender: u32,
    /// The sender's life.
    pub incarnation: u64,
    /// What it carries.
    pub payload: &'a [u8],
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut field = [0u8; 8];
    field.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(field)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut field = [0u8; 4];
    field.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(field)
}

impl Opener {
    /// An opener for node `me` of a cluster whose nodes are `names` (NODE_NAME, by
    /// number), under `key`.
    pub fn new<S: AsRef<str>>(key: &[u8], cluster_id: u64, me: u32, names: &[S]) -> Opener {
        Opener {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            cluster_id,
            me,
            names: names.iter().map(|n| name_digest(n.as_ref())).collect(),
            seen: BTreeMap::new(),
            rejected: BTreeMap::new(),
        }
    }

    /// Adds nodes after those known, numbered on from them (a generation that adds nodes
    /// to the running cluster took effect).
    pub fn add_nodes<S: AsRef<str>>(&mut self, names: &[S]) {
        self.names
            .extend(names.iter().map(|n| name_digest(n.as_ref())));
    }

    /// How many nodes are known.
    pub fn nodes(&self) -> usize {
        self.names.len()
    }

    /// Checks `datagram`; the payload if it is genuine and new.
    pub fn open<'a>(&mut self, datagram: &'a [u8]) -> Result<Opened<'a>, Rejected> {
        let result = self.check(datagram);
        if let Err(reason) = result {
            *self.rejected.entry(reason).or_insert(0) += 1;
        }
        result
    }

    /// How many datagrams were dropped, by reason.
    pub fn rejected(&self) -> &BTreeMap<Rejected, u64> {
        &self.rejected
    }

    fn check<'a>(&mut self, datagram: &'a [u8]) -> Result<Opened<'a>, Rejected> {
        if datagram.len() < HEADER + TAG || &datagram[..4] != MAGIC || datagram[4] != VERSION {
            return Err(Rejected::Malformed);
        }
        let length = u32_at(datagram, 41) as usize;
        if length > PAYLOAD_MAX || datagram.len() != HEADER + length + TAG {
            return Err(Rejected::Malformed);
        }
        if u64_at(datagram, 5) != self.cluster_id {
            return Err(Rejected::ForeignCluster);
        }
        let sender = u32_at(datagram, 13);
        let Some(name) = self.names.get(sender as usize) else {
            return Err(Rejected::UnknownSender);
        };
        if sender == self.me {
            return Err(Rejected::UnknownSender);
        }
        let (signed, tag) = datagram.split_at(HEADER + length);
        hmac::verify(&self.key, signed, tag).map_err(|_| Rejected::BadTag)?;
        // Genuine, from a node that numbers the nodes otherwise: never heard as this number.
        if datagram[17..25] != name[..] {
            return Err(Rejected::UnknownSender);
        }
        let incarnation = u64_at(datagram, 25);
        let sequence = u64_at(datagram, 33);
        let seen = self.seen.entry(sender).or_default();
        if incarnation < seen.incarnation {
            return Err(Rejected::OldIncarnation);
        }
        if incarnation > seen.incarnation {
            *seen = Seen {
                incarnation,
                highest: 0,
                window: 0,
            };
        }
        if sequence > seen.highest {
            let shift = sequence - seen.highest;
            seen.window = if shift >= WINDOW {
                0
            } else {
                seen.window << shift
            } | 1;
            seen.highest = sequence;
        } else {
            let age = seen.highest - sequence;
            if sequence == 0 || age >= WINDOW || seen.window & (1 << age) != 0 {
                return Err(Rejected::Replayed);
            }
            seen.window |= 1 << age;
        }
        Ok(Opened {
            sender,
            incarnation,
            payload: &datagram[HEADER..HEADER + length],
        })
    }
}
