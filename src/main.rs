//! `cimguard`: the command-line entry point: the demo cluster (`cimguard demo`), the node
//! daemon (`cimguard node`), the control channel's certificates, the WBEM users file and the
//! MOF checker.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cimguard::{cluster_certs, cmcld, commands, demo, mof_check, user};

/// Serviceguard-style high-availability cluster with a WBEM agent on every node.
#[derive(Parser)]
#[command(name = "cimguard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with MOF files.
    Mof {
        #[command(subcommand)]
        command: MofCommand,
    },
    /// Run the node daemon (the same as `cmcld`).
    Node(Box<cmcld::NodeArgs>),
    /// Make the control channel's TLS material for the nodes of a cluster file.
    ClusterCerts(cluster_certs::ClusterCertsArgs),
    /// Run a demo cluster on this machine's loopback addresses until Ctrl-C.
    Demo(demo::DemoArgs),
    /// Manage the WBEM server's users file.
    User {
        /// The users file [default: $CIMGUARD_USERS_FILE, else /etc/cimguard/users]
        #[arg(long, global = true, value_name = "PATH")]
        users_file: Option<std::path::PathBuf>,
        #[command(subcommand)]
        command: user::UserCommand,
    },
}

#[derive(Subcommand)]
enum MofCommand {
    /// Compile MOF files and print what they define, or the located errors (exit status 1).
    Check {
        /// A directory to search for `#pragma include` files (repeatable).
        #[arg(short = 'I', long = "include", value_name = "DIR")]
        include: Vec<std::path::PathBuf>,
        /// The MOF files to compile, in order, into one namespace.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    let called = std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()));
    if let Some(exit) = called.as_deref().and_then(commands::run) {
        return exit;
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Mof {
            command: MofCommand::Check { include, files },
        } => mof_check::run(include, &files),
        Command::Node(args) => cmcld::run(&args, &["node"]),
        Command::ClusterCerts(args) => cluster_certs::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::User {
            users_file,
            command,
        } => user::run(command, users_file),
    }
}
