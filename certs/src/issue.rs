//! The node's certificate authority and the certificates it issues: created on first start,
//! loaded afterwards, the server certificate renewed when it no longer fits. The authority is
//! never replaced here: a new one would orphan every client certificate the old one issued.
//!
//! Keys are ECDSA P-256, generated fresh for every certificate (a renewal gets a new key).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::{CertificateDer, DnsName};
use time::{Duration, OffsetDateTime};

use crate::files::{self, CERTIFICATE_MODE, KEY_MODE};
use crate::identity::{alternative_names, parse_certificate};
use crate::CertError;

/// How long a new certificate authority is valid.
pub(crate) const AUTHORITY_VALIDITY: Duration = Duration::days(3650);
/// How long a new server or client certificate is valid.
const LEAF_VALIDITY: Duration = Duration::days(365);
/// A server certificate expiring sooner than this is renewed on start.
const RENEWAL_MARGIN: Duration = Duration::days(30);
/// New certificates are dated this far back, so a peer whose clock is a little behind accepts them.
pub(crate) const CLOCK_SKEW_ALLOWANCE: Duration = Duration::hours(1);
/// The organization named in every subject this crate writes.
const ORGANIZATION: &str = "cimguard";
/// The longest client common name (RFC 5280's upper bound for a common name).
const COMMON_NAME_LENGTH_MAX: usize = 64;

/// The names the server certificate must cover: every name clients use to reach this server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerNames {
    /// DNS names (host names), compared without regard to ASCII case.
    pub dns_names: Vec<String>,
    /// IP addresses.
    pub ip_addresses: Vec<IpAddr>,
}

/// Where the TLS material of one server lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsPaths {
    /// The certificate authority's certificate (PEM); the trust anchor to give to clients.
    pub ca_cert: PathBuf,
    /// The certificate authority's private key (PEM, PKCS#8, mode 0600).
    pub ca_key: PathBuf,
    /// The server certificate followed by the authority's certificate (PEM).
    pub server_cert: PathBuf,
    /// The server's private key (PEM, PKCS#8, mode 0600).
    pub server_key: PathBuf,
}

impl TlsPaths {
    /// The standard file names in `directory`: `ca.pem`, `ca-key.pem`, `server.pem` and
    /// `server-key.pem`. Touches no file.
    pub fn in_directory(directory: &Path) -> Self {
        TlsPaths {
            ca_cert: directory.join("ca.pem"),
            ca_key: directory.join("ca-key.pem"),
            server_cert: directory.join("server.pem"),
            server_key: directory.join("server-key.pem"),
        }
    }
}

/// Makes sure `directory` holds a certificate authority and a current server certificate for
/// `names`, creating or renewing what is needed, and returns the paths.
///
/// On first start this creates `directory` and its missing parents (mode 0700), a self-signed
/// authority and a server certificate it signs. Later it reuses them, but issues a new server
/// certificate (new key, same authority) when the existing one is missing or unreadable, is not
/// from this authority, does not match its key, does not cover every requested name, or expires
/// within 30 days. Key files are created with mode 0600; every file is replaced whole, never
/// rewritten in place. An authority's expiry is not checked: it is valid for ten years.
pub fn ensure(directory: &Path, names: &ServerNames) -> Result<TlsPaths, CertError> {
    ensure_at(directory, names, OffsetDateTime::now_utc())
}

/// [`ensure`] with the current time passed in, so renewal can be tested.
pub(crate) fn ensure_at(
    directory: &Path,
    names: &ServerNames,
    now: OffsetDateTime,
) -> Result<TlsPaths, CertError> {
    let alternative_names = server_alternative_names(names)?;
    files::create_private_directory(directory)?;
    let paths = TlsPaths::in_directory(directory);
    let authority = Authority::load_or_create(&paths, || Authority::create(&paths, names, now))?;
    if server_certificate_state(&paths, &authority, names, now)? != ServerCertificateState::Current
    {
        issue_server_certificate(&paths, &authority, alternative_names, now)?;
    }
    Ok(paths)
}

/// Issues a client certificate (extended key usage clientAuth, subject CN = `common_name`) signed
/// by the authority in `paths`, and writes it to `out_directory` as `client-NAME.pem` with its key
/// in `client-NAME-key.pem` (mode 0600). Returns (certificate path, key path). An existing pair
/// of that name is replaced.
///
/// `common_name` becomes part of the file names, so it is limited to 1 to 64 ASCII letters,
/// digits, `.`, `_`, `-` and `@`, not starting with `.`.
pub fn issue_client_certificate(
    paths: &TlsPaths,
    common_name: &str,
    out_directory: &Path,
) -> Result<(PathBuf, PathBuf), CertError> {
    validate_common_name(common_name)?;
    let authority = Authority::load(paths)?;
    files::create_private_directory(out_directory)?;
    let now = OffsetDateTime::now_utc();
    let mut params = leaf_params(now);
    params.distinguished_name = subject(common_name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(CertError::Generate)?;
    let certificate = params
        .signed_by(&key, &authority.issuer)
        .map_err(CertError::Generate)?;
    let certificate_path = out_directory.join(format!("client-{common_name}.pem"));
    let key_path = out_directory.join(format!("client-{common_name}-key.pem"));
    files::write_file(&key_path, key.serialize_pem().as_bytes(), KEY_MODE)?;
    files::write_file(
        &certificate_path,
        certificate.pem().as_bytes(),
        CERTIFICATE_MODE,
    )?;
    Ok((certificate_path, key_path))
}

/// A loaded or new certificate authority, ready to sign.
pub(crate) struct Authority {
    /// The authority's certificate, for chains and for checking signatures.
    pub(crate) certificate: CertificateDer<'static>,
    /// The authority's name, key identifier and key.
    pub(crate) issuer: Issuer<'static, KeyPair>,
}

impl Authority {
    /// Loads the authority when both its files are there, creates it with `create` when
    /// neither is; half an authority is an error and is left alone.
    pub(crate) fn load_or_create(
        paths: &TlsPaths,
        create: impl FnOnce() -> Result<Self, CertError>,
    ) -> Result<Self, CertError> {
        match (
            files::exists(&paths.ca_cert)?,
            files::exists(&paths.ca_key)?,
        ) {
            (true, true) => Authority::load(paths),
            (false, false) => create(),
            (true, false) => Err(CertError::IncompleteAuthority {
                present: paths.ca_cert.clone(),
                missing: paths.ca_key.clone(),
            }),
            (false, true) => Err(CertError::IncompleteAuthority {
                present: paths.ca_key.clone(),
                missing: paths.ca_cert.clone(),
            }),
        }
    }

    /// Loads the authority and checks that its key belongs to its certificate.
    pub(crate) fn load(paths: &TlsPaths) -> Result<Self, CertError> {
        let certificate = first_certificate(&paths.ca_cert)?;
        let key = load_key_pair(&paths.ca_key)?;
        let parsed =
            parse_certificate(&certificate).map_err(|reason| CertError::CertificateFile {
                path: paths.ca_cert.clone(),
                reason,
            })?;
        if key.subject_public_key_info() != parsed.public_key().raw {
            return Err(CertError::KeyMismatch {
                certificate: paths.ca_cert.clone(),
                key: paths.ca_key.clone(),
            });
        }
        let issuer = Issuer::from_ca_cert_der(&certificate, key).map_err(|error| {
            CertError::CertificateFile {
                path: paths.ca_cert.clone(),
                reason: error.to_string(),
            }
        })?;
        Ok(Authority {
            certificate,
            issuer,
        })
    }

    /// Generates a new authority and writes it, key first.
    fn create(
        paths: &TlsPaths,
        names: &ServerNames,
        now: OffsetDateTime,
    ) -> Result<Self, CertError> {
        let common_name = match names.dns_names.first() {
            Some(host) => format!("cimguard CA for {host}"),
            None => "cimguard CA".to_owned(),
        };
        Authority::create_named(paths, &common_name, now)
    }

    /// Generates a new authority named `common_name` and writes it, key first.
    pub(crate) fn create_named(
        paths: &TlsPaths,
        common_name: &str,
        now: OffsetDateTime,
    ) -> Result<Self, CertError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = subject(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now.saturating_sub(CLOCK_SKEW_ALLOWANCE);
        params.not_after = now.saturating_add(AUTHORITY_VALIDITY);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(CertError::Generate)?;
        let certificate = params.self_signed(&key).map_err(CertError::Generate)?;
        files::write_file(&paths.ca_key, key.serialize_pem().as_bytes(), KEY_MODE)?;
        files::write_file(
            &paths.ca_cert,
            certificate.pem().as_bytes(),
            CERTIFICATE_MODE,
        )?;
        Ok(Authority {
            certificate: certificate.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }
}

/// Whether the server certificate on disk can be kept, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerCertificateState {
    /// Fits: keep it.
    Current,
    /// The certificate or its key is not there.
    Missing,
    /// Unparseable, not signed by the authority, or not matching its key.
    Unusable,
    /// Does not cover every requested name.
    NamesNotCovered,
    /// Not yet valid, or expiring within the renewal margin.
    OutOfDate,
}

/// Judges the server certificate on disk. Only an IO failure other than "not found" is an error:
/// anything wrong with the content means a new certificate.
fn server_certificate_state(
    paths: &TlsPaths,
    authority: &Authority,
    names: &ServerNames,
    now: OffsetDateTime,
) -> Result<ServerCertificateState, CertError> {
    if !files::exists(&paths.server_cert)? || !files::exists(&paths.server_key)? {
        return Ok(ServerCertificateState::Missing);
    }
    let leaf = match first_certificate(&paths.server_cert) {
        Ok(leaf) => leaf,
        Err(error @ CertError::Io { .. }) => return Err(error),
        Err(_) => return Ok(ServerCertificateState::Unusable),
    };
    let key = match load_key_pair(&paths.server_key) {
        Ok(key) => key,
        Err(error @ CertError::Io { .. }) => return Err(error),
        Err(_) => return Ok(ServerCertificateState::Unusable),
    };
    let (Ok(leaf), Ok(authority_certificate)) = (
        parse_certificate(&leaf),
        parse_certificate(&authority.certificate),
    ) else {
        return Ok(ServerCertificateState::Unusable);
    };
    let signed_by_authority = leaf
        .verify_signature(Some(authority_certificate.public_key()))
        .is_ok();
    if !signed_by_authority || key.subject_public_key_info() != leaf.public_key().raw {
        return Ok(ServerCertificateState::Unusable);
    }
    let validity = leaf.validity();
    let not_before = validity.not_before.to_datetime();
    let not_after = validity.not_after.to_datetime();
    if not_before > now || not_after - now < RENEWAL_MARGIN {
        return Ok(ServerCertificateState::OutOfDate);
    }
    let Ok(present) = alternative_names(&leaf) else {
        return Ok(ServerCertificateState::Unusable);
    };
    let dns_covered = names.dns_names.iter().all(|wanted| {
        present
            .dns_names
            .iter()
            .any(|name| name.eq_ignore_ascii_case(wanted))
    });
    let ip_covered = names
        .ip_addresses
        .iter()
        .all(|wanted| present.ip_addresses.contains(wanted));
    if !(dns_covered && ip_covered) {
        return Ok(ServerCertificateState::NamesNotCovered);
    }
    Ok(ServerCertificateState::Current)
}

/// Issues a server certificate with a new key and writes it with the authority as its chain.
fn issue_server_certificate(
    paths: &TlsPaths,
    authority: &Authority,
    alternative_names: Vec<SanType>,
    now: OffsetDateTime,
) -> Result<(), CertError> {
    let mut params = leaf_params(now);
    let common_name = match alternative_names.first() {
        Some(SanType::DnsName(name)) => name.as_str().to_owned(),
        Some(SanType::IpAddress(address)) => address.to_string(),
        _ => "cimguard server".to_owned(),
    };
    params.distinguished_name = subject(&common_name);
    params.subject_alt_names = alternative_names;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(CertError::Generate)?;
    let certificate = params
        .signed_by(&key, &authority.issuer)
        .map_err(CertError::Generate)?;
    let mut chain = certificate.pem();
    chain.push_str(&pem::encode(&pem::Pem::new(
        "CERTIFICATE",
        authority.certificate.to_vec(),
    )));
    // Key first: a reader that sees the old certificate with the new key fails and keeps what
    // it had, and the next start notices the mismatch and issues again.
    files::write_file(&paths.server_key, key.serialize_pem().as_bytes(), KEY_MODE)?;
    files::write_file(&paths.server_cert, chain.as_bytes(), CERTIFICATE_MODE)
}

/// The parameters common to server and client certificates.
pub(crate) fn leaf_params(now: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now.saturating_sub(CLOCK_SKEW_ALLOWANCE);
    params.not_after = now.saturating_add(LEAF_VALIDITY);
    params
}

/// `O=cimguard, CN=common_name`.
pub(crate) fn subject(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, ORGANIZATION);
    name.push(DnType::CommonName, common_name);
    name
}

/// Checks the requested names and turns them into subject alternative names, DNS names first.
fn server_alternative_names(names: &ServerNames) -> Result<Vec<SanType>, CertError> {
    if names.dns_names.is_empty() && names.ip_addresses.is_empty() {
        return Err(CertError::NoServerNames);
    }
    let mut alternative_names =
        Vec::with_capacity(names.dns_names.len() + names.ip_addresses.len());
    for name in &names.dns_names {
        let invalid = || CertError::InvalidDnsName(name.clone());
        // An IP address written as a DNS name would never match a client's IP check.
        if name.parse::<IpAddr>().is_ok() || DnsName::try_from(name.as_str()).is_err() {
            return Err(invalid());
        }
        let ia5 = name.as_str().try_into().map_err(|_| invalid())?;
        alternative_names.push(SanType::DnsName(ia5));
    }
    alternative_names.extend(names.ip_addresses.iter().copied().map(SanType::IpAddress));
    Ok(alternative_names)
}

/// Refuses common names unfit to be a user name and a file name.
fn validate_common_name(common_name: &str) -> Result<(), CertError> {
    let allowed = |character: char| character.is_ascii_alphanumeric() || "._-@".contains(character);
    let fits = !common_name.is_empty()
        && common_name.len() <= COMMON_NAME_LENGTH_MAX
        && !common_name.starts_with('.')
        && common_name.chars().all(allowed);
    if fits {
        Ok(())
    } else {
        Err(CertError::InvalidCommonName(common_name.to_owned()))
    }
}

/// The first certificate of a PEM file.
pub(crate) fn first_certificate(path: &Path) -> Result<CertificateDer<'static>, CertError> {
    let certificates = files::read_certificates(path)?;
    certificates
        .into_iter()
        .next()
        .ok_or_else(|| CertError::NoCertificate {
            path: path.to_owned(),
        })
}

/// A private key file as a key rcgen can sign with.
fn load_key_pair(path: &Path) -> Result<KeyPair, CertError> {
    let key = files::read_private_key(path)?;
    KeyPair::try_from(&key).map_err(|source| CertError::PrivateKey {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn names(dns_names: &[&str]) -> ServerNames {
        ServerNames {
            dns_names: dns_names.iter().map(|name| (*name).to_owned()).collect(),
            ip_addresses: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        }
    }

    fn state(directory: &Path, names: &ServerNames, now: OffsetDateTime) -> ServerCertificateState {
        let paths = TlsPaths::in_directory(directory);
        let authority = Authority::load(&paths).unwrap();
        server_certificate_state(&paths, &authority, names, now).unwrap()
    }

    #[test]
    fn a_fresh_certificate_is_current_until_the_renewal_margin() {
        let directory = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let wanted = names(&["node1.example"]);
        ensure_at(directory.path(), &wanted, now).unwrap();
        assert_eq!(
            state(directory.path(), &wanted, now),
            ServerCertificateState::Current
        );
        let late = now + LEAF_VALIDITY - RENEWAL_MARGIN + Duration::days(1);
        assert_eq!(
            state(directory.path(), &wanted, late),
            ServerCertificateState::OutOfDate
        );
        let early = now - Duration::days(1);
        assert_eq!(
            state(directory.path(), &wanted, early),
            ServerCertificateState::OutOfDate
        );
    }

    #[test]
    fn a_certificate_near_expiry_is_reissued_from_the_same_authority() {
        let directory = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let wanted = names(&["node1.example"]);
        let paths = ensure_at(directory.path(), &wanted, now).unwrap();
        let authority_before = std::fs::read(&paths.ca_cert).unwrap();
        let server_before = std::fs::read(&paths.server_cert).unwrap();
        let late = now + LEAF_VALIDITY - Duration::days(10);
        ensure_at(directory.path(), &wanted, late).unwrap();
        assert_eq!(std::fs::read(&paths.ca_cert).unwrap(), authority_before);
        assert_ne!(std::fs::read(&paths.server_cert).unwrap(), server_before);
        assert_eq!(
            state(directory.path(), &wanted, late),
            ServerCertificateState::Current
        );
    }

    #[test]
    fn names_are_compared_without_case_and_a_missing_one_is_noticed() {
        let directory = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        ensure_at(directory.path(), &names(&["Node1.Example"]), now).unwrap();
        let same = names(&["node1.example"]);
        assert_eq!(
            state(directory.path(), &same, now),
            ServerCertificateState::Current
        );
        let more = names(&["node1.example", "cluster.example"]);
        assert_eq!(
            state(directory.path(), &more, now),
            ServerCertificateState::NamesNotCovered
        );
        let mut other_ip = names(&[]);
        other_ip.ip_addresses = vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))];
        assert_eq!(
            state(directory.path(), &other_ip, now),
            ServerCertificateState::NamesNotCovered
        );
    }

    #[test]
    fn a_mismatched_or_broken_server_key_makes_the_certificate_unusable() {
        let directory = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let wanted = names(&["node1.example"]);
        let paths = ensure_at(directory.path(), &wanted, now).unwrap();
        std::fs::copy(&paths.ca_key, &paths.server_key).unwrap();
        assert_eq!(
            state(directory.path(), &wanted, now),
            ServerCertificateState::Unusable
        );
        std::fs::write(&paths.server_key, "garbage").unwrap();
        assert_eq!(
            state(directory.path(), &wanted, now),
            ServerCertificateState::Unusable
        );
        std::fs::remove_file(&paths.server_key).unwrap();
        assert_eq!(
            state(directory.path(), &wanted, now),
            ServerCertificateState::Missing
        );
        ensure_at(directory.path(), &wanted, now).unwrap();
        assert_eq!(
            state(directory.path(), &wanted, now),
            ServerCertificateState::Current
        );
    }

    #[test]
    fn bad_requests_are_refused_before_anything_is_written() {
        let directory = tempfile::tempdir().unwrap();
        let target = directory.path().join("tls");
        let now = OffsetDateTime::now_utc();
        let empty = ServerNames::default();
        assert!(matches!(
            ensure_at(&target, &empty, now),
            Err(CertError::NoServerNames)
        ));
        for bad in ["bad name", "", "127.0.0.1", "exa mple.test", "näme.example"] {
            let result = ensure_at(&target, &names(&[bad]), now);
            assert!(
                matches!(result, Err(CertError::InvalidDnsName(_))),
                "{bad:?}: {result:?}"
            );
        }
        assert!(!target.exists());
    }

    #[test]
    fn common_names_must_be_fit_for_a_file_name() {
        for good in ["operator", "a", "ops@example.test", "node-1_x.y"] {
            assert!(validate_common_name(good).is_ok(), "{good}");
        }
        let too_long = "a".repeat(COMMON_NAME_LENGTH_MAX + 1);
        for bad in [
            "",
            ".hidden",
            "../etc",
            "a/b",
            "a b",
            "é",
            too_long.as_str(),
        ] {
            assert!(
                matches!(
                    validate_common_name(bad),
                    Err(CertError::InvalidCommonName(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn half_an_authority_is_an_error_and_is_left_alone() {
        let directory = tempfile::tempdir().unwrap();
        let paths = ensure_at(
            directory.path(),
            &names(&["node1.example"]),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        std::fs::remove_file(&paths.ca_key).unwrap();
        let before = std::fs::read(&paths.ca_cert).unwrap();
        let result = ensure(directory.path(), &names(&["node1.example"]));
        assert!(
            matches!(result, Err(CertError::IncompleteAuthority { .. })),
            "{result:?}"
        );
        assert_eq!(std::fs::read(&paths.ca_cert).unwrap(), before);
    }
}
