//! The state file: replaced whole or not at all, also when the writer is killed with SIGKILL
//! at any point; damage reads as an error; created 0600.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use cimguard_cluster::runtime::state_file;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cimguard-state-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Version `n`: 64 KiB of the byte `n`, so a torn or mixed content shows.
fn version(n: u8) -> Vec<u8> {
    vec![n; 64 * 1024]
}

#[test]
fn written_content_reads_back_and_nothing_reads_as_none() {
    let dir = scratch("basic");
    let path = dir.join("node.state");
    assert_eq!(state_file::read(&path).unwrap(), None);
    state_file::write(&path, b"first").unwrap();
    state_file::write(&path, b"second").unwrap();
    assert_eq!(
        state_file::read(&path).unwrap().as_deref(),
        Some(&b"second"[..])
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A temporary file left by a crash is removed, the state stays.
    std::fs::write(dir.join("node.state.tmp"), b"half").unwrap();
    assert_eq!(
        state_file::read(&path).unwrap().as_deref(),
        Some(&b"second"[..])
    );
    assert!(!dir.join("node.state.tmp").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn damage_is_an_error_that_names_the_file() {
    let dir = scratch("damage");
    let path = dir.join("node.state");
    state_file::write(&path, b"some state").unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let error = state_file::read(&path).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert!(error.to_string().contains("node.state"), "{error}");
    assert!(error.to_string().contains("checksum"), "{error}");
    std::fs::write(&path, b"not a state file").unwrap();
    assert!(state_file::read(&path)
        .unwrap_err()
        .to_string()
        .contains("header"));
    bytes.truncate(bytes.len() - 3);
    std::fs::write(&path, &bytes).unwrap();
    assert!(state_file::read(&path)
        .unwrap_err()
        .to_string()
        .contains("length"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The writer of the kill test: run by the test binary itself when CIMGUARD_STATE_WRITER
/// names a file; writes versions 1, 2, ... in a loop and says when the first is done.
#[test]
fn writer_for_the_kill_test() {
    let Ok(path) = std::env::var("CIMGUARD_STATE_WRITER") else {
        return;
    };
    let path = PathBuf::from(path);
    state_file::write(&path, &version(1)).unwrap();
    println!("ready");
    for n in (2..=250u8).cycle() {
        state_file::write(&path, &version(n)).unwrap();
    }
}

#[test]
fn a_writer_killed_at_any_point_leaves_one_whole_version() {
    let dir = scratch("kill");
    let path = dir.join("node.state");
    let me = std::env::current_exe().unwrap();
    for round in 0..20u64 {
        let mut child = Command::new(&me)
            .args([
                "--exact",
                "writer_for_the_kill_test",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CIMGUARD_STATE_WRITER", &path)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        // The first version is written when it says so.
        while !line.contains("ready") {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "the writer ended early"
            );
        }
        std::thread::sleep(Duration::from_millis(1 + (round * 7) % 23));
        child.kill().unwrap();
        child.wait().unwrap();
        let content = state_file::read(&path).unwrap().expect("a version");
        assert_eq!(content.len(), 64 * 1024, "round {round}");
        assert!(
            content.iter().all(|b| *b == content[0]),
            "round {round}: a mixed content"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
