//! Delivery from the outbox to a real listener on loopback: a small hyper server that
//! records the bodies it is sent, over HTTP and HTTPS.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cimguard_certs::{ClientTlsSettings, ServerNames, TlsSettings};
use cimguard_indications::{Batch, Delivery, Outbox, Outcome, Policy, Stats, Target, CAPACITY};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

const ANSWER: &str = r#"<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="1" PROTOCOLVERSION="1.0"><SIMPLEEXPRSP><EXPMETHODRESPONSE NAME="ExportIndication"/></SIMPLEEXPRSP></MESSAGE></CIM>"#;

/// The bounds of every wait: far above what any step takes.
const DEADLINE: Duration = Duration::from_secs(20);

/// What a listener received: each body with the request's CIMExportMethod header.
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// Serves ExportIndication on `listener` until the task is aborted.
fn serve(listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>, received: Received) {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let received = received.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let received = received.clone();
                    async move {
                        let method = request
                            .headers()
                            .get("CIMExportMethod")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let body = request.into_body().collect().await.map(|b| b.to_bytes());
                        let body = String::from_utf8_lossy(&body.unwrap_or_default()).into_owned();
                        received.lock().unwrap().push((method, body));
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .header("CIMExport", "MethodResponse")
                                .body(Full::new(Bytes::from_static(ANSWER.as_bytes())))
                                .unwrap(),
                        )
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
                        let Ok(stream) =
                            tokio_rustls::TlsAcceptor::from(config).accept(stream).await
                        else {
                            return;
                        };
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            });
        }
    });
}

async fn batch(outbox: &Outbox, destination: &str, bodies: std::ops::Range<u32>) {
    let mut batch = Batch::new();
    for k in bodies {
        batch.append(
            destination,
            Box::new(move |context, sequence| {
                format!("{context} {sequence} event{k}").into_bytes()
            }),
        );
    }
    outbox.commit(batch).await.expect("commit");
}

/// Waits until `received` holds `count` bodies (or the deadline passes); the bodies.
async fn wait_for(received: &Received, count: usize) -> Vec<String> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let bodies: Vec<String> = received
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.1.clone())
            .collect();
        if bodies.len() >= count || Instant::now() > deadline {
            return bodies;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The delivery's count of delivered indications once it reaches `count` (or the deadline
/// passes): the listeners here record an indication before they answer, and the delivery
/// counts it once it read the answer.
async fn delivered(stats: &Stats, count: u64) -> u64 {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let now = stats.delivered.load(std::sync::atomic::Ordering::Relaxed);
        if now >= count || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn policy() -> Policy {
    Policy {
        retry_interval: Duration::from_millis(200),
        ..Policy::default()
    }
}

fn start(
    outbox: &Outbox,
    url: &str,
    tls: &ClientTlsSettings,
    policy: Policy,
) -> (
    watch::Sender<bool>,
    Arc<Stats>,
    tokio::task::JoinHandle<Outcome>,
) {
    let stats = Arc::new(Stats::default());
    let delivery = Delivery {
        outbox: outbox.clone(),
        key: "dest".into(),
        target: Target::parse(url).expect("url"),
        tls: cimguard_certs::client_config(tls).expect("client tls"),
        policy,
        stats: stats.clone(),
    };
    let (stop, stopped) = watch::channel(false);
    (stop, stats, tokio::spawn(delivery.run(stopped)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indications_arrive_in_order_and_leave_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("o.redb"), CAPACITY).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let received = Received::default();
    serve(listener, None, received.clone());
    let (stop, stats, task) = start(
        &outbox,
        &format!("http://{address}/cimlistener"),
        &ClientTlsSettings::default(),
        policy(),
    );
    batch(&outbox, "dest", 0..3).await;
    batch(&outbox, "dest", 3..5).await;
    let bodies = wait_for(&received, 5).await;
    let context = outbox.info("dest").unwrap().context;
    let wanted: Vec<String> = (0..5).map(|k| format!("{context} {k} event{k}")).collect();
    assert_eq!(bodies, wanted);
    assert!(received
        .lock()
        .unwrap()
        .iter()
        .all(|r| r.0 == "ExportIndication"));
    // Delivered indications leave the outbox with the next commit.
    let deadline = Instant::now() + DEADLINE;
    while outbox.info("dest").unwrap().pending() > 0 && Instant::now() < deadline {
        outbox.commit(Batch::new()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(outbox.info("dest").unwrap().pending(), 0);
    assert_eq!(
        stats.delivered.load(std::sync::atomic::Ordering::Relaxed),
        5
    );
    stop.send(true).unwrap();
    assert_eq!(task.await.unwrap(), Outcome::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_delivery_ends_when_its_stop_sender_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("o.redb"), CAPACITY).unwrap();
    let (stop, _stats, task) = start(
        &outbox,
        "http://127.0.0.1:9/cimlistener",
        &ClientTlsSettings::default(),
        policy(),
    );
    // Waiting on an empty queue: dropping the sender must end it (it once spun instead).
    drop(stop);
    let outcome = tokio::time::timeout(DEADLINE, task)
        .await
        .expect("the delivery ended")
        .unwrap();
    assert_eq!(outcome, Outcome::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_queued_while_the_listener_is_down_arrives_once_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.redb");
    // A port with no listener yet.
    let address: SocketAddr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let url = format!("http://{address}");
    {
        let outbox = Outbox::open(&path, CAPACITY).unwrap();
        let (stop, stats, task) = start(&outbox, &url, &ClientTlsSettings::default(), policy());
        batch(&outbox, "dest", 0..10).await;
        let deadline = Instant::now() + DEADLINE;
        while stats
            .failed_attempts
            .load(std::sync::atomic::Ordering::Relaxed)
            < 2
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(stats.failing.load(std::sync::atomic::Ordering::Relaxed));
        assert!(stats.last_error().unwrap().contains("connecting"));
        // The outage counts its attempts in a row, from its first to its last.
        let outage = stats
            .outage()
            .expect("an outage while the listener is down");
        assert!(outage.failures >= 2, "{outage:?}");
        assert!(outage.since < outage.last, "{outage:?}");
        // The agent goes away with its queue undelivered.
        stop.send(true).unwrap();
        assert_eq!(task.await.unwrap(), Outcome::Stopped);
    }
    let outbox = Outbox::open(&path, CAPACITY).unwrap();
    batch(&outbox, "dest", 10..20).await;
    let listener = TcpListener::bind(address).await.unwrap();
    let received = Received::default();
    serve(listener, None, received.clone());
    let (_stop, _stats, _task) = start(&outbox, &url, &ClientTlsSettings::default(), policy());
    let bodies = wait_for(&received, 20).await;
    let context = outbox.info("dest").unwrap().context;
    let wanted: Vec<String> = (0..20).map(|k| format!("{context} {k} event{k}")).collect();
    assert_eq!(bodies, wanted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_listener_gets_indications_only_if_its_certificate_is_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let names = ServerNames {
        dns_names: vec!["localhost".into()],
        ip_addresses: vec![std::net::Ipv4Addr::LOCALHOST.into()],
    };
    let paths = cimguard_certs::ensure(&dir.path().join("tls"), &names).unwrap();
    let server = cimguard_certs::server_config(&TlsSettings {
        paths: paths.clone(),
        client_ca: None,
    })
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let received = Received::default();
    serve(listener, Some(server), received.clone());
    let url = format!("https://{address}");

    // Untrusted (the system's authorities do not know this one): nothing arrives.
    let outbox = Outbox::open(&dir.path().join("o.redb"), CAPACITY).unwrap();
    let system = ClientTlsSettings {
        system_roots: true,
        ..ClientTlsSettings::default()
    };
    let (stop, stats, task) = start(&outbox, &url, &system, policy());
    batch(&outbox, "dest", 0..3).await;
    let deadline = Instant::now() + DEADLINE;
    while stats
        .failed_attempts
        .load(std::sync::atomic::Ordering::Relaxed)
        < 2
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let error = stats.last_error().unwrap();
    assert!(
        error.contains("TLS") && error.contains("certificate"),
        "{error}"
    );
    assert!(received.lock().unwrap().is_empty());
    stop.send(true).unwrap();
    task.await.unwrap();

    // Trusted through the configured authority: everything, in order.
    let trusted = ClientTlsSettings {
        system_roots: true,
        trusted_ca: vec![paths.ca_cert.clone()],
        ..ClientTlsSettings::default()
    };
    let (_stop, _stats, _task) = start(&outbox, &url, &trusted, policy());
    let bodies = wait_for(&received, 3).await;
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    assert!(bodies[2].contains(" 2 event2"));

    // The right authority, but the certificate does not name the address: refused.
    let other = TcpListener::bind("127.0.0.2:0").await.unwrap();
    let other_address = other.local_addr().unwrap();
    let other_received = Received::default();
    let server = cimguard_certs::server_config(&TlsSettings {
        paths: paths.clone(),
        client_ca: None,
    })
    .unwrap();
    serve(other, Some(server), other_received.clone());
    let outbox = Outbox::open(&dir.path().join("p.redb"), CAPACITY).unwrap();
    let (_stop, stats, _task) = start(
        &outbox,
        &format!("https://{other_address}"),
        &trusted,
        policy(),
    );
    batch(&outbox, "dest", 0..1).await;
    let deadline = Instant::now() + DEADLINE;
    while stats
        .failed_attempts
        .load(std::sync::atomic::Ordering::Relaxed)
        < 1
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let error = stats.last_error().unwrap();
    assert!(error.contains("TLS"), "{error}");
    assert!(other_received.lock().unwrap().is_empty());
}

/// What a batch-aware listener received: each indication's value, and whether it came in a
/// multiple export request.
type Heard = Arc<Mutex<Vec<(bool, String)>>>;

/// Serves ExportIndication on `listener`; a multiple export request (`CIMExportBatch`) is
/// answered with a `MULTIEXPRSP` if `batches`, else refused as DSP0200 says (501,
/// `CIMError: multiple-requests-unsupported`).
fn serve_batches(listener: TcpListener, batches: bool, heard: Heard) {
    serve_batches_refusing(listener, batches, heard, Arc::default());
}

/// [`serve_batches`], answering the indication whose value is in `refuse` with an ERROR
/// (once: the value is taken out).
fn serve_batches_refusing(
    listener: TcpListener,
    batches: bool,
    heard: Heard,
    refuse: Arc<Mutex<Option<String>>>,
) {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let heard = heard.clone();
            let refuse = refuse.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let heard = heard.clone();
                    let refuse = refuse.clone();
                    async move {
                        let batch = request.headers().contains_key("CIMExportBatch");
                        let body = request.into_body().collect().await.map(|b| b.to_bytes());
                        let body = String::from_utf8_lossy(&body.unwrap_or_default()).into_owned();
                        if batch && !batches {
                            return Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .status(501)
                                    .header("CIMError", "multiple-requests-unsupported")
                                    .body(Full::new(Bytes::new()))
                                    .unwrap(),
                            );
                        }
                        let values: Vec<String> = body
                            .split("<VALUE>")
                            .skip(1)
                            .filter_map(|rest| rest.split("</VALUE>").next())
                            .map(str::to_owned)
                            .collect();
                        let one = r#"<SIMPLEEXPRSP><EXPMETHODRESPONSE NAME="ExportIndication"/></SIMPLEEXPRSP>"#;
                        let error = r#"<SIMPLEEXPRSP><EXPMETHODRESPONSE NAME="ExportIndication"><ERROR CODE="1" DESCRIPTION="not now"/></EXPMETHODRESPONSE></SIMPLEEXPRSP>"#;
                        let mut answers = String::new();
                        for value in values {
                            let mut refused = refuse.lock().unwrap();
                            if refused.as_deref() == Some(value.as_str()) {
                                *refused = None;
                                answers.push_str(error);
                            } else {
                                heard.lock().unwrap().push((batch, value));
                                answers.push_str(one);
                            }
                        }
                        let inner = if batch {
                            format!("<MULTIEXPRSP>{answers}</MULTIEXPRSP>")
                        } else {
                            answers
                        };
                        let answer = format!(
                            r#"<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="1" PROTOCOLVERSION="1.0">{inner}</MESSAGE></CIM>"#
                        );
                        Ok(hyper::Response::builder()
                            .header("CIMExport", "MethodResponse")
                            .body(Full::new(Bytes::from(answer)))
                            .unwrap())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// Queues `count` export messages as the agent makes them, each with one value:
/// "<context> <sequence>".
async fn queue_exports(outbox: &Outbox, count: usize) {
    let mut batch = Batch::new();
    for _ in 0..count {
        batch.append(
            "dest",
            Box::new(|context, sequence| {
                format!(
                    r#"<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="{sequence}" PROTOCOLVERSION="1.0"><SIMPLEEXPREQ><EXPMETHODCALL NAME="ExportIndication"><EXPPARAMVALUE NAME="NewIndication"><INSTANCE CLASSNAME="T"><PROPERTY NAME="N" TYPE="string"><VALUE>{context} {sequence}</VALUE></PROPERTY></INSTANCE></EXPPARAMVALUE></EXPMETHODCALL></SIMPLEEXPREQ></MESSAGE></CIM>"#
                )
                .into_bytes()
            }),
        );
    }
    outbox.commit(batch).await.expect("commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_goes_in_multiple_requests_to_a_listener_that_takes_them_and_one_by_one_otherwise(
) {
    for batches in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("o.redb"), CAPACITY).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        let heard: Heard = Heard::default();
        serve_batches(listener, batches, heard.clone());
        // A backlog before the delivery starts.
        queue_exports(&outbox, 150).await;
        let (stop, stats, task) = start(
            &outbox,
            &format!("http://{address}/"),
            &ClientTlsSettings::default(),
            policy(),
        );
        queue_exports(&outbox, 50).await;
        let deadline = Instant::now() + DEADLINE;
        while heard.lock().unwrap().len() < 200 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let heard = heard.lock().unwrap().clone();
        let context = outbox.info("dest").unwrap().context;
        let values: Vec<String> = heard.iter().map(|(_, v)| v.clone()).collect();
        let wanted: Vec<String> = (0..200).map(|k| format!("{context} {k}")).collect();
        // Every one, in order, once.
        assert_eq!(values, wanted, "batches taken: {batches}");
        let in_batches = heard.iter().filter(|(batch, _)| *batch).count();
        if batches {
            assert!(in_batches >= 150, "{in_batches} of 200 came in batches");
        } else {
            assert_eq!(in_batches, 0);
        }
        assert_eq!(
            stats
                .failed_attempts
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
        assert_eq!(delivered(&stats, 200).await, 200);
        stop.send(true).unwrap();
        assert_eq!(task.await.unwrap(), Outcome::Stopped);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_is_shown_to_a_listener_that_asks_for_one() {
    let dir = tempfile::tempdir().unwrap();
    let names = ServerNames {
        dns_names: vec!["localhost".into()],
        ip_addresses: vec![std::net::Ipv4Addr::LOCALHOST.into()],
    };
    let paths = cimguard_certs::ensure(&dir.path().join("tls"), &names).unwrap();
    let identity =
        cimguard_certs::issue_client_certificate(&paths, "agent", &dir.path().join("client"))
            .unwrap();
    // The listener asks for a client certificate from its authority and records, for each
    // indication, the subject it was shown (if any).
    let server = cimguard_certs::server_config(&TlsSettings {
        paths: paths.clone(),
        client_ca: Some(paths.ca_cert.clone()),
    })
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let shown: Arc<Mutex<Vec<bool>>> = Arc::default();
    let record = shown.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let Ok(stream) = tokio_rustls::TlsAcceptor::from(server.clone())
                .accept(stream)
                .await
            else {
                continue;
            };
            let certified = stream.get_ref().1.peer_certificates().is_some();
            let record = record.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let record = record.clone();
                    async move {
                        let _ = request.into_body().collect().await;
                        record.lock().unwrap().push(certified);
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                            ANSWER.as_bytes(),
                        ))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    for (with_identity, key) in [(false, "without"), (true, "with")] {
        let outbox = Outbox::open(&dir.path().join(format!("{key}.redb")), CAPACITY).unwrap();
        let settings = ClientTlsSettings {
            trusted_ca: vec![paths.ca_cert.clone()],
            identity: with_identity.then(|| identity.clone()),
            ..ClientTlsSettings::default()
        };
        shown.lock().unwrap().clear();
        let (stop, _stats, task) = start(&outbox, &url, &settings, policy());
        batch(&outbox, "dest", 0..2).await;
        let deadline = Instant::now() + DEADLINE;
        while shown.lock().unwrap().len() < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(*shown.lock().unwrap(), vec![with_identity; 2], "{key}");
        stop.send(true).unwrap();
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_batch_took_after_one_it_refused_is_not_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("o.redb"), CAPACITY).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let heard: Heard = Heard::default();
    queue_exports(&outbox, 5).await;
    let context = outbox.info("dest").unwrap().context;
    // The listener refuses the third once.
    let refuse = Arc::new(Mutex::new(Some(format!("{context} 2"))));
    serve_batches_refusing(listener, true, heard.clone(), refuse);
    let (stop, stats, task) = start(
        &outbox,
        &format!("http://{address}/"),
        &ClientTlsSettings::default(),
        policy(),
    );
    let deadline = Instant::now() + DEADLINE;
    while heard.lock().unwrap().len() < 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The batch delivered 0, 1, 3 and 4; 2 came alone on the retry; none twice.
    let heard: Vec<(bool, String)> = heard.lock().unwrap().clone();
    let expected: Vec<(bool, String)> = [(true, 0), (true, 1), (true, 3), (true, 4), (false, 2)]
        .iter()
        .map(|(batch, k)| (*batch, format!("{context} {k}")))
        .collect();
    assert_eq!(heard, expected);
    assert_eq!(delivered(&stats, 5).await, 5);
    assert_eq!(
        stats
            .failed_attempts
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // All delivered: the queue empties.
    let deadline = Instant::now() + DEADLINE;
    while outbox.info("dest").unwrap().pending() > 0 && Instant::now() < deadline {
        outbox.commit(Batch::new()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(outbox.info("dest").unwrap().pending(), 0);
    stop.send(true).unwrap();
    assert_eq!(task.await.unwrap(), Outcome::Stopped);
}

/// A listener written by hand: single requests are answered (kept alive); a multiple
/// request is refused before its body is read: with the connection reset at once, so that no
/// answer reaches the agent (`reset`), or with 413 and a close. Records the values it took.
fn serve_refusing_batches(listener: TcpListener, heard: Heard, reset: bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let heard = heard.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                loop {
                    // The head of the next request.
                    let end = loop {
                        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            break at + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                    if head.contains("\r\ncimexportbatch:") {
                        if reset {
                            #[allow(deprecated)]
                            let _ = stream.set_linger(Some(Duration::ZERO));
                        } else {
                            let _ = stream
                                .write_all(
                                    b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\
                                      Connection: close\r\n\r\n",
                                )
                                .await;
                        }
                        return;
                    }
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buffer.len() < end + length {
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = String::from_utf8_lossy(&buffer[end..end + length]).into_owned();
                    buffer.drain(..end + length);
                    if let Some(value) = body
                        .split("<VALUE>")
                        .nth(1)
                        .and_then(|rest| rest.split("</VALUE>").next())
                    {
                        heard.lock().unwrap().push((false, value.to_owned()));
                    }
                    let answer = r#"<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="1" PROTOCOLVERSION="1.0"><SIMPLEEXPRSP><EXPMETHODRESPONSE NAME="ExportIndication"/></SIMPLEEXPRSP></MESSAGE></CIM>"#;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/xml; charset=\"utf-8\"\r\n\
                         CIMExport: MethodResponse\r\nContent-Length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if stream.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_resets_or_refuses_a_first_batch_as_too_large_gets_one_by_one_at_once() {
    for reset in [true, false] {
        one_by_one_after_a_refused_batch(reset).await;
    }
}

async fn one_by_one_after_a_refused_batch(reset: bool) {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("o.redb"), CAPACITY).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let heard: Heard = Heard::default();
    serve_refusing_batches(listener, heard.clone(), reset);
    queue_exports(&outbox, 100).await;
    // A retry interval longer than the deadline: a reset batch taken for a failed attempt
    // would hold everything past it.
    let (stop, stats, task) = start(
        &outbox,
        &format!("http://{address}/"),
        &ClientTlsSettings::default(),
        Policy {
            retry_interval: Duration::from_secs(120),
            ..Policy::default()
        },
    );
    let deadline = Instant::now() + DEADLINE;
    while heard.lock().unwrap().len() < 100 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let context = outbox.info("dest").unwrap().context;
    let values: Vec<String> = heard
        .lock()
        .unwrap()
        .iter()
        .map(|(_, v)| v.clone())
        .collect();
    let wanted: Vec<String> = (0..100).map(|k| format!("{context} {k}")).collect();
    assert_eq!(values, wanted, "reset: {reset}");
    assert_eq!(
        stats
            .failed_attempts
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    stop.send(true).unwrap();
    assert_eq!(task.await.unwrap(), Outcome::Stopped);
}

/// A listener that was down comes back within the retry interval: the next indication
/// raised brings the retry forward, and the backlog, then the new one, arrive in order well
/// before the interval (two minutes here) would have ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_indication_brings_the_retry_forward_after_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("o.redb"), CAPACITY).unwrap();
    // An address nothing listens on yet: connections are refused.
    let address = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let (stop, stats, task) = start(
        &outbox,
        &format!("http://{address}/cimlistener"),
        &ClientTlsSettings::default(),
        Policy {
            retry_interval: Duration::from_secs(120),
            ..Policy::default()
        },
    );
    batch(&outbox, "dest", 0..2).await;
    let deadline = Instant::now() + DEADLINE;
    while stats
        .failed_attempts
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(stats.failing.load(std::sync::atomic::Ordering::Relaxed));
    // The listener is back; nothing is sent to it until an indication comes (the retry
    // interval runs), then everything goes.
    let received = Received::default();
    serve(
        TcpListener::bind(address).await.unwrap(),
        None,
        received.clone(),
    );
    batch(&outbox, "dest", 2..3).await;
    let bodies = wait_for(&received, 3).await;
    let context = outbox.info("dest").unwrap().context;
    let wanted: Vec<String> = (0..3).map(|k| format!("{context} {k} event{k}")).collect();
    assert_eq!(bodies, wanted);
    assert_eq!(delivered(&stats, 3).await, 3);
    assert!(!stats.failing.load(std::sync::atomic::Ordering::Relaxed));
    assert_eq!(
        stats.outage(),
        None,
        "the outage ends with the first delivery"
    );
    stop.send(true).unwrap();
    assert_eq!(task.await.unwrap(), Outcome::Stopped);
}

/// A delivery started again with the counters of one that was failing (its destination's
/// URL changed) starts without an outage: the old one is not its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_delivery_does_not_keep_the_outage_of_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("o.redb"), CAPACITY).unwrap();
    let refused = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let (stop, stats, task) = start(
        &outbox,
        &format!("http://{refused}/cimlistener"),
        &ClientTlsSettings::default(),
        policy(),
    );
    batch(&outbox, "dest", 0..1).await;
    let deadline = Instant::now() + DEADLINE;
    while stats.outage().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(stats.outage().is_some());
    stop.send(true).unwrap();
    assert_eq!(task.await.unwrap(), Outcome::Stopped);
    // Moved to a listener that takes indications: the same counters, a new delivery.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let received = Received::default();
    serve(listener, None, received.clone());
    let delivery = Delivery {
        outbox: outbox.clone(),
        key: "dest".into(),
        target: Target::parse(&format!("http://{address}/cimlistener")).expect("url"),
        tls: cimguard_certs::client_config(&ClientTlsSettings::default()).expect("client tls"),
        policy: policy(),
        stats: stats.clone(),
    };
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(delivery.run(stopped));
    assert_eq!(wait_for(&received, 1).await.len(), 1);
    assert_eq!(delivered(&stats, 1).await, 1);
    assert_eq!(stats.outage(), None);
    assert!(!stats.failing.load(std::sync::atomic::Ordering::Relaxed));
    stop.send(true).unwrap();
    assert_eq!(task.await.unwrap(), Outcome::Stopped);
}
