// The modules of a command binary: src/bin/cm*.rs include this file, so each command is built
// from the same sources as `cimguard`, which runs the same commands when called by their
// names (src/commands.rs). `include!` keeps each binary's own file to its name alone.

#[path = "cimclient.rs"]
#[allow(dead_code)]
mod cimclient;
#[path = "clcmds.rs"]
#[allow(dead_code)]
mod clcmds;
#[path = "cmviewcl.rs"]
#[allow(dead_code)]
mod cmviewcl;
#[path = "commands.rs"]
#[allow(dead_code)]
mod commands;
#[path = "confcmds.rs"]
#[allow(dead_code)]
mod confcmds;
#[path = "pkgcmds.rs"]
#[allow(dead_code)]
mod pkgcmds;
#[path = "querycl.rs"]
#[allow(dead_code)]
mod querycl;

/// Runs the command `name` with this process's arguments.
fn command(name: &str) -> std::process::ExitCode {
    commands::run(name).unwrap_or(std::process::ExitCode::FAILURE)
}
