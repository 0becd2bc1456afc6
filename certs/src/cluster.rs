//! TLS material of the cluster's control channel (cmcld to cmcld): one certificate authority
//! for the whole cluster, kept where the operator runs cmapplyconf, and on every node a
//! certificate it signs, naming that node, with which the node both serves and connects
//! (mutual TLS). A node trusts only the cluster authority, so a machine with a certificate from
//! any other authority, or with none, cannot talk on the channel.
//!
//! The authority (`cluster-ca.pem`, `cluster-ca-key.pem`, see [`AuthorityPaths`]) stays with the
//! operator. Files in a node's state directory:
//!
//! ```text
//! control-ca.pem    the cluster authority's certificate (the only trust anchor)
//! control.pem       this node's certificate, then the authority's
//! control-key.pem   this node's key (mode 0600)
//! ```
//!
//! A node certificate has the node's name as its common name and as a DNS subject alternative
//! name (in lower case), its addresses as IP subject alternative names, and both the server and
//! the client extended key usages. It is valid as long as an authority (ten years): an expired
//! certificate would split a running cluster, and nodes are re-issued by the operator, not
//! renewed behind their back.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{ExtendedKeyUsagePurpose, KeyPair, SanType, PKCS_ECDSA_P256_SHA256};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::ring;
use rustls::pki_types::DnsName;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use time::OffsetDateTime;

use crate::files::{self, CERTIFICATE_MODE, KEY_MODE};
use crate::identity::parse_certificate;
use crate::issue::{
    first_certificate, leaf_params, subject, Authority, AUTHORITY_VALIDITY, CLOCK_SKEW_ALLOWANCE,
};
use crate::{CertError, TlsPaths};

/// The application protocol of the control channel (ALPN): both ends must name it.
pub const CONTROL_ALPN: &[u8] = b"cimguard-control/1";

/// The application protocol of the configuration exchange (ALPN): a node that gives a
/// cmapplyconf asks a node that is not configured in its cluster yet (an unconfigured
/// cmcld, the equivalent of Serviceguard's cmclconfd) to take a generation, one request and
/// one answer a connection, under the same authority and certificates as the control channel.
pub const CONFIG_ALPN: &[u8] = b"cimguard-config/1";

/// Where a node's control-channel material lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlPaths {
    /// The cluster authority's certificate (PEM).
    pub ca_cert: PathBuf,
    /// The node's certificate followed by the authority's (PEM).
    pub cert: PathBuf,
    /// The node's private key (PEM, PKCS#8, mode 0600).
    pub key: PathBuf,
}

impl ControlPaths {
    /// The standard names in a node's state directory: `control-ca.pem`, `control.pem` and
    /// `control-key.pem`. Touches no file.
    pub fn in_directory(directory: &Path) -> Self {
        ControlPaths {
            ca_cert: directory.join("control-ca.pem"),
            cert: directory.join("control.pem"),
            key: directory.join("control-key.pem"),
        }
    }
}

/// Where a cluster authority lives. Its names differ from the WBEM server's and the quorum
/// server's authority (`ca.pem`), so that a folder of theirs is never taken for it: a client
/// certificate of the WBEM server must never pass for a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorityPaths {
    /// `cluster-ca.pem`: the authority's certificate.
    pub cert: PathBuf,
    /// `cluster-ca-key.pem`: its key (mode 0600).
    pub key: PathBuf,
}

impl AuthorityPaths {
    /// The standard names in `directory`. Touches no file.
    pub fn in_directory(directory: &Path) -> Self {
        AuthorityPaths {
            cert: directory.join("cluster-ca.pem"),
            key: directory.join("cluster-ca-key.pem"),
        }
    }

    /// The same as the [`TlsPaths`] the authority code reads (only its authority fields are
    /// read; the server fields name nothing).
    fn as_tls_paths(&self) -> TlsPaths {
        TlsPaths {
            ca_cert: self.cert.clone(),
            ca_key: self.key.clone(),
            server_cert: PathBuf::new(),
            server_key: PathBuf::new(),
        }
    }
}

/// Makes sure `directory` holds a cluster authority ([`AuthorityPaths`]), creating one named
/// after `cluster_name` when neither file is there, and returns its paths. An authority
/// already there is loaded and checked, never replaced: a new one would cut every node issued
/// by the old one off the channel.
pub fn ensure_cluster_authority(
    directory: &Path,
    cluster_name: &str,
) -> Result<AuthorityPaths, CertError> {
    files::create_private_directory(directory)?;
    let authority = AuthorityPaths::in_directory(directory);
    let paths = authority.as_tls_paths();
    Authority::load_or_create(&paths, || {
        Authority::create_named(
            &paths,
            &format!("cimguard cluster {cluster_name}"),
            OffsetDateTime::now_utc(),
        )
    })?;
    Ok(authority)
}

/// The name a node certificate carries for `node`: its NODE_NAME in lower case, which must be
/// a DNS name (Serviceguard node names are host names).
pub fn node_dns_name(node: &str) -> Result<String, CertError> {
    let name = node.to_ascii_lowercase();
    if name.parse::<IpAddr>().is_ok() || DnsName::try_from(name.as_str()).is_err() {
        return Err(CertError::InvalidDnsName(node.to_owned()));
    }
    Ok(name)
}

/// Issues node `node`'s certificate (addresses `addresses`) from the authority in `authority`
/// and writes it, with its key and the authority's certificate, into `state_dir` (created
/// with mode 0700 if missing). Existing files are replaced whole, key first.
pub fn issue_node_certificate(
    authority: &AuthorityPaths,
    node: &str,
    addresses: &[IpAddr],
    state_dir: &Path,
) -> Result<ControlPaths, CertError> {
    let name = node_dns_name(node)?;
    let loaded = Authority::load(&authority.as_tls_paths())?;
    // Never beyond the authority's own end: the chain would stop verifying first.
    let authority_end = parse_certificate(&loaded.certificate)
        .map_err(|reason| CertError::CertificateFile {
            path: authority.cert.clone(),
            reason,
        })?
        .validity()
        .not_after
        .to_datetime();
    files::create_private_directory(state_dir)?;
    let now = OffsetDateTime::now_utc();
    let mut params = leaf_params(now);
    params.not_before = now.saturating_sub(CLOCK_SKEW_ALLOWANCE);
    params.not_after = now.saturating_add(AUTHORITY_VALIDITY).min(authority_end);
    params.distinguished_name = subject(&name);
    let dns = name
        .as_str()
        .try_into()
        .map_err(|_| CertError::InvalidDnsName(node.to_owned()))?;
    params.subject_alt_names = std::iter::once(SanType::DnsName(dns))
        .chain(addresses.iter().copied().map(SanType::IpAddress))
        .collect();
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(CertError::Generate)?;
    let certificate = params
        .signed_by(&key, &loaded.issuer)
        .map_err(CertError::Generate)?;
    // The authority's own file, as it is, rather than a re-encoding of it.
    let authority_pem =
        std::fs::read_to_string(&authority.cert).map_err(CertError::io(&authority.cert))?;
    let mut chain = certificate.pem();
    chain.push_str(&authority_pem);
    let paths = ControlPaths::in_directory(state_dir);
    files::write_file(&paths.key, key.serialize_pem().as_bytes(), KEY_MODE)?;
    files::write_file(&paths.cert, chain.as_bytes(), CERTIFICATE_MODE)?;
    files::write_file(&paths.ca_cert, authority_pem.as_bytes(), CERTIFICATE_MODE)?;
    Ok(paths)
}

/// Both ends of a node's control channel: the server that requires a client certificate from
/// the cluster authority, and the client that presents the node's certificate and accepts only
/// servers the authority signed. TLS 1.3 only (both ends are cimguard), ALPN
/// [`CONTROL_ALPN`].
#[derive(Debug, Clone)]
pub struct ControlTls {
    /// For accepted connections.
    pub server: Arc<ServerConfig>,
    /// For connections this node opens.
    pub client: Arc<ClientConfig>,
    /// The configuration exchange's server (ALPN [`CONFIG_ALPN`]), as `server` otherwise.
    pub exchange_server: Arc<ServerConfig>,
    /// The configuration exchange's client (ALPN [`CONFIG_ALPN`]), as `client` otherwise.
    pub exchange_client: Arc<ClientConfig>,
    /// The node the certificate names (see [`peer_node_name`]).
    pub node: String,
}

/// Reads a node's material and builds its [`ControlTls`]. Every problem (a missing file, a key
/// that does not belong to the certificate, an unusable authority) is an error naming the file.
pub fn control_tls(paths: &ControlPaths) -> Result<ControlTls, CertError> {
    let provider = Arc::new(ring::default_provider());
    let mut roots = RootCertStore::empty();
    for certificate in files::read_certificates(&paths.ca_cert)? {
        roots
            .add(certificate)
            .map_err(|source| CertError::TrustAnchor {
                path: paths.ca_cert.clone(),
                source,
            })?;
    }
    let roots = Arc::new(roots);
    let chain = files::read_certificates(&paths.cert)?;
    // The leaf must come from the authority the node trusts: a node issued by another
    // cluster's authority would be refused by every peer, so refuse it here, at start.
    let leaf = first_certificate(&paths.cert)?;
    let verifier = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|e| CertError::Certificate {
            reason: format!("{}: {e}", paths.ca_cert.display()),
        })?;
    check_issued_by_authority(&leaf, &roots, &paths.cert)?;
    let node = peer_node_name(&leaf).ok_or_else(|| CertError::CertificateFile {
        path: paths.cert.clone(),
        reason: "it names no node, or names two".to_owned(),
    })?;
    let key = files::read_private_key(&paths.key)?;
    let client_verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(CertError::ClientVerifier)?;
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(CertError::Tls)?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(CertError::Tls)?;
    server.alpn_protocols = vec![CONTROL_ALPN.to_vec()];
    // The channel's connections are long-lived and a reconnection costs one handshake: no
    // resumption, and no ticket that the client would have to read before its first frame.
    server.send_tls13_tickets = 0;
    server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(CertError::Tls)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(chain, key)
        .map_err(CertError::Tls)?;
    client.alpn_protocols = vec![CONTROL_ALPN.to_vec()];
    let mut exchange_server = server.clone();
    exchange_server.alpn_protocols = vec![CONFIG_ALPN.to_vec()];
    let mut exchange_client = client.clone();
    exchange_client.alpn_protocols = vec![CONFIG_ALPN.to_vec()];
    Ok(ControlTls {
        server: Arc::new(server),
        client: Arc::new(client),
        exchange_server: Arc::new(exchange_server),
        exchange_client: Arc::new(exchange_client),
        node,
    })
}

/// Checks that `leaf` verifies under `roots` as a client certificate would.
fn check_issued_by_authority(
    leaf: &rustls::pki_types::CertificateDer<'static>,
    roots: &Arc<RootCertStore>,
    path: &Path,
) -> Result<(), CertError> {
    let verifier = WebPkiClientVerifier::builder_with_provider(
        roots.clone(),
        Arc::new(ring::default_provider()),
    )
    .build()
    .map_err(CertError::ClientVerifier)?;
    verifier
        .verify_client_cert(leaf, &[], rustls::pki_types::UnixTime::now())
        .map(|_| ())
        .map_err(|e| CertError::CertificateFile {
            path: path.to_owned(),
            reason: format!("not issued by the cluster authority it trusts: {e}"),
        })
}

/// The node a verified peer certificate names, as [`issue_node_certificate`] writes it: exactly
/// one DNS subject alternative name, equal to the common name (compared in lower case). `None`
/// for anything else, such as a client certificate with a common name alone.
pub fn peer_node_name(end_entity: &rustls::pki_types::CertificateDer<'_>) -> Option<String> {
    let identity = crate::client_identity(end_entity).ok()?;
    let [dns_name] = identity.dns_names.as_slice() else {
        return None;
    };
    let name = dns_name.to_ascii_lowercase();
    let common_name = identity.common_name?.to_ascii_lowercase();
    (common_name == name).then_some(name)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn a_node_certificate_names_its_node_and_verifies_under_its_authority() {
        let directory = tempfile::tempdir().unwrap();
        let authority = ensure_cluster_authority(&directory.path().join("ca"), "c1").unwrap();
        let node_dir = directory.path().join("n1");
        let addresses = [IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))];
        let paths = issue_node_certificate(&authority, "N1", &addresses, &node_dir).unwrap();
        let tls = control_tls(&paths).unwrap();
        assert_eq!(tls.node, "n1");
        assert_eq!(tls.server.alpn_protocols, vec![CONTROL_ALPN.to_vec()]);
        assert_eq!(
            tls.exchange_server.alpn_protocols,
            vec![CONFIG_ALPN.to_vec()]
        );
        assert_eq!(
            tls.exchange_client.alpn_protocols,
            vec![CONFIG_ALPN.to_vec()]
        );
        let leaf = first_certificate(&paths.cert).unwrap();
        assert_eq!(peer_node_name(&leaf).as_deref(), Some("n1"));
        let identity = crate::client_identity(&leaf).unwrap();
        assert_eq!(identity.ip_addresses, addresses.to_vec());
        let mode = |p: &Path| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode(&paths.key), 0o600);
        // The authority stays: a second call loads it.
        let before = std::fs::read(&authority.cert).unwrap();
        ensure_cluster_authority(&directory.path().join("ca"), "c1").unwrap();
        assert_eq!(std::fs::read(&authority.cert).unwrap(), before);
        // Not beyond the authority.
        let end = |path: &Path| {
            let der = first_certificate(path).unwrap();
            parse_certificate(&der)
                .unwrap()
                .validity()
                .not_after
                .to_datetime()
        };
        assert!(end(&paths.cert) <= end(&authority.cert));
    }

    #[test]
    fn a_node_issued_by_another_authority_is_refused_at_load() {
        let directory = tempfile::tempdir().unwrap();
        let ours = ensure_cluster_authority(&directory.path().join("ours"), "c1").unwrap();
        let theirs = ensure_cluster_authority(&directory.path().join("theirs"), "c2").unwrap();
        let node_dir = directory.path().join("n1");
        let paths = issue_node_certificate(&theirs, "n1", &[], &node_dir).unwrap();
        std::fs::copy(&ours.cert, &paths.ca_cert).unwrap();
        let error = control_tls(&paths).unwrap_err().to_string();
        assert!(error.contains("control.pem"), "{error}");
    }

    #[test]
    fn a_wbem_client_certificate_never_passes_for_a_node() {
        let directory = tempfile::tempdir().unwrap();
        let names = crate::ServerNames {
            dns_names: vec!["n1".to_owned()],
            ip_addresses: Vec::new(),
        };
        // The WBEM server's authority folder is not a cluster authority: a new one is made
        // beside it rather than the WBEM one taken.
        let wbem = crate::ensure(directory.path(), &names).unwrap();
        let cluster = ensure_cluster_authority(directory.path(), "c1").unwrap();
        assert_ne!(
            std::fs::read(&wbem.ca_cert).unwrap(),
            std::fs::read(&cluster.cert).unwrap()
        );
        // A client certificate (common name only) names no node.
        let (client, _) =
            crate::issue_client_certificate(&wbem, "n2", &directory.path().join("c")).unwrap();
        assert_eq!(peer_node_name(&first_certificate(&client).unwrap()), None);
    }

    #[test]
    fn node_names_must_be_dns_names() {
        assert_eq!(node_dns_name("Node-1").unwrap(), "node-1");
        assert!(node_dns_name("node 1").is_err());
        assert!(node_dns_name("10.0.0.1").is_err());
        assert!(node_dns_name("").is_err());
    }
}
