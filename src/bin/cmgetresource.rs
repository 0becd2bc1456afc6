//! `cmgetresource`: one of the Serviceguard commands of src/commands.rs.

fn main() -> std::process::ExitCode {
    cimguard::commands::run("cmgetresource").unwrap_or(std::process::ExitCode::FAILURE)
}
