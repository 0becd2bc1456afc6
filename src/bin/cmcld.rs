//! `cmcld`: the cimguard node daemon (also `cimguard node`): heartbeats, membership, quorum,
//! the safety timer and, through them, the packages of one node.

use std::process::ExitCode;

use clap::Parser;

#[path = "../agent.rs"]
mod agent;
#[path = "../cmcld.rs"]
mod cmcld;

/// The cimguard node daemon.
#[derive(Parser)]
#[command(name = "cmcld", version, about)]
struct Cli {
    #[command(flatten)]
    args: cmcld::NodeArgs,
}

fn main() -> ExitCode {
    cmcld::run(&Cli::parse().args, &[])
}
