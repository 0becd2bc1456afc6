//! `cmruncl`: one of the Serviceguard commands of src/commands.rs.

fn main() -> std::process::ExitCode {
    cimguard::commands::run("cmruncl").unwrap_or(std::process::ExitCode::FAILURE)
}
