//! The TLS client configuration with which indications are pushed to listeners: the
//! listener's certificate and host name are verified against the system's authorities and
//! any configured ones, unless a `danger_` setting turns verification off.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::forward_secret_provider;
use crate::files;
use crate::CertError;

/// What a TLS client trusts and shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientTlsSettings {
    /// Trust the system's authorities (`/etc/ssl/certs`, or `SSL_CERT_FILE` /
    /// `SSL_CERT_DIR`).
    pub system_roots: bool,
    /// PEM files of further authorities to trust.
    pub trusted_ca: Vec<PathBuf>,
    /// A certificate chain and key (PEM) to show servers that ask for one.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// Accept any certificate for any name: the connection is encrypted but the peer is
    /// not known. Only for tests and for listeners that cannot have a proper certificate.
    pub danger_accept_invalid_certificates: bool,
}

/// Builds the client configuration: TLS 1.2 and 1.3, forward-secret suites only, ALPN
/// `http/1.1`. With no authority at all (no system roots found, none configured), every
/// handshake fails verification, which is the safe outcome.
pub fn client_config(settings: &ClientTlsSettings) -> Result<Arc<ClientConfig>, CertError> {
    let provider = Arc::new(forward_secret_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(CertError::Tls)?;
    let builder = if settings.danger_accept_invalid_certificates {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        if settings.system_roots {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::debug!(%error, "a system trust store could not be read");
            }
            // System bundles carry the odd certificate rustls cannot parse; skip those.
            roots.add_parsable_certificates(found.certs);
        }
        for path in &settings.trusted_ca {
            files::add_trust_anchors(&mut roots, path)?;
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match &settings.identity {
        None => builder.with_no_client_auth(),
        Some((certificate, key)) => builder
            .with_client_auth_cert(
                files::read_certificates(certificate)?,
                files::read_private_key(key)?,
            )
            .map_err(CertError::Tls)?,
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The verifier of `danger_accept_invalid_certificates`: any certificate, any name. The
/// handshake's signatures are still checked, so the session is at least bound to the key
/// the peer showed.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
