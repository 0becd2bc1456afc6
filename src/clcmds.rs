//! The cluster and configuration commands, `cmruncl`, `cmhaltcl`, `cmhaltnode`,
//! `cmrunnode`, `cmapplyconf`, `cmgetconf` and `cmdeleteconf` (serviceguard.md 5.2), as CIM
//! clients of the local agent: each calls a static method of HP_SGClusteringService (the
//! cluster daemon) and prints what Serviceguard prints. A refusal prints the cluster's reason
//! on one line and exits 1.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cim_schema::model::Value;
use cimguard_cluster::config::{Diagnostic, Severity};
use cimguard_cluster::runtime::daemon::FileText;
use cimguard_cluster::status::{ClusterStatus, NodeState, NodeStatus, PackageStatus, Snapshot};
use clap::Parser;

use crate::cimclient::{Client, Returned};
use crate::confcmds;

/// Start the cluster: on nodes whose daemons run but are in no cluster yet, form it with
/// every configured node, or with the nodes named. Given on a halted node (its daemon still
/// there), it first starts the named halted nodes, and this one, again.
#[derive(Parser, Debug)]
#[command(name = "cmruncl", version)]
pub struct RunCluster {
    /// Form the cluster with this node (repeatable); the operator vouches that the nodes
    /// left out are down.
    #[arg(short = 'n', value_name = "NODE")]
    pub nodes: Vec<String>,
    /// Verbose: after the outcome, the cluster's members as the agent then shows them.
    #[arg(short = 'v')]
    pub verbose: bool,
    /// Do not ask for confirmation (accepted for compatibility: nothing is asked).
    #[arg(short = 'f')]
    pub force: bool,
    /// Network probing before the start (none, local or full): Serviceguard checks the
    /// heartbeat networks first unless `none`. cimguard's start probes nothing beforehand:
    /// each node's heartbeats show at once which networks carry (cmviewcl -v), so every
    /// value is taken and starts the cluster the same way.
    #[arg(short = 'w', value_name = "PROBING", value_parser = ["none", "local", "full"])]
    pub probing: Option<String>,
    /// Test only: print what packages the cluster formed with these nodes would start where,
    /// and start nothing (HP_SGClusteringService.PreviewRunCluster).
    #[arg(short = 't', conflicts_with = "probing")]
    pub preview: bool,
}

/// Halt the cluster; refused while packages run unless -f (halt them) or -d (detach them).
#[derive(Parser, Debug)]
#[command(name = "cmhaltcl", version)]
pub struct HaltCluster {
    /// Halt the packages first.
    #[arg(short = 'f', conflicts_with = "detach")]
    pub force: bool,
    /// Leave the packages running, detached (Live Application Detach).
    #[arg(short = 'd')]
    pub detach: bool,
    /// Verbose: after the outcome, the cluster's members as the agent then shows them.
    #[arg(short = 'v')]
    pub verbose: bool,
}

/// Halt a node (this one by default); refused while packages run there unless -f (they fail
/// over) or -d. Returns once the halt shows; on a node of a cluster that runs on, once that
/// node shows the running cluster (at most 5 s more).
#[derive(Parser, Debug)]
#[command(name = "cmhaltnode", version)]
pub struct HaltNode {
    /// Halt its packages first (failover packages move to adoptive nodes).
    #[arg(short = 'f', conflicts_with = "detach")]
    pub force: bool,
    /// Leave its packages running, detached.
    #[arg(short = 'd')]
    pub detach: bool,
    /// The node and -v.
    #[command(flatten)]
    pub node: NodeChoice,
}

/// Join a node (this one, or the node named) to the running cluster: a halted node's daemon
/// starts again as a new life (the same process) and joins. Refused when no cluster runs
/// (cmruncl starts one). Returns once the node is a member and (at most 5 s more) knows
/// every member's packages. A node just added by cmapplyconf may be given it at once: the
/// node named is told again until it starts (at most 30 s), and on the node itself the
/// command waits for its daemon's new life.
#[derive(Parser, Debug)]
#[command(name = "cmrunnode", version)]
pub struct RunNode {
    /// The node and -v.
    #[command(flatten)]
    pub node: NodeChoice,
}

/// The node a node command is for, as Serviceguard takes it: `-n NODE` or a bare NODE
/// (default: this agent's own); and -v.
#[derive(clap::Args, Debug)]
pub struct NodeChoice {
    /// Verbose: after the outcome, the cluster's members as the agent then shows them.
    #[arg(short = 'v')]
    pub verbose: bool,
    /// The node (default: this agent's own).
    #[arg(short = 'n', value_name = "NODE")]
    pub flag: Option<String>,
    /// The node, as a bare argument.
    #[arg(conflicts_with = "flag", value_name = "NODE")]
    pub bare: Option<String>,
}

impl NodeChoice {
    /// The node named, if any.
    fn named(&self) -> Option<String> {
        self.bare.clone().or_else(|| self.flag.clone())
    }
}

/// Check configuration files and distribute them as the cluster's next configuration.
/// MEMBER_TIMEOUT and the packages change while the cluster runs, and nodes may be added
/// then (an added node's cmcld runs unconfigured with the cluster's key and its certificate
/// from the cluster authority; it takes the configuration and starts halted, and cmrunnode
/// there joins it; exit 1 names a node that did not take it, and the same files given again
/// send it; not with a lock LUN), and nodes out of the cluster (halted or down) deleted (each
/// keeps its number until a cmapplyconf with the cluster halted reaches it, or finds it
/// unconfigured, and says so when it does not; its cmcld is told, removes its
/// configuration and goes on unconfigured; exit 1 names one not told, and the same files
/// given again tell it). The nodes' heartbeat addresses, the lock and the cluster's name
/// need the cluster halted, as do reordering nodes and adding one deleted while the cluster
/// ran (give it on a node that stays; a deleted node's cmcld removes its configuration and
/// goes on unconfigured; the others start again halted, and cmruncl starts the cluster).
/// Given on a node configured in no cluster, the first
/// cmapplyconf -C creates the cluster on every node of the file (each running cmcld
/// unconfigured), halted. A cluster file naming a quorum server applies only while that
/// server answers this node.
#[derive(Parser, Debug)]
#[command(name = "cmapplyconf", version)]
// The files are the arguments: without any, a usage error (status 2), as for any flag.
#[command(group = clap::ArgGroup::new("files")
    .args(["cluster", "packages", "list"])
    .multiple(true)
    .required(true))]
pub struct ApplyConfiguration {
    /// The cluster ASCII file (absent: the one in effect).
    #[arg(short = 'C', value_name = "FILE")]
    pub cluster: Option<PathBuf>,
    /// A package file to add or change (repeatable); the other packages stay as they are.
    #[arg(short = 'P', value_name = "FILE")]
    pub packages: Vec<PathBuf>,
    /// A file listing package files, one per line.
    #[arg(short = 'p', value_name = "FILE")]
    pub list: Option<PathBuf>,
    /// Do not ask for confirmation (accepted for compatibility: nothing is asked).
    #[arg(short = 'f')]
    pub force: bool,
    /// Verbose: every finding, warnings too.
    #[arg(short = 'v')]
    pub verbose: bool,
}

/// Write the configuration in effect: the cluster file, or a package's file.
#[derive(Parser, Debug)]
#[command(name = "cmgetconf", version)]
pub struct GetConfiguration {
    /// The cluster's name (checked against the cluster the agent belongs to).
    #[arg(short = 'c', value_name = "CLUSTER")]
    pub cluster: Option<String>,
    /// The package whose file to write instead of the cluster file.
    #[arg(short = 'p', value_name = "PACKAGE")]
    pub package: Option<String>,
    /// Verbose.
    #[arg(short = 'v')]
    pub verbose: bool,
    /// Where to write it (default: standard output).
    pub output: Option<PathBuf>,
}

/// Delete packages from the configuration (-p), with the cluster running or halted; without
/// -p, delete the halted cluster's whole configuration from every node (or from none), each
/// node's cmcld going on unconfigured, ready for a cmapplyconf that creates a cluster again.
#[derive(Parser, Debug)]
#[command(name = "cmdeleteconf", version)]
pub struct DeleteConfiguration {
    /// The package to delete (repeatable).
    #[arg(short = 'p', value_name = "PACKAGE")]
    pub packages: Vec<String>,
    /// The cluster's name (checked against the cluster the agent belongs to).
    #[arg(short = 'c', value_name = "CLUSTER")]
    pub cluster: Option<String>,
    /// Delete the whole cluster's configuration without asking (without -p; on no terminal,
    /// -f is needed).
    #[arg(short = 'f')]
    pub force: bool,
    /// Verbose.
    #[arg(short = 'v')]
    pub verbose: bool,
}

/// How long cmapplyconf waits for the new generation to take effect on this node.
const GENERATION_WAIT: Duration = Duration::from_secs(60);

/// How long cmhaltnode and cmhaltcl wait for the halt to show before they return.
const HALT_WAIT: Duration = Duration::from_secs(120);
/// How long cmrunnode on a halted node waits to hear of a running cluster (heartbeats come
/// every second or more often) before saying that none runs.
const HEARD_WAIT: Duration = Duration::from_secs(5);

/// The parameters that give ApplyConfiguration and CheckConfiguration their files: every
/// package file, and the cluster file if one is given.
fn file_params(cluster: Option<&FileText>, packages: &[FileText]) -> Vec<(&'static str, Value)> {
    let mut params = vec![
        (
            "PackageFiles",
            strings(&packages.iter().map(|f| f.text.clone()).collect::<Vec<_>>()),
        ),
        (
            "PackageFileNames",
            strings(&packages.iter().map(|f| f.name.clone()).collect::<Vec<_>>()),
        ),
    ];
    if let Some(cluster) = cluster {
        params.push(("ClusterFile", Value::String(cluster.text.clone())));
        params.push(("ClusterFileName", Value::String(cluster.name.clone())));
    }
    params
}

/// The agent's view of the cluster (HP_SGClusteringService.GetView).
pub fn view(client: &Client) -> Result<Snapshot, String> {
    match view_once(client) {
        // A node just added: its daemon starts again as a halted node of the cluster within
        // a second or two. A command given on it right after the cmapplyconf waits for that.
        // Its agent is away meanwhile (it ends with the old life): any error until then.
        Err(e) if e.contains(cimguard_cluster::runtime::daemon::STARTING_CONFIGURED) => {
            let deadline = Instant::now() + NEW_LIFE_WAIT;
            loop {
                std::thread::sleep(Duration::from_millis(200));
                match view_once(client) {
                    Ok(snapshot) => return Ok(snapshot),
                    Err(_) if Instant::now() >= deadline => {
                        return Err(format!(
                            "{e}, but did not within {} s",
                            NEW_LIFE_WAIT.as_secs()
                        ))
                    }
                    Err(_) => {}
                }
            }
        }
        other => other,
    }
}

fn view_once(client: &Client) -> Result<Snapshot, String> {
    let returned = client.invoke_static("HP_SGClusteringService", "GetView", Vec::new())?;
    let text = returned
        .out_string("View")
        .ok_or("the agent gave no view of the cluster")?;
    serde_json::from_str(text).map_err(|e| format!("the agent's view does not decode: {e}"))
}

fn call(client: &Client, method: &str, params: Vec<(&str, Value)>) -> Result<Returned, String> {
    let returned = client.invoke_static("HP_SGClusteringService", method, params)?;
    crate::pkgcmds::outcome(&returned)?;
    Ok(returned)
}

fn strings(items: &[String]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|s| Some(Value::String(s.clone())))
            .collect(),
    )
}

/// Waits until `done` holds for the agent's view, at most `wait`; the last view.
fn wait_for(
    client: &Client,
    wait: Duration,
    mut done: impl FnMut(&Snapshot) -> bool,
) -> Result<Option<Snapshot>, String> {
    let deadline = Instant::now() + wait;
    loop {
        match view(client) {
            Ok(snapshot) if done(&snapshot) => return Ok(Some(snapshot)),
            // The agent lives in the daemon: a halted node's agent stops answering.
            Err(_) => return Ok(None),
            Ok(_) if Instant::now() >= deadline => return Err("timed out".into()),
            Ok(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// cmruncl. On a halted node (its daemon still there) the first call starts the named
/// halted nodes and this one again; once this node's new life answers, the call given again
/// forms the cluster with them.
pub fn run_cluster(cli: &RunCluster) -> Result<String, String> {
    let client = Client::from_env()?;
    let mut params = Vec::new();
    if !cli.nodes.is_empty() {
        params.push(("NodeNames", strings(&cli.nodes)));
    }
    if cli.preview {
        return preview_run_cluster(&client, params);
    }
    let before = view(&client)?;
    let me = before.node_name(before.observer).to_owned();
    let halted = own_state(&before) == Some(NodeState::Halted);
    call(&client, "RunCluster", params.clone())?;
    if halted {
        wait_through(&client, GENERATION_WAIT, |s| {
            own_state(s) != Some(NodeState::Halted)
        })
        .map_err(|e| format!("{me} did not start again within 60 s: {e}"))?;
        // Formed meanwhile (every node started), the cluster refuses it: that is success.
        if let Err(e) = call(&client, "RunCluster", params.clone()) {
            if view(&client).map(|s| s.status) != Ok(ClusterStatus::Up) {
                return Err(e);
            }
        }
    }
    // The named nodes are told over the control channel; one starting again may not listen
    // yet when told and miss it. While this node waits in no cluster, the command is given
    // again now and then, which tells them again (a node that formed refuses it: ignored).
    let deadline = Instant::now() + GENERATION_WAIT;
    let mut again = Instant::now() + RUN_CLUSTER_AGAIN;
    let formed = loop {
        if let Ok(snapshot) = view(&client) {
            if snapshot.status == ClusterStatus::Up {
                break snapshot;
            }
            // In no cluster yet: neither a member (running, reforming) nor halted.
            let waiting = !matches!(
                own_state(&snapshot),
                Some(NodeState::Running | NodeState::Reforming | NodeState::Halted)
            );
            if Instant::now() >= again && waiting {
                let _ = call(&client, "RunCluster", params.clone());
                again = Instant::now() + RUN_CLUSTER_AGAIN;
            }
        }
        if Instant::now() >= deadline {
            return Err("the cluster did not form within 60 s (see cmviewcl)".to_owned());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let line = format!("cmruncl: cluster {} is running\n", formed.name);
    Ok(outcome(&client, line, cli.verbose, "cmruncl"))
}

/// What a node or cluster command says once done: its outcome, -v or not (as the package
/// commands end with theirs); with -v, the cluster's members as the agent shows them then.
fn outcome(client: &Client, line: String, verbose: bool, command: &str) -> String {
    let mut out = line;
    if verbose {
        if let Ok(snapshot) = view(client) {
            let members: Vec<&str> = snapshot
                .nodes
                .iter()
                .filter(|n| n.condition.status == NodeStatus::Up)
                .map(|n| n.name.as_str())
                .collect();
            let members = match members.as_slice() {
                [] => "no member".to_owned(),
                names => format!("members {}", names.join(", ")),
            };
            out.push_str(&format!(
                "{command}: cluster {} {}, {members}\n",
                snapshot.name, snapshot.status
            ));
        }
    }
    out
}

/// cmruncl -t: a line for each package the cluster would start and where, in the order the
/// cluster would start them, or a line saying none would start; nothing is done.
fn preview_run_cluster(client: &Client, params: Vec<(&str, Value)>) -> Result<String, String> {
    let returned = call(client, "PreviewRunCluster", params)?;
    let texts = |name: &str| crate::pkgcmds::out_strings(&returned, name);
    let (packages, nodes) = (texts("ActionPackages"), texts("ActionNodes"));
    if packages.len() != nodes.len() {
        return Err("the agent's preview does not give each start's package and node".into());
    }
    if packages.is_empty() {
        return Ok("cmruncl -t: no package would start\n".to_owned());
    }
    Ok(packages
        .iter()
        .zip(&nodes)
        .map(|(package, node)| format!("cmruncl -t: package {package} would start on {node}\n"))
        .collect())
}

/// How often cmruncl gives the command again while its node waits in no cluster.
const RUN_CLUSTER_AGAIN: Duration = Duration::from_secs(3);

/// The state of the agent's own node in `snapshot`.
fn own_state(snapshot: &Snapshot) -> Option<NodeState> {
    let me = snapshot.node_name(snapshot.observer);
    snapshot
        .nodes
        .iter()
        .find(|n| n.name == me)
        .map(|n| n.condition.state)
}

/// Whether `node` is not up in `snapshot`.
fn node_down(snapshot: &Snapshot, node: &str) -> bool {
    snapshot
        .nodes
        .iter()
        .any(|n| n.name == node && n.condition.status != NodeStatus::Up)
}

/// Waits until `done` holds for the agent's view, at most `wait`, through the agent's
/// absence (a daemon starting again as a new life); the view, or the last error.
fn wait_through(
    client: &Client,
    wait: Duration,
    done: impl Fn(&Snapshot) -> bool,
) -> Result<Snapshot, String> {
    let deadline = Instant::now() + wait;
    loop {
        let last = match view(client) {
            Ok(snapshot) if done(&snapshot) => return Ok(snapshot),
            Ok(_) => String::from("timed out"),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(last);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// cmhaltcl.
pub fn halt_cluster(cli: &HaltCluster) -> Result<String, String> {
    let client = Client::from_env()?;
    let name = view(&client)?.name;
    call(
        &client,
        "HaltCluster",
        vec![
            ("Force", Value::Boolean(cli.force)),
            ("Detach", Value::Boolean(cli.detach)),
        ],
    )?;
    // The halted daemons stay (their agents answer, the cluster down), or end.
    wait_for(&client, HALT_WAIT, |s| s.status == ClusterStatus::Down).ok();
    let line = format!("cmhaltcl: cluster {name} halted\n");
    Ok(outcome(&client, line, cli.verbose, "cmhaltcl"))
}

/// cmhaltnode.
pub fn halt_node(cli: &HaltNode) -> Result<String, String> {
    let client = Client::from_env()?;
    let snapshot = view(&client)?;
    let me = snapshot.node_name(snapshot.observer).to_owned();
    let node = cli.node.named();
    let mut params = vec![
        ("Force", Value::Boolean(cli.force)),
        ("Detach", Value::Boolean(cli.detach)),
    ];
    if let Some(node) = &node {
        if !snapshot.nodes.iter().any(|n| n.name == *node) {
            return Err(format!("{node} is not a node of cluster {}", snapshot.name));
        }
        params.push(("NodeName", Value::String(node.clone())));
    }
    call(&client, "HaltNode", params)?;
    let halted = node.unwrap_or(me);
    if halted == snapshot.node_name(snapshot.observer) {
        // The agent is the daemon's: it stops answering once the node halted.
        // The halted daemon stays (its agent shows the node halted), or ends.
        wait_for(&client, HALT_WAIT, |s| node_down(s, &halted)).ok();
        // Others run on: the halted node shows their cluster once a member has sent its
        // view (after the re-formation), so that a cmviewcl given next shows it.
        let others = snapshot
            .nodes
            .iter()
            .any(|n| n.name != halted && n.condition.status == NodeStatus::Up);
        if others {
            wait_for(&client, HEARD_WAIT, |s| s.status == ClusterStatus::Up).ok();
        }
    } else {
        wait_for(&client, HALT_WAIT, |s| {
            s.nodes
                .iter()
                .any(|n| n.name == halted && n.condition.status.as_str() != "up")
        })
        .map_err(|_| {
            format!(
                "{halted} did not halt within {} s (see cmviewcl)",
                HALT_WAIT.as_secs()
            )
        })?;
    }
    let line = format!("cmhaltnode: node {halted} halted\n");
    Ok(outcome(&client, line, cli.node.verbose, "cmhaltnode"))
}

/// cmrunnode: a halted node whose daemon is still there starts again as a new life and
/// joins the running cluster (HP_SGClusteringService.RunNode); the command returns once it
/// is up. A node that runs already is told as such; one whose daemon is not running must be
/// started by its service manager (cmcld), and joins as it starts.
pub fn run_node(cli: &RunNode) -> Result<String, String> {
    let node = cli.node.named();
    let client = Client::from_env()?;
    let snapshot = view(&client).map_err(|e| {
        // A daemon that answers but is configured in no cluster says so (or that it is
        // starting as a node of one); the hint is for one that does not answer.
        if e.contains(cimguard_cluster::runtime::daemon::NOT_CONFIGURED)
            || e.contains(cimguard_cluster::runtime::daemon::STARTING_CONFIGURED)
        {
            e
        } else {
            format!(
                "{e}: start the node's daemon (cmcld, with its --state-dir) to run it; it \
                 joins the cluster as it starts"
            )
        }
    })?;
    let me = snapshot.node_name(snapshot.observer).to_owned();
    if let Some(node) = node.as_ref().filter(|n| **n != me) {
        return run_other_node(&client, &snapshot, node, cli.node.verbose);
    }
    let up = |s: &Snapshot| !node_down(s, &me);
    if up(&snapshot) {
        // Said without -v too: nothing was done, and the operator should know why.
        return Ok(format!("cmrunnode: node {me} is running already\n"));
    }
    if own_state(&snapshot) == Some(NodeState::Halted) {
        // A halted node learns of a cluster formed without it from the members'
        // heartbeats: give them a moment before saying none runs.
        if snapshot.status == ClusterStatus::Down
            && wait_through(&client, HEARD_WAIT, |s| s.status != ClusterStatus::Down).is_err()
        {
            return Err(format!(
                "cluster {} is not running: cmruncl starts it",
                snapshot.name
            ));
        }
        call(&client, "RunNode", Vec::new())?;
    }
    wait_through(&client, GENERATION_WAIT, up).map_err(|e| {
        format!(
            "{me} did not join the cluster within {} s ({e}); see cmviewcl",
            GENERATION_WAIT.as_secs()
        )
    })?;
    // Just joined, the node shows the packages unknown until every member has told it what
    // runs (a heartbeat interval): a cmviewcl given next shows them.
    wait_through(&client, HEARD_WAIT, |s| {
        s.packages
            .iter()
            .all(|p| p.condition.status != PackageStatus::Unknown)
    })
    .ok();
    let line = format!("cmrunnode: node {me} is running\n");
    Ok(outcome(&client, line, cli.node.verbose, "cmrunnode"))
}

/// cmrunnode NODE for another node, through this agent: NODE is told to start (its daemon,
/// halted, starts again as a new life), and the command waits until this node's view shows
/// it up. It needs a running cluster to join, and NODE's daemon running.
fn run_other_node(
    client: &Client,
    snapshot: &Snapshot,
    node: &str,
    verbose: bool,
) -> Result<String, String> {
    let row = snapshot
        .nodes
        .iter()
        .find(|n| n.name == node)
        .ok_or_else(|| format!("{node} is not a node of cluster {}", snapshot.name))?;
    if row.condition.status == NodeStatus::Up {
        // Said without -v too: nothing was done, and the operator should know why.
        return Ok(format!("cmrunnode: node {node} is running already\n"));
    }
    if snapshot.status == ClusterStatus::Down {
        return Err(format!(
            "cluster {} is not running: cmruncl starts it",
            snapshot.name
        ));
    }
    call(
        client,
        "RunNode",
        vec![("NodeName", Value::String(node.to_owned()))],
    )?;
    wait_through(client, REMOTE_JOIN_WAIT, |s| !node_down(s, node)).map_err(|e| {
        format!(
            "{node} did not join the cluster within {} s ({e}): its daemon must be running \
             (halted, or started without joining); see cmviewcl",
            REMOTE_JOIN_WAIT.as_secs()
        )
    })?;
    let line = format!("cmrunnode: node {node} is running\n");
    Ok(outcome(client, line, verbose, "cmrunnode"))
}

/// How long cmrunnode NODE waits for another node to join: its daemon starting again and
/// joining takes seconds; a daemon that is not running never answers the message. As long
/// as the member given the command tells NODE again.
const REMOTE_JOIN_WAIT: Duration = cimguard_cluster::core::RUN_OTHER_WAIT;

/// The configuration in effect: the cluster file and every package file.
pub fn configuration(client: &Client) -> Result<(FileText, Vec<FileText>), String> {
    let in_effect = read_configuration(client)?;
    Ok((in_effect.cluster, in_effect.packages))
}

/// The configuration in effect, as GetConfiguration gives it.
struct InEffect {
    /// The cluster file.
    cluster: FileText,
    /// Every package file.
    packages: Vec<FileText>,
    /// The configuration generation they are (None: the agent did not say).
    generation: Option<u64>,
    /// Its number, the cluster's identity of it (None: the agent did not say).
    number: Option<u64>,
}

/// The generation a cmapplyconf would make ([`InEffect::merged`]).
struct Merged {
    /// Every package file of it.
    packages: Vec<FileText>,
    /// The names of the packages given.
    names: Vec<String>,
    /// The findings about it, with cmcheckconf's rules.
    findings: Vec<Diagnostic>,
}

impl InEffect {
    /// The generation a cmapplyconf of `cluster` (absent: the cluster file in effect) and the
    /// package files `given` makes of this one ([`merged`]), with the findings about it.
    fn merged(self, cluster: Option<&FileText>, given: &[FileText]) -> Merged {
        let checked_with = cluster.cloned().unwrap_or(self.cluster);
        let (packages, names) = merged(self.packages, given);
        let findings = confcmds::generation_findings(Some(&checked_with), &packages);
        Merged {
            packages,
            names,
            findings,
        }
    }
}

/// How cmapplyconf's files were taken.
enum Applied {
    /// The new generation, in effect on this node, with what the agent said of it (the
    /// nodes added to the running cluster that did not take it).
    Generation(u64, Option<String>, Vec<String>),
    /// They are the configuration in effect: nothing was distributed (with what the agent
    /// said, if anything).
    Unchanged(Option<String>),
}

/// The output parameter `name` of `returned`, typed or as the untyped text a client gets
/// without PARAMTYPE.
fn out_value<'a>(returned: &'a Returned, name: &str) -> Option<&'a Value> {
    returned
        .out
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_ref())
}

/// The configuration in effect and its generation (GetConfiguration).
fn read_configuration(client: &Client) -> Result<InEffect, String> {
    let returned = call(client, "GetConfiguration", Vec::new())?;
    let uint64 = |name: &str| match out_value(&returned, name) {
        Some(Value::Uint64(number)) => Some(*number),
        Some(Value::String(text)) => text.parse().ok(),
        _ => None,
    };
    let generation = uint64("Generation");
    let number = uint64("GenerationNumber");
    let cluster = returned
        .out_string("ClusterFile")
        .ok_or("the agent gave no cluster file")?
        .to_owned();
    let packages = returned
        .out
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("PackageFiles"))
        .and_then(|(_, v)| match v {
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .filter_map(|i| match i {
                        Some(Value::String(text)) => Some(text.clone()),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .unwrap_or_default();
    // Named for the findings as no file the operator has: what they are, the files in
    // effect (cmgetconf writes them out).
    let packages = packages
        .into_iter()
        .map(|text| FileText {
            name: package_name(&text).map_or_else(
                || "a package file in effect".into(),
                |n| format!("package {n} in effect"),
            ),
            text,
        })
        .collect();
    Ok(InEffect {
        cluster: FileText {
            name: "the cluster file in effect".into(),
            text: cluster,
        },
        packages,
        generation,
        number,
    })
}

/// The package_name a package file's text gives.
fn package_name(text: &str) -> Option<String> {
    cimguard_cluster::config::package::parse(text, "package")
        .ok()
        .map(|checked| checked.config.name)
}

/// Applies `packages` as the whole package set (and `cluster`), merged into generation
/// `base` (refused if another is in effect by then), then waits for the new generation on
/// this node.
fn apply(
    client: &Client,
    (base, base_number): (Option<u64>, Option<u64>),
    cluster: Option<&FileText>,
    packages: &[FileText],
) -> Result<Applied, String> {
    let current = view(client)?;
    let before = base.unwrap_or(current.generation);
    // The coordinator may take the change, then give it up (a member keeps refusing it):
    // this node counts such changes given here.
    let given_up = current.applies_given_up;
    let mut params = file_params(cluster, packages);
    if let Some(base) = base {
        params.push(("BaseGeneration", Value::Uint64(base)));
        if let Some(number) = base_number {
            params.push(("BaseGenerationNumber", Value::Uint64(number)));
        }
    }
    let returned = call(client, "ApplyConfiguration", params)?;
    let unchanged = match out_value(&returned, "Unchanged") {
        Some(Value::Boolean(unchanged)) => *unchanged,
        Some(Value::String(text)) => text.eq_ignore_ascii_case("true"),
        _ => false,
    };
    let note = match out_value(&returned, "Message") {
        Some(Value::String(text)) if !text.is_empty() => Some(text.clone()),
        _ => None,
    };
    if unchanged {
        return Ok(Applied::Unchanged(note));
    }
    // With the cluster halted the change is in effect everywhere once the method returns
    // (and this node's daemon may end right after, on a shutdown it held back for it); nodes
    // added to the running cluster, it is in effect in the cluster.
    let message = note;
    let not_configured: Vec<String> = match out_value(&returned, "NodesNotConfigured") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| match i {
                Some(Value::String(name)) => Some(name.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    match out_value(&returned, "Generation") {
        Some(Value::Uint64(generation)) => {
            return Ok(Applied::Generation(*generation, message, not_configured))
        }
        Some(Value::String(text)) => {
            if let Ok(generation) = text.trim().parse() {
                return Ok(Applied::Generation(generation, message, not_configured));
            }
        }
        _ => {}
    }
    // The configuration takes effect with the next membership the coordinator that took it
    // commits. Should that coordinator fail first, the next one carries it on only if a
    // member accepted it already, and then it is in effect here as soon as the new
    // membership is: a membership under another coordinator without it means it is lost,
    // which is said at once rather than at the end of the wait.
    let mut taker = None;
    let mut lost = None;
    let waited = wait_for(client, GENERATION_WAIT, |s| {
        if s.generation > before {
            return true;
        }
        if s.applies_given_up > given_up {
            lost = Some(format!(
                "the cluster coordinator took the configuration, then gave it up: {}. It was \
                 not applied (generation {} is in effect; see cmviewcl).",
                s.apply_given_up.as_deref().unwrap_or("no reason given"),
                s.generation
            ));
            return true;
        }
        match (taker, s.coordinator) {
            (None, now) => taker = Some(now),
            (Some(Some(took)), Some(now)) if s.status == ClusterStatus::Up && now != took => {
                let name = |id| {
                    s.nodes
                        .iter()
                        .find(|n| n.id == id)
                        .map_or_else(|| format!("{id:?}"), |n| n.name.clone())
                };
                lost = Some(format!(
                    "the cluster coordinator {} left the cluster before the configuration took \
                     effect, and {} coordinates without it: it was not applied (generation {} \
                     is in effect; see cmviewcl). Apply it again.",
                    name(took),
                    name(now),
                    s.generation
                ));
                return true;
            }
            _ => {}
        }
        false
    });
    if let Some(lost) = lost {
        return Err(lost);
    }
    match waited {
        Ok(Some(s)) => Ok(Applied::Generation(s.generation, None, Vec::new())),
        Ok(None) => Err(
            "the coordinator took the configuration, but this node's agent stopped answering \
             before it was in effect here: see cmviewcl on another node"
                .into(),
        ),
        Err(_) => Err(format!(
            "the coordinator took the configuration, but it was not in effect here within {} s \
             (see cmviewcl)",
            GENERATION_WAIT.as_secs()
        )),
    }
}

/// cmapplyconf: the packages given replace those of the same name (or are added); the rest
/// stay as they are.
pub fn apply_configuration(cli: &ApplyConfiguration) -> Result<String, String> {
    if cli.cluster.is_none() && cli.packages.is_empty() && cli.list.is_none() {
        return Err("give the files to apply: -C cluster file, -P package file, -p list".into());
    }
    let (cluster, given) = confcmds::read_generation_files(
        cli.cluster.as_deref(),
        &cli.packages,
        cli.list.as_deref(),
    )?;
    let client = Client::from_env()?;
    let in_effect = match read_configuration(&client) {
        Ok(in_effect) => in_effect,
        // The first cmapplyconf, on a node configured in no cluster: it creates the cluster.
        Err(e) if e.contains(cimguard_cluster::runtime::daemon::NOT_CONFIGURED) => {
            return create_cluster(cli, &client, cluster.as_ref(), &given, &e);
        }
        Err(e) => return Err(e),
    };
    let base = in_effect.generation;
    let base_number = in_effect.number;
    // Checked here first, against the cluster file that will be in effect, so that every
    // finding is told with its file and line.
    let Merged {
        packages,
        names,
        findings,
    } = in_effect.merged(cluster.as_ref(), &given);
    let mut out = told_findings(&findings, cli.verbose)?;
    let (nodes_before, running): (Vec<String>, bool) = view(&client)
        .map(|s| {
            (
                s.nodes.iter().map(|n| n.name.clone()).collect(),
                s.status == ClusterStatus::Up,
            )
        })
        .unwrap_or_default();
    let generation = match apply(&client, (base, base_number), cluster.as_ref(), &packages)? {
        // Nodes added that did not take it: the cluster changed, the command did not do
        // all it was given to.
        Applied::Generation(_, message, not_configured) if !not_configured.is_empty() => {
            return Err(format!(
                "{out}{}",
                message.unwrap_or_else(|| format!(
                    "{} did not take the configuration",
                    not_configured.join(", ")
                ))
            ));
        }
        Applied::Generation(generation, message, _) => {
            if let Some(message) = message {
                out.push_str(&format!("cmapplyconf: {message}\n"));
            }
            // Given again for nodes that missed it: the cluster's generation is the same.
            if running && base == Some(generation) {
                out.push_str(&format!(
                    "Configuration generation {generation} stays in effect.\n"
                ));
                return Ok(out);
            }
            generation
        }
        Applied::Unchanged(note) => {
            if let Some(note) = note {
                out.push_str(&format!("cmapplyconf: {note}\n"));
            }
            out.push_str(&unchanged(base));
            return Ok(out);
        }
    };
    // With the cluster halted, a change of the nodes starts each daemon again; nodes added
    // to the running cluster start again on their own nodes only (cmrunnode there). The
    // numbers may change with the same names shown (a node deleted while the cluster ran
    // gives its number up), so the wait is for the generation, which the new life shows,
    // and the nodes; with no new life, the generation shows at once.
    if !running && !nodes_before.is_empty() {
        let nodes = cluster
            .as_ref()
            .and_then(|c| node_names(&c.text))
            .unwrap_or(nodes_before);
        out.push_str(&wait_for_new_life(&client, generation, &nodes));
    }
    if cli.verbose {
        for name in &names {
            out.push_str(&format!("cmapplyconf: package {name} applied\n"));
        }
    }
    out.push_str(&format!(
        "Completed the cluster update (configuration generation {generation}).\n"
    ));
    Ok(out)
}

/// cmapplyconf's report of `findings` (errors and warnings, as Serviceguard's cmapplyconf
/// tells what it verifies, and with `verbose` the notes too), or its failure when one is an
/// error: nothing is applied then. A warning is applied with: an operator applying a value
/// Serviceguard would refuse, say, sees it said at that moment.
fn told_findings(findings: &[Diagnostic], verbose: bool) -> Result<String, String> {
    let mut out = String::new();
    let errors = findings
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    for finding in findings {
        if verbose || finding.severity != Severity::Note {
            out.push_str(&format!("{finding}\n"));
        }
    }
    if errors > 0 {
        return Err(format!(
            "{}Verification failed with {errors} error{}: nothing applied",
            out,
            if errors == 1 { "" } else { "s" }
        ));
    }
    Ok(out)
}

/// cmapplyconf on a node configured in no cluster: the files create the cluster, every node
/// of the cluster file running cmcld unconfigured (with the cluster key and its
/// certificate). Returns once this node's daemon runs as a node of the new cluster, halted:
/// cmruncl starts it.
fn create_cluster(
    cli: &ApplyConfiguration,
    client: &Client,
    cluster: Option<&FileText>,
    packages: &[FileText],
    unconfigured: &str,
) -> Result<String, String> {
    let Some(cluster) = cluster else {
        return Err(format!(
            "{unconfigured}; give the cluster file (-C) to create a cluster with this node"
        ));
    };
    let findings = confcmds::generation_findings(Some(cluster), packages);
    let mut out = told_findings(&findings, cli.verbose)?;
    let returned = call(
        client,
        "ApplyConfiguration",
        file_params(Some(cluster), packages),
    )?;
    let generation = match out_value(&returned, "Generation") {
        Some(Value::Uint64(generation)) => *generation,
        Some(Value::String(text)) => text
            .trim()
            .parse()
            .map_err(|_| format!("the agent answered generation {text:?}"))?,
        _ => return Err("the agent did not say which generation it created".into()),
    };
    if let Some(nodes) = node_names(&cluster.text) {
        out.push_str(&wait_for_new_life(client, generation, &nodes));
    }
    out.push_str(&format!(
        "Completed the cluster creation (configuration generation {generation}).\n"
    ));
    Ok(out)
}

/// The NODE_NAMEs of a cluster file, in order (None: it does not parse; it was checked
/// before it was applied).
fn node_names(text: &str) -> Option<Vec<String>> {
    let checked = cimguard_cluster::config::cluster::parse(text, "cluster file").ok()?;
    Some(checked.config.nodes.into_iter().map(|n| n.name).collect())
}

/// How long cmapplyconf waits for this node's new life after a change of the nodes.
const NEW_LIFE_WAIT: Duration = Duration::from_secs(30);

/// After a cmapplyconf that changed the nodes (the cluster halted): each node's daemon starts
/// a new life, halted, numbered as the new list numbers the nodes. Waits until this node's
/// new life answers with the new nodes, so that the next command here finds it (a cmruncl
/// tells the other nodes to start until they are heard); what is not so by then is said
/// (empty: it is).
fn wait_for_new_life(client: &Client, generation: u64, nodes: &[String]) -> String {
    let deadline = Instant::now() + NEW_LIFE_WAIT;
    loop {
        // The agent starts again with its daemon: not answering for a moment is expected.
        if let Ok(snapshot) = view(client) {
            // The same nodes, in whatever order they are numbered (one deleted while the
            // cluster ran that may not have been told keeps the numbers as they were).
            let mut shown: Vec<&String> = snapshot.nodes.iter().map(|n| &n.name).collect();
            let mut wanted: Vec<&String> = nodes.iter().collect();
            shown.sort();
            wanted.sort();
            if snapshot.generation == generation && shown == wanted {
                return String::new();
            }
        }
        if Instant::now() >= deadline {
            return format!(
                "This node's cmcld starts again, halted, with configuration generation \
                 {generation}, but its new life did not answer within {} s: see its log \
                 before cmruncl.\n",
                NEW_LIFE_WAIT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// cmcheckconf's check against the cluster in effect, through its agent.
pub struct ClusterCheck {
    /// The configuration generation the files were checked against (None: the agent did not
    /// say).
    pub generation: Option<u64>,
    /// The findings about the generation a cmapplyconf of the files would make: the given
    /// cluster file (or the one in effect) with the package files in effect, each replaced by
    /// the file given for it, and the new ones. Errors of every file are kept, since a
    /// change can break a package file that was not given (a node taken out of the cluster
    /// that a package names); warnings and notes only of the files given.
    pub findings: Vec<Diagnostic>,
    /// Why the running cluster would refuse them now; None when it would take them, or when
    /// the findings have errors (then the cluster is not asked).
    pub refusal: Option<String>,
}

/// Checks `cluster` (absent: the cluster file in effect) and the package files `given`
/// merged into the configuration in effect, as cmapplyconf would apply them: first with
/// cmcheckconf's rules here, then, when they hold, by the agent's CheckConfiguration,
/// which tells the refusals of the cluster as it runs and applies nothing.
pub fn check_against_cluster(
    client: &Client,
    cluster: Option<&FileText>,
    given: &[FileText],
) -> Result<ClusterCheck, String> {
    let in_effect = read_configuration(client)?;
    let generation = in_effect.generation;
    let Merged {
        packages, findings, ..
    } = in_effect.merged(cluster, given);
    let named: Vec<&str> = cluster
        .iter()
        .map(|f| f.name.as_str())
        .chain(given.iter().map(|f| f.name.as_str()))
        .collect();
    let findings: Vec<Diagnostic> = findings
        .into_iter()
        .filter(|d| d.severity == Severity::Error || named.contains(&d.file.as_str()))
        .collect();
    if findings.iter().any(|d| d.severity == Severity::Error) {
        return Ok(ClusterCheck {
            generation,
            findings,
            refusal: None,
        });
    }
    let refusal = agent_check(client, cluster, &packages)?;
    Ok(ClusterCheck {
        generation,
        findings,
        refusal,
    })
}

/// cmcheckconf on a node configured in no cluster, of the cluster file that would create
/// one and its package files: the files' own findings ([`confcmds::generation_findings`])
/// and, when they have no error, the agent's CheckConfiguration, which has every node of the
/// file check them as it would check the creation (each node's cmcld runs unconfigured).
pub fn check_new_cluster(
    client: &Client,
    cluster: &FileText,
    packages: &[FileText],
) -> Result<ClusterCheck, String> {
    let findings = confcmds::generation_findings(Some(cluster), packages);
    let refusal = if findings.iter().any(|d| d.severity == Severity::Error) {
        None
    } else {
        agent_check(client, Some(cluster), packages)?
    };
    Ok(ClusterCheck {
        generation: None,
        findings,
        refusal,
    })
}

/// The agent's CheckConfiguration of `cluster` (None: the one in effect) and `packages`:
/// why they would not be taken (None: they would).
fn agent_check(
    client: &Client,
    cluster: Option<&FileText>,
    packages: &[FileText],
) -> Result<Option<String>, String> {
    let params = file_params(cluster, packages);
    let returned = client.invoke_static("HP_SGClusteringService", "CheckConfiguration", params)?;
    let message = || {
        returned
            .out_string("Message")
            .unwrap_or("no reason given")
            .to_owned()
    };
    match returned.value {
        Some(0) => Ok(None),
        // Findings the agent's check made and this one did not (its cluster file in effect
        // differs from the one read a moment ago): refused all the same.
        Some(4 | 5) => Ok(Some(message())),
        code => Err(format!(
            "the agent could not check the files (return code {code:?}): {}",
            message()
        )),
    }
}

/// The package set a cmapplyconf applies, and the names of the packages `given`: the
/// packages `in_effect`, each replaced where it stands by the file given for it, then the
/// files of new packages. Files given for one package are all kept, so that the check refuses
/// them as cmcheckconf does (`package X is also defined in FILE`) instead of the last one
/// silently replacing the others.
fn merged(in_effect: Vec<FileText>, given: &[FileText]) -> (Vec<FileText>, Vec<String>) {
    let given_names: Vec<Option<String>> = given.iter().map(|f| package_name(&f.text)).collect();
    let mut placed = vec![false; given.len()];
    let mut packages = Vec::with_capacity(in_effect.len() + given.len());
    for file in in_effect {
        let name = package_name(&file.text);
        let mut replaced = false;
        for (index, given_name) in given_names.iter().enumerate() {
            if name.is_some() && *given_name == name {
                packages.push(given[index].clone());
                placed[index] = true;
                replaced = true;
            }
        }
        if !replaced {
            packages.push(file);
        }
    }
    for (index, file) in given.iter().enumerate() {
        if !placed[index] {
            packages.push(file.clone());
        }
    }
    let mut names: Vec<String> = Vec::new();
    for name in given_names.into_iter().flatten() {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    (packages, names)
}

/// What cmapplyconf prints when the files are the configuration in effect.
fn unchanged(generation: Option<u64>) -> String {
    match generation {
        Some(generation) => format!(
            "No changes to the cluster configuration: configuration generation {generation} \
             stays in effect.\n"
        ),
        None => "No changes to the cluster configuration.\n".to_owned(),
    }
}

/// cmgetconf.
pub fn get_configuration(cli: &GetConfiguration) -> Result<String, String> {
    let client = Client::from_env()?;
    if let Some(name) = &cli.cluster {
        let actual = view(&client)?.name;
        if !actual.eq_ignore_ascii_case(name) {
            return Err(format!("this agent's cluster is {actual}, not {name}"));
        }
    }
    let (cluster, packages) = configuration(&client)?;
    let text = match &cli.package {
        None => cluster.text,
        Some(name) => {
            packages
                .into_iter()
                .find(|p| package_name(&p.text).as_deref() == Some(name.as_str()))
                .ok_or_else(|| format!("package {name} does not exist"))?
                .text
        }
    };
    match &cli.output {
        None => Ok(text),
        Some(path) => {
            std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(if cli.verbose {
                format!("cmgetconf: wrote {}\n", path.display())
            } else {
                String::new()
            })
        }
    }
}

/// Asks, on a terminal, whether the whole configuration of cluster `name` is to be deleted
/// (Serviceguard asks too); elsewhere -f must say so.
fn confirm_deletion(name: &str) -> Result<(), String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(format!(
            "this deletes the configuration of cluster {name} from every node: give -f to do \
             so without being asked"
        ));
    }
    print!("Delete the configuration of cluster {name} from every node (y/[n])? ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| e.to_string())?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES") {
        Ok(())
    } else {
        Err("nothing deleted".into())
    }
}

/// cmdeleteconf -p: the packages are deleted as cmapplyconf deletes a package left out
/// (refused while one runs), with the cluster running or halted. Without -p the halted
/// cluster's whole configuration is deleted (HP_SGClusteringService.DeleteConfiguration),
/// and the command returns once this node's daemon answers as unconfigured.
pub fn delete_configuration(cli: &DeleteConfiguration) -> Result<String, String> {
    let client = Client::from_env()?;
    let snapshot = view(&client)?;
    if let Some(name) = &cli.cluster {
        if !snapshot.name.eq_ignore_ascii_case(name) {
            return Err(format!(
                "this agent's cluster is {}, not {name}",
                snapshot.name
            ));
        }
    }
    if cli.packages.is_empty() {
        if snapshot.status != ClusterStatus::Down {
            return Err(format!(
                "cluster {} is running (or its state is not known here): halt it (cmhaltcl) \
                 before deleting its configuration",
                snapshot.name
            ));
        }
        if !cli.force {
            confirm_deletion(&snapshot.name)?;
        }
        // Every node takes the deletion or none does; each daemon then goes on
        // unconfigured, so a cmapplyconf may create a cluster again.
        call(&client, "DeleteConfiguration", Vec::new())?;
        let deadline = Instant::now() + NEW_LIFE_WAIT;
        loop {
            match view(&client) {
                Err(e) if e.contains(cimguard_cluster::runtime::daemon::NOT_CONFIGURED) => break,
                _ if Instant::now() >= deadline => {
                    return Ok(format!(
                        "cmdeleteconf: the configuration of cluster {} is deleted, but this \
                         node's daemon has not yet answered as unconfigured within {} s\n",
                        snapshot.name,
                        NEW_LIFE_WAIT.as_secs()
                    ))
                }
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
        return Ok(format!(
            "Completed the cluster deletion (cluster {}).\n",
            snapshot.name
        ));
    }
    let InEffect {
        mut packages,
        generation: base,
        number: base_number,
        ..
    } = read_configuration(&client)?;
    for name in &cli.packages {
        let before = packages.len();
        packages.retain(|p| package_name(&p.text).as_deref() != Some(name.as_str()));
        if packages.len() == before {
            return Err(format!("package {name} does not exist"));
        }
    }
    let generation = match apply(&client, (base, base_number), None, &packages)? {
        Applied::Generation(generation, ..) => generation,
        // Not reached: a package was left out.
        Applied::Unchanged(_) => return Ok(unchanged(base)),
    };
    let mut out = String::new();
    if cli.verbose {
        for name in &cli.packages {
            out.push_str(&format!("cmdeleteconf: package {name} deleted\n"));
        }
    }
    out.push_str(&format!(
        "Completed the cluster update (configuration generation {generation}).\n"
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {

    /// cmapplyconf tells errors and warnings, and notes only with -v; an error is its
    /// failure.
    #[test]
    fn cmapplyconf_tells_warnings_and_notes_only_with_v() {
        use super::{told_findings, Diagnostic, Severity};
        let finding = |severity, reason: &str| Diagnostic {
            severity,
            file: "cluster.ascii".into(),
            line: 3,
            parameter: Some("MEMBER_TIMEOUT".into()),
            reason: reason.into(),
        };
        let findings = [
            finding(Severity::Warning, "below the minimum"),
            finding(Severity::Note, "failover takes longer"),
        ];
        let plain = told_findings(&findings, false).unwrap();
        assert!(plain.contains("below the minimum"), "{plain}");
        assert!(!plain.contains("failover takes longer"), "{plain}");
        let verbose = told_findings(&findings, true).unwrap();
        assert!(verbose.contains("failover takes longer"), "{verbose}");
        let failed = told_findings(&[finding(Severity::Error, "not a number")], false).unwrap_err();
        assert!(failed.contains("not a number") && failed.contains("nothing applied"));
    }
    use cimguard_cluster::runtime::daemon::FileText;

    use super::merged;
    use crate::confcmds;

    const CLUSTER: &str = include_str!("../cluster/tests/config/qs-three-nodes.ascii");
    const DATABASE: &str = include_str!("../cluster/tests/config/dbpkg.conf");
    const WEB: &str = include_str!("../cluster/tests/config/webpkg.conf");

    fn file(name: &str, text: &str) -> FileText {
        FileText {
            name: name.into(),
            text: text.into(),
        }
    }

    #[test]
    fn a_file_given_replaces_its_package_where_it_stands() {
        let in_effect = vec![file("dbpkg", DATABASE), file("webpkg", WEB)];
        let changed = DATABASE.replace("priority                          20", "priority 30");
        let (packages, names) = merged(in_effect, &[file("db.conf", &changed)]);
        let files: Vec<&str> = packages.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(files, ["db.conf", "webpkg"]);
        assert_eq!(names, ["dbpkg"]);
    }

    #[test]
    fn two_files_given_for_one_package_are_refused_as_cmcheckconf_refuses_them() {
        let in_effect = vec![file("dbpkg", DATABASE), file("webpkg", WEB)];
        let fallback = DATABASE.replace("hpnode2", "hpnode3");
        let given = [file("db.conf", DATABASE), file("db_fb.conf", &fallback)];
        let (packages, _) = merged(in_effect, &given);
        let findings = confcmds::generation_findings(Some(&file("cl.ascii", CLUSTER)), &packages);
        let line = DATABASE
            .lines()
            .position(|l| l.starts_with("package_name"))
            .expect("dbpkg.conf names its package")
            + 1;
        // Its priority, the same as db.conf's, is told too, as cmcheckconf tells it.
        let errors: Vec<String> = findings.iter().map(ToString::to_string).collect();
        let expected = format!(
            "db_fb.conf:{line}: error: PACKAGE_NAME: package dbpkg is also defined in db.conf"
        );
        assert!(errors.contains(&expected), "{errors:?}");
    }
}
