//! The server's configuration and its limits: each a named, documented value.

use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::pull::ContextLimits;

/// The default HTTPS port of DSP0200 servers.
pub const HTTPS_PORT: u16 = 5989;

/// The default plain-HTTP port (off unless configured).
pub const HTTP_PORT: u16 = 5988;

/// Where and how the server listens.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// HTTPS listening addresses (a node binds its own addresses).
    pub https_addresses: Vec<SocketAddr>,
    /// Plain HTTP listening addresses; empty (off) by default. Loopback only unless
    /// [`ServerConfig::danger_plain_http_beyond_loopback`].
    pub http_addresses: Vec<SocketAddr>,
    /// Allow plain HTTP on addresses other than loopback: credentials then cross the network
    /// in clear text.
    pub danger_plain_http_beyond_loopback: bool,
    /// Accept requests without credentials as user `anonymous`.
    pub danger_allow_anonymous: bool,
    /// A Unix stream socket that serves the same CIM-XML over plain HTTP/1.1 to the local
    /// root (and the server's own user), who are known by their kernel credentials
    /// (`SO_PEERCRED`) and need no password; other users are refused. The file is made mode
    /// 0600 (a stale one is replaced) and removed when the server ends. `None`: no socket.
    pub local_socket: Option<PathBuf>,
    /// The realm of `WWW-Authenticate`.
    pub realm: String,
    /// Where a large response for a client that does not take chunks with trailers is
    /// spooled (an unlinked file) until its length is known; `None`: the system's temporary
    /// directory (`TMPDIR`). A local disk: on tmpfs the spool would be memory again.
    pub spool_dir: Option<PathBuf>,
    /// The limits.
    pub limits: Limits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            https_addresses: vec![SocketAddr::from(([0, 0, 0, 0], HTTPS_PORT))],
            http_addresses: Vec::new(),
            danger_plain_http_beyond_loopback: false,
            danger_allow_anonymous: false,
            local_socket: None,
            realm: "cimguard".into(),
            spool_dir: None,
            limits: Limits::default(),
        }
    }
}

impl ServerConfig {
    /// Makes the spool directory (mode 0700) when it is configured and missing, and checks
    /// that a spool file can be made in it, so that a broken directory stops the server at
    /// start rather than failing large responses later.
    pub fn prepare_spool_dir(&self) -> std::io::Result<()> {
        let Some(dir) = &self.spool_dir else {
            return Ok(());
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        tempfile::tempfile_in(dir).map(drop)
    }
}

/// Everything a client can make the server hold, bounded.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections; more are closed at once.
    pub connections_max: usize,
    /// Time to complete a TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Time to send a request's headers (slowloris). hyper starts this clock when it waits
    /// for a request, so it also bounds how long a keep-alive connection may sit idle.
    pub header_read_timeout: Duration,
    /// Time to receive a request body once its headers are in.
    pub body_read_timeout: Duration,
    /// Time a response write may wait for the client to take bytes (a client that stops
    /// reading would otherwise hold its connection, and the response, for ever). A client
    /// that keeps reading, however slowly, is never cut.
    pub send_timeout: Duration,
    /// Bytes of a request body.
    pub body_bytes_max: usize,
    /// Bytes of a response held for a client that does not take chunks with trailers (`TE:
    /// trailers`), which must get it whole with a `Content-Length`: up to
    /// [`crate::http::STREAM_THRESHOLD_BYTES`] in memory, beyond that in a spool file
    /// ([`ServerConfig::spool_dir`]). Larger responses fail with
    /// CIM_ERR_SERVER_LIMITS_EXCEEDED, as do responses that cannot be spooled.
    pub buffered_response_bytes_max: usize,
    /// Spool files in use at once (each up to `buffered_response_bytes_max`, each an open
    /// file until its client has read it); a large response beyond them fails with
    /// CIM_ERR_SERVER_LIMITS_EXCEEDED.
    pub spooled_responses_max: usize,
    /// The CIM-XML decoder's bounds (depth, elements, attribute and text sizes).
    pub xml: cim_schema::xml::Limits,
    /// How long one operation may run before it ends with CIM_ERR_SERVER_LIMITS_EXCEEDED.
    pub operation_time_max: Duration,
    /// Open enumeration contexts, objects per pull, operation timeouts.
    pub contexts: ContextLimits,
    /// How long a shutdown waits for requests in progress before it drops them.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections_max: 512,
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(60),
            body_bytes_max: 16 * 1024 * 1024,
            buffered_response_bytes_max: 512 * 1024 * 1024,
            spooled_responses_max: 8,
            xml: cim_schema::xml::Limits::DEFAULT,
            operation_time_max: Duration::from_secs(300),
            contexts: ContextLimits::default(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}
