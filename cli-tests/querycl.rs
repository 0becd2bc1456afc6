//! `cmquerycl` as an operator runs it: the built binary making cluster templates for this
//! host and for nodes named by loopback and documentation addresses, read back with the
//! daemon's own parser; its refusals; and `-c` against a running `cimguard demo` cluster.
//!
//! No name here is looked up beyond /etc/hosts: this host's name, `localhost`, IP addresses
//! (which resolve to themselves) and names under `.invalid` (which cmquerycl never looks up).

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use cimguard_cluster::config::cluster::{self, ClusterConfig, ClusterLock};
use cimguard_cluster::config::{Diagnostic, Severity};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

const CMQUERYCL: &str = env!("CARGO_BIN_EXE_cmquerycl");
const CMGETCONF: &str = env!("CARGO_BIN_EXE_cmgetconf");
const CIMGUARD: &str = env!("CARGO_BIN_EXE_cimguard");

/// The comment above the interfaces of a node that is not this host.
fn not_probed(node: &str) -> String {
    format!(
        "  # not probed: cimguard cannot probe {node}'s interfaces from here; check \
         NETWORK_INTERFACE and HEARTBEAT_IP"
    )
}

/// A fresh directory for one test.
fn directory(test: &str) -> PathBuf {
    let directory =
        std::env::temp_dir().join(format!("cimguard-querycl-{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&directory);
    fs::create_dir_all(&directory).unwrap();
    directory
}

/// This host's name, as cmquerycl reads it.
fn host_name() -> String {
    nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// `cmquerycl ARGS` in `dir`, with no agent configured.
fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(CMQUERYCL)
        .args(args)
        .current_dir(dir)
        .env_remove("CIMGUARD_URL")
        .env_remove("CIMGUARD_USER")
        .env_remove("CIMGUARD_PASSWORD")
        .env_remove("CIMGUARD_CA")
        .env("CIMGUARD_SOCKET", dir.join("no-agent.sock"))
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The file cmquerycl wrote on standard output, with nothing on standard error.
fn template(dir: &Path, args: &[&str]) -> String {
    let output = run(dir, args);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    stdout(&output)
}

/// Exit status 1, nothing on standard output, and one line on standard error that contains
/// each of `parts`.
fn assert_one_line_failure(output: &Output, parts: &[&str]) {
    assert_eq!(output.status.code(), Some(1), "{}", stderr(output));
    assert_eq!(stdout(output), "");
    let error = stderr(output);
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(error.starts_with("cmquerycl: "), "{error}");
    for part in parts {
        assert!(error.contains(part), "{part:?} not in {error:?}");
    }
}

/// `text` with its CLUSTER_NAME placeholder replaced, as the operator does first.
fn named(text: &str, name: &str) -> String {
    let placeholder = "CLUSTER_NAME              cluster1\n";
    assert_eq!(text.matches(placeholder).count(), 1, "{text}");
    text.replace(placeholder, &format!("CLUSTER_NAME {name}\n"))
}

/// The daemon's reading of `text`, which must have no error.
fn parsed(text: &str) -> ClusterConfig {
    match cluster::parse(text, "cluster.ascii") {
        Ok(checked) => {
            assert!(
                checked
                    .findings
                    .iter()
                    .all(|d| d.severity != Severity::Error),
                "{:?}",
                checked.findings
            );
            checked.config
        }
        Err(findings) => panic!("{}\n{text}", lines(&findings)),
    }
}

/// The errors the daemon finds in `text`, which must have some.
fn errors(text: &str) -> Vec<Diagnostic> {
    match cluster::parse(text, "cluster.ascii") {
        Ok(_) => panic!("no error in\n{text}"),
        Err(findings) => findings
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .collect(),
    }
}

fn lines(findings: &[Diagnostic]) -> String {
    findings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The 1-based numbers of the lines of `text` equal to `line`.
fn line_numbers(text: &str, line: &str) -> Vec<usize> {
    (1..)
        .zip(text.lines())
        .filter(|(_, l)| *l == line)
        .map(|(n, _)| n)
        .collect()
}

/// The heartbeat addresses cmquerycl finds on this host: the node block of `-n HOST`, which
/// must parse (this host has an interface up with an IPv4 address).
fn this_host_heartbeats(dir: &Path) -> usize {
    let host = host_name();
    let config = parsed(&template(dir, &["-n", &host]));
    assert_eq!(config.nodes.len(), 1);
    let node = &config.nodes[0];
    assert_eq!(node.name, host);
    assert!(
        node.heartbeat_addresses()
            .all(|a| a.is_ipv4() && !a.is_loopback()),
        "{node:?}"
    );
    node.heartbeat_addresses().count()
}

#[test]
fn this_host_alone_is_probed_and_parses_with_the_defaults() {
    let dir = directory("alone");
    let host = host_name();
    let text = template(&dir, &["-n", &host]);
    assert!(text.starts_with("# Cluster configuration file template, made by cmquerycl"));
    assert!(!text.contains("# not probed"), "{text}");
    let config = parsed(&text);
    assert_eq!(config.name, "cluster1");
    assert_eq!(config.lock, ClusterLock::None);
    assert_eq!(config.member_timeout, Duration::from_secs(14));
    assert_eq!(config.auto_start_timeout, Duration::from_secs(600));
    assert_eq!(config.network_polling_interval, Duration::from_secs(2));
    assert_eq!(config.max_configured_packages, 300);
    assert_eq!(config.access.len(), 1);
    for line in [
        "USER_NAME                 ANY_USER",
        "USER_HOST                 ANY_SERVICEGUARD_NODE",
        "USER_ROLE                 MONITOR",
    ] {
        assert_eq!(line_numbers(&text, line).len(), 1, "{line:?} in\n{text}");
    }
    // Each cluster-level parameter is under a comment.
    let text_lines: Vec<&str> = text.lines().collect();
    for parameter in [
        "CLUSTER_NAME",
        "HOSTNAME_ADDRESS_FAMILY",
        "NODE_NAME",
        "MEMBER_TIMEOUT",
        "AUTO_START_TIMEOUT",
        "NETWORK_POLLING_INTERVAL",
        "MAX_CONFIGURED_PACKAGES",
        "USER_NAME",
    ] {
        let at = text_lines
            .iter()
            .position(|l| l.starts_with(&format!("{parameter} ")))
            .unwrap_or_else(|| panic!("no {parameter} in\n{text}"));
        assert!(
            at > 0 && text_lines[at - 1].starts_with("# "),
            "{parameter} has no comment above it\n{text}"
        );
    }
    // -v tells what was probed, on standard error only.
    let verbose = run(&dir, &["-v", "-n", &host]);
    assert!(verbose.status.success(), "{}", stderr(&verbose));
    assert_eq!(stdout(&verbose), text);
    let report = stderr(&verbose);
    assert!(
        report.contains(&format!("cmquerycl: this host is {host}: ")),
        "{report}"
    );
    assert!(
        report.contains(&format!("cmquerycl: node {host}: this host")),
        "{report}"
    );
    // The same host by another spelling of its name: fully qualified, or in capitals.
    let other_spelling = if host.contains('.') {
        host.split('.').next().unwrap().to_owned()
    } else {
        format!("{host}.example.invalid")
    };
    let again = template(&dir, &["-n", &other_spelling]);
    assert_eq!(
        parsed(&again).nodes[0].interfaces,
        config.nodes[0].interfaces
    );
    let capitals = template(&dir, &["-n", &host.to_ascii_uppercase()]);
    assert_eq!(
        parsed(&capitals).nodes[0].interfaces,
        config.nodes[0].interfaces
    );
}

#[test]
fn this_host_and_a_loopback_node_with_lock_luns_parse() {
    let dir = directory("lock-lun");
    let host = host_name();
    let args = [
        "-n",
        &host,
        "-L",
        "/dev/disk/by-id/lock-a",
        "-n",
        "localhost",
        "-L",
        "/dev/sdc1",
    ];
    let text = template(&dir, &args);
    assert_eq!(line_numbers(&text, &not_probed("localhost")).len(), 1);
    assert!(!text.contains(&not_probed(&host)), "{text}");
    let named = named(&text, "testcl");
    // localhost has one address; it is on the subnet of this host's loopback interface.
    let localhost_block = "NODE_NAME                 localhost\n";
    assert!(text.contains(localhost_block), "{text}");
    if this_host_heartbeats(&dir) == 1 {
        let config = parsed(&named);
        assert_eq!(config.name, "testcl");
        assert_eq!(config.lock, ClusterLock::LockLun);
        let names: Vec<&str> = config.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, [host.as_str(), "localhost"]);
        assert_eq!(
            config.nodes[0].lock_lun.as_deref(),
            Some(Path::new("/dev/disk/by-id/lock-a"))
        );
        assert_eq!(
            config.nodes[1].lock_lun.as_deref(),
            Some(Path::new("/dev/sdc1"))
        );
        let localhost = &config.nodes[1];
        assert_eq!(localhost.interfaces.len(), 1);
        assert!(localhost.interfaces[0].heartbeat_ips[0].is_loopback());
    } else {
        // With two heartbeat networks here and one address for localhost, the counts
        // differ: the one thing the operator must settle.
        let found = errors(&named);
        assert!(
            found
                .iter()
                .all(|d| d.parameter.as_deref() == Some("HEARTBEAT_IP")),
            "{}",
            lines(&found)
        );
    }
}

#[test]
fn a_quorum_server_cluster_parses() {
    let dir = directory("qs");
    let host = host_name();
    let text = template(
        &dir,
        &[
            "-n",
            &host,
            "-n",
            "127.0.0.2",
            "-q",
            "localhost",
            "127.0.0.1",
        ],
    );
    assert!(!text.contains("CLUSTER_LOCK_LUN "), "{text}");
    let named = named(&text, "qscl");
    if this_host_heartbeats(&dir) != 1 {
        return;
    }
    let config = parsed(&named);
    assert_eq!(
        config.lock,
        ClusterLock::QuorumServer {
            host: "localhost".into(),
            alternate: Some("127.0.0.1".into()),
            polling_interval: Duration::from_secs(300),
            timeout_extension: Duration::ZERO,
        }
    );
    let node = &config.nodes[1];
    assert_eq!(node.name, "127.0.0.2");
    assert_eq!(
        node.heartbeat_addresses().collect::<Vec<_>>(),
        ["127.0.0.2".parse::<std::net::IpAddr>().unwrap()]
    );
}

#[test]
fn a_name_that_does_not_resolve_fails_with_one_line() {
    let dir = directory("unresolved");
    let host = host_name();
    assert_one_line_failure(
        &run(
            &dir,
            &["-n", &host, "-n", "nosuch.invalid", "-C", "out.ascii"],
        ),
        &["cannot resolve node nosuch.invalid"],
    );
    assert!(!dir.join("out.ascii").exists());
    assert_one_line_failure(
        &run(&dir, &["-n", &host, "-q", "qs.invalid"]),
        &["cannot resolve quorum server qs.invalid"],
    );
}

#[test]
fn without_probing_every_node_gets_placeholders_to_fill_in() {
    let dir = directory("none");
    let args = [
        "-w",
        "none",
        "-n",
        "nosuch.invalid",
        "-L",
        "/dev/sdc1",
        "-n",
        "other.invalid",
        "-L",
        "/dev/sdd1",
    ];
    let text = template(&dir, &args);
    assert_eq!(
        line_numbers(&text, "  NETWORK_INTERFACE").len(),
        2,
        "{text}"
    );
    assert_eq!(line_numbers(&text, "    HEARTBEAT_IP").len(), 2, "{text}");
    // cmcheckconf refuses the placeholders, at their lines.
    let found = errors(&named(&text, "nonecl"));
    let mut placeholder_lines = line_numbers(&text, "  NETWORK_INTERFACE");
    placeholder_lines.extend(line_numbers(&text, "    HEARTBEAT_IP"));
    for line in &placeholder_lines {
        assert!(
            found
                .iter()
                .any(|d| d.line == *line && d.reason == "no value"),
            "line {line}: {}",
            lines(&found)
        );
    }
    // Given values, the file is whole.
    let mut address = 0;
    let filled: String = text
        .lines()
        .map(|line| match line {
            "  NETWORK_INTERFACE" => "  NETWORK_INTERFACE eth0\n".to_owned(),
            "    HEARTBEAT_IP" => {
                address += 1;
                format!("    HEARTBEAT_IP 10.0.0.{address}\n")
            }
            other => format!("{other}\n"),
        })
        .collect();
    let config = parsed(&named(&filled, "nonecl"));
    assert_eq!(config.nodes.len(), 2);
    assert_eq!(config.lock, ClusterLock::LockLun);
}

#[test]
fn a_node_on_no_subnet_of_this_host_gets_its_address_and_an_interface_to_give() {
    let dir = directory("other-subnet");
    // 198.51.100.0/24 is for documentation (RFC 5737): on no interface here.
    let text = template(
        &dir,
        &["-n", &host_name(), "-n", "198.51.100.7", "-q", "127.0.0.1"],
    );
    let block = format!(
        "NODE_NAME                 198.51.100.7\n{}\n  NETWORK_INTERFACE\n    \
         HEARTBEAT_IP          198.51.100.7\n",
        not_probed("198.51.100.7")
    );
    assert!(text.contains(&block), "{text}");
}

#[test]
fn never_overwrites_an_existing_output_file() {
    let dir = directory("output");
    let host = host_name();
    let output = run(&dir, &["-n", &host, "-C", "cluster.ascii"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    let written = fs::read_to_string(dir.join("cluster.ascii")).unwrap();
    assert_eq!(written, template(&dir, &["-n", &host]));

    fs::write(dir.join("cluster.ascii"), "CLUSTER_NAME edited\n").unwrap();
    assert_one_line_failure(
        &run(&dir, &["-n", &host, "-C", "cluster.ascii"]),
        &["cluster.ascii already exists"],
    );
    assert_eq!(
        fs::read_to_string(dir.join("cluster.ascii")).unwrap(),
        "CLUSTER_NAME edited\n"
    );
}

#[test]
fn a_two_node_cluster_without_a_lock_is_warned_about() {
    let dir = directory("no-lock");
    let host = host_name();
    let output = run(&dir, &["-n", &host, "-n", "localhost"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let warning = stderr(&output);
    assert_eq!(warning.lines().count(), 1, "{warning}");
    assert!(
        warning.starts_with("cmquerycl: warning: a two-node cluster needs a cluster lock"),
        "{warning}"
    );
    let text = stdout(&output);
    assert!(text.contains("# Cluster lock: none."), "{text}");
    // The parser, as cmcheckconf, refuses it.
    let found = errors(&named(&text, "twocl"));
    assert!(
        found
            .iter()
            .any(|d| d.reason.contains("needs a cluster lock")),
        "{}",
        lines(&found)
    );
    // One node, three nodes, or a lock: no warning.
    for args in [
        vec!["-n", &host],
        vec!["-w", "none", "-n", "a", "-n", "b", "-n", "c"],
        vec!["-w", "none", "-n", "a", "-n", "b", "-q", "qs"],
        vec!["-w", "none", "-L", "/dev/sdc1", "-n", "a", "-n", "b"],
    ] {
        template(&dir, &args);
    }
}

#[test]
fn each_lock_lun_goes_to_the_node_it_follows() {
    let dir = directory("pairing");
    let lock_luns = |args: &[&str]| -> Vec<String> {
        template(&dir, args)
            .lines()
            .filter_map(|l| l.strip_prefix("  CLUSTER_LOCK_LUN"))
            .map(|value| value.trim().to_owned())
            .collect()
    };
    assert_eq!(
        lock_luns(&["-w", "none", "-n", "a", "-L", "/dev/a", "-n", "b", "-L", "/dev/b"]),
        ["/dev/a", "/dev/b"]
    );
    // Any spelling of the flags; a -L before the first -n is every other node's.
    assert_eq!(
        lock_luns(&["-wnone", "-L/dev/all", "-na", "-nb", "-L/dev/b", "-n=c"]),
        ["/dev/all", "/dev/b", "/dev/all"]
    );
    // A -L after another flag is not a node's: a usage error.
    let output = run(&dir, &["-w", "none", "-n", "a", "-v", "-L", "/dev/a"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("-L /dev/a must come right after a -n NODE"),
        "{}",
        stderr(&output)
    );
    // One lock: -L and -q exclude each other.
    let output = run(&dir, &["-n", "a", "-L", "/dev/a", "-q", "qs"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    // Every node needs its path, an absolute one.
    assert_one_line_failure(
        &run(&dir, &["-w", "none", "-n", "a", "-L", "/dev/a", "-n", "b"]),
        &["node b has no path to the lock LUN that a uses"],
    );
    assert_one_line_failure(
        &run(&dir, &["-w", "none", "-n", "a", "-L", "dev/a"]),
        &["-L dev/a: not an absolute path"],
    );
}

#[test]
fn bad_requests_fail_with_one_line() {
    let dir = directory("requests");
    assert_one_line_failure(&run(&dir, &[]), &["give the nodes"]);
    assert_one_line_failure(
        &run(&dir, &["-w", "none", "-n", "a", "-n", "A"]),
        &["node A is given twice"],
    );
    assert_one_line_failure(
        &run(&dir, &["-w", "none", "-n", "bad/name"]),
        &["node name \"bad/name\""],
    );
    let host = host_name();
    let fully_qualified = format!("{host}.example.invalid");
    assert_one_line_failure(
        &run(&dir, &["-n", &host, "-n", &fully_qualified]),
        &["are both this host"],
    );
    // -k is accepted and changes nothing.
    assert_eq!(
        template(&dir, &["-k", "-w", "none", "-n", "a"]),
        template(&dir, &["-w", "none", "-n", "a"])
    );
    // -c needs the agent (the local socket, when CIMGUARD_URL is not set).
    assert_one_line_failure(
        &run(&dir, &["-c", "demo"]),
        &["cannot reach the local agent at", "set CIMGUARD_URL"],
    );
}

/// A port free now for UDP and TCP on the addresses of the demo's three nodes (127.0.0.K
/// and 127.0.1.K), and not `other`.
fn free_port(other: u16) -> u16 {
    loop {
        let port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|probe| probe.local_addr())
            .expect("a free UDP port")
            .port();
        let free = port != other
            && (1..=3).all(|k| {
                ["127.0.0", "127.0.1"].iter().all(|network| {
                    let address = format!("{network}.{k}:{port}");
                    UdpSocket::bind(&address).is_ok() && TcpListener::bind(&address).is_ok()
                })
            });
        if free {
            return port;
        }
    }
}

/// A running three-node `cimguard demo`, stopped (with its daemons) when dropped.
struct Demo {
    child: Child,
    dir: PathBuf,
}

impl Demo {
    /// Starts the demo in `dir` and waits until it is ready.
    fn start(dir: &Path) -> Demo {
        let heartbeat = free_port(0);
        let wbem = free_port(heartbeat);
        let mut child = Command::new(CIMGUARD)
            .arg("demo")
            .arg("--dir")
            .arg(dir)
            .args(["--nodes", "3"])
            .args(["--heartbeat-port", &heartbeat.to_string()])
            .args(["--wbem-port", &wbem.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cimguard demo starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let demo = Demo {
            child,
            dir: dir.to_path_buf(),
        };
        let (ready, wait) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if line.starts_with("cimguard demo ready") {
                    let _ = ready.send(());
                }
            }
        });
        // A generous bound for a loaded machine.
        wait.recv_timeout(Duration::from_secs(120))
            .expect("cimguard demo ready");
        demo
    }

    /// The agent's variables from demo.env (`export NAME='value'` lines).
    fn environment(&self) -> Vec<(String, String)> {
        let text = fs::read_to_string(self.dir.join("demo.env")).expect("demo.env");
        text.lines()
            .filter_map(|line| {
                let (name, value) = line.strip_prefix("export ")?.split_once('=')?;
                let value = value.strip_prefix('\'')?.strip_suffix('\'')?;
                name.starts_with("CIMGUARD_")
                    .then(|| (name.to_owned(), value.to_owned()))
            })
            .collect()
    }

    /// `program ARGS` as a client of the demo's agent.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .current_dir(&self.dir)
            .envs(self.environment())
            .output()
            .unwrap()
    }
}

impl Drop for Demo {
    /// Leaves nothing running: the demo and every daemon in a pid file.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for k in 1..=3 {
            let pid = fs::read_to_string(self.dir.join(format!("node{k}")).join("cmcld.pid"));
            if let Some(pid) = pid.ok().and_then(|p| p.trim().parse().ok()) {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

#[test]
fn adds_a_node_to_a_running_cluster() {
    let dir = directory("running");
    let demo = Demo::start(&dir);
    let lock_lun = dir.join("lock.lun").display().to_string();

    // Alone, -c writes the cluster's file as cmgetconf -c does.
    let output = demo.run(CMQUERYCL, &["-c", "demo"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let getconf = demo.run(CMGETCONF, &["-c", "demo"]);
    assert!(getconf.status.success(), "{}", stderr(&getconf));
    assert_eq!(stdout(&output), stdout(&getconf));
    let before = parsed(&stdout(&output));

    // With -n: the cluster's configuration, then the new node's block.
    let output = demo.run(
        CMQUERYCL,
        &["-c", "demo", "-n", "127.0.0.9", "-L", &lock_lun],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    let text = stdout(&output);
    assert!(
        text.starts_with("# Cluster configuration file of cluster demo, written by cmquerycl"),
        "{text}"
    );
    assert_eq!(line_numbers(&text, &not_probed("127.0.0.9")).len(), 1);
    // The demo's nodes have two heartbeat networks (lo and lo1); the new node's second is
    // the operator's to add.
    let found = errors(&text);
    assert!(
        found
            .iter()
            .all(|d| d.reason.contains("node 127.0.0.9 has 1 heartbeat")),
        "{}",
        lines(&found)
    );
    let completed = text.replace(
        &format!("    HEARTBEAT_IP          127.0.0.9\n  CLUSTER_LOCK_LUN        {lock_lun}\n"),
        &format!(
            "    HEARTBEAT_IP          127.0.0.9\n  NETWORK_INTERFACE lo1\n    HEARTBEAT_IP \
             127.0.1.9\n  CLUSTER_LOCK_LUN        {lock_lun}\n"
        ),
    );
    let after = parsed(&completed);
    assert_eq!(after.nodes.len(), 4);
    assert_eq!(after.nodes[..3], before.nodes[..]);
    assert_eq!(after.nodes[3].name, "127.0.0.9");
    assert_eq!(after.lock, ClusterLock::LockLun);
    assert_eq!(after.member_timeout, before.member_timeout);

    // Refusals: another cluster's name, a node of the cluster, a node without the lock.
    assert_one_line_failure(
        &demo.run(CMQUERYCL, &["-c", "other"]),
        &["this agent's cluster is demo, not other"],
    );
    assert_one_line_failure(
        &demo.run(
            CMQUERYCL,
            &["-c", "demo", "-w", "none", "-n", "node2", "-L", "/x"],
        ),
        &["node2 is a node of cluster demo already"],
    );
    assert_one_line_failure(
        &demo.run(CMQUERYCL, &["-c", "demo", "-n", "127.0.0.9"]),
        &["node 127.0.0.9 has no path to the lock LUN that node1 uses"],
    );
}
