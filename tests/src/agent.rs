//! Starts the `cmwbemd` binary on loopback for a test and stops it again: ports chosen by the
//! kernel (port 0) and read back from the `listening ...` lines the agent prints, TLS material
//! in a fresh temporary directory, the process killed when the handle drops.
//!
//! This module does not build the binary: `cargo test --workspace` builds every binary of the
//! workspace before it runs tests; a lone `cargo test -p cimguard-tests` needs
//! `cargo build --bin cmwbemd` first. [`binary`] says so when the binary is missing.

use std::env;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::workspace_root;

/// The environment variable naming the folder that holds the built binaries (overrides
/// `$CARGO_TARGET_DIR/debug` and `<workspace>/target/debug`).
pub const BIN_DIR_VARIABLE: &str = "CIMGUARD_BIN_DIR";

/// How long the agent may take to print its `listening` lines.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The path of a built binary of the workspace: `$CIMGUARD_BIN_DIR/<name>`, else
/// `$CARGO_TARGET_DIR/debug/<name>`, else `<workspace>/target/debug/<name>`. An error (to fail
/// the test with) when it does not exist.
pub fn binary(name: &str) -> Result<PathBuf, String> {
    let folder = match (
        env::var_os(BIN_DIR_VARIABLE),
        env::var_os("CARGO_TARGET_DIR"),
    ) {
        (Some(folder), _) => PathBuf::from(folder),
        (None, Some(target)) => {
            let target = PathBuf::from(target);
            if target.is_absolute() {
                target.join("debug")
            } else {
                workspace_root().join(target).join("debug")
            }
        }
        (None, None) => workspace_root().join("target/debug"),
    };
    let path = folder.join(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "no {name} binary at {}: run `cargo build --bin {name}` (cargo test --workspace \
             builds it), or set {BIN_DIR_VARIABLE} to the folder that holds it",
            path.display()
        ))
    }
}

/// A running `cmwbemd`, listening on one HTTPS and one plain-HTTP loopback address. Dropping
/// it kills the process and waits for it.
pub struct Agent {
    child: Child,
    /// The HTTPS address.
    pub https: SocketAddr,
    /// The plain-HTTP address.
    pub http: SocketAddr,
    /// The folder of its TLS material, state and log: a temporary one it removes, or one
    /// the test keeps ([`Agent::start_in`]).
    directory: Folder,
}

/// Where an agent keeps its files.
enum Folder {
    Temporary(tempfile::TempDir),
    Kept(PathBuf),
}

impl Folder {
    fn path(&self) -> &Path {
        match self {
            Folder::Temporary(dir) => dir.path(),
            Folder::Kept(path) => path,
        }
    }
}

impl Agent {
    /// Starts `cmwbemd --listen 127.0.0.1:0 --http 127.0.0.1:0 --tls-dir <temporary>` with
    /// `arguments` added, and waits (at most [`START_TIMEOUT`]) until it has printed the
    /// address of both listeners.
    pub fn start(arguments: &[&str]) -> Result<Agent, String> {
        Agent::start_env(arguments, &[])
    }

    /// The same with environment variables `env` added (`TOKIO_WORKER_THREADS`, say).
    pub fn start_env(arguments: &[&str], env: &[(&str, &str)]) -> Result<Agent, String> {
        let directory = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
        Agent::start_with(Folder::Temporary(directory), arguments, env)
    }

    /// The same with its TLS material, state and log in `folder` (made if missing), which
    /// outlives it: an agent started again in the same folder finds its state, as after a
    /// crash.
    pub fn start_in(folder: &Path, arguments: &[&str]) -> Result<Agent, String> {
        std::fs::create_dir_all(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        Agent::start_with(Folder::Kept(folder.to_path_buf()), arguments, &[])
    }

    fn start_with(
        directory: Folder,
        arguments: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Agent, String> {
        let program = binary("cmwbemd")?;
        let log_path = directory.path().join("cmwbemd.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let mut child = Command::new(&program)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--http")
            .arg("127.0.0.1:0")
            .arg("--tls-dir")
            .arg(directory.path().join("tls"))
            .arg("--state-dir")
            .arg(directory.path().join("state"))
            .args(arguments)
            .env("RUST_LOG", "debug")
            // Plain text in the log that failure messages quote.
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the agent's stdout was not captured".into());
        };
        // A thread reads stdout to its end (so the pipe never fills) and hands over the lines.
        let (sender, receiver) = mpsc::channel::<String>();
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
            https: SocketAddr::from(([0, 0, 0, 0], 0)),
            http: SocketAddr::from(([0, 0, 0, 0], 0)),
            directory,
        };
        let (mut https, mut http) = (None, None);
        let deadline = Instant::now() + START_TIMEOUT;
        while https.is_none() || http.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match receiver.recv_timeout(left) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "the agent did not report its addresses within {START_TIMEOUT:?}; log:\n{}",
                        agent.log()
                    ));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = agent.child.wait().ok();
                    return Err(format!(
                        "the agent ended ({status:?}) before it listened; log:\n{}",
                        agent.log()
                    ));
                }
            };
            let mut words = line.split_whitespace();
            if words.next() != Some("listening") {
                continue;
            }
            let scheme = words.next();
            let address = words.next().and_then(|a| a.parse::<SocketAddr>().ok());
            match (scheme, address) {
                (Some("https"), Some(address)) => https = Some(address),
                (Some("http"), Some(address)) => http = Some(address),
                _ => return Err(format!("unexpected line from the agent: {line:?}")),
            }
        }
        if let (Some(https), Some(http)) = (https, http) {
            agent.https = https;
            agent.http = http;
        }
        Ok(agent)
    }

    /// The CA certificate (PEM) that signed the agent's server certificate.
    pub fn ca_path(&self) -> PathBuf {
        self.directory.path().join("tls/ca.pem")
    }

    /// The TLS and log directory.
    pub fn directory(&self) -> &Path {
        self.directory.path()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the agent has logged so far (its stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.directory.path().join("cmwbemd.log")).unwrap_or_default()
    }

    /// Sends SIGTERM (with the `kill` command) and waits at most `timeout` for the process to
    /// end; its exit status, or an error when it is still running.
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .map_err(|e| format!("cannot run kill: {e}"))?;
        if !sent.success() {
            return Err(format!("kill -TERM {} failed: {sent}", self.child.id()));
        }
        self.wait_exit(timeout)
    }

    /// Waits at most `timeout` for the process to end; its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() >= deadline => {
                    return Err(format!(
                        "the agent still runs {timeout:?} later; log:\n{}",
                        self.log()
                    ));
                }
                // Polls the process table until the deadline; there is no exit notification
                // to block on without a signal handler.
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(error) => return Err(format!("cannot wait for the agent: {error}")),
            }
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Writes a users file at `path` with `cimguard user add` for each `(name, role, password)`.
pub fn users_file(path: &Path, users: &[(&str, &str, &str)]) -> Result<(), String> {
    use std::io::Write;
    let program = binary("cimguard")?;
    for (name, role, password) in users {
        let mut child = Command::new(&program)
            .args(["user", "--users-file"])
            .arg(path)
            .args(["add", name, "--role", role, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            writeln!(stdin, "{password}").map_err(|e| format!("password to cimguard: {e}"))?;
        }
        let output = child
            .wait_with_output()
            .map_err(|e| format!("cimguard user add: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "cimguard user add {name}: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    Ok(())
}
