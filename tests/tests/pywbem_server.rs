//! The WBEM server (`cmwbemd`) driven over HTTPS by clients nobody here wrote: pywbem through
//! `tests/python/server_ops.py`, pywbemcli (pywbemtools) and sblim's `wbemcli`.
//!
//! Each test starts its own agent on `127.0.0.1:0` (killed when the test ends) and runs one
//! group of `server_ops.py`, which prints `ok` or `FAIL` with pywbem's error text for every
//! check of the group; a failing test shows that listing and the agent's log.
//!
//! Needs `cargo build --bin cmwbemd` and the venv of `scripts/test system python` (the test
//! fails, never skips, without them). Tests of features still being built are `#[ignore]`d
//! with the reason; run them with `--ignored`.

use std::process::{Command, Output};
use std::time::Duration;

use cimguard_tests::pyagent::{
    client_command, client_script, describe, output_within, venv_program, Agent,
};

/// How long one group of checks may run (the pull group waits for a context to expire).
const GROUP_TIMEOUT: Duration = Duration::from_secs(300);

/// How long one command-line client run may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The flags of an agent that serves everyone as `anonymous`.
const ANONYMOUS: &[&str] = &["--danger-allow-anonymous"];

fn start(arguments: &[&str]) -> Agent {
    Agent::start(arguments).unwrap_or_else(|error| panic!("{error}"))
}

/// The last lines of the agent's log, for failure messages.
fn log_tail(agent: &Agent) -> String {
    let log = agent.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Runs `server_ops.py GROUP` against `agent` and fails with its listing unless all passed.
fn run_group(agent: &Agent, group: &str, extra: &[&str]) {
    let mut command = client_script("server_ops.py").unwrap_or_else(|error| panic!("{error}"));
    command
        .arg(group)
        .arg("--url")
        .arg(agent.url())
        .arg("--ca-certs")
        .arg(agent.ca_path())
        .arg("--version")
        .arg(env!("CARGO_PKG_VERSION"))
        .args(extra);
    let output = output_within(&mut command, GROUP_TIMEOUT).unwrap_or_else(|error| {
        panic!("{error}\n--- agent log\n{}", log_tail(agent));
    });
    assert!(
        output.status.success(),
        "pywbem checks of group {group} failed:\n{}\n--- agent log (tail)\n{}",
        describe(&output),
        log_tail(agent)
    );
}

fn group(name: &str) {
    let agent = start(ANONYMOUS);
    run_group(&agent, name, &[]);
}

#[test]
fn classes() {
    group("classes");
}

#[test]
fn instances() {
    group("instances");
}

#[test]
fn associations() {
    group("associations");
}

#[test]
fn class_associators_result_class() {
    group("class_result_class");
}

#[test]
fn references_to_local_objects_without_host() {
    group("reference_keys");
}

#[test]
fn pull() {
    group("pull");
}

#[test]
fn pull_open_contexts_per_principal() {
    let agent = start(&[
        "--danger-allow-anonymous",
        "--open-contexts-per-principal-max",
        "2",
    ]);
    run_group(&agent, "pull_limits", &[]);
}

#[test]
fn queries() {
    group("queries");
}

#[test]
fn instance_writes_refused() {
    group("instance_writes");
}

#[test]
fn subscriptions() {
    group("subscriptions");
}

#[test]
fn methods() {
    group("methods");
}

#[test]
fn server_statistics() {
    group("statistics");
}

#[test]
fn wbem_server() {
    group("wbemserver");
}

#[test]
fn access_denied() {
    let folder = cimguard_tests::pyagent::scratch_folder("users").expect("scratch folder");
    let users = folder.join("users");
    cimguard_tests::agent::users_file(
        &users,
        &[
            ("admin", "FULL_ADMIN", "admin password"),
            ("monitor", "MONITOR", "monitor password"),
        ],
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let users_text = users.to_string_lossy().into_owned();
    let agent = start(&["--users-file", &users_text]);
    run_group(
        &agent,
        "access",
        &[
            "--user",
            "admin",
            "--password",
            "admin password",
            "--monitor-user",
            "monitor",
            "--monitor-password",
            "monitor password",
        ],
    );
    let _ = std::fs::remove_dir_all(folder);
}

// --- command-line clients --------------------------------------------------------------------

/// Runs a client command and fails unless it exits 0 and prints every one of `expected`.
fn expect_output(agent: &Agent, command: &mut Command, expected: &[&str]) -> Output {
    let output = output_within(command, CLIENT_TIMEOUT).unwrap_or_else(|error| panic!("{error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let missing: Vec<&&str> = expected.iter().filter(|e| !stdout.contains(**e)).collect();
    assert!(
        output.status.success() && missing.is_empty(),
        "{command:?}: expected exit 0 and {missing:?} in its output:\n{}\n--- agent log (tail)\n{}",
        describe(&output),
        log_tail(agent)
    );
    output
}

fn pywbemcli(agent: &Agent, arguments: &[&str]) -> Command {
    let program = venv_program("pywbemcli").unwrap_or_else(|error| panic!("{error}"));
    let mut command = client_command(program);
    // pywbemcli reads connection definitions from the current folder and PYWBEMCLI_*
    // variables: keep both out of the test.
    command.current_dir(agent.scratch());
    for (variable, _) in std::env::vars_os() {
        if variable.to_string_lossy().starts_with("PYWBEMCLI_") {
            command.env_remove(variable);
        }
    }
    command
        .arg("--server")
        .arg(agent.url())
        .arg("--ca-certs")
        .arg(agent.ca_path())
        .args(arguments);
    command
}

#[test]
fn pywbemcli_smoke() {
    let agent = start(ANONYMOUS);
    expect_output(
        &agent,
        &mut pywbemcli(
            &agent,
            &[
                "instance",
                "enumerate",
                "CIM_ObjectManager",
                "--namespace",
                "root/interop",
            ],
        ),
        &[
            "instance of CIM_ObjectManager",
            "ElementName = \"cimguard\"",
        ],
    );
    expect_output(
        &agent,
        &mut pywbemcli(
            &agent,
            &["class", "enumerate", "--no", "--namespace", "root/interop"],
        ),
        &["CIM_ManagedElement", "CIM_ElementConformsToProfile"],
    );
    expect_output(
        &agent,
        &mut pywbemcli(&agent, &["profile", "list"]),
        &["DMTF", "Profile Registration", "1.0.0"],
    );
    expect_output(
        &agent,
        &mut pywbemcli(&agent, &["server", "info"]),
        &["cimguard", env!("CARGO_PKG_VERSION"), "root/cimv2"],
    );
    // Each namespace once: pywbem found the interop namespace as `interop`, and so it is
    // listed (not also as root/interop).
    let listed = expect_output(
        &agent,
        &mut pywbemcli(&agent, &["namespace", "list"]),
        &["interop", "root/cimv2"],
    );
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains("root/interop"),
        "{}",
        describe(&listed)
    );
    // The shrub matches the associations' reference values with the associated paths: each
    // result role shows the instances it found.
    expect_output(
        &agent,
        &mut pywbemcli(
            &agent,
            &[
                "instance",
                "shrub",
                "CIM_RegisteredProfile.InstanceID=\"DMTF+Profile_Registration+1.0.0\"",
                "--namespace",
                "root/interop",
            ],
        ),
        &[
            "CIM_ObjectManager(ResultClass)(1 insts)",
            ":CIM_ObjectManager.~,Name=",
            ":CIM_RegisteredProfile.InstanceID=\"DMTF+Indications+1.2.2\"",
        ],
    );
}

/// pywbemcli's `statistics` commands: gathering turned on with `server-on`, the operations
/// made since shown by `server-show`, turned off with `server-off`.
#[test]
fn pywbemcli_server_statistics() {
    let agent = start(ANONYMOUS);
    expect_output(
        &agent,
        &mut pywbemcli(&agent, &["statistics", "server-on"]),
        &["Server statistics gathering set to on"],
    );
    expect_output(
        &agent,
        &mut pywbemcli(
            &agent,
            &[
                "instance",
                "enumerate",
                "CIM_Namespace",
                "--namespace",
                "root/interop",
            ],
        ),
        &["instance of CIM_Namespace"],
    );
    // One pywbemcli command makes several operations; each kind made shows a row starting
    // with its name (the enumeration went by the pull operations, pywbemcli's default).
    expect_output(
        &agent,
        &mut pywbemcli(&agent, &["-o", "plain", "statistics", "server-show"]),
        &["\nOpenEnumerateInstances ", "\nGetClass "],
    );
    expect_output(
        &agent,
        &mut pywbemcli(&agent, &["statistics", "server-off"]),
        &["Server statistics gathering set to off"],
    );
    expect_output(
        &agent,
        &mut pywbemcli(&agent, &["statistics", "status"]),
        &["server statistics gathering  off"],
    );
}

/// `wbemcli OPERATION -cacert CA OPTIONS... https://127.0.0.1:PORT/OBJECT`.
fn wbemcli(agent: &Agent, operation: &str, options: &[&str], object: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", "command -v wbemcli"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "wbemcli is missing: run scripts/test system, which installs sblim-wbemcli"
    );
    let mut command = client_command("wbemcli");
    command
        .arg(operation)
        .arg("-cacert")
        .arg(agent.ca_path())
        .args(options)
        .arg(format!("https://{}/{object}", agent.address()));
    command
}

#[test]
fn wbemcli_smoke() {
    let agent = start(ANONYMOUS);
    expect_output(
        &agent,
        &mut wbemcli(&agent, "ei", &[], "root/interop:CIM_ObjectManager"),
        &[
            "root/interop:CIM_ObjectManager.",
            "ElementName=\"cimguard\"",
            "CreationClassName=\"CIM_ObjectManager\"",
        ],
    );
    expect_output(
        &agent,
        &mut wbemcli(&agent, "ein", &[], "root/interop:CIM_Namespace"),
        &["Name=\"root/interop\"", "Name=\"root/cimv2\""],
    );
    expect_output(
        &agent,
        &mut wbemcli(&agent, "ecn", &[], "root/interop:CIM_ManagedElement"),
        &["root/interop:CIM_ManagedSystemElement"],
    );
    // wbemcli's own path output, fed back to it: GetInstance and AssociatorNames.
    let names = expect_output(
        &agent,
        &mut wbemcli(&agent, "ein", &[], "root/interop:CIM_ObjectManager"),
        &["root/interop:CIM_ObjectManager."],
    );
    let stdout = String::from_utf8_lossy(&names.stdout);
    let manager = stdout
        .lines()
        .next()
        .and_then(|line| line.split_once('/'))
        .map(|(_, path)| path.trim().to_owned())
        .expect("a path line");
    expect_output(
        &agent,
        &mut wbemcli(&agent, "gi", &[], &manager),
        &["GatherStatisticalData=FALSE"],
    );
    expect_output(
        &agent,
        &mut wbemcli(
            &agent,
            "ain",
            &["-ac", "CIM_ElementConformsToProfile"],
            &manager,
        ),
        &["root/interop:CIM_RegisteredProfile.InstanceID=\"DMTF+Profile_Registration+1.0.0\""],
    );
    // Without a CA: libcurl's verification off.
    let mut unverified = client_command("wbemcli");
    unverified.arg("ei").arg("-noverify").arg(format!(
        "https://{}/root/interop:CIM_RegisteredProfile",
        agent.address()
    ));
    expect_output(
        &agent,
        &mut unverified,
        &["RegisteredName=\"Profile Registration\""],
    );
}

/// wbemcli's instance writing: `ci` a destination, `mi` a property the client did not give
/// (`mi` sets only properties the instance shows: a new instance shows every property of its
/// class, NULL where nothing was given), `gi` it, `di` it.
#[test]
fn wbemcli_creates_modifies_and_deletes_a_destination() {
    let agent = start(ANONYMOUS);
    let manager = expect_output(
        &agent,
        &mut wbemcli(&agent, "ei", &[], "root/interop:CIM_ObjectManager"),
        &["SystemName="],
    );
    let stdout = String::from_utf8_lossy(&manager.stdout);
    let system = stdout
        .split("SystemName=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the object manager's SystemName");
    let path = format!(
        "root/interop:CIM_ListenerDestinationCIMXML.SystemCreationClassName=\
         \"CIM_ComputerSystem\",SystemName=\"{system}\",CreationClassName=\
         \"CIM_ListenerDestinationCIMXML\",Name=\"wbemcli\""
    );
    expect_output(
        &agent,
        wbemcli(&agent, "ci", &[], &path)
            .arg("Name=\"wbemcli\",Destination=\"https://127.0.0.1:5999\""),
        &["Name=\"wbemcli\""],
    );
    expect_output(
        &agent,
        wbemcli(&agent, "mi", &[], &path).arg("ElementName=\"from wbemcli\""),
        &[],
    );
    expect_output(
        &agent,
        &mut wbemcli(&agent, "gi", &[], &path),
        &[
            "ElementName=\"from wbemcli\"",
            "Destination=\"https://127.0.0.1:5999\"",
            // Permanent unless the client says otherwise; the CIM-XML protocol by default.
            "PersistenceType=2",
            "Protocol=2",
            "OtherProtocol=",
        ],
    );
    // GetProperty and SetProperty (`gp`, `sp`).
    expect_output(
        &agent,
        wbemcli(&agent, "gp", &[], &path).arg("Protocol"),
        &["2"],
    );
    expect_output(
        &agent,
        wbemcli(&agent, "sp", &[], &path).arg("ElementName=\"set by sp\""),
        &[],
    );
    expect_output(
        &agent,
        wbemcli(&agent, "gp", &[], &path).arg("ElementName"),
        &["set by sp"],
    );
    expect_output(&agent, &mut wbemcli(&agent, "di", &[], &path), &[]);
    let left = expect_output(
        &agent,
        &mut wbemcli(
            &agent,
            "ein",
            &[],
            "root/interop:CIM_ListenerDestinationCIMXML",
        ),
        &[],
    );
    assert!(
        !String::from_utf8_lossy(&left.stdout).contains("wbemcli"),
        "{}",
        describe(&left)
    );
}

#[test]
fn wbemcli_get_class() {
    let agent = start(ANONYMOUS);
    expect_output(
        &agent,
        &mut wbemcli(&agent, "gc", &[], "root/interop:CIM_ObjectManager"),
        &[
            "root/interop:CIM_ObjectManager",
            "GatherStatisticalData",
            "ElementName",
        ],
    );
}
