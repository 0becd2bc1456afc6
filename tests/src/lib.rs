//! Helpers for cimguard's end-to-end tests: locating the built binaries and the Python venv with
//! the real clients (pywbem) that `scripts/test` installs. The tests live in `tests/tests/`.

use std::path::PathBuf;

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // Invariant: this crate lives one folder below the workspace root.
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}
