//! cmgetconf's writer: every configuration the parsers accept is written so that they read it
//! back to an equal configuration, with no error. The files under `tests/config/`, the
//! demo's and the simulator's generated files, and configurations that set every parameter
//! (in files and built in code) go through `parse(write(parse(text)))`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use cimguard_cluster::config::cluster::{
    self, AccessPolicy, AddressFamily, ClusterConfig, ClusterLock, InterfaceConfig, NodeConfig,
    Role, UserHost,
};
use cimguard_cluster::config::package::{
    self, Comparison, Dependency, DependencyCondition, DependencyLocation, Evaluation,
    FailbackPolicy, FailoverPolicy, GenericResource, Lines, PackageConfig, PackageType, Service,
    ServiceRestart, SubnetAccess, UpCriteria,
};
use cimguard_cluster::config::{write, Diagnostic, Severity};
use cimguard_cluster::core::Tiebreaker;
use cimguard_cluster::sim::{cluster_file, Options};

/// The files under `tests/config/` whose names end in `extension`, sorted, with their text.
fn config_files(extension: &str) -> Vec<(String, String)> {
    let dir = format!("{}/tests/config", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                text,
            )
        })
        .collect();
    files.sort();
    files
}

/// What a finding says, without its file and line (a written file has its own lines).
fn said(finding: &Diagnostic) -> (Severity, Option<String>, String) {
    (
        finding.severity,
        finding.parameter.clone(),
        finding.reason.clone(),
    )
}

/// The written file's findings (it has no error, or it would not parse) are among the
/// original's: writing adds no warning or note.
fn assert_no_new_findings(file: &str, original: &[Diagnostic], written: &[Diagnostic]) {
    let original: Vec<_> = original.iter().map(said).collect();
    for finding in written {
        assert!(
            original.contains(&said(finding)),
            "{file}: the written file has a finding the original has not: {finding}"
        );
    }
}

/// Writes a cluster configuration, reads it back, and checks that it is the same; writing
/// again gives the same text. Returns the text.
fn cluster_written(config: &ClusterConfig, original: &[Diagnostic], file: &str) -> String {
    let written = write::cluster_ascii(config);
    let read = cluster::parse(&written, file).unwrap_or_else(|findings| {
        panic!("{file}: the written file is rejected: {findings:#?}\n{written}")
    });
    assert_eq!(&read.config, config, "{file}: written as\n{written}");
    assert_no_new_findings(file, original, &read.findings);
    assert_eq!(write::cluster_ascii(&read.config), written, "{file}");
    written
}

/// `parse(write(parse(text))) == parse(text)` for a cluster file that parses.
fn cluster_round_trip(text: &str, file: &str) -> String {
    let first = cluster::parse(text, file).unwrap_or_else(|f| panic!("{file}: {f:#?}"));
    cluster_written(&first.config, &first.findings, file)
}

/// A package configuration without the lines it was read from: a written file has lines of
/// its own, everything else must be equal.
fn without_lines(mut config: PackageConfig) -> PackageConfig {
    config.lines = Lines::default();
    config
}

/// Writes a package configuration, reads it back, and checks that it is the same but for
/// its lines; writing again gives the same text. Returns the text.
fn package_written(config: &PackageConfig, original: &[Diagnostic], file: &str) -> String {
    let written = write::package_ascii(config);
    let read = package::parse(&written, file).unwrap_or_else(|findings| {
        panic!("{file}: the written file is rejected: {findings:#?}\n{written}")
    });
    assert_eq!(
        without_lines(read.config.clone()),
        without_lines(config.clone()),
        "{file}: written as\n{written}"
    );
    assert_no_new_findings(file, original, &read.findings);
    assert_eq!(write::package_ascii(&read.config), written, "{file}");
    written
}

/// `parse(write(parse(text))) == parse(text)` (but for lines) for a package file that parses.
fn package_round_trip(text: &str, file: &str) -> (PackageConfig, String) {
    let first = package::parse(text, file).unwrap_or_else(|f| panic!("{file}: {f:#?}"));
    let written = package_written(&first.config, &first.findings, file);
    (first.config, written)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn every_valid_cluster_file_survives_a_round_trip() {
    let mut done = Vec::new();
    for (file, text) in config_files("ascii") {
        if cluster::parse(&text, &file).is_ok() {
            cluster_round_trip(&text, &file);
            done.push(file);
        }
    }
    for expected in [
        "lock-lun-two-nodes.ascii",
        "loopback-demo.ascii",
        "qs-three-nodes.ascii",
    ] {
        assert!(done.iter().any(|f| f == expected), "{expected}: {done:?}");
    }
}

#[test]
fn every_valid_package_file_survives_a_round_trip() {
    let mut done = Vec::new();
    for (file, text) in config_files("conf") {
        if package::parse(&text, &file).is_ok() {
            package_round_trip(&text, &file);
            done.push(file);
        }
    }
    for expected in ["dbpkg.conf", "monpkg.conf", "webpkg.conf"] {
        assert!(done.iter().any(|f| f == expected), "{expected}: {done:?}");
    }
}

/// The quorum-server example of serviceguard.md section 3.1, as cmgetconf writes it.
const QS_THREE_NODES_WRITTEN: &str = "\
# Cluster configuration file of cluster prodcl.
# Times are in microseconds. Check changes with cmcheckconf -C FILE and apply
# them with cmapplyconf -C FILE.

CLUSTER_NAME              prodcl
HOSTNAME_ADDRESS_FAMILY   IPV4

# Cluster lock: a quorum server.
QS_HOST                   qs1.example.net
QS_POLLING_INTERVAL       300000000
QS_TIMEOUT_EXTENSION      2000000

NODE_NAME                 hpnode1
  NETWORK_INTERFACE       eth0
    HEARTBEAT_IP          192.168.10.11
  NETWORK_INTERFACE       eth1
    HEARTBEAT_IP          192.168.20.11
  NETWORK_INTERFACE       eth2
    STATIONARY_IP         10.20.0.11

NODE_NAME                 hpnode2
  NETWORK_INTERFACE       eth0
    HEARTBEAT_IP          192.168.10.12
  NETWORK_INTERFACE       eth1
    HEARTBEAT_IP          192.168.20.12

NODE_NAME                 hpnode3
  NETWORK_INTERFACE       eth0
    HEARTBEAT_IP          192.168.10.13
  NETWORK_INTERFACE       eth1
    HEARTBEAT_IP          192.168.20.13

MEMBER_TIMEOUT            14000000
AUTO_START_TIMEOUT        600000000
NETWORK_POLLING_INTERVAL  2000000
MAX_CONFIGURED_PACKAGES   300

USER_NAME                 monuser
USER_HOST                 CLUSTER_MEMBER_NODE
USER_ROLE                 MONITOR
";

/// The database example of serviceguard.md section 5.1, as cmgetconf writes it: every
/// parameter, the defaults too.
const DBPKG_WRITTEN: &str = "\
# Modular package configuration file of package dbpkg.
# Check changes with cmcheckconf -P FILE and apply them with cmapplyconf -P FILE.

package_name                      dbpkg
package_description               \"Example database\"
package_type                      failover
node_name                         hpnode1
node_name                         hpnode2
auto_run                          yes
node_fail_fast_enabled            no
run_script_timeout                600
halt_script_timeout               300
successor_halt_timeout            no_timeout
script_log_file                   $SGRUN/log/dbpkg.log
log_level                         0
priority                          20

failover_policy                   configured_node
failback_policy                   manual

local_lan_failover_allowed        yes
monitored_subnet                  10.20.0.0
monitored_subnet_access           FULL

ip_subnet                         10.20.0.0
ip_address                        10.20.0.50

service_name                      db_monitor
service_cmd                       $SGCONF/dbpkg/db_monitor.sh
service_restart                   3
service_fail_fast_enabled         no
service_halt_timeout              30

generic_resource_name             sfm_disk
generic_resource_evaluation_type  before_package_start

generic_resource_name             cpu_load
generic_resource_evaluation_type  during_package_start
generic_resource_up_criteria      <80

external_script                   $SGCONF/dbpkg/db_ctl.sh
";

#[test]
fn the_examples_are_written_in_serviceguards_layout() {
    let qs = config_files("ascii")
        .into_iter()
        .find(|(file, _)| file == "qs-three-nodes.ascii")
        .unwrap();
    assert_eq!(cluster_round_trip(&qs.1, &qs.0), QS_THREE_NODES_WRITTEN);
    let db = config_files("conf")
        .into_iter()
        .find(|(file, _)| file == "dbpkg.conf")
        .unwrap();
    assert_eq!(package_round_trip(&db.1, &db.0).1, DBPKG_WRITTEN);
}

/// `cimguard demo`'s cluster file for `nodes` nodes in `dir` (src/demo.rs, `cluster_text`):
/// two heartbeat networks on loopback, MEMBER_TIMEOUT 3 s, a lock LUN file up to four nodes.
fn demo_cluster_text(nodes: usize, dir: &str) -> String {
    let mut text = format!(
        "# The cimguard demo cluster: {nodes} nodes on loopback, two heartbeat networks each.\n\
         # Written by `cimguard demo` when missing; edit it while the demo is stopped.\n\
         CLUSTER_NAME demo\n\
         MEMBER_TIMEOUT 3000000\n"
    );
    for k in 1..=nodes {
        text.push_str(&format!(
            "\nNODE_NAME node{k}\n  NETWORK_INTERFACE lo\n    HEARTBEAT_IP 127.0.0.{k}\n  \
             NETWORK_INTERFACE lo1\n    HEARTBEAT_IP 127.0.1.{k}\n"
        ));
        if nodes <= 4 {
            let path = format!("{dir}/lock.lun");
            let value = if path.contains(char::is_whitespace) {
                format!("\"{path}\"")
            } else {
                path
            };
            text.push_str(&format!("  CLUSTER_LOCK_LUN {value}\n"));
        }
    }
    text
}

/// `cimguard demo`'s package files for `nodes` nodes (src/demo.rs, `package_texts`).
fn demo_package_texts(nodes: usize) -> Vec<(&'static str, String)> {
    let node_lines = |order: &mut dyn Iterator<Item = usize>| -> String {
        order.map(|k| format!("node_name node{k}\n")).collect()
    };
    let all = node_lines(&mut (1..=nodes));
    let node2_first = node_lines(&mut (2..=nodes).chain(1..2));
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

#[test]
fn the_demo_files_survive_a_round_trip() {
    for nodes in 2..=8 {
        for dir in ["/var/lib/cimguard-demo", "/tmp/my cimguard demo"] {
            let file = format!("demo-{nodes}-nodes.ascii ({dir})");
            let written = cluster_round_trip(&demo_cluster_text(nodes, dir), &file);
            if nodes <= 4 {
                let path = format!("{dir}/lock.lun");
                let value = if dir.contains(' ') {
                    format!("\"{path}\"")
                } else {
                    path
                };
                let line = format!("\n  CLUSTER_LOCK_LUN        {value}\n");
                assert!(written.contains(&line), "{file}:\n{written}");
            }
        }
        for (name, text) in demo_package_texts(nodes) {
            let (config, written) = package_round_trip(&text, &format!("{name}.conf"));
            let command = &config.services[0].command;
            assert!(command.contains("$(date); sleep"), "{command}");
            assert!(
                written.contains(&format!("\"{command}\"")),
                "{name}:\n{written}"
            );
        }
    }
}

#[test]
fn the_simulators_cluster_files_survive_a_round_trip() {
    let mut done = 0;
    for nodes in 1..=8 {
        for networks in 1..=3 {
            for tiebreaker in [
                Tiebreaker::None,
                Tiebreaker::LockLun,
                Tiebreaker::QuorumServer,
            ] {
                for member_timeout in [1, 3, 14, 30, 90] {
                    let mut options = Options::new(nodes, 7);
                    options.networks = networks;
                    options.tiebreaker = tiebreaker;
                    options.member_timeout = Duration::from_secs(member_timeout);
                    let text = cluster_file(&options);
                    let file = format!(
                        "sim: {nodes} nodes, {networks} networks, {tiebreaker:?}, \
                         {member_timeout} s"
                    );
                    if cluster::parse(&text, &file).is_ok() {
                        cluster_round_trip(&text, &file);
                        done += 1;
                    }
                }
            }
        }
    }
    // Most combinations are valid; the others break a rule (two nodes without a lock, a
    // lock LUN for more than four, a short MEMBER_TIMEOUT on one network).
    assert!(done > 200, "only {done} simulated cluster files parsed");
}

#[test]
fn a_legacy_cluster_file_is_written_with_member_timeout() {
    let text = "\
CLUSTER_NAME       oldcl
QS_HOST            qs.example.net
HEARTBEAT_INTERVAL 1000000
NODE_TIMEOUT       5000000
NODE_NAME          a
  NETWORK_INTERFACE eth0
    HEARTBEAT_IP   10.0.0.1
NODE_NAME          b
  NETWORK_INTERFACE eth0
    HEARTBEAT_IP   10.0.0.2
";
    let written = cluster_round_trip(text, "legacy.ascii");
    // NODE_TIMEOUT below the one-network minimum is taken as that minimum, 14 s.
    assert!(
        written.contains("MEMBER_TIMEOUT            14000000\n"),
        "{written}"
    );
    assert!(!written.contains("NODE_TIMEOUT"), "{written}");
    assert!(!written.contains("HEARTBEAT_INTERVAL"), "{written}");
}

fn interface(name: &str, heartbeat: &[&str], stationary: &[&str]) -> InterfaceConfig {
    InterfaceConfig {
        name: name.into(),
        heartbeat_ips: heartbeat.iter().map(|a| ip(a)).collect(),
        stationary_ips: stationary.iter().map(|a| ip(a)).collect(),
    }
}

fn capacities(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect()
}

/// A cluster that sets every parameter to something other than its default.
fn every_cluster_parameter() -> ClusterConfig {
    let node = |k: u8, capacity: &[(&str, f64)]| NodeConfig {
        name: format!("Node-{k}.example"),
        interfaces: vec![
            interface("eth0", &[&format!("10.0.0.{k}")], &[]),
            interface(
                "bond1",
                &[&format!("fd00:1::{k}")],
                &[&format!("192.168.5.{k}"), &format!("fd00:5::{k}")],
            ),
            interface("eth9", &[], &[&format!("172.16.0.{k}")]),
        ],
        lock_lun: None,
        capacities: capacities(capacity),
        deleted: false,
    };
    ClusterConfig {
        name: "every_param.1".into(),
        address_family: AddressFamily::Any,
        nodes: vec![
            node(1, &[("memory", 64.5), ("cpu", 8.0)]),
            node(2, &[("memory", 0.125)]),
            node(3, &[]),
        ],
        member_timeout: Duration::from_micros(7_500_001),
        auto_start_timeout: Duration::from_micros(1_234_567_891),
        network_polling_interval: Duration::from_millis(1500),
        lock: ClusterLock::QuorumServer {
            host: "qs1.example.net".into(),
            alternate: Some("192.0.2.7".into()),
            polling_interval: Duration::from_secs(45),
            timeout_extension: Duration::from_micros(2_500_000),
        },
        max_configured_packages: 42,
        access: vec![
            AccessPolicy {
                user: None,
                host: UserHost::AnyServiceguardNode,
                role: Role::Monitor,
            },
            AccessPolicy {
                user: Some("admin".into()),
                host: UserHost::ClusterMemberNode,
                role: Role::FullAdmin,
            },
            AccessPolicy {
                user: Some("pkg_op".into()),
                host: UserHost::Host("ops.example.net".into()),
                role: Role::PackageAdmin,
            },
        ],
        weight_defaults: capacities(&[("memory", 2.5), ("cpu", 0.0), ("disk", 1e-3)]),
    }
}

#[test]
fn a_cluster_with_every_parameter_survives_a_round_trip() {
    let config = every_cluster_parameter();
    let written = cluster_written(&config, &[], "every-parameter.ascii");
    for line in [
        "HOSTNAME_ADDRESS_FAMILY   ANY\n",
        "QS_ADDR                   192.0.2.7\n",
        "QS_POLLING_INTERVAL       45000000\n",
        "QS_TIMEOUT_EXTENSION      2500000\n",
        "    HEARTBEAT_IP          fd00:1::2\n",
        "    STATIONARY_IP         fd00:5::3\n",
        "  CAPACITY_NAME           memory\n  CAPACITY_VALUE          64.5\n",
        "MEMBER_TIMEOUT            7500001\n",
        "AUTO_START_TIMEOUT        1234567891\n",
        "NETWORK_POLLING_INTERVAL  1500000\n",
        "MAX_CONFIGURED_PACKAGES   42\n",
        "WEIGHT_NAME               disk\nWEIGHT_DEFAULT            0.001\n",
        "USER_NAME                 ANY_USER\n",
        "USER_NAME                 pkg_op\nUSER_HOST                 ops.example.net\n",
    ] {
        assert!(written.contains(line), "{line:?} in\n{written}");
    }
}

#[test]
fn a_lock_lun_cluster_built_in_code_survives_a_round_trip() {
    let mut config = every_cluster_parameter();
    config.address_family = AddressFamily::Ipv6;
    config.lock = ClusterLock::LockLun;
    config.nodes.truncate(2);
    for (k, node) in config.nodes.iter_mut().enumerate() {
        node.interfaces = vec![
            interface("eth0", &[&format!("fd00:1::{k}")], &[]),
            interface(
                "eth1",
                &[&format!("fd00:2::{k}")],
                &[&format!("fd00:9::{k}")],
            ),
        ];
        node.lock_lun = Some(PathBuf::from(format!(
            "/dev/disk/by-path/pci-0000:00:1f.2 ata-{k}-part1"
        )));
    }
    config.member_timeout = Duration::from_secs(3);
    config.weight_defaults = capacities(&[("package_limit", 1.0)]);
    for node in &mut config.nodes {
        node.capacities = capacities(&[("package_limit", 10.0)]);
    }
    let written = cluster_written(&config, &[], "lock-lun.ascii");
    assert!(written.contains(
        "  CLUSTER_LOCK_LUN        \"/dev/disk/by-path/pci-0000:00:1f.2 ata-1-part1\"\n"
    ));
    assert!(!written.contains("QS_"), "{written}");
}

/// A failover package with every module of `cmmakepkg -m sg/all`, each parameter set to
/// something other than its default, values with blanks, quotes and `#` included.
const EVERY_PACKAGE_PARAMETER: &str = r#"
# cmmakepkg -m sg/all, filled in.
package_name                      full.pkg-1
package_description               "Everything "set" # on purpose"
module_name                       sg/basic
module_version                    1
module_name                       sg/failover
module_version                    2
module_name                       sg/dependency
module_name                       sg/weight
module_version                    1
module_name                       sg/monitor_subnet
module_name                       sg/package_ip
module_name                       sg/service
module_version                    "1 beta"
module_name                       sg/generic_resource
module_name                       sg/external_pre
module_name                       sg/external
module_name                       sg/acp
package_type                      FAILOVER
node_name                         hpnode3
node_name                         HPnode1
node_name                         hpnode2
auto_run                          no
node_fail_fast_enabled            yes
run_script_timeout                600
halt_script_timeout               4294
successor_halt_timeout            0
script_log_file                   "/var/log/cimguard/full pkg #1.log"
log_level                         5
priority                          3000
failover_policy                   min_package_node
failback_policy                   automatic
dependency_name                   db_up
dependency_condition              dbpkg = up
dependency_location               any_node
dependency_name                   not_with_batch
dependency_condition              batchpkg=UP
dependency_location               different_node
dependency_name                   quiet
dependency_condition              noisypkg = down
dependency_location               ALL_NODES
dependency_name                   same
dependency_condition              cachepkg = down
weight_name                       package_limit
weight_value                      0.25
weight_name                       memory
weight_value                      1536.5
local_lan_failover_allowed        no
monitored_subnet                  10.20.0.0
monitored_subnet_access           PARTIAL
monitored_subnet                  fd00:20::
monitored_subnet                  192.168.1.0
monitored_subnet_access           full
ip_subnet                         10.20.0.0
ip_address                        10.20.0.50
ip_address                        10.20.0.51
ip_subnet                         fd00:20::
ip_address                        fd00:20::50
ip_subnet                         192.168.1.0
service_name                      db_monitor
service_cmd                       "sh -c 'echo "up # not a comment"; exec "$SGCONF/db mon.sh"'"
service_restart                   5
service_fail_fast_enabled         yes
service_halt_timeout              30
service_name                      log.rotate-1
service_cmd                       /usr/sbin/logrotate
service_restart                   unlimited
service_fail_fast_enabled         no
service_halt_timeout              60
service_name                      s3
service_cmd                       "  padded  "
service_restart                   none
generic_resource_name             sfm_disk
generic_resource_evaluation_type  before_package_start
generic_resource_name             r_eq
generic_resource_up_criteria      == 1
generic_resource_name             r_ne
generic_resource_evaluation_type  before_package_start
generic_resource_up_criteria      !=2147483647
generic_resource_name             r_gt
generic_resource_up_criteria      >3
generic_resource_name             r_lt
generic_resource_up_criteria      "< 80"
generic_resource_name             r_ge
generic_resource_up_criteria      >=5
generic_resource_name             r_le
generic_resource_up_criteria      <=6
external_pre_script               $SGCONF/full/pre.sh
external_pre_script               "/opt/my scripts/pre two.sh"
external_script                   $SGCONF/full/control.sh
external_script                   "/opt/my scripts/ctl.sh"
user_name                         ANY_USER
user_host                         ANY_SERVICEGUARD_NODE
user_role                         PACKAGE_ADMIN
user_name                         operator1
user_host                         hpnode1
user_role                         package_admin
user_name                         op1 op2
user_host                         CLUSTER_MEMBER_NODE
user_role                         PACKAGE_ADMIN
"#;

#[test]
fn a_package_with_every_parameter_survives_a_round_trip() {
    let checked = package::parse(EVERY_PACKAGE_PARAMETER, "full.conf").unwrap();
    assert!(checked.findings.is_empty(), "{:#?}", checked.findings);
    let config = &checked.config;
    // The values that are hard to write: quotes, `#` and blanks.
    assert_eq!(config.description, r#"Everything "set" # on purpose"#);
    assert_eq!(
        config.services[0].command,
        r#"sh -c 'echo "up # not a comment"; exec "$SGCONF/db mon.sh"'"#
    );
    assert_eq!(config.services[2].command, "  padded  ");
    assert_eq!(config.script_log_file, "/var/log/cimguard/full pkg #1.log");
    let (_, written) = package_round_trip(EVERY_PACKAGE_PARAMETER, "full.conf");
    for line in [
        "package_description               \"Everything \"set\" # on purpose\"\n",
        "module_version                    \"1 beta\"\n",
        "package_type                      failover\n",
        "node_name                         HPnode1\n",
        "successor_halt_timeout            0\n",
        "priority                          3000\n",
        "failover_policy                   min_package_node\n",
        "dependency_condition              batchpkg = up\n",
        "dependency_location               all_nodes\n",
        "dependency_condition              cachepkg = down\ndependency_location               same_node\n",
        "weight_value                      0.25\n",
        "monitored_subnet                  fd00:20::\nmonitored_subnet_access           FULL\n",
        "ip_subnet                         192.168.1.0\n",
        "service_cmd                       \"sh -c 'echo \"up # not a comment\"; exec \"$SGCONF/db mon.sh\"'\"\n",
        "service_cmd                       \"  padded  \"\n",
        "generic_resource_up_criteria      ==1\n",
        "generic_resource_up_criteria      !=2147483647\n",
        "generic_resource_up_criteria      <80\n",
        "external_pre_script               \"/opt/my scripts/pre two.sh\"\n",
        "user_name                         ANY_USER\n",
        "user_name                         op1\n",
        "user_name                         op2\n",
    ] {
        assert!(written.contains(line), "{line:?} in\n{written}");
    }
}

#[test]
fn multi_node_packages_get_no_failover_policies() {
    let system = "\
package_name            smnpkg
module_name             sg/system_multi_node
module_version          1
package_type            system_multi_node
node_name               *
node_fail_fast_enabled  yes
service_name            agent
service_cmd             \"/usr/bin/agent --foreground\"
";
    let (config, written) = package_round_trip(system, "smnpkg.conf");
    assert_eq!(config.package_type, PackageType::SystemMultiNode);
    assert!(written.contains("node_name                         *\n"));
    assert!(!written.contains("failover_policy"), "{written}");
    assert!(!written.contains("failback_policy"), "{written}");
}

/// A package built in code with every field set, none at its default.
fn every_package_field() -> PackageConfig {
    let service = |name: &str, command: &str, restart, fail_fast, halt: u64| Service {
        name: name.into(),
        command: command.into(),
        restart,
        fail_fast,
        halt_timeout: Duration::from_secs(halt),
    };
    let resource = |name: &str, evaluation, up_criteria| GenericResource {
        name: name.into(),
        evaluation,
        up_criteria,
    };
    PackageConfig {
        name: "built".into(),
        description: "built in code: \"quoted\", #hashed, \ttabbed".into(),
        modules: vec![
            ("sg/basic".into(), None),
            ("sg/failover".into(), Some("3".into())),
        ],
        package_type: PackageType::Failover,
        nodes: vec!["b".into(), "a".into()],
        auto_run: false,
        node_fail_fast: true,
        run_script_timeout: Some(Duration::from_secs(1)),
        halt_script_timeout: Some(Duration::from_secs(4294)),
        successor_halt_timeout: Some(Duration::from_secs(17)),
        script_log_file: "/var/log/built.log".into(),
        log_level: 3,
        failover_policy: FailoverPolicy::MinPackageNode,
        failback_policy: FailbackPolicy::Automatic,
        priority: Some(1),
        dependencies: vec![Dependency {
            name: "d".into(),
            package: "other".into(),
            condition: DependencyCondition::Down,
            location: DependencyLocation::AllNodes,
        }],
        weights: capacities(&[("cpu", 3.0), ("memory", 0.5)]),
        local_lan_failover_allowed: false,
        monitored_subnets: vec![
            (ip("10.1.0.0"), SubnetAccess::Partial),
            (ip("::ffff:10.2.0.0"), SubnetAccess::Full),
        ],
        ip_subnets: vec![(ip("10.1.0.0"), vec![ip("10.1.0.9"), ip("10.1.0.10")])],
        services: vec![
            service(
                "one",
                "/bin/one \"a b\" # c",
                ServiceRestart::Times(0),
                true,
                0,
            ),
            service("two", "two", ServiceRestart::Unlimited, false, 4000),
        ],
        generic_resources: vec![
            resource(
                "g1",
                Evaluation::BeforePackageStart,
                Some(UpCriteria {
                    operator: Comparison::GreaterOrEqual,
                    bound: 2_147_483_647,
                }),
            ),
            resource("g2", Evaluation::DuringPackageStart, None),
        ],
        external_pre_scripts: vec!["/pre one.sh".into()],
        external_scripts: vec!["\"/quoted.sh\"".into(), "/two.sh".into()],
        access: vec![
            (None, "host1".into()),
            (Some("u".into()), "ANY_SERVICEGUARD_NODE".into()),
        ],
        lines: Lines::default(),
    }
}

#[test]
fn a_package_built_in_code_survives_a_round_trip() {
    let config = every_package_field();
    package_written(&config, &[], "built.conf");
    // A package on every node writes `*`, and the default log file reads back as itself.
    let mut everywhere = every_package_field();
    everywhere.nodes.clear();
    everywhere.script_log_file = package::script_log_file_default("built");
    let written = package_written(&everywhere, &[], "everywhere.conf");
    assert!(written.contains("node_name                         *\n"));
}
