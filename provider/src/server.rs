//! The listener: HTTPS (and, when configured, plain HTTP on loopback, and plain HTTP on a
//! local Unix socket for root) with hyper 1 and tokio-rustls; a bound on connections shared
//! by all listeners, TLS handshake and header read timeouts, HTTP/1.1 keep-alive, and
//! graceful shutdown that lets requests in progress finish.

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::Semaphore;

use crate::http;
use crate::repoll::Repoll;
use crate::service::{LocalUser, Peer, Service};

/// Connections the local socket takes at once, apart from the TCP listeners' limit (root's
/// commands: each makes one at a time).
const LOCAL_CONNECTIONS_MAX: usize = 16;

/// The log filter of an agent unless `RUST_LOG` says otherwise: `info`, without rustls' own
/// warnings (a client's malformed SNI, say, which anyone may send before authenticating:
/// a way to flood the log). The agent logs a failed handshake itself, at `debug`.
pub const DEFAULT_LOG_FILTER: &str = "info,rustls=error";

/// The most threads an agent's runtime keeps for blocking work (its `max_blocking_threads`).
///
/// A request that may wait on the cluster daemon (a status, a command, a package's end)
/// leaves the runtime's workers with `block_in_place`, which hands the worker to a thread of
/// this pool. Unbounded (tokio's default is 512), a busy agent grew a thread per waiting
/// request, each with its own allocator arenas: 64 clients drove one past 150 threads and
/// 400 MB. Past the bound, a worker waits for a thread to come free; the daemon answers one
/// request at a time anyway.
pub const BLOCKING_THREADS_MAX: usize = 64;

/// Keeps the process out of transparent huge pages (`prctl(PR_SET_THP_DISABLE)`): the server
/// allocates and frees many small pieces, and 2 MiB pages would turn each touched region into
/// 2 MiB of resident memory on hosts whose THP mode is `always`. Call it early in `main`; a
/// kernel that refuses is logged and the server goes on.
pub fn limit_huge_pages() {
    if let Err(error) = nix::sys::prctl::set_thp_disable(true) {
        tracing::warn!(%error, "cannot disable transparent huge pages for this process");
    }
}

/// How often a refused connection is logged at most: anyone may open connections before
/// authenticating, and a line each would let a stranger flood the log.
const REFUSAL_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Counts refused connections between the lines that report them.
#[derive(Default)]
struct RefusalLog {
    last_line: Option<std::time::Instant>,
    unreported: u64,
}

impl RefusalLog {
    /// A refusal at `now`: `Some(n)` when a line is due, `n` the refusals since the last line
    /// (this one not counted).
    fn refused(&mut self, now: std::time::Instant) -> Option<u64> {
        let due = self
            .last_line
            .is_none_or(|last| now.saturating_duration_since(last) >= REFUSAL_LOG_INTERVAL);
        if due {
            self.last_line = Some(now);
            Some(std::mem::take(&mut self.unreported))
        } else {
            self.unreported += 1;
            None
        }
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
    /// The local socket could not be made.
    #[error("cannot listen on the local socket {}: {source}", path.display())]
    LocalSocket {
        /// The socket's path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The local socket's path names something other than a socket: it is not replaced.
    #[error("the local socket {} exists and is not a socket: not replaced", .0.display())]
    LocalSocketNotASocket(PathBuf),
    /// Another server answers on the local socket.
    #[error("the local socket {} is in use by another running agent", .0.display())]
    LocalSocketInUse(PathBuf),
}

/// A bound, not yet running server.
pub struct Server {
    service: Arc<Service>,
    listeners: Vec<(TcpListener, Option<Arc<dyn TlsSource>>)>,
    local: Option<(UnixListener, SocketFile)>,
}

/// A listening socket of a running server.
enum Listener {
    /// TCP, with the TLS configuration of its connections (`None`: plain HTTP).
    Tcp(TcpListener, Option<Arc<dyn TlsSource>>),
    /// The local socket.
    Local(UnixListener),
}

impl Listener {
    async fn accept(&self) -> std::io::Result<Accepted> {
        match self {
            Listener::Tcp(listener, tls) => {
                let (stream, address) = listener.accept().await?;
                Ok(Accepted::Tcp(stream, address, tls.clone()))
            }
            Listener::Local(listener) => {
                let (stream, _) = listener.accept().await?;
                Ok(Accepted::Local(stream))
            }
        }
    }
}

/// An accepted connection, from whichever listener.
enum Accepted {
    /// Over TCP, with the TLS configuration of its listener (`None`: plain HTTP).
    Tcp(TcpStream, SocketAddr, Option<Arc<dyn TlsSource>>),
    /// On the local socket.
    Local(UnixStream),
}

/// The local socket's file: removed when the server ends, if the path still names this
/// socket (another agent may have replaced it since).
struct SocketFile {
    path: PathBuf,
    device: u64,
    inode: u64,
}

impl SocketFile {
    /// Binds a Unix stream socket at `path`, mode 0600 from the first moment: it is bound
    /// under a temporary name beside `path`, restricted, then renamed over `path` (which
    /// replaces a stale socket of an agent that ended without removing it). A socket that
    /// still answers, or a file that is not a socket, is left alone and refused.
    fn bind(path: &Path) -> Result<(UnixListener, SocketFile), ServerError> {
        let failed = |source| ServerError::LocalSocket {
            path: path.to_owned(),
            source,
        };
        match std::fs::symlink_metadata(path) {
            Ok(metadata) if !metadata.file_type().is_socket() => {
                return Err(ServerError::LocalSocketNotASocket(path.to_owned()))
            }
            Ok(_) => {
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(ServerError::LocalSocketInUse(path.to_owned()));
                }
                // Stale: its server is gone.
                std::fs::remove_file(path).map_err(failed)?;
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(failed(error)),
        }
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".{}.new", std::process::id()));
        let temporary = PathBuf::from(temporary);
        let _ = std::fs::remove_file(&temporary);
        let listener = UnixListener::bind(&temporary).map_err(failed)?;
        let placed = std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))
            .and_then(|()| std::fs::rename(&temporary, path))
            .and_then(|()| std::fs::symlink_metadata(path));
        match placed {
            Ok(metadata) => Ok((
                listener,
                SocketFile {
                    path: path.to_owned(),
                    device: metadata.dev(),
                    inode: metadata.ino(),
                },
            )),
            Err(error) => {
                let _ = std::fs::remove_file(&temporary);
                Err(failed(error))
            }
        }
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.dev() == self.device && m.ino() == self.inode);
        if ours {
            if let Err(error) = std::fs::remove_file(&self.path) {
                tracing::warn!(path = %self.path.display(), %error, "cannot remove the local socket");
            }
        }
    }
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
        let local = match &config.local_socket {
            Some(path) => Some(SocketFile::bind(path)?),
            None => None,
        };
        if listeners.is_empty() && local.is_none() {
            return Err(ServerError::NoAddress);
        }
        Ok(Server {
            service,
            listeners,
            local,
        })
    }

    /// The path of the local socket, when the server has one.
    pub fn local_socket(&self) -> Option<&Path> {
        self.local.as_ref().map(|(_, file)| file.path.as_path())
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
        // The local socket has permits of its own: remote clients holding every connection
        // never lock root's commands out of the node's agent.
        let local_permits = Arc::new(Semaphore::new(LOCAL_CONNECTIONS_MAX));
        let (stop_sender, _) = tokio::sync::broadcast::channel::<()>(1);
        let mut accept_tasks = Vec::new();
        let (connection_sender, mut connections) = tokio::sync::mpsc::channel(64);
        // The socket's file lives until the server has stopped; the listener goes to its task.
        let (local, socket_file) = match self.local {
            Some((listener, file)) => (Some(Listener::Local(listener)), Some(file)),
            None => (None, None),
        };
        let tcp = self
            .listeners
            .into_iter()
            .map(|(listener, tls)| Listener::Tcp(listener, tls));
        for listener in tcp.chain(local) {
            accept_tasks.push(tokio::spawn(accept_loop(
                listener,
                connection_sender.clone(),
                stop_sender.subscribe(),
            )));
        }
        drop(connection_sender);
        let mut tcp_refusals = RefusalLog::default();
        let mut local_refusals = RefusalLog::default();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                next = connections.recv() => {
                    let Some(accepted) = next else { break };
                    let pool = match &accepted {
                        Accepted::Tcp(..) => &permits,
                        Accepted::Local(_) => &local_permits,
                    };
                    let Ok(permit) = pool.clone().try_acquire_owned() else {
                        let now = std::time::Instant::now();
                        match &accepted {
                            Accepted::Tcp(_, address, _) => {
                                if let Some(more) = tcp_refusals.refused(now) {
                                    tracing::warn!(
                                        %address,
                                        refused_since_last_line = more,
                                        "connection refused: connections_max reached"
                                    );
                                }
                            }
                            Accepted::Local(_) => {
                                if let Some(more) = local_refusals.refused(now) {
                                    tracing::warn!(
                                        refused_since_last_line = more,
                                        "local socket connection refused: \
                                         {LOCAL_CONNECTIONS_MAX} open"
                                    );
                                }
                            }
                        }
                        drop(accepted);
                        continue;
                    };
                    let service = self.service.clone();
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        match accepted {
                            Accepted::Tcp(stream, address, tls) => {
                                serve_connection(service, stream, address, tls, watcher).await;
                            }
                            Accepted::Local(stream) => serve_local(service, stream, watcher).await,
                        }
                        drop(permit);
                    });
                }
            }
        }
        let _ = stop_sender.send(());
        for task in accept_tasks {
            let _ = task.await;
        }
        // No new connection can come: the path goes now, before the requests in progress end.
        drop(socket_file);
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

/// Accepts connections on `listener` and hands them to the server's loop through `sender`,
/// until `stop` says so or the loop is gone.
async fn accept_loop(
    listener: Listener,
    sender: tokio::sync::mpsc::Sender<Accepted>,
    mut stop: tokio::sync::broadcast::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = stop.recv() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    if sender.send(accepted).await.is_err() {
                        return;
                    }
                }
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin,
                    // and go on.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Serves a connection on the local socket: plain HTTP, the peer known by its kernel
/// credentials (see [`crate::service::Service::authenticate`]).
async fn serve_local(
    service: Arc<Service>,
    stream: UnixStream,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let credentials = match stream.peer_cred() {
        Ok(credentials) => credentials,
        Err(error) => {
            tracing::warn!(%error, "local socket: the peer's credentials cannot be read");
            return;
        }
    };
    let peer = Peer::local(LocalUser {
        uid: credentials.uid(),
        pid: credentials.pid(),
    });
    serve_http(service, stream, peer, watcher).await;
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
                local_user: None,
                tls: false,
            };
            serve_http(service.clone(), stream, peer, watcher).await;
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
                local_user: None,
                tls: true,
            };
            serve_http(service.clone(), stream, peer, watcher).await;
        }
    }
}

async fn serve_http<I>(
    service: Arc<Service>,
    io: I,
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
    let described = peer.to_string();
    let handler = {
        let service = service.clone();
        service_fn(move |request| http::handle(service.clone(), peer.clone(), request))
    };
    // A write that waits longer than the send timeout for the client to read fails, which
    // ends the connection: one that stops reading holds no slot or response for ever.
    let mut io = tokio_io_timeout::TimeoutStream::new(io);
    io.set_write_timeout(Some(limits.send_timeout));
    let connection = builder.serve_connection(TokioIo::new(Box::pin(io)), handler);
    // The request body's channel wakes the connection's own task within a poll: absorbed, so
    // that no request wakes an idle worker for nothing (see `repoll`).
    if let Err(error) = Repoll::new(watcher.watch(connection)).await {
        tracing::debug!(peer = %described, %error, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn refused_connections_are_logged_once_per_interval_with_a_count() {
        let mut log = RefusalLog::default();
        let start = std::time::Instant::now();
        assert_eq!(log.refused(start), Some(0));
        for index in 1..=1000_u64 {
            let at = start + REFUSAL_LOG_INTERVAL * 9 / 10 * u32::from(index == 1000);
            assert_eq!(log.refused(at), None, "refusal {index}");
        }
        assert_eq!(log.refused(start + REFUSAL_LOG_INTERVAL), Some(1000));
        assert_eq!(log.refused(start + REFUSAL_LOG_INTERVAL), None);
        assert_eq!(log.refused(start + REFUSAL_LOG_INTERVAL * 3), Some(1));
    }

    #[tokio::test]
    async fn the_local_socket_is_made_mode_0600_and_removed_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cimxml.sock");
        let (listener, file) = SocketFile::bind(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        // Nothing is left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let client = UnixStream::connect(&path).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let credentials = accepted.peer_cred().unwrap();
        assert_eq!(credentials.uid(), nix::unistd::geteuid().as_raw());
        assert_eq!(credentials.pid(), Some(std::process::id() as i32));
        drop((client, accepted, file));
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_live_one_or_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cimxml.sock");
        // A socket whose server is gone.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let (_listener, file) = SocketFile::bind(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        // This one answers: left alone.
        assert!(matches!(
            SocketFile::bind(&path),
            Err(ServerError::LocalSocketInUse(p)) if p == path
        ));
        assert!(path.exists());
        // A file that is not a socket is not removed.
        let other = dir.path().join("data");
        std::fs::write(&other, "keep").unwrap();
        assert!(matches!(
            SocketFile::bind(&other),
            Err(ServerError::LocalSocketNotASocket(p)) if p == other
        ));
        assert_eq!(std::fs::read_to_string(&other).unwrap(), "keep");
        // A path that was replaced by another socket since is not removed on drop.
        std::fs::remove_file(&path).unwrap();
        let _replacement = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(file);
        assert!(path.exists());
    }

    #[tokio::test]
    async fn a_socket_in_a_missing_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("cimxml.sock");
        let error = SocketFile::bind(&path).err().unwrap();
        assert!(
            error.to_string().starts_with(&format!(
                "cannot listen on the local socket {}: ",
                path.display()
            )),
            "{error}"
        );
    }
}
