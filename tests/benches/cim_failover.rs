//! The failover benchmark as a WBEM client sees it (issue 6): the demo-shaped cluster of
//! three real `cmcld` processes on loopback, each serving its WBEM agent, with dbpkg, webpkg
//! and monpkg as `demo_cluster()` in `tests/tests/cluster_cim.rs` configures them, but with
//! the demo's MEMBER_TIMEOUT of 3 s (`src/demo.rs`; those tests use 2 s). Each run SIGKILLs
//! the daemon of the node that runs dbpkg and measures, from the kill:
//!
//! - package: until a survivor's agent answers GetInstance of dbpkg's `HP_SGPackage` with
//!   a `CurrentNode` naming another node;
//! - node: until the same agent answers GetInstance of the killed node's `HP_SGNode` with
//!   `NodeStatus` down and `NodeState` failed;
//! - cmviewcl: until `cmviewcl -v`, run against that agent once both are seen, has ended
//!   showing the same (its start-up and its own requests included).
//!
//! Issue 6's acceptance bounds all three by MEMBER_TIMEOUT + 3 s; the bench reports each run
//! against it. The agent is polled every 20 ms over one kept-alive HTTPS connection with the
//! tests crate's byte-level client ([`cimguard_tests::raw_http`]), so that a poll costs a
//! request, not a process: the round trips are reported too. After a run the killed node is
//! started again, its generic resource set up (as the demo's supervisor does), and the bench
//! waits until every node and every agent agree on where the packages run, for a quiet
//! [`QUIET`], before the next kill.
//!
//! ```sh
//! cargo build --release --bins
//! cargo bench -p cimguard-tests --bench cim_failover 2>&1 | tee /tmp/cim_failover.txt
//! CIM_FAILOVER_RUNS=10 cargo bench -p cimguard-tests --bench cim_failover
//! ```
//!
//! It starts the release binaries (`target/release`, or `$CIMGUARD_BIN_DIR`), falling back
//! to the debug `cmviewcl` and `cimguard` when the release folder lacks them, builds nothing,
//! and warns when `cmcld` is older than the sources. Run it as one foreground command: on the
//! development VM, background processes stall between shell commands. Every daemon ends when
//! the [`TestCluster`] drops (their safety-timer watchers then kill the package services).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use cim_schema::model::element::Instance;
use cim_schema::xml::{decode, Body, Data, Limits, Response};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use cimguard_cluster::packages::ResourceValue;
use cimguard_cluster::runtime::daemon::{Reply, Request};
use cimguard_tests::agent::BIN_DIR_VARIABLE;
use cimguard_tests::cluster::TestCluster;
use cimguard_tests::failover::{
    alive, cmcld_program, load_average, machine, maybe_seconds, poll_until, seconds, POLL_INTERVAL,
};
use cimguard_tests::pyagent::{client_command, describe, output_within};
use cimguard_tests::raw_http::{basic, request, Connection, TlsVersion};
use cimguard_tests::requests::imethod_call;
use cimguard_tests::workspace_root;

/// MEMBER_TIMEOUT of the demo (`src/demo.rs`): the shortest allowed with two networks.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(3);
/// Issue 6's bound is MEMBER_TIMEOUT plus this.
const BOUND_MARGIN: Duration = Duration::from_secs(3);
/// The environment variable holding the number of runs (5 by default).
const RUNS_VARIABLE: &str = "CIM_FAILOVER_RUNS";
/// The package whose node is killed.
const PACKAGE: &str = "dbpkg";
/// The generic resource dbpkg needs up on a node before it starts there.
const RESOURCE: &str = "sfm_disk";
/// The CIM namespace of the cluster model.
const NAMESPACE: &str = "root/cimv2";
/// The cluster's name in the instance keys (TestCluster's CLUSTER_NAME).
const CLUSTER_NAME: &str = "testcluster";

const ADMIN: (&str, &str) = ("admin", "admin-secret-1");
const MONITOR: (&str, &str) = ("watcher", "monitor-secret-1");

/// How long the cluster may take to form, or to take a restarted node back and settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the cluster must stay unchanged to count as settled.
const QUIET: Duration = Duration::from_secs(2);
/// How long one run may poll before it gives up on what it has not seen.
const RUN_TIMEOUT: Duration = Duration::from_secs(40);
/// How long one `cmviewcl -v` may take.
const CMVIEWCL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the killed daemon and its package service may take to be gone.
const GONE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most log lines of a survivor printed for a run over the bound.
const LOG_LINES_MAX: usize = 40;

fn main() {
    let started = Instant::now();
    let runs = runs();
    let bound = MEMBER_TIMEOUT + BOUND_MARGIN;
    println!(
        "CIM failover benchmark: {runs} runs (${RUNS_VARIABLE}), MEMBER_TIMEOUT {} s, \
         bound MEMBER_TIMEOUT + {} s = {} s",
        MEMBER_TIMEOUT.as_secs(),
        BOUND_MARGIN.as_secs(),
        bound.as_secs()
    );
    println!("machine: {}", machine());
    let binaries = match Binaries::find() {
        Ok(binaries) => binaries,
        Err(reason) => {
            println!("not run: {reason}");
            return;
        }
    };
    let mut cluster = demo_cluster(&binaries.cmcld);
    let samples = match prepare(&cluster) {
        Ok(()) => measure(&mut cluster, &binaries, runs, bound),
        Err(reason) => {
            println!("not run: {reason}\n{}", cluster.logs());
            return;
        }
    };
    print_summary(&samples, runs, bound);
    println!("\nload average at the end: {}", load_average());
    println!("total: {:.0} s", started.elapsed().as_secs_f64());
}

/// The number of runs: `$CIM_FAILOVER_RUNS`, else 5.
fn runs() -> usize {
    std::env::var(RUNS_VARIABLE)
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .filter(|runs| *runs > 0)
        .unwrap_or(5)
}

/// The runs, one after the other on one cluster; they stop early when the cluster does not
/// settle after a run.
fn measure(
    cluster: &mut TestCluster,
    binaries: &Binaries,
    runs: usize,
    bound: Duration,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    for run in 1..=runs {
        let placed = match wait_settled(cluster) {
            Ok(placed) => placed,
            Err(reason) => {
                println!("run {run}: the cluster did not settle ({reason}); the runs stop here");
                break;
            }
        };
        let mut sample = kill_and_watch(cluster, binaries, &placed);
        let recovered = recover(cluster, &mut sample);
        print_sample(run, &sample, bound);
        if !sample.within(bound) {
            print_survivor_logs(cluster, &sample);
        }
        samples.push(sample);
        if let Err(reason) = recovered {
            println!("  recovery failed ({reason}); the runs stop here");
            break;
        }
    }
    samples
}

// ---------------------------------------------------------------------------------------------
// The binaries

/// The programs the bench runs.
struct Binaries {
    cmcld: PathBuf,
    cmviewcl: PathBuf,
}

impl Binaries {
    /// The release `cmcld` ([`cmcld_program`]), and `cmviewcl` beside it, else the debug one.
    /// When the release folder also holds `cimguard` (which writes the agents' users file),
    /// `$CIMGUARD_BIN_DIR` is set to it so that the tests crate's helpers use it too.
    fn find() -> Result<Binaries, String> {
        let cmcld = cmcld_program()?;
        let folder = cmcld.parent().map(Path::to_path_buf).unwrap_or_default();
        warn_if_stale(&cmcld);
        if std::env::var_os(BIN_DIR_VARIABLE).is_none() && folder.join("cimguard").exists() {
            // Still one thread: nothing reads the environment concurrently.
            std::env::set_var(BIN_DIR_VARIABLE, &folder);
        }
        let cmviewcl = match folder.join("cmviewcl") {
            release if release.exists() => release,
            _ => {
                let debug = cimguard_tests::agent::binary("cmviewcl")?;
                println!(
                    "WARNING: no cmviewcl in {}: {} is used (`cargo build --release --bins`)",
                    folder.display(),
                    debug.display()
                );
                debug
            }
        };
        println!("cmcld: {}", cmcld.display());
        println!("cmviewcl: {}", cmviewcl.display());
        Ok(Binaries { cmcld, cmviewcl })
    }
}

/// Warns when the agent's or the schema's sources are newer than `program` ([`cmcld_program`]
/// checks the daemon's own: `src/` and `cluster/src/`).
fn warn_if_stale(program: &Path) {
    let Ok(built) = std::fs::metadata(program).and_then(|m| m.modified()) else {
        return;
    };
    let root = workspace_root();
    for folder in ["provider/src", "cim-schema/src", "certs/src"] {
        if let Some(path) = newer_than(&root.join(folder), built) {
            println!(
                "WARNING: {} is newer than {}: rebuild with `cargo build --release --bins`",
                path.display(),
                program.display()
            );
            return;
        }
    }
}

/// A file under `folder` modified after `time`, if any.
fn newer_than(folder: &Path, time: SystemTime) -> Option<PathBuf> {
    for entry in std::fs::read_dir(folder).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = newer_than(&path, time) {
                return Some(found);
            }
        } else if entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified > time)
        {
            return Some(path);
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// The cluster

/// The demo's shape, as `demo_cluster()` in `tests/tests/cluster_cim.rs` has it, with the
/// demo's MEMBER_TIMEOUT and `program` as every node's daemon; started.
fn demo_cluster(program: &Path) -> TestCluster {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.with_agents(&[
        (ADMIN.0, "FULL_ADMIN", ADMIN.1),
        (MONITOR.0, "MONITOR", MONITOR.1),
    ]);
    cluster.add_demo_packages();
    cluster.use_program(program);
    cluster.start_all();
    cluster
}

/// Waits for the first formation, sets the generic resource up on every node and prints the
/// failover bound the daemons report.
fn prepare(cluster: &TestCluster) -> Result<(), String> {
    let formed = poll_until(Instant::now() + SETTLE_TIMEOUT, || {
        (1..=3).all(|k| cluster.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    if !formed {
        return Err(format!(
            "the cluster did not form within {SETTLE_TIMEOUT:?}"
        ));
    }
    for k in 1..=3 {
        set_resource(cluster, k)?;
    }
    match cluster.status(1) {
        Ok(status) => println!(
            "failover bound reported by n1's status: {:.2} s (the package's start on top)",
            status.failover_bound_seconds
        ),
        Err(e) => println!("n1's status: {e}"),
    }
    Ok(())
}

/// Sets dbpkg's generic resource up on node `k`, as cmsetresource on that node would.
fn set_resource(cluster: &TestCluster, k: usize) -> Result<(), String> {
    let request = Request::SetResource {
        name: RESOURCE.into(),
        value: ResourceValue::Status(true),
    };
    match cluster.request(k, &request)? {
        Reply::Done => Ok(()),
        other => Err(format!("{RESOURCE} up on n{k}: {other:?}")),
    }
}

/// Where each package is up (its nodes, empty when it is not up), by package name.
type Placement = Vec<(String, Vec<String>)>;

/// Node `k`'s epoch and [`Placement`], or None when node `k` is not up with all three
/// members.
fn placement(cluster: &TestCluster, k: usize) -> Option<(u64, Placement)> {
    let snapshot = cluster.status(k).ok()?.cluster;
    let members = snapshot
        .nodes
        .iter()
        .filter(|n| n.condition.status.as_str() == "up")
        .count();
    if snapshot.status.as_str() != "up" || members != 3 {
        return None;
    }
    let placed = snapshot
        .packages
        .iter()
        .map(|p| {
            let owners = if p.condition.status.as_str() == "up" {
                p.owners
                    .iter()
                    .filter_map(|n| snapshot.nodes.get(n.index()).map(|r| r.name.clone()))
                    .collect()
            } else {
                Vec::new()
            };
            (p.name.clone(), owners)
        })
        .collect();
    Some((snapshot.epoch.0, placed))
}

/// The epoch and the node running dbpkg when the cluster is settled: every node sees the
/// same epoch and placement, every package up (monpkg on all three), and every agent names
/// that node as dbpkg's CurrentNode in state running.
fn settled(cluster: &TestCluster, agents: &mut [Agent]) -> Option<(u64, String)> {
    let views: Vec<_> = (1..=3)
        .map(|k| placement(cluster, k))
        .collect::<Option<_>>()?;
    let (epoch, placed) = &views[0];
    if views.iter().any(|v| v != &views[0]) {
        return None;
    }
    let up = placed.iter().all(|(name, owners)| match name.as_str() {
        "monpkg" => owners.len() == 3,
        _ => owners.len() == 1,
    });
    let (_, db_owners) = placed.iter().find(|(name, _)| name == PACKAGE)?;
    let node = db_owners.first()?.clone();
    if !up {
        return None;
    }
    let agreed = agents.iter_mut().all(|agent| {
        agent.package().is_ok_and(|(current, state)| {
            current.as_deref() == Some(node.as_str()) && state.as_deref() == Some("running")
        })
    });
    agreed.then_some((*epoch, node))
}

/// Waits until the cluster is [`settled`] and stays so, unchanged, for [`QUIET`]; the node
/// running dbpkg.
fn wait_settled(cluster: &TestCluster) -> Result<String, String> {
    let mut agents: Vec<Agent> = (1..=3).map(|k| Agent::new(cluster, k)).collect();
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut since: Option<(Instant, (u64, String))> = None;
    let quiet = poll_until(deadline, || {
        let now = settled(cluster, &mut agents);
        match (&since, now) {
            (Some((at, before)), Some(now)) if *before == now => at.elapsed() >= QUIET,
            (_, Some(now)) => {
                since = Some((Instant::now(), now));
                false
            }
            (_, None) => {
                since = None;
                false
            }
        }
    });
    match since {
        Some((_, (_, node))) if quiet => Ok(node),
        _ => Err(format!("not settled within {SETTLE_TIMEOUT:?}")),
    }
}

/// The pid of dbpkg's service on node `k` (written at each start).
fn service_pid(cluster: &TestCluster, k: usize) -> Option<i32> {
    std::fs::read_to_string(cluster.dir(k).join("db.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Node `name`'s number (`nK`).
fn number(name: &str) -> Option<usize> {
    name.strip_prefix('n')?
        .parse()
        .ok()
        .filter(|k| (1..=3).contains(k))
}

// ---------------------------------------------------------------------------------------------
// One run

/// What one run measured, from the SIGKILL.
#[derive(Debug, Default)]
struct Sample {
    /// The killed node.
    victim: usize,
    /// The survivor whose agent was asked.
    survivor: usize,
    /// Until the agent named another node as dbpkg's CurrentNode; that node, and the
    /// PackageState it answered with.
    package: Option<Duration>,
    new_node: Option<String>,
    package_state: Option<String>,
    /// Until the agent showed the killed node down/failed.
    node: Option<Duration>,
    /// Until a `cmviewcl -v` that agreed had ended; whether the first one agreed.
    cmviewcl: Option<Duration>,
    cmviewcl_first_agreed: Option<bool>,
    /// Until the killed daemon was reaped.
    victim_gone: Option<Duration>,
    /// Polls, failed polls and their round trips.
    polls: usize,
    poll_errors: usize,
    round_trips: Vec<Duration>,
    /// The survivors' log lengths at the kill, for a closer look at a slow run.
    log_offsets: Vec<(usize, usize)>,
    /// Anything odd.
    notes: Vec<String>,
}

impl Sample {
    /// Whether all three were seen within `bound`.
    fn within(&self, bound: Duration) -> bool {
        [self.package, self.node, self.cmviewcl]
            .iter()
            .all(|t| t.is_some_and(|t| t <= bound))
    }
}

/// Kills the daemon of the node running dbpkg (`placed`) and polls a survivor's agent until
/// it shows dbpkg elsewhere and the killed node failed; then runs `cmviewcl -v`.
fn kill_and_watch(cluster: &mut TestCluster, binaries: &Binaries, placed: &str) -> Sample {
    let mut sample = Sample::default();
    let Some(victim) = number(placed) else {
        sample
            .notes
            .push(format!("dbpkg on an unknown node {placed}"));
        return sample;
    };
    let survivor = (1..=3).find(|k| *k != victim).unwrap_or(1);
    sample.victim = victim;
    sample.survivor = survivor;
    sample.log_offsets = (1..=3)
        .filter(|k| *k != victim)
        .map(|k| (k, cluster.log(k).len()))
        .collect();
    let mut agent = Agent::new(cluster, survivor);
    // One request first, so that the connection is open and warm before the kill.
    if let Err(e) = agent.package() {
        sample.notes.push(format!("warm-up request failed: {e}"));
    }
    let Ok(pid) = i32::try_from(cluster.pid(victim)) else {
        sample.notes.push("a pid out of range".into());
        return sample;
    };
    let start = Instant::now();
    if let Err(e) = kill(Pid::from_raw(pid), Signal::SIGKILL) {
        sample.notes.push(format!("kill -9: {e}"));
        return sample;
    }
    poll_agent(cluster, &mut agent, &mut sample, start);
    if sample.package.is_some() && sample.node.is_some() {
        run_cmviewcl(cluster, binaries, &mut sample, start);
    }
    for (missing, what) in [
        (sample.package.is_none(), "CurrentNode never moved"),
        (
            sample.node.is_none(),
            "the killed node never showed down/failed",
        ),
    ] {
        if missing {
            sample
                .notes
                .push(format!("{what} within {}", seconds(RUN_TIMEOUT)));
        }
    }
    sample
}

/// Polls `agent` every [`POLL_INTERVAL`] from `start` until it shows both changes or
/// [`RUN_TIMEOUT`] passes.
fn poll_agent(cluster: &mut TestCluster, agent: &mut Agent, sample: &mut Sample, start: Instant) {
    let victim = format!("n{}", sample.victim);
    let deadline = start + RUN_TIMEOUT;
    loop {
        let asked = Instant::now();
        match agent.package() {
            Ok((Some(current), state)) if current != victim && sample.package.is_none() => {
                sample.package = Some(start.elapsed());
                sample.new_node = Some(current);
                sample.package_state = state;
            }
            Ok(_) => {}
            Err(_) => sample.poll_errors += 1,
        }
        if sample.node.is_none() {
            match agent.node(&victim) {
                Ok((status, state)) if status == "down" && state == "failed" => {
                    sample.node = Some(start.elapsed());
                }
                Ok(_) => {}
                Err(_) => sample.poll_errors += 1,
            }
        }
        sample.round_trips.push(asked.elapsed());
        sample.polls += 1;
        if sample.victim_gone.is_none() && cluster.exited(sample.victim).is_some() {
            sample.victim_gone = Some(start.elapsed());
        }
        if (sample.package.is_some() && sample.node.is_some()) || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Runs `cmviewcl -v` against the survivor's agent until one agrees with what its agent
/// showed (once is the rule; more only when the first disagrees), within [`RUN_TIMEOUT`].
fn run_cmviewcl(cluster: &TestCluster, binaries: &Binaries, sample: &mut Sample, start: Instant) {
    let victim = format!("n{}", sample.victim);
    let new_node = sample.new_node.clone().unwrap_or_default();
    let deadline = start + RUN_TIMEOUT;
    loop {
        let table = cmviewcl(cluster, sample.survivor, &binaries.cmviewcl);
        let agreed = table.as_ref().is_ok_and(|t| agrees(t, &victim, &new_node));
        if sample.cmviewcl_first_agreed.is_none() {
            sample.cmviewcl_first_agreed = Some(agreed);
            if !agreed {
                let why = match &table {
                    Ok(text) => format!("first cmviewcl -v disagreed:\n{text}"),
                    Err(e) => format!("first cmviewcl -v failed: {e}"),
                };
                sample.notes.push(why);
            }
        }
        if agreed {
            sample.cmviewcl = Some(start.elapsed());
            return;
        }
        if Instant::now() >= deadline {
            sample.notes.push("no cmviewcl -v agreed".into());
            return;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// `cmviewcl -v` against node `k`'s agent as the monitor: its output, or why there is none.
fn cmviewcl(cluster: &TestCluster, k: usize, program: &Path) -> Result<String, String> {
    let mut command = client_command(program);
    command
        .arg("-v")
        .env("CIMGUARD_URL", cluster.agent_url(k))
        .env("CIMGUARD_USER", MONITOR.0)
        .env("CIMGUARD_PASSWORD", MONITOR.1)
        .env("CIMGUARD_CA", cluster.agent_ca(k));
    let output = output_within(&mut command, CMVIEWCL_TIMEOUT)?;
    if !output.status.success() {
        return Err(describe(&output));
    }
    String::from_utf8(output.stdout).map_err(|e| e.to_string())
}

/// Whether a `cmviewcl -v` table shows `victim` down/failed and dbpkg up on `node`.
fn agrees(table: &str, victim: &str, node: &str) -> bool {
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    let failed = rows.iter().any(|r| r[..] == [victim, "down", "failed"]);
    let package = rows
        .iter()
        .any(|r| r.len() == 5 && r[0] == PACKAGE && r[1] == "up" && r[4] == node);
    failed && package
}

/// Reaps the killed daemon, makes sure dbpkg's service went with it, starts the node again
/// and sets its generic resource up once it is a member.
fn recover(cluster: &mut TestCluster, sample: &mut Sample) -> Result<(), String> {
    let victim = sample.victim;
    if victim == 0 {
        return Err("no node was killed".into());
    }
    if !poll_until(Instant::now() + GONE_TIMEOUT, || {
        cluster.exited(victim).is_some()
    }) {
        return Err(format!("n{victim}'s daemon does not end"));
    }
    if let Some(service) = service_pid(cluster, victim) {
        if !poll_until(Instant::now() + GONE_TIMEOUT, || !alive(service)) {
            sample
                .notes
                .push("dbpkg's service outlived its daemon: killed by the bench".into());
            let _ = kill(Pid::from_raw(service), Signal::SIGKILL);
        }
    }
    cluster.start(victim);
    let rejoined = poll_until(Instant::now() + SETTLE_TIMEOUT, || {
        (1..=3).all(|k| cluster.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    if !rejoined {
        return Err(format!(
            "n{victim} did not rejoin within {SETTLE_TIMEOUT:?}"
        ));
    }
    set_resource(cluster, victim)
}

// ---------------------------------------------------------------------------------------------
// The CIM client

/// A survivor's agent, asked over one kept-alive HTTPS connection (opened again after an
/// error).
struct Agent {
    address: SocketAddr,
    host: String,
    ca: PathBuf,
    authorization: String,
    connection: Option<Connection>,
}

impl Agent {
    /// Node `k`'s agent, as the monitor.
    fn new(cluster: &TestCluster, k: usize) -> Agent {
        let url = cluster.agent_url(k);
        let host = url.trim_start_matches("https://").to_owned();
        let address = host
            .parse()
            .unwrap_or_else(|e| panic!("agent address {host}: {e}"));
        Agent {
            address,
            host,
            ca: cluster.agent_ca(k),
            authorization: basic(MONITOR.0, MONITOR.1),
            connection: None,
        }
    }

    /// dbpkg's CurrentNode and PackageState.
    fn package(&mut self) -> Result<(Option<String>, Option<String>), String> {
        let instance = self.get_instance(
            "HP_SGPackage",
            &[
                ("SystemCreationClassName", "HP_SGCluster"),
                ("SystemName", CLUSTER_NAME),
                ("CreationClassName", "HP_SGPackage"),
                ("Name", PACKAGE),
            ],
            &["CurrentNode", "PackageState"],
        )?;
        Ok((
            text(&instance, "CurrentNode"),
            text(&instance, "PackageState"),
        ))
    }

    /// Node `name`'s NodeStatus and NodeState.
    fn node(&mut self, name: &str) -> Result<(String, String), String> {
        let instance = self.get_instance(
            "HP_SGNode",
            &[("CreationClassName", "HP_SGNode"), ("Name", name)],
            &["NodeStatus", "NodeState"],
        )?;
        Ok((
            text(&instance, "NodeStatus").unwrap_or_default(),
            text(&instance, "NodeState").unwrap_or_default(),
        ))
    }

    /// GetInstance of `class` with string `keys`, asking for `properties` only.
    fn get_instance(
        &mut self,
        class: &str,
        keys: &[(&str, &str)],
        properties: &[&str],
    ) -> Result<Instance, String> {
        let keys: String = keys
            .iter()
            .map(|(name, value)| {
                format!(
                    r#"<KEYBINDING NAME="{name}"><KEYVALUE VALUETYPE="string">{value}</KEYVALUE></KEYBINDING>"#
                )
            })
            .collect();
        let properties: String = properties
            .iter()
            .map(|p| format!("<VALUE>{p}</VALUE>"))
            .collect();
        let params = format!(
            r#"<IPARAMVALUE NAME="InstanceName"><INSTANCENAME CLASSNAME="{class}">{keys}</INSTANCENAME></IPARAMVALUE><IPARAMVALUE NAME="LocalOnly"><VALUE>FALSE</VALUE></IPARAMVALUE><IPARAMVALUE NAME="PropertyList"><VALUE.ARRAY>{properties}</VALUE.ARRAY></IPARAMVALUE>"#
        );
        let body = imethod_call(1, "GetInstance", NAMESPACE, &params);
        let answer = self.exchange("GetInstance", &body)?;
        instance_of(&answer)
    }

    /// One CIM-XML request; the response body. The connection is dropped after an error.
    fn exchange(&mut self, method: &str, body: &str) -> Result<Vec<u8>, String> {
        let connection = match self.connection.take() {
            Some(connection) => connection,
            None => Connection::tls(
                self.address,
                &self.ca,
                self.address.ip().to_string().as_str(),
                TlsVersion::Tls13,
            )?,
        };
        let mut connection = connection;
        let bytes = request(
            "POST",
            "/cimom",
            &self.host,
            &[
                ("Content-Type", "application/xml; charset=\"utf-8\""),
                ("CIMOperation", "MethodCall"),
                ("CIMMethod", method),
                ("CIMObject", "root%2Fcimv2"),
                ("CIMProtocolVersion", "1.0"),
                ("Authorization", &self.authorization),
            ],
            Some(body.as_bytes()),
        );
        let response = connection.request(&bytes).map_err(|e| e.to_string())?;
        if response.status != 200 || response.header("CIMError").is_some() {
            return Err(format!(
                "{} {:?}: {}",
                response.status,
                response.header("CIMError"),
                response.body_text()
            ));
        }
        self.connection = Some(connection);
        Ok(response.body)
    }
}

/// The instance in a GetInstance response.
fn instance_of(body: &[u8]) -> Result<Instance, String> {
    let message = decode(body, &Limits::DEFAULT).map_err(|e| e.to_string())?;
    let Body::Response(Response::IMethod(response)) = message.body else {
        return Err("not an intrinsic method response".into());
    };
    let returned = response
        .result
        .map_err(|e| format!("CIM error {}: {:?}", e.code, e.description))?;
    match returned.return_value.unwrap_or_default().into_iter().next() {
        Some(Data::Instance(instance) | Data::NamedInstance(_, instance)) => Ok(instance),
        other => Err(format!("not an instance: {other:?}")),
    }
}

/// A string property's value (None: absent or NULL).
fn text(instance: &Instance, name: &str) -> Option<String> {
    instance
        .value(name)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

// ---------------------------------------------------------------------------------------------
// Output

fn print_sample(run: usize, sample: &Sample, bound: Duration) {
    let mut trips = sample.round_trips.clone();
    trips.sort();
    let median = trips.get(trips.len().saturating_sub(1) / 2).copied();
    let first = match sample.cmviewcl_first_agreed {
        Some(false) => " (the first did not)",
        _ => "",
    };
    println!(
        "run {run}: killed n{} (dbpkg there), asked n{}'s agent: CurrentNode {} at {} s \
         (PackageState {}), n{} down/failed at {} s, cmviewcl -v agreed at {} s{first}; \
         n{} reaped at {} s; {} polls ({} failed), round trip median {} ms max {} ms; \
         bound {} s: {}",
        sample.victim,
        sample.survivor,
        sample.new_node.as_deref().unwrap_or("-"),
        maybe_seconds(sample.package),
        sample.package_state.as_deref().unwrap_or("-"),
        sample.victim,
        maybe_seconds(sample.node),
        maybe_seconds(sample.cmviewcl),
        sample.victim,
        maybe_seconds(sample.victim_gone),
        sample.polls,
        sample.poll_errors,
        median.map_or(0, |d| d.as_millis()),
        trips.last().map_or(0, |d| d.as_millis()),
        seconds(bound),
        if sample.within(bound) {
            "within"
        } else {
            "OVER"
        }
    );
    for note in &sample.notes {
        println!("  note: {note}");
    }
}

/// The survivors' log lines written since the kill (at most [`LOG_LINES_MAX`] each).
fn print_survivor_logs(cluster: &TestCluster, sample: &Sample) {
    for (k, offset) in &sample.log_offsets {
        let log = cluster.log(*k);
        let lines: Vec<&str> = log.get(*offset..).unwrap_or_default().lines().collect();
        println!(
            "  n{k}'s log since the kill ({} lines, the first {} shown):",
            lines.len(),
            lines.len().min(LOG_LINES_MAX)
        );
        for line in lines.iter().take(LOG_LINES_MAX) {
            println!("    {line}");
        }
    }
}

/// Which time of a [`Sample`] a summary row shows.
type Pick = fn(&Sample) -> Option<Duration>;

fn print_summary(samples: &[Sample], runs: usize, bound: Duration) {
    println!(
        "\n== summary: seconds from the SIGKILL, {} of {runs} runs ==",
        samples.len()
    );
    println!(
        "| measure | min | median | max | runs within {} s |",
        seconds(bound)
    );
    println!("|---|---|---|---|---|");
    let rows: [(&str, Pick); 3] = [
        ("HP_SGPackage.CurrentNode names another node", |s| s.package),
        ("HP_SGNode of the killed node down/failed", |s| s.node),
        ("`cmviewcl -v` agrees", |s| s.cmviewcl),
    ];
    for (what, pick) in rows {
        let mut values: Vec<Duration> = samples.iter().filter_map(pick).collect();
        values.sort();
        let within = values.iter().filter(|v| **v <= bound).count();
        let cell = |d: Option<&Duration>| d.map_or_else(|| "-".to_owned(), |d| seconds(*d));
        println!(
            "| {what} | {} | {} | {} | {within} of {} |",
            cell(values.first()),
            cell(values.get(values.len().saturating_sub(1) / 2)),
            cell(values.last()),
            samples.len()
        );
    }
    let within = samples.iter().filter(|s| s.within(bound)).count();
    println!(
        "runs with all three within MEMBER_TIMEOUT + {} s = {} s: {within} of {}",
        BOUND_MARGIN.as_secs(),
        seconds(bound),
        samples.len()
    );
    println!("(median: the lower of the two middle values for an even count)");
}
