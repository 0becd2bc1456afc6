//! A deliberately small HTTP/1.1 client for wire-level tests: the caller writes the request
//! bytes itself (any method, any header, malformed if it likes), and the client parses the
//! status line, the headers and the body (`Content-Length`, or chunked with its trailers).
//! Over plain TCP or over TLS (rustls with ring, trusting one CA file, a chosen TLS version).
//!
//! It is not a general client: no redirects, no content decoding (the caller gunzips), no
//! `1xx` responses, and a body without length or chunking is read to the end of the stream.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// How long a read may block before the client gives up (a hung server fails the test).
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest response head (status line and headers) or chunk-size line accepted.
const LINE_BYTES_MAX: usize = 64 * 1024;

/// A TCP or TLS stream.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(stream) => stream,
            Stream::Tls(stream) => &stream.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(stream) => stream.read(buffer),
            Stream::Tls(stream) => stream.read(buffer),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(stream) => stream.write(buffer),
            Stream::Tls(stream) => stream.write(buffer),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(stream) => stream.flush(),
            Stream::Tls(stream) => stream.flush(),
        }
    }
}

/// The TLS protocol version of a [`Connection::tls`] connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2 only.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// A parsed response.
#[derive(Debug, Clone, Default)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// Whether the body came with `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// How many chunks a chunked body had (the last, empty chunk not counted).
    pub chunks: usize,
    /// The trailer fields of a chunked body.
    pub trailers: Vec<(String, String)>,
    /// The body as received (still compressed when `Content-Encoding` says so).
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    /// The first value of trailer field `name` (any case).
    pub fn trailer(&self, name: &str) -> Option<&str> {
        find(&self.trailers, name)
    }

    /// The body as text (lossy), for assertion messages.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn find<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(field, _)| field.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// One client connection.
pub struct Connection {
    reader: BufReader<Stream>,
}

impl Connection {
    /// A plain TCP connection.
    pub fn plain(address: SocketAddr) -> io::Result<Connection> {
        let stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            reader: BufReader::new(Stream::Plain(stream)),
        })
    }

    /// A TLS connection with `version`, trusting only the CA certificates in `ca_pem`, with
    /// `server_name` as SNI and the name to verify. The handshake completes before it returns.
    pub fn tls(
        address: SocketAddr,
        ca_pem: &Path,
        server_name: &str,
        version: TlsVersion,
    ) -> Result<Connection, String> {
        Connection::tls_as(address, ca_pem, server_name, version, None)
    }

    /// A TLS connection that presents a client certificate (`certificate` and `key` PEM
    /// files), or none.
    pub fn tls_as(
        address: SocketAddr,
        ca_pem: &Path,
        server_name: &str,
        version: TlsVersion,
        identity: Option<(&Path, &Path)>,
    ) -> Result<Connection, String> {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in CertificateDer::pem_file_iter(ca_pem)
            .map_err(|e| format!("{}: {e}", ca_pem.display()))?
        {
            let certificate = certificate.map_err(|e| format!("{}: {e}", ca_pem.display()))?;
            roots
                .add(certificate)
                .map_err(|e| format!("{}: {e}", ca_pem.display()))?;
        }
        let versions: &[&'static rustls::SupportedProtocolVersion] = match version {
            TlsVersion::Tls12 => &[&rustls::version::TLS12],
            TlsVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(versions)
        .map_err(|e| format!("tls versions: {e}"))?
        .with_root_certificates(roots);
        let config = match identity {
            None => config.with_no_client_auth(),
            Some((certificate, key)) => {
                let chain = CertificateDer::pem_file_iter(certificate)
                    .map_err(|e| format!("{}: {e}", certificate.display()))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("{}: {e}", certificate.display()))?;
                let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| format!("{}: {e}", key.display()))?;
                config
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("client certificate: {e}"))?
            }
        };
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| format!("server name {server_name}: {e}"))?;
        let client = rustls::ClientConnection::new(Arc::new(config), name)
            .map_err(|e| format!("tls client: {e}"))?;
        let tcp = TcpStream::connect(address).map_err(|e| format!("connect {address}: {e}"))?;
        tcp.set_read_timeout(Some(READ_TIMEOUT))
            .map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut stream = rustls::StreamOwned::new(client, tcp);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| format!("tls handshake with {address}: {e}"))?;
        }
        Ok(Connection {
            reader: BufReader::new(Stream::Tls(Box::new(stream))),
        })
    }

    /// The negotiated TLS version, `None` over plain TCP.
    pub fn tls_version(&self) -> Option<rustls::ProtocolVersion> {
        match self.reader.get_ref() {
            Stream::Plain(_) => None,
            Stream::Tls(stream) => stream.conn.protocol_version(),
        }
    }

    /// Writes `bytes` as they are.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let stream = self.reader.get_mut();
        stream.write_all(bytes)?;
        stream.flush()
    }

    /// Writes a request and reads its response.
    pub fn request(&mut self, bytes: &[u8]) -> io::Result<RawResponse> {
        self.send(bytes)?;
        self.read_response()
    }

    /// Reads one response.
    pub fn read_response(&mut self) -> io::Result<RawResponse> {
        let status_line = self.line()?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") {
            return Err(invalid(format!(
                "not an http/1 status line: {status_line:?}"
            )));
        }
        let status = parts
            .next()
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| invalid(format!("no status code in {status_line:?}")))?;
        let reason = parts.next().unwrap_or_default().to_owned();
        let headers = self.fields()?;
        let mut response = RawResponse {
            status,
            reason,
            headers,
            ..RawResponse::default()
        };
        let chunked = response.header("transfer-encoding").is_some_and(|codings| {
            codings
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
        });
        if chunked {
            response.chunked = true;
            self.chunked_body(&mut response)?;
        } else if let Some(length) = response.header("content-length") {
            let length = length
                .trim()
                .parse::<usize>()
                .map_err(|_| invalid(format!("bad content-length {length:?}")))?;
            let mut body = vec![0; length];
            self.reader.read_exact(&mut body)?;
            response.body = body;
        } else if status == 204 || status == 304 || (100..200).contains(&status) {
        } else {
            self.reader.read_to_end(&mut response.body)?;
        }
        Ok(response)
    }

    /// Reads until the peer closes the connection or `timeout` passes: `Ok(bytes read)` when
    /// it closed (end of stream, or a reset), an error when it stayed open.
    pub fn wait_closed(&mut self, timeout: Duration) -> io::Result<Vec<u8>> {
        let outcome = self.read_until_closed(timeout);
        self.reader
            .get_ref()
            .tcp()
            .set_read_timeout(Some(READ_TIMEOUT))?;
        outcome
    }

    fn read_until_closed(&mut self, timeout: Duration) -> io::Result<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut received = Vec::new();
        received.extend_from_slice(self.reader.buffer());
        let consumed = self.reader.buffer().len();
        self.reader.consume(consumed);
        let mut buffer = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the connection is still open after {timeout:?}"),
                ));
            }
            self.reader.get_ref().tcp().set_read_timeout(Some(left))?;
            match self.reader.get_mut().read(&mut buffer) {
                Ok(0) => return Ok(received),
                Ok(n) => received.extend_from_slice(&buffer[..n]),
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::BrokenPipe
                            | io::ErrorKind::UnexpectedEof
                    ) =>
                {
                    return Ok(received);
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn chunked_body(&mut self, response: &mut RawResponse) -> io::Result<()> {
        loop {
            let line = self.line()?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| invalid(format!("bad chunk size line {line:?}")))?;
            if size == 0 {
                response.trailers = self.fields()?;
                return Ok(());
            }
            let start = response.body.len();
            response.body.resize(start + size, 0);
            self.reader.read_exact(&mut response.body[start..])?;
            response.chunks += 1;
            let end = self.line()?;
            if !end.is_empty() {
                return Err(invalid(format!("chunk not followed by CRLF: {end:?}")));
            }
        }
    }

    /// Header or trailer fields up to the empty line.
    fn fields(&mut self) -> io::Result<Vec<(String, String)>> {
        let mut fields = Vec::new();
        loop {
            let line = self.line()?;
            if line.is_empty() {
                return Ok(fields);
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid(format!("field without a colon: {line:?}")))?;
            fields.push((name.to_owned(), value.trim().to_owned()));
        }
    }

    /// One line without its CRLF; an error at the end of the stream.
    fn line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        let read = (&mut self.reader)
            .take(LINE_BYTES_MAX as u64)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection closed before the response ended",
            ));
        }
        if line.last() != Some(&b'\n') {
            return Err(invalid("a line is too long or ends without LF".into()));
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        String::from_utf8(line).map_err(|_| invalid("a line is not utf-8".into()))
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// A request: `method target HTTP/1.1`, `Host`, the `headers` in order, `Content-Length` (when
/// `body` is `Some`), and the body.
pub fn request(
    method: &str,
    target: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut bytes = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n").into_bytes();
    for (name, value) in headers {
        bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if let Some(body) = body {
        bytes.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        bytes.extend_from_slice(body);
    } else {
        bytes.extend_from_slice(b"\r\n");
    }
    bytes
}

/// The `Authorization: Basic` header value for `user:password`.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {credentials}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Serves `reply` to one connection and returns the client's connection.
    fn serve(reply: &'static [u8]) -> Connection {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.write_all(reply).unwrap();
        });
        Connection::plain(address).unwrap()
    }

    #[test]
    fn a_chunked_body_is_reassembled_with_its_trailers() {
        let mut connection = serve(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: CIMStatusCode\r\n\r\n\
              5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nCIMStatusCode: 27\r\n\
              CIMStatusCodeDescription: too%20long\r\n\r\n",
        );
        let response = connection.read_response().unwrap();
        assert_eq!(response.status, 200);
        assert!(response.chunked);
        assert_eq!(response.chunks, 2);
        assert_eq!(response.body, b"hello, world");
        assert_eq!(response.trailer("cimstatuscode"), Some("27"));
        assert_eq!(
            response.trailer("CIMStatusCodeDescription"),
            Some("too%20long")
        );
    }

    #[test]
    fn a_content_length_body_is_read_and_the_next_response_follows() {
        let mut connection = serve(
            b"HTTP/1.1 405 Method Not Allowed\r\nAllow: POST\r\nContent-Length: 3\r\n\r\nabc\
              HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        );
        let first = connection.read_response().unwrap();
        assert_eq!((first.status, first.header("allow")), (405, Some("POST")));
        assert_eq!(first.body, b"abc");
        let second = connection.read_response().unwrap();
        assert_eq!(second.status, 200);
        assert!(second.body.is_empty());
        assert!(connection.wait_closed(Duration::from_secs(10)).is_ok());
    }

    #[test]
    fn a_truncated_chunked_body_is_an_error() {
        let mut connection =
            serve(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort");
        assert!(connection.read_response().is_err());
    }
}
