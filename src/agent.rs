//! The node's WBEM agent, as `cmwbemd` runs it alone and `cmcld` runs it beside the cluster
//! daemon: CIM-XML over HTTPS (DSP0200), and over a local socket for root, with the shipped
//! schema, the interop namespace, the subscriptions and, given the daemon's admin socket, the
//! Serviceguard provider.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cimguard_provider::access::AccessPolicySource;
use cimguard_provider::auth::{AuditLog, Authenticator, Users};
use cimguard_provider::config::{Limits, ServerConfig};
use cimguard_provider::events::{IndicationService, IndicationSettings};
use cimguard_provider::interop::{
    standard_object_manager, IndicationCounters, IndicationServiceValues, InteropSettings, Profile,
    INDICATIONS_PROFILE, PROFILE_REGISTRATION,
};
use cimguard_provider::metrics::{ClusterMetrics, Metrics};
use cimguard_provider::server::{Server, TlsSource};
use cimguard_provider::service::Service;
use cimguard_provider::serviceguard::{AdminSocket, ServiceguardProvider, CIMV2};
use cimguard_provider::subscriptions::SubscriptionStore;

/// What an agent is started with.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// HTTPS addresses.
    pub https: Vec<SocketAddr>,
    /// Plain-HTTP addresses.
    pub http: Vec<SocketAddr>,
    /// Plain HTTP allowed beyond loopback.
    pub danger_plain_http_beyond_loopback: bool,
    /// Requests without credentials served as `anonymous` (FULL_ADMIN).
    pub danger_allow_anonymous: bool,
    /// The users file.
    pub users_file: PathBuf,
    /// Where the subscription store is kept.
    pub state_dir: PathBuf,
    /// The audit log.
    pub audit_log: Option<PathBuf>,
    /// The spool directory (default STATE_DIR/spool).
    pub spool_dir: Option<PathBuf>,
    /// The TLS material's directory.
    pub tls_dir: PathBuf,
    /// The authority of accepted client certificates.
    pub client_ca: Option<PathBuf>,
    /// The host name of paths and certificates (default: this machine's).
    pub host_name: Option<String>,
    /// The limits.
    pub limits: Limits,
    /// The cluster daemon's admin socket: with it the agent serves the Serviceguard classes.
    pub cluster_socket: Option<PathBuf>,
    /// The cluster's name, for the Serviceguard profile's central instance.
    pub cluster_name: Option<String>,
    /// A Unix socket serving the same CIM-XML to root (and the agent's own user) without a
    /// password, the user known from the kernel (mode 0600; the cm* commands' default).
    pub local_socket: Option<PathBuf>,
    /// How long HP_SGPackage.RequestStateChange waits for a run or halt to end before it
    /// answers 4096 with a job that goes on waiting.
    pub method_wait: Duration,
    /// How indications are delivered.
    pub indications: IndicationArgs,
}

/// How the agent delivers indications (the values CIM_IndicationService shows).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct IndicationArgs {
    /// Seconds between attempts to deliver an indication to a listener that failed
    /// (DeliveryRetryInterval). Undelivered indications stay queued, in order, across
    /// restarts, until the listener takes them or the removal interval ends.
    #[arg(long, value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub indication_retry_interval: u32,
    /// Failed retries after which a listener is reported failing and its subscriptions'
    /// OnFatalErrorPolicy applies (DeliveryRetryAttempts).
    #[arg(long, value_name = "COUNT", default_value_t = 3)]
    pub indication_retry_attempts: u16,
    /// Seconds a listener may keep failing before its subscriptions are disabled
    /// (SubscriptionRemovalTimeInterval; the action is SubscriptionRemovalAction 3, disable).
    #[arg(long, value_name = "SECONDS", default_value_t = 2_592_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub indication_removal_interval: u32,
    /// The most indications queued for one listener; beyond it the oldest is dropped,
    /// counted and logged with its sequence number.
    #[arg(long, value_name = "COUNT", default_value_t = cimguard_indications::CAPACITY,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub indication_queue_max: u64,
    /// A PEM file of authorities that HTTPS listeners' certificates may chain to, besides
    /// the system's (repeatable).
    #[arg(long, value_name = "FILE")]
    pub indication_ca: Vec<PathBuf>,
    /// A certificate chain (PEM) to show HTTPS listeners that ask for a client certificate
    /// (mutual TLS); with --indication-client-key.
    #[arg(long, value_name = "FILE", requires = "indication_client_key")]
    pub indication_client_cert: Option<PathBuf>,
    /// The private key (PEM) of --indication-client-cert.
    #[arg(long, value_name = "FILE", requires = "indication_client_cert")]
    pub indication_client_key: Option<PathBuf>,
    /// Send indications to HTTPS listeners without verifying their certificates or names.
    /// Anyone on the path can then read and forge them.
    #[arg(long)]
    pub danger_accept_invalid_listener_certificates: bool,
}

impl Default for IndicationArgs {
    fn default() -> IndicationArgs {
        IndicationArgs {
            indication_retry_interval: 30,
            indication_retry_attempts: 3,
            indication_removal_interval: 2_592_000,
            indication_queue_max: cimguard_indications::CAPACITY,
            indication_ca: Vec::new(),
            indication_client_cert: None,
            indication_client_key: None,
            danger_accept_invalid_listener_certificates: false,
        }
    }
}

impl IndicationArgs {
    /// The indication service's settings, its outbox in `state_dir`.
    fn settings(
        &self,
        state_dir: &std::path::Path,
        counters: Arc<IndicationCounters>,
    ) -> IndicationSettings {
        IndicationSettings {
            counters,
            outbox: state_dir.join("outbox.redb"),
            capacity: self.indication_queue_max,
            policy: cimguard_indications::Policy {
                retry_attempts: self.indication_retry_attempts,
                retry_interval: Duration::from_secs(u64::from(self.indication_retry_interval)),
                removal_after: Duration::from_secs(u64::from(self.indication_removal_interval)),
                ..cimguard_indications::Policy::default()
            },
            removal_action: 3,
            tls: cimguard_certs::ClientTlsSettings {
                system_roots: true,
                trusted_ca: self.indication_ca.clone(),
                identity: self
                    .indication_client_cert
                    .clone()
                    .zip(self.indication_client_key.clone()),
                danger_accept_invalid_certificates: self
                    .danger_accept_invalid_listener_certificates,
            },
        }
    }

    /// The values CIM_IndicationService shows.
    fn service_values(&self) -> IndicationServiceValues {
        IndicationServiceValues {
            retry_attempts: self.indication_retry_attempts,
            retry_interval_seconds: self.indication_retry_interval,
            removal_action: 3,
            removal_interval_seconds: self.indication_removal_interval,
        }
    }
}

/// The Serviceguard cluster profile this agent implements; its central instance is the
/// cluster, when the agent serves one.
fn serviceguard_profile(cluster_name: Option<&str>, host: &str) -> Profile {
    let central = cluster_name
        .map(|name| {
            let mut path = cim_schema::model::InstancePath::new("HP_SGCluster");
            path.namespace = Some(CIMV2.to_owned());
            path.host = Some(host.to_owned());
            path.keybindings.push(cim_schema::model::KeyBinding {
                name: "CreationClassName".into(),
                value: cim_schema::model::Value::String("HP_SGCluster".into()),
            });
            path.keybindings.push(cim_schema::model::KeyBinding {
                name: "Name".into(),
                value: cim_schema::model::Value::String(name.to_owned()),
            });
            vec![path]
        })
        .unwrap_or_default();
    Profile {
        organization: 1,
        other_organization: Some("cimguard".into()),
        name: "Serviceguard Cluster".into(),
        version: "1.0.0".into(),
        central,
        references: vec![PROFILE_REGISTRATION.into(), INDICATIONS_PROFILE.into()],
    }
}

/// This machine's host name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Serves until `shutdown` completes; SIGHUP reloads the users file and the certificate.
/// `listening` is told each bound address (and whether it is HTTPS) once the server listens.
pub async fn serve(
    settings: AgentSettings,
    listening: impl Fn(SocketAddr, bool),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let host = settings.host_name.clone().unwrap_or_else(host_name);
    let config = ServerConfig {
        danger_plain_http_beyond_loopback: settings.danger_plain_http_beyond_loopback,
        danger_allow_anonymous: settings.danger_allow_anonymous,
        https_addresses: settings.https.clone(),
        http_addresses: settings.http.clone(),
        local_socket: settings.local_socket.clone(),
        spool_dir: Some(
            settings
                .spool_dir
                .clone()
                .unwrap_or_else(|| settings.state_dir.join("spool")),
        ),
        limits: settings.limits.clone(),
        ..ServerConfig::default()
    };
    config
        .prepare_spool_dir()
        .with_context(|| format!("spool directory {:?}", config.spool_dir))?;
    let tls = if config.https_addresses.is_empty() {
        None
    } else {
        let mut names = cimguard_certs::ServerNames {
            dns_names: vec![host.clone(), "localhost".into()],
            ip_addresses: Vec::new(),
        };
        for address in &config.https_addresses {
            if !address.ip().is_unspecified() {
                names.ip_addresses.push(address.ip());
            }
        }
        names
            .ip_addresses
            .push(std::net::Ipv4Addr::LOCALHOST.into());
        // Each name once (the host may be `localhost`, an address may be loopback).
        let mut seen = std::collections::HashSet::new();
        names.ip_addresses.retain(|a| seen.insert(*a));
        let mut seen = std::collections::HashSet::new();
        names.dns_names.retain(|n| seen.insert(n.clone()));
        let paths = cimguard_certs::ensure(&settings.tls_dir, &names)
            .with_context(|| format!("tls material in {}", settings.tls_dir.display()))?;
        let tls_settings = cimguard_certs::TlsSettings {
            paths,
            client_ca: settings.client_ca.clone(),
        };
        Some(Arc::new(
            cimguard_certs::ReloadableServerConfig::new(tls_settings)
                .context("tls configuration")?,
        ))
    };
    let cluster_name = settings
        .cluster_socket
        .as_ref()
        .and(settings.cluster_name.as_deref());
    // What the indication service does, shown by CIMGuard_IndicationService and /metrics.
    let indication_counters = Arc::new(IndicationCounters::default());
    let interop = InteropSettings {
        product: "cimguard".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        system_name: host.clone(),
        profiles: vec![serviceguard_profile(cluster_name, &host)],
        indication_service: settings.indications.service_values(),
        indication_counters: indication_counters.clone(),
    };
    let mut manager =
        standard_object_manager(&host, &interop).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut metrics: Option<Arc<dyn Metrics>> = None;
    let mut access_policy: Option<Arc<dyn AccessPolicySource>> = None;
    let mut cluster_source = None;
    if let Some(socket) = &settings.cluster_socket {
        let source = Arc::new(AdminSocket::new(socket));
        let provider = ServiceguardProvider::install(
            &mut manager,
            source.clone(),
            env!("CARGO_PKG_VERSION"),
            settings.method_wait,
        )
        .map_err(|e| anyhow::anyhow!("the Serviceguard provider: {e}"))?;
        metrics = Some(Arc::new(
            ClusterMetrics::new(source.clone()).with_indications(indication_counters.clone()),
        ));
        cluster_source = Some((source, provider.clone()));
        // The cluster's USER_NAME / USER_ROLE policy can raise the users file's roles.
        access_policy = Some(provider);
    }
    // In a cluster, the subscriptions are the cluster's (its shared map): every agent serves
    // them and sends their indications, whichever node they were made at.
    let store = Arc::new(match &cluster_source {
        Some((source, _)) => SubscriptionStore::shared(source.clone(), &host),
        None => SubscriptionStore::open(Some(settings.state_dir.join("subscriptions.xml")), &host)?,
    });
    store
        .install(&mut manager)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // The cluster's events, as indications to the store's subscriptions.
    let indications = match cluster_source {
        Some((source, provider)) => Some(
            IndicationService::start(
                &manager,
                (source, provider),
                store.clone(),
                &settings
                    .indications
                    .settings(&settings.state_dir, indication_counters.clone()),
            )
            .map_err(|e| anyhow::anyhow!(e))?,
        ),
        None => None,
    };
    let authenticator = match Users::load(&settings.users_file) {
        Ok(users) => Some(Arc::new(with_pam(Authenticator::new(users)))),
        Err(error) if settings.danger_allow_anonymous => {
            tracing::warn!(%error, "no users file: only anonymous requests are served");
            None
        }
        Err(error) => {
            return Err(anyhow::anyhow!(
                "{error}; create users with `cimguard user add NAME --role ROLE --users-file {}`",
                settings.users_file.display()
            ))
        }
    };
    let audit = match &settings.audit_log {
        Some(path) => {
            Some(AuditLog::open(path).with_context(|| format!("audit log {}", path.display()))?)
        }
        None => None,
    };
    let mut service = Service::new(config, manager, authenticator.clone(), audit);
    service.metrics = metrics;
    service.access_policy = access_policy;
    let service = Arc::new(service);
    let server = Server::bind(service, tls.clone().map(|t| t as Arc<dyn TlsSource>)).await?;
    if let Some(path) = server.local_socket() {
        tracing::info!(path = %path.display(), "listening on the local socket");
    }
    for (address, https) in server.local_addresses() {
        tracing::info!(%address, https, "listening");
        listening(address, https);
    }
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let reload = tls.clone();
    let users_file = settings.users_file.clone();
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            if let Some(authenticator) = &authenticator {
                match Users::load(&users_file) {
                    Ok(users) => {
                        authenticator.reload(users);
                        tracing::info!("users reloaded");
                    }
                    Err(error) => {
                        tracing::error!(%error, "users file reload failed; keeping the old users");
                    }
                }
            }
            if let Some(tls) = &reload {
                match tls.reload() {
                    Ok(()) => tracing::info!("tls certificate reloaded"),
                    Err(error) => {
                        tracing::error!(%error, "tls reload failed; keeping the old certificate");
                    }
                }
            }
        }
    });
    server
        .run(async move {
            shutdown.await;
            tracing::info!("shutting down");
        })
        .await;
    if let Some(indications) = indications {
        indications.stop().await;
    }
    Ok(())
}

/// Users marked `pam` in the users file have their passwords checked by PAM (service
/// `cimguard`) when the agent is built with the `pam` feature; without it they cannot log in.
#[cfg(feature = "pam")]
fn with_pam(authenticator: Authenticator) -> Authenticator {
    authenticator.with_pam(Box::new(cimguard_provider::auth::PamAuthenticator::new()))
}

#[cfg(not(feature = "pam"))]
fn with_pam(authenticator: Authenticator) -> Authenticator {
    authenticator
}
