//! cmviewcl's formats (serviceguard.md section 2) printed from a [`Snapshot`]: the table, its
//! `-v` form, `-f line` and our `-f json`, with the `-p`, `-n` and `-l` selections.

use std::fmt::Write as _;

use crate::config::package::PackageType;
use crate::status::{Health, LockRow, PackageRow, Snapshot};

/// cmviewcl's `-l`: how much is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The cluster's row only.
    Cluster,
    /// The cluster and its nodes, without packages.
    Node,
    /// The packages only.
    Package,
}

impl Level {
    /// `cluster`, `node` or `package`.
    pub fn parse(word: &str) -> Option<Level> {
        match word {
            "cluster" => Some(Level::Cluster),
            "node" => Some(Level::Node),
            "package" => Some(Level::Package),
            _ => None,
        }
    }
}

/// What cmviewcl was asked to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// `-v`.
    pub verbose: bool,
    /// `-p`: only these packages.
    pub packages: Vec<String>,
    /// `-n`: only these nodes.
    pub nodes: Vec<String>,
    /// `-l`.
    pub level: Option<Level>,
    /// `-s config`: the configuration alone, without status (the line format).
    pub config: bool,
}

/// A name the selection names that the snapshot does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown(pub String);

impl std::fmt::Display for Unknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unknown {}

impl Selection {
    /// Checks that every named package and node exists.
    pub fn check(&self, snapshot: &Snapshot) -> Result<(), Unknown> {
        for package in &self.packages {
            if !snapshot.packages.iter().any(|p| &p.name == package) {
                return Err(Unknown(format!("package {package} does not exist")));
            }
        }
        for node in &self.nodes {
            if !snapshot.nodes.iter().any(|n| &n.name == node) {
                return Err(Unknown(format!("node {node} is not in the cluster")));
            }
        }
        Ok(())
    }

    fn package_shown(&self, name: &str) -> bool {
        self.packages.is_empty() || self.packages.iter().any(|p| p == name)
    }

    fn node_shown(&self, name: &str) -> bool {
        self.nodes.is_empty() || self.nodes.iter().any(|n| n == name)
    }

    /// Packages alone with `-n`: those active on a node named (a failover package's owner,
    /// a multi-node package's instances), as the node's own block of the full view lists.
    fn package_on_nodes(&self, snapshot: &Snapshot, package: &PackageRow) -> bool {
        self.nodes.is_empty()
            || snapshot
                .nodes
                .iter()
                .any(|n| package.owners.contains(n.id) && self.node_shown(&n.name))
    }

    /// Packages alone: `-p` or `-l package`.
    fn packages_only(&self) -> bool {
        !self.packages.is_empty() || self.level == Some(Level::Package)
    }

    /// Packages alone on nodes named (`-p` or `-l package`, with `-n`), when none of them
    /// is active there: the views then show nothing, and this says why (for standard
    /// error; the output itself stays empty, for scripts that test it).
    pub fn unmatched(&self, snapshot: &Snapshot) -> Option<String> {
        if self.nodes.is_empty() || !self.packages_only() {
            return None;
        }
        let any = snapshot
            .packages
            .iter()
            .any(|p| self.package_shown(&p.name) && self.package_on_nodes(snapshot, p));
        if any {
            return None;
        }
        let packages = match self.packages.as_slice() {
            [] => "no package is".to_owned(),
            [one] => format!("package {one} is not"),
            many => format!("none of packages {} is", many.join(", ")),
        };
        let nodes = match self.nodes.as_slice() {
            [one] => format!("node {one}"),
            many => format!("nodes {}", many.join(", ")),
        };
        Some(format!("{packages} active on {nodes}"))
    }
}

/// `name` padded to `width`, always followed by at least one space.
fn cell(name: &str, width: usize) -> String {
    if name.len() < width {
        format!("{name:<width$}")
    } else {
        format!("{name} ")
    }
}

fn enabled(on: bool) -> &'static str {
    if on {
        "enabled"
    } else {
        "disabled"
    }
}

const PACKAGE_HEADER: &str = "PACKAGE        STATUS           STATE            AUTO_RUN     NODE";
const MULTI_NODE_HEADER: &str =
    "PACKAGE        STATUS           STATE            AUTO_RUN     SYSTEM";

/// The table of `cmviewcl` and, with `selection.verbose`, of `cmviewcl -v`.
pub fn table(snapshot: &Snapshot, selection: &Selection) -> String {
    let mut out = String::new();
    if selection.packages_only() {
        packages_alone(&mut out, snapshot, selection);
        return out;
    }
    let _ = writeln!(out, "CLUSTER        STATUS");
    let _ = writeln!(out, "{}{}", cell(&snapshot.name, 15), snapshot.status);
    if selection.level == Some(Level::Cluster) {
        return out;
    }
    let with_packages = selection.level != Some(Level::Node);
    for node in snapshot
        .nodes
        .iter()
        .filter(|n| selection.node_shown(&n.name))
    {
        out.push('\n');
        let _ = writeln!(out, "  NODE           STATUS       STATE");
        let _ = writeln!(
            out,
            "  {}{}{}",
            cell(&node.name, 15),
            cell(node.condition.status.as_str(), 13),
            node.condition.state
        );
        if selection.verbose {
            node_details(&mut out, snapshot, node);
        }
        if !with_packages {
            continue;
        }
        let owned: Vec<&PackageRow> = snapshot
            .packages
            .iter()
            .filter(|p| p.kind == PackageType::Failover && p.owners.contains(node.id))
            .collect();
        packages_block(
            &mut out,
            snapshot,
            PACKAGE_HEADER,
            &owned,
            selection.verbose,
        );
    }
    if !with_packages || !selection.nodes.is_empty() {
        return out;
    }
    let unowned: Vec<&PackageRow> = snapshot
        .packages
        .iter()
        .filter(|p| p.kind == PackageType::Failover && p.owners.is_empty())
        .collect();
    if !unowned.is_empty() {
        let _ = writeln!(out, "\nUNOWNED_PACKAGES");
        packages_block(
            &mut out,
            snapshot,
            PACKAGE_HEADER,
            &unowned,
            selection.verbose,
        );
    }
    let multi: Vec<&PackageRow> = snapshot
        .packages
        .iter()
        .filter(|p| p.kind != PackageType::Failover)
        .collect();
    if !multi.is_empty() {
        let _ = writeln!(out, "\nMULTI_NODE_PACKAGES");
        packages_block(
            &mut out,
            snapshot,
            MULTI_NODE_HEADER,
            &multi,
            selection.verbose,
        );
    }
    out
}

/// `-p` or `-l package`: each package under a header of its own, the failover packages
/// first, then the multi-node ones in a MULTI_NODE_PACKAGES section with the SYSTEM column,
/// as the full view shows them.
fn packages_alone(out: &mut String, snapshot: &Snapshot, selection: &Selection) {
    let shown = |p: &&PackageRow| {
        selection.package_shown(&p.name) && selection.package_on_nodes(snapshot, p)
    };
    let (failover, multi): (Vec<&PackageRow>, Vec<&PackageRow>) = snapshot
        .packages
        .iter()
        .filter(shown)
        .partition(|p| p.kind == PackageType::Failover);
    for package in failover {
        let _ = writeln!(out, "    {PACKAGE_HEADER}");
        package_row(out, snapshot, package, selection.verbose);
        out.push('\n');
    }
    if !multi.is_empty() {
        let _ = writeln!(out, "MULTI_NODE_PACKAGES\n");
    }
    for package in multi {
        let _ = writeln!(out, "    {MULTI_NODE_HEADER}");
        package_row(out, snapshot, package, selection.verbose);
        out.push('\n');
    }
}

/// Package rows under one header; with `-v`, each package under a header of its own, since
/// its parameters follow it.
fn packages_block(
    out: &mut String,
    snapshot: &Snapshot,
    header: &str,
    packages: &[&PackageRow],
    verbose: bool,
) {
    for (index, package) in packages.iter().enumerate() {
        if index == 0 || verbose {
            let _ = writeln!(out, "\n    {header}");
        }
        package_row(out, snapshot, package, verbose);
    }
}

/// `-v` under a node: the cluster lock and the node's interfaces.
fn node_details(out: &mut String, snapshot: &Snapshot, node: &crate::status::NodeRow) {
    match &snapshot.lock {
        LockRow::None => {}
        LockRow::QuorumServer { host, .. } => {
            // As that node sees it (the others' as they told it).
            let (status, refusal) = node
                .lock
                .as_ref()
                .map_or((Health::Unknown, None), |l| (l.status, l.refusal));
            let state = crate::status::quorum_server_state(status, refusal);
            let _ = writeln!(out, "\n  Quorum_Server_Status:");
            let _ = writeln!(out, "  NAME           STATUS       STATE");
            let _ = writeln!(
                out,
                "  {}{}{state}",
                cell(host, 15),
                cell(status.as_str(), 13)
            );
        }
        LockRow::LockLun { .. } => {
            // Each node's own path to the lock LUN, and its health as that node sees it.
            if let Some(lock) = &node.lock {
                let device = crate::status::lun_text(lock.device.as_deref());
                let _ = writeln!(out, "\n  Cluster_Lock_LUN:");
                let _ = writeln!(out, "  DEVICE                STATUS");
                let _ = writeln!(out, "  {}{}", cell(&device, 22), lock.status);
            }
        }
    }
    if !node.interfaces.is_empty() {
        let _ = writeln!(out, "\n  Network_Parameters:");
        let _ = writeln!(out, "  INTERFACE    STATUS       NAME");
        for interface in &node.interfaces {
            let _ = writeln!(
                out,
                "  {}{}{}",
                cell("PRIMARY", 13),
                cell(interface.status.as_str(), 13),
                interface.name
            );
        }
    }
}

/// One package row and, verbose, its parameters.
fn package_row(out: &mut String, snapshot: &Snapshot, package: &PackageRow, verbose: bool) {
    let last = match package.kind {
        PackageType::Failover => {
            let owners: Vec<&str> = package
                .owners
                .iter()
                .map(|n| snapshot.node_name(n))
                .collect();
            if owners.is_empty() {
                "unowned".to_owned()
            } else {
                owners.join(",")
            }
        }
        PackageType::MultiNode => "no".to_owned(),
        PackageType::SystemMultiNode => "yes".to_owned(),
    };
    let _ = writeln!(
        out,
        "    {}{}{}{}{last}",
        cell(&package.name, 15),
        cell(package.condition.status.as_str(), 17),
        cell(package.condition.state.as_str(), 17),
        cell(enabled(package.auto_run), 13),
    );
    if !verbose {
        return;
    }
    // The policies are a failover package's (serviceguard.md 5.1).
    if package.kind == PackageType::Failover {
        let _ = writeln!(out, "\n      Policy_Parameters:");
        let _ = writeln!(out, "      POLICY_NAME     CONFIGURED_VALUE");
        let _ = writeln!(
            out,
            "      {}{}",
            cell("Failover", 16),
            package.failover_policy.keyword()
        );
        let _ = writeln!(
            out,
            "      {}{}",
            cell("Failback", 16),
            package.failback_policy.keyword()
        );
    }
    // Script parameters: where the package runs (a failover package), or per node.
    let mut items = Vec::new();
    for row in package.script_rows() {
        let failover = package.kind == PackageType::Failover;
        let suffix = if failover {
            String::new()
        } else {
            format!("   ({})", row.name)
        };
        for service in &row.services {
            let max = service
                .max_restarts
                .map_or_else(|| "unlimited".to_owned(), |m| m.to_string());
            items.push(format!(
                "      {}{}{max:>12}{:>10}   {}{suffix}",
                cell("Service", 19),
                cell(service.condition.status.as_str(), 9),
                service.condition.restarts,
                service.name
            ));
        }
        for subnet in &row.subnets {
            items.push(format!(
                "      {}{}{:>12}{:>10}   {}{suffix}",
                cell("Subnet", 19),
                cell(subnet.status.as_str(), 9),
                0,
                0,
                subnet.subnet
            ));
        }
        for resource in &row.resources {
            items.push(format!(
                "      {}{}{:>22}   {}{suffix}",
                cell("Generic Resource", 19),
                cell(resource.status.as_str(), 9),
                "",
                resource.name
            ));
        }
    }
    if !items.is_empty() {
        let _ = writeln!(out, "\n      Script_Parameters:");
        let _ = writeln!(
            out,
            "      ITEM               STATUS   MAX_RESTARTS  RESTARTS   NAME"
        );
        for item in items {
            let _ = writeln!(out, "{}", item.trim_end());
        }
    }
    if !package.dependencies.is_empty() {
        let node = package
            .owners
            .lowest()
            .map_or("-", |n| snapshot.node_name(n));
        let _ = writeln!(out, "\n      Dependency_Parameters:");
        let _ = writeln!(out, "      DEPENDENCY_NAME     NODE_NAME        SATISFIED");
        for dependency in &package.dependencies {
            let _ = writeln!(
                out,
                "      {}{}{}",
                cell(
                    if dependency.label.is_empty() {
                        &dependency.name
                    } else {
                        &dependency.label
                    },
                    20
                ),
                cell(node, 17),
                if dependency.satisfied { "yes" } else { "no" }
            );
        }
    }
    let _ = writeln!(out, "\n      Node_Switching_Parameters:");
    let _ = writeln!(out, "      NODE_TYPE    STATUS       SWITCHING    NAME");
    for row in &package.nodes {
        let kind = if row.order == 1 {
            "Primary"
        } else {
            "Alternate"
        };
        let current = if row.current { "(current)" } else { "" };
        let line = format!(
            "      {}{}{}{}{current}",
            cell(kind, 13),
            cell(row.node_status.as_str(), 13),
            cell(enabled(row.switching), 13),
            cell(&row.name, 13),
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// `cmviewcl -f line` (with `-v` or without: the line format always shows everything), the
/// selection applied; with `-s config`, the configuration without status. A single package or node named on the command line loses its prefix,
/// as Serviceguard prints it.
pub fn line(snapshot: &Snapshot, selection: &Selection) -> String {
    let all = if selection.config {
        snapshot.to_config_line()
    } else {
        snapshot.to_line()
    };
    let mut out = String::new();
    let single = |names: &[String], kind: &str| match names {
        [one] => Some(format!("{kind}:{one}|")),
        _ => None,
    };
    let package_prefix = single(&selection.packages, "package");
    let node_prefix = single(&selection.nodes, "node");
    for text in all.lines() {
        let (kind, name) = match text.split_once('|') {
            Some((head, _)) => match head.split_once(':') {
                Some((kind, name)) => (kind, Some(name)),
                None => (head, None),
            },
            None => ("", None),
        };
        let keep = match (kind, name) {
            ("package", Some(name)) => {
                selection.level != Some(Level::Cluster)
                    && selection.level != Some(Level::Node)
                    && selection.package_shown(name)
                    && (selection.nodes.is_empty()
                        || (selection.packages_only()
                            && snapshot
                                .packages
                                .iter()
                                .find(|p| p.name == name)
                                .is_some_and(|p| selection.package_on_nodes(snapshot, p))))
            }
            ("node", Some(name)) => {
                selection.packages.is_empty()
                    && selection.level != Some(Level::Cluster)
                    && selection.level != Some(Level::Package)
                    && selection.node_shown(name)
            }
            _ => {
                selection.packages.is_empty()
                    && selection.nodes.is_empty()
                    && selection.level != Some(Level::Package)
            }
        };
        if !keep {
            continue;
        }
        let shown = [&package_prefix, &node_prefix]
            .into_iter()
            .flatten()
            .find_map(|prefix| text.strip_prefix(prefix.as_str()))
            .unwrap_or(text);
        out.push_str(shown);
        out.push('\n');
    }
    out
}

/// `cmviewcl -f json`: the snapshot with the selection's packages and nodes.
pub fn json(snapshot: &Snapshot, selection: &Selection) -> String {
    let mut shown = snapshot.clone();
    shown.packages.retain(|p| {
        selection.package_shown(&p.name)
            && (!selection.packages_only() || selection.package_on_nodes(snapshot, p))
    });
    shown.nodes.retain(|n| selection.node_shown(&n.name));
    match selection.level {
        Some(Level::Cluster) => {
            shown.nodes.clear();
            shown.packages.clear();
        }
        Some(Level::Node) => shown.packages.clear(),
        Some(Level::Package) => shown.nodes.clear(),
        None => {}
    }
    if !selection.packages.is_empty() {
        shown.nodes.clear();
    }
    let mut text = serde_json::to_string_pretty(&shown).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}
