//! `cmwbemd`: the WBEM agent of a cimguard node. Serves CIM-XML over HTTPS (DSP0200) on the
//! node's addresses, with TLS material created on first start, and with `--local-socket` over
//! a Unix socket for root, until SIGINT or SIGTERM; SIGHUP reloads the TLS certificate.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use std::time::Duration;

use cimguard_provider::config::{Limits, HTTPS_PORT};
use clap::Parser;

use cimguard::agent::{self, AgentSettings};

/// The allocator of the agent: mimalloc serves the many small, short-lived allocations of a
/// request with less CPU than glibc's malloc (BENCHMARKS.md, "WBEM server", allocators).
/// Transparent huge pages are kept out (feature `no_thp`, and
/// `cimguard_provider::server::limit_huge_pages` for hosts whose THP mode is `always`) so that
/// idle and after-load memory stay as small as with glibc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The WBEM agent of a cimguard node.
#[derive(Parser)]
#[command(name = "cmwbemd", version, about)]
struct Cli {
    /// An HTTPS address to listen on (repeatable); default 0.0.0.0:5989.
    #[arg(long = "listen", value_name = "ADDRESS")]
    https: Vec<SocketAddr>,
    /// A plain-HTTP address to listen on (repeatable; loopback only unless
    /// --danger-plain-http-beyond-loopback).
    #[arg(long = "http", value_name = "ADDRESS")]
    http: Vec<SocketAddr>,
    /// Allow plain HTTP on addresses other than loopback (Basic credentials sent in clear
    /// from beyond loopback are still refused, 403).
    #[arg(long)]
    danger_plain_http_beyond_loopback: bool,
    /// Accept requests without credentials, as user `anonymous` with the FULL_ADMIN role
    /// (for demos and benchmarks on loopback).
    #[arg(long)]
    danger_allow_anonymous: bool,
    /// The users file (`cimguard user add`); also read from $CIMGUARD_USERS_FILE.
    #[arg(
        long,
        value_name = "FILE",
        env = "CIMGUARD_USERS_FILE",
        default_value = "/etc/cimguard/users"
    )]
    users_file: PathBuf,
    /// Where the subscription store (indication filters, destinations, subscriptions) is kept.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/cimguard")]
    state_dir: PathBuf,
    /// The audit log of state-changing operations (JSON lines, mode 0600).
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Where large responses for clients that take no chunks (no `TE: trailers`) are spooled
    /// until their length is known (unlinked files); default: STATE_DIR/spool. Use a local
    /// disk: on tmpfs the spool is memory again.
    #[arg(long, value_name = "DIR")]
    spool_dir: Option<PathBuf>,
    /// The directory of the TLS material (created on first start).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/cimguard/tls")]
    tls_dir: PathBuf,
    /// A CA whose client certificates are accepted (mutual TLS); the certificate's common
    /// name is the user (Basic credentials sent too must be that user's).
    #[arg(long, value_name = "FILE")]
    client_ca: Option<PathBuf>,
    /// The host name written into paths and certificates (default: this machine's).
    #[arg(long)]
    host_name: Option<String>,
    /// How long HP_SGPackage.RequestStateChange waits for a run or halt to end (return code
    /// 0, or 4 and why) before it answers 4096 with an HP_SGPackageJob that goes on waiting (0 to 20).
    #[arg(long, value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=20))]
    method_wait: u64,
    /// How indications are delivered.
    #[command(flatten)]
    indications: agent::IndicationArgs,
    /// Open connections at most.
    #[arg(long, value_name = "N")]
    connections_max: Option<usize>,
    /// Seconds to send a request's headers; also the idle time a keep-alive connection may
    /// sit between requests.
    #[arg(long, value_name = "SECONDS")]
    header_read_timeout: Option<u64>,
    /// Seconds to receive a request body once its headers are in.
    #[arg(long, value_name = "SECONDS")]
    body_read_timeout: Option<u64>,
    /// Seconds a response may wait for the client to read more of it before the connection
    /// is closed.
    #[arg(long, value_name = "SECONDS")]
    send_timeout: Option<u64>,
    /// Seconds a shutdown waits for requests in progress.
    #[arg(long, value_name = "SECONDS")]
    shutdown_grace: Option<u64>,
    /// Bytes of a request body at most.
    #[arg(long, value_name = "BYTES")]
    body_bytes_max: Option<usize>,
    /// XML element nesting depth of a request at most (1 to 256: the decoder's stack is
    /// sized for that).
    #[arg(long, value_name = "N", value_parser = xml_depth)]
    xml_depth_max: Option<usize>,
    /// XML elements in a request at most.
    #[arg(long, value_name = "N")]
    xml_elements_max: Option<usize>,
    /// Seconds one operation may run.
    #[arg(long, value_name = "SECONDS")]
    operation_time_max: Option<u64>,
    /// Open enumeration contexts per user at most.
    #[arg(long, value_name = "N")]
    open_contexts_per_principal_max: Option<usize>,
    /// Bytes of a response held (spooled) for a client without `TE: trailers` at most.
    #[arg(long, value_name = "BYTES")]
    held_response_bytes_max: Option<usize>,
    /// Spooled responses in progress at once at most.
    #[arg(long, value_name = "N")]
    spooled_responses_max: Option<usize>,
    /// A Unix socket (mode 0600) serving the same CIM-XML over plain HTTP to root and this
    /// agent's own user, known by their kernel credentials, without a password (other users
    /// are refused; Basic credentials sent there are ignored). The cm* commands use
    /// /var/lib/cimguard/cimxml.sock unless CIMGUARD_SOCKET or CIMGUARD_URL says otherwise.
    #[arg(long, value_name = "PATH")]
    local_socket: Option<PathBuf>,
    /// The cluster daemon's admin socket (`cmcld.sock` in its state directory): the agent
    /// serves the cluster as the Serviceguard classes of root/cimv2.
    #[arg(long, value_name = "PATH")]
    cluster_socket: Option<PathBuf>,
}

/// `--xml-depth-max`: 1 to [`cim_schema::xml::DEPTH_MAX_CEILING`].
fn xml_depth(text: &str) -> Result<usize, String> {
    let ceiling = cim_schema::xml::DEPTH_MAX_CEILING;
    match text.parse::<usize>() {
        Ok(depth) if (1..=ceiling).contains(&depth) => Ok(depth),
        _ => Err(format!(
            "a nesting depth from 1 to {ceiling} (deeper would overflow the decoder's stack)"
        )),
    }
}

impl Cli {
    /// The limits, defaults overridden by the flags given.
    fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        if let Some(n) = self.connections_max {
            limits.connections_max = n;
        }
        if let Some(seconds) = self.header_read_timeout {
            limits.header_read_timeout = Duration::from_secs(seconds);
        }
        if let Some(seconds) = self.body_read_timeout {
            limits.body_read_timeout = Duration::from_secs(seconds);
        }
        if let Some(seconds) = self.send_timeout {
            limits.send_timeout = Duration::from_secs(seconds);
        }
        if let Some(seconds) = self.shutdown_grace {
            limits.shutdown_grace = Duration::from_secs(seconds);
        }
        if let Some(n) = self.body_bytes_max {
            limits.body_bytes_max = n;
            limits.xml.input_bytes_max = n;
        }
        if let Some(n) = self.xml_depth_max {
            limits.xml.depth_max = n;
        }
        if let Some(n) = self.xml_elements_max {
            limits.xml.elements_max = n;
        }
        if let Some(seconds) = self.operation_time_max {
            limits.operation_time_max = Duration::from_secs(seconds);
        }
        if let Some(n) = self.open_contexts_per_principal_max {
            limits.contexts.open_contexts_per_principal_max = n;
        }
        if let Some(n) = self.held_response_bytes_max {
            limits.buffered_response_bytes_max = n;
        }
        if let Some(n) = self.spooled_responses_max {
            limits.spooled_responses_max = n;
        }
        limits
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(cimguard_provider::server::DEFAULT_LOG_FILTER)
            }),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    cimguard_provider::server::limit_huge_pages();
    if let Err(error) = cimguard_cluster::runtime::allocator::return_large_allocations() {
        tracing::warn!(%error, "large allocations may stay with the process after they are freed");
    }
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(cimguard_provider::server::BLOCKING_THREADS_MAX)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let https = if !cli.https.is_empty() {
        cli.https.clone()
    } else if !cli.http.is_empty() {
        Vec::new()
    } else {
        vec![SocketAddr::from(([0, 0, 0, 0], HTTPS_PORT))]
    };
    // The cluster's name, for the profile's central instance: asked of the daemon once.
    let cluster_name = cli.cluster_socket.as_ref().and_then(|socket| {
        match cimguard_cluster::runtime::admin::AdminClient::new(socket).status() {
            Ok(status) => Some(status.cluster.name),
            Err(error) => {
                tracing::warn!(%error, "the cluster daemon does not answer yet");
                None
            }
        }
    });
    let settings = AgentSettings {
        https,
        http: cli.http.clone(),
        danger_plain_http_beyond_loopback: cli.danger_plain_http_beyond_loopback,
        danger_allow_anonymous: cli.danger_allow_anonymous,
        users_file: cli.users_file.clone(),
        state_dir: cli.state_dir.clone(),
        audit_log: cli.audit_log.clone(),
        spool_dir: cli.spool_dir.clone(),
        tls_dir: cli.tls_dir.clone(),
        client_ca: cli.client_ca.clone(),
        host_name: cli.host_name.clone(),
        limits: cli.limits(),
        cluster_socket: cli.cluster_socket.clone(),
        cluster_name,
        local_socket: cli.local_socket.clone(),
        method_wait: Duration::from_secs(cli.method_wait),
        indications: cli.indications.clone(),
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    agent::serve(
        settings,
        |address, https| {
            // Tests and scripts read this line to learn the bound port.
            println!(
                "listening {} {}",
                if https { "https" } else { "http" },
                address
            );
        },
        async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        },
    )
    .await
}
