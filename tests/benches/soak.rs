//! The soak benchmark (issue 5): a three-node cluster of real `cmcld` processes in network
//! namespaces (two heartbeat networks), with a failover package running on n1, left alone for
//! ten minutes, idle and beside eight CPU hogs, in the default profile (MEMBER_TIMEOUT 14 s)
//! and the fast one (1 s). Nothing should change; it reports whatever did:
//!
//! - re-formations: membership epochs newer than the soak's first, in any node's status
//!   (every node's is polled every 200 ms), or `MembershipChanged` lines in a node's log;
//! - membership changes: a node's status showing other members than all three, or not up;
//! - package moves: a node's status showing the package elsewhere than on n1 or not up, or its
//!   service started again;
//! - fenced nodes: those that logged a `QuorumLost`, safety-timer or fence-watcher line, or
//!   whose daemon ended;
//! - near misses, which fail nothing: `ScheduleGap` and `NetworkDown` lines, unanswered status
//!   requests;
//! - each daemon's resident memory (VmRSS) at the start and at the end, and its CPU time.
//!
//! ```sh
//! cargo build --release --bin cmcld
//! cargo bench -p cimguard-tests --bench soak 2>&1 | tee /tmp/soak.txt
//! SOAK_BENCH_SECONDS=30 SOAK_BENCH_CASES=default-idle,fast-hogs cargo bench -p cimguard-tests --bench soak
//! ```
//!
//! The cases are `default-idle`, `default-hogs`, `fast-idle` and `fast-hogs`, each
//! `$SOAK_BENCH_SECONDS` long (600 by default). The hogs are `sh` busy loops at normal priority,
//! started once the cluster has formed and killed at the end (a guard kills them on any exit).
//! The bench exits with status 1 when a case saw a spurious change or did not run, so a
//! failure shows; the logs of such a case, each line stamped with the time the bench first saw
//! it (cmcld's lines carry no time), go to `target/soak-logs/`, or to `$SOAK_BENCH_LOG_DIR`,
//! which receives every case's logs. Needs root and `ip`; it builds nothing and starts the
//! release `cmcld` (`target/release/cmcld`, or the one in `$CIMGUARD_BIN_DIR`). Run it as one
//! foreground command: on the development VM, background processes stall between shell
//! commands.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cimguard_tests::cluster::TestCluster;
use cimguard_tests::failover::{
    alive, cmcld_program, load_average, machine, poll_until, started_in_namespaces,
};
use cimguard_tests::soak::{
    cpu_time, rss_kib, schedule_gap, selected, soak_duration, Hogs, LineKind, LogTail, Stamped,
    CASES_VARIABLE, LOG_DIR_VARIABLE, SECONDS_VARIABLE,
};
use cimguard_tests::workspace_root;

/// The failover package: on n1, then n2 and n3. With failback_policy manual a move stays
/// visible until the end.
const PACKAGE: &str = "soak";
const PACKAGE_TEXT: &str = "package_name soak\npackage_type failover\nnode_name n1\n\
     node_name n2\nnode_name n3\nauto_run yes\nfailback_policy manual\nservice_name svc\n\
     service_cmd \"echo $$ > $SGRUN/svc.pid; exec sleep infinity\"\nservice_halt_timeout 2\n";
/// Where the package runs, by name and by number.
const OWNER: &str = "n1";
const OWNER_NODE: usize = 1;
const NODES: usize = 3;

/// How often every node's status is read.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(200);
/// How often a case prints how it goes.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(60);
/// The CPU hogs of a `hogs` case: four per core on this two-core VM.
const HOG_COUNT: usize = 8;
/// The most events a case prints as they come (every line stays in the kept logs).
const EVENTS_PRINTED_MAX: usize = 100;

/// A cmcld timing profile.
struct Profile {
    name: &'static str,
    member_timeout: Duration,
    what: &'static str,
}

const PROFILES: [Profile; 2] = [
    Profile {
        name: "default",
        member_timeout: Duration::from_secs(14),
        what: "MEMBER_TIMEOUT 14 s (Serviceguard's default), two heartbeat networks",
    },
    Profile {
        name: "fast",
        member_timeout: Duration::from_secs(1),
        what: "MEMBER_TIMEOUT 1 s, two heartbeat networks",
    },
];

/// What else runs during a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    Idle,
    Hogs,
}

impl Load {
    fn name(self) -> &'static str {
        match self {
            Load::Idle => "idle",
            Load::Hogs => "hogs",
        }
    }
}

fn main() -> ExitCode {
    let started = Instant::now();
    let duration = soak_duration();
    let cases = std::env::var(CASES_VARIABLE).unwrap_or_else(|_| "all".into());
    println!(
        "soak benchmark: {} s per case (${SECONDS_VARIABLE}), cases: {cases} (${CASES_VARIABLE})",
        duration.as_secs()
    );
    println!("machine: {}", machine());
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: the benchmark makes network namespaces and needs root");
        return ExitCode::SUCCESS;
    }
    let program = match cmcld_program() {
        Ok(program) => program,
        Err(reason) => {
            println!("not run: {reason}");
            return ExitCode::FAILURE;
        }
    };
    println!("cmcld: {}", program.display());
    let mut results = Vec::new();
    for profile in &PROFILES {
        for load in [Load::Idle, Load::Hogs] {
            let case = format!("{}-{}", profile.name, load.name());
            if !selected(&case) {
                continue;
            }
            println!("\n== {case}: {}, {} ==", profile.what, describe(load));
            let outcome = run_case(&case, profile, load, duration, &program);
            match &outcome {
                Ok(outcome) => print_outcome(outcome),
                Err(reason) => println!("not run: {reason}"),
            }
            results.push((case, outcome));
        }
    }
    print_table(&results);
    println!("\nload average at the end: {}", load_average());
    println!("total: {:.0} s", started.elapsed().as_secs_f64());
    let failed = results
        .iter()
        .any(|(_, outcome)| outcome.as_ref().map_or(true, Outcome::spurious));
    if failed {
        println!("FAILED: a case saw a spurious change or did not run (see above)");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn describe(load: Load) -> String {
    match load {
        Load::Idle => "nothing else started".into(),
        Load::Hogs => format!("{HOG_COUNT} CPU hogs (sh busy loops, not niced)"),
    }
}

// ---------------------------------------------------------------------------------------------
// The cluster

/// What one node's status shows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct View {
    /// The cluster's status as the node sees it (`up` once it is a member).
    status: String,
    /// The members it sees up, by name.
    members: Vec<String>,
    epoch: u64,
    /// The package's status and where it is active, by node name.
    package: String,
    owners: Vec<String>,
}

impl View {
    fn render(&self) -> String {
        format!(
            "cluster {}, epoch {}, members [{}], {PACKAGE} {} on [{}]",
            self.status,
            self.epoch,
            self.members.join(" "),
            self.package,
            self.owners.join(" ")
        )
    }

    /// All three up in one membership, the package up on n1.
    fn steady(&self) -> bool {
        self.status == "up"
            && self.members == ["n1", "n2", "n3"]
            && self.package == "up"
            && self.owners == [OWNER]
    }
}

fn view(cluster: &TestCluster, k: usize) -> Result<View, String> {
    let snapshot = cluster.status(k)?.cluster;
    let name = |index: usize| snapshot.nodes.get(index).map(|row| row.name.clone());
    let members = snapshot
        .nodes
        .iter()
        .filter(|n| n.condition.status.as_str() == "up")
        .map(|n| n.name.clone())
        .collect();
    let (package, owners) = snapshot.packages.iter().find(|p| p.name == PACKAGE).map_or(
        ("missing".into(), Vec::new()),
        |p| {
            let owners = p.owners.iter().filter_map(|n| name(n.index())).collect();
            (p.condition.status.as_str().to_owned(), owners)
        },
    );
    Ok(View {
        status: snapshot.status.as_str().to_owned(),
        members,
        epoch: snapshot.epoch.0,
        package,
        owners,
    })
}

/// The pid of the service node `k` started last.
fn service_pid(cluster: &TestCluster, k: usize) -> Option<i32> {
    std::fs::read_to_string(cluster.dir(k).join("svc.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Every node's view when all agree on one steady membership and the service runs on n1.
fn steady(cluster: &TestCluster) -> Option<Vec<View>> {
    let views: Vec<View> = (1..=NODES)
        .map(|k| view(cluster, k).ok())
        .collect::<Option<_>>()?;
    let agreed = views
        .iter()
        .all(|v| v.steady() && v.epoch == views[0].epoch);
    let running = service_pid(cluster, OWNER_NODE).is_some_and(alive);
    (agreed && running).then_some(views)
}

/// A cluster of `profile` with the package up on n1, and every node's view then.
fn form(profile: &Profile, program: &Path) -> Result<(TestCluster, Vec<View>), String> {
    let cluster = started_in_namespaces(
        NODES,
        profile.member_timeout,
        (PACKAGE, PACKAGE_TEXT),
        program,
    )?;
    let within = Duration::from_secs(60) + profile.member_timeout * 6;
    let mut views = None;
    if !poll_until(Instant::now() + within, || {
        views = steady(&cluster);
        views.is_some()
    }) {
        return Err(format!(
            "the cluster did not form within {within:?}\n{}",
            cluster.logs()
        ));
    }
    let views = views.ok_or("formed, then no views")?;
    Ok((cluster, views))
}

// ---------------------------------------------------------------------------------------------
// A case

/// One node's figures over a case.
#[derive(Debug, Clone, Default)]
struct NodeFigures {
    rss_start_kib: Option<u64>,
    rss_end_kib: Option<u64>,
    /// The daemon's CPU time over the soak.
    cpu: Option<Duration>,
    /// SCHED_RR for the timing thread and mlockall, as its status says.
    realtime: String,
}

/// What a case saw.
#[derive(Debug, Clone, Default)]
struct Outcome {
    case: String,
    elapsed: Duration,
    /// The epoch all three nodes were in when the soak started.
    start_epoch: u64,
    /// Newer epochs seen in a status.
    epochs: BTreeSet<u64>,
    /// The most `MembershipChanged` lines one node logged during the soak.
    reformations_logged: usize,
    /// The most changes of its membership view one node's status showed.
    membership_changes: usize,
    /// The most changes of the package's status or owners one node's status showed.
    package_moves: usize,
    /// Service processes that ended or were started during the soak.
    service_changes: usize,
    /// Daemons that ended.
    daemons_ended: usize,
    /// Nodes that logged a fence line or whose daemon ended.
    fenced_nodes: usize,
    /// Log lines of the soak, all nodes, by kind.
    lines: BTreeMap<LineKind, usize>,
    schedule_gap_max: Option<Duration>,
    /// Status requests that got no answer.
    unanswered: usize,
    /// Rounds of status requests, and the longest time between two.
    samples: usize,
    sample_gap_max: Duration,
    nodes: Vec<NodeFigures>,
    /// The hogs' CPU time over the soak, in cores (None: no hogs); how many still ran at the
    /// end.
    hog_cores: Option<f64>,
    hogs_running: usize,
    load_start: String,
    load_end: String,
    /// Where the stamped logs went.
    kept: Option<PathBuf>,
}

impl Outcome {
    fn reformations(&self) -> usize {
        self.epochs.len().max(self.reformations_logged)
    }

    fn count(&self, kind: LineKind) -> usize {
        self.lines.get(&kind).copied().unwrap_or(0)
    }

    /// Whether anything changed that a cluster left alone must never change.
    fn spurious(&self) -> bool {
        let logged = self.lines.iter().any(|(kind, n)| kind.spurious() && *n > 0);
        self.reformations() > 0
            || self.membership_changes > 0
            || self.package_moves > 0
            || self.service_changes > 0
            || self.fenced_nodes > 0
            || self.daemons_ended > 0
            || logged
    }
}

fn run_case(
    case: &str,
    profile: &Profile,
    load: Load,
    duration: Duration,
    program: &Path,
) -> Result<Outcome, String> {
    let (mut cluster, views) = form(profile, program)?;
    let mut outcome = Outcome {
        case: case.to_owned(),
        start_epoch: views[0].epoch,
        load_start: load_average(),
        ..Outcome::default()
    };
    for k in 1..=NODES {
        let status = cluster.status(k)?;
        let yes = |r: &Result<(), String>| {
            r.as_ref()
                .map_or_else(|e| format!("no ({e})"), |()| "yes".into())
        };
        let figures = NodeFigures {
            rss_start_kib: rss_kib(cluster.pid(k)),
            realtime: format!(
                "SCHED_RR {}, mlockall {}",
                yes(&status.realtime),
                yes(&status.memory_locked)
            ),
            ..NodeFigures::default()
        };
        println!("n{k}: pid {}, {}", cluster.pid(k), figures.realtime);
        outcome.nodes.push(figures);
    }
    println!("formed: {}", views[0].render());
    let cpu_start: Vec<Option<Duration>> = (1..=NODES).map(|k| cpu_time(cluster.pid(k))).collect();
    let mut hogs = match load {
        Load::Idle => None,
        Load::Hogs => Some(Hogs::start(HOG_COUNT)?),
    };
    let mut watch = Watch::new(&cluster, views);
    watch.run(&mut cluster, duration);
    let elapsed = watch.started.elapsed();
    if let Some(hogs) = hogs.as_mut() {
        outcome.hog_cores = Some(hogs.cpu().as_secs_f64() / elapsed.as_secs_f64());
        outcome.hogs_running = hogs.running();
    }
    // The hogs go first, so that nothing below runs starved.
    drop(hogs);
    outcome.elapsed = elapsed;
    outcome.load_end = load_average();
    for (i, figures) in outcome.nodes.iter_mut().enumerate() {
        let pid = cluster.pid(i + 1);
        figures.rss_end_kib = rss_kib(pid);
        figures.cpu = cpu_time(pid)
            .zip(cpu_start[i])
            .map(|(end, start)| end.saturating_sub(start));
    }
    watch.finish(&mut cluster, &mut outcome);
    outcome.kept = keep_logs(case, &watch.tails, outcome.spurious());
    Ok(outcome)
}

/// The soak's watch over the cluster: the last view of every node, their logs, the service.
struct Watch {
    started: Instant,
    start_epoch: u64,
    last: Vec<View>,
    /// Whether node k's last status request went unanswered.
    silent: Vec<bool>,
    ended: Vec<bool>,
    /// Whether node k logged a fence line.
    fenced: Vec<bool>,
    tails: Vec<LogTail>,
    /// The service pid each node's svc.pid file held last.
    services: Vec<Option<i32>>,
    service_gone: bool,
    epochs: BTreeSet<u64>,
    membership_changes: Vec<usize>,
    package_changes: Vec<usize>,
    reformations_logged: Vec<usize>,
    service_changes: usize,
    lines: BTreeMap<LineKind, usize>,
    schedule_gap_max: Option<Duration>,
    unanswered: usize,
    samples: usize,
    sample_gap_max: Duration,
    events: usize,
}

impl Watch {
    /// A watch from now, every node's view being `views`; the logs so far count as the
    /// cluster's formation.
    fn new(cluster: &TestCluster, views: Vec<View>) -> Watch {
        let mut tails: Vec<LogTail> = (1..=NODES)
            .map(|k| LogTail::new(&cluster.dir(k).join("cmcld.log")))
            .collect();
        for tail in &mut tails {
            tail.read(None);
        }
        Watch {
            started: Instant::now(),
            start_epoch: views[0].epoch,
            last: views,
            silent: vec![false; NODES],
            ended: vec![false; NODES],
            fenced: vec![false; NODES],
            tails,
            services: (1..=NODES).map(|k| service_pid(cluster, k)).collect(),
            service_gone: false,
            epochs: BTreeSet::new(),
            membership_changes: vec![0; NODES],
            package_changes: vec![0; NODES],
            reformations_logged: vec![0; NODES],
            service_changes: 0,
            lines: BTreeMap::new(),
            schedule_gap_max: None,
            unanswered: 0,
            samples: 0,
            sample_gap_max: Duration::ZERO,
            events: 0,
        }
    }

    /// Samples every [`SAMPLE_INTERVAL`] for `duration`.
    fn run(&mut self, cluster: &mut TestCluster, duration: Duration) {
        let end = self.started + duration;
        let mut next = self.started;
        let mut progress = self.started + PROGRESS_INTERVAL;
        let mut previous: Option<Instant> = None;
        while Instant::now() < end {
            let now = Instant::now();
            if let Some(previous) = previous {
                self.sample_gap_max = self.sample_gap_max.max(now - previous);
            }
            previous = Some(now);
            self.sample(cluster);
            if now >= progress {
                self.progress(cluster);
                progress += PROGRESS_INTERVAL;
            }
            // The sampling's cadence: a round late (the bench starved) starts the next at once.
            next += SAMPLE_INTERVAL;
            let now = Instant::now();
            if next > now {
                std::thread::sleep((next - now).min(end.saturating_duration_since(now)));
            } else {
                next = now;
            }
        }
    }

    /// One round: every node's daemon, status and new log lines, and the service.
    fn sample(&mut self, cluster: &mut TestCluster) {
        self.samples += 1;
        for k in 1..=NODES {
            let i = k - 1;
            if !self.ended[i] {
                if let Some(status) = cluster.exited(k) {
                    self.ended[i] = true;
                    self.event(k, &format!("the daemon ended: {status}"));
                }
            }
            match view(cluster, k) {
                Ok(view) => {
                    self.silent[i] = false;
                    self.compare(k, view);
                }
                Err(e) if !self.ended[i] => {
                    self.unanswered += 1;
                    if !self.silent[i] {
                        self.silent[i] = true;
                        self.event(k, &format!("status not answered: {e}"));
                    }
                }
                Err(_) => {}
            }
            self.read_log(k);
        }
        self.check_service(cluster);
    }

    fn compare(&mut self, k: usize, view: View) {
        let i = k - 1;
        let last = &self.last[i];
        let mut changes = Vec::new();
        if view.epoch != last.epoch {
            if view.epoch > self.start_epoch {
                self.epochs.insert(view.epoch);
            }
            changes.push("epoch");
        }
        if view.members != last.members || view.status != last.status {
            self.membership_changes[i] += 1;
            changes.push("membership");
        }
        if view.package != last.package || view.owners != last.owners {
            self.package_changes[i] += 1;
            changes.push("package");
        }
        if !changes.is_empty() {
            let what = format!(
                "status: {} changed: {} (was {})",
                changes.join(", "),
                view.render(),
                last.render()
            );
            self.event(k, &what);
        }
        self.last[i] = view;
    }

    fn read_log(&mut self, k: usize) {
        let at = self.started.elapsed();
        let lines: Vec<Stamped> = self.tails[k - 1].read(Some(at)).to_vec();
        for line in lines {
            let kind = LineKind::of(&line.text);
            *self.lines.entry(kind).or_default() += 1;
            if kind == LineKind::Fence {
                self.fenced[k - 1] = true;
            }
            if line.text.contains("MembershipChanged") {
                self.reformations_logged[k - 1] += 1;
            }
            if kind == LineKind::ScheduleGap {
                let gap = schedule_gap(&line.text);
                self.schedule_gap_max = self.schedule_gap_max.max(gap);
            }
            self.event(k, &format!("log: {}", line.text));
        }
    }

    /// A service that ended, or one started anywhere, is a package change.
    fn check_service(&mut self, cluster: &TestCluster) {
        for k in 1..=NODES {
            let pid = service_pid(cluster, k);
            if pid != self.services[k - 1] {
                self.services[k - 1] = pid;
                self.service_changes += 1;
                self.event(k, &format!("a service started: pid {pid:?}"));
            }
        }
        let running = self.services[OWNER_NODE - 1].is_some_and(alive);
        if !running && !self.service_gone {
            self.service_gone = true;
            self.service_changes += 1;
            self.event(OWNER_NODE, "the service is not running");
        }
    }

    fn event(&mut self, k: usize, what: &str) {
        self.events += 1;
        if self.events <= EVENTS_PRINTED_MAX {
            println!(
                "[+{:.3} s] n{k} {what}",
                self.started.elapsed().as_secs_f64()
            );
        } else if self.events == EVENTS_PRINTED_MAX + 1 {
            println!("(more events: see the kept logs)");
        }
    }

    fn progress(&self, cluster: &TestCluster) {
        let rss: Vec<String> = (1..=NODES)
            .map(|k| rss_kib(cluster.pid(k)).map_or("-".into(), |kib| kib.to_string()))
            .collect();
        println!(
            "[+{:.0} s] epoch {} on n1, {} samples (longest gap {:.2} s), {} events, RSS KiB {}, \
             load {}",
            self.started.elapsed().as_secs_f64(),
            self.last[0].epoch,
            self.samples,
            self.sample_gap_max.as_secs_f64(),
            self.events,
            rss.join(" / "),
            load_average()
        );
    }

    /// One last round (lines logged at the very end), then the figures into `outcome`.
    fn finish(&mut self, cluster: &mut TestCluster, outcome: &mut Outcome) {
        self.sample(cluster);
        outcome.epochs = self.epochs.clone();
        outcome.reformations_logged = self.reformations_logged.iter().copied().max().unwrap_or(0);
        outcome.membership_changes = self.membership_changes.iter().copied().max().unwrap_or(0);
        outcome.package_moves = self.package_changes.iter().copied().max().unwrap_or(0);
        outcome.service_changes = self.service_changes;
        outcome.daemons_ended = self.ended.iter().filter(|e| **e).count();
        outcome.fenced_nodes = (0..NODES)
            .filter(|i| self.ended[*i] || self.fenced[*i])
            .count();
        outcome.lines = self.lines.clone();
        outcome.schedule_gap_max = self.schedule_gap_max;
        outcome.unanswered = self.unanswered;
        outcome.samples = self.samples;
        outcome.sample_gap_max = self.sample_gap_max;
    }
}

/// Writes every node's stamped log to `$SOAK_BENCH_LOG_DIR`, or, for a case that saw
/// something spurious, to `target/soak-logs/<time>/`; the folder, if written.
fn keep_logs(case: &str, tails: &[LogTail], spurious: bool) -> Option<PathBuf> {
    let folder = match std::env::var_os(LOG_DIR_VARIABLE) {
        Some(folder) => PathBuf::from(folder),
        None if spurious => {
            let seconds = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            workspace_root()
                .join("target/soak-logs")
                .join(seconds.to_string())
        }
        None => return None,
    };
    std::fs::create_dir_all(&folder).ok()?;
    for (i, tail) in tails.iter().enumerate() {
        let path = folder.join(format!("{case}-n{}.log", i + 1));
        if let Err(e) = std::fs::write(&path, tail.render()) {
            println!("cannot keep {}: {e}", path.display());
        }
    }
    Some(folder)
}

// ---------------------------------------------------------------------------------------------
// Output

fn print_outcome(outcome: &Outcome) {
    let mut text = format!(
        "{}: {:.0} s, epoch {} throughout: {}; {} status rounds (longest gap {:.2} s)",
        outcome.case,
        outcome.elapsed.as_secs_f64(),
        outcome.start_epoch,
        if outcome.epochs.is_empty() {
            "yes".to_owned()
        } else {
            format!("no, also {:?}", outcome.epochs)
        },
        outcome.samples,
        outcome.sample_gap_max.as_secs_f64()
    );
    let lines: Vec<String> = LineKind::ALL
        .iter()
        .map(|kind| format!("{} {}", kind.name(), outcome.count(*kind)))
        .collect();
    let _ = write!(
        text,
        "\n  log lines during the soak (events and notices, all nodes): {}",
        lines.join(", ")
    );
    let _ = write!(
        text,
        "\n  daemons ended: {}, nodes fenced (a fence line or an ended daemon): {}",
        outcome.daemons_ended, outcome.fenced_nodes
    );
    if let Some(gap) = outcome.schedule_gap_max {
        let _ = write!(text, " (longest schedule gap {:.3} s)", gap.as_secs_f64());
    }
    if let Some(cores) = outcome.hog_cores {
        let _ = write!(
            text,
            "\n  hogs: {cores:.2} cores on average, {} of {HOG_COUNT} still running at the end",
            outcome.hogs_running
        );
    }
    let _ = write!(
        text,
        "\n  load average {} at the start, {} at the end",
        outcome.load_start, outcome.load_end
    );
    if let Some(folder) = &outcome.kept {
        let _ = write!(text, "\n  logs kept in {}", folder.display());
    }
    println!("{text}");
}

fn print_table(results: &[(String, Result<Outcome, String>)]) {
    println!("\n== summary ==");
    println!(
        "| case | duration | re-formations | membership changes | package moves | fenced nodes | \
         RSS start → end, KiB (n1 / n2 / n3) | daemon CPU (n1 / n2 / n3) | near misses |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (case, outcome) in results {
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(reason) => {
                let first = reason.lines().next().unwrap_or_default();
                println!("| {case} | not run: {first} | | | | | | | |");
                continue;
            }
        };
        let seconds = outcome.elapsed.as_secs_f64();
        let rss: Vec<String> = outcome
            .nodes
            .iter()
            .map(|n| format!("{} → {}", kib(n.rss_start_kib), kib(n.rss_end_kib)))
            .collect();
        let cpu: Vec<String> = outcome
            .nodes
            .iter()
            .map(|n| {
                n.cpu.map_or("-".into(), |cpu| {
                    format!("{:.2} %", 100.0 * cpu.as_secs_f64() / seconds)
                })
            })
            .collect();
        let mut near = format!(
            "ScheduleGap {}, NetworkDown {}, unanswered {}, longest sample gap {:.2} s",
            outcome.count(LineKind::ScheduleGap),
            outcome.count(LineKind::NetworkDown),
            outcome.unanswered,
            outcome.sample_gap_max.as_secs_f64()
        );
        if let Some(cores) = outcome.hog_cores {
            let _ = write!(near, ", hogs {cores:.2} cores");
        }
        println!(
            "| {case} | {seconds:.0} s | {} | {} | {} | {} | {} | {} | {near} |",
            outcome.reformations(),
            outcome.membership_changes,
            outcome.package_moves + outcome.service_changes,
            outcome.fenced_nodes,
            rss.join(" / "),
            cpu.join(" / ")
        );
    }
}

fn kib(value: Option<u64>) -> String {
    value.map_or("-".into(), |kib| kib.to_string())
}
