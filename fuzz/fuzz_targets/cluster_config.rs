//! The cluster ASCII file reader: any text gives a configuration or findings, never a panic;
//! an accepted configuration keeps the rules the checks promise.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match cimguard_cluster::config::cluster::parse(text, "fuzz") {
        Ok(checked) => {
            let config = checked.config;
            assert!(!config.nodes.is_empty());
            let networks = config.heartbeat_networks();
            assert!(networks >= 1);
            assert!(config
                .nodes
                .iter()
                .all(|node| node.heartbeat_addresses().count() == networks));
        }
        Err(findings) => assert!(!findings.is_empty()),
    }
});
