//! The listener: HTTPS (and, when configured, plain HTTP on loopback) with hyper 1 and
//! tokio-rustls; a bound on connections, TLS handshake and header read timeouts, HTTP/1.1
//! keep-alive, and graceful shutdown that lets requests in progress finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::http;
use crate::service::{Peer, Service};

/// Keeps the process out of transparent huge pages (`prctl(PR_SET_THP_DISABLE)`): the server
/// allocates and frees many small pieces, and 2 MiB pages would turn each touched region into
/// 2 MiB of resident memory on hosts whose THP mode is `always`. Call it early in `main`; a
/// kernel that refuses is logged and the server goes on.
pub fn limit_huge_pages() {
    if let Err(error) = nix::sys::prctl::set_thp_disable(true) {
        tracing::warn!(%error, "cannot disable transparent huge pages for this process");
    }
}

/// Where the TLS configuration comes from: asked once per accepted connection, so that a
/// reloaded certificate applies to new connections.
pub trait TlsSource: Send + Sync {
    /// The configuration for the next handshake.
    fn current(&self) -> Arc<rustls::ServerConfig>;
}

impl TlsSource for cimguard_certs::ReloadableServerConfig {
    fn current(&self) -> Arc<rustls::ServerConfig> {
        cimguard_certs::ReloadableServerConfig::current(self)
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listening socket could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Plain HTTP was asked for on a non-loopback address without the danger flag.
    #[error("plain http on {0} is refused: it is not a loopback address (see danger_plain_http_beyond_loopback)")]
    PlainHttpBeyondLoopback(SocketAddr),
    /// HTTPS addresses were given without TLS material.
    #[error("https needs a tls configuration")]
    NoTls,
    /// No address to listen on.
    #[error("no address to listen on")]
    NoAddress,
}

/// A bound, not yet running server.
pub struct Server {
    service: Arc<Service>,
    listeners: Vec<(TcpListener, Option<Arc<dyn TlsSource>>)>,
}

impl Server {
    /// Binds every configured address.
    pub async fn bind(
        service: Arc<Service>,
        tls: Option<Arc<dyn TlsSource>>,
    ) -> Result<Server, ServerError> {
        let config = &service.config;
        let mut listeners = Vec::new();
        for address in &config.http_addresses {
            if !address.ip().is_loopback() && !config.danger_plain_http_beyond_loopback {
                return Err(ServerError::PlainHttpBeyondLoopback(*address));
            }
        }
        if !config.https_addresses.is_empty() && tls.is_none() {
            return Err(ServerError::NoTls);
        }
        let https = config.https_addresses.iter().map(|a| (a, tls.clone()));
        let http = config.http_addresses.iter().map(|a| (a, None));
        for (address, tls) in https.chain(http) {
            let listener =
                TcpListener::bind(address)
                    .await
                    .map_err(|source| ServerError::Bind {
                        address: *address,
                        source,
                    })?;
            listeners.push((listener, tls));
        }
        if listeners.is_empty() {
            return Err(ServerError::NoAddress);
        }
        Ok(Server { service, listeners })
    }

    /// The bound addresses, with `true` for HTTPS.
    pub fn local_addresses(&self) -> Vec<(SocketAddr, bool)> {
        self.listeners
            .iter()
            .filter_map(|(listener, tls)| listener.local_addr().ok().map(|a| (a, tls.is_some())))
            .collect()
    }

    /// Serves until `shutdown` completes, then stops accepting and waits for the requests in
    /// progress, at most [`crate::config::Limits::shutdown_grace`] (idle keep-alive
    /// connections are closed at once).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let permits = Arc::new(Semaphore::new(self.service.config.limits.connections_max));
        let (stop_sender, _) = tokio::sync::broadcast::channel::<()>(1);
        let mut accept_tasks = Vec::new();
        let (connection_sender, mut connections) = tokio::sync::mpsc::channel(64);
        for (listener, tls) in self.listeners {
            let sender = connection_sender.clone();
            let mut stop = stop_sender.subscribe();
            accept_tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.recv() => return,
                        accepted = listener.accept() => match accepted {
                            Ok((stream, address)) => {
                                if sender.send((stream, address, tls.clone())).await.is_err() {
                                    return;
                                }
                            }
                            Err(error) => {
                                // Out of file descriptors and the like: wait a little rather
                                // than spin, and go on.
                                tracing::warn!(%error, "accept failed");
                                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            }
                        }
                    }
                }
            }));
        }
        drop(connection_sender);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                next = connections.recv() => {
                    let Some((stream, address, tls)) = next else { break };
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        tracing::warn!(%address, "connection refused: connections_max reached");
                        drop(stream);
                        continue;
                    };
                    let service = self.service.clone();
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        serve_connection(service, stream, address, tls, watcher).await;
                        drop(permit);
                    });
                }
            }
        }
        let _ = stop_sender.send(());
        for task in accept_tasks {
            let _ = task.await;
        }
        let grace = self.service.config.limits.shutdown_grace;
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                ?grace,
                "requests still in progress after the shutdown grace: dropped"
            );
        }
    }
}

async fn serve_connection(
    service: Arc<Service>,
    stream: TcpStream,
    address: SocketAddr,
    tls: Option<Arc<dyn TlsSource>>,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let _ = stream.set_nodelay(true);
    let limits = &service.config.limits;
    match tls {
        None => {
            let peer = Peer {
                address,
                certificate_name: None,
            };
            serve_http(service.clone(), TokioIo::new(stream), peer, watcher).await;
        }
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
            let handshake =
                tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(stream)).await;
            let stream = match handshake {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(%address, %error, "tls handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%address, "tls handshake timed out");
                    return;
                }
            };
            let certificate_name = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|certificate| cimguard_certs::client_identity(certificate).ok())
                .and_then(|identity| identity.common_name)
                .map(Arc::from);
            let peer = Peer {
                address,
                certificate_name,
            };
            serve_http(service.clone(), TokioIo::new(stream), peer, watcher).await;
        }
    }
}

async fn serve_http<I>(
    service: Arc<Service>,
    io: TokioIo<I>,
    peer: Peer,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let limits = &service.config.limits;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true)
        .max_buf_size(64 * 1024);
    let address = peer.address;
    let handler = {
        let service = service.clone();
        service_fn(move |request| http::handle(service.clone(), peer.clone(), request))
    };
    let connection = builder.serve_connection(io, handler);
    if let Err(error) = watcher.watch(connection).await {
        tracing::debug!(%address, %error, "connection ended with an error");
    }
}
