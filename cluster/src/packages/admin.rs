//! The package commands of serviceguard.md section 5.2 (cmrunpkg, cmhaltpkg, cmmodpkg), with
//! Serviceguard's refusal rules. Every node checks a command against its copy of the table
//! and answers at once; the package coordinator checks it again and carries it out.

use std::fmt;

use super::catalog::{Catalog, PackageDef, PackageId};
use super::table::{InstanceState, Table};
use crate::config::package::{DependencyCondition, PackageType};
use crate::core::{NodeId, NodeSet};

/// A package command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Command {
    /// `cmrunpkg [-n node] pkg`: start it (on `node`, else on the node the command was given
    /// on). AUTO_RUN is left as it is.
    Run {
        /// The package.
        package: PackageId,
        /// Where.
        node: NodeId,
    },
    /// `cmhaltpkg [-n node] pkg`: halt it (on `node` only, for a multi-node package) and
    /// disable AUTO_RUN.
    Halt {
        /// The package.
        package: PackageId,
        /// Only this node's instance (multi-node packages).
        node: Option<NodeId>,
    },
    /// `cmmodpkg -e pkg` (AUTO_RUN on) or `cmmodpkg -e -n node pkg` (node switching on).
    Enable {
        /// The package.
        package: PackageId,
        /// The node, for node switching.
        node: Option<NodeId>,
    },
    /// `cmmodpkg -d pkg` (AUTO_RUN off, the package keeps running) or `cmmodpkg -d -n node
    /// pkg` (node switching off).
    Disable {
        /// The package.
        package: PackageId,
        /// The node, for node switching.
        node: Option<NodeId>,
    },
    /// `cmmodpkg -R -s service pkg`: reset the service's restart counter where the package
    /// runs.
    ResetRestarts {
        /// The package.
        package: PackageId,
        /// The service, by index in the package file.
        service: u16,
    },
    /// `cmmodpkg -m on|off [-n node] pkg`: maintenance mode. Failures of the package's
    /// services and resources are not acted on and it is not failed over; AUTO_RUN must be
    /// off first. A package that is down is put in maintenance on a node (`-n`), where
    /// cmrunpkg then starts it (serviceguard.md 6.6).
    Maintenance {
        /// The package.
        package: PackageId,
        /// On or off.
        on: bool,
        /// `-n`: the node (a running package's own node, or where a down one is to run).
        node: Option<NodeId>,
    },
}

impl Command {
    /// The package concerned.
    pub fn package(&self) -> PackageId {
        match *self {
            Command::Run { package, .. }
            | Command::Halt { package, .. }
            | Command::Enable { package, .. }
            | Command::Disable { package, .. }
            | Command::ResetRestarts { package, .. }
            | Command::Maintenance { package, .. } => package,
        }
    }
}

/// Why a command is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// This node is not running in a quorate cluster.
    ClusterNotRunning,
    /// No such package.
    UnknownPackage,
    /// The node is not in the package's node_name list.
    NotAnAllowedNode {
        /// The node.
        node: NodeId,
    },
    /// The node is not a member of the running cluster.
    NodeNotUp {
        /// The node.
        node: NodeId,
    },
    /// Node switching is disabled for the package on that node (`cmmodpkg -e -n node`).
    SwitchingDisabled {
        /// The node.
        node: NodeId,
    },
    /// The package already runs (a failover package on another node).
    AlreadyRunning {
        /// Where.
        node: NodeId,
    },
    /// The package is not running (where asked).
    NotRunning {
        /// The node asked about (`-n`), if one was.
        node: Option<NodeId>,
    },
    /// The package is starting, halting or failing: wait for the outcome.
    InTransition,
    /// The cluster has just re-formed and its package coordinator has not heard every member
    /// yet: try again in a moment.
    Reforming,
    /// The package is halt_aborted (partially down): only cmhaltpkg applies.
    HaltAborted {
        /// Where.
        node: NodeId,
    },
    /// Packages that depend on it run: halt them first.
    DependentsRunning {
        /// Their names.
        dependents: Vec<String>,
    },
    /// Its dependencies are not met on that node.
    DependenciesNotMet {
        /// The node.
        node: NodeId,
        /// What is not met, each as `PACKAGE = up` or `PACKAGE = down`, with where.
        unmet: Vec<String>,
    },
    /// The package is in maintenance mode.
    Maintenance,
    /// cmrunpkg of a package in maintenance mode on another node than the one it was put in
    /// maintenance for.
    MaintenanceElsewhere {
        /// That node.
        node: NodeId,
    },
    /// cmmodpkg -m on of a package that is down, without the node it is to run on.
    MaintenanceNeedsNode,
    /// A node that may still run the package left the cluster and is not yet certainly
    /// reset (the survivors' fence wait).
    AwaitingFence {
        /// The nodes.
        nodes: NodeSet,
    },
    /// cmhaltnode or cmhaltcl without -f while packages run (or are halt_aborted) there.
    PackagesRunning {
        /// Their names.
        packages: Vec<String>,
    },
    /// The node (or the cluster) is halting already.
    Halting,
    /// cmapplyconf: these cluster parameters change only while the cluster is halted.
    NeedsHaltedCluster {
        /// The parameters.
        parameters: Vec<&'static str>,
    },
    /// cmapplyconf: a package that runs (or is halt_aborted) would be deleted or changed.
    PackageActive {
        /// The package.
        package: String,
        /// deleted or modified.
        change: &'static str,
    },
    /// cmapplyconf: the files do not resolve (a node or package they name is missing).
    InvalidConfiguration {
        /// Why.
        reason: String,
    },
    /// cmapplyconf: another configuration change is being applied.
    ConfigurationChanging,
    /// cmapplyconf on a halted node while the cluster runs on other nodes.
    ClusterRunsElsewhere,
    /// cmapplyconf with the cluster halted: the files delete the node it was given on.
    GiverDeleted {
        /// That node.
        node: String,
    },
    /// cmapplyconf: the files were merged into a generation that is no longer in effect
    /// (another change was applied since): applying them would undo that change.
    ConfigurationStale {
        /// The generation the files were merged into.
        base: u64,
        /// The generation in effect.
        in_effect: u64,
    },
    /// cmapplyconf: the files were merged into a generation shown as the one in effect, but
    /// another configuration (a node's that never became the cluster's: its change with the
    /// cluster halted reached no other node).
    ConfigurationDiverged {
        /// The generation the files were merged into, as shown.
        base: u64,
    },
    /// The package has no such service.
    UnknownService,
    /// cmmodpkg -m on while AUTO_RUN is enabled.
    SwitchingEnabled,
    /// cmmodpkg -m on for a package active on more than one node.
    SeveralNodes,
    /// cmruncl on a node that is a cluster member already.
    AlreadyMember,
    /// The package is detached on that node (cmhaltnode -d): it runs there unmonitored
    /// until the node re-attaches it.
    Detached {
        /// The node.
        node: NodeId,
    },
    /// cmhaltpkg of a package detached on a node outside the cluster whose daemon did not
    /// take the halt (it is not running, or not reachable): nothing there halts it.
    DetachedUnheard {
        /// The node.
        node: NodeId,
    },
    /// A change of the shared map that breaks its bounds.
    Shared(crate::core::shared::SharedError),
    /// cmhaltpkg of a detached package whose node joined the cluster (re-attaching it)
    /// before its daemon took the halt.
    Reattached {
        /// The node.
        node: NodeId,
    },
    /// cmapplyconf while packages are detached.
    PackagesDetached {
        /// Their names.
        packages: Vec<String>,
    },
    /// cmhaltnode -d or cmhaltcl -d is not possible in this cluster.
    DetachUnsupported {
        /// Why.
        reason: String,
    },
    /// cmapplyconf: a parameter of a running package that changes only while it is
    /// halted.
    NeedsHaltedPackage {
        /// The package.
        package: String,
        /// The parameter.
        parameter: &'static str,
    },
    /// cmhaltnode -d or cmhaltcl -d with members this node cannot reach.
    NodesUnreachable {
        /// The members.
        nodes: NodeSet,
    },
    /// A change of the package switching table was made on the package coordinator, which
    /// halted before any member confirmed holding it: the next coordinator takes the newest
    /// copy among the members, which may not have it.
    CoordinatorHalted,
    /// cmrunpkg -n: a monitored_subnet of the package is down on that node.
    SubnetDown {
        /// The node.
        node: NodeId,
        /// The monitored_subnet.
        subnet: std::net::IpAddr,
    },
    /// cmruncl given on a node it does not name (the node it is given on starts with the
    /// others and forms the cluster with them).
    RunClusterNotNamed {
        /// The node it was given on.
        node: NodeId,
    },
    /// cmruncl naming nodes that hold no quorum of a membership the node it is given on ran
    /// in: more than half of it, or exactly half with a cluster lock, must start together.
    /// They would form and halt at once (the group that left could run the cluster on).
    RunClusterNotQuorate {
        /// The nodes named.
        named: NodeSet,
        /// That membership.
        last: NodeSet,
        /// Whether the cluster has a lock (lock LUN or quorum server) to break an exact half.
        lock: bool,
    },
    /// cmapplyconf with the cluster running: the files delete a node that is a member.
    DeletesMember {
        /// That node.
        node: String,
    },
}

/// The warning a change of the package switching table (cmmodpkg -e/-d/-m, cmhaltpkg's
/// AUTO_RUN) is answered with when it was made on the package coordinator but the members
/// `nodes` had not confirmed holding it when the wait for them ended: a coordinator failing
/// before they do may lose it. In the core's words (nodes as `node N`).
pub fn unconfirmed_text(nodes: NodeSet) -> String {
    let nodes: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
    format!(
        "the change was made on the package coordinator, but {} had not confirmed holding it \
         when the wait ended: should the coordinator fail before they do, it may be lost (see \
         cmviewcl; give the command again if the change does not show)",
        nodes.join(", ")
    )
}

impl Refusal {
    /// True for a refusal that follows from the configuration alone (no such package, a node
    /// not in its node_name list), which every node's copy shows alike; the others depend on
    /// the package table, whose last change may not have reached every node yet.
    pub fn is_by_configuration(&self) -> bool {
        matches!(
            self,
            Refusal::UnknownPackage | Refusal::NotAnAllowedNode { .. } | Refusal::UnknownService
        )
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, None)
    }
}

/// A refusal told of a package by its name ([`Refusal::naming`]).
pub struct Named<'a> {
    refusal: &'a Refusal,
    package: &'a str,
}

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.refusal.write(f, Some(self.package))
    }
}

impl Refusal {
    /// The refusal of a command on package `package`, told with its name: where the text
    /// speaks of "the package" or "it", it names the package, and a text that does not
    /// speak of the package is told after its name. A command may name several packages,
    /// and the operator must know which one was refused.
    pub fn naming<'a>(&'a self, package: &'a str) -> Named<'a> {
        Named {
            refusal: self,
            package,
        }
    }

    /// Whether the text speaks of the package the command was given for.
    fn speaks_of_package(&self) -> bool {
        matches!(
            self,
            Refusal::NotAnAllowedNode { .. }
                | Refusal::SwitchingDisabled { .. }
                | Refusal::AlreadyRunning { .. }
                | Refusal::NotRunning { .. }
                | Refusal::InTransition
                | Refusal::HaltAborted { .. }
                | Refusal::DependentsRunning { .. }
                | Refusal::DependenciesNotMet { .. }
                | Refusal::Maintenance
                | Refusal::MaintenanceElsewhere { .. }
                | Refusal::MaintenanceNeedsNode
                | Refusal::AwaitingFence { .. }
                | Refusal::UnknownService
                | Refusal::SwitchingEnabled
                | Refusal::SeveralNodes
                | Refusal::Detached { .. }
                | Refusal::DetachedUnheard { .. }
                | Refusal::Reattached { .. }
                | Refusal::SubnetDown { .. }
                | Refusal::CoordinatorHalted
                | Refusal::PackageActive { .. }
                | Refusal::NeedsHaltedPackage { .. }
        )
    }

    /// The text; of package `package` where given (see [`Refusal::naming`]).
    fn write(&self, f: &mut fmt::Formatter<'_>, package: Option<&str>) -> fmt::Result {
        if let (Some(name), false) = (package, self.speaks_of_package()) {
            write!(f, "package {name}: ")?;
        }
        let named = package.map(|name| format!("package {name}"));
        // "the package" / "The package", and "it", as the text speaks of it.
        let the = named.as_deref().unwrap_or("the package");
        let it = package.unwrap_or("it");
        match self {
            Refusal::ClusterNotRunning => f.write_str("the cluster is not running on this node"),
            Refusal::UnknownPackage => f.write_str("no such package"),
            Refusal::NotAnAllowedNode { node } => {
                write!(f, "{node} is not in the node_name list of {the}")
            }
            Refusal::NodeNotUp { node } => write!(f, "{node} is not running in the cluster"),
            Refusal::SwitchingDisabled { node } => write!(
                f,
                "switching is disabled for {the} on {node}: enable it with cmmodpkg -e -n"
            ),
            Refusal::AlreadyRunning { node } => {
                write!(f, "{the} is already running on {node}")
            }
            Refusal::NotRunning { node: None } => write!(f, "{the} is not running"),
            Refusal::NotRunning { node: Some(node) } => {
                write!(f, "{the} is not running on {node}")
            }
            Refusal::Reforming => f.write_str(
                "the cluster is re-forming (the package coordinator has not heard every member yet): try again",
            ),
            Refusal::InTransition => {
                write!(f, "{the} is starting, halting or failing: wait for it to finish")
            }
            Refusal::HaltAborted { node } => write!(
                f,
                "{the} is halt_aborted on {node}: halt it again with cmhaltpkg"
            ),
            Refusal::DependentsRunning { dependents } => write!(
                f,
                "packages that depend on {it} are running: halt {} first",
                dependents.join(", ")
            ),
            Refusal::DependenciesNotMet { node, unmet } => {
                write!(
                    f,
                    "the dependencies of {the} are not met on {node}: {}",
                    unmet.join(", ")
                )
            }
            Refusal::Maintenance => write!(f, "{the} is in maintenance mode"),
            Refusal::MaintenanceElsewhere { node } => write!(
                f,
                "{the} is in maintenance mode for {node}: start it there (cmrunpkg -n), or \
                 end maintenance first (cmmodpkg -m off)"
            ),
            Refusal::MaintenanceNeedsNode => write!(
                f,
                "{the} is down: name the node it is to run on in maintenance mode (cmmodpkg -m \
                 on -n node)"
            ),
            Refusal::AwaitingFence { nodes } => write!(
                f,
                "nodes {nodes:?} left the cluster and may still run {it} until their safety timer \
                 resets them: try again shortly"
            ),
            Refusal::PackagesRunning { packages } => write!(
                f,
                "packages are running: {}; halt them first, or use -f to halt them (they fail \
                 over where they can)",
                packages.join(", ")
            ),
            Refusal::Halting => f.write_str("the node is halting"),
            Refusal::NeedsHaltedCluster { parameters } => write!(
                f,
                "{} can only be changed while the cluster is halted (cmhaltcl)",
                parameters.join(", ")
            ),
            Refusal::PackageActive { package, change } => write!(
                f,
                "package {package} is running and would be {change}: halt it first (cmhaltpkg)"
            ),
            Refusal::InvalidConfiguration { reason } => {
                write!(f, "the configuration does not apply: {reason}")
            }
            Refusal::ConfigurationChanging => {
                f.write_str("another configuration change is being applied: try again shortly")
            }
            Refusal::ClusterRunsElsewhere => f.write_str(
                "the cluster runs on other nodes without this one: apply the files on a node \
                 that runs it (or start this one first with cmrunnode)",
            ),
            Refusal::GiverDeleted { node } => write!(
                f,
                "the files delete {node}, the node the command was given on: give it on a \
                 node that stays in the cluster"
            ),
            Refusal::ConfigurationStale { base, in_effect } => write!(
                f,
                "the configuration changed since it was read (generation {in_effect} is in \
                 effect, the files were based on generation {base}): read it again (cmgetconf), \
                 make the change again and retry"
            ),
            Refusal::ConfigurationDiverged { base } => write!(
                f,
                "the files were read as generation {base} from a node whose configuration is \
                 not the cluster's (a change it took with the cluster halted reached no other \
                 node): read the configuration again (cmgetconf) on a cluster member, make \
                 the change again and retry"
            ),
            Refusal::UnknownService => write!(f, "{the} has no such service"),
            Refusal::SwitchingEnabled => write!(
                f,
                "global switching of {the} is enabled: disable it first with cmmodpkg -d, then \
                 set maintenance mode"
            ),
            Refusal::AlreadyMember => f.write_str("the node runs in the cluster already"),
            Refusal::Detached { node } => write!(
                f,
                "{the} is detached on {node}: re-attach it first (cmrunnode on {node})"
            ),
            Refusal::Shared(error) => write!(f, "{error}"),
            Refusal::DetachedUnheard { node } => write!(
                f,
                "{the} is detached on {node}, whose cluster daemon did not answer: \
                 nothing there can halt it; start cmcld on {node} and give cmhaltpkg again \
                 (or cmrunnode, which re-attaches it), or halt it there by hand"
            ),
            Refusal::Reattached { node } => write!(
                f,
                "{node} joined the cluster and re-attached {the} before it took the \
                 halt: give cmhaltpkg again"
            ),
            Refusal::PackagesDetached { packages } => write!(
                f,
                "packages are detached: {}; no configuration change applies until their nodes \
                 re-attach them (cmrunnode, cmruncl)",
                packages.join(", ")
            ),
            Refusal::NeedsHaltedPackage { package, parameter } => write!(
                f,
                "{parameter} of package {package} can only be changed while it is halted \
                 (cmhaltpkg)"
            ),
            Refusal::DetachUnsupported { reason } => {
                write!(f, "packages cannot be detached: {reason}")
            }
            Refusal::NodesUnreachable { nodes } => write!(
                f,
                "members {nodes:?} cannot be reached: every node must be reachable to detach"
            ),
            Refusal::CoordinatorHalted => write!(
                f,
                "the package coordinator halted before any member confirmed holding the change \
                 to {the}: it may or may not have been kept (see cmviewcl; give the command \
                 again if it does not show)"
            ),
            Refusal::SubnetDown { node, subnet } => write!(
                f,
                "monitored_subnet {subnet} of {the} is down on {node}"
            ),
            Refusal::RunClusterNotNamed { node } => write!(
                f,
                "the cluster starts with the node the command is given on, and {node} is not \
                 named with -n: give it on one of the nodes named, or name {node} too"
            ),
            Refusal::RunClusterNotQuorate { named, last, lock } => {
                let list = |nodes: &NodeSet| {
                    nodes
                        .iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                write!(
                    f,
                    "{} cannot form the cluster: the last membership known here was {}, and \
                     more than half of its nodes{} must start together (those left out may \
                     have run the cluster on without this node): name more of them with -n, \
                     or cmruncl without -n",
                    list(named),
                    list(last),
                    if *lock {
                        " (exactly half, with the cluster lock)"
                    } else {
                        ""
                    }
                )
            }
            Refusal::DeletesMember { node } => write!(
                f,
                "the files delete {node}, which runs in the cluster: halt it first (cmhaltnode \
                 {node}), then apply them"
            ),
            Refusal::SeveralNodes => write!(
                f,
                "maintenance mode involves one node: {the} runs on several"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// The parameter that `new` changes in a package running on `active` (`old`) and that may
/// change only while the package is halted; None when the change applies while it runs.
/// Online: services added, removed or changed (the package is reconfigured), script
/// timeouts, policies, priority, auto_run, fail-fast settings, nodes added or removed where
/// it does not run. Not online: the package type, removing a node it runs on, its
/// dependencies, weights and generic resources (they decide where and whether it may run).
/// Both are normalized ([`PackageDef::normalized`]).
pub fn needs_halt(
    (old, old_dependencies): &(PackageDef, Vec<String>),
    (new, new_dependencies): &(PackageDef, Vec<String>),
    active: NodeSet,
) -> Option<&'static str> {
    if old.kind != new.kind {
        return Some("package_type");
    }
    if !active.difference(new.node_set()).is_empty() {
        return Some("node_name");
    }
    if old.dependencies != new.dependencies || old_dependencies != new_dependencies {
        return Some("dependency_name");
    }
    if old.weights != new.weights {
        return Some("weight_name");
    }
    if old.resources != new.resources {
        return Some("generic_resource_name");
    }
    None
}

/// Checks `command` against the table, with `up` the running members.
pub fn check(
    catalog: &Catalog,
    table: &Table,
    up: NodeSet,
    command: &Command,
) -> Result<(), Refusal> {
    let id = command.package();
    if id.index() >= catalog.packages.len() {
        return Err(Refusal::UnknownPackage);
    }
    let package = catalog.package(id);
    let state = table.package(id);
    let active: Vec<(NodeId, InstanceState)> = state
        .instances
        .iter()
        .filter(|(_, s)| s.occupies())
        .map(|(n, s)| (*n, *s))
        .collect();
    let detached_at = active
        .iter()
        .find(|(_, s)| *s == InstanceState::Detached)
        .map(|(n, _)| *n);
    match *command {
        Command::Run { node, .. } => {
            // A failover package detached anywhere; a multi-node one on that node.
            let detached = active.iter().find(|(n, s)| {
                *s == InstanceState::Detached
                    && (package.kind == PackageType::Failover || *n == node)
            });
            if let Some((node, _)) = detached {
                return Err(Refusal::Detached { node: *node });
            }
            // In maintenance mode it starts only where it was put in maintenance, down.
            if state.maintenance {
                match state.maintenance_node {
                    Some(at) if at != node => {
                        return Err(Refusal::MaintenanceElsewhere { node: at })
                    }
                    Some(_) if active.is_empty() => {}
                    _ => return Err(Refusal::Maintenance),
                }
            }
            node_allowed(package.node_set(), up, node)?;
            if !state.awaiting_fence.is_empty() {
                return Err(Refusal::AwaitingFence {
                    nodes: state.awaiting_fence,
                });
            }
            if !state.switching.contains(node) {
                return Err(Refusal::SwitchingDisabled { node });
            }
            if let Some((at, s)) = active
                .iter()
                .find(|(n, _)| package.kind == PackageType::Failover || *n == node)
            {
                return Err(match s {
                    InstanceState::HaltAborted => Refusal::HaltAborted { node: *at },
                    s if s.is_transitional() => Refusal::InTransition,
                    _ => Refusal::AlreadyRunning { node: *at },
                });
            }
            let unmet: Vec<String> = package
                .dependencies
                .iter()
                .filter(|d| {
                    let there = table.package(d.package).instances.get(&node).copied();
                    let anywhere = table
                        .package(d.package)
                        .instances
                        .values()
                        .any(|s| s.counts_as_up());
                    match d.condition {
                        DependencyCondition::Up => match d.location {
                            crate::config::package::DependencyLocation::SameNode => {
                                !there.is_some_and(InstanceState::counts_as_up)
                            }
                            _ => !anywhere,
                        },
                        DependencyCondition::Down => there.is_some_and(|s| s.occupies()),
                    }
                })
                .map(|d| {
                    let name = &catalog.package(d.package).name;
                    match (d.condition, d.location) {
                        (DependencyCondition::Down, _) => format!("{name} = down on it"),
                        (_, crate::config::package::DependencyLocation::SameNode) => {
                            format!("{name} = up on it")
                        }
                        _ => format!("{name} = up"),
                    }
                })
                .collect();
            if !unmet.is_empty() {
                return Err(Refusal::DependenciesNotMet { node, unmet });
            }
            Ok(())
        }
        Command::Halt { node, .. } => {
            let here: Vec<&(NodeId, InstanceState)> = active
                .iter()
                .filter(|(n, _)| node.is_none_or(|wanted| wanted == *n))
                .collect();
            if here.is_empty() {
                return Err(Refusal::NotRunning { node });
            }
            // A detached package is halted where it is detached (from any member, while
            // the cluster runs); on a member it is being re-attached.
            if here
                .iter()
                .any(|(n, s)| *s == InstanceState::Detached && up.contains(*n))
            {
                return Err(Refusal::InTransition);
            }
            if here.iter().any(|(_, s)| s.is_transitional()) {
                return Err(Refusal::InTransition);
            }
            let dependents: Vec<String> = catalog
                .ids()
                .filter(|other| {
                    catalog
                        .package(*other)
                        .dependencies
                        .iter()
                        .any(|d| d.package == id && d.condition == DependencyCondition::Up)
                        && table
                            .package(*other)
                            .instances
                            .values()
                            .any(|s| s.occupies())
                })
                .map(|other| catalog.package(other).name.clone())
                .collect();
            if !dependents.is_empty() {
                return Err(Refusal::DependentsRunning { dependents });
            }
            Ok(())
        }
        Command::ResetRestarts { service, .. } => {
            if usize::from(service) >= package.services.len() {
                return Err(Refusal::UnknownService);
            }
            if active.is_empty() {
                return Err(Refusal::NotRunning { node: None });
            }
            // Where it runs monitored; a package detached everywhere it runs has no
            // counter to reset.
            if active.iter().all(|(_, s)| *s == InstanceState::Detached) {
                return Err(Refusal::Detached { node: active[0].0 });
            }
            Ok(())
        }
        Command::Maintenance { on, node, .. } => {
            if let Some(node) = node {
                if !package.nodes.contains(&node) {
                    return Err(Refusal::NotAnAllowedNode { node });
                }
            }
            if on && !state.maintenance {
                if let Some(node) = detached_at {
                    return Err(Refusal::Detached { node });
                }
                // Nor while a package that depends on it is detached (serviceguard.md 6.5).
                let dependent_detached = catalog.ids().find_map(|other| {
                    let depends = catalog
                        .package(other)
                        .dependencies
                        .iter()
                        .any(|d| d.package == id);
                    let at = table
                        .package(other)
                        .nodes_where(|s| s == InstanceState::Detached)
                        .lowest();
                    at.filter(|_| depends)
                });
                if let Some(node) = dependent_detached {
                    return Err(Refusal::Detached { node });
                }
                if state.auto_run {
                    return Err(Refusal::SwitchingEnabled);
                }
                if active.len() > 1 {
                    return Err(Refusal::SeveralNodes);
                }
                if active.iter().any(|(_, s)| s.is_transitional()) {
                    return Err(Refusal::InTransition);
                }
                match (active.first(), node) {
                    // A running package is in maintenance where it runs.
                    (Some((at, _)), Some(node)) if *at != node => {
                        return Err(Refusal::NotRunning { node: Some(node) })
                    }
                    (None, None) => return Err(Refusal::MaintenanceNeedsNode),
                    _ => {}
                }
            }
            Ok(())
        }
        Command::Enable { node: None, .. } if state.maintenance => {
            // Switching stays off while the package is in maintenance (serviceguard.md 6.6).
            Err(Refusal::Maintenance)
        }
        Command::Enable { node, .. } | Command::Disable { node, .. } => {
            if let Some(node) = node {
                if !package.nodes.contains(&node) {
                    return Err(Refusal::NotAnAllowedNode { node });
                }
            }
            Ok(())
        }
    }
}

fn node_allowed(nodes: NodeSet, up: NodeSet, node: NodeId) -> Result<(), Refusal> {
    if !nodes.contains(node) {
        return Err(Refusal::NotAnAllowedNode { node });
    }
    if !up.contains(node) {
        return Err(Refusal::NodeNotUp { node });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Refusal;
    use crate::core::{NodeId, NodeSet};

    /// Every refusal, one of each kind.
    fn every_refusal() -> Vec<Refusal> {
        let node = NodeId(1);
        vec![
            Refusal::ClusterNotRunning,
            Refusal::UnknownPackage,
            Refusal::NotAnAllowedNode { node },
            Refusal::NodeNotUp { node },
            Refusal::SwitchingDisabled { node },
            Refusal::AlreadyRunning { node },
            Refusal::NotRunning { node: None },
            Refusal::NotRunning { node: Some(node) },
            Refusal::InTransition,
            Refusal::Reforming,
            Refusal::HaltAborted { node },
            Refusal::DependentsRunning {
                dependents: vec!["webpkg".into()],
            },
            Refusal::DependenciesNotMet {
                node,
                unmet: vec!["dbpkg = up".into()],
            },
            Refusal::Maintenance,
            Refusal::AwaitingFence {
                nodes: NodeSet::EMPTY,
            },
            Refusal::PackagesRunning {
                packages: vec!["webpkg".into()],
            },
            Refusal::Halting,
            Refusal::NeedsHaltedCluster {
                parameters: vec!["CLUSTER_NAME"],
            },
            Refusal::PackageActive {
                package: "dbpkg".into(),
                change: "deleted",
            },
            Refusal::InvalidConfiguration { reason: "x".into() },
            Refusal::ConfigurationChanging,
            Refusal::ConfigurationStale {
                base: 1,
                in_effect: 2,
            },
            Refusal::ConfigurationDiverged { base: 2 },
            Refusal::UnknownService,
            Refusal::SwitchingEnabled,
            Refusal::SeveralNodes,
            Refusal::AlreadyMember,
            Refusal::Detached { node },
            Refusal::DetachedUnheard { node },
            Refusal::Reattached { node },
            Refusal::PackagesDetached {
                packages: vec!["webpkg".into()],
            },
            Refusal::DetachUnsupported { reason: "x".into() },
            Refusal::NeedsHaltedPackage {
                package: "dbpkg".into(),
                parameter: "node_name",
            },
            Refusal::NodesUnreachable {
                nodes: NodeSet::EMPTY,
            },
            Refusal::CoordinatorHalted,
            Refusal::SubnetDown {
                node,
                subnet: std::net::Ipv4Addr::LOCALHOST.into(),
            },
            Refusal::DeletesMember { node: "n3".into() },
        ]
    }

    #[test]
    fn a_refusal_of_a_package_command_names_the_package() {
        for refusal in every_refusal() {
            // "the package coordinator" is the cluster's, not the package's.
            let plain = refusal
                .to_string()
                .replace("the package coordinator", "the coordinator");
            let named = refusal
                .naming("dbpkg")
                .to_string()
                .replace("the package coordinator", "the coordinator");
            assert!(
                named
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|w| w == "dbpkg"),
                "{refusal:?}: {named}"
            );
            assert!(
                !named.contains("the package ")
                    && !named.contains("depend on it ")
                    && !named.contains("run it "),
                "{refusal:?} still speaks of the package without its name: {named}"
            );
            // A text that speaks of no package is the same, after the name; one that does
            // names it where it stands.
            if refusal.speaks_of_package() {
                assert!(
                    !named.starts_with("package dbpkg: "),
                    "{refusal:?}: {named}"
                );
            } else {
                assert_eq!(named, format!("package dbpkg: {plain}"), "{refusal:?}");
            }
        }
        assert_eq!(
            Refusal::NotRunning { node: None }
                .naming("dbpkg")
                .to_string(),
            "package dbpkg is not running"
        );
        assert_eq!(
            Refusal::Halting.naming("dbpkg").to_string(),
            "package dbpkg: the node is halting"
        );
    }
}
