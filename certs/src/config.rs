//! The rustls server configuration built from the files [`crate::ensure`] maintains, and a holder
//! that swaps in a new configuration when the files change. Accepting connections, and deciding
//! when to reload (SIGHUP), belong to the server.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::{ring, CryptoProvider, KeyExchangeAlgorithm};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};

use crate::files;
use crate::issue::TlsPaths;
use crate::CertError;

/// The only application protocol the WBEM server speaks over TLS.
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// What the server's TLS configuration is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// The server's certificate chain and key (the authority files are not read).
    pub paths: TlsPaths,
    /// A PEM file of the authorities whose client certificates are accepted. `None` asks for no
    /// client certificate. With `Some`, a certificate is optional (clients without one may use
    /// HTTP Basic), but one that is sent must verify against these authorities.
    pub client_ca: Option<PathBuf>,
}

/// Builds the server configuration: TLS 1.2 and 1.3 only, forward-secret cipher suites only,
/// ALPN `http/1.1` (or `http/1.0`), and optional client certificates verified against `settings.client_ca`.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, CertError> {
    let provider = Arc::new(forward_secret_provider());
    let certificates = files::read_certificates(&settings.paths.server_cert)?;
    let key = files::read_private_key(&settings.paths.server_key)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(CertError::Tls)?;
    let builder = match &settings.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            files::add_trust_anchors(&mut roots, path)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(CertError::ClientVerifier)?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    // rustls checks here that the key belongs to the leaf certificate.
    let mut config = builder
        .with_single_cert(certificates, key)
        .map_err(CertError::Tls)?;
    // HTTP/1.0 too: a client that offers only it (curl --http1.0) is served (HTTP/1.1
    // servers answer 1.0 requests), rather than refused in the handshake.
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec(), b"http/1.0".to_vec()];
    Ok(Arc::new(config))
}

/// The ring provider restricted to forward-secret key exchange.
///
/// ring's provider offers only ECDHE suites for TLS 1.2 (TLS 1.3 suites always use (EC)DHE) and
/// only elliptic-curve groups today. The filter makes that a guarantee of this code rather than a
/// property of the provider's current defaults: a static-RSA or finite-field suite or group added
/// upstream would not be offered here.
pub(crate) fn forward_secret_provider() -> CryptoProvider {
    let mut provider = ring::default_provider();
    provider.cipher_suites.retain(is_forward_secret);
    provider
        .kx_groups
        .retain(|group| group.name().key_exchange_algorithm() == KeyExchangeAlgorithm::ECDHE);
    provider
}

/// TLS 1.3 suites are always forward secret; TLS 1.2 suites are when their key exchange is ECDHE.
fn is_forward_secret(suite: &SupportedCipherSuite) -> bool {
    match suite {
        SupportedCipherSuite::Tls13(_) => true,
        SupportedCipherSuite::Tls12(suite) => suite.kx == KeyExchangeAlgorithm::ECDHE,
    }
}

/// The server configuration in use, replaceable while connections are being accepted.
///
/// The server calls [`current`](Self::current) for each accepted connection and
/// [`reload`](Self::reload) on SIGHUP. Connections already open keep the configuration they
/// started with.
#[derive(Debug)]
pub struct ReloadableServerConfig {
    /// Where the configuration is read from, on every reload.
    settings: TlsSettings,
    /// The configuration handed to new connections.
    current: RwLock<Arc<ServerConfig>>,
}

impl ReloadableServerConfig {
    /// Builds the first configuration from `settings`.
    pub fn new(settings: TlsSettings) -> Result<Self, CertError> {
        let config = server_config(&settings)?;
        Ok(ReloadableServerConfig {
            settings,
            current: RwLock::new(config),
        })
    }

    /// The configuration for a new connection.
    pub fn current(&self) -> Arc<ServerConfig> {
        // A writer only assigns an Arc, which cannot panic half-way: a poisoned lock still holds
        // a whole configuration.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the files again and, only if that succeeds, makes the result current. On error the
    /// previous configuration stays in use.
    pub fn reload(&self) -> Result<(), CertError> {
        let config = server_config(&self.settings)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = config;
        Ok(())
    }

    /// What the configuration is read from.
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_forward_secret_suites_and_groups_remain() {
        let provider = forward_secret_provider();
        assert!(!provider.cipher_suites.is_empty());
        assert!(provider.cipher_suites.iter().all(is_forward_secret));
        assert!(provider
            .cipher_suites
            .iter()
            .any(|suite| matches!(suite, SupportedCipherSuite::Tls12(_))));
        assert!(provider
            .cipher_suites
            .iter()
            .any(|suite| matches!(suite, SupportedCipherSuite::Tls13(_))));
        assert!(!provider.kx_groups.is_empty());
    }

    /// The application protocol a client offering `offered` settles on with the server, or
    /// the handshake's error.
    fn negotiated(offered: &[&[u8]]) -> Result<Option<Vec<u8>>, rustls::Error> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let names = crate::ServerNames {
            dns_names: vec!["localhost".into()],
            ip_addresses: Vec::new(),
        };
        let paths = crate::ensure(dir.path(), &names).expect("certificates");
        let server_config = server_config(&TlsSettings {
            paths: paths.clone(),
            client_ca: None,
        })
        .expect("the server configuration");
        let mut roots = RootCertStore::empty();
        files::add_trust_anchors(&mut roots, &paths.ca_cert).expect("the authority");
        let mut client_config =
            rustls::ClientConfig::builder_with_provider(Arc::new(forward_secret_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        client_config.alpn_protocols = offered.iter().map(|p| p.to_vec()).collect();
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
        let mut client =
            rustls::ClientConnection::new(Arc::new(client_config), name).expect("a client");
        let mut server = rustls::ServerConnection::new(server_config).expect("a server");
        // The handshake in memory: each side's records handed to the other, a few rounds.
        for _ in 0..8 {
            let mut records = Vec::new();
            client.write_tls(&mut records).expect("written");
            server.read_tls(&mut records.as_slice()).expect("read");
            server.process_new_packets()?;
            let mut records = Vec::new();
            server.write_tls(&mut records).expect("written");
            client.read_tls(&mut records.as_slice()).expect("read");
            client.process_new_packets()?;
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(server.alpn_protocol().map(<[u8]>::to_vec));
            }
        }
        panic!("the handshake did not end");
    }

    #[test]
    fn http_1_1_and_http_1_0_clients_are_served() {
        assert_eq!(
            negotiated(&[b"h2", b"http/1.1"]).expect("a handshake"),
            Some(b"http/1.1".to_vec())
        );
        assert_eq!(
            negotiated(&[b"http/1.0"]).expect("a handshake"),
            Some(b"http/1.0".to_vec())
        );
        assert_eq!(negotiated(&[]).expect("a handshake"), None);
        assert!(negotiated(&[b"h2"]).is_err());
    }

    #[test]
    fn reloadable_config_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ReloadableServerConfig>();
    }
}
