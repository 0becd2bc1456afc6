//! The cluster ASCII file: realistic files accepted with the values they state, and a file
//! with every kind of mistake rejected with each finding (file, line, parameter, reason).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use cimguard_cluster::config::cluster::{
    parse, AccessPolicy, AddressFamily, ClusterLock, Role, UserHost,
};
use cimguard_cluster::config::Severity;

fn read(name: &str) -> String {
    let path = format!("{}/tests/config/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn the_quorum_server_example_is_read_as_written() {
    let checked = parse(&read("qs-three-nodes.ascii"), "qs-three-nodes.ascii").unwrap();
    assert!(checked.findings.is_empty(), "{:?}", checked.findings);
    let config = checked.config;
    assert_eq!(config.name, "prodcl");
    assert_eq!(config.address_family, AddressFamily::Ipv4);
    let names: Vec<&str> = config.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["hpnode1", "hpnode2", "hpnode3"]);
    assert_eq!(config.heartbeat_networks(), 2);
    let node1 = config.node("hpnode1").unwrap();
    assert_eq!(
        node1.heartbeat_addresses().collect::<Vec<_>>(),
        [ip("192.168.10.11"), ip("192.168.20.11")]
    );
    assert_eq!(node1.interfaces[2].name, "eth2");
    assert_eq!(node1.interfaces[2].stationary_ips, [ip("10.20.0.11")]);
    assert_eq!(config.member_timeout, Duration::from_secs(14));
    assert_eq!(config.auto_start_timeout, Duration::from_secs(600));
    assert_eq!(config.network_polling_interval, Duration::from_secs(2));
    assert_eq!(config.max_configured_packages, 300);
    assert_eq!(
        config.lock,
        ClusterLock::QuorumServer {
            host: "qs1.example.net".into(),
            alternate: None,
            polling_interval: Duration::from_secs(300),
            timeout_extension: Duration::from_secs(2),
        }
    );
    assert_eq!(
        config.access,
        [AccessPolicy {
            user: Some("monuser".into()),
            host: UserHost::ClusterMemberNode,
            role: Role::Monitor,
        }]
    );
}

#[test]
fn the_lock_lun_variant_has_a_path_per_node_and_defaults() {
    let config = parse(
        &read("lock-lun-two-nodes.ascii"),
        "lock-lun-two-nodes.ascii",
    )
    .unwrap()
    .config;
    assert_eq!(config.lock, ClusterLock::LockLun);
    assert_eq!(
        config.node("alpha").unwrap().lock_lun,
        Some(PathBuf::from("/dev/sdc1"))
    );
    assert_eq!(
        config.node("beta").unwrap().lock_lun,
        Some(PathBuf::from(
            "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4-part1"
        ))
    );
    assert_eq!(config.heartbeat_networks(), 1);
    assert_eq!(config.network_polling_interval, Duration::from_secs(2));
    assert_eq!(
        config.access,
        [
            AccessPolicy {
                user: None,
                host: UserHost::AnyServiceguardNode,
                role: Role::Monitor,
            },
            AccessPolicy {
                user: Some("dba".into()),
                host: UserHost::Host("alpha".into()),
                role: Role::PackageAdmin,
            },
        ]
    );
}

#[test]
fn the_loopback_demo_takes_a_short_member_timeout_on_two_networks() {
    let config = parse(&read("loopback-demo.ascii"), "loopback-demo.ascii")
        .unwrap()
        .config;
    assert_eq!(config.member_timeout, Duration::from_secs(3));
    assert_eq!(config.heartbeat_networks(), 2);
    assert_eq!(
        config
            .node("node1")
            .unwrap()
            .capacities
            .get("package_limit"),
        Some(&10.0)
    );
    assert_eq!(config.weight_defaults.get("package_limit"), Some(&1.0));
}

#[test]
fn a_short_member_timeout_needs_two_heartbeat_networks() {
    let text = read("loopback-demo.ascii")
        .lines()
        .filter(|line| !line.contains("127.0.1."))
        .collect::<Vec<_>>()
        .join("\n");
    let findings = parse(&text, "one-network").unwrap_err();
    let messages: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "one-network:17: error: MEMBER_TIMEOUT: 3000000 us (3 s) is below the minimum of \
          14000000 us (14 s) for 1 heartbeat network"
        ]
    );
}

#[test]
fn the_fast_profile_takes_one_second_on_two_networks_with_a_warning() {
    let text = read("loopback-demo.ascii").replace("3000000", "1000000");
    let checked = parse(&text, "fast").unwrap();
    assert_eq!(checked.config.member_timeout, Duration::from_secs(1));
    assert_eq!(checked.findings.len(), 1, "{:?}", checked.findings);
    assert_eq!(checked.findings[0].severity, Severity::Warning);
    assert!(checked.findings[0]
        .reason
        .contains("below Serviceguard's minimum of 3000000 us (3 s)"));
    // Below a second it is refused.
    let text = read("loopback-demo.ascii").replace("3000000", "500000");
    let findings = parse(&text, "too-fast").unwrap_err();
    assert!(
        findings[0].to_string().contains("below the minimum"),
        "{}",
        findings[0]
    );
}

#[test]
fn legacy_timeouts_are_accepted_with_a_warning() {
    let text = read("qs-three-nodes.ascii").replace(
        "MEMBER_TIMEOUT            14000000",
        "HEARTBEAT_INTERVAL 1000000\nNODE_TIMEOUT 8000000",
    );
    let checked = parse(&text, "legacy").unwrap();
    assert_eq!(checked.config.member_timeout, Duration::from_secs(8));
    let warnings: Vec<&str> = checked
        .findings
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .filter_map(|d| d.parameter.as_deref())
        .collect();
    assert_eq!(warnings, ["HEARTBEAT_INTERVAL", "NODE_TIMEOUT"]);
}

#[test]
fn a_long_member_timeout_is_a_note() {
    let text = read("qs-three-nodes.ascii").replace("14000000", "90000000");
    let checked = parse(&text, "long").unwrap();
    assert_eq!(checked.config.member_timeout, Duration::from_secs(90));
    assert_eq!(checked.findings.len(), 1);
    assert_eq!(checked.findings[0].severity, Severity::Note);
}

#[test]
fn a_two_node_cluster_needs_a_lock() {
    let text: String = read("lock-lun-two-nodes.ascii")
        .lines()
        .filter(|line| !line.contains("CLUSTER_LOCK_LUN"))
        .map(|line| format!("{line}\n"))
        .collect();
    let findings = parse(&text, "nolock").unwrap_err();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0]
        .reason
        .contains("two-node cluster needs a cluster lock"));
}

#[test]
fn every_mistake_is_reported_with_its_line_and_parameter() {
    let findings = parse(&read("bad.ascii"), "bad.ascii").unwrap_err();
    let messages: Vec<String> = findings.iter().map(ToString::to_string).collect();
    let expected = [
        "bad.ascii:2: error: CLUSTER_NAME: \"this-cluster-name-is-far-too-long-for-serviceguard\": at most 39 letters, digits, '_', '-' or '.'",
        "bad.ascii:3: error: HEARTBEAT_IP: outside a NETWORK_INTERFACE of a NODE_NAME block",
        "bad.ascii:7: error: HEARTBEAT_IP: \"not-an-address\" is not an IP address",
        "bad.ascii:8: error: CLUSTER_LOCK_LUN: not an absolute path",
        "bad.ascii:9: error: NODE_NAME: n1 is configured twice (first on line 4)",
        "bad.ascii:9: error: CLUSTER_LOCK_LUN: node n1 has no path to the lock LUN that other nodes use",
        "bad.ascii:11: error: HEARTBEAT_IP: address 10.0.0.1 of node n1 is also given for node n1 (line 6)",
        "bad.ascii:12: error: NETWORK_INTERFACE: eth1 of node n1 has no HEARTBEAT_IP or STATIONARY_IP",
        "bad.ascii:13: error: HEARTBEAT_IP: node n3 has no heartbeat address",
        "bad.ascii:13: error: CLUSTER_LOCK_LUN: node n3 has no path to the lock LUN that other nodes use",
        "bad.ascii:16: error: QS_HOST: a cluster has one lock: a quorum server or a lock LUN, not both",
        "bad.ascii:17: error: MEMBER_TIMEOUT: 1000000 us (1 s) is below the minimum of 14000000 us (14 s) for 1 heartbeat network",
        "bad.ascii:18: error: NODE_TIMEOUT: replaced by MEMBER_TIMEOUT, which is also given: remove it",
        "bad.ascii:19: error: MEMBER_TIMEOUT: given twice (first on line 17)",
        "bad.ascii:20: error: NETWORK_POLLING_INTERVAL: 60000000 us (60 s) is outside 1000000 us (1 s) to 30000000 us (30 s)",
        "bad.ascii:21: error: MAX_CONFIGURED_PACKAGES: \"301\" is not a whole number from 0 to 300",
        "bad.ascii:22: error: FIRST_CLUSTER_LOCK_VG: an HP-UX LVM lock disk; on Linux use CLUSTER_LOCK_LUN or QS_HOST",
        "bad.ascii:23: error: SERVICE_NAME: unknown parameter",
        "bad.ascii:25: error: USER_ROLE: \"ROOT\" is not MONITOR, PACKAGE_ADMIN or FULL_ADMIN",
        "bad.ascii:26: error: USER_HOST: not after a USER_NAME",
    ];
    assert_eq!(messages, expected, "\n{}", messages.join("\n"));
    assert!(findings.iter().all(|d| d.severity == Severity::Error));
}

#[test]
fn address_findings_point_at_the_address_not_its_node() {
    let findings = parse(&read("bad-addresses.ascii"), "bad-addresses.ascii").unwrap_err();
    let messages: Vec<String> = findings.iter().map(ToString::to_string).collect();
    let expected = [
        "bad-addresses.ascii:9: error: STATIONARY_IP: address fd00::1 of node n1 is not of the cluster's address family (HOSTNAME_ADDRESS_FAMILY IPV4)",
        "bad-addresses.ascii:13: error: STATIONARY_IP: address 10.0.0.1 of node n2 is also given for node n1 (line 7)",
        "bad-addresses.ascii:14: error: NETWORK_INTERFACE: eth1 of node n2 has no HEARTBEAT_IP or STATIONARY_IP",
    ];
    assert_eq!(messages, expected, "\n{}", messages.join("\n"));
}

#[test]
fn capacities_are_at_most_four_and_package_limit_stands_alone() {
    let findings = parse(&read("bad-capacities.ascii"), "bad-capacities.ascii").unwrap_err();
    let messages: Vec<String> = findings.iter().map(ToString::to_string).collect();
    let expected = [
        "bad-capacities.ascii:18: error: CAPACITY_NAME: 5 capacities; a cluster has at most 4",
        "bad-capacities.ascii:23: error: WEIGHT_NAME: package_limit and memory (line 7): a cluster that uses package_limit has no other capacity or weight",
    ];
    assert_eq!(messages, expected, "\n{}", messages.join("\n"));
    // The loopback demo uses package_limit alone; a second capacity next to it is refused
    // where it appears.
    let text = read("loopback-demo.ascii").replace(
        "  CLUSTER_LOCK_LUN  /var/lib/cimguard-demo/lock.lun\nNODE_NAME           node3",
        "  CLUSTER_LOCK_LUN  /var/lib/cimguard-demo/lock.lun\n  CAPACITY_NAME memory\n  \
         CAPACITY_VALUE 64\nNODE_NAME           node3",
    );
    let findings = parse(&text, "demo").unwrap_err();
    let messages: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        ["demo:16: error: CAPACITY_NAME: memory and package_limit (line 9): a cluster that uses \
          package_limit has no other capacity or weight"]
    );
}

#[test]
fn nothing_at_all_is_two_errors_not_a_panic() {
    let findings = parse("", "empty").unwrap_err();
    let messages: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "empty: error: CLUSTER_NAME: missing",
            "empty: error: NODE_NAME: no node is configured"
        ]
    );
}

#[test]
fn a_legacy_node_timeout_below_the_minimum_is_raised_with_a_warning() {
    let text = read("lock-lun-two-nodes.ascii").replace(
        "MEMBER_TIMEOUT  14000000",
        "HEARTBEAT_INTERVAL 1000000\nNODE_TIMEOUT 2000000",
    );
    let checked = parse(&text, "legacy").unwrap();
    assert_eq!(checked.config.member_timeout, Duration::from_secs(14));
    let raised = checked
        .findings
        .iter()
        .find(|d| d.reason.contains("below MEMBER_TIMEOUT's minimum"))
        .expect("a warning that the timeout was raised");
    assert_eq!(raised.severity, Severity::Warning);
    assert_eq!(raised.parameter.as_deref(), Some("NODE_TIMEOUT"));
    let too_long = text.replace("NODE_TIMEOUT 2000000", "NODE_TIMEOUT 61000000");
    let findings = parse(&too_long, "legacy").unwrap_err();
    let errors: Vec<&str> = findings
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.reason.as_str())
        .collect();
    assert_eq!(errors.len(), 1, "{findings:?}");
    assert!(errors[0].contains("is more than 60000000 us"), "{errors:?}");
}

#[test]
fn a_single_infiniband_heartbeat_needs_22_seconds() {
    let text = read("lock-lun-two-nodes.ascii").replace("eth0", "ib0");
    let findings = parse(&text, "ib").unwrap_err();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0]
        .reason
        .contains("below the minimum of 22000000 us (22 s) for 1 heartbeat network"));
    let text = text.replace("MEMBER_TIMEOUT  14000000", "MEMBER_TIMEOUT  22000000");
    assert!(parse(&text, "ib").is_ok());
}

#[test]
fn timeouts_without_a_stated_maximum_are_still_bounded() {
    let text = read("qs-three-nodes.ascii")
        .replace(
            "AUTO_START_TIMEOUT        600000000",
            "AUTO_START_TIMEOUT 18446744073709551615",
        )
        .replace(
            "QS_TIMEOUT_EXTENSION      2000000",
            "QS_TIMEOUT_EXTENSION 900000000",
        );
    let findings = parse(&text, "bounds").unwrap_err();
    let parameters: Vec<&str> = findings
        .iter()
        .filter_map(|d| d.parameter.as_deref())
        .collect();
    assert_eq!(parameters, ["QS_TIMEOUT_EXTENSION", "AUTO_START_TIMEOUT"]);
}

/// A cluster file of `nodes` (NODE_NAME, last octet), each on two networks.
fn nodes_file(nodes: &[(&str, u8)]) -> cimguard_cluster::config::cluster::ClusterConfig {
    let mut text = "CLUSTER_NAME c\nMEMBER_TIMEOUT 14000000\n".to_owned();
    for (name, k) in nodes {
        text.push_str(&format!(
            "NODE_NAME {name}\n NETWORK_INTERFACE eth0\n  HEARTBEAT_IP 10.0.0.{k}\n \
             NETWORK_INTERFACE eth1\n  HEARTBEAT_IP 10.1.0.{k}\n"
        ));
    }
    match parse(&text, "c.ascii") {
        Ok(checked) => checked.config,
        Err(findings) => panic!("{findings:?}\n{text}"),
    }
}

#[test]
fn a_running_cluster_keeps_every_number_and_numbers_added_nodes_after_them() {
    use cimguard_cluster::config::{
        added_nodes, deleted_nodes, keep_node_order, needs_halted_cluster,
    };
    let old = nodes_file(&[("n1", 1), ("n2", 2), ("n3", 3)]);
    // Listed anywhere, an added node is numbered after the nodes kept, in their order.
    let given = nodes_file(&[("n4", 4), ("n2", 2), ("N1", 1), ("n3", 3)]);
    let new = keep_node_order(&old, given);
    let names: Vec<&str> = new.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["N1", "n2", "n3", "n4"]);
    assert_eq!(added_nodes(&old, &new), ["n4"]);
    assert!(needs_halted_cluster(&old, &new).is_empty());
    // The same nodes reordered are the same cluster.
    let reordered = keep_node_order(&old, nodes_file(&[("n3", 3), ("n1", 1), ("n2", 2)]));
    assert_eq!(reordered.nodes, old.nodes);
    // A node deleted keeps its number, marked; one added comes after every number.
    let deleted = keep_node_order(&old, nodes_file(&[("n4", 4), ("n1", 1), ("n3", 3)]));
    let numbering: Vec<(&str, bool)> = deleted
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.deleted))
        .collect();
    assert_eq!(
        numbering,
        [("n1", false), ("n2", true), ("n3", false), ("n4", false)]
    );
    assert!(needs_halted_cluster(&old, &deleted).is_empty());
    assert_eq!(deleted_nodes(&old, &deleted), [(1, "n2".to_owned())]);
    assert_eq!(added_nodes(&old, &deleted), ["n4"]);
    assert!(deleted.node("n2").is_none());
    assert_eq!(deleted.position("n4"), Some(3));
    let written: Vec<String> = deleted
        .as_written()
        .nodes
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(written, ["n1", "n3", "n4"]);
    // The same file again changes nothing; the number stays deleted.
    let again = keep_node_order(&deleted, nodes_file(&[("n1", 1), ("n3", 3), ("n4", 4)]));
    assert_eq!(again, deleted);
    assert!(deleted_nodes(&deleted, &again).is_empty());
    // So is the configuration in effect (cmapplyconf -P alone merges into it).
    assert_eq!(keep_node_order(&deleted, deleted.clone()), deleted);
    assert!(needs_halted_cluster(&deleted, &deleted).is_empty());
    // A node deleted while the cluster ran comes back only with the cluster halted (its
    // number is not used again before).
    let back = keep_node_order(
        &deleted,
        nodes_file(&[("n1", 1), ("n2", 2), ("n3", 3), ("n4", 4)]),
    );
    assert_eq!(
        needs_halted_cluster(&deleted, &back),
        ["NODE_NAME (a node deleted while the cluster ran, added again)"]
    );
    // A node that missed the generations adding n4 and deleting n2 and n4 takes the one in
    // effect: the numbers after its own may be deleted already.
    let mut later = deleted.clone();
    later.nodes[3].deleted = true;
    assert!(needs_halted_cluster(&old, &later).is_empty());
    // Files not numbered as the cluster numbers (keep_node_order not applied): refused.
    assert_eq!(
        needs_halted_cluster(&old, &nodes_file(&[("n1", 1), ("n3", 3), ("n2", 2)])),
        ["NODE_NAME"]
    );
    let moved = keep_node_order(&old, nodes_file(&[("n1", 1), ("n2", 9), ("n3", 3)]));
    assert_eq!(needs_halted_cluster(&old, &moved), ["HEARTBEAT_IP"]);
    // With a lock LUN (its blocks are counted at start), nodes are added with it halted.
    let mut with_lun = old;
    with_lun.lock = ClusterLock::LockLun;
    let mut added = nodes_file(&[("n1", 1), ("n2", 2), ("n3", 3), ("n4", 4)]);
    added.lock = ClusterLock::LockLun;
    assert_eq!(
        needs_halted_cluster(&with_lun, &added),
        ["NODE_NAME (nodes added to a cluster with a CLUSTER_LOCK_LUN)"]
    );
}
