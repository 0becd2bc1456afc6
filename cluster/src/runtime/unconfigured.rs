//! The daemon of a node configured in no cluster: Serviceguard's cmclconfd. The state
//! directory holds the cluster key and the control channel's certificates but no cluster
//! file (a node never configured, or one a cmapplyconf deleted). The daemon listens for the
//! configuration exchange ([`super::exchange`]) and answers a halted cmapplyconf that adds
//! this node ([`crate::core::Unconfigured`]); once its generation is committed here, the
//! daemon ends with [`Ended::StartHalted`] and starts again from the files, halted, as a
//! node of the cluster. Its admin socket says that it is not configured. It runs no
//! heartbeats, no safety timer and no packages.

use std::io::{BufRead, BufReader, Read as _, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use nix::fcntl::Flock;

use super::daemon::{fail, Ended, Log, Options, Reply, Request, StartError};
use super::exchange;
use super::state_file;
use super::watchdog::SafetyTimers;
use crate::core::{
    cluster_id, Action, Envelope, Event, Incarnation, Message, Persisted, Unconfigured,
};
use crate::wire;

/// What an unconfigured daemon starts from.
pub(super) struct Bare {
    /// Held for the daemon's life.
    pub(super) lock: Flock<std::fs::File>,
    pub(super) key: Vec<u8>,
    pub(super) control: cimguard_certs::ControlTls,
    pub(super) incarnation: Incarnation,
    pub(super) persisted: Persisted,
    /// Said in the log once it runs: what the start did (the files of a node deleted
    /// before it, removed).
    pub(super) said: Option<String>,
}

enum Input {
    Request {
        request: Box<exchange::Request>,
        answer: mpsc::Sender<Option<Envelope>>,
    },
    /// cmapplyconf (an admin `apply`): the cluster's creation; or cmcheckconf (an admin
    /// `check_apply`): the creation checked on every node, nothing applied.
    Apply {
        request: Box<Request>,
        reply: mpsc::Sender<Reply>,
    },
    /// The answer of a request this node sent over the exchange.
    Exchanged {
        to: String,
        result: Box<Result<Envelope, String>>,
    },
    Terminate,
}

/// Runs the unconfigured daemon until a generation that adds this node is committed
/// ([`Ended::StartHalted`]) or SIGTERM ends it ([`Ended::Halted`]).
pub(super) fn run(
    options: &Options,
    bare: Bare,
    fence: SafetyTimers,
    log: &Log,
) -> Result<Ended, StartError> {
    let Bare {
        lock: _lock,
        key,
        control,
        incarnation,
        persisted,
        said,
    } = bare;
    if let Some(said) = said {
        log.say(said);
    }
    // The safety timer's watcher stays for the daemon's life, disarmed; whether a watchdog
    // device is beneath it decides which timings this node can serve.
    let watchdog = fence.has_device();
    let _fence = fence;
    let dir = options.state_dir.clone();
    let mut core = Unconfigured::new(&options.node, incarnation, persisted);
    let (inputs, received) = mpsc::channel::<Input>();
    super::daemon::take_termination(inputs.clone(), || Input::Terminate)?;

    // The configuration exchange.
    let addresses: Vec<SocketAddr> = options
        .config_listen
        .iter()
        .map(|ip| SocketAddr::new(*ip, options.heartbeat_port))
        .collect();
    let answer: Arc<exchange::Answer> = {
        let inputs = Mutex::new(inputs.clone());
        Arc::new(move |request: exchange::Request| {
            let (answer, answered) = mpsc::channel();
            let sent = inputs
                .lock()
                .map(|i| {
                    i.send(Input::Request {
                        request: Box::new(request),
                        answer,
                    })
                    .is_ok()
                })
                .unwrap_or(false);
            if !sent {
                return None;
            }
            answered
                .recv_timeout(exchange::ANSWER_TIMEOUT - Duration::from_millis(500))
                .ok()
                .flatten()
        })
    };
    let bound = if addresses.is_empty() {
        // Every address: IPv6 and IPv4 on one socket where the host has IPv6, else IPv4.
        let any6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), options.heartbeat_port);
        let any4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), options.heartbeat_port);
        exchange::serve(&[any6], &control.exchange_server, &answer)
            .or_else(|_| exchange::serve(&[any4], &control.exchange_server, &answer))
    } else {
        exchange::serve(&addresses, &control.exchange_server, &answer)
    }
    .or_else(|e| fail(e.to_string()))?;

    let mut requests =
        exchange::Requests::new(control.exchange_client, &key, options.heartbeat_port, {
            let inputs = Mutex::new(inputs.clone());
            Arc::new(move |to, _serial, result| {
                let _ = inputs
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .send(Input::Exchanged {
                        to,
                        result: Box::new(result),
                    });
            })
        });
    // The cluster whose generation this node took, once it did (its new life starts soon).
    let taken: Arc<Mutex<Option<String>>> = Arc::default();
    serve_admin(options, log, &inputs, &taken)?;
    drop(inputs);
    // Creations given here waiting for their answer, by serial.
    let mut awaiting: Vec<Awaited> = Vec::new();
    log.say(format_args!(
        "not configured in a cluster: waiting for a cmapplyconf that adds node {} \
         (configuration exchange on {})",
        options.node,
        bound
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ));

    let clock = super::daemon::Clock(std::time::Instant::now());
    let now = || clock.now();
    let mut terminating = false;
    loop {
        let wait = core
            .poll_timeout()
            .map_or(Duration::from_secs(1), |at| at.saturating_since(now()))
            .min(Duration::from_secs(1));
        match received.recv_timeout(wait) {
            Ok(Input::Request { request, answer }) => {
                let reply = take_request(
                    &mut core,
                    now(),
                    (&key, options.heartbeat_port, watchdog),
                    *request,
                );
                // The persisted state and the files are on disk before the answer leaves:
                // the giver counts this node as holding what it answered.
                let ended =
                    match drain(&mut core, (&dir, &taken), log, &mut requests, &mut awaiting) {
                        Ok(ended) => ended,
                        Err(e) => {
                            let _ = answer.send(None);
                            return fail(e);
                        }
                    };
                let _ = answer.send(reply);
                if let Some(ended) = ended {
                    return Ok(ended);
                }
            }
            Ok(Input::Apply { request, reply }) => {
                let check = matches!(*request, Request::CheckApply { .. });
                match create(&mut core, now(), (options, watchdog, log), *request) {
                    Ok(serial) => awaiting.push(Awaited {
                        serial,
                        reply,
                        check,
                    }),
                    Err(answer) => {
                        let _ = reply.send(answer);
                    }
                }
            }
            Ok(Input::Exchanged { to, result }) => {
                let result = *result;
                if let Some(line) = requests.ended(&to, &result) {
                    log.say(line);
                }
                match result {
                    Ok(envelope) => core.handle_exchange_answer(now(), &to, envelope),
                    Err(why) => core.handle_exchange_failure(&to, &why),
                }
            }
            Ok(Input::Terminate) => terminating = true,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return fail("every input of the daemon closed");
            }
        }
        let at = now();
        if core.poll_timeout().is_some_and(|t| t <= at) {
            core.handle_timeout(at);
        }
        if let Some(ended) =
            drain(&mut core, (&dir, &taken), log, &mut requests, &mut awaiting).or_else(fail)?
        {
            return Ok(ended);
        }
        if terminating && !core.changing(now()) {
            log.say("halted (not configured in a cluster)");
            return Ok(Ended::Halted);
        }
    }
}

/// A command of the admin socket the core answers later ([`Event::CommandAnswered`]).
struct Awaited {
    serial: u64,
    reply: mpsc::Sender<Reply>,
    /// cmcheckconf: answered Done or Refused, with nothing in effect.
    check: bool,
}

/// Carries out the core's actions in order; how the daemon ends, once a generation that
/// adds this node was committed and its time came.
fn drain(
    core: &mut Unconfigured,
    (dir, taken): (&std::path::Path, &Mutex<Option<String>>),
    log: &Log,
    requests: &mut exchange::Requests,
    awaiting: &mut Vec<Awaited>,
) -> Result<Option<Ended>, String> {
    // A generation taken (committed in the core as the request was handled): the admin
    // socket says so before any answer leaves.
    if let Some(generation) = core.committed() {
        *taken
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(generation.cluster.name.clone());
    }
    while let Some(action) = core.poll_action() {
        match action {
            Action::Exchange {
                to,
                addresses,
                envelope,
            } => requests.send(to, &addresses, envelope),
            Action::Event(Event::CommandAnswered {
                serial, refusal, ..
            }) => {
                let at = awaiting.iter().position(|a| a.serial == serial);
                if let Some(awaited) = at.filter(|&at| awaiting[at].check) {
                    let awaited = awaiting.remove(awaited);
                    let command = format!("cmcheckconf (command {serial})");
                    let reply = match refusal {
                        None => {
                            log.say(format_args!("{command}: every node takes the files"));
                            Reply::Done
                        }
                        Some(why) => {
                            log.say(format_args!("{command}: {why}"));
                            Reply::Refused(why)
                        }
                    };
                    let _ = awaited.reply.send(reply);
                    continue;
                }
                let reply = match (&refusal, core.committed()) {
                    (None, Some(config)) => Reply::InEffect {
                        generation: config.sequence,
                        warning: None,
                        not_configured: Vec::new(),
                    },
                    (Some(why), _) => Reply::Refused(why.clone()),
                    (None, None) => {
                        Reply::Error("the creation ended with nothing in effect".into())
                    }
                };
                match &refusal {
                    None => log.say(format_args!(
                        "cmapplyconf (command {serial}): the cluster is created"
                    )),
                    Some(why) => log.say(format_args!("cmapplyconf (command {serial}): {why}")),
                }
                if let Some(at) = at {
                    let _ = awaiting.remove(at).reply.send(reply);
                }
            }
            Action::Persist(persisted) => {
                let path = dir.join("acceptor");
                state_file::write(&path, &wire::encode_persisted(&persisted))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            Action::WriteConfiguration(config) => {
                super::daemon::write_configuration(dir, &config).map_err(|e| {
                    format!(
                        "{}: cannot write configuration generation {} into it: {e}",
                        dir.display(),
                        config.sequence
                    )
                })?;
                log.say(format_args!(
                    "cluster {} configuration generation {} written: this node is one of its \
                     nodes",
                    config.cluster.name, config.sequence
                ));
            }
            Action::Event(Event::Reconfigured { .. }) => {
                let cluster = core
                    .committed()
                    .map(|c| c.cluster.name.clone())
                    .unwrap_or_default();
                if super::daemon::terminated() {
                    log.say(format_args!(
                        "added to cluster {cluster} (cmapplyconf); the next start takes its \
                         configuration"
                    ));
                    return Ok(Some(Ended::Halted));
                }
                log.say(format_args!(
                    "added to cluster {cluster} (cmapplyconf): starting again as a node of it, \
                     halted"
                ));
                return Ok(Some(Ended::StartHalted));
            }
            _ => {}
        }
    }
    Ok(None)
}

/// cmapplyconf given here: the files checked as cmapplyconf checks them, then this node's
/// own part (its heartbeat addresses, its watchdog device), then the cluster's creation
/// ([`Unconfigured::handle_create`]), whose serial is returned; else the answer. For a
/// `check_apply`, cmcheckconf: the same checks, then the creation checked on every node
/// ([`Unconfigured::handle_check_create`]), files that do not check answered as Findings.
fn create(
    core: &mut Unconfigured,
    now: crate::core::Instant,
    (options, watchdog, log): (&Options, bool, &Log),
    request: Request,
) -> Result<u64, Reply> {
    let check = matches!(request, Request::CheckApply { .. });
    let (Request::Apply {
        cluster, packages, ..
    }
    | Request::CheckApply { cluster, packages }) = request
    else {
        return Err(Reply::Error("not a cmapplyconf".into()));
    };
    let (cluster, packages) = super::daemon::checked_new_cluster(cluster, packages.as_deref())
        .map_err(|reply| match reply {
            Reply::Error(findings) if check => Reply::Findings(findings),
            other => other,
        })?;
    let me = &options.node;
    // This node's heartbeat addresses, as each other node checks its own.
    let own = cluster
        .node(me)
        .and_then(|n| unusable_address(me, n.heartbeat_addresses(), options.heartbeat_port))
        .or_else(|| unserved_timing(me, &cluster, watchdog));
    if let Some(why) = own {
        return Err(if check {
            Reply::Findings(why)
        } else {
            Reply::Refused(format!("{why}; nothing was applied"))
        });
    }
    let name = cluster.name.clone();
    if check {
        let serial = core
            .handle_check_create(now, cluster, packages)
            .map_err(Reply::Refused)?;
        log.say(format_args!(
            "cmcheckconf (command {serial}): cluster {name} checked on every node"
        ));
        return Ok(serial);
    }
    let serial = core
        .handle_create(now, cluster, packages)
        .map_err(Reply::Refused)?;
    log.say(format_args!(
        "cmapplyconf (command {serial}): creating cluster {name}, offered to every node"
    ));
    Ok(serial)
}

/// Checks what the runtime knows of and the core does not (the key, this node's addresses),
/// then hands the request to the core.
fn take_request(
    core: &mut Unconfigured,
    now: crate::core::Instant,
    (key, port, watchdog): (&[u8], u16, bool),
    request: exchange::Request,
) -> Option<Envelope> {
    let exchange::Request {
        peer,
        key_check,
        binding,
        envelope,
    } = request;
    let refusal = match &envelope.message {
        Message::ConfigOffer { serial, config } | Message::ConfigCheck { serial, config } => {
            let me = core.name().to_owned();
            let refusal = if envelope.cluster_id != cluster_id(&config.cluster.name) {
                Some(format!(
                    "the offer to {me} is not of the cluster it names ({})",
                    config.cluster.name
                ))
            } else if !exchange::key_matches(key, envelope.cluster_id, &binding, &key_check) {
                Some(format!(
                    "{me}'s cluster.key is not the cluster's: copy the cluster's key there \
                     (mode 0600) and start its cmcld again"
                ))
            } else {
                config
                    .cluster
                    .node(&me)
                    .and_then(|node| unusable_address(&me, node.heartbeat_addresses(), port))
                    .or_else(|| unserved_timing(&me, &config.cluster, watchdog))
            };
            refusal.map(|why| (*serial, why))
        }
        _ => None,
    };
    if let Some((serial, why)) = refusal {
        return Some(Envelope {
            cluster_id: envelope.cluster_id,
            config_generation: 0,
            from: crate::core::NodeId(0),
            from_incarnation: Incarnation(0),
            to_incarnation: envelope.from_incarnation,
            message: Message::ConfigAnswer {
                serial,
                commit: false,
                refusal: Some(why),
                epoch_max: core.persisted().epoch_max,
            },
        });
    }
    core.handle_request(now, &peer, envelope)
}

/// Why this node, whose safety timer has a watchdog device beneath it (`watchdog`), could
/// not start with `cluster`'s timing, if so: the device counts whole seconds.
fn unserved_timing(
    me: &str,
    cluster: &crate::config::cluster::ClusterConfig,
    watchdog: bool,
) -> Option<String> {
    if !watchdog {
        return None;
    }
    let timing = crate::timing::Timing::derive(cluster, "").ok()?;
    super::watchdog::check_horizon(timing.pet_horizon())
        .err()
        .map(|why| format!("{me} runs with a watchdog device: {why}"))
}

/// Why this node could not send heartbeats from one of `addresses` (they are not its own,
/// or another process holds the port), if so.
fn unusable_address(
    me: &str,
    addresses: impl Iterator<Item = IpAddr>,
    port: u16,
) -> Option<String> {
    for address in addresses {
        if let Err(e) = std::net::UdpSocket::bind(SocketAddr::new(address, port)) {
            return Some(format!(
                "{me} cannot send heartbeats from HEARTBEAT_IP {address} (UDP port {port}): {e}"
            ));
        }
    }
    None
}

/// The admin socket: cmapplyconf creates a cluster, cmcheckconf checks its creation on every
/// node; every other request is answered that the node is not configured.
fn serve_admin(
    options: &Options,
    log: &Log,
    inputs: &mpsc::Sender<Input>,
    taken: &Arc<Mutex<Option<String>>>,
) -> Result<(), StartError> {
    let text = format!(
        "node {} {}: its cmcld waits for a cmapplyconf that adds it (given with the cluster \
         halted on one of its nodes), or that creates a cluster with it (given here)",
        options.node,
        super::daemon::NOT_CONFIGURED
    );
    let inputs = Mutex::new(inputs.clone());
    let quorum = super::daemon::QuorumCheck {
        ca: options.state_dir.join("qs-ca.pem"),
        me: options.node.clone(),
    };
    let (taken, node) = (taken.clone(), options.node.clone());
    super::daemon::serve_admin_socket(
        &options.state_dir,
        log,
        Arc::new(move |stream| {
            let inputs = inputs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            let cluster = taken
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            let text = match cluster {
                Some(cluster) => taken_text(&node, &cluster, super::daemon::terminated()),
                None => text.clone(),
            };
            answer_admin(stream, &text, &inputs, &quorum)
        }),
    )
}

/// What the admin socket says once this node took cluster `cluster`'s configuration: its
/// cmcld starts again as a node of it, unless it was told to end (`terminated`: SIGTERM or
/// SIGINT during the moment it lingers), when its next start takes the configuration. A
/// command told the first waits for the new life; told the second, it does not.
fn taken_text(node: &str, cluster: &str, terminated: bool) -> String {
    if terminated {
        format!(
            "node {node} took the configuration of cluster {cluster}, and its cmcld is \
             stopping: the next start of cmcld takes it (halted)"
        )
    } else {
        format!(
            "node {node} took the configuration of cluster {cluster}: {}",
            super::daemon::STARTING_CONFIGURED
        )
    }
}

fn answer_admin(
    stream: std::os::unix::net::UnixStream,
    text: &str,
    inputs: &mpsc::Sender<Input>,
    quorum: &super::daemon::QuorumCheck,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(300)))?;
    let mut reader = BufReader::new(stream.try_clone()?).take(1 << 20);
    let mut writer = stream;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || !line.ends_with('\n') {
            return Ok(());
        }
        reader.set_limit(1 << 20);
        let reply = match serde_json::from_str::<Request>(line.trim()) {
            Err(e) => Reply::Error(format!("not a request: {e}")),
            Ok(request @ (Request::Apply { .. } | Request::CheckApply { .. })) => {
                // A quorum server the file names answers this node, or nothing is applied
                // (as on a configured node): checked here, off the daemon's loop.
                let quorum_refusal = match &request {
                    Request::Apply {
                        cluster: Some(file),
                        ..
                    }
                    | Request::CheckApply {
                        cluster: Some(file),
                        ..
                    } => quorum.refusal(file),
                    _ => None,
                };
                let (reply, answer) = mpsc::channel();
                let request = Box::new(request);
                if let Some(refusal) = quorum_refusal {
                    Reply::Refused(refusal)
                } else if inputs.send(Input::Apply { request, reply }).is_err() {
                    Reply::Error("the daemon is stopping".into())
                } else {
                    // Both stages, each up to 4 s, and the nodes' checks.
                    answer
                        .recv_timeout(Duration::from_secs(30))
                        .unwrap_or_else(|_| Reply::Error("the daemon did not answer".into()))
                }
            }
            Ok(_) => Reply::Error(text.to_owned()),
        };
        let mut json = serde_json::to_string(&reply).unwrap_or_default();
        json.push('\n');
        writer.write_all(json.as_bytes())?;
    }
}

#[cfg(test)]
mod tests {
    use super::{taken_text, unserved_timing};

    /// A command waits for the new life only when the admin socket says one comes: not
    /// once SIGTERM told the daemon to end during its linger.
    #[test]
    fn a_node_told_to_end_after_taking_a_configuration_does_not_say_it_starts_again() {
        let starting = taken_text("n4", "c", false);
        assert!(
            starting.contains(crate::runtime::daemon::STARTING_CONFIGURED),
            "{starting}"
        );
        let stopping = taken_text("n4", "c", true);
        assert!(
            !stopping.contains(crate::runtime::daemon::STARTING_CONFIGURED)
                && stopping.contains("next start"),
            "{stopping}"
        );
    }

    fn cluster(member_timeout_micros: u64) -> crate::config::cluster::ClusterConfig {
        let text = format!(
            "CLUSTER_NAME c\nMEMBER_TIMEOUT {member_timeout_micros}\nNODE_NAME n1\n \
             NETWORK_INTERFACE lo\n  HEARTBEAT_IP 127.0.0.1\n NETWORK_INTERFACE lo1\n  \
             HEARTBEAT_IP 127.0.1.1\n"
        );
        crate::config::cluster::parse(&text, "c.ascii")
            .expect("a cluster file")
            .config
    }

    #[test]
    fn a_node_with_a_watchdog_device_refuses_a_timing_the_device_cannot_serve() {
        let short = cluster(2_000_000);
        let refusal = unserved_timing("n1", &short, true).expect("refused");
        assert!(
            refusal.starts_with("n1 runs with a watchdog device") && refusal.contains("3 s"),
            "{refusal}"
        );
        assert_eq!(unserved_timing("n1", &short, false), None);
        assert_eq!(unserved_timing("n1", &cluster(14_000_000), true), None);
    }
}
