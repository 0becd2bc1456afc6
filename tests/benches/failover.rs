//! The failover benchmark (issue 5): a three-node cluster of real `cmcld` processes in network
//! namespaces, and corosync in namespaces of the same shape, faults injected into node 3:
//! kill -9, SIGSTOP, a symmetric partition and an asymmetric one (node 3 hears nobody). It
//! measures, from the injection:
//!
//! - membership: until both survivors' status (the admin socket; `corosync-quorumtool -l` for
//!   corosync) shows the membership without node 3;
//! - package (cmcld only): until the failover package that ran on node 3 is up on a survivor.
//!
//! One cluster serves every run of a profile: after a run the harness heals the network,
//! starts node 3 again and waits until it is back and the package has failed back to it
//! (failback_policy automatic).
//!
//! ```sh
//! cargo build --release --bin cmcld
//! cargo bench -p cimguard-tests --bench failover 2>&1 | tee /tmp/failover.txt
//! FAILOVER_BENCH_RUNS=1 FAILOVER_BENCH_CASES=cmcld-fast,corosync-token1000-kill cargo bench ...
//! ```
//!
//! Needs root, `ip` and `nft`; corosync is optional (its cases are skipped when it is not
//! installed). The bench starts the release `cmcld` (`target/release/cmcld`, or the one in
//! `$CIMGUARD_BIN_DIR`) and builds nothing; it warns when that binary is older than the
//! sources. `FAILOVER_BENCH_LOG_DIR=DIR` keeps every node's log. Run it as one foreground
//! command: on the development VM, background processes stall between shell commands.
//!
//! The membership is polled every 20 ms; corosync's is also read from its log's millisecond
//! timestamps. The end of cmcld's fence wait is the survivors' `TakeoverAllowed` log line for
//! node 3, seen by the same polling.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use cimguard_tests::cluster::TestCluster;
use cimguard_tests::failover::{
    alive, cmcld_program, heal, keep_log, load_average, machine, maybe_seconds, poll_until, runs,
    selected, started_in_namespaces, Corosync, Fault, Sample, Summary, CASES_VARIABLE,
    POLL_INTERVAL, RUNS_VARIABLE, SURVIVORS, VICTIM,
};

/// The failover package: primary node n3, then n1 and n2; it fails back to n3 by itself.
const PACKAGE: &str = "pkgA";
const PACKAGE_TEXT: &str = "package_name pkgA\npackage_type failover\nnode_name n3\n\
     node_name n1\nnode_name n2\nauto_run yes\nfailback_policy automatic\nservice_name svc\n\
     service_cmd \"echo $$ > $SGRUN/svc.pid; exec sleep infinity\"\nservice_halt_timeout 2\n";

/// The line a survivor logs when its fence wait for node 3 is over.
const TAKEOVER: &str = "TakeoverAllowed { node: NodeId(2)";

/// A cmcld timing profile.
struct Profile {
    name: &'static str,
    member_timeout: Duration,
    what: &'static str,
}

const PROFILES: [Profile; 3] = [
    Profile {
        name: "default",
        member_timeout: Duration::from_secs(14),
        what: "MEMBER_TIMEOUT 14 s (Serviceguard's default)",
    },
    Profile {
        name: "fast",
        member_timeout: Duration::from_secs(1),
        what: "MEMBER_TIMEOUT 1 s",
    },
    Profile {
        name: "3s",
        member_timeout: Duration::from_secs(3),
        what: "MEMBER_TIMEOUT 3 s (the least the cluster file accepts with two networks)",
    },
];

/// A corosync configuration: its name and the lines added to `totem`.
struct CorosyncConfig {
    name: &'static str,
    totem: &'static str,
}

const COROSYNC_CONFIGS: [CorosyncConfig; 3] = [
    CorosyncConfig {
        name: "defaults",
        totem: "",
    },
    CorosyncConfig {
        name: "token1000",
        totem: "  token: 1000\n",
    },
    CorosyncConfig {
        name: "token500",
        totem: "  token: 500\n  token_coefficient: 0\n",
    },
];

/// The results of one profile or configuration: a heading and its faults' samples, or why it
/// did not run.
struct Table {
    title: String,
    outcome: Result<Vec<(Fault, Vec<Sample>)>, String>,
    with_package: bool,
}

fn main() {
    let started = Instant::now();
    let runs = runs();
    let cases = std::env::var(CASES_VARIABLE).unwrap_or_else(|_| "all".into());
    println!("failover benchmark: {runs} runs per case (${RUNS_VARIABLE}), cases: {cases}");
    println!("machine: {}", machine());
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: the benchmark makes network namespaces and needs root");
        return;
    }
    let mut tables = Vec::new();
    match cmcld_program() {
        Ok(program) => {
            println!("cmcld: {}", program.display());
            for profile in &PROFILES {
                let faults = chosen(&format!("cmcld-{}", profile.name));
                if !faults.is_empty() {
                    tables.push(cmcld_profile(profile, &faults, runs, &program));
                }
            }
        }
        Err(reason) => println!("cmcld cases skipped: {reason}"),
    }
    match Corosync::version() {
        Some(version) => {
            println!("corosync: {version}");
            for config in &COROSYNC_CONFIGS {
                let faults = chosen(&format!("corosync-{}", config.name));
                if !faults.is_empty() {
                    tables.push(corosync_config(config, &faults, runs));
                }
            }
        }
        None => println!("corosync not installed: skipped (apt-get install corosync)"),
    }
    println!("\n== summary: seconds from the fault, p50 / max over the runs ==");
    for table in &tables {
        print_table(table);
    }
    println!("\nload average at the end: {}", load_average());
    println!("total: {:.0} s", started.elapsed().as_secs_f64());
}

/// The faults whose case (`prefix-fault`) is selected.
fn chosen(prefix: &str) -> Vec<Fault> {
    Fault::ALL
        .into_iter()
        .filter(|fault| selected(&format!("{prefix}-{}", fault.name())))
        .collect()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

// ---------------------------------------------------------------------------------------------
// cmcld

/// What one node's status shows.
struct View {
    members: Vec<String>,
    epoch: u64,
    /// Where the package is up (its status `up`), if anywhere.
    package_up_on: Option<String>,
}

fn view(cluster: &TestCluster, k: usize) -> Option<View> {
    let status = cluster.status(k).ok()?;
    let snapshot = status.cluster;
    if snapshot.status.as_str() != "up" {
        return None;
    }
    let members = snapshot
        .nodes
        .iter()
        .filter(|n| n.condition.status.as_str() == "up")
        .map(|n| n.name.clone())
        .collect();
    let package_up_on = snapshot
        .packages
        .iter()
        .find(|p| p.name == PACKAGE && p.condition.status.as_str() == "up")
        .and_then(|p| p.owners.iter().next())
        .and_then(|owner| snapshot.nodes.get(owner.index()))
        .map(|row| row.name.clone());
    Some(View {
        members,
        epoch: snapshot.epoch.0,
        package_up_on,
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

/// The epoch when every node sees all three up in one membership and the package up on n3
/// with its service running.
fn steady(cluster: &TestCluster) -> Option<u64> {
    let all = names(&["n1", "n2", "n3"]);
    let views: Vec<View> = (1..=3).map(|k| view(cluster, k)).collect::<Option<_>>()?;
    let epoch = views[0].epoch;
    let settled = views
        .iter()
        .all(|v| v.members == all && v.epoch == epoch && v.package_up_on.as_deref() == Some("n3"));
    (settled && service_pid(cluster, VICTIM).is_some_and(alive)).then_some(epoch)
}

/// Waits until the cluster is steady and stays so (same epoch) for a quiet second.
fn wait_steady(cluster: &TestCluster, within: Duration) -> Result<u64, String> {
    let deadline = Instant::now() + within;
    let mut epoch = 0;
    if !poll_until(deadline, || steady(cluster).map(|e| epoch = e).is_some()) {
        return Err(format!("not steady within {within:?}"));
    }
    std::thread::sleep(Duration::from_secs(1));
    match steady(cluster) {
        Some(again) if again == epoch => Ok(epoch),
        Some(again) => Err(format!("spurious re-formation: epoch {epoch} then {again}")),
        None => Err("steady, then no longer a second later".into()),
    }
}

/// A cluster for `profile` with the package on n3, or why there is none.
fn cmcld_cluster(profile: &Profile, program: &Path) -> Result<TestCluster, String> {
    let cluster =
        started_in_namespaces(3, profile.member_timeout, (PACKAGE, PACKAGE_TEXT), program)?;
    wait_steady(
        &cluster,
        Duration::from_secs(60) + profile.member_timeout * 6,
    )
    .map_err(|e| format!("the cluster did not form: {e}\n{}", cluster.logs()))?;
    Ok(cluster)
}

fn cmcld_profile(profile: &Profile, faults: &[Fault], runs: usize, program: &Path) -> Table {
    let title = format!("cmcld, profile {} ({})", profile.name, profile.what);
    println!("\n== {title} ==");
    let cluster = match cmcld_cluster(profile, program) {
        Ok(cluster) => cluster,
        Err(reason) => {
            println!("skipped: {reason}");
            return Table {
                title,
                outcome: Err(reason),
                with_package: true,
            };
        }
    };
    match cluster.status(1) {
        Ok(status) => println!(
            "failover bound reported by n1's status: {:.2} s",
            status.failover_bound_seconds
        ),
        Err(e) => println!("n1's status: {e}"),
    }
    let mut samples: Vec<(Fault, Vec<Sample>)> = faults.iter().map(|f| (*f, Vec::new())).collect();
    let mut cluster = Some(cluster);
    'runs: for run in 1..=runs {
        for (fault, list) in &mut samples {
            let Some(current) = cluster.as_mut() else {
                break 'runs;
            };
            let mut sample = cmcld_run(current, *fault, profile);
            let recovered = cmcld_recover(current, *fault, profile, &mut sample);
            print_sample(
                &format!("cmcld-{}-{}", profile.name, fault.name()),
                run,
                &sample,
            );
            list.push(sample);
            if let Err(reason) = recovered {
                println!("  recovery failed ({reason}): a new cluster");
                keep_cmcld_logs(current, profile);
                // The old cluster goes (daemons killed, namespaces removed) before the new one.
                cluster = None;
                match cmcld_cluster(profile, program) {
                    Ok(new) => cluster = Some(new),
                    Err(reason) => {
                        println!("  no new cluster: {reason}; the profile stops here");
                        break 'runs;
                    }
                }
            }
        }
    }
    if let Some(cluster) = &cluster {
        keep_cmcld_logs(cluster, profile);
    }
    Table {
        title,
        outcome: Ok(samples),
        with_package: true,
    }
}

fn keep_cmcld_logs(cluster: &TestCluster, profile: &Profile) {
    for k in 1..=3 {
        keep_log(&format!("cmcld-{}-n{k}.log", profile.name), &cluster.log(k));
    }
}

/// One fault and what the survivors show until node 3's package runs on one of them.
fn cmcld_run(cluster: &mut TestCluster, fault: Fault, profile: &Profile) -> Sample {
    let mut sample = Sample::default();
    let before = view(cluster, 1).map(|v| v.epoch);
    let service = service_pid(cluster, VICTIM);
    let two = names(&["n1", "n2"]);
    let takeovers = |c: &TestCluster| SURVIVORS.map(|k| c.log(k).matches(TAKEOVER).count());
    let takeovers_before = takeovers(cluster);
    let start = Instant::now();
    if let Err(e) = fault.inject(cluster.namespaces(), cluster.pid(VICTIM)) {
        sample.notes.push(format!("injection failed: {e}"));
        return sample;
    }
    let injected = start.elapsed();
    if injected > Duration::from_millis(50) {
        sample
            .notes
            .push(format!("injection took {} ms", injected.as_millis()));
    }
    let deadline = start + profile.member_timeout * 4 + Duration::from_secs(40);
    let mut reformed: [Option<Duration>; 2] = [None, None];
    let mut epochs = BTreeSet::new();
    loop {
        for (i, k) in SURVIVORS.into_iter().enumerate() {
            let Some(v) = view(cluster, k) else { continue };
            let now = start.elapsed();
            if Some(v.epoch) != before {
                epochs.insert(v.epoch);
            }
            if reformed[i].is_none() && v.members == two && Some(v.epoch) != before {
                reformed[i] = Some(now);
            }
            let elsewhere = v.package_up_on.as_deref().is_some_and(|n| n != "n3");
            if sample.package.is_none() && elsewhere {
                sample.package = Some(now);
                if service.is_some_and(alive) {
                    sample
                        .notes
                        .push("OVERLAP: n3's service still ran when a survivor had it up".into());
                }
            }
        }
        if let [Some(a), Some(b)] = reformed {
            sample.membership = Some(a.max(b));
        }
        if sample.takeover_allowed.is_none() {
            let now = takeovers(cluster);
            if now[0] > takeovers_before[0] || now[1] > takeovers_before[1] {
                sample.takeover_allowed = Some(start.elapsed());
            }
        }
        if sample.victim_gone.is_none() && cluster.exited(VICTIM).is_some() {
            sample.victim_gone = Some(start.elapsed());
        }
        if sample.service_gone.is_none() && !service.is_some_and(alive) {
            sample.service_gone = Some(start.elapsed());
        }
        // The takeover line comes before the package is up; a log format it no longer
        // matches must not hold every run until its deadline.
        let done = sample.membership.is_some()
            && sample.package.is_some()
            && sample.victim_gone.is_some()
            && sample.service_gone.is_some();
        if done || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    note_what_is_missing(&mut sample, epochs.len(), start.elapsed());
    sample
}

/// Notes on a cmcld run: more than one membership after the fault, steps never seen.
fn note_what_is_missing(sample: &mut Sample, memberships: usize, elapsed: Duration) {
    if memberships > 1 {
        sample.notes.push(format!(
            "survivors went through {memberships} memberships after the fault"
        ));
    }
    for (missing, what) in [
        (sample.membership.is_none(), "no re-formation"),
        (
            sample.takeover_allowed.is_none(),
            "no TakeoverAllowed line seen",
        ),
        (sample.package.is_none(), "package not up on a survivor"),
        (sample.victim_gone.is_none(), "n3's daemon still there"),
        (sample.service_gone.is_none(), "n3's service still running"),
    ] {
        if missing {
            sample
                .notes
                .push(format!("{what} after {:.0} s", elapsed.as_secs_f64()));
        }
    }
}

/// Ends whatever is left of node 3, heals the network, starts node 3 again and waits until
/// the package is back on it.
fn cmcld_recover(
    cluster: &mut TestCluster,
    fault: Fault,
    profile: &Profile,
    sample: &mut Sample,
) -> Result<(), String> {
    if cluster.exited(VICTIM).is_none() {
        sample.notes.push(format!(
            "n3's daemon survived the {} fault: killed by the bench",
            fault.name()
        ));
        let pid = Pid::from_raw(cluster.pid(VICTIM) as i32);
        let _ = kill(pid, Signal::SIGKILL);
        let _ = kill(pid, Signal::SIGCONT);
        poll_until(Instant::now() + Duration::from_secs(5), || {
            cluster.exited(VICTIM).is_some()
        });
    }
    if let Some(service) = service_pid(cluster, VICTIM).filter(|p| alive(*p)) {
        sample
            .notes
            .push("n3's service outlived its daemon: killed by the bench".into());
        let _ = kill(Pid::from_raw(service), Signal::SIGKILL);
    }
    heal(cluster.namespaces(), 3)?;
    if cluster.exited(VICTIM).is_none() {
        return Err("n3's daemon does not end".into());
    }
    cluster.start(VICTIM);
    wait_steady(
        cluster,
        Duration::from_secs(90) + profile.member_timeout * 6,
    )
    .map(|_| ())
}

// ---------------------------------------------------------------------------------------------
// corosync

/// A corosync cluster with every node up in one membership, or why there is none.
fn corosync_cluster(config: &CorosyncConfig) -> Result<Corosync, String> {
    let mut corosync = Corosync::configure(config.totem)?;
    for k in 1..=3 {
        corosync.start(k)?;
    }
    corosync_steady(&corosync, Duration::from_secs(60))?;
    Ok(corosync)
}

/// Waits until every node sees all three members, then a quiet second.
fn corosync_steady(corosync: &Corosync, within: Duration) -> Result<(), String> {
    let all = vec![1, 2, 3];
    let everyone = || (1..=3).all(|k| corosync.members(k).as_ref() == Some(&all));
    if !poll_until(Instant::now() + within, everyone) {
        return Err(format!(
            "not all three members within {within:?}\n{}",
            corosync.log(1)
        ));
    }
    std::thread::sleep(Duration::from_secs(1));
    if everyone() {
        Ok(())
    } else {
        Err("all three members, then no longer a second later".into())
    }
}

fn corosync_config(config: &CorosyncConfig, faults: &[Fault], runs: usize) -> Table {
    let mut title = format!("corosync, {}", config.name);
    println!("\n== {title} ==");
    let corosync = match corosync_cluster(config) {
        Ok(corosync) => corosync,
        Err(reason) => {
            println!("skipped: {reason}");
            return Table {
                title,
                outcome: Err(reason),
                with_package: false,
            };
        }
    };
    let token = corosync.cmap(1, "runtime.config.totem.token");
    let consensus = corosync.cmap(1, "runtime.config.totem.consensus");
    if let (Some(token), Some(consensus)) = (token, consensus) {
        title.push_str(&format!(
            " (effective token {token} ms, consensus {consensus} ms)"
        ));
        println!("{title}");
    }
    let mut samples: Vec<(Fault, Vec<Sample>)> = faults.iter().map(|f| (*f, Vec::new())).collect();
    let mut corosync = Some(corosync);
    'runs: for run in 1..=runs {
        for (fault, list) in &mut samples {
            let Some(current) = corosync.as_mut() else {
                break 'runs;
            };
            let changes = current.membership_changes(1);
            let mut sample = corosync_run(current, *fault);
            let recovered = corosync_recover(current, *fault);
            // A fault and the rejoin: two membership changes on node 1.
            let extra = current.membership_changes(1).saturating_sub(changes + 2);
            if extra > 0 {
                sample
                    .notes
                    .push(format!("{extra} extra membership change(s) on n1"));
            }
            print_sample(
                &format!("corosync-{}-{}", config.name, fault.name()),
                run,
                &sample,
            );
            list.push(sample);
            if let Err(reason) = recovered {
                println!("  recovery failed ({reason}): a new cluster");
                keep_corosync_logs(current, config);
                corosync = None;
                match corosync_cluster(config) {
                    Ok(new) => corosync = Some(new),
                    Err(reason) => {
                        println!("  no new cluster: {reason}; the configuration stops here");
                        break 'runs;
                    }
                }
            }
        }
    }
    if let Some(corosync) = &corosync {
        keep_corosync_logs(corosync, config);
    }
    Table {
        title,
        outcome: Ok(samples),
        with_package: false,
    }
}

fn keep_corosync_logs(corosync: &Corosync, config: &CorosyncConfig) {
    for k in 1..=3 {
        keep_log(
            &format!("corosync-{}-n{k}.log", config.name),
            &corosync.log(k),
        );
    }
}

fn corosync_run(corosync: &mut Corosync, fault: Fault) -> Sample {
    let mut sample = Sample::default();
    let Some(pid) = corosync.pid(VICTIM) else {
        sample.notes.push("n3 not running".into());
        return sample;
    };
    let two = vec![1, 2];
    let offsets = SURVIVORS.map(|k| corosync.log_length(k));
    let wall = SystemTime::now();
    let start = Instant::now();
    if let Err(e) = fault.inject(corosync.namespaces(), pid) {
        sample.notes.push(format!("injection failed: {e}"));
        return sample;
    }
    let deadline = start + Duration::from_secs(60);
    let mut reformed: [Option<Duration>; 2] = [None, None];
    loop {
        for (i, k) in SURVIVORS.into_iter().enumerate() {
            if reformed[i].is_none() && corosync.members(k).as_ref() == Some(&two) {
                reformed[i] = Some(start.elapsed());
            }
        }
        if sample.victim_gone.is_none() && corosync.exited(VICTIM) {
            sample.victim_gone = Some(start.elapsed());
        }
        if let [Some(a), Some(b)] = reformed {
            sample.membership = Some(a.max(b));
            break;
        }
        if Instant::now() >= deadline {
            sample.notes.push("no re-formation after 60 s".into());
            break;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    let logged =
        [0, 1].map(|i| corosync.logged_since(SURVIVORS[i], offsets[i], "Members[2]: 1 2", wall));
    if let [Some(a), Some(b)] = logged {
        sample.membership_logged = Some(a.max(b));
    }
    sample
}

fn corosync_recover(corosync: &mut Corosync, fault: Fault) -> Result<(), String> {
    match fault {
        Fault::Kill => {
            corosync.stop(VICTIM);
            corosync.start(VICTIM)?;
        }
        Fault::Stop => corosync.signal(VICTIM, Signal::SIGCONT)?,
        Fault::Partition | Fault::Asymmetric => heal(corosync.namespaces(), 3)?,
    }
    corosync_steady(corosync, Duration::from_secs(60))
}

// ---------------------------------------------------------------------------------------------
// output

fn print_sample(case: &str, run: usize, sample: &Sample) {
    println!(
        "{case} run {run}: membership {} (logged {}) takeover {} package {} n3 gone {} \
         service gone {}{}",
        maybe_seconds(sample.membership),
        maybe_seconds(sample.membership_logged),
        maybe_seconds(sample.takeover_allowed),
        maybe_seconds(sample.package),
        maybe_seconds(sample.victim_gone),
        maybe_seconds(sample.service_gone),
        if sample.notes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", sample.notes.join("; "))
        }
    );
}

fn print_table(table: &Table) {
    println!("\n{}", table.title);
    let samples = match &table.outcome {
        Ok(samples) => samples,
        Err(reason) => {
            println!("  not run: {}", reason.lines().next().unwrap_or_default());
            return;
        }
    };
    if table.with_package {
        println!(
            "| fault | membership p50 / max | takeover allowed p50 / max | package up p50 / max \
             | n3's service gone p50 / max |"
        );
        println!("|---|---|---|---|---|");
    } else {
        println!("| fault | membership p50 / max | membership in the log p50 / max |");
        println!("|---|---|---|");
    }
    let mut noted = Vec::new();
    for (fault, list) in samples {
        if list.is_empty() {
            continue;
        }
        let odd = list.iter().filter(|s| !s.notes.is_empty()).count();
        if odd > 0 {
            noted.push(format!("{}: {odd} of {}", fault.name(), list.len()));
        }
        let of = |pick: fn(&Sample) -> Option<Duration>| {
            Summary::of(&list.iter().map(pick).collect::<Vec<_>>()).cell()
        };
        let membership = of(|s| s.membership);
        if table.with_package {
            println!(
                "| {} | {membership} | {} | {} | {} |",
                fault.name(),
                of(|s| s.takeover_allowed),
                of(|s| s.package),
                of(|s| s.service_gone)
            );
        } else {
            println!(
                "| {} | {membership} | {} |",
                fault.name(),
                of(|s| s.membership_logged)
            );
        }
    }
    if !noted.is_empty() {
        println!("runs with notes (see the run lines): {}", noted.join(", "));
    }
}
