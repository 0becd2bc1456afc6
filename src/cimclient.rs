//! The cm* commands' CIM-XML client of the local agent (DSP0200): one `POST /cimom` per call,
//! whose answer is decoded with the same codec the agent uses. The agent is reached over its
//! local socket (`CIMGUARD_SOCKET`, default [`DEFAULT_SOCKET`]), where the kernel tells it who
//! asks and root needs no password; or, when `CIMGUARD_URL` is set, over HTTPS as
//! `CIMGUARD_USER` with `CIMGUARD_PASSWORD`, trusting the authority `CIMGUARD_CA`. Both are
//! the same small HTTP/1.1 exchange ([`exchange`]) over a different stream.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use cim_schema::model::{InstancePath, KeyBinding, Name, ObjectPath, Value};
use cim_schema::xml::{
    decode, encode, Body, Data, Limits, Message, MethodCall, ParamValue, Request, Response, Untyped,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};

/// The agent's local socket on a node whose cmcld keeps the default state directory.
pub const DEFAULT_SOCKET: &str = "/var/lib/cimguard/cimxml.sock";
/// Where a node keeps its agent's authority.
pub const DEFAULT_CA: &str = "/var/lib/cimguard/tls/ca.pem";
/// The port of an https:// URL that names none.
const HTTPS_DEFAULT_PORT: u16 = 443;
/// The longest a call may wait for the agent to read or answer (a halt that first halts
/// dependents waits minutes).
const CALL_TIMEOUT: Duration = Duration::from_secs(360);
/// The longest a TCP connection to one of the agent's addresses may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer head (status line and headers) read, and the most trailer bytes.
const HEAD_BYTES_MAX: usize = 64 * 1024;
/// The longest chunk-size line (the size and any chunk extensions) read.
const CHUNK_LINE_BYTES_MAX: usize = 4 * 1024;
/// The largest answer body read: the agent's own bound on a CIM-XML body.
const BODY_BYTES_MAX: usize = Limits::DEFAULT.input_bytes_max;
/// The namespace of the cluster model.
pub const CIMV2: &str = "root/cimv2";

/// A client of one agent.
pub struct Client {
    transport: Transport,
}

/// How a client reaches its agent.
enum Transport {
    /// The agent's local socket: plain HTTP, no credentials (the peer's uid decides).
    Local {
        /// The socket's path.
        path: PathBuf,
    },
    /// HTTPS with Basic credentials.
    Https {
        /// The URL as given, for messages.
        url: String,
        /// The host as the URL names it (an IPv6 address without its brackets).
        host: String,
        /// The port.
        port: u16,
        /// The URL's authority, for the `Host` header.
        authority: String,
        /// The request target: the URL's path, then `/cimom`.
        target: String,
        /// The `Authorization` header's value.
        authorization: String,
        /// Trusts the agent's authority only.
        tls: Arc<rustls::ClientConfig>,
    },
}

/// The outcome of an extrinsic method: its return value and output parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Returned {
    /// The return value (the methods of the cluster classes return a uint32).
    pub value: Option<u32>,
    /// The output parameters by name.
    pub out: Vec<(String, Option<Value>)>,
}

impl Returned {
    /// The string output parameter `name`.
    pub fn out_string(&self, name: &str) -> Option<&str> {
        self.out.iter().find_map(|(n, v)| match v {
            Some(Value::String(text)) if n.eq_ignore_ascii_case(name) => Some(text.as_str()),
            _ => None,
        })
    }
}

fn variable(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Client {
    /// A client configured from the environment: HTTPS when `CIMGUARD_URL` is set, else the
    /// local socket.
    pub fn from_env() -> Result<Client, String> {
        let Some(url) = variable("CIMGUARD_URL") else {
            let path = variable("CIMGUARD_SOCKET").unwrap_or_else(|| DEFAULT_SOCKET.to_owned());
            return Ok(Client::local(PathBuf::from(path)));
        };
        let user = variable("CIMGUARD_USER")
            .ok_or("CIMGUARD_USER is not set: give the agent's user (and CIMGUARD_PASSWORD)")?;
        let password = variable("CIMGUARD_PASSWORD")
            .ok_or("CIMGUARD_PASSWORD is not set: give the password of CIMGUARD_USER")?;
        let ca = PathBuf::from(variable("CIMGUARD_CA").unwrap_or_else(|| DEFAULT_CA.to_owned()));
        Client::new(&url, &user, &password, &ca)
    }

    /// A client of the agent listening on the Unix socket `path`.
    pub fn local(path: PathBuf) -> Client {
        Client {
            transport: Transport::Local { path },
        }
    }

    /// A client of the agent at `url` (https://host:port), as `user`, trusting the
    /// authorities of the PEM file `ca`.
    pub fn new(url: &str, user: &str, password: &str, ca: &Path) -> Result<Client, String> {
        let url = url.trim_end_matches('/').to_owned();
        let (authority, host, port, path) = split_url(&url)?;
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(ca).map_err(|e| {
            format!(
                "the agent's authority {}: {e} (set CIMGUARD_CA)",
                ca.display()
            )
        })?;
        for certificate in CertificateDer::pem_slice_iter(&pem) {
            let certificate =
                certificate.map_err(|e| format!("the agent's authority {}: {e}", ca.display()))?;
            roots
                .add(certificate)
                .map_err(|e| format!("the agent's authority {}: {e}", ca.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("{} holds no certificate", ca.display()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Ok(Client {
            transport: Transport::Https {
                authority: authority.to_owned(),
                host: host.to_owned(),
                port,
                target: format!("{path}/cimom"),
                url: url.clone(),
                authorization: format!("Basic {credentials}"),
                tls: Arc::new(tls),
            },
        })
    }

    /// Whether there is no agent on this host to ask: the client is of the local socket, and
    /// nothing listens there (no such socket, or nobody accepting on it). A client of an
    /// https address is never absent: the operator named the agent.
    pub fn absent(&self) -> bool {
        match &self.transport {
            Transport::Local { path } => UnixStream::connect(path).is_err_and(|e| {
                matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                )
            }),
            Transport::Https { .. } => false,
        }
    }

    /// The agent, for messages: its URL, or its local socket.
    fn agent(&self) -> String {
        match &self.transport {
            Transport::Local { path } => format!("the local agent at {}", path.display()),
            Transport::Https { url, .. } => url.clone(),
        }
    }

    /// Sends one `POST` with `headers` and `body` and reads the answer whole.
    fn post(&self, headers: &[(&str, &str)], body: &[u8]) -> Result<Answer, String> {
        match &self.transport {
            Transport::Local { path } => {
                let unreachable = |e: std::io::Error| {
                    format!(
                        "cannot reach the local agent at {}: {e}; set CIMGUARD_URL (with \
                         CIMGUARD_USER, CIMGUARD_PASSWORD) to use its https address",
                        path.display()
                    )
                };
                let mut stream = UnixStream::connect(path).map_err(unreachable)?;
                // The files and commands go only to an agent run by root or by this user:
                // a socket put there by another user is not the agent.
                let server = nix::sys::socket::getsockopt(
                    &stream,
                    nix::sys::socket::sockopt::PeerCredentials,
                )
                .map_err(|e| unreachable(e.into()))?
                .uid();
                let me = nix::unistd::geteuid().as_raw();
                if server != 0 && server != me {
                    return Err(format!(
                        "{} is served by uid {server}, neither root nor this user: not the \
                         agent",
                        path.display()
                    ));
                }
                stream
                    .set_read_timeout(Some(CALL_TIMEOUT))
                    .and_then(|()| stream.set_write_timeout(Some(CALL_TIMEOUT)))
                    .map_err(unreachable)?;
                exchange(&mut stream, "localhost", "/cimom", headers, body)
                    .map_err(|e| format!("the local agent at {}: {e}", path.display()))
            }
            Transport::Https {
                url,
                host,
                port,
                authority,
                target,
                authorization,
                tls,
            } => {
                let unreachable =
                    |e: std::io::Error| format!("cannot reach the agent at {url}: {e}");
                let stream = connect(host, *port).map_err(unreachable)?;
                let name = ServerName::try_from(host.clone())
                    .map_err(|e| format!("CIMGUARD_URL {url}: the host {host}: {e}"))?;
                let connection = rustls::ClientConnection::new(tls.clone(), name)
                    .map_err(|e| format!("cannot reach the agent at {url}: TLS: {e}"))?;
                let mut stream = rustls::StreamOwned::new(connection, stream);
                let mut headers = headers.to_vec();
                headers.push(("Authorization", authorization));
                exchange(&mut stream, authority, target, &headers, body).map_err(unreachable)
            }
        }
    }

    /// InvokeMethod `method` on the instance at `path` (in root/cimv2) with `params`.
    pub fn invoke(
        &self,
        path: &InstancePath,
        method: &str,
        params: Vec<(&str, Value)>,
    ) -> Result<Returned, String> {
        let mut target = path.clone();
        target.namespace = Some(CIMV2.to_owned());
        target.host = None;
        self.call(ObjectPath::Instance(target), method, params)
    }

    /// InvokeMethod of the static `method` of `class` (in root/cimv2).
    pub fn invoke_static(
        &self,
        class: &str,
        method: &str,
        params: Vec<(&str, Value)>,
    ) -> Result<Returned, String> {
        let mut target = cim_schema::model::ClassPath::new(class);
        target.namespace = Some(CIMV2.to_owned());
        self.call(ObjectPath::Class(target), method, params)
    }

    fn call(
        &self,
        target: ObjectPath,
        method: &str,
        params: Vec<(&str, Value)>,
    ) -> Result<Returned, String> {
        let header = target
            .to_wbem_uri()
            .map_err(|e| format!("the path of {method}'s target: {e}"))?;
        let header =
            percent_encoding::utf8_percent_encode(header.trim_start_matches('/'), HEADER_ESCAPES)
                .to_string();
        let message = Message::new(
            "1001",
            Body::Request(Request::MethodCall(MethodCall {
                name: Name::new(method),
                target,
                params: params
                    .into_iter()
                    .map(|(name, value)| ParamValue::typed(name, Some(value)))
                    .collect(),
            })),
        );
        let body = encode(&message).map_err(|e| format!("the request does not encode: {e}"))?;
        let answer = self.post(
            &[
                ("Content-Type", "application/xml; charset=\"utf-8\""),
                ("CIMProtocolVersion", "1.0"),
                ("CIMOperation", "MethodCall"),
                ("CIMMethod", method),
                ("CIMObject", &header),
            ],
            &body,
        )?;
        let agent = self.agent();
        match (answer.status, &self.transport) {
            (200, _) => {}
            (401, Transport::Https { .. }) => {
                return Err(format!(
                    "{agent}: the user or password is wrong (CIMGUARD_USER, CIMGUARD_PASSWORD)"
                ))
            }
            (code, _) => return Err(format!("{agent}: HTTP {code} {}", answer.reason())),
        }
        let message = decode(&answer.body, &Limits::DEFAULT)
            .map_err(|e| format!("{agent}: the answer does not decode: {e}"))?;
        let Body::Response(Response::Method(response)) = message.body else {
            return Err(format!("{agent}: the answer is not a method response"));
        };
        let returned = response.result.map_err(|error| {
            format!(
                "{}{}",
                cim_error_name(error.code),
                error
                    .description
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            )
        })?;
        let value = returned.return_value.and_then(|r| match r.value {
            Data::Value(Value::Uint32(n)) => Some(n),
            Data::Untyped(Untyped::Scalar(text)) => text.parse().ok(),
            _ => None,
        });
        let out = returned
            .params
            .into_iter()
            .map(|p| {
                let value = match p.value {
                    Data::Value(value) => Some(value),
                    Data::Untyped(Untyped::Scalar(text)) => Some(Value::String(text)),
                    _ => None,
                };
                (p.name.as_str().to_owned(), value)
            })
            .collect();
        Ok(Returned { value, out })
    }
}

/// An HTTP answer, read whole.
#[derive(Debug)]
struct Answer {
    /// The status code.
    status: u16,
    /// The status line's reason phrase.
    status_text: String,
    /// The headers, names as sent.
    headers: Vec<(String, String)>,
    /// The body, unchunked.
    body: Vec<u8>,
}

impl Answer {
    /// The first header `name` (any case).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Why a request failed, for a message: the agent's `CIMError` and its detail
    /// (`PGErrorDetail`), else the reason phrase.
    fn reason(&self) -> String {
        let detail = self.header("PGErrorDetail").map(|d| {
            percent_encoding::percent_decode_str(d)
                .decode_utf8_lossy()
                .into_owned()
        });
        match (self.header("CIMError"), detail) {
            (Some(error), Some(detail)) => format!("{error}: {detail}"),
            (Some(error), None) => error.to_owned(),
            (None, Some(detail)) => detail,
            (None, None) => self.status_text.clone(),
        }
    }
}

/// A TCP connection to `host`:`port`: each of its addresses in turn, within
/// [`CONNECT_TIMEOUT`] each; reads and writes then time out after [`CALL_TIMEOUT`].
fn connect(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let mut last = None;
    for address in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, CONNECT_TIMEOUT) {
            Ok(stream) => {
                stream.set_read_timeout(Some(CALL_TIMEOUT))?;
                stream.set_write_timeout(Some(CALL_TIMEOUT))?;
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} has no address"),
        )
    }))
}

/// Splits an https:// URL into its authority, host (without an IPv6 address's brackets),
/// port and path (without its last `/`).
fn split_url(url: &str) -> Result<(&str, &str, u16, &str), String> {
    let invalid =
        |why: &str| format!("CIMGUARD_URL {url} is not an https://HOST[:PORT] URL: {why}");
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| invalid("it does not start with https://"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| invalid("no ] after the IPv6 address"))?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() || authority.contains('@') {
        return Err(invalid("no host, or credentials in it"));
    }
    let port = match port {
        Some(port) => port
            .parse()
            .map_err(|_| invalid("the port is not a number"))?,
        None => HTTPS_DEFAULT_PORT,
    };
    Ok((authority, host, port, path.trim_end_matches('/')))
}

/// One HTTP/1.1 exchange on `stream`: `POST target` with `headers` and `body`, then the answer
/// read whole (by `Content-Length`, chunks, or to the end), its head at most
/// [`HEAD_BYTES_MAX`] and its body at most [`BODY_BYTES_MAX`]. The connection is not reused
/// (`Connection: close`): a command makes few calls.
///
/// Written here rather than taken from a crate: ureq, the blocking client the commands used,
/// cannot run over a Unix stream, and hyper's client would start an async runtime in every
/// command for one request. What is needed is small: one request, `Connection: close`, an
/// answer read with bounds (httparse-like parsing of one status line and its headers).
fn exchange<S: Read + Write>(
    stream: &mut S,
    host: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Answer> {
    let mut request = format!(
        "POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let sent = stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.write_all(body))
        .and_then(|()| stream.flush());
    match sent {
        Ok(()) => read_answer(stream),
        // An agent that refuses a request on its head (a user refused on the local socket,
        // say) may answer and close before the body is all sent: its answer is read all
        // the same (RFC 9112 9.6), else the write's error is told.
        Err(error)
            if matches!(
                error.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            read_answer(stream).map_err(|_| error)
        }
        Err(error) => Err(error),
    }
}

/// The answer to the request just sent on `stream`, read whole (see [`exchange`]).
fn read_answer<S: Read + Write>(stream: &mut S) -> std::io::Result<Answer> {
    // Each read waits at most CALL_TIMEOUT (the socket's timeout); the whole answer, too: an
    // agent that trickles bytes does not stretch a call beyond it.
    let mut reader = BufReader::new(Deadline {
        inner: stream,
        at: std::time::Instant::now() + CALL_TIMEOUT,
    });
    // Interim answers (100 Continue) come before the final one.
    let (status, status_text, headers) = loop {
        let head = read_head(&mut reader)?;
        if !(100..200).contains(&head.0) {
            break head;
        }
    };
    let mut answer = Answer {
        status,
        status_text,
        headers,
        body: Vec::new(),
    };
    // Every Transfer-Encoding header, in order, is one list of codings (RFC 9110 5.3);
    // with one, Content-Length does not count, and a body whose last coding is not chunked
    // ends with the connection (RFC 9112 6.3).
    let codings: Vec<&str> = answer
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Transfer-Encoding"))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    if let Some(last) = codings.last() {
        if !last.eq_ignore_ascii_case("chunked") {
            return Err(invalid_data(format!(
                "the answer's transfer codings {codings:?} do not end with chunked"
            )));
        }
        answer.body = read_chunks(&mut reader)?;
    } else if let Some(length) = answer.header("Content-Length") {
        let length: usize = length
            .trim()
            .parse()
            .map_err(|_| invalid_data(format!("Content-Length {length} is not a number")))?;
        if length > BODY_BYTES_MAX {
            return Err(too_large());
        }
        answer.body = vec![0; length];
        reader.read_exact(&mut answer.body)?;
    } else {
        reader
            .take(BODY_BYTES_MAX as u64 + 1)
            .read_to_end(&mut answer.body)?;
        if answer.body.len() > BODY_BYTES_MAX {
            return Err(too_large());
        }
    }
    Ok(answer)
}

type Head = (u16, String, Vec<(String, String)>);

/// The status line and headers of an answer.
fn read_head(reader: &mut impl BufRead) -> std::io::Result<Head> {
    let mut remaining = HEAD_BYTES_MAX;
    let status_line = read_line(reader, &mut remaining)?;
    let (version, rest) = status_line.split_once(' ').unwrap_or((&status_line, ""));
    let (code, status_text) = rest.split_once(' ').unwrap_or((rest, ""));
    let status = code
        .parse()
        .ok()
        .filter(|_| version.starts_with("HTTP/1."))
        .ok_or_else(|| invalid_data(format!("not an HTTP/1.x status line: {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut remaining)?;
        if line.is_empty() {
            return Ok((status, status_text.to_owned(), headers));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid_data(format!("not a header line: {line:?}")))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
}

/// A stream whose reads fail once `at` has passed (each read is also bounded by the
/// socket's own timeout).
struct Deadline<S> {
    inner: S,
    at: std::time::Instant,
}

impl<S: Read> Read for Deadline<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if std::time::Instant::now() >= self.at {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the agent's answer took over {} s", CALL_TIMEOUT.as_secs()),
            ));
        }
        self.inner.read(buf)
    }
}

/// A chunked body (RFC 9112 section 7.1), its trailers read and dropped. Each chunk-size
/// line has its own bound; the trailers share [`HEAD_BYTES_MAX`].
fn read_chunks(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut remaining = HEAD_BYTES_MAX;
    loop {
        let mut line_budget = CHUNK_LINE_BYTES_MAX;
        let line = read_line(reader, &mut line_budget)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| invalid_data(format!("not a chunk size: {line:?}")))?;
        if size == 0 {
            while !read_line(reader, &mut remaining)?.is_empty() {}
            return Ok(body);
        }
        if size > BODY_BYTES_MAX - body.len() {
            return Err(too_large());
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut line_budget = CHUNK_LINE_BYTES_MAX;
        if !read_line(reader, &mut line_budget)?.is_empty() {
            return Err(invalid_data("a chunk is longer than its size".to_owned()));
        }
    }
}

/// One line without its CRLF, counted against `remaining` bytes.
fn read_line(reader: &mut impl BufRead, remaining: &mut usize) -> std::io::Result<String> {
    let mut line = Vec::new();
    reader
        .by_ref()
        .take(*remaining as u64)
        .read_until(b'\n', &mut line)?;
    *remaining -= line.len();
    if line.pop() != Some(b'\n') {
        return Err(if *remaining == 0 {
            invalid_data(format!("the answer's head is over {HEAD_BYTES_MAX} bytes"))
        } else {
            std::io::ErrorKind::UnexpectedEof.into()
        });
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map_err(|_| invalid_data("a line of the answer is not UTF-8".to_owned()))
}

fn invalid_data(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

fn too_large() -> std::io::Error {
    invalid_data(format!("the answer is over {BODY_BYTES_MAX} bytes"))
}

/// What a `CIMObject` header value escapes (DSP0200: the URI form of the object path).
const HEADER_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b':')
    .remove(b'=')
    .remove(b',')
    .remove(b'.')
    .remove(b'_')
    .remove(b'-');

/// The name of a CIM status code, for messages.
fn cim_error_name(code: u32) -> String {
    let name = match code {
        1 => "CIM_ERR_FAILED",
        2 => "CIM_ERR_ACCESS_DENIED",
        3 => "CIM_ERR_INVALID_NAMESPACE",
        4 => "CIM_ERR_INVALID_PARAMETER",
        5 => "CIM_ERR_INVALID_CLASS",
        6 => "CIM_ERR_NOT_FOUND",
        7 => "CIM_ERR_NOT_SUPPORTED",
        _ => return format!("CIM error {code}"),
    };
    name.to_owned()
}

/// The path of an instance of a class whose keys are all strings.
pub fn path(class: &str, keys: &[(&str, &str)]) -> InstancePath {
    let mut path = InstancePath::new(class);
    for (name, value) in keys {
        path.keybindings.push(KeyBinding {
            name: (*name).into(),
            value: Value::String((*value).to_owned()),
        });
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_given_before_the_body_was_all_sent_is_read() {
        // The agent reads the head, answers 403 and closes, while the body (larger than the
        // socket's buffer) is still being written: the write fails, the answer is read.
        let (mut client, server) = UnixStream::pair().unwrap();
        let agent = std::thread::spawn(move || {
            let mut reader = BufReader::new(&server);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            (&server)
                .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\n\r\nrefused")
                .unwrap();
        });
        let body = vec![b'x'; 8 << 20];
        let answer = exchange(&mut client, "localhost", "/cimom", &[], &body).unwrap();
        agent.join().unwrap();
        assert_eq!(
            (answer.status, answer.body.as_slice()),
            (403, &b"refused"[..])
        );
        // A stream closed with no answer at all: the write's error is told.
        let (mut client, server) = UnixStream::pair().unwrap();
        drop(server);
        let error = exchange(&mut client, "localhost", "/cimom", &[], &body).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "{error}");
    }

    /// A stream that answers `answer` and keeps what it was sent.
    struct Scripted {
        answer: std::io::Cursor<Vec<u8>>,
        sent: Vec<u8>,
    }

    impl Scripted {
        fn new(answer: &str) -> Scripted {
            Scripted {
                answer: std::io::Cursor::new(answer.as_bytes().to_vec()),
                sent: Vec::new(),
            }
        }
    }

    impl Read for Scripted {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            self.answer.read(buffer)
        }
    }

    impl Write for Scripted {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.sent.extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn post(answer: &str) -> (std::io::Result<Answer>, String) {
        let mut stream = Scripted::new(answer);
        let result = exchange(
            &mut stream,
            "localhost",
            "/cimom",
            &[("CIMOperation", "MethodCall")],
            b"<CIM/>",
        );
        (result, String::from_utf8(stream.sent).unwrap())
    }

    #[test]
    fn a_request_is_one_post_with_its_length_and_headers() {
        let (answer, sent) = post("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        assert_eq!(
            sent,
            "POST /cimom HTTP/1.1\r\nHost: localhost\r\nContent-Length: 6\r\n\
             Connection: close\r\nCIMOperation: MethodCall\r\n\r\n<CIM/>"
        );
        let answer = answer.unwrap();
        assert_eq!((answer.status, answer.body.as_slice()), (200, &b"ok"[..]));
    }

    #[test]
    fn chunked_answers_after_an_interim_one_are_read_whole() {
        let (answer, _) = post(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
             3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nCIMStatusCode: 0\r\n\r\n",
        );
        assert_eq!(answer.unwrap().body, b"abcde");
    }

    #[test]
    fn many_small_chunks_and_split_transfer_encodings_read_whole() {
        // 20,000 one-byte chunks: each chunk-size line has its own bound.
        let mut answer = String::from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        for _ in 0..20_000 {
            answer.push_str("1\r\nx\r\n");
        }
        answer.push_str("0\r\n\r\n");
        assert_eq!(post(&answer).0.unwrap().body.len(), 20_000);
        // Two Transfer-Encoding headers are one list, chunked last; Content-Length does not
        // count beside it.
        let (answer, _) = post(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 1\r\n\
             Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        );
        assert_eq!(answer.unwrap().body, b"ok");
        // A last coding other than chunked cannot be read here: an error, not a guess.
        let (answer, _) = post("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nxx");
        assert!(answer.is_err(), "{answer:?}");
    }

    #[test]
    fn an_answer_without_a_length_is_read_to_its_end() {
        let (answer, _) = post("HTTP/1.0 200 OK\r\n\r\nto the end");
        assert_eq!(answer.unwrap().body, b"to the end");
    }

    #[test]
    fn a_refusal_says_why_from_its_headers() {
        let (answer, _) = post(
            "HTTP/1.1 403 Forbidden\r\nPGErrorDetail: uid%2065534%20may%20not\r\n\
             Content-Length: 0\r\n\r\n",
        );
        let answer = answer.unwrap();
        assert_eq!(answer.status, 403);
        assert_eq!(answer.reason(), "uid 65534 may not");
        let (answer, _) = post("HTTP/1.1 400 Bad Request\r\nCIMError: header-mismatch\r\n\r\n");
        assert_eq!(answer.unwrap().reason(), "header-mismatch");
        let (answer, _) = post("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(answer.unwrap().reason(), "Service Unavailable");
    }

    #[test]
    fn broken_or_oversized_answers_are_errors() {
        for answer in [
            "",
            "SMTP ready\r\n\r\n",
            "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffff\r\n",
            &format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;{}\r\nx\r\n0\r\n\r\n",
                "e".repeat(CHUNK_LINE_BYTES_MAX)
            ),
        ] {
            assert!(post(answer).0.is_err(), "{answer:?}");
        }
        let endless = format!(
            "HTTP/1.1 200 OK\r\nX: {}\r\n\r\n",
            "a".repeat(HEAD_BYTES_MAX)
        );
        let error = post(&endless).0.unwrap_err();
        assert!(error.to_string().contains("head is over"), "{error}");
    }

    #[test]
    fn urls_split_into_host_port_and_path() {
        assert_eq!(
            split_url("https://127.0.0.1:5989").unwrap(),
            ("127.0.0.1:5989", "127.0.0.1", 5989, "")
        );
        assert_eq!(
            split_url("https://[::1]:5990/wbem/").unwrap(),
            ("[::1]:5990", "::1", 5990, "/wbem")
        );
        assert_eq!(
            split_url("https://node1").unwrap(),
            ("node1", "node1", 443, "")
        );
        for url in [
            "http://node1:5988",
            "https://",
            "https://node1:port",
            "https://[::1",
            "https://user:secret@node1",
        ] {
            let error = split_url(url).unwrap_err();
            assert!(
                error.starts_with(&format!("CIMGUARD_URL {url} ")),
                "{error}"
            );
        }
    }

    #[test]
    fn a_missing_local_socket_is_one_clear_line() {
        // A path where nothing is.
        let path = std::env::temp_dir().join(format!("cimguard-{}-none.sock", std::process::id()));
        let client = Client::local(path.clone());
        let error = client
            .invoke_static("HP_SGClusteringService", "GetView", Vec::new())
            .unwrap_err();
        assert!(
            error.starts_with(&format!(
                "cannot reach the local agent at {}: ",
                path.display()
            )) && error.contains("set CIMGUARD_URL")
                && !error.contains('\n'),
            "{error}"
        );
    }
}
