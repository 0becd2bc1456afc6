//! The wire and state-file encoding: every message and acceptor state the core produces in
//! random histories comes back equal, and bytes that are not a whole message of this format
//! are refused with the reason, never misread and never a panic.

use cimguard_cluster::core::{
    Echo, Envelope, Epoch, Heartbeat, Incarnation, Instant, Leaving, Message, NodeId, NodeSet,
    Persisted, Phase, Term, View,
};
use cimguard_cluster::packages::PackageId;
use cimguard_cluster::sim::{random, Simulation};
use cimguard_cluster::wire::{
    decode_envelope, decode_persisted, encode_envelope, encode_persisted, WireError,
};
use std::time::Duration;

/// Random histories (faults, package commands, cmapplyconf, detached mode) with every
/// message and every persisted state passed through the encoding; the simulator panics if one
/// comes back different. Returns the messages seen, by kind, and a sample of each.
fn histories(
    seeds: std::ops::Range<u64>,
) -> (std::collections::BTreeMap<&'static str, u64>, Vec<Envelope>) {
    let mut counts = std::collections::BTreeMap::new();
    let mut samples = Vec::new();
    for seed in seeds {
        let mut options = random::options(seed, Default::default());
        options.through_wire = true;
        let mut sim = Simulation::new(options);
        random::drive(&mut sim).unwrap_or_else(|v| panic!("seed {seed}: {v}"));
        for (kind, count) in &sim.wire_counts {
            let seen: &mut u64 = counts.entry(*kind).or_default();
            if *seen == 0 {
                let sample = sim
                    .wire_samples
                    .iter()
                    .find(|e| kind_of(e) == *kind)
                    .expect("a sample of every kind counted");
                samples.push(sample.clone());
            }
            *seen += count;
        }
    }
    (counts, samples)
}

fn kind_of(envelope: &Envelope) -> &'static str {
    match &envelope.message {
        Message::Propose {
            config: Some(_), ..
        } => "Propose with a configuration",
        message => message.kind(),
    }
}

#[test]
fn every_message_of_random_histories_comes_back_equal() {
    // Seeds whose histories hold every kind (a change of what the core sends changes every
    // history after it; when a kind goes missing, pick another window).
    let (counts, samples) = histories(200..320);
    for kind in [
        "Heartbeat",
        "Propose",
        "Propose with a configuration",
        "Accept",
        "Commit",
        "Command",
        "Answer",
        "Order",
        "Config",
        "ConfigRequest",
        "Abandon",
        "Apply",
        "Halt",
        "Reject",
        "StatusRequest",
        "Status",
        "Shared",
    ] {
        assert!(
            counts.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} in {counts:?}"
        );
    }
    // `CLUSTER_WIRE_CORPUS=DIR` writes the samples there as seeds of the `cluster_wire` fuzz
    // target (its first byte picks the receiver).
    if let Some(dir) = std::env::var_os("CLUSTER_WIRE_CORPUS") {
        for (i, sample) in samples.iter().enumerate() {
            let mut seed = vec![i as u8];
            seed.extend(encode_envelope(sample));
            std::fs::write(
                std::path::Path::new(&dir).join(format!("sample-{i:02}")),
                seed,
            )
            .expect("the corpus directory is writable");
        }
    }
    // Every prefix of every sample is refused, and so is every sample with a byte added.
    for sample in &samples {
        let bytes = encode_envelope(sample);
        assert_eq!(decode_envelope(&bytes).as_ref(), Ok(sample));
        for end in 0..bytes.len() {
            assert!(
                decode_envelope(&bytes[..end]).is_err(),
                "a {}-byte prefix of a {}-byte {} decoded",
                end,
                bytes.len(),
                kind_of(sample)
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode_envelope(&longer), Err(WireError::Trailing(1)));
        // A damaged byte decodes to something else or to an error, never a panic.
        for at in 0..bytes.len().min(512) {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x5a;
            let _ = decode_envelope(&damaged);
        }
    }
}

fn heartbeat() -> Envelope {
    Envelope {
        cluster_id: 0xfeed,
        config_generation: 3,
        from: NodeId(1),
        from_incarnation: Incarnation(7),
        to_incarnation: Incarnation(0),
        message: Message::Heartbeat(Heartbeat {
            sequence: 42,
            sent_at: Instant::from_nanos(1_000_000_007),
            term: Term {
                lease: Duration::from_millis(11_500),
                grace: Duration::from_millis(500),
            },
            phase: Phase::Running,
            epoch: Epoch::new(3, NodeId(0)),
            members: NodeSet::first(3),
            reach: NodeSet::first(3),
            echo: Some(Echo {
                at: Instant::from_nanos(99),
                term: Term {
                    lease: Duration::from_millis(11_500),
                    grace: Duration::from_secs(9),
                },
            }),
            heard: Some(Instant::from_nanos(98)),
            packages: Vec::new(),
            restarts: Vec::new(),
            failures: vec![(PackageId(1), 7)],
            resources: Vec::new(),
            switching: Vec::new(),
            switching_version: (1, 2),
            executed: (3, 4),
            leaving: Leaving::No,
            lock: cimguard_cluster::status::Health::Up,
            lock_refusal: None,
        }),
    }
}

#[test]
fn a_heartbeat_is_small_and_its_header_names_format_and_version() {
    let bytes = encode_envelope(&heartbeat());
    assert_eq!(&bytes[..3], b"CW\x18");
    // Varint-coded: a heartbeat of an idle three-node cluster fits in a small datagram.
    assert!(bytes.len() < 64, "{} bytes", bytes.len());
    assert_eq!(decode_envelope(&bytes), Ok(heartbeat()));

    let mut later = bytes.clone();
    later[2] = 25;
    assert_eq!(decode_envelope(&later), Err(WireError::Version(25)));
    // Version 1 had no graces in heartbeats and echoes, version 2 no acknowledgements,
    // version 3 no answers to forwarded commands (nor serials on cmapplyconf), version 4
    // no base generation on cmapplyconf, version 5 no status for halted nodes, version 6
    // no acknowledgement of a detached package's halt, version 7 no shared map, version 8
    // no floor on the shared map's whole copies, version 9 no cmapplyconf of a halted
    // cluster, version 10 no PackageFailed numbers in heartbeats, version 11 no lease
    // beside the grace (MEMBER_TIMEOUT changed online), version 12 no generation as shown,
    // version 13 no cmapplyconf given up in a node's status, version 14 no cluster lock's
    // health in heartbeats, version 15 no nodes a multi-node package ran on, version 16 no
    // warning in the answer to a command, version 17 no reports_heard in a status, version
    // 18 no epochs in a halted cmapplyconf's answers and commit (nor names in Start),
    // version 19 no withdrawal of a halted cmapplyconf's offer, version 20 no nodes deleted
    // while the cluster ran, version 21 no package table known nor membership known
    // committed in an acceptance (nor forming in a commit), version 22 no acceptance a
    // carried generation comes from in a proposal (nor generations given up in an
    // acceptance), version 23 no cmcheckconf's check on every node.
    for version in [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
    ] {
        let mut earlier = bytes.clone();
        earlier[2] = version;
        assert_eq!(decode_envelope(&earlier), Err(WireError::Version(version)));
    }
    assert_eq!(decode_envelope(b"CGHB\x01"), Err(WireError::NotOurs));
    assert_eq!(decode_envelope(b"C"), Err(WireError::NotOurs));
    assert_eq!(decode_envelope(b""), Err(WireError::NotOurs));
    // A state file is not a message, and a message is not a state file.
    assert_eq!(
        decode_envelope(&encode_persisted(&Persisted::default())),
        Err(WireError::NotOurs)
    );
    assert_eq!(decode_persisted(&bytes), Err(WireError::NotOurs));
}

#[test]
fn an_unknown_variant_and_a_lying_length_are_malformed() {
    let mut bytes = encode_envelope(&heartbeat());
    // The message variant follows the five envelope fields; find it by encoding a message
    // that differs only in its variant.
    let reject = Envelope {
        message: Message::Reject {
            epoch: Epoch(1),
            highest: Epoch(2),
        },
        ..heartbeat()
    };
    let other = encode_envelope(&reject);
    let at = bytes
        .iter()
        .zip(&other)
        .position(|(a, b)| a != b)
        .expect("the variants differ");
    bytes[at] = 0x7f;
    assert!(matches!(
        decode_envelope(&bytes),
        Err(WireError::Malformed(_))
    ));

    // A state whose list length says four billion entries: refused, not allocated.
    let state = Persisted {
        accepted: vec![View::none(3)],
        ..Persisted::default()
    };
    let good = encode_persisted(&state);
    assert_eq!(decode_persisted(&good), Ok(state));
    let empty = encode_persisted(&Persisted::default());
    let at = good
        .iter()
        .zip(&empty)
        .position(|(a, b)| a != b)
        .expect("the lists differ");
    let mut lying = good[..at].to_vec();
    lying.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    lying.extend_from_slice(&good[at + 1..]);
    assert!(matches!(
        decode_persisted(&lying),
        Err(WireError::Malformed(_))
    ));
}

#[test]
fn a_shared_map_file_keeps_its_floor_and_one_of_the_first_format_is_still_read() {
    use cimguard_cluster::core::shared::{Entry, SharedMap, Version};
    use cimguard_cluster::wire::{decode_shared, encode_shared};
    let version = |epoch, count| Version {
        epoch: Epoch(epoch),
        count,
    };
    let entry = |key: &str, v, value: Option<&str>| Entry {
        key: key.into(),
        version: v,
        value: value.map(str::to_owned),
    };
    let mut map = SharedMap::new();
    assert!(map.merge(entry("a", version(1, 1), Some("x"))));
    assert!(map.merge(entry("b", version(1, 2), None)));
    assert_eq!(map.purge_tombstones(), Some(version(1, 2)));
    let bytes = encode_shared(&map);
    assert_eq!(&bytes[..3], b"CS\x02");
    let read = decode_shared(&bytes).expect("decodes");
    assert_eq!(read.floor(), version(1, 2));
    assert_eq!(read.entries(), map.entries());

    // The first format: "CS", 1, then the entries alone (a postcard map: a count, then
    // each key, its version's epoch and count, and its optional value).
    let mut first = b"CS\x01".to_vec();
    first.extend_from_slice(&[2]);
    first.extend_from_slice(&[1, b'a', 1, 1, 1, 1, b'x']);
    first.extend_from_slice(&[1, b'b', 1, 2, 0]);
    let old = decode_shared(&first).expect("the first format is read");
    assert_eq!(old.floor(), Version::default());
    assert_eq!(
        old.entries(),
        vec![
            entry("a", version(1, 1), Some("x")),
            entry("b", version(1, 2), None)
        ]
    );
    assert_eq!(old.changes(), 0);
    let mut later = bytes;
    later[2] = 3;
    assert_eq!(decode_shared(&later), Err(WireError::Version(3)));
}

/// The committed seeds of the `cluster_wire` fuzz target are messages of the current format
/// (after the byte that picks the receiver): a format change that forgets to write them again
/// (`CLUSTER_WIRE_CORPUS`, above) would leave the fuzzer starting from bytes it refuses at
/// the header.
#[test]
fn the_committed_fuzz_seeds_are_of_the_current_format() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/cluster_wire");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("the cluster_wire corpus is committed") {
        let path = entry.expect("a readable corpus directory").path();
        let bytes = std::fs::read(&path).expect("a readable seed");
        let Some((_, envelope)) = bytes.split_first() else {
            panic!("{} is empty", path.display());
        };
        if let Err(error) = decode_envelope(envelope) {
            panic!("{} does not decode: {error}", path.display());
        }
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} seeds in {}", dir.display());
}

/// The messages of a cmapplyconf or cmcheckconf given while the cluster is halted (not in the
/// random histories, which never apply with the cluster halted) come back equal, and their
/// prefixes are refused.
#[test]
fn the_messages_of_a_halted_cmapplyconf_come_back_equal() {
    let text = cimguard_cluster::sim::cluster_file(&cimguard_cluster::sim::Options::new(3, 1));
    let cluster = cimguard_cluster::config::cluster::parse(&text, "c.ascii")
        .expect("the simulator's cluster file")
        .config;
    let config = std::sync::Arc::new(cimguard_cluster::config::Generation {
        number: 7,
        sequence: 3,
        cluster,
        packages: Vec::new(),
    });
    let messages = [
        Message::ConfigOffer {
            serial: 3,
            config: config.clone(),
        },
        Message::ConfigCheck { serial: 4, config },
        Message::ConfigCommit {
            serial: 3,
            number: 7,
            epoch_floor: Epoch::new(41, NodeId(2)),
        },
        Message::ConfigWithdraw { serial: 3 },
        Message::ConfigAnswer {
            serial: 3,
            commit: true,
            refusal: Some("node 2 is not halted".into()),
            epoch_max: Epoch::new(40, NodeId(1)),
        },
    ];
    for message in messages {
        let envelope = Envelope {
            message,
            ..heartbeat()
        };
        let bytes = encode_envelope(&envelope);
        assert_eq!(decode_envelope(&bytes).as_ref(), Ok(&envelope));
        for end in 0..bytes.len() {
            assert!(
                decode_envelope(&bytes[..end]).is_err(),
                "a {end}-byte prefix"
            );
        }
    }
}

/// A cluster configuration as the acceptor state's formats 1 and 2 laid it out: its nodes
/// had no mark of deletion. Written here on its own (not with the decoder's mirror of it), so
/// that the decoder is checked against the layout and not against itself.
mod before_deletions {
    use cimguard_cluster::config::cluster::{
        AccessPolicy, AddressFamily, ClusterConfig, ClusterLock, InterfaceConfig,
    };
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::time::Duration;

    #[derive(serde::Serialize)]
    struct Node {
        name: String,
        interfaces: Vec<InterfaceConfig>,
        lock_lun: Option<PathBuf>,
        capacities: BTreeMap<String, f64>,
    }

    #[derive(serde::Serialize)]
    pub struct Cluster {
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

    pub fn of(c: &ClusterConfig) -> Cluster {
        Cluster {
            name: c.name.clone(),
            address_family: c.address_family,
            nodes: c
                .nodes
                .iter()
                .map(|n| Node {
                    name: n.name.clone(),
                    interfaces: n.interfaces.clone(),
                    lock_lun: n.lock_lun.clone(),
                    capacities: n.capacities.clone(),
                })
                .collect(),
            member_timeout: c.member_timeout,
            auto_start_timeout: c.auto_start_timeout,
            network_polling_interval: c.network_polling_interval,
            lock: c.lock.clone(),
            max_configured_packages: c.max_configured_packages,
            access: c.access.clone(),
            weight_defaults: c.weight_defaults.clone(),
        }
    }
}

/// An acceptor state of the second format (nodes with no mark of deletion) is still read,
/// none of its nodes deleted.
#[test]
fn an_acceptor_state_of_the_second_format_is_still_read() {
    use cimguard_cluster::config::package::PackageConfig;
    use cimguard_cluster::config::Generation;
    use std::sync::Arc;
    #[derive(serde::Serialize)]
    struct GenerationV2 {
        number: u64,
        sequence: u64,
        cluster: before_deletions::Cluster,
        packages: Vec<PackageConfig>,
    }
    #[derive(serde::Serialize)]
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
    let text = cimguard_cluster::sim::cluster_file(&cimguard_cluster::sim::Options::new(3, 1));
    let cluster = cimguard_cluster::config::cluster::parse(&text, "c.ascii")
        .expect("the simulator's cluster file")
        .config;
    let second = PersistedV2 {
        epoch_max: Epoch(0x305),
        installed: None,
        accepted: Vec::new(),
        config: Some(GenerationV2 {
            number: 1537,
            sequence: 4,
            cluster: before_deletions::of(&cluster),
            packages: Vec::new(),
        }),
        accepted_configs: Vec::new(),
        detached: Vec::new(),
        detached_marks: Vec::new(),
        sequence_floor: 5,
    };
    let mut bytes = b"CP\x02".to_vec();
    bytes.extend(postcard::to_allocvec(&second).expect("serializes"));
    let read = decode_persisted(&bytes).expect("the second format is read");
    assert_eq!(
        read,
        Persisted {
            epoch_max: Epoch(0x305),
            installed: None,
            accepted: Vec::new(),
            config: Some(Arc::new(Generation {
                number: 1537,
                sequence: 4,
                cluster,
                packages: Vec::new(),
            })),
            accepted_configs: Vec::new(),
            detached: Vec::new(),
            detached_marks: Vec::new(),
            sequence_floor: 5,
            passed_over: Vec::new(),
            own_pending: None,
        }
    );
    let again = encode_persisted(&read);
    assert_eq!(&again[..3], b"CP\x05");
    assert_eq!(decode_persisted(&again), Ok(read));
}

/// An acceptor state of the first format (generations with one number) is still read, each
/// generation shown as its number; a later format is refused.
#[test]
fn an_acceptor_state_of_the_first_format_is_still_read() {
    use cimguard_cluster::config::package::PackageConfig;
    use cimguard_cluster::config::Generation;
    use std::sync::Arc;
    #[derive(serde::Serialize)]
    struct GenerationV1 {
        number: u64,
        cluster: before_deletions::Cluster,
        packages: Vec<PackageConfig>,
    }
    #[derive(serde::Serialize)]
    struct PersistedV1 {
        epoch_max: Epoch,
        installed: Option<View>,
        accepted: Vec<View>,
        config: Option<GenerationV1>,
        accepted_configs: Vec<(Epoch, GenerationV1)>,
        detached: Vec<String>,
        detached_marks: Vec<(String, NodeSet)>,
    }
    let text = cimguard_cluster::sim::cluster_file(&cimguard_cluster::sim::Options::new(3, 1));
    let cluster = cimguard_cluster::config::cluster::parse(&text, "c.ascii")
        .expect("the simulator's cluster file")
        .config;
    let package = cimguard_cluster::config::package::parse(
        "package_name pkgA\nnode_name n1\nservice_name s\nservice_cmd /bin/s\n",
        "pkgA.conf",
    )
    .expect("a package file")
    .config;
    let first = PersistedV1 {
        epoch_max: Epoch(0x305),
        installed: None,
        accepted: Vec::new(),
        config: Some(GenerationV1 {
            number: 1537,
            cluster: before_deletions::of(&cluster),
            packages: vec![package.clone()],
        }),
        accepted_configs: vec![(
            Epoch(0x305),
            GenerationV1 {
                number: 2310,
                cluster: before_deletions::of(&cluster),
                packages: Vec::new(),
            },
        )],
        detached: vec!["pkgA".into()],
        detached_marks: vec![("pkgA".into(), NodeSet(0b1))],
    };
    let mut bytes = b"CP\x01".to_vec();
    bytes.extend(postcard::to_allocvec(&first).expect("serializes"));
    let read = decode_persisted(&bytes).expect("the first format is read");
    let generation = |number, packages| {
        Arc::new(Generation {
            number,
            sequence: number,
            cluster: cluster.clone(),
            packages,
        })
    };
    assert_eq!(
        read,
        Persisted {
            epoch_max: Epoch(0x305),
            installed: None,
            accepted: Vec::new(),
            config: Some(generation(1537, vec![package])),
            accepted_configs: vec![(Epoch(0x305), generation(2310, Vec::new()))],
            detached: vec!["pkgA".into()],
            detached_marks: vec![("pkgA".into(), NodeSet(0b1))],
            sequence_floor: 0,
            passed_over: Vec::new(),
            own_pending: None,
        }
    );
    // Written again, it is of the current format.
    let again = encode_persisted(&read);
    assert_eq!(&again[..3], b"CP\x05");
    assert_eq!(decode_persisted(&again), Ok(read));
    let mut later = again;
    later[2] = 6;
    assert_eq!(decode_persisted(&later), Err(WireError::Version(6)));
}

/// An acceptor state of the third format (its node kept the acceptances it gave up for its
/// life only) is still read, with none given up; the current format keeps them.
#[test]
fn an_acceptor_state_of_the_third_format_is_still_read() {
    use cimguard_cluster::config::Generation;
    use std::sync::Arc;
    #[derive(serde::Serialize)]
    struct PersistedV3 {
        epoch_max: Epoch,
        installed: Option<View>,
        accepted: Vec<View>,
        config: Option<Arc<Generation>>,
        accepted_configs: Vec<(Epoch, Arc<Generation>)>,
        detached: Vec<String>,
        detached_marks: Vec<(String, NodeSet)>,
        sequence_floor: u64,
    }
    let mut accepted = View::none(3);
    accepted.epoch = Epoch(0x405);
    let third = PersistedV3 {
        epoch_max: Epoch(0x405),
        installed: None,
        accepted: vec![accepted.clone()],
        config: None,
        accepted_configs: Vec::new(),
        detached: Vec::new(),
        detached_marks: vec![("pkgA".into(), NodeSet(0b10))],
        sequence_floor: 7,
    };
    let mut bytes = b"CP\x03".to_vec();
    bytes.extend(postcard::to_allocvec(&third).expect("serializes"));
    let read = decode_persisted(&bytes).expect("the third format is read");
    let expected = Persisted {
        epoch_max: Epoch(0x405),
        installed: None,
        accepted: vec![accepted],
        config: None,
        accepted_configs: Vec::new(),
        detached: Vec::new(),
        detached_marks: vec![("pkgA".into(), NodeSet(0b10))],
        sequence_floor: 7,
        passed_over: Vec::new(),
        own_pending: None,
    };
    assert_eq!(read, expected);
    let given_up = Persisted {
        passed_over: vec![Epoch(0x405)],
        ..expected
    };
    let again = encode_persisted(&given_up);
    assert_eq!(&again[..3], b"CP\x05");
    assert_eq!(decode_persisted(&again), Ok(given_up));
}

/// An acceptor state of the fourth format (its node kept no own proposal pending) is still
/// read, with none pending; the current format keeps it.
#[test]
fn an_acceptor_state_of_the_fourth_format_is_still_read() {
    use cimguard_cluster::config::Generation;
    use std::sync::Arc;
    #[derive(serde::Serialize)]
    struct PersistedV4 {
        epoch_max: Epoch,
        installed: Option<View>,
        accepted: Vec<View>,
        config: Option<Arc<Generation>>,
        accepted_configs: Vec<(Epoch, Arc<Generation>)>,
        detached: Vec<String>,
        detached_marks: Vec<(String, NodeSet)>,
        sequence_floor: u64,
        passed_over: Vec<Epoch>,
    }
    let fourth = PersistedV4 {
        epoch_max: Epoch(0x502),
        installed: None,
        accepted: Vec::new(),
        config: None,
        accepted_configs: Vec::new(),
        detached: Vec::new(),
        detached_marks: Vec::new(),
        sequence_floor: 3,
        passed_over: vec![Epoch(0x402)],
    };
    let mut bytes = b"CP\x04".to_vec();
    bytes.extend(postcard::to_allocvec(&fourth).expect("serializes"));
    let read = decode_persisted(&bytes).expect("the fourth format is read");
    let expected = Persisted {
        epoch_max: Epoch(0x502),
        sequence_floor: 3,
        passed_over: vec![Epoch(0x402)],
        own_pending: None,
        ..Persisted::default()
    };
    assert_eq!(read, expected);
    let pending = Persisted {
        own_pending: Some(Epoch(0x502)),
        ..expected
    };
    let again = encode_persisted(&pending);
    assert_eq!(&again[..3], b"CP\x05");
    assert_eq!(decode_persisted(&again), Ok(pending));
}
