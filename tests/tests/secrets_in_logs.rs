//! No password or key is ever written to a log: a three-node cluster with its agents runs
//! at debug level through right and wrong logins, package commands and a throttled client,
//! then every file it wrote (daemon logs, the agents' audit logs, state, package logs) is
//! searched for each password, each Basic credential, the heartbeat key and every private
//! key. Its own binary: the test sets RUST_LOG for the daemons it starts.
//!
//! Needs the binaries (`cargo build --bins`) and the venv's Python (CIMGUARD_PYTHON) for
//! the cm* commands' client.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use cimguard_tests::cluster::{TestCluster, KEY};

const MEMBER_TIMEOUT: Duration = Duration::from_secs(3);
const ADMIN: (&str, &str) = ("admin", "Adm1n pass with spaces & <xml>");
const MONITOR: (&str, &str) = ("monitor", "m0nitor:colon%percent");

fn files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push(path),
                Ok(kind) if kind.is_file() => found.push(path),
                _ => {}
            }
        }
    }
    found
}

/// Files whose job is to hold a secret: the users file (hashes), the heartbeat key, the TLS
/// private keys.
fn holds_a_secret(path: &Path, bytes: &[u8]) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name == "users"
        || name == "cluster.key"
        || bytes
            .windows(b"PRIVATE KEY-----".len())
            .any(|w| w == b"PRIVATE KEY-----")
}

#[test]
fn no_password_or_key_reaches_a_log_of_a_full_run() {
    // Debug everywhere: where a secret would most likely slip out. This binary runs one test.
    std::env::set_var("RUST_LOG", "debug");
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.with_agents(&[
        (ADMIN.0, "FULL_ADMIN", ADMIN.1),
        (MONITOR.0, "MONITOR", MONITOR.1),
    ]);
    for k in 1..=3 {
        let audit = cluster.dir(k).join("audit.log");
        cluster.daemon_args.insert(
            k,
            vec!["--wbem-audit-log".into(), audit.display().to_string()],
        );
    }
    cluster.add_demo_packages();
    cluster.start_all();
    let deadline = Instant::now() + Duration::from_secs(120);
    while cluster
        .owners(1, "dbpkg")
        .is_none_or(|owners| owners.is_empty())
    {
        assert!(
            Instant::now() < deadline,
            "dbpkg did not start:\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Right and wrong logins (node 2's agent ends up throttling the client), commands that
    // change state.
    let bound = Duration::from_secs(120);
    let output = cluster.agent_command(1, MONITOR, "cmviewcl", &["-v"], bound);
    assert!(output.status.success(), "{output:?}");
    for wrong in [
        "wrong 1",
        MONITOR.1.to_uppercase().as_str(),
        "wrong 3",
        "wrong 4",
        "wrong 5",
        "wrong 6",
    ] {
        let output = cluster.agent_command(2, (MONITOR.0, wrong), "cmviewcl", &[], bound);
        assert!(!output.status.success(), "a wrong password was taken");
    }
    let output = cluster.agent_command(3, ("nobody", ADMIN.1), "cmviewcl", &[], bound);
    assert!(!output.status.success(), "an unknown user was taken");
    for (name, args) in [
        ("cmhaltpkg", &["webpkg"][..]),
        ("cmhaltpkg", &["dbpkg"][..]),
        ("cmrunpkg", &["-n", "n2", "dbpkg"][..]),
        ("cmmodpkg", &["-e", "dbpkg"][..]),
    ] {
        // Node 1's agent: node 2's throttles this client's address by now.
        let output = cluster.agent_command(1, ADMIN, name, args, bound);
        assert!(
            output.status.success(),
            "{name} {args:?}: {output:?}\n{}",
            cluster.logs()
        );
    }
    let output = cluster.agent_command(3, MONITOR, "cmhaltpkg", &["dbpkg"], bound);
    assert!(!output.status.success(), "a monitor halted a package");

    // Stop every daemon, so that everything is written.
    for k in 1..=3 {
        cluster.signal(k, "TERM");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for k in 1..=3 {
        while cluster.exited(k).is_none() {
            assert!(Instant::now() < deadline, "node {k} did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // What must not appear, in the forms it could take.
    let base64 = base64::engine::general_purpose::STANDARD;
    let mut secrets: Vec<(String, Vec<u8>)> = Vec::new();
    for (user, password) in [ADMIN, MONITOR] {
        secrets.push((format!("{user}'s password"), password.as_bytes().to_vec()));
        secrets.push((
            format!("{user}'s Basic credentials"),
            base64.encode(format!("{user}:{password}")).into_bytes(),
        ));
    }
    secrets.push(("the heartbeat key".into(), KEY.to_vec()));
    secrets.push(("the heartbeat key in hex".into(), hex(&KEY).into_bytes()));
    secrets.push((
        "the heartbeat key in base64".into(),
        base64.encode(KEY).into_bytes(),
    ));
    let all = files(cluster.root());
    for path in &all {
        let bytes = std::fs::read(path).unwrap_or_default();
        if !holds_a_secret(path, &bytes) || !String::from_utf8_lossy(&bytes).contains("PRIVATE KEY")
        {
            continue;
        }
        // Each line of the key's base64 body (64 characters, the last one shorter).
        for line in String::from_utf8_lossy(&bytes).lines() {
            if line.len() >= 24 && !line.starts_with("-----") {
                secrets.push((
                    format!("a line of {}", path.display()),
                    line.as_bytes().to_vec(),
                ));
            }
        }
    }
    assert!(
        secrets
            .iter()
            .filter(|(what, _)| what.starts_with("a line of"))
            .count()
            >= 3,
        "no private key found to look for"
    );

    let mut scanned = Vec::new();
    let mut leaks = Vec::new();
    for path in &all {
        let bytes = std::fs::read(path).unwrap_or_default();
        if holds_a_secret(path, &bytes) {
            continue;
        }
        scanned.push(path.clone());
        for (what, secret) in &secrets {
            if bytes.windows(secret.len()).any(|w| w == secret.as_slice()) {
                leaks.push(format!("{what} is in {}", path.display()));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets written:\n{}", leaks.join("\n"));

    // The search covered the logs, and the logs tell of what happened.
    let text = |name: &str| -> String {
        (1..=3)
            .map(|k| std::fs::read_to_string(cluster.dir(k).join(name)).unwrap_or_default())
            .collect()
    };
    for k in 1..=3 {
        for name in ["cmcld.log", "audit.log"] {
            let path = cluster.dir(k).join(name);
            assert!(
                scanned.contains(&path),
                "{} was not scanned",
                path.display()
            );
        }
    }
    let logs = text("cmcld.log");
    assert!(
        logs.contains("authentication failed"),
        "no failed login logged"
    );
    assert!(
        logs.contains("authentication throttled"),
        "no throttling logged"
    );
    assert!(
        logs.contains("DEBUG"),
        "the daemons did not log at debug level"
    );
    let audit = text("audit.log");
    assert!(
        audit.contains("cmhaltpkg") || audit.contains("dbpkg"),
        "audit: {audit}"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
