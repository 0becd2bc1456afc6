//! TLS material for cimguard's WBEM server: the node's own certificate authority, the server
//! certificate it signs (renewed when it no longer fits), client certificates for mutual TLS, the
//! rustls server configuration, and the identity a client certificate carries.
//!
//! It does no networking and knows nothing of tokio or HTTP: the server crate accepts
//! connections, reloads on SIGHUP and maps identities to users. Cryptography is rustls's and
//! rcgen's `ring` backend; keys are ECDSA P-256.
//!
//! The cluster's control channel (cmcld to cmcld, mutual TLS under one cluster authority) has
//! its own material: [`ensure_cluster_authority`], [`issue_node_certificate`], [`control_tls`]
//! and [`peer_node_name`].
//!
//! Main items: [`ensure`] (create or renew the files, returns [`TlsPaths`]),
//! [`issue_client_certificate`], [`server_config`] and [`ReloadableServerConfig`] (from
//! [`TlsSettings`]), [`client_identity`] (gives a [`ClientIdentity`]), and [`CertError`].
//!
//! Files in the TLS directory (mode 0700; keys 0600):
//!
//! ```text
//! ca.pem          the authority certificate: give this to clients as their trust anchor
//! ca-key.pem      the authority key: never leaves the node
//! server.pem      the server certificate, then the authority certificate
//! server-key.pem  the server key
//! ```
//!
//! ```no_run
//! use std::net::{IpAddr, Ipv4Addr};
//! use std::path::Path;
//!
//! use cimguard_certs::{ReloadableServerConfig, ServerNames, TlsSettings};
//!
//! # fn main() -> Result<(), cimguard_certs::CertError> {
//! let names = ServerNames {
//!     dns_names: vec!["node1.example".to_owned()],
//!     ip_addresses: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
//! };
//! let paths = cimguard_certs::ensure(Path::new("/var/lib/cimguard/tls"), &names)?;
//! let client_ca = Some(paths.ca_cert.clone());
//! let tls = ReloadableServerConfig::new(TlsSettings { paths, client_ca })?;
//! // Per accepted connection: tokio_rustls::TlsAcceptor::from(tls.current()).
//! // On SIGHUP: if let Err(error) = tls.reload() { /* log; the old configuration stays */ }
//! # let _ = tls.current();
//! # Ok(())
//! # }
//! ```

mod client;
mod cluster;
mod config;
mod error;
mod files;
mod identity;
mod issue;

pub use client::{client_config, ClientTlsSettings};
pub use cluster::{
    control_tls, ensure_cluster_authority, issue_node_certificate, node_dns_name, peer_node_name,
    AuthorityPaths, ControlPaths, ControlTls, CONFIG_ALPN, CONTROL_ALPN,
};
pub use config::{server_config, ReloadableServerConfig, TlsSettings};
pub use error::CertError;
pub use identity::{client_identity, ClientIdentity};
pub use issue::{ensure, issue_client_certificate, ServerNames, TlsPaths};
