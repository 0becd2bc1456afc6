//! The encoding of the core's messages ([`Envelope`]) on the wire and of its acceptor state
//! ([`Persisted`]) in the state file: serde with postcard (compact, no schema to ship, and
//! bounded preallocation when a length prefix lies), behind a three-byte header that names
//! the format and its version, so that a node of a later release refuses what it cannot read
//! instead of misreading it.
//!
//! Decoding is strict: trailing bytes, an unknown variant, a truncated field or a wrong
//! header are errors, never a partly read value. Values that decode but lie (a node set
//! naming nodes that are not configured, a node index out of range) are the core's to judge;
//! it takes messages from any sender that holds the cluster key and bounds what it believes
//! (the `cluster_wire` fuzz target feeds decoded messages to a node).

use std::fmt;

use crate::core::{Envelope, Persisted};

/// The first bytes of an encoded envelope: "CW" and the format version (13 added the
/// generation as shown to each configuration generation; 14 the cmapplyconf given up to the
/// status a node sends; 17 the warning of a command carried out; 18 whether the
/// coordinator heard the sender's package report, in the status a node sends; 19 the epochs
/// promised in a halted cmapplyconf's answers and commit, and the names in cmruncl's Start;
/// 20 the withdrawal of a halted cmapplyconf's offer; 21 the nodes deleted while the
/// cluster ran, in the generations carried, and the refusal to delete a member; 22 whether
/// an accepting member knows the package table, and the newest membership it knows
/// committed; 23 the acceptance a generation carried on in a proposal comes from, and the
/// acceptances whose generation a member gave up; 24 cmcheckconf's check of a generation on
/// every node).
const ENVELOPE_HEADER: [u8; 3] = [b'C', b'W', 24];
/// The first bytes of an encoded acceptor state: "CP" and the format version (2 added the
/// generation as shown, 3 the nodes deleted while the cluster ran, 4 the acceptances whose
/// generation the node gave up, 5 the node's own proposal pending; files of versions 1 to 4
/// are still read, each generation of version 1 shown as its number, no acceptance of
/// versions 1 to 3 given up, and no proposal of versions 1 to 4 pending).
const PERSISTED_HEADER: [u8; 3] = [b'C', b'P', 5];
/// The acceptor state's first format.
const PERSISTED_HEADER_V1: [u8; 3] = [b'C', b'P', 1];
/// The acceptor state's second format.
const PERSISTED_HEADER_V2: [u8; 3] = [b'C', b'P', 2];
/// The acceptor state's third format.
const PERSISTED_HEADER_V3: [u8; 3] = [b'C', b'P', 3];
/// The acceptor state's fourth format.
const PERSISTED_HEADER_V4: [u8; 3] = [b'C', b'P', 4];
/// The first bytes of an encoded shared map: "CS" and the format version (2 added the
/// floor; version 1 files are still read, with no floor).
const SHARED_HEADER: [u8; 3] = [b'C', b'S', 2];
/// The shared map's first format.
const SHARED_HEADER_V1: [u8; 3] = [b'C', b'S', 1];

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Too short for the header, or a header of another kind of data.
    NotOurs,
    /// Our kind of data, in a format version this release does not read.
    Version(u8),
    /// The body does not decode (truncated, an unknown variant, an invalid value).
    Malformed(String),
    /// The body decoded with bytes left over.
    Trailing(usize),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::NotOurs => write!(f, "not a cimguard cluster message"),
            WireError::Version(v) => write!(f, "format version {v} is not one this node reads"),
            WireError::Malformed(why) => write!(f, "malformed: {why}"),
            WireError::Trailing(n) => write!(f, "{n} bytes after the end of the message"),
        }
    }
}

impl std::error::Error for WireError {}

/// The bytes of `envelope`.
pub fn encode_envelope(envelope: &Envelope) -> Vec<u8> {
    encode(ENVELOPE_HEADER, envelope)
}

/// The envelope in `bytes`.
pub fn decode_envelope(bytes: &[u8]) -> Result<Envelope, WireError> {
    decode(ENVELOPE_HEADER, bytes)
}

/// The bytes of `state`.
pub fn encode_persisted(state: &Persisted) -> Vec<u8> {
    encode(PERSISTED_HEADER, state)
}

/// The acceptor state in `bytes`.
pub fn decode_persisted(bytes: &[u8]) -> Result<Persisted, WireError> {
    if bytes.len() >= 3 && bytes[..3] == PERSISTED_HEADER_V1 {
        return decode_persisted_v1(bytes);
    }
    if bytes.len() >= 3 && bytes[..3] == PERSISTED_HEADER_V2 {
        return decode_persisted_v2(bytes);
    }
    if bytes.len() >= 3 && bytes[..3] == PERSISTED_HEADER_V3 {
        return decode_persisted_v3(bytes);
    }
    if bytes.len() >= 3 && bytes[..3] == PERSISTED_HEADER_V4 {
        return decode_persisted_v4(bytes);
    }
    decode(PERSISTED_HEADER, bytes)
}

/// An acceptor state of the fourth format: the third's fields, then the acceptances given
/// up. It kept no own proposal pending (a node of that release that died proposing left its
/// generation to be carried on). Postcard writes a struct as its fields one after the
/// other, as it writes a tuple: the pair reads the fourth format's struct.
fn decode_persisted_v4(bytes: &[u8]) -> Result<Persisted, WireError> {
    let (third, passed_over): (PersistedV3, Vec<crate::core::Epoch>) =
        decode(PERSISTED_HEADER_V4, bytes)?;
    Ok(third.into_current(passed_over))
}

/// An acceptor state of the third format: it kept no acceptance given up (a node of that
/// release kept them for its life only).
fn decode_persisted_v3(bytes: &[u8]) -> Result<Persisted, WireError> {
    let third: PersistedV3 = decode(PERSISTED_HEADER_V3, bytes)?;
    Ok(third.into_current(Vec::new()))
}

/// The acceptor state's third format (the fourth adds `passed_over` after it).
#[derive(serde::Deserialize)]
struct PersistedV3 {
    epoch_max: crate::core::Epoch,
    installed: Option<crate::core::View>,
    accepted: Vec<crate::core::View>,
    config: Option<std::sync::Arc<crate::config::Generation>>,
    accepted_configs: Vec<(
        crate::core::Epoch,
        std::sync::Arc<crate::config::Generation>,
    )>,
    detached: Vec<String>,
    detached_marks: Vec<(String, crate::core::NodeSet)>,
    sequence_floor: u64,
}

impl PersistedV3 {
    /// The state in the current form, with the acceptances given up `passed_over` and no
    /// own proposal pending.
    fn into_current(self, passed_over: Vec<crate::core::Epoch>) -> Persisted {
        Persisted {
            epoch_max: self.epoch_max,
            installed: self.installed,
            accepted: self.accepted,
            config: self.config,
            accepted_configs: self.accepted_configs,
            detached: self.detached,
            detached_marks: self.detached_marks,
            sequence_floor: self.sequence_floor,
            passed_over,
            own_pending: None,
        }
    }
}

/// A cluster configuration of the acceptor state's formats 1 and 2, whose nodes had no
/// mark of deletion (none was deleted while the cluster ran).
mod before_deletions {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::time::Duration;

    use crate::config::cluster::{
        AccessPolicy, AddressFamily, ClusterConfig, ClusterLock, InterfaceConfig, NodeConfig,
    };

    #[derive(serde::Deserialize)]
    pub(super) struct Node {
        name: String,
        interfaces: Vec<InterfaceConfig>,
        lock_lun: Option<PathBuf>,
        capacities: BTreeMap<String, f64>,
    }

    #[derive(serde::Deserialize)]
    pub(super) struct Cluster {
        name: String,
        address_family: AddressFamily,
        nodes: Vec<Node>,
        member_timeout: Duration,
        auto_start_timeout: Duration,
        network_polling_interval: Duration,
        lock: ClusterLock,
        max_configured_packages: u32,
        access: Vec<AccessPolicy>,
        weight_defaults: BTreeMap<String, f64>,
    }

    impl From<Cluster> for ClusterConfig {
        fn from(c: Cluster) -> ClusterConfig {
            ClusterConfig {
                name: c.name,
                address_family: c.address_family,
                nodes: c
                    .nodes
                    .into_iter()
                    .map(|n| NodeConfig {
                        name: n.name,
                        interfaces: n.interfaces,
                        lock_lun: n.lock_lun,
                        capacities: n.capacities,
                        deleted: false,
                    })
                    .collect(),
                member_timeout: c.member_timeout,
                auto_start_timeout: c.auto_start_timeout,
                network_polling_interval: c.network_polling_interval,
                lock: c.lock,
                max_configured_packages: c.max_configured_packages,
                access: c.access,
                weight_defaults: c.weight_defaults,
            }
        }
    }
}

/// An acceptor state of the second format: its nodes had no mark of deletion.
fn decode_persisted_v2(bytes: &[u8]) -> Result<Persisted, WireError> {
    use crate::config::{package::PackageConfig, Generation};
    use crate::core::{Epoch, NodeSet, View};
    use std::sync::Arc;
    #[derive(serde::Deserialize)]
    struct GenerationV2 {
        number: u64,
        sequence: u64,
        cluster: before_deletions::Cluster,
        packages: Vec<PackageConfig>,
    }
    #[derive(serde::Deserialize)]
    struct PersistedV2 {
        epoch_max: Epoch,
        installed: Option<View>,
        accepted: Vec<View>,
        config: Option<GenerationV2>,
        accepted_configs: Vec<(Epoch, GenerationV2)>,
        detached: Vec<String>,
        detached_marks: Vec<(String, NodeSet)>,
        sequence_floor: u64,
    }
    let generation = |g: GenerationV2| {
        Arc::new(Generation {
            number: g.number,
            sequence: g.sequence,
            cluster: g.cluster.into(),
            packages: g.packages,
        })
    };
    let second: PersistedV2 = decode(PERSISTED_HEADER_V2, bytes)?;
    Ok(Persisted {
        epoch_max: second.epoch_max,
        installed: second.installed,
        accepted: second.accepted,
        config: second.config.map(generation),
        accepted_configs: second
            .accepted_configs
            .into_iter()
            .map(|(epoch, g)| (epoch, generation(g)))
            .collect(),
        detached: second.detached,
        detached_marks: second.detached_marks,
        sequence_floor: second.sequence_floor,
        passed_over: Vec::new(),
        own_pending: None,
    })
}

/// An acceptor state of the first format: its generations had one number, which was also
/// the one shown.
fn decode_persisted_v1(bytes: &[u8]) -> Result<Persisted, WireError> {
    use crate::config::{package::PackageConfig, Generation};
    use crate::core::{Epoch, NodeSet, View};
    use std::sync::Arc;
    #[derive(serde::Deserialize)]
    struct GenerationV1 {
        number: u64,
        cluster: before_deletions::Cluster,
        packages: Vec<PackageConfig>,
    }
    #[derive(serde::Deserialize)]
    struct PersistedV1 {
        epoch_max: Epoch,
        installed: Option<View>,
        accepted: Vec<View>,
        config: Option<GenerationV1>,
        accepted_configs: Vec<(Epoch, GenerationV1)>,
        detached: Vec<String>,
        detached_marks: Vec<(String, NodeSet)>,
    }
    let generation = |g: GenerationV1| {
        Arc::new(Generation {
            number: g.number,
            sequence: g.number,
            cluster: g.cluster.into(),
            packages: g.packages,
        })
    };
    let first: PersistedV1 = decode(PERSISTED_HEADER_V1, bytes)?;
    Ok(Persisted {
        epoch_max: first.epoch_max,
        installed: first.installed,
        accepted: first.accepted,
        config: first.config.map(generation),
        accepted_configs: first
            .accepted_configs
            .into_iter()
            .map(|(epoch, g)| (epoch, generation(g)))
            .collect(),
        detached: first.detached,
        detached_marks: first.detached_marks,
        sequence_floor: 0,
        passed_over: Vec::new(),
        own_pending: None,
    })
}

/// The bytes of the shared map's file.
pub fn encode_shared(map: &crate::core::shared::SharedMap) -> Vec<u8> {
    encode(SHARED_HEADER, map)
}

/// The shared map in `bytes`.
pub fn decode_shared(bytes: &[u8]) -> Result<crate::core::shared::SharedMap, WireError> {
    use crate::core::shared::{Entry, SharedMap, Version};
    if bytes.len() >= 3 && bytes[..3] == SHARED_HEADER_V1 {
        /// The first format: the entries alone.
        #[derive(serde::Deserialize)]
        struct First {
            entries: std::collections::BTreeMap<String, (Version, Option<String>)>,
        }
        let first: First = decode(SHARED_HEADER_V1, bytes)?;
        let entries = first
            .entries
            .into_iter()
            .map(|(key, (version, value))| Entry {
                key,
                version,
                value,
            })
            .collect();
        return Ok(SharedMap::from_entries(entries));
    }
    decode(SHARED_HEADER, bytes)
}

fn encode<T: serde::Serialize>(header: [u8; 3], value: &T) -> Vec<u8> {
    let buffer = header.to_vec();
    // Serializing into a Vec fails only on a serde impl that reports an error, and none of the
    // core's types has one.
    postcard::to_extend(value, buffer).expect("the core's types always serialize")
}

fn decode<T: serde::de::DeserializeOwned>(header: [u8; 3], bytes: &[u8]) -> Result<T, WireError> {
    if bytes.len() < header.len() || bytes[..2] != header[..2] {
        return Err(WireError::NotOurs);
    }
    if bytes[2] != header[2] {
        return Err(WireError::Version(bytes[2]));
    }
    let (value, rest) = postcard::take_from_bytes(&bytes[header.len()..])
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(WireError::Trailing(rest.len()));
    }
    Ok(value)
}
