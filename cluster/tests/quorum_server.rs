//! The quorum server: the arbiter's decisions without IO, the authorization file, the wire
//! format, and the server and client over real TLS on loopback (threads in this process).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use cimguard_certs::{ensure, server_config, ServerNames, TlsSettings};
use cimguard_cluster::core::{
    cluster_id, Epoch, NodeSet, QuorumServerAnswer, QuorumServerAsk, QuorumServerRefusal,
    QuorumServerRequest,
};
use cimguard_cluster::runtime::quorum_server::{
    client_tls, read_frame, write_frame, Arbiter, ArbiterLimits, AuthFile, ClientSettings,
    Decision, FrameError, HelloReply, QuorumClient, QuorumServer, Refusal, Reply, Request,
    ServerLimits, FRAME_BYTES_MAX, PROTOCOL_VERSION,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

const CLUSTER: &str = "alpha";
/// How long any condition in these tests may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

fn limits() -> ArbiterLimits {
    ArbiterLimits::default()
}

// ---------------------------------------------------------------------------------------------
// Arbiter

#[test]
fn the_first_group_wins_and_may_ask_again() {
    let now = Instant::now();
    let mut arbiter = Arbiter::new(limits());
    let id = cluster_id(CLUSTER);
    arbiter.register(now, CLUSTER, id).unwrap();
    let instance = Epoch(0x101);
    let (left, right) = (NodeSet(0b0011), NodeSet(0b1100));
    assert_eq!(
        arbiter.acquire(now, CLUSTER, id, instance, left),
        Decision::Granted
    );
    assert_eq!(
        arbiter.acquire(now, CLUSTER, id, instance, left),
        Decision::Granted
    );
    assert_eq!(
        arbiter.acquire(now, CLUSTER, id, instance, right),
        Decision::Denied { holder: left }
    );
    assert_eq!(arbiter.holder(CLUSTER, instance), Some(left));
    // A later instance is a new race.
    assert_eq!(
        arbiter.acquire(now, CLUSTER, id, Epoch(0x201), right),
        Decision::Granted
    );
}

#[test]
fn clusters_are_independent() {
    let now = Instant::now();
    let mut arbiter = Arbiter::new(limits());
    let (alpha, beta) = (cluster_id("alpha"), cluster_id("beta"));
    arbiter.register(now, "alpha", alpha).unwrap();
    arbiter.register(now, "beta", beta).unwrap();
    let instance = Epoch(0x100);
    assert_eq!(
        arbiter.acquire(now, "alpha", alpha, instance, NodeSet(1)),
        Decision::Granted
    );
    assert_eq!(
        arbiter.acquire(now, "beta", beta, instance, NodeSet(2)),
        Decision::Granted
    );
    // A cluster that said no hello, or a wrong id, gets nothing.
    assert_eq!(
        arbiter.acquire(now, "gamma", 7, instance, NodeSet(2)),
        Decision::Denied {
            holder: NodeSet::EMPTY
        }
    );
    assert_eq!(
        arbiter.acquire(now, "alpha", beta, instance, NodeSet(2)),
        Decision::Denied {
            holder: NodeSet::EMPTY
        }
    );
    assert_eq!(arbiter.holder("alpha", instance), Some(NodeSet(1)));
}

#[test]
fn another_id_under_a_registered_name_is_refused_until_the_name_is_free() {
    let now = Instant::now();
    let mut arbiter = Arbiter::new(limits());
    arbiter.register(now, CLUSTER, 1).unwrap();
    assert_eq!(
        arbiter.register(now, CLUSTER, 2),
        Err(Refusal::ClusterIdConflict {
            cluster_name: CLUSTER.into()
        })
    );
    assert_eq!(arbiter.clusters(), 1);
    arbiter.unregister(now, CLUSTER);
    assert_eq!(arbiter.clusters(), 0);
    arbiter.register(now, CLUSTER, 2).unwrap();
}

#[test]
fn grants_expire_by_age_and_by_count_and_forgotten_instances_are_denied() {
    let start = Instant::now();
    let limits = ArbiterLimits {
        clusters_max: 10,
        instances_per_cluster_max: 4,
        instance_age_max: Duration::from_secs(60),
        startup_quiet: Duration::ZERO,
    };
    let mut arbiter = Arbiter::new(limits);
    arbiter.register(start, CLUSTER, 1).unwrap();
    let group = NodeSet(1);
    for round in 1..=5u64 {
        assert_eq!(
            arbiter.acquire(start, CLUSTER, 1, Epoch(round << 8), group),
            Decision::Granted
        );
    }
    // The oldest of five went, the newest four stay.
    assert_eq!(arbiter.holder(CLUSTER, Epoch(1 << 8)), None);
    assert_eq!(arbiter.holder(CLUSTER, Epoch(2 << 8)), Some(group));
    // Forgotten: nobody gets it again, not even its holder.
    let nobody = Decision::Denied {
        holder: NodeSet::EMPTY,
    };
    assert_eq!(
        arbiter.acquire(start, CLUSTER, 1, Epoch(1 << 8), NodeSet(2)),
        nobody
    );
    assert_eq!(
        arbiter.acquire(start, CLUSTER, 1, Epoch(1 << 8), group),
        nobody
    );

    let later = start + Duration::from_secs(61);
    assert_eq!(
        arbiter.acquire(later, CLUSTER, 1, Epoch(9 << 8), NodeSet(2)),
        Decision::Granted
    );
    for round in 2..=5u64 {
        assert_eq!(arbiter.holder(CLUSTER, Epoch(round << 8)), None);
    }
    assert_eq!(
        arbiter.acquire(later, CLUSTER, 1, Epoch(5 << 8), NodeSet(2)),
        nobody
    );
    // A cluster with no connection left is forgotten once its grants are.
    arbiter.unregister(later, CLUSTER);
    assert_eq!(arbiter.clusters(), 1);
    arbiter
        .register(later + Duration::from_secs(61), "beta", 2)
        .unwrap();
    assert_eq!(arbiter.clusters(), 1);
}

#[test]
fn clusters_beyond_the_capacity_are_refused() {
    let now = Instant::now();
    let mut arbiter = Arbiter::new(ArbiterLimits {
        clusters_max: 2,
        ..limits()
    });
    arbiter.register(now, "a", 1).unwrap();
    arbiter.register(now, "b", 2).unwrap();
    assert_eq!(
        arbiter.register(now, "c", 3),
        Err(Refusal::ClustersFull { clusters_max: 2 })
    );
    // A known cluster's further connections are welcome.
    arbiter.register(now, "a", 1).unwrap();
    assert_eq!(arbiter.clusters(), 2);
    arbiter.unregister(now, "b");
    arbiter.register(now, "c", 3).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Authorization file and wire format

#[test]
fn the_authorization_file_lists_hosts_and_addresses() {
    let text = "# quorum server clients\n\
                10.0.0.1\n\
                  node2   # a name\n\
                \n\
                ::ffff:10.0.0.3\n\
                gone.example\n";
    let file = AuthFile::parse_with(text, |name| match name {
        "node2" => Ok(vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))]),
        _ => Err(std::io::Error::other("unknown host")),
    })
    .unwrap();
    for allowed in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "::ffff:10.0.0.1"] {
        assert!(file.allows(allowed.parse().unwrap()), "{allowed}");
    }
    assert!(!file.allows("10.0.0.4".parse().unwrap()));
    assert_eq!(file.unresolved(), ["gone.example".to_string()]);

    let any = AuthFile::parse_with("+\n", |_| Ok(vec![])).unwrap();
    assert!(any.allows("192.0.2.9".parse().unwrap()));
    assert!(AuthFile::parse_with("node1 node2\n", |_| Ok(vec![])).is_err());
}

#[test]
fn messages_are_length_prefixed_json_and_bounded() {
    let mut buffer = Vec::new();
    let request = Request::Acquire {
        id: 8,
        instance: Epoch(513),
        group: NodeSet(3),
    };
    write_frame(&mut buffer, &request).unwrap();
    let body = br#"{"type":"acquire","id":8,"instance":513,"group":3}"#;
    assert_eq!(&buffer[..4], &(body.len() as u32).to_be_bytes());
    assert_eq!(&buffer[4..], body);
    assert_eq!(
        read_frame::<_, Request>(&mut buffer.as_slice()).unwrap(),
        request
    );

    let mut oversized = ((FRAME_BYTES_MAX + 1) as u32).to_be_bytes().to_vec();
    oversized.extend(std::iter::repeat_n(b' ', 16));
    assert!(matches!(
        read_frame::<_, Request>(&mut oversized.as_slice()),
        Err(FrameError::TooLarge { .. })
    ));
    assert!(matches!(
        read_frame::<_, Request>(&mut &b""[..]),
        Err(FrameError::Closed)
    ));
}

// ---------------------------------------------------------------------------------------------
// Server and client over TLS

/// A server on 127.0.0.1 in this process; shut down when dropped.
struct Running {
    server: Arc<QuorumServer>,
    address: SocketAddr,
    thread: Option<thread::JoinHandle<()>>,
}

impl Running {
    fn stop(&mut self) {
        self.server.shutdown();
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Fixture {
    _directory: tempfile::TempDir,
    ca_cert: PathBuf,
    tls: Arc<rustls::ServerConfig>,
}

impl Fixture {
    fn new() -> Fixture {
        let directory = tempfile::tempdir().unwrap();
        let names = ServerNames {
            dns_names: vec!["localhost".into()],
            ip_addresses: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        };
        let paths = ensure(&directory.path().join("tls"), &names).unwrap();
        let tls = server_config(&TlsSettings {
            paths: paths.clone(),
            client_ca: None,
        })
        .unwrap();
        Fixture {
            _directory: directory,
            ca_cert: paths.ca_cert,
            tls,
        }
    }

    fn start(&self, authorized: AuthFile) -> Running {
        self.start_on("127.0.0.1:0".parse().unwrap(), authorized)
    }

    fn start_on(&self, address: SocketAddr, authorized: AuthFile) -> Running {
        self.start_with(address, authorized, Duration::ZERO)
    }

    /// A server on `address` that denies every acquire for `quiet` after its start.
    fn start_with(&self, address: SocketAddr, authorized: AuthFile, quiet: Duration) -> Running {
        let listener = TcpListener::bind(address).unwrap();
        let address = listener.local_addr().unwrap();
        let mut limits = ServerLimits::default();
        limits.arbiter.startup_quiet = quiet;
        let server = QuorumServer::new(&self.tls, authorized, limits);
        let serving = Arc::clone(&server);
        let thread = thread::spawn(move || serving.serve(listener).unwrap());
        Running {
            server,
            address,
            thread: Some(thread),
        }
    }

    fn settings(&self, addresses: &[SocketAddr], cluster_name: &str, node: &str) -> ClientSettings {
        let mut settings = ClientSettings::new(
            &addresses[0].to_string(),
            None,
            self.ca_cert.clone(),
            cluster_name,
            node,
        );
        settings.addresses = addresses.iter().map(ToString::to_string).collect();
        settings.timeout = Duration::from_secs(5);
        settings.reconnect_interval = Duration::from_millis(200);
        settings
    }
}

type Answer = (u64, Result<QuorumServerAnswer, String>);

/// A spawned client and the answers it gives.
struct Client {
    requests: mpsc::Sender<QuorumServerRequest>,
    answers: mpsc::Receiver<Answer>,
    next_id: u64,
}

impl Client {
    fn spawn(settings: ClientSettings) -> Client {
        let (sender, answers) = mpsc::channel();
        let requests = QuorumClient::spawn(settings, move |id, answer| {
            let _ = sender.send((id, answer));
        })
        .unwrap();
        Client {
            requests,
            answers,
            next_id: 1,
        }
    }

    fn send(&mut self, kind: QuorumServerAsk) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.requests
            .send(QuorumServerRequest {
                id,
                kind,
                timeout: Duration::from_secs(5),
            })
            .unwrap();
        id
    }

    fn receive(&self, id: u64) -> Result<QuorumServerAnswer, String> {
        let (answered, answer) = self
            .answers
            .recv_timeout(PATIENCE)
            .expect("the client answers every request");
        assert_eq!(answered, id, "answers come once each, in order");
        answer
    }

    fn ask(&mut self, kind: QuorumServerAsk) -> Result<QuorumServerAnswer, String> {
        let id = self.send(kind);
        self.receive(id)
    }

    /// Pings until the answer is a pong, within the test's patience.
    fn ping_until_pong(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.ask(QuorumServerAsk::Ping) {
                Ok(QuorumServerAnswer::Pong) => return,
                other => assert!(Instant::now() < deadline, "no pong: {other:?}"),
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Waits until `condition` holds, within the test's patience.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn ping_is_answered_with_pong() {
    let fixture = Fixture::new();
    let running = fixture.start(AuthFile::any());
    let mut client = Client::spawn(fixture.settings(&[running.address], CLUSTER, "node1"));
    assert_eq!(
        client.ask(QuorumServerAsk::Ping),
        Ok(QuorumServerAnswer::Pong)
    );
    assert_eq!(
        client.ask(QuorumServerAsk::Ping),
        Ok(QuorumServerAnswer::Pong)
    );
    // One connection, kept open.
    assert_eq!(running.server.connections(), 1);
    assert_eq!(running.server.clusters(), 1);
}

#[test]
fn exactly_one_group_wins_each_race() {
    let fixture = Fixture::new();
    let running = fixture.start(AuthFile::any());
    let (left, right) = (NodeSet(0b0011), NodeSet(0b1100));
    let mut clients: Vec<(NodeSet, Client)> = (0..4)
        .map(|node| {
            let group = if node < 2 { left } else { right };
            let settings = fixture.settings(&[running.address], CLUSTER, &format!("node{node}"));
            (group, Client::spawn(settings))
        })
        .collect();
    for (_, client) in &mut clients {
        client.ping_until_pong();
    }
    for round in 1..=20u64 {
        let instance = Epoch::new(round, cimguard_cluster::core::NodeId(0));
        let ids: Vec<u64> = clients
            .iter_mut()
            .map(|(group, client)| {
                client.send(QuorumServerAsk::Acquire {
                    instance,
                    group: *group,
                })
            })
            .collect();
        let mut granted = Vec::new();
        for ((group, client), id) in clients.iter().zip(ids) {
            match client.receive(id) {
                Ok(QuorumServerAnswer::Granted) => granted.push(*group),
                Ok(QuorumServerAnswer::Denied) => {}
                other => panic!("round {round}: {other:?}"),
            }
        }
        assert_eq!(granted.len(), 2, "round {round}: {granted:?}");
        assert_eq!(granted[0], granted[1], "round {round}: both halves won");
    }
}

#[test]
fn a_host_not_in_the_authorization_file_is_denied() {
    let fixture = Fixture::new();
    let running = fixture.start(AuthFile::from_addresses([IpAddr::V4(Ipv4Addr::new(
        127, 0, 0, 2,
    ))]));
    let mut client = Client::spawn(fixture.settings(&[running.address], CLUSTER, "node1"));
    // The server's refusal is its answer, with the reason cmviewcl shows.
    let refused = Ok(QuorumServerAnswer::Refused(
        QuorumServerRefusal::AccessDenied,
    ));
    assert_eq!(client.ask(QuorumServerAsk::Ping), refused);
    let acquire = client.ask(QuorumServerAsk::Acquire {
        instance: Epoch(0x100),
        group: NodeSet(1),
    });
    assert_eq!(acquire, refused);
    assert_eq!(running.server.clusters(), 0);

    // Once the file lists it (SIGHUP), it is welcome.
    running
        .server
        .set_authorized(AuthFile::from_addresses([IpAddr::V4(Ipv4Addr::LOCALHOST)]));
    client.ping_until_pong();

    // Left out again, it keeps its connection for pings, but gets no lock.
    running
        .server
        .set_authorized(AuthFile::from_addresses([IpAddr::V4(Ipv4Addr::new(
            127, 0, 0, 2,
        ))]));
    let acquire = client.ask(QuorumServerAsk::Acquire {
        instance: Epoch(0x200),
        group: NodeSet(1),
    });
    assert!(acquire.is_err() || acquire == refused, "{acquire:?}");
    assert_eq!(running.server.clusters(), 0, "no grant was made");
}

#[test]
fn a_different_cluster_id_under_a_registered_name_is_denied() {
    let fixture = Fixture::new();
    let running = fixture.start(AuthFile::any());
    let mut first = Client::spawn(fixture.settings(&[running.address], CLUSTER, "node1"));
    first.ping_until_pong();
    let mut impostor = fixture.settings(&[running.address], CLUSTER, "node9");
    impostor.cluster_id ^= 1;
    let mut impostor = Client::spawn(impostor);
    let answer = impostor.ask(QuorumServerAsk::Ping);
    assert!(
        answer
            .as_ref()
            .is_err_and(|e| e.contains("cluster id conflict")),
        "{answer:?}"
    );
    assert_eq!(
        first.ask(QuorumServerAsk::Ping),
        Ok(QuorumServerAnswer::Pong)
    );
}

#[test]
fn an_unsupported_version_is_denied_with_its_reason() {
    let fixture = Fixture::new();
    let running = fixture.start(AuthFile::any());
    let mut tls = raw_tls(&fixture, running.address);
    let hello = Request::Hello {
        version: PROTOCOL_VERSION + 1,
        cluster_name: CLUSTER.into(),
        cluster_id: cluster_id(CLUSTER),
        node_name: "node1".into(),
    };
    write_frame(&mut tls, &hello).unwrap();
    match read_frame::<_, HelloReply>(&mut tls).unwrap() {
        HelloReply::Denied { reason, refusal } => {
            assert!(reason.contains("unsupported version"), "{reason}");
            assert_eq!(refusal, Some(QuorumServerRefusal::UnsupportedVersion));
        }
        other => panic!("{other:?}"),
    }
    assert_closed(read_frame::<_, Reply>(&mut tls));
}

#[test]
fn the_client_answers_errors_while_the_server_is_down_and_reconnects() {
    let fixture = Fixture::new();
    let mut running = fixture.start(AuthFile::any());
    let address = running.address;
    let mut client = Client::spawn(fixture.settings(&[address], CLUSTER, "node1"));
    client.ping_until_pong();

    running.stop();
    wait_until("the server closed its connections", || {
        running.server.connections() == 0
    });
    let answer = client.ask(QuorumServerAsk::Ping);
    assert!(answer.is_err(), "{answer:?}");
    let answer = client.ask(QuorumServerAsk::Acquire {
        instance: Epoch(0x100),
        group: NodeSet(1),
    });
    assert!(answer.is_err(), "{answer:?}");

    // Back on the same port (a restart): it has forgotten everything, and the client
    // finds it again.
    let running = fixture.start_on(address, AuthFile::any());
    client.ping_until_pong();
    assert_eq!(
        client.ask(QuorumServerAsk::Acquire {
            instance: Epoch(0x200),
            group: NodeSet(1),
        }),
        Ok(QuorumServerAnswer::Granted)
    );
    assert_eq!(running.server.clusters(), 1);
}

#[test]
fn the_first_request_after_a_server_restart_is_answered() {
    let fixture = Fixture::new();
    let mut running = fixture.start(AuthFile::any());
    let address = running.address;
    let mut client = Client::spawn(fixture.settings(&[address], CLUSTER, "node1"));
    client.ping_until_pong();
    running.stop();
    // Restarted, it has forgotten its grants: for its quiet period it grants nothing, since
    // the other half of a split it decided before may be asking.
    let quiet = Duration::from_secs(2);
    let restarted = Instant::now();
    let _running = fixture.start_with(address, AuthFile::any(), quiet);
    // The client still holds the old connection; the request fails on it and is asked again
    // on a new one, and answered.
    let ask = QuorumServerAsk::Acquire {
        instance: Epoch(0x400),
        group: NodeSet(1),
    };
    assert_eq!(client.ask(ask), Ok(QuorumServerAnswer::Denied));
    assert!(
        restarted.elapsed() < quiet,
        "the machine was too slow to tell"
    );
    // After it, the lock is granted as usual.
    while restarted.elapsed() <= quiet {
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(client.ask(ask), Ok(QuorumServerAnswer::Granted));
}

#[test]
fn a_cluster_whose_memory_went_still_has_its_old_instances_refused() {
    let mut arbiter = Arbiter::new(ArbiterLimits {
        instances_per_cluster_max: 1,
        ..limits()
    });
    let now = Instant::now();
    arbiter.register(now, CLUSTER, 7).unwrap();
    assert_eq!(
        arbiter.acquire(now, CLUSTER, 7, Epoch(0x100), NodeSet(1)),
        Decision::Granted
    );
    // A newer instance pushes the first out; the cluster's connections end, and with no
    // grant left its area goes... except for the newest grant: forget it by age too.
    assert_eq!(
        arbiter.acquire(now, CLUSTER, 7, Epoch(0x200), NodeSet(1)),
        Decision::Granted
    );
    arbiter.unregister(now, CLUSTER);
    let later = now + limits().instance_age_max + Duration::from_secs(1);
    arbiter.register(later, "other", 9).unwrap();
    assert_eq!(arbiter.clusters(), 1, "alpha's area is gone");
    // Back: its forgotten instances stay refused to any group.
    arbiter.register(later, CLUSTER, 7).unwrap();
    for instance in [Epoch(0x100), Epoch(0x200)] {
        assert_eq!(
            arbiter.acquire(later, CLUSTER, 7, instance, NodeSet(2)),
            Decision::Denied {
                holder: NodeSet::EMPTY
            }
        );
    }
    assert_eq!(
        arbiter.acquire(later, CLUSTER, 7, Epoch(0x300), NodeSet(2)),
        Decision::Granted
    );
}

#[test]
fn the_client_tries_the_alternate_address() {
    let fixture = Fixture::new();
    let running = fixture.start(AuthFile::any());
    // A port nobody listens on: bound, then closed.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut client = Client::spawn(fixture.settings(&[dead, running.address], CLUSTER, "node1"));
    assert_eq!(
        client.ask(QuorumServerAsk::Ping),
        Ok(QuorumServerAnswer::Pong)
    );
}

#[test]
fn garbage_and_oversized_frames_close_only_their_connection() {
    let fixture = Fixture::new();
    let running = fixture.start(AuthFile::any());
    let mut client = Client::spawn(fixture.settings(&[running.address], CLUSTER, "node1"));
    client.ping_until_pong();

    // Not TLS at all.
    let mut plain = TcpStream::connect(running.address).unwrap();
    plain.set_read_timeout(Some(PATIENCE)).unwrap();
    plain.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = plain.read_to_end(&mut rest);

    // TLS, welcomed, then a frame longer than the limit.
    let mut tls = raw_tls(&fixture, running.address);
    hello(&mut tls);
    tls.write_all(&u32::MAX.to_be_bytes()).unwrap();
    tls.flush().unwrap();
    assert_closed(read_frame::<_, Reply>(&mut tls));

    // TLS, welcomed, then bytes that are not JSON.
    let mut tls = raw_tls(&fixture, running.address);
    hello(&mut tls);
    tls.write_all(&5u32.to_be_bytes()).unwrap();
    tls.write_all(b"{{{{{").unwrap();
    tls.flush().unwrap();
    assert_closed(read_frame::<_, Reply>(&mut tls));

    wait_until("only the client's connection is left", || {
        running.server.connections() == 1
    });
    assert_eq!(
        client.ask(QuorumServerAsk::Ping),
        Ok(QuorumServerAnswer::Pong)
    );
    assert_eq!(
        client.ask(QuorumServerAsk::Acquire {
            instance: Epoch(0x300),
            group: NodeSet(1),
        }),
        Ok(QuorumServerAnswer::Granted)
    );
}

fn raw_tls(fixture: &Fixture, address: SocketAddr) -> StreamOwned<ClientConnection, TcpStream> {
    let config = client_tls(&fixture.ca_cert).unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let connection = ClientConnection::new(config, name).unwrap();
    let stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    StreamOwned::new(connection, stream)
}

fn hello(tls: &mut StreamOwned<ClientConnection, TcpStream>) {
    let hello = Request::Hello {
        version: PROTOCOL_VERSION,
        cluster_name: CLUSTER.into(),
        cluster_id: cluster_id(CLUSTER),
        node_name: "raw".into(),
    };
    write_frame(tls, &hello).unwrap();
    assert_eq!(
        read_frame::<_, HelloReply>(tls).unwrap(),
        HelloReply::Welcome
    );
}

/// The server ended the connection: end of stream (or a TLS close), not a read timeout.
fn assert_closed(result: Result<Reply, FrameError>) {
    match result {
        Err(FrameError::Closed) => {}
        Err(FrameError::Io(error))
            if !matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("the connection did not close: {other:?}"),
    }
}

/// A refusal this version does not know (from a newer server) reads as Other, not as an
/// undecodable answer.
#[test]
fn an_unknown_refusal_reads_as_other() {
    let known: QuorumServerRefusal = serde_json::from_str("\"access_denied\"").unwrap();
    assert_eq!(known, QuorumServerRefusal::AccessDenied);
    let unknown: QuorumServerRefusal = serde_json::from_str("\"maintenance_window\"").unwrap();
    assert_eq!(unknown, QuorumServerRefusal::Other);
}
