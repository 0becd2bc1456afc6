//! A `cmwbemd` WBEM agent started as a child process for a test, and the real clients (pywbem
//! scripts, pywbemcli, sblim's wbemcli) pointed at it over HTTPS on loopback.
//!
//! The agent listens on `127.0.0.1:0` with its TLS material created in a fresh scratch
//! folder; [`Agent::start`] waits, with a deadline, for the `listening https ADDRESS` line it
//! prints once bound. It is killed when the [`Agent`] is dropped. This module builds nothing:
//! `cargo build --bin cmwbemd` comes first (see [`agent_binary`]).
//!
//! The clients run with `REQUESTS_CA_BUNDLE` and `CURL_CA_BUNDLE` removed from their
//! environment: either one would make Python's `requests` (under pywbem) or libcurl trust the
//! system's CAs instead of the agent's `ca.pem` that the tests hand them.

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{python, workspace_root};

/// The environment variable naming the folder of the built binaries (default
/// `<workspace>/target/debug`).
pub const BIN_DIR_VARIABLE: &str = "CIMGUARD_BIN_DIR";

/// How long the agent may take to print its listening line.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

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

/// A running `cmwbemd`, killed on drop.
pub struct Agent {
    child: Child,
    address: SocketAddr,
    scratch: PathBuf,
}

impl Agent {
    /// Starts `cmwbemd --listen 127.0.0.1:0 --tls-dir SCRATCH/tls` with `arguments` after
    /// them, and waits until it says where it listens.
    pub fn start(arguments: &[&str]) -> Result<Agent, String> {
        let binary = agent_binary("cmwbemd")?;
        let scratch = scratch_folder("agent")?;
        let log_path = scratch.join("agent.log");
        let log = fs::File::create(&log_path)
            .map_err(|error| format!("cannot create {}: {error}", log_path.display()))?;
        let mut child = Command::new(&binary)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--tls-dir")
            .arg(scratch.join("tls"))
            .arg("--state-dir")
            .arg(scratch.join("state"))
            .args(arguments)
            // Plain text in the log that failure messages quote.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", binary.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the agent's stdout was not captured".into());
        };
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut agent = Agent {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            scratch,
        };
        agent.address = agent.wait_for_address(&receiver)?;
        Ok(agent)
    }

    /// Reads the agent's stdout until `listening https ADDRESS`, the agent's exit, or the
    /// deadline.
    fn wait_for_address(&mut self, lines: &mpsc::Receiver<String>) -> Result<SocketAddr, String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(address) = line.strip_prefix("listening https ") {
                        return address.trim().parse().map_err(|error| {
                            format!("the agent printed a bad address {address:?}: {error}")
                        });
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "the agent printed no listening line within {START_TIMEOUT:?}; its log:\n{}",
                        self.log()
                    ));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().map(|s| s.to_string());
                    return Err(format!(
                        "the agent exited ({status:?}) before listening; its log:\n{}",
                        self.log()
                    ));
                }
            }
        }
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Its URL: `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.address)
    }

    /// The CA certificate its server certificate is signed by.
    pub fn ca_path(&self) -> PathBuf {
        self.scratch.join("tls/ca.pem")
    }

    /// A scratch folder of its own, removed with it.
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// What it wrote to stderr so far (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.scratch.join("agent.log")).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.scratch);
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
