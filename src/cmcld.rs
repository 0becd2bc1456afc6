//! The node daemon's command line, shared by `cmcld` and `cimguard node`.

use std::io::BufReader;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};

use cimguard_cluster::runtime::daemon::{self, Options, HEARTBEAT_PORT};
use cimguard_cluster::runtime::fence::{self, Ended, Fence};
use cimguard_cluster::runtime::watchdog::{SafetyTimers, WatchdogDevice};
use clap::Args;

use crate::agent::{self, AgentSettings};
use nix::unistd::{getpgrp, getpid, setpgid, Pid};

/// The node daemon's arguments.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// The state directory (cluster.ascii, packages/, cluster.key; see the daemon's docs).
    #[arg(long, value_name = "DIR", env = "CMCLD_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// This node's NODE_NAME [default: the host name].
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// The UDP port of the heartbeat networks, the same on every node.
    #[arg(long, value_name = "PORT", default_value_t = HEARTBEAT_PORT)]
    pub heartbeat_port: u16,
    /// A Linux watchdog device (such as /dev/watchdog) petted beneath the process fence: the
    /// machine resets if the node cannot pet it in time (MEMBER_TIMEOUT of 3 s or more).
    #[arg(long, value_name = "DEVICE")]
    pub watchdog: Option<PathBuf>,
    /// Serve the node's WBEM agent (CIM-XML over HTTPS, with the Serviceguard classes) on
    /// this address (repeatable; usually the node's own address and port 5989). Without it
    /// the node runs no agent (`cmwbemd --cluster-socket` can serve it from a process of its
    /// own).
    #[arg(long, value_name = "ADDRESS")]
    pub wbem_listen: Vec<std::net::SocketAddr>,
    /// The agent's users file (`cimguard user add`) [default: $CIMGUARD_USERS_FILE, else
    /// /etc/cimguard/users].
    #[arg(
        long,
        value_name = "FILE",
        env = "CIMGUARD_USERS_FILE",
        default_value = "/etc/cimguard/users"
    )]
    pub users_file: PathBuf,
    /// The agent's TLS material, created on first start [default: STATE_DIR/tls].
    #[arg(long, value_name = "DIR")]
    pub wbem_tls_dir: Option<PathBuf>,
    /// The agent's audit log of state-changing operations (JSON lines, mode 0600).
    #[arg(long, value_name = "FILE")]
    pub wbem_audit_log: Option<PathBuf>,
    /// End when the node halts (cmhaltnode, cmhaltcl). Without it the daemon stays, halted,
    /// its agent answering, until cmrunnode or cmruncl starts the node again (the daemon
    /// executes itself again, as a new life) or SIGTERM ends it.
    #[arg(long)]
    pub exit_on_halt: bool,
    /// How long the agent's HP_SGPackage.RequestStateChange waits for a run or halt to end
    /// (return code 0, or 4 and why) before it answers 4096 with an HP_SGPackageJob that goes
    /// on waiting (0 to 20).
    #[arg(long, value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=20))]
    pub wbem_method_wait: u64,
    /// How the agent delivers indications.
    #[command(flatten)]
    pub wbem_indications: agent::IndicationArgs,
    /// Where the daemon listens for a cmapplyconf that adds this node while it is configured
    /// in no cluster (no cluster.ascii in the state directory), on the heartbeat port (TCP):
    /// the node's HEARTBEAT_IPs (repeatable) [default: every address].
    #[arg(long, value_name = "ADDRESS")]
    pub config_listen: Vec<std::net::IpAddr>,
    /// Internal: run as the safety timer's watcher of process group PGID.
    #[arg(long, value_name = "PGID", hide = true)]
    pub fence_watcher: Option<i32>,
}

/// Runs the daemon (or its watcher). `command` is how this executable is asked to run a node
/// (`[]` for `cmcld`, `["node"]` for `cimguard`): the watcher is started the same way.
pub fn run(args: &NodeArgs, command: &[&str]) -> ExitCode {
    if let Some(group) = args.fence_watcher {
        let stdin = std::io::stdin();
        return match fence::watch(BufReader::new(stdin), group) {
            Ended::Released => ExitCode::SUCCESS,
            Ended::Fenced { reason, groups } => {
                eprintln!("cmcld safety timer: {reason}: killed process groups {groups:?}");
                ExitCode::from(2)
            }
        };
    }
    if let Err(e) = cimguard_cluster::runtime::allocator::return_large_allocations() {
        eprintln!("cmcld: {e}: large allocations may stay with the process after they are freed");
    }
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("/var/lib/cimguard"));
    let node = match args.node.clone() {
        Some(node) => node,
        None => match nix::unistd::gethostname() {
            Ok(name) => name.to_string_lossy().into_owned(),
            Err(e) => {
                eprintln!("cmcld: cannot read the host name ({e}); give --node");
                return ExitCode::FAILURE;
            }
        },
    };
    // The daemon leads a process group of its own, which the safety timer kills whole
    // (already so as a session leader, under systemd or setsid, where setpgid is refused).
    if getpgrp() != getpid() {
        if let Err(e) = setpgid(Pid::from_raw(0), Pid::from_raw(0)) {
            eprintln!("cmcld: cannot make a process group of its own: {e}");
            return ExitCode::FAILURE;
        }
    }
    // The device first: a wrong path ends here, before any watcher starts.
    let device = match args
        .watchdog
        .as_deref()
        .map(WatchdogDevice::open)
        .transpose()
    {
        Ok(device) => device,
        Err(e) => {
            eprintln!("cmcld: {e}");
            return ExitCode::FAILURE;
        }
    };
    let group = getpgrp().as_raw();
    let watcher = std::env::current_exe().and_then(|exe| {
        std::process::Command::new(exe)
            .args(command)
            .arg("--fence-watcher")
            .arg(group.to_string())
            .stdin(Stdio::piped())
            .process_group(0)
            .spawn()
    });
    let mut fence = match watcher.and_then(Fence::new) {
        Ok(fence) => fence,
        Err(e) => {
            eprintln!("cmcld: cannot start the safety timer's watcher: {e}");
            return ExitCode::FAILURE;
        }
    };
    let watcher_pid = Pid::from_raw(i32::try_from(fence.child().id()).unwrap_or(0));
    let mut agent: Option<Agent> = None;
    if !args.wbem_listen.is_empty() {
        // The agent logs through tracing (its requests' refusals, the audit), to stderr
        // beside the daemon's own lines.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new(
                        cimguard_provider::server::DEFAULT_LOG_FILTER,
                    )
                }),
            )
            .with_writer(std::io::stderr)
            // Colours only on a terminal: a log file gets plain text.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init();
        let settings = agent_settings(args, &state_dir);
        match start_agent(settings) {
            Ok(started) => agent = Some(started),
            Err(e) => {
                eprintln!("cmcld: the WBEM agent: {e:#}");
                return ExitCode::FAILURE;
            }
        }
    }
    let options = Options {
        state_dir,
        node,
        heartbeat_port: args.heartbeat_port,
        exit_on_halt: args.exit_on_halt,
        start_halted: std::env::var_os(START_HALTED).is_some(),
        config_listen: args.config_listen.clone(),
    };
    let ended = daemon::run(&options, SafetyTimers::new(fence, device));
    // The agent's requests in progress finish first: the one that said "start again", say.
    if let Some(agent) = agent {
        agent.stop();
    }
    match ended {
        Ok(daemon::Ended::Halted) => ExitCode::SUCCESS,
        // A shutdown that came while the node was starting again wins.
        Ok(daemon::Ended::StartAgain) if daemon::terminated() => ExitCode::SUCCESS,
        Ok(daemon::Ended::StartAgain) => {
            reap_watcher(watcher_pid);
            start_again(false)
        }
        Ok(daemon::Ended::StartHalted) if daemon::terminated() => ExitCode::SUCCESS,
        Ok(daemon::Ended::StartHalted) => {
            reap_watcher(watcher_pid);
            start_again(true)
        }
        // Deleted from the cluster (cmapplyconf): on as a node configured in no cluster,
        // which a later cmapplyconf may add again.
        Ok(daemon::Ended::Removed) => {
            reap_watcher(watcher_pid);
            start_again(false)
        }
        Err(e) => {
            eprintln!("cmcld: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How long a new life waits for the old life's watcher to end before executing itself.
const WATCHER_END_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Waits (bounded) for the old life's safety-timer watcher, which ends once the daemon's
/// pipe to it has closed with the timer disarmed (the node is halted), so that the new
/// image does not keep it as a zombie child it never reaps; each new life starts its own.
fn reap_watcher(watcher: Pid) {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let deadline = std::time::Instant::now() + WATCHER_END_WAIT;
    loop {
        match waitpid(watcher, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Ok(WaitStatus::StillAlive) => {
                eprintln!(
                    "cmcld: the old safety timer's watcher (pid {watcher}) has not ended \
                     within {} s; starting again beside it",
                    WATCHER_END_WAIT.as_secs()
                );
                return;
            }
            Ok(_) | Err(_) => return,
        }
    }
}

/// Set (to anything) in the environment of a new life that starts halted: the
/// daemon executes itself with it after a cmapplyconf changed the nodes.
const START_HALTED: &str = "CMCLD_START_HALTED";

/// The halted node starts again (cmrunnode, cmruncl): this process executes itself again
/// with its own arguments, so the new life starts exactly as a newly started daemon does
/// (its pid, which the init system and pid files know, stays). The sockets close on exec.
/// `halted`: the new life starts halted ([`START_HALTED`]), after a cmapplyconf that changed
/// the nodes.
fn start_again(halted: bool) -> ExitCode {
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "cmcld".into());
    let error = match std::env::current_exe() {
        Ok(exe) => {
            let mut command = std::process::Command::new(exe);
            command.arg0(arg0).args(args);
            if halted {
                command.env(START_HALTED, "1");
            } else {
                command.env_remove(START_HALTED);
            }
            command.exec()
        }
        Err(e) => e,
    };
    eprintln!("cmcld: cannot start again: {error}");
    ExitCode::FAILURE
}

/// The agent's settings: its addresses, users and TLS material, and this daemon's admin
/// socket as its cluster.
fn agent_settings(args: &NodeArgs, state_dir: &std::path::Path) -> AgentSettings {
    // The cluster's name, for the Serviceguard profile's central instance (the daemon reads
    // and checks the same file as it starts).
    let cluster_name = std::fs::read_to_string(state_dir.join("cluster.ascii"))
        .ok()
        .and_then(|text| cimguard_cluster::config::cluster::parse(&text, "cluster.ascii").ok())
        .map(|checked| checked.config.name);
    AgentSettings {
        https: args.wbem_listen.clone(),
        http: Vec::new(),
        danger_plain_http_beyond_loopback: false,
        danger_allow_anonymous: false,
        users_file: args.users_file.clone(),
        state_dir: state_dir.join("wbem"),
        audit_log: args.wbem_audit_log.clone(),
        spool_dir: None,
        tls_dir: args
            .wbem_tls_dir
            .clone()
            .unwrap_or_else(|| state_dir.join("tls")),
        client_ca: None,
        // The host is named as the cluster names it: by its NODE_NAME (the host name unless
        // --node says otherwise), so that this agent's own host, its object manager and the
        // hosts it names for the other nodes (by their NODE_NAMEs) follow one scheme.
        host_name: args.node.clone(),
        limits: cimguard_provider::config::Limits::default(),
        cluster_socket: Some(state_dir.join("cmcld.sock")),
        cluster_name,
        // The cm* commands' default (/var/lib/cimguard/cimxml.sock with the default state
        // directory): root on the node needs no password.
        local_socket: Some(state_dir.join("cimxml.sock")),
        method_wait: std::time::Duration::from_secs(args.wbem_method_wait),
        indications: args.wbem_indications.clone(),
    }
}

/// The agent running beside the daemon.
struct Agent {
    /// Completing it shuts the agent down (gracefully).
    shutdown: tokio::sync::oneshot::Sender<()>,
    /// Closes when the agent's thread ends.
    ended: std::sync::mpsc::Receiver<()>,
}

impl Agent {
    /// Stops accepting and lets the requests in progress finish (the server's shutdown
    /// grace), waiting at most that long and a little more.
    fn stop(self) {
        let _ = self.shutdown.send(());
        let grace = cimguard_provider::config::Limits::default().shutdown_grace;
        let _ = self
            .ended
            .recv_timeout(grace + std::time::Duration::from_secs(1));
    }
}

/// Starts the agent on a thread of its own (its own runtime: the daemon's timing thread never
/// shares a worker with it) and waits until it listens or fails.
fn start_agent(settings: AgentSettings) -> anyhow::Result<Agent> {
    let (told, listening) = std::sync::mpsc::channel::<anyhow::Result<()>>();
    let failed = told.clone();
    let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
    let (ending, ended) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("cmcld-wbem".into())
        .spawn(move || {
            // Dropped as the thread ends: the daemon's exit waits for that.
            let _ending = ending;
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .max_blocking_threads(cimguard_provider::server::BLOCKING_THREADS_MAX)
                .thread_name("cmcld-wbem")
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = failed.send(Err(anyhow::anyhow!("cannot start its runtime: {e}")));
                    return;
                }
            };
            let result = runtime.block_on(agent::serve(
                settings,
                move |address, _https| {
                    eprintln!("cmcld: WBEM agent listening on https://{address}");
                    let _ = told.send(Ok(()));
                },
                async move {
                    let _ = stop.await;
                },
            ));
            if let Err(e) = result {
                let _ = failed.send(Err(e));
            }
        })?;
    match listening.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(result) => result.map(|()| Agent { shutdown, ended }),
        Err(_) => Err(anyhow::anyhow!("it did not start within 60 s")),
    }
}
