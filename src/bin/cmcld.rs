//! `cmcld`: the cimguard node daemon (also `cimguard node`): heartbeats, membership, quorum,
//! the safety timer and, through them, the packages of one node.

use std::process::ExitCode;

use clap::Parser;

use cimguard::cmcld;

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
