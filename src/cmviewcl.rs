//! `cmviewcl`: the cluster, its nodes and packages as Serviceguard's command prints them
//! (serviceguard.md section 2), read from the local agent over CIM-XML: one call of
//! HP_SGClusteringService.GetView, so every line comes from one status of the cluster daemon,
//! the same the agent's instances are built from.

use std::process::ExitCode;

use cimguard_cluster::status::Snapshot;
use cimguard_cluster::view::{self, Level, Selection};
use clap::Parser;

use crate::cimclient::Client;

/// View information about the cluster.
#[derive(Parser, Debug)]
#[command(
    name = "cmviewcl",
    version,
    about = "View the cluster, its nodes and packages (from the local WBEM agent: \
             CIMGUARD_URL, CIMGUARD_USER, CIMGUARD_PASSWORD, CIMGUARD_CA)"
)]
pub struct Cli {
    /// Verbose: the parameters of nodes and packages too (under each node, the cluster lock
    /// as that node sees it).
    #[arg(short = 'v')]
    pub verbose: bool,
    /// The output format: table, line (machine-parsable) or json.
    #[arg(short = 'f', value_name = "FORMAT", default_value = "table",
          value_parser = ["table", "line", "json"])]
    pub format: String,
    /// Show the configuration (`config`, the only source) rather than the status: in the
    /// line format (-f line), the configured parameters without any status.
    #[arg(short = 's', value_name = "SOURCE", value_parser = ["config"])]
    pub source: Option<String>,
    /// Show only this level: cluster, node or package (group and site: none is configured
    /// here, so they show nothing).
    #[arg(short = 'l', value_name = "LEVEL",
          value_parser = ["cluster", "node", "package", "group", "site"])]
    pub level: Option<String>,
    /// Show only this site (repeatable): refused, as no site is configured.
    #[arg(short = 'S', value_name = "SITE")]
    pub sites: Vec<String>,
    /// Format as this release would (A.11.16 and later format as this one does).
    #[arg(short = 'r', value_name = "RELEASE", value_parser = release)]
    pub release: Option<String>,
    /// Show only this package (repeatable).
    #[arg(short = 'p', value_name = "PACKAGE")]
    pub packages: Vec<String>,
    /// Show only this node (repeatable); with -p or -l package, the packages active on it
    /// (none: the output stays empty and standard error says so).
    #[arg(short = 'n', value_name = "NODE")]
    pub nodes: Vec<String>,
    /// The cluster to show: refused unless it is the agent's cluster.
    #[arg(short = 'c', value_name = "CLUSTER")]
    pub cluster: Option<String>,
}

/// Runs cmviewcl; errors are one line on standard error and exit status 1 (2 for options
/// that do not go together, as the argument parser's own errors).
pub fn run(cli: &Cli) -> ExitCode {
    if cli.source.is_some() && cli.format != "line" {
        eprintln!(
            "cmviewcl: -s config shows the configuration in the line format: add -f line (the \
             table and json formats show the status)"
        );
        return ExitCode::from(2);
    }
    match view(cli) {
        Ok((text, note)) => {
            print!("{text}");
            if let Some(note) = note {
                eprintln!("cmviewcl: {note}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("cmviewcl: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The view, and a note for standard error when the selection matched nothing.
fn view(cli: &Cli) -> Result<(String, Option<String>), String> {
    let selection = Selection {
        verbose: cli.verbose,
        packages: cli.packages.clone(),
        nodes: cli.nodes.clone(),
        level: cli.level.as_deref().and_then(Level::parse),
        config: cli.source.is_some(),
    };
    let client = Client::from_env()?;
    let returned = client.invoke_static("HP_SGClusteringService", "GetView", Vec::new())?;
    if returned.value != Some(0) {
        return Err(format!(
            "the agent could not give the cluster's view (return code {:?})",
            returned.value
        ));
    }
    let text = returned
        .out_string("View")
        .ok_or("the agent's answer has no View")?;
    let snapshot: Snapshot =
        serde_json::from_str(text).map_err(|e| format!("the agent's view does not decode: {e}"))?;
    if let Some(name) = cli.cluster.as_deref() {
        if !name.eq_ignore_ascii_case(&snapshot.name) {
            return Err(format!(
                "this agent's cluster is {}, not {name}",
                snapshot.name
            ));
        }
    }
    if let Some(site) = cli.sites.first() {
        return Err(format!(
            "site {site} is not configured: cluster {} has no sites",
            snapshot.name
        ));
    }
    selection.check(&snapshot).map_err(|e| e.to_string())?;
    if matches!(cli.level.as_deref(), Some("group" | "site")) {
        // No OPS/RAC groups or sites exist in a cimguard cluster: nothing to show.
        return Ok((String::new(), None));
    }
    let text = match cli.format.as_str() {
        "line" => view::line(&snapshot, &selection),
        "json" => view::json(&snapshot, &selection),
        _ => view::table(&snapshot, &selection),
    };
    Ok((text, selection.unmatched(&snapshot)))
}

/// `-r RELEASE`, as clap takes it (a usage error, status 2, otherwise).
fn release(release: &str) -> Result<String, String> {
    check_release(release).map(|()| release.to_owned())
}

/// `-r RELEASE`: the formats of A.11.16 and later (A.12 included) are this one (AUTO_RUN,
/// the -f line attributes); earlier ones are not written.
fn check_release(release: &str) -> Result<(), String> {
    let mut parts = release
        .strip_prefix("A.")
        .unwrap_or_default()
        .split('.')
        .map(|part| part.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(_)) if major >= 12 => Ok(()),
        (Some(11), Some(minor)) if minor >= 16 => Ok(()),
        (Some(_), Some(_)) => Err(format!(
            "release {release}'s output format is not supported: A.11.16 or later"
        )),
        _ => Err(format!(
            "{release} is not a release (A.11.16, A.11.20, A.12.00, ...)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::check_release;

    #[test]
    fn releases_from_a_11_16_format_as_this_one() {
        for release in [
            "A.11.16",
            "A.11.20",
            "A.11.20.20",
            "A.11.19",
            "A.12.00",
            "A.12.40",
        ] {
            assert_eq!(check_release(release), Ok(()), "{release}");
        }
        assert!(check_release("A.11.09")
            .unwrap_err()
            .contains("A.11.16 or later"));
        assert!(check_release("11.20")
            .unwrap_err()
            .contains("not a release"));
        assert!(check_release("A.11.x")
            .unwrap_err()
            .contains("not a release"));
    }
}
