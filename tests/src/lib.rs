//! Helpers for cimguard's end-to-end tests: locating the built binaries and the Python venv with
//! the real clients (pywbem) that `scripts/test` installs. The tests live in `tests/tests/`.
//!
//! A test that needs the venv fails, never skips, when it is missing: a skipped interop test
//! would pass CI without testing anything. [`python`] says what to run to get it.
//!
//! [`agent`] starts the `cmwbemd` binary on loopback ports; [`raw_http`] is the byte-level
//! HTTP/1.1 client (plain or TLS) the wire tests speak to it with; [`cluster`] runs `cmcld`
//! processes as a cluster on loopback addresses; [`failover`] holds the failover benchmark's
//! faults, samples and corosync cluster; [`soak`] the soak benchmark's CPU hogs, `/proc`
//! readings and stamped logs.

pub mod agent;
pub mod cluster;
pub mod failover;
pub mod netns;
pub mod ports;
pub mod raw_http;
pub mod requests;
pub mod soak;

pub mod pyagent;

use std::env;
use std::path::PathBuf;
use std::process::{Command, Output};

/// The environment variable that names the Python interpreter with the test clients installed.
pub const PYTHON_VARIABLE: &str = "CIMGUARD_PYTHON";

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // Invariant: this crate lives one folder below the workspace root.
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The Python interpreter of the test venv: `$CIMGUARD_PYTHON`, else `<workspace>/.venv/bin/python`.
/// An error (to fail the test with) when neither exists.
pub fn python() -> Result<PathBuf, String> {
    let (path, origin) = match env::var_os(PYTHON_VARIABLE) {
        Some(path) => (PathBuf::from(path), format!("${PYTHON_VARIABLE}")),
        None => (
            workspace_root().join(".venv/bin/python"),
            "the workspace venv".to_owned(),
        ),
    };
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "no Python interpreter for the interop tests at {} ({origin}): run scripts/test, \
             which creates .venv with the pinned pywbem, or set {PYTHON_VARIABLE}",
            path.display()
        ))
    }
}

/// Runs a script under `tests/python/` with the venv's interpreter and returns its output.
pub fn run_python_script(script: &str, args: &[&std::ffi::OsStr]) -> Result<Output, String> {
    let interpreter = python()?;
    let script = workspace_root().join("tests/python").join(script);
    Command::new(&interpreter)
        .arg(&script)
        .args(args)
        .output()
        .map_err(|error| format!("cannot run {}: {error}", interpreter.display()))
}
