//! Modular package files: the examples of serviceguard.md read as written, a file with every
//! kind of mistake rejected with each finding, and the checks across a cluster's packages.

use std::time::Duration;

use cimguard_cluster::config::cluster;
use cimguard_cluster::config::package::{
    check_set, parse, Comparison, Dependency, DependencyCondition, DependencyLocation, Evaluation,
    FailbackPolicy, FailoverPolicy, PackageConfig, PackageType, ServiceRestart, UpCriteria,
};

fn read(name: &str) -> String {
    let path = format!("{}/tests/config/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn package(name: &str) -> PackageConfig {
    let checked = parse(&read(name), name).unwrap_or_else(|f| panic!("{f:#?}"));
    assert!(checked.findings.is_empty(), "{:?}", checked.findings);
    checked.config
}

#[test]
fn the_database_example_is_read_as_written() {
    let db = package("dbpkg.conf");
    assert_eq!(db.name, "dbpkg");
    assert_eq!(db.description, "Example database");
    assert_eq!(db.package_type, PackageType::Failover);
    assert_eq!(db.nodes, ["hpnode1", "hpnode2"]);
    assert!(db.auto_run);
    assert_eq!(db.run_script_timeout, Some(Duration::from_secs(600)));
    assert_eq!(db.halt_script_timeout, Some(Duration::from_secs(300)));
    assert_eq!(db.successor_halt_timeout, None);
    assert_eq!(db.failover_policy, FailoverPolicy::ConfiguredNode);
    assert_eq!(db.failback_policy, FailbackPolicy::Manual);
    assert_eq!(db.priority, Some(20));
    assert_eq!(db.ip_subnets.len(), 1);
    assert_eq!(
        db.ip_subnets[0].1,
        ["10.20.0.50".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(db.services.len(), 1);
    assert_eq!(db.services[0].command, "$SGCONF/dbpkg/db_monitor.sh");
    assert_eq!(db.services[0].restart, ServiceRestart::Times(3));
    assert_eq!(db.services[0].halt_timeout, Duration::from_secs(30));
    assert_eq!(db.generic_resources.len(), 2);
    assert_eq!(
        db.generic_resources[0].evaluation,
        Evaluation::BeforePackageStart
    );
    assert_eq!(db.generic_resources[0].up_criteria, None);
    let criteria = db.generic_resources[1].up_criteria.unwrap();
    assert_eq!(
        criteria,
        UpCriteria {
            operator: Comparison::Less,
            bound: 80
        }
    );
    assert!(criteria.holds(79) && !criteria.holds(80));
    assert_eq!(db.external_scripts, ["$SGCONF/dbpkg/db_ctl.sh"]);
}

#[test]
fn the_web_example_depends_on_the_database() {
    let web = package("webpkg.conf");
    assert_eq!(web.nodes, ["hpnode2", "hpnode3", "hpnode1"]);
    assert_eq!(web.failback_policy, FailbackPolicy::Automatic);
    assert_eq!(
        web.dependencies,
        [Dependency {
            name: "db_up".into(),
            package: "dbpkg".into(),
            condition: DependencyCondition::Up,
            location: DependencyLocation::AnyNode,
        }]
    );
    assert_eq!(web.services[0].restart, ServiceRestart::Unlimited);
    assert_eq!(web.description, "Serviceguard Package");
}

#[test]
fn every_mistake_in_a_package_is_reported() {
    let findings = parse(&read("bad-package.conf"), "bad-package.conf").unwrap_err();
    let messages: Vec<String> = findings.iter().map(ToString::to_string).collect();
    let expected = [
        "bad-package.conf:1: error: PACKAGE_NAME: \"-bad-\": at most 39 letters, digits, '.', '-' or '_', starting and ending with a letter or digit",
        "bad-package.conf:4: error: NODE_NAME: hpnode1 is listed twice (first on line 3)",
        "bad-package.conf:5: error: NODE_NAME: * (every node) cannot be mixed with node names",
        "bad-package.conf:6: error: AUTO_RUN: \"maybe\" is not yes or no",
        "bad-package.conf:7: error: RUN_SCRIPT_TIMEOUT: \"5000\" is not no_timeout or 0 to 4294 seconds",
        "bad-package.conf:8: error: FAILOVER_POLICY: for failover packages only",
        "bad-package.conf:9: error: PRIORITY: \"0\" is not no_priority or 1 to 3000",
        "bad-package.conf:11: error: DEPENDENCY_CONDITION: \"-bad- = up\" is not \"<package> = up\" or \"<package> = down\"",
        "bad-package.conf:12: error: DEPENDENCY_LOCATION: not after a dependency_name and a dependency_condition",
        "bad-package.conf:13: error: SERVICE_CMD: not after a service_name",
        "bad-package.conf:14: error: SERVICE_CMD: service svc has no service_cmd",
        "bad-package.conf:15: error: SERVICE_RESTART: \"often\" is not none, unlimited or a count",
        "bad-package.conf:16: error: GENERIC_RESOURCE_UP_CRITERIA: not after a generic_resource_name",
        "bad-package.conf:18: error: GENERIC_RESOURCE_UP_CRITERIA: \"~80\" is not an operator (== != > < >= <=) and a whole number from 1 to 2147483647",
        "bad-package.conf:19: error: IP_ADDRESS: not after an ip_subnet",
        "bad-package.conf:22: error: USER_ROLE: \"FULL_ADMIN\": a package file grants PACKAGE_ADMIN only",
        "bad-package.conf:23: error: VG: unknown parameter",
    ];
    assert_eq!(messages, expected, "\n{}", messages.join("\n"));
}

#[test]
fn a_system_multi_node_package_runs_everywhere_and_fails_fast() {
    let text = "package_name sys\npackage_type system_multi_node\nnode_name hpnode1\n";
    let findings = parse(text, "sys").unwrap_err();
    let parameters: Vec<&str> = findings
        .iter()
        .filter_map(|d| d.parameter.as_deref())
        .collect();
    assert_eq!(parameters, ["NODE_NAME", "NODE_FAIL_FAST_ENABLED"]);
    let good = "package_name sys\npackage_type system_multi_node\nnode_name *\nnode_fail_fast_enabled yes\n";
    assert!(parse(good, "sys").unwrap().config.nodes.is_empty());
}

#[test]
fn the_examples_fit_their_cluster() {
    let cluster = cluster::parse(&read("qs-three-nodes.ascii"), "cluster")
        .unwrap()
        .config;
    let packages = [package("dbpkg.conf"), package("webpkg.conf")];
    assert_eq!(
        check_set(&cluster, &packages, &["dbpkg.conf", "webpkg.conf"]),
        []
    );
}

#[test]
fn packages_that_do_not_fit_their_cluster_or_each_other_are_reported() {
    let cluster = cluster::parse(&read("qs-three-nodes.ascii"), "cluster")
        .unwrap()
        .config;
    let mut web = package("webpkg.conf");
    web.priority = Some(20);
    web.nodes.push("hpnode9".into());
    web.dependencies[0].package = "nopkg".into();
    let db = package("dbpkg.conf");
    let mut other = package("webpkg.conf");
    other.generic_resources = package("dbpkg.conf").generic_resources;
    other.generic_resources[1].up_criteria = None;
    other.priority = None;
    other.name = "otherpkg".into();
    let findings = check_set(&cluster, &[db, web, other], &["db", "web", "other"]);
    let messages: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "web: error: NODE_NAME: hpnode9 is not a node of cluster prodcl",
            "web: error: PRIORITY: priority 20 is also dbpkg's; priorities are unique",
            "web: error: DEPENDENCY_CONDITION: dependency db_up names package nopkg, which is not configured",
            "other: error: GENERIC_RESOURCE_UP_CRITERIA: generic resource cpu_load is simple here and extended in dbpkg: simple in every package or extended in every package",
        ],
        "\n{}",
        messages.join("\n")
    );
}

#[test]
fn attribute_lines_given_twice_are_errors_not_overwrites() {
    let text = "package_name p\nnode_name *\nservice_name s\nservice_cmd /bin/a\n\
                service_halt_timeout 5\nservice_cmd /bin/b\nservice_halt_timeout 5\n\
                generic_resource_name r\ngeneric_resource_up_criteria <5\n\
                generic_resource_up_criteria >5\nweight_name w\nweight_value 1\n\
                weight_name w\nweight_value 2\n";
    let findings = parse(text, "twice").unwrap_err();
    let messages: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "twice:6: error: SERVICE_CMD: given twice for service s",
            "twice:7: error: SERVICE_HALT_TIMEOUT: given twice for service s",
            "twice:10: error: GENERIC_RESOURCE_UP_CRITERIA: given twice for generic resource r",
            "twice:14: error: WEIGHT_VALUE: weight w is given twice",
        ]
    );
    // A second service starts afresh.
    let two =
        "package_name p\nservice_name a\nservice_cmd /bin/a\nservice_name b\nservice_cmd /bin/b\n";
    assert_eq!(parse(two, "two").unwrap().config.services.len(), 2);
}
