//! Integration tests of cimguard-certs: the files `ensure` leaves on disk, client certificates,
//! reloading, and real TLS handshakes over loopback TCP between a rustls server configured by
//! this crate and an independent rustls client.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use cimguard_certs::{
    client_identity, ensure, issue_client_certificate, server_config, CertError,
    ReloadableServerConfig, ServerNames, TlsPaths, TlsSettings,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, ProtocolVersion, RootCertStore, ServerConfig, ServerConnection,
    Stream, SupportedCipherSuite, SupportedProtocolVersion,
};

/// A backstop so that a broken handshake fails the test instead of hanging it.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(20);
const VERSIONS: [&SupportedProtocolVersion; 2] = [&rustls::version::TLS12, &rustls::version::TLS13];

fn loopback_names(dns_names: &[&str]) -> ServerNames {
    ServerNames {
        dns_names: dns_names.iter().map(|name| (*name).to_owned()).collect(),
        ip_addresses: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn certificates(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A client trusting only `ca` and speaking only `version`, with an optional client certificate.
fn client_config(
    ca: &Path,
    version: &'static SupportedProtocolVersion,
    client_certificate: Option<(&Path, &Path)>,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates(ca) {
        roots.add(certificate).unwrap();
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots);
    let mut config = match client_certificate {
        None => builder.with_no_client_auth(),
        Some((certificate, key)) => builder
            .with_client_auth_cert(
                certificates(certificate),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// What the server side saw of a completed exchange.
#[derive(Debug)]
struct ServerOutcome {
    protocol: Option<ProtocolVersion>,
    cipher_suite: Option<SupportedCipherSuite>,
    alpn: Option<Vec<u8>>,
    peer_certificates: Option<Vec<CertificateDer<'static>>>,
}

/// Runs one TLS connection over loopback: the client sends "ping", the server answers "pong".
/// Returns what each side ended with.
fn exchange(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    server_name: &str,
) -> (io::Result<ServerOutcome>, io::Result<()>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let address = listener.local_addr().unwrap();
    let server_thread = thread::spawn(move || -> io::Result<ServerOutcome> {
        let (mut socket, _) = listener.accept()?;
        socket.set_read_timeout(Some(SOCKET_TIMEOUT))?;
        socket.set_write_timeout(Some(SOCKET_TIMEOUT))?;
        let mut connection = ServerConnection::new(server).map_err(io::Error::other)?;
        let mut stream = Stream::new(&mut connection, &mut socket);
        let mut request = [0_u8; 5];
        stream.read_exact(&mut request)?;
        if &request != b"ping\n" {
            return Err(io::Error::other("unexpected request"));
        }
        stream.write_all(b"pong\n")?;
        stream.flush()?;
        Ok(ServerOutcome {
            protocol: connection.protocol_version(),
            cipher_suite: connection.negotiated_cipher_suite(),
            alpn: connection.alpn_protocol().map(<[u8]>::to_vec),
            peer_certificates: connection.peer_certificates().map(|chain| chain.to_vec()),
        })
    });
    let server_name = ServerName::try_from(server_name.to_owned()).unwrap();
    let client_result = (|| -> io::Result<()> {
        let mut socket = TcpStream::connect(address)?;
        socket.set_read_timeout(Some(SOCKET_TIMEOUT))?;
        socket.set_write_timeout(Some(SOCKET_TIMEOUT))?;
        let mut connection =
            ClientConnection::new(client, server_name).map_err(io::Error::other)?;
        let mut stream = Stream::new(&mut connection, &mut socket);
        stream.write_all(b"ping\n")?;
        let mut response = [0_u8; 5];
        stream.read_exact(&mut response)?;
        if &response != b"pong\n" {
            return Err(io::Error::other("unexpected response"));
        }
        Ok(())
    })();
    let server_result = server_thread.join().unwrap();
    (server_result, client_result)
}

/// The rustls error inside an IO error from `rustls::Stream`, if there is one.
fn rustls_error(error: &io::Error) -> Option<&rustls::Error> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

#[test]
fn first_start_creates_the_files_with_private_modes() {
    let root = tempfile::tempdir().unwrap();
    let directory = root.path().join("etc").join("tls");
    let paths = ensure(&directory, &loopback_names(&["node1.example"])).unwrap();
    assert_eq!(paths, TlsPaths::in_directory(&directory));
    assert_eq!(mode(&directory), 0o700);
    assert_eq!(mode(&paths.ca_key), 0o600);
    assert_eq!(mode(&paths.server_key), 0o600);
    let authority = certificates(&paths.ca_cert);
    assert_eq!(authority.len(), 1);
    let chain = certificates(&paths.server_cert);
    assert_eq!(
        chain.len(),
        2,
        "server.pem holds the leaf, then the authority"
    );
    assert_eq!(chain[1], authority[0]);
    let leaf = client_identity(&chain[0]).unwrap();
    assert_eq!(leaf.dns_names, vec!["node1.example".to_owned()]);
    assert_eq!(leaf.ip_addresses, vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    assert_eq!(leaf.issuer, client_identity(&authority[0]).unwrap().subject);
    // Only the four files: no temporary file is left behind.
    let mut entries: Vec<_> = std::fs::read_dir(&directory)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        ["ca-key.pem", "ca.pem", "server-key.pem", "server.pem"]
    );
}

#[test]
fn a_second_start_reuses_the_files() {
    let directory = tempfile::tempdir().unwrap();
    let names = loopback_names(&["node1.example"]);
    let paths = ensure(directory.path(), &names).unwrap();
    let before: Vec<Vec<u8>> = [
        &paths.ca_cert,
        &paths.ca_key,
        &paths.server_cert,
        &paths.server_key,
    ]
    .iter()
    .map(|path| std::fs::read(path).unwrap())
    .collect();
    let again = ensure(directory.path(), &names).unwrap();
    let after: Vec<Vec<u8>> = [
        &again.ca_cert,
        &again.ca_key,
        &again.server_cert,
        &again.server_key,
    ]
    .iter()
    .map(|path| std::fs::read(path).unwrap())
    .collect();
    assert_eq!(before, after);
}

#[test]
fn a_new_name_reissues_the_server_certificate_from_the_same_authority() {
    let directory = tempfile::tempdir().unwrap();
    let paths = ensure(directory.path(), &loopback_names(&["node1.example"])).unwrap();
    let authority_before = std::fs::read(&paths.ca_cert).unwrap();
    let server_before = std::fs::read(&paths.server_cert).unwrap();
    let key_before = std::fs::read(&paths.server_key).unwrap();
    ensure(
        directory.path(),
        &loopback_names(&["node1.example", "cluster.example"]),
    )
    .unwrap();
    assert_eq!(std::fs::read(&paths.ca_cert).unwrap(), authority_before);
    assert_ne!(std::fs::read(&paths.server_cert).unwrap(), server_before);
    assert_ne!(std::fs::read(&paths.server_key).unwrap(), key_before);
    assert_eq!(mode(&paths.server_key), 0o600);
    let chain = certificates(&paths.server_cert);
    let leaf = client_identity(&chain[0]).unwrap();
    assert_eq!(
        leaf.dns_names,
        vec!["node1.example".to_owned(), "cluster.example".to_owned()]
    );
    assert_eq!(chain[1], certificates(&paths.ca_cert)[0]);
    // A name already covered does not reissue.
    let server_now = std::fs::read(&paths.server_cert).unwrap();
    ensure(directory.path(), &loopback_names(&["cluster.example"])).unwrap();
    assert_eq!(std::fs::read(&paths.server_cert).unwrap(), server_now);
}

#[test]
fn tls_1_2_and_1_3_handshakes_verify_the_ip_address() {
    let directory = tempfile::tempdir().unwrap();
    let paths = ensure(directory.path(), &loopback_names(&["node1.example"])).unwrap();
    let server = server_config(&TlsSettings {
        paths: paths.clone(),
        client_ca: None,
    })
    .unwrap();
    for (version, expected) in VERSIONS
        .into_iter()
        .zip([ProtocolVersion::TLSv1_2, ProtocolVersion::TLSv1_3])
    {
        let client = client_config(&paths.ca_cert, version, None);
        let (server_result, client_result) = exchange(server.clone(), client, "127.0.0.1");
        client_result.unwrap();
        let outcome = server_result.unwrap();
        assert_eq!(outcome.protocol, Some(expected));
        assert_eq!(outcome.alpn.as_deref(), Some(&b"http/1.1"[..]));
        assert_eq!(outcome.peer_certificates, None);
        if let Some(SupportedCipherSuite::Tls12(suite)) = outcome.cipher_suite {
            assert_eq!(suite.kx, rustls::crypto::KeyExchangeAlgorithm::ECDHE);
        }
    }
}

#[test]
fn a_client_that_does_not_trust_the_authority_refuses_the_server() {
    let directory = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let paths = ensure(directory.path(), &loopback_names(&["node1.example"])).unwrap();
    let other_paths = ensure(other.path(), &loopback_names(&["node1.example"])).unwrap();
    let server = server_config(&TlsSettings {
        paths,
        client_ca: None,
    })
    .unwrap();
    let client = client_config(&other_paths.ca_cert, &rustls::version::TLS13, None);
    let (server_result, client_result) = exchange(server, client, "127.0.0.1");
    let error = client_result.unwrap_err();
    assert!(
        matches!(
            rustls_error(&error),
            Some(rustls::Error::InvalidCertificate(_))
        ),
        "{error:?}"
    );
    assert!(server_result.is_err());
}

#[test]
fn a_client_certificate_identifies_the_user() {
    let directory = tempfile::tempdir().unwrap();
    let paths = ensure(directory.path(), &loopback_names(&["node1.example"])).unwrap();
    let clients = directory.path().join("clients");
    let (certificate, key) = issue_client_certificate(&paths, "operator", &clients).unwrap();
    assert_eq!(certificate, clients.join("client-operator.pem"));
    assert_eq!(key, clients.join("client-operator-key.pem"));
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&clients), 0o700);
    let settings = TlsSettings {
        paths: paths.clone(),
        client_ca: Some(paths.ca_cert.clone()),
    };
    let server = server_config(&settings).unwrap();
    for version in VERSIONS {
        let client = client_config(&paths.ca_cert, version, Some((&certificate, &key)));
        let (server_result, client_result) = exchange(server.clone(), client, "node1.example");
        client_result.unwrap();
        let peer = server_result
            .unwrap()
            .peer_certificates
            .expect("the server saw the client certificate");
        let identity = client_identity(&peer[0]).unwrap();
        assert_eq!(identity.common_name.as_deref(), Some("operator"));

        // Without a certificate the connection is still accepted (HTTP Basic comes later).
        let anonymous = client_config(&paths.ca_cert, version, None);
        let (server_result, client_result) = exchange(server.clone(), anonymous, "127.0.0.1");
        client_result.unwrap();
        assert_eq!(server_result.unwrap().peer_certificates, None);
    }
}

#[test]
fn a_client_certificate_from_another_authority_is_rejected() {
    let directory = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let paths = ensure(directory.path(), &loopback_names(&["node1.example"])).unwrap();
    let other_paths = ensure(other.path(), &loopback_names(&["node1.example"])).unwrap();
    let (certificate, key) =
        issue_client_certificate(&other_paths, "intruder", other.path()).unwrap();
    let settings = TlsSettings {
        paths: paths.clone(),
        client_ca: Some(paths.ca_cert.clone()),
    };
    let server = server_config(&settings).unwrap();
    for version in VERSIONS {
        let client = client_config(&paths.ca_cert, version, Some((&certificate, &key)));
        let (server_result, client_result) = exchange(server.clone(), client, "127.0.0.1");
        let error = server_result.unwrap_err();
        assert!(
            matches!(
                rustls_error(&error),
                Some(rustls::Error::InvalidCertificate(_))
            ),
            "{error:?}"
        );
        assert!(
            client_result.is_err(),
            "the client must not complete the exchange"
        );
    }
}

#[test]
fn reload_picks_up_a_new_certificate_and_keeps_the_old_one_on_error() {
    let directory = tempfile::tempdir().unwrap();
    let paths = ensure(directory.path(), &loopback_names(&["node1.example"])).unwrap();
    let reloadable = ReloadableServerConfig::new(TlsSettings {
        paths: paths.clone(),
        client_ca: None,
    })
    .unwrap();
    let first = reloadable.current();
    let client = client_config(&paths.ca_cert, &rustls::version::TLS13, None);
    let (server_result, client_result) =
        exchange(reloadable.current(), client.clone(), "new.example");
    assert!(
        client_result.is_err() && server_result.is_err(),
        "the first certificate lacks new.example"
    );

    ensure(
        directory.path(),
        &loopback_names(&["node1.example", "new.example"]),
    )
    .unwrap();
    reloadable.reload().unwrap();
    let second = reloadable.current();
    assert!(!Arc::ptr_eq(&first, &second));
    let (server_result, client_result) =
        exchange(reloadable.current(), client.clone(), "new.example");
    client_result.unwrap();
    server_result.unwrap();

    std::fs::write(&paths.server_cert, "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
    assert!(reloadable.reload().is_err());
    assert!(Arc::ptr_eq(&reloadable.current(), &second));
    let (server_result, client_result) = exchange(reloadable.current(), client, "new.example");
    client_result.unwrap();
    server_result.unwrap();

    // A server certificate that does not match the key is refused too.
    std::fs::copy(&paths.ca_cert, &paths.server_cert).unwrap();
    assert!(matches!(reloadable.reload(), Err(CertError::Tls(_))));
    assert!(Arc::ptr_eq(&reloadable.current(), &second));
}

#[test]
fn client_certificates_need_a_sound_name_and_a_whole_authority() {
    let directory = tempfile::tempdir().unwrap();
    let paths = ensure(directory.path(), &loopback_names(&["node1.example"])).unwrap();
    let out = directory.path().join("clients");
    for bad in ["../escape", "a/b", "", ".hidden"] {
        let result = issue_client_certificate(&paths, bad, &out);
        assert!(
            matches!(result, Err(CertError::InvalidCommonName(_))),
            "{bad:?}: {result:?}"
        );
    }
    assert!(!out.exists());
    let mut missing_key = paths.clone();
    missing_key.ca_key = directory.path().join("absent-key.pem");
    match issue_client_certificate(&missing_key, "operator", &out) {
        Err(CertError::Io { path, .. }) => assert_eq!(path, missing_key.ca_key),
        other => panic!("expected an io error naming the key file, got {other:?}"),
    }
    let mut wrong_key = paths.clone();
    wrong_key.ca_key = paths.server_key;
    let result = issue_client_certificate(&wrong_key, "operator", &out);
    assert!(
        matches!(result, Err(CertError::KeyMismatch { .. })),
        "{result:?}"
    );
}

#[test]
fn server_config_names_the_file_it_could_not_use() {
    let directory = tempfile::tempdir().unwrap();
    let paths = ensure(directory.path(), &loopback_names(&["node1.example"])).unwrap();
    let garbage = directory.path().join("garbage.pem");
    std::fs::write(&garbage, "no pem here\n").unwrap();
    let settings = TlsSettings {
        paths: paths.clone(),
        client_ca: Some(garbage.clone()),
    };
    match server_config(&settings) {
        Err(CertError::NoCertificate { path }) => assert_eq!(path, garbage),
        other => panic!("expected no certificate in the trust store, got {other:?}"),
    }
    let mut missing = paths;
    missing.server_key = directory.path().join("absent-key.pem");
    let settings = TlsSettings {
        paths: missing.clone(),
        client_ca: None,
    };
    match server_config(&settings) {
        Err(CertError::Io { path, .. }) => assert_eq!(path, missing.server_key),
        other => panic!("expected an io error naming the key file, got {other:?}"),
    }
}
