//! The Serviceguard commands by name: `cimguard` runs one when called by its name (the demo
//! links them), and each command binary (src/bin/cm*.rs) runs its own.

use std::process::ExitCode;

use clap::Parser;

use crate::{clcmds, cmviewcl, confcmds, pkgcmds, querycl};

/// The commands, each a binary of its own; `cimguard` is any of them when called by its name
/// (`cimguard demo` links them in DIR/bin).
pub const COMMANDS: [&str; 16] = [
    "cmviewcl",
    "cmrunpkg",
    "cmhaltpkg",
    "cmmodpkg",
    "cmsetresource",
    "cmgetresource",
    "cmmakepkg",
    "cmcheckconf",
    "cmruncl",
    "cmhaltcl",
    "cmrunnode",
    "cmhaltnode",
    "cmapplyconf",
    "cmgetconf",
    "cmdeleteconf",
    "cmquerycl",
];

/// Runs the command `name` (one of [`COMMANDS`]) with this process's arguments.
pub fn run(name: &str) -> Option<ExitCode> {
    Some(match name {
        "cmviewcl" => cmviewcl::run(&cmviewcl::Cli::parse()),
        "cmrunpkg" => {
            let cli = pkgcmds::RunPackage::parse();
            let done = pkgcmds::run_package(&cli);
            finish_closing(
                name,
                done,
                cli.preview,
                "All specified packages are running",
            )
        }
        "cmhaltpkg" => {
            let cli = pkgcmds::HaltPackage::parse();
            let done = pkgcmds::halt_package(&cli);
            finish_closing(name, done, cli.preview, COMPLETED)
        }
        "cmmodpkg" => {
            let cli = pkgcmds::ModifyPackage::parse();
            let done = pkgcmds::modify_package(&cli);
            finish_closing(name, done, cli.preview, COMPLETED)
        }
        "cmsetresource" => {
            pkgcmds::finish(name, pkgcmds::set_resource(&pkgcmds::SetResource::parse()))
        }
        "cmgetresource" => {
            pkgcmds::finish(name, pkgcmds::get_resource(&pkgcmds::GetResource::parse()))
        }
        "cmmakepkg" => confcmds::make_package(&confcmds::MakePackage::parse()),
        "cmcheckconf" => confcmds::check_configuration(&confcmds::CheckConfiguration::parse()),
        "cmruncl" => pkgcmds::finish(name, clcmds::run_cluster(&clcmds::RunCluster::parse())),
        "cmhaltcl" => pkgcmds::finish(name, clcmds::halt_cluster(&clcmds::HaltCluster::parse())),
        "cmrunnode" => pkgcmds::finish(name, clcmds::run_node(&clcmds::RunNode::parse())),
        "cmhaltnode" => pkgcmds::finish(name, clcmds::halt_node(&clcmds::HaltNode::parse())),
        "cmapplyconf" => pkgcmds::finish(
            name,
            clcmds::apply_configuration(&clcmds::ApplyConfiguration::parse()),
        ),
        "cmgetconf" => pkgcmds::finish(
            name,
            clcmds::get_configuration(&clcmds::GetConfiguration::parse()),
        ),
        "cmdeleteconf" => pkgcmds::finish(
            name,
            clcmds::delete_configuration(&clcmds::DeleteConfiguration::parse()),
        ),
        "cmquerycl" => querycl::query_cluster(&querycl::QueryCluster::parse()),
        _ => return None,
    })
}

/// The closing line of cmhaltpkg and cmmodpkg.
const COMPLETED: &str = "Completed successfully on all packages specified";

/// Ends a package command with Serviceguard's closing line (`NAME: LINE`), printed (without
/// -v too) when every package named was done; a preview (-t) or a failure for any package
/// has none.
fn finish_closing(
    name: &str,
    done: Result<pkgcmds::EachPackage, String>,
    preview: bool,
    line: &str,
) -> ExitCode {
    let done = done.map(|mut each| {
        if !preview && each.errors.is_empty() {
            each.out.push_str(&format!("{name}: {line}\n"));
        }
        each
    });
    pkgcmds::finish_each(name, done)
}
