//! `cimguard demo`: a whole cluster on this machine's loopback addresses, to try cimguard
//! out. It writes the configuration of N nodes into one directory, starts a node daemon
//! (`cimguard node`, which also serves the node's WBEM agent) per node as a process of its
//! own, waits until the cluster has formed and its packages run, prints how to reach it, and
//! supervises the daemons: one that dies is started again after [`RESTART_DELAY`], as a
//! rebooting node with autostart would be. Ctrl-C or SIGTERM halts the cluster (cmhaltcl -f).
//!
//! Node K is `nodeK`, heartbeats on 127.0.0.K (`lo`) and 127.0.1.K (`lo1`) and serves WBEM
//! on 127.0.0.K. A second start on the same directory reuses what is there (key, authority,
//! certificates, users and passwords; the cluster and package files are written only when
//! missing, so an operator's edits stay).
//!
//! ```text
//! DIR/cluster.ascii, packages/*.conf   the configuration, copied to every node at each start
//! DIR/lock.lun                         the lock LUN (clusters of up to 4 nodes)
//! DIR/cluster.key                      the heartbeat key every node shares (0600)
//! DIR/ca/                              the control channel's cluster authority
//! DIR/users, DIR/passwords             the WBEM users and their generated passwords (0600)
//! DIR/ca.pem                           every node's WBEM authority: a client's trust anchor
//! DIR/demo.env                         CIMGUARD_URL, _USER, _PASSWORD, _CA and PATH (0600)
//! DIR/bin/cm*                          the cm* commands (links to this executable)
//! DIR/demo.lock                        held while a demo runs on DIR
//! DIR/nodeK/                           node K's state directory: cmcld.log, cmcld.pid, tls/
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use cimguard_certs::{AuthorityPaths, ServerNames};
use cimguard_cluster::config::cluster::{self as cluster_file, LOCK_LUN_NODES_MAX};
use cimguard_cluster::config::package::{self as package_file, PackageConfig};
use cimguard_cluster::config::{Diagnostic, Severity};
use cimguard_cluster::packages::{Catalog, ResourceValue};
use cimguard_cluster::runtime::admin::AdminClient;
use cimguard_cluster::runtime::daemon::{
    DaemonStatus, Reply, Request, HEARTBEAT_PORT, KEY_MIN_BYTES,
};
use cimguard_cluster::status::{ClusterStatus, NodeStatus, PackageStatus, Snapshot};
use cimguard_cluster::timing::Timing;
use cimguard_provider::auth::{Role, UserEntry, Users, UsersFileError};
use clap::Args;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{killpg, SigSet, Signal};
use nix::unistd::Pid;
/// The demo cluster's CLUSTER_NAME.
const CLUSTER_NAME: &str = "demo";
/// How many nodes a demo may have (a lock LUN serves at most four; more run without one).
const NODES: std::ops::RangeInclusive<i64> = 2..=8;
/// The WBEM agents' default HTTPS port (DSP0200's 5989).
const WBEM_PORT: u16 = 5989;
/// MEMBER_TIMEOUT of the demo: the shortest Serviceguard allows with two heartbeat networks.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(3);
/// The lock LUN file's size: far more than the 4 KiB block each node needs.
const LOCK_LUN_BYTES: u64 = 1 << 20;
/// The heartbeat key's length.
const KEY_BYTES: usize = 32;
/// The generated passwords' length.
const PASSWORD_CHARACTERS: usize = 16;
/// The WBEM users of the demo and their roles.
const USERS: [(&str, Role); 2] = [("admin", Role::FullAdmin), ("monitor", Role::Monitor)];
/// The user written into demo.env.
const ENV_USER: &str = "admin";
/// The packages that must run before the demo says it is ready.
const READY_PACKAGES: [&str; 2] = ["dbpkg", "webpkg"];
/// How long the cluster may take to form and start them.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a halting cluster may take before what is left is killed.
const HALT_TIMEOUT: Duration = Duration::from_secs(30);
/// A daemon that ended is started again after this long, as a rebooting node would be.
const RESTART_DELAY: Duration = Duration::from_secs(10);
/// How long one admin request may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the supervisor looks at its daemons and signals.
const TICK: Duration = Duration::from_millis(200);
/// How often the supervisor looks at where the packages run.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// The longest path of a Unix socket (sun_path less its terminating zero).
const SOCKET_PATH_BYTES_MAX: usize = 107;
/// How much of a node's log is searched for the reason it ended.
const LOG_TAIL_BYTES: u64 = 64 << 10;

/// The arguments of `cimguard demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The demo's directory: created when missing, reused when it holds an earlier demo.
    #[arg(long, value_name = "DIR", default_value = "cimguard-demo")]
    pub dir: PathBuf,
    /// How many nodes: node1 ... nodeN, on 127.0.0.1 ... 127.0.0.N.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 3,
        value_parser = clap::value_parser!(u8).range(NODES)
    )]
    pub nodes: u8,
    /// The heartbeat and control channel port (UDP and TCP) of every node.
    #[arg(
        long,
        value_name = "PORT",
        default_value_t = HEARTBEAT_PORT,
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub heartbeat_port: u16,
    /// The WBEM agents' HTTPS port, on each node's 127.0.0.K.
    #[arg(
        long,
        value_name = "PORT",
        default_value_t = WBEM_PORT,
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub wbem_port: u16,
}

/// Runs the demo until Ctrl-C or SIGTERM; errors are one line on standard error.
pub fn run(args: &DemoArgs) -> ExitCode {
    match demo(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let text = format!("{error:#}").replace('\n', "; ");
            eprintln!("cimguard demo: error: {text}");
            ExitCode::FAILURE
        }
    }
}

fn demo(args: &DemoArgs) -> anyhow::Result<()> {
    // First, while this is the only thread: every later thread inherits the blocked mask,
    // so SIGINT and SIGTERM reach the waiting thread alone.
    let signals = wait_for_signals()?;
    let layout = Layout::new(args)?;
    let _lock = lock_directory(&layout.dir)?;
    refuse_running_daemons(&layout)?;
    check_ports(&layout)?;
    let resources = prepare(&layout)?;
    if let Ok(signal) = signals.try_recv() {
        say(format_args!("{}: no node started", signal.as_str()));
        return Ok(());
    }
    let mut cluster = Supervisor::new(&layout, resources);
    if let Err(error) = cluster.start_all() {
        cluster.halt(&signals);
        return Err(error);
    }
    let status = match cluster.wait_until_ready(&signals) {
        Ok(Started::Ready(status)) => status,
        Ok(Started::Interrupted(signal)) => {
            say(format_args!("{}: halting the cluster", signal.as_str()));
            cluster.halt(&signals);
            return Ok(());
        }
        Err(error) => {
            cluster.halt(&signals);
            return Err(error);
        }
    };
    print_quick_start(&layout, &cluster, &status.cluster);
    say("cimguard demo ready");
    cluster.supervise(&signals, &status.cluster);
    cluster.halt(&signals);
    Ok(())
}

/// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread it starts) and
/// starts a thread that waits for them; they arrive on the channel. The daemons do not
/// inherit the mask: `std::process::Command` empties it in the child.
fn wait_for_signals() -> anyhow::Result<mpsc::Receiver<Signal>> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block()
        .context("cannot block SIGINT and SIGTERM")?;
    let (sender, receiver) = mpsc::channel();
    thread::Builder::new()
        .name("demo-signals".into())
        .spawn(move || {
            while let Ok(signal) = set.wait() {
                if sender.send(signal).is_err() {
                    return;
                }
            }
        })
        .context("cannot start the signal thread")?;
    Ok(receiver)
}

/// Writes a line to standard output at once. A reader that went away (a closed pipe) does
/// not end the demo: the cluster still has to be halted.
fn say(line: impl fmt::Display) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Where everything is.
struct Layout {
    /// The demo's directory, absolute.
    dir: PathBuf,
    nodes: usize,
    heartbeat_port: u16,
    wbem_port: u16,
    /// This executable, which the daemons run as `cimguard node`.
    exe: PathBuf,
}

impl Layout {
    fn new(args: &DemoArgs) -> anyhow::Result<Layout> {
        if args.heartbeat_port == args.wbem_port {
            bail!(
                "--heartbeat-port and --wbem-port are both {}: the control channel and the WBEM \
                 agent cannot share a port",
                args.wbem_port
            );
        }
        fs::create_dir_all(&args.dir)
            .with_context(|| format!("cannot create {}", args.dir.display()))?;
        let dir = fs::canonicalize(&args.dir)
            .with_context(|| format!("cannot resolve {}", args.dir.display()))?;
        let exe = std::env::current_exe().context("cannot find the cimguard executable")?;
        let layout = Layout {
            dir,
            nodes: usize::from(args.nodes),
            heartbeat_port: args.heartbeat_port,
            wbem_port: args.wbem_port,
            exe,
        };
        let socket = layout.socket(layout.nodes);
        if socket.as_os_str().len() > SOCKET_PATH_BYTES_MAX {
            bail!(
                "{}: longer than the {SOCKET_PATH_BYTES_MAX} bytes a Unix socket's path may \
                 have; choose a shorter --dir",
                socket.display()
            );
        }
        Ok(layout)
    }

    fn node_name(k: usize) -> String {
        format!("node{k}")
    }

    fn node_dir(&self, k: usize) -> PathBuf {
        self.dir.join(Layout::node_name(k))
    }

    /// Node `k`'s address on heartbeat network `network` (0 or 1): 127.0.`network`.`k`.
    fn address(network: u8, k: usize) -> IpAddr {
        // k is at most 8: the argument parser's range (NODES).
        let k = u8::try_from(k).expect("a node number below 256");
        IpAddr::V4(Ipv4Addr::new(127, 0, network, k))
    }

    fn wbem_address(&self, k: usize) -> SocketAddr {
        SocketAddr::new(Layout::address(0, k), self.wbem_port)
    }

    fn socket(&self, k: usize) -> PathBuf {
        self.node_dir(k).join("cmcld.sock")
    }

    fn pid_file(&self, k: usize) -> PathBuf {
        self.node_dir(k).join("cmcld.pid")
    }

    fn log(&self, k: usize) -> PathBuf {
        self.node_dir(k).join("cmcld.log")
    }

    fn lock_lun(&self) -> Option<PathBuf> {
        (self.nodes <= LOCK_LUN_NODES_MAX).then(|| self.dir.join("lock.lun"))
    }
}

/// Takes `DIR/demo.lock` for as long as the demo runs: one demo per directory.
fn lock_directory(dir: &Path) -> anyhow::Result<Flock<File>> {
    let path = dir.join("demo.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        if errno == Errno::EWOULDBLOCK {
            anyhow!(
                "another cimguard demo runs on {} (it holds {})",
                dir.display(),
                path.display()
            )
        } else {
            anyhow!("cannot lock {}: {errno}", path.display())
        }
    })
}

/// Refuses to start while a daemon of an earlier demo (its demo killed, say) still runs in
/// a node's directory: each daemon holds its `cmcld.lock` while it runs.
fn refuse_running_daemons(layout: &Layout) -> anyhow::Result<()> {
    for k in 1..=layout.nodes {
        let path = layout.node_dir(k).join("cmcld.lock");
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error).context(format!("cannot open {}", path.display())),
        };
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(_unlocked_on_drop) => {}
            Err((_, Errno::EWOULDBLOCK)) => {
                let pid = fs::read_to_string(layout.pid_file(k)).unwrap_or_default();
                let pid = pid.trim();
                let how = if pid.is_empty() {
                    String::new()
                } else {
                    format!(" (kill {pid})")
                };
                bail!(
                    "a node daemon left by an earlier demo still runs in {}: stop it first{how}",
                    layout.node_dir(k).display()
                );
            }
            Err((_, errno)) => bail!("cannot lock {}: {errno}", path.display()),
        }
    }
    Ok(())
}

/// Checks, before any daemon starts, that every address the nodes will listen on is free:
/// the WBEM port (TCP) on 127.0.0.K, the heartbeat port (UDP) and the control channel (TCP,
/// the same port) on 127.0.0.K and 127.0.1.K.
fn check_ports(layout: &Layout) -> anyhow::Result<()> {
    for k in 1..=layout.nodes {
        let name = Layout::node_name(k);
        let wbem = layout.wbem_address(k);
        TcpListener::bind(wbem).map_err(|error| {
            in_use(
                wbem,
                &error,
                &format!("TCP, the WBEM port of {name}; choose another with --wbem-port"),
            )
        })?;
        for network in 0..2 {
            let heartbeat = SocketAddr::new(Layout::address(network, k), layout.heartbeat_port);
            let what = |protocol: &str| {
                format!(
                    "{protocol}, the heartbeat port of {name}; choose another with \
                     --heartbeat-port"
                )
            };
            UdpSocket::bind(heartbeat).map_err(|e| in_use(heartbeat, &e, &what("UDP")))?;
            TcpListener::bind(heartbeat).map_err(|e| in_use(heartbeat, &e, &what("TCP")))?;
        }
    }
    Ok(())
}

fn in_use(address: SocketAddr, error: &io::Error, what: &str) -> anyhow::Error {
    if error.kind() == io::ErrorKind::AddrInUse {
        anyhow!("{address} is already in use ({what})")
    } else {
        anyhow!("cannot bind {address} ({what}): {error}")
    }
}

/// Everything the daemons need, written or checked: the configuration, the key, the
/// users, each node's directory, the CA bundle and demo.env. Returns the simple generic
/// resources of the packages, which the demo sets up on every node.
fn prepare(layout: &Layout) -> anyhow::Result<Vec<String>> {
    write_configuration(layout)?;
    let resources = check_configuration(layout)?;
    let key = ensure_key(layout)?;
    let passwords = ensure_users(layout)?;
    let authority_dir = layout.dir.join("ca");
    let authority = cimguard_certs::ensure_cluster_authority(&authority_dir, CLUSTER_NAME)
        .with_context(|| format!("the cluster authority in {}", authority_dir.display()))?;
    for k in 1..=layout.nodes {
        prepare_node(layout, k, &key, &authority)
            .with_context(|| format!("{}", layout.node_dir(k).display()))?;
    }
    write_ca_bundle(layout)?;
    write_env(layout, &passwords)?;
    Ok(resources)
}

/// Writes the cluster file and the package files when they are missing, and the lock LUN.
fn write_configuration(layout: &Layout) -> anyhow::Result<()> {
    write_if_missing(&layout.dir.join("cluster.ascii"), &cluster_text(layout))?;
    let packages = layout.dir.join("packages");
    fs::create_dir_all(&packages)
        .with_context(|| format!("cannot create {}", packages.display()))?;
    for (name, text) in package_texts(layout) {
        write_if_missing(&packages.join(format!("{name}.conf")), &text)?;
    }
    if let Some(path) = layout.lock_lun() {
        // All zeros: a block never written. The daemons need one 4 KiB block per node.
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        if bytes < LOCK_LUN_BYTES {
            file.set_len(LOCK_LUN_BYTES)
                .with_context(|| format!("cannot size {}", path.display()))?;
        }
    }
    Ok(())
}

fn write_if_missing(path: &Path, text: &str) -> anyhow::Result<()> {
    match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(mut file) => file
            .write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display())),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// The cluster ASCII file.
fn cluster_text(layout: &Layout) -> String {
    let mut text = format!(
        "# The cimguard demo cluster: {} nodes on loopback, two heartbeat networks each.\n\
         # Written by `cimguard demo` when missing; edit it while the demo is stopped.\n\
         CLUSTER_NAME {CLUSTER_NAME}\n\
         MEMBER_TIMEOUT {}\n",
        layout.nodes,
        MEMBER_TIMEOUT.as_micros()
    );
    for k in 1..=layout.nodes {
        text.push_str(&format!(
            "\nNODE_NAME {}\n  NETWORK_INTERFACE lo\n    HEARTBEAT_IP {}\n  \
             NETWORK_INTERFACE lo1\n    HEARTBEAT_IP {}\n",
            Layout::node_name(k),
            Layout::address(0, k),
            Layout::address(1, k)
        ));
        if let Some(path) = layout.lock_lun() {
            text.push_str(&format!("  CLUSTER_LOCK_LUN {}\n", ascii_value(&path)));
        }
    }
    text
}

/// A path as a configuration file value: in double quotes when it has blanks.
fn ascii_value(path: &Path) -> String {
    let text = path.display().to_string();
    if text.contains(char::is_whitespace) {
        format!("\"{text}\"")
    } else {
        text
    }
}

/// The demo's packages, by name: dbpkg (failover, with a generic resource), webpkg (failover,
/// needs dbpkg up, node2 first, fails back) and monpkg (multi-node).
fn package_texts(layout: &Layout) -> Vec<(&'static str, String)> {
    let node_lines = |order: &mut dyn Iterator<Item = usize>| -> String {
        order
            .map(|k| format!("node_name {}\n", Layout::node_name(k)))
            .collect()
    };
    let all = node_lines(&mut (1..=layout.nodes));
    let node2_first = node_lines(&mut (2..=layout.nodes).chain(1..2));
    let database = format!(
        "# The demo's database: a service that logs a line every 5 s to $SGRUN/log/dbpkg.log.\n\
         package_name dbpkg\n\
         package_description \"cimguard demo database\"\n\
         package_type failover\n\
         {all}\
         auto_run yes\n\
         failover_policy configured_node\n\
         failback_policy manual\n\
         service_name db_monitor\n\
         service_cmd \"while true; do echo db_monitor on $SG_NODE: $(date); sleep 5; done\"\n\
         service_restart 2\n\
         service_halt_timeout 3\n\
         generic_resource_name sfm_disk\n\
         generic_resource_evaluation_type during_package_start\n"
    );
    let web = format!(
        "# The demo's web tier: runs only while dbpkg is up somewhere; prefers node2.\n\
         package_name webpkg\n\
         package_description \"cimguard demo web tier\"\n\
         package_type failover\n\
         {node2_first}\
         auto_run yes\n\
         failover_policy configured_node\n\
         failback_policy automatic\n\
         dependency_name db_up\n\
         dependency_condition dbpkg = up\n\
         dependency_location any_node\n\
         service_name web_monitor\n\
         service_cmd \"while true; do echo web_monitor on $SG_NODE: $(date); sleep 5; done\"\n\
         service_restart 2\n\
         service_halt_timeout 3\n"
    );
    let monitor = format!(
        "# The demo's monitoring agent: an instance on every node.\n\
         package_name monpkg\n\
         package_description \"cimguard demo monitoring agent\"\n\
         package_type multi_node\n\
         {all}\
         auto_run yes\n\
         service_name mon_agent\n\
         service_cmd \"while true; do echo mon_agent on $SG_NODE: $(date); sleep 10; done\"\n\
         service_restart unlimited\n\
         service_halt_timeout 3\n"
    );
    vec![("dbpkg", database), ("webpkg", web), ("monpkg", monitor)]
}

/// Loads the cluster and package files as the daemons will, with cmcheckconf's checks
/// between them; returns the simple generic resources the packages name.
fn check_configuration(layout: &Layout) -> anyhow::Result<Vec<String>> {
    let path = layout.dir.join("cluster.ascii");
    let name = path.display().to_string();
    let text = fs::read_to_string(&path).with_context(|| format!("cannot read {name}"))?;
    let config = cluster_file::parse(&text, &name)
        .map_err(|findings| findings_error(&findings))?
        .config;
    let names: Vec<String> = config
        .nodes
        .iter()
        .map(|n| n.name.to_ascii_lowercase())
        .collect();
    let expected: Vec<String> = (1..=layout.nodes).map(Layout::node_name).collect();
    if names != expected {
        bail!(
            "{name} configures {}, not node1 to node{}: start the demo with --nodes {} or use \
             another --dir",
            names.join(" "),
            layout.nodes,
            names.len()
        );
    }
    let mut files = Vec::new();
    let mut packages: Vec<PackageConfig> = Vec::new();
    for path in package_files(&layout.dir.join("packages"))? {
        let file = path.display().to_string();
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {file}"))?;
        packages.push(
            package_file::parse(&text, &file)
                .map_err(|findings| findings_error(&findings))?
                .config,
        );
        files.push(file);
    }
    let file_names: Vec<&str> = files.iter().map(String::as_str).collect();
    let errors: Vec<Diagnostic> = package_file::check_set(&config, &packages, &file_names)
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    if !errors.is_empty() {
        return Err(findings_error(&errors));
    }
    Catalog::resolve(&config, &packages)
        .map_err(|e| anyhow!("the packages do not fit the cluster: {e}"))?;
    Timing::derive(&config, &name).map_err(|findings| findings_error(&findings))?;
    let mut resources: Vec<String> = packages
        .iter()
        .flat_map(|p| &p.generic_resources)
        .filter(|r| r.up_criteria.is_none())
        .map(|r| r.name.clone())
        .collect();
    resources.sort();
    resources.dedup();
    Ok(resources)
}

/// The findings of a configuration check as one error (one line: findings joined by `; `).
fn findings_error(findings: &[Diagnostic]) -> anyhow::Error {
    let lines: Vec<String> = findings.iter().map(ToString::to_string).collect();
    anyhow!("{}", lines.join("; "))
}

/// The `*.conf` files of `dir`, sorted.
fn package_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "conf"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// `DIR/cluster.key`: made once, then shared by every node.
fn ensure_key(layout: &Layout) -> anyhow::Result<Vec<u8>> {
    let path = layout.dir.join("cluster.key");
    match fs::read(&path) {
        Ok(key) if key.len() >= KEY_MIN_BYTES => return Ok(key),
        Ok(_) => bail!(
            "{}: shorter than {KEY_MIN_BYTES} bytes; remove it to have a new key made",
            path.display()
        ),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).context(format!("cannot read {}", path.display())),
    }
    let key = random_bytes(KEY_BYTES)?;
    write_private(&path, &key)?;
    Ok(key)
}

fn random_bytes(count: usize) -> anyhow::Result<Vec<u8>> {
    let mut bytes = vec![0; count];
    File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .context("cannot read /dev/urandom")?;
    Ok(bytes)
}

fn random_password() -> anyhow::Result<String> {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut password = String::new();
    while password.len() < PASSWORD_CHARACTERS {
        for byte in random_bytes(2 * PASSWORD_CHARACTERS)? {
            // Only bytes below 248 (4 x 62), so that every character is equally likely.
            if byte < 248 && password.len() < PASSWORD_CHARACTERS {
                password.push(char::from(ALPHABET[usize::from(byte % 62)]));
            }
        }
    }
    Ok(password)
}

/// Writes `bytes` to `path`, readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let write = || -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        // An existing file keeps its mode through open: set it.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

/// The users `monitor` and `admin` in `DIR/users`, with the passwords kept in
/// `DIR/passwords` (generated on the first start). Returns (user, password) pairs.
fn ensure_users(layout: &Layout) -> anyhow::Result<Vec<(String, String)>> {
    let passwords_path = layout.dir.join("passwords");
    let kept = read_passwords(&passwords_path);
    let fresh = kept.is_none();
    let passwords = match kept {
        Some(passwords) => passwords,
        None => {
            let mut passwords = Vec::new();
            for (name, _) in USERS {
                passwords.push((name.to_owned(), random_password()?));
            }
            let text: String = passwords
                .iter()
                .map(|(name, password)| format!("{name}:{password}\n"))
                .collect();
            write_private(&passwords_path, text.as_bytes())?;
            passwords
        }
    };
    let users_path = layout.dir.join("users");
    let mut users = match Users::load(&users_path) {
        Ok(users) => users,
        Err(UsersFileError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            Users::new()
        }
        Err(error) => return Err(error).context(format!("{}", users_path.display())),
    };
    let mut changed = false;
    for ((name, role), (_, password)) in USERS.iter().zip(&passwords) {
        match users.get(name).map(UserEntry::role) {
            None => {
                users.add(name, *role, password)?;
                changed = true;
            }
            Some(existing) => {
                // New passwords: the hashes in the users file are of others.
                if fresh {
                    users.set_password(name, password)?;
                    changed = true;
                }
                if existing != *role {
                    users.set_role(name, *role)?;
                    changed = true;
                }
            }
        }
    }
    if changed {
        users.save(&users_path)?;
    }
    Ok(passwords)
}

/// The passwords kept by an earlier start: `name:password` lines for every user in
/// [`USERS`], in its order; `None` when the file is missing or incomplete.
fn read_passwords(path: &Path) -> Option<Vec<(String, String)>> {
    let text = fs::read_to_string(path).ok()?;
    let kept: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(_, password)| !password.is_empty())
        .collect();
    USERS
        .iter()
        .map(|(name, _)| Some(((*name).to_owned(), (*kept.get(name)?).to_owned())))
        .collect()
}

/// Node `k`'s state directory: the configuration copied from DIR, the key, the control
/// channel's certificate (issued once) and the WBEM agent's TLS material.
fn prepare_node(
    layout: &Layout,
    k: usize,
    key: &[u8],
    authority: &AuthorityPaths,
) -> anyhow::Result<()> {
    let dir = layout.node_dir(k);
    fs::create_dir_all(&dir).context("cannot create it")?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
        .context("cannot make it private")?;
    fs::copy(layout.dir.join("cluster.ascii"), dir.join("cluster.ascii"))
        .context("cannot copy cluster.ascii into it")?;
    copy_packages(&layout.dir.join("packages"), &dir.join("packages"))?;
    let key_path = dir.join("cluster.key");
    if fs::read(&key_path).ok().as_deref() != Some(key) {
        write_private(&key_path, key)?;
    }
    let name = Layout::node_name(k);
    let control = cimguard_certs::ControlPaths::in_directory(&dir);
    if ![&control.ca_cert, &control.cert, &control.key]
        .iter()
        .all(|path| path.is_file())
    {
        let addresses = [Layout::address(0, k), Layout::address(1, k)];
        cimguard_certs::issue_node_certificate(authority, &name, &addresses, &dir)
            .context("the control channel's certificate")?;
    }
    let names = ServerNames {
        dns_names: vec![name, "localhost".to_owned()],
        ip_addresses: vec![Layout::address(0, k), IpAddr::V4(Ipv4Addr::LOCALHOST)],
    };
    cimguard_certs::ensure(&dir.join("tls"), &names).context("the WBEM agent's certificate")?;
    Ok(())
}

/// Makes `to` hold the same package files as `from`.
fn copy_packages(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    let sources = package_files(from)?;
    for stale in package_files(to)? {
        if !sources.iter().any(|s| s.file_name() == stale.file_name()) {
            fs::remove_file(&stale)
                .with_context(|| format!("cannot remove {}", stale.display()))?;
        }
    }
    for source in sources {
        let Some(file_name) = source.file_name() else {
            continue;
        };
        fs::copy(&source, to.join(file_name))
            .with_context(|| format!("cannot copy {}", source.display()))?;
    }
    Ok(())
}

/// `DIR/ca.pem`: every node's WBEM authority, so one file lets a client trust every node.
fn write_ca_bundle(layout: &Layout) -> anyhow::Result<()> {
    let mut bundle = String::new();
    for k in 1..=layout.nodes {
        let path = layout.node_dir(k).join("tls").join("ca.pem");
        bundle.push_str(
            &fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        );
    }
    let path = layout.dir.join("ca.pem");
    fs::write(&path, bundle).with_context(|| format!("cannot write {}", path.display()))
}

/// `DIR/demo.env`: the variables a client needs to reach node1's agent as `admin`, and this
/// executable's directory on PATH (where the cm* commands are).
fn write_env(layout: &Layout, passwords: &[(String, String)]) -> anyhow::Result<()> {
    let password = passwords
        .iter()
        .find(|(name, _)| name == ENV_USER)
        .map(|(_, password)| password.as_str())
        .unwrap_or_default();
    let bin = command_links(layout)?;
    let text = format!(
        "export CIMGUARD_URL={}\n\
         export CIMGUARD_USER={}\n\
         export CIMGUARD_PASSWORD={}\n\
         export CIMGUARD_CA={}\n\
         export PATH={}:\"$PATH\"\n",
        shell_quote(&format!("https://{}", layout.wbem_address(1))),
        shell_quote(ENV_USER),
        shell_quote(password),
        shell_quote(&layout.dir.join("ca.pem").display().to_string()),
        shell_quote(&bin.display().to_string()),
    );
    // It holds a password.
    write_private(&layout.dir.join("demo.env"), text.as_bytes())
}

/// `DIR/bin`: the cm* commands as links to this executable, which acts as the command it is
/// called by (so they are there whatever `cargo run` built).
fn command_links(layout: &Layout) -> anyhow::Result<PathBuf> {
    let bin = layout.dir.join("bin");
    fs::create_dir_all(&bin).with_context(|| format!("{}", bin.display()))?;
    for command in crate::commands::COMMANDS {
        let link = bin.join(command);
        if fs::read_link(&link).ok().as_deref() == Some(layout.exe.as_path()) {
            continue;
        }
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&layout.exe, &link)
            .with_context(|| format!("{}", link.display()))?;
    }
    Ok(bin)
}

/// `text` in single quotes for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// `text` as one shell word: as it is when it needs no quoting.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@,=%".contains(c));
    if plain {
        text.to_owned()
    } else {
        shell_quote(text)
    }
}

/// How [`Supervisor::wait_until_ready`] ended.
enum Started {
    /// The cluster is up with its packages: node1's status.
    Ready(Box<DaemonStatus>),
    /// SIGINT or SIGTERM came first.
    Interrupted(Signal),
}

/// One node's daemon as the supervisor sees it.
#[derive(Default)]
struct NodeProcess {
    /// The running daemon (reaped: `None`).
    child: Option<Child>,
    /// When a daemon that died is to be started again.
    restart_at: Option<Instant>,
    /// The generic resources are still to be set up on this node.
    resources_pending: bool,
}

/// The daemons: started, watched, started again, halted.
struct Supervisor<'a> {
    layout: &'a Layout,
    /// The simple generic resources, set up on each node once it is a member.
    resources: Vec<String>,
    /// Node k is `nodes[k - 1]`.
    nodes: Vec<NodeProcess>,
}

impl<'a> Supervisor<'a> {
    fn new(layout: &'a Layout, resources: Vec<String>) -> Supervisor<'a> {
        Supervisor {
            layout,
            resources,
            nodes: (0..layout.nodes).map(|_| NodeProcess::default()).collect(),
        }
    }

    fn start_all(&mut self) -> anyhow::Result<()> {
        for k in 1..=self.layout.nodes {
            let pid = self.start(k)?;
            say(format_args!(
                "started {} (pid {pid}; log {})",
                Layout::node_name(k),
                self.layout.log(k).display()
            ));
        }
        Ok(())
    }

    /// Starts node `k`'s daemon, its output appended to its log, and writes its pid file.
    fn start(&mut self, k: usize) -> anyhow::Result<u32> {
        let layout = self.layout;
        let name = Layout::node_name(k);
        let dir = layout.node_dir(k);
        let log_path = layout.log(k);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let _ = writeln!(log, "cimguard demo: starting {name}");
        let output = log
            .try_clone()
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let child = Command::new(&layout.exe)
            .arg("node")
            .arg("--state-dir")
            .arg(&dir)
            .arg("--node")
            .arg(&name)
            .arg("--heartbeat-port")
            .arg(layout.heartbeat_port.to_string())
            .arg("--wbem-listen")
            .arg(layout.wbem_address(k).to_string())
            .arg("--users-file")
            .arg(layout.dir.join("users"))
            // Configured in no cluster (after cmdeleteconf, say), a node listens for the
            // cmapplyconf that adds it on its own addresses: on every address, the nodes
            // sharing this host would take one port three times.
            .arg("--config-listen")
            .arg(Layout::address(0, k).to_string())
            .arg("--config-listen")
            .arg(Layout::address(1, k).to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::from(output))
            .stderr(Stdio::from(log))
            // A process group of its own: the terminal's Ctrl-C reaches the demo alone,
            // which halts the cluster in order rather than have every node die at once.
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {name}'s daemon ({})", layout.exe.display()))?;
        let pid = child.id();
        self.nodes[k - 1] = NodeProcess {
            child: Some(child),
            restart_at: None,
            resources_pending: !self.resources.is_empty(),
        };
        let pid_file = layout.pid_file(k);
        fs::write(&pid_file, format!("{pid}\n"))
            .with_context(|| format!("cannot write {}", pid_file.display()))?;
        Ok(pid)
    }

    /// The daemons that have ended since the last look, with their exit statuses (reaped).
    fn reap(&mut self) -> Vec<(usize, ExitStatus)> {
        let mut ended = Vec::new();
        for (index, node) in self.nodes.iter_mut().enumerate() {
            let Some(child) = node.child.as_mut() else {
                continue;
            };
            match child.try_wait() {
                Ok(Some(status)) => {
                    node.child = None;
                    ended.push((index + 1, status));
                }
                Ok(None) => {}
                // Not ours to wait for any more (cannot happen for a child): count it ended.
                Err(_) => {
                    node.child = None;
                }
            }
        }
        ended
    }

    fn running(&self) -> Vec<usize> {
        (1..=self.layout.nodes)
            .filter(|k| self.nodes[k - 1].child.is_some())
            .collect()
    }

    fn pid(&self, k: usize) -> Option<u32> {
        self.nodes[k - 1].child.as_ref().map(Child::id)
    }

    /// Waits until node1 sees the cluster up, every node up, and [`READY_PACKAGES`] up; at
    /// most [`READY_TIMEOUT`]. A daemon that ends meanwhile ends the wait with its reason.
    fn wait_until_ready(&mut self, signals: &mpsc::Receiver<Signal>) -> anyhow::Result<Started> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some((k, status)) = self.reap().into_iter().next() {
                let log = self.layout.log(k);
                bail!(
                    "{}'s daemon ended ({status}) before the cluster formed: {} (see {})",
                    Layout::node_name(k),
                    last_error(&log),
                    log.display()
                );
            }
            self.set_resources();
            let why = match request(&self.layout.socket(1), &Request::Status) {
                Ok(Reply::Status(status)) => match readiness(&status.cluster) {
                    Ok(()) => return Ok(Started::Ready(status)),
                    Err(not_yet) => not_yet,
                },
                Ok(other) => format!("node1 answers {other:?}"),
                Err(error) => format!("node1 does not answer: {error}"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "the cluster did not form and run {} within {} s ({why}); see the node logs, \
                     {}",
                    READY_PACKAGES.join(" and "),
                    READY_TIMEOUT.as_secs(),
                    self.layout.dir.join("node*").join("cmcld.log").display()
                );
            }
            match signals.recv_timeout(TICK) {
                Ok(signal) => return Ok(Started::Interrupted(signal)),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => thread::sleep(TICK),
            }
        }
    }

    /// Sets the simple generic resources up on every node that needs it and is a member by
    /// now (as a resource monitor would once the node is up). A node that does not answer
    /// is asked again later.
    fn set_resources(&mut self) {
        for k in 1..=self.layout.nodes {
            let node = &self.nodes[k - 1];
            if !node.resources_pending || node.child.is_none() {
                continue;
            }
            let socket = self.layout.socket(k);
            match request(&socket, &Request::Status) {
                Ok(Reply::Status(status)) if is_member(&status) => {}
                _ => continue,
            }
            let mut done = true;
            for name in &self.resources {
                let set = Request::SetResource {
                    name: name.clone(),
                    value: ResourceValue::Status(true),
                };
                match request(&socket, &set) {
                    Ok(
                        Reply::Done
                        | Reply::Warned(_)
                        | Reply::Unchanged
                        | Reply::UnchangedWith { .. }
                        | Reply::InEffect { .. }
                        | Reply::Status(_)
                        | Reply::Configuration { .. }
                        | Reply::Notices { .. }
                        | Reply::StatusChange { .. }
                        | Reply::Preview { .. }
                        | Reply::Findings(_)
                        | Reply::Shared { .. },
                    ) => {}
                    Ok(Reply::Refused(why) | Reply::Error(why)) => say(format_args!(
                        "{}: cannot set generic resource {name} up: {why}",
                        Layout::node_name(k)
                    )),
                    Err(_) => done = false,
                }
            }
            self.nodes[k - 1].resources_pending = !done;
        }
    }

    /// Watches the daemons until SIGINT or SIGTERM: one that dies is started again after
    /// [`RESTART_DELAY`]; where the packages run is told as it changes. Returns early when
    /// every daemon has halted of its own (a cmhaltcl from elsewhere).
    fn supervise(&mut self, signals: &mpsc::Receiver<Signal>, formed: &Snapshot) {
        let mut placement = placement(formed);
        let mut next_watch = Instant::now() + WATCH_INTERVAL;
        loop {
            match signals.recv_timeout(TICK) {
                Ok(signal) => {
                    say(format_args!("{}: halting the cluster", signal.as_str()));
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => thread::sleep(TICK),
            }
            self.restart_dead();
            self.set_resources();
            if Instant::now() >= next_watch {
                next_watch = Instant::now() + WATCH_INTERVAL;
                self.tell_moves(&mut placement);
            }
            if self
                .nodes
                .iter()
                .all(|n| n.child.is_none() && n.restart_at.is_none())
            {
                say("every node has halted: the demo ends");
                return;
            }
        }
    }

    /// Schedules a restart of each daemon that died, and starts those whose time has come.
    /// A halted node's daemon stays (cmrunnode starts it again); one that ended with exit
    /// status 0 (told to end from outside) stays down until the demo starts again.
    fn restart_dead(&mut self) {
        for (k, status) in self.reap() {
            let name = Layout::node_name(k);
            if status.success() {
                say(format_args!(
                    "{name}'s daemon ended; it stays down until the demo starts again"
                ));
            } else {
                say(format_args!(
                    "{name}'s daemon ended ({status}); starting it again in {} s, as a \
                     rebooting node with autostart would be",
                    RESTART_DELAY.as_secs()
                ));
                self.nodes[k - 1].restart_at = Some(Instant::now() + RESTART_DELAY);
            }
        }
        let now = Instant::now();
        for k in 1..=self.layout.nodes {
            if self.nodes[k - 1].restart_at.is_none_or(|at| at > now) {
                continue;
            }
            let name = Layout::node_name(k);
            match self.start(k) {
                Ok(pid) => say(format_args!("started {name} again (pid {pid})")),
                Err(error) => {
                    say(format_args!(
                        "cannot start {name} again: {error:#}; trying again in {} s",
                        RESTART_DELAY.as_secs()
                    ));
                    self.nodes[k - 1].restart_at = Some(now + RESTART_DELAY);
                }
            }
        }
    }

    /// Tells where the packages run now, where that changed, once every running member
    /// agrees (a node that has just joined may not know the packages yet).
    fn tell_moves(&self, told: &mut BTreeMap<String, String>) {
        let mut views = self.running().into_iter().filter_map(|k| {
            match request(&self.layout.socket(k), &Request::Status) {
                Ok(Reply::Status(status)) if is_member(&status) => Some(placement(&status.cluster)),
                _ => None,
            }
        });
        let Some(view) = views.next() else {
            return;
        };
        if views.any(|other| other != view) {
            return;
        }
        for (package, words) in view {
            if told.get(&package) != Some(&words) {
                say(format_args!("{package} {words}"));
                told.insert(package, words);
            }
        }
    }

    /// Halts the cluster: asks the daemons to halt ([`Supervisor::ask_to_halt`]), ends each
    /// once it is out of the cluster (SIGTERM: a halted daemon stays otherwise, for
    /// cmrunnode), waits at most [`HALT_TIMEOUT`] for them to end, kills what is left (a
    /// second signal kills at once) and removes the pid files.
    fn halt(&mut self, signals: &mpsc::Receiver<Signal>) {
        for node in &mut self.nodes {
            node.restart_at = None;
        }
        self.reap();
        for k in self.ask_to_halt() {
            self.kill(k, "does not take a halt");
        }
        let deadline = Instant::now() + HALT_TIMEOUT;
        let mut reason = format!("did not halt within {} s", HALT_TIMEOUT.as_secs());
        let mut ended = std::collections::BTreeSet::new();
        while !self.running().is_empty() && Instant::now() < deadline {
            for (k, _) in self.reap() {
                say(format_args!("{} halted", Layout::node_name(k)));
            }
            for k in self.running() {
                let member = matches!(
                    request(&self.layout.socket(k), &Request::Status),
                    Ok(Reply::Status(status)) if is_member(&status)
                );
                if !member && ended.insert(k) {
                    self.end(k);
                }
            }
            if let Ok(signal) = signals.recv_timeout(TICK) {
                say(format_args!("{} again: killing the nodes", signal.as_str()));
                reason = String::from("was killed on a second signal");
                break;
            }
        }
        for k in self.running() {
            self.kill(k, &reason);
        }
        for k in 1..=self.layout.nodes {
            let _ = fs::remove_file(self.layout.pid_file(k));
        }
    }

    /// Asks every running daemon to halt: cmhaltnode -f on those not yet members (starting,
    /// they would not hear of a cmhaltcl), then cmhaltcl -f through the first member that
    /// takes it, else cmhaltnode -f on each member. Returns the nodes that did not answer
    /// (not answering yet, so running nothing yet).
    fn ask_to_halt(&self) -> Vec<usize> {
        let (members, starting): (Vec<usize>, Vec<usize>) =
            self.running().into_iter().partition(|k| {
                matches!(
                    request(&self.layout.socket(*k), &Request::Status),
                    Ok(Reply::Status(status)) if is_member(&status)
                )
            });
        let mut refused = self.halt_each(&starting);
        if members.is_empty() {
            return refused;
        }
        let halt_cluster = Request::HaltCluster {
            force: true,
            detach: false,
        };
        let through = members.iter().copied().find(|k| {
            matches!(
                request(&self.layout.socket(*k), &halt_cluster),
                Ok(Reply::Done)
            )
        });
        match through {
            Some(k) => say(format_args!(
                "halting the cluster through {}",
                Layout::node_name(k)
            )),
            None => refused.extend(self.halt_each(&members)),
        }
        refused
    }

    /// cmhaltnode -f on each of `nodes`; those that do not answer it. One that answers with
    /// a refusal (a daemon halted already) is ended with the others, by SIGTERM.
    fn halt_each(&self, nodes: &[usize]) -> Vec<usize> {
        let halt_node = Request::HaltNode {
            force: true,
            detach: false,
            node: None,
        };
        nodes
            .iter()
            .copied()
            .filter(|k| request(&self.layout.socket(*k), &halt_node).is_err())
            .collect()
    }

    /// Asks node `k`'s daemon to end (SIGTERM): halted, it ends at once; still in the
    /// cluster, it halts the node first.
    fn end(&self, k: usize) {
        if let Some(pid) = self.pid(k).and_then(|pid| i32::try_from(pid).ok()) {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }

    /// Kills node `k`'s daemon with SIGKILL, with its process group (its safety timer's
    /// watcher then kills its packages' groups), and reaps it.
    fn kill(&mut self, k: usize, reason: &str) {
        let Some(mut child) = self.nodes[k - 1].child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let group = i32::try_from(child.id()).map(Pid::from_raw);
        if group.map_or(true, |group| killpg(group, Signal::SIGKILL).is_err()) {
            let _ = child.kill();
        }
        let _ = child.wait();
        say(format_args!(
            "{}'s daemon {reason}: killed it (SIGKILL)",
            Layout::node_name(k)
        ));
    }
}

/// Why `cluster` is not ready yet: the cluster, every node and [`READY_PACKAGES`] up.
fn readiness(cluster: &Snapshot) -> Result<(), String> {
    if cluster.status != ClusterStatus::Up {
        return Err(format!("the cluster is {}", cluster.status));
    }
    let down: Vec<&str> = cluster
        .nodes
        .iter()
        .filter(|n| n.condition.status != NodeStatus::Up)
        .map(|n| n.name.as_str())
        .collect();
    if !down.is_empty() {
        return Err(format!("{} not up yet", down.join(", ")));
    }
    for name in READY_PACKAGES {
        match cluster.packages.iter().find(|p| p.name == name) {
            None => return Err(format!("no package {name}")),
            Some(row) if row.condition.status != PackageStatus::Up => {
                return Err(format!("{name} is {}", row.condition.status));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Whether the node that answered `status` is a member of a formed cluster.
fn is_member(status: &DaemonStatus) -> bool {
    status.cluster.status == ClusterStatus::Up
        && status
            .cluster
            .nodes
            .iter()
            .any(|n| n.name == status.node && n.condition.status == NodeStatus::Up)
}

/// Each package's nodes, as words: "runs on node1", "runs on node1 node2", "is down".
fn placement(cluster: &Snapshot) -> BTreeMap<String, String> {
    cluster
        .packages
        .iter()
        .map(|row| {
            let owners: Vec<&str> = row
                .owners
                .iter()
                .filter_map(|n| {
                    // Rows by number: a node deleted while the cluster ran has none.
                    cluster
                        .nodes
                        .iter()
                        .find(|r| r.id == n)
                        .map(|r| r.name.as_str())
                })
                .collect();
            let words = if owners.is_empty() {
                format!("is {}", row.condition.status)
            } else {
                format!("runs on {}", owners.join(" "))
            };
            (row.name.clone(), words)
        })
        .collect()
}

/// Sends `request` to the admin socket `socket` and reads the reply, within
/// [`ADMIN_TIMEOUT`].
fn request(socket: &Path, request: &Request) -> Result<Reply, String> {
    AdminClient::new(socket)
        .with_timeout(ADMIN_TIMEOUT)
        .request(request)
        .map_err(|e| format!("{}: {e}", socket.display()))
}

/// The last line of the log `path` that tells an error, else its last line.
fn last_error(path: &Path) -> String {
    let mut tail = Vec::new();
    if let Ok(mut file) = File::open(path) {
        let length = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(length.saturating_sub(LOG_TAIL_BYTES)));
        let _ = file.take(LOG_TAIL_BYTES).read_to_end(&mut tail);
    }
    let text = String::from_utf8_lossy(&tail);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .rev()
        .find(|l| l.to_ascii_lowercase().contains("error"))
        .or(lines.last())
        .map_or_else(|| "its log is empty".to_owned(), |l| (*l).to_owned())
}

/// What to do next, printed once the cluster runs.
fn print_quick_start(layout: &Layout, supervisor: &Supervisor<'_>, cluster: &Snapshot) {
    let dir = &layout.dir;
    let path = |path: PathBuf| shell_word(&path.display().to_string());
    say(format_args!(
        "cluster {CLUSTER_NAME} is up: {} nodes in {}",
        layout.nodes,
        dir.display()
    ));
    for k in 1..=layout.nodes {
        say(format_args!(
            "  {}  pid {}  WBEM https://{}  log {}",
            Layout::node_name(k),
            supervisor.pid(k).unwrap_or(0),
            layout.wbem_address(k),
            layout.log(k).display()
        ));
    }
    for (package, words) in placement(cluster) {
        say(format_args!("  {package} {words}"));
    }
    let database_node = cluster
        .packages
        .iter()
        .find(|p| p.name == "dbpkg")
        .and_then(|p| p.owners.iter().next())
        .and_then(|n| cluster.nodes.iter().find(|r| r.id == n))
        .map_or_else(|| Layout::node_name(1), |n| n.name.clone());
    say("");
    say("Quick start, in another shell:");
    say(format_args!("  source {}", path(dir.join("demo.env"))));
    // requests (under pywbem) lets these variables override --ca-certs.
    say("  # pywbemcli: `python3 -m pip install pywbemtools` (scripts/test python puts it in .venv/bin)");
    say(
        "  env -u REQUESTS_CA_BUNDLE -u CURL_CA_BUNDLE pywbemcli -s \"$CIMGUARD_URL\" \
         -u \"$CIMGUARD_USER\" -p \"$CIMGUARD_PASSWORD\" --ca-certs \"$CIMGUARD_CA\" \
         -d root/cimv2 instance enumerate HP_SGPackage",
    );
    say("  cmviewcl -v");
    say(format_args!(
        "  kill -9 $(cat {})    # {database_node} runs dbpkg: this demo shows it fail over",
        path(dir.join(&database_node).join("cmcld.pid"))
    ));
    // The killed node's agent goes with its daemon: watch from another node's.
    if let Some(k) = (1..=layout.nodes).find(|k| Layout::node_name(*k) != database_node) {
        say(format_args!(
            "  CIMGUARD_URL=https://{} cmviewcl    # from {}: dbpkg runs elsewhere within \
             MEMBER_TIMEOUT + 3 s",
            layout.wbem_address(k),
            Layout::node_name(k)
        ));
    }
    say(format_args!(
        "  cmhaltnode -f; cmviewcl; cmrunnode    # {} leaves the cluster (its packages move), \
         then joins again",
        Layout::node_name(1)
    ));
    say(format_args!(
        "The WBEM users are admin (FULL_ADMIN) and monitor (MONITOR); their passwords are in {}.",
        dir.join("passwords").display()
    ));
    say(format_args!(
        "A node whose daemon dies is started again after {} s. Ctrl-C halts the cluster.",
        RESTART_DELAY.as_secs()
    ));
}
