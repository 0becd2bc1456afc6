//! What a certificate says about its holder: the subject's common name and the subject
//! alternative names. This module reads; it does not verify. Call [`client_identity`] only on a
//! certificate that rustls has already verified against the client trust store.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rustls::pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::CertError;

/// The identity a (verified) client certificate claims. The WBEM server maps `common_name` to a
/// user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The subject's common name (CN), if the subject has one.
    pub common_name: Option<String>,
    /// DNS names among the subject alternative names, in certificate order.
    pub dns_names: Vec<String>,
    /// IP addresses among the subject alternative names, in certificate order.
    pub ip_addresses: Vec<IpAddr>,
    /// E-mail addresses (RFC 822 names) among the subject alternative names.
    pub email_addresses: Vec<String>,
    /// The whole subject distinguished name, RFC 4514 style, for logs.
    pub subject: String,
    /// The issuer distinguished name, RFC 4514 style, for logs.
    pub issuer: String,
}

/// The subject alternative names of a certificate that this crate cares about.
#[derive(Debug, Default)]
pub(crate) struct AlternativeNames {
    pub(crate) dns_names: Vec<String>,
    pub(crate) ip_addresses: Vec<IpAddr>,
    pub(crate) email_addresses: Vec<String>,
}

/// Reads the identity out of a DER certificate, typically
/// `connection.peer_certificates()[0]` after a handshake that verified it.
///
/// A subject with two common names is an error rather than a choice between them, since each
/// could name a different user.
pub fn client_identity(end_entity: &CertificateDer<'_>) -> Result<ClientIdentity, CertError> {
    let certificate =
        parse_certificate(end_entity).map_err(|reason| CertError::Certificate { reason })?;
    let mut common_names = certificate.subject().iter_common_name();
    let common_name = match common_names.next() {
        None => None,
        Some(attribute) => {
            let name = attribute.as_str().map_err(|error| CertError::Certificate {
                reason: format!("common name is not a string: {error}"),
            })?;
            Some(name.to_owned())
        }
    };
    if common_names.next().is_some() {
        return Err(CertError::AmbiguousCommonName);
    }
    let names =
        alternative_names(&certificate).map_err(|reason| CertError::Certificate { reason })?;
    Ok(ClientIdentity {
        common_name,
        dns_names: names.dns_names,
        ip_addresses: names.ip_addresses,
        email_addresses: names.email_addresses,
        subject: certificate.subject().to_string(),
        issuer: certificate.issuer().to_string(),
    })
}

/// Parses one DER certificate, refusing trailing bytes.
pub(crate) fn parse_certificate<'a>(der: &'a [u8]) -> Result<X509Certificate<'a>, String> {
    let (rest, certificate) = X509Certificate::from_der(der).map_err(|error| error.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} bytes after the certificate", rest.len()));
    }
    Ok(certificate)
}

/// The DNS, IP and e-mail subject alternative names; other kinds are ignored.
pub(crate) fn alternative_names(
    certificate: &X509Certificate<'_>,
) -> Result<AlternativeNames, String> {
    let mut names = AlternativeNames::default();
    let extension = certificate
        .subject_alternative_name()
        .map_err(|error| format!("subject alternative names: {error}"))?;
    let Some(extension) = extension else {
        return Ok(names);
    };
    for name in &extension.value.general_names {
        match name {
            GeneralName::DNSName(dns_name) => names.dns_names.push((*dns_name).to_owned()),
            GeneralName::RFC822Name(email) => names.email_addresses.push((*email).to_owned()),
            GeneralName::IPAddress(bytes) => names.ip_addresses.push(ip_address(bytes)?),
            _ => {}
        }
    }
    Ok(names)
}

/// An IP address SAN is 4 (IPv4) or 16 (IPv6) bytes; anything else is malformed.
fn ip_address(bytes: &[u8]) -> Result<IpAddr, String> {
    if let Ok(octets) = <[u8; 4]>::try_from(bytes) {
        return Ok(IpAddr::V4(Ipv4Addr::from(octets)));
    }
    if let Ok(octets) = <[u8; 16]>::try_from(bytes) {
        return Ok(IpAddr::V6(Ipv6Addr::from(octets)));
    }
    Err(format!(
        "an ip address of {} bytes in the subject alternative names",
        bytes.len()
    ))
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    use super::*;

    fn self_signed(params: &CertificateParams) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn reads_common_name_and_alternative_names() {
        let mut params =
            CertificateParams::new(vec!["node1.example".to_owned(), "::1".to_owned()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "cimguard");
        params
            .distinguished_name
            .push(DnType::CommonName, "operator");
        params
            .subject_alt_names
            .push(SanType::Rfc822Name("ops@example.test".try_into().unwrap()));
        let identity = client_identity(&self_signed(&params)).unwrap();
        assert_eq!(identity.common_name.as_deref(), Some("operator"));
        assert_eq!(identity.dns_names, vec!["node1.example".to_owned()]);
        assert_eq!(identity.ip_addresses, vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]);
        assert_eq!(
            identity.email_addresses,
            vec!["ops@example.test".to_owned()]
        );
        assert!(
            identity.subject.contains("CN=operator"),
            "{}",
            identity.subject
        );
        assert_eq!(identity.subject, identity.issuer);
    }

    #[test]
    fn a_subject_without_common_name_has_none() {
        let mut params = CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "cimguard");
        let identity = client_identity(&self_signed(&params)).unwrap();
        assert_eq!(identity.common_name, None);
    }

    #[test]
    fn garbage_and_trailing_bytes_are_errors_not_panics() {
        for bytes in [&b""[..], b"\x30\x03\x02\x01\x01", b"not a certificate"] {
            let result = client_identity(&CertificateDer::from(bytes.to_vec()));
            assert!(
                matches!(result, Err(CertError::Certificate { .. })),
                "{result:?}"
            );
        }
        let params = CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
        let mut bytes = self_signed(&params).to_vec();
        bytes.push(0);
        let result = client_identity(&CertificateDer::from(bytes));
        assert!(
            matches!(result, Err(CertError::Certificate { .. })),
            "{result:?}"
        );
    }
}
