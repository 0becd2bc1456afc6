//! The package coordinator's decisions: which packages start where, and which move back, by
//! Serviceguard's rules (serviceguard.md sections 5.1, 6.1-6.3). A pure function of the
//! catalog and the cluster-wide package table, so that it is tested table by table like
//! Pacemaker's scheduler.

use std::collections::BTreeMap;

use super::catalog::{Catalog, DependencyDef, PackageDef, PackageId};
use super::table::{InstanceState, Table};
use crate::config::cluster::PACKAGE_LIMIT;
use crate::config::package::{
    DependencyCondition, DependencyLocation, Evaluation, FailbackPolicy, FailoverPolicy,
    PackageType,
};
use crate::core::{NodeId, NodeSet};

/// What the coordinator orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start `package` on `node`.
    Start {
        /// The package.
        package: PackageId,
        /// The node.
        node: NodeId,
    },
    /// Halt `package` on `node` so that it can start on a node it prefers (automatic
    /// failback).
    Failback {
        /// The package.
        package: PackageId,
        /// Where it runs now.
        node: NodeId,
        /// Where it will go.
        to: NodeId,
    },
    /// Halt `package` on `node`: a package it needs up is no longer up where the
    /// dependency says (the dependent fails with it, and may start again where its
    /// dependencies hold).
    DependencyFailed {
        /// The package.
        package: PackageId,
        /// Where it runs.
        node: NodeId,
    },
}

/// What placement needs to know besides the table.
pub struct Inputs<'a> {
    /// The packages.
    pub catalog: &'a Catalog,
    /// Where they run, and their switching.
    pub table: &'a Table,
    /// The nodes of the quorate membership.
    pub up: NodeSet,
    /// Whether a package's before_package_start generic resources and monitored subnets
    /// are up on a node.
    pub resources_up: &'a dyn Fn(PackageId, NodeId) -> bool,
    /// Where packages halted for a failback are to start.
    pub preferred: &'a BTreeMap<PackageId, NodeId>,
}

/// The decisions for now, in priority order.
pub fn decide(inputs: &Inputs<'_>) -> Vec<Decision> {
    let mut planner = Planner::new(inputs);
    let mut decisions = Vec::new();
    for id in inputs.catalog.by_priority() {
        let package = inputs.catalog.package(id);
        let state = inputs.table.package(id);
        if state.maintenance || state.instances.values().any(|s| s.is_transitional()) {
            continue;
        }
        let broken: Vec<NodeId> = state
            .instances
            .iter()
            .filter(|(node, s)| {
                **s == InstanceState::Running && !planner.up_dependencies_hold(package, **node)
            })
            .map(|(node, _)| *node)
            .collect();
        if !broken.is_empty() {
            decisions.extend(
                broken
                    .into_iter()
                    .map(|node| Decision::DependencyFailed { package: id, node }),
            );
            continue;
        }
        match package.kind {
            PackageType::Failover => {
                if let Some(decision) = planner.failover(id, package) {
                    decisions.push(decision);
                }
            }
            PackageType::MultiNode | PackageType::SystemMultiNode => {
                decisions.extend(planner.multi_node(id, package));
            }
        }
    }
    decisions
}

/// Tracks, while deciding, what the decisions so far will change (counts and capacities).
struct Planner<'a> {
    inputs: &'a Inputs<'a>,
    /// Failover packages active or about to start on each node.
    counts: BTreeMap<NodeId, usize>,
    /// Weight used on each node, by capacity name.
    used: BTreeMap<NodeId, BTreeMap<String, f64>>,
    /// Packages planned to start, and where (they count as up for dependencies).
    planned: Vec<(PackageId, NodeId)>,
}

impl<'a> Planner<'a> {
    fn new(inputs: &'a Inputs<'a>) -> Planner<'a> {
        let mut planner = Planner {
            inputs,
            counts: BTreeMap::new(),
            used: BTreeMap::new(),
            planned: Vec::new(),
        };
        for id in inputs.catalog.ids() {
            for (&node, state) in &inputs.table.package(id).instances {
                if state.occupies() {
                    planner.occupy(id, node);
                }
            }
        }
        planner
    }

    fn occupy(&mut self, id: PackageId, node: NodeId) {
        let package = self.inputs.catalog.package(id);
        if package.kind == PackageType::Failover {
            *self.counts.entry(node).or_default() += 1;
        }
        let weights = self.weights(package);
        let used = self.used.entry(node).or_default();
        for (name, weight) in weights {
            *used.entry(name).or_default() += weight;
        }
    }

    /// The package's weights, defaults filled in from the cluster.
    fn weights(&self, package: &PackageDef) -> BTreeMap<String, f64> {
        let mut weights = self.inputs.catalog.weight_defaults.clone();
        // The reserved capacity package_limit counts packages: each weighs 1.
        weights.insert(PACKAGE_LIMIT.to_owned(), 1.0);
        for (name, value) in &package.weights {
            weights.insert(name.clone(), *value);
        }
        weights
    }

    fn failover(&mut self, id: PackageId, package: &PackageDef) -> Option<Decision> {
        let state = self.inputs.table.package(id);
        let active: Vec<NodeId> = state
            .instances
            .iter()
            .filter(|(_, s)| s.occupies())
            .map(|(n, _)| *n)
            .collect();
        if let Some(&current) = active.first() {
            return self.failback(id, package, current);
        }
        if !state.auto_run || !state.awaiting_fence.is_empty() {
            return None;
        }
        let node = self.choose(id, package)?;
        self.occupy(id, node);
        self.planned.push((id, node));
        Some(Decision::Start { package: id, node })
    }

    /// Automatic failback: a running package moves to a node higher in its list that is up
    /// and eligible.
    fn failback(
        &mut self,
        id: PackageId,
        package: &PackageDef,
        current: NodeId,
    ) -> Option<Decision> {
        let state = self.inputs.table.package(id);
        let running = state.instances.get(&current) == Some(&InstanceState::Running);
        if package.failback_policy != FailbackPolicy::Automatic || !state.auto_run || !running {
            return None;
        }
        let better = package
            .nodes
            .iter()
            .take_while(|&&n| n != current)
            .copied()
            .find(|&n| self.eligible(id, package, n))?;
        Some(Decision::Failback {
            package: id,
            node: current,
            to: better,
        })
    }

    /// The node a failover package starts on: the first eligible in node_name order
    /// (configured_node), or the eligible node running the fewest failover packages, ties to
    /// node_name order (min_package_node).
    fn choose(&self, id: PackageId, package: &PackageDef) -> Option<NodeId> {
        if let Some(&node) = self.inputs.preferred.get(&id) {
            if self.eligible(id, package, node) {
                return Some(node);
            }
        }
        let eligible = package
            .nodes
            .iter()
            .copied()
            .filter(|&n| self.eligible(id, package, n));
        match package.failover_policy {
            FailoverPolicy::ConfiguredNode => eligible.into_iter().next(),
            FailoverPolicy::MinPackageNode => {
                let mut best: Option<(usize, NodeId)> = None;
                for node in eligible {
                    let count = self.counts.get(&node).copied().unwrap_or(0);
                    if best.is_none_or(|(c, _)| count < c) {
                        best = Some((count, node));
                    }
                }
                best.map(|(_, node)| node)
            }
        }
    }

    fn multi_node(&mut self, id: PackageId, package: &PackageDef) -> Vec<Decision> {
        let state = self.inputs.table.package(id);
        if !state.auto_run {
            return Vec::new();
        }
        let mut decisions = Vec::new();
        for &node in &package.nodes {
            let here = state.instances.get(&node).is_some_and(|s| s.occupies());
            if !here && self.eligible(id, package, node) {
                self.occupy(id, node);
                self.planned.push((id, node));
                decisions.push(Decision::Start { package: id, node });
            }
        }
        decisions
    }

    /// Whether `package` may start on `node`: the node is up, switching is enabled there,
    /// its dependencies hold there, its before_package_start resources and monitored subnets
    /// are up there, and its weights fit the node's capacities.
    fn eligible(&self, id: PackageId, package: &PackageDef, node: NodeId) -> bool {
        let state = self.inputs.table.package(id);
        self.inputs.up.contains(node)
            && package.nodes.contains(&node)
            && state.switching.contains(node)
            && self.dependencies_hold(package, node)
            && ((package.subnets.is_empty()
                && package
                    .resources
                    .iter()
                    .all(|r| r.evaluation != Evaluation::BeforePackageStart))
                || (self.inputs.resources_up)(id, node))
            && self.fits(package, node)
    }

    /// The nodes where `id` runs. Planned starts do not count: a dependent starts once
    /// what it depends on runs (start ordering; the report of it running brings the next
    /// placement round).
    fn up_on(&self, id: PackageId) -> NodeSet {
        self.inputs
            .table
            .package(id)
            .nodes_where(InstanceState::counts_as_up)
    }

    /// The nodes `id` occupies (anything but failed), planned starts included.
    fn active_on(&self, id: PackageId) -> NodeSet {
        self.nodes_where(id, InstanceState::occupies)
    }

    fn nodes_where(&self, id: PackageId, state_counts: fn(InstanceState) -> bool) -> NodeSet {
        let mut nodes: NodeSet = self.inputs.table.package(id).nodes_where(state_counts);
        for (planned, node) in &self.planned {
            if *planned == id {
                nodes.insert(*node);
            }
        }
        nodes
    }

    /// Whether the `= up` dependencies of a package running on `node` hold, on the table as
    /// it is (a dependency being restarted, starting or halting does not count as up).
    fn up_dependencies_hold(&self, package: &PackageDef, node: NodeId) -> bool {
        package
            .dependencies
            .iter()
            .filter(|d| d.condition == DependencyCondition::Up)
            .all(|d| {
                let other = self.inputs.table.package(d.package);
                let instances = &other.instances;
                let up = other.nodes_where(InstanceState::counts_as_up);
                // A dependency in transition is given time: only one that is gone counts.
                let settling = instances.values().any(|s| s.is_transitional());
                settling || dependency_holds(d, node, up, NodeSet::EMPTY)
            })
    }

    fn dependencies_hold(&self, package: &PackageDef, node: NodeId) -> bool {
        package
            .dependencies
            .iter()
            .all(|d| dependency_holds(d, node, self.up_on(d.package), self.active_on(d.package)))
    }

    fn fits(&self, package: &PackageDef, node: NodeId) -> bool {
        let Some(capacities) = self.inputs.catalog.capacities.get(node.index()) else {
            return true;
        };
        let used = self.used.get(&node);
        self.weights(package).iter().all(|(name, weight)| {
            let Some(capacity) = capacities.get(name) else {
                return true;
            };
            let already = used.and_then(|u| u.get(name)).copied().unwrap_or(0.0);
            already + weight <= *capacity
        })
    }
}

/// Whether dependency `d` holds for a package on `node`, with the package depended on up
/// (running) on `up` and active (anything but failed) on `active`.
pub fn dependency_holds(d: &DependencyDef, node: NodeId, up: NodeSet, active: NodeSet) -> bool {
    match d.condition {
        DependencyCondition::Up => match d.location {
            DependencyLocation::SameNode => up.contains(node),
            DependencyLocation::AnyNode | DependencyLocation::AllNodes => !up.is_empty(),
            DependencyLocation::DifferentNode => !up.difference(single(node)).is_empty(),
        },
        DependencyCondition::Down => match d.location {
            DependencyLocation::AllNodes => active.is_empty(),
            _ => !active.contains(node),
        },
    }
}

fn single(node: NodeId) -> NodeSet {
    let mut set = NodeSet::EMPTY;
    set.insert(node);
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::cluster::parse as parse_cluster;
    use crate::config::package::parse as parse_package;

    fn catalog(nodes: usize, packages: &[&str]) -> Catalog {
        let mut text = String::from("CLUSTER_NAME c\nQS_HOST qs\n");
        for n in 1..=nodes {
            text.push_str(&format!(
                "NODE_NAME n{n}\n NETWORK_INTERFACE eth0\n  HEARTBEAT_IP 10.0.0.{n}\n NETWORK_INTERFACE eth1\n  HEARTBEAT_IP 10.0.1.{n}\n"
            ));
        }
        let cluster = parse_cluster(&text, "c").unwrap().config;
        let packages: Vec<_> = packages
            .iter()
            .map(|p| parse_package(p, "p").unwrap().config)
            .collect();
        Catalog::resolve(&cluster, &packages).unwrap()
    }

    fn package(name: &str, nodes: &[u32], extra: &str) -> String {
        let mut text = format!("package_name {name}\n");
        for n in nodes {
            text.push_str(&format!("node_name n{n}\n"));
        }
        text.push_str(extra);
        text
    }

    fn node(n: u32) -> NodeId {
        NodeId(n - 1)
    }

    fn run(table: &mut Table, catalog: &Catalog, name: &str, n: u32) {
        let id = catalog.find(name).unwrap();
        table
            .package_mut(id)
            .instances
            .insert(node(n), InstanceState::Running);
    }

    fn up(nodes: &[u32]) -> NodeSet {
        nodes.iter().map(|&n| node(n)).collect()
    }

    fn starts(catalog: &Catalog, table: &Table, up: NodeSet) -> Vec<(String, u32)> {
        let inputs = Inputs {
            catalog,
            table,
            up,
            resources_up: &|_, _| true,
            preferred: &BTreeMap::new(),
        };
        decide(&inputs)
            .into_iter()
            .map(|d| match d {
                Decision::Start { package, node } => {
                    (catalog.package(package).name.clone(), node.0 + 1)
                }
                Decision::Failback { package, to, .. } => {
                    (format!("{} back", catalog.package(package).name), to.0 + 1)
                }
                Decision::DependencyFailed { package, node } => (
                    format!("{} halts", catalog.package(package).name),
                    node.0 + 1,
                ),
            })
            .collect()
    }

    /// The rotating standby of the package manager manual: four nodes, three packages that
    /// can each run everywhere, node lists in different orders, node 4 the standby.
    fn rotating_standby(policy: &str) -> (Catalog, Table) {
        let extra = format!("failover_policy {policy}\n");
        let catalog = catalog(
            4,
            &[
                &package("pkg1", &[1, 2, 3, 4], &extra),
                &package("pkg2", &[2, 3, 4, 1], &extra),
                &package("pkg3", &[3, 4, 1, 2], &extra),
            ],
        );
        let mut table = Table::new(&catalog);
        run(&mut table, &catalog, "pkg1", 1);
        run(&mut table, &catalog, "pkg3", 3);
        (catalog, table)
    }

    #[test]
    fn rotating_standby_min_package_node_takes_the_emptiest_node() {
        let (catalog, table) = rotating_standby("min_package_node");
        // Node 2 failed: pkg2 goes to node 4, which runs nothing.
        assert_eq!(
            starts(&catalog, &table, up(&[1, 3, 4])),
            [("pkg2".to_owned(), 4)]
        );
    }

    #[test]
    fn rotating_standby_configured_node_takes_the_next_in_the_list() {
        let (catalog, table) = rotating_standby("configured_node");
        assert_eq!(
            starts(&catalog, &table, up(&[1, 3, 4])),
            [("pkg2".to_owned(), 3)]
        );
    }

    #[test]
    fn automatic_failback_returns_to_the_primary() {
        let catalog = catalog(
            4,
            &[&package(
                "pkgA",
                &[1, 4],
                "failover_policy configured_node\nfailback_policy automatic\n",
            )],
        );
        let mut table = Table::new(&catalog);
        // Node 1 failed: pkgA starts on node 4.
        assert_eq!(
            starts(&catalog, &table, up(&[2, 3, 4])),
            [("pkgA".to_owned(), 4)]
        );
        run(&mut table, &catalog, "pkgA", 4);
        assert!(starts(&catalog, &table, up(&[2, 3, 4])).is_empty());
        // Node 1 rejoins: pkgA goes back.
        assert_eq!(
            starts(&catalog, &table, up(&[1, 2, 3, 4])),
            [("pkgA back".to_owned(), 1)]
        );
    }

    #[test]
    fn manual_failback_stays() {
        let catalog = catalog(2, &[&package("pkgA", &[1, 2], "")]);
        let mut table = Table::new(&catalog);
        run(&mut table, &catalog, "pkgA", 2);
        assert!(starts(&catalog, &table, up(&[1, 2])).is_empty());
    }

    #[test]
    fn disabled_switching_keeps_a_package_off_a_node_and_auto_run_off_everywhere() {
        let catalog = catalog(2, &[&package("pkgA", &[1, 2], "")]);
        let mut table = Table::new(&catalog);
        let id = catalog.find("pkgA").unwrap();
        table.package_mut(id).switching.remove(node(1));
        assert_eq!(
            starts(&catalog, &table, up(&[1, 2])),
            [("pkgA".to_owned(), 2)]
        );
        table.package_mut(id).auto_run = false;
        assert!(starts(&catalog, &table, up(&[1, 2])).is_empty());
    }

    #[test]
    fn dependencies_order_starts_and_places() {
        let catalog = catalog(
            3,
            &[
                &package("db", &[1, 2, 3], "priority 10\n"),
                &package(
                    "web",
                    &[3, 2, 1],
                    "priority 20\ndependency_name d\ndependency_condition db = up\ndependency_location same_node\n",
                ),
                &package(
                    "batch",
                    &[1, 2, 3],
                    "dependency_name d\ndependency_condition db = down\ndependency_location same_node\n",
                ),
            ],
        );
        let mut table = Table::new(&catalog);
        // db first (priority); web waits for it; batch avoids db's node.
        assert_eq!(
            starts(&catalog, &table, up(&[1, 2, 3])),
            [("db".to_owned(), 1), ("batch".to_owned(), 2)]
        );
        // db is only starting: web still waits.
        let db = catalog.find("db").unwrap();
        table
            .package_mut(db)
            .instances
            .insert(node(1), InstanceState::Starting);
        let planned = starts(&catalog, &table, up(&[1, 2, 3]));
        assert!(!planned.iter().any(|(p, _)| p == "web"), "{planned:?}");
        // db runs: web follows it to node 1.
        table
            .package_mut(db)
            .instances
            .insert(node(1), InstanceState::Running);
        assert!(starts(&catalog, &table, up(&[1, 2, 3])).contains(&("web".to_owned(), 1)));
    }

    #[test]
    fn a_failed_node_is_not_taken_over_before_it_is_fenced() {
        let catalog = catalog(2, &[&package("pkgA", &[1, 2], "")]);
        let mut table = Table::new(&catalog);
        let id = catalog.find("pkgA").unwrap();
        table.package_mut(id).awaiting_fence.insert(node(1));
        assert!(starts(&catalog, &table, up(&[2])).is_empty());
        table.package_mut(id).awaiting_fence = NodeSet::EMPTY;
        assert_eq!(starts(&catalog, &table, up(&[2])), [("pkgA".to_owned(), 2)]);
    }

    #[test]
    fn halt_aborted_blocks_the_package_everywhere() {
        let catalog = catalog(2, &[&package("pkgA", &[1, 2], "")]);
        let mut table = Table::new(&catalog);
        let id = catalog.find("pkgA").unwrap();
        table
            .package_mut(id)
            .instances
            .insert(node(1), InstanceState::HaltAborted);
        assert!(starts(&catalog, &table, up(&[1, 2])).is_empty());
    }

    #[test]
    fn multi_node_packages_run_on_every_eligible_node() {
        let catalog = catalog(3, &[&package("mnp", &[], "package_type multi_node\n")]);
        let table = Table::new(&catalog);
        assert_eq!(
            starts(&catalog, &table, up(&[1, 3])),
            [("mnp".to_owned(), 1), ("mnp".to_owned(), 3)]
        );
    }
}
