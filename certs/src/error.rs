//! The one error type of this crate. It says which file was involved wherever a file was, so an
//! operator can act on the message; it does not decide what the server does about the failure.

use std::path::PathBuf;

/// Why TLS material could not be created, loaded or turned into a configuration.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// Reading, writing, or creating a file or directory failed.
    #[error("i/o error on {}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What the operating system reported.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid PEM.
    #[error("{} is not valid pem", path.display())]
    Pem {
        /// The file that failed to parse.
        path: PathBuf,
        /// What the PEM reader reported.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// A file that should hold a certificate holds none.
    #[error("no certificate in {}", path.display())]
    NoCertificate {
        /// The file without a certificate.
        path: PathBuf,
    },
    /// A file that should hold a private key holds none.
    #[error("no private key in {}", path.display())]
    NoPrivateKey {
        /// The file without a private key.
        path: PathBuf,
    },
    /// A private key in a file is not one this crate can sign with (ECDSA P-256, P-384 or
    /// Ed25519 in PKCS#8).
    #[error("unusable private key in {}", path.display())]
    PrivateKey {
        /// The key file.
        path: PathBuf,
        /// What the key loader reported.
        #[source]
        source: rcgen::Error,
    },
    /// A certificate in a file is not a well-formed X.509 certificate.
    #[error("invalid certificate in {}: {reason}", path.display())]
    CertificateFile {
        /// The file holding the certificate.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate received from a peer is not a well-formed X.509 certificate.
    #[error("invalid certificate: {reason}")]
    Certificate {
        /// What is wrong with it.
        reason: String,
    },
    /// A private key does not belong to the certificate it is paired with.
    #[error(
        "the key in {} does not belong to the certificate in {}",
        key.display(),
        certificate.display()
    )]
    KeyMismatch {
        /// The certificate file.
        certificate: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// One half of the certificate authority exists and the other does not. Nothing is generated
    /// over it, since a new authority would orphan every certificate the old one issued; the
    /// operator restores the missing file or removes the other to start afresh.
    #[error("{} exists but {} does not", present.display(), missing.display())]
    IncompleteAuthority {
        /// The half that exists.
        present: PathBuf,
        /// The half that is missing.
        missing: PathBuf,
    },
    /// The server certificate would carry no name at all, so no client could verify it.
    #[error("no dns name or ip address to put in the server certificate")]
    NoServerNames,
    /// A requested DNS name is not a valid DNS name.
    #[error("invalid dns name {0:?}")]
    InvalidDnsName(String),
    /// A client common name is empty, too long, or has characters unfit for a user or file name.
    #[error(
        "invalid common name {0:?}: use 1 to 64 of a-z A-Z 0-9 . _ - @, not starting with '.'"
    )]
    InvalidCommonName(String),
    /// A certificate's subject has more than one common name, so it names no single user.
    #[error("the certificate subject has more than one common name")]
    AmbiguousCommonName,
    /// Certificate generation or signing failed.
    #[error("cannot generate a certificate")]
    Generate(#[source] rcgen::Error),
    /// A trust anchor file holds a certificate that cannot serve as a trust anchor.
    #[error("unusable trust anchor in {}", path.display())]
    TrustAnchor {
        /// The trust store file.
        path: PathBuf,
        /// What rustls reported.
        #[source]
        source: rustls::Error,
    },
    /// The client certificate verifier could not be built from the trust store.
    #[error("cannot build the client certificate verifier")]
    ClientVerifier(#[source] rustls::server::VerifierBuilderError),
    /// rustls refused the configuration (for example, the key does not suit the certificate).
    #[error("cannot build the tls configuration")]
    Tls(#[source] rustls::Error),
}

impl CertError {
    /// Wraps an IO error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| CertError::Io { path, source }
    }
}
