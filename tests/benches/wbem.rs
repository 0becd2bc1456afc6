//! The WBEM server benchmark: requests/s, server CPU per request, errors and memory of a real
//! `cmwbemd` process, against a bare hyper server doing no CIM work (the practical limit), and
//! large enumerations (chunked, spooled and pull) against `bench_server`. Not a criterion
//! benchmark: it starts processes and prints one table.
//!
//! ```sh
//! cargo build --release --bin cmwbemd
//! cargo bench -p cimguard-tests --bench wbem
//! ```
//!
//! The client is a minimal HTTP/1.1 keep-alive client written here over tokio (plain or
//! tokio-rustls): one pre-built request written per exchange, the response parsed in place from
//! one reused buffer (status line, `Content-Length` or chunked with trailers). The client shares
//! the machine's cores with the server, so the less CPU it spends the more the figures say
//! about the server; it also gives byte-level control (the exact DSP0200 headers, `TE:
//! trailers`, counting a 100 MB body as it streams).
//!
//! Settings (environment variables): `WBEM_BENCH_SECONDS` (5) measured per load run after
//! `WBEM_BENCH_WARMUP_SECONDS` (1); `WBEM_BENCH_STRESS_CLIENTS` (64) for
//! `WBEM_BENCH_STRESS_SECONDS` (3); `WBEM_BENCH_REPEAT` (3) runs of each load scenario (the table
//! gives the best and the median); `WBEM_BENCH_INSTANCES` (100000) for the large enumerations;
//! `WBEM_BENCH_CLIENT_THREADS` (1: a current-thread runtime for all clients);
//! `WBEM_BENCH_BARE_ARGS` (extra flags for bare_hyper, e.g. `--header-read-timeout 30`, or
//! `--work-us 10` to spend 10 us of CPU on each request);
//! `WBEM_BENCH_CMWBEMD` (the cmwbemd binary; default `cmwbemd` beside this benchmark's binaries
//! in target/release); `WBEM_BENCH_PERF=cmwbemd:https:1` (server:scheme:clients) records that
//! run of the server with `perf record --call-graph dwarf` into `target/wbem-cmwbemd-https-1.perf.data`;
//! `WBEM_BENCH_STATISTICS=1` turns cmwbemd's statistics gathering on (GatherStatisticalData)
//! before the load runs, to measure what it costs.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context};
use memchr::memmem;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use cimguard_tests::requests;

/// The benchmark class of `bench_server`.
const BENCH_CLASS: &str = "CIMGUARD_BenchItem";

/// Objects per Open and Pull of the pull run.
const PULL_MAX_OBJECT_COUNT: u32 = 1000;

/// How long a server may take to print its listening lines.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one large-enumeration exchange may take.
const LARGE_TIMEOUT: Duration = Duration::from_secs(300);

/// The size of a connection's read buffer.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Errors whose text is kept for the report, per run.
const ERROR_SAMPLES_MAX: usize = 5;

// ---------------------------------------------------------------------------------------------
// Settings

struct Settings {
    duration: Duration,
    warmup: Duration,
    stress_clients: usize,
    stress_duration: Duration,
    instances: u32,
    client_threads: usize,
    /// Runs of each load scenario; the table gives the best and the median.
    repeat: usize,
    /// `server:scheme:clients` of the run to record with `perf record` (WBEM_BENCH_PERF).
    perf: Option<String>,
    cmwbemd: PathBuf,
    bench_server: PathBuf,
    bare_hyper: PathBuf,
}

impl Settings {
    fn from_environment() -> anyhow::Result<Settings> {
        let number = |name: &str, default: u64| -> anyhow::Result<u64> {
            match std::env::var(name) {
                Ok(text) => text
                    .parse()
                    .with_context(|| format!("{name}={text} is not a whole number")),
                Err(_) => Ok(default),
            }
        };
        let bench_server = PathBuf::from(env!("CARGO_BIN_EXE_bench_server"));
        let cmwbemd = match std::env::var_os("WBEM_BENCH_CMWBEMD") {
            Some(path) => PathBuf::from(path),
            None => bench_server.with_file_name("cmwbemd"),
        };
        if !cmwbemd.exists() {
            bail!(
                "no cmwbemd at {}: run `cargo build --release --bin cmwbemd` first \
                 (or set WBEM_BENCH_CMWBEMD)",
                cmwbemd.display()
            );
        }
        warn_if_stale(&cmwbemd);
        Ok(Settings {
            duration: Duration::from_secs(number("WBEM_BENCH_SECONDS", 5)?),
            warmup: Duration::from_secs(number("WBEM_BENCH_WARMUP_SECONDS", 1)?),
            stress_clients: usize::try_from(number("WBEM_BENCH_STRESS_CLIENTS", 64)?)?,
            stress_duration: Duration::from_secs(number("WBEM_BENCH_STRESS_SECONDS", 3)?),
            instances: u32::try_from(number("WBEM_BENCH_INSTANCES", 100_000)?)?,
            client_threads: usize::try_from(number("WBEM_BENCH_CLIENT_THREADS", 1)?)?.max(1),
            repeat: usize::try_from(number("WBEM_BENCH_REPEAT", 3)?)?.max(1),
            perf: std::env::var("WBEM_BENCH_PERF").ok(),
            cmwbemd,
            bench_server,
            bare_hyper: PathBuf::from(env!("CARGO_BIN_EXE_bare_hyper")),
        })
    }
}

/// Says so when a source of cmwbemd is newer than the binary: the figures would be of old code.
fn warn_if_stale(binary: &Path) {
    let Ok(built) = binary.metadata().and_then(|m| m.modified()) else {
        return;
    };
    let root = cimguard_tests::workspace_root();
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    for folder in ["provider/src", "cim-schema/src/xml", "certs/src", "src/bin"] {
        let Ok(entries) = walk(&root.join(folder)) else {
            continue;
        };
        for (modified, path) in entries {
            if newest.as_ref().is_none_or(|(time, _)| modified > *time) {
                newest = Some((modified, path));
            }
        }
    }
    if let Some((modified, path)) = newest {
        if modified > built {
            eprintln!(
                "warning: {} is newer than {}; run `cargo build --release --bin cmwbemd`",
                path.display(),
                binary.display()
            );
        }
    }
}

fn walk(folder: &Path) -> std::io::Result<Vec<(SystemTime, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        if metadata.is_dir() {
            out.extend(walk(&entry.path())?);
        } else {
            out.push((metadata.modified()?, entry.path()));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Server processes

/// A server process started by the benchmark, killed when dropped.
struct ServerProcess {
    name: &'static str,
    child: Child,
    http: SocketAddr,
    https: SocketAddr,
}

impl ServerProcess {
    /// Starts `program` and waits for its `listening http` and `listening https` lines.
    fn start(name: &'static str, program: &Path, args: &[&str]) -> anyhow::Result<ServerProcess> {
        let mut child = Command::new(program)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("{name}: no stdout"))?;
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        let mut process = ServerProcess {
            name,
            child,
            http: SocketAddr::from(([0, 0, 0, 0], 0)),
            https: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let (mut http, mut https) = (None, None);
        while http.is_none() || https.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = receiver
                .recv_timeout(left)
                .map_err(|_| anyhow!("{name} did not print its listening addresses"))?;
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("listening"), Some("http"), Some(address)) => http = Some(address.parse()?),
                (Some("listening"), Some("https"), Some(address)) => {
                    https = Some(address.parse()?);
                }
                _ => {}
            }
        }
        // Both are Some: the loop above ends only then.
        process.http = http.unwrap_or(process.http);
        process.https = https.unwrap_or(process.https);
        Ok(process)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// utime + stime of the whole process (all threads).
    fn cpu(&self) -> anyhow::Result<Duration> {
        process_cpu(&format!("/proc/{}/stat", self.pid()))
    }

    /// A `Vm*` line of /proc/PID/status, in kB.
    fn memory_kilobytes(&self, field: &str) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| anyhow!("{}: no {field} in /proc/PID/status", self.name))
    }

    /// Resets VmHWM to the current RSS (`echo 5 > /proc/PID/clear_refs`).
    fn reset_peak(&self) -> anyhow::Result<()> {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5")
            .context("cannot reset the peak RSS through /proc/PID/clear_refs")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

/// utime + stime from a /proc stat file.
fn process_cpu(stat_path: &str) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(stat_path)?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // Fields 14 and 15 of proc(5); field 3 (the state) is the first after the ')'.
    let ticks = |index: usize| -> anyhow::Result<u64> {
        fields
            .get(index)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| anyhow!("{stat_path}: no field {index}"))
    };
    let total = ticks(11)? + ticks(12)?;
    let per_second = clock_ticks_per_second();
    Ok(Duration::from_nanos(total * 1_000_000_000 / per_second))
}

// ---------------------------------------------------------------------------------------------
// The HTTP/1.1 client

/// Anything a connection runs over: a TCP stream or a TLS stream on one.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where the clients connect, and with which TLS configuration.
#[derive(Clone)]
struct Target {
    address: SocketAddr,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Target {
    fn plain(address: SocketAddr) -> Target {
        Target { address, tls: None }
    }

    /// HTTPS, trusting the CA certificate at `ca`.
    fn tls(address: SocketAddr, ca: &Path) -> anyhow::Result<Target> {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in CertificateDer::pem_file_iter(ca)? {
            roots.add(certificate?)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Target {
            address,
            tls: Some(tokio_rustls::TlsConnector::from(Arc::new(config))),
        })
    }

    async fn connect(&self) -> anyhow::Result<Connection> {
        let stream = TcpStream::connect(self.address).await?;
        stream.set_nodelay(true)?;
        let io: Box<dyn Io> = match &self.tls {
            None => Box::new(stream),
            Some(connector) => {
                let name = ServerName::IpAddress(self.address.ip().into());
                Box::new(connector.connect(name, stream).await?)
            }
        };
        Ok(Connection {
            io,
            buffer: vec![0; READ_BUFFER_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
        })
    }
}

/// Receives a response body as it arrives.
trait BodySink {
    fn data(&mut self, bytes: &[u8]);
}

impl BodySink for Vec<u8> {
    fn data(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Counts a body's bytes and the occurrences of `<INSTANCE ` and `<ERROR` in it, across the
/// boundaries of the pieces it arrives in, without keeping it.
struct Counter {
    bytes: u64,
    instances: u64,
    errors: u64,
    /// The last bytes of the previous piece, to find a pattern split between two pieces.
    carry: Vec<u8>,
}

impl Counter {
    const INSTANCE: &'static [u8] = b"<INSTANCE ";
    const ERROR: &'static [u8] = b"<ERROR";

    fn new() -> Counter {
        Counter {
            bytes: 0,
            instances: 0,
            errors: 0,
            carry: Vec::new(),
        }
    }
}

impl BodySink for Counter {
    fn data(&mut self, bytes: &[u8]) {
        self.bytes += bytes.len() as u64;
        // A pattern that straddles the boundary starts in `carry` and ends in `bytes`.
        let keep = Counter::INSTANCE.len() - 1;
        let head = &bytes[..bytes.len().min(keep)];
        let mut joint = std::mem::take(&mut self.carry);
        let carried = joint.len();
        joint.extend_from_slice(head);
        let straddling = |pattern: &[u8]| {
            memmem::find_iter(&joint, pattern)
                .filter(|&at| at < carried && at + pattern.len() > carried)
                .count() as u64
        };
        self.instances += straddling(Counter::INSTANCE);
        self.errors += straddling(Counter::ERROR);
        self.instances += memmem::find_iter(bytes, Counter::INSTANCE).count() as u64;
        self.errors += memmem::find_iter(bytes, Counter::ERROR).count() as u64;
        // Keep the tail of everything seen so far (the joint when this piece is short).
        joint.extend_from_slice(&bytes[head.len()..]);
        let from = joint.len().saturating_sub(keep);
        self.carry = joint.split_off(from);
    }
}

/// What a response said besides its body.
struct ResponseHead {
    status: u16,
    /// The body came with `Transfer-Encoding: chunked`.
    chunked: bool,
    /// The server will close the connection after this response.
    close: bool,
    /// The trailer fields of a chunked response (`CIMStatusCode`).
    trailers: Vec<(String, String)>,
}

/// One keep-alive connection and its read buffer.
struct Connection {
    io: Box<dyn Io>,
    buffer: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Connection {
    /// Sends `request` and reads the response, handing its body to `sink`.
    async fn exchange(
        &mut self,
        request: &[u8],
        sink: &mut impl BodySink,
    ) -> anyhow::Result<ResponseHead> {
        self.io.write_all(request).await?;
        let header_end = loop {
            if let Some(at) = memmem::find(&self.buffer[self.start..self.end], b"\r\n\r\n") {
                break self.start + at;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buffer[self.start..header_end])
            .context("response head is not utf-8")?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
        let (mut length, mut chunked, mut close) = (None, false, false);
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                bail!("bad header line {line:?}");
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<u64>()?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        self.start = header_end + 4;
        let trailers = if chunked {
            self.chunked_body(sink).await?
        } else {
            self.exact(length.unwrap_or(0), sink).await?;
            Vec::new()
        };
        Ok(ResponseHead {
            status,
            chunked,
            close,
            trailers,
        })
    }

    /// Reads more bytes into the buffer, moving what is unread to its start when it is full.
    async fn fill(&mut self) -> anyhow::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buffer.len() {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.end == self.buffer.len() {
                bail!("a response line or head is longer than {READ_BUFFER_BYTES} bytes");
            }
        }
        let read = self.io.read(&mut self.buffer[self.end..]).await?;
        if read == 0 {
            bail!("the server closed the connection");
        }
        self.end += read;
        Ok(())
    }

    /// Hands the next `length` bytes to `sink`.
    async fn exact(&mut self, mut length: u64, sink: &mut impl BodySink) -> anyhow::Result<()> {
        while length > 0 {
            if self.start == self.end {
                self.fill().await?;
            }
            let available = (self.end - self.start) as u64;
            // Bounded by the buffer's length, so it fits in usize.
            let take = available.min(length) as usize;
            sink.data(&self.buffer[self.start..self.start + take]);
            self.start += take;
            length -= take as u64;
        }
        Ok(())
    }

    /// The next CRLF-terminated line, without its CRLF.
    async fn line(&mut self) -> anyhow::Result<String> {
        loop {
            if let Some(at) = memmem::find(&self.buffer[self.start..self.end], b"\r\n") {
                let line =
                    String::from_utf8_lossy(&self.buffer[self.start..self.start + at]).into_owned();
                self.start += at + 2;
                return Ok(line);
            }
            self.fill().await?;
        }
    }

    /// A chunked body: its data to `sink`, its trailer fields returned.
    async fn chunked_body(
        &mut self,
        sink: &mut impl BodySink,
    ) -> anyhow::Result<Vec<(String, String)>> {
        loop {
            let line = self.line().await?;
            let size_text = line.split(';').next().unwrap_or_default().trim();
            let size = u64::from_str_radix(size_text, 16)
                .with_context(|| format!("bad chunk size line {line:?}"))?;
            if size == 0 {
                break;
            }
            self.exact(size, sink).await?;
            if !self.line().await?.is_empty() {
                bail!("a chunk does not end with CRLF");
            }
        }
        let mut trailers = Vec::new();
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                return Ok(trailers);
            }
            if let Some((name, value)) = line.split_once(':') {
                trailers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
    }
}

/// A DSP0200 request: POST /cimom with the CIM headers for `method` on `namespace`.
fn cim_request(
    address: SocketAddr,
    method: &str,
    namespace: &str,
    body: &str,
    trailers: bool,
) -> Vec<u8> {
    let mut head = String::new();
    // Writing into a String cannot fail.
    let _ = write!(
        head,
        "POST /cimom HTTP/1.1\r\nHost: {address}\r\n\
         Content-Type: application/xml; charset=\"utf-8\"\r\n\
         Content-Length: {}\r\nCIMOperation: MethodCall\r\nCIMMethod: {method}\r\n\
         CIMObject: {namespace}\r\nCIMProtocolVersion: 1.0\r\n",
        body.len()
    );
    if trailers {
        head.push_str("TE: trailers\r\n");
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body.as_bytes());
    request
}

// ---------------------------------------------------------------------------------------------
// Load runs

/// Counts shared by the clients of one run.
#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    errors: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl Stats {
    fn error(&self, text: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut samples) = self.samples.lock() {
            if samples.len() < ERROR_SAMPLES_MAX {
                samples.push(text);
            }
        }
    }
}

/// What one load run measured.
struct LoadResult {
    server: &'static str,
    scheme: &'static str,
    clients: usize,
    requests: u64,
    elapsed: Duration,
    server_cpu: Duration,
    client_cpu: Duration,
    errors: u64,
    samples: Vec<String>,
}

impl LoadResult {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn server_cpu_per_request(&self) -> Duration {
        self.server_cpu
            .checked_div(u32::try_from(self.requests.max(1)).unwrap_or(u32::MAX))
            .unwrap_or_default()
    }

    fn client_cpu_per_request(&self) -> Duration {
        self.client_cpu
            .checked_div(u32::try_from(self.requests.max(1)).unwrap_or(u32::MAX))
            .unwrap_or_default()
    }
}

/// One client: a connection (a new one after any error), requests until `stop`; a response
/// counts when it is 200 with exactly the `expected` body and keeps the connection open.
async fn client(
    target: Target,
    request: Arc<[u8]>,
    expected: Arc<[u8]>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) {
    let mut body = Vec::with_capacity(expected.len() * 2);
    while !stop.load(Ordering::Relaxed) {
        let mut connection = match target.connect().await {
            Ok(connection) => connection,
            Err(error) => {
                stats.error(format!("connect: {error}"));
                // Do not spin against a server that refuses.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while !stop.load(Ordering::Relaxed) {
            body.clear();
            match connection.exchange(&request, &mut body).await {
                Ok(head) if head.status == 200 && *body == *expected && !head.close => {
                    stats.requests.fetch_add(1, Ordering::Relaxed);
                }
                Ok(head) => {
                    stats.error(format!(
                        "status {}, {} body bytes{}",
                        head.status,
                        body.len(),
                        if head.close {
                            ", connection closed"
                        } else {
                            ""
                        }
                    ));
                    if head.close {
                        break;
                    }
                }
                Err(error) => {
                    stats.error(format!("exchange: {error}"));
                    break;
                }
            }
        }
    }
}

struct LoadRun<'a> {
    server: &'a ServerProcess,
    /// Record this run with `perf record` into this file.
    perf: Option<PathBuf>,
    scheme: &'static str,
    target: Target,
    request: Arc<[u8]>,
    expected: Arc<[u8]>,
}

impl LoadRun<'_> {
    /// `clients` clients for `warmup`, then `duration` measured.
    async fn run(
        &self,
        clients: usize,
        warmup: Duration,
        duration: Duration,
    ) -> anyhow::Result<LoadResult> {
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                tokio::spawn(client(
                    self.target.clone(),
                    self.request.clone(),
                    self.expected.clone(),
                    stats.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(warmup).await;
        let requests_before = stats.requests.load(Ordering::Relaxed);
        let server_before = self.server.cpu()?;
        let client_before = process_cpu("/proc/self/stat")?;
        let started = Instant::now();
        let recorder = match &self.perf {
            Some(file) => Some(perf_record(self.server.pid(), file, duration)?),
            None => None,
        };
        tokio::time::sleep(duration).await;
        let requests = stats.requests.load(Ordering::Relaxed) - requests_before;
        let elapsed = started.elapsed();
        let server_cpu = self.server.cpu()?.saturating_sub(server_before);
        let client_cpu = process_cpu("/proc/self/stat")?.saturating_sub(client_before);
        stop.store(true, Ordering::Relaxed);
        if let Some(mut recorder) = recorder {
            let _ = recorder.wait();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        for task in tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                abort.abort();
                stats.error("a client did not stop within 10 s".into());
            }
        }
        let samples = stats.samples.lock().map(|s| s.clone()).unwrap_or_default();
        Ok(LoadResult {
            server: self.server.name,
            scheme: self.scheme,
            clients,
            requests,
            elapsed,
            server_cpu,
            client_cpu,
            errors: stats.errors.load(Ordering::Relaxed),
            samples,
        })
    }
}

/// Starts `perf record` (DWARF call graphs) on `pid` for `duration`.
fn perf_record(pid: u32, file: &Path, duration: Duration) -> anyhow::Result<Child> {
    eprintln!("  perf record -p {pid} -o {}", file.display());
    Command::new("perf")
        // DWARF unwinding: the release build keeps no frame pointers.
        .args(["record", "-q", "-F", "999", "--call-graph", "dwarf,16384"])
        .args(["-p", &pid.to_string(), "-o"])
        .arg(file)
        .args(["--", "sleep", &duration.as_secs_f64().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start perf")
}

/// The file to record the run `server:scheme:clients` into, when WBEM_BENCH_PERF names it.
fn perf_file(settings: &Settings, server: &str, scheme: &str, clients: usize) -> Option<PathBuf> {
    let wanted = format!("{server}:{scheme}:{clients}").replace(' ', "_");
    (settings.perf.as_deref() == Some(wanted.as_str())).then(|| {
        cimguard_tests::workspace_root()
            .join("target")
            .join(format!("wbem-{}.perf.data", wanted.replace(':', "-")))
    })
}

/// One exchange on a new connection: the response body of the load runs' request, checked.
async fn reference_body(target: &Target, request: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut connection = target.connect().await?;
    let mut body = Vec::new();
    let head = connection.exchange(request, &mut body).await?;
    if head.status != 200 {
        bail!("EnumerateInstances answered HTTP {}", head.status);
    }
    let instances = memmem::find_iter(&body, b"<INSTANCE ").count();
    let object_manager = memmem::find(&body, br#"<INSTANCE CLASSNAME="CIM_ObjectManager""#);
    if instances != 1 || object_manager.is_none() || memmem::find(&body, b"<ERROR").is_some() {
        bail!(
            "EnumerateInstances did not return the one CIM_ObjectManager instance:\n{}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(body)
}

/// Turns cmwbemd's statistics gathering on with a ModifyInstance of the object manager whose
/// `INSTANCENAME` the reference body holds.
async fn gather_statistics(
    target: &Target,
    address: SocketAddr,
    reference: &[u8],
) -> anyhow::Result<()> {
    let text = String::from_utf8_lossy(reference);
    let start = text
        .find("<INSTANCENAME")
        .ok_or_else(|| anyhow!("no INSTANCENAME in the reference body"))?;
    let end = text[start..]
        .find("</INSTANCENAME>")
        .map(|at| start + at + "</INSTANCENAME>".len())
        .ok_or_else(|| anyhow!("no end of INSTANCENAME in the reference body"))?;
    let request = cim_request(
        address,
        "ModifyInstance",
        "root/interop",
        &requests::gather_statistics(&text[start..end], true),
        false,
    );
    let mut connection = target.connect().await?;
    let mut body = Vec::new();
    let head = connection.exchange(&request, &mut body).await?;
    if head.status != 200 || memmem::find(&body, b"<ERROR").is_some() {
        bail!(
            "turning statistics on failed: HTTP {}\n{}",
            head.status,
            String::from_utf8_lossy(&body)
        );
    }
    eprintln!("cmwbemd: statistics gathering on");
    Ok(())
}

/// The load scenarios (HTTP and HTTPS, 1 and 8 clients, `repeat` times each) against every
/// server in turn, interleaved run by run so that a change in the machine's background load
/// falls on all of them alike; one list of results per server.
async fn load_runs(
    settings: &Settings,
    servers: &[(&ServerProcess, PathBuf)],
    expected: &Arc<[u8]>,
) -> anyhow::Result<Vec<Vec<LoadResult>>> {
    let mut results: Vec<Vec<LoadResult>> = servers.iter().map(|_| Vec::new()).collect();
    for scheme in ["http", "https"] {
        let mut runs = Vec::new();
        for (server, ca) in servers {
            let target = match scheme {
                "http" => Target::plain(server.http),
                _ => Target::tls(server.https, ca)?,
            };
            let request = cim_request(
                target.address,
                "EnumerateInstances",
                "root/interop",
                &requests::enumerate_object_manager(),
                false,
            );
            runs.push(LoadRun {
                server,
                perf: None,
                scheme,
                target,
                request: Arc::from(request),
                expected: expected.clone(),
            });
        }
        for clients in [1, 8] {
            for attempt in 0..settings.repeat {
                for (run, results) in runs.iter_mut().zip(results.iter_mut()) {
                    // Record the first run of the scenario only.
                    run.perf = perf_file(settings, run.server.name, scheme, clients)
                        .filter(|_| attempt == 0);
                    let result = run.run(clients, settings.warmup, settings.duration).await?;
                    eprintln!(
                        "  {} {} x{}: {:.0} req/s, {:.1} us server CPU/req, {} errors",
                        result.server,
                        result.scheme,
                        result.clients,
                        result.rate(),
                        result.server_cpu_per_request().as_secs_f64() * 1e6,
                        result.errors
                    );
                    results.push(result);
                }
            }
        }
    }
    Ok(results)
}

/// The runs of one scenario, summarized: the best and the median rate, CPU per request of the
/// median run, errors of all runs.
struct Summary<'a> {
    first: &'a LoadResult,
    best: f64,
    median: &'a LoadResult,
    runs: usize,
    errors: u64,
    samples: Vec<&'a str>,
}

/// Groups `results` by (server, scheme, clients), in order of first appearance.
fn summaries(results: &[LoadResult]) -> Vec<Summary<'_>> {
    let mut out = Vec::new();
    let mut seen: Vec<(&str, &str, usize)> = Vec::new();
    for result in results {
        let key = (result.server, result.scheme, result.clients);
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let mut runs: Vec<&LoadResult> = results
            .iter()
            .filter(|r| (r.server, r.scheme, r.clients) == key)
            .collect();
        runs.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
        let median = runs[runs.len() / 2];
        out.push(Summary {
            first: result,
            best: runs.last().map_or(0.0, |r| r.rate()),
            median,
            runs: runs.len(),
            errors: runs.iter().map(|r| r.errors).sum(),
            samples: runs
                .iter()
                .flat_map(|r| r.samples.iter().map(String::as_str))
                .take(ERROR_SAMPLES_MAX)
                .collect(),
        });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Large enumerations

/// What one large enumeration measured.
struct LargeResult {
    mode: &'static str,
    elapsed: Duration,
    bytes: u64,
    instances: u64,
    exchanges: u64,
    errors: Vec<String>,
    server_cpu: Duration,
    peak_rss_kilobytes: u64,
    rss_after_kilobytes: u64,
}

fn enumerate_body(class: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8" ?>
<CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="2001" PROTOCOLVERSION="1.0"><SIMPLEREQ><IMETHODCALL NAME="EnumerateInstances"><LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="cimv2"/></LOCALNAMESPACEPATH><IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="{class}"/></IPARAMVALUE></IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>"#
    )
}

fn open_body(class: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8" ?>
<CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="2002" PROTOCOLVERSION="1.0"><SIMPLEREQ><IMETHODCALL NAME="OpenEnumerateInstances"><LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="cimv2"/></LOCALNAMESPACEPATH><IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="{class}"/></IPARAMVALUE><IPARAMVALUE NAME="MaxObjectCount"><VALUE>{PULL_MAX_OBJECT_COUNT}</VALUE></IPARAMVALUE></IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>"#
    )
}

fn pull_body(context: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8" ?>
<CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="2003" PROTOCOLVERSION="1.0"><SIMPLEREQ><IMETHODCALL NAME="PullInstancesWithPath"><LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="cimv2"/></LOCALNAMESPACEPATH><IPARAMVALUE NAME="EnumerationContext"><VALUE>{context}</VALUE></IPARAMVALUE><IPARAMVALUE NAME="MaxObjectCount"><VALUE>{PULL_MAX_OBJECT_COUNT}</VALUE></IPARAMVALUE></IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>"#
    )
}

/// The text of `<VALUE>` in the `PARAMVALUE` named `name` of a pull response.
fn output_parameter<'a>(body: &'a [u8], name: &str) -> Option<&'a str> {
    let marker = format!(r#"NAME="{name}""#);
    let at = memmem::rfind(body, marker.as_bytes())?;
    let rest = &body[at..];
    let start = memmem::find(rest, b"<VALUE>")? + "<VALUE>".len();
    let end = start + memmem::find(&rest[start..], b"</VALUE>")?;
    std::str::from_utf8(&rest[start..end]).ok()
}

/// Checks a large enumeration's counts and trailers.
fn large_errors(counter: &Counter, head: &ResponseHead, expected: u32) -> Vec<String> {
    let mut errors = Vec::new();
    if head.status != 200 {
        errors.push(format!("HTTP {}", head.status));
    }
    if counter.errors > 0 {
        errors.push(format!("{} ERROR elements", counter.errors));
    }
    if counter.instances != u64::from(expected) {
        errors.push(format!(
            "{} instances instead of {expected}",
            counter.instances
        ));
    }
    for (name, value) in &head.trailers {
        if name.eq_ignore_ascii_case("CIMStatusCode") && value != "0" {
            errors.push(format!("trailer CIMStatusCode: {value}"));
        }
    }
    errors
}

/// EnumerateInstances of every bench instance in one response, chunked (`TE: trailers`) or
/// buffered.
async fn enumerate_all(
    server: &ServerProcess,
    target: &Target,
    instances: u32,
    chunked: bool,
) -> anyhow::Result<LargeResult> {
    let request = cim_request(
        target.address,
        "EnumerateInstances",
        "root/cimv2",
        &enumerate_body(BENCH_CLASS),
        chunked,
    );
    let peak_reset = server.reset_peak();
    let cpu_before = server.cpu()?;
    let started = Instant::now();
    let mut connection = target.connect().await?;
    let mut counter = Counter::new();
    let head = tokio::time::timeout(LARGE_TIMEOUT, connection.exchange(&request, &mut counter))
        .await
        .map_err(|_| anyhow!("the enumeration took longer than {LARGE_TIMEOUT:?}"))??;
    let elapsed = started.elapsed();
    let mut errors = large_errors(&counter, &head, instances);
    if head.chunked != chunked {
        errors.push(format!(
            "the response was {}chunked",
            if head.chunked { "" } else { "not " }
        ));
    }
    if let Err(error) = peak_reset {
        errors.push(format!("{error} (peak is since start)"));
    }
    Ok(LargeResult {
        mode: if chunked {
            "EnumerateInstances, TE: trailers (chunked)"
        } else {
            "EnumerateInstances, no TE (spooled, Content-Length)"
        },
        elapsed,
        bytes: counter.bytes,
        instances: counter.instances,
        exchanges: 1,
        errors,
        server_cpu: server.cpu()?.saturating_sub(cpu_before),
        peak_rss_kilobytes: server.memory_kilobytes("VmHWM")?,
        rss_after_kilobytes: server.memory_kilobytes("VmRSS")?,
    })
}

/// OpenEnumerateInstances, then PullInstancesWithPath until EndOfSequence, on one connection.
async fn pull_all(
    server: &ServerProcess,
    target: &Target,
    instances: u32,
) -> anyhow::Result<LargeResult> {
    let peak_reset = server.reset_peak();
    let cpu_before = server.cpu()?;
    let started = Instant::now();
    let mut connection = target.connect().await?;
    let (mut bytes, mut found, mut exchanges) = (0u64, 0u64, 0u64);
    let mut errors = Vec::new();
    let mut body = Vec::new();
    let mut request = cim_request(
        target.address,
        "OpenEnumerateInstances",
        "root/cimv2",
        &open_body(BENCH_CLASS),
        false,
    );
    loop {
        body.clear();
        let head = tokio::time::timeout(LARGE_TIMEOUT, connection.exchange(&request, &mut body))
            .await
            .map_err(|_| anyhow!("a pull took longer than {LARGE_TIMEOUT:?}"))??;
        exchanges += 1;
        bytes += body.len() as u64;
        found += memmem::find_iter(&body, b"<INSTANCE ").count() as u64;
        if head.status != 200 || memmem::find(&body, b"<ERROR").is_some() {
            errors.push(format!(
                "HTTP {}: {}",
                head.status,
                String::from_utf8_lossy(&body[..body.len().min(400)])
            ));
            break;
        }
        let end = output_parameter(&body, "EndOfSequence")
            .ok_or_else(|| anyhow!("a pull response has no EndOfSequence"))?;
        if end.eq_ignore_ascii_case("TRUE") {
            break;
        }
        let context = output_parameter(&body, "EnumerationContext")
            .ok_or_else(|| anyhow!("a pull response has no EnumerationContext"))?;
        request = cim_request(
            target.address,
            "PullInstancesWithPath",
            "root/cimv2",
            &pull_body(context),
            false,
        );
    }
    let elapsed = started.elapsed();
    if found != u64::from(instances) {
        errors.push(format!("{found} instances instead of {instances}"));
    }
    if let Err(error) = peak_reset {
        errors.push(format!("{error} (peak is since start)"));
    }
    Ok(LargeResult {
        mode: "OpenEnumerateInstances + PullInstancesWithPath (1000)",
        elapsed,
        bytes,
        instances: found,
        exchanges,
        errors,
        server_cpu: server.cpu()?.saturating_sub(cpu_before),
        peak_rss_kilobytes: server.memory_kilobytes("VmHWM")?,
        rss_after_kilobytes: server.memory_kilobytes("VmRSS")?,
    })
}

// ---------------------------------------------------------------------------------------------
// The report

struct Report {
    cmwbemd: Vec<LoadResult>,
    bare: Vec<LoadResult>,
    stress: LoadResult,
    cmwbemd_idle_kilobytes: u64,
    cmwbemd_after_load_kilobytes: u64,
    cmwbemd_peak_kilobytes: u64,
    response_bytes: usize,
    request_bytes: usize,
    large: Vec<LargeResult>,
    large_idle_kilobytes: u64,
    instances: u32,
}

fn megabytes(kilobytes: u64) -> String {
    format!("{:.1} MB", kilobytes as f64 / 1024.0)
}

fn microseconds(duration: Duration) -> String {
    format!("{:.1} us", duration.as_secs_f64() * 1e6)
}

fn verdict(holds: bool) -> &'static str {
    if holds {
        "holds"
    } else {
        "FAILS"
    }
}

/// How this machine's idle CPUs wait, which decides what one client can get (BENCHMARKS.md,
/// seventh round): in a KVM guest with the `haltpoll` cpuidle driver, `guest_halt_poll_ns`
/// is how long an idle vCPU polls before it halts. At 0 every idle vCPU halts at once, so each
/// wake-up of the other core (the request reaching the server, the answer reaching the
/// client) costs an exit to the host.
fn idle_state() -> String {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|text| text.trim().to_owned())
    };
    let driver = read("/sys/devices/system/cpu/cpuidle/current_driver");
    let poll = read("/sys/module/haltpoll/parameters/guest_halt_poll_ns");
    match (driver, poll) {
        (Some(driver), Some(poll)) if driver == "haltpoll" => {
            format!("CPU idle: cpuidle driver haltpoll, guest_halt_poll_ns {poll}")
        }
        (Some(driver), _) => format!("CPU idle: cpuidle driver {driver}"),
        (None, _) => "CPU idle: no cpuidle driver reported".to_owned(),
    }
}

impl Report {
    /// The best rate of the runs of (scheme, clients).
    fn rate(results: &[LoadResult], scheme: &str, clients: usize) -> f64 {
        results
            .iter()
            .filter(|r| r.scheme == scheme && r.clients == clients)
            .map(LoadResult::rate)
            .fold(0.0, f64::max)
    }

    fn print(&self, settings: &Settings) {
        println!();
        println!(
            "EnumerateInstances CIM_ObjectManager in root/interop: request {} bytes, \
             response body {} bytes; {} run(s) of {} s measured after {} s warm-up; client runtime {} thread(s)",
            self.request_bytes,
            self.response_bytes,
            settings.repeat,
            settings.duration.as_secs(),
            settings.warmup.as_secs(),
            settings.client_threads
        );
        println!("{}", idle_state());
        println!();
        println!(
            "| server | scheme | clients | runs | best req/s | median req/s | server CPU/req (median run) | client CPU/req (median run) | errors |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        let all = summaries(&self.cmwbemd)
            .into_iter()
            .chain(summaries(&self.bare))
            .chain(summaries(std::slice::from_ref(&self.stress)));
        for summary in all {
            let first = summary.first;
            println!(
                "| {} | {} | {} | {} | {:.0} | {:.0} | {} | {} | {} |",
                first.server,
                first.scheme,
                first.clients,
                summary.runs,
                summary.best,
                summary.median.rate(),
                microseconds(summary.median.server_cpu_per_request()),
                microseconds(summary.median.client_cpu_per_request()),
                summary.errors
            );
            for sample in &summary.samples {
                println!("|   error: {sample} | | | | | | | | |");
            }
        }
        println!();
        println!(
            "cmwbemd RSS: idle after start {}, after the load {} (peak {})",
            megabytes(self.cmwbemd_idle_kilobytes),
            megabytes(self.cmwbemd_after_load_kilobytes),
            megabytes(self.cmwbemd_peak_kilobytes)
        );
        println!();
        println!(
            "Large enumerations: {} x CIMGUARD_BenchItem (~1 KB Payload) over HTTPS, one client; \
             bench_server idle RSS {}",
            self.instances,
            megabytes(self.large_idle_kilobytes)
        );
        println!();
        println!("| mode | time | MB/s | bytes | instances | exchanges | server CPU | peak RSS | above idle | RSS after | errors |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for large in &self.large {
            println!(
                "| {} | {:.2} s | {:.0} | {} | {} | {} | {:.2} s | {} | {} | {} | {} |",
                large.mode,
                large.elapsed.as_secs_f64(),
                large.bytes as f64 / 1e6 / large.elapsed.as_secs_f64(),
                large.bytes,
                large.instances,
                large.exchanges,
                large.server_cpu.as_secs_f64(),
                megabytes(large.peak_rss_kilobytes),
                megabytes(
                    large
                        .peak_rss_kilobytes
                        .saturating_sub(self.large_idle_kilobytes)
                ),
                megabytes(large.rss_after_kilobytes),
                if large.errors.is_empty() {
                    "0".to_owned()
                } else {
                    large.errors.join("; ")
                }
            );
        }
        self.print_targets();
    }

    fn print_targets(&self) {
        let http_1 = Self::rate(&self.cmwbemd, "http", 1);
        let https_1 = Self::rate(&self.cmwbemd, "https", 1);
        let https_8 = Self::rate(&self.cmwbemd, "https", 8);
        let http_8 = Self::rate(&self.cmwbemd, "http", 8);
        let sfcb = 2686.0;
        println!();
        println!("Targets (best of the runs):");
        println!(
            "- one client >= 10x SFCB (26,860 req/s): HTTP {:.0} ({:.1}x), HTTPS {:.0} ({:.1}x): {} / {}",
            http_1,
            http_1 / sfcb,
            https_1,
            https_1 / sfcb,
            verdict(http_1 >= 10.0 * sfcb),
            verdict(https_1 >= 10.0 * sfcb)
        );
        println!(
            "- HTTPS >= 90% of HTTP: 1 client {:.0}%, 8 clients {:.0}%: {} / {}",
            100.0 * https_1 / http_1,
            100.0 * https_8 / http_8,
            verdict(https_1 >= 0.9 * http_1),
            verdict(https_8 >= 0.9 * http_8)
        );
        for (scheme, clients) in [("http", 1), ("http", 8), ("https", 1), ("https", 8)] {
            let ours = Self::rate(&self.cmwbemd, scheme, clients);
            let bare = Self::rate(&self.bare, scheme, clients);
            println!(
                "- >= half of bare hyper, {scheme} x{clients}: {ours:.0} / {bare:.0} = {:.0}%: {}",
                100.0 * ours / bare,
                verdict(ours >= 0.5 * bare)
            );
        }
        println!(
            "- no error with {} clients: {} errors: {}",
            self.stress.clients,
            self.stress.errors,
            verdict(self.stress.errors == 0)
        );
        println!(
            "- idle RSS < 15 MB: {} after start, {} after the load: {}",
            megabytes(self.cmwbemd_idle_kilobytes),
            megabytes(self.cmwbemd_after_load_kilobytes),
            verdict(self.cmwbemd_idle_kilobytes < 15 * 1024)
        );
        for large in &self.large {
            let above = large
                .peak_rss_kilobytes
                .saturating_sub(self.large_idle_kilobytes);
            println!(
                "- large enumeration peak < 50 MB above idle, {}: {}: {}",
                large.mode,
                megabytes(above),
                verdict(above < 50 * 1024)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Main

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; this benchmark takes its settings from the environment.
    let settings = Settings::from_environment()?;
    let runtime = if settings.client_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(settings.client_threads)
            .enable_all()
            .build()?
    };
    let report = runtime.block_on(run(&settings))?;
    report.print(&settings);
    Ok(())
}

async fn run(settings: &Settings) -> anyhow::Result<Report> {
    let scratch = tempfile::tempdir()?;
    let path_text = |path: &Path| path.to_string_lossy().into_owned();

    eprintln!("cmwbemd: {}", settings.cmwbemd.display());
    let tls_dir = scratch.path().join("cmwbemd-tls");
    let cmwbemd = ServerProcess::start(
        "cmwbemd",
        &settings.cmwbemd,
        &[
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--tls-dir",
            &path_text(&tls_dir),
            "--state-dir",
            &path_text(&scratch.path().join("cmwbemd-state")),
            "--danger-allow-anonymous",
        ],
    )?;
    let cmwbemd_idle_kilobytes = cmwbemd.memory_kilobytes("VmRSS")?;
    let ca = tls_dir.join("ca.pem");
    let probe = cim_request(
        cmwbemd.http,
        "EnumerateInstances",
        "root/interop",
        &requests::enumerate_object_manager(),
        false,
    );
    let mut expected: Arc<[u8]> =
        Arc::from(reference_body(&Target::plain(cmwbemd.http), &probe).await?);
    if std::env::var("WBEM_BENCH_STATISTICS").is_ok_and(|v| v == "1") {
        gather_statistics(&Target::plain(cmwbemd.http), cmwbemd.http, &expected).await?;
        // The object manager now says GatherStatisticalData TRUE.
        expected = Arc::from(reference_body(&Target::plain(cmwbemd.http), &probe).await?);
    }
    let body_file = scratch.path().join("body.xml");
    std::fs::write(&body_file, &expected)?;
    let bare_tls = scratch.path().join("bare-tls");
    let mut bare_args = vec![
        "--tls-dir".to_owned(),
        path_text(&bare_tls),
        "--body".to_owned(),
        path_text(&body_file),
    ];
    if let Ok(extra) = std::env::var("WBEM_BENCH_BARE_ARGS") {
        bare_args.extend(extra.split_whitespace().map(str::to_owned));
    }
    let bare_args: Vec<&str> = bare_args.iter().map(String::as_str).collect();
    let bare = ServerProcess::start("bare hyper", &settings.bare_hyper, &bare_args)?;
    let servers = [(&cmwbemd, ca.clone()), (&bare, bare_tls.join("ca.pem"))];
    let mut results = load_runs(settings, &servers, &expected).await?.into_iter();
    let (Some(cmwbemd_results), Some(bare_results)) = (results.next(), results.next()) else {
        bail!("the load runs gave no results");
    };
    drop(bare);
    let stress = LoadRun {
        server: &cmwbemd,
        perf: perf_file(settings, "cmwbemd", "https", settings.stress_clients),
        scheme: "https",
        target: Target::tls(cmwbemd.https, &ca)?,
        request: Arc::from(cim_request(
            cmwbemd.https,
            "EnumerateInstances",
            "root/interop",
            &requests::enumerate_object_manager(),
            false,
        )),
        expected: expected.clone(),
    }
    .run(
        settings.stress_clients,
        settings.warmup,
        settings.stress_duration,
    )
    .await?;
    eprintln!(
        "  cmwbemd https x{}: {:.0} req/s, {} errors",
        stress.clients,
        stress.rate(),
        stress.errors
    );
    let cmwbemd_after_load_kilobytes = cmwbemd.memory_kilobytes("VmRSS")?;
    let cmwbemd_peak_kilobytes = cmwbemd.memory_kilobytes("VmHWM")?;
    drop(cmwbemd);

    let bench_tls = scratch.path().join("bench-tls");
    let instances = settings.instances.to_string();
    let bench = ServerProcess::start(
        "bench_server",
        &settings.bench_server,
        &[
            "--tls-dir",
            &path_text(&bench_tls),
            "--instances",
            &instances,
        ],
    )?;
    let large_idle_kilobytes = bench.memory_kilobytes("VmRSS")?;
    let target = Target::tls(bench.https, &bench_tls.join("ca.pem"))?;
    let mut large = Vec::new();
    large.push(enumerate_all(&bench, &target, settings.instances, true).await?);
    large.push(enumerate_all(&bench, &target, settings.instances, false).await?);
    large.push(pull_all(&bench, &target, settings.instances).await?);
    for result in &large {
        eprintln!(
            "  bench_server {}: {:.2} s, peak {}",
            result.mode,
            result.elapsed.as_secs_f64(),
            megabytes(result.peak_rss_kilobytes)
        );
    }
    drop(bench);

    Ok(Report {
        cmwbemd: cmwbemd_results,
        bare: bare_results,
        stress,
        cmwbemd_idle_kilobytes,
        cmwbemd_after_load_kilobytes,
        cmwbemd_peak_kilobytes,
        response_bytes: expected.len(),
        request_bytes: probe.len(),
        large,
        large_idle_kilobytes,
        instances: settings.instances,
    })
}
