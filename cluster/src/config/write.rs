//! Configurations written back out as Serviceguard's ASCII files, as `cmgetconf` writes them:
//! [`cluster_ascii`] for `cmgetconf -c` (the cluster file of section 3.1) and [`package_ascii`]
//! for `cmgetconf -p` (a modular package file of section 5.1). Sans-IO: the callers write the
//! files.
//!
//! Every parameter the configuration holds is written, those at their default too: the file
//! shows the effective configuration, and [`cluster::parse`] and [`package::parse`] read it
//! back to an equal configuration. Values are double-quoted when the line format
//! ([`super::ascii`]) needs it: when they have blanks, double quotes or `#`, or are empty. That
//! format strips one pair of quotes and has no escapes, so a quoted value may hold quotes.
//!
//! What the file syntax cannot express, and so does not survive a round trip:
//!
//! - A line break in a value: the file is line-based and has no escapes. Each `\n` is written
//!   as a blank, so that a value can never add a line (a parameter) of its own.
//! - An empty value: it is written as `""`, which the parsers reject ("no value").
//! - A line longer than [`super::ascii::LINE_BYTES_MAX`] (a very long `service_cmd`): written
//!   as it is, and rejected by the parsers.
//! - A user name with a blank: USER_NAME (and user_name) lists login names separated by
//!   blanks, so it reads back as several users, each with the policy's host and role.
//! - A value the parsers give a meaning to: the user name `ANY_USER` (which means any user,
//!   `None`), the host `CLUSTER_MEMBER_NODE` or `ANY_SERVICEGUARD_NODE` given as a host name,
//!   `*` as a package's node name (which means every node).
//! - Values outside the parsers' limits (a NaN weight, a MEMBER_TIMEOUT of an hour, a script
//!   timeout above 4294 s): written as they are, and rejected when read.
//! - Time below the file's unit: microseconds in the cluster file, seconds in package files.
//! - A path that is not UTF-8 (CLUSTER_LOCK_LUN): written lossily.
//!
//! Fields that are not file parameters: [`ClusterLock::LockLun`] follows from the
//! CLUSTER_LOCK_LUN lines of the node blocks (a cluster with lock LUN paths has a lock LUN,
//! whatever `lock` says), and [`PackageConfig::lines`] records where the parameters were read
//! (a written file has its own line numbers). A non-failover package's `failover_policy` and
//! `failback_policy` are not written: the parser accepts them for failover packages only, and
//! reads their defaults otherwise.
//!
//! [`cluster::parse`]: super::cluster::parse
//! [`package::parse`]: super::package::parse

use std::borrow::Cow;
use std::net::IpAddr;
use std::time::Duration;

use super::cluster::{
    AccessPolicy, AddressFamily, ClusterConfig, ClusterLock, NodeConfig, Role, UserHost,
};
use super::package::{
    Dependency, Evaluation, GenericResource, PackageConfig, PackageType, Service, ServiceRestart,
    SubnetAccess,
};

/// Where values start in the cluster file (cmquerycl's layout, as section 3.1 shows it).
const CLUSTER_VALUE_COLUMN: usize = 26;
/// Where values start in package files (cmmakepkg's layout).
const PACKAGE_VALUE_COLUMN: usize = 34;
/// The indentation of a node block's lines, and of an interface's addresses within it.
const NODE_INDENT: usize = 2;

/// The cluster ASCII file of `config`, as `cmgetconf -c` writes it: a header comment, then
/// CLUSTER_NAME, HOSTNAME_ADDRESS_FAMILY, the quorum server, the NODE_NAME blocks (interfaces
/// with their HEARTBEAT_IP and STATIONARY_IP, CLUSTER_LOCK_LUN, capacities), the timing
/// parameters in microseconds, MAX_CONFIGURED_PACKAGES, the weight defaults and the access
/// policies. [`cluster::parse`] reads it back to a configuration equal to `config` (see the
/// module documentation for what cannot be written).
///
/// [`cluster::parse`]: super::cluster::parse
pub fn cluster_ascii(config: &ClusterConfig) -> String {
    let mut text = Text::new(CLUSTER_VALUE_COLUMN);
    text.comment(&format!(
        "Cluster configuration file of cluster {}.",
        config.name
    ));
    text.comment("Times are in microseconds. Check changes with cmcheckconf -C FILE and apply");
    text.comment("them with cmapplyconf -C FILE.");
    text.blank();
    text.value(0, "CLUSTER_NAME", &config.name);
    text.keyword(
        0,
        "HOSTNAME_ADDRESS_FAMILY",
        address_family(config.address_family),
    );
    cluster_lock(&mut text, &config.lock);
    // A node deleted while the cluster ran keeps its number in the cluster, not in its file.
    for (_, node) in config.in_cluster() {
        text.blank();
        node_block(&mut text, node);
    }
    text.blank();
    text.keyword(0, "MEMBER_TIMEOUT", &micros(config.member_timeout));
    text.keyword(0, "AUTO_START_TIMEOUT", &micros(config.auto_start_timeout));
    text.keyword(
        0,
        "NETWORK_POLLING_INTERVAL",
        &micros(config.network_polling_interval),
    );
    text.keyword(
        0,
        "MAX_CONFIGURED_PACKAGES",
        &config.max_configured_packages.to_string(),
    );
    if !config.weight_defaults.is_empty() {
        text.blank();
        for (name, value) in &config.weight_defaults {
            text.value(0, "WEIGHT_NAME", name);
            text.keyword(0, "WEIGHT_DEFAULT", &number(*value));
        }
    }
    if !config.access.is_empty() {
        text.blank();
        for policy in &config.access {
            cluster_access(&mut text, policy);
        }
    }
    text.into_string()
}

/// The modular package file of `config`, as `cmgetconf -p` writes it, in cmmakepkg's order:
/// the basic parameters (name, description, modules, type, nodes, switching, timeouts, log,
/// priority), the failover policies, dependencies, weights, subnets, relocatable addresses,
/// services, generic resources, external scripts and access. [`package::parse`] reads it back
/// to a configuration equal to `config` but for [`PackageConfig::lines`] (see the module
/// documentation for what cannot be written).
///
/// [`package::parse`]: super::package::parse
pub fn package_ascii(config: &PackageConfig) -> String {
    let mut text = Text::new(PACKAGE_VALUE_COLUMN);
    text.comment(&format!(
        "Modular package configuration file of package {}.",
        config.name
    ));
    text.comment("Check changes with cmcheckconf -P FILE and apply them with cmapplyconf -P FILE.");
    text.blank();
    package_basics(&mut text, config);
    if config.package_type == PackageType::Failover {
        text.blank();
        text.keyword(0, "failover_policy", config.failover_policy.keyword());
        text.keyword(0, "failback_policy", config.failback_policy.keyword());
    }
    for dependency in &config.dependencies {
        text.blank();
        package_dependency(&mut text, dependency);
    }
    if !config.weights.is_empty() {
        text.blank();
        for (name, value) in &config.weights {
            text.value(0, "weight_name", name);
            text.keyword(0, "weight_value", &number(*value));
        }
    }
    package_networks(&mut text, config);
    for service in &config.services {
        text.blank();
        package_service(&mut text, service);
    }
    for resource in &config.generic_resources {
        text.blank();
        package_resource(&mut text, resource);
    }
    package_scripts_and_access(&mut text, config);
    text.into_string()
}

/// A file in the making: parameter lines with their values in one column.
struct Text {
    text: String,
    /// The column values start in (one blank at least after a long parameter).
    column: usize,
}

impl Text {
    fn new(column: usize) -> Text {
        Text {
            text: String::new(),
            column,
        }
    }

    /// A comment line; line breaks in `comment` become blanks.
    fn comment(&mut self, comment: &str) {
        self.text.push_str("# ");
        self.text.push_str(&one_line(comment));
        self.text.push('\n');
    }

    /// An empty line, between groups of parameters.
    fn blank(&mut self) {
        self.text.push('\n');
    }

    /// A parameter with a free-text value (a name, a path, a command), quoted when needed.
    fn value(&mut self, indent: usize, parameter: &str, value: &str) {
        self.keyword(indent, parameter, &quote(value));
    }

    /// A parameter with a value written as it is: a keyword, a number, an address, or a value
    /// quoted already.
    fn keyword(&mut self, indent: usize, parameter: &str, value: &str) {
        let used = indent + parameter.len();
        let blanks = self.column.saturating_sub(used).max(1);
        self.text.push_str(&" ".repeat(indent));
        self.text.push_str(parameter);
        self.text.push_str(&" ".repeat(blanks));
        self.text.push_str(value);
        self.text.push('\n');
    }

    fn into_string(self) -> String {
        self.text
    }
}

/// `value` as the line format reads it back: in double quotes when it is empty or has a
/// blank, a double quote or a `#`, else as it is. The reader takes the rest of the line,
/// trimmed, and strips one pair of surrounding quotes; there are no escapes, so quotes inside
/// a quoted value stay as they are. Line breaks, which the format cannot hold, become blanks.
fn quote(value: &str) -> Cow<'_, str> {
    let value = one_line(value);
    if needs_quotes(&value) {
        Cow::Owned(format!("\"{value}\""))
    } else {
        value
    }
}

/// True when `value` is written in double quotes: when it is empty, or has a blank (the
/// reader trims the value, Serviceguard's tools split words), a double quote (the reader
/// strips a surrounding pair) or a `#` (a comment to shells and Serviceguard's tools).
fn needs_quotes(value: &str) -> bool {
    value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '#')
}

/// `text` without line breaks: each `\n` becomes a blank, so that a value or a comment stays
/// on its line.
fn one_line(text: &str) -> Cow<'_, str> {
    if text.contains('\n') {
        Cow::Owned(text.replace('\n', " "))
    } else {
        Cow::Borrowed(text)
    }
}

/// A duration in the cluster file's unit, microseconds.
fn micros(duration: Duration) -> String {
    duration.as_micros().to_string()
}

/// A duration in the package file's unit, seconds.
fn seconds(duration: Duration) -> String {
    duration.as_secs().to_string()
}

/// A script timeout: seconds, or `no_timeout`.
fn timeout(timeout: Option<Duration>) -> String {
    timeout.map_or_else(|| "no_timeout".to_owned(), seconds)
}

/// A capacity, weight or weight default. `f64`'s `Display` writes the shortest decimal that
/// reads back to the same number, without an exponent, as the parsers read it.
fn number(value: f64) -> String {
    value.to_string()
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

fn address(address: &IpAddr) -> String {
    address.to_string()
}

fn address_family(family: AddressFamily) -> &'static str {
    match family {
        AddressFamily::Ipv4 => "IPV4",
        AddressFamily::Ipv6 => "IPV6",
        AddressFamily::Any => "ANY",
    }
}

/// The quorum server's lines; a lock LUN is written in the node blocks, where each node names
/// its own path.
fn cluster_lock(text: &mut Text, lock: &ClusterLock) {
    match lock {
        ClusterLock::None => {}
        ClusterLock::LockLun => {
            text.blank();
            text.comment("Cluster lock: a lock LUN, CLUSTER_LOCK_LUN in each node block.");
        }
        ClusterLock::QuorumServer {
            host,
            alternate,
            polling_interval,
            timeout_extension,
        } => {
            text.blank();
            text.comment("Cluster lock: a quorum server.");
            text.value(0, "QS_HOST", host);
            if let Some(alternate) = alternate {
                text.value(0, "QS_ADDR", alternate);
            }
            text.keyword(0, "QS_POLLING_INTERVAL", &micros(*polling_interval));
            text.keyword(0, "QS_TIMEOUT_EXTENSION", &micros(*timeout_extension));
        }
    }
}

/// One NODE_NAME block: its interfaces with their addresses, its path to the lock LUN, its
/// capacities.
fn node_block(text: &mut Text, node: &NodeConfig) {
    text.value(0, "NODE_NAME", &node.name);
    for interface in &node.interfaces {
        text.value(NODE_INDENT, "NETWORK_INTERFACE", &interface.name);
        for ip in &interface.heartbeat_ips {
            text.keyword(2 * NODE_INDENT, "HEARTBEAT_IP", &address(ip));
        }
        for ip in &interface.stationary_ips {
            text.keyword(2 * NODE_INDENT, "STATIONARY_IP", &address(ip));
        }
    }
    if let Some(path) = &node.lock_lun {
        text.value(NODE_INDENT, "CLUSTER_LOCK_LUN", &path.to_string_lossy());
    }
    for (name, value) in &node.capacities {
        text.value(NODE_INDENT, "CAPACITY_NAME", name);
        text.keyword(NODE_INDENT, "CAPACITY_VALUE", &number(*value));
    }
}

/// One policy as a USER_NAME / USER_HOST / USER_ROLE triple of its own (the users of a
/// USER_NAME that listed several come back one triple each).
fn cluster_access(text: &mut Text, policy: &AccessPolicy) {
    match &policy.user {
        Some(user) => text.value(0, "USER_NAME", user),
        None => text.keyword(0, "USER_NAME", "ANY_USER"),
    }
    match &policy.host {
        UserHost::ClusterMemberNode => text.keyword(0, "USER_HOST", "CLUSTER_MEMBER_NODE"),
        UserHost::AnyServiceguardNode => text.keyword(0, "USER_HOST", "ANY_SERVICEGUARD_NODE"),
        UserHost::Host(host) => text.value(0, "USER_HOST", host),
    }
    let role = match policy.role {
        Role::Monitor => "MONITOR",
        Role::PackageAdmin => "PACKAGE_ADMIN",
        Role::FullAdmin => "FULL_ADMIN",
    };
    text.keyword(0, "USER_ROLE", role);
}

/// sg/basic: name, description, modules, type, nodes, switching, timeouts, log, priority.
fn package_basics(text: &mut Text, config: &PackageConfig) {
    text.value(0, "package_name", &config.name);
    text.value(0, "package_description", &config.description);
    for (name, version) in &config.modules {
        text.value(0, "module_name", name);
        if let Some(version) = version {
            text.value(0, "module_version", version);
        }
    }
    text.keyword(0, "package_type", config.package_type.keyword());
    if config.nodes.is_empty() {
        text.keyword(0, "node_name", "*");
    }
    for node in &config.nodes {
        text.value(0, "node_name", node);
    }
    text.keyword(0, "auto_run", yes_no(config.auto_run));
    text.keyword(0, "node_fail_fast_enabled", yes_no(config.node_fail_fast));
    text.keyword(0, "run_script_timeout", &timeout(config.run_script_timeout));
    text.keyword(
        0,
        "halt_script_timeout",
        &timeout(config.halt_script_timeout),
    );
    text.keyword(
        0,
        "successor_halt_timeout",
        &timeout(config.successor_halt_timeout),
    );
    text.value(0, "script_log_file", &config.script_log_file);
    text.keyword(0, "log_level", &config.log_level.to_string());
    let priority = config
        .priority
        .map_or_else(|| "no_priority".to_owned(), |p| p.to_string());
    text.keyword(0, "priority", &priority);
}

/// One dependency_name / dependency_condition / dependency_location triple. The condition is
/// written as Serviceguard writes it, `<package> = up`, unquoted unless the package's name
/// needs quotes.
fn package_dependency(text: &mut Text, dependency: &Dependency) {
    text.value(0, "dependency_name", &dependency.name);
    let condition = format!(
        "{} = {}",
        one_line(&dependency.package),
        dependency.condition.keyword()
    );
    if needs_quotes(&one_line(&dependency.package)) {
        text.value(0, "dependency_condition", &condition);
    } else {
        text.keyword(0, "dependency_condition", &condition);
    }
    text.keyword(0, "dependency_location", dependency.location.keyword());
}

/// sg/monitor_subnet and sg/package_ip: local LAN failover, monitored subnets with their
/// access, relocatable addresses by subnet.
fn package_networks(text: &mut Text, config: &PackageConfig) {
    text.blank();
    text.keyword(
        0,
        "local_lan_failover_allowed",
        yes_no(config.local_lan_failover_allowed),
    );
    for (subnet, access) in &config.monitored_subnets {
        text.keyword(0, "monitored_subnet", &address(subnet));
        let access = match access {
            SubnetAccess::Full => "FULL",
            SubnetAccess::Partial => "PARTIAL",
        };
        text.keyword(0, "monitored_subnet_access", access);
    }
    if !config.ip_subnets.is_empty() {
        text.blank();
    }
    for (subnet, addresses) in &config.ip_subnets {
        text.keyword(0, "ip_subnet", &address(subnet));
        for ip in addresses {
            text.keyword(0, "ip_address", &address(ip));
        }
    }
}

/// One service: its name, command, restarts, fail fast and halt timeout.
fn package_service(text: &mut Text, service: &Service) {
    text.value(0, "service_name", &service.name);
    text.value(0, "service_cmd", &service.command);
    let restart = match service.restart {
        ServiceRestart::None => "none".to_owned(),
        ServiceRestart::Unlimited => "unlimited".to_owned(),
        ServiceRestart::Times(times) => times.to_string(),
    };
    text.keyword(0, "service_restart", &restart);
    text.keyword(0, "service_fail_fast_enabled", yes_no(service.fail_fast));
    text.keyword(0, "service_halt_timeout", &seconds(service.halt_timeout));
}

/// One generic resource: its name, evaluation type and, for an extended resource, its up
/// criteria (`<80`, as section 5.1 writes them).
fn package_resource(text: &mut Text, resource: &GenericResource) {
    text.value(0, "generic_resource_name", &resource.name);
    let evaluation = match resource.evaluation {
        Evaluation::DuringPackageStart => "during_package_start",
        Evaluation::BeforePackageStart => "before_package_start",
    };
    text.keyword(0, "generic_resource_evaluation_type", evaluation);
    if let Some(criteria) = &resource.up_criteria {
        text.keyword(0, "generic_resource_up_criteria", &criteria.to_string());
    }
}

/// sg/external_pre, sg/external and sg/acp: the scripts in order, then the users who may
/// administer the package (PACKAGE_ADMIN, the one role a package file grants).
fn package_scripts_and_access(text: &mut Text, config: &PackageConfig) {
    if !config.external_pre_scripts.is_empty() || !config.external_scripts.is_empty() {
        text.blank();
    }
    for script in &config.external_pre_scripts {
        text.value(0, "external_pre_script", script);
    }
    for script in &config.external_scripts {
        text.value(0, "external_script", script);
    }
    for (user, host) in &config.access {
        text.blank();
        match user {
            Some(user) => text.value(0, "user_name", user),
            None => text.keyword(0, "user_name", "ANY_USER"),
        }
        text.value(0, "user_host", host);
        text.keyword(0, "user_role", "PACKAGE_ADMIN");
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::config::ascii;
    use crate::config::Findings;

    /// The value the line format reads from `PARAMETER <quote(value)>`.
    fn read_back(value: &str) -> Option<String> {
        let mut findings = Findings::new("t");
        let line = format!("PARAMETER {}\n", quote(value));
        let entries = ascii::entries(&line, &mut findings);
        match entries.as_slice() {
            [entry] if findings.list.is_empty() => Some(entry.value.clone()),
            _ => None,
        }
    }

    #[test]
    fn plain_values_are_not_quoted() {
        for value in [
            "prodcl",
            "/dev/sdc1",
            "$SGCONF/db/ctl.sh",
            "10.0.0.1",
            "<80",
            "*",
        ] {
            assert_eq!(quote(value), value);
        }
    }

    #[test]
    fn blanks_quotes_and_hashes_are_quoted() {
        assert_eq!(quote("Example database"), "\"Example database\"");
        assert_eq!(quote("tab\there"), "\"tab\there\"");
        assert_eq!(quote("a#b"), "\"a#b\"");
        assert_eq!(quote("\"quoted\""), "\"\"quoted\"\"");
        assert_eq!(quote(" padded "), "\" padded \"");
        assert_eq!(quote(""), "\"\"");
    }

    #[test]
    fn quoted_values_read_back_as_written() {
        for value in [
            "echo \"hi # there\" 'single' done",
            "\"starts and ends with quotes\"",
            "\"",
            "\"\"",
            "ends with a quote\"",
            "  leading and trailing blanks  ",
            "# looks like a comment",
            "carriage\rreturn",
            "trailing carriage return\r",
            "non\u{a0}breaking blank\u{a0}",
            "while true; do echo $(date); sleep 5; done",
        ] {
            assert_eq!(read_back(value).as_deref(), Some(value), "{value:?}");
        }
    }

    #[test]
    fn line_breaks_become_blanks_and_add_no_line() {
        assert_eq!(quote("a\nb"), "\"a b\"");
        assert_eq!(
            read_back("x\nNODE_NAME intruder").as_deref(),
            Some("x NODE_NAME intruder")
        );
        let mut text = Text::new(PACKAGE_VALUE_COLUMN);
        text.comment("first\nsecond");
        assert_eq!(text.into_string(), "# first second\n");
    }

    #[test]
    fn an_empty_value_cannot_be_written() {
        assert_eq!(read_back(""), None);
    }

    #[test]
    fn values_start_in_one_column() {
        let mut text = Text::new(CLUSTER_VALUE_COLUMN);
        text.keyword(0, "QS_HOST", "qs1");
        text.keyword(2 * NODE_INDENT, "HEARTBEAT_IP", "10.0.0.1");
        text.keyword(0, "A_PARAMETER_LONGER_THAN_THE_COLUMN", "1");
        assert_eq!(
            text.into_string(),
            "QS_HOST                   qs1\n    HEARTBEAT_IP          10.0.0.1\n\
             A_PARAMETER_LONGER_THAN_THE_COLUMN 1\n"
        );
    }

    proptest! {
        /// Any value without a line break reads back as it was.
        #[test]
        fn any_one_line_value_reads_back(value in "[^\n]{1,200}") {
            prop_assert_eq!(read_back(&value), Some(value));
        }
    }
}
