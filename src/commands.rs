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
            pkgcmds::finish_each(name, pkgcmds::run_package(&pkgcmds::RunPackage::parse()))
        }
        "cmhaltpkg" => {
            pkgcmds::finish_each(name, pkgcmds::halt_package(&pkgcmds::HaltPackage::parse()))
        }
        "cmmodpkg" => pkgcmds::finish_each(
            name,
            pkgcmds::modify_package(&pkgcmds::ModifyPackage::parse()),
        ),
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
