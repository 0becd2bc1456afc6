//! DSP0200 over HTTP: the request headers checked (POST and M-POST with `Man:` and `NN-`
//! prefixed headers), the body read within its limit and decoded, the operation dispatched,
//! and the response written: buffered with `Content-Length`, or, when it is large, chunked
//! with the `CIMStatusCode` trailer if the client sent `TE: trailers`, else spooled to an
//! unlinked file and sent whole with `Content-Length`; gzip when the client accepts it.
//!
//! [`ProtocolError::status`] is the one place where a protocol error becomes an HTTP status and
//! a `CIMError` header.

use std::borrow::Cow;
use std::convert::Infallible;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use cim_schema::xml::{
    begin_imethod_response, decode, encode, encode_spelled, Body as MessageBody, CimError,
    DecodeError, IMethodResponse, IMethodResponseWriter, Message, NamespaceSpelling,
    Request as CimRequest, Response as CimResponse,
};
use flate2::write::GzEncoder;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;

use crate::auth::Principal;
use crate::error::OperationError;
use crate::methods;
use crate::operations::{Item, Items, Outcome};
use crate::pull::PullBatch;
use crate::service::{Peer, Service};
use crate::statistics::{Tally, INVOKE_METHOD};

/// The extension URI of DSP0200's M-POST `Man:` header.
const CIM_MAPPING_URI: &str = "http://www.dmtf.org/cim/mapping/http/v1.0";

/// A response body larger than this is streamed in chunks when the client takes trailers,
/// and spooled to a file when it does not.
pub const STREAM_THRESHOLD_BYTES: usize = 256 * 1024;

/// The size of the chunks of a streamed response.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// Responses smaller than this are not compressed: gzip would cost more than it saves.
pub const GZIP_THRESHOLD_BYTES: usize = 1024;

/// A request refused before it reaches an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The HTTP method is neither POST nor M-POST.
    #[error("method {0} is not allowed; use POST or M-POST")]
    MethodNotAllowed(String),
    /// M-POST without the DSP0200 mandatory extension declaration.
    #[error("M-POST needs Man: {CIM_MAPPING_URI}; ns=NN")]
    NotExtended,
    /// M-POST declaring a mandatory extension other than DSP0200's (RFC 2774 section 7).
    #[error("the mandatory extension {0} is not supported; M-POST takes only {CIM_MAPPING_URI}")]
    UnknownExtension(String),
    /// An HTTP/1.1 request without `Host`, or any request with two (RFC 9112 section 3.2).
    #[error("an HTTP/1.1 request must carry one Host header")]
    MissingHost,
    /// Two `Authorization` headers (a singleton field, RFC 9110 section 5.3): which one the
    /// client meant is not guessed.
    #[error("a request carries one Authorization header at most")]
    TwoAuthorizations,
    /// `Accept`, `Accept-Charset` or `Accept-Range` rules out the CIM-XML response.
    #[error("{0}")]
    NotAcceptable(String),
    /// `CIMOperation` is missing or is not `MethodCall`.
    #[error("CIMOperation must be MethodCall")]
    UnsupportedOperation,
    /// A CIM header disagrees with the body, or is missing or malformed.
    #[error("{0}")]
    HeaderMismatch(String),
    /// The body is not well-formed XML.
    #[error("{0}")]
    NotWellFormed(String),
    /// The body is not valid CIM-XML.
    #[error("{0}")]
    NotValid(String),
    /// The body is larger than the limit.
    #[error("the request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// The content type or charset is not XML in UTF-8.
    #[error("content type must be application/xml or text/xml in utf-8")]
    UnsupportedMediaType,
    /// Basic credentials came over plain HTTP from beyond loopback.
    #[error("basic credentials are refused over plain http from beyond loopback: use https")]
    CleartextCredentials,
    /// The body is compressed or otherwise encoded.
    #[error("the request body must not be encoded (Content-Encoding other than identity)")]
    UnsupportedContentEncoding,
    /// A transfer coding other than chunked (RFC 9112 6.1: 501).
    #[error("the request's transfer coding {0:?} is not implemented: only chunked is")]
    UnsupportedTransferCoding(String),
    /// The asterisk-form request target (`*`), which only OPTIONS takes (RFC 9112 3.2.4).
    #[error("the request target * is for OPTIONS only")]
    AsteriskTarget,
    /// `CIMProtocolVersion` or `PROTOCOLVERSION` is not 1.x.
    #[error("{0}")]
    UnsupportedProtocolVersion(String),
    /// `CIMVERSION` is not 2.x.
    #[error("{0}")]
    UnsupportedCimVersion(String),
    /// `DTDVERSION` is not 2.x.
    #[error("{0}")]
    UnsupportedDtdVersion(String),
    /// `CIMBatch` or `MULTIREQ`.
    #[error("multiple requests are not supported")]
    MultipleRequestsUnsupported,
    /// No or wrong credentials.
    #[error("authentication required")]
    Unauthorized,
    /// Too many failed attempts from this peer; retry after this many seconds.
    #[error("too many failed authentication attempts")]
    Throttled(u64),
    /// The request body could not be read.
    #[error("the request body could not be read")]
    BodyUnreadable,
    /// The request body did not arrive within the body read timeout.
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    /// Credentials could not be checked now (the checking task failed).
    #[error("authentication is unavailable")]
    AuthenticationUnavailable,
    /// A process of this user id connected to the local socket, which serves only root and
    /// the server's own user.
    #[error(
        "uid {0} may not use the agent's local socket (only root and the agent's own user may); \
         use the agent's https address with a user of its users file"
    )]
    LocalUserRefused(u32),
}

impl ProtocolError {
    /// The HTTP status and the `CIMError` header value.
    pub fn status(&self) -> (StatusCode, Option<&'static str>) {
        match self {
            ProtocolError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, None),
            ProtocolError::NotExtended | ProtocolError::UnknownExtension(_) => {
                (StatusCode::NOT_EXTENDED, None)
            }
            ProtocolError::MissingHost
            | ProtocolError::TwoAuthorizations
            | ProtocolError::AsteriskTarget => (StatusCode::BAD_REQUEST, None),
            ProtocolError::UnsupportedTransferCoding(_) => (StatusCode::NOT_IMPLEMENTED, None),
            // DSP0200 names no CIMError value for these; the pywbem listener's choice.
            ProtocolError::NotAcceptable(_) => {
                (StatusCode::NOT_ACCEPTABLE, Some("header-mismatch"))
            }
            ProtocolError::UnsupportedOperation => {
                (StatusCode::BAD_REQUEST, Some("unsupported-operation"))
            }
            ProtocolError::HeaderMismatch(_) => (StatusCode::BAD_REQUEST, Some("header-mismatch")),
            ProtocolError::NotWellFormed(_) => {
                (StatusCode::BAD_REQUEST, Some("request-not-well-formed"))
            }
            ProtocolError::NotValid(_) => (StatusCode::BAD_REQUEST, Some("request-not-valid")),
            ProtocolError::BodyTooLarge(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, Some("request-not-valid"))
            }
            ProtocolError::UnsupportedMediaType | ProtocolError::UnsupportedContentEncoding => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("header-mismatch"))
            }
            ProtocolError::UnsupportedProtocolVersion(_) => (
                StatusCode::NOT_IMPLEMENTED,
                Some("unsupported-protocol-version"),
            ),
            ProtocolError::UnsupportedCimVersion(_) => {
                (StatusCode::NOT_IMPLEMENTED, Some("unsupported-cim-version"))
            }
            ProtocolError::UnsupportedDtdVersion(_) => {
                (StatusCode::NOT_IMPLEMENTED, Some("unsupported-dtd-version"))
            }
            ProtocolError::MultipleRequestsUnsupported => (
                StatusCode::NOT_IMPLEMENTED,
                Some("multiple-requests-unsupported"),
            ),
            ProtocolError::Unauthorized => (StatusCode::UNAUTHORIZED, None),
            ProtocolError::Throttled(_) => (StatusCode::TOO_MANY_REQUESTS, None),
            ProtocolError::BodyUnreadable => (StatusCode::BAD_REQUEST, None),
            ProtocolError::AuthenticationUnavailable => (StatusCode::SERVICE_UNAVAILABLE, None),
            ProtocolError::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, None),
            ProtocolError::LocalUserRefused(_) | ProtocolError::CleartextCredentials => {
                (StatusCode::FORBIDDEN, None)
            }
        }
    }

    fn from_decode(error: &DecodeError) -> ProtocolError {
        let text = error.to_string();
        match error {
            DecodeError::NotWellFormed { .. } => ProtocolError::NotWellFormed(text),
            DecodeError::NotValid { .. } | DecodeError::LimitExceeded { .. } => {
                ProtocolError::NotValid(text)
            }
            DecodeError::MultipleRequestsUnsupported { .. } => {
                ProtocolError::MultipleRequestsUnsupported
            }
            DecodeError::UnsupportedCimVersion { .. } => ProtocolError::UnsupportedCimVersion(text),
            DecodeError::UnsupportedDtdVersion { .. } => ProtocolError::UnsupportedDtdVersion(text),
            DecodeError::UnsupportedProtocolVersion { .. } => {
                ProtocolError::UnsupportedProtocolVersion(text)
            }
        }
    }
}

/// The body of every response.
pub enum ResponseBody {
    /// Held in memory, sent with `Content-Length`.
    Whole(http_body_util::Full<Bytes>),
    /// Encoded while it is sent, in chunks, with the status trailer on a late error.
    Streamed(Box<StreamBody>),
    /// Held in a spool file, sent with `Content-Length`.
    Spooled(SpooledBody),
    /// Another body, counted into the server's statistics as it is sent (only while they
    /// are gathered): the tally is counted when the body is dropped, once it is sent.
    Counted(Box<ResponseBody>, Box<Tally>),
}

impl ResponseBody {
    fn whole(bytes: impl Into<Bytes>) -> ResponseBody {
        ResponseBody::Whole(http_body_util::Full::new(bytes.into()))
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ResponseBody::Whole(body) => Pin::new(body).poll_frame(cx),
            ResponseBody::Streamed(body) => Pin::new(&mut **body).poll_frame(cx),
            ResponseBody::Spooled(body) => Pin::new(body).poll_frame(cx),
            ResponseBody::Counted(body, tally) => {
                let frame = Pin::new(&mut **body).poll_frame(cx);
                if let Poll::Ready(Some(Ok(frame))) = &frame {
                    if let Some(data) = frame.data_ref() {
                        tally.sent(data.len() as u64);
                    }
                }
                frame
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Whole(body) => body.is_end_stream(),
            ResponseBody::Streamed(body) => body.done,
            ResponseBody::Spooled(body) => body.remaining == 0,
            ResponseBody::Counted(body, _) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            ResponseBody::Whole(body) => body.size_hint(),
            ResponseBody::Streamed(_) => http_body::SizeHint::default(),
            ResponseBody::Spooled(body) => http_body::SizeHint::with_exact(body.remaining),
            ResponseBody::Counted(body, _) => body.size_hint(),
        }
    }
}

/// Serves one HTTP request.
pub async fn handle(
    service: Arc<Service>,
    peer: Peer,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let realm = service.config.realm.clone();
    // An M-POST that declared the extension is answered within it (DSP0200, RFC 2774).
    let extension = if request.method().as_str() == "M-POST" {
        extension_namespace(request.headers()).ok()
    } else {
        None
    };
    // While statistics are gathered: when the request arrived, and its head's size.
    let statistics = service
        .manager
        .statistics()
        .period()
        .map(|period| (service.manager.statistics().clone(), period, Instant::now()));
    let mut measure = Measure {
        active: statistics.is_some(),
        request_bytes: statistics
            .as_ref()
            .map_or(0, |_| request_head_bytes(&request)),
        ..Measure::default()
    };
    let (parts, body) = request.into_parts();
    let mut unread = Some(body);
    let mut response = match serve(&service, peer, &parts, &mut unread, &mut measure).await {
        Ok(response) => response,
        Err(error) => {
            let mut response = protocol_error_response(&error, &realm);
            let drained = match unread {
                Some(body) => drained(body, &parts.headers, &service.config.limits).await,
                None => !closes(&error),
            };
            if !drained {
                response
                    .headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
    };
    let statistics = statistics.zip(measure.kind);
    if let Some(((_, _, started), _)) = &statistics {
        // DSP0200: the time the server took, in microseconds (pywbem's
        // last_server_response_time), here to the response's head.
        response.headers_mut().insert(
            WBEM_SERVER_RESPONSE_TIME.name,
            HeaderValue::from(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)),
        );
    }
    if let Some(ns) = extension {
        answer_within_extension(&mut response, &ns);
    }
    if let Some(((statistics, period, started), kind)) = statistics {
        let tally = Tally::new(
            statistics,
            period,
            kind,
            started,
            measure.provider,
            measure.request_bytes,
        );
        response = counted(response, tally);
    }
    Ok(response)
}

/// The response with its head and body counted into `tally` as it is sent.
fn counted(response: Response<ResponseBody>, mut tally: Tally) -> Response<ResponseBody> {
    tally.sent(response_head_bytes(&response));
    let (parts, body) = response.into_parts();
    Response::from_parts(
        parts,
        ResponseBody::Counted(Box::new(body), Box::new(tally)),
    )
}

/// What the statistics need of a request on its way (see [`crate::statistics`]).
#[derive(Debug, Default)]
struct Measure {
    /// Statistics are gathered: measure.
    active: bool,
    /// The operation's type (an index in [`crate::statistics::KINDS`]), once it has one.
    kind: Option<usize>,
    /// The time the operation itself took.
    provider: std::time::Duration,
    /// The request's size: its head, then its body too.
    request_bytes: u64,
}

/// The size of a request's head as sent: request line, header lines, blank line.
fn request_head_bytes<B>(request: &Request<B>) -> u64 {
    let line = request.method().as_str().len()
        + request.uri().to_string().len()
        + " HTTP/1.1\r\n".len()
        + 1;
    (line + headers_bytes(request.headers())) as u64
}

/// The size of a response's head as this server sets it: status line, header lines, blank
/// line (hyper adds `Date`, and `Content-Length` where the body's size is known).
fn response_head_bytes<B>(response: &Response<B>) -> u64 {
    let status = response.status();
    let line = "HTTP/1.1 200 \r\n".len() + status.canonical_reason().map_or(0, str::len);
    (line + headers_bytes(response.headers())) as u64
}

fn headers_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum::<usize>()
        + 2
}

/// Marks the response to an M-POST as RFC 2774 and DSP0200 want it: `Ext:` says the
/// mandatory extension was understood, `Cache-Control: no-cache` keeps caches from serving it
/// to others, `Man:` declares the extension again with the request's header prefix, and the
/// CIM headers of the response (`CIMOperation`, `CIMError`) and the trailers of a streamed
/// one (`CIMStatusCode`, `CIMStatusCodeDescription`) carry that prefix.
fn answer_within_extension(response: &mut Response<ResponseBody>, ns: &str) {
    if let ResponseBody::Streamed(body) = response.body_mut() {
        body.trailer_prefix = Some(format!("{ns}-"));
    }
    let headers = response.headers_mut();
    for header in [&CIM_OPERATION, &CIM_ERROR, &WBEM_SERVER_RESPONSE_TIME] {
        if let Some(value) = headers.remove(&header.name) {
            if let Ok(name) = HeaderName::from_bytes(format!("{ns}-{}", header.spelling).as_bytes())
            {
                headers.insert(name, value);
            }
        }
    }
    if headers.contains_key(http::header::TRAILER) {
        if let Ok(value) = HeaderValue::from_str(&format!(
            "{ns}-CIMStatusCode, {ns}-CIMStatusCodeDescription"
        )) {
            headers.insert(http::header::TRAILER, value);
        }
    }
    headers.insert(HeaderName::from_static("ext"), HeaderValue::from_static(""));
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("{CIM_MAPPING_URI}; ns={ns}")) {
        headers.insert(HeaderName::from_static("man"), value);
    }
}

/// The headers of a CIM request, after the checks (M-POST prefixes removed); the method and
/// object borrow the request's headers unless they were percent-encoded.
struct CimHeaders<'a> {
    method: Cow<'a, str>,
    object: Cow<'a, str>,
    accepts_trailers: bool,
    accepts_gzip: bool,
}

/// A CIM request header: its name as DSP0200 spells it, and as a ready header name (lower
/// case, checked at compile time) so that looking it up needs no parsing or folding.
struct CimHeader {
    spelling: &'static str,
    name: HeaderName,
}

impl CimHeader {
    /// `lower_case` must be `spelling` in lower case (`from_static` rejects anything else when
    /// the constant is compiled).
    const fn new(spelling: &'static str, lower_case: &'static str) -> CimHeader {
        CimHeader {
            spelling,
            name: HeaderName::from_static(lower_case),
        }
    }
}

const CIM_OPERATION: CimHeader = CimHeader::new("CIMOperation", "cimoperation");
const CIM_METHOD: CimHeader = CimHeader::new("CIMMethod", "cimmethod");
const CIM_OBJECT: CimHeader = CimHeader::new("CIMObject", "cimobject");
const CIM_BATCH: CimHeader = CimHeader::new("CIMBatch", "cimbatch");
const CIM_PROTOCOL_VERSION: CimHeader = CimHeader::new("CIMProtocolVersion", "cimprotocolversion");
const CIM_ERROR: CimHeader = CimHeader::new("CIMError", "cimerror");
const WBEM_SERVER_RESPONSE_TIME: CimHeader =
    CimHeader::new("WBEMServerResponseTime", "wbemserverresponsetime");

fn header<'a>(
    headers: &'a HeaderMap,
    prefix: &str,
    header: &CimHeader,
) -> Result<Option<&'a str>, ProtocolError> {
    let mut values = if prefix.is_empty() {
        headers.get_all(&header.name).iter()
    } else {
        headers
            .get_all(format!("{prefix}{}", header.spelling))
            .iter()
    };
    let Some(value) = values.next() else {
        return Ok(None);
    };
    // Sent twice, a CIM header would be read one way here and maybe another way by a proxy
    // or log in between: the same value twice is tolerated, two values are refused.
    if values.any(|other| other != value) {
        return Err(ProtocolError::HeaderMismatch(format!(
            "header {} is given more than once with different values",
            header.spelling
        )));
    }
    value.to_str().map(Some).map_err(|_| {
        ProtocolError::HeaderMismatch(format!("header {} is not ascii", header.spelling))
    })
}

/// The `ns=NN` header prefix of an M-POST (the digits), from its `Man:` headers.
///
/// `Man` is a comma-separated list of extension declarations, each `"uri" ; ns=NN` (RFC 2774
/// section 4), possibly over several `Man` headers. DSP0200's must be among them, with its
/// own `ns`; any other mandatory extension is one this server does not understand, and RFC
/// 2774 section 5.1 forbids serving the request then (510).
fn extension_namespace(headers: &HeaderMap) -> Result<String, ProtocolError> {
    let mut namespace = None;
    for value in headers.get_all("man") {
        let value = value.to_str().map_err(|_| ProtocolError::NotExtended)?;
        for declaration in value.split(',').map(str::trim) {
            if declaration.is_empty() {
                continue;
            }
            let mut parts = declaration.split(';').map(str::trim);
            let uri = parts.next().unwrap_or_default().trim_matches('"');
            if uri != CIM_MAPPING_URI {
                return Err(ProtocolError::UnknownExtension(uri.to_owned()));
            }
            let ns = parts
                .filter_map(|part| part.split_once('='))
                .find(|(name, _)| name.trim() == "ns")
                .map(|(_, ns)| ns.trim())
                .filter(|ns| !ns.is_empty() && ns.bytes().all(|b| b.is_ascii_digit()))
                .ok_or(ProtocolError::NotExtended)?;
            namespace = Some(ns.to_owned());
        }
    }
    namespace.ok_or(ProtocolError::NotExtended)
}

/// The quality a list header (`Accept`, `Accept-Charset`) gives a value: the highest `q` of
/// the entries that `matches` (1 when an entry has no `q`), `None` when no entry matches.
fn quality(headers: &HeaderMap, name: HeaderName, matches: impl Fn(&str) -> bool) -> Option<f32> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|entry| {
            let mut parts = entry.split(';').map(str::trim);
            let token = parts.next().unwrap_or_default();
            if token.is_empty() || !matches(token) {
                return None;
            }
            // A q this server cannot read counts as 1: only a clear refusal refuses.
            let q = parts
                .filter_map(|part| part.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, q)| q.trim().parse::<f32>().unwrap_or(1.0));
            Some(q)
        })
        .reduce(f32::max)
}

/// DSP0200's content negotiation: a request whose `Accept` rules out XML, whose
/// `Accept-Charset` rules out UTF-8, or that carries `Accept-Range` (which DSP0200 forbids
/// in requests) is answered 406. Entries this server cannot parse are passed over, and an
/// empty header is taken as absent: only a clear refusal is refused.
fn check_acceptable(headers: &HeaderMap) -> Result<(), ProtocolError> {
    let present = |name: &HeaderName| {
        headers
            .get_all(name)
            .iter()
            .any(|value| !value.as_bytes().iter().all(u8::is_ascii_whitespace))
    };
    if present(&http::header::ACCEPT) {
        let xml = quality(headers, http::header::ACCEPT, |range| {
            [
                "application/xml",
                "text/xml",
                "application/*",
                "text/*",
                "*/*",
            ]
            .iter()
            .any(|accepted| range.eq_ignore_ascii_case(accepted))
        });
        if !xml.is_some_and(|q| q > 0.0) {
            return Err(ProtocolError::NotAcceptable(
                "Accept rules out the response's type: it must allow application/xml or text/xml"
                    .into(),
            ));
        }
    }
    if present(&http::header::ACCEPT_CHARSET) {
        let utf8 = quality(headers, http::header::ACCEPT_CHARSET, |charset| {
            ["utf-8", "utf8", "*"]
                .iter()
                .any(|accepted| charset.eq_ignore_ascii_case(accepted))
        });
        if !utf8.is_some_and(|q| q > 0.0) {
            return Err(ProtocolError::NotAcceptable(
                "Accept-Charset rules out the response's charset: it must allow utf-8".into(),
            ));
        }
    }
    if headers.contains_key("accept-range") || headers.contains_key("accept-ranges") {
        return Err(ProtocolError::NotAcceptable(
            "a CIM request must not carry Accept-Range (DSP0200): responses are sent whole".into(),
        ));
    }
    Ok(())
}

fn check_headers<'a>(
    method: &Method,
    version: http::Version,
    headers: &'a HeaderMap,
) -> Result<CimHeaders<'a>, ProtocolError> {
    let prefix = if method == Method::POST {
        String::new()
    } else if method.as_str() == "M-POST" {
        format!("{}-", extension_namespace(headers)?)
    } else {
        return Err(ProtocolError::MethodNotAllowed(method.to_string()));
    };
    check_acceptable(headers)?;
    if let Some(content_type) = headers.get(http::header::CONTENT_TYPE) {
        let content_type = content_type
            .to_str()
            .map_err(|_| ProtocolError::UnsupportedMediaType)?;
        let mut parts = content_type.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        if !media.eq_ignore_ascii_case("application/xml") && !media.eq_ignore_ascii_case("text/xml")
        {
            return Err(ProtocolError::UnsupportedMediaType);
        }
        for part in parts {
            let Some((name, value)) = part.split_once('=') else {
                continue;
            };
            if name.trim_end().eq_ignore_ascii_case("charset") {
                let charset = value.trim_start().trim_matches('"');
                if !charset.eq_ignore_ascii_case("utf-8") && !charset.eq_ignore_ascii_case("utf8") {
                    return Err(ProtocolError::UnsupportedMediaType);
                }
            }
        }
    }
    // The body is read as it comes: a compressed one would only fail later as not
    // well-formed, so any coding but identity is refused up front (RFC 9110 15.5.16).
    let encoded = codings(headers, http::header::CONTENT_ENCODING)
        .any(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("identity"));
    if encoded {
        return Err(ProtocolError::UnsupportedContentEncoding);
    }
    match header(headers, &prefix, &CIM_OPERATION)? {
        Some(value) if value.trim().eq_ignore_ascii_case("MethodCall") => {}
        _ => return Err(ProtocolError::UnsupportedOperation),
    }
    if header(headers, &prefix, &CIM_BATCH)?.is_some() {
        return Err(ProtocolError::MultipleRequestsUnsupported);
    }
    if let Some(version) = header(headers, &prefix, &CIM_PROTOCOL_VERSION)? {
        let version = version.trim();
        if version != "1" && !version.starts_with("1.") {
            return Err(ProtocolError::UnsupportedProtocolVersion(format!(
                "CIMProtocolVersion {version} is not supported; this server speaks 1.x"
            )));
        }
    }
    let method = header(headers, &prefix, &CIM_METHOD)?
        .ok_or_else(|| ProtocolError::HeaderMismatch("CIMMethod is missing".into()))?;
    let object = header(headers, &prefix, &CIM_OBJECT)?
        .ok_or_else(|| ProtocolError::HeaderMismatch("CIMObject is missing".into()))?;
    let decode_header = |name: &str, value: &'a str| {
        // Most clients escape nothing (`root/interop`): borrow those without a decoding pass.
        if !value.contains('%') {
            return Ok(Cow::Borrowed(value));
        }
        percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| ProtocolError::HeaderMismatch(format!("{name} is not escaped utf-8")))
    };
    // Chunks and trailers are HTTP/1.1's: an HTTP/1.0 client that sends TE gets the whole
    // response with its length like any other (RFC 9112 sections 7.1 and 7.4).
    let accepts_trailers = version >= http::Version::HTTP_11
        && headers
            .get_all(http::header::TE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("trailers"));
    let accepts_gzip = headers
        .get_all(http::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            // The weight's name is case-insensitive (RFC 9110 12.4.2): `Q=0` refuses too.
            let refused = parts.any(|p| {
                p.split_once('=')
                    .filter(|(name, _)| name.eq_ignore_ascii_case("q"))
                    .and_then(|(_, q)| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        });
    Ok(CimHeaders {
        method: decode_header("CIMMethod", method)?,
        object: decode_header("CIMObject", object)?,
        accepts_trailers,
        accepts_gzip,
    })
}

/// Answers one request: its head `parts`, and its body, taken from `body` once it is read
/// (left there when the request is refused before that).
async fn serve(
    service: &Arc<Service>,
    peer: Peer,
    parts: &http::request::Parts,
    body: &mut Option<hyper::body::Incoming>,
    measure: &mut Measure,
) -> Result<Response<ResponseBody>, ProtocolError> {
    // RFC 9112 3.2: exactly one Host in an HTTP/1.1 request, whatever it asks for.
    let hosts = parts.headers.get_all(http::header::HOST).iter().count();
    if hosts > 1 || (hosts == 0 && parts.version == http::Version::HTTP_11) {
        return Err(ProtocolError::MissingHost);
    }
    if parts
        .headers
        .get_all(http::header::AUTHORIZATION)
        .iter()
        .count()
        > 1
    {
        return Err(ProtocolError::TwoAuthorizations);
    }
    // hyper takes the body apart when chunked comes last, and reads any coding before it as
    // the body itself.
    let coding = codings(&parts.headers, http::header::TRANSFER_ENCODING)
        .find(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("chunked"));
    if let Some(coding) = coding {
        return Err(ProtocolError::UnsupportedTransferCoding(coding.to_owned()));
    }
    if parts.uri == "*" {
        return Err(ProtocolError::AsteriskTarget);
    }
    if parts.method == Method::GET && parts.uri.path() == "/metrics" {
        service.authenticate(&parts.headers, &peer).await?;
        return Ok(metrics_response(service).await);
    }
    let cim = check_headers(&parts.method, parts.version, &parts.headers)?;
    let principal = service.authenticate(&parts.headers, &peer).await?;
    let limit = service.config.limits.body_bytes_max;
    // Refused on its announced length, before hyper answers `Expect: 100-continue` by
    // asking for a body that would be refused anyway.
    if announced_length(&parts.headers).is_some_and(|length| length > limit as u64) {
        return Err(ProtocolError::BodyTooLarge(limit));
    }
    let body = body.take().ok_or(ProtocolError::BodyUnreadable)?;
    let body = tokio::time::timeout(
        service.config.limits.body_read_timeout,
        http_body_util::Limited::new(body, limit).collect(),
    )
    .await
    .map_err(|_| ProtocolError::BodyTimeout)?
    .map_err(|error| {
        if error.is::<http_body_util::LengthLimitError>() {
            ProtocolError::BodyTooLarge(limit)
        } else {
            ProtocolError::BodyUnreadable
        }
    })?
    .to_bytes();
    measure.request_bytes += body.len() as u64;
    if body.len() > LARGE_REQUEST_BYTES {
        // Decoding megabytes takes a while: off the runtime's workers, so that the other
        // connections are served meanwhile (four 16 MiB requests once held every worker for
        // seconds).
        return crate::serviceguard::blocking(|| {
            dispatch(service, &peer, &principal, &cim, &body, measure)
        });
    }
    dispatch(service, &peer, &principal, &cim, &body, measure)
}

/// Reads and drops the body of a request refused before it was read: whether it was read
/// to its end, so that the connection may stay open. hyper closes a connection whose
/// request body was left unread once the response is sent, and a socket closed with
/// unread data is reset, which may take the response (a 401, say) from a client that has
/// not read it yet (RFC 9112 9.6). So the body is read within the limits any body is read
/// within. Not one too large for them, nor one whose client waits to be asked for it
/// (`Expect: 100-continue`: it is not asked): the response then says that the connection
/// closes.
async fn drained(
    mut body: hyper::body::Incoming,
    headers: &HeaderMap,
    limits: &crate::config::Limits,
) -> bool {
    if http_body::Body::is_end_stream(&body) {
        return true;
    }
    let limit = limits.body_bytes_max as u64;
    if headers.contains_key(http::header::EXPECT)
        || announced_length(headers).is_some_and(|n| n > limit)
    {
        return false;
    }
    let read = async {
        let mut read = 0u64;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return false;
            };
            read += frame.data_ref().map_or(0, |data| data.len() as u64);
            if read > limit {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(limits.body_read_timeout, read)
        .await
        .unwrap_or(false)
}

/// The body's length as its Content-Length announces it.
fn announced_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
}

/// The codings a coding header `name` lists, trimmed, over all its fields (`?` for a field
/// that is not text, which no coding is).
fn codings(headers: &HeaderMap, name: HeaderName) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .into_iter()
        .flat_map(|v| v.to_str().map_or(vec!["?"], |v| v.split(',').collect()))
        .map(str::trim)
}

/// Whether `error`, given once the request's body was being read, leaves the body unread
/// to its end, so that the connection closes after the response.
fn closes(error: &ProtocolError) -> bool {
    matches!(
        error,
        ProtocolError::BodyTooLarge(_) | ProtocolError::BodyTimeout | ProtocolError::BodyUnreadable
    )
}

/// A request body beyond this is decoded and answered off the runtime's workers
/// (`block_in_place`); smaller ones, nearly all, take no thread hand-over.
const LARGE_REQUEST_BYTES: usize = 256 * 1024;

/// `GET /metrics` of an authenticated user: 200 with the metrics, 404 when this agent has
/// none (no cluster), 503 when their source does not answer.
async fn metrics_response(service: &Service) -> Response<ResponseBody> {
    let text = match service.metrics.clone() {
        None => Err((
            StatusCode::NOT_FOUND,
            "this agent serves no cluster: no metrics".to_owned(),
        )),
        Some(metrics) => match tokio::task::spawn_blocking(move || metrics.render()).await {
            Ok(Ok(text)) => Ok(text),
            Ok(Err(reason)) => Err((StatusCode::SERVICE_UNAVAILABLE, reason)),
            Err(_) => Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                "the metrics failed".to_owned(),
            )),
        },
    };
    let (status, body, content_type) = match text {
        Ok(text) => (StatusCode::OK, text, crate::metrics::CONTENT_TYPE),
        Err((status, reason)) => (status, format!("{reason}\n"), "text/plain; charset=utf-8"),
    };
    let mut response = Response::new(ResponseBody::whole(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    response
}

/// Answers a request that passed the header checks and authentication: decodes the body,
/// runs the operation and builds the response.
fn dispatch(
    service: &Service,
    peer: &Peer,
    principal: &Principal,
    cim: &CimHeaders<'_>,
    body: &[u8],
    measure: &mut Measure,
) -> Result<Response<ResponseBody>, ProtocolError> {
    let message = decode(body, &service.config.limits.xml)
        .map_err(|error| ProtocolError::from_decode(&error))?;
    let MessageBody::Request(request) = &message.body else {
        return Err(ProtocolError::NotValid(
            "the message is not a request (SIMPLEREQ)".into(),
        ));
    };
    match request {
        CimRequest::IMethodCall(call) => {
            if !call.name.matches(&cim.method) {
                return Err(ProtocolError::HeaderMismatch(format!(
                    "CIMMethod {} does not name the body's method {}",
                    cim.method, call.name
                )));
            }
            if !cim
                .object
                .trim_matches('/')
                .eq_ignore_ascii_case(call.namespace.trim_matches('/'))
            {
                return Err(ProtocolError::HeaderMismatch(format!(
                    "CIMObject {} does not name the body's namespace {}",
                    cim.object, call.namespace
                )));
            }
            let started = measure.active.then(Instant::now);
            let outcome = service.intrinsic(principal, peer, call);
            if let Some(started) = started {
                measure.kind = Some(crate::statistics::intrinsic_kind(call.name.as_str()));
                measure.provider = started.elapsed();
            }
            let holding = Holding {
                bytes_max: service.config.limits.buffered_response_bytes_max,
                spool_dir: service.config.spool_dir.as_deref(),
                spools: &service.spools,
            };
            Ok(intrinsic_response(
                &message.id,
                call.name.as_str(),
                outcome,
                cim,
                &holding,
                crate::cimom::namespace_spelling(&call.namespace),
            ))
        }
        CimRequest::MethodCall(call) => {
            if !call.name.matches(&cim.method) {
                return Err(ProtocolError::HeaderMismatch(format!(
                    "CIMMethod {} does not name the body's method {}",
                    cim.method, call.name
                )));
            }
            if !methods::object_header_matches(&cim.object, &call.target) {
                return Err(ProtocolError::HeaderMismatch(format!(
                    "CIMObject {} does not name the body's target",
                    cim.object
                )));
            }
            let started = measure.active.then(Instant::now);
            let response = service.extrinsic(principal, peer, call);
            if let Some(started) = started {
                measure.kind = Some(INVOKE_METHOD);
                measure.provider = started.elapsed();
            }
            let message = Message::new(
                message.id.clone(),
                MessageBody::Response(CimResponse::Method(response)),
            );
            let spelling = call
                .target
                .namespace()
                .and_then(crate::cimom::namespace_spelling);
            Ok(buffered(encoded(&message, spelling), cim.accepts_gzip))
        }
    }
}

/// Answers one request in process, as the listener does after authentication: the header
/// checks, the decoding, the operation and the response. For benchmarks: it trusts
/// `principal` and takes `body` whole, where the listener authenticates and reads the body
/// within its limits first.
#[doc(hidden)]
pub fn answer(
    service: &Service,
    peer: &Peer,
    principal: &Principal,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Response<ResponseBody> {
    let result = check_headers(method, http::Version::HTTP_11, headers).and_then(|cim| {
        dispatch(
            service,
            peer,
            principal,
            &cim,
            body,
            &mut Measure::default(),
        )
    });
    match result {
        Ok(response) => response,
        Err(error) => protocol_error_response(&error, &service.config.realm),
    }
}

/// Encodes a whole message, its paths' namespaces written as `spelling` says; a failure (a
/// value XML cannot carry) becomes CIM_ERR_FAILED.
fn encoded(message: &Message, spelling: Option<NamespaceSpelling>) -> Vec<u8> {
    let result = match spelling {
        Some(spelling) => encode_spelled(message, spelling),
        None => encode(message),
    };
    result.unwrap_or_else(|error| {
        tracing::error!(%error, "response could not be encoded");
        let failed = CimError::new(1, "the response could not be encoded");
        let body = match &message.body {
            MessageBody::Response(CimResponse::Method(response)) => {
                MessageBody::Response(CimResponse::Method(cim_schema::xml::MethodResponse {
                    name: response.name.clone(),
                    result: Err(failed),
                }))
            }
            MessageBody::Response(CimResponse::IMethod(response)) => {
                MessageBody::Response(CimResponse::IMethod(IMethodResponse {
                    name: response.name.clone(),
                    result: Err(failed),
                }))
            }
            other => other.clone(),
        };
        // An ERROR element always encodes: it holds a code and a plain description.
        encode(&Message::new(message.id.clone(), body)).unwrap_or_default()
    })
}

fn error_message(id: &str, method: &str, error: &OperationError) -> Vec<u8> {
    encoded(
        &Message::new(
            id,
            MessageBody::Response(CimResponse::IMethod(IMethodResponse {
                name: method.into(),
                result: Err(error.to_cim_error()),
            })),
        ),
        None,
    )
}

/// How a response is held for a client that does not take chunks with trailers.
struct Holding<'a> {
    /// The largest response held.
    bytes_max: usize,
    /// Where responses beyond [`STREAM_THRESHOLD_BYTES`] are spooled (`None`: `TMPDIR`).
    spool_dir: Option<&'a std::path::Path>,
    /// One permit per spool file in use, held until its response is sent or dropped.
    spools: &'a Arc<tokio::sync::Semaphore>,
}

/// The response of an intrinsic operation.
fn intrinsic_response(
    id: &str,
    method: &str,
    outcome: Result<Outcome, OperationError>,
    cim: &CimHeaders<'_>,
    holding: &Holding<'_>,
    spelling: Option<NamespaceSpelling>,
) -> Response<ResponseBody> {
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => return buffered(error_message(id, method, &error), cim.accepts_gzip),
    };
    let mut items = match outcome {
        Outcome::Void => {
            let message = Message::new(
                id,
                MessageBody::Response(CimResponse::IMethod(IMethodResponse {
                    name: method.into(),
                    result: Ok(cim_schema::xml::IMethodReturn {
                        return_value: None,
                        params: Vec::new(),
                    }),
                })),
            );
            return buffered(encoded(&message, None), cim.accepts_gzip);
        }
        Outcome::Items(items) => {
            Source::Items(Box::new(items.into_iter().map(|data| Ok(Item::Data(data)))))
        }
        Outcome::Stream(items) => Source::Items(items),
        Outcome::Pull(batch) => Source::Pull(batch),
    };
    let mut writer = begin_imethod_response(id, method);
    if let Some(spelling) = spelling {
        writer.spell_namespace(spelling);
    }
    // DSP0200 chunks only for clients that take trailers; the others get the whole response
    // with its length, so a large one goes to a spool file rather than memory.
    let mut spool: Option<Spool> = None;

    // Write until the end, an error, or (when the client takes trailers) the stream threshold.
    loop {
        if writer.buffered_len() >= STREAM_THRESHOLD_BYTES {
            if cim.accepts_trailers {
                let body = StreamBody::new(writer, items, cim.accepts_gzip);
                return streamed(body, cim.accepts_gzip);
            }
            let file = match spool.as_mut() {
                Some(file) => file,
                None => {
                    let Ok(permit) = holding.spools.clone().try_acquire_owned() else {
                        let error = OperationError::ServerLimitsExceeded(
                            "too many large responses are being sent to clients that take no \
                             chunks: retry later, use the pull operations, or send TE: trailers"
                                .into(),
                        );
                        return buffered(error_message(id, method, &error), cim.accepts_gzip);
                    };
                    match Spool::create(holding.spool_dir, cim.accepts_gzip, permit) {
                        Ok(created) => spool.insert(created),
                        Err(error) => return spool_failed(id, method, &error, cim),
                    }
                }
            };
            if let Err(error) = file.write(&writer.take_chunk()) {
                return spool_failed(id, method, &error, cim);
            }
        }
        let held = writer.buffered_len() + spool.as_ref().map_or(0, |s| s.plain_len);
        if held > holding.bytes_max {
            let error = OperationError::ServerLimitsExceeded(format!(
                "the response is over {} bytes: use the pull operations, \
                 or send TE: trailers to receive it in chunks",
                holding.bytes_max
            ));
            return buffered(error_message(id, method, &error), cim.accepts_gzip);
        }
        match items.next() {
            None => break,
            Some(Ok(item)) => {
                if let Err(error) = write_item(&mut writer, &item) {
                    tracing::error!(%error, "response item could not be encoded");
                    let error = OperationError::Failed("a result could not be encoded".into());
                    return buffered(error_message(id, method, &error), cim.accepts_gzip);
                }
            }
            Some(Err(error)) => {
                return buffered(error_message(id, method, &error), cim.accepts_gzip);
            }
        }
    }
    let last = match writer.finish(&items.finish()) {
        Ok(last) => last,
        Err(error) => {
            tracing::error!(%error, "response parameters could not be encoded");
            let error = OperationError::Failed("a result could not be encoded".into());
            return buffered(error_message(id, method, &error), cim.accepts_gzip);
        }
    };
    match spool {
        None => buffered(last, cim.accepts_gzip),
        Some(mut spool) => match spool.write(&last).and_then(|()| spool.finish()) {
            Ok(body) => spooled(body, cim.accepts_gzip),
            Err(error) => spool_failed(id, method, &error, cim),
        },
    }
}

/// Appends one response item.
fn write_item(
    writer: &mut IMethodResponseWriter,
    item: &Item,
) -> Result<(), cim_schema::xml::EncodeError> {
    match item {
        Item::Data(data) => writer.write_data(data),
        Item::NamedInstance(path, instance) => writer.write_named_instance(path, instance),
        Item::InstanceWithPath(path, instance) => writer.write_instance_with_path(path, instance),
    }
}

fn spool_failed(
    id: &str,
    method: &str,
    error: &std::io::Error,
    cim: &CimHeaders<'_>,
) -> Response<ResponseBody> {
    tracing::error!(%error, "cannot spool a response for a client without TE: trailers");
    let error = OperationError::Failed(format!(
        "the response could not be spooled ({error}): use the pull operations, \
         or send TE: trailers to receive it in chunks"
    ));
    buffered(error_message(id, method, &error), cim.accepts_gzip)
}

/// A response being written to an unlinked spool file, gzipped when the client takes that.
struct Spool {
    writer: SpoolWriter,
    /// Bytes of the response before compression.
    plain_len: usize,
    permit: tokio::sync::OwnedSemaphorePermit,
}

enum SpoolWriter {
    Plain(std::io::BufWriter<std::fs::File>),
    Gzip(GzEncoder<std::io::BufWriter<std::fs::File>>),
}

impl Spool {
    /// A spool file in `dir` (`None`: `TMPDIR`), unlinked at once so that nothing is left
    /// behind whatever happens to the request.
    fn create(
        dir: Option<&std::path::Path>,
        gzip: bool,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> std::io::Result<Spool> {
        let file = match dir {
            Some(dir) => tempfile::tempfile_in(dir)?,
            None => tempfile::tempfile()?,
        };
        let file = std::io::BufWriter::with_capacity(CHUNK_BYTES, file);
        let writer = if gzip {
            SpoolWriter::Gzip(GzEncoder::new(file, flate2::Compression::fast()))
        } else {
            SpoolWriter::Plain(file)
        };
        Ok(Spool {
            writer,
            plain_len: 0,
            permit,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.plain_len += bytes.len();
        match &mut self.writer {
            SpoolWriter::Plain(file) => file.write_all(bytes),
            SpoolWriter::Gzip(encoder) => encoder.write_all(bytes),
        }
    }

    /// The whole response, to be read back from the start.
    fn finish(self) -> std::io::Result<SpooledBody> {
        use std::io::Seek;
        let buffered = match self.writer {
            SpoolWriter::Plain(file) => file,
            SpoolWriter::Gzip(encoder) => encoder.finish()?,
        };
        let mut file = buffered.into_inner().map_err(|e| e.into_error())?;
        let remaining = file.stream_position()?;
        file.rewind()?;
        Ok(SpooledBody {
            file,
            remaining,
            _permit: self.permit,
        })
    }
}

/// A response read back from its spool file in [`CHUNK_BYTES`] pieces.
///
/// Spooling and reading back are plain blocking file IO on the runtime thread, like the
/// operation that produces the response (operations run synchronously on the thread that
/// serves the connection): the file was just written and is normally read back from the page
/// cache. A slow spool disk therefore slows the requests that share the thread; put
/// `spool_dir` on a local disk, not on tmpfs (where it would be memory again).
pub struct SpooledBody {
    file: std::fs::File,
    remaining: u64,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl http_body::Body for SpooledBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        use std::io::Read;
        let this = &mut *self;
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(this.remaining).map_or(CHUNK_BYTES, |r| r.min(CHUNK_BYTES));
        let mut chunk = vec![0; want];
        match this.file.read_exact(&mut chunk) {
            Ok(()) => {
                this.remaining -= want as u64;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
            }
            Err(error) => {
                // The announced length cannot be met: ending short makes hyper close the
                // connection, so the client sees a truncated response, never a wrong one.
                tracing::error!(%error, "cannot read a spooled response back");
                this.remaining = 0;
                Poll::Ready(None)
            }
        }
    }
}

fn response_builder() -> http::response::Builder {
    // Ready header names and values: a name given as a string is parsed and copied into a new
    // allocation on every response.
    Response::builder()
        .status(StatusCode::OK)
        .header(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml; charset=\"utf-8\""),
        )
        .header(
            CIM_OPERATION.name,
            HeaderValue::from_static("MethodResponse"),
        )
}

/// A whole response with `Content-Length`, gzipped when that pays.
fn buffered(mut body: Vec<u8>, gzip: bool) -> Response<ResponseBody> {
    // The buffer lives until the response is written: give back what the encoder reserved
    // beyond the content (freeing large, mostly empty buffers costs more than the copy).
    if body.capacity() > body.len() + body.len() / 2 + 4096 {
        body.shrink_to_fit();
    }
    let mut builder = response_builder();
    let body = if gzip && body.len() >= GZIP_THRESHOLD_BYTES {
        let mut encoder = GzEncoder::new(
            Vec::with_capacity(body.len() / 4),
            flate2::Compression::fast(),
        );
        // Writing into a Vec cannot fail.
        let compressed = encoder.write_all(&body).and_then(|()| encoder.finish());
        match compressed {
            Ok(compressed) => {
                builder = builder
                    .header(http::header::CONTENT_ENCODING, "gzip")
                    .header(http::header::VARY, "Accept-Encoding");
                compressed
            }
            Err(_) => body,
        }
    } else {
        body
    };
    builder
        .body(ResponseBody::whole(body))
        .unwrap_or_else(|_| internal_error())
}

/// A spooled response with `Content-Length`.
fn spooled(body: SpooledBody, gzip: bool) -> Response<ResponseBody> {
    let mut builder =
        response_builder().header(http::header::CONTENT_LENGTH, body.remaining.to_string());
    if gzip {
        builder = builder
            .header(http::header::CONTENT_ENCODING, "gzip")
            .header(http::header::VARY, "Accept-Encoding");
    }
    builder
        .body(ResponseBody::Spooled(body))
        .unwrap_or_else(|_| internal_error())
}

fn streamed(body: StreamBody, gzip: bool) -> Response<ResponseBody> {
    let mut builder = response_builder().header(
        http::header::TRAILER,
        "CIMStatusCode, CIMStatusCodeDescription",
    );
    if gzip {
        builder = builder
            .header(http::header::CONTENT_ENCODING, "gzip")
            .header(http::header::VARY, "Accept-Encoding");
    }
    builder
        .body(ResponseBody::Streamed(Box::new(body)))
        .unwrap_or_else(|_| internal_error())
}

/// 500 for a response that could not be built (the headers above are all valid constants).
fn internal_error() -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::whole(Bytes::new()));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

fn protocol_error_response(error: &ProtocolError, realm: &str) -> Response<ResponseBody> {
    let (status, cim_error) = error.status();
    let mut response = Response::new(ResponseBody::whole(Bytes::new()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(value) = cim_error {
        headers.insert(
            HeaderName::from_static("cimerror"),
            HeaderValue::from_static(value),
        );
    }
    let detail = error.to_string();
    let escaped: String = percent_encoding::utf8_percent_encode(
        &crate::error::clip(&detail),
        percent_encoding::NON_ALPHANUMERIC,
    )
    .collect();
    if let Ok(value) = HeaderValue::from_str(&escaped) {
        headers.insert(HeaderName::from_static("pgerrordetail"), value);
    }
    match error {
        ProtocolError::MethodNotAllowed(_) => {
            headers.insert(
                http::header::ALLOW,
                HeaderValue::from_static("POST, M-POST"),
            );
        }
        ProtocolError::Unauthorized => {
            if let Ok(value) = HeaderValue::from_str(&crate::auth::www_authenticate(realm)) {
                headers.insert(http::header::WWW_AUTHENTICATE, value);
            }
        }
        ProtocolError::Throttled(seconds) => {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(*seconds));
        }
        _ => {}
    }
    response
}

/// A chunked response body encoded while it is sent; an error after the first chunk ends it
/// with the `CIMStatusCode` trailer (DSP0200).
pub struct StreamBody {
    writer: Option<IMethodResponseWriter>,
    items: Option<Source>,
    gzip: Option<GzEncoder<Vec<u8>>>,
    trailers: Option<HeaderMap>,
    done: bool,
    /// The M-POST header prefix (`73-`) the trailers take, as the response's CIM headers do.
    trailer_prefix: Option<String>,
}

impl StreamBody {
    fn new(writer: IMethodResponseWriter, items: Source, gzip: bool) -> StreamBody {
        StreamBody {
            writer: Some(writer),
            items: Some(items),
            gzip: gzip.then(|| GzEncoder::new(Vec::new(), flate2::Compression::fast())),
            trailers: None,
            done: false,
            trailer_prefix: None,
        }
    }

    /// The next chunk: items encoded until [`CHUNK_BYTES`], or the end of the response.
    fn next_chunk(&mut self) -> Option<Vec<u8>> {
        let writer = self.writer.as_mut()?;
        while writer.buffered_len() < CHUNK_BYTES {
            match self.items.as_mut().and_then(Source::next) {
                Some(Ok(item)) => {
                    if let Err(error) = write_item(writer, &item) {
                        tracing::error!(%error, "streamed item could not be encoded");
                        self.fail(&OperationError::Failed(
                            "a result could not be encoded".into(),
                        ));
                        return self.writer.take().map(|mut w| w.take_chunk());
                    }
                }
                Some(Err(error)) => {
                    self.fail(&error);
                    return self.writer.take().map(|mut w| w.take_chunk());
                }
                None => {
                    let writer = self.writer.take()?;
                    let params = self.items.take().map(Source::finish).unwrap_or_default();
                    return match writer.finish(&params) {
                        Ok(rest) => Some(rest),
                        Err(error) => {
                            tracing::error!(%error, "streamed parameters could not be encoded");
                            self.fail(&OperationError::Failed(
                                "a result could not be encoded".into(),
                            ));
                            None
                        }
                    };
                }
            }
        }
        Some(writer.take_chunk())
    }

    fn fail(&mut self, error: &OperationError) {
        let prefix = self.trailer_prefix.as_deref().unwrap_or_default();
        let name = |name: &str| HeaderName::from_bytes(format!("{prefix}{name}").as_bytes());
        let mut trailers = HeaderMap::new();
        if let Ok(code) = name("CIMStatusCode") {
            trailers.insert(code, HeaderValue::from(error.code()));
        }
        let description: String = percent_encoding::utf8_percent_encode(
            &error.to_string(),
            percent_encoding::NON_ALPHANUMERIC,
        )
        .collect();
        if let (Ok(name), Ok(value)) = (
            name("CIMStatusCodeDescription"),
            HeaderValue::from_str(&description),
        ) {
            trailers.insert(name, value);
        }
        self.trailers = Some(trailers);
    }

    fn compress(&mut self, chunk: Vec<u8>, last: bool) -> Vec<u8> {
        let Some(encoder) = self.gzip.as_mut() else {
            return chunk;
        };
        // Writes into a Vec cannot fail.
        let _ = encoder.write_all(&chunk);
        if last {
            return self
                .gzip
                .take()
                .and_then(|e| e.finish().ok())
                .unwrap_or_default();
        }
        let _ = encoder.flush();
        std::mem::take(encoder.get_mut())
    }
}

impl http_body::Body for StreamBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if this.writer.is_some() {
            let chunk = this.next_chunk().unwrap_or_default();
            let last = this.writer.is_none();
            let chunk = this.compress(chunk, last);
            if !chunk.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))));
            }
        }
        if let Some(rest) = this.gzip.is_some().then(|| this.compress(Vec::new(), true)) {
            if !rest.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(rest)))));
            }
        }
        this.done = true;
        match this.trailers.take() {
            Some(trailers) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            None => Poll::Ready(None),
        }
    }
}

/// Where the items of a response come from: a sequence, or a pull operation's batch whose
/// output parameters are known only once its items are written.
enum Source {
    /// Items with no output parameters.
    Items(Items),
    /// An Open or Pull batch.
    Pull(Box<PullBatch>),
}

impl Source {
    fn next(&mut self) -> Option<Result<Item, OperationError>> {
        match self {
            Source::Items(items) => items.next(),
            Source::Pull(batch) => batch.next(),
        }
    }

    /// The output parameters, once every item is written.
    fn finish(self) -> Vec<cim_schema::xml::ParamValue> {
        match self {
            Source::Items(_) => Vec::new(),
            Source::Pull(batch) => batch.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cim_schema::model::{Instance, InstancePath, Property, Value};

    fn instance(index: usize) -> Result<Item, OperationError> {
        let path = InstancePath::new("Test_Item").with_key("Id", format!("item-{index}"));
        let instance = Instance::new("Test_Item").with(Property::new(
            "Payload",
            cim_schema::model::CimType::String,
            Some(Value::String("x".repeat(1000))),
        ));
        Ok(Item::NamedInstance(path, Arc::new(instance)))
    }

    fn headers(trailers: bool) -> CimHeaders<'static> {
        CimHeaders {
            method: "EnumerateInstances".into(),
            object: "root/cimv2".into(),
            accepts_trailers: trailers,
            accepts_gzip: false,
        }
    }

    fn spools(permits: usize) -> Arc<tokio::sync::Semaphore> {
        Arc::new(tokio::sync::Semaphore::new(permits))
    }

    fn holding<'a>(
        bytes_max: usize,
        spool_dir: Option<&'a std::path::Path>,
        spools: &'a Arc<tokio::sync::Semaphore>,
    ) -> Holding<'a> {
        Holding {
            bytes_max,
            spool_dir,
            spools,
        }
    }

    /// `count` items, then `error` if there is one.
    fn items_then(count: usize, error: Option<OperationError>) -> Result<Outcome, OperationError> {
        let items = (0..count).map(instance).chain(error.map(Err));
        Ok(Outcome::Stream(Box::new(items)))
    }

    /// The EnumerateInstances response `id` of `outcome`.
    fn enumerate(
        id: &str,
        outcome: Result<Outcome, OperationError>,
        cim: &CimHeaders<'_>,
        holding: &Holding<'_>,
    ) -> Response<ResponseBody> {
        intrinsic_response(id, "EnumerateInstances", outcome, cim, holding, None)
    }

    fn error_code(response: Response<ResponseBody>) -> Option<String> {
        let (body, _) = frames(response);
        let text = String::from_utf8(body).unwrap();
        text.split("<ERROR CODE=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_owned)
    }

    /// The frames of a response body: its data and its trailers.
    fn frames(response: Response<ResponseBody>) -> (Vec<u8>, Option<HeaderMap>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let collected = runtime.block_on(response.into_body().collect()).unwrap();
        let trailers = collected.trailers().cloned();
        (collected.to_bytes().to_vec(), trailers)
    }

    #[test]
    fn an_error_after_streaming_began_ends_the_stream_with_the_status_trailer() {
        let outcome = items_then(
            1000,
            Some(OperationError::ServerLimitsExceeded(
                "the operation ran too long".into(),
            )),
        );
        let response = enumerate(
            "7",
            outcome,
            &headers(true),
            &holding(usize::MAX, None, &spools(8)),
        );
        assert_eq!(
            response.headers().get(http::header::TRAILER).unwrap(),
            "CIMStatusCode, CIMStatusCodeDescription"
        );
        let (body, trailers) = frames(response);
        let trailers = trailers.expect("a trailer");
        assert_eq!(trailers.get("CIMStatusCode").unwrap(), "27");
        let description = trailers
            .get("CIMStatusCodeDescription")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(description.contains("ran%20too%20long"), "{description}");
        // The body went out in part; it is not a complete message.
        assert!(body.len() > STREAM_THRESHOLD_BYTES);
        assert!(decode(&body, &cim_schema::xml::Limits::DEFAULT).is_err());
    }

    /// A streamed answer to an M-POST (prefix 73) that fails after 1,000 instances.
    fn m_post_stream_failing() -> Response<ResponseBody> {
        let outcome = items_then(
            1000,
            Some(OperationError::ServerLimitsExceeded("too long".into())),
        );
        let mut response = enumerate(
            "7",
            outcome,
            &headers(true),
            &holding(usize::MAX, None, &spools(8)),
        );
        answer_within_extension(&mut response, "73");
        response
    }

    #[test]
    fn a_counted_stream_keeps_its_prefixed_trailers_and_counts_every_byte() {
        let response = m_post_stream_failing();
        let statistics = Arc::new(crate::statistics::Statistics::new());
        statistics.set_gathering(true);
        let kind = crate::statistics::intrinsic_kind("EnumerateInstances");
        let tally = Tally::new(
            statistics.clone(),
            statistics.period().unwrap(),
            kind,
            Instant::now(),
            std::time::Duration::ZERO,
            500,
        );
        let head = response_head_bytes(&response);
        let response = counted(response, tally);
        assert_eq!(
            statistics.figures(kind).operations,
            0,
            "counted before it was sent"
        );
        let (body, trailers) = frames(response);
        let trailers = trailers.expect("a trailer");
        assert_eq!(trailers.get("73-CIMStatusCode").unwrap(), "27");
        assert!(body.len() > STREAM_THRESHOLD_BYTES);
        let figures = statistics.figures(kind);
        assert_eq!(figures.operations, 1);
        assert_eq!(figures.request_bytes, 500);
        assert_eq!(figures.response_bytes, head + body.len() as u64);
    }

    #[test]
    fn the_trailers_of_an_m_post_stream_carry_its_prefix() {
        let response = m_post_stream_failing();
        assert_eq!(
            response.headers().get(http::header::TRAILER).unwrap(),
            "73-CIMStatusCode, 73-CIMStatusCodeDescription"
        );
        let (_, trailers) = frames(response);
        let trailers = trailers.expect("a trailer");
        assert_eq!(trailers.get("73-CIMStatusCode").unwrap(), "27");
        assert!(trailers.get("73-CIMStatusCodeDescription").is_some());
        assert!(trailers.get("CIMStatusCode").is_none());
    }

    #[test]
    fn a_successful_stream_ends_without_a_status_and_decodes() {
        let outcome = items_then(1000, None);
        let response = enumerate(
            "8",
            outcome,
            &headers(true),
            &holding(usize::MAX, None, &spools(8)),
        );
        let (body, trailers) = frames(response);
        assert!(trailers.is_none());
        let message = decode(&body, &cim_schema::xml::Limits::DEFAULT).unwrap();
        assert_eq!(message.id, "8");
    }

    #[test]
    fn an_error_before_anything_was_sent_is_an_error_response() {
        let outcome = items_then(10, Some(OperationError::NotFound("gone".into())));
        let response = enumerate(
            "9",
            outcome,
            &headers(true),
            &holding(usize::MAX, None, &spools(8)),
        );
        let (body, trailers) = frames(response);
        assert!(trailers.is_none());
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("<ERROR CODE=\"6\""), "{text}");
    }

    #[test]
    fn a_response_too_large_to_hold_for_a_client_without_trailers_is_refused() {
        let outcome = items_then(1000, None);
        let response = enumerate(
            "10",
            outcome,
            &headers(false),
            &holding(100_000, None, &spools(8)),
        );
        let (body, _) = frames(response);
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("<ERROR CODE=\"27\""), "{text}");
    }

    #[test]
    fn a_large_response_for_a_client_without_trailers_is_spooled_and_sent_whole() {
        let spool_dir = tempfile::tempdir().unwrap();
        let permits = spools(1);
        let holding = holding(usize::MAX, Some(spool_dir.path()), &permits);
        for gzip in [false, true] {
            let cim = CimHeaders {
                accepts_gzip: gzip,
                ..headers(false)
            };
            let outcome = items_then(1000, None);
            let response = enumerate("11", outcome, &cim, &holding);
            assert!(matches!(response.body(), ResponseBody::Spooled(_)));
            assert!(response.headers().get(http::header::TRAILER).is_none());
            let length: usize = response.headers()[http::header::CONTENT_LENGTH]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(
                response
                    .headers()
                    .get(http::header::CONTENT_ENCODING)
                    .is_some(),
                gzip
            );
            let (body, trailers) = frames(response);
            assert!(trailers.is_none());
            assert_eq!(body.len(), length);
            let body = if gzip {
                let mut plain = Vec::new();
                std::io::Read::read_to_end(
                    &mut flate2::read::GzDecoder::new(&body[..]),
                    &mut plain,
                )
                .unwrap();
                plain
            } else {
                body
            };
            assert!(body.len() > STREAM_THRESHOLD_BYTES);
            let message = decode(&body, &cim_schema::xml::Limits::DEFAULT).unwrap();
            assert_eq!(message.id, "11");
            let MessageBody::Response(CimResponse::IMethod(response)) = message.body else {
                panic!("not an imethod response");
            };
            let items = response.result.unwrap().return_value.unwrap();
            assert_eq!(items.len(), 1000);
        }
        // The spool files were unlinked at creation: nothing is left behind.
        assert_eq!(std::fs::read_dir(spool_dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_error_while_spooling_is_an_error_response() {
        let outcome = items_then(1000, Some(OperationError::Failed("disk on fire".into())));
        let response = enumerate(
            "12",
            outcome,
            &headers(false),
            &holding(usize::MAX, None, &spools(8)),
        );
        assert!(matches!(response.body(), ResponseBody::Whole(_)));
        let (body, _) = frames(response);
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.contains("<ERROR CODE=\"1\"") && text.contains("disk on fire"),
            "{text}"
        );
    }

    #[test]
    fn the_held_bound_counts_the_spooled_bytes_before_compression() {
        // 1,000 items of over 1,000 bytes each: over 1 MB, well past the stream threshold.
        for gzip in [false, true] {
            let cim = CimHeaders {
                accepts_gzip: gzip,
                ..headers(false)
            };
            let permits = spools(8);
            let response = enumerate(
                "13",
                items_then(1000, None),
                &cim,
                &holding(1_000_000, None, &permits),
            );
            let compressed = response
                .headers()
                .contains_key(http::header::CONTENT_ENCODING);
            let body = if compressed {
                let (compressed, _) = frames(response);
                let mut plain = Vec::new();
                std::io::Read::read_to_end(
                    &mut flate2::read::GzDecoder::new(&compressed[..]),
                    &mut plain,
                )
                .unwrap();
                plain
            } else {
                frames(response).0
            };
            let text = String::from_utf8(body).unwrap();
            assert!(text.contains("<ERROR CODE=\"27\""), "gzip {gzip}: {text}");
            assert_eq!(permits.available_permits(), 8, "the spool was given back");
        }
    }

    #[test]
    fn a_spool_directory_that_cannot_be_used_is_an_error_response() {
        let missing = tempfile::tempdir().unwrap().path().join("gone");
        let permits = spools(8);
        let response = enumerate(
            "14",
            items_then(1000, None),
            &headers(false),
            &holding(usize::MAX, Some(&missing), &permits),
        );
        let (body, _) = frames(response);
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.contains("<ERROR CODE=\"1\"") && text.contains("could not be spooled"),
            "{text}"
        );
    }

    #[test]
    fn spool_files_in_use_are_bounded_and_given_back_with_the_response() {
        let permits = spools(1);
        let first = enumerate(
            "15",
            items_then(1000, None),
            &headers(false),
            &holding(usize::MAX, None, &permits),
        );
        assert!(matches!(first.body(), ResponseBody::Spooled(_)));
        // The first response is not sent yet: its spool file is still in use.
        let second = enumerate(
            "16",
            items_then(1000, None),
            &headers(false),
            &holding(usize::MAX, None, &permits),
        );
        assert_eq!(error_code(second).as_deref(), Some("27"));
        // A small response needs no spool.
        let small = enumerate(
            "17",
            items_then(3, None),
            &headers(false),
            &holding(usize::MAX, None, &permits),
        );
        assert_eq!(error_code(small), None);
        drop(first);
        let third = enumerate(
            "18",
            items_then(1000, None),
            &headers(false),
            &holding(usize::MAX, None, &permits),
        );
        assert!(matches!(third.body(), ResponseBody::Spooled(_)));
        let (body, _) = frames(third);
        assert!(decode(&body, &cim_schema::xml::Limits::DEFAULT).is_ok());
        assert_eq!(permits.available_permits(), 1);
    }

    #[test]
    fn a_spool_file_shorter_than_announced_ends_the_body_early() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&[b'x'; 1000]).unwrap();
        std::io::Seek::rewind(&mut file).unwrap();
        let permit = spools(1).try_acquire_owned().unwrap();
        let body = ResponseBody::Spooled(SpooledBody {
            file,
            remaining: 5000,
            _permit: permit,
        });
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(5000));
        let response = Response::new(body);
        let (bytes, _) = frames(response);
        // Fewer bytes than announced: hyper then closes the connection, so the client sees a
        // truncated response rather than a wrong one.
        assert!(bytes.len() < 5000);
    }

    #[test]
    fn content_types_are_checked_without_regard_to_case() {
        let accepted = [
            "application/xml; charset=\"utf-8\"",
            "Application/XML; Charset = \"UTF-8\"",
            "text/xml;charset=utf8",
            "application/xml",
        ];
        let refused = [
            "application/json",
            "application/xml; charset=iso-8859-1",
            "text/plain; charset=utf-8",
        ];
        for (content_type, ok) in accepted
            .iter()
            .map(|c| (c, true))
            .chain(refused.iter().map(|c| (c, false)))
        {
            let mut headers = HeaderMap::new();
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_str(content_type).unwrap(),
            );
            headers.insert("CIMOperation", HeaderValue::from_static("MethodCall"));
            headers.insert("CIMMethod", HeaderValue::from_static("EnumerateInstances"));
            headers.insert("CIMObject", HeaderValue::from_static("root%2Fcimv2"));
            let result = check_headers(&Method::POST, http::Version::HTTP_11, &headers);
            match ok {
                true => assert!(result.is_ok(), "{content_type}: {:?}", result.err()),
                false => assert_eq!(
                    result.err(),
                    Some(ProtocolError::UnsupportedMediaType),
                    "{content_type}"
                ),
            }
        }
    }

    /// The headers of a good POST of EnumerateInstances, plus `extra`.
    fn cim_request(extra: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("CIMOperation", HeaderValue::from_static("MethodCall"));
        headers.insert("CIMMethod", HeaderValue::from_static("EnumerateInstances"));
        headers.insert("CIMObject", HeaderValue::from_static("root/cimv2"));
        for (name, value) in extra {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn man_is_a_list_of_declarations_and_any_unknown_one_is_refused() {
        let ns = |man: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in man {
                headers.append("Man", HeaderValue::from_str(value).unwrap());
            }
            extension_namespace(&headers)
        };
        let cim = "http://www.dmtf.org/cim/mapping/http/v1.0";
        assert_eq!(ns(&[&format!("{cim} ; ns=73")]), Ok("73".into()));
        assert_eq!(ns(&[&format!("\"{cim}\";ns = 07")]), Ok("07".into()));
        // Each declaration has its own ns: the DMTF one counts, wherever it stands.
        let other = "http://example.invalid/x";
        assert_eq!(
            ns(&[&format!("{cim}; ns=73, {other}; ns=74")]),
            Err(ProtocolError::UnknownExtension(other.into()))
        );
        assert_eq!(
            ns(&[&format!("{other}; ns=74, {cim}; ns=73")]),
            Err(ProtocolError::UnknownExtension(other.into()))
        );
        assert_eq!(
            ns(&[&format!("{cim}; ns=73"), &format!("{other}; ns=74")]),
            Err(ProtocolError::UnknownExtension(other.into()))
        );
        assert_eq!(ns(&[]), Err(ProtocolError::NotExtended));
        assert_eq!(ns(&[cim]), Err(ProtocolError::NotExtended));
        assert_eq!(
            ns(&[&format!("{cim}; ns=ab")]),
            Err(ProtocolError::NotExtended)
        );
        let status = ProtocolError::UnknownExtension(other.into()).status();
        assert_eq!(status, (StatusCode::NOT_EXTENDED, None));
    }

    #[test]
    fn the_response_to_an_m_post_is_marked_and_prefixed() {
        let mut ok = response_builder()
            .body(ResponseBody::whole(Bytes::new()))
            .unwrap();
        answer_within_extension(&mut ok, "73");
        let headers = ok.headers();
        assert_eq!(headers["73-CIMOperation"], "MethodResponse");
        assert!(headers.get("CIMOperation").is_none());
        assert_eq!(headers["Ext"], "");
        assert_eq!(headers["Cache-Control"], "no-cache");
        assert_eq!(
            headers["Man"],
            "http://www.dmtf.org/cim/mapping/http/v1.0; ns=73"
        );
        let mut refused = protocol_error_response(&ProtocolError::UnsupportedOperation, "r");
        answer_within_extension(&mut refused, "12");
        assert_eq!(refused.headers()["12-CIMError"], "unsupported-operation");
        assert!(refused.headers().get("CIMError").is_none());
    }

    #[test]
    fn accept_headers_that_rule_out_the_response_are_406() {
        let check = |extra: &[(&'static str, &'static str)]| {
            check_headers(&Method::POST, http::Version::HTTP_11, &cim_request(extra)).map(|_| ())
        };
        for fine in [
            &[][..],
            &[("Accept", "text/xml")],
            &[("Accept", "application/xml; charset=utf-8")],
            &[("Accept", "*/*")],
            &[("Accept", "text/html, application/*;q=0.2")],
            &[("Accept", "")],
            &[("Accept", "text/html"), ("Accept", "text/xml")],
            &[("Accept-Charset", "UTF-8")],
            &[("Accept-Charset", "iso-8859-1, *;q=0.1")],
            &[("Accept", "text/xml;q=high")],
        ] {
            assert_eq!(check(fine), Ok(()), "{fine:?}");
        }
        for refused in [
            &[("Accept", "application/json")][..],
            &[("Accept", "text/xml;q=0")],
            &[("Accept", "text/xml;q=0, text/html")],
            &[("Accept-Charset", "iso-8859-1")],
            &[("Accept-Charset", "utf-8;q=0")],
            &[("Accept-Range", "bytes=0-10")],
        ] {
            let error = check(refused).unwrap_err();
            assert!(
                matches!(error, ProtocolError::NotAcceptable(_)),
                "{refused:?}: {error:?}"
            );
            assert_eq!(
                error.status(),
                (StatusCode::NOT_ACCEPTABLE, Some("header-mismatch"))
            );
        }
    }

    #[test]
    fn a_cim_header_given_twice_must_agree() {
        let check = |extra: &[(&'static str, &'static str)]| {
            check_headers(&Method::POST, http::Version::HTTP_11, &cim_request(extra)).map(|_| ())
        };
        assert_eq!(check(&[("CIMObject", "root/cimv2")]), Ok(()));
        assert!(matches!(
            check(&[("CIMObject", "root/interop")]),
            Err(ProtocolError::HeaderMismatch(_))
        ));
        assert!(matches!(
            check(&[("CIMMethod", "DeleteInstance")]),
            Err(ProtocolError::HeaderMismatch(_))
        ));
    }

    #[test]
    fn trailers_are_taken_from_http_1_1_clients_only() {
        let headers = cim_request(&[("TE", "trailers")]);
        let trailers = |version| {
            check_headers(&Method::POST, version, &headers)
                .unwrap()
                .accepts_trailers
        };
        assert!(trailers(http::Version::HTTP_11));
        assert!(!trailers(http::Version::HTTP_10));
    }

    #[test]
    fn every_protocol_error_has_a_status_and_cim_errors_have_the_header() {
        let cases = [
            (
                ProtocolError::UnsupportedOperation,
                400,
                Some("unsupported-operation"),
            ),
            (
                ProtocolError::HeaderMismatch(String::new()),
                400,
                Some("header-mismatch"),
            ),
            (
                ProtocolError::NotWellFormed(String::new()),
                400,
                Some("request-not-well-formed"),
            ),
            (
                ProtocolError::NotValid(String::new()),
                400,
                Some("request-not-valid"),
            ),
            (
                ProtocolError::UnsupportedProtocolVersion(String::new()),
                501,
                Some("unsupported-protocol-version"),
            ),
            (
                ProtocolError::UnsupportedCimVersion(String::new()),
                501,
                Some("unsupported-cim-version"),
            ),
            (
                ProtocolError::UnsupportedDtdVersion(String::new()),
                501,
                Some("unsupported-dtd-version"),
            ),
            (
                ProtocolError::MultipleRequestsUnsupported,
                501,
                Some("multiple-requests-unsupported"),
            ),
            (ProtocolError::Unauthorized, 401, None),
            (ProtocolError::BodyTimeout, 408, None),
            (ProtocolError::LocalUserRefused(65534), 403, None),
        ];
        for (error, status, header) in cases {
            let response = protocol_error_response(&error, "node1");
            assert_eq!(response.status().as_u16(), status, "{error:?}");
            assert_eq!(
                response
                    .headers()
                    .get("CIMError")
                    .map(|v| v.to_str().unwrap()),
                header,
                "{error:?}"
            );
        }
        let challenge = protocol_error_response(&ProtocolError::Unauthorized, "node1");
        assert!(challenge
            .headers()
            .get(http::header::WWW_AUTHENTICATE)
            .is_some());
        // A refused local user gets no challenge (no password would help), and the reason.
        let refused = protocol_error_response(&ProtocolError::LocalUserRefused(65534), "node1");
        assert!(refused
            .headers()
            .get(http::header::WWW_AUTHENTICATE)
            .is_none());
        let detail = refused
            .headers()
            .get("PGErrorDetail")
            .unwrap()
            .to_str()
            .unwrap();
        let detail = percent_encoding::percent_decode_str(detail)
            .decode_utf8()
            .unwrap();
        assert!(detail.starts_with("uid 65534 may not use"), "{detail}");
    }
}
