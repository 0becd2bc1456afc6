//! The node daemon's command line, shared by `cmcld` and `cimguard node`.

use std::io::BufReader;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};

use cimguard_cluster::runtime::daemon::{self, Options, HEARTBEAT_PORT};
use cimguard_cluster::runtime::fence::{self, Ended, Fence};
use cimguard_cluster::runtime::watchdog::{SafetyTimers, WatchdogDevice};
use clap::Args;
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
    /// Internal: run as the safety timer's watcher of process group PGID.
    #[arg(long, value_name = "PGID", hide = true)]
    pub fence_watcher: Option<i32>,
}

/// Runs the daemon (or its watcher).
pub fn run(args: NodeArgs) -> ExitCode {
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
    let state_dir = args
        .state_dir
        .unwrap_or_else(|| PathBuf::from("/var/lib/cimguard"));
    let node = match args.node {
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
            .arg("--fence-watcher")
            .arg(group.to_string())
            .stdin(Stdio::piped())
            .process_group(0)
            .spawn()
    });
    let fence = match watcher.and_then(Fence::new) {
        Ok(fence) => fence,
        Err(e) => {
            eprintln!("cmcld: cannot start the safety timer's watcher: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = Options {
        state_dir,
        node,
        heartbeat_port: args.heartbeat_port,
    };
    match daemon::run(&options, SafetyTimers::new(fence, device)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cmcld: {e}");
            ExitCode::FAILURE
        }
    }
}
