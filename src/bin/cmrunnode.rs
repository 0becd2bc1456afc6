//! `cmrunnode`: see `src/clcmds.rs`; a CIM client of the local WBEM agent.

use std::process::ExitCode;

use clap::Parser;

#[path = "../cimclient.rs"]
#[allow(dead_code)]
mod cimclient;
#[path = "../clcmds.rs"]
#[allow(dead_code)]
mod clcmds;
#[path = "../confcmds.rs"]
#[allow(dead_code)]
mod confcmds;
#[path = "../pkgcmds.rs"]
#[allow(dead_code)]
mod pkgcmds;

fn main() -> ExitCode {
    pkgcmds::finish("cmrunnode", clcmds::run_node(&clcmds::RunNode::parse()))
}
