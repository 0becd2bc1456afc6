//! Delivery: one task per listener destination takes the destination's indications from the
//! outbox in order and POSTs each as a CIM-XML `ExportIndication` (DSP0200 §4) over one
//! HTTP/1.1 keep-alive connection. An indication leaves the outbox only when the listener
//! answered 200 with no `ERROR`; until then it is sent again, `retry_interval` apart, for as
//! long as the destination keeps failing for less than `removal_after`. Then the caller
//! applies the subscription removal action.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use cim_schema::xml::{ExportResponse, Limits};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::outbox::Outbox;

/// The largest listener response read: an `EXPMETHODRESPONSE` is a few hundred bytes.
const RESPONSE_BYTES_MAX: usize = 64 * 1024;

/// How many indications one read of the outbox takes (and the most one `MULTIEXPREQ`
/// carries).
const READ_BATCH: usize = 64;

/// Whether the listener takes several indications in one request (DSP0200's multiple
/// export request, `MULTIEXPREQ` with the `CIMExportBatch` header). It is tried when a
/// backlog forms (two or more indications waiting). A listener that refuses it (400 or 501,
/// as pywbem's and OpenPegasus' do; a 200 that is not a `MULTIEXPRSP` of as many answers; no
/// answer in time) gets its indications one by one for the rest of the delivery's life.
/// One whose connection fails under a batch before any batch was taken is doubted: one by
/// one for [`BATCH_DOUBT`], then a batch is tried again (a listener restarting, or a proxy
/// whose backend is down, looks the same as a listener that resets what it refuses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Batching {
    Untried,
    Taken,
    Refused,
    Doubted(tokio::time::Instant),
}

/// How long a doubted listener gets its indications one by one before a batch is tried
/// again.
const BATCH_DOUBT: Duration = Duration::from_secs(60);

/// How a multiple export request went.
enum Multi {
    /// The listener answered each indication, in order: `Ok` if it took it, else its `ERROR`.
    Answered(Vec<Result<(), String>>),
    /// The listener does not take multiple requests.
    Refused(String),
    /// The connection failed under it before the listener ever took one: perhaps a refusal
    /// whose answer the reset discarded, perhaps an outage.
    Doubted(String),
    /// The attempt failed as a single one would (no connection, an HTTP error): retried.
    Failed(String),
}

/// Why a POST got no usable answer.
enum PostError {
    /// The kept-alive connection failed before any answer (the listener had closed it):
    /// the request is sent again at once on a new connection.
    Stale(String),
    /// No answer within the request timeout.
    Timeout(String),
    /// An answer that is not HTTP (pywbem's listener answers a multiple request with a
    /// header line that is not one).
    Malformed(String),
    /// Anything else.
    Other(String),
}

impl PostError {
    fn message(self) -> String {
        match self {
            PostError::Stale(m)
            | PostError::Timeout(m)
            | PostError::Malformed(m)
            | PostError::Other(m) => m,
        }
    }
}

/// What a delivery keeps between its sends.
struct State {
    /// The number of the next indication to send.
    next: i64,
    connection: Option<SendRequest<Full<Bytes>>>,
    /// Since when the destination fails, if it does.
    failing_since: Option<Instant>,
    /// Failed attempts in a row.
    failures: u32,
    /// When the attempt under way (or the last) began.
    attempt: SystemTime,
    batching: Batching,
    /// Indications the listener took in a multiple request after one it refused: when their
    /// turn comes they count as delivered without being sent again.
    taken_ahead: std::collections::BTreeSet<i64>,
}

/// A listener's address, from a destination's `Destination` property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `https` (else plain `http`).
    pub https: bool,
    /// The host as written (a name, an IPv4 address, or an IPv6 address without brackets).
    pub host: String,
    /// The port (the scheme's default when the URL has none: 5990 for https, 5988 for http,
    /// as OpenPegasus and SFCB do).
    pub port: u16,
    /// The request target (`/` when the URL has no path).
    pub path: String,
    /// The `Host` header.
    pub authority: String,
}

/// Why a destination URL is not one indications can be sent to.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    /// Not a URL.
    #[error("the destination {0:?} is not a URL")]
    NotUrl(String),
    /// Neither http nor https.
    #[error("the destination {0:?} is neither http:// nor https://")]
    Scheme(String),
    /// No host.
    #[error("the destination {0:?} names no host")]
    NoHost(String),
    /// A port that is not 1 to 65535.
    #[error("the destination {0:?} names a port that is not 1 to 65535")]
    Port(String),
}

impl Target {
    /// Parses `url` (`https://listener.example:5003/cimlistener`).
    pub fn parse(url: &str) -> Result<Target, TargetError> {
        let uri: http::Uri = url
            .trim()
            .parse()
            .map_err(|_| TargetError::NotUrl(url.to_owned()))?;
        let https = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(TargetError::Scheme(url.to_owned())),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| TargetError::NoHost(url.to_owned()))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        // `Uri::port` is None both for no port and for one that is not a u16 (`:99999`): read
        // the authority's text, so that only the first takes the default (DSP1054: 5990 for
        // https, 5988 for http).
        let authority_text = uri.authority().map_or("", |a| a.as_str());
        let host_and_port = authority_text
            .rsplit_once('@')
            .map_or(authority_text, |(_, rest)| rest);
        let after_host = host_and_port
            .rsplit_once(']')
            .map_or(host_and_port, |(_, rest)| rest);
        let port = match after_host.rsplit_once(':').map(|(_, port)| port) {
            None | Some("") => {
                if https {
                    5990
                } else {
                    5988
                }
            }
            Some(text) => match text.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => return Err(TargetError::Port(url.to_owned())),
            },
        };
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(Target {
            https,
            host,
            port,
            path: if path.is_empty() { "/".into() } else { path },
            authority,
        })
    }
}

/// How delivery retries (CIM_IndicationService's properties) and how long it waits.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Failed attempts in a row, after the first, before the destination is reported
    /// failing (`DeliveryRetryAttempts`); delivery goes on after them.
    pub retry_attempts: u16,
    /// Time between attempts (`DeliveryRetryInterval`).
    pub retry_interval: Duration,
    /// How long a destination may keep failing before the removal action
    /// (`SubscriptionRemovalTimeInterval`).
    pub removal_after: Duration,
    /// The longest a connection (TCP and TLS) may take.
    pub connect_timeout: Duration,
    /// The longest a listener may take to answer an indication.
    pub request_timeout: Duration,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            retry_attempts: 3,
            retry_interval: Duration::from_secs(30),
            removal_after: Duration::from_secs(30 * 24 * 3600),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// What a destination's delivery has done, for CIM_IndicationService, /metrics and logs.
#[derive(Debug, Default)]
pub struct Stats {
    /// Indications the listener accepted.
    pub delivered: AtomicU64,
    /// Attempts that failed.
    pub failed_attempts: AtomicU64,
    /// True while the destination fails.
    pub failing: AtomicBool,
    /// The last failure.
    pub last_error: Mutex<Option<String>>,
    /// The failure going on, if the destination fails.
    pub outage: Mutex<Option<Outage>>,
}

/// A destination failing: when its first and last failed attempts began, and how many
/// attempts failed in a row. Wall-clock times, to compare with a subscription's (DSP1054's
/// OnFatalErrorPolicy and FailureTriggerTimeInterval): an attempt under way when a
/// subscription changed counts from when it began, before the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    /// When the first failed attempt of the outage began.
    pub since: SystemTime,
    /// When the last failed attempt began.
    pub last: SystemTime,
    /// The attempts that failed in a row.
    pub failures: u32,
}

impl Stats {
    /// The failure going on, if the destination fails.
    pub fn outage(&self) -> Option<Outage> {
        *self.outage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The last failure, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// How a delivery task ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It was told to stop.
    Stopped,
    /// The destination kept failing for `removal_after`: apply the removal action.
    RemovalDue {
        /// The last failure.
        error: String,
    },
}

/// One destination's delivery.
pub struct Delivery {
    /// The outbox it takes indications from.
    pub outbox: Outbox,
    /// The destination's key in the outbox.
    pub key: String,
    /// Where the listener is.
    pub target: Target,
    /// The TLS client configuration for https targets.
    pub tls: Arc<rustls::ClientConfig>,
    /// Retries and timeouts.
    pub policy: Policy,
    /// What it has done.
    pub stats: Arc<Stats>,
}

impl Delivery {
    /// Delivers until `stop` turns true (or its sender is dropped), or until the removal
    /// action is due.
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> Outcome {
        let mut acked = None;
        let outcome = self.deliver(&mut stop, &mut acked).await;
        self.ack(&mut acked);
        outcome
    }

    /// Tells the outbox of the deliveries not yet told: once per batch read, not once per
    /// indication, as each tell wakes the outbox's writer thread.
    fn ack(&self, acked: &mut Option<i64>) {
        if let Some(sequence) = acked.take() {
            self.outbox.delivered(&self.key, sequence);
        }
    }

    async fn deliver(&self, stop: &mut watch::Receiver<bool>, acked: &mut Option<i64>) -> Outcome {
        let mut committed = self.outbox.watch(&self.key);
        // The counters outlive a delivery (one restarted for a new URL): an outage is this
        // delivery's own.
        self.stats.failing.store(false, Ordering::Relaxed);
        *self
            .stats
            .outage
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        let mut state = State {
            next: self.outbox.info(&self.key).map_or(0, |i| i.head),
            connection: None,
            failing_since: None,
            failures: 0,
            attempt: SystemTime::now(),
            batching: Batching::Untried,
            taken_ahead: std::collections::BTreeSet::new(),
        };
        'read: loop {
            self.ack(acked);
            if *stop.borrow() {
                return Outcome::Stopped;
            }
            committed.borrow_and_update();
            if let Some(info) = self.outbox.info(&self.key) {
                state.next = state.next.max(info.head);
            }
            let next = state.next;
            state.taken_ahead.retain(|sequence| *sequence >= next);
            let batch = match self.outbox.read(&self.key, state.next, READ_BATCH) {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::error!(destination = %self.key, %error, "the outbox cannot be read");
                    if pause(stop, self.policy.retry_interval).await {
                        return Outcome::Stopped;
                    }
                    continue;
                }
            };
            if batch.is_empty() {
                tokio::select! {
                    changed = committed.changed() => {
                        if changed.is_err() {
                            // The destination left the outbox.
                            return Outcome::Stopped;
                        }
                    }
                    changed = stop.changed() => {
                        if changed.is_err() {
                            // No one can tell it to stop any more: stop now.
                            return Outcome::Stopped;
                        }
                    }
                }
                continue;
            }
            let unsent = batch.iter().filter(|(n, _)| !state.taken_ahead.contains(n));
            let try_batch = match state.batching {
                Batching::Refused => false,
                Batching::Doubted(until) => tokio::time::Instant::now() >= until,
                Batching::Untried | Batching::Taken => true,
            };
            if try_batch && unsent.count() == batch.len() {
                if let Some(body) = (batch.len() >= 2).then(|| multi_body(&batch)).flatten() {
                    state.attempt = SystemTime::now();
                    let sent = tokio::select! {
                        sent = self.send_multi(
                            &mut state.connection,
                            body,
                            batch.len(),
                            state.batching,
                        ) => sent,
                        _ = stop.changed() => return Outcome::Stopped,
                    };
                    match sent {
                        Multi::Answered(answers) => {
                            state.batching = Batching::Taken;
                            let took = answers.iter().take_while(|a| a.is_ok()).count();
                            if let Some(&(last, _)) = took.checked_sub(1).and_then(|k| batch.get(k))
                            {
                                *acked = Some(last);
                                self.stats
                                    .delivered
                                    .fetch_add(took as u64, Ordering::Relaxed);
                                state.next = last + 1;
                                self.recovered(&mut state);
                            }
                            for (k, answer) in answers.iter().enumerate().skip(took) {
                                if answer.is_ok() {
                                    state.taken_ahead.insert(batch[k].0);
                                }
                            }
                            // The first it refused is a failed attempt: sent again, alone,
                            // after the retry interval.
                            if let Some((Err(error), &(sequence, _))) =
                                answers.into_iter().nth(took).zip(batch.get(took))
                            {
                                if let Err(outcome) = self
                                    .failed(
                                        &mut state,
                                        sequence,
                                        error,
                                        (stop, &mut committed),
                                        acked,
                                    )
                                    .await
                                {
                                    return outcome;
                                }
                            }
                            continue 'read;
                        }
                        Multi::Refused(why) => {
                            tracing::info!(
                                destination = %self.key,
                                listener = %self.target.authority,
                                %why,
                                "the listener does not take several indications in one request; \
                                 they go one by one"
                            );
                            state.batching = Batching::Refused;
                        }
                        Multi::Doubted(why) => {
                            tracing::info!(
                                destination = %self.key,
                                listener = %self.target.authority,
                                %why,
                                "a multiple request failed before the listener took any; one by \
                                 one for {} s, then a multiple request again",
                                BATCH_DOUBT.as_secs()
                            );
                            state.batching =
                                Batching::Doubted(tokio::time::Instant::now() + BATCH_DOUBT);
                        }
                        Multi::Failed(error) => {
                            if let Err(outcome) = self
                                .failed(
                                    &mut state,
                                    batch[0].0,
                                    error,
                                    (stop, &mut committed),
                                    acked,
                                )
                                .await
                            {
                                return outcome;
                            }
                            continue 'read;
                        }
                    }
                }
            }
            for (sequence, body) in batch {
                if state.taken_ahead.remove(&sequence) {
                    // Taken already, in a multiple request, after one it refused then.
                    *acked = Some(sequence);
                    self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    state.next = sequence + 1;
                    continue;
                }
                let body = Bytes::from(body);
                loop {
                    state.attempt = SystemTime::now();
                    let sent = tokio::select! {
                        sent = self.send(&mut state.connection, body.clone()) => sent,
                        _ = stop.changed() => return Outcome::Stopped,
                    };
                    match sent {
                        Ok(()) => {
                            *acked = Some(sequence);
                            self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                            state.next = sequence + 1;
                            self.recovered(&mut state);
                            break;
                        }
                        Err(error) => {
                            if let Err(outcome) = self
                                .failed(&mut state, sequence, error, (stop, &mut committed), acked)
                                .await
                            {
                                return outcome;
                            }
                            // Dropped meanwhile (the queue overflowed): read again from
                            // the oldest still queued.
                            if self
                                .outbox
                                .info(&self.key)
                                .is_none_or(|info| info.head > sequence)
                            {
                                continue 'read;
                            }
                        }
                    }
                }
            }
        }
    }

    /// An attempt to send `sequence` (and those after it) failed: counts and logs it, then
    /// waits the retry interval, or less when a new indication for the destination comes
    /// (see [`EARLY_RETRY`]). `Err` with the outcome when the delivery ends instead.
    async fn failed(
        &self,
        state: &mut State,
        sequence: i64,
        error: String,
        (stop, committed): (&mut watch::Receiver<bool>, &mut watch::Receiver<i64>),
        acked: &mut Option<i64>,
    ) -> Result<(), Outcome> {
        state.connection = None;
        state.failures += 1;
        self.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
        self.stats.failing.store(true, Ordering::Relaxed);
        *self
            .stats
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error.clone());
        let since = *state.failing_since.get_or_insert_with(Instant::now);
        {
            let at = state.attempt;
            let mut outage = self
                .stats
                .outage
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let outage = outage.get_or_insert(Outage {
                since: at,
                last: at,
                failures: 0,
            });
            outage.last = at;
            outage.failures = state.failures;
        }
        if state.failures == 1 {
            tracing::warn!(
                destination = %self.key,
                listener = %self.target.authority,
                sequence,
                %error,
                "indication delivery failed; it will be sent again"
            );
        } else if state.failures == u32::from(self.policy.retry_attempts) + 1 {
            tracing::error!(
                destination = %self.key,
                listener = %self.target.authority,
                sequence,
                %error,
                retries = self.policy.retry_attempts,
                "the listener keeps failing; its indications stay queued"
            );
        }
        if since.elapsed() >= self.policy.removal_after {
            return Err(Outcome::RemovalDue { error });
        }
        self.ack(acked);
        if retry_pause(stop, committed, self.policy.retry_interval).await {
            return Err(Outcome::Stopped);
        }
        Ok(())
    }

    /// The listener took an indication: a failing destination is one no more.
    fn recovered(&self, state: &mut State) {
        if state.failing_since.take().is_some() {
            self.stats.failing.store(false, Ordering::Relaxed);
            *self
                .stats
                .outage
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = None;
            tracing::info!(
                destination = %self.key,
                listener = %self.target.authority,
                failures = state.failures,
                "the listener takes indications again"
            );
        }
        state.failures = 0;
    }

    /// POSTs one indication; `Ok` when the listener took it.
    async fn send(
        &self,
        connection: &mut Option<SendRequest<Full<Bytes>>>,
        body: Bytes,
    ) -> Result<(), String> {
        let (status, cim_error, answer) = self
            .post(connection, body, false)
            .await
            .map_err(PostError::message)?;
        if status != http::StatusCode::OK {
            return Err(http_error(status, cim_error));
        }
        check_answer(&answer)
    }

    /// POSTs `count` indications in one `MULTIEXPREQ`; `batching` says whether the
    /// listener took one before.
    async fn send_multi(
        &self,
        connection: &mut Option<SendRequest<Full<Bytes>>>,
        body: Bytes,
        count: usize,
        batching: Batching,
    ) -> Multi {
        let (status, cim_error, answer) = match self.post(connection, body, true).await {
            Ok(answer) => answer,
            // A listener too slow for a batch gets single requests, each with its own time;
            // one that answers it with something that is not HTTP does not take batches.
            Err(PostError::Timeout(error) | PostError::Malformed(error)) => {
                return Multi::Refused(error)
            }
            // A listener that refuses a batch may answer before it read the body and close
            // the connection; the unread body makes the close a reset, which can discard
            // its answer before it is read. Before any batch was taken, a batch failing so
            // is doubted: single requests go at once (a listener that is down fails them too,
            // and the retries follow), not after the retry interval.
            Err(PostError::Stale(error)) if batching != Batching::Taken => {
                return Multi::Doubted(format!("the connection failed under a batch: {error}"))
            }
            Err(error) => return Multi::Failed(error.message()),
        };
        let error = http_error(status, cim_error);
        match status {
            http::StatusCode::OK => {}
            // DSP0200: 501 multiple-requests-unsupported; pywbem answers 400; a listener
            // whose bound on a request's size is below a batch's, 413.
            http::StatusCode::BAD_REQUEST
            | http::StatusCode::NOT_IMPLEMENTED
            | http::StatusCode::PAYLOAD_TOO_LARGE => return Multi::Refused(error),
            _ => return Multi::Failed(error),
        }
        match cim_schema::xml::decode_export_responses(&answer, &Limits::default()) {
            Ok(answers) if answers.len() == count => {
                Multi::Answered(answers.into_iter().map(taken).collect())
            }
            Ok(answers) => {
                Multi::Refused(format!("{} answers to {count} indications", answers.len()))
            }
            Err(error) => Multi::Refused(format!("the answer is not an export response: {error}")),
        }
    }

    /// POSTs `body` (a multiple export request if `batch`); the answer's status, CIMError
    /// header and body. A kept-alive connection that fails before any answer (the listener
    /// closed it) is replaced at once and the request sent again; a timeout or a failure
    /// after the answer began is not retried here.
    async fn post(
        &self,
        connection: &mut Option<SendRequest<Full<Bytes>>>,
        body: Bytes,
        batch: bool,
    ) -> Result<(http::StatusCode, Option<String>, Bytes), PostError> {
        let reused = connection.as_ref().is_some_and(|c| !c.is_closed());
        match self.post_once(connection, body.clone(), batch).await {
            Err(PostError::Stale(_)) if reused => {
                *connection = None;
                self.post_once(connection, body, batch).await
            }
            Err(error) => {
                *connection = None;
                Err(error)
            }
            posted => posted,
        }
    }

    async fn post_once(
        &self,
        connection: &mut Option<SendRequest<Full<Bytes>>>,
        body: Bytes,
        batch: bool,
    ) -> Result<(http::StatusCode, Option<String>, Bytes), PostError> {
        if connection.as_ref().is_none_or(SendRequest::is_closed) {
            *connection = Some(
                tokio::time::timeout(self.policy.connect_timeout, self.connect())
                    .await
                    .map_err(|_| PostError::Other("connection timed out".to_owned()))?
                    .map_err(PostError::Other)?,
            );
        }
        let Some(sender) = connection.as_mut() else {
            return Err(PostError::Other("no connection".into()));
        };
        let request = http::Request::post(self.target.path.as_str())
            .header(http::header::HOST, self.target.authority.as_str())
            .header(
                http::header::CONTENT_TYPE,
                "application/xml; charset=\"utf-8\"",
            )
            .header("CIMProtocolVersion", "1.0")
            .header("CIMExport", "MethodRequest");
        let request = if batch {
            request.header("CIMExportBatch", "")
        } else {
            request.header("CIMExportMethod", "ExportIndication")
        };
        let request = request
            .body(Full::new(body))
            .map_err(|e| PostError::Other(e.to_string()))?;
        let exchange = async {
            sender
                .ready()
                .await
                .map_err(|e| PostError::Stale(e.to_string()))?;
            let response = sender.send_request(request).await.map_err(|e| {
                if e.is_parse() || e.is_parse_status() {
                    PostError::Malformed(format!("the answer is not HTTP: {e}"))
                } else {
                    PostError::Stale(e.to_string())
                }
            })?;
            let status = response.status();
            let cim_error = response
                .headers()
                .get("CIMError")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if status != http::StatusCode::OK {
                // The status and CIMError say it all; some listeners (pywbem's) send an error
                // with no framed body and close, which must not read as a broken connection.
                return Ok((status, cim_error, Bytes::new()));
            }
            let body = Limited::new(response.into_body(), RESPONSE_BYTES_MAX)
                .collect()
                .await
                .map_err(|e| PostError::Other(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok((status, cim_error, body))
        };
        tokio::time::timeout(self.policy.request_timeout, exchange)
            .await
            .map_err(|_| PostError::Timeout("the listener did not answer in time".to_owned()))?
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let tcp = TcpStream::connect((self.target.host.as_str(), self.target.port))
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        // Indications are small and each waits for its answer.
        let _ = tcp.set_nodelay(true);
        if !self.target.https {
            return handshake(tcp).await;
        }
        let name = ServerName::try_from(self.target.host.clone())
            .map_err(|e| format!("the host name {:?}: {e}", self.target.host))?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        handshake(tls).await
    }
}

/// Starts an HTTP/1.1 connection over `io`; its driver runs as a task of its own.
async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        // It ends when the listener or this side closes; the sender then reports closed.
        let _ = connection.await;
    });
    Ok(sender)
}

/// The indications of `batch` (whole export messages, as queued) as one `MULTIEXPREQ`: each
/// message's `SIMPLEEXPREQ` element, in order. None if one has no such element.
fn multi_body(batch: &[(i64, Vec<u8>)]) -> Option<Bytes> {
    const OPEN: &[u8] = b"<SIMPLEEXPREQ>";
    const CLOSE: &[u8] = b"</SIMPLEEXPREQ>";
    let first = batch.first()?.0;
    let size: usize = batch.iter().map(|(_, m)| m.len()).sum();
    let mut body = Vec::with_capacity(size + 256);
    body.extend_from_slice(
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\" ?><CIM CIMVERSION=\"2.0\" \
             DTDVERSION=\"2.0\"><MESSAGE ID=\"{first}\" PROTOCOLVERSION=\"1.0\"><MULTIEXPREQ>"
        )
        .as_bytes(),
    );
    for (_, message) in batch {
        // Markup, never text: `<` in a value is escaped.
        let start = message.windows(OPEN.len()).position(|w| w == OPEN)?;
        let end = message.windows(CLOSE.len()).rposition(|w| w == CLOSE)? + CLOSE.len();
        body.extend_from_slice(message.get(start..end)?);
    }
    body.extend_from_slice(b"</MULTIEXPREQ></MESSAGE></CIM>");
    Some(Bytes::from(body))
}

/// How an answer other than 200 reads in the log and the stats.
fn http_error(status: http::StatusCode, cim_error: Option<String>) -> String {
    match cim_error {
        Some(error) => format!("HTTP {status}, CIMError {error}"),
        None => format!("HTTP {status}"),
    }
}

/// `Ok` when the listener took the indication: its answer has no `ERROR`.
fn taken(response: ExportResponse) -> Result<(), String> {
    match response.result {
        Ok(_) => Ok(()),
        Err(error) => Err(format!(
            "the listener answered CIM error {}{}",
            error.code,
            error
                .description
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        )),
    }
}

/// `Ok` when a 200 answer's body is an export response without `ERROR`.
fn check_answer(body: &[u8]) -> Result<(), String> {
    // Some listeners answer 200 with no body at all; that is taken as acceptance.
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let mut answers = cim_schema::xml::decode_export_responses(body, &Limits::default())
        .map_err(|e| format!("the answer is not an export response: {e}"))?;
    match (answers.pop(), answers.is_empty()) {
        (Some(answer), true) => taken(answer),
        _ => Err("the answer is not one export response".into()),
    }
}

/// Waits `interval`; true if told to stop meanwhile.
/// The least time between a failed attempt and the next one that a new indication brings
/// forward. A listener that was down (restarted, a console upgraded) is often back before
/// the retry interval ends; without this, the alerts raised after it came back would wait
/// behind the backlog for up to the whole interval (30 s by default). With it they go within
/// this time, the backlog first, in order; a listener still down costs one more failed
/// attempt per this time at the most, however many alerts arrive.
const EARLY_RETRY: Duration = Duration::from_secs(2);

/// Waits `interval` after a failed attempt, or until a new indication is committed for the
/// destination and [`EARLY_RETRY`] (at most `interval`) has passed, whichever comes first;
/// true when told to stop (or the destination left the outbox) meanwhile.
async fn retry_pause(
    stop: &mut watch::Receiver<bool>,
    committed: &mut watch::Receiver<i64>,
    interval: Duration,
) -> bool {
    let started = tokio::time::Instant::now();
    let full = tokio::time::sleep(interval);
    tokio::pin!(full);
    tokio::select! {
        () = &mut full => return *stop.borrow(),
        changed = stop.changed() => return changed.is_err() || *stop.borrow(),
        changed = committed.changed() => {
            if changed.is_err() {
                return true;
            }
        }
    }
    let early = started + EARLY_RETRY.min(interval);
    tokio::select! {
        () = tokio::time::sleep_until(early) => *stop.borrow(),
        changed = stop.changed() => changed.is_err() || *stop.borrow(),
    }
}

async fn pause(stop: &mut watch::Receiver<bool>, interval: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(interval) => *stop.borrow(),
        changed = stop.changed() => changed.is_err() || *stop.borrow(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_urls_parse_with_the_default_ports() {
        assert_eq!(
            Target::parse("https://listener.example:5003/cimlistener/x"),
            Ok(Target {
                https: true,
                host: "listener.example".into(),
                port: 5003,
                path: "/cimlistener/x".into(),
                authority: "listener.example:5003".into(),
            })
        );
        let plain = Target::parse("HTTP://127.0.0.1").expect("plain");
        assert_eq!(
            (plain.https, plain.port, plain.path.as_str()),
            (false, 5988, "/")
        );
        let v6 = Target::parse("https://[::1]:5004").expect("v6");
        assert_eq!(
            (v6.host.as_str(), v6.authority.as_str()),
            ("::1", "[::1]:5004")
        );
        assert_eq!(Target::parse("https://[::1]").expect("v6").port, 5990);
        assert!(matches!(
            Target::parse("ftp://x"),
            Err(TargetError::Scheme(_))
        ));
        assert!(matches!(Target::parse("x y"), Err(TargetError::NotUrl(_))));
        assert!(Target::parse("localhost:5000").is_err());
        for url in [
            "https://127.0.0.1:99999/",
            "https://127.0.0.1:0/",
            "https://[::1]:65536",
            "http://user:pw@127.0.0.1:x/",
        ] {
            assert_eq!(
                Target::parse(url),
                Err(TargetError::Port(url.into())),
                "{url}"
            );
        }
        assert_eq!(
            Target::parse("http://user:pw@127.0.0.1:5005/").map(|t| t.port),
            Ok(5005)
        );
        assert_eq!(
            Target::parse("http://127.0.0.1:/").map(|t| t.port),
            Ok(5988)
        );
    }

    #[test]
    fn an_error_answer_is_a_failure() {
        let ok = br#"<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="1" PROTOCOLVERSION="1.0"><SIMPLEEXPRSP><EXPMETHODRESPONSE NAME="ExportIndication"/></SIMPLEEXPRSP></MESSAGE></CIM>"#;
        assert_eq!(check_answer(ok), Ok(()));
        let error = br#"<CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="1" PROTOCOLVERSION="1.0"><SIMPLEEXPRSP><EXPMETHODRESPONSE NAME="ExportIndication"><ERROR CODE="1" DESCRIPTION="no"/></EXPMETHODRESPONSE></SIMPLEEXPRSP></MESSAGE></CIM>"#;
        assert_eq!(
            check_answer(error),
            Err("the listener answered CIM error 1: no".into())
        );
        assert!(check_answer(b"<html/>").is_err());
        assert_eq!(check_answer(b""), Ok(()));
    }
}
