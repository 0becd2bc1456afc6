//! `cmquerycl` (serviceguard.md 5.2): the cluster ASCII file (section 3.1) for a new cluster,
//! or a running cluster's file with a new node set, as the first step of configuring it:
//!
//! - `cmquerycl -n NODE [-L LOCK_LUN]... [-q QS_HOST [QS_ADDR]] [-h ipv4|ipv6] [-C OUTPUT]`: a
//!   template with the `cluster1` placeholder name, the cluster lock (section 4), a NODE_NAME
//!   block per node, the timing parameters at their defaults and Serviceguard's default
//!   access policy, each under a comment that says what it is.
//! - `cmquerycl -c CLUSTER [-n NODE [-L LOCK_LUN]]...`: the file of the cluster in effect,
//!   from the local agent as `cmgetconf -c` gets it. The -n nodes are the cluster's complete
//!   new node set, as in Serviceguard: a node of the cluster named again keeps its block (its
//!   lock LUN path changes with a -L), a new one is probed, and one not named is left out,
//!   which standard error says (that is how an operator adds or removes nodes: this, then
//!   cmapplyconf). Without -n the file is the one in effect.
//!
//! Serviceguard asks its configuration daemon on every node (cmclconfd) for that node's
//! interfaces. cimguard has no daemon running on a node before it is configured, so only this
//! host is probed: a node that is this host gets a NETWORK_INTERFACE block for each interface
//! that is up (not loopback) with an address of the heartbeat family (-h). When other nodes
//! are named, an address of this host is a HEARTBEAT_IP only if its subnet holds an address of
//! every other node (one address per subnet), and a STATIONARY_IP otherwise: every node must
//! have as many heartbeat addresses as the others. Another node's name is resolved, and its
//! address on each of those subnets written with the name of this host's interface on it
//! (nodes usually have same-named interfaces), under a comment saying it was not probed.
//! With -q, the quorum server must answer this host, as Serviceguard's cmquerycl requires
//! (serviceguard.md 4.2): it is pinged over TLS trusting the authority every node's cmcld
//! will trust, `CIMGUARD_QS_CA` (default [`DEFAULT_QS_CA`]), unless -w none.
//! What cannot be found (`-w none`, no common subnet) is written as a parameter without a
//! value, which cmcheckconf refuses until the operator gives one, as cmmakepkg does for
//! `package_name`.
//!
//! NODE_NAME is the name a node's daemon knows itself by, its host name (cmcld takes
//! gethostname's): this host is written under its own name however -n named it, and another
//! node's name may not be a full domain name or an address, as in Serviceguard.
//!
//! [`build`] makes the file from the request, this host as probed and a resolver, with no IO
//! of its own; [`query`] probes, resolves (under [`RESOLVE_DEADLINE`]) and writes. The file is
//! [`write::cluster_ascii`]'s, the writer of `cmgetconf`, so that it reads back with
//! [`cluster::parse`] as the daemon reads it; the comments and placeholders are added to its
//! lines. Nothing here writes a parameter the parser does not take.

use std::collections::HashSet;
use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use cimguard_cluster::config::cluster::{
    self, AccessPolicy, AddressFamily, ClusterConfig, ClusterLock, InterfaceConfig, NodeConfig,
    Role, UserHost,
};
use cimguard_cluster::config::{write, Severity};
use cimguard_cluster::runtime::quorum_server::Unavailable;
use clap::error::ErrorKind;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};
use nix::net::if_::InterfaceFlags;
use nix::sys::socket::SockaddrStorage;

use crate::cimclient::Client;

/// How long all of one run's name lookups (nodes and quorum server) may take together: a
/// name server that does not answer would otherwise hold cmquerycl as long as the system's
/// resolver retries.
pub const RESOLVE_DEADLINE: Duration = Duration::from_secs(10);

// The flags as clap reads them (the doc comment below is the command's help); a
// `QueryCluster` is made of them with each -L paired with the -n before it. The usage is
// Serviceguard's, written out: clap's own cannot show that pairing. -h is Serviceguard's
// heartbeat family, so clap's help has --help alone.
/// Query nodes and write a cluster configuration template; or, with -c, write the running
/// cluster's file with the -n nodes as its node set.
///
/// Only this host's interfaces are probed: cimguard has no daemon on unconfigured nodes to
/// ask. Another node's name is resolved and its address written with this host's interface
/// on the same subnet, to be checked. What is not found is left without a value, for the
/// operator to give before cmcheckconf.
#[derive(Parser, Debug)]
#[command(
    name = "cmquerycl",
    version,
    disable_help_flag = true,
    override_usage = "cmquerycl [-v] [-C OUTPUT] [-n NODE [-L LOCK_LUN]]... \
                      [-q QS_HOST [QS_ADDR]] [-c CLUSTER] [-w none|local|full] \
                      [-h ipv4|ipv6] [-k]"
)]
struct Flags {
    /// Verbose: tell what was probed (on standard error).
    #[arg(short = 'v')]
    verbose: bool,
    /// The file to write (it must not exist yet); standard output without it.
    #[arg(short = 'C', value_name = "OUTPUT")]
    output: Option<PathBuf>,
    /// A node of the cluster by host name, not a full domain name or an address (repeatable,
    /// in the order of the file). With -c, the -n nodes are the cluster's whole new node set:
    /// name its nodes to keep with the new ones; those not named are left out.
    #[arg(short = 'n', value_name = "NODE")]
    nodes: Vec<String>,
    /// The lock LUN, a block device (CLUSTER_LOCK_LUN). Right after -n NODE: that node's path
    /// to it (paths may differ between nodes); once before the first -n: every node's path.
    #[arg(short = 'L', value_name = "LOCK_LUN", conflicts_with = "quorum_server")]
    lock_luns: Vec<PathBuf>,
    /// The quorum server as the cluster lock (QS_HOST), and another address of it (QS_ADDR).
    /// It must answer this host (unless -w none), trusted with the authority in
    /// CIMGUARD_QS_CA (default /var/lib/cimguard/qs-ca.pem).
    #[arg(
        short = 'q',
        num_args = 1..=2,
        value_names = ["QS_HOST", "QS_ADDR"],
        action = clap::ArgAction::Set
    )]
    quorum_server: Option<Vec<String>>,
    /// Write the file of the running cluster CLUSTER (through the local agent: CIMGUARD_URL,
    /// CIMGUARD_USER, CIMGUARD_PASSWORD, CIMGUARD_CA), with the -n nodes as its node set.
    #[arg(short = 'c', value_name = "CLUSTER")]
    cluster: Option<String>,
    /// Network probing.
    #[arg(short = 'w', value_enum, value_name = "PROBING", default_value_t = Probing::Local)]
    probing: Probing,
    /// The address family of the heartbeat subnets: ipv4 (the default; with -c, the
    /// cluster's own) or ipv6. The other family's addresses are listed in a comment. As with
    /// ipv4, only this host's interfaces are probed and other nodes' names resolved; with
    /// ipv6 the file says HOSTNAME_ADDRESS_FAMILY ANY, the one value besides IPV6 under which
    /// cimguard's parser takes IPv6 addresses.
    #[arg(short = 'h', value_enum, value_name = "FAMILY")]
    heartbeat_family: Option<HeartbeatFamily>,
    /// Accepted and ignored: Serviceguard's "do not probe disks"; cimguard probes no disks.
    #[arg(short = 'k')]
    skip_disk_probing: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
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
    /// A -L before the first -n: every node's path (given to each of `nodes` already).
    pub lock_lun_every_node: Option<PathBuf>,
    /// -q: the quorum server.
    pub quorum_server: Option<QuorumServer>,
    /// -c: the running cluster to start from.
    pub cluster: Option<String>,
    /// -w: how much to probe.
    pub probing: Probing,
    /// -h: the heartbeat subnets' address family, when given.
    pub heartbeat_family: Option<HeartbeatFamily>,
}

/// One `-n NODE [-L LOCK_LUN]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRequest {
    /// The node's name as given.
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
    /// Nothing: every new node's NETWORK_INTERFACE and HEARTBEAT_IP are left to fill in, and
    /// no name is resolved.
    None,
    /// This host's interfaces, and the other nodes' names resolved (the default).
    Local,
    /// The same as local: Serviceguard also tests every pair of interfaces between nodes,
    /// which cimguard cannot do from one host.
    Full,
}

/// `-h`: the address family of the heartbeat subnets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HeartbeatFamily {
    /// IPv4 subnets (the default).
    Ipv4,
    /// IPv6 subnets.
    Ipv6,
}

impl HeartbeatFamily {
    fn admits(self, address: &IpAddr) -> bool {
        match self {
            HeartbeatFamily::Ipv4 => address.is_ipv4(),
            HeartbeatFamily::Ipv6 => address.is_ipv6(),
        }
    }

    /// HOSTNAME_ADDRESS_FAMILY of a new cluster: IPV4 for IPv4 heartbeats; ANY for IPv6
    /// ones, which cimguard's parser takes only under IPV6 or ANY, and ANY still resolves
    /// names to IPv4 addresses first, as Serviceguard does without -a.
    fn hostname_family(self) -> AddressFamily {
        match self {
            HeartbeatFamily::Ipv4 => AddressFamily::Ipv4,
            HeartbeatFamily::Ipv6 => AddressFamily::Any,
        }
    }

    /// The family of `address`.
    fn of(address: &IpAddr) -> HeartbeatFamily {
        if address.is_ipv6() {
            HeartbeatFamily::Ipv6
        } else {
            HeartbeatFamily::Ipv4
        }
    }

    /// How -h spells it.
    fn flag(self) -> &'static str {
        match self {
            HeartbeatFamily::Ipv4 => "ipv4",
            HeartbeatFamily::Ipv6 => "ipv6",
        }
    }
}

impl fmt::Display for HeartbeatFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeartbeatFamily::Ipv4 => "IPv4",
            HeartbeatFamily::Ipv6 => "IPv6",
        })
    }
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
        let (nodes, lock_lun_every_node) = paired_nodes(&flags, matches)?;
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
            lock_lun_every_node,
            quorum_server,
            cluster: flags.cluster,
            probing: flags.probing,
            heartbeat_family: flags.heartbeat_family,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

/// `QueryCluster::parse()` reads the process's arguments, as every command's flags do.
impl Parser for QueryCluster {}

/// The -n nodes with their -L paths, and the -L before the first -n if any. clap keeps each
/// flag's values apart, so which -n a -L follows is not among them; it is found from where
/// clap read each value. clap numbers every flag and every value, whatever the spelling (`-n
/// NODE`, `-nNODE`, `-n=NODE`), so in `-n NODE -L PATH` the PATH comes two after the NODE. A
/// -L before the first -n gives every node's path (Serviceguard's `-L` without `-n`); a -L
/// anywhere else is refused.
fn paired_nodes(
    flags: &Flags,
    matches: &ArgMatches,
) -> Result<(Vec<NodeRequest>, Option<PathBuf>), clap::Error> {
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
    Ok((nodes, every_node.cloned()))
}

/// Runs cmquerycl: a request refused as a whole (no nodes nor cluster, a bad node name, a
/// lock LUN no node takes) is a usage error, status 2; a failure to query, status 1.
pub fn query_cluster(args: &QueryCluster) -> ExitCode {
    if let Err(error) = check_requests(args) {
        eprintln!("cmquerycl: {error}");
        return ExitCode::from(2);
    }
    match query(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cmquerycl: {error}");
            ExitCode::FAILURE
        }
    }
}

/// cmquerycl's IO around [`build`]: the running cluster's file (-c), this host's name and
/// interfaces (unless -w none), the system's resolver under [`RESOLVE_DEADLINE`], and the
/// file written with what is to be said on standard error.
fn query(args: &QueryCluster) -> Result<(), String> {
    // Refused requests are refused before the agent is asked.
    check_requests(args)?;
    let existing = match &args.cluster {
        Some(name) => Some(cluster_file(name)?),
        None => None,
    };
    let host = match args.probing {
        Probing::None => None,
        Probing::Local | Probing::Full => Some(Host::this()?),
    };
    let deadline = Instant::now() + RESOLVE_DEADLINE;
    let resolver =
        move |name: &str| resolve_within(name, deadline, |name: String| system_lookup(&name));
    let built = build(args, host.as_ref(), existing.as_deref(), &resolver)?;
    if args.verbose {
        for line in &built.report {
            eprintln!("cmquerycl: {line}");
        }
    }
    if let (Some(server), Some(host)) = (&args.quorum_server, &host) {
        check_quorum_server_answers(server, args.cluster.as_deref(), &host.name)?;
        if args.verbose {
            eprintln!(
                "cmquerycl: quorum server {} answers {}",
                server.host, host.name
            );
        }
    }
    for warning in &built.warnings {
        eprintln!("cmquerycl: {warning}");
    }
    output(args, &built.text)
}

/// What [`build`] makes: the file, and what is said about it on standard error.
#[derive(Debug, Default)]
struct Built {
    /// The cluster ASCII file.
    text: String,
    /// Said always: a lock missing, nodes of the cluster left out.
    warnings: Vec<String>,
    /// Said with -v: what was probed and found.
    report: Vec<String>,
}

/// How [`build`] looks names up: the system's resolver under a deadline, or a table in tests.
type Resolver<'a> = &'a dyn Fn(&str) -> Result<Vec<IpAddr>, Unresolved>;

/// The file cmquerycl writes, from the request, this host as probed (`None` with -w none),
/// the running cluster's file (with -c) and `resolver`. Does no IO but through `resolver`.
fn build(
    args: &QueryCluster,
    host: Option<&Host>,
    existing: Option<&str>,
    resolver: Resolver<'_>,
) -> Result<Built, String> {
    check_requests(args)?;
    let existing = match (&args.cluster, existing) {
        (Some(name), Some(text)) => {
            if args.nodes.is_empty() && args.quorum_server.is_none() {
                // Nothing to change: the file as the cluster has it, as cmgetconf -c writes it.
                return Ok(Built {
                    text: text.to_owned(),
                    ..Built::default()
                });
            }
            Some(existing_config(name, text)?)
        }
        (Some(name), None) => return Err(format!("no file of cluster {name} to start from")),
        (None, _) => None,
    };
    let family = heartbeat_family(args, existing.as_ref())?;
    check_quorum_server(args, host.is_some(), resolver)?;
    // With -c and no -n (a quorum server given): the cluster's nodes as they are.
    let requests: Vec<NodeRequest> = match (&existing, args.nodes.is_empty()) {
        (Some(cluster), true) => cluster
            .nodes
            .iter()
            .map(|node| NodeRequest {
                name: node.name.clone(),
                lock_lun: None,
            })
            .collect(),
        _ => args.nodes.clone(),
    };
    let planned = requests
        .iter()
        .map(|request| plan_node(request, existing.as_ref(), host, resolver))
        .collect::<Result<Vec<_>, _>>()?;
    check_same_host(&planned, host)?;
    let blocks = node_blocks(&planned, existing.as_ref(), host, family);
    let mut built = Built {
        report: report(args, host, &blocks),
        ..Built::default()
    };
    let header = match &existing {
        Some(cluster) => {
            let (header, left_out) = changed_header(cluster, args, &blocks)?;
            built.warnings.extend(left_out);
            header
        }
        None => template_header(&blocks),
    };
    let template = existing.is_none();
    let mut config = existing.unwrap_or_else(|| template_config(family));
    config.nodes = blocks.iter().map(|block| block.config.clone()).collect();
    with_lock(&mut config, args)?;
    if config.nodes.len() == 2 && config.lock == ClusterLock::None {
        built.warnings.push(
            "warning: a two-node cluster needs a cluster lock (when one node is lost the \
             other has exactly half): give -L LOCK_LUN after each -n NODE, or -q QS_HOST; \
             cmcheckconf refuses the file without one"
                .into(),
        );
    }
    let extra: Vec<Vec<String>> = blocks.into_iter().map(|b| b.extra_lines).collect();
    built.text = render(&config, &header, &extra, template);
    Ok(built)
}

/// -v's lines: this host's interfaces, how each node was found, the quorum server.
fn report(args: &QueryCluster, host: Option<&Host>, blocks: &[NodeBlock]) -> Vec<String> {
    let mut report: Vec<String> = host.map(host_report).into_iter().collect();
    report.extend(
        blocks
            .iter()
            .map(|block| format!("node {}: {}", block.config.name, block.report)),
    );
    if let Some(server) = &args.quorum_server {
        report.push(format!(
            "quorum server {}{}",
            server.host,
            server
                .alternate
                .as_ref()
                .map(|a| format!(" (also {a})"))
                .unwrap_or_default()
        ));
    }
    report
}

/// The request as a whole: nodes or a cluster; -n, -L and -q values the file can take: node
/// names as NODE_NAME takes them, each once, absolute lock LUN paths, at most
/// [`cluster::NODES_MAX`] nodes; no -L that no node would take.
fn check_requests(args: &QueryCluster) -> Result<(), String> {
    if args.nodes.is_empty() && args.cluster.is_none() {
        let wanted = "give the nodes of a new cluster (-n NODE...), or a cluster to query (-c)";
        return Err(wanted.into());
    }
    if let (Some(path), true) = (&args.lock_lun_every_node, args.nodes.is_empty()) {
        return Err(format!(
            "-L {} without -n: a lock LUN path is a node's; with -c, name the nodes of the \
             cluster (-L LOCK_LUN -n NODE..., or -n NODE -L LOCK_LUN...)",
            path.display()
        ));
    }
    let mut seen = HashSet::new();
    for node in &args.nodes {
        let name = &node.name;
        if !valid_node_name(name) {
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

/// A name NODE_NAME takes (the parser's rule).
fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= cluster::NODE_NAME_BYTES_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

/// Another node's name is its host name: the name its daemon knows itself by (gethostname),
/// which is neither an address nor, on a usual host, a full domain name. Serviceguard's
/// cmquerycl refuses full domain names in -n too.
fn check_host_name(name: &str) -> Result<(), String> {
    if name.parse::<IpAddr>().is_ok() {
        return Err(format!(
            "node {name}: an address, not a host name; give the node's host name, the name \
             its daemon knows itself by"
        ));
    }
    if let Some((short, _)) = name.split_once('.') {
        return Err(format!(
            "node {name}: a full domain name; give the host name alone ({short}), the name \
             the node's daemon knows itself by"
        ));
    }
    Ok(())
}

/// The quorum server's names resolve (unless -w none): a misspelt QS_HOST would otherwise be
/// found only when the cluster first needs its lock.
fn check_quorum_server(
    args: &QueryCluster,
    probing: bool,
    resolver: Resolver<'_>,
) -> Result<(), String> {
    let (Some(server), true) = (&args.quorum_server, probing) else {
        return Ok(());
    };
    for name in std::iter::once(&server.host).chain(&server.alternate) {
        resolver(name).map_err(|e| e.describe("quorum server", name))?;
    }
    Ok(())
}

/// Where cmquerycl -q finds the authority of the quorum server's certificate unless
/// `CIMGUARD_QS_CA` names another: the file cmcld reads with the default state directory.
pub const DEFAULT_QS_CA: &str = "/var/lib/cimguard/qs-ca.pem";

/// How long each step of the quorum server's ping (connecting to an address, the handshake,
/// the answer) may take.
const QS_STEP: Duration = Duration::from_secs(3);

/// cmquerycl -q fails while the quorum server does not answer (serviceguard.md 4.2): it is
/// pinged from this host, as node `me` of cluster `cluster` (the template's placeholder name
/// for a new cluster), over TLS trusting the authority every node's cmcld will trust.
fn check_quorum_server_answers(
    server: &QuorumServer,
    cluster: Option<&str>,
    me: &str,
) -> Result<(), String> {
    let ca = std::env::var_os("CIMGUARD_QS_CA").map_or_else(|| DEFAULT_QS_CA.into(), PathBuf::from);
    if let Err(error) = std::fs::metadata(&ca) {
        return Err(format!(
            "the quorum server {} is checked with its authority, {} (CIMGUARD_QS_CA names \
             another), which cannot be read: {error}; copy the quorum server's ca.pem there \
             (each node's cmcld trusts qs-ca.pem in its state directory)",
            server.host,
            ca.display()
        ));
    }
    let cluster = cluster.unwrap_or(TEMPLATE_CLUSTER_NAME);
    cimguard_cluster::runtime::quorum_server::ping(
        (&server.host, server.alternate.as_deref()),
        &ca,
        cluster,
        me,
        QS_STEP,
    )
    .map_err(|unavailable| match unavailable {
        Unavailable::Silent { .. } => {
            format!("{unavailable}; start it (cmqsd) or correct -q, then run cmquerycl again")
        }
        refused @ Unavailable::Refused { .. } => refused.to_string(),
    })
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

/// The heartbeat family: -h, else ipv4; with -c, the family of the cluster's heartbeat
/// networks, which new nodes join (a -h for the other family is refused).
fn heartbeat_family(
    args: &QueryCluster,
    existing: Option<&ClusterConfig>,
) -> Result<HeartbeatFamily, String> {
    let own = existing.and_then(|cluster| {
        cluster
            .nodes
            .iter()
            .flat_map(|node| node.heartbeat_addresses())
            .next()
            .map(|address| HeartbeatFamily::of(&address))
    });
    match (args.heartbeat_family, own, existing) {
        (Some(asked), Some(own), Some(cluster)) if asked != own => Err(format!(
            "-h {}: the heartbeat networks of cluster {} are {own}, and its nodes, new ones \
             too, all have an address on each",
            asked.flag(),
            cluster.name
        )),
        (Some(asked), _, _) => Ok(asked),
        (None, Some(own), _) => Ok(own),
        (None, None, _) => Ok(HeartbeatFamily::Ipv4),
    }
}

/// The placeholder CLUSTER_NAME of a new cluster's template (Serviceguard's has it too).
const TEMPLATE_CLUSTER_NAME: &str = "cluster1";

/// A new cluster with Serviceguard's defaults: the `cluster1` placeholder name (Serviceguard's
/// template has it too), no node or lock yet, and the access policy Serviceguard's template
/// has, which lets any user monitor the cluster (cmviewcl).
fn template_config(family: HeartbeatFamily) -> ClusterConfig {
    ClusterConfig {
        name: TEMPLATE_CLUSTER_NAME.into(),
        address_family: family.hostname_family(),
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

/// `config`, its nodes set, with the -q quorum server as its lock, and the lock whole; refused
/// with more nodes than a cluster has or half a lock.
fn with_lock(config: &mut ClusterConfig, args: &QueryCluster) -> Result<(), String> {
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
    check_lock(config)
}

/// One lock, whole: a lock LUN is reached by every node (each with its own path) and by at
/// most [`cluster::LOCK_LUN_NODES_MAX`] nodes, and is not combined with a quorum server.
fn check_lock(config: &mut ClusterConfig) -> Result<(), String> {
    let Some(with) = config.nodes.iter().find(|n| n.lock_lun.is_some()) else {
        if config.lock == ClusterLock::LockLun {
            return Err(format!(
                "cluster {} has a lock LUN, and no node a path to it: give -L LOCK_LUN \
                 right after each -n NODE",
                config.name
            ));
        }
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
    /// Its name (gethostname), as its daemon, cmcld, knows itself.
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

/// Link-local addresses (169.254/16, fe80::/10) are left out: not stable, not routed.
fn link_local(address: &IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unicast_link_local(),
    }
}

/// Why a name has no address.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unresolved {
    /// The resolver's answer: no such host, or its error.
    Failed(String),
    /// No answer before the deadline ([`RESOLVE_DEADLINE`] from the first lookup).
    TimedOut,
}

impl Unresolved {
    /// The line that says so; `what` is what `name` names ("node", "quorum server").
    fn describe(&self, what: &str, name: &str) -> String {
        match self {
            Unresolved::Failed(reason) => format!("cannot resolve {what} {name}: {reason}"),
            Unresolved::TimedOut => format!(
                "timed out resolving {name} (the {what}): no answer within the {} s cmquerycl \
                 gives its lookups; give its address in /etc/hosts, or use -w none",
                RESOLVE_DEADLINE.as_secs()
            ),
        }
    }
}

/// The addresses `name` resolves to by `lookup`, run on a thread of its own and waited for
/// until `deadline`: a lookup still running then is left to end on its own (the process
/// ends soon after). A name under `.invalid` is answered "no such host" without a lookup, as
/// RFC 6761 (section 6.4) asks of resolver libraries: the system's resolver would send it to
/// DNS.
fn resolve_within<F>(name: &str, deadline: Instant, lookup: F) -> Result<Vec<IpAddr>, Unresolved>
where
    F: FnOnce(String) -> Result<Vec<IpAddr>, String> + Send + 'static,
{
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    if lower == "invalid" || lower.ends_with(".invalid") {
        let reason = "no such host (.invalid names never resolve, RFC 6761)";
        return Err(Unresolved::Failed(reason.into()));
    }
    let (sender, receiver) = mpsc::channel();
    let owned = name.to_owned();
    thread::Builder::new()
        .name("cmquerycl-resolve".into())
        .spawn(move || {
            // The receiver is gone when the deadline passed: nobody waits for the answer.
            let _ = sender.send(lookup(owned));
        })
        .map_err(|e| Unresolved::Failed(format!("cannot start the lookup: {e}")))?;
    match receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(answer) => answer.map_err(Unresolved::Failed),
        Err(RecvTimeoutError::Timeout) => Err(Unresolved::TimedOut),
        Err(RecvTimeoutError::Disconnected) => Err(Unresolved::Failed(
            "the lookup ended without an answer".into(),
        )),
    }
}

/// The system's resolver (/etc/hosts, DNS, ... as nsswitch.conf says): each address once.
fn system_lookup(name: &str) -> Result<Vec<IpAddr>, String> {
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

/// Where a -n node's block comes from.
#[derive(Debug)]
enum Source {
    /// A node of the running cluster (-c), kept: its block, with the -L path if one was given.
    Kept(NodeConfig),
    /// This host, and how it was recognised (for -v).
    ThisHost(String),
    /// Another host: the addresses its name resolves to.
    Other(Vec<IpAddr>),
    /// -w none: nothing is known of it.
    Unprobed,
}

impl Source {
    /// The addresses known of the node: its block's (kept), its name's (another host), or
    /// this host's own, loopback ones left out.
    fn addresses(&self, host: Option<&Host>) -> Vec<IpAddr> {
        match self {
            Source::ThisHost(_) => host.map_or_else(Vec::new, |host| {
                host.addresses
                    .iter()
                    .filter(|a| !a.loopback)
                    .map(|a| a.address)
                    .collect()
            }),
            Source::Kept(node) => node
                .interfaces
                .iter()
                .flat_map(|i| i.heartbeat_ips.iter().chain(&i.stationary_ips).copied())
                .collect(),
            Source::Other(addresses) => addresses.clone(),
            Source::Unprobed => Vec::new(),
        }
    }
}

/// One -n node and where its block comes from.
#[derive(Debug)]
struct Planned<'a> {
    request: &'a NodeRequest,
    source: Source,
}

/// Where the block of `request` comes from: the running cluster's own (a node of it named
/// again), this host, or another host whose name is resolved (unless -w none).
fn plan_node<'a>(
    request: &'a NodeRequest,
    existing: Option<&ClusterConfig>,
    host: Option<&Host>,
    resolver: Resolver<'_>,
) -> Result<Planned<'a>, String> {
    let name = &request.name;
    let this_host = host.filter(|host| host.is_named(name));
    let source = if let Some(node) = existing.and_then(|cluster| cluster.node(name)) {
        Source::Kept(node.clone())
    } else if let Some(host) = this_host {
        Source::ThisHost(format!("host name {}", host.name))
    } else if let (Some(host), Ok(address)) = (host, name.parse::<IpAddr>()) {
        if !host.owns(&address) {
            check_host_name(name)?;
        }
        Source::ThisHost(format!("by address {address}"))
    } else {
        check_host_name(name)?;
        match host {
            None => Source::Unprobed,
            Some(host) => {
                let addresses = resolver(name).map_err(|e| e.describe("node", name))?;
                if addresses.iter().any(|a| host.owns(a)) {
                    Source::ThisHost(format!("by address: {}", list(&addresses)))
                } else {
                    Source::Other(addresses)
                }
            }
        }
    };
    if let (Source::ThisHost(_), Some(host)) = (&source, host) {
        if !valid_node_name(&host.name) {
            return Err(format!(
                "this host's name {:?} (gethostname, the name cmcld knows itself by) is not a \
                 NODE_NAME: at most {} letters, digits, '-', '_' or '.'",
                host.name,
                cluster::NODE_NAME_BYTES_MAX
            ));
        }
    }
    // This host is the cluster's node of its host name, however -n named it.
    let source = match (source, existing.zip(host)) {
        (Source::ThisHost(how), Some((cluster, host))) => match cluster.node(&host.name) {
            Some(node) => Source::Kept(node.clone()),
            None => Source::ThisHost(how),
        },
        (source, _) => source,
    };
    let source = match source {
        Source::Kept(mut node) => {
            if let Some(path) = &request.lock_lun {
                node.lock_lun = Some(path.clone());
            }
            Source::Kept(node)
        }
        source => source,
    };
    Ok(Planned { request, source })
}

/// Each host once: two -n names for this host, for one node of the cluster, or for one
/// address would give two blocks of the same addresses.
fn check_same_host(planned: &[Planned<'_>], host: Option<&Host>) -> Result<(), String> {
    let mut this_host = planned
        .iter()
        .filter(|p| matches!(p.source, Source::ThisHost(_)));
    if let (Some(first), Some(second)) = (this_host.next(), this_host.next()) {
        return Err(format!(
            "{} and {} are both this host: name each node once",
            first.request.name, second.request.name
        ));
    }
    for (index, first) in planned.iter().enumerate() {
        for second in &planned[index + 1..] {
            if let (Source::Kept(a), Source::Kept(b)) = (&first.source, &second.source) {
                if a.name.eq_ignore_ascii_case(&b.name) {
                    return Err(format!(
                        "{} and {} are both node {} of the cluster: name each node once",
                        first.request.name, second.request.name, a.name
                    ));
                }
            }
            let theirs = second.source.addresses(host);
            if let Some(address) = first
                .source
                .addresses(host)
                .into_iter()
                .find(|a| theirs.contains(a))
            {
                return Err(format!(
                    "nodes {} and {} have the same address {address}: name each node once",
                    first.request.name, second.request.name
                ));
            }
        }
    }
    Ok(())
}

/// A node block of the file: what [`write::cluster_ascii`] writes, and the lines written
/// after its NODE_NAME line (comments, and parameters without a value for the operator to
/// give).
struct NodeBlock {
    config: NodeConfig,
    extra_lines: Vec<String>,
    /// How the node was probed, for -v.
    report: String,
}

/// The node blocks of `planned`, in the file's order: with -c, the cluster's nodes kept in
/// the cluster's order, then the new ones in -n order; else in -n order.
fn node_blocks(
    planned: &[Planned<'_>],
    existing: Option<&ClusterConfig>,
    host: Option<&Host>,
    family: HeartbeatFamily,
) -> Vec<NodeBlock> {
    let this_host_named = planned
        .iter()
        .any(|p| matches!(p.source, Source::ThisHost(_)));
    let peers: Vec<Vec<IpAddr>> = planned
        .iter()
        .filter(|p| !matches!(p.source, Source::ThisHost(_)))
        .map(|p| p.source.addresses(host))
        .collect();
    let local = host
        .filter(|_| this_host_named)
        .map(|host| LocalPlan::new(host, family, &peers));
    let kept_count = existing.map_or(0, |cluster| cluster.nodes.len());
    let mut blocks: Vec<(usize, NodeBlock)> = planned
        .iter()
        .enumerate()
        .map(|(index, planned)| {
            let order = match (&planned.source, existing) {
                (Source::Kept(node), Some(cluster)) => cluster
                    .nodes
                    .iter()
                    .position(|n| n.name == node.name)
                    .unwrap_or(index),
                _ => kept_count + index,
            };
            (order, node_block(planned, host, local.as_ref(), family))
        })
        .collect();
    blocks.sort_by_key(|(order, _)| *order);
    blocks.into_iter().map(|(_, block)| block).collect()
}

/// The block of one node.
fn node_block(
    planned: &Planned<'_>,
    host: Option<&Host>,
    local: Option<&LocalPlan>,
    family: HeartbeatFamily,
) -> NodeBlock {
    let request = planned.request;
    let mut block = NodeBlock {
        config: NodeConfig {
            name: request.name.clone(),
            interfaces: Vec::new(),
            lock_lun: request.lock_lun.clone(),
            capacities: Default::default(),
            deleted: false,
        },
        extra_lines: Vec::new(),
        report: String::new(),
    };
    match (&planned.source, host, local) {
        (Source::Kept(node), _, _) => {
            block.config = node.clone();
            block.report = "a node of the cluster, kept as it is".into();
        }
        (Source::ThisHost(how), Some(host), Some(local)) => {
            // cmcld finds its block by its host name, whatever -n named it.
            block.config.name = host.name.clone();
            block.report = format!("this host ({how})");
            local.fill(&mut block);
        }
        (Source::Other(addresses), Some(host), local) => {
            let on_subnets = local
                .filter(|local| local.matched)
                .is_some_and(|local| local.fill_other(addresses, &mut block));
            if !on_subnets {
                probe_other_node(host, family, addresses, &mut block);
            }
        }
        _ => {
            block.extra_lines.push(comment(
                "not probed (-w none): give this node's NETWORK_INTERFACE and HEARTBEAT_IP",
            ));
            block.extra_lines.extend(placeholder_interface(None));
            block.report = "not probed (-w none)".into();
        }
    }
    block
}

/// This host's addresses as its block gives them.
struct LocalPlan {
    /// Each address of the heartbeat family used, in the system's order.
    chosen: Vec<Chosen>,
    /// The other family's addresses ("eth0 fd00::2"), listed in a comment.
    other_family: Vec<String>,
    /// True when the heartbeat subnets are those that every other node has an address on;
    /// false when there is no other node or no such subnet, and each subnet of this host has
    /// a heartbeat address.
    matched: bool,
    family: HeartbeatFamily,
}

/// One address of this host in its block.
struct Chosen {
    interface: String,
    address: IpAddr,
    prefix: u32,
    /// HEARTBEAT_IP, else STATIONARY_IP.
    heartbeat: bool,
}

impl LocalPlan {
    /// Every address of `host` of `family`, loopback and link-local ones left out: the first
    /// on each subnet a HEARTBEAT_IP, the others STATIONARY_IP; and, when `peers` (the other
    /// nodes' addresses) have an address on each of some subnets, those subnets alone carry
    /// heartbeats, for every node has an address on each heartbeat network.
    fn new(host: &Host, family: HeartbeatFamily, peers: &[Vec<IpAddr>]) -> LocalPlan {
        let mut chosen: Vec<Chosen> = Vec::new();
        let mut other_family = Vec::new();
        let usable = host
            .addresses
            .iter()
            .filter(|a| !a.loopback && !a.address.is_loopback() && !link_local(&a.address));
        for local in usable {
            if !family.admits(&local.address) {
                other_family.push(format!("{} {}", local.interface, local.address));
                continue;
            }
            // Subnets that overlap count as one.
            let first = !chosen.iter().any(|c| {
                c.heartbeat && same_subnet(&c.address, &local.address, c.prefix.min(local.prefix))
            });
            chosen.push(Chosen {
                interface: local.interface.clone(),
                address: local.address,
                prefix: local.prefix,
                heartbeat: first,
            });
        }
        let shared = |c: &Chosen| {
            peers.iter().all(|addresses| {
                addresses
                    .iter()
                    .any(|a| same_subnet(a, &c.address, c.prefix))
            })
        };
        let matched = !peers.is_empty() && chosen.iter().any(|c| c.heartbeat && shared(c));
        if matched {
            for c in &mut chosen {
                c.heartbeat = c.heartbeat && shared(c);
            }
        }
        LocalPlan {
            chosen,
            other_family,
            matched,
            family,
        }
    }

    /// This host's block: its interfaces and addresses, a comment on what is left out or
    /// not a heartbeat, and an interface to give when none has an address of the family.
    fn fill(&self, block: &mut NodeBlock) {
        for chosen in &self.chosen {
            let interface = interface_mut(&mut block.config.interfaces, &chosen.interface);
            if chosen.heartbeat {
                interface.heartbeat_ips.push(chosen.address);
            } else {
                interface.stationary_ips.push(chosen.address);
            }
        }
        let describe = |heartbeat: bool| -> Vec<String> {
            self.chosen
                .iter()
                .filter(|c| c.heartbeat == heartbeat)
                .map(|c| format!("{} {}", c.interface, c.address))
                .collect()
        };
        let (heartbeats, stationary) = (describe(true), describe(false));
        let family = self.family;
        if heartbeats.is_empty() {
            block
                .report
                .push_str(&format!(": no interface up with an {family} address"));
        } else {
            block
                .report
                .push_str(&format!(": heartbeats {}", heartbeats.join(", ")));
        }
        if !stationary.is_empty() {
            block
                .report
                .push_str(&format!("; stationary {}", stationary.join(", ")));
            block.extra_lines.push(comment(
                "STATIONARY_IP: monitored, no heartbeats (a second address on a subnet, or a \
                 subnet where not every other node has an address)",
            ));
        }
        if !self.other_family.is_empty() {
            let other = match family {
                HeartbeatFamily::Ipv4 => HeartbeatFamily::Ipv6,
                HeartbeatFamily::Ipv6 => HeartbeatFamily::Ipv4,
            };
            let others = self.other_family.join(", ");
            block.report.push_str(&format!("; not used: {others}"));
            block.extra_lines.push(comment(&format!(
                "Also on this node, not used with -h {}: {others} ({other}).",
                family.flag()
            )));
        }
        if heartbeats.is_empty() {
            block.extra_lines.push(comment(&format!(
                "no interface of this host is up with an {family} address: give \
                 NETWORK_INTERFACE and HEARTBEAT_IP"
            )));
            block.extra_lines.extend(placeholder_interface(None));
        }
    }

    /// Another node's block on this host's heartbeat subnets: its address on each, with the
    /// name of this host's interface there. False, with `block` as it was, when it has no
    /// address on one of them.
    fn fill_other(&self, addresses: &[IpAddr], block: &mut NodeBlock) -> bool {
        let mut found = Vec::new();
        for subnet in self.chosen.iter().filter(|c| c.heartbeat) {
            let on_subnet = addresses
                .iter()
                .find(|a| same_subnet(a, &subnet.address, subnet.prefix) && !found.contains(a));
            match on_subnet {
                Some(address) => found.push(address),
                None => return false,
            }
        }
        let interfaces: Vec<&str> = self
            .chosen
            .iter()
            .filter(|c| c.heartbeat)
            .map(|c| c.interface.as_str())
            .collect();
        for (interface, address) in interfaces.iter().zip(&found) {
            interface_mut(&mut block.config.interfaces, interface)
                .heartbeat_ips
                .push(**address);
        }
        block.extra_lines.push(not_probed(&block.config.name));
        block.report = format!(
            "resolves to {}; on the heartbeat subnets of this host's {}",
            list(addresses),
            interfaces.join(", ")
        );
        true
    }
}

/// The interface called `name` of `interfaces`, added last if missing.
fn interface_mut<'a>(
    interfaces: &'a mut Vec<InterfaceConfig>,
    name: &str,
) -> &'a mut InterfaceConfig {
    let index = match interfaces.iter().position(|i| i.name == name) {
        Some(index) => index,
        None => {
            interfaces.push(InterfaceConfig {
                name: name.to_owned(),
                heartbeat_ips: Vec::new(),
                stationary_ips: Vec::new(),
            });
            interfaces.len() - 1
        }
    };
    &mut interfaces[index]
}

/// The comment above the interfaces of a node that is not this host.
fn not_probed(name: &str) -> String {
    comment(&format!(
        "not probed: cimguard cannot probe {name}'s interfaces from here; check \
         NETWORK_INTERFACE and HEARTBEAT_IP"
    ))
}

/// Another node when this host's subnets tell nothing (this host is not a node, or no subnet
/// has an address of every other node): one address of its name of the heartbeat family,
/// with this host's interface on the same subnet if there is one (Serviceguard names
/// interfaces per node; nodes with same-named interfaces on each network are the usual
/// case), else an interface to give. Its interfaces cannot be listed from here, which a
/// comment says.
fn probe_other_node(
    host: &Host,
    family: HeartbeatFamily,
    addresses: &[IpAddr],
    block: &mut NodeBlock,
) {
    let name = block.config.name.clone();
    block.extra_lines.push(not_probed(&name));
    let usable = || {
        addresses
            .iter()
            .filter(|a| family.admits(a) && !link_local(a))
    };
    let chosen = usable()
        .find(|a| host.interface_for(a).is_some())
        .or_else(|| usable().next());
    let Some(address) = chosen else {
        block.extra_lines.push(comment(&format!(
            "{name} resolves to {} only: no {family} address (-h {})",
            list(addresses),
            family.flag()
        )));
        block.extra_lines.extend(placeholder_interface(None));
        block.report = format!("resolves to {} (no {family} address)", list(addresses));
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

/// -v's line on this host: its name and every address of its interfaces that are up.
fn host_report(host: &Host) -> String {
    let interfaces: Vec<String> = host
        .addresses
        .iter()
        .map(|a| format!("{} {}/{}", a.interface, a.address, a.prefix))
        .collect();
    format!("this host is {}: {}", host.name, interfaces.join(", "))
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
            "Access policies, three lines each: USER_NAME (ANY_USER, or up to 8 login names",
            "separated by blanks), USER_HOST (CLUSTER_MEMBER_NODE: a request from a node of",
            "this cluster; ANY_SERVICEGUARD_NODE: a request from any host; or a host name) and",
            "USER_ROLE (MONITOR, PACKAGE_ADMIN or FULL_ADMIN). At most 200 policies, and one",
            "role for a user from a host. A request from outside the cluster gets MONITOR at",
            "most. Root on the nodes may do anything, and each node's WBEM agent also grants",
            "the roles of its own users file.",
        ],
    ),
];

/// Said below [`ABOUT`]'s USER_NAME lines in a new cluster's template, whose policy is
/// Serviceguard's default (not above a running cluster's own policies).
const DEFAULT_POLICY: &[&str] = &[
    "The policy below, Serviceguard's default, lets any user of any host monitor the",
    "cluster (cmviewcl).",
];

/// What is said in place of a lock when there is none.
const NO_LOCK: &[&str] = &[
    "Cluster lock: none. A two-node cluster needs one: CLUSTER_LOCK_LUN in each node block",
    "(cmquerycl -n NODE -L LOCK_LUN), or a quorum server, QS_HOST (cmquerycl -q QS_HOST).",
];

/// The file: [`write::cluster_ascii`]'s lines under `header` (in place of cmgetconf's),
/// with the comments of [`ABOUT`] above the cluster-level parameters (and [`DEFAULT_POLICY`]
/// in a new cluster's `template`) and each node's `extra` lines after its NODE_NAME line
/// (`extra[k]` for the k-th node).
fn render(
    config: &ClusterConfig,
    header: &[String],
    extra: &[Vec<String>],
    template: bool,
) -> String {
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
                if parameter == "USER_NAME" && template {
                    for line in DEFAULT_POLICY {
                        push_comment(&mut text, line);
                    }
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
fn template_header(blocks: &[NodeBlock]) -> Vec<String> {
    let names: Vec<&str> = blocks.iter().map(|b| b.config.name.as_str()).collect();
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

/// The header of a running cluster's file with the -n nodes as its node set, and a line
/// for standard error for each node of the cluster left out. Refused when no node of the
/// cluster is named: with -c the -n nodes are the whole node set, and a file of new nodes
/// alone is another cluster (add-only habits would otherwise drop every node).
fn changed_header(
    cluster: &ClusterConfig,
    args: &QueryCluster,
    blocks: &[NodeBlock],
) -> Result<(Vec<String>, Vec<String>), String> {
    let name = &cluster.name;
    let in_cluster = |node: &str| cluster.node(node);
    let in_file = |node: &str| {
        blocks
            .iter()
            .any(|b| b.config.name.eq_ignore_ascii_case(node))
    };
    let kept: Vec<&NodeBlock> = blocks
        .iter()
        .filter(|b| in_cluster(&b.config.name).is_some())
        .collect();
    if kept.is_empty() && !blocks.is_empty() {
        let own: Vec<&str> = cluster.nodes.iter().map(|n| n.name.as_str()).collect();
        return Err(format!(
            "no node of cluster {name} ({}) is named: with -c, the -n nodes are the cluster's \
             whole node set; name the nodes to keep with the new ones",
            own.join(", ")
        ));
    }
    let added: Vec<&str> = blocks
        .iter()
        .map(|b| b.config.name.as_str())
        .filter(|node| in_cluster(node).is_none())
        .collect();
    let removed: Vec<&str> = cluster
        .nodes
        .iter()
        .map(|n| n.name.as_str())
        .filter(|node| !in_file(node))
        .collect();
    let lock_changed = args.quorum_server.is_some()
        || kept.iter().any(|b| {
            in_cluster(&b.config.name).is_some_and(|own| own.lock_lun != b.config.lock_lun)
        });
    let mut changes = Vec::new();
    if !added.is_empty() {
        changes.push(format!("{} added", nodes_phrase(&added)));
    }
    if !removed.is_empty() {
        changes.push(format!("{} removed", nodes_phrase(&removed)));
    }
    if lock_changed {
        changes.push("its lock changed".into());
    }
    let changes = match changes.split_last() {
        None => "its nodes as they are".to_owned(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    };
    let header = vec![
        format!("Cluster configuration file of cluster {name}, written by cmquerycl -c {name}:"),
        format!("the configuration in effect, with {changes}."),
        String::new(),
        "Check the NETWORK_INTERFACE and HEARTBEAT_IP lines of the added nodes and give those"
            .into(),
        "left without a value; then check the file with cmcheckconf -C FILE and apply it with"
            .into(),
        "cmapplyconf -C FILE. Times are in microseconds.".into(),
    ];
    let left_out = removed
        .iter()
        .map(|node| {
            format!(
                "node {node} of cluster {name} is not named with -n: it is left out of the \
                 file, and cmapplyconf of the file removes it from the cluster"
            )
        })
        .collect();
    Ok((header, left_out))
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::mpsc;
    use std::time::Instant;

    use cimguard_cluster::config::cluster::{
        self, AccessPolicy, AddressFamily, ClusterConfig, ClusterLock, InterfaceConfig, NodeConfig,
        Role, UserHost,
    };
    use cimguard_cluster::config::{write, Diagnostic, Severity};
    use clap::error::ErrorKind;
    use clap::Parser;

    use super::*;

    /// A host called vm: eth0 with a second address, eth1, docker0, loopback, IPv6 (global
    /// and link-local).
    fn host() -> Host {
        host_with(&[
            ("lo", "127.0.0.1", 8),
            ("eth0", "10.0.0.1", 24),
            ("eth0", "10.0.0.9", 24),
            ("eth1", "10.1.0.1", 24),
            ("docker0", "172.17.0.1", 16),
            ("lo", "::1", 128),
            ("eth0", "2001:db8::1", 64),
            ("eth0", "fe80::1", 64),
            ("eth1", "2001:db8:1::1", 64),
        ])
    }

    fn host_with(addresses: &[(&str, &str, u32)]) -> Host {
        Host {
            name: "vm".into(),
            addresses: addresses
                .iter()
                .map(|&(interface, address, prefix)| LocalAddress {
                    interface: interface.into(),
                    address: address.parse().unwrap(),
                    prefix,
                    loopback: interface == "lo",
                })
                .collect(),
        }
    }

    /// The names the tests resolve.
    fn table(name: &str) -> Result<Vec<IpAddr>, Unresolved> {
        let addresses: &[&str] = match name {
            "node2" => &["10.0.0.2", "10.1.0.2"],
            "node3" => &["10.0.0.3", "10.1.0.3", "2001:db8::3"],
            "alias2" => &["10.1.0.2"],
            "far" => &["198.51.100.7"],
            "v6node" => &["10.0.0.22", "2001:db8::2"],
            "qs" => &["10.0.0.100"],
            "slow" => return Err(Unresolved::TimedOut),
            _ => return Err(Unresolved::Failed("no such host".into())),
        };
        Ok(addresses.iter().map(|a| a.parse().unwrap()).collect())
    }

    fn request(args: &[&str]) -> QueryCluster {
        QueryCluster::try_parse_from(std::iter::once("cmquerycl").chain(args.iter().copied()))
            .unwrap()
    }

    /// What cmquerycl ARGS makes on `host` (none with -w none), with the cluster file
    /// `existing` for -c.
    fn build_on(host: &Host, args: &[&str], existing: Option<&str>) -> Result<Built, String> {
        let args = request(args);
        let host = (args.probing != Probing::None).then_some(host);
        build(&args, host, existing, &table)
    }

    fn text(args: &[&str]) -> String {
        let built = build_on(&host(), args, None).unwrap();
        assert_eq!(built.warnings, Vec::<String>::new());
        built.text
    }

    /// The daemon's reading of `text`, which must have no error.
    fn parsed(text: &str) -> ClusterConfig {
        match cluster::parse(text, "cluster.ascii") {
            Ok(checked) => {
                let errors: Vec<&Diagnostic> = checked
                    .findings
                    .iter()
                    .filter(|d| d.severity == Severity::Error)
                    .collect();
                assert!(errors.is_empty(), "{errors:?}");
                checked.config
            }
            Err(findings) => panic!("{findings:?}\n{text}"),
        }
    }

    /// The errors the daemon finds in `text`: (line, reason).
    fn errors(text: &str) -> Vec<(usize, String)> {
        match cluster::parse(text, "cluster.ascii") {
            Ok(_) => panic!("no error in\n{text}"),
            Err(findings) => findings
                .into_iter()
                .filter(|d| d.severity == Severity::Error)
                .map(|d| (d.line, d.reason))
                .collect(),
        }
    }

    /// The block of node `name` in `text`: its NODE_NAME line and the node lines after it.
    fn block(text: &str, name: &str) -> String {
        let start = format!("NODE_NAME                 {name}\n");
        let at = text
            .find(&start)
            .unwrap_or_else(|| panic!("no {name} in\n{text}"));
        text[at..]
            .split_inclusive('\n')
            .enumerate()
            .take_while(|(index, line)| *index == 0 || line.starts_with("  "))
            .map(|(_, line)| line)
            .collect()
    }

    fn line_of(text: &str, line: &str) -> usize {
        1 + text
            .lines()
            .position(|l| l == line)
            .unwrap_or_else(|| panic!("no {line:?} in\n{text}"))
    }

    fn addresses(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    const TWO_PEERS: &str = "\
# Cluster configuration file template, made by cmquerycl for the nodes vm, node2, node3.
#
# Edit it before use: give CLUSTER_NAME (cluster1 is a placeholder), check the
# NETWORK_INTERFACE and HEARTBEAT_IP lines of the nodes that were not probed and give
# those left without a value; then check the file with cmcheckconf -C FILE and apply
# it with cmapplyconf -C FILE. Times are in microseconds.

# The cluster's name: up to 39 letters, digits, '_', '-' or '.'. A quorum server
# tells the clusters it serves apart by name: make it unique among them.
CLUSTER_NAME              cluster1

# The addresses that node names and heartbeats use: IPV4 (the default), IPV6 or ANY.
HOSTNAME_ADDRESS_FAMILY   IPV4

# Cluster lock: a quorum server.
# The quorum server (cmqsd): the tie-breaker when exactly half of the nodes remain.
# QS_ADDR: another address of the same server.
QS_HOST                   qs

# How often the nodes check the quorum server: 10 s to about 35 min (default 5 min).
QS_POLLING_INTERVAL       300000000

# Added to the quorum server's response timeout (0.1 x MEMBER_TIMEOUT with two
# nodes, 0.2 x with more), and so to the failover time.
QS_TIMEOUT_EXTENSION      0

# One block per node: NODE_NAME (its host name), then each NETWORK_INTERFACE with
# its HEARTBEAT_IP (the k-th HEARTBEAT_IP of every node on the same subnet: one
# heartbeat network; two or more are recommended) or STATIONARY_IP (monitored, no
# heartbeats), and CLUSTER_LOCK_LUN, the node's own path to the lock LUN.
NODE_NAME                 vm
  # STATIONARY_IP: monitored, no heartbeats (a second address on a subnet, or a subnet where not every other node has an address)
  # Also on this node, not used with -h ipv4: eth0 2001:db8::1, eth1 2001:db8:1::1 (IPv6).
  NETWORK_INTERFACE       eth0
    HEARTBEAT_IP          10.0.0.1
    STATIONARY_IP         10.0.0.9
  NETWORK_INTERFACE       eth1
    HEARTBEAT_IP          10.1.0.1
  NETWORK_INTERFACE       docker0
    STATIONARY_IP         172.17.0.1

NODE_NAME                 node2
  # not probed: cimguard cannot probe node2's interfaces from here; check NETWORK_INTERFACE and HEARTBEAT_IP
  NETWORK_INTERFACE       eth0
    HEARTBEAT_IP          10.0.0.2
  NETWORK_INTERFACE       eth1
    HEARTBEAT_IP          10.1.0.2

NODE_NAME                 node3
  # not probed: cimguard cannot probe node3's interfaces from here; check NETWORK_INTERFACE and HEARTBEAT_IP
  NETWORK_INTERFACE       eth0
    HEARTBEAT_IP          10.0.0.3
  NETWORK_INTERFACE       eth1
    HEARTBEAT_IP          10.1.0.3

# How long a node may be silent before the others re-form the cluster without it:
# default 14 s; at least 14 s with one heartbeat network, 3 s with more; at most 300 s.
MEMBER_TIMEOUT            14000000

# How long a booting node waits for the others to form the cluster (default 10 min).
AUTO_START_TIMEOUT        600000000

# How often the interfaces are checked: 1 s to 30 s (default 2 s).
NETWORK_POLLING_INTERVAL  2000000

# The most packages the cluster may have: 0 to 300 (the default).
MAX_CONFIGURED_PACKAGES   300

# Access policies, three lines each: USER_NAME (ANY_USER, or up to 8 login names
# separated by blanks), USER_HOST (CLUSTER_MEMBER_NODE: a request from a node of
# this cluster; ANY_SERVICEGUARD_NODE: a request from any host; or a host name) and
# USER_ROLE (MONITOR, PACKAGE_ADMIN or FULL_ADMIN). At most 200 policies, and one
# role for a user from a host. A request from outside the cluster gets MONITOR at
# most. Root on the nodes may do anything, and each node's WBEM agent also grants
# the roles of its own users file.
# The policy below, Serviceguard's default, lets any user of any host monitor the
# cluster (cmviewcl).
USER_NAME                 ANY_USER
USER_HOST                 ANY_SERVICEGUARD_NODE
USER_ROLE                 MONITOR
";

    #[test]
    fn this_host_heartbeats_on_the_subnets_every_other_node_is_on() {
        let text = text(&["-n", "vm", "-n", "node2", "-n", "node3", "-q", "qs"]);
        assert_eq!(text, TWO_PEERS);
        let config = parsed(&text);
        assert_eq!(config.heartbeat_networks(), 2);
        for node in &config.nodes {
            assert_eq!(node.heartbeat_addresses().count(), 2, "{node:?}");
        }
        let vm = &config.nodes[0];
        assert_eq!(vm.interfaces[0].stationary_ips, addresses(&["10.0.0.9"]));
        assert_eq!(vm.interfaces[2].name, "docker0");
        assert_eq!(vm.interfaces[2].heartbeat_ips, Vec::<IpAddr>::new());
        // -v's report, for standard error.
        let built = build_on(&host(), &["-n", "vm", "-n", "node2", "-q", "qs"], None).unwrap();
        assert_eq!(
            built.report,
            [
                "this host is vm: lo 127.0.0.1/8, eth0 10.0.0.1/24, eth0 10.0.0.9/24, eth1 \
                 10.1.0.1/24, docker0 172.17.0.1/16, lo ::1/128, eth0 2001:db8::1/64, eth0 \
                 fe80::1/64, eth1 2001:db8:1::1/64",
                "node vm: this host (host name vm): heartbeats eth0 10.0.0.1, eth1 10.1.0.1; \
                 stationary eth0 10.0.0.9, docker0 172.17.0.1; not used: eth0 2001:db8::1, \
                 eth1 2001:db8:1::1",
                "node node2: resolves to 10.0.0.2 10.1.0.2; on the heartbeat subnets of this \
                 host's eth0, eth1",
                "quorum server qs",
            ]
        );
    }

    #[test]
    fn this_host_is_written_under_its_host_name() {
        for name in ["VM.example.invalid", "10.0.0.1", "vm"] {
            let text = text(&["-n", name, "-n", "node2", "-q", "qs"]);
            assert_eq!(block(&text, "vm"), block(TWO_PEERS, "vm"), "-n {name}");
            let config = parsed(&text);
            assert_eq!(config.nodes[0].name, "vm", "-n {name}");
        }
        // Alone, every subnet of this host carries heartbeats, one address on each.
        let alone = parsed(&text(&["-n", "vm"]));
        assert_eq!(
            alone.nodes[0].heartbeat_addresses().collect::<Vec<_>>(),
            addresses(&["10.0.0.1", "10.1.0.1", "172.17.0.1"])
        );
        assert_eq!(
            alone.nodes[0].interfaces[0].stationary_ips,
            addresses(&["10.0.0.9"])
        );
    }

    #[test]
    fn other_nodes_by_full_domain_name_or_address_are_refused() {
        for probing in [&[][..], &["-w", "none"][..]] {
            let refused = |node: &str| {
                let args: Vec<&str> = probing.iter().copied().chain(["-n", node]).collect();
                build_on(&host(), &args, None).unwrap_err()
            };
            assert_eq!(
                refused("node2.example.com"),
                "node node2.example.com: a full domain name; give the host name alone (node2), \
                 the name the node's daemon knows itself by"
            );
            assert_eq!(
                refused("10.0.0.2"),
                "node 10.0.0.2: an address, not a host name; give the node's host name, the \
                 name its daemon knows itself by"
            );
        }
        // Without probing, this host is not known either.
        let unprobed = build_on(&host(), &["-w", "none", "-n", "vm.example.net"], None);
        assert!(unprobed.unwrap_err().contains("a full domain name"));
    }

    #[test]
    fn two_names_for_one_host_are_refused() {
        let refused = |args: &[&str]| build_on(&host(), args, None).unwrap_err();
        assert_eq!(
            refused(&["-n", "vm", "-n", "node2", "-n", "alias2"]),
            "nodes node2 and alias2 have the same address 10.1.0.2: name each node once"
        );
        assert_eq!(
            refused(&["-n", "vm", "-n", "VM.example.invalid"]),
            "vm and VM.example.invalid are both this host: name each node once"
        );
        assert_eq!(
            refused(&["-n", "10.0.0.9", "-n", "vm"]),
            "10.0.0.9 and vm are both this host: name each node once"
        );
    }

    #[test]
    fn a_peer_on_no_subnet_of_this_host_gets_its_address_and_an_interface_to_give() {
        let text = text(&["-n", "vm", "-n", "far", "-q", "qs"]);
        // Nothing matched: every subnet of this host carries heartbeats, as without peers.
        assert_eq!(
            block(&text, "vm"),
            "NODE_NAME                 vm\n  \
             # STATIONARY_IP: monitored, no heartbeats (a second address on a subnet, or a \
             subnet where not every other node has an address)\n  \
             # Also on this node, not used with -h ipv4: eth0 2001:db8::1, eth1 \
             2001:db8:1::1 (IPv6).\n  \
             NETWORK_INTERFACE       eth0\n    \
             HEARTBEAT_IP          10.0.0.1\n    \
             STATIONARY_IP         10.0.0.9\n  \
             NETWORK_INTERFACE       eth1\n    \
             HEARTBEAT_IP          10.1.0.1\n  \
             NETWORK_INTERFACE       docker0\n    \
             HEARTBEAT_IP          172.17.0.1\n"
        );
        assert_eq!(
            block(&text, "far"),
            "NODE_NAME                 far\n  \
             # not probed: cimguard cannot probe far's interfaces from here; check \
             NETWORK_INTERFACE and HEARTBEAT_IP\n  \
             NETWORK_INTERFACE\n    \
             HEARTBEAT_IP          198.51.100.7\n"
        );
        // The operator's to settle: the interface's name (the parser reads no interface,
        // so no heartbeat address, before it is given).
        let far = line_of(&text, "NODE_NAME                 far");
        assert_eq!(
            errors(&text),
            [
                (far, "node far has no heartbeat address".to_owned()),
                (far + 2, "no value".to_owned()),
                (
                    far + 3,
                    "outside a NETWORK_INTERFACE of a NODE_NAME block".to_owned()
                ),
            ]
        );
        let given = text.replace("  NETWORK_INTERFACE\n", "  NETWORK_INTERFACE eth7\n");
        assert_eq!(
            errors(&given),
            [(
                far,
                "node far has 1 heartbeat addresses where vm has 3: every heartbeat network \
                 reaches every node"
                    .to_owned()
            )]
        );
    }

    #[test]
    fn no_interface_of_the_family_gives_an_interface_to_fill_in() {
        let v6_only = host_with(&[
            ("lo", "127.0.0.1", 8),
            ("eth0", "2001:db8::1", 64),
            ("eth0", "fe80::1", 64),
        ]);
        let built = build_on(&v6_only, &["-n", "vm"], None).unwrap();
        let expected = "NODE_NAME                 vm\n  \
             # Also on this node, not used with -h ipv4: eth0 2001:db8::1 (IPv6).\n  \
             # no interface of this host is up with an IPv4 address: give NETWORK_INTERFACE \
             and HEARTBEAT_IP\n  \
             NETWORK_INTERFACE\n    \
             HEARTBEAT_IP\n";
        assert_eq!(block(&built.text, "vm"), expected);
        let at = line_of(&built.text, "  NETWORK_INTERFACE");
        assert_eq!(
            errors(&built.text),
            [
                (at - 3, "node vm has no heartbeat address".to_owned()),
                (at, "no value".to_owned()),
                (at + 1, "no value".to_owned())
            ]
        );
        // Nor with loopback alone.
        let bare = host_with(&[("lo", "127.0.0.1", 8)]);
        let built = build_on(&bare, &["-n", "vm"], None).unwrap();
        assert!(block(&built.text, "vm").ends_with("  NETWORK_INTERFACE\n    HEARTBEAT_IP\n"));
    }

    #[test]
    fn h_ipv6_puts_heartbeats_on_ipv6_subnets() {
        let text = text(&["-h", "ipv6", "-n", "vm", "-n", "v6node", "-q", "qs"]);
        assert!(text.contains("\nHOSTNAME_ADDRESS_FAMILY   ANY\n"), "{text}");
        assert_eq!(
            block(&text, "vm"),
            "NODE_NAME                 vm\n  \
             # STATIONARY_IP: monitored, no heartbeats (a second address on a subnet, or a \
             subnet where not every other node has an address)\n  \
             # Also on this node, not used with -h ipv6: eth0 10.0.0.1, eth0 10.0.0.9, eth1 \
             10.1.0.1, docker0 172.17.0.1 (IPv4).\n  \
             NETWORK_INTERFACE       eth0\n    \
             HEARTBEAT_IP          2001:db8::1\n  \
             NETWORK_INTERFACE       eth1\n    \
             STATIONARY_IP         2001:db8:1::1\n"
        );
        assert_eq!(
            block(&text, "v6node"),
            "NODE_NAME                 v6node\n  \
             # not probed: cimguard cannot probe v6node's interfaces from here; check \
             NETWORK_INTERFACE and HEARTBEAT_IP\n  \
             NETWORK_INTERFACE       eth0\n    \
             HEARTBEAT_IP          2001:db8::2\n"
        );
        let config = parsed(&text);
        assert_eq!(config.address_family, AddressFamily::Any);
        assert_eq!(config.heartbeat_networks(), 1);
        // -h is the heartbeat family; --help alone is help.
        assert_eq!(
            request(&["-h", "ipv6", "-n", "a"]).heartbeat_family,
            Some(HeartbeatFamily::Ipv6)
        );
        assert_eq!(request(&["-n", "a"]).heartbeat_family, None);
        let help = QueryCluster::try_parse_from(["cmquerycl", "--help"]).unwrap_err();
        assert_eq!(help.kind(), ErrorKind::DisplayHelp);
        assert!(help.to_string().contains("[-h ipv4|ipv6]"), "{help}");
        let bad = QueryCluster::try_parse_from(["cmquerycl", "-h", "any", "-n", "a"]);
        assert_eq!(bad.unwrap_err().kind(), ErrorKind::InvalidValue);
    }

    /// A running cluster: node1, node2 and node3 on 10.0.0.0/24 and 10.1.0.0/24, a lock
    /// LUN, and a policy of its own.
    fn prodcl() -> String {
        prodcl_with(true)
    }

    /// [`prodcl`], with its lock LUN or no lock.
    fn prodcl_with(lock_lun: bool) -> String {
        let node = |k: u8| NodeConfig {
            name: format!("node{k}"),
            interfaces: vec![
                InterfaceConfig {
                    name: "eth0".into(),
                    heartbeat_ips: vec![format!("10.0.0.1{k}").parse().unwrap()],
                    stationary_ips: Vec::new(),
                },
                InterfaceConfig {
                    name: "eth1".into(),
                    heartbeat_ips: vec![format!("10.1.0.1{k}").parse().unwrap()],
                    stationary_ips: Vec::new(),
                },
            ],
            lock_lun: lock_lun.then(|| format!("/dev/sd{k}").into()),
            capacities: Default::default(),
            deleted: false,
        };
        let config = ClusterConfig {
            name: "prodcl".into(),
            address_family: AddressFamily::Ipv4,
            nodes: (1..=3).map(node).collect(),
            member_timeout: Duration::from_secs(5),
            auto_start_timeout: cluster::AUTO_START_TIMEOUT_DEFAULT,
            network_polling_interval: cluster::NETWORK_POLLING_INTERVAL_DEFAULT,
            lock: if lock_lun {
                ClusterLock::LockLun
            } else {
                ClusterLock::None
            },
            max_configured_packages: 100,
            access: vec![AccessPolicy {
                user: Some("oper".into()),
                host: UserHost::ClusterMemberNode,
                role: Role::PackageAdmin,
            }],
            weight_defaults: Default::default(),
        };
        let text = write::cluster_ascii(&config);
        assert_eq!(parsed(&text), config);
        text
    }

    #[test]
    fn with_c_the_named_nodes_are_the_whole_node_set() {
        let existing = prodcl();
        let before = parsed(&existing);
        let with = |args: &[&str]| build_on(&host(), args, Some(&existing));
        // Alone: the file in effect.
        let alone = with(&["-c", "prodcl"]).unwrap();
        assert_eq!(alone.text, existing);
        // Two nodes kept, this host added, node3 left out (and said so).
        let built = with(&["-c", "prodcl", "-n", "node1", "-n", "vm", "-L", "/dev/sdv"]).unwrap();
        assert_eq!(
            built.warnings,
            [
                "node node2 of cluster prodcl is not named with -n: it is left out of the \
                 file, and cmapplyconf of the file removes it from the cluster",
                "node node3 of cluster prodcl is not named with -n: it is left out of the \
                 file, and cmapplyconf of the file removes it from the cluster",
            ]
        );
        assert!(built.text.starts_with(
            "# Cluster configuration file of cluster prodcl, written by cmquerycl -c prodcl:\n\
             # the configuration in effect, with node vm added and the nodes node2, node3 \
             removed.\n"
        ));
        let after = parsed(&built.text);
        assert_eq!(after.nodes.len(), 2);
        assert_eq!(after.nodes[0], before.nodes[0]);
        assert_eq!(
            after.nodes[1].heartbeat_addresses().collect::<Vec<_>>(),
            addresses(&["10.0.0.1", "10.1.0.1"])
        );
        assert_eq!(
            after.nodes[1].lock_lun.as_deref(),
            Some(Path::new("/dev/sdv"))
        );
        assert_eq!(after.member_timeout, before.member_timeout);
        assert_eq!(after.access, before.access);
        // Its own policy is not called Serviceguard's default.
        assert!(
            !built.text.contains("Serviceguard's default"),
            "{}",
            built.text
        );
        assert!(built.text.contains("up to 8 login names"), "{}", built.text);
    }

    #[test]
    fn with_c_nodes_keep_their_blocks_and_new_ones_come_last() {
        let existing = prodcl();
        let before = parsed(&existing);
        let with = |args: &[&str]| build_on(&host(), args, Some(&existing));
        // Named in another order, with a new node first: the cluster's order, then the new.
        let args = [
            "-c", "prodcl", "-w", "none", "-n", "node4", "-L", "/dev/sd4", "-n", "node3", "-n",
            "NODE2", "-L", "/dev/new", "-n", "node1",
        ];
        let built = with(&args).unwrap();
        assert_eq!(built.warnings, Vec::<String>::new());
        assert!(built.text.contains(
            "# the configuration in effect, with node node4 added and its lock changed.\n"
        ));
        assert_eq!(
            block(&built.text, "node4"),
            "NODE_NAME                 node4\n  \
             # not probed (-w none): give this node's NETWORK_INTERFACE and HEARTBEAT_IP\n  \
             NETWORK_INTERFACE\n    \
             HEARTBEAT_IP\n  \
             CLUSTER_LOCK_LUN        /dev/sd4\n"
        );
        let filled = built.text.replace(
            "  NETWORK_INTERFACE\n    HEARTBEAT_IP\n",
            "  NETWORK_INTERFACE eth0\n    HEARTBEAT_IP 10.0.0.14\n  NETWORK_INTERFACE eth1\n    \
             HEARTBEAT_IP 10.1.0.14\n",
        );
        let after = parsed(&filled);
        let names: Vec<&str> = after.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["node1", "node2", "node3", "node4"]);
        assert_eq!(after.nodes[0], before.nodes[0]);
        assert_eq!(after.nodes[2], before.nodes[2]);
        assert_eq!(after.nodes[1].interfaces, before.nodes[1].interfaces);
        assert_eq!(
            after.nodes[1].lock_lun.as_deref(),
            Some(Path::new("/dev/new"))
        );
        // The same nodes again: the file as it is, under its own header.
        let same = with(&["-c", "prodcl", "-n", "node1", "-n", "node2", "-n", "node3"]).unwrap();
        assert!(same
            .text
            .contains("# the configuration in effect, with its nodes as they are.\n"));
        assert_eq!(parsed(&same.text), before);
    }

    #[test]
    fn with_c_and_no_n_a_quorum_server_is_the_one_change() {
        let existing = prodcl_with(false);
        let before = parsed(&existing);
        let built = build_on(&host(), &["-c", "prodcl", "-q", "qs"], Some(&existing)).unwrap();
        assert_eq!(built.warnings, Vec::<String>::new());
        assert!(built
            .text
            .contains("# the configuration in effect, with its lock changed.\n"));
        let after = parsed(&built.text);
        assert_eq!(after.nodes, before.nodes);
        assert!(matches!(after.lock, ClusterLock::QuorumServer { ref host, .. } if host == "qs"));
        // With a lock LUN of its own, the quorum server would be a second lock.
        let refused = build_on(&host(), &["-c", "prodcl", "-q", "qs"], Some(&prodcl()));
        assert!(refused.unwrap_err().starts_with("a cluster has one lock"));
    }

    #[test]
    fn with_c_bad_requests_are_refused() {
        let existing = prodcl();
        let refused = |args: &[&str]| build_on(&host(), args, Some(&existing)).unwrap_err();
        assert_eq!(
            refused(&["-c", "prodcl", "-L", "/dev/sdx"]),
            "-L /dev/sdx without -n: a lock LUN path is a node's; with -c, name the nodes of \
             the cluster (-L LOCK_LUN -n NODE..., or -n NODE -L LOCK_LUN...)"
        );
        assert_eq!(
            refused(&["-c", "prodcl", "-w", "none", "-n", "node4", "-L", "/dev/sd4"]),
            "no node of cluster prodcl (node1, node2, node3) is named: with -c, the -n nodes \
             are the cluster's whole node set; name the nodes to keep with the new ones"
        );
        assert_eq!(
            refused(&["-c", "prodcl", "-w", "none", "-n", "node1", "-n", "node4"]),
            "node node4 has no path to the lock LUN that node1 uses: give -L LOCK_LUN right \
             after each -n NODE"
        );
        assert_eq!(
            refused(&["-c", "prodcl", "-h", "ipv6", "-n", "node1", "-n", "vm"]),
            "-h ipv6: the heartbeat networks of cluster prodcl are IPv4, and its nodes, new \
             ones too, all have an address on each"
        );
        assert_eq!(
            refused(&["-c", "prodcl", "-n", "node1", "-n", "NODE1.example.invalid"]),
            "node NODE1.example.invalid: a full domain name; give the host name alone (NODE1), \
             the name the node's daemon knows itself by"
        );
        assert_eq!(
            refused(&["-c", "prodcl", "-n", "node1", "-n", "alias"]),
            "cannot resolve node alias: no such host"
        );
        // This host, a node of the cluster under another name already.
        let mut renamed = host();
        renamed.addresses[1].address = "10.0.0.12".parse().unwrap();
        let refused = build_on(
            &renamed,
            &["-c", "prodcl", "-n", "node2", "-n", "vm"],
            Some(&existing),
        );
        assert_eq!(
            refused.unwrap_err(),
            "nodes node2 and vm have the same address 10.0.0.12: name each node once"
        );
    }

    #[test]
    fn a_lookup_past_its_deadline_times_out() {
        // The lookup answers once released; the deadline has passed before it is.
        let (release, released) = mpsc::channel::<()>();
        let answer = resolve_within("ftsys9", Instant::now(), move |_| {
            let _ = released.recv();
            Ok(Vec::new())
        });
        assert_eq!(answer, Err(Unresolved::TimedOut));
        drop(release);
        assert_eq!(
            Unresolved::TimedOut.describe("node", "ftsys9"),
            "timed out resolving ftsys9 (the node): no answer within the 10 s cmquerycl \
             gives its lookups; give its address in /etc/hosts, or use -w none"
        );
        // An answer within the deadline is taken.
        let deadline = Instant::now() + RESOLVE_DEADLINE;
        let answer = resolve_within("ftsys9", deadline, |name| {
            assert_eq!(name, "ftsys9");
            Ok(addresses(&["10.0.0.9"]))
        });
        assert_eq!(answer, Ok(addresses(&["10.0.0.9"])));
        // .invalid is never looked up.
        let answer = resolve_within("a.invalid", deadline, |_| panic!("looked up"));
        assert!(matches!(answer, Err(Unresolved::Failed(_))));
        // build says which name timed out.
        let error = build_on(&host(), &["-n", "vm", "-n", "slow"], None).unwrap_err();
        assert!(
            error.starts_with("timed out resolving slow (the node): "),
            "{error}"
        );
    }

    #[test]
    fn the_access_comment_says_what_a_policy_takes() {
        let text = text(&["-w", "none", "-n", "a", "-n", "b", "-n", "c"]);
        let comment: String = text
            .lines()
            .skip_while(|l| !l.starts_with("# Access policies"))
            .map_while(|l| l.strip_prefix("# "))
            .collect::<Vec<_>>()
            .join(" ");
        for part in [
            format!(
                "up to {} login names separated by blanks",
                cluster::USER_NAMES_MAX
            ),
            format!("At most {} policies", cluster::ACCESS_POLICIES_MAX),
            "one role for a user from a host".into(),
            "ANY_SERVICEGUARD_NODE: a request from any host".into(),
            "Serviceguard's default".into(),
        ] {
            assert!(comment.contains(&part), "{part:?} not in {comment:?}");
        }
        assert!(!comment.contains("Remove it"), "{comment}");
    }
}
