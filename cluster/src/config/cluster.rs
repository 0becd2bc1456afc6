//! The cluster ASCII file (`cmquerycl`/`cmgetconf` output, `cmcheckconf`/`cmapplyconf` input):
//! the parameters of serviceguard.md section 3.1, their defaults and limits, and the rules
//! between them.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::ascii::{self, Entry};
use super::{Checked, Diagnostic, Findings};

/// The longest cluster name (a quorum server tells clusters apart by name).
pub const CLUSTER_NAME_BYTES_MAX: usize = 39;
/// The longest node name.
pub const NODE_NAME_BYTES_MAX: usize = 31;
/// The most nodes in a cluster.
pub const NODES_MAX: usize = 16;
/// The most nodes a lock LUN serves.
pub const LOCK_LUN_NODES_MAX: usize = 4;
/// The most packages (MAX_CONFIGURED_PACKAGES' default and maximum).
pub const PACKAGES_MAX: u32 = 300;
/// The most capacity (and weight) names.
pub const CAPACITIES_MAX: usize = 4;
/// The reserved capacity that counts packages: a cluster that uses it has no other capacity.
pub const PACKAGE_LIMIT: &str = "package_limit";
/// The most login names one USER_NAME (or a package's user_name) lists, separated by blanks
/// ("ANY_USER, or a maximum of 8 login names": Managing Serviceguard, 13th edition, p. 195).
pub const USER_NAMES_MAX: usize = 8;
/// The most USER_NAME / USER_HOST / USER_ROLE triples in a cluster file ("up to 200 access
/// policies for each cluster": Managing Serviceguard, 17th edition, p. 231).
pub const ACCESS_POLICIES_MAX: usize = 200;

/// MEMBER_TIMEOUT's default (14 s).
pub const MEMBER_TIMEOUT_DEFAULT: Duration = Duration::from_secs(14);
/// The shortest MEMBER_TIMEOUT with two or more heartbeat networks (Serviceguard's).
pub const MEMBER_TIMEOUT_MIN_REDUNDANT: Duration = Duration::from_secs(3);
/// The shortest MEMBER_TIMEOUT cimguard accepts with two or more heartbeat networks, with a
/// warning below [`MEMBER_TIMEOUT_MIN_REDUNDANT`]: the fast profile (heartbeats every 125 ms).
pub const MEMBER_TIMEOUT_MIN_FAST: Duration = Duration::from_secs(1);
/// The shortest MEMBER_TIMEOUT with a single heartbeat network.
pub const MEMBER_TIMEOUT_MIN_SINGLE: Duration = Duration::from_secs(14);
/// The longest MEMBER_TIMEOUT.
pub const MEMBER_TIMEOUT_MAX: Duration = Duration::from_secs(300);
/// Above this MEMBER_TIMEOUT, a note: failover takes long.
pub const MEMBER_TIMEOUT_NOTE: Duration = Duration::from_secs(60);
/// The shortest MEMBER_TIMEOUT with a single IP over InfiniBand heartbeat network.
pub const MEMBER_TIMEOUT_MIN_SINGLE_IPOIB: Duration = Duration::from_secs(22);
/// The longest legacy NODE_TIMEOUT.
pub const NODE_TIMEOUT_MAX: Duration = Duration::from_secs(60);
/// The longest legacy HEARTBEAT_INTERVAL.
pub const HEARTBEAT_INTERVAL_MAX: Duration = Duration::from_secs(30);
/// The longest AUTO_START_TIMEOUT cimguard takes (a day; Serviceguard states no maximum).
pub const AUTO_START_TIMEOUT_MAX: Duration = Duration::from_secs(86_400);
/// AUTO_START_TIMEOUT's default (10 min).
pub const AUTO_START_TIMEOUT_DEFAULT: Duration = Duration::from_secs(600);
/// NETWORK_POLLING_INTERVAL's default and bounds.
pub const NETWORK_POLLING_INTERVAL_DEFAULT: Duration = Duration::from_secs(2);
/// The shortest NETWORK_POLLING_INTERVAL.
pub const NETWORK_POLLING_INTERVAL_MIN: Duration = Duration::from_secs(1);
/// The longest NETWORK_POLLING_INTERVAL.
pub const NETWORK_POLLING_INTERVAL_MAX: Duration = Duration::from_secs(30);
/// QS_POLLING_INTERVAL's default (5 min).
pub const QS_POLLING_INTERVAL_DEFAULT: Duration = Duration::from_secs(300);
/// The shortest QS_POLLING_INTERVAL.
pub const QS_POLLING_INTERVAL_MIN: Duration = Duration::from_secs(10);
/// The longest QS_POLLING_INTERVAL (2,147,483,647 µs).
pub const QS_POLLING_INTERVAL_MAX: Duration = Duration::from_micros(2_147_483_647);

/// A cluster as its ASCII file describes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClusterConfig {
    /// CLUSTER_NAME.
    pub name: String,
    /// HOSTNAME_ADDRESS_FAMILY.
    pub address_family: AddressFamily,
    /// The NODE_NAME blocks, in file order.
    pub nodes: Vec<NodeConfig>,
    /// MEMBER_TIMEOUT (or the legacy NODE_TIMEOUT).
    pub member_timeout: Duration,
    /// AUTO_START_TIMEOUT.
    pub auto_start_timeout: Duration,
    /// NETWORK_POLLING_INTERVAL.
    pub network_polling_interval: Duration,
    /// The tie-breaker.
    pub lock: ClusterLock,
    /// MAX_CONFIGURED_PACKAGES.
    pub max_configured_packages: u32,
    /// USER_NAME / USER_HOST / USER_ROLE triples, in file order.
    pub access: Vec<AccessPolicy>,
    /// WEIGHT_NAME / WEIGHT_DEFAULT: each weight's default for packages that do not set it.
    pub weight_defaults: BTreeMap<String, f64>,
}

impl ClusterConfig {
    /// The number of heartbeat networks: the k-th HEARTBEAT_IP of every node is on the k-th
    /// network (the file gives addresses, not subnets; the loopback demo puts two networks on
    /// one interface, 127.0.0.K and 127.0.1.K).
    pub fn heartbeat_networks(&self) -> usize {
        self.in_cluster()
            .next()
            .map_or(0, |(_, node)| node.heartbeat_addresses().count())
    }

    /// The node called `name` (host names compare without regard to case), unless it was
    /// deleted.
    pub fn node(&self, name: &str) -> Option<&NodeConfig> {
        self.in_cluster()
            .map(|(_, node)| node)
            .find(|node| node.name.eq_ignore_ascii_case(name))
    }

    /// The number (place in [`ClusterConfig::nodes`]) of the node called `name`, unless it
    /// was deleted.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.in_cluster()
            .find(|(_, node)| node.name.eq_ignore_ascii_case(name))
            .map(|(index, _)| index)
    }

    /// The nodes of the cluster with their numbers: every NODE_NAME but those deleted
    /// while the cluster ran ([`NodeConfig::deleted`]).
    pub fn in_cluster(&self) -> impl Iterator<Item = (usize, &NodeConfig)> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, node)| !node.deleted)
    }

    /// The NODE_NAMEs by number, empty for a node deleted while the cluster ran.
    pub fn names_by_number(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .map(|n| if n.deleted { "" } else { n.name.as_str() })
            .collect()
    }

    /// The configuration as its file says it: without the nodes deleted while the cluster
    /// ran, the others numbered in their order.
    pub fn as_written(&self) -> ClusterConfig {
        let mut config = self.clone();
        config.nodes.retain(|node| !node.deleted);
        config
    }
}

/// HOSTNAME_ADDRESS_FAMILY: which addresses the cluster's names and heartbeats use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AddressFamily {
    /// IPV4 (the default).
    Ipv4,
    /// IPV6.
    Ipv6,
    /// ANY.
    Any,
}

impl AddressFamily {
    fn admits(self, address: &IpAddr) -> bool {
        match self {
            AddressFamily::Ipv4 => address.is_ipv4(),
            AddressFamily::Ipv6 => address.is_ipv6(),
            AddressFamily::Any => true,
        }
    }

    /// The value as the file writes it.
    fn keyword(self) -> &'static str {
        match self {
            AddressFamily::Ipv4 => "IPV4",
            AddressFamily::Ipv6 => "IPV6",
            AddressFamily::Any => "ANY",
        }
    }
}

/// One NODE_NAME block.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeConfig {
    /// NODE_NAME.
    pub name: String,
    /// Its NETWORK_INTERFACE blocks, in file order.
    pub interfaces: Vec<InterfaceConfig>,
    /// CLUSTER_LOCK_LUN: this node's path to the lock LUN.
    pub lock_lun: Option<PathBuf>,
    /// CAPACITY_NAME / CAPACITY_VALUE.
    pub capacities: BTreeMap<String, f64>,
    /// Deleted while the cluster ran (cmapplyconf): the node keeps its number, which no
    /// other node takes until the cluster is halted and the numbers are made again (a
    /// number is what the members' heartbeats, lives and messages are keyed by). It is
    /// in no cluster file (never read from one, never written to one: `cmgetconf` leaves
    /// it out), is not a member, gets no heartbeats and none of its messages count; its
    /// name and addresses stay so that the node can be told it was deleted.
    #[serde(default)]
    pub deleted: bool,
}

impl NodeConfig {
    /// The node's heartbeat addresses, in file order.
    pub fn heartbeat_addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.interfaces
            .iter()
            .flat_map(|i| i.heartbeat_ips.iter().copied())
    }
}

/// One NETWORK_INTERFACE block.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InterfaceConfig {
    /// NETWORK_INTERFACE (eth0).
    pub name: String,
    /// HEARTBEAT_IP addresses.
    pub heartbeat_ips: Vec<IpAddr>,
    /// STATIONARY_IP addresses (monitored, no heartbeat).
    pub stationary_ips: Vec<IpAddr>,
}

/// The cluster's tie-breaker for a membership of exactly half the nodes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ClusterLock {
    /// None configured.
    None,
    /// A lock LUN (CLUSTER_LOCK_LUN in every node block).
    LockLun,
    /// A quorum server.
    QuorumServer {
        /// QS_HOST.
        host: String,
        /// QS_ADDR: an alternate address of the same server.
        alternate: Option<String>,
        /// QS_POLLING_INTERVAL.
        polling_interval: Duration,
        /// QS_TIMEOUT_EXTENSION.
        timeout_extension: Duration,
    },
}

/// Serviceguard's access roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Role {
    /// MONITOR: read-only.
    Monitor,
    /// PACKAGE_ADMIN: also runs, halts and changes packages.
    PackageAdmin,
    /// FULL_ADMIN: anything.
    FullAdmin,
}

/// Where a USER_NAME may connect from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum UserHost {
    /// CLUSTER_MEMBER_NODE: any node of this cluster.
    ClusterMemberNode,
    /// ANY_SERVICEGUARD_NODE: any node of any cluster.
    AnyServiceguardNode,
    /// One host.
    Host(String),
}

/// One user of a USER_NAME / USER_HOST / USER_ROLE triple: a USER_NAME that lists several
/// login names is read as one policy per name, with the triple's host and role.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccessPolicy {
    /// One login name of USER_NAME; `None` for ANY_USER.
    pub user: Option<String>,
    /// USER_HOST.
    pub host: UserHost,
    /// USER_ROLE.
    pub role: Role,
}

/// Parameters that may appear once at the cluster level.
const SINGLE: &[&str] = &[
    "CLUSTER_NAME",
    "HOSTNAME_ADDRESS_FAMILY",
    "MEMBER_TIMEOUT",
    "HEARTBEAT_INTERVAL",
    "NODE_TIMEOUT",
    "AUTO_START_TIMEOUT",
    "NETWORK_POLLING_INTERVAL",
    "QS_HOST",
    "QS_ADDR",
    "QS_POLLING_INTERVAL",
    "QS_TIMEOUT_EXTENSION",
    "MAX_CONFIGURED_PACKAGES",
];

/// Reads and checks a cluster ASCII file. `file` names it in the findings.
pub fn parse(text: &str, file: &str) -> Result<Checked<ClusterConfig>, Vec<Diagnostic>> {
    let mut findings = Findings::new(file);
    let entries = ascii::entries(text, &mut findings);
    let mut reader = Reader::new(&mut findings);
    for entry in &entries {
        reader.entry(entry);
    }
    reader.close_node();
    reader.finish_weight();
    reader.finish_user();
    let mut config = reader.build();
    reader.check(&mut config);
    drop(reader);
    findings.finish(config)
}

/// The state of a read in progress.
struct Reader<'f> {
    findings: &'f mut Findings,
    /// Cluster-level single-valued parameters: their entries.
    single: HashMap<&'static str, Entry>,
    nodes: Vec<NodeConfig>,
    /// True while the last node's block is open.
    open_node: bool,
    /// The line of each node's NODE_NAME.
    node_lines: Vec<usize>,
    access: Vec<AccessPolicy>,
    /// The USER_ROLE line of each policy of `access`.
    access_lines: Vec<usize>,
    /// The USER_* triples read, rejected ones too.
    access_triples: usize,
    /// The USER_* triple in progress: its first line and what it has so far.
    user: Option<PendingUser>,
    weights: BTreeMap<String, f64>,
    /// A WEIGHT_NAME waiting for its WEIGHT_DEFAULT.
    weight: Option<(usize, String)>,
    /// A CAPACITY_NAME waiting for its CAPACITY_VALUE.
    capacity: Option<(usize, String)>,
    /// Each address kept, with where it was read: findings about it point there.
    addresses: Vec<AddressLine>,
    /// The line of each NETWORK_INTERFACE kept, in file order (node by node, as in
    /// `nodes[..].interfaces`).
    interface_lines: Vec<usize>,
    /// The first CAPACITY_NAME line and the first WEIGHT_NAME line of each name, in file
    /// order.
    capacity_names: Vec<CapacityLine>,
}

/// A HEARTBEAT_IP or STATIONARY_IP, where it was read.
struct AddressLine {
    /// The node's index in `Reader::nodes`.
    node: usize,
    line: usize,
    /// HEARTBEAT_IP or STATIONARY_IP.
    parameter: &'static str,
    address: IpAddr,
}

/// The first CAPACITY_NAME (or the first WEIGHT_NAME) line of a name.
struct CapacityLine {
    line: usize,
    /// CAPACITY_NAME or WEIGHT_NAME.
    parameter: &'static str,
    name: String,
}

/// A USER_NAME waiting for its USER_HOST and USER_ROLE.
struct PendingUser {
    line: usize,
    /// Its login names (`None` for ANY_USER); none when the USER_NAME was rejected, so that
    /// the triple is read to its end but grants nothing.
    users: Vec<Option<String>>,
    host: Option<UserHost>,
}

impl<'f> Reader<'f> {
    fn new(findings: &'f mut Findings) -> Reader<'f> {
        Reader {
            findings,
            single: HashMap::new(),
            nodes: Vec::new(),
            open_node: false,
            node_lines: Vec::new(),
            access: Vec::new(),
            access_lines: Vec::new(),
            access_triples: 0,
            user: None,
            weights: BTreeMap::new(),
            weight: None,
            capacity: None,
            addresses: Vec::new(),
            interface_lines: Vec::new(),
            capacity_names: Vec::new(),
        }
    }

    fn entry(&mut self, entry: &Entry) {
        let parameter = entry.parameter.as_str();
        if let Some(single) = SINGLE.iter().find(|p| **p == parameter) {
            // Cluster-level parameters may follow the node blocks (cmquerycl writes some
            // there): they close the node block.
            self.close_node();
            if let Some(first) = self.single.get(single) {
                let first = first.line;
                self.findings.error(
                    entry.line,
                    parameter,
                    format!("given twice (first on line {first})"),
                );
            } else {
                self.single.insert(single, entry.clone());
            }
            return;
        }
        match parameter {
            "NODE_NAME" => {
                self.close_node();
                self.nodes.push(NodeConfig {
                    name: entry.value.clone(),
                    interfaces: Vec::new(),
                    lock_lun: None,
                    capacities: BTreeMap::new(),
                    deleted: false,
                });
                self.node_lines.push(entry.line);
                self.open_node = true;
            }
            "NETWORK_INTERFACE" => match self.open_node_mut() {
                Some(node) => {
                    node.interfaces.push(InterfaceConfig {
                        name: entry.value.clone(),
                        heartbeat_ips: Vec::new(),
                        stationary_ips: Vec::new(),
                    });
                    self.interface_lines.push(entry.line);
                }
                None => self.outside_node(entry),
            },
            "HEARTBEAT_IP" | "STATIONARY_IP" => self.address(entry),
            "CLUSTER_LOCK_LUN" => {
                let path = PathBuf::from(&entry.value);
                if !path.is_absolute() {
                    self.findings
                        .error(entry.line, parameter, "not an absolute path");
                }
                match self.open_node_mut() {
                    Some(node) if node.lock_lun.is_some() => {
                        self.findings
                            .error(entry.line, parameter, "given twice for this node");
                    }
                    Some(node) => node.lock_lun = Some(path),
                    None => self.findings.error(
                        entry.line,
                        parameter,
                        "outside a NODE_NAME block (each node names its own path to the LUN)",
                    ),
                }
            }
            "CAPACITY_NAME" => {
                if !self.open_node {
                    return self.outside_node(entry);
                }
                self.finish_capacity();
                self.name_capacity(entry, "CAPACITY_NAME");
                self.capacity = Some((entry.line, entry.value.clone()));
            }
            "CAPACITY_VALUE" => {
                let Some((_, name)) = self.capacity.take() else {
                    return self.findings.error(
                        entry.line,
                        parameter,
                        "without a CAPACITY_NAME before it",
                    );
                };
                let Some(value) = self.number(entry) else {
                    return;
                };
                if let Some(node) = self.open_node_mut() {
                    if node.capacities.insert(name.clone(), value).is_some() {
                        self.findings.error(
                            entry.line,
                            parameter,
                            format!("capacity {name} given twice for this node"),
                        );
                    }
                }
            }
            "WEIGHT_NAME" => {
                self.close_node();
                self.finish_weight();
                self.name_capacity(entry, "WEIGHT_NAME");
                self.weight = Some((entry.line, entry.value.clone()));
            }
            "WEIGHT_DEFAULT" => {
                let Some((_, name)) = self.weight.take() else {
                    return self.findings.error(
                        entry.line,
                        parameter,
                        "without a WEIGHT_NAME before it",
                    );
                };
                if let Some(value) = self.number(entry) {
                    if self.weights.insert(name.clone(), value).is_some() {
                        self.findings.error(
                            entry.line,
                            parameter,
                            format!("weight {name} given twice"),
                        );
                    }
                }
            }
            "USER_NAME" | "USER_HOST" | "USER_ROLE" => {
                self.close_node();
                self.user(entry);
            }
            "FIRST_CLUSTER_LOCK_VG"
            | "FIRST_CLUSTER_LOCK_PV"
            | "SECOND_CLUSTER_LOCK_VG"
            | "SECOND_CLUSTER_LOCK_PV" => self.findings.error(
                entry.line,
                parameter,
                "an HP-UX LVM lock disk; on Linux use CLUSTER_LOCK_LUN or QS_HOST",
            ),
            _ => self
                .findings
                .error(entry.line, parameter, "unknown parameter"),
        }
    }

    fn open_node_mut(&mut self) -> Option<&mut NodeConfig> {
        if self.open_node {
            self.nodes.last_mut()
        } else {
            None
        }
    }

    fn outside_node(&mut self, entry: &Entry) {
        self.findings
            .error(entry.line, &entry.parameter, "outside a NODE_NAME block");
    }

    fn close_node(&mut self) {
        self.finish_capacity();
        self.open_node = false;
    }

    fn finish_capacity(&mut self) {
        if let Some((line, name)) = self.capacity.take() {
            self.findings.error(
                line,
                "CAPACITY_NAME",
                format!("capacity {name} has no CAPACITY_VALUE"),
            );
        }
    }

    /// Keeps the first line naming a capacity or weight, for the checks on capacity names.
    fn name_capacity(&mut self, entry: &Entry, parameter: &'static str) {
        let known = self
            .capacity_names
            .iter()
            .any(|c| c.parameter == parameter && c.name == entry.value);
        if !known {
            self.capacity_names.push(CapacityLine {
                line: entry.line,
                parameter,
                name: entry.value.clone(),
            });
        }
    }

    fn finish_weight(&mut self) {
        if let Some((line, name)) = self.weight.take() {
            self.findings.error(
                line,
                "WEIGHT_NAME",
                format!("weight {name} has no WEIGHT_DEFAULT"),
            );
        }
    }

    fn address(&mut self, entry: &Entry) {
        let Ok(address) = entry.value.parse::<IpAddr>() else {
            return self.findings.error(
                entry.line,
                &entry.parameter,
                format!("{:?} is not an IP address", entry.value),
            );
        };
        let (heartbeat, parameter) = if entry.parameter == "HEARTBEAT_IP" {
            (true, "HEARTBEAT_IP")
        } else {
            (false, "STATIONARY_IP")
        };
        let node = self.nodes.len().saturating_sub(1);
        let kept = match self
            .open_node_mut()
            .and_then(|node| node.interfaces.last_mut())
        {
            Some(interface) if heartbeat => {
                interface.heartbeat_ips.push(address);
                true
            }
            Some(interface) => {
                interface.stationary_ips.push(address);
                true
            }
            None => false,
        };
        if kept {
            self.addresses.push(AddressLine {
                node,
                line: entry.line,
                parameter,
                address,
            });
        } else {
            self.findings.error(
                entry.line,
                &entry.parameter,
                "outside a NETWORK_INTERFACE of a NODE_NAME block",
            );
        }
    }

    fn number(&mut self, entry: &Entry) -> Option<f64> {
        match entry.value.parse::<f64>() {
            Ok(value) if value.is_finite() && value >= 0.0 => Some(value),
            _ => {
                self.findings.error(
                    entry.line,
                    &entry.parameter,
                    format!("{:?} is not a number of 0 or more", entry.value),
                );
                None
            }
        }
    }

    /// USER_NAME, USER_HOST and USER_ROLE come as triples, in that order.
    fn user(&mut self, entry: &Entry) {
        let parameter = entry.parameter.as_str();
        match parameter {
            "USER_NAME" => {
                self.finish_user();
                self.access_triples += 1;
                if self.access_triples == ACCESS_POLICIES_MAX + 1 {
                    self.findings.error(
                        entry.line,
                        parameter,
                        format!("a cluster has at most {ACCESS_POLICIES_MAX} access policies"),
                    );
                }
                let users = match user_names(&entry.value) {
                    Ok(users) => users,
                    Err(problem) => {
                        self.findings.error(entry.line, parameter, problem);
                        Vec::new()
                    }
                };
                self.user = Some(PendingUser {
                    line: entry.line,
                    users,
                    host: None,
                });
            }
            "USER_HOST" => match self.user.as_mut() {
                Some(user) if user.host.is_none() => {
                    user.host = Some(user_host(&entry.value));
                }
                _ => self
                    .findings
                    .error(entry.line, parameter, "not after a USER_NAME"),
            },
            _ => {
                let role = match entry.value.to_ascii_uppercase().as_str() {
                    "MONITOR" => Some(Role::Monitor),
                    "PACKAGE_ADMIN" => Some(Role::PackageAdmin),
                    "FULL_ADMIN" => Some(Role::FullAdmin),
                    _ => None,
                };
                let Some(role) = role else {
                    self.user = None;
                    return self.findings.error(
                        entry.line,
                        parameter,
                        format!(
                            "{:?} is not MONITOR, PACKAGE_ADMIN or FULL_ADMIN",
                            entry.value
                        ),
                    );
                };
                match self.user.take() {
                    Some(PendingUser {
                        users,
                        host: Some(host),
                        ..
                    }) => {
                        for user in users {
                            self.access.push(AccessPolicy {
                                user,
                                host: host.clone(),
                                role,
                            });
                            self.access_lines.push(entry.line);
                        }
                    }
                    _ => self.findings.error(
                        entry.line,
                        parameter,
                        "not after a USER_NAME and a USER_HOST",
                    ),
                }
            }
        }
    }

    /// One user may not be given two roles from the same USER_HOST: cmcheckconf and
    /// cmapplyconf fail ("Do not configure different roles for the same user and host":
    /// Managing HP Serviceguard A.11.20.10 for Linux, p. 156). ANY_USER beside a named user is
    /// no conflict, nor is one user given different roles from different hosts. Reported at
    /// the later triple's USER_ROLE line.
    fn check_access(&mut self, access: &[AccessPolicy]) {
        for (later, (policy, &line)) in access.iter().zip(&self.access_lines).enumerate() {
            let earlier = access[..later]
                .iter()
                .zip(&self.access_lines)
                .find(|(first, _)| {
                    first.user == policy.user
                        && same_host(&first.host, &policy.host)
                        && first.role != policy.role
                });
            if let Some((first, &first_line)) = earlier {
                let user = policy.user.as_deref().unwrap_or("ANY_USER");
                self.findings.error(
                    line,
                    "USER_ROLE",
                    format!(
                        "{user} is given {} and {} (on line {first_line}) from the same \
                         USER_HOST: one user has one role from a host",
                        role_name(policy.role),
                        role_name(first.role)
                    ),
                );
            }
        }
    }

    fn finish_user(&mut self) {
        if let Some(user) = self.user.take() {
            self.findings.error(
                user.line,
                "USER_NAME",
                "needs a USER_HOST and a USER_ROLE after it",
            );
        }
    }

    fn duration(&mut self, parameter: &'static str) -> Option<(usize, Duration)> {
        let entry = self.single.get(parameter)?.clone();
        match entry.value.parse::<u64>() {
            Ok(micros) => Some((entry.line, Duration::from_micros(micros))),
            Err(_) => {
                self.findings.error(
                    entry.line,
                    parameter,
                    format!("{:?} is not a whole number of microseconds", entry.value),
                );
                None
            }
        }
    }

    /// A duration parameter within `min..=max`, or `default` when absent.
    fn bounded(
        &mut self,
        parameter: &'static str,
        default: Duration,
        min: Duration,
        max: Duration,
    ) -> Duration {
        match self.duration(parameter) {
            None => default,
            Some((line, value)) if value < min || value > max => {
                self.findings.error(
                    line,
                    parameter,
                    format!("{} is outside {} to {}", show(value), show(min), show(max)),
                );
                default
            }
            Some((_, value)) => value,
        }
    }

    fn text(&self, parameter: &'static str) -> Option<&Entry> {
        self.single.get(parameter)
    }

    /// The configuration read, with defaults for what is absent; the checks between
    /// parameters follow in [`check`].
    fn build(&mut self) -> ClusterConfig {
        let name = match self.text("CLUSTER_NAME").cloned() {
            Some(entry) => {
                let valid = entry.value.len() <= CLUSTER_NAME_BYTES_MAX
                    && entry
                        .value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
                if !valid {
                    self.findings.error(
                        entry.line,
                        "CLUSTER_NAME",
                        format!(
                            "{:?}: at most {CLUSTER_NAME_BYTES_MAX} letters, digits, '_', '-' or '.'",
                            entry.value
                        ),
                    );
                }
                entry.value
            }
            None => {
                self.findings
                    .add(super::Severity::Error, 0, Some("CLUSTER_NAME"), "missing");
                String::new()
            }
        };
        let address_family = match self.text("HOSTNAME_ADDRESS_FAMILY").cloned() {
            None => AddressFamily::Ipv4,
            Some(entry) => match entry.value.to_ascii_uppercase().as_str() {
                "IPV4" => AddressFamily::Ipv4,
                "IPV6" => AddressFamily::Ipv6,
                "ANY" => AddressFamily::Any,
                _ => {
                    self.findings.error(
                        entry.line,
                        "HOSTNAME_ADDRESS_FAMILY",
                        format!("{:?} is not IPV4, IPV6 or ANY", entry.value),
                    );
                    AddressFamily::Ipv4
                }
            },
        };
        let member_timeout = self.member_timeout();
        let auto_start_timeout = match self.duration("AUTO_START_TIMEOUT") {
            None => AUTO_START_TIMEOUT_DEFAULT,
            Some((line, value)) if value.is_zero() || value > AUTO_START_TIMEOUT_MAX => {
                self.findings.error(
                    line,
                    "AUTO_START_TIMEOUT",
                    format!(
                        "must be more than 0 and at most {}",
                        show(AUTO_START_TIMEOUT_MAX)
                    ),
                );
                AUTO_START_TIMEOUT_DEFAULT
            }
            Some((_, value)) => value,
        };
        let network_polling_interval = self.bounded(
            "NETWORK_POLLING_INTERVAL",
            NETWORK_POLLING_INTERVAL_DEFAULT,
            NETWORK_POLLING_INTERVAL_MIN,
            NETWORK_POLLING_INTERVAL_MAX,
        );
        let lock = self.lock();
        let max_configured_packages = match self.text("MAX_CONFIGURED_PACKAGES").cloned() {
            None => PACKAGES_MAX,
            Some(entry) => match entry.value.parse::<u32>() {
                Ok(n) if n <= PACKAGES_MAX => n,
                _ => {
                    self.findings.error(
                        entry.line,
                        "MAX_CONFIGURED_PACKAGES",
                        format!(
                            "{:?} is not a whole number from 0 to {PACKAGES_MAX}",
                            entry.value
                        ),
                    );
                    PACKAGES_MAX
                }
            },
        };
        ClusterConfig {
            name,
            address_family,
            nodes: std::mem::take(&mut self.nodes),
            member_timeout,
            auto_start_timeout,
            network_polling_interval,
            lock,
            max_configured_packages,
            access: std::mem::take(&mut self.access),
            weight_defaults: std::mem::take(&mut self.weights),
        }
    }

    /// MEMBER_TIMEOUT, or the pre-A.11.19 NODE_TIMEOUT (with HEARTBEAT_INTERVAL) with a
    /// warning. Its bounds, which depend on the heartbeat networks, are checked in [`check`].
    fn member_timeout(&mut self) -> Duration {
        let member = self.duration("MEMBER_TIMEOUT");
        let node = self.duration("NODE_TIMEOUT");
        let interval = self.duration("HEARTBEAT_INTERVAL");
        for (parameter, value) in [("HEARTBEAT_INTERVAL", interval), ("NODE_TIMEOUT", node)] {
            if let Some((line, _)) = value {
                if member.is_some() {
                    self.findings.error(
                        line,
                        parameter,
                        "replaced by MEMBER_TIMEOUT, which is also given: remove it",
                    );
                } else {
                    self.findings.warning(
                        line,
                        parameter,
                        "deprecated since A.11.19: use MEMBER_TIMEOUT (NODE_TIMEOUT is taken as \
                         MEMBER_TIMEOUT; the heartbeat interval follows from it)",
                    );
                }
            }
        }
        if let (None, Some((line, interval))) = (member, interval) {
            if interval.is_zero() || interval > HEARTBEAT_INTERVAL_MAX {
                self.findings.error(
                    line,
                    "HEARTBEAT_INTERVAL",
                    format!(
                        "must be more than 0 and at most {}",
                        show(HEARTBEAT_INTERVAL_MAX)
                    ),
                );
            }
        }
        if let (None, Some((line, node))) = (member, node) {
            if node > NODE_TIMEOUT_MAX {
                self.findings.error(
                    line,
                    "NODE_TIMEOUT",
                    format!("{} is more than {}", show(node), show(NODE_TIMEOUT_MAX)),
                );
            }
        }
        if let (None, Some((line, node)), Some((_, interval))) = (member, node, interval) {
            if node < interval * 2 {
                self.findings.error(
                    line,
                    "NODE_TIMEOUT",
                    format!(
                        "{} is less than twice HEARTBEAT_INTERVAL ({})",
                        show(node),
                        show(interval)
                    ),
                );
            }
        }
        member
            .or(node)
            .map_or(MEMBER_TIMEOUT_DEFAULT, |(_, value)| value)
    }

    /// The rules between parameters, on the configuration read. Node problems are reported
    /// at the node's NODE_NAME line, interface and address problems at their own line.
    fn check(&mut self, config: &mut ClusterConfig) {
        self.check_access(&config.access);
        if config.nodes.is_empty() {
            self.findings.add(
                super::Severity::Error,
                0,
                Some("NODE_NAME"),
                "no node is configured",
            );
            return;
        }
        if config.nodes.len() > NODES_MAX {
            let line = self.node_lines.get(NODES_MAX).copied().unwrap_or(0);
            self.findings.error(
                line,
                "NODE_NAME",
                format!(
                    "{} nodes; a cluster has at most {NODES_MAX}",
                    config.nodes.len()
                ),
            );
        }
        let mut seen_names: HashMap<String, usize> = HashMap::new();
        let networks = config.heartbeat_networks();
        for (node, &line) in config.nodes.iter().zip(&self.node_lines) {
            let name = &node.name;
            let valid = !name.is_empty()
                && name.len() <= NODE_NAME_BYTES_MAX
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
            if !valid {
                self.findings.error(
                    line,
                    "NODE_NAME",
                    format!(
                        "{name:?}: a host name of at most {NODE_NAME_BYTES_MAX} letters, digits, \
                         '-', '_' or '.'"
                    ),
                );
            }
            if let Some(first) = seen_names.insert(name.to_ascii_lowercase(), line) {
                self.findings.error(
                    line,
                    "NODE_NAME",
                    format!("{name} is configured twice (first on line {first})"),
                );
            }
            if node.heartbeat_addresses().next().is_none() {
                self.findings.error(
                    line,
                    "HEARTBEAT_IP",
                    format!("node {name} has no heartbeat address"),
                );
            } else if node.heartbeat_addresses().count() != networks {
                self.findings.error(
                    line,
                    "HEARTBEAT_IP",
                    format!(
                        "node {name} has {} heartbeat addresses where {} has {networks}: every \
                         heartbeat network reaches every node",
                        node.heartbeat_addresses().count(),
                        config.nodes[0].name
                    ),
                );
            }
        }
        self.check_interfaces(config);
        self.check_addresses(config);
        self.check_timeouts(config, networks);
        let config = &*config;
        self.check_lock(config);
        self.check_capacities();
    }

    /// Every NETWORK_INTERFACE has an address; reported at the interface's line.
    fn check_interfaces(&mut self, config: &ClusterConfig) {
        let interfaces = config.nodes.iter().flat_map(|node| {
            node.interfaces
                .iter()
                .map(move |interface| (&node.name, interface))
        });
        for ((node, interface), &line) in interfaces.zip(&self.interface_lines) {
            if interface.heartbeat_ips.is_empty() && interface.stationary_ips.is_empty() {
                self.findings.error(
                    line,
                    "NETWORK_INTERFACE",
                    format!(
                        "{} of node {node} has no HEARTBEAT_IP or STATIONARY_IP",
                        interface.name
                    ),
                );
            }
        }
    }

    /// Addresses are of the cluster's family and each is given once; reported at the
    /// address's own line and parameter.
    fn check_addresses(&mut self, config: &ClusterConfig) {
        let node_name = |index: usize| config.nodes.get(index).map_or("?", |n| n.name.as_str());
        let mut seen: HashMap<IpAddr, &AddressLine> = HashMap::new();
        for address in &self.addresses {
            let name = node_name(address.node);
            if !config.address_family.admits(&address.address) {
                self.findings.error(
                    address.line,
                    address.parameter,
                    format!(
                        "address {} of node {name} is not of the cluster's address family \
                         (HOSTNAME_ADDRESS_FAMILY {})",
                        address.address,
                        config.address_family.keyword()
                    ),
                );
            }
            match seen.get(&address.address) {
                Some(first) => self.findings.error(
                    address.line,
                    address.parameter,
                    format!(
                        "address {} of node {name} is also given for node {} (line {})",
                        address.address,
                        node_name(first.node),
                        first.line
                    ),
                ),
                None => {
                    seen.insert(address.address, address);
                }
            }
        }
    }

    /// At most [`CAPACITIES_MAX`] capacities, and [`PACKAGE_LIMIT`] alone when used.
    fn check_capacities(&mut self) {
        let capacities: Vec<&CapacityLine> = self
            .capacity_names
            .iter()
            .filter(|c| c.parameter == "CAPACITY_NAME")
            .collect();
        if let Some(extra) = capacities.get(CAPACITIES_MAX) {
            self.findings.error(
                extra.line,
                "CAPACITY_NAME",
                format!(
                    "{} capacities; a cluster has at most {CAPACITIES_MAX}",
                    capacities.len()
                ),
            );
        }
        let limit = self.capacity_names.iter().find(|c| c.name == PACKAGE_LIMIT);
        let other = self.capacity_names.iter().find(|c| c.name != PACKAGE_LIMIT);
        if let (Some(limit), Some(other)) = (limit, other) {
            // Reported where the second of the two appears.
            let (later, earlier) = if limit.line > other.line {
                (limit, other)
            } else {
                (other, limit)
            };
            self.findings.error(
                later.line,
                later.parameter,
                format!(
                    "{} and {} (line {}): a cluster that uses {PACKAGE_LIMIT} has no other \
                     capacity or weight",
                    later.name, earlier.name, earlier.line
                ),
            );
        }
    }

    /// MEMBER_TIMEOUT against its bounds, which depend on the heartbeat networks. A legacy
    /// NODE_TIMEOUT below the minimum is raised to it with a warning (Serviceguard's own
    /// conversion of such files does the same).
    fn check_timeouts(&mut self, config: &mut ClusterConfig, networks: usize) {
        let legacy = !self.single.contains_key("MEMBER_TIMEOUT");
        let line = self
            .single
            .get("MEMBER_TIMEOUT")
            .or_else(|| self.single.get("NODE_TIMEOUT"))
            .map_or(0, |entry| entry.line);
        let infiniband = config
            .nodes
            .iter()
            .flat_map(|node| &node.interfaces)
            .any(|interface| {
                !interface.heartbeat_ips.is_empty() && interface.name.starts_with("ib")
            });
        let min = if networks >= 2 {
            MEMBER_TIMEOUT_MIN_REDUNDANT
        } else if infiniband {
            MEMBER_TIMEOUT_MIN_SINGLE_IPOIB
        } else {
            MEMBER_TIMEOUT_MIN_SINGLE
        };
        let timeout = config.member_timeout;
        let fast = networks >= 2 && !legacy && timeout >= MEMBER_TIMEOUT_MIN_FAST;
        if timeout < min && fast {
            self.findings.warning(
                line,
                "MEMBER_TIMEOUT",
                format!(
                    "{} is below Serviceguard's minimum of {} for {networks} heartbeat \
                     networks: accepted (down to {}), with heartbeats every {} ms; a node \
                     stalled for {} ms or more (a loaded host, a slow network) may be taken \
                     as failed",
                    show(timeout),
                    show(min),
                    show(MEMBER_TIMEOUT_MIN_FAST),
                    crate::timing::heartbeat_interval(timeout).as_millis(),
                    (timeout / 2).as_millis()
                ),
            );
        } else if timeout < min && legacy && line > 0 {
            self.findings.warning(
                line,
                "NODE_TIMEOUT",
                format!(
                    "{} is below MEMBER_TIMEOUT's minimum for {networks} heartbeat network{}: \
                     taken as {}",
                    show(timeout),
                    if networks == 1 { "" } else { "s" },
                    show(min)
                ),
            );
            config.member_timeout = min;
        } else if timeout < min {
            self.findings.add(
                super::Severity::Error,
                line,
                Some("MEMBER_TIMEOUT"),
                format!(
                    "{} is below the minimum of {} for {networks} heartbeat network{}",
                    show(timeout),
                    show(if networks >= 2 && !legacy {
                        MEMBER_TIMEOUT_MIN_FAST
                    } else {
                        min
                    }),
                    if networks == 1 { "" } else { "s" }
                ),
            );
        } else if timeout > MEMBER_TIMEOUT_MAX {
            self.findings.add(
                super::Severity::Error,
                line,
                Some("MEMBER_TIMEOUT"),
                format!(
                    "{} is above the maximum of {}",
                    show(timeout),
                    show(MEMBER_TIMEOUT_MAX)
                ),
            );
        } else if timeout > MEMBER_TIMEOUT_NOTE {
            self.findings.note(
                line,
                "MEMBER_TIMEOUT",
                format!(
                    "{}: a failed node is noticed only after this long, and failover takes longer",
                    show(timeout)
                ),
            );
        }
    }

    fn check_lock(&mut self, config: &ClusterConfig) {
        let with_lun: Vec<usize> = config
            .nodes
            .iter()
            .zip(&self.node_lines)
            .filter(|(node, _)| node.lock_lun.is_some())
            .map(|(_, line)| *line)
            .collect();
        if !with_lun.is_empty() {
            for (node, &line) in config.nodes.iter().zip(&self.node_lines) {
                if node.lock_lun.is_none() {
                    self.findings.error(
                        line,
                        "CLUSTER_LOCK_LUN",
                        format!(
                            "node {} has no path to the lock LUN that other nodes use",
                            node.name
                        ),
                    );
                }
            }
            if config.nodes.len() > LOCK_LUN_NODES_MAX {
                self.findings.error(
                    with_lun[0],
                    "CLUSTER_LOCK_LUN",
                    format!(
                        "a lock LUN serves at most {LOCK_LUN_NODES_MAX} nodes; this cluster has {}: \
                         use a quorum server",
                        config.nodes.len()
                    ),
                );
            }
        }
        if config.nodes.len() == 2 && config.lock == ClusterLock::None {
            self.findings.error(
                self.node_lines[1],
                "NODE_NAME",
                "a two-node cluster needs a cluster lock (CLUSTER_LOCK_LUN or QS_HOST): when \
                 one node is lost the other has exactly half",
            );
        }
    }

    fn lock(&mut self) -> ClusterLock {
        let host = self.text("QS_HOST").cloned();
        let alternate = self.text("QS_ADDR").cloned();
        let polling_interval = self.bounded(
            "QS_POLLING_INTERVAL",
            QS_POLLING_INTERVAL_DEFAULT,
            QS_POLLING_INTERVAL_MIN,
            QS_POLLING_INTERVAL_MAX,
        );
        let timeout_extension = match self.duration("QS_TIMEOUT_EXTENSION") {
            None => Duration::ZERO,
            Some((line, value)) if value > MEMBER_TIMEOUT_MAX => {
                self.findings.error(
                    line,
                    "QS_TIMEOUT_EXTENSION",
                    format!(
                        "{} is more than {}: it adds directly to failover time",
                        show(value),
                        show(MEMBER_TIMEOUT_MAX)
                    ),
                );
                Duration::ZERO
            }
            Some((_, value)) => value,
        };
        let any_lun = self.nodes.iter().any(|node| node.lock_lun.is_some());
        match host {
            Some(host) => {
                if any_lun {
                    self.findings.error(
                        host.line,
                        "QS_HOST",
                        "a cluster has one lock: a quorum server or a lock LUN, not both",
                    );
                }
                ClusterLock::QuorumServer {
                    host: host.value,
                    alternate: alternate.map(|entry| entry.value),
                    polling_interval,
                    timeout_extension,
                }
            }
            None => {
                for parameter in ["QS_ADDR", "QS_POLLING_INTERVAL", "QS_TIMEOUT_EXTENSION"] {
                    if let Some(entry) = self.text(parameter) {
                        let line = entry.line;
                        self.findings.error(line, parameter, "without QS_HOST");
                    }
                }
                if any_lun {
                    ClusterLock::LockLun
                } else {
                    ClusterLock::None
                }
            }
        }
    }
}

/// A duration as Serviceguard's files state it, and in seconds.
fn show(duration: Duration) -> String {
    format!("{} us ({} s)", duration.as_micros(), duration.as_secs_f64())
}

/// The users of a USER_NAME value (a package's user_name too): ANY_USER (`None`), or up to
/// [`USER_NAMES_MAX`] login names separated by blanks, as `USER_NAME john fred patrick`
/// (Managing Serviceguard, 13th edition, p. 195; the package's user_name takes the same
/// values, 14th edition, p. 298). Or why the value is none of these.
pub(crate) fn user_names(value: &str) -> Result<Vec<Option<String>>, String> {
    let names: Vec<&str> = value.split_ascii_whitespace().collect();
    if names.is_empty() {
        return Err("no login name".to_owned());
    }
    if names
        .iter()
        .any(|name| name.eq_ignore_ascii_case("ANY_USER"))
    {
        // "either ANY_USER, or a maximum of 8 login names": the wildcard is not a name.
        return if names.len() == 1 {
            Ok(vec![None])
        } else {
            Err(format!(
                "{value:?}: ANY_USER stands alone, not in a list of login names"
            ))
        };
    }
    if names.len() > USER_NAMES_MAX {
        return Err(format!(
            "{} login names; one line lists at most {USER_NAMES_MAX} (give the others a \
             line of their own)",
            names.len()
        ));
    }
    Ok(names
        .into_iter()
        .map(|name| Some(name.to_owned()))
        .collect())
}

/// Whether two USER_HOSTs are the same value (host names compare without case, as the name
/// service compares them).
/// A USER_HOST (or a package's user_host) value: its keywords in any case, else a host.
pub(crate) fn user_host(value: &str) -> UserHost {
    match value.to_ascii_uppercase().as_str() {
        "CLUSTER_MEMBER_NODE" => UserHost::ClusterMemberNode,
        "ANY_SERVICEGUARD_NODE" => UserHost::AnyServiceguardNode,
        _ => UserHost::Host(value.to_owned()),
    }
}

/// Whether two USER_HOSTs name the same hosts (host names in any case).
pub(crate) fn same_host(first: &UserHost, second: &UserHost) -> bool {
    match (first, second) {
        (UserHost::Host(first), UserHost::Host(second)) => first.eq_ignore_ascii_case(second),
        _ => first == second,
    }
}

/// A role as the file spells it.
pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Monitor => "MONITOR",
        Role::PackageAdmin => "PACKAGE_ADMIN",
        Role::FullAdmin => "FULL_ADMIN",
    }
}
