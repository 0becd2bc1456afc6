//! The pieces of the failover benchmark (`tests/benches/failover.rs`): the faults it injects
//! into node 3 of a three-node cluster in network namespaces, the samples it takes and their
//! summary, its case selection, and a corosync cluster in namespaces of the same shape, so the
//! same harness measures both engines. The soak benchmark shares its release `cmcld`
//! ([`cmcld_program`]) and its machine line ([`machine`]).
//!
//! Node 3 is always the faulty node and nodes 1 and 2 the survivors:
//!
//! ```text
//!   n1 ──┐                         kill -9 / SIGSTOP      n3's daemon
//!   n2 ──┼── hub (br0, br1) ── n3  partition            n3 <-/-> n1, n2 (nftables, both ways)
//!        │                         asymmetric           n3 <-/-  n1, n2 (n3's input only)
//! ```
//!
//! Corosync needs its own `/run` per instance (its pid file is `/var/run/corosync.pid`), so
//! each one runs under `sh -c 'mount -t tmpfs tmpfs /run; exec corosync -f'` in the mount
//! namespace `ip netns exec` makes; its IPC sockets are abstract, hence per network namespace,
//! so `corosync-quorumtool` run with `ip netns exec` asks that node's corosync.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::agent::BIN_DIR_VARIABLE;
use crate::cluster::TestCluster;
use crate::netns::Namespaces;
use crate::workspace_root;

/// The faulty node.
pub const VICTIM: usize = 3;
/// The nodes that survive the fault.
pub const SURVIVORS: [usize; 2] = [1, 2];
/// How often the harness polls the survivors.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The environment variable holding the number of runs per case (5 by default).
pub const RUNS_VARIABLE: &str = "FAILOVER_BENCH_RUNS";
/// The environment variable selecting cases: comma-separated parts of case names (a case runs
/// when its name contains one of them), e.g. `cmcld-fast,corosync-token1000-kill`.
pub const CASES_VARIABLE: &str = "FAILOVER_BENCH_CASES";

/// The environment variable naming a folder to copy every node's log into at the end of each
/// cluster's life (`<system>-<profile>-n<k>.log`, appended), for a closer look.
pub const LOG_DIR_VARIABLE: &str = "FAILOVER_BENCH_LOG_DIR";

/// Appends `text` to `<$FAILOVER_BENCH_LOG_DIR>/<name>` when the variable is set.
pub fn keep_log(name: &str, text: &str) {
    let Some(dir) = std::env::var_os(LOG_DIR_VARIABLE) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(mut file) = File::options()
        .create(true)
        .append(true)
        .open(dir.join(name))
    {
        use std::io::Write;
        let _ = file.write_all(text.as_bytes());
    }
}

/// A fault injected into node 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// kill -9 of the node's daemon.
    Kill,
    /// SIGSTOP of the node's daemon.
    Stop,
    /// Node 3 and nodes 1 and 2 drop what they receive from each other, on both networks.
    Partition,
    /// Node 3 drops what it receives from nodes 1 and 2; they still hear it.
    Asymmetric,
}

impl Fault {
    /// Every fault, in the order the tables show them.
    pub const ALL: [Fault; 4] = [
        Fault::Kill,
        Fault::Stop,
        Fault::Partition,
        Fault::Asymmetric,
    ];

    /// The fault's name in case names and tables.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Stop => "stop",
            Fault::Partition => "partition",
            Fault::Asymmetric => "asymmetric",
        }
    }

    /// Injects the fault: `pid` is node 3's daemon. Returns once the fault is in place.
    pub fn inject(self, namespaces: &Namespaces, pid: u32) -> Result<(), String> {
        let pid = Pid::from_raw(i32::try_from(pid).map_err(|e| e.to_string())?);
        let everyone_else: Vec<usize> = SURVIVORS.to_vec();
        match self {
            Fault::Kill => kill(pid, Signal::SIGKILL).map_err(|e| format!("kill -9: {e}")),
            Fault::Stop => kill(pid, Signal::SIGSTOP).map_err(|e| format!("kill -STOP: {e}")),
            Fault::Partition => {
                namespaces
                    .set_input_rules(VICTIM, &[namespaces.drop_from(&everyone_else, &[0, 1])])?;
                for k in SURVIVORS {
                    namespaces.set_input_rules(k, &[namespaces.drop_from(&[VICTIM], &[0, 1])])?;
                }
                Ok(())
            }
            Fault::Asymmetric => {
                namespaces.set_input_rules(VICTIM, &[namespaces.drop_from(&everyone_else, &[0, 1])])
            }
        }
    }
}

/// Removes every node's nftables rules.
pub fn heal(namespaces: &Namespaces, nodes: usize) -> Result<(), String> {
    for k in 1..=nodes {
        namespaces.set_input_rules(k, &[])?;
    }
    Ok(())
}

/// What one run measured, from the injection of the fault.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Until both survivors' status showed the membership without node 3 (None: never, within
    /// the run's deadline).
    pub membership: Option<Duration>,
    /// Until both survivors' logs show that membership (corosync only: its log lines carry
    /// millisecond timestamps, so this figure owes nothing to the polling).
    pub membership_logged: Option<Duration>,
    /// Until a survivor logged that node 3's packages may be taken over (its fence wait
    /// over; cmcld only).
    pub takeover_allowed: Option<Duration>,
    /// Until node 3's package was up on a survivor (None: never, or no package measured).
    pub package: Option<Duration>,
    /// Until node 3's daemon had ended (killed, or fenced by its safety timer).
    pub victim_gone: Option<Duration>,
    /// Until node 3's service process had ended.
    pub service_gone: Option<Duration>,
    /// Anything odd: a late or missing step, an extra re-formation, a clean-up the harness
    /// had to do itself.
    pub notes: Vec<String>,
}

/// The summary of one measure over a case's runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// The median (nearest rank: the lower of the two middle values for an even count).
    pub p50: Option<Duration>,
    /// The largest value.
    pub max: Option<Duration>,
    /// Runs with a value.
    pub measured: usize,
    /// Runs in all.
    pub runs: usize,
}

impl Summary {
    /// The summary of `values` (None: a run that never got there).
    pub fn of(values: &[Option<Duration>]) -> Summary {
        let mut measured: Vec<Duration> = values.iter().flatten().copied().collect();
        measured.sort();
        let p50 = if measured.is_empty() {
            None
        } else {
            Some(measured[(measured.len() - 1) / 2])
        };
        Summary {
            p50,
            max: measured.last().copied(),
            measured: measured.len(),
            runs: values.len(),
        }
    }

    /// `p50 / max` in seconds, with the number of failed runs when there are any.
    pub fn cell(&self) -> String {
        let (Some(p50), Some(max)) = (self.p50, self.max) else {
            return format!("none of {} converged", self.runs);
        };
        let mut cell = format!("{} / {}", seconds(p50), seconds(max));
        if self.measured < self.runs {
            cell.push_str(&format!(
                " ({} of {} failed)",
                self.runs - self.measured,
                self.runs
            ));
        }
        cell
    }
}

/// A duration in seconds with two decimals.
pub fn seconds(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64())
}

/// An optional duration in seconds, `-` when absent.
pub fn maybe_seconds(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "-".to_owned(), seconds)
}

/// The number of runs per case: `$FAILOVER_BENCH_RUNS`, else 5.
pub fn runs() -> usize {
    std::env::var(RUNS_VARIABLE)
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .filter(|runs| *runs > 0)
        .unwrap_or(5)
}

/// Whether case `name` runs: every case without `$FAILOVER_BENCH_CASES`, else those whose
/// name contains one of its comma-separated parts.
pub fn selected(name: &str) -> bool {
    selected_by(CASES_VARIABLE, name)
}

/// Whether case `name` runs under the case filter in environment variable `variable`: every
/// case when it is unset or empty, else those whose name contains one of its comma-separated
/// parts (the failover and soak benches).
pub fn selected_by(variable: &str, name: &str) -> bool {
    match std::env::var(variable) {
        Ok(filter) if !filter.trim().is_empty() => filter
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .any(|part| name.contains(part)),
        _ => true,
    }
}

/// A cluster of `nodes` nodes in network namespaces with MEMBER_TIMEOUT `member_timeout`, its
/// file checked as cmcheckconf would, package `name` (`text`) added and `program` as every
/// node's daemon, started; or why the file is refused.
pub fn started_in_namespaces(
    nodes: usize,
    member_timeout: Duration,
    (name, text): (&str, &str),
    program: &Path,
) -> Result<TestCluster, String> {
    let mut cluster = TestCluster::configure_in_namespaces(nodes, member_timeout, "", "");
    let file = cluster.dir(1).join("cluster.ascii");
    let contents = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
    if let Err(findings) = cimguard_cluster::config::cluster::parse(&contents, "cluster.ascii") {
        let reasons: Vec<String> = findings.iter().map(ToString::to_string).collect();
        return Err(format!(
            "the cluster file is refused: {}",
            reasons.join("; ")
        ));
    }
    cluster.add_package(name, text);
    cluster.use_program(program);
    cluster.start_all();
    Ok(cluster)
}

/// Whether process `pid` still runs (a zombie does not: it waits only to be reaped).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|end| stat[end + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The release `cmcld`: in `$CIMGUARD_BIN_DIR`, else `target/release` (or under
/// `$CARGO_TARGET_DIR`). Warns when it is older than the sources it is built from.
pub fn cmcld_program() -> Result<PathBuf, String> {
    let folder = match (
        std::env::var_os(BIN_DIR_VARIABLE),
        std::env::var_os("CARGO_TARGET_DIR"),
    ) {
        (Some(folder), _) => PathBuf::from(folder),
        (None, Some(target)) => workspace_root().join(target).join("release"),
        (None, None) => workspace_root().join("target/release"),
    };
    let program = folder.join("cmcld");
    let built = std::fs::metadata(&program)
        .and_then(|m| m.modified())
        .map_err(|_| {
            format!(
                "no release cmcld at {}: run `cargo build --release --bin cmcld` first (or set \
                 {BIN_DIR_VARIABLE})",
                program.display()
            )
        })?;
    let root = workspace_root();
    let newest = [root.join("cluster/src"), root.join("src")]
        .iter()
        .filter_map(|dir| newest_file(dir))
        .max();
    if let Some((modified, path)) = newest {
        if modified > built {
            println!(
                "WARNING: {} is newer than {}: rebuild with `cargo build --release --bin cmcld`",
                path.display(),
                program.display()
            );
        }
    }
    Ok(program)
}

/// The most recently modified file under `dir`.
fn newest_file(dir: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let candidate = if path.is_dir() {
            newest_file(&path)
        } else {
            entry.metadata().ok()?.modified().ok().map(|t| (t, path))
        };
        if let Some(candidate) = candidate {
            if newest.as_ref().is_none_or(|n| candidate.0 > n.0) {
                newest = Some(candidate);
            }
        }
    }
    newest
}

/// The machine: cores, kernel and load average, for a benchmark's heading.
pub fn machine() -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!(
        "{cores} cores, Linux {}, load average {}",
        kernel.trim(),
        load_average()
    )
}

/// The load average over 1, 5 and 15 minutes.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Polls `condition` every [`POLL_INTERVAL`] until it holds (true) or `deadline` passes
/// (false).
pub fn poll_until(deadline: Instant, mut condition: impl FnMut() -> bool) -> bool {
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// A corosync 3 cluster of three nodes (knet on both of the namespaces' networks, votequorum),
/// one process per node namespace. Dropping it kills every corosync and removes the
/// namespaces.
pub struct Corosync {
    children: Vec<Option<Child>>,
    directory: tempfile::TempDir,
    // Dropped after the children are killed (fields drop after `Drop::drop`).
    namespaces: Namespaces,
}

impl Corosync {
    /// The corosync version line, or None when corosync is not installed.
    pub fn version() -> Option<String> {
        let output = Command::new("corosync").arg("-v").output().ok()?;
        if !output.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&output.stdout);
        Some(text.lines().next().unwrap_or_default().trim().to_owned())
    }

    /// Writes the configuration of three nodes in new namespaces, with the `totem` lines
    /// `totem_extra` (e.g. `token: 1000`); starts nothing.
    pub fn configure(totem_extra: &str) -> Result<Corosync, String> {
        let namespaces = Namespaces::create(3, 2)?;
        let directory = tempfile::tempdir().map_err(|e| e.to_string())?;
        let key = directory.path().join("authkey");
        std::fs::write(&key, read_random(256)?).map_err(|e| e.to_string())?;
        set_mode(&key, 0o400)?;
        let mut nodelist = String::new();
        for k in 1..=3 {
            nodelist.push_str(&format!(
                "  node {{\n    ring0_addr: {}\n    ring1_addr: {}\n    name: n{k}\n    \
                 nodeid: {k}\n  }}\n",
                namespaces.address(k, 0),
                namespaces.address(k, 1)
            ));
        }
        for k in 1..=3 {
            let dir = directory.path().join(format!("n{k}"));
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let text = format!(
                "totem {{\n  version: 2\n  cluster_name: cgbench\n  transport: knet\n  \
                 crypto_cipher: aes256\n  crypto_hash: sha256\n  keyfile: {}\n{totem_extra}}}\n\
                 nodelist {{\n{nodelist}}}\n\
                 quorum {{\n  provider: corosync_votequorum\n}}\n\
                 logging {{\n  to_logfile: yes\n  logfile: {}\n  to_stderr: no\n  \
                 to_syslog: no\n  timestamp: hires\n}}\n\
                 system {{\n  state_dir: {}\n}}\n",
                key.display(),
                dir.join("corosync.log").display(),
                dir.display()
            );
            std::fs::write(dir.join("corosync.conf"), text).map_err(|e| e.to_string())?;
        }
        Ok(Corosync {
            children: (0..3).map(|_| None).collect(),
            directory,
            namespaces,
        })
    }

    /// The namespaces.
    pub fn namespaces(&self) -> &Namespaces {
        &self.namespaces
    }

    /// Node `k`'s folder (configuration, log, state).
    pub fn dir(&self, k: usize) -> PathBuf {
        self.directory.path().join(format!("n{k}"))
    }

    /// Starts node `k`'s corosync in the foreground of a child process (its standard output
    /// and error go to `stdout.log` in its folder).
    pub fn start(&mut self, k: usize) -> Result<(), String> {
        let dir = self.dir(k);
        let out = File::options()
            .create(true)
            .append(true)
            .open(dir.join("stdout.log"))
            .map_err(|e| e.to_string())?;
        let script = format!(
            "mount -t tmpfs tmpfs /run && exec corosync -f -c {}",
            dir.join("corosync.conf").display()
        );
        let child = self
            .namespaces
            .command(k, Path::new("sh"))
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone().map_err(|e| e.to_string())?))
            .stderr(Stdio::from(out))
            .spawn()
            .map_err(|e| format!("corosync: {e}"))?;
        self.children[k - 1] = Some(child);
        Ok(())
    }

    /// The process id of node `k`'s corosync (None: not started).
    pub fn pid(&self, k: usize) -> Option<u32> {
        self.children[k - 1].as_ref().map(Child::id)
    }

    /// Sends `signal` to node `k`'s corosync.
    pub fn signal(&self, k: usize, signal: Signal) -> Result<(), String> {
        let pid = self.pid(k).ok_or("not started")?;
        let pid = Pid::from_raw(i32::try_from(pid).map_err(|e| e.to_string())?);
        kill(pid, signal).map_err(|e| format!("kill -{signal}: {e}"))
    }

    /// Kills node `k`'s corosync (a stopped one too) and reaps it.
    pub fn stop(&mut self, k: usize) {
        if let Some(mut child) = self.children[k - 1].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether node `k`'s corosync has ended (reaped if so).
    pub fn exited(&mut self, k: usize) -> bool {
        self.children[k - 1]
            .as_mut()
            .is_none_or(|child| child.try_wait().ok().flatten().is_some())
    }

    /// The node ids in node `k`'s quorum membership (`corosync-quorumtool -l`), or None when
    /// its corosync does not answer.
    pub fn members(&self, k: usize) -> Option<Vec<u32>> {
        let output = self
            .namespaces
            .command(k, Path::new("corosync-quorumtool"))
            .arg("-l")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !output.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&output.stdout);
        // After the "Nodeid Votes Name" header, one line per member, its id first.
        let mut ids: Vec<u32> = text
            .lines()
            .filter_map(|line| line.split_whitespace().next()?.parse().ok())
            .collect();
        ids.sort_unstable();
        Some(ids)
    }

    /// A cmap key's value on node `k` (`corosync-cmapctl -g`), e.g. `runtime.config.totem.token`.
    pub fn cmap(&self, k: usize, key: &str) -> Option<String> {
        let output = self
            .namespaces
            .command(k, Path::new("corosync-cmapctl"))
            .arg("-g")
            .arg(key)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        Some(text.rsplit('=').next()?.trim().to_owned())
    }

    /// How many quorum membership changes (`[QUORUM] Members[`) node `k` has logged.
    pub fn membership_changes(&self, k: usize) -> usize {
        std::fs::read_to_string(self.dir(k).join("corosync.log"))
            .unwrap_or_default()
            .matches("[QUORUM] Members[")
            .count()
    }

    /// Node `k`'s log.
    pub fn log(&self, k: usize) -> String {
        std::fs::read_to_string(self.dir(k).join("corosync.log")).unwrap_or_default()
    }

    /// When node `k` logged the quorum membership `members` (e.g. `Members[2]: 1 2`) first
    /// after byte `offset` of its log, as time from `since`. The log's timestamps are wall
    /// clock time of day (`Nov 30 10:59:51.027`), read as UTC, so runs across midnight UTC or
    /// under another time zone give None.
    pub fn logged_since(
        &self,
        k: usize,
        offset: usize,
        members: &str,
        since: SystemTime,
    ) -> Option<Duration> {
        let log = self.log(k);
        let pattern = format!("[QUORUM] {members}");
        let line = log
            .get(offset..)?
            .lines()
            .find(|line| line.trim_end().ends_with(&pattern))?;
        let clock = line.split_whitespace().nth(2)?;
        let mut parts = clock.split(':');
        let hours: f64 = parts.next()?.parse().ok()?;
        let minutes: f64 = parts.next()?.parse().ok()?;
        let seconds: f64 = parts.next()?.parse().ok()?;
        let logged = hours * 3600.0 + minutes * 60.0 + seconds;
        let since = since.duration_since(UNIX_EPOCH).ok()?.as_secs_f64() % 86_400.0;
        let elapsed = logged - since;
        (0.0..600.0)
            .contains(&elapsed)
            .then(|| Duration::from_secs_f64(elapsed))
    }

    /// The length of node `k`'s log, in bytes.
    pub fn log_length(&self, k: usize) -> usize {
        std::fs::metadata(self.dir(k).join("corosync.log"))
            .map_or(0, |m| usize::try_from(m.len()).unwrap_or(0))
    }
}

impl Drop for Corosync {
    fn drop(&mut self) {
        for k in 1..=self.children.len() {
            self.stop(k);
        }
    }
}

/// `count` random bytes from the kernel, for corosync's authkey.
fn read_random(count: usize) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut bytes = vec![0; count];
    File::open("/dev/urandom")
        .and_then(|mut file| file.read_exact(&mut bytes))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(bytes)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}
