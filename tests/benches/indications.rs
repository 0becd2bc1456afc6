//! Indication delivery, measured: the outbox and the delivery tasks of `cimguard-indications`
//! against a Rust listener (hyper) on loopback, over HTTP and HTTPS, and the whole path from
//! a cluster event to the listener. Prints its figures (BENCHMARKS.md, "Indications");
//! asserts nothing.
//!
//! `cargo build --release --bins && CIMGUARD_BIN_DIR=$PWD/target/release \
//!  cargo bench -p cimguard-tests --bench indications`
//!
//! Each indication is an ExportIndication of an HP_SGAlertIndication as the agent sends one
//! (about 2.3 KB), its sequence number and the time of its event written into it. The
//! listener takes multiple export requests (MULTIEXPREQ), or refuses them as pywbem's does
//! ("one by one"). The cases (`INDICATIONS_BENCH_CASES`, a comma list; all by default;
//! `INDICATIONS_BENCH_SCHEMES=http,https` likewise):
//! - cluster: from a `cmsetresource` on a one-node cluster of real processes (`cmcld` with
//!   its agent) to the listener, 1,000 events one at a time; p50, p99, max;
//! - burst: 500 indications committed one after the other at once; how many the listener
//!   took on the first attempt and how long the last one took;
//! - sustained: 50,000 events committed as the agent's reader commits (what arrived since
//!   its last commit), as fast as taken; the rate at which the listener received them;
//! - rate: the same at 10,000 events a second: whether the listener keeps up, the latency;
//! - drain: 20,000 queued before the delivery starts; the rate at which it empties;
//! - latency: 1,000 indications a second for 5 s, one commit each; event to listener
//!   received, p50, p99 and max;
//! - fanout: 100 destinations, 100 events a second, each queued for all 100 (one event that
//!   100 subscriptions take), for 5 s; the rate delivered and the latency.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cimguard_certs::{ClientTlsSettings, ServerNames, TlsSettings};
use cimguard_indications::{Batch, Delivery, Outbox, Policy, Stats, Target};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

const ANSWER: &str = r#"<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="1" PROTOCOLVERSION="1.0"><SIMPLEEXPRSP><EXPMETHODRESPONSE NAME="ExportIndication"/></SIMPLEEXPRSP></MESSAGE></CIM>"#;

/// The body of an alert as the agent sends it, with `{stamp}` for the commit time and
/// `{seq}` for the sequence number.
fn template() -> String {
    let mut properties = String::new();
    for (name, value) in [
        ("IndicationIdentifier", "cimguard:demo:node1:7:{seq}"),
        ("IndicationTime", "20261202051500.000000+000"),
        ("EventID", "PackageFailed"),
        ("ProbableCauseDescription", "PackageFailed"),
        ("SystemCreationClassName", "HP_SGCluster"),
        ("SystemName", "demo"),
        ("ProviderName", "cimguard"),
        ("MessageID", "PackageFailed"),
        (
            "Message",
            "package dbpkg failed on node node1: service db_monitor exited and has no restarts left",
        ),
        (
            "Description",
            "package dbpkg failed on node node1: service db_monitor exited and has no restarts left",
        ),
        ("ClusterName", "demo"),
        ("NodeName", "node1"),
        ("PackageName", "dbpkg"),
        ("PreviousStatus", "up"),
        ("PreviousState", "running"),
        ("NewStatus", "down"),
        ("NewState", "failing"),
        ("SequenceContext", "cimguard:6619f30e6319f:0"),
        ("Stamp", "{stamp}"),
    ] {
        properties.push_str(&format!(
            "<PROPERTY NAME=\"{name}\" TYPE=\"string\"><VALUE>{value}</VALUE></PROPERTY>"
        ));
    }
    for (name, value) in [
        ("AlertType", 4),
        ("PerceivedSeverity", 6),
        ("ProbableCause", 1),
    ] {
        properties.push_str(&format!(
            "<PROPERTY NAME=\"{name}\" TYPE=\"uint16\"><VALUE>{value}</VALUE></PROPERTY>"
        ));
    }
    properties.push_str(
        "<PROPERTY NAME=\"AlertingManagedElement\" TYPE=\"string\"><VALUE>//node1/root/cimv2:HP_SGPackage.Name=&quot;dbpkg&quot;</VALUE></PROPERTY>",
    );
    properties.push_str(
        "<PROPERTY NAME=\"SequenceNumber\" TYPE=\"sint64\"><VALUE>{seq}</VALUE></PROPERTY>",
    );
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\" ?><CIM CIMVERSION=\"2.0\" DTDVERSION=\"2.0\">\
         <MESSAGE ID=\"{{seq}}\" PROTOCOLVERSION=\"1.0\"><SIMPLEEXPREQ>\
         <EXPMETHODCALL NAME=\"ExportIndication\"><EXPPARAMVALUE NAME=\"NewIndication\">\
         <INSTANCE CLASSNAME=\"HP_SGAlertIndication\">{properties}</INSTANCE>\
         </EXPPARAMVALUE></EXPMETHODCALL></SIMPLEEXPREQ></MESSAGE></CIM>"
    )
}

/// What the listener measured.
#[derive(Default)]
struct Heard {
    count: AtomicU64,
    /// Commit asked to received, in microseconds.
    latencies: Mutex<Vec<u64>>,
    /// Whether the listener takes multiple export requests (else it refuses them, 501).
    batches: bool,
    /// When each indication arrived, in order.
    arrivals: Mutex<Vec<Instant>>,
    /// Told when indications arrive (with `arrivals`).
    arrived: std::sync::Condvar,
    /// The sequence number of every indication received, in order of arrival.
    sequences: Mutex<Vec<i64>>,
}

/// Serves ExportIndication on `listener`, recording the latency written in each indication;
/// a multiple export request is answered with a MULTIEXPRSP, or refused as DSP0200 says
/// when the listener does not take them.
fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    base: Instant,
    heard: Arc<Heard>,
) {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let _ = stream.set_nodelay(true);
            let heard = heard.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let heard = heard.clone();
                    async move {
                        let batch = request.headers().contains_key("CIMExportBatch");
                        if batch && !heard.batches {
                            return Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .status(501)
                                    .header("CIMError", "multiple-requests-unsupported")
                                    .body(Full::new(Bytes::new()))
                                    .unwrap(),
                            );
                        }
                        let body = request
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let now = Instant::now();
                        let arrived = base.elapsed().as_micros() as u64;
                        let stamps = stamps_of(&body);
                        heard
                            .latencies
                            .lock()
                            .unwrap()
                            .extend(stamps.iter().map(|stamp| arrived.saturating_sub(*stamp)));
                        let count = String::from_utf8_lossy(&body)
                            .matches("<EXPMETHODCALL ")
                            .count();
                        heard
                            .arrivals
                            .lock()
                            .unwrap()
                            .extend(std::iter::repeat_n(now, count));
                        heard.sequences.lock().unwrap().extend(sequences_of(&body));
                        heard.count.fetch_add(count as u64, Ordering::Relaxed);
                        heard.arrived.notify_all();
                        let answer = if batch {
                            Bytes::from(multi_answer(count))
                        } else {
                            Bytes::from_static(ANSWER.as_bytes())
                        };
                        Ok(hyper::Response::new(Full::new(answer)))
                    }
                });
                let builder = hyper::server::conn::http1::Builder::new();
                match tls {
                    None => {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                    Some(config) => {
                        if let Ok(stream) =
                            tokio_rustls::TlsAcceptor::from(config).accept(stream).await
                        {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                }
            });
        }
    });
}

/// The stamps of the indications of a request, one per indication.
fn stamps_of(body: &[u8]) -> Vec<u64> {
    let text = String::from_utf8_lossy(body);
    text.split("NAME=\"Stamp\" TYPE=\"string\"><VALUE>")
        .skip(1)
        .filter_map(|rest| rest.split('<').next()?.parse().ok())
        .collect()
}

/// The SequenceNumber of every indication in an export request.
fn sequences_of(body: &[u8]) -> Vec<i64> {
    let text = String::from_utf8_lossy(body);
    text.split("NAME=\"SequenceNumber\" TYPE=\"sint64\"><VALUE>")
        .skip(1)
        .filter_map(|rest| rest.split('<').next()?.parse().ok())
        .collect()
}

/// The answer to a multiple export request of `count` indications.
fn multi_answer(count: usize) -> String {
    let one = r#"<SIMPLEEXPRSP><EXPMETHODRESPONSE NAME="ExportIndication"/></SIMPLEEXPRSP>"#;
    format!(
        r#"<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="1" PROTOCOLVERSION="1.0"><MULTIEXPRSP>{}</MULTIEXPRSP></MESSAGE></CIM>"#,
        one.repeat(count)
    )
}

/// Queues one indication for each of `destinations`, stamped now.
async fn commit(outbox: &Outbox, destinations: &[String], template: &Arc<String>, base: Instant) {
    let mut batch = Batch::new();
    let stamp = base.elapsed().as_micros().to_string();
    for destination in destinations {
        let template = template.clone();
        let stamp = stamp.clone();
        batch.append(
            destination,
            Box::new(move |_context, sequence| {
                template
                    .replace("{seq}", &sequence.to_string())
                    .replace("{stamp}", &stamp)
                    .into_bytes()
            }),
        );
    }
    outbox.commit(batch).await.expect("commit");
}

struct Setup {
    outbox: Outbox,
    destinations: Vec<String>,
    stats: Vec<Arc<Stats>>,
    heard: Arc<Heard>,
    stops: Vec<watch::Sender<bool>>,
    /// Deliveries not started yet (`setup_held`).
    held: Vec<(Delivery, watch::Receiver<bool>)>,
    _dir: tempfile::TempDir,
}

impl Setup {
    /// Starts the held deliveries.
    fn start(&mut self) {
        for (delivery, stopped) in self.held.drain(..) {
            tokio::spawn(delivery.run(stopped));
        }
    }
}

async fn setup(https: bool, batches: bool, destinations: usize, base: Instant) -> Setup {
    let mut setup = setup_held(https, batches, destinations, base).await;
    setup.start();
    setup
}

/// Like [`setup`], with the deliveries not started.
async fn setup_held(https: bool, batches: bool, destinations: usize, base: Instant) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = Outbox::open(&dir.path().join("outbox.redb"), 1_000_000).expect("outbox");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address: SocketAddr = listener.local_addr().expect("address");
    let heard = Arc::new(Heard {
        batches,
        ..Heard::default()
    });
    let (server_tls, client_tls) = if https {
        let names = ServerNames {
            dns_names: vec!["localhost".into()],
            ip_addresses: vec![std::net::Ipv4Addr::LOCALHOST.into()],
        };
        let paths = cimguard_certs::ensure(&dir.path().join("tls"), &names).expect("tls");
        let server = cimguard_certs::server_config(&TlsSettings {
            paths: paths.clone(),
            client_ca: None,
        })
        .expect("server tls");
        let client = ClientTlsSettings {
            system_roots: false,
            trusted_ca: vec![paths.ca_cert],
            ..ClientTlsSettings::default()
        };
        (Some(server), client)
    } else {
        (None, ClientTlsSettings::default())
    };
    serve(listener, server_tls, base, heard.clone());
    let tls = cimguard_certs::client_config(&client_tls).expect("client tls");
    let scheme = if https { "https" } else { "http" };
    let mut setup = Setup {
        outbox: outbox.clone(),
        destinations: Vec::new(),
        stats: Vec::new(),
        heard,
        stops: Vec::new(),
        held: Vec::new(),
        _dir: dir,
    };
    for k in 0..destinations {
        let key = format!("destination{k}");
        let stats = Arc::new(Stats::default());
        let delivery = Delivery {
            outbox: outbox.clone(),
            key: key.clone(),
            target: Target::parse(&format!("{scheme}://{address}")).expect("url"),
            tls: tls.clone(),
            policy: Policy::default(),
            stats: stats.clone(),
        };
        let (stop, stopped) = watch::channel(false);
        setup.held.push((delivery, stopped));
        setup.destinations.push(key);
        setup.stats.push(stats);
        setup.stops.push(stop);
    }
    setup
}

async fn wait_for(heard: &Heard, count: u64) -> Duration {
    let start = Instant::now();
    while heard.count.load(Ordering::Relaxed) < count {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "delivery stalled"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    start.elapsed()
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

/// The machine's CPU ticks from /proc/stat's first line: (steal, all).
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|t| t.parse().unwrap_or(0))
        .collect();
    Some((*ticks.get(7)?, ticks.iter().sum()))
}

/// The share of CPU time the hypervisor took from this machine between two readings of
/// [`cpu_ticks`] (on a shared host, latency figures follow it).
fn steal_between(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> String {
    match (before, after) {
        (Some((s0, t0)), Some((s1, t1))) if t1 > t0 => {
            format!("{:.1}%", 100.0 * (s1 - s0) as f64 / (t1 - t0) as f64)
        }
        _ => "unknown".into(),
    }
}

fn latencies(heard: &Heard) -> String {
    let mut all = heard.latencies.lock().unwrap().clone();
    all.sort_unstable();
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        percentile(&all, 1.0)
    )
}

/// True when `name` is in the comma list of the environment variable `list`, or it is unset:
/// `INDICATIONS_BENCH_CASES` (cluster, burst, sustained, rate, drain, latency, fanout) and
/// `INDICATIONS_BENCH_SCHEMES` (http, https).
fn listed(list: &str, name: &str) -> bool {
    std::env::var(list).map_or(true, |names| names.split(',').any(|n| n.trim() == name))
}

fn wanted(case: &str) -> bool {
    listed("INDICATIONS_BENCH_CASES", case)
}

/// True when `case` is named in `INDICATIONS_BENCH_CASES` (a long case runs only when asked).
fn asked(case: &str) -> bool {
    std::env::var("INDICATIONS_BENCH_CASES")
        .is_ok_and(|names| names.split(',').any(|n| n.trim() == case))
}

async fn run(https: bool) {
    let scheme = if https { "HTTPS" } else { "HTTP" };
    let template = Arc::new(template());
    let base = Instant::now();
    if wanted("burst") {
        burst(https, scheme, &template, base).await;
    }
    for batches in [true, false] {
        let scheme = &format!(
            "{scheme} {}",
            if batches { "(batches)" } else { "(one by one)" }
        );
        if wanted("sustained") {
            sustained(https, batches, scheme, &template, base, None).await;
        }
        if wanted("rate") {
            sustained(https, batches, scheme, &template, base, Some(10)).await;
        }
        if wanted("drain") {
            drain(https, batches, scheme, &template, base).await;
        }
    }
    if wanted("latency") {
        latency(https, scheme, &template, base).await;
    }
    if asked("soak") {
        soak(https, scheme, &template, base).await;
    }
    if wanted("fanout") {
        fanout(https, scheme, &template, base).await;
    }
}

/// A burst: 500 at once.
async fn burst(https: bool, scheme: &str, template: &Arc<String>, base: Instant) {
    let s = setup(https, true, 1, base).await;
    let start = Instant::now();
    for _ in 0..500 {
        commit(&s.outbox, &s.destinations, template, base).await;
    }
    let queued = start.elapsed();
    wait_for(&s.heard, 500).await;
    let failed = s.stats[0].failed_attempts.load(Ordering::Relaxed);
    println!(
        "{scheme} burst: 500 queued in {:.1} ms, all 500 delivered {:.1} ms after the first \
         commit; failed attempts {failed} (delivered first time: {}); {}",
        queued.as_secs_f64() * 1000.0,
        start.elapsed().as_secs_f64() * 1000.0,
        500 - failed.min(500),
        latencies(&s.heard)
    );
}

/// Commits events as the agent's reader does: whatever has arrived since its last commit,
/// in one commit. Each event is its stamp (when it happened).
async fn reader(
    outbox: Outbox,
    destination: String,
    template: Arc<String>,
    mut events: tokio::sync::mpsc::Receiver<u64>,
) {
    while let Some(first) = events.recv().await {
        let mut stamps = vec![first];
        while stamps.len() < 4096 {
            match events.try_recv() {
                Ok(stamp) => stamps.push(stamp),
                Err(_) => break,
            }
        }
        let mut batch = Batch::new();
        for stamp in stamps {
            let template = template.clone();
            batch.append(
                &destination,
                Box::new(move |_context, sequence| {
                    template
                        .replace("{seq}", &sequence.to_string())
                        .replace("{stamp}", &stamp.to_string())
                        .into_bytes()
                }),
            );
        }
        outbox.commit(batch).await.expect("commit");
    }
}

/// Sustained: 50,000 events to one listener through a reader that commits what has arrived
/// since its last commit. With `per_ms`, they happen at that many a millisecond; without,
/// as fast as the reader takes them (the rate is then the most the outbox and the delivery
/// sustain).
async fn sustained(
    https: bool,
    batches: bool,
    scheme: &str,
    template: &Arc<String>,
    base: Instant,
    per_ms: Option<usize>,
) {
    const EVENTS: usize = 50_000;
    let s = setup(https, batches, 1, base).await;
    let (events, arrived) = tokio::sync::mpsc::channel(4096);
    let reading = tokio::spawn(reader(
        s.outbox.clone(),
        s.destinations[0].clone(),
        template.clone(),
        arrived,
    ));
    let start = Instant::now();
    match per_ms {
        None => {
            for _ in 0..EVENTS {
                let stamp = base.elapsed().as_micros() as u64;
                events.send(stamp).await.expect("reader");
            }
        }
        Some(per_ms) => {
            let mut ticker = tokio::time::interval(Duration::from_millis(1));
            for _ in 0..EVENTS / per_ms {
                ticker.tick().await;
                for _ in 0..per_ms {
                    let stamp = base.elapsed().as_micros() as u64;
                    events.send(stamp).await.expect("reader");
                }
            }
        }
    }
    drop(events);
    wait_for(&s.heard, EVENTS as u64).await;
    let total = start.elapsed();
    reading.await.expect("reader");
    let what = match per_ms {
        None => "sustained, as fast as taken".to_owned(),
        Some(per_ms) => format!("at {}/s", per_ms * 1000),
    };
    println!(
        "{scheme} {what}: {EVENTS} delivered to one listener in {:.2} s: {:.0}/s; {}",
        total.as_secs_f64(),
        EVENTS as f64 / total.as_secs_f64(),
        latencies(&s.heard)
    );
}

/// Drain: 20,000 queued in batches of 1,000 before the delivery starts; the rate at which
/// one delivery empties the queue (the delivery alone, no commit of new indications).
async fn drain(https: bool, batches: bool, scheme: &str, template: &Arc<String>, base: Instant) {
    let mut s = setup_held(https, batches, 1, base).await;
    for _ in 0..20 {
        let mut batch = Batch::new();
        for _ in 0..1_000 {
            let template = template.clone();
            batch.append(
                &s.destinations[0],
                Box::new(move |_context, sequence| {
                    template
                        .replace("{seq}", &sequence.to_string())
                        .replace("{stamp}", "0")
                        .into_bytes()
                }),
            );
        }
        s.outbox.commit(batch).await.expect("commit");
    }
    let start = Instant::now();
    s.start();
    wait_for(&s.heard, 20_000).await;
    let total = start.elapsed();
    println!(
        "{scheme} drain: 20,000 queued, delivered to one listener in {:.2} s: {:.0}/s",
        total.as_secs_f64(),
        20_000.0 / total.as_secs_f64(),
    );
}

/// Latency at 1,000/s.
async fn latency(https: bool, scheme: &str, template: &Arc<String>, base: Instant) {
    let s = setup(https, true, 1, base).await;
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    for _ in 0..5_000 {
        ticker.tick().await;
        commit(&s.outbox, &s.destinations, template, base).await;
    }
    wait_for(&s.heard, 5_000).await;
    println!(
        "{scheme} latency at 1,000/s (5,000 indications, one commit each): {}",
        latencies(&s.heard)
    );
}

/// The soak: 1,000 indications a second, one commit each, for `INDICATIONS_BENCH_SOAK_SECONDS`
/// (600); every minute the rate received, the latency and this process's memory (the outbox
/// and the delivery live here); at the end whether each sequence number arrived exactly once.
async fn soak(https: bool, scheme: &str, template: &Arc<String>, base: Instant) {
    let seconds: u64 = std::env::var("INDICATIONS_BENCH_SOAK_SECONDS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(600);
    let s = setup(https, true, 1, base).await;
    let total = seconds * 1_000;
    println!("{scheme} soak at 1,000/s for {seconds} s ({total} indications, one commit each):");
    println!(
        "{:>6} {:>10} {:>12} {:>12} {:>10}",
        "s", "received/s", "p99 ms", "max ms", "RSS MiB"
    );
    let start = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    let mut sent = 0u64;
    let mut minute = 1;
    let mut seen_latencies = 0;
    let mut seen_count = 0;
    let mut last_sample = start;
    while sent < total {
        ticker.tick().await;
        commit(&s.outbox, &s.destinations, template, base).await;
        sent += 1;
        if start.elapsed() >= Duration::from_secs(60 * minute) || sent == total {
            let count = s.heard.count.load(Ordering::Relaxed);
            let mut latencies: Vec<u64> =
                s.heard.latencies.lock().unwrap()[seen_latencies..].to_vec();
            seen_latencies += latencies.len();
            latencies.sort_unstable();
            let p99 = latencies
                .get(latencies.len().saturating_sub(1) * 99 / 100)
                .copied()
                .unwrap_or(0);
            let rss = std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|t| {
                    t.lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                })
                .unwrap_or(0);
            println!(
                "{:>6} {:>10.0} {:>12.2} {:>12.2} {:>10.1}",
                start.elapsed().as_secs(),
                (count - seen_count) as f64 / last_sample.elapsed().as_secs_f64(),
                p99 as f64 / 1000.0,
                latencies.last().copied().unwrap_or(0) as f64 / 1000.0,
                rss as f64 / 1024.0
            );
            seen_count = count;
            last_sample = Instant::now();
            minute += 1;
        }
    }
    wait_for(&s.heard, total).await;
    let mut sequences = std::mem::take(&mut *s.heard.sequences.lock().unwrap());
    let received = sequences.len();
    let in_order = sequences.windows(2).all(|w| w[0] < w[1]);
    sequences.sort_unstable();
    sequences.dedup();
    let distinct = sequences.len();
    let missing = (0..total as i64)
        .filter(|n| sequences.binary_search(n).is_err())
        .count();
    println!(
        "{scheme} soak: {sent} sent, {received} received, {distinct} distinct, {missing} missing, \
         {} duplicates, in order: {in_order}; {:.0}/s over {:.0} s; {}",
        received - distinct,
        received as f64 / start.elapsed().as_secs_f64(),
        start.elapsed().as_secs_f64(),
        latencies(&s.heard)
    );
}

/// 100 destinations, 100 events/s.
async fn fanout(https: bool, scheme: &str, template: &Arc<String>, base: Instant) {
    let s = setup(https, true, 100, base).await;
    let start = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    for _ in 0..500 {
        ticker.tick().await;
        commit(&s.outbox, &s.destinations, template, base).await;
    }
    wait_for(&s.heard, 50_000).await;
    let total = start.elapsed();
    println!(
        "{scheme} 100 destinations: 500 events x 100 = 50,000 delivered in {:.2} s: {:.0}/s; {}",
        total.as_secs_f64(),
        50_000.0 / total.as_secs_f64(),
        latencies(&s.heard)
    );
    for stop in &s.stops {
        let _ = stop.send(true);
    }
}

/// From the cluster event to the listener: a one-node cluster of real processes (`cmcld`
/// with its agent, from target/debug or `$CIMGUARD_BIN_DIR`), subscribed through pywbem
/// (`listener.py --subscribe-only`) to GenericResourceChanged alerts for this bench's
/// listener (HTTP). Each event is a `cmsetresource` (the admin socket's SetResource) that
/// turns a generic resource up or down; its latency runs from the request to the listener's
/// receipt. Events go one at a time, each once the last arrived.
fn cluster_path(runtime: &tokio::runtime::Runtime) {
    use cimguard_cluster::packages::ResourceValue;
    use cimguard_cluster::runtime::daemon::{Reply, Request};
    use cimguard_tests::cluster::TestCluster;
    const EVENTS: usize = 1_000;
    const ADMIN: (&str, &str) = ("admin", "admin-secret-1");
    let _runtime = runtime.enter();
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let heard = Arc::new(Heard {
        batches: true,
        ..Heard::default()
    });
    serve(listener, None, Instant::now(), heard.clone());
    let mut cluster = TestCluster::configure(1, Duration::from_secs(2), "");
    cluster.with_agents(&[(ADMIN.0, "FULL_ADMIN", ADMIN.1)]);
    cluster.add_package(
        "respkg",
        "package_name respkg\npackage_type failover\nnode_name n1\nauto_run no\n\
         generic_resource_name bench_disk\n\
         generic_resource_evaluation_type during_package_start\n",
    );
    cluster.start_all();
    cluster.wait_for(Duration::from_secs(60), "the cluster up", |c| {
        c.members(1).is_some_and(|(m, _)| m.len() == 1)
    });
    let mut subscribe = cluster.agent_script(1, "listener.py", ADMIN);
    subscribe.args([
        "--listen-port",
        &port.to_string(),
        "--subscribe-only",
        "--query",
        "SELECT * FROM HP_SGAlertIndication WHERE EventID = 'GenericResourceChanged'",
    ]);
    let output = cimguard_tests::pyagent::output_within(&mut subscribe, Duration::from_secs(120))
        .expect("listener.py");
    assert!(
        output.status.success(),
        "{}",
        cimguard_tests::pyagent::describe(&output)
    );
    let mut latencies = Vec::with_capacity(EVENTS);
    let ticks = cpu_ticks();
    for k in 0..EVENTS {
        let asked = Instant::now();
        let reply = cluster.request(
            1,
            &Request::SetResource {
                name: "bench_disk".into(),
                value: ResourceValue::Status(k % 2 == 0),
            },
        );
        assert!(matches!(reply, Ok(Reply::Done)), "{reply:?}");
        // Waits on the listener's word, not spinning: a spinning waiter would take one of
        // the two cores from the processes measured.
        let (arrivals, waited) = heard
            .arrived
            .wait_timeout_while(
                heard.arrivals.lock().unwrap(),
                Duration::from_secs(30),
                |arrivals| arrivals.len() <= k,
            )
            .unwrap();
        assert!(
            !waited.timed_out(),
            "event {k} not heard\n{}",
            cluster.log(1)
        );
        let arrived = arrivals[k];
        drop(arrivals);
        latencies.push(arrived.duration_since(asked).as_micros() as u64);
    }
    let steal = steal_between(ticks, cpu_ticks());
    latencies.sort_unstable();
    println!(
        "HTTP from the cluster event (cmsetresource) to the listener, {EVENTS} events one at \
         a time: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (CPU steal {steal})",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if wanted("cluster") {
        cluster_path(&runtime);
    }
    let ticks = cpu_ticks();
    runtime.block_on(async {
        if listed("INDICATIONS_BENCH_SCHEMES", "http") {
            run(false).await;
        }
        if listed("INDICATIONS_BENCH_SCHEMES", "https") {
            run(true).await;
        }
    });
    println!(
        "CPU steal during the in-process cases: {}",
        steal_between(ticks, cpu_ticks())
    );
}
