//! `cmviewcl`: view the cluster, its nodes and packages, from the local WBEM agent.

use std::process::ExitCode;

use clap::Parser;

#[path = "../cimclient.rs"]
#[allow(dead_code)]
mod cimclient;
#[path = "../cmviewcl.rs"]
mod cmviewcl;

fn main() -> ExitCode {
    cmviewcl::run(&cmviewcl::Cli::parse())
}
