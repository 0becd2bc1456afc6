//! Modular package files: the examples of serviceguard.md read as written, a file with every
//! kind of mistake rejected with each finding, and the checks across a cluster's packages.

use std::time::Duration;

use cimguard_cluster::config::cluster;
use cimguard_cluster::config::package::{
    check_set, parse, Comparison, Dependency, DependencyCondition, DependencyLocation, Evaluation,
    FailbackPolicy, FailoverPolicy, PackageConfig, PackageType, ServiceRestart, SubnetAccess,
    UpCriteria,
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
    // Not in the file: Serviceguard's default, named after the package.
    assert_eq!(db.script_log_file, "$SGRUN/log/dbpkg.log");
    assert_eq!(db.lines.line("PACKAGE_NAME", ""), Some(2));
    assert_eq!(db.lines.line("node_name", "hpnode2"), Some(6));
    assert_eq!(
        db.lines.line("GENERIC_RESOURCE_UP_CRITERIA", "cpu_load"),
        Some(24)
    );
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
        "bad-package.conf:2: error: PACKAGE_TYPE: multi_node does not go with base module sg/failover (line 25)",
        "bad-package.conf:4: error: NODE_NAME: hpnode1 is listed twice (first on line 3)",
        "bad-package.conf:5: error: NODE_NAME: * (every node) cannot be mixed with node names",
        "bad-package.conf:6: error: AUTO_RUN: \"maybe\" is not yes or no",
        "bad-package.conf:7: error: RUN_SCRIPT_TIMEOUT: \"5000\" is not no_timeout or 1 to 4294 seconds",
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
        "bad-package.conf:24: error: HALT_SCRIPT_TIMEOUT: \"0\" is not no_timeout or 1 to 4294 seconds",
        "bad-package.conf:28: error: MONITORED_SUBNET_ACCESS: given twice for monitored_subnet 10.0.0.0 (first on line 27)",
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
    assert_eq!(parameters, ["NODE_FAIL_FAST_ENABLED", "NODE_NAME"]);
    // Each at its own line: the missing node_fail_fast_enabled at package_type.
    let lines: Vec<usize> = findings.iter().map(|d| d.line).collect();
    assert_eq!(lines, [2, 3]);
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

/// A package read from `text`, which must be free of findings.
fn package_from(text: &str, file: &str) -> PackageConfig {
    let checked = parse(text, file).unwrap_or_else(|f| panic!("{f:#?}"));
    assert!(checked.findings.is_empty(), "{:?}", checked.findings);
    checked.config
}

fn messages(findings: &[cimguard_cluster::config::Diagnostic]) -> Vec<String> {
    findings.iter().map(ToString::to_string).collect()
}

#[test]
fn packages_that_do_not_fit_their_cluster_or_each_other_are_reported_at_their_lines() {
    let cluster = cluster::parse(&read("qs-three-nodes.ascii"), "cluster")
        .unwrap()
        .config;
    let web = read("webpkg.conf")
        .replace("priority                40", "priority 20")
        .replace(
            "node_name               hpnode1",
            "node_name hpnode1\nnode_name hpnode9",
        )
        .replace("dbpkg = up", "nopkg = up")
        + "weight_name memory\nweight_value 2\n";
    let other = read("webpkg.conf")
        .replace("package_name            webpkg", "package_name otherpkg")
        .replace("priority                40\n", "")
        + "generic_resource_name sfm_disk\ngeneric_resource_up_criteria >1\n\
           generic_resource_name cpu_load\n";
    let packages = [
        package("dbpkg.conf"),
        package_from(&web, "web"),
        package_from(&other, "other"),
        package("dbpkg.conf"),
    ];
    let findings = check_set(&cluster, &packages, &["db", "web", "other", "db2"]);
    let messages = messages(&findings);
    assert_eq!(
        messages,
        [
            "web:6: error: NODE_NAME: hpnode9 is not a node of cluster prodcl",
            "web:9: error: PRIORITY: priority 20 is also dbpkg's; priorities are unique",
            "web:11: error: DEPENDENCY_CONDITION: dependency db_up names package nopkg, which is not configured",
            "web:16: error: WEIGHT_NAME: memory is no capacity of cluster prodcl (CAPACITY_NAME or WEIGHT_NAME)",
            "other:15: error: GENERIC_RESOURCE_UP_CRITERIA: generic resource sfm_disk is extended here and simple in dbpkg: simple in every package or extended in every package",
            "other:16: error: GENERIC_RESOURCE_NAME: generic resource cpu_load is simple here and extended in dbpkg: simple in every package or extended in every package",
            "db2:2: error: PACKAGE_NAME: package dbpkg is also defined in db",
            "db2:12: error: PRIORITY: priority 20 is also dbpkg's; priorities are unique",
        ],
        "\n{}",
        messages.join("\n")
    );
}

#[test]
fn a_package_built_in_code_has_no_lines_and_its_findings_line_0() {
    let cluster = cluster::parse(&read("qs-three-nodes.ascii"), "cluster")
        .unwrap()
        .config;
    let mut web = package("webpkg.conf");
    web.nodes.push("hpnode9".into());
    let findings = check_set(&cluster, &[package("dbpkg.conf"), web], &["db", "web"]);
    assert_eq!(
        messages(&findings),
        ["web: error: NODE_NAME: hpnode9 is not a node of cluster prodcl"]
    );
}

#[test]
fn weights_name_a_capacity_of_the_cluster() {
    let demo = cluster::parse(&read("loopback-demo.ascii"), "demo")
        .unwrap()
        .config;
    let monitor = package("monpkg.conf");
    assert_eq!(
        check_set(&demo, std::slice::from_ref(&monitor), &["monpkg.conf"]),
        []
    );
    // The quorum server example defines no capacity at all.
    let prodcl = cluster::parse(&read("qs-three-nodes.ascii"), "cluster")
        .unwrap()
        .config;
    assert_eq!(
        messages(&check_set(&prodcl, &[monitor], &["monpkg.conf"])),
        ["monpkg.conf:16: error: WEIGHT_NAME: package_limit is no capacity of cluster prodcl (CAPACITY_NAME or WEIGHT_NAME)"]
    );
}

#[test]
fn a_cluster_has_at_most_100_generic_resources() {
    let cluster = cluster::parse(&read("qs-three-nodes.ascii"), "cluster")
        .unwrap()
        .config;
    // Packages named p0, p1, ..., with the generic resources r<first>..r<first+count-1>.
    let with_resources = |index: usize, first: usize, count: usize| {
        let mut text = format!("package_name p{index}\nnode_name *\n");
        for resource in first..first + count {
            text.push_str(&format!("generic_resource_name r{resource}\n"));
        }
        package_from(&text, &format!("p{index}"))
    };
    // A resource used by several packages counts once.
    let shared = [with_resources(0, 0, 100), with_resources(1, 0, 100)];
    assert_eq!(check_set(&cluster, &shared, &["p0", "p1"]), []);
    let many = [
        with_resources(0, 0, 40),
        with_resources(1, 30, 50),
        with_resources(2, 80, 40),
    ];
    assert_eq!(
        messages(&check_set(&cluster, &many, &["p0", "p1", "p2"])),
        ["p2:23: error: GENERIC_RESOURCE_NAME: 120 generic resources in the cluster where 100 are allowed; r100 is the first beyond"]
    );
}

#[test]
fn packages_beyond_max_configured_packages_are_reported_at_the_first_one_beyond() {
    let text = read("qs-three-nodes.ascii").replace(
        "MAX_CONFIGURED_PACKAGES   300",
        "MAX_CONFIGURED_PACKAGES   1",
    );
    let cluster = cluster::parse(&text, "cluster").unwrap().config;
    let packages = [package("dbpkg.conf"), package("webpkg.conf")];
    assert_eq!(
        messages(&check_set(&cluster, &packages, &["db", "web"])),
        ["web:2: error: PACKAGE_NAME: 2 packages where cluster prodcl allows 1 (MAX_CONFIGURED_PACKAGES); webpkg is the first beyond"]
    );
}

#[test]
fn a_dependency_on_the_package_itself_is_reported_at_its_condition() {
    let findings = parse(&read("self-dependency.conf"), "self-dependency.conf").unwrap_err();
    assert_eq!(
        messages(&findings),
        [
            "self-dependency.conf:5: error: MODULE_NAME: sg/system_multi_node and sg/failover (line 3) are both base modules; a package has one",
            "self-dependency.conf:9: error: DEPENDENCY_CONDITION: dependency me is on the package itself",
        ]
    );
}

#[test]
fn the_base_module_goes_with_package_type() {
    let monitor = package("monpkg.conf");
    assert_eq!(monitor.package_type, PackageType::MultiNode);
    assert_eq!(
        monitor.modules[0],
        ("sg/multi_node".into(), Some("1".into()))
    );
    let contradicts = "package_name p\nmodule_name sg/multi_node\npackage_type failover\n";
    assert_eq!(
        messages(&parse(contradicts, "t").unwrap_err()),
        ["t:3: error: PACKAGE_TYPE: failover does not go with base module sg/multi_node (line 2)"]
    );
    let defaulted = "package_name p\nmodule_name sg/multi_node\n";
    assert_eq!(
        messages(&parse(defaulted, "t").unwrap_err()),
        ["t:2: error: MODULE_NAME: sg/multi_node makes a multi_node package, but package_type is not given (so failover)"]
    );
    // Modules other than the base ones say nothing of the type.
    let other = "package_name p\nmodule_name sg/failover\nmodule_name sg/service\n";
    assert!(parse(other, "t").is_ok());
}

#[test]
fn script_timeouts_are_positive_and_successors_may_be_not_waited_for() {
    let monitor = package("monpkg.conf");
    assert_eq!(monitor.run_script_timeout, None);
    assert_eq!(monitor.halt_script_timeout, Some(Duration::from_secs(60)));
    assert_eq!(monitor.successor_halt_timeout, Some(Duration::ZERO));
    let zero = "package_name p\nrun_script_timeout 0\nhalt_script_timeout 1\n";
    assert_eq!(
        messages(&parse(zero, "t").unwrap_err()),
        ["t:2: error: RUN_SCRIPT_TIMEOUT: \"0\" is not no_timeout or 1 to 4294 seconds"]
    );
}

#[test]
fn script_log_file_is_as_written_or_the_default() {
    let monitor = package("monpkg.conf");
    assert_eq!(monitor.script_log_file, "/var/log/cimguard/monpkg.log");
    assert_eq!(monitor.monitored_subnets[0].1, SubnetAccess::Partial);
    let web = package("webpkg.conf");
    assert_eq!(web.script_log_file, "$SGRUN/log/webpkg.log");
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
    // Each monitored_subnet takes its own monitored_subnet_access; a wrong subnet takes its
    // access with it rather than passing it to the subnet before.
    let subnets = "package_name p\nmonitored_subnet 10.0.0.0\nmonitored_subnet_access PARTIAL\n\
                   monitored_subnet 10.1.0.0\nmonitored_subnet_access FULL\n\
                   monitored_subnet 10.2.0.0\nmonitored_subnet_access PARTIAL\n\
                   monitored_subnet_access FULL\nmonitored_subnet nowhere\n\
                   monitored_subnet_access FULL\n";
    let findings = parse(subnets, "subnets").unwrap_err();
    let shown: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "subnets:8: error: MONITORED_SUBNET_ACCESS: given twice for monitored_subnet 10.2.0.0 (first on line 7)",
            "subnets:9: error: MONITORED_SUBNET: \"nowhere\" is not an address",
        ]
    );
    // A second service starts afresh.
    let two =
        "package_name p\nservice_name a\nservice_cmd /bin/a\nservice_name b\nservice_cmd /bin/b\n";
    assert_eq!(parse(two, "two").unwrap().config.services.len(), 2);
}
