//! The pieces of the soak benchmark (`tests/benches/soak.rs`): CPU hogs that cannot outlive
//! the benchmark, what `/proc` says of a process (resident memory, CPU time), a log reader
//! that stamps every new line with the time the benchmark first saw it (cmcld's lines carry
//! no time of their own), and the sorting of those lines into what a cluster left alone must
//! never log (a new membership, a lost member, a fence) and what only says it came close (a
//! schedule gap, a network gone quiet).
//!
//! ```text
//!   bench ── polls every node's status every 200 ms ──> cmcld n1, n2, n3 (namespaces)
//!     │   └─ reads their logs' new lines, stamps them
//!     └── 8 × sh busy loop (case hogs): each ends by itself within a second of the bench
//! ```

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The environment variable holding each case's length in seconds (600 by default).
pub const SECONDS_VARIABLE: &str = "SOAK_BENCH_SECONDS";
/// The environment variable selecting cases: comma-separated parts of case names (a case runs
/// when its name contains one of them), e.g. `default-idle,fast-hogs`.
pub const CASES_VARIABLE: &str = "SOAK_BENCH_CASES";
/// The environment variable naming a folder for every node's stamped log. Without it, the
/// logs of a case that saw anything spurious still go to `target/soak-logs/`.
pub const LOG_DIR_VARIABLE: &str = "SOAK_BENCH_LOG_DIR";

/// The length of a case without `$SOAK_BENCH_SECONDS`: the issue's ten minutes.
pub const SECONDS_DEFAULT: u64 = 600;

/// Linux reports process CPU time in clock ticks of USER_HZ, which the kernel's ABI fixes at
/// 100 per second (sysconf(_SC_CLK_TCK)), whatever the kernel's own HZ.
const TICKS_PER_SECOND: u64 = 100;

/// How many busy-loop iterations a hog runs between two checks that the benchmark still
/// lives (about a tenth of a second of dash's time).
const HOG_ITERATIONS: u32 = 100_000;

/// The length of each case: `$SOAK_BENCH_SECONDS`, else [`SECONDS_DEFAULT`].
pub fn soak_duration() -> Duration {
    let seconds = std::env::var(SECONDS_VARIABLE)
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .filter(|seconds| *seconds > 0)
        .unwrap_or(SECONDS_DEFAULT);
    Duration::from_secs(seconds)
}

/// Whether case `name` runs: every case without `$SOAK_BENCH_CASES`, else those whose name
/// contains one of its comma-separated parts.
pub fn selected(name: &str) -> bool {
    crate::failover::selected_by(CASES_VARIABLE, name)
}

/// Busy-looping `sh` processes at normal priority. Dropping the value kills and reaps them,
/// on an early return or a panic too; and each one checks every tenth of a second or so that
/// the process that started it still lives, so not even a killed benchmark leaves them
/// spinning.
pub struct Hogs {
    children: Vec<Child>,
}

impl Hogs {
    /// Starts `count` hogs.
    pub fn start(count: usize) -> Result<Hogs, String> {
        let script = format!(
            "while kill -0 $PPID 2>/dev/null; do i=0; \
             while [ $i -lt {HOG_ITERATIONS} ]; do i=$((i+1)); done; done"
        );
        let mut hogs = Hogs {
            children: Vec::with_capacity(count),
        };
        for _ in 0..count {
            let child = Command::new("sh")
                .arg("-c")
                .arg(&script)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("a CPU hog: {e}"))?;
            // Pushed at once: an error on the next one drops (and kills) those started.
            hogs.children.push(child);
        }
        Ok(hogs)
    }

    /// How many hogs still run.
    pub fn running(&mut self) -> usize {
        self.children
            .iter_mut()
            .map(Child::try_wait)
            .filter(|state| matches!(state, Ok(None)))
            .count()
    }

    /// The CPU time the hogs have had, together.
    pub fn cpu(&self) -> Duration {
        self.children
            .iter()
            .filter_map(|child| cpu_time(child.id()))
            .sum()
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Process `pid`'s resident memory (VmRSS), in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The CPU time process `pid` has had, user and system, all its threads (not its children).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name's closing parenthesis: state, then 10 fields, then utime and
    // stime (fields 14 and 15 of proc(5)).
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    let ticks = user + system;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

/// A log line and when the benchmark first saw it, from the start of the soak (None: before
/// the soak started, while the cluster formed).
#[derive(Debug, Clone)]
pub struct Stamped {
    /// When it was first seen.
    pub at: Option<Duration>,
    /// The line, without its end.
    pub text: String,
}

impl Stamped {
    /// `[+12.345 s] text`, or `[formation] text`.
    pub fn render(&self) -> String {
        match self.at {
            Some(at) => format!("[+{:.3} s] {}", at.as_secs_f64(), self.text),
            None => format!("[formation] {}", self.text),
        }
    }
}

/// Reads a growing log and stamps every complete line it has not seen before.
pub struct LogTail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    lines: Vec<Stamped>,
}

impl LogTail {
    /// A reader of `path` that has seen nothing yet.
    pub fn new(path: &Path) -> LogTail {
        LogTail {
            path: path.to_path_buf(),
            offset: 0,
            partial: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// Reads what was appended since the last call and stamps its complete lines with `at`;
    /// returns them.
    pub fn read(&mut self, at: Option<Duration>) -> &[Stamped] {
        let before = self.lines.len();
        let mut appended = Vec::new();
        let read = File::open(&self.path).and_then(|mut file| {
            file.seek(SeekFrom::Start(self.offset))?;
            file.read_to_end(&mut appended)
        });
        if let Ok(count) = read {
            self.offset += count as u64;
            self.partial.extend_from_slice(&appended);
            while let Some(end) = self.partial.iter().position(|byte| *byte == b'\n') {
                let line: Vec<u8> = self.partial.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line[..end]).into_owned();
                self.lines.push(Stamped { at, text });
            }
        }
        &self.lines[before..]
    }

    /// Every line seen so far.
    pub fn lines(&self) -> &[Stamped] {
        &self.lines
    }

    /// Every line seen so far, stamped, one per line.
    pub fn render(&self) -> String {
        self.lines
            .iter()
            .map(|line| format!("{}\n", line.render()))
            .collect()
    }
}

/// What a log line of a cluster left alone says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LineKind {
    /// A new membership was installed (`MembershipChanged`).
    Reformation,
    /// A member was left out of a membership (`NodeFailed`).
    MemberFailed,
    /// A node joined the membership (`NodeJoined`).
    MemberJoined,
    /// The node lost quorum, its safety timer fired, or it is about to fence itself.
    Fence,
    /// A package or service started, halted, failed, restarted or moved.
    Package,
    /// The core was not run for longer than two heartbeat intervals (`ScheduleGap`).
    ScheduleGap,
    /// A heartbeat network to a peer went quiet while another still carried heartbeats.
    NetworkDown,
    /// A heartbeat network to a peer carries heartbeats again.
    NetworkUp,
    /// Anything else.
    Other,
}

impl LineKind {
    /// Every kind, in the order reports show them.
    pub const ALL: [LineKind; 9] = [
        LineKind::Reformation,
        LineKind::MemberFailed,
        LineKind::MemberJoined,
        LineKind::Fence,
        LineKind::Package,
        LineKind::ScheduleGap,
        LineKind::NetworkDown,
        LineKind::NetworkUp,
        LineKind::Other,
    ];

    /// The kind of `line`.
    pub fn of(line: &str) -> LineKind {
        // Events (`Event`) and notices (`Notice`, the cmviewcl event catalogue) both.
        const KINDS: [(&str, LineKind); 20] = [
            ("MembershipChanged", LineKind::Reformation),
            ("ClusterReformed", LineKind::Reformation),
            ("NodeFailed", LineKind::MemberFailed),
            ("NodeJoined", LineKind::MemberJoined),
            ("QuorumLost", LineKind::Fence),
            ("safety timer: resetting", LineKind::Fence),
            ("cimguard fence:", LineKind::Fence),
            ("safety timer expired", LineKind::Fence),
            ("PackageStarted", LineKind::Package),
            ("PackageHalted", LineKind::Package),
            ("PackageFailed", LineKind::Package),
            ("PackageFailover", LineKind::Package),
            ("PackageFailback", LineKind::Package),
            ("ServiceFailed", LineKind::Package),
            ("ServiceRestarted", LineKind::Package),
            ("ScheduleGap", LineKind::ScheduleGap),
            ("NetworkDown", LineKind::NetworkDown),
            ("NetworkInterfaceDown", LineKind::NetworkDown),
            ("NetworkUp", LineKind::NetworkUp),
            ("NetworkInterfaceUp", LineKind::NetworkUp),
        ];
        KINDS
            .iter()
            .find(|(pattern, _)| line.contains(pattern))
            .map_or(LineKind::Other, |(_, kind)| *kind)
    }

    /// Whether a cluster nobody touches must never log it.
    pub fn spurious(self) -> bool {
        matches!(
            self,
            LineKind::Reformation
                | LineKind::MemberFailed
                | LineKind::MemberJoined
                | LineKind::Fence
                | LineKind::Package
        )
    }

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            LineKind::Reformation => "MembershipChanged or ClusterReformed",
            LineKind::MemberFailed => "NodeFailed",
            LineKind::MemberJoined => "NodeJoined",
            LineKind::Fence => "fence",
            LineKind::Package => "package",
            LineKind::ScheduleGap => "ScheduleGap",
            LineKind::NetworkDown => "NetworkDown",
            LineKind::NetworkUp => "NetworkUp",
            LineKind::Other => "other",
        }
    }
}

/// The gap a `ScheduleGap { gap: 612.5ms }` line reports (Rust's `Debug` of a `Duration`).
pub fn schedule_gap(line: &str) -> Option<Duration> {
    let rest = &line[line.find("gap: ")? + "gap: ".len()..];
    let text: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == 'µ')
        .collect();
    let unit_at = text.find(|c: char| c.is_alphabetic() || c == 'µ')?;
    let value: f64 = text[..unit_at].parse().ok()?;
    let seconds = match &text[unit_at..] {
        "s" => value,
        "ms" => value / 1e3,
        "µs" => value / 1e6,
        "ns" => value / 1e9,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_sorted_by_what_they_say() {
        let kinds: Vec<LineKind> = [
            "cmcld[n1]: MembershipChanged { before_epoch: Epoch(3), .. }",
            "cmcld[n2]: NodeFailed { node: NodeId(2), incarnation: Incarnation(7) }",
            "cmcld[n3]: safety timer: resetting this node now: LeaseLapsed",
            "cimguard fence: the safety timer expired: killing process groups [12]",
            "cmcld safety timer: the safety timer expired: killed process groups [12]",
            "cmcld[n1]: ScheduleGap { gap: 612.5ms }",
            "cmcld[n1]: NetworkDown { node: NodeId(1), network: 1 }",
            "cmcld[n1]: started as node n1 of cluster testcluster",
        ]
        .iter()
        .map(|line| LineKind::of(line))
        .collect();
        assert_eq!(
            kinds,
            [
                LineKind::Reformation,
                LineKind::MemberFailed,
                LineKind::Fence,
                LineKind::Fence,
                LineKind::Fence,
                LineKind::ScheduleGap,
                LineKind::NetworkDown,
                LineKind::Other,
            ]
        );
        assert!(LineKind::Fence.spurious());
        assert!(!LineKind::ScheduleGap.spurious());
    }

    #[test]
    fn schedule_gaps_are_read_in_every_unit() {
        let gap = |line: &str| schedule_gap(line).map(|d| d.as_micros());
        assert_eq!(gap("x: ScheduleGap { gap: 612.5ms }"), Some(612_500));
        assert_eq!(gap("x: ScheduleGap { gap: 1.25s }"), Some(1_250_000));
        assert_eq!(gap("x: ScheduleGap { gap: 900µs }"), Some(900));
        assert_eq!(gap("x: NetworkDown { node: NodeId(1) }"), None);
    }

    #[test]
    fn a_tail_stamps_only_complete_new_lines() {
        let folder = tempfile::tempdir().expect("a folder");
        let path = folder.path().join("log");
        std::fs::write(&path, "one\ntw").expect("written");
        let mut tail = LogTail::new(&path);
        let first: Vec<String> = tail.read(None).iter().map(Stamped::render).collect();
        assert_eq!(first, ["[formation] one"]);
        let mut file = File::options().append(true).open(&path).expect("opened");
        std::io::Write::write_all(&mut file, b"o\nthree\n").expect("appended");
        let second: Vec<String> = tail
            .read(Some(Duration::from_millis(1500)))
            .iter()
            .map(Stamped::render)
            .collect();
        assert_eq!(second, ["[+1.500 s] two", "[+1.500 s] three"]);
        assert!(tail.read(Some(Duration::from_secs(2))).is_empty());
        assert_eq!(tail.lines().len(), 3);
    }

    #[test]
    fn this_process_has_memory_and_cpu_time() {
        let me = std::process::id();
        assert!(rss_kib(me).is_some_and(|kib| kib > 0));
        assert!(cpu_time(me).is_some());
        assert_eq!(rss_kib(u32::MAX), None);
    }
}
