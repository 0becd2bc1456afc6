//! The cluster as CIM instances: three real `cmcld` processes on loopback, each serving its
//! WBEM agent (`--wbem-listen`), driven by pywbem through `tests/python/cluster_cim.py`.
//! What the agents answer is compared with what the daemons' status says at the same moment,
//! and the package methods are checked to do what cmrunpkg, cmhaltpkg and cmmodpkg do.
//!
//! Needs `cargo build --bin cmcld --bin cimguard` and the venv of `scripts/test` (the test
//! fails, never skips, without them).

use std::time::Duration;

use cimguard_tests::cluster::TestCluster;
use cimguard_tests::pyagent::{describe, output_within};
use serde_json::{json, Value};

const MEMBER_TIMEOUT: Duration = Duration::from_secs(2);
/// Long enough for a formation, a start and a failover under CI load.
const BOUND: Duration = Duration::from_secs(60);

const ADMIN: (&str, &str) = ("admin", "admin-secret-1");
const MONITOR: (&str, &str) = ("watcher", "monitor-secret-1");

/// The demo's shape with the administrator and the monitor as the agents' users, started.
fn demo_cluster() -> TestCluster {
    TestCluster::demo(
        MEMBER_TIMEOUT,
        &[
            (ADMIN.0, "FULL_ADMIN", ADMIN.1),
            (MONITOR.0, "MONITOR", MONITOR.1),
        ],
    )
}

/// The demo cluster formed, with its generic resource sfm_disk set up on every node through
/// cmsetresource (it is unknown until set, and dbpkg needs it).
fn formed_with_sfm_disk_up() -> TestCluster {
    let mut cluster = demo_cluster();
    cluster.wait_for(BOUND, "a formed cluster", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    for k in 1..=3 {
        succeeds(
            &cluster,
            k,
            "cmsetresource",
            &["-r", "sfm_disk", "-s", "up"],
        );
    }
    cluster
}

/// One operation on node `k`'s agent as `user`; the JSON answer.
fn cim(cluster: &TestCluster, k: usize, user: (&str, &str), op: &Value) -> Value {
    cluster.cim(k, user, op)
}

fn enumerate(cluster: &TestCluster, k: usize, class: &str) -> Vec<Value> {
    let answer = cim(
        cluster,
        k,
        ADMIN,
        &json!({"op": "enumerate", "class": class}),
    );
    answer
        .as_array()
        .unwrap_or_else(|| panic!("EnumerateInstances {class}: {answer}"))
        .clone()
}

/// InvokeMethod `method` on the instance at `path` through node `k`'s agent as `user`, with
/// `params` as cluster_cim.py takes them; the JSON answer.
fn invoke(
    cluster: &TestCluster,
    k: usize,
    user: (&str, &str),
    path: &Value,
    method: &str,
    params: &Value,
) -> Value {
    cim(
        cluster,
        k,
        user,
        &json!({"op": "invoke", "path": path, "method": method, "params": params}),
    )
}

/// Runs the command `name ARGS` against node `k`'s agent as `user` (the CIMGUARD_*
/// variables); its output, whatever its exit status.
fn command(
    cluster: &TestCluster,
    k: usize,
    user: (&str, &str),
    name: &str,
    args: &[&str],
) -> std::process::Output {
    cluster.agent_command(k, user, name, args, Duration::from_secs(400))
}

/// `name ARGS` as the administrator, which must succeed: its standard output.
fn succeeds(cluster: &TestCluster, k: usize, name: &str, args: &[&str]) -> String {
    let output = command(cluster, k, ADMIN, name, args);
    assert!(
        output.status.success(),
        "{name} {args:?} failed:\n{}\n{}",
        describe(&output),
        cluster.log(k)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// `name ARGS` as the administrator, which must fail with exit status 1 and one line saying
/// `wanted`.
fn fails(cluster: &TestCluster, k: usize, name: &str, args: &[&str], wanted: &str) {
    let output = command(cluster, k, ADMIN, name, args);
    let error = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{name} {args:?}: {}",
        describe(&output)
    );
    assert!(
        error.contains(wanted) && error.trim_end().lines().count() == 1,
        "{name} {args:?} should say {wanted:?} on one line: {error}"
    );
}

/// `cmviewcl ARGS` against node `k`'s agent as the monitor: its standard output (it must
/// succeed).
fn cmviewcl(cluster: &TestCluster, k: usize, args: &[&str]) -> String {
    let output = command(cluster, k, MONITOR, "cmviewcl", args);
    assert!(
        output.status.success(),
        "cmviewcl {args:?} failed:\n{}\n{}",
        describe(&output),
        cluster.log(k)
    );
    String::from_utf8(output.stdout).expect("cmviewcl prints UTF-8")
}

/// The `-f line` value of `attribute` (a full line prefix such as `package:dbpkg|state`).
fn line_value(cluster: &TestCluster, k: usize, attribute: &str) -> Option<String> {
    cmviewcl(cluster, k, &["-f", "line"])
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{attribute}=")).map(str::to_owned))
}

fn package_path(name: &str) -> Value {
    json!({"class": "HP_SGPackage", "keys": {
        "SystemCreationClassName": "HP_SGCluster", "SystemName": "testcluster",
        "CreationClassName": "HP_SGPackage", "Name": name}})
}

fn cluster_path() -> Value {
    json!({"class": "HP_SGCluster", "keys": {
        "CreationClassName": "HP_SGCluster", "Name": "testcluster"}})
}

/// The package instance named `name` among `instances`.
fn named<'a>(instances: &'a [Value], name: &str) -> &'a Value {
    instances
        .iter()
        .find(|i| i["properties"]["Name"] == name)
        .unwrap_or_else(|| panic!("no instance named {name} in {instances:?}"))
}

/// The owners of `package` in node `k`'s status.
fn owners(cluster: &TestCluster, k: usize, package: &str) -> Vec<String> {
    cluster.owners(k, package).unwrap_or_default()
}

#[test]
fn the_cluster_nodes_and_packages_are_served_as_cim_instances_that_match_the_status() {
    let mut cluster = demo_cluster();
    cluster.wait_for(BOUND, "the agents to answer", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    // sfm_disk is unknown until set: set it up on every node through its own agent's
    // HP_SGGenericResource.SetStatus, as cmsetresource would on each node.
    for k in 1..=3 {
        let resources = enumerate(&cluster, k, "HP_SGGenericResource");
        let own = resources
            .iter()
            .find(|r| r["properties"]["NodeName"] == format!("n{k}"))
            .unwrap_or_else(|| panic!("no sfm_disk of n{k} in {resources:?}"));
        let answer = invoke(
            &cluster,
            k,
            ADMIN,
            &own["path"],
            "SetStatus",
            &json!({"Status": ["string", "up"]}),
        );
        assert_eq!(answer["return"], 0, "SetStatus on n{k}: {answer}");
        // Another node's resource is not this agent's to set: refused (4).
        let other = resources
            .iter()
            .find(|r| r["properties"]["NodeName"] != format!("n{k}"))
            .expect("another node's resource");
        let answer = invoke(
            &cluster,
            k,
            ADMIN,
            &other["path"],
            "SetStatus",
            &json!({"Status": ["string", "up"]}),
        );
        assert_eq!(answer["return"], 4, "SetStatus for another node: {answer}");
        // A value SetStatus does not take, or neither Status nor Value: 5, with the reason.
        for params in [json!({"Status": ["string", "sideways"]}), json!({})] {
            let answer = invoke(&cluster, k, ADMIN, &own["path"], "SetStatus", &params);
            assert_eq!(answer["return"], 5, "SetStatus {params}: {answer}");
            assert!(
                answer["out"]["Message"]
                    .as_str()
                    .is_some_and(|m| m.contains("Status")),
                "{answer}"
            );
        }
    }
    cluster.wait_for(BOUND, "dbpkg on n1, webpkg on n2", |c| {
        owners(c, 1, "dbpkg") == ["n1"] && owners(c, 1, "webpkg") == ["n2"]
    });

    // Every node's agent serves the same cluster.
    for k in 1..=3 {
        let clusters = enumerate(&cluster, k, "HP_SGCluster");
        assert_eq!(clusters.len(), 1, "n{k}: {clusters:?}");
        assert_eq!(clusters[0]["properties"]["Name"], "testcluster");
        // The heartbeat subnets, as the node's own interfaces give them: both networks of
        // the test (127.0.0.K and 127.0.1.K) are on lo's 127.0.0.0/8.
        assert_eq!(
            clusters[0]["properties"]["InterconnectAddress"], "127.0.0.0/8",
            "n{k}"
        );
        let nodes = enumerate(&cluster, k, "HP_SGNode");
        assert_eq!(nodes.len(), 3, "n{k}: {nodes:?}");
    }
    // HP_Cluster (the parent) answers with the HP_SGCluster.
    let parents = enumerate(&cluster, 2, "HP_Cluster");
    assert_eq!(parents.len(), 1);
    assert_eq!(parents[0]["path"]["class"], "HP_SGCluster");

    // The values equal the daemon's status at the same moment (retried while it changes).
    cluster.wait_for(BOUND, "CIM values equal to the status", |c| {
        let before = c.status(1).expect("n1's status").cluster;
        let packages = enumerate(c, 1, "HP_SGPackage");
        let nodes = enumerate(c, 1, "HP_SGNode");
        let clusters = enumerate(c, 1, "HP_SGCluster");
        let after = c.status(1).expect("n1's status").cluster;
        if before != after {
            return false;
        }
        let cluster_row = &clusters[0]["properties"];
        assert_eq!(cluster_row["ClusterStatus"], after.status.as_str());
        assert_eq!(cluster_row["Summary"], after.summary.as_str());
        assert_eq!(cluster_row["ConfigGeneration"], after.generation);
        assert_eq!(
            cluster_row["MemberTimeout"],
            after.member_timeout.as_micros() as u64
        );
        assert_eq!(
            cluster_row["ClusterCoordinator"],
            after.node_name(after.coordinator.expect("a coordinator"))
        );
        assert_eq!(packages.len(), after.packages.len());
        for row in &after.packages {
            let p = &named(&packages, &row.name)["properties"];
            assert_eq!(
                p["PackageStatus"],
                row.condition.status.as_str(),
                "{}",
                row.name
            );
            assert_eq!(
                p["PackageState"],
                row.condition.state.as_str(),
                "{}",
                row.name
            );
            assert_eq!(p["Summary"], row.summary.as_str(), "{}", row.name);
            assert_eq!(p["AutoRun"], row.auto_run, "{}", row.name);
            assert_eq!(p["PackageType"], row.kind.keyword(), "{}", row.name);
            let owners: Vec<&str> = row.owners.iter().map(|n| after.node_name(n)).collect();
            // A failover package's one node; none for a multi-node package, which lists
            // its nodes in CurrentNodes.
            let current = match owners.as_slice() {
                [one] if row.kind.keyword() == "failover" => Value::from(*one),
                _ => Value::Null,
            };
            assert_eq!(p["CurrentNode"], current, "{}", row.name);
            assert_eq!(p["CurrentNodes"], json!(owners), "{}", row.name);
            let names: Vec<&str> = row.nodes.iter().map(|n| n.name.as_str()).collect();
            assert_eq!(p["NodeNames"], json!(names), "{}", row.name);
        }
        for row in &after.nodes {
            let n = &named(&nodes, &row.name)["properties"];
            assert_eq!(
                n["NodeStatus"],
                row.condition.status.as_str(),
                "{}",
                row.name
            );
            assert_eq!(n["NodeState"], row.condition.state.as_str(), "{}", row.name);
            assert_eq!(n["Summary"], row.summary.as_str(), "{}", row.name);
        }
        true
    });
    // cmviewcl -f line, through the agent, prints what the daemon's status says.
    cluster.wait_for(BOUND, "cmviewcl -f line equal to the status", |c| {
        let before = c.status(1).expect("n1's status").cluster;
        let printed = cmviewcl(c, 1, &["-f", "line"]);
        let after = c.status(1).expect("n1's status").cluster;
        before == after && printed == after.to_line()
    });
    // GET /metrics: the same cluster in Prometheus' format, for an authenticated user only.
    let scraped = cim(&cluster, 2, MONITOR, &json!({"op": "metrics"}));
    assert_eq!(scraped["status"], 200, "{scraped}");
    assert!(
        scraped["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{scraped}"
    );
    let text = scraped["text"].as_str().expect("the metrics");
    for wanted in [
        "cimguard_cluster_up{cluster=\"testcluster\"} 1\n",
        "cimguard_node_up{cluster=\"testcluster\",node=\"n1\",state=\"running\"} 1\n",
        "cimguard_package_up{cluster=\"testcluster\",package=\"dbpkg\",status=\"up\",state=\"running\",node=\"n1\"} 1\n",
        "cimguard_service_restarts{cluster=\"testcluster\",package=\"dbpkg\",service=\"db_monitor\",node=\"n1\"} 0\n",
        "# TYPE cimguard_heartbeat_datagrams_rejected_total counter\n",
    ] {
        assert!(text.contains(wanted), "the metrics lack {wanted:?}:\n{text}");
    }
    let anonymous = cim(&cluster, 2, (MONITOR.0, "wrong"), &json!({"op": "metrics"}));
    assert_eq!(anonymous["status"], 401, "{anonymous}");

    let table = cmviewcl(&cluster, 2, &["-v"]);
    for wanted in [
        "CLUSTER        STATUS\ntestcluster    up\n",
        "    dbpkg          up               running          enabled      n1\n",
        "      Service            up                  2         0   db_monitor\n",
        "      Generic Resource   up                                sfm_disk\n",
        "MULTI_NODE_PACKAGES",
        "      Primary      up           enabled      n1           (current)\n",
    ] {
        assert!(
            table.contains(wanted),
            "cmviewcl -v lacks {wanted:?}:\n{table}"
        );
    }
    assert_eq!(
        cmviewcl(&cluster, 3, &["-f", "line", "-p", "dbpkg", "-l", "package"])
            .lines()
            .find(|l| l.starts_with("status=")),
        Some("status=up")
    );
    // -s config: the package's configured parameters, and no status.
    let configured = cmviewcl(&cluster, 2, &["-f", "line", "-s", "config", "-p", "dbpkg"]);
    for wanted in [
        "description=Example database\n",
        "service:db_monitor|max_restarts=2\n",
        "generic_resource:sfm_disk|evaluation_type=",
        "node:n1|order=1\n",
    ] {
        assert!(
            configured.contains(wanted),
            "cmviewcl -s config lacks {wanted:?}:\n{configured}"
        );
    }
    assert!(!configured.contains("status="), "{configured}");
    // Options that do not go together: exit 2, as the argument parser's own errors.
    exits_saying(
        &cluster,
        2,
        MONITOR,
        ("cmviewcl", &["-s", "config"]),
        2,
        "add -f line",
    );
    let packages = enumerate(&cluster, 1, "HP_SGPackage");
    let db = &named(&packages, "dbpkg")["properties"];
    assert_eq!(db["ElementName"], "Example database");
    assert_eq!(db["EnabledState"], 2);
    assert_eq!(db["OperationalStatus"], json!([2]));
    assert_eq!(db["Started"], true);

    // Associations resolve in both directions.
    let nodes = cim(
        &cluster,
        3,
        ADMIN,
        &json!({"op": "associators", "path": cluster_path(),
                "assoc_class": "HP_SGParticipatingCS"}),
    );
    let mut names: Vec<&str> = nodes
        .as_array()
        .expect("node paths")
        .iter()
        .map(|p| p["keys"]["Name"].as_str().expect("a name"))
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["n1", "n2", "n3"], "{nodes}");
    let node_path = json!({"class": "HP_SGNode", "keys": {
        "CreationClassName": "HP_SGNode", "Name": "n2"}});
    let back = cim(
        &cluster,
        3,
        ADMIN,
        &json!({"op": "associators", "path": node_path, "assoc_class": "HP_SGParticipatingCS"}),
    );
    assert_eq!(back, json!([cluster_path()]), "node to cluster");
    // Each node is the same machine as a host computer system: the agent's own host for its
    // node, the NODE_NAME for the others.
    let identities = enumerate(&cluster, 3, "HP_SGNodeIdentity");
    assert_eq!(identities.len(), 3, "{identities:?}");
    let identity = cim(
        &cluster,
        3,
        ADMIN,
        &json!({"op": "references", "path": node_path, "result_class": "HP_SGNodeIdentity"}),
    );
    assert_eq!(identity.as_array().map(Vec::len), Some(1), "{identity}");
    let n2 = identities
        .iter()
        .find(|i| i["properties"]["SameElement"]["keys"]["Name"] == "n2")
        .unwrap_or_else(|| panic!("no identity of n2 in {identities:?}"));
    assert_eq!(
        n2["properties"]["SystemElement"]["class"],
        "CIM_ComputerSystem"
    );
    assert_eq!(n2["properties"]["SystemElement"]["keys"]["Name"], "n2");
    // Another node's computer system is served on that node: the reference names its host.
    // References to what this agent serves name no host, as SFCB and pywbem's mock server
    // write them (a client compares them with paths without host).
    assert_eq!(n2["properties"]["SystemElement"]["host"], "n2", "{n2}");
    let n3 = identities
        .iter()
        .find(|i| i["properties"]["SameElement"]["keys"]["Name"] == "n3")
        .unwrap_or_else(|| panic!("no identity of n3 in {identities:?}"));
    // The agent names its own host by its NODE_NAME too (not the machine's host name, which
    // all the test's nodes share), as it names the others.
    assert_eq!(
        n3["properties"]["SystemElement"]["keys"]["Name"], "n3",
        "{n3}"
    );
    for (identity, role) in [
        (n3, "SystemElement"),
        (n3, "SameElement"),
        (n2, "SameElement"),
    ] {
        let reference = &identity["properties"][role];
        assert!(reference.get("host").is_none(), "{role}: {identity}");
    }
    // Followed from n2's node on the agent of another node: n2's computer system is named
    // (served by n2's agent), not looked up here.
    let system_of_n2 = cim(
        &cluster,
        3,
        ADMIN,
        &json!({"op": "associators", "path": node_path, "assoc_class": "HP_SGNodeIdentity"}),
    );
    assert_eq!(
        system_of_n2,
        json!([{"class": "CIM_ComputerSystem",
                "keys": {"CreationClassName": "CIM_ComputerSystem", "Name": "n2"}}]),
        "n2 to its computer system"
    );
    let hosted = cim(
        &cluster,
        3,
        ADMIN,
        &json!({"op": "associators", "path": cluster_path(), "result_class": "HP_SGPackage"}),
    );
    assert_eq!(hosted.as_array().map(Vec::len), Some(3), "{hosted}");
    let host = cim(
        &cluster,
        3,
        ADMIN,
        &json!({"op": "associators", "path": package_path("webpkg"),
                "assoc_class": "HP_SGClusterPackage"}),
    );
    assert_eq!(host, json!([cluster_path()]), "package to cluster");
    let needed = cim(
        &cluster,
        3,
        ADMIN,
        &json!({"op": "associators", "path": package_path("webpkg"),
                "assoc_class": "HP_SGPackageDependency"}),
    );
    assert_eq!(
        needed,
        json!([package_path("dbpkg")]),
        "webpkg depends on dbpkg"
    );
    let services = cim(
        &cluster,
        3,
        ADMIN,
        &json!({"op": "associators", "path": package_path("dbpkg"),
                "result_class": "HP_SGPackageService"}),
    );
    assert_eq!(
        services[0]["keys"]["Name"], "dbpkg:db_monitor",
        "{services}"
    );
    // The service's process id, on the agent of the node where it runs (n1); others do not
    // know it.
    let pid = cluster.db_pid(1).expect("dbpkg's service runs on n1");
    let service_pid = |k: usize| {
        enumerate(&cluster, k, "HP_SGPackageService")
            .into_iter()
            .find(|i| i["properties"]["Name"] == "dbpkg:db_monitor")
            .map(|i| i["properties"]["PID"].clone())
    };
    assert_eq!(service_pid(1), Some(json!(pid)));
    assert_eq!(service_pid(2), Some(Value::Null));

    // A monitor may read, not act.
    let denied = invoke(
        &cluster,
        2,
        MONITOR,
        &package_path("dbpkg"),
        "RequestStateChange",
        &json!({"RequestedState": ["uint16", 3]}),
    );
    assert_eq!(
        denied["error"], 2,
        "CIM_ERR_ACCESS_DENIED for a monitor: {denied}"
    );
    assert_eq!(owners(&cluster, 1, "dbpkg"), ["n1"]);

    // RequestStateChange(3) is cmhaltpkg: refused (4, saying why) while webpkg, which
    // needs dbpkg, runs; once webpkg is halted, dbpkg halts and its AUTO_RUN is disabled.
    let refused = invoke(
        &cluster,
        2,
        ADMIN,
        &package_path("dbpkg"),
        "RequestStateChange",
        &json!({"RequestedState": ["uint16", 3]}),
    );
    assert_eq!(refused["return"], 4, "{refused}");
    assert!(
        refused.to_string().contains("webpkg"),
        "the refusal names the dependent: {refused}"
    );
    assert_eq!(owners(&cluster, 1, "dbpkg"), ["n1"]);
    let web_halted = invoke(
        &cluster,
        2,
        ADMIN,
        &package_path("webpkg"),
        "RequestStateChange",
        &json!({"RequestedState": ["uint16", 3]}),
    );
    assert_eq!(web_halted["return"], 0, "{web_halted}");
    let halted = invoke(
        &cluster,
        2,
        ADMIN,
        &package_path("dbpkg"),
        "RequestStateChange",
        &json!({"RequestedState": ["uint16", 3]}),
    );
    assert_eq!(halted["return"], 0, "{halted}");
    // Return code 0 is the end of the halt, as cmhaltpkg's exit: the agent asked sees it.
    let packages = enumerate(&cluster, 2, "HP_SGPackage");
    let db = &named(&packages, "dbpkg")["properties"];
    let web = &named(&packages, "webpkg")["properties"];
    assert_eq!(
        (&db["PackageState"], &db["AutoRun"], &db["CurrentNode"]),
        (&json!("halted"), &json!(false), &Value::Null),
        "{db}"
    );
    assert_eq!(web["PackageState"], "halted", "{web}");
    // RequestedState is the state last requested through any node's agent (the cluster keeps
    // it): 3 on the agent asked and on the others alike; 5 (No Change) for a package no
    // request was made of.
    let requested = |cluster: &TestCluster, k: usize, name: &str| {
        named(&enumerate(cluster, k, "HP_SGPackage"), name)["properties"]["RequestedState"].clone()
    };
    for k in 1..=3 {
        assert_eq!(requested(&cluster, k, "dbpkg"), 3, "n{k}");
        assert_eq!(requested(&cluster, k, "monpkg"), 5, "n{k}");
    }
    // Halted, dbpkg still has its service, down and on no node; cmviewcl -v lists it down.
    let service = enumerate(&cluster, 2, "HP_SGPackageService")
        .into_iter()
        .find(|i| i["properties"]["Name"] == "dbpkg:db_monitor")
        .expect("a halted package's service is still an instance");
    assert_eq!(service["properties"]["ServiceStatus"], "down", "{service}");
    assert_eq!(service["properties"]["NodeName"], Value::Null, "{service}");
    assert_eq!(service["properties"]["PID"], Value::Null, "{service}");
    assert_eq!(service["properties"]["EnabledState"], 3, "{service}");
    assert_eq!(
        service["properties"]["OperationalStatus"],
        json!([10]),
        "stopped, not an error: {service}"
    );
    assert!(
        cmviewcl(&cluster, 2, &["-v", "-p", "dbpkg"])
            .contains("      Service            down                2         0   db_monitor\n"),
        "{}",
        cmviewcl(&cluster, 2, &["-v", "-p", "dbpkg"])
    );

    // RequestStateChange(2, NodeName) is cmrunpkg -n.
    let run = invoke(
        &cluster,
        1,
        ADMIN,
        &package_path("dbpkg"),
        "RequestStateChange",
        &json!({"RequestedState": ["uint16", 2], "NodeName": ["string", "n3"]}),
    );
    assert_eq!(run["return"], 0, "{run}");
    // 0 is the end of the run: the agent asked sees it running there at once.
    let packages = enumerate(&cluster, 1, "HP_SGPackage");
    let db = &named(&packages, "dbpkg")["properties"];
    assert_eq!(
        (&db["PackageState"], &db["CurrentNode"]),
        (&json!("running"), &json!("n3")),
        "{db}"
    );
    assert_eq!(requested(&cluster, 1, "dbpkg"), 2);
    assert_eq!(requested(&cluster, 2, "dbpkg"), 2);

    // A refusal is return code 4: dbpkg already runs (on n3).
    let refused = invoke(
        &cluster,
        1,
        ADMIN,
        &package_path("dbpkg"),
        "RequestStateChange",
        &json!({"RequestedState": ["uint16", 2], "NodeName": ["string", "n1"]}),
    );
    assert_eq!(refused["return"], 4, "{refused}");
    // A node that is not one of the package's is an invalid parameter (5).
    let invalid = invoke(
        &cluster,
        1,
        ADMIN,
        &package_path("dbpkg"),
        "RequestStateChange",
        &json!({"RequestedState": ["uint16", 2], "NodeName": ["string", "n9"]}),
    );
    assert_eq!(invalid["return"], 5, "{invalid}");

    // SetAutoRun and SetNodeSwitching are cmmodpkg -e/-d [-n].
    let answer = invoke(
        &cluster,
        1,
        ADMIN,
        &package_path("webpkg"),
        "SetNodeSwitching",
        &json!({"NodeName": ["string", "n1"], "Enabled": ["boolean", false]}),
    );
    assert_eq!(answer["return"], 0, "{answer}");
    cluster.wait_for(BOUND, "node switching to n1 disabled", |c| {
        let links = enumerate(c, 1, "HP_SGPackageNode");
        links.iter().any(|l| {
            l["properties"]["Antecedent"]["keys"]["Name"] == "n1"
                && l["properties"]["Dependent"]["keys"]["Name"] == "webpkg"
                && l["properties"]["SwitchingEnabled"] == false
        })
    });
    let answer = invoke(
        &cluster,
        1,
        ADMIN,
        &package_path("webpkg"),
        "SetAutoRun",
        &json!({"Enabled": ["boolean", true]}),
    );
    assert_eq!(answer["return"], 0, "{answer}");
    cluster.wait_for(BOUND, "webpkg running again with AUTO_RUN", |c| {
        let packages = enumerate(c, 1, "HP_SGPackage");
        let web = &named(&packages, "webpkg")["properties"];
        web["AutoRun"] == true && web["PackageState"] == "running"
    });

    // A package that does not exist is CIM_ERR_NOT_FOUND (6).
    let missing = invoke(
        &cluster,
        1,
        ADMIN,
        &package_path("nosuch"),
        "SetAutoRun",
        &json!({"Enabled": ["boolean", true]}),
    );
    assert_eq!(missing["error"], 6, "{missing}");

    // pywbemcli, as a monitoring engineer calls a method: the answer prints (a NULL
    // output parameter once stopped it with a TypeError).
    let program =
        cimguard_tests::pyagent::venv_program("pywbemcli").unwrap_or_else(|e| panic!("{e}"));
    let scratch = tempfile::tempdir().expect("a folder");
    let mut pywbemcli = cimguard_tests::pyagent::client_command(program);
    pywbemcli.current_dir(scratch.path());
    for (variable, _) in std::env::vars_os() {
        if variable.to_string_lossy().starts_with("PYWBEMCLI_") {
            pywbemcli.env_remove(variable);
        }
    }
    let cluster_name = line_value(&cluster, 1, "name").expect("the cluster's name");
    pywbemcli
        .args(["--server", &cluster.agent_url(1), "--ca-certs"])
        .arg(cluster.agent_ca(1))
        .args([
            "--user",
            ADMIN.0,
            "--password",
            ADMIN.1,
            "--default-namespace",
        ])
        .args(["root/cimv2", "instance", "invokemethod"])
        .arg(format!(
            "HP_SGPackage.SystemCreationClassName=\"HP_SGCluster\",SystemName=\"{cluster_name}\",\
             CreationClassName=\"HP_SGPackage\",Name=\"webpkg\""
        ))
        .args(["SetAutoRun", "-p", "Enabled=true"]);
    let output =
        output_within(&mut pywbemcli, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        output.status.success()
            && String::from_utf8_lossy(&output.stdout).trim_end() == "ReturnValue=0",
        "{}",
        describe(&output)
    );
}

#[test]
fn killing_the_node_running_dbpkg_moves_it_and_the_agents_say_so() {
    let mut cluster = demo_cluster();
    cluster.wait_for(BOUND, "a formed cluster", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    for k in 1..=3 {
        cluster
            .request(
                k,
                &cimguard_cluster::runtime::daemon::Request::SetResource {
                    name: "sfm_disk".into(),
                    value: cimguard_cluster::packages::ResourceValue::Status(true),
                },
            )
            .expect("sfm_disk set");
    }
    cluster.wait_for(BOUND, "dbpkg on n1", |c| owners(c, 2, "dbpkg") == ["n1"]);
    cluster.signal(1, "KILL");
    let _ = cluster.exited(1);
    cluster.wait_for(BOUND, "dbpkg on another node, n1 failed", |c| {
        let packages = enumerate(c, 2, "HP_SGPackage");
        let db = &named(&packages, "dbpkg")["properties"];
        let nodes = enumerate(c, 2, "HP_SGNode");
        let n1 = &named(&nodes, "n1")["properties"];
        db["PackageState"] == "running"
            && db["CurrentNode"] != "n1"
            && !db["CurrentNode"].is_null()
            && n1["NodeStatus"] == "down"
            && n1["NodeState"] == "failed"
    });
}

#[test]
fn the_package_commands_work_through_the_agent() {
    let mut cluster = demo_cluster();
    cluster.wait_for(BOUND, "a formed cluster", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    // cmsetresource acts on the node whose agent it asks.
    for k in 1..=3 {
        succeeds(
            &cluster,
            k,
            "cmsetresource",
            &["-r", "sfm_disk", "-s", "up"],
        );
        assert_eq!(
            succeeds(&cluster, k, "cmgetresource", &["-r", "sfm_disk"]),
            "up\n"
        );
    }
    fails(
        &cluster,
        1,
        "cmgetresource",
        &["-r", "nosuch"],
        "nosuch is not configured",
    );
    cluster.wait_for(BOUND, "dbpkg on n1, webpkg on n2", |c| {
        owners(c, 1, "dbpkg") == ["n1"] && owners(c, 1, "webpkg") == ["n2"]
    });

    // cmhaltpkg refuses while a package that depends on it runs; both at once halt.
    fails(
        &cluster,
        2,
        "cmhaltpkg",
        &["dbpkg"],
        "packages that depend on dbpkg are running: halt webpkg first",
    );
    succeeds(&cluster, 2, "cmhaltpkg", &["dbpkg", "webpkg"]);
    // Every node has heard of it (cmrunpkg below asks n3, which refuses a package it still
    // sees halting).
    cluster.wait_for(BOUND, "dbpkg and webpkg halted, AUTO_RUN off", |c| {
        (1..=3).all(|k| {
            line_value(c, k, "package:dbpkg|state").as_deref() == Some("halted")
                && line_value(c, k, "package:webpkg|state").as_deref() == Some("halted")
                && line_value(c, k, "package:dbpkg|autorun").as_deref() == Some("disabled")
        })
    });

    // cmrunpkg -n, then cmmodpkg -e and -d -n.
    succeeds(&cluster, 3, "cmrunpkg", &["-n", "n2", "dbpkg"]);
    cluster.wait_for(BOUND, "dbpkg running on n2, as every node sees it", |c| {
        (1..=3).all(|k| {
            line_value(c, k, "package:dbpkg|state").as_deref() == Some("running")
                && line_value(c, k, "package:dbpkg|owner").as_deref() == Some("n2")
        })
    });
    succeeds(&cluster, 3, "cmmodpkg", &["-e", "dbpkg"]);
    succeeds(&cluster, 3, "cmmodpkg", &["-d", "-n", "n3", "dbpkg"]);
    cluster.wait_for(BOUND, "AUTO_RUN on, switching to n3 off", |c| {
        line_value(c, 2, "package:dbpkg|autorun").as_deref() == Some("enabled")
            && line_value(c, 2, "package:dbpkg|node:n3|switching").as_deref() == Some("disabled")
    });

    // Refusals and errors: one line, exit status 1.
    fails(
        &cluster,
        1,
        "cmrunpkg",
        &["-n", "n1", "dbpkg"],
        "already running on n2",
    );
    fails(
        &cluster,
        1,
        "cmrunpkg",
        &["nosuch"],
        "package nosuch does not exist",
    );
    fails(
        &cluster,
        1,
        "cmrunpkg",
        &["-n", "n9", "dbpkg"],
        "n9 is not a node of package dbpkg",
    );
    fails(
        &cluster,
        1,
        "cmviewcl",
        &["-p", "nosuch"],
        "package nosuch does not exist",
    );
    let output = command(&cluster, 1, (ADMIN.0, "wrong"), "cmviewcl", &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("user or password is wrong"),
        "{}",
        describe(&output)
    );
    // A monitor may look, not act.
    let output = command(&cluster, 1, MONITOR, "cmmodpkg", &["-d", "dbpkg"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("CIM_ERR_ACCESS_DENIED"),
        "{}",
        describe(&output)
    );
}

/// The owners of `package` in node `k`'s status, sorted.
fn sorted_owners(cluster: &TestCluster, k: usize, package: &str) -> Vec<String> {
    let mut owners = owners(cluster, k, package);
    owners.sort();
    owners
}

/// cmhaltpkg tries each package named, dependents first, and tells each failure with the
/// package's name (and the node asked about); cmrunpkg without -n runs a multi-node package
/// on every node of its list that is up with switching enabled, wherever it runs already.
/// cmrunpkg and cmmodpkg also try each package named, cmrunpkg dependencies first.
#[test]
fn cmhaltpkg_tries_every_package_and_cmrunpkg_runs_a_multi_node_package_everywhere() {
    let mut cluster = formed_with_sfm_disk_up();
    cluster.wait_for(BOUND, "monpkg everywhere, webpkg running", |c| {
        (1..=3).all(|k| sorted_owners(c, k, "monpkg") == ["n1", "n2", "n3"])
            && !owners(c, 1, "webpkg").is_empty()
    });
    // A refusal names the package: cmhaltpkg's own check of the dependents, and the
    // cluster's, whether the coordinator refuses the command for the node given it or that
    // node's own daemon does.
    fails(
        &cluster,
        2,
        "cmhaltpkg",
        &["dbpkg"],
        "cmhaltpkg: packages that depend on dbpkg are running: halt webpkg first",
    );
    for k in 1..=3 {
        fails(
            &cluster,
            k,
            "cmmodpkg",
            &["-m", "on", "dbpkg"],
            "cmmodpkg: global switching of package dbpkg is enabled: disable it first",
        );
    }
    succeeds(&cluster, 1, "cmhaltpkg", &["monpkg"]);
    cluster.wait_for(BOUND, "monpkg halted, as every node sees it", |c| {
        (1..=3).all(|k| owners(c, k, "monpkg").is_empty())
    });

    // monpkg is halted already: said with its name, exit 1, and webpkg halted all the same.
    let output = command(&cluster, 1, ADMIN, "cmhaltpkg", &["monpkg", "webpkg"]);
    let error = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert_eq!(
        error.lines().collect::<Vec<_>>(),
        ["cmhaltpkg: package monpkg is not running"],
        "{}",
        describe(&output)
    );
    cluster.wait_for(BOUND, "webpkg halted", |c| {
        line_value(c, 1, "package:webpkg|state").as_deref() == Some("halted")
    });
    fails(
        &cluster,
        1,
        "cmhaltpkg",
        &["-n", "n2", "monpkg"],
        "package monpkg is not running on n2",
    );

    // cmrunpkg without -n: every node of the list but n3, where switching is disabled.
    succeeds(&cluster, 1, "cmmodpkg", &["-d", "-n", "n3", "monpkg"]);
    cluster.wait_for(BOUND, "switching to n3 disabled", |c| {
        (1..=3).all(|k| {
            line_value(c, k, "package:monpkg|node:n3|switching").as_deref() == Some("disabled")
        })
    });
    succeeds(&cluster, 1, "cmrunpkg", &["monpkg"]);
    cluster.wait_for(BOUND, "monpkg on n1 and n2", |c| {
        (1..=3).all(|k| sorted_owners(c, k, "monpkg") == ["n1", "n2"])
    });
    // Running on some nodes already: started on the others, from any node.
    succeeds(&cluster, 2, "cmmodpkg", &["-e", "-n", "n3", "monpkg"]);
    cluster.wait_for(BOUND, "switching to n3 enabled", |c| {
        (1..=3).all(|k| {
            line_value(c, k, "package:monpkg|node:n3|switching").as_deref() == Some("enabled")
        })
    });
    let said = succeeds(&cluster, 2, "cmrunpkg", &["-v", "monpkg"]);
    assert!(said.contains("n3"), "{said}");
    cluster.wait_for(BOUND, "monpkg on every node", |c| {
        (1..=3).all(|k| sorted_owners(c, k, "monpkg") == ["n1", "n2", "n3"])
    });
    // -n repeated: the instances on those nodes, halted then run again; the closing line
    // is Serviceguard's, said without -v too. A failover package takes one -n.
    let said = succeeds(
        &cluster,
        3,
        "cmhaltpkg",
        &["-n", "n1", "-n", "n2", "monpkg"],
    );
    assert_eq!(
        said,
        "cmhaltpkg: Completed successfully on all packages specified\n"
    );
    cluster.wait_for(BOUND, "monpkg on n3 only", |c| {
        (1..=3).all(|k| sorted_owners(c, k, "monpkg") == ["n3"])
    });
    let said = succeeds(&cluster, 3, "cmrunpkg", &["-n", "n1", "-n", "n2", "monpkg"]);
    assert_eq!(said, "cmrunpkg: All specified packages are running\n");
    cluster.wait_for(BOUND, "monpkg on every node again", |c| {
        (1..=3).all(|k| sorted_owners(c, k, "monpkg") == ["n1", "n2", "n3"])
    });
    fails(
        &cluster,
        3,
        "cmrunpkg",
        &["-n", "n1", "-n", "n2", "webpkg"],
        "a failover package runs on one node",
    );
    // Running everywhere: nothing to start, no error; its preview says so.
    succeeds(&cluster, 3, "cmrunpkg", &["monpkg"]);
    assert_eq!(
        succeeds(&cluster, 3, "cmrunpkg", &["-t", "monpkg"]),
        "cmrunpkg -t: no package would start or halt\n"
    );

    // cmrunpkg runs each package named and tells each refusal with its name: nosuch does
    // not exist, dbpkg runs already, and webpkg (halted above) runs all the same.
    let output = command(
        &cluster,
        2,
        ADMIN,
        "cmrunpkg",
        &["-v", "nosuch", "webpkg", "dbpkg"],
    );
    let error = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert_eq!(
        error.lines().collect::<Vec<_>>(),
        [
            "cmrunpkg: package nosuch does not exist",
            "cmrunpkg: package dbpkg is already running on n1"
        ],
        "{}",
        describe(&output)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "cmrunpkg: package webpkg is running on n2\n"
    );
    // cmmodpkg likewise: AUTO_RUN of webpkg and dbpkg off though nosuch is refused.
    let output = command(
        &cluster,
        2,
        ADMIN,
        "cmmodpkg",
        &["-d", "webpkg", "nosuch", "dbpkg"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "cmmodpkg: package nosuch does not exist\n"
    );
    cluster.wait_for(BOUND, "AUTO_RUN of webpkg and dbpkg off", |c| {
        ["webpkg", "dbpkg"].iter().all(|p| {
            line_value(c, 1, &format!("package:{p}|autorun")).as_deref() == Some("disabled")
        })
    });
    // Named in any order, a package runs after those it depends on: webpkg needs dbpkg up.
    succeeds(&cluster, 2, "cmhaltpkg", &["dbpkg", "webpkg"]);
    cluster.wait_for(BOUND, "dbpkg and webpkg halted", |c| {
        owners(c, 2, "dbpkg").is_empty() && owners(c, 2, "webpkg").is_empty()
    });
    // -t previews the same commands and does nothing: the cluster's answer says what would
    // start where, in order, and the packages stay halted.
    let previewed = succeeds(&cluster, 2, "cmrunpkg", &["-t", "webpkg", "dbpkg"]);
    assert_eq!(
        previewed,
        "cmrunpkg -t: package dbpkg would start on n2\n\
         cmrunpkg -t: package webpkg would start on n2\n"
    );
    let previewed = succeeds(&cluster, 3, "cmmodpkg", &["-t", "-e", "dbpkg"]);
    assert!(
        previewed.starts_with("cmmodpkg -t: package dbpkg would start on "),
        "{previewed}"
    );
    fails(
        &cluster,
        1,
        "cmrunpkg",
        &["-t", "-n", "n9", "dbpkg"],
        "n9 is not a node",
    );
    // A package refused does not stop the others' preview, as it does not stop the
    // commands.
    let output = command(&cluster, 2, ADMIN, "cmrunpkg", &["-t", "nosuch", "dbpkg"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "cmrunpkg -t: package dbpkg would start on n2\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "cmrunpkg: package nosuch does not exist\n"
    );
    for k in 1..=3 {
        for package in ["dbpkg", "webpkg"] {
            assert_eq!(
                line_value(&cluster, k, &format!("package:{package}|state")).as_deref(),
                Some("halted"),
                "{package} on n{k} after the previews"
            );
        }
    }
    succeeds(&cluster, 2, "cmrunpkg", &["webpkg", "dbpkg"]);
    // Running, not only placed, as n1 sees them: the preview below is checked against that.
    cluster.wait_for(BOUND, "dbpkg and webpkg running on n2", |c| {
        ["dbpkg", "webpkg"].iter().all(|p| {
            owners(c, 1, p) == ["n2"]
                && line_value(c, 1, &format!("package:{p}|state")).as_deref() == Some("running")
        })
    });
    // Each command the cluster would refuse is told, not only the first.
    let output = command(&cluster, 1, ADMIN, "cmrunpkg", &["-t", "dbpkg", "webpkg"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let error = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = error.lines().collect();
    assert!(
        lines.len() == 2
            && lines[0].contains("dbpkg")
            && lines[1].contains("webpkg")
            && lines.iter().all(|l| l.contains("running")),
        "{}",
        describe(&output)
    );
    // Any user may preview, as PreviewPackageCommands; a preview longer than any command an
    // operator can give is refused as an invalid parameter.
    let service = json!({"class": "HP_SGClusteringService", "keys": {
        "SystemCreationClassName": "HP_SGCluster", "SystemName": "testcluster",
        "CreationClassName": "HP_SGClusteringService", "Name": "cmcld"}});
    let previewed = invoke(
        &cluster,
        1,
        MONITOR,
        &service,
        "PreviewPackageCommands",
        &json!({"Operations": ["strings", ["halt"]], "PackageNames": ["strings", ["webpkg"]]}),
    );
    assert_eq!(previewed["return"], 0, "{previewed}");
    assert_eq!(
        previewed["out"]["ActionKinds"],
        json!(["halt"]),
        "{previewed}"
    );
    assert_eq!(
        previewed["out"]["ActionNodes"],
        json!(["n2"]),
        "{previewed}"
    );
    let many = vec!["halt"; 4801];
    let webpkgs = vec!["webpkg"; 4801];
    let refused = invoke(
        &cluster,
        1,
        MONITOR,
        &service,
        "PreviewPackageCommands",
        &json!({"Operations": ["strings", many], "PackageNames": ["strings", webpkgs]}),
    );
    assert_eq!(refused["return"], 5, "{refused}");
    assert!(
        refused["out"]["Message"]
            .as_str()
            .is_some_and(|m| m.contains("at most 4800")),
        "{refused}"
    );
    // A halt previewed while a dependent runs is the cluster's refusal; with the dependent,
    // both halt, the dependent first.
    fails(
        &cluster,
        3,
        "cmhaltpkg",
        &["-t", "dbpkg"],
        "cmhaltpkg: packages that depend on dbpkg are running: halt webpkg first",
    );
    assert_eq!(
        succeeds(&cluster, 3, "cmhaltpkg", &["-t", "dbpkg", "webpkg"]),
        "cmhaltpkg -t: package webpkg would halt on n2\n\
         cmhaltpkg -t: package dbpkg would halt on n2\n"
    );
    // Maintenance mode of a package that is down (AUTO_RUN off, as above): on a node named,
    // where it then starts.
    succeeds(&cluster, 2, "cmhaltpkg", &["webpkg", "dbpkg"]);
    cluster.wait_for(BOUND, "dbpkg and webpkg halted", |c| {
        (1..=3).all(|k| owners(c, k, "dbpkg").is_empty() && owners(c, k, "webpkg").is_empty())
    });
    fails(
        &cluster,
        1,
        "cmmodpkg",
        &["-m", "on", "dbpkg"],
        "package dbpkg is down: name the node it is to run on in maintenance mode",
    );
    succeeds(&cluster, 1, "cmmodpkg", &["-m", "on", "-n", "n3", "dbpkg"]);
    cluster.wait_for(BOUND, "dbpkg in maintenance", |c| {
        line_value(c, 2, "package:dbpkg|state").as_deref() == Some("maintenance")
    });
    fails(
        &cluster,
        2,
        "cmrunpkg",
        &["-n", "n2", "dbpkg"],
        "package dbpkg is in maintenance mode for n3",
    );
    succeeds(&cluster, 2, "cmrunpkg", &["-n", "n3", "dbpkg"]);
    cluster.wait_for(BOUND, "dbpkg running on n3 in maintenance", |c| {
        owners(c, 1, "dbpkg") == ["n3"]
            && line_value(c, 1, "package:dbpkg|state").as_deref() == Some("maintenance")
    });
    succeeds(&cluster, 2, "cmhaltpkg", &["dbpkg"]);
    succeeds(&cluster, 2, "cmmodpkg", &["-m", "off", "dbpkg"]);
    cluster.wait_for(BOUND, "dbpkg halted, out of maintenance", |c| {
        owners(c, 1, "dbpkg").is_empty()
            && line_value(c, 1, "package:dbpkg|state").as_deref() == Some("halted")
    });
}

#[test]
fn a_killed_service_restarts_then_its_package_fails_over_with_switching_disabled() {
    let mut cluster = formed_with_sfm_disk_up();
    cluster.wait_for(BOUND, "dbpkg's service on n1", |c| {
        owners(c, 1, "dbpkg") == ["n1"] && c.db_pid(1).is_some()
    });
    // service_restart 2: two kills are restarts, counted in CIM and cmviewcl -v.
    for restarts in 1..=2u64 {
        let old = cluster.db_pid(1).expect("the service runs");
        let killed = std::process::Command::new("kill")
            .args(["-9", &old.to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        cluster.wait_for(BOUND, "the service restarted and counted", |c| {
            let services = enumerate(c, 2, "HP_SGPackageService");
            let counted = services.iter().any(|s| {
                s["properties"]["Name"] == "dbpkg:db_monitor"
                    && s["properties"]["Restarts"] == restarts
                    && s["properties"]["ServiceStatus"] == "up"
            });
            counted
                && c.db_pid(1).is_some_and(|new| new != old)
                && cmviewcl(c, 3, &["-v", "-p", "dbpkg"]).contains(&format!(
                    "      Service            up                  2         {restarts}   db_monitor\n"
                ))
        });
    }
    // The third exhausts them: dbpkg fails over, and node switching to n1 is disabled.
    let old = cluster.db_pid(1).expect("the service runs");
    let killed = std::process::Command::new("kill")
        .args(["-9", &old.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    cluster.wait_for(BOUND, "dbpkg on n2, switching to n1 disabled", |c| {
        let packages = enumerate(c, 3, "HP_SGPackage");
        let links = enumerate(c, 3, "HP_SGPackageNode");
        let n1_disabled = links.iter().any(|l| {
            l["properties"]["Antecedent"]["keys"]["Name"] == "n1"
                && l["properties"]["Dependent"]["keys"]["Name"] == "dbpkg"
                && l["properties"]["SwitchingEnabled"] == false
        });
        named(&packages, "dbpkg")["properties"]["CurrentNode"] == "n2"
            && n1_disabled
            && line_value(c, 3, "package:dbpkg|node:n1|switching").as_deref() == Some("disabled")
    });
}

/// `cmcheckconf ARGS` as the administrator, which must find errors (exit status 1 and its
/// failed verification line): its report, which must say `wanted`.
fn check_finds(cluster: &TestCluster, k: usize, args: &[&str], wanted: &str) -> String {
    let output = command(cluster, k, ADMIN, "cmcheckconf", args);
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.code() == Some(1)
            && report.contains("cmcheckconf: Verification failed")
            && report.contains(wanted),
        "cmcheckconf {args:?} should find {wanted:?}: {}",
        describe(&output)
    );
    report
}

/// `name ARGS` as the administrator, which must fail with exit status 1: its standard error,
/// which must say `wanted`.
fn fails_saying(
    cluster: &TestCluster,
    k: usize,
    name: &str,
    args: &[&str],
    wanted: &str,
) -> String {
    exits_saying(cluster, k, ADMIN, (name, args), 1, wanted)
}

/// Runs `command` as `user` on node `k` and checks that it exits with `status` and says
/// `wanted` on stderr, which it returns.
fn exits_saying(
    cluster: &TestCluster,
    k: usize,
    user: (&str, &str),
    (name, args): (&str, &[&str]),
    status: i32,
    wanted: &str,
) -> String {
    let output = command(cluster, k, user, name, args);
    let error = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(status),
        "{name} {args:?}: {}",
        describe(&output)
    );
    assert!(
        error.contains(wanted),
        "{name} {args:?} should say {wanted:?}: {error}"
    );
    error
}

#[test]
fn the_configuration_and_cluster_commands_work_through_the_agent() {
    let mut cluster = demo_cluster();
    cluster.wait_for(BOUND, "a formed cluster with its packages placed", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
            && owners(c, 1, "dbpkg") == ["n1"]
            && owners(c, 1, "webpkg") == ["n2"]
    });
    let work = tempfile::tempdir().unwrap();
    let file = |name: &str| work.path().join(name).display().to_string();

    // cmgetconf writes the configuration in effect; cmcheckconf finds it correct.
    let cluster_text = succeeds(&cluster, 2, "cmgetconf", &["-c", "testcluster"]);
    assert!(cluster_text.contains("CLUSTER_NAME"), "{cluster_text}");
    std::fs::write(file("cluster.ascii"), &cluster_text).unwrap();
    succeeds(
        &cluster,
        2,
        "cmgetconf",
        &["-p", "webpkg", &file("webpkg.conf")],
    );
    let webpkg = std::fs::read_to_string(file("webpkg.conf")).unwrap();
    assert!(
        webpkg.contains("webpkg") && webpkg.contains("dbpkg = up"),
        "{webpkg}"
    );
    succeeds(
        &cluster,
        2,
        "cmgetconf",
        &["-p", "dbpkg", &file("dbpkg.conf")],
    );
    let checked = succeeds(
        &cluster,
        2,
        "cmcheckconf",
        &[
            "-C",
            &file("cluster.ascii"),
            "-P",
            &file("webpkg.conf"),
            "-P",
            &file("dbpkg.conf"),
        ],
    );
    assert!(checked.contains("no errors found"), "{checked}");
    // cmcheckconf checks against the cluster in effect, as cmapplyconf would: what the
    // running cluster refuses, and what the files alone cannot tell.
    let renamed = cluster_text.replace("CLUSTER_NAME", "CLUSTER_NAME renamed\n#");
    std::fs::write(file("renamed.ascii"), renamed).unwrap();
    check_finds(
        &cluster,
        2,
        &["-C", &file("renamed.ascii")],
        "cmcheckconf: CLUSTER_NAME can only be changed while the cluster is halted",
    );
    let lowered = cluster_text
        .lines()
        .map(|line| match line.split_whitespace().next() {
            Some("MAX_CONFIGURED_PACKAGES") => "MAX_CONFIGURED_PACKAGES 1",
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(file("lowered.ascii"), lowered).unwrap();
    check_finds(
        &cluster,
        2,
        &["-C", &file("lowered.ascii")],
        "allows 1 (MAX_CONFIGURED_PACKAGES)",
    );
    // A package file alone is checked against the cluster's nodes, and dbpkg, running on
    // n1, cannot lose n1 from its node_name list while it runs there.
    std::fs::write(
        file("stranger.conf"),
        "package_name stranger\npackage_type failover\nnode_name n9\n",
    )
    .unwrap();
    check_finds(
        &cluster,
        2,
        &["-P", &file("stranger.conf")],
        "stranger.conf:3: error: NODE_NAME: n9 is not a node of cluster",
    );
    let moved = std::fs::read_to_string(file("dbpkg.conf"))
        .unwrap()
        .lines()
        .filter(|line| line.split_whitespace().collect::<Vec<_>>() != ["node_name", "n1"])
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(file("moved.conf"), moved).unwrap();
    let refused = check_finds(
        &cluster,
        2,
        &["-P", &file("moved.conf")],
        "cmcheckconf: node_name of package dbpkg can only be changed while it is halted",
    );
    // What cmcheckconf refuses, cmapplyconf refuses too. Only a FULL_ADMIN checks, as only
    // root may run cmcheckconf in Serviceguard: a monitor is refused.
    fails_saying(
        &cluster,
        2,
        "cmapplyconf",
        &["-f", "-P", &file("moved.conf")],
        refused
            .lines()
            .find_map(|l| l.strip_prefix("cmcheckconf: "))
            .unwrap(),
    );
    let output = command(
        &cluster,
        3,
        ADMIN,
        "cmcheckconf",
        &["-v", "-P", &file("dbpkg.conf")],
    );
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && report.contains("Checked against the cluster in effect"),
        "{}",
        describe(&output)
    );
    let output = command(
        &cluster,
        3,
        MONITOR,
        "cmcheckconf",
        &["-P", &file("dbpkg.conf")],
    );
    assert!(
        !output.status.success()
            && String::from_utf8_lossy(&output.stderr).contains("CIM_ERR_ACCESS_DENIED"),
        "{}",
        describe(&output)
    );
    fails_saying(
        &cluster,
        2,
        "cmgetconf",
        &["-p", "nosuch"],
        "package nosuch does not exist",
    );
    // cmviewcl -c names the cluster to show: this agent's, or refused.
    assert!(cmviewcl(&cluster, 2, &["-c", "testcluster", "-l", "cluster"]).contains("testcluster"));
    fails_saying(
        &cluster,
        2,
        "cmviewcl",
        &["-c", "othercluster"],
        "this agent's cluster is testcluster, not othercluster",
    );
    // -r of a release from A.11.16 formats as this one; an older one is refused. No site or
    // group is configured: -l site shows nothing, -S is refused.
    assert_eq!(
        cmviewcl(&cluster, 2, &["-r", "A.11.16", "-l", "cluster"]),
        cmviewcl(&cluster, 2, &["-l", "cluster"])
    );
    // (A wrong argument: a usage error, status 2.)
    exits_saying(
        &cluster,
        2,
        ADMIN,
        ("cmviewcl", &["-r", "A.11.09"]),
        2,
        "A.11.16 or later",
    );
    assert_eq!(cmviewcl(&cluster, 2, &["-l", "site"]), "");
    fails_saying(
        &cluster,
        2,
        "cmviewcl",
        &["-S", "east"],
        "site east is not configured",
    );

    // cmmakepkg, filled in, then cmapplyconf on a node that does not coordinate: a new
    // generation on every node, and the package runs.
    succeeds(
        &cluster,
        2,
        "cmmakepkg",
        &[
            "-m",
            "sg/failover",
            "-m",
            "sg/service",
            &file("newpkg.conf"),
        ],
    );
    let template = std::fs::read_to_string(file("newpkg.conf")).unwrap();
    let filled: String = template
        .lines()
        .map(|line| match line.split_whitespace().next() {
            Some("package_name") => "package_name newpkg".to_owned(),
            Some("node_name") => "node_name n3\nnode_name n2".to_owned(),
            Some("#service_name") => "service_name newsvc".to_owned(),
            Some("#service_cmd") => "service_cmd \"exec sleep 100000\"".to_owned(),
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(file("newpkg.conf"), filled).unwrap();
    let applied = succeeds(
        &cluster,
        2,
        "cmapplyconf",
        &["-f", "-P", &file("newpkg.conf")],
    );
    assert!(
        applied.contains("Completed the cluster update"),
        "{applied}"
    );
    cluster.wait_for(BOUND, "newpkg known and running on n3 everywhere", |c| {
        (1..=3).all(|k| owners(c, k, "newpkg") == ["n3"])
    });
    // The other packages are as they were.
    assert_eq!(owners(&cluster, 1, "dbpkg"), ["n1"]);
    assert_eq!(owners(&cluster, 1, "webpkg"), ["n2"]);

    // A broken file: every finding, nothing applied.
    std::fs::write(
        file("broken.conf"),
        "package_name broken\nnode_name n9\nVG vg01\n",
    )
    .unwrap();
    fails_saying(
        &cluster,
        2,
        "cmapplyconf",
        &["-P", &file("broken.conf")],
        "Verification failed",
    );
    assert!(cmviewcl(&cluster, 1, &["-f", "line"])
        .lines()
        .all(|l| !l.contains("broken")));

    // cmmodpkg -R -s and -m.
    succeeds(
        &cluster,
        3,
        "cmmodpkg",
        &["-R", "-s", "db_monitor", "dbpkg"],
    );
    fails(
        &cluster,
        3,
        "cmmodpkg",
        &["-R", "-s", "nosuch", "dbpkg"],
        "nosuch is not a service of package dbpkg",
    );
    fails_saying(
        &cluster,
        3,
        "cmmodpkg",
        &["-m", "on", "dbpkg"],
        "cmmodpkg: ",
    );

    // cmdeleteconf refuses a running package, then deletes it once halted.
    fails_saying(
        &cluster,
        1,
        "cmdeleteconf",
        &["-f", "-p", "newpkg"],
        "newpkg",
    );
    succeeds(&cluster, 1, "cmhaltpkg", &["newpkg"]);
    cluster.wait_for(BOUND, "newpkg halted everywhere", |c| {
        (1..=3).all(|k| line_value(c, k, "package:newpkg|state").as_deref() == Some("halted"))
    });
    let deleted = succeeds(&cluster, 1, "cmdeleteconf", &["-f", "-p", "newpkg"]);
    assert!(
        deleted.contains("Completed the cluster update"),
        "{deleted}"
    );
    cluster.wait_for(BOUND, "newpkg gone everywhere", |c| {
        (1..=3).all(|k| {
            cmviewcl(c, k, &["-f", "line"])
                .lines()
                .all(|l| !l.contains("newpkg"))
        })
    });

    // cmhaltnode of another member, through n1's agent: refused while monpkg's instance runs
    // on n3, then -f halts it; the others see n3 halted.
    fails(&cluster, 1, "cmhaltnode", &["n3"], "monpkg");
    succeeds(&cluster, 1, "cmhaltnode", &["-f", "n3"]);
    cluster.wait_for(BOUND, "n3's daemon ended", |c| c.exited(3).is_some());
    cluster.wait_for(BOUND, "n1 and n2 see n3 halted", |c| {
        (1..=2).all(|k| line_value(c, k, "node:n3|status").as_deref() == Some("down"))
    });
    fails(&cluster, 1, "cmhaltnode", &["n9"], "n9 is not a node");
    // cmhaltnode of the agent's own node: webpkg moves from n2 to n1.
    succeeds(&cluster, 2, "cmhaltnode", &["-f"]);
    cluster.wait_for(BOUND, "n2's daemon ended, webpkg on n1", |c| {
        c.exited(2).is_some() && owners(c, 1, "webpkg") == ["n1"]
    });

    // cmhaltcl without -f is refused while packages run; with -f every daemon halts.
    fails(&cluster, 1, "cmhaltcl", &[], "dbpkg");
    succeeds(&cluster, 1, "cmhaltcl", &["-f"]);
    cluster.wait_for(BOUND, "every daemon ended", |c| c.exited(1).is_some());
    assert_eq!(
        cluster.exited(1).and_then(|s| s.code()),
        Some(0),
        "{}",
        cluster.log(1)
    );

    // cmruncl -n on two started nodes forms the cluster without n3.
    cluster.start(1);
    cluster.start(2);
    cluster.wait_for(BOUND, "both agents answer", |c| {
        (1..=2).all(|k| command(c, k, MONITOR, "cmviewcl", &[]).status.success())
    });
    // cmruncl -t first: what the cluster would start where, nothing started.
    let preview = succeeds(&cluster, 1, "cmruncl", &["-t", "-n", "n1", "-n", "n2"]);
    assert_eq!(
        preview,
        "cmruncl -t: package dbpkg would start on n1\n\
         cmruncl -t: package monpkg would start on n1\n\
         cmruncl -t: package monpkg would start on n2\n\
         cmruncl -t: package webpkg would start on n2\n"
    );
    assert!((1..=2).all(|k| cluster.members(k).is_none_or(|(m, _)| m.is_empty())));
    fails(
        &cluster,
        1,
        "cmruncl",
        &["-t", "-n", "n9"],
        "n9 is not a node",
    );
    let said = succeeds(&cluster, 1, "cmruncl", &["-n", "n1", "-n", "n2"]);
    assert_eq!(said, "cmruncl: cluster testcluster is running\n");
    cluster.wait_for(BOUND, "n1 and n2 formed", |c| {
        (1..=2).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 2))
    });
    // The cluster starts what the preview said, where it said.
    cluster.wait_for(BOUND, "the packages where cmruncl -t put them", |c| {
        owners(c, 1, "dbpkg") == ["n1"]
            && owners(c, 1, "webpkg") == ["n2"]
            && owners(c, 1, "monpkg") == ["n1", "n2"]
    });
    // A member refuses it, as it refuses cmruncl.
    fails(
        &cluster,
        1,
        "cmruncl",
        &["-t"],
        "runs in the cluster already",
    );
    // n3's daemon is not running (it ended with the cluster): cmrunnode n3 says so.
    fails(
        &cluster,
        1,
        "cmrunnode",
        &["n3"],
        "n3 did not join the cluster within 30 s",
    );
}

#[test]
fn the_cluster_access_policy_raises_the_roles_of_the_agents_users() {
    const OPERATOR: (&str, &str) = ("operator", "operator-secret-1");
    const DBA: (&str, &str) = ("dba", "dba-secret-1");
    const OUTSIDER: (&str, &str) = ("outsider", "outsider-secret-1");
    // Every user is a MONITOR in the users file; the cluster file makes operator a
    // PACKAGE_ADMIN from the cluster's nodes (the tests' clients connect from loopback), and
    // outsider one from a host that is not this one; dbpkg's file makes dba its own
    // PACKAGE_ADMIN.
    let mut cluster = TestCluster::configure(
        3,
        MEMBER_TIMEOUT,
        "USER_NAME operator\nUSER_HOST CLUSTER_MEMBER_NODE\nUSER_ROLE PACKAGE_ADMIN\n\
         USER_NAME outsider\nUSER_HOST 192.0.2.1\nUSER_ROLE FULL_ADMIN\n",
    );
    cluster.with_agents(&[
        (ADMIN.0, "FULL_ADMIN", ADMIN.1),
        (OPERATOR.0, "MONITOR", OPERATOR.1),
        (DBA.0, "MONITOR", DBA.1),
        (OUTSIDER.0, "MONITOR", OUTSIDER.1),
    ]);
    cluster.add_package(
        "dbpkg",
        "package_name dbpkg\nnode_name n1\nnode_name n2\nauto_run yes\n\
         service_name db\nservice_cmd \"exec sleep 100000\"\n\
         user_name dba\nuser_host CLUSTER_MEMBER_NODE\nuser_role package_admin\n",
    );
    cluster.add_package(
        "webpkg",
        "package_name webpkg\nnode_name n2\nnode_name n1\nauto_run yes\n\
         service_name web\nservice_cmd \"exec sleep 100000\"\n\
         dependency_name db\ndependency_condition dbpkg = up\ndependency_location any_node\n",
    );
    cluster.start_all();
    cluster.wait_for(BOUND, "both packages running", |c| {
        owners(c, 1, "dbpkg") == ["n1"] && owners(c, 1, "webpkg") == ["n2"]
    });
    let denied = |user: (&str, &str), name: &str, args: &[&str]| {
        let output = command(&cluster, 1, user, name, args);
        assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("CIM_ERR_ACCESS_DENIED"),
            "{user:?} {name} {args:?}: {}",
            describe(&output)
        );
    };
    let allowed = |user: (&str, &str), name: &str, args: &[&str]| {
        let output = command(&cluster, 1, user, name, args);
        assert!(
            output.status.success(),
            "{user:?} {name} {args:?}: {}",
            describe(&output)
        );
    };
    // The policy's PACKAGE_ADMIN controls every package, and nothing more.
    allowed(OPERATOR, "cmmodpkg", &["-d", "webpkg"]);
    allowed(OPERATOR, "cmmodpkg", &["-e", "webpkg"]);
    denied(OPERATOR, "cmhaltcl", &["-f"]);
    // A package's own line: that package only.
    allowed(DBA, "cmmodpkg", &["-d", "dbpkg"]);
    allowed(DBA, "cmmodpkg", &["-e", "dbpkg"]);
    denied(DBA, "cmmodpkg", &["-d", "webpkg"]);
    // The package's own admin halts it as cmhaltpkg does: not while webpkg, which depends
    // on it, runs.
    let halt = invoke(
        &cluster,
        1,
        DBA,
        &package_path("dbpkg"),
        "RequestStateChange",
        &json!({"RequestedState": ["uint16", 3]}),
    );
    assert_eq!(halt["return"], 4, "{halt}");
    assert_eq!(owners(&cluster, 1, "webpkg"), ["n2"]);
    assert_eq!(owners(&cluster, 1, "dbpkg"), ["n1"]);
    // A grant from another host does not apply here.
    denied(OUTSIDER, "cmmodpkg", &["-d", "webpkg"]);
    // Everyone still reads.
    allowed(OUTSIDER, "cmviewcl", &[]);
    // The grants follow the configuration in effect: the operator's line removed by
    // cmapplyconf, the operator is a MONITOR again.
    let text = succeeds(&cluster, 1, "cmgetconf", &[]);
    let without: String = {
        let lines: Vec<&str> = text.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.split_whitespace().eq(["USER_NAME", "operator"]))
            .unwrap_or_else(|| panic!("no USER_NAME operator in\n{text}"));
        lines
            .iter()
            .enumerate()
            .filter(|(i, _)| !(at..at + 3).contains(i))
            .map(|(_, l)| format!("{l}\n"))
            .collect()
    };
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("cluster.ascii");
    std::fs::write(&path, without).unwrap();
    succeeds(
        &cluster,
        1,
        "cmapplyconf",
        &["-C", &path.display().to_string()],
    );
    denied(OPERATOR, "cmmodpkg", &["-d", "webpkg"]);
}

/// cmcld's default: a halted node's daemon stays, its agent answering. cmhaltnode, then
/// cmrunnode on the same agent brings the node back (same process, a new life); cmhaltcl
/// halts every node with the daemons still there (the cluster shown down), cmrunnode is
/// refused then, cmruncl -n through a halted node's agent starts and forms n1 and n2, and
/// cmrunnode adds n3. SIGTERM ends a halted daemon at once, and halts a running one first
/// (its packages move), both with exit status 0.
#[test]
fn halted_daemons_stay_and_cmrunnode_and_cmruncl_start_them_again() {
    let mut cluster = TestCluster::staying_demo(
        MEMBER_TIMEOUT,
        &[
            (ADMIN.0, "FULL_ADMIN", ADMIN.1),
            (MONITOR.0, "MONITOR", MONITOR.1),
        ],
    );
    let formed = |c: &TestCluster, n: usize| {
        (1..=3).any(|k| c.members(k).is_some_and(|(m, _)| m.len() == n))
    };
    cluster.wait_for(BOUND, "a formed cluster with its packages placed", |c| {
        formed(c, 3) && owners(c, 1, "dbpkg") == ["n1"]
    });
    let pids: Vec<u32> = (1..=3).map(|k| cluster.pid(k)).collect();

    // cmhaltnode on n3: its daemon stays, and its agent shows n3 halted in the cluster that
    // runs on (a member's view, as Serviceguard's cmviewcl on a halted node shows it).
    succeeds(&cluster, 3, "cmhaltnode", &["-f"]);
    // cmhaltnode returns once n3 shows the cluster that runs on: a cmviewcl given next
    // shows it up.
    assert_eq!(line_value(&cluster, 3, "status").as_deref(), Some("up"));
    cluster.wait_for(
        BOUND,
        "n3 halted, its agent showing the running cluster",
        |c| {
            line_value(c, 3, "node:n3|state").as_deref() == Some("halted")
                && line_value(c, 1, "node:n3|status").as_deref() == Some("down")
                && line_value(c, 3, "status").as_deref() == Some("up")
                && line_value(c, 3, "node:n1|state").as_deref() == Some("running")
                && line_value(c, 3, "package:dbpkg|owner").as_deref() == Some("n1")
        },
    );
    assert!(cluster.exited(3).is_none(), "{}", cluster.log(3));
    // Package commands there are its daemon's to refuse, whatever the member's view says.
    fails(
        &cluster,
        3,
        "cmhaltpkg",
        &["webpkg"],
        "the cluster is not running on this node",
    );
    // cmrunnode on n3 (the same agent): the same process joins as a new life.
    succeeds(&cluster, 3, "cmrunnode", &[]);
    cluster.wait_for(BOUND, "n3 back in the cluster", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    assert_eq!(cluster.pid(3), pids[2]);
    assert!(cluster.exited(3).is_none());
    // A running node: cmrunnode says so and changes nothing.
    let said = succeeds(&cluster, 3, "cmrunnode", &["-v"]);
    assert!(said.contains("running already"), "{said}");
    // cmhaltnode n3 and cmrunnode n3 given on n1: n3's daemon starts again and joins.
    let said = succeeds(&cluster, 1, "cmhaltnode", &["-f", "n3"]);
    assert_eq!(said, "cmhaltnode: node n3 halted\n");
    cluster.wait_for(BOUND, "n3 halted", |c| {
        line_value(c, 1, "node:n3|state").as_deref() == Some("halted")
    });
    let said = succeeds(&cluster, 1, "cmrunnode", &["-v", "n3"]);
    assert!(
        said.starts_with("cmrunnode: node n3 is running\n")
            && said.contains("cmrunnode: cluster testcluster up, members n1, n2, n3\n"),
        "{said}"
    );
    // n1's view showed it up when the command returned; every node's membership agrees.
    assert_eq!(
        line_value(&cluster, 1, "node:n3|status").as_deref(),
        Some("up")
    );
    cluster.wait_for(BOUND, "n3 a member everywhere", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    assert_eq!(cluster.pid(3), pids[2]);
    fails(&cluster, 1, "cmrunnode", &["n9"], "n9 is not a node");

    // cmhaltnode n3, then cmhaltcl -f: every node halts, every daemon stays, every agent
    // shows the cluster down, n3's too (halted before, it heard the others halt it).
    succeeds(&cluster, 1, "cmhaltnode", &["-f", "n3"]);
    succeeds(&cluster, 1, "cmhaltcl", &["-f"]);
    cluster.wait_for(BOUND, "every node halted, the cluster down", |c| {
        (1..=3).all(|k| line_value(c, k, "status").as_deref() == Some("down"))
    });
    for node in ["n1", "n2", "n3"] {
        assert_eq!(
            line_value(&cluster, 3, &format!("node:{node}|state")).as_deref(),
            Some("halted"),
            "{node} on n3"
        );
    }
    assert!((1..=3).all(|k| cluster.exited(k).is_none()));
    fails(&cluster, 2, "cmrunnode", &[], "cmruncl starts it");
    // cmruncl -n n1 -n n2 through n2's agent (a halted node): both start and form.
    succeeds(&cluster, 2, "cmruncl", &["-n", "n1", "-n", "n2"]);
    cluster.wait_for(BOUND, "n1 and n2 formed, dbpkg running", |c| {
        (1..=2).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 2))
            && owners(c, 1, "dbpkg") == ["n1"]
    });
    // Halted n3 hears the new cluster's heartbeats, and shows it as its members do.
    cluster.wait_for(BOUND, "n3 halted, the new cluster up to it", |c| {
        line_value(c, 3, "node:n3|state").as_deref() == Some("halted")
            && line_value(c, 3, "status").as_deref() == Some("up")
            && line_value(c, 3, "node:n2|state").as_deref() == Some("running")
    });
    succeeds(&cluster, 3, "cmrunnode", &[]);
    cluster.wait_for(BOUND, "n3 joined", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    assert_eq!(
        (1..=3).map(|k| cluster.pid(k)).collect::<Vec<_>>(),
        pids,
        "the same processes throughout"
    );
    // Each life's safety-timer watcher ended with it and was reaped: one watcher each, no
    // zombie children left by the lives before.
    for (k, pid) in pids.iter().enumerate() {
        let children = children_of(*pid);
        let zombies: Vec<_> = children.iter().filter(|(_, state)| *state == 'Z').collect();
        assert!(
            zombies.is_empty(),
            "n{}: zombie children {zombies:?}\n{}",
            k + 1,
            cluster.log(k + 1)
        );
    }

    // SIGTERM on n1, which runs dbpkg: it halts first (dbpkg moves to n2), then ends with 0.
    cluster.signal(1, "TERM");
    cluster.wait_for(BOUND, "n1 ended, dbpkg on n2", |c| {
        c.exited(1).is_some() && owners(c, 2, "dbpkg") == ["n2"]
    });
    assert_eq!(
        cluster.exited(1).and_then(|s| s.code()),
        Some(0),
        "{}",
        cluster.log(1)
    );
    // SIGTERM on a halted daemon ends it at once.
    succeeds(&cluster, 3, "cmhaltnode", &["-f"]);
    cluster.wait_for(BOUND, "n3 halted", |c| {
        line_value(c, 3, "node:n3|state").as_deref() == Some("halted")
    });
    cluster.signal(3, "TERM");
    cluster.wait_for(BOUND, "n3 ended", |c| c.exited(3).is_some());
    assert_eq!(
        cluster.exited(3).and_then(|s| s.code()),
        Some(0),
        "{}",
        cluster.log(3)
    );
}

/// A package whose halt fails on its node (halt_aborted, partially down): the agents show
/// it neither enabled nor disabled (EnabledState 1 Other, with OtherEnabledState), in error
/// and degraded, its last halt failed, and still on its node.
#[test]
fn a_package_whose_halt_was_aborted_is_shown_partially_down() {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.with_agents(&[
        (ADMIN.0, "FULL_ADMIN", ADMIN.1),
        (MONITOR.0, "MONITOR", MONITOR.1),
    ]);
    let script = cluster.script("control.sh", "[ \"$1\" = stop ] && exit 1\nexit 0");
    cluster.add_package(
        "pkgA",
        &format!(
            "package_name pkgA\npackage_type failover\nnode_name n1\nnode_name n2\n\
             auto_run yes\nservice_name svc\nservice_cmd \"sleep 1000\"\n\
             external_script {}\n",
            script.display()
        ),
    );
    cluster.start_all();
    cluster.wait_for(BOUND, "pkgA running on n1", |c| {
        owners(c, 2, "pkgA") == ["n1"]
            && c.status(2).is_ok_and(|s| {
                s.cluster
                    .packages
                    .iter()
                    .any(|p| p.name == "pkgA" && p.condition.state.as_str() == "running")
            })
    });
    // cmhaltpkg waits for the halt's end and says it failed, as Serviceguard's does.
    fails(
        &cluster,
        2,
        "cmhaltpkg",
        &["pkgA"],
        "unable to halt package pkgA on node n1: it is halt_aborted there",
    );
    cluster.wait_for(BOUND, "the agents to show pkgA halt_aborted", |c| {
        (1..=3).all(|k| {
            named(&enumerate(c, k, "HP_SGPackage"), "pkgA")["properties"]["PackageState"]
                == "halt_aborted"
        })
    });
    for k in 1..=3 {
        let packages = enumerate(&cluster, k, "HP_SGPackage");
        let p = &named(&packages, "pkgA")["properties"];
        assert_eq!(p["PackageStatus"], "partially_down", "n{k}: {p}");
        assert_eq!(p["EnabledState"], 1, "n{k}: {p}");
        assert_eq!(
            p["OtherEnabledState"], "Partially Down (halt aborted)",
            "n{k}: {p}"
        );
        assert_eq!(p["OperationalStatus"], json!([6, 3]), "n{k}: {p}");
        assert_eq!(p["LastHaltFailed"], true, "n{k}: {p}");
        assert_eq!(p["CurrentNode"], "n1", "n{k}: {p}");
        assert_eq!(p["CurrentNodes"], json!(["n1"]), "n{k}: {p}");
        assert_eq!(
            line_value(&cluster, k, "package:pkgA|status").as_deref(),
            Some("partially_down"),
            "n{k}"
        );
    }
}

/// cmrunpkg and cmhaltpkg return once the run or halt has ended, as Serviceguard's do: a
/// start that fails on the node asked for is an error naming it; a good one returns with
/// the package running, and a halt with it halted.
#[test]
fn cmrunpkg_and_cmhaltpkg_wait_for_the_end_and_say_a_failed_start() {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.with_agents(&[
        (ADMIN.0, "FULL_ADMIN", ADMIN.1),
        (MONITOR.0, "MONITOR", MONITOR.1),
    ]);
    // n1's agent answers RequestStateChange with a job at once (4096) unless the run or halt
    // has ended by its first look; the others wait for the end (10 s, the default). While
    // the hold file is there the script waits, so that a run or halt the test wants answered
    // with a job cannot end before that first look, however slow the machine.
    cluster
        .daemon_args
        .insert(1, vec!["--wbem-method-wait".into(), "0".into()]);
    let hold = cluster.dir(1).with_file_name("pkgB.hold");
    let script = cluster.script(
        "control.sh",
        &format!(
            "while [ -e '{}' ]; do sleep 0.05; done\n\
             [ \"$1\" = start ] && [ \"$SG_NODE\" = n2 ] && exit 1\nsleep 0.5\nexit 0",
            hold.display()
        ),
    );
    cluster.add_package(
        "pkgB",
        &format!(
            "package_name pkgB\npackage_type failover\nnode_name n1\nnode_name n2\n\
             node_name n3\nauto_run no\nservice_name svc\nservice_cmd \"sleep 1000\"\n\
             external_script {}\n",
            script.display()
        ),
    );
    let chained = |name: &str, on: Option<&str>| {
        let dependency = on.map_or(String::new(), |on| {
            format!(
                "dependency_name d_{on}\ndependency_condition {on} = up\n\
                 dependency_location same_node\n"
            )
        });
        format!(
            "package_name {name}\npackage_type failover\nnode_name n1\nnode_name n2\n\
             node_name n3\nauto_run yes\nservice_name s_{name}\n\
             service_cmd \"exec sleep 100000\"\n{dependency}"
        )
    };
    cluster.add_package("base", &chained("base", None));
    cluster.add_package("mid", &chained("mid", Some("base")));
    cluster.add_package("top", &chained("top", Some("mid")));
    cluster.start_all();
    cluster.wait_for(BOUND, "the cluster formed", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    let state = |c: &TestCluster| {
        let s = c.status(1).expect("n1's status").cluster;
        let row = s.packages.iter().find(|p| p.name == "pkgB").expect("pkgB");
        let owners: Vec<String> = row
            .owners
            .iter()
            .map(|n| s.node_name(n).to_owned())
            .collect();
        (row.condition.state.as_str().to_owned(), owners)
    };
    // Through n1 (a job), the command waits for the end itself.
    fails(
        &cluster,
        1,
        "cmrunpkg",
        &["-n", "n2", "pkgB"],
        "unable to start package pkgB on node n2: it is failed there",
    );
    package_jobs_say_how_runs_and_halts_end(&cluster, &hold);
    let output = succeeds(&cluster, 1, "cmrunpkg", &["-v", "-n", "n3", "pkgB"]);
    assert_eq!(
        output,
        "cmrunpkg: package pkgB is running on n3\n\
         cmrunpkg: All specified packages are running\n"
    );
    // Seen by the node the command was given on, at once: the command waited.
    let (now, on) = state(&cluster);
    assert_eq!((now.as_str(), on), ("running", vec!["n3".to_owned()]));
    succeeds(&cluster, 1, "cmhaltpkg", &["pkgB"]);
    let (now, on) = state(&cluster);
    assert!(on.is_empty() && now != "running", "{now} on {on:?}");
    // Running a package that is running already is refused at once.
    succeeds(&cluster, 1, "cmrunpkg", &["-n", "n1", "pkgB"]);
    fails(&cluster, 1, "cmrunpkg", &["pkgB"], "already running on n1");

    // A chain (top depends on mid, mid on base) named in any order halts top first, then
    // mid, then base, each waited for.
    cluster.wait_for(BOUND, "the chain running", |c| {
        ["top", "mid", "base"]
            .iter()
            .all(|p| !owners(c, 1, p).is_empty())
    });
    succeeds(&cluster, 1, "cmhaltpkg", &["mid", "top", "base"]);
    for p in ["top", "mid", "base"] {
        assert!(owners(&cluster, 1, p).is_empty(), "{p} still runs");
    }
}

#[test]
fn cmhaltpkg_halts_a_detached_package_through_its_halted_daemon_and_says_when_none_is_left() {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.with_agents(&[(ADMIN.0, "FULL_ADMIN", ADMIN.1)]);
    cluster.stay_after_halt();
    // pA and pC run on n1, their primary node; each service writes its pid.
    for (name, alternate) in [("pA", "n2"), ("pC", "n3")] {
        cluster.add_package(
            name,
            &format!(
                "package_name {name}\npackage_type failover\nnode_name n1\n\
                 node_name {alternate}\nauto_run yes\nservice_name svc\n\
                 service_cmd \"echo $$ > $SGRUN/{name}.pid; exec sleep 1000\"\n"
            ),
        );
    }
    cluster.start_all();
    cluster.wait_for(BOUND, "pA and pC running on n1", |c| {
        ["pA", "pC"].iter().all(|p| owners(c, 2, p) == ["n1"])
    });
    // cmhaltnode -d: n1's daemon halts, its packages run on detached.
    succeeds(&cluster, 1, "cmhaltnode", &["-d"]);
    let detached = |c: &TestCluster, package: &str| {
        let status = c.status(2).expect("n2's status").cluster;
        status
            .packages
            .iter()
            .find(|p| p.name == package)
            .is_some_and(|p| p.condition.state.as_str() == "detached")
    };
    cluster.wait_for(BOUND, "pA and pC detached", |c| {
        detached(c, "pA") && detached(c, "pC")
    });
    // Given on n2: n1's halted daemon takes the halt; the command waits for its end.
    succeeds(&cluster, 2, "cmhaltpkg", &["pA"]);
    assert!(owners(&cluster, 2, "pA").is_empty());
    let pid = |package: &str| {
        std::fs::read_to_string(cluster.dir(1).join(format!("{package}.pid")))
            .ok()
            .and_then(|text| text.trim().parse::<i32>().ok())
    };
    let alive = |pid: Option<i32>| {
        pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
    };
    assert!(!alive(pid("pA")), "pA's service still runs");
    // n1's daemon killed: nothing is left there to halt pC, and cmhaltpkg says so (through
    // the coordinator n2, and through n3) instead of waiting for a halt that cannot come.
    let service = pid("pC");
    cluster.signal(1, "KILL");
    for k in [2, 3] {
        fails(
            &cluster,
            k,
            "cmhaltpkg",
            &["pC"],
            "detached on n1, whose cluster daemon did not answer",
        );
    }
    // The service left behind, if the daemon's end did not take it along.
    if let Some(service) = service.filter(|p| alive(Some(*p))) {
        let _ = std::process::Command::new("kill")
            .arg("-KILL")
            .arg(service.to_string())
            .status();
    }
}

/// RequestStateChange of pkgB (halted, its start fails on n2) through n2's agent, which waits
/// for the end, and n1's, which answers with a job: the return codes, the jobs' states, their
/// removal. The script waits while `hold` is there: it is there from before each call through
/// n1 until its answer.
fn package_jobs_say_how_runs_and_halts_end(cluster: &TestCluster, hold: &std::path::Path) {
    let pkg = package_path("pkgB");
    let held = |call: &dyn Fn() -> Value| {
        std::fs::write(hold, "").expect("the hold file");
        let answer = call();
        std::fs::remove_file(hold).expect("the hold file removed");
        answer
    };
    let run_on = |k: usize, node: &str| {
        invoke(
            cluster,
            k,
            ADMIN,
            &pkg,
            "RequestStateChange",
            &json!({"RequestedState": ["uint16", 2], "NodeName": ["string", node]}),
        )
    };
    let enable_n2 = || succeeds(cluster, 1, "cmmodpkg", &["-e", "-n", "n2", "pkgB"]);
    // A TimeoutPeriod is not honoured (the scripts' timeouts bound a run): 4098, nothing run.
    let timed = invoke(
        cluster,
        2,
        ADMIN,
        &pkg,
        "RequestStateChange",
        &json!({"RequestedState": ["uint16", 2],
                "TimeoutPeriod": ["datetime", "00000000000030.000000:000"]}),
    );
    assert_eq!(timed["return"], 4098, "{timed}");
    assert!(owners(cluster, 1, "pkgB").is_empty());
    // Waited for: the failed start is return code 4 and why.
    enable_n2();
    let failed = run_on(2, "n2");
    assert_eq!(failed["return"], 4, "{failed}");
    let message = failed["out"]["Message"].as_str().unwrap_or_default();
    assert!(
        message.contains("unable to start package pkgB on node n2: it is failed there"),
        "{failed}"
    );
    // A job: 4096, then its state says how the run ended.
    let ended = |job: &Value| {
        let deadline = std::time::Instant::now() + BOUND;
        loop {
            let got = cim(cluster, 1, MONITOR, &json!({"op": "get", "path": job}));
            if got["properties"]["JobState"] != 4 {
                return got["properties"].clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the job did not end within {BOUND:?}: {got}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    enable_n2();
    let answer = held(&|| run_on(1, "n2"));
    assert_eq!(answer["return"], 4096, "{answer}");
    let failed_job = answer["out"]["Job"].clone();
    assert_eq!(failed_job["class"], "HP_SGPackageJob", "{answer}");
    let job = ended(&failed_job);
    assert_eq!(
        (&job["JobState"], &job["ErrorCode"]),
        (&json!(10), &json!(4)),
        "{job}"
    );
    assert!(
        job["ErrorDescription"]
            .as_str()
            .unwrap_or_default()
            .contains("unable to start package pkgB on node n2"),
        "{job}"
    );
    assert_eq!(
        (
            &job["PackageName"],
            &job["NodeName"],
            &job["RequestedState"],
            &job["Owner"]
        ),
        (&json!("pkgB"), &json!("n2"), &json!(2), &json!(ADMIN.0)),
        "{job}"
    );
    let answer = held(&|| run_on(1, "n3"));
    assert_eq!(answer["return"], 4096, "{answer}");
    let job = ended(&answer["out"]["Job"]);
    assert_eq!(
        (&job["JobState"], &job["PercentComplete"], &job["RunningOn"]),
        (&json!(7), &json!(100), &json!(["n3"])),
        "{job}"
    );
    assert_eq!(owners(cluster, 1, "pkgB"), ["n3"]);
    // These two and the one of the cmrunpkg given through n1 before are CIM_ConcreteJob
    // instances of n1's agent; n2's has none.
    let jobs = enumerate(cluster, 1, "CIM_ConcreteJob");
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    assert!(enumerate(cluster, 2, "HP_SGPackageJob").is_empty());
    // A finished job can be deleted (FULL_ADMIN); a monitor may not.
    let denied = cim(
        cluster,
        1,
        MONITOR,
        &json!({"op": "delete", "path": failed_job}),
    );
    assert_eq!(denied["error"], 2, "{denied}");
    let deleted = cim(
        cluster,
        1,
        ADMIN,
        &json!({"op": "delete", "path": failed_job}),
    );
    assert_eq!(deleted["deleted"], true, "{deleted}");
    let gone = cim(cluster, 1, ADMIN, &json!({"op": "get", "path": failed_job}));
    assert_eq!(gone["error"], 6, "{gone}");
    // A halt through n1: a job that completes with the package halted.
    let answer = held(&|| {
        invoke(
            cluster,
            1,
            ADMIN,
            &pkg,
            "RequestStateChange",
            &json!({"RequestedState": ["uint16", 3]}),
        )
    });
    assert_eq!(answer["return"], 4096, "{answer}");
    let job = ended(&answer["out"]["Job"]);
    assert_eq!(
        (&job["JobState"], &job["RunningOn"]),
        (&json!(7), &json!([])),
        "{job}"
    );
    assert!(owners(cluster, 1, "pkgB").is_empty());
}

/// The child processes of `pid` (pid, state letter of /proc/PID/stat), from every process's
/// parent in /proc.
fn children_of(pid: u32) -> Vec<(u32, char)> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // After the command's closing parenthesis: state, then the parent's pid.
        let Some(rest) = stat.rfind(')').map(|at| &stat[at + 2..]) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        if fields.next().and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            children.push((child, state));
        }
    }
    children
}

/// cmrunpkg of multi-node packages on several nodes, a dependent named with what it depends
/// on: the dependency is run first, and the dependent's instances are given again while the
/// coordinator has not heard yet that the dependency runs there (as for one -n).
#[test]
fn cmrunpkg_runs_a_multi_node_dependent_with_its_dependency_on_several_nodes() {
    let mut cluster = demo_cluster();
    cluster.wait_for(BOUND, "monpkg everywhere", |c| {
        (1..=3).all(|k| sorted_owners(c, k, "monpkg") == ["n1", "n2", "n3"])
    });
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("agentpkg.conf");
    std::fs::write(
        &file,
        "package_name agentpkg\npackage_type multi_node\nnode_name n1\nnode_name n2\n\
         node_name n3\nauto_run no\nservice_name agent\nservice_cmd \"exec sleep 100000\"\n\
         dependency_name mon\ndependency_condition monpkg = up\n\
         dependency_location same_node\n",
    )
    .unwrap();
    succeeds(
        &cluster,
        1,
        "cmapplyconf",
        &["-f", "-P", &file.display().to_string()],
    );
    // Halted on n2 and n3, then both run again by one command given on n3, the coordinator
    // being n1: each instance of agentpkg is asked for right after monpkg's is seen running
    // on n3, before n1 may have heard it.
    succeeds(
        &cluster,
        3,
        "cmhaltpkg",
        &["-n", "n2", "-n", "n3", "monpkg"],
    );
    cluster.wait_for(BOUND, "monpkg on n1 only", |c| {
        (1..=3).all(|k| sorted_owners(c, k, "monpkg") == ["n1"])
    });
    for round in 0..3 {
        let said = succeeds(
            &cluster,
            3,
            "cmrunpkg",
            &["-n", "n2", "-n", "n3", "agentpkg", "monpkg"],
        );
        assert_eq!(
            said, "cmrunpkg: All specified packages are running\n",
            "round {round}"
        );
        cluster.wait_for(BOUND, "both on n2 and n3", |c| {
            (1..=3).all(|k| {
                sorted_owners(c, k, "monpkg") == ["n1", "n2", "n3"]
                    && sorted_owners(c, k, "agentpkg") == ["n2", "n3"]
            })
        });
        succeeds(
            &cluster,
            3,
            "cmhaltpkg",
            &["-n", "n2", "-n", "n3", "agentpkg", "monpkg"],
        );
        cluster.wait_for(BOUND, "both halted on n2 and n3", |c| {
            (1..=3).all(|k| {
                sorted_owners(c, k, "monpkg") == ["n1"] && owners(c, k, "agentpkg").is_empty()
            })
        });
    }
}
