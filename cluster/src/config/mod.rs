//! Serviceguard's configuration files, read as Serviceguard writes them and checked as
//! `cmcheckconf` checks them: every problem is reported (not only the first), each with its
//! file, line, parameter and reason. Sans-IO: the callers read the files.
//!
//! - [`ascii`]: the `PARAMETER value` line format shared by the cluster and package files.
//! - [`cluster`]: the cluster ASCII file (serviceguard.md section 3.1).
//! - [`package`]: modular package files (section 5.1), and the checks across packages.
//! - [`write`]: the configurations written back out as those files (`cmgetconf`).

pub mod ascii;
pub mod cluster;
pub mod package;
pub mod write;

use std::fmt;

/// How serious a finding is: errors reject the file, warnings and notes do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth knowing (a value that is allowed but unusual).
    Note,
    /// Accepted, but should change (a deprecated parameter).
    Warning,
    /// The file is rejected.
    Error,
}

/// One finding about a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// How serious it is.
    pub severity: Severity,
    /// The file, as the caller named it.
    pub file: String,
    /// The line (1-based); 0 for the file as a whole (a missing parameter).
    pub line: usize,
    /// The parameter concerned, as Serviceguard spells it (upper case), if any.
    pub parameter: Option<String>,
    /// Why.
    pub reason: String,
}

impl fmt::Display for Diagnostic {
    /// `file:line: error: PARAMETER: reason`, the line left out when it is 0.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        write!(f, ": {severity}: ")?;
        if let Some(parameter) = &self.parameter {
            write!(f, "{parameter}: ")?;
        }
        f.write_str(&self.reason)
    }
}

/// A configuration that passed the checks, with the warnings and notes found on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked<T> {
    /// The configuration.
    pub config: T,
    /// Warnings and notes (no errors).
    pub findings: Vec<Diagnostic>,
}

/// Collects the findings of one file.
#[derive(Debug)]
pub(crate) struct Findings {
    file: String,
    list: Vec<Diagnostic>,
}

impl Findings {
    pub(crate) fn new(file: &str) -> Findings {
        Findings {
            file: file.to_owned(),
            list: Vec::new(),
        }
    }

    pub(crate) fn add(
        &mut self,
        severity: Severity,
        line: usize,
        parameter: Option<&str>,
        reason: impl Into<String>,
    ) {
        self.list.push(Diagnostic {
            severity,
            file: self.file.clone(),
            line,
            parameter: parameter.map(str::to_owned),
            reason: reason.into(),
        });
    }

    pub(crate) fn error(&mut self, line: usize, parameter: &str, reason: impl Into<String>) {
        self.add(Severity::Error, line, Some(parameter), reason);
    }

    pub(crate) fn warning(&mut self, line: usize, parameter: &str, reason: impl Into<String>) {
        self.add(Severity::Warning, line, Some(parameter), reason);
    }

    pub(crate) fn note(&mut self, line: usize, parameter: &str, reason: impl Into<String>) {
        self.add(Severity::Note, line, Some(parameter), reason);
    }

    /// The configuration with its warnings, or every finding when there is an error. The
    /// findings come in line order.
    pub(crate) fn finish<T>(mut self, config: T) -> Result<Checked<T>, Vec<Diagnostic>> {
        self.list.sort_by_key(|d| d.line);
        if self.list.iter().any(|d| d.severity == Severity::Error) {
            Err(self.list)
        } else {
            Ok(Checked {
                config,
                findings: self.list,
            })
        }
    }
}

/// A configuration generation: the cluster file and the package files, checked, as
/// cmapplyconf distributes them.
///
/// It has two numbers. `number` tells generations apart inside the cluster: a running
/// cluster numbers a new generation with the current number plus the epoch of the
/// membership proposal that carries it, above the current one and different for each
/// attempt, even with the same files, so that two attempts made from one generation are
/// never taken for each other. An offline change (cmapplyconf while the cluster is halted)
/// must be numbered above every generation the nodes persisted, or a restarting node keeps
/// its persisted online generation instead (the runtime numbers it so). `sequence` is the
/// generation operators and monitoring see (cmviewcl, HP_SGCluster.ConfigGeneration,
/// cmapplyconf's base): 1 for the files the cluster was created from, one more with each
/// cmapplyconf that took effect.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Generation {
    /// The generation number (the cluster's identity of it).
    pub number: u64,
    /// The generation as shown: the one it was made from plus one.
    pub sequence: u64,
    /// The cluster file.
    pub cluster: cluster::ClusterConfig,
    /// The package files.
    pub packages: Vec<package::PackageConfig>,
}

impl Generation {
    /// Whether this generation deletes node `name`: it has nodes, and none of them is
    /// `name` (deleted while the cluster ran, or left out). Only a node's retirement
    /// persists such a generation on it.
    pub fn retires(&self, name: &str) -> bool {
        !self.cluster.nodes.is_empty() && self.cluster.position(name).is_none()
    }
}

/// The cluster parameters a running cluster cannot change (cmapplyconf needs the cluster
/// halted for them): the name, the kept nodes' heartbeat networks, the address family and
/// the cluster lock. Nodes may be added while it runs ([`added_nodes`]: numbered after every
/// number in use, as [`keep_node_order`] puts them), unless it has a lock LUN (its blocks
/// are counted at start), and deleted ([`deleted_nodes`]: each keeps its number, unused,
/// until the cluster is halted); that they are not members is the running cluster's to
/// check. A node deleted while the cluster ran is added again only with the cluster halted,
/// and the numbers in use are at most [`crate::core::NodeSet::CAPACITY`]. MEMBER_TIMEOUT
/// changes online: every node announces the lease and grace it takes with each heartbeat
/// (core::Term), so the survivors' fence wait follows the timing the lost node had,
/// whichever is in effect on them. `new` is as [`keep_node_order`] gives it. Returns the
/// parameters that differ. It also tells whether a node may take a generation committed
/// while it was away, several cmapplyconfs on from its own.
pub fn needs_halted_cluster(
    old: &cluster::ClusterConfig,
    new: &cluster::ClusterConfig,
) -> Vec<&'static str> {
    let mut differ = Vec::new();
    if !old.name.eq_ignore_ascii_case(&new.name) {
        differ.push("CLUSTER_NAME");
    }
    if old.address_family != new.address_family {
        differ.push("HOSTNAME_ADDRESS_FAMILY");
    }
    // Each number as it is used: the node's name, marked when it was deleted.
    let numbering = |c: &cluster::ClusterConfig| -> Vec<(String, bool)> {
        c.nodes
            .iter()
            .map(|n| (n.name.to_ascii_lowercase(), n.deleted))
            .collect()
    };
    let (before, after) = (numbering(old), numbering(new));
    // Each node kept, as it was and as it is.
    let kept: Vec<(&cluster::NodeConfig, &cluster::NodeConfig)> = old
        .in_cluster()
        .filter_map(|(_, o)| Some((o, new.node(&o.name)?)))
        .collect();
    // The numbers in use stay, each for its node (deleted now, or still there); the added
    // nodes come after them.
    let numbers_kept = after.len() >= before.len()
        && before
            .iter()
            .zip(&after)
            .all(|((a, gone), (b, deleted))| a == b && (!gone || *deleted));
    let added_again = after[before.len().min(after.len())..]
        .iter()
        .any(|(name, _)| before.iter().any(|(n, _)| n == name));
    // Numbers after those of `old` may be deleted already: a generation committed in the
    // cluster, taken by a node that missed the ones that added and then deleted them.
    if !numbers_kept {
        differ.push("NODE_NAME");
    } else if added_again {
        differ.push("NODE_NAME (a node deleted while the cluster ran, added again)");
    } else if after.len() > crate::core::NodeSet::CAPACITY {
        differ.push("NODE_NAME (more nodes added than numbers left until the cluster is halted)");
    } else if after.len() > before.len() && old.lock == cluster::ClusterLock::LockLun {
        differ.push("NODE_NAME (nodes added to a cluster with a CLUSTER_LOCK_LUN)");
    }
    if kept
        .iter()
        .any(|(o, n)| o.heartbeat_addresses().ne(n.heartbeat_addresses()))
    {
        differ.push("HEARTBEAT_IP");
    }
    let same_luns = kept.iter().all(|(o, n)| o.lock_lun == n.lock_lun);
    let same_lock = match (&old.lock, &new.lock) {
        (
            cluster::ClusterLock::QuorumServer {
                host: a,
                alternate: b,
                timeout_extension: c,
                ..
            },
            cluster::ClusterLock::QuorumServer {
                host: x,
                alternate: y,
                timeout_extension: z,
                ..
            },
        ) => a == x && b == y && c == z,
        (a, b) => a == b && same_luns,
    };
    if !same_lock {
        differ.push(match (&old.lock, &new.lock) {
            (
                cluster::ClusterLock::QuorumServer { .. },
                cluster::ClusterLock::QuorumServer { .. },
            ) => "QS_HOST",
            (cluster::ClusterLock::LockLun, cluster::ClusterLock::LockLun) => "CLUSTER_LOCK_LUN",
            _ => "QS_HOST/CLUSTER_LOCK_LUN",
        });
    }
    differ
}

/// The nodes `new` adds to `old` (NODE_NAMEs as `new` spells them, in its order).
pub fn added_nodes(old: &cluster::ClusterConfig, new: &cluster::ClusterConfig) -> Vec<String> {
    new.in_cluster()
        .filter(|(_, n)| old.node(&n.name).is_none())
        .map(|(_, n)| n.name.clone())
        .collect()
}

/// The nodes of `old` that `new` deletes, with their numbers (NODE_NAMEs as `old` spells
/// them).
pub fn deleted_nodes(
    old: &cluster::ClusterConfig,
    new: &cluster::ClusterConfig,
) -> Vec<(usize, String)> {
    old.in_cluster()
        .filter(|(_, o)| new.node(&o.name).is_none())
        .map(|(index, o)| (index, o.name.clone()))
        .collect()
}

/// `new` (a cluster file, or a configuration in effect) with its nodes numbered as a running
/// cluster numbers them: each number in use in `old` stays its node's (a node `new` leaves
/// out, or one deleted before, stays as [`cluster::NodeConfig::deleted`]), and the nodes
/// `new` adds follow, in its order. A node's number is what the members' heartbeats, lives,
/// lock grants and package tables are keyed by, so a running cluster keeps it; the order the
/// operator lists the nodes in means nothing else there.
pub fn keep_node_order(
    old: &cluster::ClusterConfig,
    mut new: cluster::ClusterConfig,
) -> cluster::ClusterConfig {
    let mut rest = std::mem::take(&mut new.nodes);
    // Numbered by `old` alone: those `new` marks deleted are in no file.
    rest.retain(|n| !n.deleted);
    for o in &old.nodes {
        let at = rest
            .iter()
            .position(|n| !o.deleted && n.name.eq_ignore_ascii_case(&o.name));
        match at {
            Some(i) => new.nodes.push(rest.remove(i)),
            None => new.nodes.push(cluster::NodeConfig {
                deleted: true,
                ..o.clone()
            }),
        }
    }
    new.nodes.extend(rest);
    new
}
