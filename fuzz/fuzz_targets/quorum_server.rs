//! The quorum server protocol: arbitrary bytes read as the length-prefixed JSON frames of any
//! number of connections, the server's decisions behind them, and the authorization file.
//! Any bytes give frames or errors, never a panic, a hang or runaway memory; and whatever the
//! clients send, the arbiter never grants one instance of a cluster to two groups while the
//! first grant can still matter (within `instance_age_max`).
//!
//! Input: frames, each preceded by one byte: its low 2 bits pick the connection, the rest
//! advance the clock by that many times 10 s. The same bytes are also read as the server's
//! answers (what a client decodes) and as an authorization file.
#![no_main]

use std::collections::HashMap;
use std::io::{self, Cursor, Read};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use cimguard_cluster::core::{Epoch, NodeSet};
use cimguard_cluster::runtime::quorum_server::{
    read_frame, write_frame, Arbiter, ArbiterLimits, AuthFile, Decision, FrameError, HelloReply,
    Reply, Request, NAME_BYTES_MAX, PROTOCOL_VERSION,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The client's side: the same bytes as answers, until the first that fails.
    let mut answers = Cursor::new(data);
    if read_frame::<_, HelloReply>(&mut answers).is_ok() {
        while read_frame::<_, Reply>(&mut answers).is_ok() {}
    }

    // The authorization file, with names that resolve and names that do not.
    if let Ok(text) = std::str::from_utf8(data) {
        let resolve = |name: &str| -> io::Result<Vec<IpAddr>> {
            match name.len() % 3 {
                0 => Ok(vec![IpAddr::from([127, 0, 0, 1])]),
                1 => Ok(Vec::new()),
                _ => Err(io::Error::other("no such host")),
            }
        };
        if let Ok(file) = AuthFile::parse_with(text, resolve) {
            let _ = file.allows(IpAddr::from([127, 0, 0, 2]));
        }
    }

    // The server's side: small limits, so that clusters and instances are evicted too.
    let limits = ArbiterLimits {
        clusters_max: 3,
        instances_per_cluster_max: 4,
        instance_age_max: Duration::from_secs(600),
        startup_quiet: Duration::from_secs(0),
    };
    let start = Instant::now();
    let mut now = start;
    let mut arbiter = Arbiter::new(limits);
    let mut sessions: [Option<(String, u64)>; 4] = Default::default();
    // Per cluster name and instance: the group granted and when.
    let mut granted: HashMap<(String, Epoch), (NodeSet, Instant)> = HashMap::new();
    let mut input = Cursor::new(data);
    loop {
        let mut pick = [0u8];
        if input.read_exact(&mut pick).is_err() {
            break;
        }
        now += Duration::from_secs(u64::from(pick[0] >> 2) * 10);
        let slot = usize::from(pick[0] & 3);
        let request = match read_frame::<_, Request>(&mut input) {
            Ok(request) => request,
            // A malformed frame ends that connection; a short or oversized one, the input.
            Err(FrameError::Malformed(_)) => {
                if let Some((name, _)) = sessions[slot].take() {
                    arbiter.unregister(now, &name);
                }
                continue;
            }
            Err(_) => break,
        };
        // What the server writes back must be a frame it could send.
        let mut written = Vec::new();
        match request {
            Request::Hello {
                version,
                cluster_name,
                cluster_id,
                ..
            } => {
                if let Some((name, _)) = sessions[slot].take() {
                    arbiter.unregister(now, &name);
                }
                let valid = version == PROTOCOL_VERSION
                    && !cluster_name.is_empty()
                    && cluster_name.len() <= NAME_BYTES_MAX;
                if valid && arbiter.register(now, &cluster_name, cluster_id).is_ok() {
                    sessions[slot] = Some((cluster_name, cluster_id));
                    write_frame(&mut written, &HelloReply::Welcome).unwrap();
                }
            }
            Request::Ping { id } => {
                write_frame(&mut written, &Reply::Pong { id }).unwrap();
            }
            Request::Acquire {
                id,
                instance,
                group,
            } => {
                let Some((name, cluster_id)) = &sessions[slot] else {
                    continue;
                };
                let reply = match arbiter.acquire(now, name, *cluster_id, instance, group) {
                    Decision::Granted => {
                        let key = (name.clone(), instance);
                        if let Some(&(first, at)) = granted.get(&key) {
                            assert!(
                                first == group || now.duration_since(at) > limits.instance_age_max,
                                "instance {instance:?} of {name:?} granted to {first:?} and then {group:?}"
                            );
                        }
                        granted.insert(key, (group, now));
                        Reply::Granted { id }
                    }
                    Decision::Denied { holder } => Reply::Denied { id, holder },
                };
                write_frame(&mut written, &reply).unwrap();
            }
        }
        if !written.is_empty() {
            let mut back = Cursor::new(written);
            assert!(
                read_frame::<_, Reply>(&mut back).is_ok()
                    || read_frame::<_, HelloReply>(&mut Cursor::new(back.into_inner())).is_ok()
            );
        }
    }
});
