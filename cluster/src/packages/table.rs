//! The cluster-wide package table: where each package runs, in which state, and its
//! switching. The package coordinator keeps it from the members' reports and its own
//! decisions; every member keeps the coordinator's latest copy of the switching part, so a
//! new coordinator carries on.

use std::collections::BTreeMap;

use super::catalog::{Catalog, PackageId};
use crate::core::{NodeId, NodeSet};

/// A package instance's state on one node (serviceguard.md section 2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum InstanceState {
    /// The run script is running.
    Starting,
    /// Its services run and are monitored.
    Running,
    /// The halt script runs (a command, a failback, or a node halting).
    Halting,
    /// The halt script runs after a failure.
    Failing,
    /// Failed; it waits for the packages that depend on it on this node to halt before its
    /// halt script runs.
    FailWait,
    /// Failed here (run script failed or timed out, services exhausted their restarts): not
    /// running; node switching is disabled here.
    Failed,
    /// The halt script failed or timed out: the package may still hold resources here, so it
    /// runs nowhere else until an operator clears it or the node is reset.
    HaltAborted,
    /// cmapplyconf changed it while it runs (services added or removed): the driver applies
    /// the change to the running package.
    Reconfiguring,
    /// Detached (cmhaltnode -d, cmhaltcl -d): it runs on, unmonitored, on a node whose daemon
    /// has halted, and counts as up; on the node's own report, while it re-attaches (its
    /// health is being checked).
    Detached,
}

impl PackageState {
    /// cmmodpkg -e/-d: AUTO_RUN, or node switching to `node`.
    pub fn set_switching(&mut self, enable: bool, node: Option<NodeId>) {
        match node {
            None => self.auto_run = enable,
            Some(node) if enable => self.switching.insert(node),
            Some(node) => self.switching.remove(node),
        }
    }

    /// The nodes where cmhaltpkg [-n `node`] halts it: where it occupies the node.
    pub fn halt_targets(&self, node: Option<NodeId>) -> Vec<NodeId> {
        self.instances
            .iter()
            .filter(|(n, s)| s.occupies() && node.is_none_or(|w| w == **n))
            .map(|(n, _)| *n)
            .collect()
    }
}

impl InstanceState {
    /// Starting, halting or failing: the coordinator waits for the outcome.
    pub fn is_transitional(self) -> bool {
        matches!(
            self,
            InstanceState::Starting
                | InstanceState::Halting
                | InstanceState::Failing
                | InstanceState::FailWait
                | InstanceState::Reconfiguring
        )
    }

    /// Whether the package may hold resources on the node (it must not start elsewhere).
    pub fn occupies(self) -> bool {
        !matches!(self, InstanceState::Failed)
    }

    /// Whether it counts as up for the dependencies of other packages.
    pub fn counts_as_up(self) -> bool {
        matches!(
            self,
            InstanceState::Running | InstanceState::Reconfiguring | InstanceState::Detached
        )
    }
}

/// One package, cluster-wide.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PackageState {
    /// AUTO_RUN, the global switching: may the package start automatically.
    pub auto_run: bool,
    /// Node switching: the nodes it may run on (a failure disables its node).
    pub switching: NodeSet,
    /// Maintenance mode (cmmodpkg -m on).
    pub maintenance: bool,
    /// The node a package put in maintenance mode while down may start on (cmmodpkg -m on
    /// -n node); None when it was running then.
    pub maintenance_node: Option<NodeId>,
    /// Its instances by node (a failover package has at most one that occupies a node).
    pub instances: BTreeMap<NodeId, InstanceState>,
    /// Nodes that left the membership while the package was active there: it may not start
    /// elsewhere until each is known to be reset (the survivors' fence wait).
    pub awaiting_fence: NodeSet,
    /// Nodes a configuration generation took off its node list that may still run it (a
    /// generation carried on by a membership takes effect as it is, unchecked against what
    /// runs now): a failure there awaits the fence as for a node of the list, until the
    /// node reports under the new list or is reset. Known only to the nodes that took the
    /// change; one that never was a member with a failed life awaits its fence for every
    /// package.
    pub unlisted: NodeSet,
    /// Nodes where it is detached: it runs there unmonitored after the node halted with
    /// cmhaltnode -d. Part of the switching table: every member keeps it, so it occupies the
    /// node until the node re-attaches it.
    pub detached: NodeSet,
    /// Nodes whose failed (or halt_aborted) instance has disabled switching to them once
    /// already: a failure disables its node once, so that cmmodpkg -e -n enables it again
    /// while the instance still shows failed there.
    pub failures_noted: NodeSet,
    /// The nodes a multi-node package has run on since each of them joined the cluster: an
    /// instance that never ran on a node and cannot start there shows blocked, one that ran
    /// and was halted shows halted.
    pub ran: NodeSet,
}

impl PackageState {
    /// The nodes whose instance is in a state `counts` accepts.
    pub fn nodes_where(&self, counts: impl Fn(InstanceState) -> bool) -> NodeSet {
        self.instances
            .iter()
            .filter(|(_, s)| counts(**s))
            .map(|(n, _)| *n)
            .collect()
    }
}

/// Every package's state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    /// By package.
    pub packages: Vec<PackageState>,
}

impl Table {
    /// The table of a cluster that starts: AUTO_RUN from each package's auto_run, switching
    /// enabled on every configured node, nothing running.
    pub fn new(catalog: &Catalog) -> Table {
        Table {
            packages: catalog
                .packages
                .iter()
                .map(|p| PackageState {
                    auto_run: p.auto_run,
                    switching: p.node_set(),
                    maintenance: false,
                    maintenance_node: None,
                    instances: BTreeMap::new(),
                    awaiting_fence: NodeSet::EMPTY,
                    unlisted: NodeSet::EMPTY,
                    detached: NodeSet::EMPTY,
                    failures_noted: NodeSet::EMPTY,
                    ran: NodeSet::EMPTY,
                })
                .collect(),
        }
    }

    /// The state of `id`.
    pub fn package(&self, id: PackageId) -> &PackageState {
        &self.packages[id.index()]
    }

    /// The state of `id`, to change.
    pub fn package_mut(&mut self, id: PackageId) -> &mut PackageState {
        &mut self.packages[id.index()]
    }
}
