//! A `cmwbemd` WBEM agent started as a child process for a test, and the real clients (pywbem
//! scripts, pywbemcli, sblim's wbemcli) pointed at it over HTTPS on loopback.
//!
//! The agent is [`crate::agent::Agent`] (loopback port 0, TLS material and state in a fresh
//! folder, started and waited for with a deadline, killed when dropped), seen through its
//! HTTPS address. This module builds nothing: `cargo build --bin cmwbemd` comes first (see
//! [`agent_binary`]).
//!
//! The clients run with `REQUESTS_CA_BUNDLE` and `CURL_CA_BUNDLE` removed from their
//! environment: either one would make Python's `requests` (under pywbem) or libcurl trust the
//! system's CAs instead of the agent's `ca.pem` that the tests hand them.

use std::ffi::OsStr;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::{python, workspace_root};

/// Environment variables that would override the CA a client is given.
const CA_OVERRIDES: &[&str] = &["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"];

/// Scratch folders made by this process, numbered so that parallel tests never share one.
static SCRATCH_COUNTER: AtomicU32 = AtomicU32::new(0);

/// The path of a built binary: `$CIMGUARD_BIN_DIR/NAME`, else `<workspace>/target/debug/NAME`.
/// An error (to fail the test with) when it does not exist.
pub fn agent_binary(name: &str) -> Result<PathBuf, String> {
    crate::agent::binary(name)
}

/// A fresh, empty scratch folder under the system's temporary folder.
pub fn scratch_folder(label: &str) -> Result<PathBuf, String> {
    let number = SCRATCH_COUNTER.fetch_add(1, Ordering::Relaxed);
    let path =
        std::env::temp_dir().join(format!("cimguard-{label}-{}-{number}", std::process::id()));
    // A folder left by an earlier process with the same id is stale.
    let _ = fs::remove_dir_all(&path);
    fs::create_dir_all(&path)
        .map_err(|error| format!("cannot create {}: {error}", path.display()))?;
    Ok(path)
}

/// A running `cmwbemd` for the pywbem suite (the wire tests' [`crate::agent::Agent`], seen
/// through its HTTPS address); stopped and its scratch folder removed when dropped.
pub struct Agent {
    inner: crate::agent::Agent,
}

impl Agent {
    /// Starts `cmwbemd` on loopback with `arguments` and waits until it says where it listens.
    pub fn start(arguments: &[&str]) -> Result<Agent, String> {
        crate::agent::Agent::start(arguments).map(|inner| Agent { inner })
    }

    /// The HTTPS address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.inner.https
    }

    /// Its URL: `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.inner.https)
    }

    /// The CA certificate its server certificate is signed by.
    pub fn ca_path(&self) -> PathBuf {
        self.inner.ca_path()
    }

    /// A scratch folder of its own, removed with it.
    pub fn scratch(&self) -> &Path {
        self.inner.directory()
    }

    /// What it wrote to stderr so far (for failure messages).
    pub fn log(&self) -> String {
        self.inner.log()
    }
}

/// A command with the CA overrides removed from its environment.
pub fn client_command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    for variable in CA_OVERRIDES {
        command.env_remove(variable);
    }
    command
}

/// A command that runs a script under `tests/python/` with the venv's interpreter, without
/// the CA overrides.
pub fn client_script(script: &str) -> Result<Command, String> {
    let interpreter = python()?;
    let mut command = client_command(interpreter);
    command.arg(workspace_root().join("tests/python").join(script));
    Ok(command)
}

/// A program installed in the venv beside its interpreter (`pywbemcli`).
pub fn venv_program(name: &str) -> Result<PathBuf, String> {
    let interpreter = python()?;
    let path = interpreter.with_file_name(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "no {name} beside {}: run scripts/test python, which installs \
             tests/python/requirements.txt",
            interpreter.display()
        ))
    }
}

/// Runs `command` (stdin closed), failing it after `timeout`.
pub fn output_within(command: &mut Command, timeout: Duration) -> Result<Output, String> {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run {command:?}: {error}"))?;
    let id = child.id();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    match receiver.recv_timeout(timeout) {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(error)) => Err(format!("waiting for {command:?}: {error}")),
        Err(_) => {
            // The child is owned by the waiting thread: end it by its id so that the thread
            // returns.
            let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
            Err(format!("{command:?} ran longer than {timeout:?}"))
        }
    }
}

/// The output as text for a failure message.
pub fn describe(output: &Output) -> String {
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
