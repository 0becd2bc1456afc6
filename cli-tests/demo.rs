//! `cimguard demo` as someone trying cimguard runs it: the built binary starting a
//! three-node cluster on loopback addresses in a temporary directory, a node killed with
//! kill -9 and started again by the demo, SIGTERM halting everything; and the refusals (a
//! port in use, a second demo on the same directory, no nodes) before any node starts.

#[path = "../tests/src/ports.rs"]
mod ports;

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

const CIMGUARD: &str = env!("CARGO_BIN_EXE_cimguard");
/// The demo's nodes in these tests.
const NODES: usize = 3;
/// Generous bounds for a loaded machine; timings are the benchmarks' business.
const READY_BOUND: Duration = Duration::from_secs(90);
/// The demo's restart delay (10 s) and a re-formation, with room.
const RESTART_BOUND: Duration = Duration::from_secs(60);
/// The demo's own halt bound (30 s) and its kills, with room.
const EXIT_BOUND: Duration = Duration::from_secs(60);
/// How often a condition is looked at.
const POLL: Duration = Duration::from_millis(50);

/// A fresh directory for one test.
fn directory(test: &str) -> PathBuf {
    let directory =
        std::env::temp_dir().join(format!("cimguard-demo-{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&directory);
    directory
}

/// `cimguard demo --dir DIR --nodes 3 --heartbeat-port HEARTBEAT --wbem-port WBEM`.
fn demo_command(dir: &Path, heartbeat: u16, wbem: u16) -> Command {
    let mut command = Command::new(CIMGUARD);
    command
        .arg("demo")
        .arg("--dir")
        .arg(dir)
        .args(["--nodes", &NODES.to_string()])
        .args(["--heartbeat-port", &heartbeat.to_string()])
        .args(["--wbem-port", &wbem.to_string()])
        .stdin(Stdio::null());
    command
}

/// The pid in node `k`'s pid file.
fn pid(dir: &Path, k: usize) -> Option<i32> {
    fs::read_to_string(dir.join(format!("node{k}")).join("cmcld.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether process `pid` exists and is not a zombie.
fn running(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|end| stat[end + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

/// A running `cimguard demo` whose output is read as it comes.
struct Demo {
    child: Child,
    dir: PathBuf,
    lines: mpsc::Receiver<String>,
    /// The standard output lines read so far.
    seen: Vec<String>,
    /// Standard error, whole once the demo has ended.
    stderr: Option<JoinHandle<String>>,
}

impl Demo {
    fn start(dir: &Path, heartbeat: u16, wbem: u16) -> Demo {
        let mut child = demo_command(dir, heartbeat, wbem)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cimguard demo starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        let mut stderr = child.stderr.take().expect("piped stderr");
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Demo {
            child,
            dir: dir.to_path_buf(),
            lines,
            seen: Vec::new(),
            stderr: Some(stderr),
        }
    }

    /// Reads standard output until a line starting with `prefix` (returned), within `bound`;
    /// panics with what the demo said otherwise.
    fn wait_for_line(&mut self, prefix: &str, bound: Duration) -> String {
        let deadline = Instant::now() + bound;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no {prefix:?} within {bound:?}\n{}", self.transcript());
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.child.wait();
                    panic!("the demo ended without {prefix:?}\n{}", self.transcript());
                }
            }
        }
    }

    /// Waits at most `bound` for the demo to end; its status.
    fn wait_exit(&mut self, bound: Duration) -> ExitStatus {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.child.try_wait().expect("the demo's status") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the demo did not end within {bound:?}\n{}",
                self.transcript()
            );
            thread::sleep(POLL);
        }
    }

    /// What the demo said: standard output so far, and standard error once it has ended.
    fn transcript(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        let ended = matches!(self.child.try_wait(), Ok(Some(_)));
        let stderr = match self.stderr.take() {
            Some(handle) if ended => handle.join().unwrap_or_default(),
            other => {
                self.stderr = other;
                String::from("(still running)")
            }
        };
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{stderr}",
            self.seen.join("\n")
        )
    }
}

impl Drop for Demo {
    /// A failed test leaves nothing running: the demo and every daemon in a pid file.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for k in 1..=NODES {
            if let Some(pid) = pid(&self.dir, k) {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

#[test]
fn runs_a_cluster_restarts_a_killed_node_and_halts_on_sigterm() {
    let dir = directory("cluster");
    let heartbeat = ports::free_port();
    let wbem = ports::free_port();
    let mut demo = Demo::start(&dir, heartbeat, wbem);
    demo.wait_for_line("cimguard demo ready", READY_BOUND);
    let pids: Vec<i32> = (1..=NODES)
        .map(|k| pid(&dir, k).unwrap_or_else(|| panic!("no pid file for node{k}")))
        .collect();
    for (k, pid) in (1..).zip(&pids) {
        assert!(running(*pid), "node{k}'s daemon (pid {pid}) does not run");
    }

    // demo.env: five exported, quoted variables; the authority bundle exists.
    let env = fs::read_to_string(dir.join("demo.env")).expect("demo.env");
    let lines: Vec<&str> = env.lines().collect();
    assert_eq!(lines.len(), 5, "{env}");
    let names = [
        "CIMGUARD_URL",
        "CIMGUARD_USER",
        "CIMGUARD_PASSWORD",
        "CIMGUARD_CA",
        "PATH",
    ];
    for (line, name) in lines.iter().zip(names) {
        assert!(line.starts_with(&format!("export {name}='")), "{env}");
    }
    assert_eq!(
        lines[0],
        format!("export CIMGUARD_URL='https://127.0.0.1:{wbem}'")
    );
    assert_eq!(lines[1], "export CIMGUARD_USER='admin'");
    let passwords = fs::read_to_string(dir.join("passwords")).expect("the passwords file");
    let admin = passwords
        .lines()
        .find_map(|line| line.strip_prefix("admin:"))
        .expect("admin's password");
    assert_eq!(lines[2], format!("export CIMGUARD_PASSWORD='{admin}'"));
    let ca = lines[3]
        .strip_prefix("export CIMGUARD_CA='")
        .and_then(|rest| rest.strip_suffix('\''))
        .expect("a quoted path");
    assert!(
        Path::new(ca).is_absolute() && Path::new(ca).is_file(),
        "{ca}"
    );
    assert!(lines[4].ends_with(":\"$PATH\""), "{env}");

    // The quick start as written: source demo.env, then the cm* commands on PATH.
    let quick_start = Command::new("sh")
        .arg("-c")
        .arg(format!(
            ". {}/demo.env && cmviewcl -v && cmviewcl -f line -p dbpkg && cmgetresource -r sfm_disk",
            dir.display()
        ))
        .env_remove("REQUESTS_CA_BUNDLE")
        .output()
        .expect("sh runs");
    let printed = String::from_utf8_lossy(&quick_start.stdout);
    assert!(
        quick_start.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&quick_start.stderr)
    );
    for wanted in [
        "CLUSTER        STATUS\ndemo           up\n",
        "    dbpkg          up               running          enabled      node1\n",
        "MULTI_NODE_PACKAGES",
        "\nstatus=up\n",
        "\nup\n",
    ] {
        assert!(
            printed.contains(wanted),
            "the quick start lacks {wanted:?}:\n{printed}"
        );
    }

    // A second demo on the same directory is refused, and leaves the first alone.
    let second = demo_command(&dir, heartbeat, wbem)
        .output()
        .expect("a second demo runs");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("another cimguard demo runs on"), "{stderr}");
    assert_eq!(pid(&dir, 1), Some(pids[0]));

    // kill -9 node1 (it runs dbpkg), then the printed line that watches from another node:
    // dbpkg runs elsewhere; the demo starts node1 again, under a new pid.
    let transcript = demo.transcript();
    let watch = transcript
        .lines()
        .find(|l| l.trim_start().starts_with("CIMGUARD_URL=https://") && l.contains(" cmviewcl"))
        .unwrap_or_else(|| panic!("no line to watch from another node:\n{transcript}"))
        .trim()
        .to_owned();
    kill(Pid::from_raw(pids[0]), Signal::SIGKILL).expect("kill -9 node1");
    let deadline = Instant::now() + RESTART_BOUND;
    loop {
        let watched = Command::new("sh")
            .arg("-c")
            .arg(format!(". {}/demo.env && {watch}", dir.display()))
            .env_remove("REQUESTS_CA_BUNDLE")
            .output()
            .expect("sh runs");
        let printed = String::from_utf8_lossy(&watched.stdout);
        // Node1 shows failed first; dbpkg is briefly down and unowned while it fails over.
        let dbpkg_elsewhere = printed
            .contains("    dbpkg          up               running          enabled      node")
            && !printed.contains("enabled      node1\n");
        if watched.status.success()
            && printed.contains("node1          down         failed")
            && dbpkg_elsewhere
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{watch} did not show node1 failed and dbpkg elsewhere:\n{printed}{}",
            String::from_utf8_lossy(&watched.stderr)
        );
        thread::sleep(POLL);
    }
    let restarted = demo.wait_for_line("started node1 again", RESTART_BOUND);
    let deadline = Instant::now() + RESTART_BOUND;
    let new_pid = loop {
        match pid(&dir, 1) {
            Some(new) if new != pids[0] && running(new) => break new,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "{restarted}, but node1's pid file names no new daemon\n{}",
            demo.transcript()
        );
        thread::sleep(POLL);
    };

    // The printed halt-and-run line, as written, once node1 is back in the cluster: node1
    // shows halted in between (its daemon stays, the same pid), then runs again.
    let node1_up = || {
        let view = Command::new("sh")
            .arg("-c")
            .arg(format!(". {}/demo.env && cmviewcl", dir.display()))
            .env_remove("REQUESTS_CA_BUNDLE")
            .output()
            .expect("sh runs");
        String::from_utf8_lossy(&view.stdout).contains("node1          up           running")
    };
    let deadline = Instant::now() + RESTART_BOUND;
    while !node1_up() {
        assert!(Instant::now() < deadline, "node1 did not join again");
        thread::sleep(POLL);
    }
    let halt_and_run = transcript
        .lines()
        .find(|l| l.trim_start().starts_with("cmhaltnode -f;"))
        .unwrap_or_else(|| panic!("no halt-and-run line:\n{transcript}"))
        .trim()
        .to_owned();
    let ran = Command::new("sh")
        .arg("-c")
        .arg(format!(". {}/demo.env && {halt_and_run}", dir.display()))
        .env_remove("REQUESTS_CA_BUNDLE")
        .output()
        .expect("sh runs");
    let printed = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success() && printed.contains("node1          down         halted"),
        "{halt_and_run}:\n{printed}{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let deadline = Instant::now() + RESTART_BOUND;
    while !node1_up() {
        assert!(
            Instant::now() < deadline,
            "node1 did not run again:\n{printed}"
        );
        thread::sleep(POLL);
    }
    assert_eq!(pid(&dir, 1), Some(new_pid));

    // SIGTERM: the cluster halts, every daemon ends, the demo exits 0.
    let demo_pid = i32::try_from(demo.child.id()).expect("a pid");
    kill(Pid::from_raw(demo_pid), Signal::SIGTERM).expect("SIGTERM to the demo");
    let status = demo.wait_exit(EXIT_BOUND);
    assert!(status.success(), "{status}\n{}", demo.transcript());
    for pid in pids.iter().chain([&new_pid]) {
        assert!(!running(*pid), "daemon {pid} still runs after the demo");
    }
    for k in 1..=NODES {
        assert_eq!(pid(&dir, k), None, "node{k}'s pid file is left");
    }
    drop(demo);
    fs::remove_dir_all(&dir).expect("the demo directory is removed");
}

fn assert_refused(output: &Output, code: i32, message: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(message), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn refuses_a_port_in_use_before_starting_any_node() {
    let dir = directory("port");
    let heartbeat = ports::free_port();
    let wbem = ports::free_port();
    let _taken = TcpListener::bind(("127.0.0.2", wbem)).expect("node2's WBEM address");
    let output = demo_command(&dir, heartbeat, wbem)
        .output()
        .expect("the demo runs");
    assert_refused(
        &output,
        1,
        &format!("cimguard demo: error: 127.0.0.2:{wbem} is already in use"),
    );
    assert_eq!(String::from_utf8_lossy(&output.stderr).lines().count(), 1);
    for k in 1..=NODES {
        assert_eq!(pid(&dir, k), None, "node{k} was started");
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn refuses_a_cluster_of_no_nodes() {
    let dir = directory("none");
    let output = Command::new(CIMGUARD)
        .arg("demo")
        .arg("--dir")
        .arg(&dir)
        .args(["--nodes", "0"])
        .stdin(Stdio::null())
        .output()
        .expect("the demo runs");
    assert_refused(&output, 2, "invalid value '0' for '--nodes <N>'");
    assert!(!dir.exists(), "{} was created", dir.display());
}
