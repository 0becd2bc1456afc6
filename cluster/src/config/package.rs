//! Modular package configuration files (`cmmakepkg` output, `cmcheckconf -P`/`cmapplyconf -P`
//! input): the parameters of serviceguard.md section 5.1, their defaults and limits, and the
//! rules between them. The rules that involve the cluster or the other packages (node names,
//! weights against capacities, unique priorities, dependency targets, the cluster's limits) are
//! [`check_set`]'s; [`Lines`] keeps where each parameter was read so that those findings too
//! point at `file:line`.

use std::collections::{btree_map, BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use super::ascii::{self, Entry};
use super::cluster::{role_name, same_host, user_host, user_names, ClusterConfig};
use super::{Checked, Diagnostic, Findings, Severity};

/// The longest package, service and generic resource name.
pub const NAME_BYTES_MAX: usize = 39;
/// The longest package_description.
pub const DESCRIPTION_BYTES_MAX: usize = 80;
/// The longest script and service timeout, in seconds.
pub const TIMEOUT_SECONDS_MAX: u64 = 4294;
/// The lowest and highest priority (lower numbers are higher priorities).
pub const PRIORITY_RANGE: std::ops::RangeInclusive<u32> = 1..=3000;
/// The highest generic_resource_up_criteria value.
pub const UP_CRITERIA_MAX: i64 = 2_147_483_647;
/// The default package_description.
pub const DESCRIPTION_DEFAULT: &str = "Serviceguard Package";
/// The most generic resources in a cluster (distinct names, across all its packages).
pub const GENERIC_RESOURCES_MAX: usize = 100;
/// The base modules (one per package), with the package_type each one makes.
pub const BASE_MODULES: [(&str, PackageType); 3] = [
    ("sg/failover", PackageType::Failover),
    ("sg/multi_node", PackageType::MultiNode),
    ("sg/system_multi_node", PackageType::SystemMultiNode),
];

/// script_log_file when the file does not set it: `$SGRUN/log/<package_name>.log` (the
/// variable is left for the package's environment to expand, like those of service_cmd).
pub fn script_log_file_default(package_name: &str) -> String {
    format!("$SGRUN/log/{package_name}.log")
}

/// A package as its modular file describes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PackageConfig {
    /// package_name.
    pub name: String,
    /// package_description.
    pub description: String,
    /// module_name lines (with their module_version), as written.
    pub modules: Vec<(String, Option<String>)>,
    /// package_type.
    pub package_type: PackageType,
    /// node_name lines in preference order; empty for `*` (every node, in cluster order).
    pub nodes: Vec<String>,
    /// auto_run: global switching.
    pub auto_run: bool,
    /// node_fail_fast_enabled.
    pub node_fail_fast: bool,
    /// run_script_timeout; `None` for no_timeout.
    pub run_script_timeout: Option<Duration>,
    /// halt_script_timeout; `None` for no_timeout.
    pub halt_script_timeout: Option<Duration>,
    /// successor_halt_timeout; `None` for no_timeout.
    pub successor_halt_timeout: Option<Duration>,
    /// script_log_file; [`script_log_file_default`] when the file does not set it.
    pub script_log_file: String,
    /// log_level (0-5).
    pub log_level: u8,
    /// failover_policy.
    pub failover_policy: FailoverPolicy,
    /// failback_policy.
    pub failback_policy: FailbackPolicy,
    /// priority; `None` for no_priority.
    pub priority: Option<u32>,
    /// Dependencies, in file order.
    pub dependencies: Vec<Dependency>,
    /// weight_name / weight_value.
    pub weights: BTreeMap<String, f64>,
    /// local_lan_failover_allowed.
    pub local_lan_failover_allowed: bool,
    /// monitored_subnet lines, with their access (FULL unless PARTIAL).
    pub monitored_subnets: Vec<(IpAddr, SubnetAccess)>,
    /// ip_subnet lines with the ip_address lines after each.
    pub ip_subnets: Vec<(IpAddr, Vec<IpAddr>)>,
    /// Services, in file order.
    pub services: Vec<Service>,
    /// Generic resources, in file order.
    pub generic_resources: Vec<GenericResource>,
    /// external_pre_script lines.
    pub external_pre_scripts: Vec<String>,
    /// external_script lines.
    pub external_scripts: Vec<String>,
    /// user_name / user_host / user_role (PACKAGE_ADMIN for this package): one entry per
    /// login name of a user_name (`None` for ANY_USER), with its user_host.
    pub access: Vec<(Option<String>, String)>,
    /// Where the parameters were read, for findings made after reading ([`check_set`]).
    pub lines: Lines,
}

impl PackageConfig {
    /// True when the package may run on `node` (host names compare without regard to case).
    pub fn may_run_on(&self, node: &str) -> bool {
        self.nodes.is_empty() || self.nodes.iter().any(|n| n.eq_ignore_ascii_case(node))
    }
}

/// Where a package's parameters were read, so that findings made after reading (by
/// [`check_set`]) point at `file:line` like those of [`parse`]. Each line is kept under its
/// parameter (upper case, as [`Diagnostic::parameter`] spells it) and the item it belongs to:
///
/// - parameters given once (package_name, package_type, priority, ...): the item `""`;
/// - node_name and module_name: the value as written (`*` for every node);
/// - dependency_name, dependency_condition and dependency_location: the dependency's name;
///   likewise weight_* (the weight's name), service_* (the service's name) and
///   generic_resource_* (the resource's name);
/// - monitored_subnet and monitored_subnet_access: the subnet as [`IpAddr`] displays it.
///
/// Other parameters are not kept. When a parameter is given twice for the same item (an error
/// [`parse`] reports), the first line is kept. A configuration built in code has no lines:
/// its findings then have line 0, the file as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lines {
    /// (parameter, item) -> line.
    lines: BTreeMap<(String, String), usize>,
}

impl Lines {
    /// The line `parameter` of `item` was read from, if it was read from a file.
    pub fn line(&self, parameter: &str, item: &str) -> Option<usize> {
        self.lines
            .get(&(parameter.to_ascii_uppercase(), item.to_owned()))
            .copied()
    }

    /// Keeps `line` as where `parameter` of `item` was read, unless a line is already kept
    /// for them: then that earlier line is returned and kept.
    pub fn record(&mut self, parameter: &str, item: &str, line: usize) -> Option<usize> {
        match self
            .lines
            .entry((parameter.to_ascii_uppercase(), item.to_owned()))
        {
            btree_map::Entry::Occupied(first) => Some(*first.get()),
            btree_map::Entry::Vacant(slot) => {
                slot.insert(line);
                None
            }
        }
    }
}

/// package_type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PackageType {
    /// failover: runs on one node at a time.
    Failover,
    /// multi_node: runs on several nodes at once.
    MultiNode,
    /// system_multi_node: runs on every node.
    SystemMultiNode,
}

/// failover_policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FailoverPolicy {
    /// configured_node: the next node in node_name order.
    ConfiguredNode,
    /// min_package_node: the eligible node running the fewest packages.
    MinPackageNode,
}

/// failback_policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FailbackPolicy {
    /// manual: stays where it is.
    Manual,
    /// automatic: returns to its primary node when that node rejoins.
    Automatic,
}

/// The keywords of the package file, as cmviewcl shows them too.
macro_rules! keywords {
    ($($kind:ident { $($variant:ident => $word:literal),+ $(,)? })+) => {
        $(impl $kind {
            /// The keyword, as the package file and cmviewcl spell it.
            pub fn keyword(self) -> &'static str {
                match self {
                    $($kind::$variant => $word),+
                }
            }
        })+
    };
}

keywords! {
    PackageType {
        Failover => "failover",
        MultiNode => "multi_node",
        SystemMultiNode => "system_multi_node",
    }
    FailoverPolicy {
        ConfiguredNode => "configured_node",
        MinPackageNode => "min_package_node",
    }
    FailbackPolicy {
        Manual => "manual",
        Automatic => "automatic",
    }
    DependencyCondition {
        Up => "up",
        Down => "down",
    }
    DependencyLocation {
        SameNode => "same_node",
        AnyNode => "any_node",
        DifferentNode => "different_node",
        AllNodes => "all_nodes",
    }
}

/// monitored_subnet_access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SubnetAccess {
    /// FULL: every node of the package is on the subnet.
    Full,
    /// PARTIAL: some nodes only.
    Partial,
}

/// One dependency_name / dependency_condition / dependency_location triple.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dependency {
    /// dependency_name.
    pub name: String,
    /// The package depended on.
    pub package: String,
    /// up or down.
    pub condition: DependencyCondition,
    /// dependency_location.
    pub location: DependencyLocation,
}

/// `<package> = up` or `= down`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DependencyCondition {
    /// The other package must be up.
    Up,
    /// The other package must be down.
    Down,
}

/// dependency_location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DependencyLocation {
    /// same_node (the default).
    SameNode,
    /// any_node (up only).
    AnyNode,
    /// different_node (up only).
    DifferentNode,
    /// all_nodes (down only).
    AllNodes,
}

/// One service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Service {
    /// service_name.
    pub name: String,
    /// service_cmd.
    pub command: String,
    /// service_restart.
    pub restart: ServiceRestart,
    /// service_fail_fast_enabled.
    pub fail_fast: bool,
    /// service_halt_timeout.
    pub halt_timeout: Duration,
}

/// service_restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ServiceRestart {
    /// none: a failure fails the package.
    None,
    /// unlimited.
    Unlimited,
    /// This many restarts.
    Times(u32),
}

/// One generic resource of the package.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GenericResource {
    /// generic_resource_name.
    pub name: String,
    /// generic_resource_evaluation_type.
    pub evaluation: Evaluation,
    /// generic_resource_up_criteria: present for an extended resource.
    pub up_criteria: Option<UpCriteria>,
}

/// generic_resource_evaluation_type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Evaluation {
    /// during_package_start (the default).
    DuringPackageStart,
    /// before_package_start.
    BeforePackageStart,
}

/// generic_resource_up_criteria: the resource is up while `value <operator> bound`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UpCriteria {
    /// The comparison.
    pub operator: Comparison,
    /// The bound (1 to 2,147,483,647).
    pub bound: i64,
}

/// The operators of generic_resource_up_criteria.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Comparison {
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
    /// `>`
    Greater,
    /// `<`
    Less,
    /// `>=`
    GreaterOrEqual,
    /// `<=`
    LessOrEqual,
}

/// As the package file gives it: the operator, then the bound (`<80`, `>=10`).
impl std::fmt::Display for UpCriteria {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let operator = match self.operator {
            Comparison::Equal => "==",
            Comparison::NotEqual => "!=",
            Comparison::Greater => ">",
            Comparison::Less => "<",
            Comparison::GreaterOrEqual => ">=",
            Comparison::LessOrEqual => "<=",
        };
        write!(f, "{operator}{}", self.bound)
    }
}

impl UpCriteria {
    /// True when `value` meets the criteria.
    pub fn holds(&self, value: i64) -> bool {
        match self.operator {
            Comparison::Equal => value == self.bound,
            Comparison::NotEqual => value != self.bound,
            Comparison::Greater => value > self.bound,
            Comparison::Less => value < self.bound,
            Comparison::GreaterOrEqual => value >= self.bound,
            Comparison::LessOrEqual => value <= self.bound,
        }
    }
}

/// A dependency_name read, with its dependency_condition once read: (line, name, (package,
/// condition)).
type PendingDependency = (usize, String, Option<(String, DependencyCondition)>);

/// Parameters that may appear once.
const SINGLE: &[&str] = &[
    "PACKAGE_NAME",
    "PACKAGE_DESCRIPTION",
    "PACKAGE_TYPE",
    "AUTO_RUN",
    "NODE_FAIL_FAST_ENABLED",
    "RUN_SCRIPT_TIMEOUT",
    "HALT_SCRIPT_TIMEOUT",
    "SUCCESSOR_HALT_TIMEOUT",
    "SCRIPT_LOG_FILE",
    "LOG_LEVEL",
    "FAILOVER_POLICY",
    "FAILBACK_POLICY",
    "PRIORITY",
    "LOCAL_LAN_FAILOVER_ALLOWED",
];

/// Reads and checks a modular package file. `file` names it in the findings.
pub fn parse(text: &str, file: &str) -> Result<Checked<PackageConfig>, Vec<Diagnostic>> {
    let mut findings = Findings::new(file);
    let entries = ascii::entries(text, &mut findings);
    let config = read(&entries, &mut findings);
    findings.finish(config)
}

fn read(entries: &[Entry], findings: &mut Findings) -> PackageConfig {
    let mut config = PackageConfig {
        name: String::new(),
        description: DESCRIPTION_DEFAULT.into(),
        modules: Vec::new(),
        package_type: PackageType::Failover,
        nodes: Vec::new(),
        auto_run: true,
        node_fail_fast: false,
        run_script_timeout: None,
        halt_script_timeout: None,
        successor_halt_timeout: None,
        script_log_file: String::new(),
        log_level: 0,
        failover_policy: FailoverPolicy::ConfiguredNode,
        failback_policy: FailbackPolicy::Manual,
        priority: None,
        dependencies: Vec::new(),
        weights: BTreeMap::new(),
        local_lan_failover_allowed: true,
        monitored_subnets: Vec::new(),
        ip_subnets: Vec::new(),
        services: Vec::new(),
        generic_resources: Vec::new(),
        external_pre_scripts: Vec::new(),
        external_scripts: Vec::new(),
        access: Vec::new(),
        lines: Lines::default(),
    };
    let mut star_line = None;
    let mut node_lines: HashMap<String, usize> = HashMap::new();
    // The group (service, dependency, ...) that attribute lines attach to.
    let mut dependency: Option<PendingDependency> = None;
    let mut weight: Option<(usize, String)> = None;
    // A user_name waiting for its user_host and user_role: its line, its users (none when it
    // was rejected) and its host.
    let mut user: Option<(usize, Vec<Option<String>>, Option<String>)> = None;
    // The monitored_subnet that monitored_subnet_access lines attach to: whether its address
    // was read (a wrong one is reported already), and the line of its access once given.
    let mut subnet: Option<(bool, Option<usize>)> = None;
    let mut halt_sum = Duration::ZERO;
    // The attribute lines already given for the current service and generic resource.
    let mut service_seen: HashSet<&'static str> = HashSet::new();
    let mut resource_seen: HashSet<&'static str> = HashSet::new();

    for entry in entries {
        let parameter = entry.parameter.as_str();
        let value = entry.value.as_str();
        let line = entry.line;
        if SINGLE.contains(&parameter) {
            if let Some(first) = config.lines.record(parameter, "", line) {
                findings.error(
                    line,
                    parameter,
                    format!("given twice (first on line {first})"),
                );
                continue;
            }
        }
        match parameter {
            "PACKAGE_NAME" => {
                if !valid_name(value) {
                    findings.error(
                        line,
                        parameter,
                        format!(
                            "{value:?}: at most {NAME_BYTES_MAX} letters, digits, '.', '-' or \
                             '_', starting and ending with a letter or digit"
                        ),
                    );
                }
                config.name = value.to_owned();
            }
            "PACKAGE_DESCRIPTION" => {
                if value.len() > DESCRIPTION_BYTES_MAX {
                    findings.error(
                        line,
                        parameter,
                        format!("longer than {DESCRIPTION_BYTES_MAX} bytes"),
                    );
                }
                config.description = value.to_owned();
            }
            "MODULE_NAME" => {
                config.lines.record(parameter, value, line);
                config.modules.push((value.to_owned(), None));
            }
            "MODULE_VERSION" => match config.modules.last_mut() {
                Some((_, version @ None)) => *version = Some(value.to_owned()),
                _ => findings.error(line, parameter, "not after a module_name"),
            },
            "PACKAGE_TYPE" => {
                config.package_type = match value.to_ascii_lowercase().as_str() {
                    "failover" => PackageType::Failover,
                    "multi_node" => PackageType::MultiNode,
                    "system_multi_node" => PackageType::SystemMultiNode,
                    _ => {
                        findings.error(
                            line,
                            parameter,
                            format!("{value:?} is not failover, multi_node or system_multi_node"),
                        );
                        PackageType::Failover
                    }
                }
            }
            "NODE_NAME" => {
                config.lines.record(parameter, value, line);
                if value == "*" {
                    star_line = Some(line);
                } else if let Some(first) = node_lines.insert(value.to_ascii_lowercase(), line) {
                    findings.error(
                        line,
                        parameter,
                        format!("{value} is listed twice (first on line {first})"),
                    );
                } else {
                    config.nodes.push(value.to_owned());
                }
            }
            "AUTO_RUN" => config.auto_run = yes_no(entry, findings, true),
            "NODE_FAIL_FAST_ENABLED" => config.node_fail_fast = yes_no(entry, findings, false),
            "LOCAL_LAN_FAILOVER_ALLOWED" => {
                config.local_lan_failover_allowed = yes_no(entry, findings, true);
            }
            // A script that must finish in 0 seconds could never run: Serviceguard takes a
            // positive number of seconds, or no_timeout. 0 means "do not wait" for successors.
            "RUN_SCRIPT_TIMEOUT" => config.run_script_timeout = timeout(entry, 1, findings),
            "HALT_SCRIPT_TIMEOUT" => config.halt_script_timeout = timeout(entry, 1, findings),
            "SUCCESSOR_HALT_TIMEOUT" => {
                config.successor_halt_timeout = timeout(entry, 0, findings);
            }
            "SCRIPT_LOG_FILE" => config.script_log_file = value.to_owned(),
            "LOG_LEVEL" => match value.parse::<u8>() {
                Ok(level) if level <= 5 => config.log_level = level,
                _ => findings.error(line, parameter, format!("{value:?} is not 0 to 5")),
            },
            "FAILOVER_POLICY" => match value.to_ascii_lowercase().as_str() {
                "configured_node" => config.failover_policy = FailoverPolicy::ConfiguredNode,
                "min_package_node" => config.failover_policy = FailoverPolicy::MinPackageNode,
                _ => findings.error(
                    line,
                    parameter,
                    format!("{value:?} is not configured_node or min_package_node"),
                ),
            },
            "FAILBACK_POLICY" => match value.to_ascii_lowercase().as_str() {
                "manual" => config.failback_policy = FailbackPolicy::Manual,
                "automatic" => config.failback_policy = FailbackPolicy::Automatic,
                _ => findings.error(
                    line,
                    parameter,
                    format!("{value:?} is not manual or automatic"),
                ),
            },
            "PRIORITY" => {
                if value.eq_ignore_ascii_case("no_priority") {
                    config.priority = None;
                } else {
                    match value.parse::<u32>() {
                        Ok(n) if PRIORITY_RANGE.contains(&n) => config.priority = Some(n),
                        _ => findings.error(
                            line,
                            parameter,
                            format!("{value:?} is not no_priority or 1 to 3000"),
                        ),
                    }
                }
            }
            "DEPENDENCY_NAME" => {
                finish_dependency(&mut dependency, &mut config, findings);
                if config.dependencies.iter().any(|d| d.name == value) {
                    findings.error(line, parameter, format!("{value} is given twice"));
                }
                config.lines.record(parameter, value, line);
                dependency = Some((line, value.to_owned(), None));
            }
            "DEPENDENCY_CONDITION" => match dependency.as_mut() {
                Some((_, name, condition @ None)) => match parse_condition(value) {
                    Some(parsed) => {
                        config.lines.record(parameter, name, line);
                        *condition = Some(parsed);
                    }
                    None => findings.error(
                        line,
                        parameter,
                        format!("{value:?} is not \"<package> = up\" or \"<package> = down\""),
                    ),
                },
                _ => findings.error(line, parameter, "not after a dependency_name"),
            },
            "DEPENDENCY_LOCATION" => {
                let location = match value.to_ascii_lowercase().as_str() {
                    "same_node" => Some(DependencyLocation::SameNode),
                    "any_node" => Some(DependencyLocation::AnyNode),
                    "different_node" => Some(DependencyLocation::DifferentNode),
                    "all_nodes" => Some(DependencyLocation::AllNodes),
                    _ => None,
                };
                match (dependency.take(), location) {
                    (Some((_, name, Some((package, condition)))), Some(location)) => {
                        let allowed = match condition {
                            DependencyCondition::Up => location != DependencyLocation::AllNodes,
                            DependencyCondition::Down => matches!(
                                location,
                                DependencyLocation::SameNode | DependencyLocation::AllNodes
                            ),
                        };
                        if !allowed {
                            findings.error(
                                line,
                                parameter,
                                format!("{value} does not go with a {condition:?} dependency"),
                            );
                        }
                        config.lines.record(parameter, &name, line);
                        config.dependencies.push(Dependency {
                            name,
                            package,
                            condition,
                            location,
                        });
                    }
                    (_, None) => findings.error(
                        line,
                        parameter,
                        format!(
                            "{value:?} is not same_node, any_node, different_node or all_nodes"
                        ),
                    ),
                    (_, Some(_)) => findings.error(
                        line,
                        parameter,
                        "not after a dependency_name and a dependency_condition",
                    ),
                }
            }
            "WEIGHT_NAME" => {
                if let Some((line, name)) = weight.take() {
                    findings.error(line, "WEIGHT_NAME", format!("{name} has no weight_value"));
                }
                config.lines.record(parameter, value, line);
                weight = Some((line, value.to_owned()));
            }
            "WEIGHT_VALUE" => match (weight.take(), value.parse::<f64>()) {
                (Some((_, name)), Ok(number)) if number.is_finite() && number >= 0.0 => {
                    config.lines.record(parameter, &name, line);
                    if config.weights.insert(name.clone(), number).is_some() {
                        findings.error(line, parameter, format!("weight {name} is given twice"));
                    }
                }
                (Some(_), _) => {
                    findings.error(
                        line,
                        parameter,
                        format!("{value:?} is not a number of 0 or more"),
                    );
                }
                (None, _) => findings.error(line, parameter, "not after a weight_name"),
            },
            "MONITORED_SUBNET" => match value.parse::<IpAddr>() {
                Ok(address) => {
                    subnet = Some((true, None));
                    config.lines.record(parameter, &address.to_string(), line);
                    config.monitored_subnets.push((address, SubnetAccess::Full));
                }
                Err(_) => {
                    subnet = Some((false, None));
                    findings.error(line, parameter, format!("{value:?} is not an address"));
                }
            },
            "MONITORED_SUBNET_ACCESS" => {
                let Some((read, access_line)) = subnet.as_mut() else {
                    findings.error(line, parameter, "not after a monitored_subnet");
                    continue;
                };
                // A subnet that was read is the last one kept; a wrong one is reported already.
                let Some((address, slot)) = config.monitored_subnets.last_mut().filter(|_| *read)
                else {
                    continue;
                };
                if let Some(first) = *access_line {
                    findings.error(
                        line,
                        parameter,
                        format!(
                            "given twice for monitored_subnet {address} (first on line {first})"
                        ),
                    );
                    continue;
                }
                *access_line = Some(line);
                config.lines.record(parameter, &address.to_string(), line);
                match value.to_ascii_uppercase().as_str() {
                    "FULL" => *slot = SubnetAccess::Full,
                    "PARTIAL" => *slot = SubnetAccess::Partial,
                    _ => {
                        findings.error(
                            line,
                            parameter,
                            format!("{value:?} is not FULL or PARTIAL"),
                        );
                    }
                }
            }
            "IP_SUBNET" => match value.parse::<IpAddr>() {
                Ok(subnet) => config.ip_subnets.push((subnet, Vec::new())),
                Err(_) => findings.error(line, parameter, format!("{value:?} is not an address")),
            },
            "IP_ADDRESS" => match (config.ip_subnets.last_mut(), value.parse::<IpAddr>()) {
                (Some((_, addresses)), Ok(address)) => addresses.push(address),
                (None, _) => findings.error(line, parameter, "not after an ip_subnet"),
                (_, Err(_)) => {
                    findings.error(line, parameter, format!("{value:?} is not an address"));
                }
            },
            "SERVICE_NAME" => {
                service_seen.clear();
                check_item_name(&mut config.lines, findings, parameter, value, line);
                config.services.push(Service {
                    name: value.to_owned(),
                    command: String::new(),
                    restart: ServiceRestart::None,
                    fail_fast: false,
                    halt_timeout: Duration::ZERO,
                });
            }
            "SERVICE_CMD"
            | "SERVICE_RESTART"
            | "SERVICE_FAIL_FAST_ENABLED"
            | "SERVICE_HALT_TIMEOUT" => {
                let Some(service) = config.services.last_mut() else {
                    findings.error(line, parameter, "not after a service_name");
                    continue;
                };
                if !service_seen.insert(attribute_name(parameter)) {
                    findings.error(
                        line,
                        parameter,
                        format!("given twice for service {}", service.name),
                    );
                    continue;
                }
                config.lines.record(parameter, &service.name, line);
                match parameter {
                    "SERVICE_CMD" => service.command = value.to_owned(),
                    "SERVICE_RESTART" => {
                        service.restart = match value.to_ascii_lowercase().as_str() {
                            "none" => ServiceRestart::None,
                            "unlimited" => ServiceRestart::Unlimited,
                            number => match number.parse::<u32>() {
                                Ok(n) => ServiceRestart::Times(n),
                                Err(_) => {
                                    findings.error(
                                        line,
                                        parameter,
                                        format!("{value:?} is not none, unlimited or a count"),
                                    );
                                    ServiceRestart::None
                                }
                            },
                        }
                    }
                    "SERVICE_FAIL_FAST_ENABLED" => {
                        service.fail_fast = yes_no(entry, findings, false);
                    }
                    _ => match seconds(value) {
                        Some(timeout) => {
                            service.halt_timeout = timeout;
                            halt_sum += timeout;
                        }
                        None => findings.error(
                            line,
                            parameter,
                            format!("{value:?} is not 0 to {TIMEOUT_SECONDS_MAX} seconds"),
                        ),
                    },
                }
            }
            "GENERIC_RESOURCE_NAME" => {
                resource_seen.clear();
                check_item_name(&mut config.lines, findings, parameter, value, line);
                config.generic_resources.push(GenericResource {
                    name: value.to_owned(),
                    evaluation: Evaluation::DuringPackageStart,
                    up_criteria: None,
                });
            }
            "GENERIC_RESOURCE_EVALUATION_TYPE" | "GENERIC_RESOURCE_UP_CRITERIA" => {
                let Some(resource) = config.generic_resources.last_mut() else {
                    findings.error(line, parameter, "not after a generic_resource_name");
                    continue;
                };
                if !resource_seen.insert(attribute_name(parameter)) {
                    findings.error(
                        line,
                        parameter,
                        format!("given twice for generic resource {}", resource.name),
                    );
                    continue;
                }
                config.lines.record(parameter, &resource.name, line);
                if parameter == "GENERIC_RESOURCE_EVALUATION_TYPE" {
                    match value.to_ascii_lowercase().as_str() {
                        "during_package_start" => {
                            resource.evaluation = Evaluation::DuringPackageStart;
                        }
                        "before_package_start" => {
                            resource.evaluation = Evaluation::BeforePackageStart;
                        }
                        _ => findings.error(
                            line,
                            parameter,
                            format!(
                                "{value:?} is not during_package_start or before_package_start"
                            ),
                        ),
                    }
                } else {
                    match parse_up_criteria(value) {
                        Some(criteria) => resource.up_criteria = Some(criteria),
                        None => findings.error(
                            line,
                            parameter,
                            format!(
                                "{value:?} is not an operator (== != > < >= <=) and a whole \
                                 number from 1 to {UP_CRITERIA_MAX}"
                            ),
                        ),
                    }
                }
            }
            "EXTERNAL_PRE_SCRIPT" => config.external_pre_scripts.push(value.to_owned()),
            "EXTERNAL_SCRIPT" => config.external_scripts.push(value.to_owned()),
            "USER_NAME" => {
                if let Some((line, _, _)) = user.take() {
                    findings.error(
                        line,
                        "USER_NAME",
                        "needs a user_host and a user_role after it",
                    );
                }
                let users = user_names(value).unwrap_or_else(|problem| {
                    findings.error(line, parameter, problem);
                    Vec::new()
                });
                user = Some((line, users, None));
            }
            "USER_HOST" => match user.as_mut() {
                Some((_, _, host @ None)) => *host = Some(value.to_owned()),
                _ => findings.error(line, parameter, "not after a user_name"),
            },
            "USER_ROLE" => {
                if !value.eq_ignore_ascii_case("PACKAGE_ADMIN") {
                    findings.error(
                        line,
                        parameter,
                        format!("{value:?}: a package file grants PACKAGE_ADMIN only"),
                    );
                }
                match user.take() {
                    Some((user_line, users, Some(host))) => {
                        for name in users.iter().flatten() {
                            config.lines.record("USER_NAME", name, user_line);
                        }
                        config
                            .access
                            .extend(users.into_iter().map(|name| (name, host.clone())));
                    }
                    _ => findings.error(line, parameter, "not after a user_name and a user_host"),
                }
            }
            _ => findings.error(line, parameter, "unknown parameter"),
        }
    }
    finish_dependency(&mut dependency, &mut config, findings);
    if let Some((line, name)) = weight {
        findings.error(line, "WEIGHT_NAME", format!("{name} has no weight_value"));
    }
    if let Some((line, _, _)) = user {
        findings.error(
            line,
            "USER_NAME",
            "needs a user_host and a user_role after it",
        );
    }
    if config.lines.line("SCRIPT_LOG_FILE", "").is_none() {
        config.script_log_file = script_log_file_default(&config.name);
    }
    check(&config, star_line, halt_sum, findings);
    config
}

/// The rules between the parameters of one package.
fn check(
    config: &PackageConfig,
    star_line: Option<usize>,
    halt_sum: Duration,
    findings: &mut Findings,
) {
    let line_of = |name: &str| config.lines.line(name, "").unwrap_or(0);
    if config.lines.line("PACKAGE_NAME", "").is_none() {
        findings.add(Severity::Error, 0, Some("PACKAGE_NAME"), "missing");
    }
    if let (Some(line), false) = (star_line, config.nodes.is_empty()) {
        findings.error(
            line,
            "NODE_NAME",
            "* (every node) cannot be mixed with node names",
        );
    }
    if config.package_type == PackageType::SystemMultiNode {
        // Reported at the offending line when there is one, else at package_type.
        if let Some(node) = config.nodes.first() {
            findings.error(
                config.lines.line("NODE_NAME", node).unwrap_or(0),
                "NODE_NAME",
                "a system_multi_node package runs on every node: node_name must be *",
            );
        }
        if !config.node_fail_fast {
            let line = config
                .lines
                .line("NODE_FAIL_FAST_ENABLED", "")
                .unwrap_or_else(|| line_of("PACKAGE_TYPE"));
            findings.error(
                line,
                "NODE_FAIL_FAST_ENABLED",
                "a system_multi_node package needs node_fail_fast_enabled yes",
            );
        }
    }
    if config.package_type != PackageType::Failover {
        for parameter in ["FAILOVER_POLICY", "FAILBACK_POLICY"] {
            if let Some(line) = config.lines.line(parameter, "") {
                findings.error(line, parameter, "for failover packages only");
            }
        }
    }
    for service in &config.services {
        let service_line = config
            .lines
            .line("SERVICE_NAME", &service.name)
            .unwrap_or(0);
        if service.command.is_empty() {
            findings.error(
                service_line,
                "SERVICE_CMD",
                format!("service {} has no service_cmd", service.name),
            );
        }
        if service.fail_fast && service.restart == ServiceRestart::Unlimited {
            findings.warning(
                service_line,
                "SERVICE_FAIL_FAST_ENABLED",
                format!(
                    "service {} restarts without limit, so it never fails and fail fast never acts",
                    service.name
                ),
            );
        }
    }
    if let Some(halt) = config.halt_script_timeout {
        if !halt_sum.is_zero() && halt <= halt_sum {
            findings.warning(
                line_of("HALT_SCRIPT_TIMEOUT"),
                "HALT_SCRIPT_TIMEOUT",
                format!(
                    "{} s is not more than the services' halt timeouts together ({} s)",
                    halt.as_secs(),
                    halt_sum.as_secs()
                ),
            );
        }
    }
    for dependency in &config.dependencies {
        if dependency.package == config.name {
            findings.error(
                config
                    .lines
                    .line("DEPENDENCY_CONDITION", &dependency.name)
                    .unwrap_or(0),
                "DEPENDENCY_CONDITION",
                format!("dependency {} is on the package itself", dependency.name),
            );
        }
    }
    check_modules(config, findings);
}

/// One base module per package, and the one that goes with package_type ("a package cannot
/// mix base modules"; the base module is what cmmakepkg wrote package_type from).
fn check_modules(config: &PackageConfig, findings: &mut Findings) {
    let module_line = |name: &str| config.lines.line("MODULE_NAME", name).unwrap_or(0);
    let mut bases = config.modules.iter().filter_map(|(name, _)| {
        BASE_MODULES
            .iter()
            .find(|(base, _)| base.eq_ignore_ascii_case(name))
            .map(|(_, package_type)| (name.as_str(), *package_type))
    });
    let Some((first, first_type)) = bases.next() else {
        return;
    };
    let mut mixed = false;
    for (name, _) in bases.filter(|(name, _)| !name.eq_ignore_ascii_case(first)) {
        mixed = true;
        findings.error(
            module_line(name),
            "MODULE_NAME",
            format!(
                "{name} and {first} (line {}) are both base modules; a package has one",
                module_line(first)
            ),
        );
    }
    if mixed || first_type == config.package_type {
        return;
    }
    let package_type = config.package_type.keyword();
    match config.lines.line("PACKAGE_TYPE", "") {
        Some(line) => findings.error(
            line,
            "PACKAGE_TYPE",
            format!(
                "{package_type} does not go with base module {first} (line {})",
                module_line(first)
            ),
        ),
        None => findings.error(
            module_line(first),
            "MODULE_NAME",
            format!(
                "{first} makes a {} package, but package_type is not given (so {package_type})",
                first_type.keyword()
            ),
        ),
    }
}

/// Checks packages against their cluster and each other: node names, weights against the
/// cluster's capacities, unique names and priorities, dependency targets, the package limit,
/// and generic resources (at most [`GENERIC_RESOURCES_MAX`], used alike everywhere). Each
/// package's findings name its file (`files[i]` for `packages[i]`) and the line kept in its
/// [`PackageConfig::lines`], and come in line order, package by package.
pub fn check_set(
    cluster: &ClusterConfig,
    packages: &[PackageConfig],
    files: &[&str],
) -> Vec<Diagnostic> {
    let mut set = SetCheck::new(cluster, packages);
    let mut all = Vec::new();
    for (index, package) in packages.iter().enumerate() {
        let file = files.get(index).copied().unwrap_or("?");
        let mut findings = Findings::new(file);
        set.placement(package, &mut findings);
        set.relations(package, file, &mut findings);
        set.limits(index, package, &mut findings);
        set.access(package, &mut findings);
        findings.list.sort_by_key(|d| d.line);
        all.extend(findings.list);
    }
    all
}

/// Checks that no two packages share a name, for a set checked without its cluster (which
/// [`check_set`] needs): the second file to define a package is reported at its PACKAGE_NAME
/// line, naming the first, as [`check_set`] reports it.
pub fn check_names(packages: &[PackageConfig], files: &[&str]) -> Vec<Diagnostic> {
    let mut first_files: HashMap<&str, &str> = HashMap::new();
    let mut all = Vec::new();
    for (index, package) in packages.iter().enumerate() {
        let file = files.get(index).copied().unwrap_or("?");
        let mut findings = Findings::new(file);
        duplicate_name(&mut first_files, package, file, &mut findings);
        all.extend(findings.list);
    }
    all
}

/// Reports `package` when a package of its name was seen already (in `first_files`, package
/// name -> file), and otherwise records it there.
fn duplicate_name<'a>(
    first_files: &mut HashMap<&'a str, &'a str>,
    package: &'a PackageConfig,
    file: &'a str,
    findings: &mut Findings,
) {
    if let Some(first) = first_files.insert(&package.name, file) {
        findings.error(
            package.lines.line("PACKAGE_NAME", "").unwrap_or(0),
            "PACKAGE_NAME",
            format!("package {} is also defined in {first}", package.name),
        );
    }
}

impl SetCheck<'_> {
    /// A user given a role in the cluster file may not be given one in a package file from
    /// the same host: configuration fails on such a conflict (Managing Serviceguard, 11th
    /// ed., p. 255; Managing HP Serviceguard for Linux, 7th ed., p. 146). ANY_USER on either
    /// side is the exception: a wildcard conflicts with nobody.
    fn access(&self, package: &PackageConfig, findings: &mut Findings) {
        for (user, host) in &package.access {
            let Some(user) = user else { continue };
            let host = user_host(host);
            let clash =
                self.cluster.access.iter().find(|p| {
                    p.user.as_deref() == Some(user.as_str()) && same_host(&p.host, &host)
                });
            if let Some(policy) = clash {
                findings.error(
                    package.lines.line("USER_NAME", user).unwrap_or(0),
                    "USER_NAME",
                    format!(
                        "{user} has the role {} in the cluster file from the same host: give \
                         a user a role from a host in the cluster file or in a package file, \
                         not in both",
                        role_name(policy.role)
                    ),
                );
            }
        }
    }
}

/// What [`check_set`] knows of the cluster and of the packages seen so far.
struct SetCheck<'a> {
    cluster: &'a ClusterConfig,
    /// How many packages there are.
    count: usize,
    /// Every package name.
    names: HashSet<&'a str>,
    /// The capacities packages may weigh against: CAPACITY_NAME and WEIGHT_NAME.
    capacities: HashSet<&'a str>,
    /// Package name -> file, for the packages seen.
    files: HashMap<&'a str, &'a str>,
    /// Priority -> package, for the packages seen.
    priorities: HashMap<u32, &'a str>,
    /// Generic resource -> (extended, first package using it), for the packages seen.
    resource_kinds: HashMap<&'a str, (bool, &'a str)>,
    /// The first generic resource beyond [`GENERIC_RESOURCES_MAX`]: the index of the package
    /// that names it first, its name, and the cluster's count of generic resources.
    resource_excess: Option<(usize, &'a str, usize)>,
}

impl<'a> SetCheck<'a> {
    fn new(cluster: &'a ClusterConfig, packages: &'a [PackageConfig]) -> SetCheck<'a> {
        let capacities = cluster
            .nodes
            .iter()
            .flat_map(|node| node.capacities.keys())
            .chain(cluster.weight_defaults.keys())
            .map(String::as_str)
            .collect();
        let mut resources: Vec<(usize, &str)> = Vec::new();
        for (index, package) in packages.iter().enumerate() {
            for resource in &package.generic_resources {
                if !resources.iter().any(|(_, name)| *name == resource.name) {
                    resources.push((index, &resource.name));
                }
            }
        }
        let resource_excess = resources
            .get(GENERIC_RESOURCES_MAX)
            .map(|&(index, name)| (index, name, resources.len()));
        SetCheck {
            cluster,
            count: packages.len(),
            names: packages.iter().map(|p| p.name.as_str()).collect(),
            capacities,
            files: HashMap::new(),
            priorities: HashMap::new(),
            resource_kinds: HashMap::new(),
            resource_excess,
        }
    }

    /// Node names and weights against the cluster.
    fn placement(&self, package: &PackageConfig, findings: &mut Findings) {
        let line = |parameter: &str, item: &str| package.lines.line(parameter, item).unwrap_or(0);
        for node in &package.nodes {
            if self.cluster.node(node).is_none() {
                findings.error(
                    line("NODE_NAME", node),
                    "NODE_NAME",
                    format!("{node} is not a node of cluster {}", self.cluster.name),
                );
            }
        }
        for weight in package.weights.keys() {
            if !self.capacities.contains(weight.as_str()) {
                findings.error(
                    line("WEIGHT_NAME", weight),
                    "WEIGHT_NAME",
                    format!(
                        "{weight} is no capacity of cluster {} (CAPACITY_NAME or WEIGHT_NAME)",
                        self.cluster.name
                    ),
                );
            }
        }
    }

    /// Unique names and priorities, dependency targets, generic resources used alike.
    fn relations(&mut self, package: &'a PackageConfig, file: &'a str, findings: &mut Findings) {
        let line = |parameter: &str, item: &str| package.lines.line(parameter, item).unwrap_or(0);
        duplicate_name(&mut self.files, package, file, findings);
        if let Some(priority) = package.priority {
            // The first package to take a priority keeps it; the others are reported.
            if let Some(other) = self.priorities.get(&priority) {
                findings.error(
                    line("PRIORITY", ""),
                    "PRIORITY",
                    format!("priority {priority} is also {other}'s; priorities are unique"),
                );
            } else {
                self.priorities.insert(priority, &package.name);
            }
        }
        for dependency in &package.dependencies {
            if !self.names.contains(dependency.package.as_str()) {
                findings.error(
                    line("DEPENDENCY_CONDITION", &dependency.name),
                    "DEPENDENCY_CONDITION",
                    format!(
                        "dependency {} names package {}, which is not configured",
                        dependency.name, dependency.package
                    ),
                );
            }
        }
        for resource in &package.generic_resources {
            let extended = resource.up_criteria.is_some();
            let Some(&(other, first)) = self.resource_kinds.get(resource.name.as_str()) else {
                self.resource_kinds
                    .insert(&resource.name, (extended, &package.name));
                continue;
            };
            if other != extended {
                // Reported where the package makes it extended, or where it names it.
                let parameter = if extended {
                    "GENERIC_RESOURCE_UP_CRITERIA"
                } else {
                    "GENERIC_RESOURCE_NAME"
                };
                findings.error(
                    line(parameter, &resource.name),
                    parameter,
                    format!(
                        "generic resource {} is {} here and {} in {first}: simple in every \
                         package or extended in every package",
                        resource.name,
                        kind(extended),
                        kind(other)
                    ),
                );
            }
        }
    }

    /// The cluster's limits: MAX_CONFIGURED_PACKAGES and [`GENERIC_RESOURCES_MAX`], each
    /// reported once, at the first package or resource beyond it.
    fn limits(&self, index: usize, package: &PackageConfig, findings: &mut Findings) {
        let line = |parameter: &str, item: &str| package.lines.line(parameter, item).unwrap_or(0);
        let allowed = self.cluster.max_configured_packages;
        if usize::try_from(allowed).is_ok_and(|allowed| allowed == index) {
            findings.error(
                line("PACKAGE_NAME", ""),
                "PACKAGE_NAME",
                format!(
                    "{} packages where cluster {} allows {allowed} (MAX_CONFIGURED_PACKAGES); \
                     {} is the first beyond",
                    self.count, self.cluster.name, package.name
                ),
            );
        }
        if let Some((first_index, name, count)) = self.resource_excess {
            if first_index == index {
                findings.error(
                    line("GENERIC_RESOURCE_NAME", name),
                    "GENERIC_RESOURCE_NAME",
                    format!(
                        "{count} generic resources in the cluster where \
                         {GENERIC_RESOURCES_MAX} are allowed; {name} is the first beyond"
                    ),
                );
            }
        }
    }
}

/// The attribute lines of services and generic resources, as static names for the sets of
/// lines already given.
fn attribute_name(parameter: &str) -> &'static str {
    [
        "SERVICE_CMD",
        "SERVICE_RESTART",
        "SERVICE_FAIL_FAST_ENABLED",
        "SERVICE_HALT_TIMEOUT",
        "GENERIC_RESOURCE_EVALUATION_TYPE",
        "GENERIC_RESOURCE_UP_CRITERIA",
    ]
    .into_iter()
    .find(|name| *name == parameter)
    .unwrap_or("OTHER")
}

fn kind(extended: bool) -> &'static str {
    if extended {
        "extended"
    } else {
        "simple"
    }
}

fn finish_dependency(
    dependency: &mut Option<PendingDependency>,
    config: &mut PackageConfig,
    findings: &mut Findings,
) {
    match dependency.take() {
        None => {}
        // dependency_location defaults to same_node.
        Some((_, name, Some((package, condition)))) => config.dependencies.push(Dependency {
            name,
            package,
            condition,
            location: DependencyLocation::SameNode,
        }),
        Some((line, name, None)) => findings.error(
            line,
            "DEPENDENCY_NAME",
            format!("{name} has no dependency_condition"),
        ),
    }
}

/// Checks the name that starts an item (a service, a generic resource): valid, and not given
/// twice in the package; records its line.
fn check_item_name(
    lines: &mut Lines,
    findings: &mut Findings,
    parameter: &str,
    value: &str,
    line: usize,
) {
    if !valid_name(value) {
        findings.error(line, parameter, format!("{value:?} is not a valid name"));
    }
    if let Some(first) = lines.record(parameter, value, line) {
        findings.error(
            line,
            parameter,
            format!("{value} is given twice (first on line {first})"),
        );
    }
}

fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= NAME_BYTES_MAX
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn yes_no(entry: &Entry, findings: &mut Findings, default: bool) -> bool {
    match entry.value.to_ascii_lowercase().as_str() {
        "yes" => true,
        "no" => false,
        _ => {
            findings.error(
                entry.line,
                &entry.parameter,
                format!("{:?} is not yes or no", entry.value),
            );
            default
        }
    }
}

fn seconds(value: &str) -> Option<Duration> {
    value
        .parse::<u64>()
        .ok()
        .filter(|s| *s <= TIMEOUT_SECONDS_MAX)
        .map(Duration::from_secs)
}

/// A script timeout: `min_seconds` to [`TIMEOUT_SECONDS_MAX`] seconds, or `no_timeout`
/// (`None`).
fn timeout(entry: &Entry, min_seconds: u64, findings: &mut Findings) -> Option<Duration> {
    if entry.value.eq_ignore_ascii_case("no_timeout") {
        return None;
    }
    let parsed = seconds(&entry.value).filter(|timeout| timeout.as_secs() >= min_seconds);
    if parsed.is_none() {
        findings.error(
            entry.line,
            &entry.parameter,
            format!(
                "{:?} is not no_timeout or {min_seconds} to {TIMEOUT_SECONDS_MAX} seconds",
                entry.value
            ),
        );
    }
    parsed
}

/// `dbpkg = up`, `dbpkg=down`.
fn parse_condition(value: &str) -> Option<(String, DependencyCondition)> {
    let (package, state) = value.split_once('=')?;
    let package = package.trim();
    let condition = match state.trim().to_ascii_lowercase().as_str() {
        "up" => DependencyCondition::Up,
        "down" => DependencyCondition::Down,
        _ => return None,
    };
    valid_name(package).then(|| (package.to_owned(), condition))
}

/// `<80`, `>= 10`, `==5`.
fn parse_up_criteria(value: &str) -> Option<UpCriteria> {
    let value = value.trim();
    let (operator, rest) = [
        ("==", Comparison::Equal),
        ("!=", Comparison::NotEqual),
        (">=", Comparison::GreaterOrEqual),
        ("<=", Comparison::LessOrEqual),
        (">", Comparison::Greater),
        ("<", Comparison::Less),
    ]
    .into_iter()
    .find_map(|(text, operator)| value.strip_prefix(text).map(|rest| (operator, rest)))?;
    let bound = rest.trim().parse::<i64>().ok()?;
    (1..=UP_CRITERIA_MAX)
        .contains(&bound)
        .then_some(UpCriteria { operator, bound })
}
