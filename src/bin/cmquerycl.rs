//! `cmquerycl`: one of the Serviceguard commands of src/commands.rs.

include!("../command_bin.rs");

fn main() -> std::process::ExitCode {
    command("cmquerycl")
}
