//! The packages as the engine uses them: configuration resolved to node numbers and package
//! numbers, checked once.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::config::cluster::ClusterConfig;
use crate::config::package::{
    DependencyCondition, DependencyLocation, Evaluation, FailbackPolicy, FailoverPolicy,
    PackageConfig, PackageType, ServiceRestart, SubnetAccess, UpCriteria,
};
use crate::core::{NodeId, NodeSet};
use crate::status::Health;

/// A package's number: its index in the catalog (packages sorted by name).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct PackageId(pub u32);

impl PackageId {
    /// The index, for tables indexed by package.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One dependency, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DependencyDef {
    /// The package depended on.
    pub package: PackageId,
    /// up or down.
    pub condition: DependencyCondition,
    /// Where.
    pub location: DependencyLocation,
}

/// One service, as the engine needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDef {
    /// service_name.
    pub name: String,
    /// service_cmd (a change of it, while the package runs, replaces the service).
    pub command: String,
    /// service_restart.
    pub restart: ServiceRestart,
    /// service_fail_fast_enabled.
    pub fail_fast: bool,
    /// service_halt_timeout.
    pub halt_timeout: Duration,
}

/// One generic resource of a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceDef {
    /// generic_resource_name.
    pub name: String,
    /// Its number in [`Catalog::resources`] (resources are per node and shared by the
    /// packages that name them).
    pub index: u16,
    /// before_package_start or during_package_start.
    pub evaluation: Evaluation,
    /// Extended resources: the criteria; simple ones: none.
    pub up_criteria: Option<UpCriteria>,
}

/// One monitored_subnet of a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubnetDef {
    /// monitored_subnet.
    pub subnet: IpAddr,
    /// monitored_subnet_access.
    pub access: SubnetAccess,
    /// Its number among the node settings (see [`Catalog::subnet`]).
    pub index: u16,
}

impl SubnetDef {
    /// The subnet's status for this package on a node, given the monitor's word there
    /// ([`subnet_health`]). A PARTIAL subnet that the node has no address on is not
    /// monitored there (cross-subnet configurations: the package runs on the nodes of one
    /// subnet or of another), so it counts as up; a FULL one must be on every node.
    pub fn health(&self, setting: Option<ResourceValue>) -> Health {
        match (self.access, setting) {
            (SubnetAccess::Partial, Some(ResourceValue::Absent)) => Health::Up,
            _ => subnet_health(setting),
        }
    }
}

/// A monitored subnet's state on a node, as the node's subnet monitor tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SubnetState {
    /// An interface of the node that is up has an address on it.
    Up,
    /// Interfaces of the node have addresses on it, and none of them is up.
    Down,
    /// No interface of the node has an address on it: it is not configured there.
    Absent,
}

impl SubnetState {
    /// The state replicated to the other members.
    pub fn setting(self) -> ResourceValue {
        match self {
            SubnetState::Up => ResourceValue::Status(true),
            SubnetState::Down => ResourceValue::Status(false),
            SubnetState::Absent => ResourceValue::Absent,
        }
    }
}

impl From<bool> for SubnetState {
    fn from(up: bool) -> SubnetState {
        if up {
            SubnetState::Up
        } else {
            SubnetState::Down
        }
    }
}

/// A monitored subnet's status on a node, given the monitor's word there (`None`: not said
/// yet), for a package that must have it there (FULL). A subnet counts as up until its
/// monitor says it is down or absent.
pub fn subnet_health(setting: Option<ResourceValue>) -> Health {
    match setting {
        Some(ResourceValue::Status(false) | ResourceValue::Absent) => Health::Down,
        _ => Health::Up,
    }
}

/// One package, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageDef {
    /// package_name.
    pub name: String,
    /// package_type.
    pub kind: PackageType,
    /// node_name, in preference order (`*`: every node in cluster file order).
    pub nodes: Vec<NodeId>,
    /// auto_run.
    pub auto_run: bool,
    /// node_fail_fast_enabled.
    pub node_fail_fast: bool,
    /// run_script_timeout (None: no_timeout).
    pub run_script_timeout: Option<Duration>,
    /// halt_script_timeout (None: no_timeout).
    pub halt_script_timeout: Option<Duration>,
    /// successor_halt_timeout: how long a failing package waits for the packages that
    /// depend on it on its node to halt (fail_wait) before its own halt runs (None:
    /// no_timeout; zero: it does not wait).
    pub successor_halt_timeout: Option<Duration>,
    /// failover_policy.
    pub failover_policy: FailoverPolicy,
    /// failback_policy.
    pub failback_policy: FailbackPolicy,
    /// priority (lower is higher; None: no_priority, after every numbered one).
    pub priority: Option<u32>,
    /// Dependencies.
    pub dependencies: Vec<DependencyDef>,
    /// Weights against the nodes' capacities.
    pub weights: BTreeMap<String, f64>,
    /// Services.
    pub services: Vec<ServiceDef>,
    /// Generic resources.
    pub resources: Vec<ResourceDef>,
    /// monitored_subnet lines.
    pub subnets: Vec<SubnetDef>,
}

impl PackageDef {
    /// The definition with what differs between generations for the same configuration
    /// (package and resource numbers) taken out: the dependencies' packages by name.
    pub fn normalized(&self, catalog: &Catalog) -> (PackageDef, Vec<String>) {
        let mut def = self.clone();
        let names = def
            .dependencies
            .iter_mut()
            .map(|d| {
                let name = catalog
                    .packages
                    .get(d.package.index())
                    .map_or_else(String::new, |p| p.name.clone());
                d.package = PackageId(0);
                name
            })
            .collect();
        for resource in &mut def.resources {
            resource.index = 0;
        }
        for subnet in &mut def.subnets {
            subnet.index = 0;
        }
        (def, names)
    }
}

impl ResourceDef {
    /// The resource's status for this package, given its setting on a node (`None`: never
    /// set there). A simple resource is unknown until set; an extended one is up while its
    /// value (0 until set) meets the package's up_criteria.
    pub fn health(&self, setting: Option<ResourceValue>) -> Health {
        match (self.up_criteria, setting) {
            (None, None) => Health::Unknown,
            (_, Some(ResourceValue::Status(up))) => {
                if up {
                    Health::Up
                } else {
                    Health::Down
                }
            }
            (None, Some(ResourceValue::Value(_) | ResourceValue::Absent)) => Health::Unknown,
            (Some(criteria), setting) => {
                let value = match setting {
                    Some(ResourceValue::Value(value)) => value,
                    _ => 0,
                };
                if criteria.holds(value) {
                    Health::Up
                } else {
                    Health::Down
                }
            }
        }
    }
}

/// A generic resource's setting on a node, as cmsetresource gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ResourceValue {
    /// A simple resource: up or down.
    Status(bool),
    /// An extended resource's value.
    Value(i64),
    /// A monitored subnet that no interface of the node has an address on
    /// ([`SubnetState::Absent`]); never a generic resource's value.
    Absent,
}

/// A generic resource of the cluster: its name and whether it is extended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// generic_resource_name.
    pub name: String,
    /// Extended (packages give up_criteria) or simple.
    pub extended: bool,
}

impl PackageDef {
    /// The set of nodes it may run on.
    pub fn node_set(&self) -> NodeSet {
        self.nodes.iter().copied().collect()
    }
}

/// Every package of the cluster, and the nodes' capacities.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Catalog {
    /// The packages, sorted by name.
    pub packages: Vec<PackageDef>,
    /// Each node's capacities (CAPACITY_NAME/VALUE), by node.
    pub capacities: Vec<BTreeMap<String, f64>>,
    /// The cluster's default weights (WEIGHT_NAME/WEIGHT_DEFAULT).
    pub weight_defaults: BTreeMap<String, f64>,
    /// Every generic resource named by a package, by name.
    pub resources: Vec<ResourceInfo>,
    /// Every monitored_subnet of a package, in address order.
    pub subnets: Vec<IpAddr>,
}

/// Why a package set cannot be resolved (check_set reports these first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveError(pub String);

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ResolveError {}

impl Catalog {
    /// Resolves `packages` against `cluster` (run `config::package::check_set` first: this
    /// only refuses what it cannot resolve).
    pub fn resolve(
        cluster: &ClusterConfig,
        packages: &[PackageConfig],
    ) -> Result<Catalog, ResolveError> {
        let mut sorted: Vec<&PackageConfig> = packages.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        let id_of = |name: &str| {
            sorted
                .iter()
                .position(|p| p.name == name)
                .map(|i| PackageId(i as u32))
        };
        // A node deleted while the cluster ran keeps its number, and no package names it.
        let node_of = |name: &str| cluster.position(name).map(|i| NodeId(i as u32));
        let mut resources: Vec<ResourceInfo> = Vec::new();
        for resource in sorted.iter().flat_map(|p| &p.generic_resources) {
            if !resources.iter().any(|r| r.name == resource.name) {
                resources.push(ResourceInfo {
                    name: resource.name.clone(),
                    extended: resource.up_criteria.is_some(),
                });
            }
        }
        resources.sort_by(|a, b| a.name.cmp(&b.name));
        let mut subnets: Vec<IpAddr> = sorted
            .iter()
            .flat_map(|p| p.monitored_subnets.iter().map(|(subnet, _)| *subnet))
            .collect();
        subnets.sort();
        subnets.dedup();
        if resources.len() + subnets.len() > usize::from(u16::MAX) {
            return Err(ResolveError(
                "too many generic resources and monitored subnets".into(),
            ));
        }
        let subnet_of = |subnet: &IpAddr| {
            subnets
                .iter()
                .position(|s| s == subnet)
                .map_or(0, |i| (resources.len() + i) as u16)
        };
        let resource_of = |name: &str| {
            resources
                .iter()
                .position(|r| r.name == name)
                .map_or(0, |i| i as u16)
        };
        let mut defs = Vec::with_capacity(sorted.len());
        for package in &sorted {
            let nodes = if package.nodes.is_empty() || package.nodes.iter().any(|n| n == "*") {
                cluster
                    .in_cluster()
                    .map(|(i, _)| NodeId(i as u32))
                    .collect()
            } else {
                package
                    .nodes
                    .iter()
                    .map(|n| {
                        node_of(n).ok_or_else(|| {
                            ResolveError(format!("package {}: no node {n}", package.name))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?
            };
            let dependencies = package
                .dependencies
                .iter()
                .map(|d| {
                    id_of(&d.package)
                        .map(|id| DependencyDef {
                            package: id,
                            condition: d.condition,
                            location: d.location,
                        })
                        .ok_or_else(|| {
                            ResolveError(format!(
                                "package {}: depends on unknown package {}",
                                package.name, d.package
                            ))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            defs.push(PackageDef {
                name: package.name.clone(),
                kind: package.package_type,
                nodes,
                auto_run: package.auto_run,
                node_fail_fast: package.node_fail_fast,
                run_script_timeout: package.run_script_timeout,
                halt_script_timeout: package.halt_script_timeout,
                successor_halt_timeout: package.successor_halt_timeout,
                failover_policy: package.failover_policy,
                failback_policy: package.failback_policy,
                priority: package.priority,
                dependencies,
                weights: package.weights.clone(),
                services: package
                    .services
                    .iter()
                    .map(|s| ServiceDef {
                        name: s.name.clone(),
                        command: s.command.clone(),
                        restart: s.restart,
                        fail_fast: s.fail_fast,
                        halt_timeout: s.halt_timeout,
                    })
                    .collect(),
                resources: package
                    .generic_resources
                    .iter()
                    .map(|r| ResourceDef {
                        name: r.name.clone(),
                        index: resource_of(&r.name),
                        evaluation: r.evaluation,
                        up_criteria: r.up_criteria,
                    })
                    .collect(),
                subnets: package
                    .monitored_subnets
                    .iter()
                    .map(|(subnet, access)| SubnetDef {
                        subnet: *subnet,
                        access: *access,
                        index: subnet_of(subnet),
                    })
                    .collect(),
            });
        }
        Ok(Catalog {
            packages: defs,
            capacities: cluster.nodes.iter().map(|n| n.capacities.clone()).collect(),
            weight_defaults: cluster.weight_defaults.clone(),
            resources,
            subnets,
        })
    }

    /// The package called `name`.
    pub fn find(&self, name: &str) -> Option<PackageId> {
        self.packages
            .iter()
            .position(|p| p.name == name)
            .map(|i| PackageId(i as u32))
    }

    /// The generic resource called `name`.
    pub fn resource(&self, name: &str) -> Option<u16> {
        self.resources
            .iter()
            .position(|r| r.name == name)
            .map(|i| i as u16)
    }

    /// The number of monitored subnet `subnet` among the node settings, if a package
    /// monitors it. A node's subnet states travel to its peers with its generic resource
    /// settings, numbered after the resources (so a release that knows no subnets drops
    /// them as numbers it does not know); only the subnet monitor sets them.
    pub fn subnet(&self, subnet: IpAddr) -> Option<u16> {
        self.subnets
            .iter()
            .position(|s| *s == subnet)
            .map(|i| (self.resources.len() + i) as u16)
    }

    /// The monitored subnet with settings number `index`.
    pub fn subnet_at(&self, index: u16) -> Option<IpAddr> {
        usize::from(index)
            .checked_sub(self.resources.len())
            .and_then(|i| self.subnets.get(i).copied())
    }

    /// How many node settings there are: the generic resources, then the monitored
    /// subnets.
    pub fn settings_len(&self) -> usize {
        self.resources.len() + self.subnets.len()
    }

    /// The package `id`.
    pub fn package(&self, id: PackageId) -> &PackageDef {
        &self.packages[id.index()]
    }

    /// Every package id.
    pub fn ids(&self) -> impl Iterator<Item = PackageId> {
        (0..self.packages.len() as u32).map(PackageId)
    }

    /// The packages in the order the coordinator considers them: priority (lower first),
    /// packages without priority last, then by name.
    pub fn by_priority(&self) -> Vec<PackageId> {
        let mut ids: Vec<PackageId> = self.ids().collect();
        ids.sort_by_key(|id| (self.package(*id).priority.unwrap_or(u32::MAX), *id));
        ids
    }
}
