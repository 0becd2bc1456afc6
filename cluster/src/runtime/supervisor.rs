//! Process supervision, cmserviced's job: a package's scripts and services as real processes.
//!
//! - **Run**: each `external_pre_script` then each `external_script` with the argument
//!   `start`, then every service; within run_script_timeout. A script that exits non-zero
//!   fails the start; one still running at the timeout is killed (its whole process group)
//!   and the start timed out.
//! - **Halt**: every service gets SIGTERM to its process group, then SIGKILL after its
//!   service_halt_timeout; then the scripts with `stop`, in reverse order; within
//!   halt_script_timeout.
//! - **Services** run `/bin/sh -c service_cmd`, each in a process group of its own, with the
//!   environment Serviceguard gives them: `SG_PACKAGE`, `SG_NODE`, `SG_SERVICE`,
//!   `SG_SCRIPT_LOG_FILE`, and the restart count as `SG_RESTART_COUNT` and `RESTART_COUNT`
//!   (serviceguard.md 6.1). A service that exits on its own is reported (the core decides on a
//!   restart); what it left in its group gets SIGTERM.
//! - Scripts and services write to the package's script_log_file (`$SGRUN` is the state
//!   directory).
//! - Every process group is given to the safety timer ([`Groups`]) while it runs, so a fence
//!   kills them with the daemon.
//! - The services of each running package are written to `run/<package>.services` in the
//!   state directory, so that a daemon started again after a detach (cmhaltnode -d) can check
//!   that they still run and adopt them ([`Supervisor::check`]).
//!
//! Every action runs on a thread of its own and is answered through the report callback, by
//! package name (the core's package numbers change with cmapplyconf).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use super::state_file;
use crate::config::package::PackageConfig;
use crate::packages::{Script, ScriptOutcome};

/// How often a running script, a stopping service or an adopted service is looked at.
const POLL: Duration = Duration::from_millis(20);

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
    group: i32,
    /// Set before the supervisor stops it: its exit is then not a failure.
    stopping: Arc<AtomicBool>,
    /// Set when it has exited.
    exited: Arc<AtomicBool>,
}

/// The running services: by package name, by index in the package file.
type Running = BTreeMap<String, BTreeMap<usize, Service>>;

struct Inner {
    node: String,
    state_dir: PathBuf,
    groups: Arc<dyn Groups>,
    report: Arc<dyn Fn(Report) + Send + Sync>,
    /// By package name: its services by index.
    running: Arc<Mutex<Running>>,
    /// Per package: held while an action on it runs, so they never overlap.
    busy: Mutex<BTreeMap<String, Arc<Mutex<()>>>>,
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
                running: Arc::new(Mutex::new(BTreeMap::new())),
                busy: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    fn spawn(
        &self,
        package: &PackageConfig,
        work: impl FnOnce(&Inner, &PackageConfig) + Send + 'static,
    ) {
        let inner = self.inner.clone();
        let package_name = package.clone();
        let package = package.clone();
        let spawned = thread::Builder::new()
            .name(format!("pkg-{}", package.name))
            .spawn(move || {
                let lock = inner.package_lock(&package.name);
                let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
                work(&inner, &package);
            });
        if let Err(e) = spawned {
            // No thread: the action fails now rather than never.
            self.inner
                .log(&package_name, &format!("cannot start a thread: {e}"));
        }
    }

    /// Starts `package` (scripts, then services); reports [`Script::Run`].
    pub fn run(&self, package: &PackageConfig) {
        self.spawn(package, |inner, package| {
            let outcome = inner.run(package);
            (inner.report)(Report::Script {
                package: package.name.clone(),
                script: Script::Run,
                outcome,
            });
        });
    }

    /// Halts `package` (services, then scripts); reports [`Script::Halt`].
    pub fn halt(&self, package: &PackageConfig) {
        self.spawn(package, |inner, package| {
            let outcome = inner.halt(package);
            (inner.report)(Report::Script {
                package: package.name.clone(),
                script: Script::Halt,
                outcome,
            });
        });
    }

    /// Applies `package`'s new configuration while it runs: services no longer configured
    /// stop, new ones start; reports [`Script::Reconfigure`].
    pub fn reconfigure(&self, package: &PackageConfig) {
        self.spawn(package, |inner, package| {
            let outcome = inner.reconfigure(package);
            (inner.report)(Report::Script {
                package: package.name.clone(),
                script: Script::Reconfigure,
                outcome,
            });
        });
    }

    /// Starts service `index` of `package` again, its `restarts`th restart.
    pub fn restart_service(&self, package: &PackageConfig, index: usize, restarts: u32) {
        self.spawn(package, move |inner, package| {
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
        self.spawn(package, |inner, package| {
            let alive = inner.adopt(package);
            (inner.report)(Report::Checked {
                package: package.name.clone(),
                alive,
            });
        });
    }

    /// The process groups of the services running now, by package (for the status).
    pub fn groups(&self) -> BTreeMap<String, Vec<(String, i32)>> {
        let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
        running
            .iter()
            .map(|(package, services)| {
                let list = services
                    .values()
                    .map(|s| (s.name.clone(), s.group))
                    .collect();
                (package.clone(), list)
            })
            .collect()
    }
}

impl Inner {
    fn package_lock(&self, package: &str) -> Arc<Mutex<()>> {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        busy.entry(package.to_string()).or_default().clone()
    }

    fn log_path(&self, package: &PackageConfig) -> PathBuf {
        let expanded = package
            .script_log_file
            .replace("$SGRUN", &self.state_dir.display().to_string());
        PathBuf::from(expanded)
    }

    fn log_file(&self, package: &PackageConfig) -> Option<File> {
        let path = self.log_path(package);
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        OpenOptions::new().create(true).append(true).open(path).ok()
    }

    fn log(&self, package: &PackageConfig, line: &str) {
        if let Some(mut file) = self.log_file(package) {
            let _ = writeln!(file, "cmcld[{}]: {}: {line}", self.node, package.name);
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

    /// Runs `script` `argument` until it exits or `deadline`.
    fn script(
        &self,
        package: &PackageConfig,
        script: &str,
        argument: &str,
        deadline: Option<Instant>,
    ) -> ScriptOutcome {
        let mut command = self.command(package, script);
        command.arg(argument);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                self.log(package, &format!("{script} {argument}: cannot run: {e}"));
                return ScriptOutcome::Failed;
            }
        };
        let group = child.id() as i32;
        self.groups.add(group);
        let outcome = loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => break ScriptOutcome::Succeeded,
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
        // Whatever it left behind in its group goes with it.
        let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
        self.groups.forget(group);
        outcome
    }

    fn scripts(package: &PackageConfig) -> impl DoubleEndedIterator<Item = &String> {
        package
            .external_pre_scripts
            .iter()
            .chain(&package.external_scripts)
    }

    fn run(&self, package: &PackageConfig) -> ScriptOutcome {
        let deadline = package.run_script_timeout.map(|t| Instant::now() + t);
        self.log(package, "starting");
        for script in Self::scripts(package) {
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

    fn halt(&self, package: &PackageConfig) -> ScriptOutcome {
        let deadline = package.halt_script_timeout.map(|t| Instant::now() + t);
        self.log(package, "halting");
        let services = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            running.remove(&package.name).unwrap_or_default()
        };
        self.stop_services(package, services.into_values().collect());
        self.write_services(package);
        let mut outcome = ScriptOutcome::Succeeded;
        for script in Self::scripts(package).rev() {
            let this = self.script(package, script, "stop", deadline);
            if this != ScriptOutcome::Succeeded && outcome == ScriptOutcome::Succeeded {
                outcome = this;
            }
        }
        self.log(package, &format!("halted ({outcome:?})"));
        outcome
    }

    fn reconfigure(&self, package: &PackageConfig) -> ScriptOutcome {
        let names: Vec<&str> = package.services.iter().map(|s| s.name.as_str()).collect();
        // Services by their new index; those no longer configured are stopped.
        let (stale, known) = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            let services = std::mem::take(running.entry(package.name.clone()).or_default());
            let mut stale = Vec::new();
            let mut known = BTreeMap::new();
            for service in services.into_values() {
                match names.iter().position(|n| *n == service.name) {
                    Some(index) => {
                        known.insert(index, service);
                    }
                    None => stale.push(service),
                }
            }
            let keys: Vec<usize> = known.keys().copied().collect();
            running.insert(package.name.clone(), known);
            (stale, keys)
        };
        self.stop_services(package, stale);
        for index in 0..package.services.len() {
            if !known.contains(&index) {
                if let Err(why) = self.start_service(package, index, 0) {
                    self.log(package, &why);
                    return ScriptOutcome::Failed;
                }
            }
        }
        self.write_services(package);
        ScriptOutcome::Succeeded
    }

    /// SIGTERM to every group, then SIGKILL to each still there after its
    /// service_halt_timeout.
    fn stop_services(&self, package: &PackageConfig, services: Vec<Service>) {
        let started = Instant::now();
        for service in &services {
            service.stopping.store(true, Ordering::SeqCst);
            let _ = killpg(Pid::from_raw(service.group), Signal::SIGTERM);
        }
        for service in services {
            let timeout = package
                .services
                .iter()
                .find(|s| s.name == service.name)
                .map_or(Duration::ZERO, |s| s.halt_timeout);
            while !service.exited.load(Ordering::SeqCst) && started.elapsed() < timeout {
                thread::sleep(POLL);
            }
            let _ = killpg(Pid::from_raw(service.group), Signal::SIGKILL);
            while !service.exited.load(Ordering::SeqCst) {
                thread::sleep(POLL);
            }
            self.groups.forget(service.group);
        }
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
        self.groups.add(group);
        let service = Service {
            name: config.name.clone(),
            group,
            stopping: Arc::new(AtomicBool::new(false)),
            exited: Arc::new(AtomicBool::new(false)),
        };
        self.watch(package, index, WatchTarget::Child(child), &service);
        self.log(
            package,
            &format!(
                "service {} started (process group {group}, restarts {restarts})",
                config.name
            ),
        );
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            running
                .entry(package.name.clone())
                .or_default()
                .insert(index, service);
        }
        self.write_services(package);
        Ok(())
    }

    fn watch(&self, package: &PackageConfig, index: usize, target: WatchTarget, service: &Service) {
        let stopping = service.stopping.clone();
        let exited = service.exited.clone();
        let group = service.group;
        let name = package.name.clone();
        let report = self.report_handle();
        let groups = self.groups.clone();
        let _ = thread::Builder::new()
            .name(format!("svc-{group}"))
            .spawn(move || {
                match target {
                    WatchTarget::Child(mut child) => {
                        let _ = child.wait();
                    }
                    WatchTarget::Group => {
                        while kill(Pid::from_raw(group), None).is_ok() {
                            thread::sleep(POLL * 25);
                        }
                    }
                }
                exited.store(true, Ordering::SeqCst);
                if !stopping.load(Ordering::SeqCst) {
                    // Whatever the service left in its group goes with it.
                    let _ = killpg(Pid::from_raw(group), Signal::SIGTERM);
                    groups.forget(group);
                    report(&name, index, group);
                }
            });
    }

    /// A callback for a watcher thread: reports a service's own exit, unless a newer life of
    /// that service runs already.
    fn report_handle(&self) -> impl Fn(&str, usize, i32) + Send + 'static {
        let running = Arc::clone(&self.running);
        let report = Arc::clone(&self.report);
        move |package: &str, index: usize, group: i32| {
            let current = {
                let mut running = running.lock().unwrap_or_else(|p| p.into_inner());
                let services = running.entry(package.to_string()).or_default();
                let current = services.get(&index).is_some_and(|s| s.group == group);
                if current {
                    services.remove(&index);
                }
                current
            };
            if current {
                report(Report::ServiceExited {
                    package: package.to_string(),
                    service: index,
                });
            }
        }
    }

    fn adopt(&self, package: &PackageConfig) -> bool {
        let path = self.services_path(package);
        let Ok(Some(bytes)) = state_file::read(&path) else {
            return package.services.is_empty();
        };
        let Ok(list) = serde_json::from_slice::<Vec<(usize, String, i32)>>(&bytes) else {
            return false;
        };
        let alive = list
            .iter()
            .all(|(_, _, group)| kill(Pid::from_raw(*group), None).is_ok())
            && list.len() == package.services.len();
        if !alive {
            return false;
        }
        for (index, name, group) in list {
            self.groups.add(group);
            let service = Service {
                name,
                group,
                stopping: Arc::new(AtomicBool::new(false)),
                exited: Arc::new(AtomicBool::new(false)),
            };
            self.watch(package, index, WatchTarget::Group, &service);
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            running
                .entry(package.name.clone())
                .or_default()
                .insert(index, service);
        }
        true
    }

    fn services_path(&self, package: &PackageConfig) -> PathBuf {
        self.state_dir
            .join("run")
            .join(format!("{}.services", package.name))
    }

    /// Records the services running for `package` (removed when none).
    fn write_services(&self, package: &PackageConfig) {
        let list: Vec<(usize, String, i32)> = {
            let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            running
                .get(&package.name)
                .map(|services| {
                    services
                        .iter()
                        .map(|(index, s)| (*index, s.name.clone(), s.group))
                        .collect()
                })
                .unwrap_or_default()
        };
        let path = self.services_path(package);
        if list.is_empty() {
            let _ = std::fs::remove_file(&path);
            return;
        }
        let _ = std::fs::create_dir_all(self.state_dir.join("run"));
        if let Ok(bytes) = serde_json::to_vec(&list) {
            if let Err(e) = state_file::write(&path, &bytes) {
                self.log(package, &format!("{}: {e}", path.display()));
            }
        }
    }
}

enum WatchTarget {
    /// A service this life started: waited for.
    Child(Child),
    /// A service an earlier life started (adopted after a detach): polled.
    Group,
}
