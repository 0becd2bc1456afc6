//! `cmsetresource`: see `src/pkgcmds.rs`; a CIM client of the local WBEM agent.

use std::process::ExitCode;

use clap::Parser;

#[path = "../cimclient.rs"]
#[allow(dead_code)]
mod cimclient;
#[path = "../pkgcmds.rs"]
#[allow(dead_code)]
mod pkgcmds;

fn main() -> ExitCode {
    pkgcmds::finish(
        "cmsetresource",
        pkgcmds::set_resource(&pkgcmds::SetResource::parse()),
    )
}
