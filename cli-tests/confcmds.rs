//! `cmmakepkg` and `cmcheckconf` as an operator runs them: the built binaries on files in a
//! temporary directory, their templates read back with the daemon's own parser, and the cluster
//! crate's configuration fixtures as the files to check.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use cimguard_cluster::config::package::{self, PackageConfig, PackageType};

const CMMAKEPKG: &str = env!("CARGO_BIN_EXE_cmmakepkg");
const CMCHECKCONF: &str = env!("CARGO_BIN_EXE_cmcheckconf");

/// Every module but sg/all, in the order cmmakepkg writes them.
const MODULES: [&str; 13] = [
    "sg/basic",
    "sg/failover",
    "sg/multi_node",
    "sg/system_multi_node",
    "sg/dependency",
    "sg/weight",
    "sg/monitor_subnet",
    "sg/package_ip",
    "sg/service",
    "sg/generic_resource",
    "sg/external_pre",
    "sg/external",
    "sg/acp",
];

const SUCCESS: &str = "cmcheckconf: Verification completed with no errors found.\n";

/// A file of the cluster crate's tests: qs-three-nodes.ascii (cluster prodcl: hpnode1 to 3),
/// dbpkg.conf (on hpnode1 and 2), webpkg.conf (depends on dbpkg), monpkg.conf (multi-node).
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("cluster/tests/config")
        .join(name)
}

fn fixture_text(name: &str) -> String {
    fs::read_to_string(fixture(name)).unwrap()
}

/// A fresh directory for one test.
fn directory(test: &str) -> PathBuf {
    let directory =
        std::env::temp_dir().join(format!("cimguard-confcmds-{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&directory);
    fs::create_dir_all(&directory).unwrap();
    directory
}

/// Runs `program ARGS` in `dir`, with `$CIMGUARD_CLUSTER_FILE` set to `cluster` or unset, and
/// no cluster agent to ask (cmcheckconf checks the files alone then).
fn run_with(program: &str, dir: &Path, args: &[&str], cluster: Option<&Path>) -> Output {
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(dir)
        .env_remove("CIMGUARD_CLUSTER_FILE")
        .env_remove("CIMGUARD_URL")
        .env("CIMGUARD_SOCKET", dir.join("no-agent.sock"));
    if let Some(cluster) = cluster {
        command.env("CIMGUARD_CLUSTER_FILE", cluster);
    }
    command.output().unwrap()
}

fn run(program: &str, dir: &Path, args: &[&str]) -> Output {
    run_with(program, dir, args, None)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "{}{}",
        stdout(output),
        stderr(output)
    );
}

/// Exit status 1, nothing on standard output, and one line on standard error that contains
/// each of `parts`.
fn assert_one_line_failure(output: &Output, parts: &[&str]) {
    assert_eq!(output.status.code(), Some(1), "{}", stderr(output));
    assert_eq!(stdout(output), "");
    let error = stderr(output);
    assert_eq!(error.lines().count(), 1, "{error}");
    for part in parts {
        assert!(error.contains(part), "{part:?} not in {error:?}");
    }
}

/// cmcheckconf's refusal: exit status 1, and the report on standard output with `findings`
/// among its lines and the count of errors last.
fn assert_findings(output: &Output, findings: &[String], errors: usize) {
    assert_eq!(output.status.code(), Some(1), "{}", stderr(output));
    let report = stdout(output);
    for finding in findings {
        assert!(
            report.lines().any(|line| line == finding),
            "{finding:?} not in\n{report}"
        );
    }
    let plural = if errors == 1 { "" } else { "s" };
    assert_eq!(
        report.lines().last(),
        Some(format!("cmcheckconf: Verification failed with {errors} error{plural}.").as_str())
    );
}

/// The template of `args` (on standard output).
fn template(dir: &Path, args: &[&str]) -> String {
    let output = run(CMMAKEPKG, dir, args);
    assert_success(&output);
    assert_eq!(stderr(&output), "");
    stdout(&output)
}

/// `template` with what the operator must give filled in: the empty package_name line.
fn filled(template: &str, name: &str) -> String {
    edit_lines(template, |line| {
        (line == "package_name").then(|| format!("package_name {name}"))
    })
}

/// `template` with every commented-out parameter (`#name value`) set.
fn uncommented(template: &str) -> String {
    edit_lines(template, |line| {
        let rest = line.strip_prefix('#')?;
        rest.starts_with(|c: char| c.is_ascii_lowercase())
            .then(|| rest.to_owned())
    })
}

fn edit_lines(text: &str, mut edit: impl FnMut(&str) -> Option<String>) -> String {
    text.lines()
        .map(|line| edit(line).unwrap_or_else(|| line.to_owned()) + "\n")
        .collect()
}

/// The parameters a template writes, commented out or not.
fn parameter_names(template: &str) -> BTreeSet<String> {
    template
        .lines()
        .map(|line| line.strip_prefix('#').unwrap_or(line))
        .filter(|line| line.starts_with(|c: char| c.is_ascii_lowercase()))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The parameter lines (not commented out) of `text` that set `parameter`.
fn lines_setting<'a>(text: &'a str, parameter: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|line| line.split_whitespace().next() == Some(parameter))
        .collect()
}

fn parsed(text: &str, file: &str) -> PackageConfig {
    match package::parse(text, file) {
        Ok(checked) => checked.config,
        Err(findings) => {
            let lines: Vec<String> = findings.iter().map(ToString::to_string).collect();
            panic!("{file} does not parse:\n{}\n{text}", lines.join("\n"))
        }
    }
}

#[test]
fn every_module_makes_a_template_the_parser_takes_once_filled_in() {
    let dir = directory("modules");
    for module in MODULES.iter().chain(&["sg/all"]) {
        let text = template(&dir, &["-m", module]);
        if *module != "sg/all" {
            assert!(
                lines_setting(&text, "module_name")
                    .contains(&format!("{:<34}{module}", "module_name").as_str()),
                "{module}:\n{text}"
            );
        }
        // As written, the template is refused where the operator must edit it.
        let findings = package::parse(&text, module).unwrap_err();
        let package_name_line = text.lines().position(|l| l == "package_name").unwrap() + 1;
        assert!(
            findings
                .iter()
                .any(|d| d.line == package_name_line && d.reason == "no value"),
            "{findings:?}"
        );
        let config = parsed(&filled(&text, "pkg1"), module);
        assert_eq!(config.name, "pkg1");
        let package_type = match *module {
            "sg/multi_node" => PackageType::MultiNode,
            "sg/system_multi_node" => PackageType::SystemMultiNode,
            _ => PackageType::Failover,
        };
        assert_eq!(config.package_type, package_type, "{module}");
        assert!(config.nodes.is_empty(), "node_name * by default");
        // Each commented-out example is in the parser's syntax too.
        parsed(&uncommented(&filled(&text, "pkg1")), module);
    }
}

#[test]
fn sg_all_holds_every_module_and_is_the_default() {
    let dir = directory("all");
    let all = template(&dir, &["-m", "sg/all"]);
    let modules: Vec<&str> = lines_setting(&all, "module_name")
        .iter()
        .filter_map(|line| line.split_whitespace().nth(1))
        .collect();
    let expected: Vec<&str> = MODULES
        .iter()
        .copied()
        .filter(|m| !m.contains("multi_node"))
        .collect();
    assert_eq!(modules, expected);
    let names = parameter_names(&all);
    for module in MODULES.iter().filter(|m| !m.contains("multi_node")) {
        let one = template(&dir, &["-m", "sg/failover", "-m", module]);
        let missing: Vec<String> = parameter_names(&one).difference(&names).cloned().collect();
        assert!(missing.is_empty(), "{module}: {missing:?} not in sg/all");
    }
    for parameter in [
        "package_name",
        "node_name",
        "priority",
        "failover_policy",
        "failback_policy",
        "dependency_name",
        "dependency_condition",
        "dependency_location",
        "weight_name",
        "weight_value",
        "local_lan_failover_allowed",
        "monitored_subnet",
        "monitored_subnet_access",
        "ip_subnet",
        "ip_address",
        "service_name",
        "service_cmd",
        "service_restart",
        "service_fail_fast_enabled",
        "service_halt_timeout",
        "generic_resource_name",
        "generic_resource_evaluation_type",
        "generic_resource_up_criteria",
        "external_pre_script",
        "external_script",
        "user_name",
        "user_host",
        "user_role",
    ] {
        assert!(names.contains(parameter), "{parameter} not in sg/all");
    }
    // A module alone leaves the others out once a base module is given.
    let service = parameter_names(&template(&dir, &["-m", "sg/failover", "-m", "sg/service"]));
    assert!(service.contains("service_cmd"));
    assert!(!service.contains("generic_resource_name"));
    // Without a base module, cmmakepkg makes Serviceguard's default: every module.
    assert_eq!(template(&dir, &[]), all);
    assert_eq!(template(&dir, &["-m", "sg/service"]), all);
    // With every example set, the package has one of each.
    let config = parsed(&uncommented(&filled(&all, "pkg1")), "sg/all");
    assert_eq!(config.services.len(), 1);
    assert_eq!(config.generic_resources.len(), 1);
    assert_eq!(config.dependencies.len(), 1);
    assert_eq!(config.ip_subnets.len(), 1);
    assert_eq!(config.monitored_subnets.len(), 1);
    assert_eq!(config.external_pre_scripts.len(), 1);
    assert_eq!(config.external_scripts.len(), 1);
    assert_eq!(config.access.len(), 1);
}

#[test]
fn unknown_or_conflicting_modules_fail_with_one_line() {
    let dir = directory("unknown");
    assert_one_line_failure(
        &run(CMMAKEPKG, &dir, &["-m", "sg/failover", "-m", "sg/nonesuch"]),
        &["unknown module sg/nonesuch"],
    );
    assert_one_line_failure(
        &run(
            CMMAKEPKG,
            &dir,
            &["-m", "sg/failover", "-m", "sg/multi_node"],
        ),
        &["sg/failover", "sg/multi_node", "base modules"],
    );
    // Nothing was written.
    assert_one_line_failure(
        &run(CMMAKEPKG, &dir, &["-m", "sg/nonesuch", "pkg.conf"]),
        &["sg/nonesuch"],
    );
    assert!(!dir.join("pkg.conf").exists());
}

#[test]
fn writes_the_output_file_and_never_overwrites_it() {
    let dir = directory("output");
    let output = run(CMMAKEPKG, &dir, &["-v", "-m", "sg/multi_node", "pkg.conf"]);
    assert_success(&output);
    assert_eq!(stdout(&output), "");
    assert!(stderr(&output).contains("sg/basic sg/multi_node"));
    let written = fs::read_to_string(dir.join("pkg.conf")).unwrap();
    assert_eq!(written, template(&dir, &["-m", "sg/multi_node"]));

    fs::write(dir.join("pkg.conf"), "package_name edited\n").unwrap();
    assert_one_line_failure(
        &run(CMMAKEPKG, &dir, &["-m", "sg/failover", "pkg.conf"]),
        &["pkg.conf already exists"],
    );
    assert_eq!(
        fs::read_to_string(dir.join("pkg.conf")).unwrap(),
        "package_name edited\n"
    );
}

#[test]
fn include_keeps_the_existing_values_and_adds_the_modules() {
    let dir = directory("include");
    let existing = fixture_text("dbpkg.conf");
    fs::write(dir.join("dbpkg.conf"), &existing).unwrap();
    let output = run(
        CMMAKEPKG,
        &dir,
        &[
            "-i",
            "dbpkg.conf",
            "-m",
            "sg/dependency",
            "-m",
            "sg/acp",
            "new.conf",
        ],
    );
    assert_success(&output);
    let text = fs::read_to_string(dir.join("new.conf")).unwrap();
    assert!(text.starts_with(&existing));
    assert_eq!(
        fs::read_to_string(dir.join("dbpkg.conf")).unwrap(),
        existing
    );
    let config = parsed(&text, "new.conf");
    assert_eq!(config.name, "dbpkg");
    assert_eq!(config.description, "Example database");
    assert_eq!(config.nodes, ["hpnode1", "hpnode2"]);
    assert_eq!(config.run_script_timeout, Some(Duration::from_secs(600)));
    assert_eq!(config.priority, Some(20));
    assert_eq!(config.services.len(), 1);
    assert_eq!(config.generic_resources.len(), 2);
    let modules: Vec<&str> = config.modules.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        modules,
        ["sg/basic", "sg/failover", "sg/dependency", "sg/acp"]
    );
    // Set once: the file's lines, nothing added for them.
    assert_eq!(lines_setting(&text, "run_script_timeout").len(), 1);
    assert_eq!(lines_setting(&text, "node_name").len(), 2);
    assert!(parameter_names(&text).contains("user_role"));
    assert_success(&run(
        CMCHECKCONF,
        &dir,
        &[
            "-C",
            fixture("qs-three-nodes.ascii").to_str().unwrap(),
            "-P",
            "new.conf",
        ],
    ));

    // Modules the file has are not added again.
    let again = template(&dir, &["-i", "new.conf", "-m", "sg/dependency"]);
    assert_eq!(lines_setting(&again, "module_name").len(), 4);
    parsed(&again, "again");

    // The file's package type stays.
    fs::write(dir.join("monpkg.conf"), fixture_text("monpkg.conf")).unwrap();
    assert_one_line_failure(
        &run(CMMAKEPKG, &dir, &["-i", "monpkg.conf", "-m", "sg/failover"]),
        &["monpkg.conf is a multi_node package", "sg/failover"],
    );
    let monitor = template(&dir, &["-i", "monpkg.conf", "-m", "sg/generic_resource"]);
    assert_eq!(
        parsed(&monitor, "monitor").package_type,
        PackageType::MultiNode
    );
}

#[test]
fn cmcheckconf_passes_a_good_cluster_and_its_packages() {
    let dir = directory("good");
    let cluster = fixture("qs-three-nodes.ascii");
    let database = fixture("dbpkg.conf");
    let web = fixture("webpkg.conf");
    fs::write(
        dir.join("pkg1.conf"),
        filled(&template(&dir, &["-m", "sg/all"]), "pkg1"),
    )
    .unwrap();
    let output = run(
        CMCHECKCONF,
        &dir,
        &[
            "-C",
            cluster.to_str().unwrap(),
            "-P",
            database.to_str().unwrap(),
            "-P",
            web.to_str().unwrap(),
            "-P",
            "pkg1.conf",
        ],
    );
    assert_success(&output);
    assert_eq!(stdout(&output), SUCCESS);
    assert_eq!(stderr(&output), "");
}

#[test]
fn cmcheckconf_reports_each_finding_at_its_line() {
    let dir = directory("broken");
    let cluster = fixture("qs-three-nodes.ascii");
    let cluster = cluster.to_str().unwrap();
    let database = fixture_text("dbpkg.conf");

    // An unknown parameter.
    fs::write(dir.join("unknown.conf"), format!("{database}vg vg01\n")).unwrap();
    let line = database.lines().count() + 1;
    assert_findings(
        &run(CMCHECKCONF, &dir, &["-C", cluster, "-P", "unknown.conf"]),
        &[format!("unknown.conf:{line}: error: VG: unknown parameter")],
        1,
    );

    // A node that is not in the cluster.
    fs::write(
        dir.join("stranger.conf"),
        database.replace("hpnode2", "hpnode9"),
    )
    .unwrap();
    let line = database
        .lines()
        .position(|l| l.contains("hpnode2"))
        .unwrap()
        + 1;
    assert_findings(
        &run(CMCHECKCONF, &dir, &["-C", cluster, "-P", "stranger.conf"]),
        &[format!(
            "stranger.conf:{line}: error: NODE_NAME: hpnode9 is not a node of cluster prodcl"
        )],
        1,
    );

    // A dependency on a package that is not configured (webpkg needs dbpkg).
    let web = fixture("webpkg.conf");
    let web = web.to_str().unwrap();
    let line = fixture_text("webpkg.conf")
        .lines()
        .position(|l| l.starts_with("dependency_condition"))
        .unwrap()
        + 1;
    assert_findings(
        &run(CMCHECKCONF, &dir, &["-C", cluster, "-P", web]),
        &[format!(
            "{web}:{line}: error: DEPENDENCY_CONDITION: dependency db_up names package dbpkg, \
             which is not configured"
        )],
        1,
    );

    // Every error of a file, not only the first.
    let output = run(
        CMCHECKCONF,
        &dir,
        &["-P", fixture("bad-package.conf").to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).lines().count() > 10, "{}", stdout(&output));
}

#[test]
fn cmcheckconf_refuses_two_files_of_one_package_with_or_without_the_cluster() {
    let dir = directory("duplicate");
    let cluster = fixture("qs-three-nodes.ascii");
    let database = fixture_text("dbpkg.conf");
    fs::write(dir.join("db.conf"), &database).unwrap();
    // The fallback differs in its nodes and priority only: the same package_name.
    fs::write(
        dir.join("db_fb.conf"),
        database
            .replace("hpnode2", "hpnode3")
            .replace("priority                          20", "priority 21"),
    )
    .unwrap();
    let line = database
        .lines()
        .position(|l| l.starts_with("package_name"))
        .unwrap()
        + 1;
    let finding =
        format!("db_fb.conf:{line}: error: PACKAGE_NAME: package dbpkg is also defined in db.conf");
    let files = ["-P", "db.conf", "-P", "db_fb.conf"];
    assert_findings(
        &run(CMCHECKCONF, &dir, &files),
        std::slice::from_ref(&finding),
        1,
    );
    let with_cluster = [&["-C", cluster.to_str().unwrap()][..], &files].concat();
    assert_findings(&run(CMCHECKCONF, &dir, &with_cluster), &[finding], 1);
}

#[test]
fn cmcheckconf_reads_a_list_of_package_files() {
    let dir = directory("list");
    let cluster = fixture("qs-three-nodes.ascii");
    let cluster = cluster.to_str().unwrap();
    fs::write(
        dir.join("packages"),
        format!(
            "# The packages of prodcl.\n\n{}\n  {}  \n",
            fixture("dbpkg.conf").display(),
            fixture("webpkg.conf").display()
        ),
    )
    .unwrap();
    let output = run(CMCHECKCONF, &dir, &["-C", cluster, "-p", "packages"]);
    assert_success(&output);
    assert_eq!(stdout(&output), SUCCESS);

    // webpkg alone: its dependency is missing, so the list was read.
    fs::write(
        dir.join("web-only"),
        format!("{}\n", fixture("webpkg.conf").display()),
    )
    .unwrap();
    let output = run(CMCHECKCONF, &dir, &["-C", cluster, "-p", "web-only"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("which is not configured"));

    // -P and -p together.
    let output = run(
        CMCHECKCONF,
        &dir,
        &[
            "-C",
            cluster,
            "-P",
            fixture("dbpkg.conf").to_str().unwrap(),
            "-p",
            "web-only",
        ],
    );
    assert_success(&output);

    // A listed file that cannot be read.
    fs::write(dir.join("missing-list"), "# first\nnonesuch.conf\n").unwrap();
    assert_one_line_failure(
        &run(CMCHECKCONF, &dir, &["-C", cluster, "-p", "missing-list"]),
        &["cannot read nonesuch.conf", "line 2 of missing-list"],
    );
}

#[test]
fn unreadable_files_fail_with_one_line() {
    let dir = directory("unreadable");
    let cluster = fixture("qs-three-nodes.ascii");
    let cluster = cluster.to_str().unwrap();
    assert_one_line_failure(
        &run(CMCHECKCONF, &dir, &["-C", cluster, "-P", "nonesuch.conf"]),
        &["cannot read nonesuch.conf"],
    );
    assert_one_line_failure(
        &run(CMCHECKCONF, &dir, &["-C", "nonesuch.ascii"]),
        &["cannot read nonesuch.ascii"],
    );
    assert_one_line_failure(&run(CMCHECKCONF, &dir, &["-P", "."]), &["cannot read ."]);
    assert_one_line_failure(
        &run(CMCHECKCONF, &dir, &["-p", "nonesuch-list"]),
        &["cannot read nonesuch-list"],
    );
    fs::write(dir.join("binary.conf"), [0xff, 0xfe, 0x00]).unwrap();
    assert_one_line_failure(
        &run(CMCHECKCONF, &dir, &["-P", "binary.conf"]),
        &["cannot read binary.conf", "UTF-8"],
    );
    // No file at all is a usage error (status 2, as for any wrong argument), naming the
    // choices.
    let nothing = run(CMCHECKCONF, &dir, &[]);
    assert_eq!(nothing.status.code(), Some(2), "{}", stderr(&nothing));
    assert!(stderr(&nothing).contains("-C <CLUSTER_FILE>|-P <PACKAGE_FILE>|-p <LIST_FILE>"));
    assert_one_line_failure(
        &run(CMMAKEPKG, &dir, &["-i", "nonesuch.conf"]),
        &["cannot read nonesuch.conf"],
    );
}

#[test]
fn cmcheckconf_takes_the_cluster_file_from_the_environment() {
    let dir = directory("environment");
    let cluster = fixture("qs-three-nodes.ascii");
    let web = fixture("webpkg.conf");
    let web = web.to_str().unwrap();
    // With the cluster file, webpkg is checked against the set: its dependency is missing.
    let output = run_with(CMCHECKCONF, &dir, &["-P", web], Some(&cluster));
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("which is not configured"));
    // Without it, the file alone is checked, and -v says what was left out.
    let output = run(CMCHECKCONF, &dir, &["-v", "-P", web]);
    assert_success(&output);
    let report = stdout(&output);
    assert!(report.contains("not checked against a cluster"), "{report}");
    assert!(report.ends_with(SUCCESS), "{report}");
    // -C wins over the environment.
    fs::write(dir.join("empty.ascii"), "").unwrap();
    let output = run_with(
        CMCHECKCONF,
        &dir,
        &[
            "-C",
            cluster.to_str().unwrap(),
            "-P",
            fixture("dbpkg.conf").to_str().unwrap(),
        ],
        Some(&dir.join("empty.ascii")),
    );
    assert_success(&output);
}
