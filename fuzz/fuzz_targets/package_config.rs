//! The modular package file reader: any text gives a configuration or findings, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match cimguard_cluster::config::package::parse(text, "fuzz") {
        Ok(checked) => {
            let config = checked.config;
            assert!(!config.name.is_empty());
            assert!(config.services.iter().all(|s| !s.command.is_empty()));
        }
        Err(findings) => assert!(!findings.is_empty()),
    }
});
