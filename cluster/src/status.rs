//! What the layers above see of the cluster: a typed snapshot of everything `cmviewcl -v`
//! shows (serviceguard.md section 2), as one node knows it, and the notices of the event
//! catalogue (section 1.6(b)), each with the state before and after.
//!
//! A node builds its snapshot with [`crate::core::Node::status`] and reports notices as
//! [`crate::core::Action::Notice`]. Notices about the whole cluster come from one node only,
//! so a listener subscribed on every node hears each once: membership notices (ClusterUp,
//! ClusterReformed, NodeJoined, NodeFailed, NodeHalted, NodeDetached) from the node that
//! committed the membership; package placement notices (PackageFailover, PackageFailback,
//! PackageSwitchingChanged) and ClusterHalted from the package coordinator, the lowest member
//! (the snapshot's `coordinator`). The two differ only while a lower node is joining. The
//! other notices are each node's own observations.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::package::{
    DependencyCondition, DependencyLocation, FailbackPolicy, FailoverPolicy, PackageType,
    ServiceRestart, SubnetAccess,
};
use crate::core::{Epoch, FenceReason, Incarnation, NodeId, NodeSet, QuorumServerRefusal};
use crate::packages::{
    Catalog, FailureCause, InstanceState, PackageId, ResourceValue, ScriptOutcome, Table,
};

/// Defines a vocabulary enum with cmviewcl's spelling of each value.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// As cmviewcl spells it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        // Serialized as cmviewcl spells it (the JSON of `cmviewcl -f json` and the admin
        // socket).
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let word = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                match word.as_ref() {
                    $($word => Ok($name::$variant),)+
                    other => Err(serde::de::Error::unknown_variant(other, &[$($word),+])),
                }
            }
        }
    };
}

vocabulary! {
    /// The cluster's status.
    ClusterStatus {
        /// Formed, no re-formation in progress.
        Up => "up",
        /// This node runs no cluster (halted, or fenced).
        Down => "down",
        /// The membership is being determined (forming or re-forming).
        Starting => "starting",
        /// This node is a member but cannot reach enough of the others to know.
        Unknown => "unknown",
    }
}

vocabulary! {
    /// Whether a node's daemon is a cluster member.
    NodeStatus {
        /// A member.
        Up => "up",
        /// Not a member.
        Down => "down",
    }
}

vocabulary! {
    /// A node's state.
    NodeState {
        /// Finished the last re-formation.
        Running => "running",
        /// In a re-formation.
        Reforming => "reforming",
        /// Left the cluster gracefully.
        Halted => "halted",
        /// Was a member and is gone without halting.
        Failed => "failed",
        /// Never an active member (as far as this node knows).
        Unknown => "unknown",
    }
}

vocabulary! {
    /// A package's (or one instance's) status.
    PackageStatus {
        /// Its control script is active.
        Up => "up",
        /// Not running.
        Down => "down",
        /// The run script runs.
        Starting => "starting",
        /// The halt script runs.
        Halting => "halting",
        /// The halt script runs after a failure.
        Failing => "failing",
        /// The halt stopped at a failure (halt_aborted): it may still hold resources.
        PartiallyDown => "partially_down",
        /// Detached (cmhaltnode -d): it runs on unmonitored; last known status up.
        Detached => "detached",
        /// It waits for a package it depends on to start.
        StartWait => "start_wait",
        /// A configuration change is applied to it while it runs.
        Reconfiguring => "reconfiguring",
        /// A multi-node package starting or halting on some of its nodes.
        Changing => "changing",
        /// This node cannot know (it is not running in the cluster).
        Unknown => "unknown",
        /// Its node halts: it waits for the packages that depend on it there to halt.
        HaltWait => "halt_wait",
        /// Failed: it waits for the packages that depend on it there to halt.
        FailWait => "fail_wait",
    }
}

vocabulary! {
    /// A package's (or one instance's) state.
    PackageState {
        /// The run script runs.
        Starting => "starting",
        /// Services run and are monitored.
        Running => "running",
        /// The halt script runs.
        Halting => "halting",
        /// Not running.
        Halted => "halted",
        /// The halt script runs after a failure.
        Failing => "failing",
        /// Failed; node switching to the node is disabled.
        Failed => "failed",
        /// The halt script failed or timed out; cmhaltpkg halts it again.
        HaltAborted => "halt_aborted",
        /// In maintenance (cmmodpkg -m on): not monitored, not failed over.
        Maintenance => "maintenance",
        /// Halted with its node lost: placement waits until that node is certainly reset.
        RelocateWait => "relocate_wait",
        /// A multi-node package that may not run on this node (AUTO_RUN or node switching
        /// off).
        Blocked => "blocked",
        /// Detached (cmhaltnode -d, cmhaltcl -d): it runs on, unmonitored, until its node
        /// re-attaches it (cmrunnode, cmruncl).
        Detached => "detached",
        /// It waits for a package it depends on to start before it starts.
        StartWait => "start_wait",
        /// A configuration change (cmapplyconf) is applied to it while it runs.
        Reconfiguring => "reconfiguring",
        /// A multi-node package starting or halting on some of its nodes.
        Changing => "changing",
        /// This node cannot know (it is not running in the cluster).
        Unknown => "unknown",
        /// Its node halts: it waits for the packages that depend on it there to halt
        /// first.
        HaltWait => "halt_wait",
        /// Failed: it waits for the packages that depend on it on its node to halt before
        /// its halt script runs.
        FailWait => "fail_wait",
    }
}

vocabulary! {
    /// Up or down, for services, interfaces, generic resources and the cluster lock.
    Health {
        /// Up.
        Up => "up",
        /// Down.
        Down => "down",
        /// Not known here.
        Unknown => "unknown",
    }
}

vocabulary! {
    /// cmviewcl's summary of a cluster, node or package.
    Summary {
        /// Everything as it should be.
        Ok => "ok",
        /// Something is down or not running.
        Degraded => "degraded",
    }
}

/// The cluster's condition, before or after a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClusterCondition {
    /// Its status.
    pub status: ClusterStatus,
    /// The membership epoch.
    pub epoch: Epoch,
    /// The members.
    pub members: NodeSet,
}

/// A node's condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeCondition {
    /// Status.
    pub status: NodeStatus,
    /// State.
    pub state: NodeState,
}

impl NodeCondition {
    /// A member, running.
    pub const RUNNING: NodeCondition = NodeCondition {
        status: NodeStatus::Up,
        state: NodeState::Running,
    };

    /// Down in `state`.
    pub const fn down(state: NodeState) -> NodeCondition {
        NodeCondition {
            status: NodeStatus::Down,
            state,
        }
    }
}

/// A package instance's condition on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PackageCondition {
    /// Status.
    pub status: PackageStatus,
    /// State.
    pub state: PackageState,
}

impl PackageCondition {
    /// The condition of an instance in `state` (`None`: not there).
    pub fn of(state: Option<InstanceState>) -> PackageCondition {
        let (status, state) = match state {
            None => (PackageStatus::Down, PackageState::Halted),
            Some(InstanceState::Starting) => (PackageStatus::Starting, PackageState::Starting),
            Some(InstanceState::Running) => (PackageStatus::Up, PackageState::Running),
            Some(InstanceState::Halting) => (PackageStatus::Halting, PackageState::Halting),
            Some(InstanceState::Failing) => (PackageStatus::Failing, PackageState::Failing),
            Some(InstanceState::FailWait) => (PackageStatus::FailWait, PackageState::FailWait),
            Some(InstanceState::Failed) => (PackageStatus::Down, PackageState::Failed),
            Some(InstanceState::HaltAborted) => {
                (PackageStatus::PartiallyDown, PackageState::HaltAborted)
            }
            Some(InstanceState::Detached) => (PackageStatus::Detached, PackageState::Detached),
            Some(InstanceState::Reconfiguring) => {
                (PackageStatus::Reconfiguring, PackageState::Reconfiguring)
            }
        };
        PackageCondition { status, state }
    }
}

/// A service's condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceCondition {
    /// Status.
    pub status: Health,
    /// Restarts so far.
    pub restarts: u32,
}

/// A package's switching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SwitchingCondition {
    /// AUTO_RUN (global switching).
    pub auto_run: bool,
    /// The nodes with node switching enabled.
    pub switching: NodeSet,
}

/// A notice as the node that told it numbered it: its daemon's life (the node's incarnation)
/// and its number in that life, 1 for the first. Every agent names its alerts so
/// (IndicationIdentifier), so one node's notice can point at another node's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NoticeRef {
    /// The node that told it.
    pub node: NodeId,
    /// Its life.
    pub incarnation: u64,
    /// Its number in that life.
    pub number: u64,
}

/// One entry of the event catalogue (serviceguard.md 1.6(b)), with the state before and
/// after.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Notice {
    /// The cluster formed (reported by the coordinator that formed it).
    ClusterUp {
        /// Before (starting).
        before: ClusterCondition,
        /// After.
        after: ClusterCondition,
    },
    /// A new configuration generation took effect, cmapplyconf (reported by the node that
    /// committed it).
    ClusterConfigChanged {
        /// The generation before.
        before: u64,
        /// The generation now.
        after: u64,
        /// Packages added, deleted and modified.
        packages: crate::core::PackageChanges,
    },
    /// The membership changed (reported by the new coordinator).
    ClusterReformed {
        /// Before.
        before: ClusterCondition,
        /// After.
        after: ClusterCondition,
    },
    /// A node joined the running cluster (reported by the coordinator).
    NodeJoined {
        /// The node.
        node: NodeId,
        /// Before.
        before: NodeCondition,
        /// After.
        after: NodeCondition,
    },
    /// A node left the cluster gracefully, cmhaltnode (reported by the coordinator).
    NodeHalted {
        /// The node.
        node: NodeId,
        /// Before.
        before: NodeCondition,
        /// After.
        after: NodeCondition,
    },
    /// A node left the cluster leaving its packages running, detached: cmhaltnode -d
    /// (reported by the coordinator).
    NodeDetached {
        /// The node.
        node: NodeId,
        /// Before.
        before: NodeCondition,
        /// After.
        after: NodeCondition,
    },
    /// The cluster halted, cmhaltcl (reported by the coordinator).
    ClusterHalted {
        /// Before.
        before: ClusterCondition,
        /// After.
        after: ClusterCondition,
    },
    /// The members marked a node failed (reported by the coordinator).
    NodeFailed {
        /// The node.
        node: NodeId,
        /// The life that failed.
        incarnation: Incarnation,
        /// Before.
        before: NodeCondition,
        /// After.
        after: NodeCondition,
    },
    /// A package started on this node.
    PackageStarted {
        /// The package.
        package: PackageId,
        /// This node.
        node: NodeId,
        /// Before.
        before: PackageCondition,
        /// After.
        after: PackageCondition,
    },
    /// A package halted on this node by command.
    PackageHalted {
        /// The package.
        package: PackageId,
        /// This node.
        node: NodeId,
        /// Before.
        before: PackageCondition,
        /// After.
        after: PackageCondition,
    },
    /// A package failed on this node (failed, or halt_aborted).
    PackageFailed {
        /// The package.
        package: PackageId,
        /// This node.
        node: NodeId,
        /// What failed.
        cause: FailureCause,
        /// Before.
        before: PackageCondition,
        /// After.
        after: PackageCondition,
    },
    /// A failover package starts on an adoptive node after a failure (reported by the
    /// coordinator).
    PackageFailover {
        /// The package.
        package: PackageId,
        /// Where it ran before (none: not known to this coordinator).
        before: Option<NodeId>,
        /// Where it starts.
        after: NodeId,
        /// The notice of the failure it follows: the PackageFailed told by the node it left,
        /// or the NodeFailed of that node told by the coordinator (none: not known here).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        follows: Option<NoticeRef>,
    },
    /// A package moves back to a node it prefers (reported by the coordinator).
    PackageFailback {
        /// The package.
        package: PackageId,
        /// Where it ran.
        before: NodeId,
        /// Where it goes.
        after: NodeId,
    },
    /// AUTO_RUN or node switching changed (reported by the coordinator).
    PackageSwitchingChanged {
        /// The package.
        package: PackageId,
        /// Before.
        before: SwitchingCondition,
        /// After.
        after: SwitchingCondition,
    },
    /// A service of a package on this node exited.
    ServiceFailed {
        /// The package.
        package: PackageId,
        /// The service (index in the package file).
        service: usize,
        /// This node.
        node: NodeId,
        /// Before.
        before: ServiceCondition,
        /// After.
        after: ServiceCondition,
    },
    /// A service of a package on this node was restarted.
    ServiceRestarted {
        /// The package.
        package: PackageId,
        /// The service.
        service: usize,
        /// This node.
        node: NodeId,
        /// Before.
        before: ServiceCondition,
        /// After.
        after: ServiceCondition,
    },
    /// This node's polls of the quorum server fail.
    QuorumServerUnreachable {
        /// Before.
        before: Health,
        /// After.
        after: Health,
    },
    /// This node's polls of the quorum server succeed again.
    QuorumServerReachable {
        /// Before.
        before: Health,
        /// After.
        after: Health,
    },
    /// This node's periodic read of the lock LUN (or a read or write of a lock race)
    /// failed or stalled.
    LockLunUnhealthy {
        /// Before.
        before: Health,
        /// After.
        after: Health,
    },
    /// This node lost quorum and fences itself.
    QuorumLost {
        /// Why.
        reason: FenceReason,
        /// Before.
        before: ClusterCondition,
        /// After.
        after: ClusterCondition,
    },
    /// A heartbeat network to a peer went silent while another still carries heartbeats:
    /// the peer's interface on that network, as this node sees it.
    NetworkInterfaceDown {
        /// The peer.
        node: NodeId,
        /// The heartbeat network.
        network: usize,
        /// Before.
        before: Health,
        /// After.
        after: Health,
    },
    /// A generic resource of a package changed status on this node (cmsetresource, or an
    /// extended resource's value against the package's up_criteria).
    GenericResourceChanged {
        /// The package.
        package: PackageId,
        /// The resource (index in the package file).
        resource: usize,
        /// This node.
        node: NodeId,
        /// The value, for an extended resource.
        value: Option<i64>,
        /// Before.
        before: Health,
        /// After.
        after: Health,
    },
    /// That network carries heartbeats again.
    NetworkInterfaceUp {
        /// The peer.
        node: NodeId,
        /// The heartbeat network.
        network: usize,
        /// Before.
        before: Health,
        /// After.
        after: Health,
    },
    /// A monitored_subnet went down on this node: no interface that is up has an address
    /// on it any more (the link-level and IP-level monitor; EventID NetworkInterfaceDown).
    /// The packages running here that monitor it fail.
    SubnetDown {
        /// This node.
        node: NodeId,
        /// The monitored_subnet.
        subnet: IpAddr,
        /// Before.
        before: Health,
        /// After.
        after: Health,
    },
    /// A monitored_subnet is up again on this node (EventID NetworkInterfaceUp): packages
    /// that monitor it may run here again.
    SubnetUp {
        /// This node.
        node: NodeId,
        /// The monitored_subnet.
        subnet: IpAddr,
        /// Before.
        before: Health,
        /// After.
        after: Health,
    },
}

impl Notice {
    /// The catalogue's EventID.
    pub fn event_id(&self) -> &'static str {
        match self {
            Notice::ClusterUp { .. } => "ClusterUp",
            Notice::ClusterReformed { .. } => "ClusterReformed",
            Notice::ClusterConfigChanged { .. } => "ClusterConfigChanged",
            Notice::NodeJoined { .. } => "NodeJoined",
            Notice::NodeFailed { .. } => "NodeFailed",
            Notice::NodeHalted { .. } => "NodeHalted",
            Notice::NodeDetached { .. } => "NodeDetached",
            Notice::ClusterHalted { .. } => "ClusterHalted",
            Notice::PackageStarted { .. } => "PackageStarted",
            Notice::PackageHalted { .. } => "PackageHalted",
            Notice::PackageFailed { .. } => "PackageFailed",
            Notice::PackageFailover { .. } => "PackageFailover",
            Notice::PackageFailback { .. } => "PackageFailback",
            Notice::PackageSwitchingChanged { .. } => "PackageSwitchingChanged",
            Notice::ServiceFailed { .. } => "ServiceFailed",
            Notice::ServiceRestarted { .. } => "ServiceRestarted",
            Notice::QuorumServerUnreachable { .. } => "QuorumServerUnreachable",
            Notice::QuorumServerReachable { .. } => "QuorumServerReachable",
            Notice::QuorumLost { .. } => "QuorumLost",
            Notice::LockLunUnhealthy { .. } => "LockLunUnhealthy",
            Notice::NetworkInterfaceDown { .. } | Notice::SubnetDown { .. } => {
                "NetworkInterfaceDown"
            }
            Notice::NetworkInterfaceUp { .. } | Notice::SubnetUp { .. } => "NetworkInterfaceUp",
            Notice::GenericResourceChanged { .. } => "GenericResourceChanged",
        }
    }

    /// The notice in words, naming its nodes, packages, services and generic resources as
    /// `snapshot` does: the daemon's log line and the alert's Message.
    pub fn message(&self, snapshot: &Snapshot) -> String {
        let cluster = snapshot.name.as_str();
        let node = |node: NodeId| snapshot.node_name(node).to_owned();
        let package = |id: PackageId| snapshot.package_name(id);
        let service_of = |id, index: usize| snapshot.service_row(id, index).map(|s| s.name.clone());
        let resource_of =
            |id, index: usize| snapshot.resource_row(id, index).map(|r| r.name.clone());
        let me = || node(snapshot.observer);
        match self {
            Notice::ClusterUp { after, .. } => {
                let members: Vec<String> = after.members.iter().map(node).collect();
                format!("cluster {cluster} is up: {}", members.join(", "))
            }
            Notice::ClusterHalted { .. } => format!("cluster {cluster} halted"),
            Notice::ClusterReformed { after, .. } => {
                let members: Vec<String> = after.members.iter().map(node).collect();
                format!(
                    "cluster {cluster} re-formed; its members are {}",
                    members.join(", ")
                )
            }
            Notice::ClusterConfigChanged { before, after, .. } => format!(
                "cluster {cluster}: configuration generation {after} in effect (was {before})"
            ),
            Notice::NodeJoined { node: n, .. } => format!("node {} joined the cluster", node(*n)),
            Notice::NodeHalted { node: n, .. } => format!("node {} halted", node(*n)),
            Notice::NodeDetached { node: n, .. } => format!(
                "node {} halted, leaving its packages running detached",
                node(*n)
            ),
            Notice::NodeFailed { node: n, .. } => format!("node {} failed", node(*n)),
            Notice::PackageStarted {
                package: p,
                node: n,
                ..
            } => format!("package {} started on node {}", package(*p), node(*n)),
            Notice::PackageHalted {
                package: p,
                node: n,
                ..
            } => format!("package {} halted on node {}", package(*p), node(*n)),
            Notice::PackageFailed {
                package: p,
                node: n,
                cause,
                ..
            } => format!(
                "package {} failed on node {}: {}",
                package(*p),
                node(*n),
                describe_cause_named(
                    *cause,
                    |index| service_of(*p, index),
                    |index| resource_of(*p, index)
                )
            ),
            Notice::PackageFailover {
                package: p,
                before,
                after,
                ..
            } => match before {
                Some(from) => format!(
                    "package {} fails over from node {} to node {}",
                    package(*p),
                    node(*from),
                    node(*after)
                ),
                None => format!(
                    "package {} fails over to node {}",
                    package(*p),
                    node(*after)
                ),
            },
            Notice::PackageFailback {
                package: p,
                before,
                after,
            } => format!(
                "package {} fails back from node {} to node {}",
                package(*p),
                node(*before),
                node(*after)
            ),
            Notice::PackageSwitchingChanged {
                package: p, after, ..
            } => {
                let nodes: Vec<String> = after.switching.iter().map(node).collect();
                format!(
                    "package {}: AUTO_RUN {}, node switching enabled on {}",
                    package(*p),
                    if after.auto_run {
                        "enabled"
                    } else {
                        "disabled"
                    },
                    if nodes.is_empty() {
                        "no node".to_owned()
                    } else {
                        nodes.join(", ")
                    }
                )
            }
            Notice::ServiceFailed {
                package: p,
                service,
                node: n,
                ..
            } => {
                let name = service_of(*p, *service).unwrap_or_else(|| format!("service {service}"));
                let said = format!(
                    "service {name} of package {} exited on node {}",
                    package(*p),
                    node(*n)
                );
                if self.exhausts_restarts(snapshot) {
                    format!("{said}, no restart left")
                } else {
                    said
                }
            }
            Notice::ServiceRestarted {
                package: p,
                service,
                node: n,
                after,
                ..
            } => format!(
                "service {} of package {} restarted on node {} (restart {})",
                service_of(*p, *service).unwrap_or_else(|| format!("service {service}")),
                package(*p),
                node(*n),
                after.restarts
            ),
            Notice::GenericResourceChanged {
                package: p,
                resource,
                node: n,
                value,
                after,
                ..
            } => {
                let name =
                    resource_of(*p, *resource).unwrap_or_else(|| format!("resource {resource}"));
                let said = format!(
                    "generic resource {name} of package {} is {} on node {}",
                    package(*p),
                    after.as_str(),
                    node(*n)
                );
                match value {
                    Some(value) => format!("{said} (value {value})"),
                    None => said,
                }
            }
            Notice::QuorumServerUnreachable { .. } => {
                format!("node {} cannot reach the quorum server", me())
            }
            Notice::QuorumServerReachable { .. } => {
                format!("node {} reaches the quorum server again", me())
            }
            Notice::LockLunUnhealthy { .. } => {
                format!("node {}: the cluster lock LUN is unhealthy", me())
            }
            Notice::QuorumLost { reason, .. } => {
                format!("node {} lost quorum and fences itself ({reason:?})", me())
            }
            Notice::NetworkInterfaceDown {
                node: n, network, ..
            } => format!("heartbeat network {network} of node {} is down", node(*n)),
            Notice::NetworkInterfaceUp {
                node: n, network, ..
            } => format!(
                "heartbeat network {network} of node {} is up again",
                node(*n)
            ),
            Notice::SubnetDown {
                node: n, subnet, ..
            } => {
                format!("monitored subnet {subnet} is down on node {}", node(*n))
            }
            Notice::SubnetUp {
                node: n, subnet, ..
            } => {
                format!("monitored subnet {subnet} is up again on node {}", node(*n))
            }
        }
    }

    /// A ServiceFailed after which the service has no restart left (its package fails).
    pub fn exhausts_restarts(&self, snapshot: &Snapshot) -> bool {
        let Notice::ServiceFailed {
            package,
            service,
            after,
            ..
        } = self
        else {
            return false;
        };
        // service_restart: None unlimited (Some(0) for none).
        snapshot
            .service_row(*package, *service)
            .and_then(|s| s.max_restarts)
            .is_some_and(|max| after.restarts >= max)
    }

    /// The package concerned, if any.
    pub fn package(&self) -> Option<PackageId> {
        match *self {
            Notice::PackageStarted { package, .. }
            | Notice::PackageHalted { package, .. }
            | Notice::PackageFailed { package, .. }
            | Notice::PackageFailover { package, .. }
            | Notice::PackageFailback { package, .. }
            | Notice::PackageSwitchingChanged { package, .. }
            | Notice::ServiceFailed { package, .. }
            | Notice::ServiceRestarted { package, .. }
            | Notice::GenericResourceChanged { package, .. } => Some(package),
            _ => None,
        }
    }
}

/// What cmviewcl says of a failure cause.
pub fn describe_cause(cause: FailureCause, catalog: &Catalog, package: PackageId) -> String {
    let definition = catalog.package(package);
    describe_cause_named(
        cause,
        |index| definition.services.get(index).map(|s| s.name.clone()),
        |index| definition.resources.get(index).map(|r| r.name.clone()),
    )
}

/// What cmviewcl says of a failure cause, with the package's services and generic resources
/// named by `service` and `resource` (by index in the package file).
pub fn describe_cause_named(
    cause: FailureCause,
    service: impl Fn(usize) -> Option<String>,
    resource: impl Fn(usize) -> Option<String>,
) -> String {
    let outcome = |o: ScriptOutcome| match o {
        ScriptOutcome::Succeeded => "succeeded",
        ScriptOutcome::Failed => "failed",
        ScriptOutcome::TimedOut => "timed out",
    };
    match cause {
        FailureCause::RunScript(o) => format!("run script {}", outcome(o)),
        FailureCause::HaltScript(o) => format!("halt script {}", outcome(o)),
        FailureCause::Service(index) => {
            let name = service(index).unwrap_or_else(|| "?".to_owned());
            format!("service {name} failed with no restarts left")
        }
        FailureCause::GenericResource(index) => {
            let name = resource(index).unwrap_or_else(|| "?".to_owned());
            format!("generic resource {name} went down")
        }
        FailureCause::Subnet(subnet) => format!("monitored subnet {subnet} went down"),
        FailureCause::Dependency => "a package it depends on went down".to_string(),
        FailureCause::Reconfigure(o) => format!("online reconfiguration {}", outcome(o)),
        FailureCause::DiedWhileDetached => {
            "found not running when its node re-attached it".to_string()
        }
        FailureCause::Ordered => "halted as failed by the package coordinator".to_string(),
    }
}

/// One node's view of the cluster: everything `cmviewcl -v` shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// CLUSTER_NAME.
    pub name: String,
    /// The node whose view this is.
    pub observer: NodeId,
    /// The cluster's status as the observer sees it.
    pub status: ClusterStatus,
    /// ok when every node and package is.
    pub summary: Summary,
    /// The configuration generation.
    pub generation: u64,
    /// How many cmapplyconf given at the observer the coordinator took, then gave up (a
    /// member kept refusing the change, or running packages came to forbid it): a command
    /// waiting for its generation learns of it here.
    #[serde(default)]
    pub applies_given_up: u64,
    /// Why the last of them was given up.
    #[serde(default)]
    pub apply_given_up: Option<String>,
    /// The installed membership epoch.
    pub epoch: Epoch,
    /// The cluster coordinator (the lowest member).
    pub coordinator: Option<NodeId>,
    /// The coordinator has heard the observer's latest report of its own package
    /// instances, so that a command it judges now sees them as the observer shows them
    /// (true on the coordinator, and out of a running cluster). A command waiting for a
    /// run or halt on the observer to end waits for this too.
    #[serde(default = "yes")]
    pub reports_heard: bool,
    /// MEMBER_TIMEOUT.
    pub member_timeout: Duration,
    /// MAX_CONFIGURED_PACKAGES.
    pub max_configured_packages: u32,
    /// AUTO_START_TIMEOUT.
    #[serde(default)]
    pub auto_start_timeout: Duration,
    /// NETWORK_POLLING_INTERVAL.
    #[serde(default)]
    pub network_polling_interval: Duration,
    /// QS_POLLING_INTERVAL, with a quorum server.
    #[serde(default)]
    pub qs_polling_interval: Option<Duration>,
    /// The cluster lock.
    pub lock: LockRow,
    /// Every configured node, in cluster file order.
    pub nodes: Vec<NodeRow>,
    /// Every package, by name.
    pub packages: Vec<PackageRow>,
}

/// The cluster lock as cmviewcl -v shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LockRow {
    /// None configured.
    None,
    /// A quorum server.
    QuorumServer {
        /// QS_HOST.
        host: String,
        /// up while this node's polls are answered.
        status: Health,
        /// Why the server refused this node's connection at the last poll, if it did.
        #[serde(default)]
        refusal: Option<QuorumServerRefusal>,
    },
    /// A lock LUN.
    LockLun {
        /// This node's path to it.
        device: Option<PathBuf>,
        /// up while its reads and writes succeed; unknown before the first.
        status: Health,
    },
}

/// A lock LUN's path as cmviewcl prints it (empty when this node has none).
pub fn lun_text(device: Option<&std::path::Path>) -> String {
    device.map_or_else(String::new, |d| d.display().to_string())
}

/// A package's policies and priority in the line format (the policies are a failover
/// package's, serviceguard.md 5.1).
fn package_policies(out: &mut String, prefix: &str, package: &PackageRow) {
    if package.kind == PackageType::Failover {
        let _ = writeln!(
            out,
            "{prefix}failover_policy={}",
            package.failover_policy.keyword()
        );
        let _ = writeln!(
            out,
            "{prefix}failback_policy={}",
            package.failback_policy.keyword()
        );
    }
    match package.priority {
        Some(priority) => {
            let _ = writeln!(out, "{prefix}priority={priority}");
        }
        None => {
            let _ = writeln!(out, "{prefix}priority=no_priority");
        }
    }
}

/// A quorum server's state as cmviewcl shows it, from this node's polls: `access denied` or
/// `unsupported version` when it refused this node, running while it answers, else unknown.
pub fn quorum_server_state(status: Health, refusal: Option<QuorumServerRefusal>) -> &'static str {
    match (status, refusal) {
        (_, Some(QuorumServerRefusal::AccessDenied)) => "access denied",
        (_, Some(QuorumServerRefusal::UnsupportedVersion)) => "unsupported version",
        (Health::Up, None) => "running",
        _ => "unknown",
    }
}

/// One node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeRow {
    /// Its number.
    pub id: NodeId,
    /// NODE_NAME.
    pub name: String,
    /// Status and state.
    pub condition: NodeCondition,
    /// ok when up and running.
    pub summary: Summary,
    /// Its network interfaces.
    pub interfaces: Vec<InterfaceRow>,
    /// The monitored subnets (of every package) on it, as the observer knows them.
    pub subnets: Vec<SubnetRow>,
    /// The cluster lock as it sees it (none without a lock).
    #[serde(default)]
    pub lock: Option<NodeLock>,
}

/// The cluster lock as one node sees it (cmviewcl -v shows it under each node).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeLock {
    /// Its CLUSTER_LOCK_LUN path (none for a quorum server).
    pub device: Option<PathBuf>,
    /// Its lock LUN's health, or whether the quorum server answers its polls, as it last
    /// told; unknown for a node not running in the cluster.
    pub status: Health,
    /// Why the quorum server refused its connection at its last poll, if it did.
    #[serde(default)]
    pub refusal: Option<QuorumServerRefusal>,
}

/// A monitored subnet on one node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SubnetRow {
    /// monitored_subnet.
    pub subnet: IpAddr,
    /// up while an interface of the node that is up has an address on it (and until its
    /// monitor says anything); unknown on a node that is not a member, whose state the
    /// observer does not know.
    pub status: Health,
}

impl SubnetRow {
    /// The row of `subnet` on `node`, with `up` the members and `setting` what is known of
    /// it there.
    pub(crate) fn of(
        subnet: IpAddr,
        node: NodeId,
        up: NodeSet,
        setting: Option<ResourceValue>,
    ) -> SubnetRow {
        SubnetRow {
            subnet,
            status: if setting.is_none() && !up.contains(node) {
                Health::Unknown
            } else {
                crate::packages::catalog::subnet_health(setting)
            },
        }
    }
}

/// One network interface of a node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InterfaceRow {
    /// NETWORK_INTERFACE.
    pub name: String,
    /// Its addresses, each marked whether it carries heartbeats (and on which network).
    pub addresses: Vec<(IpAddr, Option<usize>)>,
    /// Whether heartbeats pass on it, as the observer sees it (unknown without heartbeats
    /// or without a peer to hear).
    pub status: Health,
}

/// One package.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PackageRow {
    /// Its number.
    pub id: PackageId,
    /// package_name.
    pub name: String,
    /// package_type.
    pub kind: PackageType,
    /// The package's status and state (a failover package: those of its active instance).
    pub condition: PackageCondition,
    /// ok when up and running with every service up.
    pub summary: Summary,
    /// AUTO_RUN.
    pub auto_run: bool,
    /// The nodes it is active on (for a failover package at most one: the owner).
    pub owners: NodeSet,
    /// failover_policy.
    pub failover_policy: FailoverPolicy,
    /// failback_policy.
    pub failback_policy: FailbackPolicy,
    /// priority (None: no_priority).
    pub priority: Option<u32>,
    /// Nodes that left while it may have run there, not yet known to be reset: it starts
    /// nowhere else until they are.
    pub awaiting_fence: NodeSet,
    /// Its nodes, in node_name order.
    pub nodes: Vec<PackageNodeRow>,
    /// Its dependencies.
    pub dependencies: Vec<DependencyRow>,
    /// package_description.
    #[serde(default)]
    pub description: String,
    /// node_fail_fast_enabled.
    #[serde(default)]
    pub node_fail_fast: bool,
    /// run_script_timeout (None: no_timeout).
    #[serde(default)]
    pub run_script_timeout: Option<Duration>,
    /// halt_script_timeout (None: no_timeout).
    #[serde(default)]
    pub halt_script_timeout: Option<Duration>,
    /// Its relocatable addresses (ip_address), with their ip_subnet.
    #[serde(default)]
    pub ip_addresses: Vec<(IpAddr, IpAddr)>,
}

impl PackageRow {
    /// The node rows whose script parameters (services, subnets, generic resources) are the
    /// package's: a failover package's current node; while it runs nowhere, the node where it
    /// failed (its restarts), else its primary node; every node of a multi-node package.
    pub fn script_rows(&self) -> impl Iterator<Item = &PackageNodeRow> {
        let failover = self.kind == PackageType::Failover;
        let shown = self
            .nodes
            .iter()
            .find(|r| r.current)
            .or_else(|| {
                self.nodes.iter().find(|r| {
                    matches!(
                        r.instance.state,
                        PackageState::Failed | PackageState::HaltAborted
                    )
                })
            })
            .or_else(|| self.nodes.iter().find(|r| r.order == 1))
            .map(|r| r.node);
        self.nodes
            .iter()
            .filter(move |row| !failover || Some(row.node) == shown)
    }
}

/// A package on one of its nodes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PackageNodeRow {
    /// The node.
    pub node: NodeId,
    /// NODE_NAME.
    pub name: String,
    /// 1 for the primary node, then the alternates in order.
    pub order: usize,
    /// Whether the node is up.
    pub node_status: NodeStatus,
    /// Node switching.
    pub switching: bool,
    /// Whether the package is active there.
    pub current: bool,
    /// The instance there.
    pub instance: PackageCondition,
    /// Its services there (down where it is not active).
    pub services: Vec<ServiceRow>,
    /// Its generic resources there, as this node knows them.
    pub resources: Vec<ResourceRow>,
    /// Its monitored subnets there, as this node knows them.
    pub subnets: Vec<SubnetRow>,
}

/// One generic resource of a package on a node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResourceRow {
    /// generic_resource_name.
    pub name: String,
    /// before_package_start (else during_package_start).
    pub before_package_start: bool,
    /// up, down, or unknown (a simple resource never set).
    pub status: Health,
    /// An extended resource's value (0 until set).
    pub value: Option<i64>,
    /// An extended resource's generic_resource_up_criteria in this package (`<80`).
    #[serde(default)]
    pub up_criteria: Option<String>,
}

/// One service of a package on a node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceRow {
    /// service_name.
    pub name: String,
    /// Status and restarts.
    pub condition: ServiceCondition,
    /// service_restart (None: unlimited).
    pub max_restarts: Option<u32>,
    /// service_fail_fast_enabled.
    #[serde(default)]
    pub fail_fast: bool,
    /// service_halt_timeout.
    #[serde(default)]
    pub halt_timeout: Duration,
}

/// One dependency and whether it holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DependencyRow {
    /// dependency_name's package.
    pub package: PackageId,
    /// Its name.
    pub name: String,
    /// dependency_name, the dependency's own label (filled from the package file).
    #[serde(default)]
    pub label: String,
    /// up or down.
    pub condition: DependencyCondition,
    /// Where.
    pub location: DependencyLocation,
    /// Whether it holds for the package where it runs (or on its first eligible node).
    pub satisfied: bool,
}

/// The package rows of `table`, seen with `up` the running members and `halting` the
/// members halting their packages (cmhaltnode, cmhaltcl); `node_names` by node number,
/// `restarts` gives a package's service restart counts on a node.
pub(crate) fn package_rows(
    catalog: &Catalog,
    table: &Table,
    (up, halting): (NodeSet, NodeSet),
    node_names: &[String],
    restarts: &dyn Fn(PackageId, NodeId) -> Vec<u32>,
    resources: &dyn Fn(NodeId, u16) -> Option<ResourceValue>,
) -> Vec<PackageRow> {
    catalog
        .ids()
        .map(|id| {
            let def = catalog.package(id);
            let state = table.package(id);
            let active = state.nodes_where(InstanceState::occupies);
            let condition = waiting(
                catalog,
                table,
                id,
                package_condition(def.kind, state, up),
                (up, halting),
            );
            let nodes: Vec<PackageNodeRow> = def
                .nodes
                .iter()
                .enumerate()
                .map(|(order, &node)| {
                    let instance = state.instances.get(&node).copied();
                    let counts = restarts(id, node);
                    // Every node lists the services, down where the package does not run
                    // (cmviewcl -v shows a halted package's services down).
                    let services = def
                        .services
                        .iter()
                        .zip(counts.iter().chain(std::iter::repeat(&0)))
                        .map(|(service, &count)| ServiceRow {
                            name: service.name.clone(),
                            condition: ServiceCondition {
                                status: if instance == Some(InstanceState::Running) {
                                    Health::Up
                                } else {
                                    Health::Down
                                },
                                restarts: count,
                            },
                            max_restarts: match service.restart {
                                ServiceRestart::None => Some(0),
                                ServiceRestart::Times(n) => Some(n),
                                ServiceRestart::Unlimited => None,
                            },
                            fail_fast: service.fail_fast,
                            halt_timeout: service.halt_timeout,
                        })
                        .collect::<Vec<_>>();
                    // A PARTIAL subnet that the node has no address on is not monitored there.
                    let subnets = def
                        .subnets
                        .iter()
                        .filter(|s| {
                            s.access == SubnetAccess::Full
                                || resources(node, s.index) != Some(ResourceValue::Absent)
                        })
                        .map(|s| SubnetRow::of(s.subnet, node, up, resources(node, s.index)))
                        .collect();
                    let resources = def
                        .resources
                        .iter()
                        .map(|r| {
                            let setting = resources(node, r.index);
                            ResourceRow {
                                name: r.name.clone(),
                                before_package_start: r.evaluation
                                    == crate::config::package::Evaluation::BeforePackageStart,
                                status: r.health(setting),
                                value: r.up_criteria.map(|_| match setting {
                                    Some(ResourceValue::Value(v)) => v,
                                    _ => 0,
                                }),
                                up_criteria: r.up_criteria.map(|c| c.to_string()),
                            }
                        })
                        .collect();
                    // A multi-node instance that never ran on an up node and cannot start
                    // there (AUTO_RUN or its node switching disabled, a dependency unmet)
                    // is blocked; one that ran and was halted is halted.
                    let mut instance_condition = PackageCondition::of(instance);
                    let dependencies_met = def.dependencies.iter().all(|d| {
                        let other = table.package(d.package);
                        crate::packages::placement::dependency_holds(
                            d,
                            node,
                            other.nodes_where(InstanceState::counts_as_up),
                            other.nodes_where(InstanceState::occupies),
                        )
                    });
                    if def.kind != PackageType::Failover
                        && instance.is_none()
                        && up.contains(node)
                        && !state.ran.contains(node)
                        && (!state.auto_run || !state.switching.contains(node) || !dependencies_met)
                    {
                        instance_condition.state = PackageState::Blocked;
                    }
                    PackageNodeRow {
                        resources,
                        subnets,
                        node,
                        name: node_names.get(node.index()).cloned().unwrap_or_default(),
                        order: order + 1,
                        node_status: if up.contains(node) {
                            NodeStatus::Up
                        } else {
                            NodeStatus::Down
                        },
                        switching: state.switching.contains(node),
                        current: active.contains(node),
                        instance: instance_condition,
                        services,
                    }
                })
                .collect();
            let where_ = active
                .lowest()
                .or_else(|| def.nodes.iter().copied().find(|n| up.contains(*n)));
            let dependencies = def
                .dependencies
                .iter()
                .map(|d| {
                    let other = table.package(d.package);
                    let up_on = other.nodes_where(InstanceState::counts_as_up);
                    let active_on = other.nodes_where(InstanceState::occupies);
                    DependencyRow {
                        package: d.package,
                        name: catalog.package(d.package).name.clone(),
                        label: String::new(),
                        condition: d.condition,
                        location: d.location,
                        satisfied: where_.is_some_and(|node| {
                            crate::packages::placement::dependency_holds(d, node, up_on, active_on)
                        }),
                    }
                })
                .collect();
            let services_up = nodes
                .iter()
                .filter(|n| n.current)
                .flat_map(|n| &n.services)
                .all(|s| s.condition.status == Health::Up);
            let ok = condition.status == PackageStatus::Up
                && condition.state == PackageState::Running
                && services_up;
            PackageRow {
                id,
                name: def.name.clone(),
                kind: def.kind,
                condition,
                summary: if ok { Summary::Ok } else { Summary::Degraded },
                auto_run: state.auto_run,
                owners: active,
                failover_policy: def.failover_policy,
                failback_policy: def.failback_policy,
                priority: def.priority,
                awaiting_fence: state.awaiting_fence,
                nodes,
                dependencies,
                // The package file's details: the caller fills them from its configuration.
                description: String::new(),
                node_fail_fast: false,
                run_script_timeout: None,
                halt_script_timeout: None,
                ip_addresses: Vec::new(),
            }
        })
        .collect()
}

/// start_wait and halt_wait: a package that would start waits for a package it depends on
/// that is starting; a package running on a halting node waits there for the packages that
/// depend on it (same_node) to halt first.
fn waiting(
    catalog: &Catalog,
    table: &Table,
    id: PackageId,
    condition: PackageCondition,
    (up, halting): (NodeSet, NodeSet),
) -> PackageCondition {
    let def = catalog.package(id);
    let state = table.package(id);
    let up_dependencies = || {
        def.dependencies
            .iter()
            .filter(|d| d.condition == DependencyCondition::Up)
    };
    let halted = condition.status == PackageStatus::Down && condition.state == PackageState::Halted;
    let startable =
        state.auto_run && !state.maintenance && !state.switching.intersection(up).is_empty();
    let predecessor_starting = up_dependencies().any(|d| {
        table
            .package(d.package)
            .instances
            .values()
            .any(|s| *s == InstanceState::Starting)
    });
    if halted && startable && predecessor_starting {
        return PackageCondition {
            status: PackageStatus::StartWait,
            state: PackageState::StartWait,
        };
    }
    let held_back = state
        .nodes_where(|s| s == InstanceState::Running)
        .intersection(halting)
        .iter()
        .any(|node| {
            catalog.ids().any(|other| {
                catalog.package(other).dependencies.iter().any(|d| {
                    d.package == id
                        && d.condition == DependencyCondition::Up
                        && d.location == DependencyLocation::SameNode
                }) && table
                    .package(other)
                    .instances
                    .get(&node)
                    .is_some_and(|s| s.occupies())
            })
        });
    if condition.state == PackageState::Running && held_back {
        return PackageCondition {
            status: PackageStatus::HaltWait,
            state: PackageState::HaltWait,
        };
    }
    condition
}

/// A package's status and state from its instances: a failover package takes its active
/// instance's; a multi-node package is up where it runs anywhere, a system multi-node
/// package only where it runs on every member.
fn package_condition(
    kind: PackageType,
    state: &crate::packages::PackageState,
    up: NodeSet,
) -> PackageCondition {
    // The instance that says most: running, then the transitions, then the failures.
    let rank = |s: InstanceState| match s {
        InstanceState::Running => 0,
        InstanceState::Reconfiguring => 0,
        InstanceState::Detached => 1,
        InstanceState::Starting => 2,
        InstanceState::Halting => 3,
        InstanceState::Failing => 4,
        InstanceState::FailWait => 5,
        InstanceState::HaltAborted => 6,
        InstanceState::Failed => 7,
    };
    let best = state.instances.values().copied().min_by_key(|s| rank(*s));
    let mut condition = PackageCondition::of(best);
    let running = state.nodes_where(|s| s == InstanceState::Running);
    let moving = state.instances.values().any(|s| s.is_transitional());
    if kind != PackageType::Failover && moving {
        condition = PackageCondition {
            status: PackageStatus::Changing,
            state: PackageState::Changing,
        };
    }
    if kind == PackageType::SystemMultiNode
        && condition.status == PackageStatus::Up
        && !up.difference(running).is_empty()
    {
        condition.status = PackageStatus::Down;
    }
    if state.maintenance {
        condition.state = PackageState::Maintenance;
    } else if condition.status == PackageStatus::Down
        && condition.state == PackageState::Halted
        && !state.awaiting_fence.is_empty()
        && state.auto_run
    {
        condition.state = PackageState::RelocateWait;
    }
    condition
}

/// The default of [`Snapshot::reports_heard`] in the status of a daemon that does not tell
/// it.
fn yes() -> bool {
    true
}

impl Snapshot {
    /// Package `id`'s row.
    pub fn package_row(&self, id: PackageId) -> Option<&PackageRow> {
        self.packages.iter().find(|p| p.id == id)
    }

    /// Package `id`'s name (its number when the snapshot has no row for it).
    pub fn package_name(&self, id: PackageId) -> String {
        self.package_row(id)
            .map_or_else(|| format!("package {}", id.0), |p| p.name.clone())
    }

    /// Service `index` of package `id` (every node row lists the package's services, in
    /// file order).
    pub fn service_row(&self, id: PackageId, index: usize) -> Option<&ServiceRow> {
        self.package_row(id)?.nodes.first()?.services.get(index)
    }

    /// Generic resource `index` of package `id` (listed as the services are).
    pub fn resource_row(&self, id: PackageId, index: usize) -> Option<&ResourceRow> {
        self.package_row(id)?.nodes.first()?.resources.get(index)
    }

    /// The name of node `id` (its number when the snapshot has no row for it).
    pub fn node_name(&self, id: NodeId) -> &str {
        self.nodes
            .iter()
            .find(|row| row.id == id)
            .map_or("?", |row| row.name.as_str())
    }

    /// While the observer re-forms the cluster: the snapshot with the re-formation left
    /// out, as it showed before it began (the members running, the cluster up). `None`
    /// when the observer is not re-forming.
    ///
    /// A re-formation is passing: what it changes shows once a membership is installed.
    /// Lifecycle indications compare these, so that a listener hears a node go from
    /// running to halted once, from the node that commits the new membership, rather than
    /// from running to reforming from the one that coordinated before and from reforming
    /// to halted from the next, which may arrive in either order.
    pub fn settled(&self) -> Option<Snapshot> {
        let own = self.nodes.iter().find(|row| row.id == self.observer)?;
        if own.condition.state != NodeState::Reforming {
            return None;
        }
        let mut settled = self.clone();
        for row in &mut settled.nodes {
            if row.condition.state == NodeState::Reforming {
                row.condition = NodeCondition::RUNNING;
                row.summary = Summary::Ok;
            }
        }
        settled.status = ClusterStatus::Up;
        let ok = settled.nodes.iter().all(|n| n.summary == Summary::Ok)
            && settled.packages.iter().all(|p| p.summary == Summary::Ok);
        settled.summary = if ok { Summary::Ok } else { Summary::Degraded };
        Some(settled)
    }

    /// `cmviewcl -f line -s config`: the configuration alone, in the line format's names
    /// and prefixes, without any status (no status, state, summary, owner, switching or
    /// restart counts). A multi-node package's services and generic resources are the same
    /// on every node, so they are given once, for the package, as a failover package's are.
    pub fn to_config_line(&self) -> String {
        let mut out = String::new();
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let timeout =
            |t: Option<Duration>| t.map_or("no_timeout".to_owned(), |t| t.as_secs().to_string());
        let _ = writeln!(out, "name={}", self.name);
        let _ = writeln!(out, "config_generation={}", self.generation);
        let _ = writeln!(out, "member_timeout={}", self.member_timeout.as_micros());
        let _ = writeln!(
            out,
            "max_configured_packages={}",
            self.max_configured_packages
        );
        match &self.lock {
            LockRow::None => {}
            LockRow::QuorumServer { host, .. } => {
                let _ = writeln!(out, "quorum_server:{host}|name={host}");
            }
            LockRow::LockLun { device, .. } => {
                let device = lun_text(device.as_deref());
                let _ = writeln!(out, "cluster_lock_lun:{device}|name={device}");
            }
        }
        for node in &self.nodes {
            let prefix = format!("node:{}|", node.name);
            let _ = writeln!(out, "{prefix}name={}", node.name);
            for interface in &node.interfaces {
                for (address, network) in &interface.addresses {
                    let _ = writeln!(
                        out,
                        "{prefix}interface:{}|ip_address:{address}|heartbeat={}",
                        interface.name,
                        yes_no(network.is_some())
                    );
                }
            }
            for subnet in &node.subnets {
                let _ = writeln!(out, "{prefix}subnet:{0}|name={0}", subnet.subnet);
            }
        }
        for package in &self.packages {
            let prefix = format!("package:{}|", package.name);
            let _ = writeln!(out, "{prefix}name={}", package.name);
            let _ = writeln!(out, "{prefix}type={}", package.kind.keyword());
            let _ = writeln!(out, "{prefix}description={}", package.description);
            package_policies(&mut out, &prefix, package);
            let _ = writeln!(
                out,
                "{prefix}node_fail_fast_enabled={}",
                yes_no(package.node_fail_fast)
            );
            let _ = writeln!(
                out,
                "{prefix}run_script_timeout={}",
                timeout(package.run_script_timeout)
            );
            let _ = writeln!(
                out,
                "{prefix}halt_script_timeout={}",
                timeout(package.halt_script_timeout)
            );
            if let Some(row) = package.nodes.first() {
                for service in &row.services {
                    let service_prefix = format!("{prefix}service:{}|", service.name);
                    let max = service
                        .max_restarts
                        .map_or("unlimited".to_string(), |m| m.to_string());
                    let _ = writeln!(out, "{service_prefix}max_restarts={max}");
                    let _ = writeln!(
                        out,
                        "{service_prefix}fail_fast_enabled={}",
                        yes_no(service.fail_fast)
                    );
                    let _ = writeln!(
                        out,
                        "{service_prefix}halt_timeout={}",
                        service.halt_timeout.as_secs()
                    );
                }
                for resource in &row.resources {
                    let resource_prefix = format!("{prefix}generic_resource:{}|", resource.name);
                    let evaluation = if resource.before_package_start {
                        "before_package_start"
                    } else {
                        "during_package_start"
                    };
                    let _ = writeln!(out, "{resource_prefix}evaluation_type={evaluation}");
                    if let Some(criteria) = &resource.up_criteria {
                        let _ = writeln!(out, "{resource_prefix}up_criteria={criteria}");
                    }
                }
            }
            for (address, subnet) in &package.ip_addresses {
                let _ = writeln!(out, "{prefix}ip_address:{address}|subnet={subnet}");
            }
            for dependency in &package.dependencies {
                let dep = format!("{prefix}dependency:{}|", dependency.name);
                let _ = writeln!(out, "{dep}condition={}", dependency.condition.keyword());
                let _ = writeln!(out, "{dep}location={}", dependency.location.keyword());
            }
            for row in &package.nodes {
                let _ = writeln!(out, "{prefix}node:{}|order={}", row.name, row.order);
            }
        }
        out
    }

    /// The snapshot in `cmviewcl -v -f line` form (serviceguard.md 2.4): one
    /// `prefix|attribute=value` per line.
    pub fn to_line(&self) -> String {
        let mut out = String::new();
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let enabled = |b: bool| if b { "enabled" } else { "disabled" };
        let _ = writeln!(out, "name={}", self.name);
        let _ = writeln!(out, "status={}", self.status);
        let _ = writeln!(out, "summary={}", self.summary);
        let _ = writeln!(out, "config_generation={}", self.generation);
        let _ = writeln!(out, "member_timeout={}", self.member_timeout.as_micros());
        let _ = writeln!(
            out,
            "max_configured_packages={}",
            self.max_configured_packages
        );
        if let Some(coordinator) = self.coordinator {
            let _ = writeln!(out, "coordinator={}", self.node_name(coordinator));
        }
        match &self.lock {
            LockRow::None => {}
            LockRow::QuorumServer {
                host,
                status,
                refusal,
            } => {
                let state = quorum_server_state(*status, *refusal);
                let _ = writeln!(out, "quorum_server:{host}|status={status}");
                let _ = writeln!(out, "quorum_server:{host}|state={state}");
            }
            LockRow::LockLun { device, status } => {
                let device = lun_text(device.as_deref());
                let _ = writeln!(out, "cluster_lock_lun:{device}|status={status}");
            }
        }
        for node in &self.nodes {
            let prefix = format!("node:{}|", node.name);
            let _ = writeln!(out, "{prefix}name={}", node.name);
            let _ = writeln!(out, "{prefix}status={}", node.condition.status);
            let _ = writeln!(out, "{prefix}state={}", node.condition.state);
            let _ = writeln!(out, "{prefix}summary={}", node.summary);
            for interface in &node.interfaces {
                let prefix = format!("{prefix}interface:{}|", interface.name);
                let _ = writeln!(out, "{prefix}status={}", interface.status);
                for (address, network) in &interface.addresses {
                    let _ = writeln!(
                        out,
                        "{prefix}ip_address:{address}|heartbeat={}",
                        yes_no(network.is_some())
                    );
                }
            }
            for subnet in &node.subnets {
                let _ = writeln!(
                    out,
                    "{prefix}subnet:{}|status={}",
                    subnet.subnet, subnet.status
                );
            }
        }
        for package in &self.packages {
            let prefix = format!("package:{}|", package.name);
            let _ = writeln!(out, "{prefix}name={}", package.name);
            let _ = writeln!(out, "{prefix}type={}", package.kind.keyword());
            let _ = writeln!(out, "{prefix}status={}", package.condition.status);
            let _ = writeln!(out, "{prefix}state={}", package.condition.state);
            let _ = writeln!(out, "{prefix}summary={}", package.summary);
            let _ = writeln!(out, "{prefix}autorun={}", enabled(package.auto_run));
            let owners: Vec<&str> = package.owners.iter().map(|n| self.node_name(n)).collect();
            if !owners.is_empty() {
                let _ = writeln!(out, "{prefix}owner={}", owners.join(","));
            }
            package_policies(&mut out, &prefix, package);
            // A failover package's services, and its resources and subnets on the node it
            // runs on, are the package's own; everything else is told node by node, each
            // node's lines together after its order and status.
            let failover = package.kind == PackageType::Failover;
            if failover {
                for row in package.script_rows() {
                    line_services(&mut out, &prefix, row);
                }
                if let Some(row) = package.nodes.iter().find(|r| r.current) {
                    line_resources_and_subnets(&mut out, &prefix, row);
                }
            }
            for dependency in &package.dependencies {
                let dep = format!("{prefix}dependency:{}|", dependency.name);
                let _ = writeln!(out, "{dep}condition={}", dependency.condition.keyword());
                let _ = writeln!(out, "{dep}location={}", dependency.location.keyword());
                let _ = writeln!(out, "{dep}satisfied={}", yes_no(dependency.satisfied));
            }
            for row in &package.nodes {
                let node = format!("{prefix}node:{}|", row.name);
                let _ = writeln!(out, "{node}order={}", row.order);
                let _ = writeln!(out, "{node}status={}", row.node_status);
                let _ = writeln!(out, "{node}switching={}", enabled(row.switching));
                let _ = writeln!(out, "{node}is_current={}", yes_no(row.current));
                if !failover {
                    let _ = writeln!(out, "{node}package_status={}", row.instance.status);
                    let _ = writeln!(out, "{node}package_state={}", row.instance.state);
                    line_services(&mut out, &node, row);
                }
                if !(failover && row.current) {
                    line_resources_and_subnets(&mut out, &node, row);
                }
            }
        }
        out
    }
}

/// The `-f line` status of a package's services on one node, under `prefix`.
fn line_services(out: &mut String, prefix: &str, row: &PackageNodeRow) {
    for service in &row.services {
        let service_prefix = format!("{prefix}service:{}|", service.name);
        let max = service
            .max_restarts
            .map_or("unlimited".to_string(), |m| m.to_string());
        let _ = writeln!(out, "{service_prefix}status={}", service.condition.status);
        let _ = writeln!(
            out,
            "{service_prefix}restarts={}",
            service.condition.restarts
        );
        let _ = writeln!(out, "{service_prefix}max_restarts={max}");
    }
}

/// The `-f line` status of a package's generic resources and subnets on one node, under
/// `prefix`.
fn line_resources_and_subnets(out: &mut String, prefix: &str, row: &PackageNodeRow) {
    for resource in &row.resources {
        let resource_prefix = format!("{prefix}generic_resource:{}|", resource.name);
        let _ = writeln!(out, "{resource_prefix}status={}", resource.status);
        if let Some(value) = resource.value {
            let _ = writeln!(out, "{resource_prefix}current_value={value}");
        }
    }
    for subnet in &row.subnets {
        let _ = writeln!(
            out,
            "{prefix}subnet:{}|status={}",
            subnet.subnet, subnet.status
        );
    }
}
