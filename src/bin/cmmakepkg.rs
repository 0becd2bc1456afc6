//! `cmmakepkg`: see `src/confcmds.rs`; works on files alone, with no cluster running.

use std::process::ExitCode;

use clap::Parser;

#[path = "../confcmds.rs"]
#[allow(dead_code)]
mod confcmds;

fn main() -> ExitCode {
    confcmds::make_package(&confcmds::MakePackage::parse())
}
