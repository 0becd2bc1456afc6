//! `bare_hyper`: the practical limit for the WBEM benchmark (`benches/wbem.rs`). A hyper 1
//! server on a multi-thread tokio runtime that reads each request's body and answers any POST
//! with the same fixed body (the bench hands it cmwbemd's own response), over HTTP/1.1
//! keep-alive on plain HTTP and on HTTPS (rustls, the node certificate of `cimguard-certs`).
//! It does no CIM work at all: the gap between it and cmwbemd is the cost of the WBEM server.
//!
//! Prints `listening http ADDRESS` and `listening https ADDRESS` on stdout once bound, like
//! cmwbemd, and serves until killed.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The allocator of the benchmark servers, as of cmwbemd (see there): mimalloc, built without
/// transparent huge pages, so that both sides of the comparison allocate alike.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A bare hyper server answering every POST with a fixed body.
#[derive(Parser)]
#[command(name = "bare_hyper", about)]
struct Cli {
    /// The plain-HTTP address to listen on.
    #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1:0")]
    http: SocketAddr,
    /// The HTTPS address to listen on.
    #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The directory of the TLS material (created on first start).
    #[arg(long, value_name = "DIR")]
    tls_dir: PathBuf,
    /// The file whose bytes are every response's body.
    #[arg(long, value_name = "FILE")]
    body: PathBuf,
    /// Arm hyper's header read timeout (with tokio's timer) as cmwbemd does, to measure what
    /// it costs; off by default.
    #[arg(long, value_name = "SECONDS")]
    header_read_timeout: Option<u64>,
    /// Spend this many microseconds of CPU on each request before answering (a busy wait), to
    /// see how a server's per-request work turns into one client's rate on this machine.
    #[arg(long, value_name = "MICROSECONDS", default_value_t = 0)]
    work_us: u64,
}

fn main() -> anyhow::Result<()> {
    cimguard_provider::server::limit_huge_pages();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let body = Bytes::from(
        std::fs::read(&cli.body).with_context(|| format!("reading {}", cli.body.display()))?,
    );
    let names = cimguard_certs::ServerNames {
        dns_names: vec!["localhost".into()],
        ip_addresses: vec![Ipv4Addr::LOCALHOST.into()],
    };
    let paths = cimguard_certs::ensure(&cli.tls_dir, &names)
        .with_context(|| format!("tls material in {}", cli.tls_dir.display()))?;
    let tls = cimguard_certs::server_config(&cimguard_certs::TlsSettings {
        paths,
        client_ca: None,
    })
    .context("tls configuration")?;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let http = TcpListener::bind(cli.http).await?;
    let https = TcpListener::bind(cli.listen).await?;
    println!("listening http {}", http.local_addr()?);
    println!("listening https {}", https.local_addr()?);
    let timeout = cli.header_read_timeout.map(Duration::from_secs);
    let work = Duration::from_micros(cli.work_us);
    let plain = tokio::spawn(accept(http, None, body.clone(), timeout, work));
    let secure = tokio::spawn(accept(https, Some(acceptor), body, timeout, work));
    let (plain, secure) = tokio::join!(plain, secure);
    plain??;
    secure??;
    Ok(())
}

async fn accept(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    body: Bytes,
    header_read_timeout: Option<Duration>,
    work: Duration,
) -> anyhow::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let tls = tls.clone();
        let body = body.clone();
        tokio::spawn(async move {
            match tls {
                None => serve(TokioIo::new(stream), body, header_read_timeout, work).await,
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve(TokioIo::new(stream), body, header_read_timeout, work).await;
                    }
                }
            }
        });
    }
}

async fn serve<I>(
    io: TokioIo<I>,
    body: Bytes,
    header_read_timeout: Option<Duration>,
    work: Duration,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let body = Arc::new(body);
    let handler = service_fn(move |request: Request<hyper::body::Incoming>| {
        let body = body.clone();
        async move {
            // Read the request as a real server must before it answers.
            let _ = request.into_body().collect().await;
            if !work.is_zero() {
                let start = std::time::Instant::now();
                while start.elapsed() < work {
                    std::hint::spin_loop();
                }
            }
            let response = Response::builder()
                .header("Content-Type", "application/xml; charset=\"utf-8\"")
                .header("CIMOperation", "MethodResponse")
                .body(Full::new(Bytes::clone(&body)));
            // The headers are valid constants; a failure would give an empty 500.
            Ok::<_, Infallible>(response.unwrap_or_else(|_| {
                let mut response = Response::new(Full::new(Bytes::new()));
                *response.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
                response
            }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true);
    if let Some(timeout) = header_read_timeout {
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(timeout);
    }
    let _ = builder.serve_connection(io, handler).await;
}
