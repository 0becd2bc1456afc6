//! The package manager of one node: it runs this node's package instances (run and halt
//! scripts, services with their restarts, fail-fast) and, on the cluster coordinator, decides
//! where packages run (the package coordinator, serviceguard.md section 3.3).
//!
//! Every node keeps the cluster-wide table from what members report in their heartbeats;
//! the switching part (AUTO_RUN, node switching, maintenance) is the coordinator's and every
//! member keeps its latest copy, so a new coordinator carries on where the old one stopped.
//! The coordinator orders starts and halts; a node acts on an order only while quorate.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::admin::{Command, Refusal};
use super::catalog::{subnet_health, Catalog, PackageId, ResourceValue, SubnetState};
use super::placement::{decide, Decision, Inputs};
use super::table::{InstanceState, Table};
use crate::config::package::{
    DependencyCondition, DependencyLocation, Evaluation, PackageType, ServiceRestart,
};
use crate::core::{Instant, NodeId, NodeSet};
use crate::status::Health;

/// What a node asks its driver to do for a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageAction {
    /// Run the package's run script (which starts its services); answer with the outcome.
    Run {
        /// The package.
        package: PackageId,
    },
    /// Run the halt script (which stops the services); answer with the outcome.
    Halt {
        /// The package.
        package: PackageId,
    },
    /// Apply a configuration change to the running package (cmapplyconf while it runs):
    /// start the services added, stop those removed, take the new parameters; answer with
    /// [`Script::Reconfigure`]'s outcome.
    Reconfigure {
        /// The package.
        package: PackageId,
    },
    /// Check that a detached package still runs (its services are alive), as the node
    /// re-attaches it (cmrunnode, cmruncl); answer with [`Manager::on_check`]. Volume
    /// groups, mounts and addresses are not checked again (serviceguard.md 6.5).
    Check {
        /// The package.
        package: PackageId,
    },
    /// Start a service again.
    RestartService {
        /// The package.
        package: PackageId,
        /// The service, by index in the package file.
        service: usize,
        /// The restart count so far (RESTART_COUNT in its environment).
        restarts: u32,
    },
}

/// Which script ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Script {
    /// The run script.
    Run,
    /// The halt script.
    Halt,
    /// The online change of a running package (see [`PackageAction::Reconfigure`]).
    Reconfigure,
}

/// How a script ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ScriptOutcome {
    /// Exit 0.
    Succeeded,
    /// A non-zero exit.
    Failed,
    /// run_script_timeout or halt_script_timeout passed (the driver killed it).
    TimedOut,
}

/// Why an instance halts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HaltReason {
    /// An operator (cmhaltpkg) or the coordinator asked.
    Command,
    /// The package moves back to a node it prefers.
    Failback,
    /// A failure: the package ends failed here.
    Failure,
    /// A package it depends on is down: it halts as failed, and may start again where its
    /// dependencies hold (node switching stays enabled).
    DependencyFailed,
}

/// Why a package failed on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FailureCause {
    /// The run script failed or timed out.
    RunScript(ScriptOutcome),
    /// The halt script failed or timed out (the package is halt_aborted).
    HaltScript(ScriptOutcome),
    /// A service exited with no restarts left (by index in the package file).
    Service(usize),
    /// A generic resource went down (by index in the package file).
    GenericResource(usize),
    /// A monitored_subnet went down on the node.
    Subnet(IpAddr),
    /// A package it depends on went down.
    Dependency,
    /// It was found dead when its node re-attached it after a detach.
    DiedWhileDetached,
    /// Applying a configuration change to it while it ran failed or timed out.
    Reconfigure(ScriptOutcome),
    /// The package coordinator halted it as failed.
    Ordered,
}

/// What the package layer reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageEvent {
    /// An instance changed state on this node (`None`: not there, halted).
    StateChanged {
        /// The package.
        package: PackageId,
        /// This node.
        node: NodeId,
        /// Before.
        before: Option<InstanceState>,
        /// After.
        after: Option<InstanceState>,
        /// Why it halts or halted (halting, failing, and the end of a halt).
        reason: Option<HaltReason>,
        /// What failed, when it fails (failing, failed, halt_aborted).
        cause: Option<FailureCause>,
    },
    /// A service exited.
    ServiceFailed {
        /// The package.
        package: PackageId,
        /// The service.
        service: usize,
        /// Its restart count so far.
        restarts: u32,
    },
    /// A service was restarted.
    ServiceRestarted {
        /// The package.
        package: PackageId,
        /// The service.
        service: usize,
        /// The restart count now.
        restarts: u32,
    },
    /// The coordinator changed a package's switching (a failure disables node switching).
    SwitchingChanged {
        /// The package.
        package: PackageId,
        /// AUTO_RUN and node switching before.
        before: (bool, NodeSet),
        /// AUTO_RUN now.
        auto_run: bool,
        /// Node switching now.
        switching: NodeSet,
    },
    /// The coordinator started a failover package on another node after a failure.
    Failover {
        /// The package.
        package: PackageId,
        /// Where it ran or failed (none: not known, e.g. a coordinator that took over).
        from: Option<NodeId>,
        /// Where it goes.
        node: NodeId,
    },
    /// The coordinator moves a package back to a node it prefers.
    Failback {
        /// The package.
        package: PackageId,
        /// Where it runs now.
        from: NodeId,
        /// Where it goes.
        node: NodeId,
    },
    /// A monitored subnet changed status on this node (its first word counts as a change
    /// only when it is down: a subnet counts as up until its monitor says otherwise).
    SubnetChanged {
        /// The monitored_subnet.
        subnet: IpAddr,
        /// Before.
        before: Health,
        /// After.
        after: Health,
    },
    /// A generic resource of a package changed status on this node.
    ResourceChanged {
        /// The package.
        package: PackageId,
        /// The resource, by index in the package file.
        resource: usize,
        /// Before.
        before: Health,
        /// After.
        after: Health,
        /// The value, for an extended resource.
        value: Option<i64>,
    },
}

/// Why cmsetresource is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceError {
    /// No package names the resource.
    Unknown(String),
    /// A status for an extended resource, or a value for a simple one.
    WrongKind {
        /// The resource.
        name: String,
        /// Whether it is extended.
        extended: bool,
    },
    /// A value outside 1 to 2,147,483,647.
    OutOfRange(i64),
    /// Neither a status nor a value (a subnet's "absent").
    NotAValue,
}

impl std::fmt::Display for ResourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResourceError::Unknown(name) => {
                write!(f, "generic resource {name} is not configured in any package")
            }
            ResourceError::WrongKind { name, extended: true } => write!(
                f,
                "generic resource {name} is extended: set its value, not a status"
            ),
            ResourceError::WrongKind { name, .. } => write!(
                f,
                "generic resource {name} is simple: set its status (up or down), not a value"
            ),
            ResourceError::OutOfRange(value) => write!(
                f,
                "value {value} is out of range: a generic resource value is 1 to {RESOURCE_VALUE_MAX}"
            ),
            ResourceError::NotAValue => {
                write!(f, "a generic resource takes a status (up or down) or a value")
            }
        }
    }
}

impl std::error::Error for ResourceError {}

/// The largest value of an extended generic resource.
pub const RESOURCE_VALUE_MAX: i64 = 2_147_483_647;

/// What the manager wants done, for the node to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A local action for the driver.
    Action(PackageAction),
    /// Send an order to a node.
    Order {
        /// The node.
        to: NodeId,
        /// Numbers the coordinator's orders: a node carries out each at most once, so a
        /// duplicated or replayed order does nothing.
        serial: u64,
        /// The order.
        order: Order,
    },
    /// Report an event.
    Event(PackageEvent),
    /// Reset this node (node_fail_fast or service_fail_fast).
    FailFast,
    /// cmhaltpkg of a package detached on a node outside the membership: ask that node to
    /// halt it (sent once; cmhaltpkg again asks again).
    HaltDetached {
        /// The node.
        to: NodeId,
        /// The package.
        package: PackageId,
    },
}

/// An order of the package coordinator to one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Order {
    /// Start the package there.
    Start(PackageId),
    /// Halt it there.
    Halt(PackageId, HaltReason),
    /// Reset a service's restart counter there (cmmodpkg -R -s).
    ResetRestarts(PackageId, u16),
}

/// The switching part of the table, as the coordinator sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Switching {
    /// The package.
    pub package: PackageId,
    /// AUTO_RUN.
    pub auto_run: bool,
    /// Node switching.
    pub switching: NodeSet,
    /// Maintenance.
    pub maintenance: bool,
    /// Where a package put in maintenance while down may start.
    pub maintenance_node: Option<NodeId>,
    /// The nodes where it is detached.
    pub detached: NodeSet,
    /// The nodes whose failure disabled switching once already.
    pub failures_noted: NodeSet,
    /// The nodes a multi-node package has run on since the cluster started.
    pub ran: NodeSet,
}

/// One instance on this node.
#[derive(Debug, Clone)]
struct Local {
    state: InstanceState,
    halt_reason: HaltReason,
    cause: Option<FailureCause>,
    restarts: Vec<u32>,
    /// A halt asked for while the package starts or is reconfigured: carried out once that
    /// ends (a dependent's failure halt, an operator's cmhaltpkg).
    deferred: Option<(HaltReason, Option<FailureCause>)>,
    /// Failed here, the package has run on another node since: once it occupies no other
    /// node, the failure is history ([`Manager::forget_superseded_failures`]).
    superseded: bool,
    /// In fail_wait: its halt runs at this time even if packages that depend on it still
    /// run here (successor_halt_timeout; None: no_timeout).
    fail_wait_until: Option<Instant>,
    /// Services that exited while the package was in maintenance mode (not acted on then):
    /// their failure is taken as maintenance ends.
    exited_in_maintenance: BTreeSet<usize>,
}

/// A start or halt that a previewed command would make ([`PreviewBasis::preview`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    /// The package.
    pub package: PackageId,
    /// The node.
    pub node: NodeId,
    /// Started there (else halted).
    pub start: bool,
}

/// What a preview tells ([`PreviewBasis::preview`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Previewed {
    /// The starts and halts, in order.
    pub planned: Vec<Planned>,
    /// Each command that would be refused, by its index, with the refusal: as the commands
    /// go on after a package refused, the commands after it are checked without it.
    pub refused: Vec<(usize, Refusal)>,
}

/// A preview's table as the commands and the placement leave it, and what they did.
struct Preview {
    table: Table,
    planned: Vec<Planned>,
    preferred: BTreeMap<PackageId, NodeId>,
}

impl Preview {
    /// `package` runs on `node`, every start taken as ending well.
    fn start(&mut self, package: PackageId, node: NodeId) {
        self.table
            .package_mut(package)
            .instances
            .insert(node, InstanceState::Running);
        self.planned.push(Planned {
            package,
            node,
            start: true,
        });
    }

    /// `package` halts on `node`.
    fn halt(&mut self, package: PackageId, node: NodeId) {
        self.table.package_mut(package).instances.remove(&node);
        self.planned.push(Planned {
            package,
            node,
            start: false,
        });
    }
}

/// What a preview needs of the package manager ([`Manager::preview_basis`]), copied so that
/// it can run off the daemon's timing thread: thousands of commands, each followed by the
/// placement, take a fifth of a second with 300 packages on 16 nodes.
#[derive(Debug, Clone)]
pub struct PreviewBasis {
    catalog: Arc<Catalog>,
    /// The planning table (orders on their way count as starting).
    table: Table,
    /// Failbacks under way: where each package goes back to.
    preferred: BTreeMap<PackageId, NodeId>,
    /// The generic resources and subnets of every node.
    resources: BTreeMap<(NodeId, u16), ResourceValue>,
    /// Starts wait for a fence: cmrunpkg is refused.
    held: bool,
    /// The members of the membership.
    members: usize,
    /// The members packages may be placed on.
    up: NodeSet,
}

impl PreviewBasis {
    /// The packages previewed.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// cmrunpkg, cmhaltpkg and cmmodpkg with -t: what `commands`, given in turn, would do,
    /// with nothing done. Each is checked as [`Manager::apply_command`] checks it, against
    /// the table as the commands before it leave it (a package starting or halting now is
    /// refused as it would be); then the cluster's own placement follows (a package whose
    /// AUTO_RUN is enabled starts where its policy puts it, a dependent starts once what it
    /// needs runs, or halts when it stops), every start and halt the preview makes taken as
    /// ending well. A command refused changes nothing, and the next ones are previewed, as
    /// cmrunpkg, cmhaltpkg and cmmodpkg go on to the next package after one refused.
    pub fn preview(&self, commands: &[Command]) -> Previewed {
        let up = self.up;
        let mut preview = Preview {
            table: self.table.clone(),
            planned: Vec::new(),
            preferred: self.preferred.clone(),
        };
        let mut refused = Vec::new();
        for (index, command) in commands.iter().enumerate() {
            let checked = super::admin::check(&self.catalog, &preview.table, up, command)
                .and_then(|()| check_subnets(&self.catalog, &self.resources, command))
                .and_then(|()| {
                    // No cmmodpkg -e -t of a package detached somewhere (serviceguard.md 6.5).
                    let state = preview.table.package(command.package());
                    let detached = state.detached.lowest().or_else(|| {
                        state
                            .instances
                            .iter()
                            .find(|(_, s)| **s == InstanceState::Detached)
                            .map(|(n, _)| *n)
                    });
                    match (command, detached) {
                        (Command::Run { .. }, _) if self.held => Err(Refusal::AwaitingFence {
                            nodes: NodeSet::EMPTY,
                        }),
                        (Command::Enable { .. }, Some(node)) => Err(Refusal::Detached { node }),
                        _ => Ok(()),
                    }
                });
            if let Err(refusal) = checked {
                refused.push((index, refusal));
                continue;
            }
            let id = command.package();
            match *command {
                Command::Run { node, .. } => preview.start(id, node),
                Command::Halt { node, .. } => {
                    let state = preview.table.package_mut(id);
                    state.auto_run = false;
                    for target in state.halt_targets(node) {
                        preview.halt(id, target);
                    }
                }
                Command::Enable { node, .. } | Command::Disable { node, .. } => {
                    let enable = matches!(command, Command::Enable { .. });
                    preview.table.package_mut(id).set_switching(enable, node);
                }
                Command::Maintenance { on, node, .. } => {
                    let state = preview.table.package_mut(id);
                    let running = state.instances.values().any(|s| s.occupies());
                    state.maintenance = on;
                    state.maintenance_node = node.filter(|_| on && !running);
                }
                Command::ResetRestarts { .. } => {}
            }
            // The cluster's placement acts before the next command, as it would while the
            // command waits for its end: a dependent starts once what it needs runs.
            self.settle(&mut preview);
        }
        // No command: the placement alone (cmruncl -t, from a forming cluster's table).
        if commands.is_empty() {
            self.settle(&mut preview);
        }
        Previewed {
            planned: preview.planned,
            refused,
        }
    }

    /// The placement that follows a previewed command, until it settles (each round changes
    /// at least one instance; the bound only guards against one that never settles).
    fn settle(&self, preview: &mut Preview) {
        let rounds = 2 * self.catalog.packages.len() * (self.members + 1) + 2;
        for _ in 0..rounds {
            let decisions = decide(&Inputs {
                catalog: &self.catalog,
                table: &preview.table,
                up: self.up,
                resources_up: &|id, node| resources_up(&self.catalog, &self.resources, id, node),
                preferred: &preview.preferred,
            });
            if decisions.is_empty() {
                return;
            }
            for decision in decisions {
                match decision {
                    Decision::Start { package, node } => {
                        preview.preferred.remove(&package);
                        preview.start(package, node);
                    }
                    Decision::Failback { package, node, to } => {
                        preview.preferred.insert(package, to);
                        preview.halt(package, node);
                    }
                    Decision::DependencyFailed { package, node } => preview.halt(package, node),
                }
            }
        }
    }
}

/// Whether every before_package_start resource and every monitored subnet of `id` is up on
/// `node`, by the settings in `resources`.
fn resources_up(
    catalog: &Catalog,
    resources: &BTreeMap<(NodeId, u16), ResourceValue>,
    id: PackageId,
    node: NodeId,
) -> bool {
    let value = |index: u16| resources.get(&(node, index)).copied();
    let package = catalog.package(id);
    package
        .resources
        .iter()
        .filter(|r| r.evaluation == Evaluation::BeforePackageStart)
        .all(|r| r.health(value(r.index)) == Health::Up)
        && package
            .subnets
            .iter()
            .all(|s| s.health(value(s.index)) == Health::Up)
}

/// cmrunpkg on a node where a subnet the package monitors is down is refused.
fn check_subnets(
    catalog: &Catalog,
    resources: &BTreeMap<(NodeId, u16), ResourceValue>,
    command: &Command,
) -> Result<(), Refusal> {
    let Command::Run { package, node } = *command else {
        return Ok(());
    };
    let down = catalog
        .package(package)
        .subnets
        .iter()
        .find(|s| s.health(resources.get(&(node, s.index)).copied()) == Health::Down);
    match down {
        Some(s) => Err(Refusal::SubnetDown {
            node,
            subnet: s.subnet,
        }),
        None => Ok(()),
    }
}

/// One node's package manager.
#[derive(Debug)]
pub struct Manager {
    me: NodeId,
    /// The time of the latest [`Manager::tick`].
    now: Instant,
    catalog: Arc<Catalog>,
    table: Table,
    locals: BTreeMap<PackageId, Local>,
    /// Orders sent and not yet seen carried out, with when to send them again.
    pending: BTreeMap<(PackageId, NodeId), (Order, Instant, u64)>,
    /// On the package coordinator, packages that failed, with the node they failed on or
    /// were lost with: the next start elsewhere is a failover.
    failed_over: BTreeMap<PackageId, Option<NodeId>>,
    /// Failovers ordered and not yet running: each is told once the package runs on the
    /// adoptive node (from, to).
    failing_over: BTreeMap<PackageId, (Option<NodeId>, NodeId)>,
    /// Each member's reported service restart counts (packages with a restart only).
    restarts: BTreeMap<(PackageId, NodeId), Vec<u32>>,
    /// The generic resources set on each node (this one included), by resource number, and
    /// the monitored subnets' states, numbered after them ([`Catalog::subnet`]).
    resources: BTreeMap<(NodeId, u16), ResourceValue>,
    /// Something changed since the last placement.
    dirty: bool,
    /// How many times the table was touched (whatever set `dirty`): a cheap sign that the
    /// table may have changed, before [`Manager::table_digest`] says whether it did.
    touched: u64,
    /// When placement last ran (it also runs periodically, for resent orders).
    placed_at: Option<Instant>,
    /// Counts this node's instance changes, so the node knows when to tell its peers.
    version: u64,
    /// The membership, and the members whose instances have been reported in it: the
    /// coordinator places nothing before it knows what runs where.
    members: NodeSet,
    reported: NodeSet,
    /// This node's table is not known to be the cluster's: it was not a member of the
    /// membership before, or was one that had not heard every member yet. Every member's
    /// report in one membership makes it known.
    joined: bool,
    /// This node took part in forming the cluster (a start), and has been a member since:
    /// see [`Manager::holds_table`].
    formed: bool,
    /// The version of the switching table: the epoch of the coordinator that last changed
    /// it, and a count. Every node tells its copy; the highest version wins.
    switching_version: (u64, u64),
    /// The coordinator changed its switching table for the nodes that left or failed
    /// ([`Manager::on_membership`]) before every member reported: the change is stamped with
    /// a new version only once it is informed. Stamped at once, it would outrank a newer
    /// copy a member holds (of the membership before: a cmmodpkg the old coordinator made
    /// just before it failed) and lose what that copy holds.
    unstamped: bool,
    /// The nodes gone from the memberships since this node (as coordinator) was last
    /// informed: a member's newer copy of the switching table is adopted, then fixed for
    /// them again as this node's own copy was ([`Manager::refix`]).
    gone: Option<Gone>,
    epoch: u64,
    /// The coordinator's order counter.
    order_serial: u64,
    /// The last order carried out here: (epoch, serial).
    executed: (u64, u64),
    /// This node is halting (cmhaltnode, cmhaltcl): it starts nothing more.
    leaving: bool,
    /// This node halts leaving its packages running (cmhaltnode -d, cmhaltcl -d).
    detaching: bool,
    /// Detached packages of this node whose health check is under way.
    checking: BTreeSet<PackageId>,
    /// Where packages halted for a failback go next.
    failback_to: BTreeMap<PackageId, NodeId>,
    /// No placement before this (see [`Manager::hold`]).
    hold_until: Option<Instant>,
    outputs: Vec<Output>,
}

/// The nodes that left or failed in the memberships a coordinator installed before it was
/// informed, and how ([`Manager::on_membership`]).
#[derive(Debug, Clone, Default)]
struct Gone {
    /// Those that failed (not a clean leave; or came back in a new life).
    failed: NodeSet,
    /// Of them, those last heard ready to leave with their packages detached.
    detached_leavers: NodeSet,
    /// The packages whose active instance was on a node gone: their maintenance mode ends
    /// with that node (in whichever copy of the switching table is adopted).
    vacated: BTreeSet<PackageId>,
}

/// Failing, fail_wait, failed or halt_aborted: the states a failure leads to.
fn failing(state: InstanceState) -> bool {
    matches!(
        state,
        InstanceState::Failing
            | InstanceState::FailWait
            | InstanceState::Failed
            | InstanceState::HaltAborted
    )
}

/// How long the coordinator waits for an order to show in the reports before sending it
/// again.
const ORDER_RESEND: Duration = Duration::from_secs(2);

impl Manager {
    /// A manager for node `me`.
    pub fn new(me: NodeId, catalog: Arc<Catalog>) -> Manager {
        Manager {
            me,
            now: Instant(0),
            table: Table::new(&catalog),
            catalog,
            locals: BTreeMap::new(),
            pending: BTreeMap::new(),
            failed_over: BTreeMap::new(),
            failing_over: BTreeMap::new(),
            restarts: BTreeMap::new(),
            resources: BTreeMap::new(),
            dirty: true,
            touched: 0,
            placed_at: None,
            version: 0,
            members: NodeSet::EMPTY,
            reported: NodeSet::EMPTY,
            joined: true,
            formed: false,
            switching_version: (0, 0),
            unstamped: false,
            gone: None,
            epoch: 0,
            order_serial: 0,
            executed: (0, 0),
            failback_to: BTreeMap::new(),
            leaving: false,
            detaching: false,
            checking: BTreeSet::new(),
            hold_until: None,
            outputs: Vec::new(),
        }
    }

    /// A new configuration generation took effect: the state of every package that stays is
    /// carried over by name, new packages start with their configured switching, deleted
    /// ones (never active: cmapplyconf refuses that) are forgotten. Orders under way are
    /// dropped; placement decides again.
    pub fn reconfigure(&mut self, catalog: Arc<Catalog>) {
        let old = std::mem::replace(&mut self.catalog, catalog);
        let map = |id: PackageId| self.catalog.find(&old.package(id).name);
        let mut table = Table::new(&self.catalog);
        for id in old.ids() {
            if let Some(new) = map(id) {
                let mut state = self.table.package(id).clone();
                // Node switching only for the nodes the package may still run on; nodes
                // added to its list start enabled, as in a new package.
                let (before, after) = (
                    old.package(id).node_set(),
                    self.catalog.package(new).node_set(),
                );
                state.switching = state
                    .switching
                    .intersection(after)
                    .union(after.difference(before));
                state.unlisted = state.unlisted.union(before.difference(after));
                // No package is detached on a node the generation takes off its list (or out
                // of the cluster): cmapplyconf refuses a change while packages are detached,
                // so such a record is a stale copy a node restored from its disk (it had
                // halted before the package was attached again), and would keep the package
                // from starting anywhere.
                state.detached = state.detached.intersection(after);
                // AUTO_RUN follows a changed auto_run.
                if old.package(id).auto_run != self.catalog.package(new).auto_run {
                    state.auto_run = self.catalog.package(new).auto_run;
                }
                *table.package_mut(new) = state;
            }
        }
        self.table = table;
        let mut changed = Vec::new();
        self.locals = std::mem::take(&mut self.locals)
            .into_iter()
            .filter_map(|(id, mut local)| {
                let new = map(id)?;
                let (before, after) = (
                    &old.package(id).services,
                    &self.catalog.package(new).services,
                );
                // Restart counts follow their service by name (one whose service_cmd changed
                // is a new service, as the supervisor replaces it).
                local.restarts = after
                    .iter()
                    .map(|s| {
                        before
                            .iter()
                            .position(|b| b.name == s.name && b.command == s.command)
                            .and_then(|i| local.restarts.get(i).copied())
                            .unwrap_or(0)
                    })
                    .collect();
                if before != after && local.state == InstanceState::Running {
                    changed.push(new);
                }
                Some((new, local))
            })
            .collect();
        self.restarts = std::mem::take(&mut self.restarts)
            .into_iter()
            .filter_map(|((id, node), counts)| Some(((map(id)?, node), counts)))
            .collect();
        let resource_map = |index: u16| match old.resources.get(usize::from(index)) {
            Some(resource) => self.catalog.resource(&resource.name),
            None => self.catalog.subnet(old.subnet_at(index)?),
        };
        self.resources = std::mem::take(&mut self.resources)
            .into_iter()
            .filter_map(|((node, index), value)| Some(((node, resource_map(index)?), value)))
            .collect();
        self.failed_over = std::mem::take(&mut self.failed_over)
            .into_iter()
            .filter_map(|(id, from)| Some((map(id)?, from)))
            .collect();
        self.failing_over = std::mem::take(&mut self.failing_over)
            .into_iter()
            .filter_map(|(id, entry)| Some((map(id)?, entry)))
            .collect();
        self.failback_to = std::mem::take(&mut self.failback_to)
            .into_iter()
            .filter_map(|(id, to)| Some((map(id)?, to)))
            .collect();
        self.checking = std::mem::take(&mut self.checking)
            .into_iter()
            .filter_map(map)
            .collect();
        self.pending.clear();
        self.version += 1;
        self.touch();
        self.show_detached();
        // Running packages whose services changed take the change while they run.
        for id in changed {
            self.set_local(id, Some(InstanceState::Reconfiguring));
            self.outputs
                .push(Output::Action(PackageAction::Reconfigure { package: id }));
        }
        // A running package that now monitors a subnet known to be down here fails (one
        // being reconfigured is checked when that ends).
        let failing: Vec<(PackageId, IpAddr)> = self
            .locals
            .iter()
            .filter(|(_, l)| l.state == InstanceState::Running)
            .filter_map(|(id, _)| Some((*id, self.subnet_down(*id)?)))
            .collect();
        for (id, subnet) in failing {
            self.fail_here(id, FailureCause::Subnet(subnet));
        }
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The cluster-wide table as this node knows it.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Takes what the manager wants done.
    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    /// Whether the table knows what runs where: a member since before this membership with
    /// its table known then, or every member has reported in it.
    pub fn known(&self) -> bool {
        !self.joined || self.members.difference(self.reported).is_empty()
    }

    /// Whether this node's table may stand for the cluster's: it is known, or this node took
    /// part in forming the cluster (each member of a cluster starting holds its own records,
    /// merged as the others' are heard: none is better than another's). A group none of
    /// whose members holds it does not run the cluster on: a package detached on a halted
    /// node is known only from the table. A membership that re-forms a running cluster
    /// therefore always holds a member whose table stands, and one that heard every member
    /// holds it too.
    pub fn holds_table(&self) -> bool {
        self.formed || self.known()
    }

    /// The membership just installed formed the cluster (see [`Manager::holds_table`]).
    pub fn on_formed(&mut self) {
        self.formed = true;
    }

    /// Counts this node's instance changes.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// This node's instances, for its heartbeats.
    pub fn report(&self) -> Vec<(PackageId, InstanceState)> {
        self.locals.iter().map(|(id, l)| (*id, l.state)).collect()
    }

    /// This node's service restart counts, for its heartbeats: the packages where a
    /// service has been restarted.
    pub fn restart_report(&self) -> Vec<(PackageId, Vec<u32>)> {
        self.locals
            .iter()
            .filter(|(_, l)| l.restarts.iter().any(|r| *r > 0))
            .map(|(id, l)| (*id, l.restarts.clone()))
            .collect()
    }

    /// The generic resources set on this node, for its heartbeats.
    pub fn resource_report(&self) -> Vec<(u16, ResourceValue)> {
        self.resources
            .iter()
            .filter(|((node, _), _)| *node == self.me)
            .map(|((_, index), value)| (*index, *value))
            .collect()
    }

    /// What is known of generic resource `index` on `node`.
    pub fn resource(&self, node: NodeId, index: u16) -> Option<ResourceValue> {
        self.resources.get(&(node, index)).copied()
    }

    /// Whether every before_package_start resource and every monitored subnet of `id` is
    /// up on `node`.
    fn resources_up(&self, id: PackageId, node: NodeId) -> bool {
        resources_up(&self.catalog, &self.resources, id, node)
    }

    /// The first monitored subnet of `id` that is down on this node.
    fn subnet_down(&self, id: PackageId) -> Option<IpAddr> {
        self.catalog
            .package(id)
            .subnets
            .iter()
            .find(|s| s.health(self.resource(self.me, s.index)) == Health::Down)
            .map(|s| s.subnet)
    }

    /// What keeps `id` from running on this node: the first of its generic resources that
    /// is down here, else the first of its monitored subnets.
    fn down_here(&self, id: PackageId) -> Option<FailureCause> {
        self.catalog
            .package(id)
            .resources
            .iter()
            .position(|r| r.health(self.resource(self.me, r.index)) == Health::Down)
            .map(FailureCause::GenericResource)
            .or_else(|| self.subnet_down(id).map(FailureCause::Subnet))
    }

    /// Whether `cause` ends a package halted rather than failed: a before_package_start
    /// resource or a monitored subnet going down keeps the package off the node only while
    /// it is down, so node switching stays enabled (serviceguard.md 5.1).
    fn ends_halted(&self, id: PackageId, cause: Option<FailureCause>) -> bool {
        match cause {
            Some(FailureCause::GenericResource(index)) => self
                .catalog
                .package(id)
                .resources
                .get(index)
                .is_some_and(|r| r.evaluation == Evaluation::BeforePackageStart),
            Some(FailureCause::Subnet(_)) => true,
            _ => false,
        }
    }

    /// A running package of this node fails because of `cause` (unless in maintenance
    /// mode, where failures are told, not acted on): the node fails fast with
    /// node_fail_fast_enabled, else the package halts as failed.
    fn fail_here(&mut self, id: PackageId, cause: FailureCause) {
        if self.table.package(id).maintenance {
            return;
        }
        if self.catalog.package(id).node_fail_fast {
            self.outputs.push(Output::FailFast);
        }
        self.halt_local_because(id, HaltReason::Failure, Some(cause));
    }

    /// The subnet monitor's word on monitored subnet `subnet` on this node (its first
    /// state, or a change). Packages running here that monitor it fail when it goes down;
    /// placement keeps packages off a node where one of their subnets is down. A subnet no
    /// package monitors is ignored.
    pub fn set_subnet(&mut self, subnet: IpAddr, state: SubnetState) {
        let Some(index) = self.catalog.subnet(subnet) else {
            return;
        };
        let setting = state.setting();
        let previous = self.resources.insert((self.me, index), setting);
        if previous == Some(setting) {
            return;
        }
        self.version += 1;
        self.touch();
        let (before, after) = (subnet_health(previous), subnet_health(Some(setting)));
        if before == after {
            return;
        }
        self.outputs
            .push(Output::Event(PackageEvent::SubnetChanged {
                subnet,
                before,
                after,
            }));
        if after != Health::Down {
            return;
        }
        let users: Vec<PackageId> = self
            .catalog
            .ids()
            .filter(|id| {
                self.catalog
                    .package(*id)
                    .subnets
                    .iter()
                    .any(|s| s.subnet == subnet && s.health(Some(setting)) == Health::Down)
            })
            .filter(|id| {
                self.locals.get(id).is_some_and(|l| {
                    matches!(
                        l.state,
                        InstanceState::Running | InstanceState::Reconfiguring
                    )
                })
            })
            .collect();
        for id in users {
            self.fail_here(id, FailureCause::Subnet(subnet));
        }
    }

    /// cmsetresource on this node: a simple resource's status or an extended one's value.
    /// A package running here whose resource goes down fails.
    pub fn set_resource(
        &mut self,
        name: &str,
        setting: ResourceValue,
    ) -> Result<(), ResourceError> {
        let index = self
            .catalog
            .resource(name)
            .ok_or_else(|| ResourceError::Unknown(name.to_string()))?;
        let extended = self.catalog.resources[usize::from(index)].extended;
        match setting {
            ResourceValue::Status(_) if extended => {
                return Err(ResourceError::WrongKind {
                    name: name.to_string(),
                    extended,
                })
            }
            ResourceValue::Value(_) if !extended => {
                return Err(ResourceError::WrongKind {
                    name: name.to_string(),
                    extended,
                })
            }
            ResourceValue::Value(value) if !(1..=RESOURCE_VALUE_MAX).contains(&value) => {
                return Err(ResourceError::OutOfRange(value))
            }
            ResourceValue::Absent => return Err(ResourceError::NotAValue),
            _ => {}
        }
        let previous = self.resources.insert((self.me, index), setting);
        if previous == Some(setting) {
            return Ok(());
        }
        self.version += 1;
        self.touch();
        let users: Vec<(PackageId, usize)> = self
            .catalog
            .ids()
            .flat_map(|id| {
                self.catalog
                    .package(id)
                    .resources
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.index == index)
                    .map(move |(i, _)| (id, i))
            })
            .collect();
        for (id, resource) in users {
            let def = &self.catalog.package(id).resources[resource];
            let (before, after) = (def.health(previous), def.health(Some(setting)));
            if before == after {
                continue;
            }
            let value = match setting {
                ResourceValue::Value(value) => Some(value),
                ResourceValue::Status(_) | ResourceValue::Absent => None,
            };
            self.outputs
                .push(Output::Event(PackageEvent::ResourceChanged {
                    package: id,
                    resource,
                    before,
                    after,
                    value,
                }));
            let running = self.locals.get(&id).is_some_and(|l| {
                matches!(
                    l.state,
                    InstanceState::Running | InstanceState::Reconfiguring
                )
            });
            if after == Health::Down && running {
                self.fail_here(id, FailureCause::GenericResource(resource));
            }
        }
        Ok(())
    }

    /// The service restart counts of `id` on `node` as last known (zero when none was
    /// reported).
    pub fn restarts(&self, id: PackageId, node: NodeId) -> Vec<u32> {
        let services = self.catalog.package(id).services.len();
        let known = if node == self.me {
            self.locals.get(&id).map(|l| &l.restarts)
        } else {
            self.restarts.get(&(id, node))
        };
        let mut counts = known.cloned().unwrap_or_default();
        counts.resize(services, 0);
        counts
    }

    /// The switching table, for the coordinator's heartbeats.
    pub fn switching(&self) -> Vec<Switching> {
        self.catalog
            .ids()
            .map(|id| {
                let state = self.table.package(id);
                Switching {
                    package: id,
                    auto_run: state.auto_run,
                    switching: state.switching,
                    maintenance: state.maintenance,
                    maintenance_node: state.maintenance_node,
                    detached: state.detached,
                    failures_noted: state.failures_noted,
                    ran: state.ran,
                }
            })
            .collect()
    }

    /// A member reported its instances.
    pub fn on_report(
        &mut self,
        node: NodeId,
        states: &[(PackageId, InstanceState)],
        executed: (u64, u64),
        restarts: &[(PackageId, Vec<u32>)],
        resources: &[(u16, ResourceValue)],
    ) {
        self.reported.insert(node);
        if node != self.me {
            let old: Vec<((NodeId, u16), ResourceValue)> = self
                .resources
                .iter()
                .filter(|((n, _), _)| *n == node)
                .map(|(k, v)| (*k, *v))
                .collect();
            let new: Vec<((NodeId, u16), ResourceValue)> = resources
                .iter()
                .filter(|(index, _)| usize::from(*index) < self.catalog.settings_len())
                .map(|(index, value)| ((node, *index), *value))
                .collect();
            if old != new {
                self.resources.retain(|(n, _), _| *n != node);
                self.resources.extend(new);
                self.touch();
            }
        }
        self.restarts.retain(|(_, n), _| *n != node);
        for (id, counts) in restarts {
            if id.index() < self.catalog.packages.len() {
                self.restarts.insert((*id, node), counts.clone());
            }
        }
        let coordinator = self.coordinator();
        for id in self.catalog.ids() {
            let reported = states.iter().find(|(p, _)| *p == id).map(|(_, s)| *s);
            let state = self.table.package_mut(id);
            // A member's report is under the generation in effect: what it runs off the
            // list shows as an instance.
            state.unlisted.remove(node);
            let instances = &mut state.instances;
            let previous = match reported {
                Some(state) => instances.insert(node, state),
                None => instances.remove(&node),
            };
            if previous != reported {
                self.touch();
            }
            // A failure that ends halted (a before_package_start resource) is failed over
            // like one that ends failed, and so is a detached package its node does not
            // have any more when it comes back.
            let lost = matches!(
                previous,
                Some(InstanceState::Failing | InstanceState::FailWait | InstanceState::Detached)
            );
            if coordinator && lost && reported.is_none() {
                self.failed_over.insert(id, Some(node));
            }
        }
        // Orders the node has carried out are settled: the report shows their effect.
        let epoch = self.epoch;
        self.pending
            .retain(|(_, to), (_, _, serial)| *to != node || (epoch, *serial) > executed);
        self.forget_superseded_failures();
    }

    /// A failover package that failed here, has run on another node since, and occupies no
    /// other node any more (halted there): the failure is history, and this node's instance
    /// shows it no more, so the package reads halted, not failed, as Serviceguard's cmviewcl
    /// shows it after a later run and halt. While the package runs elsewhere, the failed
    /// instance stays (cmrunpkg reports the failed start it asked for). Node switching to
    /// this node stays disabled until cmmodpkg -e -n enables it. Not an event: nothing
    /// happened on this node.
    fn forget_superseded_failures(&mut self) {
        let me = self.me;
        let mut forgotten = Vec::new();
        for (id, local) in &mut self.locals {
            if local.state != InstanceState::Failed
                || self.catalog.package(*id).kind != PackageType::Failover
            {
                continue;
            }
            let elsewhere = |counts: fn(InstanceState) -> bool| {
                self.table
                    .package(*id)
                    .instances
                    .iter()
                    .any(|(node, state)| *node != me && counts(*state))
            };
            if elsewhere(InstanceState::counts_as_up) {
                local.superseded = true;
            } else if local.superseded && !elsewhere(InstanceState::occupies) {
                forgotten.push(*id);
            }
        }
        for id in forgotten {
            self.locals.remove(&id);
            self.table.package_mut(id).instances.remove(&me);
            self.touch();
            self.version += 1;
        }
    }

    /// The last order from the coordinator this node carried out: (epoch, serial), for its
    /// heartbeats.
    pub fn executed(&self) -> (u64, u64) {
        self.executed
    }

    /// An order of this node to itself is done once its effect shows (it is carried out at
    /// once).
    fn settle_order(&mut self, id: PackageId, node: NodeId, state: Option<InstanceState>) {
        if let Some((order, _, _)) = self.pending.get(&(id, node)) {
            let done = match order {
                Order::Start(_) => state.is_some(),
                Order::Halt(..) => state != Some(InstanceState::Running),
                Order::ResetRestarts(..) => true,
            };
            if done {
                self.pending.remove(&(id, node));
            }
        }
    }

    /// The version of this node's switching table.
    pub fn switching_version(&self) -> (u64, u64) {
        self.switching_version
    }

    /// A member's copy of the switching table arrived: a newer one replaces this node's.
    /// Copies restored from disk (epoch 0: a cluster starting) each know only what their
    /// node persisted: their detached records are merged.
    pub fn on_switching(&mut self, version: (u64, u64), switching: &[Switching]) {
        if version.0 == 0 && self.switching_version.0 == 0 {
            let mut merged = false;
            for entry in switching {
                if let Some(state) = self.table.packages.get_mut(entry.package.index()) {
                    let union = state.detached.union(entry.detached);
                    if union != state.detached {
                        state.detached = union;
                        merged = true;
                    }
                }
            }
            if merged {
                self.switching_version = self.switching_version.max(version);
                self.touch();
                self.show_detached();
            }
        }
        if version <= self.switching_version {
            return;
        }
        self.switching_version = version;
        for entry in switching {
            if entry.package.index() < self.table.packages.len() {
                self.touch();
                let state = self.table.package_mut(entry.package);
                state.auto_run = entry.auto_run;
                state.switching = entry.switching;
                state.maintenance = entry.maintenance;
                state.maintenance_node = entry.maintenance_node;
                state.detached = entry.detached;
                state.failures_noted = entry.failures_noted;
                state.ran = entry.ran;
            }
        }
        self.refix();
        self.show_detached();
        self.after_maintenance();
    }

    /// A coordinator not yet informed adopted a member's newer copy of the switching table:
    /// the fixes it made to its own copy for the nodes gone ([`Manager::on_membership`]) are
    /// made again on this one (detached records of nodes that failed are dropped, and what
    /// they ran is forgotten; the maintenance mode of packages whose node is gone ends), to
    /// be stamped once informed.
    fn refix(&mut self) {
        let Some(gone) = &self.gone else {
            return;
        };
        let members = self.members;
        let mut changed = false;
        for id in self.catalog.ids() {
            let state = self.table.package_mut(id);
            let dropped: Vec<NodeId> = state
                .detached
                .iter()
                .filter(|&n| gone.failed.contains(n) && !gone.detached_leavers.contains(n))
                .collect();
            for node in dropped {
                state.detached.remove(node);
                changed = true;
            }
            let ran = NodeSet(state.ran.0 & !gone.failed.0);
            if ran != state.ran {
                state.ran = ran;
                changed = true;
            }
            let occupied = state.instances.values().any(|s| s.occupies());
            let ended = state.maintenance
                && match state.maintenance_node {
                    // A running package's maintenance, where it ran.
                    None => gone.vacated.contains(&id),
                    // A down package's, for a node gone.
                    Some(n) => (!members.contains(n) || gone.failed.contains(n)) && !occupied,
                };
            if ended {
                state.maintenance = false;
                state.maintenance_node = None;
                changed = true;
            }
        }
        if changed {
            self.unstamped = true;
        }
    }

    /// The switching table changed on this coordinator: stamped with a new version, or,
    /// before every member reported in this membership, once they have (see
    /// the field `unstamped`).
    fn switching_changed(&mut self) {
        if self.informed() {
            self.switching_version = (self.epoch, self.switching_version.1 + 1);
        } else {
            self.unstamped = true;
        }
    }

    /// The services of packages here that exited while in maintenance mode, which has
    /// ended: each exit is taken now as it would have been then (a restart if any is left,
    /// else the package fails), so that a package never runs on without the services it
    /// shows, unwatched.
    fn after_maintenance(&mut self) {
        let table = &self.table;
        let ended: Vec<(PackageId, Vec<usize>)> = self
            .locals
            .iter_mut()
            .filter(|(id, local)| {
                !local.exited_in_maintenance.is_empty()
                    && !table
                        .packages
                        .get(id.index())
                        .is_some_and(|state| state.maintenance)
            })
            .map(|(id, local)| {
                (
                    *id,
                    std::mem::take(&mut local.exited_in_maintenance)
                        .into_iter()
                        .collect(),
                )
            })
            .collect();
        for (id, services) in ended {
            for service in services {
                self.on_service_exit(id, service);
            }
        }
    }

    /// The packages detached somewhere, by name, with the nodes: persisted by every node,
    /// so that a cluster started again (cmruncl -n without those nodes) starts none of them.
    pub fn marks(&self) -> Vec<(String, NodeSet)> {
        self.catalog
            .ids()
            .filter(|id| !self.table.package(*id).detached.is_empty())
            .map(|id| {
                (
                    self.catalog.package(id).name.clone(),
                    self.table.package(id).detached,
                )
            })
            .collect()
    }

    /// Every package's detached nodes, in package order (cheap to compare).
    pub fn detached_sets(&self) -> impl Iterator<Item = NodeSet> + '_ {
        self.table.packages.iter().map(|p| p.detached)
    }

    /// The detached records this node persisted (see [`Manager::marks`]), on a start: its
    /// own packages are known from what it holds; the other nodes' show as detached there.
    pub fn restore_marks(&mut self, marks: &[(String, NodeSet)]) {
        let mut restored = false;
        for (name, nodes) in marks {
            let Some(id) = self.catalog.find(name) else {
                continue;
            };
            let mut nodes = *nodes;
            nodes.remove(self.me);
            nodes = nodes.intersection(self.catalog.package(id).node_set());
            if !nodes.is_empty() {
                self.table.package_mut(id).detached = nodes;
                restored = true;
            }
        }
        if restored {
            // Newer than a table never changed, older than any change of a running cluster.
            self.switching_version = self.switching_version.max((0, 1));
            self.show_detached();
        }
    }

    /// Shows every package detached on a node outside the membership as a detached instance
    /// there (it occupies the node); drops those no longer detached.
    fn show_detached(&mut self) {
        let members = self.members;
        let me = self.me;
        for state in &mut self.table.packages {
            let detached = state.detached;
            // This node's own instances are its own to say (one it adopted as detached at
            // start holds, member or not: a new configuration applied before it joins must
            // not drop it).
            state.instances.retain(|node, s| {
                *s != InstanceState::Detached
                    || *node == me
                    || members.contains(*node)
                    || detached.contains(*node)
            });
            for node in detached.iter() {
                if !members.contains(node) {
                    state.instances.insert(node, InstanceState::Detached);
                }
            }
        }
    }

    /// A membership was installed: instances of nodes that failed (left, or came back in a
    /// new life) are awaited until those nodes are fenced; orders to them are dropped.
    /// `detached_leavers`: nodes last heard ready to leave with their packages detached.
    pub fn on_membership(
        &mut self,
        epoch: u64,
        members: NodeSet,
        failed: NodeSet,
        detached_leavers: NodeSet,
    ) {
        self.touch();
        if members.lowest() != Some(self.me) {
            // Failovers are the package coordinator's to tell.
            self.failed_over.clear();
            self.failing_over.clear();
            self.gone = None;
            self.unstamped = false;
        } else {
            let gone = self.gone.get_or_insert_with(Gone::default);
            gone.failed = gone.failed.union(failed);
            gone.detached_leavers = gone.detached_leavers.union(detached_leavers);
        }
        // Failed lives this node was never a member with ran by package lists it may never
        // have had (a generation that took effect before it joined, started from its files
        // since): they may run any package.
        let unseen = failed.difference(self.members);
        self.epoch = epoch;
        self.joined = !self.members.contains(self.me) || !self.known();
        self.members = members;
        self.reported = NodeSet::EMPTY;
        self.reported.insert(self.me);
        for id in self.catalog.ids() {
            let state = self.table.package_mut(id);
            let gone: Vec<NodeId> = state
                .instances
                .keys()
                .copied()
                .filter(|n| !members.contains(*n) || failed.contains(*n))
                .collect();
            for node in gone {
                let coordinator = members.lowest() == Some(self.me);
                if state.detached.contains(node) {
                    let instance = state.instances.get(&node).copied();
                    let running = matches!(
                        instance,
                        Some(InstanceState::Running | InstanceState::Detached)
                    );
                    // Only the coordinator drops a record of the replicated table: a member
                    // that takes the node as failed may have missed the commit that let it
                    // leave detached, and its copy may yet serve a later coordinator.
                    let left = !failed.contains(node) || detached_leavers.contains(node);
                    if running && (left || !coordinator) {
                        // It left with the package running, detached: it runs on,
                        // unmonitored, until the node re-attaches it.
                        state.instances.insert(node, InstanceState::Detached);
                        continue;
                    }
                    // It failed before it left (or the package stopped running there): no
                    // detach; what it ran is taken over once it is fenced.
                    state.detached.remove(node);
                    if coordinator {
                        self.unstamped = true;
                    }
                }
                let occupied = state
                    .instances
                    .remove(&node)
                    .is_some_and(InstanceState::occupies);
                if occupied && failed.contains(node) {
                    // Whatever its list says now, it ran there.
                    state.awaiting_fence.insert(node);
                }
                if occupied && coordinator {
                    self.failed_over.insert(id, Some(node));
                    if let Some(gone) = &mut self.gone {
                        gone.vacated.insert(id);
                    }
                    // Maintenance mode ends when its node halts or fails.
                    if state.maintenance {
                        state.maintenance = false;
                        state.maintenance_node = None;
                        self.unstamped = true;
                    }
                }
            }
            // The maintenance mode of a package that is down, for a node that left, ends too.
            let coordinator = members.lowest() == Some(self.me);
            if coordinator
                && state
                    .maintenance_node
                    .is_some_and(|n| !members.contains(n) || failed.contains(n))
                && !state.instances.values().any(|s| s.occupies())
            {
                state.maintenance = false;
                state.maintenance_node = None;
                self.unstamped = true;
            }
            // What a failed node ran is not surely known (its last report may be old, an
            // order may have reached it since): every package that may run there waits for
            // its fence.
            let listed = self.catalog.package(id).node_set().union(state.unlisted);
            let may_run_there = listed.union(unseen).intersection(failed);
            state.awaiting_fence = state.awaiting_fence.union(may_run_there);
            // A failed node's new life (a member again in this same membership) has run
            // nothing yet: what it ran is forgotten as for a node that left.
            let ran = NodeSet(state.ran.0 & !failed.0);
            if ran != state.ran {
                state.ran = ran;
                if members.lowest() == Some(self.me) {
                    self.unstamped = true;
                }
            }
        }
        self.show_detached();
        // Orders of an earlier membership are not sent again: what runs where is learnt
        // anew from the members' reports, and placement decides again from that.
        self.pending.clear();
        self.restarts
            .retain(|(_, node), _| members.contains(*node) && !failed.contains(*node));
        let me = self.me;
        self.resources.retain(|(node, _), _| {
            *node == me || (members.contains(*node) && !failed.contains(*node))
        });
    }

    /// Places nothing as coordinator before `until` (this node joined without knowing which
    /// failed lives the group still awaits).
    pub fn hold(&mut self, until: Instant) {
        self.hold_until = Some(self.hold_until.map_or(until, |h| h.max(until)));
    }

    /// Checks a package command against this node's table (`up`: the running members).
    pub fn check_command(&self, up: NodeSet, command: &Command) -> Result<(), Refusal> {
        super::admin::check(&self.catalog, &self.table, up, command)?;
        self.check_subnets(command)
    }

    /// cmrunpkg -n is refused on a node where a monitored subnet of the package is down
    /// (as this node knows it: its own monitor, the others' heartbeats).
    fn check_subnets(&self, command: &Command) -> Result<(), Refusal> {
        check_subnets(&self.catalog, &self.resources, command)
    }

    /// Whether every member of the membership has reported to this node since it formed.
    pub fn informed(&self) -> bool {
        self.members.difference(self.reported).is_empty()
    }

    /// Carries out a package command on the coordinator (checked again here: the table may
    /// have moved on since the node it was given on checked it).
    pub fn apply_command(
        &mut self,
        now: Instant,
        up: NodeSet,
        command: &Command,
    ) -> Result<(), Refusal> {
        // A coordinator new to a membership acts on the table only once every member has
        // reported (with its copy of the switching table, which may be newer than this
        // node's: detached records, for one).
        if !self.informed() {
            return Err(Refusal::Reforming);
        }
        super::admin::check(&self.catalog, &self.planning_table(), up, command)?;
        self.check_subnets(command)?;
        if matches!(command, Command::Run { .. }) && self.hold_until.is_some_and(|h| now < h) {
            return Err(Refusal::AwaitingFence {
                nodes: NodeSet::EMPTY,
            });
        }
        let id = command.package();
        let before = {
            let state = self.table.package(id);
            (state.auto_run, state.switching)
        };
        let mut switching_changed = false;
        if matches!(command, Command::Run { .. } | Command::Halt { .. }) {
            // What an operator starts or halts is no failover.
            self.failed_over.remove(&id);
            self.failing_over.remove(&id);
        }
        match *command {
            Command::Run { node, .. } => self.issue(now, id, node, Order::Start(id)),
            Command::Halt { node, .. } => {
                let state = self.table.package_mut(id);
                state.auto_run = false;
                switching_changed = true;
                let targets = state.halt_targets(node);
                let detached_at = state.detached;
                for target in targets {
                    let detached = detached_at.contains(target) && !self.members.contains(target);
                    if detached {
                        self.outputs.push(Output::HaltDetached {
                            to: target,
                            package: id,
                        });
                    } else {
                        self.issue(now, id, target, Order::Halt(id, HaltReason::Command));
                    }
                }
            }
            Command::ResetRestarts { service, .. } => {
                // Not where it is detached: nothing monitors it there.
                let targets = self
                    .table
                    .package(id)
                    .nodes_where(|s| s.occupies() && s != InstanceState::Detached);
                for target in targets.iter() {
                    self.issue(now, id, target, Order::ResetRestarts(id, service));
                }
            }
            Command::Maintenance { on, node, .. } => {
                let state = self.table.package_mut(id);
                let running = state.instances.values().any(|s| s.occupies());
                state.maintenance = on;
                // A running package's maintenance is where it runs; a down one's, the node
                // named.
                state.maintenance_node = node.filter(|_| on && !running);
                switching_changed = true;
            }
            Command::Enable { node, .. } | Command::Disable { node, .. } => {
                let enable = matches!(command, Command::Enable { .. });
                self.table.package_mut(id).set_switching(enable, node);
                switching_changed = true;
            }
        }
        let state = self.table.package(id);
        let after = (state.auto_run, state.switching);
        if switching_changed {
            self.switching_version = (self.epoch, self.switching_version.1 + 1);
        }
        if switching_changed && after != before {
            self.outputs
                .push(Output::Event(PackageEvent::SwitchingChanged {
                    package: id,
                    before,
                    auto_run: after.0,
                    switching: after.1,
                }));
        }
        self.touch();
        self.after_maintenance();
        Ok(())
    }

    /// What a preview at `now` with the members `up` needs of this manager, copied: the
    /// preview itself ([`PreviewBasis::preview`]) may then run on another thread.
    pub fn preview_basis(&self, now: Instant, up: NodeSet) -> PreviewBasis {
        PreviewBasis {
            catalog: self.catalog.clone(),
            table: self.planning_table(),
            preferred: self.failback_to.clone(),
            resources: self.resources.clone(),
            held: self.hold_until.is_some_and(|h| now < h),
            members: self.members.iter().count(),
            up,
        }
    }

    /// What a preview of cmruncl on the nodes `up` needs (cmruncl -t on a node in no
    /// running cluster): the packages as a cluster forming now would take them, every one
    /// with its configured AUTO_RUN and node switching, none running but those detached
    /// (cmhaltcl -d), which the forming cluster takes over where they run; the generic
    /// resources and subnets as this node knows them. [`PreviewBasis::preview`] with no
    /// command then gives the starts of the cluster's placement.
    pub fn formation_basis(&self, up: NodeSet) -> PreviewBasis {
        let mut table = Table::new(&self.catalog);
        for id in self.catalog.ids() {
            let now = self.table.package(id);
            let state = table.package_mut(id);
            state.detached = now.detached;
            for node in now.detached.iter() {
                state.instances.insert(node, InstanceState::Detached);
            }
        }
        PreviewBasis {
            catalog: self.catalog.clone(),
            table,
            preferred: BTreeMap::new(),
            resources: self.resources.clone(),
            held: false,
            members: up.iter().count(),
            up,
        }
    }

    /// How many times the table was touched: unchanged, so is [`Manager::table_digest`].
    pub fn touched(&self) -> u64 {
        self.touched
    }

    /// Something changed (or may have): placement runs again, and readers of the table's
    /// changes look again.
    fn touch(&mut self) {
        self.dirty = true;
        self.touched += 1;
    }

    /// A digest of what the package table shows of every package (where its instances are
    /// and in which state, its switching, maintenance and detached nodes): it differs as
    /// soon as any of that changes, so that a reader waiting for a change of the cluster's
    /// packages hears of each at once (the daemon's `StatusChange`).
    pub fn table_digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for state in &self.table.packages {
            for (node, instance) in &state.instances {
                (node.0, *instance).hash(&mut hasher);
            }
            (
                state.auto_run,
                state.switching.0,
                state.maintenance,
                state.detached.0,
            )
                .hash(&mut hasher);
        }
        hasher.finish()
    }

    /// The table with the orders on their way counted as starting: nothing is placed twice.
    pub fn planning_table(&self) -> Table {
        let mut table = self.table.clone();
        for ((package, node), (order, _, _)) in &self.pending {
            if matches!(order, Order::Start(_)) {
                let instances = &mut table.package_mut(*package).instances;
                // A start on its way replaces a failed instance there (cmrunpkg after a
                // failure) but not a live one.
                if instances.get(node).is_none_or(|s| !s.occupies()) {
                    instances.insert(*node, InstanceState::Starting);
                }
            }
        }
        table
    }

    /// A failed node is certainly reset: its packages may start elsewhere.
    pub fn on_takeover_allowed(&mut self, node: NodeId) {
        self.on_back(node);
        for state in &mut self.table.packages {
            state.unlisted.remove(node);
        }
    }

    /// A life taken as failed is a member again, in the same life (it had missed a commit):
    /// nothing waits for its fence; what it runs is known again from its next report (until
    /// then, a list's change it may not run by still counts: see
    /// [`super::table::PackageState::unlisted`]).
    pub fn on_back(&mut self, node: NodeId) {
        self.touch();
        for state in &mut self.table.packages {
            state.awaiting_fence.remove(node);
        }
    }

    /// This node halts (cmhaltnode -f, cmhaltcl -f): its packages halt (AUTO_RUN stays as
    /// it is, so failover packages start where they can), halt_aborted ones are halted again,
    /// and nothing more starts here.
    pub fn leave(&mut self) {
        self.leaving = true;
        // A detach under way turns into a halt (cmhaltcl -f given meanwhile).
        self.detaching = false;
        self.halt_for_leave();
    }

    /// This node halts leaving its packages running (cmhaltnode -d, cmhaltcl -d): nothing
    /// more starts here, nothing halts.
    pub fn detach(&mut self) {
        self.leaving = true;
        self.detaching = true;
    }

    /// Halted leaving their packages running (cmhaltnode -d, cmhaltcl -d): what runs on
    /// `nodes` is shown detached, as it is (it runs on, unmonitored, until re-attached),
    /// here and in this node's copy of the table.
    pub fn show_left_detached(&mut self, nodes: NodeSet) {
        for state in &mut self.table.packages {
            for (node, instance) in &mut state.instances {
                if nodes.contains(*node) && instance.occupies() {
                    *instance = InstanceState::Detached;
                    state.detached.insert(*node);
                }
            }
        }
        if nodes.contains(self.me) {
            for local in self.locals.values_mut() {
                if local.state.occupies() {
                    local.state = InstanceState::Detached;
                }
            }
        }
        self.touch();
    }

    /// The packages this node holds, by name, in the states `keep` accepts (what it
    /// persists as detached).
    pub fn held(&self, keep: impl Fn(InstanceState) -> bool) -> Vec<String> {
        self.locals
            .iter()
            .filter(|(_, l)| keep(l.state))
            .map(|(id, _)| self.catalog.package(*id).name.clone())
            .collect()
    }

    /// The packages this node left detached when it last halted, by name: they run on, and
    /// are held here as detached until [`Manager::reattach`] checks them.
    pub fn adopt_detached(&mut self, names: &[String]) {
        for name in names {
            let Some(id) = self.catalog.find(name) else {
                continue;
            };
            let services = self.catalog.package(id).services.len();
            self.locals.insert(
                id,
                Local {
                    state: InstanceState::Detached,
                    halt_reason: HaltReason::Command,
                    cause: None,
                    restarts: vec![0; services],
                    deferred: None,
                    superseded: false,
                    fail_wait_until: None,
                    exited_in_maintenance: BTreeSet::new(),
                },
            );
            self.table
                .package_mut(id)
                .instances
                .insert(self.me, InstanceState::Detached);
        }
        if !names.is_empty() {
            self.version += 1;
        }
    }

    /// Re-attaches the detached packages of this node (it runs in the cluster again): each
    /// one's health is checked ([`PackageAction::Check`]).
    pub fn reattach(&mut self) {
        let detached: Vec<PackageId> = self
            .locals
            .iter()
            .filter(|(id, l)| l.state == InstanceState::Detached && !self.checking.contains(id))
            .map(|(id, _)| *id)
            .collect();
        for id in detached {
            self.checking.insert(id);
            self.outputs
                .push(Output::Action(PackageAction::Check { package: id }));
        }
    }

    /// cmhaltpkg of a package this node left detached, asked by the package coordinator
    /// while this node is not a member: its halt script runs here. False when this node
    /// does not hold it.
    pub fn halt_detached(&mut self, id: PackageId) -> bool {
        if !self.locals.contains_key(&id) {
            return false;
        }
        self.checking.remove(&id);
        self.halt_local(id, HaltReason::Command);
        true
    }

    /// Whether this node holds package `id`.
    pub fn holds(&self, id: PackageId) -> bool {
        self.locals.contains_key(&id)
    }

    /// Node `node`, outside the membership, halted package `id` it had detached (or does
    /// not hold it): on the coordinator, it is detached there no more.
    pub fn on_detached_halted(&mut self, node: NodeId, id: PackageId) {
        if !self.coordinator() || self.members.contains(node) {
            return;
        }
        let state = self.table.package_mut(id);
        if !state.detached.contains(node) {
            return;
        }
        state.detached.remove(node);
        if state.instances.get(&node) == Some(&InstanceState::Detached) {
            state.instances.remove(&node);
        }
        self.switching_changed();
        self.touch();
    }

    /// The health check of a detached package ended: alive, it is monitored again
    /// (running); dead, it fails here (its halt script cleans up) and fails over.
    pub fn on_check(&mut self, id: PackageId, alive: bool) {
        if !self.checking.remove(&id) {
            return;
        }
        if self.locals.get(&id).map(|l| l.state) != Some(InstanceState::Detached) {
            return;
        }
        if alive {
            self.set_local(id, Some(InstanceState::Running));
            if self.leaving && !self.detaching {
                // In dependency order, like the rest of the node's packages.
                self.halt_for_leave();
            }
        } else {
            self.halt_local_because(
                id,
                HaltReason::Failure,
                Some(FailureCause::DiedWhileDetached),
            );
        }
    }

    /// Halts, for a node that leaves, every package here that no other package here
    /// depends on; the others halt as their dependents finish (halt ordering).
    fn halt_for_leave(&mut self) {
        let ids: Vec<PackageId> = self.locals.keys().copied().collect();
        for id in ids {
            let needed = self.locals.iter().any(|(other, local)| {
                *other != id
                    && local.state.occupies()
                    && self.catalog.package(*other).dependencies.iter().any(|d| {
                        d.package == id
                            && d.condition == DependencyCondition::Up
                            && d.location == DependencyLocation::SameNode
                    })
            });
            if !needed {
                self.halt_local(id, HaltReason::Command);
            }
        }
    }

    /// An order of the coordinator; `quorate` says whether this node may act.
    /// An order from the coordinator, numbered `serial` in membership `epoch`: carried out
    /// once, in order; older or repeated orders are dropped.
    pub fn on_remote_order(&mut self, epoch: u64, serial: u64, order: Order, quorate: bool) {
        if (epoch, serial) <= self.executed {
            return;
        }
        self.executed = (epoch, serial);
        self.on_order(order, quorate);
    }

    /// An order of this node's own coordinator role.
    pub fn on_order(&mut self, order: Order, quorate: bool) {
        match order {
            Order::Start(id) => {
                if quorate && !self.leaving && id.index() < self.catalog.packages.len() {
                    self.start_local(id);
                }
            }
            Order::Halt(id, reason) => self.halt_local(id, reason),
            Order::ResetRestarts(id, service) => {
                if let Some(slot) = self
                    .locals
                    .get_mut(&id)
                    .and_then(|l| l.restarts.get_mut(usize::from(service)))
                {
                    *slot = 0;
                    // Peers learn it from the next heartbeats.
                    self.version += 1;
                }
                // Done at once: an order of this node to itself is settled here.
                if matches!(
                    self.pending.get(&(id, self.me)),
                    Some((Order::ResetRestarts(..), _, _))
                ) {
                    self.pending.remove(&(id, self.me));
                }
            }
        }
    }

    fn start_local(&mut self, id: PackageId) {
        if self
            .locals
            .get(&id)
            .is_some_and(|l| l.state != InstanceState::Failed)
        {
            return;
        }
        let services = self.catalog.package(id).services.len();
        let before = self.locals.get(&id).map(|l| l.state);
        self.locals.insert(
            id,
            Local {
                state: InstanceState::Starting,
                halt_reason: HaltReason::Command,
                cause: None,
                restarts: vec![0; services],
                deferred: None,
                superseded: false,
                fail_wait_until: None,
                exited_in_maintenance: BTreeSet::new(),
            },
        );
        self.changed(id, before, Some(InstanceState::Starting), None);
        self.outputs
            .push(Output::Action(PackageAction::Run { package: id }));
    }

    fn halt_local(&mut self, id: PackageId, reason: HaltReason) {
        self.halt_local_because(id, reason, None);
    }

    fn halt_local_because(
        &mut self,
        id: PackageId,
        reason: HaltReason,
        cause: Option<FailureCause>,
    ) {
        // A failure waits for the packages that depend on it here to halt first (fail_wait),
        // at most successor_halt_timeout (zero: it does not wait; their halt goes on beside
        // its own).
        let dependents = match reason {
            HaltReason::Failure | HaltReason::DependencyFailed => self.local_dependents(id),
            HaltReason::Command | HaltReason::Failback => Vec::new(),
        };
        let wait = self.catalog.package(id).successor_halt_timeout;
        let waits = !dependents.is_empty() && wait != Some(Duration::ZERO);
        let now = self.now;
        let Some(local) = self.locals.get_mut(&id) else {
            return;
        };
        // A package that starts or is reconfigured halts once that ends (a failed start is
        // cleaned up at once, below).
        let starting = local.state == InstanceState::Starting && reason != HaltReason::Failure;
        let reconfiguring =
            local.state == InstanceState::Reconfiguring && reason != HaltReason::Failure;
        if starting || reconfiguring {
            if local.deferred.is_none() || reason != HaltReason::Command {
                local.deferred = Some((reason, cause));
            }
            return;
        }
        // A halt_aborted package is halted again on command (serviceguard.md 6.4); a start
        // that failed is cleaned up by the halt script.
        let again = local.state == InstanceState::HaltAborted && reason == HaltReason::Command;
        let failed_start = matches!(
            local.state,
            InstanceState::Starting | InstanceState::Detached | InstanceState::Reconfiguring
        ) && reason == HaltReason::Failure;
        // cmhaltpkg of a detached package, on a node that has not re-attached it.
        let detached = local.state == InstanceState::Detached && reason == HaltReason::Command;
        if local.state != InstanceState::Running && !again && !failed_start && !detached {
            return;
        }
        let before = local.state;
        local.fail_wait_until = wait.filter(|_| waits).map(|w| now + w);
        local.state = match reason {
            HaltReason::Failure | HaltReason::DependencyFailed if waits => InstanceState::FailWait,
            HaltReason::Failure | HaltReason::DependencyFailed => InstanceState::Failing,
            HaltReason::Command | HaltReason::Failback => InstanceState::Halting,
        };
        local.halt_reason = reason;
        local.cause = match reason {
            HaltReason::Failure => cause.or(Some(FailureCause::Ordered)),
            HaltReason::DependencyFailed => Some(FailureCause::Dependency),
            _ => None,
        };
        let after = local.state;
        let why = Some((local.halt_reason, local.cause));
        self.changed(id, Some(before), Some(after), why);
        for dependent in dependents {
            self.halt_local_because(dependent, HaltReason::DependencyFailed, None);
        }
        if after == InstanceState::FailWait {
            return;
        }
        self.outputs
            .push(Output::Action(PackageAction::Halt { package: id }));
    }

    /// Time passed: a package in fail_wait past its successor_halt_timeout halts now.
    pub fn tick(&mut self, now: Instant) {
        self.now = now;
        let expired = self.locals.values().any(|l| {
            l.state == InstanceState::FailWait && l.fail_wait_until.is_some_and(|u| now >= u)
        });
        if expired {
            self.release_fail_waits();
        }
    }

    /// The earliest end of a successor_halt_timeout being waited out here.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.locals
            .values()
            .filter(|l| l.state == InstanceState::FailWait)
            .filter_map(|l| l.fail_wait_until)
            .min()
    }

    /// Carries out a halt asked for while package `id` started or was reconfigured.
    fn run_deferred(&mut self, id: PackageId) {
        let deferred = self.locals.get_mut(&id).and_then(|l| l.deferred.take());
        if let Some((reason, cause)) = deferred {
            self.halt_local_because(id, reason, cause);
        }
    }

    /// The packages on this node that depend on `id` here (same_node, `= up`) and run,
    /// start, or halt: a failing `id` waits for them (fail_wait).
    fn local_dependents(&self, id: PackageId) -> Vec<PackageId> {
        self.locals
            .iter()
            .filter(|(other, local)| {
                **other != id
                    && matches!(
                        local.state,
                        InstanceState::Running
                            | InstanceState::Starting
                            | InstanceState::Reconfiguring
                            | InstanceState::Halting
                            | InstanceState::Failing
                            | InstanceState::FailWait
                    )
                    && self.catalog.package(**other).dependencies.iter().any(|d| {
                        d.package == id
                            && d.condition == DependencyCondition::Up
                            && d.location == DependencyLocation::SameNode
                    })
            })
            .map(|(other, _)| *other)
            .collect()
    }

    /// Packages in fail_wait whose dependents here are down, or whose successor_halt_timeout
    /// is over: their halt script runs now.
    fn release_fail_waits(&mut self) {
        let now = self.now;
        let ready: Vec<PackageId> = self
            .locals
            .iter()
            .filter(|(_, l)| l.state == InstanceState::FailWait)
            .filter(|(id, l)| {
                l.fail_wait_until.is_some_and(|u| now >= u)
                    || self.local_dependents(**id).is_empty()
            })
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            let Some(local) = self.locals.get_mut(&id) else {
                continue;
            };
            local.state = InstanceState::Failing;
            let why = Some((local.halt_reason, local.cause));
            self.changed(
                id,
                Some(InstanceState::FailWait),
                Some(InstanceState::Failing),
                why,
            );
            self.outputs
                .push(Output::Action(PackageAction::Halt { package: id }));
        }
    }

    /// A script of package `id` ended.
    pub fn on_script(&mut self, id: PackageId, script: Script, outcome: ScriptOutcome) {
        let Some(local) = self.locals.get(&id) else {
            return;
        };
        let before = local.state;
        let fail_fast = self.catalog.package(id).node_fail_fast;
        match (script, before, outcome) {
            (Script::Run, InstanceState::Starting, outcome) => {
                // A generic resource or monitored subnet that went down while the package
                // started fails the start like the run script's failure.
                let failure = match outcome {
                    ScriptOutcome::Succeeded => self.down_here(id),
                    other => Some(FailureCause::RunScript(other)),
                };
                match failure {
                    None => {
                        self.set_local(id, Some(InstanceState::Running));
                        self.run_deferred(id);
                        if self.leaving && !self.detaching {
                            // It started while the node began to halt.
                            self.halt_local(id, HaltReason::Command);
                        }
                    }
                    Some(cause) => {
                        if fail_fast {
                            self.outputs.push(Output::FailFast);
                        }
                        // The halt script cleans up after a failed start.
                        self.halt_local_because(id, HaltReason::Failure, Some(cause));
                    }
                }
            }
            (
                Script::Halt,
                InstanceState::Halting | InstanceState::Failing,
                ScriptOutcome::Succeeded,
            ) => {
                // A failure ends failed (node switching is then disabled), except a
                // before_package_start resource or a monitored subnet going down: the
                // package only may not run here while it is down (serviceguard.md 5.1).
                let failed = self.locals.get(&id).is_some_and(|l| {
                    l.halt_reason == HaltReason::Failure && !self.ends_halted(id, l.cause)
                });
                self.set_local(id, failed.then_some(InstanceState::Failed));
                if self.leaving && !self.detaching {
                    // The packages it depended on may halt now.
                    self.halt_for_leave();
                }
            }
            (Script::Reconfigure, InstanceState::Reconfiguring, ScriptOutcome::Succeeded) => {
                match self.down_here(id) {
                    None => {
                        self.set_local(id, Some(InstanceState::Running));
                        self.run_deferred(id);
                        if self.leaving && !self.detaching {
                            self.halt_for_leave();
                        }
                    }
                    Some(cause) => {
                        if fail_fast {
                            self.outputs.push(Output::FailFast);
                        }
                        self.halt_local_because(id, HaltReason::Failure, Some(cause));
                    }
                }
            }
            (Script::Reconfigure, InstanceState::Reconfiguring, outcome) => {
                if fail_fast {
                    self.outputs.push(Output::FailFast);
                }
                self.halt_local_because(
                    id,
                    HaltReason::Failure,
                    Some(FailureCause::Reconfigure(outcome)),
                );
            }
            (Script::Halt, InstanceState::Halting | InstanceState::Failing, _) => {
                if fail_fast && outcome == ScriptOutcome::TimedOut {
                    self.outputs.push(Output::FailFast);
                }
                if let Some(local) = self.locals.get_mut(&id) {
                    // The halt script's failure is what is reported; a failure that
                    // caused the halt stays the cause.
                    local.cause = local.cause.or(Some(FailureCause::HaltScript(outcome)));
                    if local.halt_reason != HaltReason::Failure {
                        local.cause = Some(FailureCause::HaltScript(outcome));
                    }
                }
                self.set_local(id, Some(InstanceState::HaltAborted));
            }
            _ => {}
        }
        self.release_fail_waits();
    }

    /// Service `service` of package `id` exited.
    pub fn on_service_exit(&mut self, id: PackageId, service: usize) {
        let Some(local) = self.locals.get_mut(&id) else {
            return;
        };
        let Some(definition) = self.catalog.package(id).services.get(service) else {
            return;
        };
        // Monitored while it runs, also while a change is applied to it.
        if !matches!(
            local.state,
            InstanceState::Running | InstanceState::Reconfiguring
        ) {
            return;
        }
        let done = local.restarts.get(service).copied().unwrap_or(0);
        if self.table.package(id).maintenance {
            // Maintenance mode: told, not acted on (no restart, no failover, no reset), and
            // remembered: as maintenance ends, the service's failure is taken then.
            local.exited_in_maintenance.insert(service);
            self.outputs
                .push(Output::Event(PackageEvent::ServiceFailed {
                    package: id,
                    service,
                    restarts: done,
                }));
            return;
        }
        self.outputs
            .push(Output::Event(PackageEvent::ServiceFailed {
                package: id,
                service,
                restarts: done,
            }));
        let may_restart = match definition.restart {
            ServiceRestart::None => false,
            ServiceRestart::Unlimited => true,
            ServiceRestart::Times(times) => done < times,
        };
        if may_restart {
            let restarts = done + 1;
            if let Some(slot) = local.restarts.get_mut(service) {
                *slot = restarts;
            }
            // Peers learn the count from the next heartbeats.
            self.version += 1;
            self.outputs
                .push(Output::Action(PackageAction::RestartService {
                    package: id,
                    service,
                    restarts,
                }));
            self.outputs
                .push(Output::Event(PackageEvent::ServiceRestarted {
                    package: id,
                    service,
                    restarts,
                }));
        } else if definition.fail_fast {
            self.outputs.push(Output::FailFast);
        } else {
            self.halt_local_because(
                id,
                HaltReason::Failure,
                Some(FailureCause::Service(service)),
            );
        }
    }

    fn set_local(&mut self, id: PackageId, state: Option<InstanceState>) {
        let before = self.locals.get(&id).map(|l| l.state);
        // What the instance halted for and why it failed, before it is forgotten.
        let why = self.locals.get(&id).map(|l| (l.halt_reason, l.cause));
        match state {
            Some(state) => {
                if let Some(local) = self.locals.get_mut(&id) {
                    local.state = state;
                }
            }
            None => {
                self.locals.remove(&id);
            }
        }
        self.changed(id, before, state, why);
    }

    /// Records an instance change of this node; `why` is the instance's halt reason and
    /// failure cause, reported with halts and failures.
    fn changed(
        &mut self,
        id: PackageId,
        before: Option<InstanceState>,
        after: Option<InstanceState>,
        why: Option<(HaltReason, Option<FailureCause>)>,
    ) {
        let me = self.me;
        self.touch();
        self.version += 1;
        self.settle_order(id, me, after);
        if self.coordinator() && before == Some(InstanceState::Failing) && after.is_none() {
            self.failed_over.insert(id, Some(me));
        }
        match after {
            Some(state) => {
                self.table.package_mut(id).instances.insert(me, state);
            }
            None => {
                self.table.package_mut(id).instances.remove(&me);
            }
        }
        if before != after {
            let halting =
                matches!(after, None | Some(InstanceState::Halting)) || after.is_some_and(failing);
            let reason = why.filter(|_| halting).map(|(reason, _)| reason);
            let cause = why
                .filter(|_| {
                    halting
                        && matches!(
                            reason,
                            Some(HaltReason::Failure | HaltReason::DependencyFailed)
                        )
                        || after.is_some_and(failing)
                })
                .and_then(|(_, cause)| cause);
            self.outputs.push(Output::Event(PackageEvent::StateChanged {
                package: id,
                node: me,
                before,
                after,
                reason,
                cause,
            }));
        }
    }

    /// The coordinator's work: failures disable node switching, then placement. Runs only
    /// on the coordinator while it is quorate; `up` is the membership.
    /// `detaching`: the members halting with cmhaltnode -d, whose running packages are
    /// recorded as detached there.
    pub fn coordinate(&mut self, now: Instant, up: NodeSet, detaching: NodeSet) {
        let informed = self.members.difference(self.reported).is_empty();
        if informed {
            // Every member's copy of the switching table has been heard (and the newest
            // adopted): what this coordinator changed meanwhile now outranks them all.
            self.gone = None;
            if std::mem::take(&mut self.unstamped) {
                self.switching_version = (self.epoch, self.switching_version.1 + 1);
            }
        }
        if self.hold_until.is_some_and(|until| now < until) {
            return;
        }
        let periodic = self.placed_at.is_none_or(|at| now >= at + ORDER_RESEND / 2);
        if !informed || (!self.dirty && !periodic) {
            return;
        }
        self.dirty = false;
        self.placed_at = Some(now);
        self.record_detachments(detaching);
        self.tell_failovers();
        self.disable_failed_nodes();
        self.note_ran();
        self.resend(now);
        let table = self.planning_table();
        let decisions = decide(&Inputs {
            catalog: &self.catalog,
            table: &table,
            up,
            resources_up: &|id, node| self.resources_up(id, node),
            preferred: &self.failback_to,
        });
        for decision in decisions {
            let (package, node, order) = match decision {
                Decision::Start { package, node } => (package, node, Order::Start(package)),
                Decision::Failback { package, node, .. } => {
                    (package, node, Order::Halt(package, HaltReason::Failback))
                }
                Decision::DependencyFailed { package, node } => (
                    package,
                    node,
                    Order::Halt(package, HaltReason::DependencyFailed),
                ),
            };
            if self
                .pending
                .get(&(package, node))
                .is_some_and(|(_, resend, _)| now < *resend)
            {
                continue;
            }
            match decision {
                Decision::Start { package, node } => {
                    self.failback_to.remove(&package);
                    // Only a failover package fails over, and only to another node: a
                    // multi-node package's instance starting again on a node that came
                    // back is a start (serviceguard.md 1.6(b), 6.2).
                    let failover = self.catalog.package(package).kind == PackageType::Failover;
                    if let Some(from) = self.failed_over.remove(&package) {
                        if failover && from != Some(node) {
                            self.failing_over.insert(package, (from, node));
                        }
                    }
                }
                Decision::Failback { package, node, to } => {
                    self.failback_to.insert(package, to);
                    self.outputs.push(Output::Event(PackageEvent::Failback {
                        package,
                        from: node,
                        node: to,
                    }));
                }
                Decision::DependencyFailed { .. } => {}
            }
            self.issue(now, package, node, order);
        }
    }

    /// Records, in the switching table, the packages that run on members halting with
    /// cmhaltnode -d as detached there; a member that is not detaching (it re-attached) or
    /// whose package does not run any more has none.
    fn record_detachments(&mut self, detaching: NodeSet) {
        let members = self.members;
        let mut changed = false;
        for state in &mut self.table.packages {
            let mut detached = state.detached;
            for node in members.iter() {
                let running = state.instances.get(&node) == Some(&InstanceState::Running);
                if detaching.contains(node) && running {
                    detached.insert(node);
                } else {
                    detached.remove(node);
                }
            }
            if detached != state.detached {
                state.detached = detached;
                changed = true;
            }
        }
        if changed {
            self.switching_version = (self.epoch, self.switching_version.1 + 1);
        }
    }

    /// Notes the nodes where multi-node packages run (for the instances' blocked or halted
    /// state once they stop), in the switching table that every member keeps; nodes out of
    /// the membership are forgotten (blocked is for an instance that never ran on its node
    /// since that node joined).
    fn note_ran(&mut self) {
        let mut changed = false;
        for id in self.catalog.ids() {
            if self.catalog.package(id).kind == PackageType::Failover {
                continue;
            }
            let state = self.table.package_mut(id);
            let running = state.nodes_where(|s| s == InstanceState::Running);
            // Since each node joined the cluster: one that left has run nothing since.
            let ran = state.ran.union(running).intersection(self.members);
            if ran != state.ran {
                state.ran = ran;
                changed = true;
            }
        }
        if changed {
            self.switching_version = (self.epoch, self.switching_version.1 + 1);
        }
    }

    /// Tells the failovers whose package now runs on the adoptive node; drops those whose
    /// start there came to nothing (a failure there is a failover of its own).
    fn tell_failovers(&mut self) {
        let entries: Vec<(PackageId, (Option<NodeId>, NodeId))> =
            self.failing_over.iter().map(|(p, e)| (*p, *e)).collect();
        for (package, (from, node)) in entries {
            let state = self.table.package(package).instances.get(&node).copied();
            let ordered = self.pending.contains_key(&(package, node));
            match state {
                Some(InstanceState::Running) => {
                    self.failing_over.remove(&package);
                    self.outputs.push(Output::Event(PackageEvent::Failover {
                        package,
                        from,
                        node,
                    }));
                }
                Some(InstanceState::Starting) => {}
                None if ordered => {}
                _ => {
                    self.failing_over.remove(&package);
                }
            }
        }
    }

    /// Whether this node is the package coordinator (the lowest member).
    fn coordinator(&self) -> bool {
        self.members.lowest() == Some(self.me)
    }

    /// Sends an order, numbered, and keeps it until the node reports it carried it out.
    fn issue(&mut self, now: Instant, package: PackageId, node: NodeId, order: Order) {
        self.order_serial += 1;
        let serial = self.order_serial;
        self.pending
            .insert((package, node), (order, now + ORDER_RESEND, serial));
        self.outputs.push(Output::Order {
            to: node,
            serial,
            order,
        });
    }

    /// Sends again the orders that the nodes have not reported carried out.
    fn resend(&mut self, now: Instant) {
        let due: Vec<((PackageId, NodeId), Order)> = self
            .pending
            .iter()
            .filter(|(_, (_, at, _))| now >= *at)
            .map(|(key, (order, _, _))| (*key, *order))
            .collect();
        for ((package, node), order) in due {
            self.issue(now, package, node, order);
        }
    }

    /// A package failed on a node, or its halt script failed or timed out there
    /// (halt_aborted): switching to that node is disabled (serviceguard.md 5.1 and 6.1), once
    /// per failure. The failure stays noted while the instance shows it, so that an
    /// operator's cmmodpkg -e -n enables the node again (scenario 36: "until cleared").
    fn disable_failed_nodes(&mut self) {
        for id in self.catalog.ids() {
            let state = self.table.package_mut(id);
            let failed = state
                .nodes_where(|s| matches!(s, InstanceState::Failed | InstanceState::HaltAborted));
            let new = failed.difference(state.failures_noted);
            if failed == state.failures_noted {
                continue;
            }
            // Noted now, and forgotten where the instance is failed no longer; the table
            // goes to the members with the next version either way.
            state.failures_noted = failed;
            self.switching_version = (self.epoch, self.switching_version.1 + 1);
            let disabled = new.intersection(state.switching);
            let Some(first) = disabled.iter().next() else {
                continue;
            };
            let before = (state.auto_run, state.switching);
            state.switching = state.switching.difference(disabled);
            let (auto_run, switching) = (state.auto_run, state.switching);
            self.failed_over.insert(id, Some(first));
            self.outputs
                .push(Output::Event(PackageEvent::SwitchingChanged {
                    package: id,
                    before,
                    auto_run,
                    switching,
                }));
        }
    }
}
