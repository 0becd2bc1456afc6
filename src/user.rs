//! `cimguard user ...`: edits the WBEM server's users file (add, list, remove, set-role). The
//! file format and its atomic saving live in `cimguard_provider::auth`; this is flags and
//! prompts. A running server sees the changes after SIGHUP.

use std::io::{self, BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use cimguard_provider::auth::{Role, Users, UsersFileError};
use clap::Subcommand;

/// Where the users file is when neither `--users-file` nor `CIMGUARD_USERS_FILE` says.
pub const DEFAULT_USERS_FILE: &str = "/etc/cimguard/users";

/// The `user` subcommands.
#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user (asks for the password twice on the terminal).
    Add {
        /// The user name: 1 to 64 of A-Z a-z 0-9 _ . @ -
        name: String,
        /// MONITOR, PACKAGE_ADMIN or FULL_ADMIN.
        #[arg(long)]
        role: Role,
        /// Read the password from the first line of standard input.
        #[arg(long, conflicts_with = "pam")]
        password_stdin: bool,
        /// Let PAM check the password (service `cimguard`) instead of storing a hash.
        #[arg(long)]
        pam: bool,
    },
    /// List the users and their roles.
    List,
    /// Remove a user.
    Remove {
        /// The user name.
        name: String,
    },
    /// Change a user's role.
    SetRole {
        /// The user name.
        name: String,
        /// MONITOR, PACKAGE_ADMIN or FULL_ADMIN.
        role: Role,
    },
}

/// Runs `command` on the users file `users_file` (or the environment's, or the default).
pub fn run(command: UserCommand, users_file: Option<PathBuf>) -> ExitCode {
    let path = users_file
        .or_else(|| std::env::var_os("CIMGUARD_USERS_FILE").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_USERS_FILE));
    match execute(command, &path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cimguard: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn execute(command: UserCommand, path: &Path) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            role,
            password_stdin,
            pam,
        } => {
            let mut users = load(path, true)?;
            if pam {
                users.add_pam(&name, role)?;
            } else {
                // Checked before asking for a password, so that a typo costs no typing.
                if users.get(&name).is_some() {
                    bail!("user {name:?} already exists");
                }
                let password = read_password(password_stdin)?;
                users.add(&name, role, &password)?;
            }
            users.save(path)?;
            println!("added {name} ({role})");
        }
        UserCommand::List => {
            let users = load(path, false)?;
            let width = users
                .iter()
                .map(|user| user.name().len())
                .max()
                .unwrap_or(0);
            for user in users.iter() {
                let check = if user.uses_pam() { "pam" } else { "password" };
                println!(
                    "{:width$}  {:13}  {check}",
                    user.name(),
                    user.role().as_str()
                );
            }
        }
        UserCommand::Remove { name } => {
            let mut users = load(path, false)?;
            users.remove(&name)?;
            users.save(path)?;
            println!("removed {name}");
        }
        UserCommand::SetRole { name, role } => {
            let mut users = load(path, false)?;
            users.set_role(&name, role)?;
            users.save(path)?;
            println!("{name} is now {role}");
        }
    }
    Ok(())
}

/// Loads the users file; a missing one is empty when `missing_is_empty` (the first `add`).
fn load(path: &Path, missing_is_empty: bool) -> Result<Users, UsersFileError> {
    match Users::load(path) {
        Err(UsersFileError::Read { source, .. })
            if missing_is_empty && source.kind() == io::ErrorKind::NotFound =>
        {
            Ok(Users::new())
        }
        result => result,
    }
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let password = line.strip_suffix('\n').unwrap_or(&line);
        return Ok(password.strip_suffix('\r').unwrap_or(password).to_owned());
    }
    if !io::stdin().is_terminal() {
        bail!("standard input is not a terminal: pass the password with --password-stdin");
    }
    let password = rpassword::prompt_password("Password: ").context("cannot read the password")?;
    let again =
        rpassword::prompt_password("Password again: ").context("cannot read the password")?;
    if password != again {
        bail!("the passwords differ");
    }
    Ok(password)
}
