//! `cmquerycl` as an operator runs it: the built binary's flags, refusals and output, read
//! back with the daemon's own parser, and `-c` against a running `cimguard demo` cluster.
//! What the file holds for a given host and given names is tested in src/querycl.rs, on a
//! synthetic host with a table of names; these tests hold on any host: one with no
//! interface but loopback, one called `localhost`.
//!
//! No name here is looked up: this host's name and its spellings are recognised without a
//! lookup, names under `.invalid` (and `invalid`) are never looked up, and the rest run
//! with `-w none`.

#[path = "../tests/src/ports.rs"]
mod ports;

use std::fs;
use std::io::{BufRead, BufReader};
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

/// A fresh directory for one test.
fn directory(test: &str) -> PathBuf {
    let directory =
        std::env::temp_dir().join(format!("cimguard-querycl-{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&directory);
    fs::create_dir_all(&directory).unwrap();
    directory
}

/// This host's name, as cmquerycl and cmcld read it.
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
    assert_one_line_exit(output, 1, parts);
}

/// The same with exit status 2: a request wrong as a whole (no nodes, a node name that
/// cannot be one, a node given twice, a lock LUN path no node takes or not absolute), a
/// usage error like the argument parser's own.
fn assert_one_line_usage_error(output: &Output, parts: &[&str]) {
    assert_one_line_exit(output, 2, parts);
}

fn assert_one_line_exit(output: &Output, code: i32, parts: &[&str]) {
    assert_eq!(output.status.code(), Some(code), "{}", stderr(output));
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

/// `text` with each interface and heartbeat address left to give given: NETWORK_INTERFACE
/// eth0 and HEARTBEAT_IP 10.0.0.K for the K-th.
fn filled(text: &str) -> String {
    let mut address = 0;
    text.lines()
        .map(|line| match line {
            "  NETWORK_INTERFACE" => "  NETWORK_INTERFACE eth0\n".to_owned(),
            "    HEARTBEAT_IP" => {
                address += 1;
                format!("    HEARTBEAT_IP 10.0.0.{address}\n")
            }
            other => format!("{other}\n"),
        })
        .collect()
}

#[test]
fn this_host_is_probed_and_written_under_its_host_name() {
    let dir = directory("this-host");
    let host = host_name();
    let text = template(&dir, &["-n", &host]);
    assert!(text.starts_with("# Cluster configuration file template, made by cmquerycl"));
    assert_eq!(
        line_numbers(&text, &format!("NODE_NAME                 {host}")).len(),
        1,
        "{text}"
    );
    assert!(!text.contains("# not probed"), "{text}");
    // The file parses, or, on a host with no interface up but loopback, wants the interface
    // that the file says is to be given, and nothing else.
    let no_interface = "  # no interface of this host is up with an IPv4 address: give \
                        NETWORK_INTERFACE and HEARTBEAT_IP";
    if text.contains(no_interface) {
        let found = errors(&text);
        assert!(
            found.iter().all(|d| d.reason == "no value"
                || d.reason.contains("no heartbeat address")
                || d.reason.starts_with("outside a NETWORK_INTERFACE")),
            "{}",
            lines(&found)
        );
        parsed(&filled(&text));
    } else {
        let config = parsed(&text);
        assert!(
            config.nodes[0]
                .heartbeat_addresses()
                .all(|a| a.is_ipv4() && !a.is_loopback()),
            "{config:?}"
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
    // Another spelling of this host's name (fully qualified or short, in capitals) gives
    // the same file: NODE_NAME is the host name cmcld looks itself up by.
    let other_spelling = match host.split_once('.') {
        Some((short, _)) => short.to_owned(),
        None => format!("{host}.example.invalid"),
    };
    for spelling in [other_spelling, host.to_ascii_uppercase()] {
        assert_eq!(template(&dir, &["-n", &spelling]), text, "-n {spelling}");
    }
}

#[test]
fn without_probing_every_node_gets_placeholders_to_fill_in() {
    let dir = directory("none");
    let args = [
        "-w",
        "none",
        "-n",
        "ftsys9",
        "-L",
        "/dev/sdc1",
        "-n",
        "ftsys10",
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
    for line in line_numbers(&text, "  NETWORK_INTERFACE") {
        assert!(
            found
                .iter()
                .any(|d| d.line == line && d.reason == "no value"),
            "line {line}: {}",
            lines(&found)
        );
    }
    // Given values, the file is whole.
    let config = parsed(&named(&filled(&text), "nonecl"));
    let names: Vec<&str> = config.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["ftsys9", "ftsys10"]);
    assert_eq!(config.lock, ClusterLock::LockLun);
}

#[test]
fn h_is_the_heartbeat_family_and_help_is_long_only() {
    let dir = directory("family");
    let text = template(
        &dir,
        &["-w", "none", "-h", "ipv6", "-n", "a", "-n", "b", "-n", "c"],
    );
    assert_eq!(
        line_numbers(&text, "HOSTNAME_ADDRESS_FAMILY   ANY").len(),
        1,
        "{text}"
    );
    let ipv4 = template(
        &dir,
        &["-w", "none", "-h", "ipv4", "-n", "a", "-n", "b", "-n", "c"],
    );
    assert_eq!(
        ipv4,
        template(&dir, &["-w", "none", "-n", "a", "-n", "b", "-n", "c"])
    );
    assert_eq!(
        line_numbers(&ipv4, "HOSTNAME_ADDRESS_FAMILY   IPV4").len(),
        1,
        "{ipv4}"
    );
    let help = run(&dir, &["--help"]);
    assert_eq!(help.status.code(), Some(0), "{}", stderr(&help));
    assert!(
        stdout(&help).contains("[-h ipv4|ipv6]"),
        "{}",
        stdout(&help)
    );
    for args in [&["-h"][..], &["-h", "any", "-n", "a"][..]] {
        let output = run(&dir, args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_eq!(stdout(&output), "");
    }
}

#[test]
fn a_name_that_does_not_resolve_fails_with_one_line() {
    let dir = directory("unresolved");
    let host = host_name();
    // `invalid` is never looked up (RFC 6761): no name server is asked.
    assert_one_line_failure(
        &run(&dir, &["-n", &host, "-n", "invalid", "-C", "out.ascii"]),
        &["cannot resolve node invalid"],
    );
    assert!(!dir.join("out.ascii").exists());
    assert_one_line_failure(
        &run(&dir, &["-n", &host, "-q", "qs.invalid"]),
        &["cannot resolve quorum server qs.invalid"],
    );
}

#[test]
fn never_overwrites_an_existing_output_file() {
    let dir = directory("output");
    let args = ["-w", "none", "-n", "ftsys9", "-C", "cluster.ascii"];
    let output = run(&dir, &args);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    let written = fs::read_to_string(dir.join("cluster.ascii")).unwrap();
    assert_eq!(written, template(&dir, &["-w", "none", "-n", "ftsys9"]));

    fs::write(dir.join("cluster.ascii"), "CLUSTER_NAME edited\n").unwrap();
    assert_one_line_failure(&run(&dir, &args), &["cluster.ascii already exists"]);
    assert_eq!(
        fs::read_to_string(dir.join("cluster.ascii")).unwrap(),
        "CLUSTER_NAME edited\n"
    );
}

#[test]
fn a_two_node_cluster_without_a_lock_is_warned_about() {
    let dir = directory("no-lock");
    let output = run(&dir, &["-w", "none", "-n", "a", "-n", "b"]);
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
    let found = errors(&named(&filled(&text), "twocl"));
    assert!(
        found
            .iter()
            .any(|d| d.reason.contains("needs a cluster lock")),
        "{}",
        lines(&found)
    );
    // One node, three nodes, or a lock: no warning.
    for args in [
        vec!["-w", "none", "-n", "a"],
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
    assert_one_line_usage_error(
        &run(&dir, &["-w", "none", "-n", "a", "-L", "dev/a"]),
        &["-L dev/a: not an absolute path"],
    );
}

#[test]
fn bad_requests_fail_with_one_line() {
    let dir = directory("requests");
    assert_one_line_usage_error(&run(&dir, &[]), &["give the nodes"]);
    assert_one_line_usage_error(
        &run(&dir, &["-w", "none", "-n", "a", "-n", "A"]),
        &["node A is given twice"],
    );
    assert_one_line_usage_error(
        &run(&dir, &["-w", "none", "-n", "bad/name"]),
        &["node name \"bad/name\""],
    );
    // Another node by full domain name or address: refused before any lookup.
    assert_one_line_failure(
        &run(&dir, &["-w", "none", "-n", "ftsys9.example.invalid"]),
        &["node ftsys9.example.invalid: a full domain name; give the host name alone (ftsys9)"],
    );
    assert_one_line_failure(
        &run(&dir, &["-w", "none", "-n", "127.0.0.2"]),
        &["node 127.0.0.2: an address, not a host name"],
    );
    // This host named twice.
    let host = host_name();
    let other_spelling = match host.split_once('.') {
        Some((short, _)) => short.to_owned(),
        None => format!("{host}.example.invalid"),
    };
    assert_one_line_failure(
        &run(&dir, &["-n", &host, "-n", &other_spelling]),
        &["are both this host"],
    );
    // -k is accepted and changes nothing.
    assert_eq!(
        template(&dir, &["-k", "-w", "none", "-n", "a"]),
        template(&dir, &["-w", "none", "-n", "a"])
    );
    // -c needs the agent (the local socket, when CIMGUARD_URL is not set) ...
    assert_one_line_failure(
        &run(&dir, &["-c", "demo"]),
        &["cannot reach the local agent at", "set CIMGUARD_URL"],
    );
    // ... but a -L that no node would take is refused before it is asked.
    assert_one_line_usage_error(
        &run(&dir, &["-c", "demo", "-L", "/dev/sdc1"]),
        &["-L /dev/sdc1 without -n"],
    );
}

/// A running three-node `cimguard demo`, stopped (with its daemons) when dropped.
struct Demo {
    child: Child,
    dir: PathBuf,
}

impl Demo {
    /// Starts the demo in `dir` and waits until it is ready.
    fn start(dir: &Path) -> Demo {
        let heartbeat = ports::free_port();
        let wbem = ports::free_port();
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
fn the_named_nodes_are_a_running_cluster_s_new_node_set() {
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

    // Its nodes named again, and a new one: the cluster's blocks, then the new node's.
    let args = [
        "-c", "demo", "-w", "none", "-n", "node1", "-n", "node2", "-n", "node3", "-n", "node4",
        "-L", &lock_lun,
    ];
    let output = demo.run(CMQUERYCL, &args);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    let text = stdout(&output);
    assert!(
        text.starts_with(
            "# Cluster configuration file of cluster demo, written by cmquerycl -c demo:\n\
             # the configuration in effect, with node node4 added.\n"
        ),
        "{text}"
    );
    // The demo's nodes have two heartbeat networks (lo and lo1): the new node's are the
    // operator's to give.
    let completed = text.replace(
        "  NETWORK_INTERFACE\n    HEARTBEAT_IP\n",
        "  NETWORK_INTERFACE lo\n    HEARTBEAT_IP 127.0.0.9\n  NETWORK_INTERFACE lo1\n    \
         HEARTBEAT_IP 127.0.1.9\n",
    );
    let after = parsed(&completed);
    assert_eq!(after.nodes.len(), 4);
    assert_eq!(after.nodes[..3], before.nodes[..]);
    assert_eq!(after.nodes[3].name, "node4");
    assert_eq!(after.lock, ClusterLock::LockLun);
    assert_eq!(after.member_timeout, before.member_timeout);
    assert_eq!(after.access, before.access);

    // A node not named is left out, and standard error says so whatever -v.
    let output = demo.run(
        CMQUERYCL,
        &["-c", "demo", "-w", "none", "-n", "node1", "-n", "node2"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        "cmquerycl: node node3 of cluster demo is not named with -n: it is left out of the \
         file, and cmapplyconf of the file removes it from the cluster\n"
    );
    let after = parsed(&stdout(&output));
    assert_eq!(after.nodes[..], before.nodes[..2]);

    // Refusals: another cluster's name, no node of the cluster, a node without the lock.
    assert_one_line_failure(
        &demo.run(CMQUERYCL, &["-c", "other"]),
        &["this agent's cluster is demo, not other"],
    );
    assert_one_line_failure(
        &demo.run(
            CMQUERYCL,
            &["-c", "demo", "-w", "none", "-n", "node4", "-L", "/x"],
        ),
        &["no node of cluster demo (node1, node2, node3) is named"],
    );
    assert_one_line_failure(
        &demo.run(
            CMQUERYCL,
            &["-c", "demo", "-w", "none", "-n", "node1", "-n", "node4"],
        ),
        &["node node4 has no path to the lock LUN that node1 uses"],
    );
}
