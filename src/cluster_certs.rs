//! `cimguard cluster-certs`: the control channel's TLS material for every node of a cluster
//! file, from one cluster authority (created on first use, reused afterwards). Each node's
//! three files go into a folder of its own, to be copied into that node's state directory.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

/// The arguments of `cimguard cluster-certs`.
#[derive(Args, Debug)]
pub struct ClusterCertsArgs {
    /// The cluster ASCII file (its NODE_NAMEs and HEARTBEAT_IPs go into the certificates).
    #[arg(short = 'C', long = "cluster-file", value_name = "FILE")]
    pub cluster_file: PathBuf,
    /// The folder of the cluster authority (cluster-ca.pem, cluster-ca-key.pem): created with one
    /// when it has none. Keep it off the nodes; it is needed again only to add or re-issue a node.
    #[arg(long, value_name = "DIR")]
    pub authority: PathBuf,
    /// Where to write: one folder per node, OUT/NODE_NAME/{control-ca,control,control-key}.pem.
    #[arg(long, value_name = "OUT")]
    pub out: PathBuf,
    /// Only these nodes (repeatable) [default: every node of the cluster file].
    #[arg(short = 'n', long = "node", value_name = "NODE_NAME")]
    pub nodes: Vec<String>,
}

/// Issues the certificates; prints one line per node.
pub fn run(args: &ClusterCertsArgs) -> ExitCode {
    match issue(args) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("cimguard cluster-certs: {why}");
            ExitCode::FAILURE
        }
    }
}

fn issue(args: &ClusterCertsArgs) -> Result<Vec<String>, String> {
    let name = args.cluster_file.display().to_string();
    let text = std::fs::read_to_string(&args.cluster_file).map_err(|e| format!("{name}: {e}"))?;
    let config = cimguard_cluster::config::cluster::parse(&text, &name)
        .map_err(|findings| {
            findings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        })?
        .config;
    for wanted in &args.nodes {
        if !config
            .nodes
            .iter()
            .any(|n| n.name.eq_ignore_ascii_case(wanted))
        {
            return Err(format!(
                "{name}: no node {wanted} in cluster {}",
                config.name
            ));
        }
    }
    let authority = cimguard_certs::ensure_cluster_authority(&args.authority, &config.name)
        .map_err(|e| chain(&e))?;
    let mut lines = Vec::new();
    for node in &config.nodes {
        let chosen = args.nodes.is_empty()
            || args
                .nodes
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&node.name));
        if !chosen {
            continue;
        }
        let addresses: Vec<_> = node.heartbeat_addresses().collect();
        let folder = args.out.join(&node.name);
        cimguard_certs::issue_node_certificate(&authority, &node.name, &addresses, &folder)
            .map_err(|e| format!("node {}: {}", node.name, chain(&e)))?;
        lines.push(format!(
            "{}: {} (copy into its state directory)",
            node.name,
            shown(&folder)
        ));
    }
    Ok(lines)
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// An error with its causes.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}
