//! `cmqsd`: the quorum server, the tie-breaker that runs outside the clusters it serves
//! (serviceguard.md 4.2). Listens on TCP port 1238 over TLS, with TLS material created on first
//! start, admits the hosts of the authorization file, and keeps its grants in memory only.
//! SIGHUP re-reads the authorization file (Serviceguard's `qs -update`); SIGINT or SIGTERM
//! stops the server.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use cimguard_cluster::runtime::quorum_server::{AuthFile, QuorumServer, ServerLimits, PORT};

/// The quorum server of cimguard clusters.
#[derive(Parser)]
#[command(name = "cmqsd", version, about)]
struct Cli {
    /// An address to listen on (repeatable); default 0.0.0.0:1238.
    #[arg(long = "listen", value_name = "ADDRESS")]
    listen: Vec<SocketAddr>,
    /// The authorization file: one host name or IP address per line, `+` for any host.
    #[arg(long, value_name = "FILE")]
    authfile: PathBuf,
    /// The directory of the TLS material (created on first start); give its ca.pem to the
    /// cluster nodes.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/cimguard/qs/tls")]
    tls_dir: PathBuf,
    /// A further name or address the server certificate must carry (repeatable): every name
    /// the nodes use as QS_HOST or QS_ADDR.
    #[arg(long = "name", value_name = "NAME")]
    names: Vec<String>,
    /// Open connections at most.
    #[arg(long, value_name = "N")]
    connections_max: Option<usize>,
    /// Clusters served at most.
    #[arg(long, value_name = "N")]
    clusters_max: Option<usize>,
    /// Seconds a connection may stay silent (longer than the clusters' QS_POLLING_INTERVAL).
    #[arg(long, value_name = "SECONDS")]
    idle_timeout: Option<u64>,
    /// Seconds a grant is remembered.
    #[arg(long, value_name = "SECONDS")]
    instance_age_max: Option<u64>,
    /// Seconds after start during which every lock request is denied [default: 150]: grants
    /// given before a restart are forgotten while the other half of that split may still ask.
    /// Keep it above every served cluster's 0.2 x MEMBER_TIMEOUT + QS_TIMEOUT_EXTENSION; 0 only
    /// for a server that has never granted anything.
    #[arg(long, value_name = "SECONDS")]
    startup_quiet: Option<u64>,
}

impl Cli {
    /// The limits, defaults overridden by the flags given.
    fn limits(&self) -> ServerLimits {
        let mut limits = ServerLimits::default();
        if let Some(n) = self.connections_max {
            limits.connections_max = n;
        }
        if let Some(n) = self.clusters_max {
            limits.arbiter.clusters_max = n;
        }
        if let Some(seconds) = self.idle_timeout {
            limits.idle_timeout = Duration::from_secs(seconds);
        }
        if let Some(seconds) = self.instance_age_max {
            limits.arbiter.instance_age_max = Duration::from_secs(seconds);
        }
        if let Some(seconds) = self.startup_quiet {
            limits.arbiter.startup_quiet = Duration::from_secs(seconds);
        }
        limits
    }

    /// The names for the server certificate: this host, localhost, the given names and the
    /// specific listening addresses.
    fn server_names(&self) -> cimguard_certs::ServerNames {
        let mut names = cimguard_certs::ServerNames {
            dns_names: vec![host_name(), "localhost".into()],
            ip_addresses: vec![std::net::Ipv4Addr::LOCALHOST.into()],
        };
        for name in &self.names {
            match name.parse::<IpAddr>() {
                Ok(address) => names.ip_addresses.push(address),
                Err(_) => names.dns_names.push(name.clone()),
            }
        }
        for address in &self.listen {
            if !address.ip().is_unspecified() {
                names.ip_addresses.push(address.ip());
            }
        }
        names.dns_names.dedup();
        names.ip_addresses.sort();
        names.ip_addresses.dedup();
        names
    }
}

fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    if cli.listen.is_empty() {
        cli.listen = vec![SocketAddr::from(([0, 0, 0, 0], PORT))];
    }
    let authorized = load_authfile(&cli.authfile)?;
    let paths = cimguard_certs::ensure(&cli.tls_dir, &cli.server_names())
        .with_context(|| format!("tls material in {}", cli.tls_dir.display()))?;
    let tls = cimguard_certs::server_config(&cimguard_certs::TlsSettings {
        paths: paths.clone(),
        client_ca: None,
    })
    .context("tls configuration")?;
    let server = QuorumServer::new(&tls, authorized, cli.limits());
    let signals = Signals::install()?;

    let mut listeners = Vec::new();
    for address in &cli.listen {
        let listener =
            TcpListener::bind(address).with_context(|| format!("cannot listen on {address}"))?;
        listeners.push(listener);
    }
    let mut serving = Vec::new();
    let mut port = None;
    for listener in listeners {
        let address = listener.local_addr()?;
        println!("listening {address}");
        port.get_or_insert(address.port());
        let server = Arc::clone(&server);
        serving.push(
            thread::Builder::new()
                .name("cmqsd-accept".into())
                .spawn(move || server.serve(listener))?,
        );
    }
    eprintln!(
        "cmqsd: clients trust the authority in {}",
        paths.ca_cert.display()
    );
    println!(
        "Server is up and waiting for connections at port {}",
        port.unwrap_or(PORT)
    );

    signals.wait(&server, &cli.authfile);
    server.shutdown();
    for thread in serving {
        match thread.join() {
            Ok(result) => result.context("accepting connections")?,
            Err(_) => anyhow::bail!("an accepting thread panicked"),
        }
    }
    Ok(())
}

fn load_authfile(path: &Path) -> anyhow::Result<AuthFile> {
    let authorized = AuthFile::load(path)?;
    for name in authorized.unresolved() {
        eprintln!(
            "cmqsd: warning: {name} in {} does not resolve; it cannot connect",
            path.display()
        );
    }
    Ok(authorized)
}

/// The signals the server answers, caught from before it reports that it is up.
struct Signals {
    runtime: tokio::runtime::Runtime,
    hangup: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let _context = runtime.enter();
        Ok(Signals {
            hangup: signal(SignalKind::hangup())?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            runtime,
        })
    }

    /// Re-reads the authorization file on SIGHUP until SIGINT or SIGTERM.
    fn wait(mut self, server: &QuorumServer, authfile: &Path) {
        self.runtime.block_on(async {
            loop {
                tokio::select! {
                    _ = self.hangup.recv() => match load_authfile(authfile) {
                        Ok(authorized) => {
                            server.set_authorized(authorized);
                            eprintln!("cmqsd: authorization file {} read again", authfile.display());
                        }
                        // The file in use stays: a typo must not lock every node out.
                        Err(error) => {
                            eprintln!("cmqsd: {error:#}; the previous authorization file stays");
                        }
                    },
                    _ = self.terminate.recv() => break,
                    _ = self.interrupt.recv() => break,
                }
            }
        });
        eprintln!("cmqsd: stopping");
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
