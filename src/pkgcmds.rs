//! The package commands, `cmrunpkg`, `cmhaltpkg`, `cmmodpkg`, `cmsetresource` and
//! `cmgetresource` (serviceguard.md 5.2), as CIM clients of the local agent: each reads the
//! cluster's view (HP_SGClusteringService.GetView) and calls the method of HP_SGPackage or
//! HP_SGGenericResource that does its work. A refusal prints the cluster's reason on one line
//! and exits 1.

use std::process::ExitCode;
use std::time::Instant;

use cim_schema::model::Value;
use cimguard_cluster::config::package::PackageType;
use cimguard_cluster::package_wait::{
    active, instance_states, out_of_cascade, Goal, PackageWait, Progress,
};
use cimguard_cluster::packages::Refusal;
use cimguard_cluster::status::{NodeStatus, PackageRow, Snapshot};
use clap::Parser;

use crate::cimclient::{path, Client, Returned};

/// Run a package and wait until it runs, and the package coordinator has heard so, so that
/// a command given next through any node sees it (it does not enable AUTO_RUN: follow with
/// `cmmodpkg -e`).
#[derive(Parser, Debug)]
#[command(name = "cmrunpkg", version)]
pub struct RunPackage {
    /// The node to run it on (default: a failover package on the agent's node, as
    /// Serviceguard's runs it on the local node; a multi-node package on every node of its
    /// list that is up with switching enabled). Repeatable for a multi-node package: its
    /// instances on those nodes.
    #[arg(short = 'n', value_name = "NODE")]
    pub nodes: Vec<String>,
    /// Verbose.
    #[arg(short = 'v')]
    pub verbose: bool,
    /// Preview: tell what would start and halt, and do nothing.
    #[arg(short = 't')]
    pub preview: bool,
    /// The packages: each is run in turn, those it depends on first.
    #[arg(required = true)]
    pub packages: Vec<String>,
}

/// Halt packages, each waited for until it is down and the package coordinator has heard
/// so (disables their AUTO_RUN); refused while
/// packages that depend on one run (the named dependents are halted first, and the package
/// is asked again for up to 10 s while the cluster has not yet heard them down). An AUTO_RUN
/// change a member has not confirmed within 8 s is told in a warning (exit status 0).
#[derive(Parser, Debug)]
#[command(name = "cmhaltpkg", version)]
pub struct HaltPackage {
    /// Halt only the instance on this node (repeatable: a multi-node package's instances on
    /// those nodes).
    #[arg(short = 'n', value_name = "NODE")]
    pub nodes: Vec<String>,
    /// Verbose.
    #[arg(short = 'v')]
    pub verbose: bool,
    /// Preview: tell what would start and halt, and do nothing.
    #[arg(short = 't')]
    pub preview: bool,
    /// The packages.
    #[arg(required = true)]
    pub packages: Vec<String>,
}

/// Enable or disable a package's switching: global (AUTO_RUN), or to a node with -n; reset a
/// service's restart counter (-R -s); maintenance mode (-m on|off). A switching change is
/// answered once every member holds it; one a member has not confirmed within 8 s is told
/// in a warning (it was made, and is lost only if the coordinator fails first; exit status
/// 0).
#[derive(Parser, Debug)]
#[command(name = "cmmodpkg", version)]
// One of -e, -d, -R or -m is the change; clap names them all when none is given.
#[command(group = clap::ArgGroup::new("change")
    .args(["enable", "disable", "reset", "maintenance"])
    .required(true))]
pub struct ModifyPackage {
    /// Enable.
    #[arg(short = 'e', conflicts_with_all = ["disable", "reset", "maintenance"])]
    pub enable: bool,
    /// Disable.
    #[arg(short = 'd', conflicts_with_all = ["reset", "maintenance"])]
    pub disable: bool,
    /// Reset the restart counter of the service given with -s.
    #[arg(short = 'R', requires = "service", conflicts_with = "maintenance")]
    pub reset: bool,
    /// The service whose restart counter -R resets.
    #[arg(short = 's', value_name = "SERVICE", requires = "reset")]
    pub service: Option<String>,
    /// Maintenance mode on or off (switching must be disabled first).
    #[arg(short = 'm', value_name = "on|off", value_parser = ["on", "off"])]
    pub maintenance: Option<String>,
    /// Node switching to this node (repeatable) instead of global switching; with -m on, the
    /// node a package that is down is to run on in maintenance mode.
    #[arg(short = 'n', value_name = "NODE")]
    pub nodes: Vec<String>,
    /// Verbose.
    #[arg(short = 'v')]
    pub verbose: bool,
    /// Preview (with -e or -d): tell what would start and halt, and do nothing.
    #[arg(short = 't', conflicts_with_all = ["reset", "maintenance"])]
    pub preview: bool,
    /// The packages.
    #[arg(required = true)]
    pub packages: Vec<String>,
}

/// Set a generic resource on this node: `-s up|down` (simple) or a value (extended).
#[derive(Parser, Debug)]
#[command(name = "cmsetresource", version)]
pub struct SetResource {
    /// The generic resource.
    #[arg(short = 'r', value_name = "NAME")]
    pub resource: String,
    /// A simple resource's status: up or down.
    #[arg(short = 's', value_name = "STATUS", value_parser = ["up", "down"], conflicts_with = "value")]
    pub status: Option<String>,
    /// An extended resource's value (1 to 2147483647).
    #[arg(required_unless_present = "status", value_parser = clap::value_parser!(u32).range(1..=2_147_483_647))]
    pub value: Option<u32>,
}

/// Show a generic resource on this node: a simple one's status, an extended one's value.
#[derive(Parser, Debug)]
#[command(name = "cmgetresource", version)]
pub struct GetResource {
    /// The generic resource.
    #[arg(short = 'r', value_name = "NAME")]
    pub resource: String,
}

/// Ends a command: its text on success, `NAME: why` and status 1 otherwise (a why of several
/// lines, findings first: the name on its last line only).
pub fn finish(name: &str, result: Result<String, String>) -> ExitCode {
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            // Findings first, each with its own file and line, then the command's word on
            // them (as cmcheckconf prints them): only the last line carries the name.
            let error = error.trim_end();
            match error.rsplit_once('\n') {
                Some((findings, last)) => {
                    eprintln!("{findings}");
                    eprintln!("{name}: {last}");
                }
                None => eprintln!("{name}: {error}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// Ends a command that works on each package named in turn: its text, then each package's
/// error as `NAME: why`, and status 1 if any package failed.
pub fn finish_each(name: &str, result: Result<EachPackage, String>) -> ExitCode {
    match result {
        Ok(each) => {
            print!("{}", each.out);
            for warning in &each.warnings {
                eprintln!("{name}: warning: {warning}");
            }
            for error in &each.errors {
                eprintln!("{name}: {error}");
            }
            if each.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => finish(name, Err(error)),
    }
}

/// What a command that works on each package named in turn did: its text, and an error for
/// each package it failed for (the others were done).
#[derive(Debug, Default)]
pub struct EachPackage {
    /// What the command prints on standard output.
    pub out: String,
    /// One line for each package that failed, naming it.
    pub errors: Vec<String>,
    /// What the cluster said of a command it carried out, a line each, naming the package
    /// (a switching change not every member confirmed holding): told on standard error,
    /// without failing the command.
    pub warnings: Vec<String>,
}

/// The client and the cluster's view.
fn connect() -> Result<(Client, Snapshot), String> {
    let client = Client::from_env()?;
    let snapshot = crate::clcmds::view(&client)?;
    Ok((client, snapshot))
}

/// The package `name` of the view, or the error Serviceguard prints.
fn package<'a>(snapshot: &'a Snapshot, name: &str) -> Result<&'a PackageRow, String> {
    snapshot
        .packages
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| format!("package {name} does not exist"))
}

/// The `names` of packages the cluster has, with their rows, and for each it does not have
/// the error the commands tell (the others are still carried out, or previewed).
fn known<'a, 's>(
    snapshot: &'s Snapshot,
    names: impl IntoIterator<Item = &'a String>,
) -> (Vec<(&'a String, &'s PackageRow)>, Vec<String>) {
    let mut unknown = Vec::new();
    let rows = names
        .into_iter()
        .filter_map(|name| match package(snapshot, name) {
            Ok(row) => Some((name, row)),
            Err(error) => {
                unknown.push(error);
                None
            }
        })
        .collect();
    (rows, unknown)
}

/// Calls `method` on package `name` and turns a refusal into its message; what the cluster
/// said of it carried out goes to `warnings`.
fn call_package(
    client: &Client,
    snapshot: &Snapshot,
    name: &str,
    method: &str,
    params: Vec<(&str, Value)>,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let target = path(
        "HP_SGPackage",
        &[
            ("SystemCreationClassName", "HP_SGCluster"),
            ("SystemName", &snapshot.name),
            ("CreationClassName", "HP_SGPackage"),
            ("Name", name),
        ],
    );
    let warning = client
        .invoke(&target, method, params)
        .and_then(|returned| outcome_warned(&returned))
        .map_err(|error| naming(name, &error))?;
    warnings.extend(warning.map(|warning| naming(name, &warning)));
    Ok(())
}

/// The reason a command on package `name` was not carried out, told with the package's
/// name, since a command may name several. The cluster's refusals name it already
/// ([`Refusal::naming`](cimguard_cluster::packages::Refusal::naming)); a reason that does not
/// (the agent could not be asked, say) is told after it.
fn naming(name: &str, reason: &str) -> String {
    let names_it = reason
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'))
        .any(|word| word == name);
    if names_it {
        reason.to_owned()
    } else {
        format!("package {name}: {reason}")
    }
}

/// -t: what `commands` ((operation, package, node) in turn) would start and halt, as the
/// cluster previews them (HP_SGClusteringService.PreviewPackageCommands), with nothing done:
/// a line for each start and halt, or a line saying there are none; the refusal of each
/// command that would be refused, as an error naming its package (the others are previewed
/// all the same, as the commands go on after a package refused).
fn preview(
    client: &Client,
    command: &str,
    commands: &[(&str, String, Option<String>)],
    unknown: Vec<String>,
) -> Result<EachPackage, String> {
    let mut each = EachPackage {
        errors: unknown,
        ..EachPackage::default()
    };
    if commands.is_empty() {
        // Nothing to ask: every package named is unknown, or (cmrunpkg of multi-node
        // packages running everywhere they may) none makes a command.
        if each.errors.is_empty() {
            each.out = format!("{command} -t: no package would start or halt\n");
        }
        return Ok(each);
    }
    let column = |values: Vec<String>| {
        Value::Array(values.into_iter().map(|v| Some(Value::String(v))).collect())
    };
    let params = vec![
        (
            "Operations",
            column(commands.iter().map(|c| c.0.to_owned()).collect()),
        ),
        (
            "PackageNames",
            column(commands.iter().map(|c| c.1.clone()).collect()),
        ),
        (
            "NodeNames",
            column(
                commands
                    .iter()
                    .map(|c| c.2.clone().unwrap_or_default())
                    .collect(),
            ),
        ),
    ];
    // The agent not answering is told after the unknown packages.
    let returned =
        match client.invoke_static("HP_SGClusteringService", "PreviewPackageCommands", params) {
            Ok(returned) => returned,
            Err(error) => {
                each.errors.push(error);
                return Ok(each);
            }
        };
    let texts = |name: &str| out_strings(&returned, name);
    let refusals = texts("Refusals");
    // 4 with Refusals: some commands refused, the others' actions given; any other code
    // (or 4 without them: all refused, the cluster not running here) is the Message alone.
    let previewed =
        returned.value == Some(0) || (returned.value == Some(4) && !refusals.is_empty());
    if !previewed {
        each.errors.push(returned.out_string("Message").map_or_else(
            || format!("not previewed (return code {:?})", returned.value),
            str::to_owned,
        ));
        return Ok(each);
    }
    let (kinds, packages, nodes) = (
        texts("ActionKinds"),
        texts("ActionPackages"),
        texts("ActionNodes"),
    );
    if packages.len() != kinds.len() || nodes.len() != kinds.len() {
        each.errors
            .push("the agent's preview does not give each action's package and node".into());
        return Ok(each);
    }
    each.errors.extend(refusals);
    if kinds.is_empty() && each.errors.is_empty() {
        each.out = format!("{command} -t: no package would start or halt\n");
    }
    for ((kind, package), node) in kinds.iter().zip(&packages).zip(&nodes) {
        each.out.push_str(&format!(
            "{command} -t: package {package} would {kind} on {node}\n"
        ));
    }
    Ok(each)
}

/// The string array output parameter `name` of a method (an element that is not a string
/// as an empty one; none when it is absent or not an array).
pub fn out_strings(returned: &Returned, name: &str) -> Vec<String> {
    match returned
        .out
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_ref())
    {
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Some(Value::String(text)) => text.clone(),
                _ => String::new(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Done (return code 0) or taken and going on (4096: a job; the commands wait for the end
/// themselves), or the method's Message.
pub fn outcome(returned: &Returned) -> Result<(), String> {
    outcome_warned(returned).map(drop)
}

/// As [`outcome`], with the Message of a method that was carried out: a warning.
pub fn outcome_warned(returned: &Returned) -> Result<Option<String>, String> {
    let message = returned.out_string("Message").map(str::to_owned);
    match returned.value {
        Some(0 | 4096) => Ok(message),
        code => Err(message.unwrap_or_else(|| format!("not done (return code {code:?})"))),
    }
}

/// cmrunpkg. Without -n, a multi-node or system multi-node package is run on every node of
/// its node_name list that is up, has node switching enabled and does not run it yet
/// (cmrunpkg(1m)); a failover package on the agent's node.
///
/// Each package named is run in turn, those it depends on first, and waited for; one refused
/// or failing is told, naming it, and the others are still run.
pub fn run_package(cli: &RunPackage) -> Result<EachPackage, String> {
    let (client, mut snapshot) = connect()?;
    if cli.preview {
        let mut commands = Vec::new();
        let (rows, unknown) = known(&snapshot, run_order(&snapshot, &cli.packages));
        for (name, row) in rows {
            // As run_one asks: a multi-node package without -n on each node it may start on,
            // nothing when it runs on all of those already, and on this node when it may
            // start nowhere (for the cluster's refusal).
            if cli.nodes.is_empty() && row.kind != PackageType::Failover {
                let targets = instances_to_start(row);
                let running = row.nodes.iter().any(|n| active(n.instance.state));
                if !targets.is_empty() || running {
                    commands.extend(targets.into_iter().map(|n| ("run", name.clone(), Some(n))));
                    continue;
                }
            }
            commands.extend(
                each_node(&cli.nodes)
                    .into_iter()
                    .map(|n| ("run", name.clone(), n.cloned())),
            );
        }
        return preview(&client, "cmrunpkg", &commands, unknown);
    }
    let mut each = EachPackage::default();
    for (index, name) in run_order(&snapshot, &cli.packages).into_iter().enumerate() {
        // Each package as the cluster is once the ones before it ran.
        if index > 0 {
            match crate::clcmds::view(&client) {
                Ok(now) => snapshot = now,
                Err(error) => {
                    each.errors.push(naming(name, &error));
                    continue;
                }
            }
        }
        match run_one(&client, &snapshot, cli, name, index > 0, &mut each.warnings) {
            Ok(text) => each.out.push_str(&text),
            Err(error) => each.errors.push(naming(name, &error)),
        }
    }
    Ok(each)
}

/// How long cmrunpkg gives a package again whose dependencies the package coordinator does not
/// see met yet, when the command itself has just run packages before it (and cmhaltpkg one
/// whose dependents it does not see halted yet).
const DEPENDENCIES_SEEN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// cmrunpkg for package `name`: what -v prints, or why it did not run (naming it). `after`:
/// packages were run before it by the same command (those it depends on among them).
fn run_one(
    client: &Client,
    snapshot: &Snapshot,
    cli: &RunPackage,
    name: &str,
    after: bool,
    warnings: &mut Vec<String>,
) -> Result<String, String> {
    let row = package(snapshot, name)?;
    let node = match cli.nodes.as_slice() {
        [] => None,
        [node] => Some(node),
        several if row.kind != PackageType::Failover => {
            // A multi-node package's instances on the nodes named.
            return run_instances(
                client,
                snapshot,
                row,
                several,
                (cli.verbose, after),
                warnings,
            );
        }
        _ => return Err("a failover package runs on one node: give one -n NODE".into()),
    };
    if node.is_none() && row.kind != PackageType::Failover {
        let targets = instances_to_start(row);
        let running: Vec<&str> = row
            .nodes
            .iter()
            .filter(|n| active(n.instance.state))
            .map(|n| n.name.as_str())
            .collect();
        if !targets.is_empty() || !running.is_empty() {
            return run_instances(
                client,
                snapshot,
                row,
                &targets,
                (cli.verbose, after),
                warnings,
            );
        }
        // Nowhere to start it: the cluster says why, asked for this node.
    }
    let mut params = vec![("RequestedState", Value::Uint16(2))];
    if let Some(node) = node {
        params.push(("NodeName", Value::String(node.clone())));
    }
    // Without -n, a multi-node package that may start nowhere is asked for on this node.
    let target = node.cloned().or_else(|| {
        (row.kind != PackageType::Failover)
            .then(|| snapshot.node_name(snapshot.observer).to_owned())
    });
    request_run(client, snapshot, name, &params, after, warnings)?;
    let nodes = wait_for_package(client, row, Goal::Run(target))?;
    Ok(if cli.verbose {
        format!(
            "cmrunpkg: package {name} is running on {}\n",
            nodes.join(", ")
        )
    } else {
        String::new()
    })
}

/// Asks for package `name` to run (`params`). A dependency this command just ran (`after`)
/// is running as this node sees it; the package coordinator hears it with the next report,
/// and until then refuses the dependent: it is given again for a while, as long as that is
/// the refusal.
fn request_run(
    client: &Client,
    snapshot: &Snapshot,
    name: &str,
    params: &[(&'static str, Value)],
    after: bool,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let again =
        |error: &str| after && error.contains("dependencies") && error.contains("are not met");
    request_while(client, snapshot, name, params, again, warnings)
}

/// Asks for RequestStateChange of package `name` (`params`), and again every quarter second
/// for up to [`DEPENDENCIES_SEEN_WAIT`] while the refusal is one `again` accepts.
fn request_while(
    client: &Client,
    snapshot: &Snapshot,
    name: &str,
    params: &[(&'static str, Value)],
    again: impl Fn(&str) -> bool,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let deadline = Instant::now() + DEPENDENCIES_SEEN_WAIT;
    loop {
        match call_package(
            client,
            snapshot,
            name,
            "RequestStateChange",
            params.to_vec(),
            warnings,
        ) {
            Err(error) if again(&error) && Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
            other => return other,
        }
    }
}

/// The nodes, in node_name order, where cmrunpkg without -n starts a multi-node package:
/// up, node switching enabled, and no instance there yet.
fn instances_to_start(row: &PackageRow) -> Vec<String> {
    row.nodes
        .iter()
        .filter(|n| n.node_status == NodeStatus::Up && n.switching && !active(n.instance.state))
        .map(|n| n.name.clone())
        .collect()
}

/// Starts the instances of multi-node package `row` on `targets` at once, then waits for
/// each; an instance that does not start is told, after the others were tried. `verbose`:
/// -v; `after`: packages were run before it by the same command.
fn run_instances(
    client: &Client,
    snapshot: &Snapshot,
    row: &PackageRow,
    targets: &[String],
    (verbose, after): (bool, bool),
    warnings: &mut Vec<String>,
) -> Result<String, String> {
    let mut errors = Vec::new();
    let mut asked = Vec::new();
    for node in targets {
        let params = [
            ("RequestedState", Value::Uint16(2)),
            ("NodeName", Value::String(node.clone())),
        ];
        match request_run(client, snapshot, &row.name, &params, after, warnings) {
            Ok(()) => asked.push(node),
            Err(error) => errors.push(error),
        }
    }
    let mut nodes = Vec::new();
    for node in asked {
        match wait_for_package(client, row, Goal::Run(Some(node.clone()))) {
            Ok(running) => nodes = running,
            Err(error) => errors.push(error),
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    if nodes.is_empty() {
        nodes = row
            .nodes
            .iter()
            .filter(|n| active(n.instance.state))
            .map(|n| n.name.clone())
            .collect();
    }
    Ok(if verbose {
        format!(
            "cmrunpkg: package {} is running on {}\n",
            row.name,
            nodes.join(", ")
        )
    } else {
        String::new()
    })
}

/// cmhaltpkg: each package named is halted in turn, dependents first, and waited for; one
/// refused (while packages that depend on it run, say) or failing is told and the others
/// are still halted.
pub fn halt_package(cli: &HaltPackage) -> Result<EachPackage, String> {
    let (client, snapshot) = connect()?;
    if cli.preview {
        let (rows, unknown) = known(&snapshot, halt_order(&snapshot, &cli.packages));
        let commands: Vec<_> = rows
            .into_iter()
            .flat_map(|(name, _)| {
                each_node(&cli.nodes)
                    .into_iter()
                    .map(move |n| ("halt", name.clone(), n.cloned()))
            })
            .collect();
        return preview(&client, "cmhaltpkg", &commands, unknown);
    }
    let mut each = EachPackage::default();
    let mut failed: Vec<&String> = Vec::new();
    for name in &cli.packages {
        if let Err(error) = package(&snapshot, name) {
            each.errors.push(error);
            failed.push(name);
            continue;
        }
        let dependents: Vec<&str> = snapshot
            .packages
            .iter()
            .filter(|p| {
                !p.owners.is_empty()
                    && !cli.packages.contains(&p.name)
                    && p.dependencies.iter().any(|d| {
                        d.name == *name
                            && d.condition
                                == cimguard_cluster::config::package::DependencyCondition::Up
                    })
            })
            .map(|p| p.name.as_str())
            .collect();
        if cli.nodes.is_empty() && !dependents.is_empty() {
            // Told as the cluster tells it when it refuses the halt itself.
            let refusal = Refusal::DependentsRunning {
                dependents: dependents.iter().map(|d| (*d).to_owned()).collect(),
            };
            each.errors.push(refusal.naming(name).to_string());
            failed.push(name);
        }
    }
    // Each halt is waited for before the next, dependents before what they depend on.
    let mut halted: Vec<&str> = Vec::new();
    for name in halt_order(&snapshot, &cli.packages) {
        if failed.contains(&name) {
            continue;
        }
        // Halted already as a dependent only of a package named before this one, never of
        // this package's own instance on another -n.
        let before = halted.clone();
        // Each -n in turn (a multi-node package's instances), or the package as a whole.
        for node in each_node(&cli.nodes) {
            match halt_one(&client, &snapshot, node, name, &before, &mut each.warnings) {
                // Down already (halted by the cluster as a dependent): the coordinator may
                // not have heard yet either.
                Ok(false) => halted.push(name),
                Ok(true) => {
                    halted.push(name);
                    if cli.verbose {
                        each.out.push_str(&match node {
                            Some(node) => format!("cmhaltpkg: package {name} halted on {node}\n"),
                            None => format!("cmhaltpkg: package {name} halted\n"),
                        });
                    }
                }
                Err(error) => each.errors.push(error),
            }
        }
    }
    Ok(each)
}

/// What a package command does per `-n` given: each node, or once for the package as a
/// whole (`None`) when none is.
fn each_node(nodes: &[String]) -> Vec<Option<&String>> {
    if nodes.is_empty() {
        vec![None]
    } else {
        nodes.iter().map(Some).collect()
    }
}

/// Halts package `name` (with cmhaltpkg's -n) and waits for the end: true if it was halted,
/// false if it was halted already as a dependent of one halted before it (`halted`: the
/// packages this command halted before it). A halt carried out whose switching change not
/// every member confirmed is waited for too, and what the cluster said of it is told in
/// `warnings`.
fn halt_one(
    client: &Client,
    snapshot: &Snapshot,
    node: Option<&String>,
    name: &str,
    halted: &[&str],
    warnings: &mut Vec<String>,
) -> Result<bool, String> {
    let halted_one = !halted.is_empty();
    let mut params = vec![("RequestedState", Value::Uint16(3))];
    if let Some(node) = node {
        params.push(("NodeName", Value::String(node.clone())));
    }
    let now = crate::clcmds::view(client)?;
    let row = package(&now, name)?;
    let before = instance_states(row);
    let wanted = |n: &str| node.is_none_or(|want| want == n);
    if halted_one && out_of_cascade(&before, &wanted) {
        // Halted already as a dependent of one named before it (the cluster halts the
        // packages that depend on a package it halts). Otherwise the daemon is asked,
        // whatever the view says: it refuses a package that is not running, and any
        // package command on a node out of the cluster (whose view is a member's).
        return Ok(false);
    }
    request_halt(client, snapshot, name, &params, (halted, warnings))?;
    wait_for_package(client, row, Goal::Halt(node.cloned()))?;
    Ok(true)
}

/// The packages a "packages that depend on X are running: halt A, B first" refusal names.
fn running_dependents(error: &str) -> Option<Vec<&str>> {
    let (_, rest) = error.split_once("are running: halt ")?;
    let (list, _) = rest.rsplit_once(" first")?;
    Some(list.split(", ").collect())
}

/// Asks for package `name` to halt (`params`). A dependent this command just halted (one of
/// `halted`) is down as this node sees it; the package coordinator hears it with the next
/// report, and until then refuses the halt: it is given again for a while, as long as that
/// is the refusal and names only such dependents (as cmrunpkg gives a dependent again,
/// [`request_run`]). What the cluster said of it carried out goes to `warnings`.
fn request_halt(
    client: &Client,
    snapshot: &Snapshot,
    name: &str,
    params: &[(&'static str, Value)],
    (halted, warnings): (&[&str], &mut Vec<String>),
) -> Result<(), String> {
    let again = |error: &str| {
        running_dependents(error).is_some_and(|d| d.iter().all(|d| halted.contains(d)))
    };
    request_while(client, snapshot, name, params, again, warnings)
}

/// The named packages in the order cmhaltpkg halts them: every package after the named
/// packages that depend on it, however indirectly (a topological order of the named ones;
/// a dependency cycle, which cmcheckconf refuses, keeps the command line's order).
fn halt_order<'a>(snapshot: &Snapshot, named: &'a [String]) -> Vec<&'a String> {
    // After every named package that depends on it.
    ordered(named, |name, other| depends_on(snapshot, other, name))
}

/// The order cmrunpkg runs the `named` packages in: each after the named packages it
/// depends on (through any chain of dependencies), otherwise as named.
fn run_order<'a>(snapshot: &Snapshot, named: &'a [String]) -> Vec<&'a String> {
    ordered(named, |name, other| depends_on(snapshot, name, other))
}

/// The `named` packages, each after the others that `after(name, other)` says it follows:
/// sorted (stably) by how many those are, which is a topological order when `after` is a
/// transitive relation.
fn ordered(named: &[String], after: impl Fn(&str, &str) -> bool) -> Vec<&String> {
    let before = |name: &str| {
        named
            .iter()
            .filter(|other| other.as_str() != name && after(name, other))
            .count()
    };
    let mut order: Vec<&String> = named.iter().collect();
    order.sort_by_key(|name| before(name));
    order
}

/// Whether package `dependent` depends on package `target`, through any chain of
/// dependencies, as the view tells them.
fn depends_on(snapshot: &Snapshot, dependent: &str, target: &str) -> bool {
    let mut seen: Vec<&str> = Vec::new();
    let mut next = vec![dependent];
    while let Some(current) = next.pop() {
        let Some(row) = snapshot.packages.iter().find(|p| p.name == current) else {
            continue;
        };
        // Only what must be up orders starts and halts; "= down" excludes instead.
        for dependency in row
            .dependencies
            .iter()
            .filter(|d| d.condition == cimguard_cluster::config::package::DependencyCondition::Up)
        {
            if dependency.name == target {
                return true;
            }
            if !seen.contains(&dependency.name.as_str()) {
                seen.push(&dependency.name);
                next.push(&dependency.name);
            }
        }
    }
    false
}

/// Waits, as Serviceguard's cmrunpkg and cmhaltpkg do, until the run or halt of package
/// `row` (as it was before the request) taken by the cluster has ended: the nodes it then
/// runs on, or why it did not end well ([`PackageWait`]).
fn wait_for_package(client: &Client, row: &PackageRow, goal: Goal) -> Result<Vec<String>, String> {
    let mut wait = PackageWait::new(row, goal, Instant::now());
    loop {
        let snapshot = crate::clcmds::view(client)?;
        match wait.observe(&snapshot, Instant::now()) {
            Progress::Done(nodes) => return Ok(nodes),
            Progress::Failed(reason) => return Err(reason),
            Progress::Waiting => std::thread::sleep(wait.next_poll()),
        }
    }
}

/// cmmodpkg -e|-d [-n node]... package...
pub fn modify_package(cli: &ModifyPackage) -> Result<EachPackage, String> {
    let (client, snapshot) = connect()?;
    if cli.preview {
        let operation = if cli.enable { "enable" } else { "disable" };
        let mut commands = Vec::new();
        let (rows, unknown) = known(&snapshot, &cli.packages);
        for (name, _) in rows {
            if cli.nodes.is_empty() {
                commands.push((operation, name.clone(), None));
            }
            commands.extend(
                cli.nodes
                    .iter()
                    .map(|node| (operation, name.clone(), Some(node.clone()))),
            );
        }
        return preview(&client, "cmmodpkg", &commands, unknown);
    }
    let mut each = EachPackage::default();
    for name in &cli.packages {
        match modify_one(&client, &snapshot, (cli, name), &mut each.warnings) {
            Ok(text) => each.out.push_str(&text),
            Err(error) => each.errors.push(error),
        }
    }
    Ok(each)
}

/// cmmodpkg for package `name`: what -v prints, or why it was not done (naming it); what
/// the cluster said of a change it carried out goes to `warnings`.
fn modify_one(
    client: &Client,
    snapshot: &Snapshot,
    (cli, name): (&ModifyPackage, &str),
    warnings: &mut Vec<String>,
) -> Result<String, String> {
    package(snapshot, name)?;
    if let Some(service) = cli.service.as_ref().filter(|_| cli.reset) {
        call_package(
            client,
            snapshot,
            name,
            "ResetRestarts",
            vec![("ServiceName", Value::String(service.clone()))],
            warnings,
        )?;
        return Ok(if cli.verbose {
            format!("cmmodpkg: restart counter of service {service} of {name} reset\n")
        } else {
            String::new()
        });
    }
    if let Some(mode) = &cli.maintenance {
        let mut params = vec![("Enabled", Value::Boolean(mode == "on"))];
        match cli.nodes.as_slice() {
            [] => {}
            [node] => params.push(("NodeName", Value::String(node.clone()))),
            _ => return Err("-m takes one node (-n)".into()),
        }
        call_package(client, snapshot, name, "SetMaintenance", params, warnings)?;
        return Ok(if cli.verbose {
            format!("cmmodpkg: maintenance mode of {name} {mode}\n")
        } else {
            String::new()
        });
    }
    if cli.nodes.is_empty() {
        call_package(
            client,
            snapshot,
            name,
            "SetAutoRun",
            vec![("Enabled", Value::Boolean(cli.enable))],
            warnings,
        )?;
    }
    // Each node is tried; those refused are told together.
    let mut refused = Vec::new();
    for node in &cli.nodes {
        let params = vec![
            ("NodeName", Value::String(node.clone())),
            ("Enabled", Value::Boolean(cli.enable)),
        ];
        if let Err(error) =
            call_package(client, snapshot, name, "SetNodeSwitching", params, warnings)
        {
            refused.push(error);
        }
    }
    if !refused.is_empty() {
        return Err(refused.join("; "));
    }
    Ok(if cli.verbose {
        let what = if cli.enable { "enabled" } else { "disabled" };
        format!("cmmodpkg: switching of {name} {what}\n")
    } else {
        String::new()
    })
}

/// The resource `name` on the agent's own node: (its node, a row of it).
fn resource<'a>(
    snapshot: &'a Snapshot,
    name: &str,
) -> Result<(&'a str, &'a cimguard_cluster::status::ResourceRow), String> {
    let node = snapshot.node_name(snapshot.observer);
    snapshot
        .packages
        .iter()
        .flat_map(|p| &p.nodes)
        .filter(|row| row.name == node)
        .flat_map(|row| &row.resources)
        .find(|r| r.name == name)
        .map(|row| (node, row))
        .ok_or_else(|| format!("generic resource {name} is not configured on {node}"))
}

/// cmsetresource.
pub fn set_resource(cli: &SetResource) -> Result<String, String> {
    let (client, snapshot) = connect()?;
    let (node, _) = resource(&snapshot, &cli.resource)?;
    let id = format!("cimguard:{}:{}:{node}", snapshot.name, cli.resource);
    let target = path("HP_SGGenericResource", &[("InstanceID", &id)]);
    let params = match (&cli.status, cli.value) {
        (Some(status), _) => vec![("Status", Value::String(status.clone()))],
        (None, Some(value)) => vec![("Value", Value::Uint32(value))],
        (None, None) => return Err("give -s up|down or a value".into()),
    };
    outcome(&client.invoke(&target, "SetStatus", params)?)?;
    Ok(String::new())
}

/// cmgetresource.
pub fn get_resource(cli: &GetResource) -> Result<String, String> {
    let (_, snapshot) = connect()?;
    let (_, row) = resource(&snapshot, &cli.resource)?;
    Ok(match row.value {
        Some(value) => format!("{value}\n"),
        None => format!("{}\n", row.status),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cimguard_cluster::core::{NodeId, NodeSet, Tiebreaker};
    use cimguard_cluster::packages::Command;
    use cimguard_cluster::sim::{Options, Simulation};

    use super::{halt_order, instances_to_start, naming, run_order, Refusal};

    const MONPKG: &str = "package_name monpkg\npackage_type multi_node\nnode_name n1\n\
        node_name n2\nnode_name n3\nauto_run no\nservice_name mon\nservice_cmd /bin/mon\n";

    #[test]
    fn a_reason_names_its_package() {
        // The cluster's refusals name the package already.
        let not_running = Refusal::NotRunning { node: None };
        let named = not_running.naming("monpkg").to_string();
        assert_eq!(named, "package monpkg is not running");
        assert_eq!(naming("monpkg", &named), named);
        let dependents = Refusal::DependentsRunning {
            dependents: vec!["webpkg".into()],
        };
        assert_eq!(
            naming("dbpkg", &dependents.naming("dbpkg").to_string()),
            "packages that depend on dbpkg are running: halt webpkg first"
        );
        // Others are told after its name; a name inside another word does not count.
        assert_eq!(
            naming("web", "cannot reach the agent at https://webhost:5989"),
            "package web: cannot reach the agent at https://webhost:5989"
        );
        assert_eq!(
            naming("dbpkg", "n9 is not a node of package dbpkg"),
            "n9 is not a node of package dbpkg"
        );
    }

    /// A simulated 3-node cluster with `packages`, formed.
    fn formed(packages: Vec<String>) -> Simulation {
        let mut options = Options::new(3, 7);
        options.tiebreaker = Tiebreaker::QuorumServer;
        options.packages = packages;
        let mut sim = Simulation::new(options);
        sim.start_all();
        let formed = sim
            .run_until(Duration::from_secs(90), |s| s.formed(NodeSet::first(3)))
            .unwrap();
        assert!(formed, "the cluster did not form");
        sim
    }

    #[test]
    fn only_what_must_be_up_orders_the_runs_and_halts() {
        let package = |name: &str, dependency: Option<(&str, &str)>| {
            let mut text =
                format!("package_name {name}\nnode_name n1\nnode_name n2\nauto_run no\n");
            if let Some((on, condition)) = dependency {
                let location = if condition == "up" {
                    "any_node"
                } else {
                    "same_node"
                };
                text.push_str(&format!(
                    "dependency_name {name}_{on}\ndependency_condition {on} = {condition}\n\
                     dependency_location {location}\n"
                ));
            }
            text
        };
        let sim = formed(vec![
            package("app", Some(("db", "up"))),
            package("db", None),
            package("batch", Some(("backup", "down"))),
            package("backup", None),
        ]);
        let snapshot = sim.status(NodeId(0)).expect("n1 is up");
        let named = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let order = |order: Vec<&String>| order.into_iter().cloned().collect::<Vec<_>>();
        let given = named(&["app", "db", "batch", "backup"]);
        // db runs before app, which needs it up; batch, which needs backup down, keeps its
        // place: running backup first would only refuse batch.
        assert_eq!(
            order(run_order(&snapshot, &given)),
            named(&["db", "batch", "backup", "app"])
        );
        assert_eq!(
            order(halt_order(&snapshot, &given)),
            named(&["app", "batch", "backup", "db"])
        );
    }

    #[test]
    fn a_multi_node_package_starts_where_it_may_and_does_not_run_yet() {
        let mut sim = formed(vec![MONPKG.into()]);
        sim.run_for(Duration::from_secs(5)).unwrap();
        let row = |sim: &Simulation| {
            let snapshot = sim.status(NodeId(0)).expect("n1 is up");
            snapshot.packages[0].clone()
        };
        assert_eq!(instances_to_start(&row(&sim)), ["n1", "n2", "n3"]);
        // Running on n1 already, switching to n3 disabled: n2 alone.
        let package = row(&sim).id;
        sim.command(
            NodeId(0),
            Command::Run {
                package,
                node: NodeId(0),
            },
        )
        .expect("cmrunpkg -n n1 monpkg");
        sim.command(
            NodeId(0),
            Command::Disable {
                package,
                node: Some(NodeId(2)),
            },
        )
        .expect("cmmodpkg -d -n n3 monpkg");
        let settled = sim
            .run_until(Duration::from_secs(60), |s| {
                s.running_on("monpkg") == [NodeId(0)].into_iter().collect()
            })
            .unwrap();
        assert!(settled, "monpkg did not start on n1");
        sim.run_for(Duration::from_secs(5)).unwrap();
        assert_eq!(instances_to_start(&row(&sim)), ["n2"]);
    }
}
