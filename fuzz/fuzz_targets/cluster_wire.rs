//! The cluster wire decoder and the core behind it: any bytes give a message or an error,
//! never a panic; a message that decodes comes back the same bytes, and a node of a running
//! three-node cluster that receives it (from a peer that lies) does not panic either, then
//! or in the seconds after.
#![no_main]

use std::time::Duration;

use cimguard_cluster::core::{NodeId, NodeSet};
use cimguard_cluster::sim::{Options, Simulation};
use cimguard_cluster::wire::{decode_envelope, encode_envelope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the receiver and the network.
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let Ok(envelope) = decode_envelope(bytes) else {
        return;
    };
    assert_eq!(
        decode_envelope(&encode_envelope(&envelope)).as_ref(),
        Ok(&envelope)
    );

    let mut options = Options::new(3, 1);
    options.member_timeout = Duration::from_secs(3);
    options.packages = vec![
        "package_name pkgA\nnode_name *\nservice_name s\nservice_cmd /bin/s\nservice_restart 1\n"
            .to_string(),
    ];
    let mut sim = Simulation::new(options);
    sim.start_all();
    let formed = sim.run_until(Duration::from_secs(30), |s| s.formed(NodeSet::first(3)));
    assert!(matches!(formed, Ok(true)));
    let node = NodeId(u32::from(pick % 3));
    sim.forge(node, usize::from(pick / 3 % 2), envelope);
    // A lie may break the cluster's promises (the checker may object); it must not crash it.
    let _ = sim.run_for(Duration::from_secs(10));
});
