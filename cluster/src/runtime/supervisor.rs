//! Process supervision, cmserviced's job: a package's scripts and services as real processes.
//!
//! - **Run**: each `external_pre_script` with the argument `start`, then the relocatable
//!   addresses (ip_address, added and announced by [`super::network`]), then each
//!   `external_script` with `start`, then every service; within run_script_timeout
//!   (Serviceguard's module order). A script that exits non-zero, or an address that cannot
//!   be added, fails the start; a script still running at the timeout is killed (its whole
//!   process group) and the start timed out. What a successful script leaves running in its
//!   group (a daemon started in the background) stays, guarded by the safety timer until the
//!   package halts.
//! - **Halt**: every service gets SIGTERM to its process group, then SIGKILL after its
//!   service_halt_timeout; then the external_scripts with `stop` in reverse order, the
//!   relocatable addresses are removed, and the external_pre_scripts get `stop` in reverse
//!   order; within halt_script_timeout.
//! - **Services** run `/bin/sh -c service_cmd`, each in a process group of its own, with the
//!   environment Serviceguard gives them: `SG_PACKAGE`, `SG_NODE`, `SG_SERVICE`,
//!   `SG_SCRIPT_LOG_FILE`, and the restart count as `SG_RESTART_COUNT` and `RESTART_COUNT`
//!   (serviceguard.md 6.1). A service that exits on its own is reported (the core decides on a
//!   restart); what it left in its group gets SIGTERM.
//! - Scripts and services write to the package's script_log_file (`$SGRUN` is the state
//!   directory); so does the supervisor, and what it does with addresses also goes to the
//!   daemon's log ([`Report::Notice`]).
//! - Every process group is given to the safety timer ([`Groups`]) while it runs, so a fence
//!   kills them with the daemon.
//! - The services of each running package are written to `run/<package>.services` in the
//!   state directory, so that a daemon started again after a detach (cmhaltnode -d) can check
//!   that they still run and adopt them ([`Supervisor::check`]).
//!
//! Each package has a worker thread that carries out its actions one at a time, in the order
//! given; outcomes come back through the report callback, by package name (the core's
//! package numbers change with cmapplyconf). A service that exits while its package starts
//! is reported after the start, when the core listens for it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::network;
use super::state_file;
use crate::config::package::PackageConfig;
use crate::packages::{Script, ScriptOutcome};

/// How often a running script or a stopping service is looked at.
const POLL: Duration = Duration::from_millis(20);
/// How often a service adopted from an earlier life (not a child) is looked at.
const ADOPTED_POLL: Duration = Duration::from_millis(500);
/// How long a process group may take to end after SIGKILL (or after SIGTERM, for what a
/// service that exited left behind).
const KILL_WAIT: Duration = Duration::from_secs(10);

/// What the supervisor reports, by package name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// A script sequence (run, halt or an online change) ended.
    Script {
        /// The package.
        package: String,
        /// Which.
        script: Script,
        /// How.
        outcome: ScriptOutcome,
    },
    /// A service exited on its own.
    ServiceExited {
        /// The package.
        package: String,
        /// The service, by index in the package file.
        service: usize,
    },
    /// The re-attach check of a detached package ended.
    Checked {
        /// The package.
        package: String,
        /// Whether every service still runs.
        alive: bool,
    },
    /// A line for the daemon's log (it is in the package's log too): what was done with the
    /// package's relocatable addresses, or why it could not be.
    Notice {
        /// The package.
        package: String,
        /// The line.
        line: String,
    },
}

/// The safety timer's list of process groups to kill when fencing.
pub trait Groups: Send + Sync {
    /// Kill `group` too when fencing.
    fn add(&self, group: i32);
    /// Not any more.
    fn forget(&self, group: i32);
}

/// One running service.
struct Service {
    name: String,
    /// The service_cmd it runs (None: adopted from a record that did not say).
    command: Option<String>,
    group: i32,
    /// Set before the supervisor stops it: its exit is then not a failure.
    stopping: Arc<AtomicBool>,
    /// Set when it has exited.
    exited: Arc<AtomicBool>,
}

/// What runs, under one lock.
#[derive(Default)]
struct Table {
    /// By package name: its services by index in the package file.
    services: BTreeMap<String, BTreeMap<usize, Service>>,
    /// Packages whose start is under way: a service exit waits until the start is reported,
    /// since the core takes service exits of running packages only.
    starting: BTreeSet<String>,
    /// Process groups that scripts of a running package left behind (daemons started in the
    /// background): the safety timer kills them too until the package halts.
    left_behind: BTreeMap<String, Vec<i32>>,
    /// The relocatable addresses of each package as last added (or adopted): an online
    /// change removes those no longer configured.
    addresses: BTreeMap<String, Vec<IpAddr>>,
}

type Job = Box<dyn FnOnce(&Inner, &PackageConfig) + Send>;

struct Inner {
    node: String,
    state_dir: PathBuf,
    groups: Arc<dyn Groups>,
    report: Arc<dyn Fn(Report) + Send + Sync>,
    table: Arc<Mutex<Table>>,
    /// Per package, the queue of its worker: its actions run one at a time, in order.
    queues: Mutex<BTreeMap<String, mpsc::Sender<(Job, PackageConfig)>>>,
}

/// Runs packages' scripts and services for one node.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl Supervisor {
    /// A supervisor for node `node` with state in `state_dir`, reporting through `report`.
    pub fn new(
        node: &str,
        state_dir: &Path,
        groups: Arc<dyn Groups>,
        report: impl Fn(Report) + Send + Sync + 'static,
    ) -> Supervisor {
        Supervisor {
            inner: Arc::new(Inner {
                node: node.to_string(),
                state_dir: state_dir.to_path_buf(),
                groups,
                report: Arc::new(report),
                table: Arc::new(Mutex::new(Table::default())),
                queues: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// Queues `work` on `package`'s worker (started on its first action).
    fn queue(
        &self,
        package: &PackageConfig,
        work: impl FnOnce(&Inner, &PackageConfig) + Send + 'static,
    ) {
        let mut queues = self.inner.queues.lock().unwrap_or_else(|p| p.into_inner());
        let job: Job = Box::new(work);
        let mut job = Some((job, package.clone()));
        if let Some(queue) = queues.get(&package.name) {
            match queue.send(job.take().expect("set above")) {
                Ok(()) => return,
                Err(mpsc::SendError(back)) => job = Some(back),
            }
        }
        let (sender, jobs) = mpsc::channel::<(Job, PackageConfig)>();
        let inner = Arc::clone(&self.inner);
        let spawned = thread::Builder::new()
            .name(format!("pkg-{}", package.name))
            .spawn(move || {
                normal_policy();
                for (job, package) in jobs {
                    job(&inner, &package);
                }
            });
        match spawned {
            Ok(_) => {
                let _ = sender.send(job.take().expect("set above"));
                queues.insert(package.name.clone(), sender);
            }
            Err(e) => self.inner.log(
                package,
                &format!("cannot start the package's worker thread: {e}"),
            ),
        }
    }

    /// Starts `package` (scripts, then services); reports [`Script::Run`].
    pub fn run(&self, package: &PackageConfig) {
        self.queue(package, |inner, package| {
            inner.table().starting.insert(package.name.clone());
            let outcome = inner.run(package);
            (inner.report)(Report::Script {
                package: package.name.clone(),
                script: Script::Run,
                outcome,
            });
            inner.finish_start(package, outcome == ScriptOutcome::Succeeded);
        });
    }

    /// Halts `package` (services, then scripts); reports [`Script::Halt`].
    pub fn halt(&self, package: &PackageConfig) {
        self.queue(package, |inner, package| {
            let outcome = inner.halt(package);
            (inner.report)(Report::Script {
                package: package.name.clone(),
                script: Script::Halt,
                outcome,
            });
        });
    }

    /// Applies `package`'s new configuration while it runs: services no longer configured
    /// stop, new ones start, and one whose service_cmd changed is stopped and started again
    /// with the new command (as Serviceguard takes it: a service deleted and one added);
    /// reports [`Script::Reconfigure`].
    pub fn reconfigure(&self, package: &PackageConfig) {
        self.queue(package, |inner, package| {
            inner.table().starting.insert(package.name.clone());
            let outcome = inner.reconfigure(package);
            (inner.report)(Report::Script {
                package: package.name.clone(),
                script: Script::Reconfigure,
                outcome,
            });
            inner.finish_start(package, outcome == ScriptOutcome::Succeeded);
        });
    }

    /// Starts service `index` of `package` again, its `restarts`th restart.
    pub fn restart_service(&self, package: &PackageConfig, index: usize, restarts: u32) {
        self.queue(package, move |inner, package| {
            if let Err(why) = inner.start_service(package, index, restarts) {
                inner.log(package, &format!("service restart failed: {why}"));
                (inner.report)(Report::ServiceExited {
                    package: package.name.clone(),
                    service: index,
                });
            }
        });
    }

    /// Checks that the services of `package`, left running by an earlier life of the
    /// daemon, still run, and watches them again if so; reports [`Report::Checked`].
    pub fn check(&self, package: &PackageConfig) {
        self.queue(package, |inner, package| {
            let alive = inner.adopt(package);
            (inner.report)(Report::Checked {
                package: package.name.clone(),
                alive,
            });
        });
    }

    /// The process id of every service running now (each leads its process group), by
    /// package and service name.
    pub fn service_pids(&self) -> BTreeMap<String, BTreeMap<String, u32>> {
        let table = self.inner.table();
        table
            .services
            .iter()
            .map(|(package, services)| {
                let pids = services
                    .values()
                    .filter(|s| !s.exited.load(Ordering::Relaxed))
                    .filter_map(|s| u32::try_from(s.group).ok().map(|pid| (s.name.clone(), pid)))
                    .collect();
                (package.clone(), pids)
            })
            .collect()
    }

    /// Every process group of the packages now (services and what scripts left behind), by
    /// package: for a fence the daemon must carry out itself.
    pub fn groups(&self) -> BTreeMap<String, Vec<i32>> {
        let table = self.inner.table();
        let mut groups: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (package, services) in &table.services {
            groups
                .entry(package.clone())
                .or_default()
                .extend(services.values().map(|s| s.group));
        }
        for (package, left) in &table.left_behind {
            groups.entry(package.clone()).or_default().extend(left);
        }
        groups
    }
}

impl Inner {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn log_path(&self, package: &PackageConfig) -> PathBuf {
        let expanded = package
            .script_log_file
            .replace("$SGRUN", &self.state_dir.display().to_string());
        PathBuf::from(expanded)
    }

    fn log_file(&self, package: &PackageConfig) -> Option<File> {
        open_log(&self.log_path(package))
    }

    /// A line of the package's log, whatever its log_level: the start and halt, and what
    /// went wrong. Each line carries its time (UTC), as Serviceguard's package log does.
    fn log(&self, package: &PackageConfig, line: &str) {
        append_log(
            &self.log_path(package),
            &log_line(&self.node, &package.name, line),
        );
    }

    /// A line of more detail, written when the package's log_level is `level` or more:
    /// 1 each script, service and step as it goes (informative messages with more detail),
    /// 2 what each ran and how long it took (logic flow).
    fn detail(&self, package: &PackageConfig, level: u8, line: impl FnOnce() -> String) {
        if package.log_level >= level {
            self.log(package, &line());
        }
    }

    fn command(&self, package: &PackageConfig, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env("SG_PACKAGE", &package.name)
            .env("SG_NODE", &self.node)
            .env("SG_SCRIPT_LOG_FILE", self.log_path(package))
            .env("SGRUN", &self.state_dir)
            .stdin(Stdio::null())
            .process_group(0);
        if let Some(log) = self.log_file(package) {
            if let Ok(copy) = log.try_clone() {
                command.stdout(Stdio::from(copy));
            }
            command.stderr(Stdio::from(log));
        } else {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
        command
    }

    /// Runs `script` `argument` until it exits or `deadline`. What a successful script left
    /// running in its group stays (a daemon it started), guarded by the safety timer until
    /// the package halts; after a failure or a timeout the group is killed.
    fn script(
        &self,
        package: &PackageConfig,
        script: &str,
        argument: &str,
        deadline: Option<Instant>,
    ) -> ScriptOutcome {
        let mut command = self.command(package, script);
        command.arg(argument);
        self.detail(package, 1, || format!("running {script} {argument}"));
        let began = Instant::now();
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                self.log(package, &format!("{script} {argument}: cannot run: {e}"));
                return ScriptOutcome::Failed;
            }
        };
        let group = child.id() as i32;
        self.groups.add(group);
        self.detail(package, 2, || {
            format!("{script} {argument}: process group {group}, deadline {deadline:?}")
        });
        let outcome = loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => {
                    self.detail(package, 1, || {
                        format!(
                            "{script} {argument}: succeeded in {} ms",
                            began.elapsed().as_millis()
                        )
                    });
                    break ScriptOutcome::Succeeded;
                }
                Ok(Some(status)) => {
                    self.log(package, &format!("{script} {argument}: {status}"));
                    break ScriptOutcome::Failed;
                }
                Ok(None) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    self.log(package, &format!("{script} {argument}: timed out, killed"));
                    let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
                    let _ = child.wait();
                    break ScriptOutcome::TimedOut;
                }
                Ok(None) => thread::sleep(POLL),
                Err(e) => {
                    self.log(package, &format!("{script} {argument}: {e}"));
                    break ScriptOutcome::Failed;
                }
            }
        };
        if outcome == ScriptOutcome::Succeeded && group_alive(group) {
            self.detail(package, 2, || {
                format!("{script} {argument}: left process group {group} running")
            });
            self.table()
                .left_behind
                .entry(package.name.clone())
                .or_default()
                .push(group);
        } else {
            let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
            self.groups.forget(group);
        }
        outcome
    }

    /// A line for the package's log and the daemon's.
    fn notice(&self, package: &PackageConfig, line: &str) {
        self.log(package, line);
        (self.report)(Report::Notice {
            package: package.name.clone(),
            line: line.to_string(),
        });
    }

    /// Adds the package's relocatable addresses and announces them; false (said in both
    /// logs) when one cannot be added. An announcement that fails is a warning: the address
    /// works, neighbours learn it once their cache entries expire.
    fn add_addresses(&self, package: &PackageConfig) -> bool {
        let configured = network::package_addresses(package);
        if configured.is_empty() {
            self.table().addresses.remove(&package.name);
            return true;
        }
        self.table()
            .addresses
            .insert(package.name.clone(), configured);
        match network::add_addresses(&package.ip_subnets) {
            Ok(placements) => {
                for placement in &placements {
                    let how = if placement.already { "kept" } else { "added" };
                    self.notice(
                        package,
                        &format!(
                            "ip_address {}/{} {how} on {}",
                            placement.address, placement.prefix, placement.interface
                        ),
                    );
                }
                for failure in network::announce(&placements) {
                    self.notice(package, &format!("warning: {failure}"));
                }
                true
            }
            Err(e) => {
                self.notice(
                    package,
                    &format!("cannot add the relocatable addresses: {e}"),
                );
                false
            }
        }
    }

    /// Removes `addresses` from this node; false (said in both logs) when one cannot be.
    fn remove_addresses(&self, package: &PackageConfig, addresses: &[IpAddr]) -> bool {
        if addresses.is_empty() {
            return true;
        }
        match network::remove_addresses(addresses) {
            Ok(removed) => {
                for gone in removed {
                    self.notice(
                        package,
                        &format!(
                            "ip_address {}/{} removed from {}",
                            gone.address, gone.prefix, gone.interface
                        ),
                    );
                }
                true
            }
            Err(e) => {
                self.notice(
                    package,
                    &format!("cannot remove the relocatable addresses: {e}"),
                );
                false
            }
        }
    }

    fn run(&self, package: &PackageConfig) -> ScriptOutcome {
        let deadline = package.run_script_timeout.map(|t| Instant::now() + t);
        self.log(package, "starting");
        for script in &package.external_pre_scripts {
            let outcome = self.script(package, script, "start", deadline);
            if outcome != ScriptOutcome::Succeeded {
                return outcome;
            }
        }
        if !self.add_addresses(package) {
            return ScriptOutcome::Failed;
        }
        for script in &package.external_scripts {
            let outcome = self.script(package, script, "start", deadline);
            if outcome != ScriptOutcome::Succeeded {
                return outcome;
            }
        }
        for index in 0..package.services.len() {
            if let Err(why) = self.start_service(package, index, 0) {
                self.log(package, &why);
                return ScriptOutcome::Failed;
            }
        }
        self.log(package, "started");
        ScriptOutcome::Succeeded
    }

    /// The start (or online change) was reported: service exits held meanwhile are reported
    /// now, after it, when it succeeded (after a failure the halt that follows stops the
    /// rest).
    fn finish_start(&self, package: &PackageConfig, succeeded: bool) {
        let exited: Vec<usize> = {
            let mut table = self.table();
            table.starting.remove(&package.name);
            let services = table.services.entry(package.name.clone()).or_default();
            let exited: Vec<usize> = services
                .iter()
                .filter(|(_, s)| s.exited.load(Ordering::SeqCst))
                .map(|(index, _)| *index)
                .collect();
            for index in &exited {
                services.remove(index);
            }
            exited
        };
        if !exited.is_empty() {
            self.write_services(package);
        }
        if succeeded {
            for service in exited {
                (self.report)(Report::ServiceExited {
                    package: package.name.clone(),
                    service,
                });
            }
        }
    }

    fn halt(&self, package: &PackageConfig) -> ScriptOutcome {
        let deadline = package.halt_script_timeout.map(|t| Instant::now() + t);
        self.log(package, "halting");
        let services = self
            .table()
            .services
            .remove(&package.name)
            .unwrap_or_default();
        let mut outcome = self.stop_services(package, services.into_values().collect(), deadline);
        self.write_services(package);
        let mut worse = |this: ScriptOutcome| {
            if this != ScriptOutcome::Succeeded && outcome == ScriptOutcome::Succeeded {
                outcome = this;
            }
        };
        for script in package.external_scripts.iter().rev() {
            worse(self.script(package, script, "stop", deadline));
        }
        // The addresses configured now and those added under an earlier configuration.
        let mut addresses = network::package_addresses(package);
        let recorded = self.table().addresses.remove(&package.name);
        for address in recorded.unwrap_or_default() {
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
        if !self.remove_addresses(package, &addresses) {
            worse(ScriptOutcome::Failed);
        }
        for script in package.external_pre_scripts.iter().rev() {
            worse(self.script(package, script, "stop", deadline));
        }
        // What the start scripts left behind is the stop scripts' to end; the safety timer
        // stops guarding it with the package.
        let left = self
            .table()
            .left_behind
            .remove(&package.name)
            .unwrap_or_default();
        for group in left {
            self.groups.forget(group);
        }
        self.log(package, &format!("halted ({outcome:?})"));
        outcome
    }

    fn reconfigure(&self, package: &PackageConfig) -> ScriptOutcome {
        let names: Vec<&str> = package.services.iter().map(|s| s.name.as_str()).collect();
        // Services by their new index (watchers find theirs by process group); those no
        // longer configured are stopped.
        let (stale, known) = {
            let mut table = self.table();
            let services = std::mem::take(table.services.entry(package.name.clone()).or_default());
            let mut stale = Vec::new();
            let mut known = BTreeMap::new();
            for service in services.into_values() {
                let same = names
                    .iter()
                    .position(|n| *n == service.name)
                    .filter(|&index| {
                        service
                            .command
                            .as_deref()
                            .is_none_or(|command| command == package.services[index].command)
                    });
                match same {
                    Some(index) => {
                        known.insert(index, service);
                    }
                    None => stale.push(service),
                }
            }
            let keys: Vec<usize> = known.keys().copied().collect();
            table.services.insert(package.name.clone(), known);
            (stale, keys)
        };
        let deadline = package.run_script_timeout.map(|t| Instant::now() + t);
        let mut outcome = self.stop_services(package, stale, deadline);
        // Relocatable addresses: those no longer configured go, new ones come.
        let configured = network::package_addresses(package);
        let dropped: Vec<IpAddr> = self
            .table()
            .addresses
            .get(&package.name)
            .map(|old| {
                old.iter()
                    .filter(|a| !configured.contains(a))
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        if !self.remove_addresses(package, &dropped) || !self.add_addresses(package) {
            outcome = ScriptOutcome::Failed;
        }
        for index in 0..package.services.len() {
            if !known.contains(&index) {
                if let Err(why) = self.start_service(package, index, 0) {
                    self.log(package, &why);
                    outcome = ScriptOutcome::Failed;
                    break;
                }
            }
        }
        self.write_services(package);
        outcome
    }

    /// SIGTERM to every group, then SIGKILL to each still there after its
    /// service_halt_timeout; TimedOut when one has not ended by `deadline` (or within a
    /// bound past its SIGKILL: a process stuck in the kernel).
    fn stop_services(
        &self,
        package: &PackageConfig,
        services: Vec<Service>,
        deadline: Option<Instant>,
    ) -> ScriptOutcome {
        let started = Instant::now();
        for service in &services {
            service.stopping.store(true, Ordering::SeqCst);
            self.detail(package, 1, || {
                format!(
                    "service {}: SIGTERM to process group {}",
                    service.name, service.group
                )
            });
            let _ = killpg(Pid::from_raw(service.group), Signal::SIGTERM);
        }
        let mut outcome = ScriptOutcome::Succeeded;
        for service in services {
            let timeout = package
                .services
                .iter()
                .find(|s| s.name == service.name)
                .map_or(Duration::ZERO, |s| s.halt_timeout);
            while !service.exited.load(Ordering::SeqCst)
                && started.elapsed() < timeout
                && deadline.is_none_or(|d| Instant::now() < d)
            {
                thread::sleep(POLL);
            }
            if !service.exited.load(Ordering::SeqCst) {
                self.detail(package, 1, || {
                    format!(
                        "service {}: still there after {} ms: SIGKILL",
                        service.name,
                        started.elapsed().as_millis()
                    )
                });
            }
            let _ = killpg(Pid::from_raw(service.group), Signal::SIGKILL);
            let killed = Instant::now();
            while !service.exited.load(Ordering::SeqCst) {
                let past_deadline = deadline.is_some_and(|d| Instant::now() >= d);
                if past_deadline || killed.elapsed() >= KILL_WAIT {
                    self.log(
                        package,
                        &format!("service {} did not end after SIGKILL", service.name),
                    );
                    outcome = ScriptOutcome::TimedOut;
                    break;
                }
                thread::sleep(POLL);
            }
            if service.exited.load(Ordering::SeqCst) {
                self.detail(package, 2, || {
                    format!(
                        "service {}: ended after {} ms",
                        service.name,
                        started.elapsed().as_millis()
                    )
                });
                self.groups.forget(service.group);
            }
        }
        outcome
    }

    fn start_service(
        &self,
        package: &PackageConfig,
        index: usize,
        restarts: u32,
    ) -> Result<(), String> {
        let Some(config) = package.services.get(index) else {
            return Err(format!("no service {index}"));
        };
        let mut command = self.command(package, "/bin/sh");
        self.detail(package, 2, || {
            format!("service {}: /bin/sh -c {:?}", config.name, config.command)
        });
        command
            .arg("-c")
            .arg(&config.command)
            .env("SG_SERVICE", &config.name)
            .env("SG_RESTART_COUNT", restarts.to_string())
            .env("RESTART_COUNT", restarts.to_string());
        let child = command.spawn().map_err(|e| {
            format!(
                "service {}: cannot start {:?}: {e}",
                config.name, config.command
            )
        })?;
        let group = child.id() as i32;
        self.track(
            package,
            index,
            (&config.name, Some(&config.command)),
            group,
            WatchTarget::Child(child),
        );
        self.log(
            package,
            &format!(
                "service {} started (process group {group}, restarts {restarts})",
                config.name
            ),
        );
        self.write_services(package);
        Ok(())
    }

    /// Watches a service's process (or group) until it ends; an end the supervisor did not
    /// cause is reported, unless a start is under way (then [`Inner::finish_start`] does).
    fn watch(
        &self,
        package: &PackageConfig,
        group: i32,
        target: WatchTarget,
        (stopping, exited): (Arc<AtomicBool>, Arc<AtomicBool>),
    ) {
        let name = package.name.clone();
        let table = Arc::clone(&self.table);
        let report = Arc::clone(&self.report);
        let groups = Arc::clone(&self.groups);
        // The package log says how a service ended on its own (the line before the restart
        // or the halt that follows).
        let (log_path, node) = (self.log_path(package), self.node.clone());
        let spawned = thread::Builder::new()
            .name(format!("svc-{group}"))
            .spawn(move || {
                let how = match target {
                    WatchTarget::Child(mut child) => match child.wait() {
                        Ok(status) => match (
                            status.code(),
                            std::os::unix::process::ExitStatusExt::signal(&status),
                        ) {
                            (Some(code), _) => format!("exited with status {code}"),
                            (None, Some(signal)) => format!(
                                "was killed by signal {}",
                                Signal::try_from(signal)
                                    .map_or_else(|_| signal.to_string(), |s| s.as_str().to_owned())
                            ),
                            (None, None) => "ended".to_owned(),
                        },
                        Err(e) => format!("ended (its status cannot be read: {e})"),
                    },
                    WatchTarget::Group => {
                        while group_alive(group) {
                            thread::sleep(ADOPTED_POLL);
                        }
                        "ended (its process group is empty)".to_owned()
                    }
                };
                let mut table = table.lock().unwrap_or_else(|p| p.into_inner());
                exited.store(true, Ordering::SeqCst);
                if stopping.load(Ordering::SeqCst) || table.starting.contains(&name) {
                    return;
                }
                let services = table.services.entry(name.clone()).or_default();
                let index = services
                    .iter()
                    .find(|(_, s)| s.group == group)
                    .map(|(index, _)| *index);
                let Some(index) = index else { return };
                // Named as the table names it now (an online change may renumber services).
                let service = services.remove(&index).map(|s| s.name);
                drop(table);
                let service = service.as_deref().unwrap_or("?");
                let line = log_line(&node, &name, &format!("service {service} {how}"));
                append_log(&log_path, &line);
                report(Report::ServiceExited {
                    package: name,
                    service: index,
                });
                // Whatever the service left in its group goes with it: SIGTERM, then
                // SIGKILL; the safety timer guards the group until it is empty.
                end_group(group);
                groups.forget(group);
            });
        if spawned.is_err() {
            // Unwatched, the service would never be seen to fail: stop it now and say so.
            let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
            self.log(package, "cannot watch a service: killed it");
        }
    }

    fn adopt(&self, package: &PackageConfig) -> bool {
        let path = self.services_path(package);
        let Ok(Some(bytes)) = state_file::read(&path) else {
            return package.services.is_empty();
        };
        let Ok(record) = serde_json::from_slice::<ServicesRecord>(&bytes) else {
            return false;
        };
        // After a reboot the recorded groups are gone, whatever numbers live now.
        let alive = record.boot_id == boot_id()
            && record.services.len() == package.services.len()
            && record
                .services
                .iter()
                .all(|(_, _, group)| group_alive(*group));
        if !alive {
            return false;
        }
        for (index, name, group) in record.services {
            let command = record.commands.get(&index).map(String::as_str);
            self.track(package, index, (&name, command), group, WatchTarget::Group);
        }
        // Adopted as they are: Serviceguard does not check addresses on a re-attach.
        self.table()
            .addresses
            .insert(package.name.clone(), network::package_addresses(package));
        true
    }

    /// Guards service `index` (`name` running `command`, process group `group`) with the
    /// safety timer, enters it in the table, then watches it: in the table first, so that an
    /// exit at once is seen.
    fn track(
        &self,
        package: &PackageConfig,
        index: usize,
        (name, command): (&str, Option<&str>),
        group: i32,
        target: WatchTarget,
    ) {
        self.groups.add(group);
        let service = Service {
            name: name.to_string(),
            command: command.map(str::to_owned),
            group,
            stopping: Arc::new(AtomicBool::new(false)),
            exited: Arc::new(AtomicBool::new(false)),
        };
        let watched = (service.stopping.clone(), service.exited.clone());
        self.table()
            .services
            .entry(package.name.clone())
            .or_default()
            .insert(index, service);
        self.watch(package, group, target, watched);
    }

    fn services_path(&self, package: &PackageConfig) -> PathBuf {
        self.state_dir
            .join("run")
            .join(format!("{}.services", package.name))
    }

    /// Records the services running for `package` (removed when none).
    fn write_services(&self, package: &PackageConfig) {
        let mut record = ServicesRecord {
            boot_id: boot_id(),
            services: Vec::new(),
            commands: BTreeMap::new(),
        };
        if let Some(services) = self.table().services.get(&package.name) {
            for (index, service) in services {
                record
                    .services
                    .push((*index, service.name.clone(), service.group));
                if let Some(command) = &service.command {
                    record.commands.insert(*index, command.clone());
                }
            }
        }
        let path = self.services_path(package);
        if record.services.is_empty() {
            let _ = std::fs::remove_file(&path);
            return;
        }
        let _ = std::fs::create_dir_all(self.state_dir.join("run"));
        if let Ok(bytes) = serde_json::to_vec(&record) {
            if let Err(e) = state_file::write(&path, &bytes) {
                self.log(package, &format!("{}: {e}", path.display()));
            }
        }
    }
}

/// The services of a running package, as recorded for a later life of the daemon.
#[derive(serde::Serialize, serde::Deserialize)]
struct ServicesRecord {
    /// The kernel's boot id when they were recorded.
    boot_id: String,
    /// (index, name, process group).
    services: Vec<(usize, String, i32)>,
    /// The service_cmd of each, by index (absent in records of earlier releases).
    #[serde(default)]
    commands: BTreeMap<usize, String>,
}

/// `2026-12-04 06:21:03 UTC`: the time of a package log line.
fn log_time(at: std::time::SystemTime) -> String {
    let t = time::OffsetDateTime::from(at);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Puts the calling thread under the normal scheduling policy. Package workers are started
/// from the daemon's timing thread, which runs under SCHED_RR where it may: without this they,
/// and the scripts and services they start (children inherit the policy), would run real-time.
fn normal_policy() {
    use thread_priority::unix::{
        set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
        ThreadSchedulePolicy,
    };
    use thread_priority::{ThreadPriority, ThreadPriorityValue};
    // 50 of 0-99 is nice 0 under the normal policy.
    if let Ok(middle) = ThreadPriorityValue::try_from(50u8) {
        let _ = set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Crossplatform(middle),
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other),
        );
    }
}

/// This boot's id (empty where the kernel does not tell).
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|id| id.trim().to_string())
        .unwrap_or_default()
}

/// Whether process group `group` has a live process. Zombies do not count: where init does
/// not reap (some containers) the killed members of a group stay as zombies, dead all the
/// same. Read from /proc; where it cannot be read, any member counts.
fn group_alive(group: i32) -> bool {
    if killpg(Pid::from_raw(group), None).is_err() {
        return false;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    let wanted = group.to_string();
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // After the command's closing parenthesis: state, ppid, pgrp.
        let Some(rest) = stat.rfind(')').and_then(|at| stat.get(at + 2..)) else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1);
        pgrp == Some(wanted.as_str()) && state != Some("Z")
    })
}

/// SIGTERM to `group`, SIGKILL after [`KILL_WAIT`], until it is empty (bounded).
fn end_group(group: i32) {
    let _ = killpg(Pid::from_raw(group), Signal::SIGTERM);
    let started = Instant::now();
    while group_alive(group) && started.elapsed() < KILL_WAIT {
        thread::sleep(POLL);
    }
    let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
    while group_alive(group) && started.elapsed() < 2 * KILL_WAIT {
        thread::sleep(POLL);
    }
}

/// A line of a package's log: its time (UTC), the node, the package, what happened.
fn log_line(node: &str, package: &str, line: &str) -> String {
    format!(
        "{} cmcld[{node}]: {package}: {line}",
        log_time(std::time::SystemTime::now())
    )
}

/// A package's log at `path`, opened to append (its folder made if missing).
fn open_log(path: &Path) -> Option<File> {
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    OpenOptions::new().create(true).append(true).open(path).ok()
}

/// Appends `line` to the log at `path` (a log that cannot be written loses the line).
fn append_log(path: &Path, line: &str) {
    if let Some(mut file) = open_log(path) {
        let _ = writeln!(file, "{line}");
    }
}

enum WatchTarget {
    /// A service this life started: waited for.
    Child(Child),
    /// A service an earlier life started (adopted after a detach): polled.
    Group,
}
