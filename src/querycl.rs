//! `cmquerycl` (serviceguard.md 5.2): the cluster ASCII file (section 3.1) for a new cluster,
//! or a running cluster's file with nodes added, as the first step of configuring it:
//!
//! - `cmquerycl -n NODE [-L LOCK_LUN]... [-q QS_HOST [QS_ADDR]] [-C OUTPUT]`: a template with
//!   the `cluster1` placeholder name, the cluster lock (section 4), a NODE_NAME block per node,
//!   the timing parameters at their defaults and Serviceguard's default access policy, each
//!   under a comment that says what it is.
//! - `cmquerycl -c CLUSTER [-n NODE [-L LOCK_LUN]]...`: the file of the cluster in effect,
//!   from the local agent as `cmgetconf -c` gets it, with the nodes named added (that is how an
//!   operator adds a node: this, then cmapplyconf).
//!
//! Serviceguard asks its configuration daemon on every node (cmclconfd) for that node's
//! interfaces. cimguard has no daemon running on a node before it is configured, so only this
//! host is probed: a node that is this host gets a NETWORK_INTERFACE block for each interface
//! that is up (not loopback) with its IPv4 addresses as HEARTBEAT_IP. Another node's name is
//! resolved, and its address written with the name of this host's interface on the same
//! subnet (nodes usually have same-named interfaces), under a comment saying it was not
//! probed. What cannot be found (`-w none`, no interface on that subnet) is written as a
//! parameter without a value, which cmcheckconf refuses until the operator gives one, as
//! cmmakepkg does for `package_name`.
//!
//! The file is [`write::cluster_ascii`]'s, the writer of `cmgetconf`, so that it reads back
//! with [`cluster::parse`] as the daemon reads it; the comments and placeholders are added to
//! its lines. Nothing here writes a parameter the parser does not take.

use std::collections::HashSet;
use std::io::{self, Write};
use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cimguard_cluster::config::cluster::{
    self, AccessPolicy, AddressFamily, ClusterConfig, ClusterLock, InterfaceConfig, NodeConfig,
    Role, UserHost,
};
use cimguard_cluster::config::{write, Severity};
use clap::error::ErrorKind;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};
use nix::net::if_::InterfaceFlags;
use nix::sys::socket::SockaddrStorage;

use crate::cimclient::Client;

// The flags as clap reads them (the doc comment below is the command's help); a
// `QueryCluster` is made of them with each -L paired with the -n before it. The usage is
// Serviceguard's, written out: clap's own cannot show that pairing.
/// Query nodes and write a cluster configuration template; or, with -c, write the running
/// cluster's file with the nodes named added.
///
/// Only this host's interfaces are probed: cimguard has no daemon on unconfigured nodes to
/// ask. Another node's name is resolved and its address written with this host's interface
/// on the same subnet, to be checked. What is not found is left without a value, for the
/// operator to give before cmcheckconf.
#[derive(Parser, Debug)]
#[command(
    name = "cmquerycl",
    version,
    override_usage = "cmquerycl [-v] [-C OUTPUT] [-n NODE [-L LOCK_LUN]]... \
                      [-q QS_HOST [QS_ADDR]] [-c CLUSTER] [-w none|local|full] [-k]"
)]
struct Flags {
    /// Verbose: tell what was probed (on standard error).
    #[arg(short = 'v')]
    verbose: bool,
    /// The file to write (it must not exist yet); standard output without it.
    #[arg(short = 'C', value_name = "OUTPUT")]
    output: Option<PathBuf>,
    /// A node of the cluster, by host name (repeatable, in the order of the file).
    #[arg(short = 'n', value_name = "NODE")]
    nodes: Vec<String>,
    /// The lock LUN, a block device (CLUSTER_LOCK_LUN). Right after -n NODE: that node's path
    /// to it (paths may differ between nodes); once before the first -n: every node's path.
    #[arg(short = 'L', value_name = "LOCK_LUN", conflicts_with = "quorum_server")]
    lock_luns: Vec<PathBuf>,
    /// The quorum server as the cluster lock (QS_HOST), and another address of it (QS_ADDR).
    #[arg(
        short = 'q',
        num_args = 1..=2,
        value_names = ["QS_HOST", "QS_ADDR"],
        action = clap::ArgAction::Set
    )]
    quorum_server: Option<Vec<String>>,
    /// Write the file of the running cluster CLUSTER (through the local agent: CIMGUARD_URL,
    /// CIMGUARD_USER, CIMGUARD_PASSWORD, CIMGUARD_CA), with the -n nodes added.
    #[arg(short = 'c', value_name = "CLUSTER")]
    cluster: Option<String>,
    /// Network probing.
    #[arg(short = 'w', value_enum, value_name = "PROBING", default_value_t = Probing::Local)]
    probing: Probing,
    /// Accepted and ignored: Serviceguard's "do not probe disks"; cimguard probes no disks.
    #[arg(short = 'k')]
    skip_disk_probing: bool,
}

/// What `cmquerycl` was asked for: its flags, with each -L given to its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryCluster {
    /// -v: tell what was probed.
    pub verbose: bool,
    /// -C: the file to write; standard output without it.
    pub output: Option<PathBuf>,
    /// The -n nodes, in order, each with its -L.
    pub nodes: Vec<NodeRequest>,
    /// -q: the quorum server.
    pub quorum_server: Option<QuorumServer>,
    /// -c: the running cluster to start from.
    pub cluster: Option<String>,
    /// -w: how much to probe.
    pub probing: Probing,
}

/// One `-n NODE [-L LOCK_LUN]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRequest {
    /// NODE_NAME: the node's host name.
    pub name: String,
    /// CLUSTER_LOCK_LUN: the node's path to the lock LUN.
    pub lock_lun: Option<PathBuf>,
}

/// `-q QS_HOST [QS_ADDR]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumServer {
    /// QS_HOST.
    pub host: String,
    /// QS_ADDR: another address of the same server.
    pub alternate: Option<String>,
}

/// `-w`: how much of the network cmquerycl probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Probing {
    /// Nothing: every node's NETWORK_INTERFACE and HEARTBEAT_IP are left to fill in, and no
    /// name is resolved.
    None,
    /// This host's interfaces, and the other nodes' names resolved (the default).
    Local,
    /// The same as local: Serviceguard also tests every pair of interfaces between nodes,
    /// which cimguard cannot do from one host.
    Full,
}

impl CommandFactory for QueryCluster {
    fn command() -> clap::Command {
        Flags::command()
    }

    fn command_for_update() -> clap::Command {
        Flags::command_for_update()
    }
}

impl FromArgMatches for QueryCluster {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let flags = Flags::from_arg_matches(matches)?;
        let nodes = paired_nodes(&flags, matches)?;
        let quorum_server = flags.quorum_server.map(|values| {
            let mut values = values.into_iter();
            QuorumServer {
                // clap gives -q one value at least (num_args 1..=2).
                host: values.next().unwrap_or_default(),
                alternate: values.next(),
            }
        });
        Ok(QueryCluster {
            verbose: flags.verbose,
            output: flags.output,
            nodes,
            quorum_server,
            cluster: flags.cluster,
            probing: flags.probing,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

/// `QueryCluster::parse()` reads the process's arguments, as every command's flags do.
impl Parser for QueryCluster {}

/// The -n nodes with their -L paths. clap keeps each flag's values apart, so which -n a -L
/// follows is not among them; it is found from where clap read each value. clap numbers
/// every flag and every value, whatever the spelling (`-n NODE`, `-nNODE`, `-n=NODE`), so in
/// `-n NODE -L PATH` the PATH comes two after the NODE. A -L before the first -n gives every
/// node's path (Serviceguard's `-L` without `-n`); a -L anywhere else is refused.
fn paired_nodes(flags: &Flags, matches: &ArgMatches) -> Result<Vec<NodeRequest>, clap::Error> {
    let node_indices: Vec<usize> = matches
        .indices_of("nodes")
        .map(Iterator::collect)
        .unwrap_or_default();
    let lock_indices: Vec<usize> = matches
        .indices_of("lock_luns")
        .map(Iterator::collect)
        .unwrap_or_default();
    let mut nodes: Vec<NodeRequest> = flags
        .nodes
        .iter()
        .map(|name| NodeRequest {
            name: name.clone(),
            lock_lun: None,
        })
        .collect();
    let mut every_node: Option<&PathBuf> = None;
    for (path, &index) in flags.lock_luns.iter().zip(&lock_indices) {
        let follows = node_indices.iter().position(|&node| node + 2 == index);
        let first = node_indices.first().is_none_or(|&first| index < first);
        match (follows.and_then(|position| nodes.get_mut(position)), first) {
            (Some(node), _) => node.lock_lun = Some(path.clone()),
            (None, true) if every_node.is_none() => every_node = Some(path),
            (None, _) => {
                return Err(Flags::command().error(
                    ErrorKind::ArgumentConflict,
                    format!(
                        "-L {} must come right after a -n NODE (that node's path to the lock \
                         LUN), or once before the first -n (every node's path)",
                        path.display()
                    ),
                ))
            }
        }
    }
    if let Some(path) = every_node {
        for node in nodes.iter_mut().filter(|n| n.lock_lun.is_none()) {
            node.lock_lun = Some(path.clone());
        }
    }
    Ok(nodes)
}

/// Runs cmquerycl.
pub fn query_cluster(args: &QueryCluster) -> ExitCode {
    match query(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cmquerycl: {error}");
            ExitCode::FAILURE
        }
    }
}

fn query(args: &QueryCluster) -> Result<(), String> {
    if args.nodes.is_empty() && args.cluster.is_none() {
        let wanted = "give the nodes of a new cluster (-n NODE...), or a cluster to query (-c)";
        return Err(wanted.into());
    }
    check_requests(args)?;
    let existing = match &args.cluster {
        Some(name) => Some(cluster_file(name)?),
        None => None,
    };
    if let (Some(text), true, None) = (&existing, args.nodes.is_empty(), &args.quorum_server) {
        // Nothing to add: the file as the cluster has it, as cmgetconf -c writes it.
        return output(args, text);
    }
    check_quorum_server(args)?;
    let host = match args.probing {
        Probing::None => None,
        Probing::Local | Probing::Full => Some(Host::this()?),
    };
    let blocks = args
        .nodes
        .iter()
        .map(|node| probe_node(node, args.probing, host.as_ref(), &resolve))
        .collect::<Result<Vec<_>, _>>()?;
    if args.verbose {
        report_probes(args, host.as_ref(), &blocks);
    }
    check_same_host(&blocks)?;
    let (config, header) = match (&args.cluster, &existing) {
        (Some(name), Some(text)) => (existing_config(name, text)?, added_header(name, args)),
        _ => (template_config(), template_header(args)),
    };
    let config = with_nodes(config, args, &blocks)?;
    if config.nodes.len() == 2 && config.lock == ClusterLock::None {
        eprintln!(
            "cmquerycl: warning: a two-node cluster needs a cluster lock (when one node is \
             lost the other has exactly half): give -L LOCK_LUN after each -n NODE, or -q \
             QS_HOST; cmcheckconf refuses the file without one"
        );
    }
    // The cluster's own nodes come first, without extra lines.
    let mut extra: Vec<Vec<String>> =
        vec![Vec::new(); config.nodes.len().saturating_sub(blocks.len())];
    extra.extend(blocks.into_iter().map(|block| block.extra_lines));
    output(args, &render(&config, &header, &extra))
}

/// The -n, -L and -q values the file must take: node names as NODE_NAME takes them, each
/// once, absolute lock LUN paths, at most [`cluster::NODES_MAX`] nodes.
fn check_requests(args: &QueryCluster) -> Result<(), String> {
    let mut seen = HashSet::new();
    for node in &args.nodes {
        let name = &node.name;
        let valid = !name.is_empty()
            && name.len() <= cluster::NODE_NAME_BYTES_MAX
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !valid {
            return Err(format!(
                "node name {name:?}: a host name of at most {} letters, digits, '-', '_' or '.'",
                cluster::NODE_NAME_BYTES_MAX
            ));
        }
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(format!("node {name} is given twice"));
        }
        if let Some(path) = &node.lock_lun {
            if !path.is_absolute() {
                return Err(format!(
                    "-L {}: not an absolute path (the lock LUN's block device on {name})",
                    path.display()
                ));
            }
        }
    }
    if args.nodes.len() > cluster::NODES_MAX {
        return Err(format!(
            "{} nodes; a cluster has at most {}",
            args.nodes.len(),
            cluster::NODES_MAX
        ));
    }
    if let Some(server) = &args.quorum_server {
        for name in std::iter::once(&server.host).chain(&server.alternate) {
            if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '#') {
                return Err(format!(
                    "quorum server {name:?}: not a host name or address"
                ));
            }
        }
    }
    Ok(())
}

/// The quorum server's names resolve (unless -w none): a misspelt QS_HOST would otherwise be
/// found only when the cluster first needs its lock.
fn check_quorum_server(args: &QueryCluster) -> Result<(), String> {
    let Some(server) = &args.quorum_server else {
        return Ok(());
    };
    if args.probing == Probing::None {
        return Ok(());
    }
    for name in std::iter::once(&server.host).chain(&server.alternate) {
        resolve(name).map_err(|e| format!("cannot resolve quorum server {name}: {e}"))?;
    }
    Ok(())
}

/// The file of the running cluster `name`, from the local agent, as cmgetconf -c gets it:
/// HP_SGClusteringService.GetView for the cluster's name, GetConfiguration for its file.
fn cluster_file(name: &str) -> Result<String, String> {
    let client = Client::from_env()?;
    let snapshot = crate::clcmds::view(&client)?;
    if !snapshot.name.eq_ignore_ascii_case(name) {
        return Err(format!(
            "this agent's cluster is {}, not {name}",
            snapshot.name
        ));
    }
    Ok(crate::clcmds::configuration(&client)?.0.text)
}

/// The configuration of the running cluster's file.
fn existing_config(name: &str, text: &str) -> Result<ClusterConfig, String> {
    let file = format!("the cluster file of {name}");
    cluster::parse(text, &file)
        .map(|checked| checked.config)
        .map_err(|findings| {
            let first = findings.iter().find(|d| d.severity == Severity::Error);
            match first.or(findings.first()) {
                Some(first) => format!("{first} (the agent's own file: see cmgetconf -c {name})"),
                None => format!("{file} does not parse"),
            }
        })
}

/// A new cluster with Serviceguard's defaults: the `cluster1` placeholder name (Serviceguard's
/// template has it too), no node or lock yet, and the access policy Serviceguard's template
/// has, which lets any user of any node monitor the cluster (cmviewcl).
fn template_config() -> ClusterConfig {
    ClusterConfig {
        name: "cluster1".into(),
        address_family: AddressFamily::Ipv4,
        nodes: Vec::new(),
        member_timeout: cluster::MEMBER_TIMEOUT_DEFAULT,
        auto_start_timeout: cluster::AUTO_START_TIMEOUT_DEFAULT,
        network_polling_interval: cluster::NETWORK_POLLING_INTERVAL_DEFAULT,
        lock: ClusterLock::None,
        max_configured_packages: cluster::PACKAGES_MAX,
        access: vec![AccessPolicy {
            user: None,
            host: UserHost::AnyServiceguardNode,
            role: Role::Monitor,
        }],
        weight_defaults: Default::default(),
    }
}

/// `config` with the requested nodes added after its own and the -q quorum server as its
/// lock; refused when a node is in it already or the lock would be half of one.
fn with_nodes(
    mut config: ClusterConfig,
    args: &QueryCluster,
    blocks: &[NodeBlock],
) -> Result<ClusterConfig, String> {
    for block in blocks {
        if config.node(&block.config.name).is_some() {
            return Err(format!(
                "{} is a node of cluster {} already",
                block.config.name, config.name
            ));
        }
        config.nodes.push(block.config.clone());
    }
    if config.nodes.len() > cluster::NODES_MAX {
        return Err(format!(
            "{} nodes; a cluster has at most {}",
            config.nodes.len(),
            cluster::NODES_MAX
        ));
    }
    if let Some(server) = &args.quorum_server {
        // A cluster's quorum server replaced keeps its timing.
        let (polling_interval, timeout_extension) = match &config.lock {
            ClusterLock::QuorumServer {
                polling_interval,
                timeout_extension,
                ..
            } => (*polling_interval, *timeout_extension),
            ClusterLock::None | ClusterLock::LockLun => {
                (cluster::QS_POLLING_INTERVAL_DEFAULT, Duration::ZERO)
            }
        };
        config.lock = ClusterLock::QuorumServer {
            host: server.host.clone(),
            alternate: server.alternate.clone(),
            polling_interval,
            timeout_extension,
        };
    }
    check_lock(&mut config)?;
    Ok(config)
}

/// One lock, whole: a lock LUN is reached by every node (each with its own path) and by at
/// most [`cluster::LOCK_LUN_NODES_MAX`] nodes, and is not combined with a quorum server.
fn check_lock(config: &mut ClusterConfig) -> Result<(), String> {
    let Some(with) = config.nodes.iter().find(|n| n.lock_lun.is_some()) else {
        return Ok(());
    };
    if matches!(config.lock, ClusterLock::QuorumServer { .. }) {
        return Err(
            "a cluster has one lock: a quorum server (-q) or a lock LUN (-L), not both \
                    (the cluster's own, with -c, counts)"
                .into(),
        );
    }
    if let Some(without) = config.nodes.iter().find(|n| n.lock_lun.is_none()) {
        return Err(format!(
            "node {} has no path to the lock LUN that {} uses: give -L LOCK_LUN right after \
             each -n NODE",
            without.name, with.name
        ));
    }
    if config.nodes.len() > cluster::LOCK_LUN_NODES_MAX {
        return Err(format!(
            "a lock LUN serves at most {} nodes; this cluster has {}: use a quorum server (-q)",
            cluster::LOCK_LUN_NODES_MAX,
            config.nodes.len()
        ));
    }
    config.lock = ClusterLock::LockLun;
    Ok(())
}

/// This host, as probing sees it.
struct Host {
    /// Its name (gethostname), short or fully qualified as the system has it.
    name: String,
    /// Each address of each interface that is up and running, in the system's order.
    addresses: Vec<LocalAddress>,
}

/// One address of one of this host's interfaces.
struct LocalAddress {
    /// The interface's name (eth0).
    interface: String,
    address: IpAddr,
    /// The length of the subnet's prefix, from the netmask.
    prefix: u32,
    /// The interface is a loopback interface.
    loopback: bool,
}

impl Host {
    /// This host: its name and its interfaces (getifaddrs).
    fn this() -> Result<Host, String> {
        let name = nix::unistd::gethostname()
            .map_err(|e| format!("cannot read this host's name: {e}"))?
            .to_string_lossy()
            .into_owned();
        let interfaces = nix::ifaddrs::getifaddrs()
            .map_err(|e| format!("cannot list this host's interfaces: {e}"))?;
        let addresses = interfaces
            .filter(|i| {
                i.flags
                    .contains(InterfaceFlags::IFF_UP | InterfaceFlags::IFF_RUNNING)
            })
            .filter_map(|i| {
                let address = ip(i.address.as_ref()?)?;
                let prefix = match i.netmask.as_ref().and_then(ip) {
                    Some(IpAddr::V4(mask)) => u32::from(mask).count_ones(),
                    Some(IpAddr::V6(mask)) => u128::from(mask).count_ones(),
                    None if address.is_ipv4() => 32,
                    None => 128,
                };
                Some(LocalAddress {
                    interface: i.interface_name,
                    address,
                    prefix,
                    loopback: i.flags.contains(InterfaceFlags::IFF_LOOPBACK),
                })
            })
            .collect();
        Ok(Host { name, addresses })
    }

    /// True when `node` names this host: its host name, short or fully qualified (`vm` and
    /// `vm.example.net` are the same host; `vm.a.net` and `vm.b.net` are not).
    fn is_named(&self, node: &str) -> bool {
        let short = |name: &str| name.split('.').next().unwrap_or(name).to_owned();
        node.eq_ignore_ascii_case(&self.name)
            || (node.contains('.') != self.name.contains('.')
                && short(node).eq_ignore_ascii_case(&short(&self.name)))
    }

    /// True when `address` is one of this host's own, loopback addresses left out: every
    /// host has 127.0.0.1, so a name resolving to it (localhost) is not this host by that
    /// alone.
    fn owns(&self, address: &IpAddr) -> bool {
        self.addresses
            .iter()
            .any(|a| !a.loopback && a.address == *address)
    }

    /// The interface on whose subnet `address` is, loopback interfaces included (the
    /// loopback demo's nodes are 127.0.0.K).
    fn interface_for(&self, address: &IpAddr) -> Option<&str> {
        self.addresses
            .iter()
            .find(|a| same_subnet(&a.address, address, a.prefix))
            .map(|a| a.interface.as_str())
    }
}

/// The IP address of a socket address, if it is one.
fn ip(address: &SockaddrStorage) -> Option<IpAddr> {
    address
        .as_sockaddr_in()
        .map(|a| IpAddr::V4(a.ip()))
        .or_else(|| address.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip())))
}

/// True when `a` and `b` share their first `prefix` bits (and their family).
fn same_subnet(a: &IpAddr, b: &IpAddr, prefix: u32) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - prefix.min(32)).unwrap_or(0);
            u32::from(*a) & mask == u32::from(*b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX.checked_shl(128 - prefix.min(128)).unwrap_or(0);
            u128::from(*a) & mask == u128::from(*b) & mask
        }
        _ => false,
    }
}

/// The addresses `name` resolves to (through /etc/hosts, DNS, ...), each once. A name under
/// `.invalid` is answered "no such host" without a lookup, as RFC 6761 (section 6.4) asks of
/// resolver libraries: the system's resolver would send it to DNS.
fn resolve(name: &str) -> Result<Vec<IpAddr>, String> {
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    if lower == "invalid" || lower.ends_with(".invalid") {
        return Err("no such host (.invalid names never resolve, RFC 6761)".into());
    }
    let mut addresses = Vec::new();
    for socket in (name, 0).to_socket_addrs().map_err(|e| e.to_string())? {
        if !addresses.contains(&socket.ip()) {
            addresses.push(socket.ip());
        }
    }
    if addresses.is_empty() {
        return Err("no address".into());
    }
    Ok(addresses)
}

/// A node block of the file: what [`write::cluster_ascii`] writes, and the lines written
/// after its NODE_NAME line (comments, and parameters without a value for the operator to
/// give).
struct NodeBlock {
    config: NodeConfig,
    extra_lines: Vec<String>,
    /// How the node was probed, for -v.
    report: String,
    /// The node is this host.
    this_host: bool,
}

/// Where a node block's values come from.
fn probe_node(
    request: &NodeRequest,
    probing: Probing,
    host: Option<&Host>,
    resolver: &dyn Fn(&str) -> Result<Vec<IpAddr>, String>,
) -> Result<NodeBlock, String> {
    let name = &request.name;
    let mut block = NodeBlock {
        config: NodeConfig {
            name: name.clone(),
            interfaces: Vec::new(),
            lock_lun: request.lock_lun.clone(),
            capacities: Default::default(),
        },
        extra_lines: Vec::new(),
        report: String::new(),
        this_host: false,
    };
    // Without probing there is no host to compare with.
    let (Probing::Local | Probing::Full, Some(host)) = (probing, host) else {
        block.extra_lines.push(comment(
            "not probed (-w none): give this node's NETWORK_INTERFACE and HEARTBEAT_IP",
        ));
        block.extra_lines.extend(placeholder_interface(None));
        block.report = "not probed (-w none)".into();
        return Ok(block);
    };
    if host.is_named(name) {
        block.report = format!("this host (host name {})", host.name);
        probe_this_host(host, &mut block);
        return Ok(block);
    }
    let addresses = resolver(name).map_err(|e| format!("cannot resolve node {name}: {e}"))?;
    if addresses.iter().any(|a| host.owns(a)) {
        block.report = format!("this host (by address: {})", list(&addresses));
        probe_this_host(host, &mut block);
    } else {
        probe_other_node(host, &addresses, &mut block);
    }
    Ok(block)
}

/// This host's interfaces: each that is up, not loopback, with IPv4 addresses becomes a
/// NETWORK_INTERFACE with them as HEARTBEAT_IP. IPv6 addresses are listed in a comment only:
/// the file's HOSTNAME_ADDRESS_FAMILY is IPV4, which takes IPv4 addresses alone. Link-local
/// addresses are left out (they are not stable, and not routed).
fn probe_this_host(host: &Host, block: &mut NodeBlock) {
    block.this_host = true;
    let mut ipv6 = Vec::new();
    for local in host.addresses.iter().filter(|a| !a.loopback) {
        match local.address {
            IpAddr::V4(v4) if !v4.is_link_local() => {
                match block
                    .config
                    .interfaces
                    .iter_mut()
                    .find(|i| i.name == local.interface)
                {
                    Some(interface) => interface.heartbeat_ips.push(local.address),
                    None => block.config.interfaces.push(InterfaceConfig {
                        name: local.interface.clone(),
                        heartbeat_ips: vec![local.address],
                        stationary_ips: Vec::new(),
                    }),
                }
            }
            IpAddr::V6(v6) if !v6.is_unicast_link_local() => {
                ipv6.push(format!("{} {}", local.interface, v6));
            }
            IpAddr::V4(_) | IpAddr::V6(_) => {}
        }
    }
    let probed: Vec<String> = block
        .config
        .interfaces
        .iter()
        .map(|i| format!("{} {}", i.name, list(&i.heartbeat_ips)))
        .collect();
    block.report = format!(
        "{}: {}",
        block.report,
        if probed.is_empty() {
            "no interface up with an IPv4 address".to_owned()
        } else {
            probed.join(", ")
        }
    );
    if !ipv6.is_empty() {
        block
            .report
            .push_str(&format!("; not used: {}", ipv6.join(", ")));
        block.extra_lines.push(comment(&format!(
            "Also on this node, not used with HOSTNAME_ADDRESS_FAMILY IPV4: {} (IPv6).",
            ipv6.join(", ")
        )));
    }
    if block.config.interfaces.is_empty() {
        block.extra_lines.push(comment(
            "no interface of this host is up with an IPv4 address: give NETWORK_INTERFACE and \
             HEARTBEAT_IP",
        ));
        block.extra_lines.extend(placeholder_interface(None));
    }
}

/// Another node: its name's address, with this host's interface on the same subnet if there
/// is one (Serviceguard names interfaces per node; nodes with same-named interfaces on each
/// network are the usual case), else an interface to give. Its interfaces cannot be listed
/// from here, which a comment says.
fn probe_other_node(host: &Host, addresses: &[IpAddr], block: &mut NodeBlock) {
    let name = block.config.name.clone();
    block.extra_lines.push(comment(&format!(
        "not probed: cimguard cannot probe {name}'s interfaces from here; check \
         NETWORK_INTERFACE and HEARTBEAT_IP"
    )));
    let ipv4 = || addresses.iter().filter(|a| a.is_ipv4());
    let chosen = ipv4()
        .find(|a| host.interface_for(a).is_some())
        .or_else(|| ipv4().next());
    let Some(address) = chosen else {
        block.extra_lines.push(comment(&format!(
            "{name} resolves to {} only: IPv6, which HOSTNAME_ADDRESS_FAMILY IPV4 does not take",
            list(addresses)
        )));
        block.extra_lines.extend(placeholder_interface(None));
        block.report = format!("resolves to {} (no IPv4 address)", list(addresses));
        return;
    };
    match host.interface_for(address) {
        Some(interface) => {
            block.config.interfaces.push(InterfaceConfig {
                name: interface.to_owned(),
                heartbeat_ips: vec![*address],
                stationary_ips: Vec::new(),
            });
            block.report = format!(
                "resolves to {}; {address} is on the subnet of this host's {interface}",
                list(addresses)
            );
        }
        None => {
            block
                .extra_lines
                .extend(placeholder_interface(Some(address)));
            block.report = format!(
                "resolves to {}; {address} is on no subnet of this host: its interface is \
                 left to give",
                list(addresses)
            );
        }
    }
}

/// The value column of [`write::cluster_ascii`] (cmquerycl's layout, serviceguard.md 3.1),
/// and its indentation of node blocks.
const VALUE_COLUMN: usize = 26;
const NODE_INDENT: usize = 2;

/// A NETWORK_INTERFACE without a value, and its HEARTBEAT_IP, without one unless `address`:
/// cmcheckconf refuses a parameter without a value, so the file cannot be applied before the
/// operator gives them.
fn placeholder_interface(address: Option<&IpAddr>) -> Vec<String> {
    let heartbeat = match address {
        Some(address) => parameter(2 * NODE_INDENT, "HEARTBEAT_IP", &address.to_string()),
        None => parameter(2 * NODE_INDENT, "HEARTBEAT_IP", ""),
    };
    vec![parameter(NODE_INDENT, "NETWORK_INTERFACE", ""), heartbeat]
}

/// A parameter line in cluster_ascii's layout; the parameter alone without a value.
fn parameter(indent: usize, name: &str, value: &str) -> String {
    if value.is_empty() {
        return format!("{:indent$}{name}", "");
    }
    let blanks = VALUE_COLUMN.saturating_sub(indent + name.len()).max(1);
    format!("{:indent$}{name}{:blanks$}{value}", "", "")
}

/// A comment line of a node block.
fn comment(text: &str) -> String {
    format!("{:NODE_INDENT$}# {text}", "")
}

fn list(addresses: &[IpAddr]) -> String {
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Two -n names for this same host would give both the same addresses.
fn check_same_host(blocks: &[NodeBlock]) -> Result<(), String> {
    let mut this_host = blocks.iter().filter(|b| b.this_host);
    match (this_host.next(), this_host.next()) {
        (Some(first), Some(second)) => Err(format!(
            "{} and {} are both this host: name each node once",
            first.config.name, second.config.name
        )),
        _ => Ok(()),
    }
}

fn report_probes(args: &QueryCluster, host: Option<&Host>, blocks: &[NodeBlock]) {
    if let Some(host) = host {
        let interfaces: Vec<String> = host
            .addresses
            .iter()
            .map(|a| format!("{} {}/{}", a.interface, a.address, a.prefix))
            .collect();
        eprintln!(
            "cmquerycl: this host is {}: {}",
            host.name,
            interfaces.join(", ")
        );
    }
    for block in blocks {
        eprintln!("cmquerycl: node {}: {}", block.config.name, block.report);
    }
    if let Some(server) = &args.quorum_server {
        eprintln!(
            "cmquerycl: quorum server {}{}",
            server.host,
            server
                .alternate
                .as_ref()
                .map(|a| format!(" (also {a})"))
                .unwrap_or_default()
        );
    }
}

/// What each cluster-level parameter is, written above its first line.
const ABOUT: &[(&str, &[&str])] = &[
    (
        "CLUSTER_NAME",
        &[
            "The cluster's name: up to 39 letters, digits, '_', '-' or '.'. A quorum server",
            "tells the clusters it serves apart by name: make it unique among them.",
        ],
    ),
    (
        "HOSTNAME_ADDRESS_FAMILY",
        &["The addresses that node names and heartbeats use: IPV4 (the default), IPV6 or ANY."],
    ),
    (
        "QS_HOST",
        &[
            "The quorum server (cmqsd): the tie-breaker when exactly half of the nodes remain.",
            "QS_ADDR: another address of the same server.",
        ],
    ),
    (
        "QS_POLLING_INTERVAL",
        &["How often the nodes check the quorum server: 10 s to about 35 min (default 5 min)."],
    ),
    (
        "QS_TIMEOUT_EXTENSION",
        &[
            "Added to the quorum server's response timeout (0.1 x MEMBER_TIMEOUT with two",
            "nodes, 0.2 x with more), and so to the failover time.",
        ],
    ),
    (
        "NODE_NAME",
        &[
            "One block per node: NODE_NAME (its host name), then each NETWORK_INTERFACE with",
            "its HEARTBEAT_IP (the k-th HEARTBEAT_IP of every node on the same subnet: one",
            "heartbeat network; two or more are recommended) or STATIONARY_IP (monitored, no",
            "heartbeats), and CLUSTER_LOCK_LUN, the node's own path to the lock LUN.",
        ],
    ),
    (
        "MEMBER_TIMEOUT",
        &[
            "How long a node may be silent before the others re-form the cluster without it:",
            "default 14 s; at least 14 s with one heartbeat network, 3 s with more; at most 300 s.",
        ],
    ),
    (
        "AUTO_START_TIMEOUT",
        &["How long a booting node waits for the others to form the cluster (default 10 min)."],
    ),
    (
        "NETWORK_POLLING_INTERVAL",
        &["How often the interfaces are checked: 1 s to 30 s (default 2 s)."],
    ),
    (
        "MAX_CONFIGURED_PACKAGES",
        &["The most packages the cluster may have: 0 to 300 (the default)."],
    ),
    (
        "USER_NAME",
        &[
            "Access policies, three lines each: USER_NAME (a user, or ANY_USER), USER_HOST",
            "(CLUSTER_MEMBER_NODE, ANY_SERVICEGUARD_NODE or a host name) and USER_ROLE",
            "(MONITOR, PACKAGE_ADMIN or FULL_ADMIN). Root on the nodes may do anything. The",
            "policy below, Serviceguard's default, lets any user of any node monitor the",
            "cluster (cmviewcl); remove it to let no one but root in.",
        ],
    ),
];

/// What is said in place of a lock when there is none.
const NO_LOCK: &[&str] = &[
    "Cluster lock: none. A two-node cluster needs one: CLUSTER_LOCK_LUN in each node block",
    "(cmquerycl -n NODE -L LOCK_LUN), or a quorum server, QS_HOST (cmquerycl -q QS_HOST).",
];

/// The file: [`write::cluster_ascii`]'s lines under `header` (in place of cmgetconf's),
/// with the comments of [`ABOUT`] above the cluster-level parameters and each node's
/// `extra` lines after its NODE_NAME line (`extra[k]` for the k-th node).
fn render(config: &ClusterConfig, header: &[String], extra: &[Vec<String>]) -> String {
    let written = write::cluster_ascii(config);
    let mut text = String::new();
    for line in header {
        push_comment(&mut text, line);
    }
    let mut nodes = extra.iter();
    let mut explained = HashSet::new();
    for line in written.lines().skip_while(|line| line.starts_with('#')) {
        // cluster_ascii writes cluster-level parameters unindented, one a line.
        let parameter = match line.split_whitespace().next() {
            Some(word) if !line.starts_with(' ') && !word.starts_with('#') => word,
            _ => "",
        };
        if let Some((_, about)) = ABOUT.iter().find(|(name, _)| *name == parameter) {
            if explained.insert(parameter) {
                if follows_a_parameter(&text) {
                    text.push('\n');
                }
                for about in *about {
                    push_comment(&mut text, about);
                }
            }
        }
        text.push_str(line);
        text.push('\n');
        if parameter == "NODE_NAME" {
            for extra in nodes.next().into_iter().flatten() {
                text.push_str(extra);
                text.push('\n');
            }
        }
        if parameter == "HOSTNAME_ADDRESS_FAMILY" && config.lock == ClusterLock::None {
            text.push('\n');
            for line in NO_LOCK {
                push_comment(&mut text, line);
            }
        }
    }
    text
}

fn push_comment(text: &mut String, line: &str) {
    if line.is_empty() {
        text.push_str("#\n");
    } else {
        text.push_str("# ");
        text.push_str(line);
        text.push('\n');
    }
}

/// True when the last line of `text` is a parameter: a comment above the next one is set
/// apart by a blank line.
fn follows_a_parameter(text: &str) -> bool {
    text.lines().next_back().is_some_and(|line| {
        let line = line.trim_start();
        !line.is_empty() && !line.starts_with('#')
    })
}

/// The header of a new cluster's template.
fn template_header(args: &QueryCluster) -> Vec<String> {
    let names: Vec<&str> = args.nodes.iter().map(|n| n.name.as_str()).collect();
    vec![
        format!(
            "Cluster configuration file template, made by cmquerycl for {}.",
            nodes_phrase(&names)
        ),
        String::new(),
        "Edit it before use: give CLUSTER_NAME (cluster1 is a placeholder), check the".into(),
        "NETWORK_INTERFACE and HEARTBEAT_IP lines of the nodes that were not probed and give"
            .into(),
        "those left without a value; then check the file with cmcheckconf -C FILE and apply".into(),
        "it with cmapplyconf -C FILE. Times are in microseconds.".into(),
    ]
}

/// "node a" or "the nodes a, b".
fn nodes_phrase(names: &[&str]) -> String {
    match names {
        [name] => format!("node {name}"),
        _ => format!("the nodes {}", names.join(", ")),
    }
}

/// The header of a running cluster's file with nodes added.
fn added_header(name: &str, args: &QueryCluster) -> Vec<String> {
    let names: Vec<&str> = args.nodes.iter().map(|n| n.name.as_str()).collect();
    let added = if names.is_empty() {
        "its lock changed".to_owned()
    } else {
        format!("{} added", nodes_phrase(&names))
    };
    vec![
        format!("Cluster configuration file of cluster {name}, written by cmquerycl -c {name}:"),
        format!("the configuration in effect, with {added}."),
        String::new(),
        "Check the NETWORK_INTERFACE and HEARTBEAT_IP lines of the added nodes and give those"
            .into(),
        "left without a value; then check the file with cmcheckconf -C FILE and apply it with"
            .into(),
        "cmapplyconf -C FILE. Times are in microseconds.".into(),
    ]
}

/// Writes the file to -C OUTPUT (which must not exist), or to standard output.
fn output(args: &QueryCluster, text: &str) -> Result<(), String> {
    match &args.output {
        None => io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write the file: {e}")),
        Some(path) => crate::confcmds::write_new(path, text),
    }
}
