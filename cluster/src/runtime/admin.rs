//! A client of a daemon's admin socket (`cmcld.sock`): one JSON line each way per request
//! ([`Request`], [`Reply`]). The WBEM agent's cluster provider and the tests speak to the
//! daemon through it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::daemon::{DaemonStatus, Reply, Request};

/// The longest a request waits for its answer by default: a daemon that takes longer is
/// stuck, and the caller says so rather than hanging.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest reply line read (a status of a large cluster is well below it).
const REPLY_LINE_MAX: u64 = 64 << 20;

/// A connection to one daemon's admin socket, made on first use and again after an error.
#[derive(Debug)]
pub struct AdminClient {
    path: PathBuf,
    timeout: Duration,
    connection: Option<(UnixStream, BufReader<UnixStream>)>,
}

impl AdminClient {
    /// A client of the socket at `path` (nothing is connected yet).
    pub fn new(path: impl Into<PathBuf>) -> AdminClient {
        AdminClient {
            path: path.into(),
            timeout: REPLY_TIMEOUT,
            connection: None,
        }
    }

    /// The same, waiting at most `timeout` for each answer.
    pub fn with_timeout(mut self, timeout: Duration) -> AdminClient {
        self.timeout = timeout;
        self
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends `request` and reads the answer. A connection the daemon closed since the last
    /// request (it closes idle ones) is made again once.
    pub fn request(&mut self, request: &Request) -> io::Result<Reply> {
        let mut line = serde_json::to_string(request).map_err(io::Error::other)?;
        line.push('\n');
        let reused = self.connection.is_some();
        match self.exchange(&line) {
            Ok(reply) => Ok(reply),
            // A connection the daemon closed fails at once; a request that timed out may still
            // be carried out, and is not sent again.
            Err(e)
                if reused
                    && !matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                    ) =>
            {
                self.connection = None;
                self.exchange(&line)
            }
            Err(e) => Err(e),
        }
    }

    /// The daemon's status.
    pub fn status(&mut self) -> io::Result<DaemonStatus> {
        match self.request(&Request::Status)? {
            Reply::Status(status) => Ok(*status),
            other => Err(io::Error::other(format!(
                "the daemon answered a status request with {other:?}"
            ))),
        }
    }

    fn exchange(&mut self, line: &str) -> io::Result<Reply> {
        let result = self.exchange_once(line);
        if result.is_err() {
            self.connection = None;
        }
        result
    }

    fn exchange_once(&mut self, line: &str) -> io::Result<Reply> {
        if self.connection.is_none() {
            let stream = UnixStream::connect(&self.path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))?;
            stream.set_read_timeout(Some(self.timeout))?;
            stream.set_write_timeout(Some(self.timeout))?;
            let reader = BufReader::new(stream.try_clone()?);
            self.connection = Some((stream, reader));
        }
        let Some((stream, reader)) = self.connection.as_mut() else {
            return Err(io::Error::other("no connection"));
        };
        stream.write_all(line.as_bytes())?;
        let mut answer = String::new();
        let read = reader
            .by_ref()
            .take(REPLY_LINE_MAX)
            .read_line(&mut answer)?;
        if read == 0 || !answer.ends_with('\n') {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the daemon closed the admin connection without an answer",
            ));
        }
        serde_json::from_str(&answer).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the daemon's answer does not decode: {e}"),
            )
        })
    }
}
