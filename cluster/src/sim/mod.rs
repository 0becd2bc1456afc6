//! A deterministic simulator for the membership core (VOPR style): several [`Node`]s on one
//! thread, each with its own drifting monotonic clock, a network that delays, loses,
//! duplicates, reorders and replays packets and can be partitioned in any shape, a lock LUN
//! with latency, I/O errors and hangs, a quorum server that can die, a watchdog that resets a
//! node it is not petted in time, process pauses and crash-restarts. After every event the
//! [`check::Checker`] verifies the invariants of cluster.md; a violation carries the seed,
//! and the same seed replays the same run.
//!
//! Test-only in spirit: production drivers never build a `Simulation`.

pub mod check;
pub mod random;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::Arc;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::config::cluster::{parse, ClusterConfig};
use crate::config::package::{parse as parse_package, PackageConfig, PackageType};
use crate::core::{
    Action, Echo, Envelope, Epoch, Event, Incarnation, Instant, Message, Node, NodeId, NodeSet,
    Persisted, Phase, QuorumServerAnswer, QuorumServerAsk, Sabotage, Settings, Taken, Term,
    Tiebreaker, Unconfigured,
};
use crate::disk_paxos::{DiskFailure, DiskReply, DiskRequest, IoId, BLOCK_BYTES};
use crate::packages::{
    Catalog, Command, PackageAction, PackageId, Refusal, ResourceError, ResourceValue, Script,
    ScriptOutcome,
};
use crate::status::{Notice, Snapshot};
use crate::timing::Timing;
use check::{Checker, Lives, Violation};

/// How a simulated cluster is built.
#[derive(Debug, Clone)]
pub struct Options {
    /// The number of nodes.
    pub nodes: usize,
    /// Heartbeat networks per node.
    pub networks: usize,
    /// MEMBER_TIMEOUT.
    pub member_timeout: Duration,
    /// The tie-breaker.
    pub tiebreaker: Tiebreaker,
    /// The seed of everything random.
    pub seed: u64,
    /// The largest clock-rate error given to a node, in ppm (each node draws one in
    /// ±this).
    pub drift_ppm: u64,
    /// How long a fenced or crashed node takes to come back (None: it stays down until
    /// [`Simulation::restart`]).
    pub reboot_after: Option<Duration>,
    /// Rules the cores break on purpose (checker tests only).
    pub sabotage: Sabotage,
    /// What the nodes' watchdog devices need a pet to reach ahead (zero: no device).
    pub pet_horizon_min: Duration,
    /// Package files (their text).
    pub packages: Vec<String>,
    /// Pass every message sent and every state persisted through the [`crate::wire`]
    /// encoding, and panic unless it comes back equal.
    pub through_wire: bool,
}

impl Options {
    /// `nodes` nodes on two networks, MEMBER_TIMEOUT 14 s, no lock, ±500 ppm drift, no
    /// automatic reboot.
    pub fn new(nodes: usize, seed: u64) -> Options {
        Options {
            nodes,
            networks: 2,
            member_timeout: Duration::from_secs(14),
            tiebreaker: Tiebreaker::None,
            seed,
            drift_ppm: 500,
            reboot_after: None,
            sabotage: Sabotage::default(),
            pet_horizon_min: Duration::ZERO,
            packages: Vec::new(),
            through_wire: false,
        }
    }
}

/// How a simulated script misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptFault {
    /// It exits non-zero.
    Fail,
    /// It runs past its timeout (the driver reports a timeout).
    Timeout,
    /// It never ends and no timeout is configured.
    Hang,
}

/// A simulated node's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    /// Never started, or down (crashed, fenced, reset).
    Down,
    /// Running.
    Up,
    /// Its process is stopped (SIGSTOP, VM freeze): events wait, the watchdog runs on.
    Paused,
}

/// The network's behaviour.
#[derive(Debug, Clone)]
pub struct NetworkModel {
    /// The least one-way delay.
    pub delay_min: Duration,
    /// The mean of the exponential extra delay.
    pub delay_mean_extra: Duration,
    /// Probability (0..1) that a packet is lost.
    pub loss: f64,
    /// Probability that a packet is delivered twice.
    pub duplicate: f64,
    /// Probability that an old packet is delivered again (a replay).
    pub replay: f64,
    /// `cut[from][to][network]`: the packet is dropped.
    cut: Vec<Vec<Vec<bool>>>,
    /// Messages of these kinds ([`Message::kind`]) from these nodes are dropped (e.g. `(n2,
    /// "Accept")`): a fault that loses one kind of message only.
    pub drop_kinds: Vec<(NodeId, &'static str)>,
}

/// The lock LUN: one block per node, atomic per block.
#[derive(Debug, Clone)]
pub struct DiskModel {
    /// The blocks.
    pub blocks: Vec<[u8; BLOCK_BYTES]>,
    /// Latency of each request.
    pub latency: Duration,
    /// Every request fails with EIO.
    pub failing: bool,
    /// Requests for these blocks fail with EIO (a bad sector).
    pub failing_blocks: BTreeSet<u8>,
    /// Requests never complete.
    pub hung: bool,
}

/// The quorum server.
#[derive(Debug, Clone, Default)]
pub struct QuorumServerModel {
    /// Whether it runs.
    pub up: bool,
    /// Nodes that cannot reach it.
    pub unreachable_from: NodeSet,
    /// The group granted each instance.
    pub grants: BTreeMap<u64, NodeSet>,
    /// Test-only sabotage: grant every request (to show the checker catches a double grant).
    pub grant_everyone: bool,
}

#[derive(Debug)]
struct SimNode {
    core: Option<Node>,
    /// The catalog the core's package numbers refer to (see `Action::Catalog`).
    catalog: Arc<Catalog>,
    life: Life,
    incarnation: Incarnation,
    persisted: Persisted,
    /// The shared map as last persisted.
    shared: crate::core::shared::SharedMap,
    /// local = offset + real * (1 + rate_ppm / 1e6).
    offset: u64,
    rate_ppm: i64,
    timer_generation: u64,
    /// The watchdog's deadline on the node's clock.
    watchdog: Option<Instant>,
    watchdog_generation: u64,
    frozen: bool,
    /// Whether this life has been quorate: only then may it have started anything.
    quorate_once: bool,
    config_generation: u64,
    inbox: Vec<Pending>,
    /// The notices this life told, numbered from 1 as the daemon numbers them.
    notices_told: u64,
    /// The next life starts halted (after a cmapplyconf that changed the nodes).
    start_halted: bool,
    /// Configured in no cluster (cmapplyconf deleted it, or cmdeleteconf): its lives run
    /// unconfigured, as its daemon does.
    removed: bool,
    /// The core of its life while unconfigured.
    unconfigured: Option<Unconfigured>,
    /// How its host checks a heartbeat address ([`Simulation::set_address_check`]).
    address_check: crate::core::AddressCheck,
}

#[derive(Debug, Clone)]
enum Pending {
    Timer,
    Script {
        /// By name: the package's number may change before the answer (cmapplyconf).
        package: String,
        script: Script,
        outcome: ScriptOutcome,
    },
    Deliver {
        network: usize,
        envelope: Box<Envelope>,
    },
    Check {
        /// By name, as for scripts.
        package: String,
    },
    /// A request over the configuration exchange, to this node (unconfigured), from the node
    /// named `from`; its answer goes back to `reply`.
    Exchange {
        from: String,
        reply: (NodeId, Incarnation),
        envelope: Box<Envelope>,
    },
    /// The answer of the node named `from` to a request over the exchange about the change
    /// `serial`, or why none came.
    Exchanged {
        from: String,
        serial: Option<u64>,
        result: Result<Box<Envelope>, String>,
    },
    Disk {
        id: IoId,
        result: Result<DiskReply, DiskFailure>,
    },
    QuorumServer {
        id: u64,
        answer: Result<QuorumServerAnswer, String>,
    },
}

#[derive(Debug, Clone)]
enum Scheduled {
    Node {
        node: NodeId,
        incarnation: Incarnation,
        generation: u64,
        pending: Pending,
    },
    Watchdog {
        node: NodeId,
        incarnation: Incarnation,
        generation: u64,
    },
    Boot {
        node: NodeId,
    },
}

/// One entry of the run's trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Simulated real time.
    pub at: Duration,
    /// The node.
    pub node: NodeId,
    /// What it reported.
    pub event: Event,
}

/// A catalogue notice a node reported.
#[derive(Debug, Clone)]
pub struct NoticeRecord {
    /// Simulated real time.
    pub at: Duration,
    /// The node.
    pub node: NodeId,
    /// The node's life when it told it.
    pub incarnation: Incarnation,
    /// Its number in that life (1 for the first), as the node's daemon numbers it.
    pub number: u64,
    /// The notice.
    pub notice: Notice,
}

/// The latest ends a node announced with its send times (see [`Simulation::check_announced`]).
#[derive(Debug, Clone, Copy)]
struct Ends {
    lease: Instant,
    grace: Instant,
    both: Instant,
}

/// The simulator.
#[derive(Debug)]
pub struct Simulation {
    options: Options,
    timing: Timing,
    /// Per node: the life, and the latest ends (its clock) of lease (`at + lease`), of
    /// grace (`at + grace`) and of both it announced in that life.
    announced: Vec<Option<(Incarnation, Ends)>>,
    /// Per node: the life, and the latest end (`at + lease + grace`, its clock) of the echoes
    /// of its send times that peers sent it in that life. Its pets rest on those.
    echoed: Vec<Option<(Incarnation, Instant)>>,
    /// The timing in effect on the node whose actions are being performed, before the step
    /// that produced them (a step may announce under one timing and then change it).
    timing_before_step: Option<Timing>,
    settings: Vec<Settings>,
    /// Each host's NODE_NAME (the first node list's; hosts keep it).
    names: Vec<String>,
    now: u64,
    rng: ChaCha8Rng,
    sequence: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    scheduled: BTreeMap<u64, Scheduled>,
    nodes: Vec<SimNode>,
    /// The network.
    pub network: NetworkModel,
    /// The lock LUN.
    pub disk: DiskModel,
    /// The quorum server.
    pub quorum_server: QuorumServerModel,
    replayable: Vec<(NodeId, usize, Envelope)>,
    checker: Checker,
    /// The resolved packages.
    catalog: Arc<Catalog>,
    /// Package instances that may be running: from their run script until a halt script
    /// succeeds or the node's life ends (S1).
    /// Who may run which package, by package name (numbers change with cmapplyconf).
    owners: BTreeSet<(String, NodeId, Incarnation)>,
    /// Scripts that fail, hang or time out, by package, node and script.
    pub script_faults: BTreeMap<(String, NodeId, Script), ScriptFault>,
    /// How long a script takes.
    pub script_latency: Duration,
    violation: Option<Violation>,
    /// What each life told each member of each proposal it dropped: Halt or Abandon. One
    /// of the two, never both (a member takes a Halt only while it waits on the proposal,
    /// and an Abandon that overtook the Halt would end that wait).
    dropped_told: BTreeMap<(NodeId, Incarnation, NodeId, Epoch), &'static str>,
    trace: Vec<Record>,
    notices: Vec<NoticeRecord>,
    /// Events processed (for the benchmark).
    pub steps: u64,
    /// Messages passed through the wire encoding, by kind (with [`Options::through_wire`]).
    pub wire_counts: BTreeMap<&'static str, u64>,
    /// The first message of each of those kinds.
    pub wire_samples: Vec<Envelope>,
    /// Resets by the watchdog.
    pub watchdog_resets: u64,
    /// Print every fault and event as it happens (`SIM_VERBOSE` set): the whole story of a
    /// failing seed, where the trace kept for the report has only its events.
    verbose: bool,
}

/// A cluster file for `options`: nodes n1..nN on networks 10.K.0.N (never sent anywhere: the
/// simulator only uses the node indices).
pub fn cluster_file(options: &Options) -> String {
    let mut text = format!(
        "CLUSTER_NAME simulated\nMEMBER_TIMEOUT {}\nAUTO_START_TIMEOUT 600000000\n",
        options.member_timeout.as_micros()
    );
    if options.tiebreaker == Tiebreaker::QuorumServer {
        text.push_str("QS_HOST qs.example\nQS_POLLING_INTERVAL 30000000\n");
    }
    for n in 1..=options.nodes {
        text.push_str(&format!("NODE_NAME n{n}\n"));
        for network in 0..options.networks {
            text.push_str(&format!(
                " NETWORK_INTERFACE eth{network}\n  HEARTBEAT_IP 10.{network}.0.{n}\n"
            ));
        }
        if options.tiebreaker == Tiebreaker::LockLun {
            text.push_str(" CLUSTER_LOCK_LUN /dev/sdlock\n");
        }
    }
    text
}

impl Simulation {
    /// A cluster of `options.nodes` nodes, none started yet.
    pub fn new(options: Options) -> Simulation {
        let text = cluster_file(&options);
        let config = match parse(&text, "simulated.ascii") {
            Ok(checked) => checked.config,
            Err(findings) => panic!("the simulator's cluster file is invalid: {findings:?}"),
        };
        let timing = match Timing::derive(&config, "simulated.ascii") {
            Ok(timing) => timing,
            Err(findings) => panic!("the simulator's timing is invalid: {findings:?}"),
        };
        let packages: Vec<_> = options
            .packages
            .iter()
            .map(|text| match parse_package(text, "simulated.conf") {
                Ok(checked) => checked.config,
                Err(findings) => panic!("a simulated package file is invalid: {findings:?}"),
            })
            .collect();
        let catalog = match Catalog::resolve(&config, &packages) {
            Ok(catalog) => Arc::new(catalog),
            Err(error) => panic!("the simulated packages do not resolve: {error}"),
        };
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        let settings: Vec<Settings> = (0..options.nodes)
            .map(|n| {
                let mut settings =
                    Settings::from_config(&config, timing, NodeId(n as u32), 1, rng.next_u64());
                settings.sabotage = options.sabotage;
                settings.pet_horizon_min = options.pet_horizon_min;
                settings.catalog = catalog.clone();
                settings.packages = Arc::new(packages.clone());
                settings
            })
            .collect();
        let nodes = (0..options.nodes)
            .map(|_| {
                let spread = 2 * options.drift_ppm + 1;
                SimNode {
                    core: None,
                    catalog: catalog.clone(),
                    life: Life::Down,
                    incarnation: Incarnation(0),
                    persisted: Persisted::default(),
                    shared: crate::core::shared::SharedMap::new(),
                    offset: rng.next_u64() % 1_000_000_000_000_000,
                    rate_ppm: (rng.next_u64() % spread) as i64 - options.drift_ppm as i64,
                    timer_generation: 0,
                    watchdog: None,
                    watchdog_generation: 0,
                    frozen: false,
                    quorate_once: false,
                    config_generation: 1,
                    inbox: Vec::new(),
                    notices_told: 0,
                    start_halted: false,
                    removed: false,
                    unconfigured: None,
                    address_check: crate::core::AddressCheck::default(),
                }
            })
            .collect();
        let networks = options.networks;
        Simulation {
            network: NetworkModel {
                delay_min: Duration::from_micros(50),
                delay_mean_extra: Duration::from_micros(200),
                loss: 0.0,
                duplicate: 0.0,
                replay: 0.0,
                cut: vec![vec![vec![false; networks]; options.nodes]; options.nodes],
                drop_kinds: Vec::new(),
            },
            disk: DiskModel {
                blocks: vec![[0; BLOCK_BYTES]; options.nodes],
                latency: Duration::from_millis(2),
                failing: false,
                failing_blocks: BTreeSet::new(),
                hung: false,
            },
            quorum_server: QuorumServerModel {
                up: true,
                ..QuorumServerModel::default()
            },
            timing,
            announced: vec![None; settings.len()],
            echoed: vec![None; settings.len()],
            timing_before_step: None,
            settings,
            names: config.nodes.iter().map(|n| n.name.clone()).collect(),
            now: 0,
            rng,
            sequence: 0,
            queue: BinaryHeap::new(),
            scheduled: BTreeMap::new(),
            nodes,
            replayable: Vec::new(),
            checker: Checker::default(),
            catalog,
            owners: BTreeSet::new(),
            script_faults: BTreeMap::new(),
            script_latency: Duration::from_millis(500),
            violation: None,
            dropped_told: BTreeMap::new(),
            trace: Vec::new(),
            notices: Vec::new(),
            steps: 0,
            wire_counts: BTreeMap::new(),
            wire_samples: Vec::new(),
            watchdog_resets: 0,
            verbose: std::env::var_os("SIM_VERBOSE").is_some(),
            options,
        }
    }

    /// The derived timing.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.options.seed
    }

    /// Simulated time since the start.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now)
    }

    /// The trace of every event reported so far.
    pub fn trace(&self) -> &[Record] {
        &self.trace
    }

    /// The checker (for its counts).
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// A node's life.
    pub fn life(&self, node: NodeId) -> Life {
        self.nodes[node.index()].life
    }

    /// The state `node` persisted last.
    pub fn persisted(&self, node: NodeId) -> &Persisted {
        &self.nodes[node.index()].persisted
    }

    /// The state `node`'s next life starts from, to be left as a history the scenario
    /// cannot easily drive the nodes into (what an earlier life accepted and never saw
    /// decided, say). Meant for a node that is down.
    pub fn persisted_mut(&mut self, node: NodeId) -> &mut Persisted {
        &mut self.nodes[node.index()].persisted
    }

    /// How many nodes the cluster has.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// A node's core, if it runs.
    pub fn core(&self, node: NodeId) -> Option<&Node> {
        match self.nodes[node.index()].life {
            Life::Down => None,
            _ => self.nodes[node.index()].core.as_ref(),
        }
    }

    /// The members of the membership `node` has installed and runs in (empty if it does not).
    pub fn members(&self, node: NodeId) -> NodeSet {
        self.core(node)
            .filter(|core| core.phase() == Phase::Running)
            .map_or(NodeSet::EMPTY, |core| core.view().members)
    }

    /// Whether every node of `nodes` runs in one membership made of exactly `nodes`.
    pub fn formed(&self, nodes: NodeSet) -> bool {
        nodes.iter().all(|node| {
            self.members(node) == nodes
                && self.core(node).map(|c| c.view().epoch)
                    == self
                        .core(nodes.lowest().unwrap_or(node))
                        .map(|c| c.view().epoch)
        })
    }

    /// Counts the trace entries matching `predicate`.
    pub fn count(&self, predicate: impl Fn(&Record) -> bool) -> usize {
        self.trace.iter().filter(|r| predicate(r)).count()
    }

    /// The catalogue notices reported so far, in order.
    pub fn notices(&self) -> &[NoticeRecord] {
        &self.notices
    }

    /// Whether `node` runs unconfigured (configured in no cluster).
    pub fn unconfigured(&self, node: NodeId) -> bool {
        let sim_node = &self.nodes[node.index()];
        sim_node.life != Life::Down && sim_node.unconfigured.is_some()
    }

    /// Whether `node` runs unconfigured and took a generation that names it: its new life,
    /// as a halted node of the cluster, is about to start.
    pub fn configured_soon(&self, node: NodeId) -> bool {
        let sim_node = &self.nodes[node.index()];
        sim_node.life != Life::Down
            && sim_node
                .unconfigured
                .as_ref()
                .is_some_and(|core| core.committed().is_some())
    }

    /// What `cmviewcl -v` shows on `node` now (None: the node is down).
    pub fn status(&self, node: NodeId) -> Option<Snapshot> {
        let sim_node = &self.nodes[node.index()];
        let core = self.core(node)?;
        Some(core.status(local_time(sim_node, self.now)))
    }

    /// Starts `node` (a new life) now.
    pub fn start(&mut self, node: NodeId) {
        self.say(format_args!("{node} starts"));
        let sim_node = &mut self.nodes[node.index()];
        if sim_node.life != Life::Down {
            return;
        }
        sim_node.incarnation = Incarnation(sim_node.incarnation.0 + 1);
        sim_node.life = Life::Up;
        sim_node.watchdog = None;
        sim_node.frozen = false;
        sim_node.quorate_once = false;
        sim_node.inbox.clear();
        sim_node.notices_told = 0;
        // Deleted from the cluster (its retirement persisted) and down before it went on
        // unconfigured: its daemon removes its files and goes on unconfigured now.
        let name = &self.names[node.index()];
        if sim_node
            .persisted
            .config
            .as_ref()
            .is_some_and(|g| g.retires(name))
        {
            sim_node.removed = true;
        }
        if sim_node.removed {
            // Configured in no cluster: the daemon runs unconfigured, waiting to be added.
            let core = Unconfigured::new(
                &self.names[node.index()],
                sim_node.incarnation,
                sim_node.persisted.clone(),
            );
            sim_node.unconfigured = Some(core);
            self.run_unconfigured(node, |core, now| core.handle_timeout(now));
            return;
        }
        // Stopped between persisting a generation that numbered the nodes anew (a halted
        // cmapplyconf's) and the new life it starts: the daemon starts from that generation
        // (its files written again from it), as the new life would have. (Generations taken
        // while the cluster ran keep the numbers: the core takes them over the settings.)
        let renumbered = sim_node.persisted.config.as_ref().is_some_and(|g| {
            g.number > 1
                && crate::config::needs_halted_cluster(
                    &self.settings[node.index()].config,
                    &g.cluster,
                )
                .contains(&"NODE_NAME")
        });
        if renumbered {
            let start_halted = sim_node.start_halted;
            self.configure_from_persisted(node);
            self.nodes[node.index()].start_halted = start_halted;
        }
        let sim_node = &mut self.nodes[node.index()];
        let local = local_time(sim_node, self.now);
        let mut settings = self.settings[node.index()].clone();
        settings.config_generation = sim_node.config_generation;
        settings.config_sequence = sim_node.config_generation;
        settings.start_halted = std::mem::take(&mut sim_node.start_halted);
        let mut core = Node::new(
            settings,
            sim_node.incarnation,
            sim_node.persisted.clone(),
            local,
        );
        core.load_shared(sim_node.shared.clone());
        core.set_address_check(sim_node.address_check.clone());
        sim_node.catalog = Arc::new(core.packages().catalog().clone());
        sim_node.core = Some(core);
        self.run_core(node, |core, now| core.handle_timeout(now));
    }

    /// Starts every node.
    pub fn start_all(&mut self) {
        for n in 0..self.options.nodes {
            self.start(NodeId(n as u32));
        }
    }

    /// The configuration generation `node` starts with next time (1 for all at first).
    pub fn set_config_generation(&mut self, node: NodeId, generation: u64) {
        self.nodes[node.index()].config_generation = generation;
    }

    /// Sets `node`'s clock: `offset` at time zero, running `rate_ppm` fast (negative: slow).
    /// Call before starting the node.
    pub fn set_clock(&mut self, node: NodeId, offset: Duration, rate_ppm: i64) {
        let sim_node = &mut self.nodes[node.index()];
        sim_node.offset = nanos(offset);
        sim_node.rate_ppm = rate_ppm;
    }

    /// How `node`'s host checks that it can send heartbeats from an address, as the daemon's
    /// does by binding it: from now on, and in its later lives (by default every address
    /// is its own).
    pub fn set_address_check(&mut self, node: NodeId, check: crate::core::AddressCheck) {
        let sim_node = &mut self.nodes[node.index()];
        if let Some(core) = &mut sim_node.core {
            core.set_address_check(check.clone());
        }
        sim_node.address_check = check;
    }

    /// Kills `node` (kill -9 of the daemon and its packages: a crashed machine).
    pub fn crash(&mut self, node: NodeId) {
        self.down(node);
    }

    /// What an answer tells the operator to do on a node that a halted cmapplyconf deleted
    /// and could not tell: cmcld stopped, cluster.ascii, packages/ and acceptor removed
    /// from its state directory, and cmcld started again, unconfigured.
    pub fn unconfigure_by_hand(&mut self, node: NodeId) {
        self.say(format_args!("{node}: its files removed by hand"));
        self.down(node);
        let sim_node = &mut self.nodes[node.index()];
        sim_node.persisted = Persisted::default();
        sim_node.removed = true;
        self.start(node);
    }

    /// Starts `node` again after a crash or a fence.
    pub fn restart(&mut self, node: NodeId) {
        self.start(node);
    }

    /// Stops `node`'s process; its watchdog keeps counting.
    pub fn pause(&mut self, node: NodeId) {
        self.say(format_args!("{node} paused"));
        let sim_node = &mut self.nodes[node.index()];
        if sim_node.life == Life::Up {
            sim_node.life = Life::Paused;
        }
    }

    /// Freezes the whole node (a VM freeze): its process and its watchdog stop; on
    /// [`Simulation::resume`] the watchdog finds its deadline passed at once.
    pub fn freeze(&mut self, node: NodeId) {
        self.say(format_args!("{node} frozen"));
        let sim_node = &mut self.nodes[node.index()];
        if sim_node.life == Life::Up {
            sim_node.life = Life::Paused;
            sim_node.frozen = true;
        }
    }

    /// Resumes a paused node: it handles what arrived meanwhile, first of all its timer.
    pub fn resume(&mut self, node: NodeId) {
        self.say(format_args!("{node} resumed"));
        let sim_node = &mut self.nodes[node.index()];
        if sim_node.life != Life::Paused {
            return;
        }
        sim_node.life = Life::Up;
        if std::mem::take(&mut sim_node.frozen) {
            let expired = sim_node
                .watchdog
                .is_some_and(|deadline| local_time(sim_node, self.now) >= deadline);
            if expired {
                self.watchdog_resets += 1;
                self.down(node);
                return;
            }
        }
        let sim_node = &mut self.nodes[node.index()];
        let inbox = std::mem::take(&mut sim_node.inbox);
        self.run_core(node, |core, now| core.handle_timeout(now));
        for pending in inbox {
            self.deliver(node, pending);
        }
    }

    /// Cuts every link between different groups, on every network, both ways.
    pub fn partition(&mut self, groups: &[NodeSet]) {
        self.say(format_args!("partition {groups:?}"));
        for (a, group_a) in groups.iter().enumerate() {
            for (b, group_b) in groups.iter().enumerate() {
                if a == b {
                    continue;
                }
                for from in group_a.iter() {
                    for to in group_b.iter() {
                        self.cut_oneway(from, to);
                    }
                }
            }
        }
    }

    /// Drops everything `from` sends to `to`, on every network.
    pub fn cut_oneway(&mut self, from: NodeId, to: NodeId) {
        self.say(format_args!("{from} -> {to} cut"));
        for network in 0..self.options.networks {
            self.network.cut[from.index()][to.index()][network] = true;
        }
    }

    /// Lets what `from` sends to `to` through again, on every network.
    pub fn heal_oneway(&mut self, from: NodeId, to: NodeId) {
        self.say(format_args!("{from} -> {to} healed"));
        for network in 0..self.options.networks {
            self.network.cut[from.index()][to.index()][network] = false;
        }
    }

    /// Drops everything between `a` and `b`.
    pub fn cut_link(&mut self, a: NodeId, b: NodeId) {
        self.say(format_args!("link {a} - {b} cut"));
        self.cut_oneway(a, b);
        self.cut_oneway(b, a);
    }

    /// Takes `node`'s interface on `network` down (both directions, every peer).
    pub fn cut_network(&mut self, node: NodeId, network: usize) {
        self.say(format_args!("{node} network {network} cut"));
        for peer in 0..self.options.nodes {
            self.network.cut[node.index()][peer][network] = true;
            self.network.cut[peer][node.index()][network] = true;
        }
    }

    /// Repairs every link.
    pub fn heal(&mut self) {
        self.say(format_args!("healed"));
        for row in &mut self.network.cut {
            for link in row {
                link.iter_mut().for_each(|cut| *cut = false);
            }
        }
    }

    /// Runs until `condition` holds or `limit` of simulated time passes; `Ok(true)` when it
    /// held. A broken invariant ends the run with the violation.
    pub fn run_until(
        &mut self,
        limit: Duration,
        condition: impl Fn(&Simulation) -> bool,
    ) -> Result<bool, Violation> {
        let end = self.now + nanos(limit);
        loop {
            if let Some(violation) = &self.violation {
                return Err(violation.clone());
            }
            if condition(self) {
                return Ok(true);
            }
            // Nothing more happens before `limit`: what time alone changes (a view gone
            // stale) is judged at its end.
            let Some(Reverse((at, key))) = self.queue.peek().copied() else {
                self.now = end;
                return Ok(condition(self));
            };
            if at > end {
                self.now = end;
                return Ok(condition(self));
            }
            self.queue.pop();
            self.now = at;
            if let Some(scheduled) = self.scheduled.remove(&key) {
                self.steps += 1;
                self.fire(scheduled);
            }
        }
    }

    /// Runs for `duration` of simulated time.
    pub fn run_for(&mut self, duration: Duration) -> Result<(), Violation> {
        self.run_until(duration, |_| false).map(|_| ())
    }

    /// An answer for one life of `node` (lost if that life ends first).
    fn schedule_answer(
        &mut self,
        node: NodeId,
        incarnation: Incarnation,
        delay: Duration,
        pending: Pending,
    ) {
        self.schedule(
            delay,
            Scheduled::Node {
                node,
                incarnation,
                generation: 0,
                pending,
            },
        );
    }

    fn schedule(&mut self, delay: Duration, scheduled: Scheduled) {
        self.sequence += 1;
        let at = self.now + nanos(delay);
        self.scheduled.insert(self.sequence, scheduled);
        self.queue.push(Reverse((at, self.sequence)));
    }

    fn fire(&mut self, scheduled: Scheduled) {
        match scheduled {
            Scheduled::Node {
                node,
                incarnation,
                generation,
                pending,
            } => {
                let sim_node = &mut self.nodes[node.index()];
                let packet = matches!(pending, Pending::Deliver { .. });
                // A packet in flight reaches whatever life the node is in now; the core
                // drops it if it was meant for an earlier one.
                if sim_node.life == Life::Down || (!packet && sim_node.incarnation != incarnation) {
                    return;
                }
                if matches!(pending, Pending::Timer) && generation != sim_node.timer_generation {
                    return;
                }
                if sim_node.life == Life::Paused {
                    if sim_node.inbox.len() < INBOX_MAX {
                        sim_node.inbox.push(pending);
                    }
                    return;
                }
                self.deliver(node, pending);
            }
            Scheduled::Watchdog {
                node,
                incarnation,
                generation,
            } => {
                let sim_node = &self.nodes[node.index()];
                if sim_node.incarnation == incarnation
                    && sim_node.life != Life::Down
                    && !sim_node.frozen
                    && sim_node.watchdog_generation == generation
                {
                    self.watchdog_resets += 1;
                    self.down(node);
                }
            }
            Scheduled::Boot { node } => self.start(node),
        }
    }

    fn deliver(&mut self, node: NodeId, pending: Pending) {
        if self.nodes[node.index()].unconfigured.is_some() {
            self.deliver_unconfigured(node, pending);
            return;
        }
        match pending {
            Pending::Timer => self.run_core(node, |core, now| core.handle_timeout(now)),
            Pending::Deliver { network, envelope } => self.run_core(node, |core, now| {
                core.handle_message(now, network, *envelope);
            }),
            Pending::Disk { id, result } => {
                self.run_core(node, |core, now| core.handle_disk(now, id, result));
            }
            Pending::QuorumServer { id, answer } => {
                self.run_core(node, |core, now| core.handle_quorum_server(now, id, answer));
            }
            Pending::Script {
                package,
                script,
                outcome,
            } => {
                if script == Script::Halt && outcome == ScriptOutcome::Succeeded {
                    let incarnation = self.nodes[node.index()].incarnation;
                    self.owners.remove(&(package.clone(), node, incarnation));
                }
                self.run_core(node, |core, now| {
                    if let Some(id) = core.packages().catalog().find(&package) {
                        core.handle_script(now, id, script, outcome);
                    }
                });
            }
            Pending::Exchanged {
                from,
                serial,
                result,
            } => match result {
                Ok(envelope) => self.run_core(node, |core, now| {
                    core.handle_exchange_answer(now, &from, *envelope);
                }),
                Err(why) => self.run_core(node, |core, now| {
                    core.handle_exchange_failure(now, &from, serial, &why);
                }),
            },
            // For an unconfigured node only.
            Pending::Exchange { .. } => {}
            Pending::Check { package } => {
                // Alive while its processes run: they outlive the daemon that detached
                // them, not the machine.
                let incarnation = self.nodes[node.index()].incarnation;
                let alive = self.owners.contains(&(package.clone(), node, incarnation));
                self.run_core(node, |core, now| {
                    if let Some(id) = core.packages().catalog().find(&package) {
                        core.handle_check(now, id, alive);
                    }
                });
            }
        }
    }

    /// What reaches an unconfigured node: its timer and the requests of the exchange.
    fn deliver_unconfigured(&mut self, node: NodeId, pending: Pending) {
        match pending {
            Pending::Timer => {
                self.run_unconfigured(node, |core, now| core.handle_timeout(now));
            }
            Pending::Exchange {
                from,
                reply: (to, incarnation),
                envelope,
            } => {
                let serial = envelope.message.config_serial();
                let answer = self
                    .run_unconfigured(node, |core, now| core.handle_request(now, &from, *envelope))
                    .flatten();
                let delay = self.delay();
                let me = self.names[node.index()].clone();
                let result = answer
                    .map(Box::new)
                    .ok_or_else(|| format!("{me} closed the connection"));
                self.schedule_answer(
                    to,
                    incarnation,
                    delay,
                    Pending::Exchanged {
                        from: me,
                        serial,
                        result,
                    },
                );
            }
            _ => {}
        }
    }

    /// A request over the configuration exchange from `node` to the node named `to`: it
    /// reaches it if it runs unconfigured (a configured daemon refuses the exchange's
    /// protocol at the handshake) and the network between them is not cut.
    fn exchange(
        &mut self,
        node: NodeId,
        incarnation: Incarnation,
        (to, addresses): (&str, &[std::net::IpAddr]),
        envelope: Envelope,
    ) {
        let host = self
            .names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(to))
            .filter(|&t| {
                self.nodes[t].life == Life::Up
                    && !self.network.cut[node.index()][t].iter().all(|&cut| cut)
            });
        let delay = self.delay();
        let failure = match host {
            Some(t) if self.nodes[t].unconfigured.is_some() => {
                let target_incarnation = self.nodes[t].incarnation;
                self.schedule(
                    delay,
                    Scheduled::Node {
                        node: NodeId(t as u32),
                        incarnation: target_incarnation,
                        generation: 0,
                        pending: Pending::Exchange {
                            from: self.names[node.index()].clone(),
                            reply: (node, incarnation),
                            envelope: Box::new(envelope),
                        },
                    },
                );
                return;
            }
            // A configured daemon refuses the exchange's protocol at the handshake, at each
            // address (as the runtime words it).
            Some(_) => addresses
                .iter()
                .map(|a| format!("{a}: {}", crate::core::RUNS_CONFIGURED))
                .collect::<Vec<_>>()
                .join("; "),
            None => format!("{}: cannot connect", crate::core::listed(addresses)),
        };
        self.schedule_answer(
            node,
            incarnation,
            delay,
            Pending::Exchanged {
                from: to.to_owned(),
                serial: envelope.message.config_serial(),
                result: Err(failure),
            },
        );
    }

    /// Prints `what` at the current time in verbose mode.
    fn say(&self, what: std::fmt::Arguments<'_>) {
        if self.verbose {
            eprintln!(
                "{:>10.3} {what}",
                Duration::from_nanos(self.now).as_secs_f64()
            );
        }
    }

    fn down(&mut self, node: NodeId) {
        self.say(format_args!("{node} down"));
        let sim_node = &mut self.nodes[node.index()];
        if sim_node.life == Life::Down {
            return;
        }
        sim_node.life = Life::Down;
        let incarnation = sim_node.incarnation;
        self.owners
            .retain(|&(_, n, i)| n != node || i != incarnation);
        let sim_node = &mut self.nodes[node.index()];
        sim_node.core = None;
        sim_node.unconfigured = None;
        sim_node.watchdog = None;
        sim_node.inbox.clear();
        if let Some(after) = self.options.reboot_after {
            self.schedule(after, Scheduled::Boot { node });
        }
    }

    /// A halted node's daemon starts a new life (cmrunnode, cmruncl): as the daemon
    /// executes itself again, at once (a halted node runs no package to kill).
    fn start_again(&mut self, node: NodeId) {
        self.say(format_args!("{node} starts again"));
        if self.stop_halted(node) {
            self.schedule(Duration::ZERO, Scheduled::Boot { node });
        }
    }

    /// A cmapplyconf changed the nodes: `node`'s next life starts halted from the generation
    /// it persisted, as the daemon's does from its files, or unconfigured when `retired`.
    /// The simulator keeps its hosts numbered as the first node list: it deletes nodes at
    /// the end of the list only, and adds them back there (a test that renumbers is refused
    /// here).
    fn reconfigured(&mut self, node: NodeId, retired: bool) {
        if retired {
            self.say(format_args!("{node} deleted from the cluster"));
            if self.stop_halted(node) {
                self.nodes[node.index()].removed = true;
                self.schedule(Duration::ZERO, Scheduled::Boot { node });
            }
            return;
        }
        self.configure_from_persisted(node);
        self.start_again(node);
    }

    /// `node`'s next life is of the generation it persisted, halted.
    fn configure_from_persisted(&mut self, node: NodeId) {
        let Some(generation) = self.nodes[node.index()].persisted.config.clone() else {
            panic!("{node} reconfigured without a generation persisted");
        };
        let name = &self.names[node.index()];
        let me = generation
            .cluster
            .nodes
            .iter()
            .position(|n| !n.deleted && n.name == *name)
            .unwrap_or_else(|| panic!("{node} is not in the generation it took"));
        assert_eq!(me, node.index(), "the simulator renumbers no node");
        let timing = Timing::derive(&generation.cluster, "simulated.ascii")
            .unwrap_or_else(|e| panic!("the new generation's timing: {e:?}"));
        let before = &self.settings[node.index()];
        let mut settings = Settings::from_config(
            &generation.cluster,
            timing,
            NodeId(me as u32),
            1,
            before.seed,
        );
        settings.sabotage = before.sabotage;
        settings.pet_horizon_min = before.pet_horizon_min;
        settings.catalog = Arc::new(
            Catalog::resolve(&generation.cluster, &generation.packages)
                .unwrap_or_else(|e| panic!("the new generation's packages: {e}")),
        );
        settings.packages = Arc::new(generation.packages.clone());
        self.settings[node.index()] = settings;
        self.nodes[node.index()].config_generation = 1;
        self.nodes[node.index()].start_halted = true;
    }

    /// Runs `input` on `node`'s unconfigured core, then carries out its actions; what
    /// `input` returned.
    fn run_unconfigured<R>(
        &mut self,
        node: NodeId,
        input: impl FnOnce(&mut Unconfigured, Instant) -> R,
    ) -> Option<R> {
        let sim_node = &mut self.nodes[node.index()];
        let local = local_time(sim_node, self.now);
        let core = sim_node.unconfigured.as_mut()?;
        let result = input(core, local);
        let mut actions = Vec::new();
        while let Some(action) = core.poll_action() {
            actions.push(action);
        }
        let timeout = core.poll_timeout();
        let incarnation = sim_node.incarnation;
        for action in actions {
            match action {
                Action::Persist(persisted) => self.nodes[node.index()].persisted = persisted,
                Action::Event(Event::Reconfigured { retired: false }) => {
                    self.observe(node, Event::Reconfigured { retired: false });
                    // Its daemon starts again as a node of the cluster, halted.
                    let sim_node = &mut self.nodes[node.index()];
                    sim_node.unconfigured = None;
                    sim_node.removed = false;
                    sim_node.life = Life::Down;
                    self.configure_from_persisted(node);
                    self.schedule(Duration::ZERO, Scheduled::Boot { node });
                    return Some(result);
                }
                Action::Event(event) => self.say(format_args!("{node} (unconfigured) {event:?}")),
                // The files (its persisted state holds the generation); a creation given
                // here (not simulated).
                _ => {}
            }
        }
        self.schedule_timer(node, incarnation, timeout);
        Some(result)
    }

    /// Ends a halted node's life, the package processes it left running (detached) passing
    /// to its next one. False if it is not up and halted.
    fn stop_halted(&mut self, node: NodeId) -> bool {
        let sim_node = &mut self.nodes[node.index()];
        let halted = sim_node
            .core
            .as_ref()
            .is_some_and(|core| core.phase() == Phase::Halted);
        if sim_node.life != Life::Up || !halted {
            return false;
        }
        let old = sim_node.incarnation;
        sim_node.life = Life::Down;
        sim_node.core = None;
        sim_node.watchdog = None;
        sim_node.inbox.clear();
        let new = Incarnation(old.0 + 1);
        self.owners = std::mem::take(&mut self.owners)
            .into_iter()
            .map(|(p, n, i)| (p, n, if n == node && i == old { new } else { i }))
            .collect();
        true
    }

    /// `node`'s timer, for its core's next timeout (an earlier one no longer fires).
    fn schedule_timer(&mut self, node: NodeId, incarnation: Incarnation, timeout: Option<Instant>) {
        let sim_node = &mut self.nodes[node.index()];
        sim_node.timer_generation += 1;
        let generation = sim_node.timer_generation;
        if let Some(at) = timeout {
            let delay = real_delay(sim_node, self.now, at);
            self.schedule(
                delay,
                Scheduled::Node {
                    node,
                    incarnation,
                    generation,
                    pending: Pending::Timer,
                },
            );
        }
    }

    fn run_core(&mut self, node: NodeId, input: impl FnOnce(&mut Node, Instant)) {
        let sim_node = &mut self.nodes[node.index()];
        let local = local_time(sim_node, self.now);
        let Some(core) = sim_node.core.as_mut() else {
            return;
        };
        let before = Timing::derive(&core.settings().config, "").ok();
        input(core, local);
        if core.quorate(local) {
            sim_node.quorate_once = true;
        }
        let mut actions = Vec::new();
        while let Some(action) = core.poll_action() {
            actions.push(action);
        }
        let timeout = core.poll_timeout();
        let incarnation = sim_node.incarnation;
        self.timing_before_step = before;
        for action in actions {
            if self.nodes[node.index()].life == Life::Down {
                self.timing_before_step = None;
                return;
            }
            self.perform(node, incarnation, action);
        }
        self.timing_before_step = None;
        if self.nodes[node.index()].life == Life::Down {
            return;
        }
        self.schedule_timer(node, incarnation, timeout);
    }

    fn perform(&mut self, node: NodeId, incarnation: Incarnation, action: Action) {
        match action {
            Action::Exchange {
                to,
                addresses,
                envelope,
            } => self.exchange(node, incarnation, (&to, &addresses), envelope),
            Action::Send {
                to,
                network,
                envelope,
            } => {
                let envelope = if self.options.through_wire {
                    let bytes = crate::wire::encode_envelope(&envelope);
                    let decoded = crate::wire::decode_envelope(&bytes)
                        .unwrap_or_else(|e| panic!("{envelope:?} does not decode: {e}"));
                    assert_eq!(decoded, envelope, "changed on the wire");
                    let kind = match &decoded.message {
                        Message::Propose {
                            config: Some(_), ..
                        } => "Propose with a configuration",
                        message => message.kind(),
                    };
                    let count = self.wire_counts.entry(kind).or_default();
                    if *count == 0 {
                        self.wire_samples.push(decoded.clone());
                    }
                    *count += 1;
                    decoded
                } else {
                    envelope
                };
                let term = match &envelope.message {
                    Message::Heartbeat(heartbeat) => Some((heartbeat.sent_at, heartbeat.term)),
                    Message::Propose { sent_at, term, .. }
                    | Message::Accept { sent_at, term, .. } => Some((*sent_at, *term)),
                    _ => None,
                };
                if let Some((at, term)) = term {
                    self.check_announced(node, incarnation, at, term);
                }
                if let Message::Halt { epoch, .. } | Message::Abandon { epoch } = &envelope.message
                {
                    self.check_one_word(node, incarnation, to, *epoch, envelope.message.kind());
                }
                let echoes: Vec<Echo> = match &envelope.message {
                    Message::Heartbeat(heartbeat) => heartbeat.echo.into_iter().collect(),
                    Message::Accept { echo, .. } => vec![*echo],
                    Message::Commit { echoes, .. } => echoes
                        .iter()
                        .filter(|(n, _)| *n == to)
                        .map(|(_, echo)| *echo)
                        .collect(),
                    _ => Vec::new(),
                };
                if let Some(end) = echoes
                    .iter()
                    .map(|e| e.at + e.term.lease + e.term.grace)
                    .max()
                {
                    let life = self.nodes[to.index()].incarnation;
                    let slot = &mut self.echoed[to.index()];
                    *slot = Some(match *slot {
                        Some((l, before)) if l == life => (life, before.max(end)),
                        _ => (life, end),
                    });
                }
                self.send(node, to, network, envelope);
            }
            Action::Persist(state) => {
                let state = if self.options.through_wire {
                    let bytes = crate::wire::encode_persisted(&state);
                    let decoded = crate::wire::decode_persisted(&bytes)
                        .unwrap_or_else(|e| panic!("{state:?} does not decode: {e}"));
                    assert_eq!(decoded, state, "changed in the state file");
                    decoded
                } else {
                    state
                };
                self.nodes[node.index()].persisted = state;
            }
            Action::PersistShared(map) => {
                let map = if self.options.through_wire {
                    let bytes = crate::wire::encode_shared(&map);
                    let decoded = crate::wire::decode_shared(&bytes)
                        .unwrap_or_else(|e| panic!("{map:?} does not decode: {e}"));
                    assert_eq!(decoded.entries(), map.entries(), "changed in the file");
                    assert_eq!(decoded.floor(), map.floor(), "floor changed in the file");
                    decoded
                } else {
                    (*map).clone()
                };
                self.nodes[node.index()].shared = map;
            }
            Action::ArmSafetyTimer { deadline } | Action::PetSafetyTimer { deadline } => {
                self.check_safety_deadline(node, incarnation, deadline);
                self.nodes[node.index()].watchdog = Some(deadline);
                self.schedule_watchdog(node, incarnation);
            }
            Action::DisarmSafetyTimer => {
                let sim_node = &mut self.nodes[node.index()];
                sim_node.watchdog = None;
                sim_node.watchdog_generation += 1;
            }
            Action::Fence { .. } => self.down(node),
            // The simulator's nodes start from their persisted state, which holds it too.
            Action::WriteConfiguration(_) => {}
            Action::Disk(request) => self.disk_request(node, incarnation, request),
            Action::QuorumServer(request) => {
                self.quorum_server_request(node, incarnation, request.id, request.kind);
            }
            Action::Package(action) => self.package_action(node, incarnation, action),
            Action::Event(Event::StartAgain) => {
                self.observe(node, Event::StartAgain);
                self.start_again(node);
            }
            Action::Event(Event::Reconfigured { retired }) => {
                self.observe(node, Event::Reconfigured { retired });
                self.reconfigured(node, retired);
            }
            Action::Event(event) => self.observe(node, event),
            Action::Catalog(catalog) => {
                // The packages of the newest generation, for the tests' lookups.
                if catalog.packages.len() != self.catalog.packages.len()
                    || catalog.packages != self.catalog.packages
                {
                    self.catalog = catalog.clone();
                }
                self.nodes[node.index()].catalog = catalog;
            }
            Action::Notice(notice) => {
                let sim_node = &mut self.nodes[node.index()];
                sim_node.notices_told += 1;
                self.notices.push(NoticeRecord {
                    at: Duration::from_nanos(self.now),
                    node,
                    incarnation: sim_node.incarnation,
                    number: sim_node.notices_told,
                    notice,
                });
            }
        }
    }

    fn observe(&mut self, node: NodeId, event: Event) {
        let at = Duration::from_nanos(self.now);
        if self.violation.is_none() {
            let lives = NodeLives(&self.nodes, self.now);
            let result =
                self.checker
                    .observe(node, &event, &lives, self.options.seed, at.as_secs_f64());
            if let Err(violation) = result {
                self.violation = Some(violation);
            }
        }
        self.say(format_args!("{node} {event:?}"));
        self.trace.push(Record { at, node, event });
    }

    fn package_action(&mut self, node: NodeId, incarnation: Incarnation, action: PackageAction) {
        let (id, script) = match action {
            PackageAction::Run { package } => (package, Script::Run),
            PackageAction::Halt { package } => (package, Script::Halt),
            PackageAction::Reconfigure { package } => (package, Script::Reconfigure),
            PackageAction::RestartService { .. } => return,
            PackageAction::Check { package } => {
                let catalog = self.nodes[node.index()].catalog.clone();
                if let Some(def) = catalog.packages.get(package.index()) {
                    let package = def.name.clone();
                    let latency = self.script_latency;
                    self.schedule_answer(node, incarnation, latency, Pending::Check { package });
                }
                return;
            }
        };
        // The node's own catalog says which package the number means now.
        let catalog = self.nodes[node.index()].catalog.clone();
        let Some(def) = catalog.packages.get(id.index()) else {
            return;
        };
        let package = def.name.clone();
        if script == Script::Run {
            self.check_single_owner(node, &package, def.kind);
            self.owners.insert((package.clone(), node, incarnation));
        }
        let outcome = match self.script_faults.get(&(package.clone(), node, script)) {
            None => ScriptOutcome::Succeeded,
            Some(ScriptFault::Fail) => ScriptOutcome::Failed,
            Some(ScriptFault::Timeout) => ScriptOutcome::TimedOut,
            Some(ScriptFault::Hang) => return,
        };
        let latency = self.script_latency;
        self.schedule_answer(
            node,
            incarnation,
            latency,
            Pending::Script {
                package,
                script,
                outcome,
            },
        );
    }

    /// The timing of the configuration in effect on `node` (cmapplyconf may have changed
    /// MEMBER_TIMEOUT since the simulation began).
    fn timing_of(&self, node: NodeId) -> Timing {
        self.nodes[node.index()]
            .core
            .as_ref()
            .and_then(|core| Timing::derive(&core.settings().config, "").ok())
            .unwrap_or(self.timing)
    }

    /// A member of a dropped proposal is told to halt or that the proposal is abandoned,
    /// never both.
    fn check_one_word(
        &mut self,
        node: NodeId,
        incarnation: Incarnation,
        to: NodeId,
        epoch: Epoch,
        kind: &'static str,
    ) {
        let told = *self
            .dropped_told
            .entry((node, incarnation, to, epoch))
            .or_insert(kind);
        if told != kind && self.violation.is_none() {
            self.violation = Some(Violation {
                invariant: "HALT",
                detail: format!(
                    "{node} sent {to} both Halt and Abandon for proposal {epoch}: the Abandon \
                     may overtake the Halt, which {to} then ignores"
                ),
                at_seconds: Duration::from_nanos(self.now).as_secs_f64(),
                seed: self.options.seed,
            });
        }
    }

    /// S3, first half, what the survivors rely on: a node announces with each send time at
    /// most the lease and the grace of the timing in effect on it, or, after a change to a
    /// shorter one, no later an end of either than it announced before; and the end of both
    /// never earlier than before (core::Term).
    fn check_announced(&mut self, node: NodeId, incarnation: Incarnation, at: Instant, term: Term) {
        let timing = self.timing_of(node);
        let before = self.announced[node.index()]
            .filter(|(life, _)| *life == incarnation)
            .map(|(_, ends)| ends);
        let ends = Ends {
            lease: at + term.lease,
            grace: at + term.grace,
            both: at + term.lease + term.grace,
        };
        let step = self.timing_before_step.unwrap_or(timing);
        let lease_allowed = (at + timing.lease.max(step.lease)).max(before.map_or(at, |b| b.lease));
        // The grace may also make up for a lease that falls back (core::Term).
        let grace_allowed = (at + timing.safety_grace.max(step.safety_grace))
            .max(before.map_or(at, |b| b.grace))
            .max(before.map_or(at, |b| {
                at + b.both.saturating_since(at).saturating_sub(term.lease)
            }));
        if before.is_some_and(|b| ends.both < b.both) && self.violation.is_none() {
            self.violation = Some(Violation {
                invariant: "S3",
                detail: format!(
                    "{node} announced a lease and grace ending before those it announced \
                     earlier: the survivors' last echo would not bound its safety timer"
                ),
                at_seconds: Duration::from_nanos(self.now).as_secs_f64(),
                seed: self.options.seed,
            });
        }
        if (ends.lease > lease_allowed || ends.grace > grace_allowed) && self.violation.is_none() {
            self.violation = Some(Violation {
                invariant: "S3",
                detail: format!(
                    "{node} announced a lease of {:.3} s and a grace of {:.3} s, beyond its \
                     timing's ({:.3} s, {:.3} s) and beyond what it announced before",
                    term.lease.as_secs_f64(),
                    term.grace.as_secs_f64(),
                    timing.lease.as_secs_f64(),
                    timing.safety_grace.as_secs_f64(),
                ),
                at_seconds: Duration::from_nanos(self.now).as_secs_f64(),
                seed: self.options.seed,
            });
        }
        let ends = before.map_or(ends, |b| Ends {
            lease: b.lease.max(ends.lease),
            grace: b.grace.max(ends.grace),
            both: b.both.max(ends.both),
        });
        self.announced[node.index()] = Some((incarnation, ends));
    }

    /// S3, first half: a node that loses quorum is reset within the lease and the grace, so
    /// no pet may set the safety timer further out than the lease and grace of an echo the
    /// node was sent (each the term it announced with the send time echoed, which the
    /// survivors wait for); without one, than the short grace from now. A membership of one
    /// needs no echo: its pets reach its timing's lease and grace from now.
    fn check_safety_deadline(&mut self, node: NodeId, incarnation: Incarnation, deadline: Instant) {
        let local = local_time(&self.nodes[node.index()], self.now);
        let timing = self.timing_of(node);
        // The view the node pets in (a re-forming node's too).
        let members = self.nodes[node.index()]
            .core
            .as_ref()
            .map_or(0, |core| core.view().members.len());
        let furthest = if members <= 1 {
            local + timing.lease + timing.safety_grace
        } else {
            let echoed = self.echoed[node.index()]
                .filter(|(life, _)| *life == incarnation)
                .map(|(_, end)| end);
            (local + timing.short_grace).max(echoed.unwrap_or(local))
        };
        if deadline > furthest && self.violation.is_none() {
            self.violation = Some(Violation {
                invariant: "S3",
                detail: format!(
                    "{node} set its safety timer {:.3} s out, beyond the lease and the grace ({:.3} s)",
                    deadline.saturating_since(local).as_secs_f64(),
                    furthest.saturating_since(local).as_secs_f64()
                ),
                at_seconds: Duration::from_nanos(self.now).as_secs_f64(),
                seed: self.options.seed,
            });
        }
    }

    /// S1: a failover package starts on a node while no other node may still run it.
    fn check_single_owner(&mut self, node: NodeId, package: &str, kind: PackageType) {
        if kind != PackageType::Failover || self.violation.is_some() {
            return;
        }
        let lives = NodeLives(&self.nodes, self.now);
        let other = self
            .owners
            .iter()
            .find(|(p, n, i)| p == package && *n != node && lives.alive_at_all(*n, *i));
        if let Some((_, owner, _)) = other {
            self.violation = Some(Violation {
                invariant: "S1",
                detail: format!("{package} starts on {node} while {owner} may still run it"),
                at_seconds: Duration::from_nanos(self.now).as_secs_f64(),
                seed: self.options.seed,
            });
        }
    }

    /// The nodes that may run `package` now.
    pub fn running_on(&self, package: &str) -> NodeSet {
        self.owners
            .iter()
            .filter(|(p, _, _)| p == package)
            .map(|(_, n, _)| *n)
            .collect()
    }

    /// The package called `name`.
    pub fn package(&self, name: &str) -> PackageId {
        match self.catalog.find(name) {
            Some(id) => id,
            None => panic!("no simulated package {name}"),
        }
    }

    /// `envelope` arrives at `node` on `network` as it is, from whoever it says (a peer that
    /// lies, for the fuzz target of the wire decoder).
    pub fn forge(&mut self, node: NodeId, network: usize, envelope: Envelope) {
        if self.nodes[node.index()].life == Life::Up {
            self.run_core(node, |core, now| {
                core.handle_message(now, network, envelope);
            });
        }
    }

    /// A service of `package` dies on `node`.
    pub fn kill_service(&mut self, node: NodeId, package: &str, service: usize) {
        let id = self.nodes[node.index()].catalog.find(package);
        if let Some(id) = id {
            self.kill_service_id(node, id, service);
        }
    }

    /// A service of package `id` dies on `node` (if it runs there).
    pub fn kill_service_id(&mut self, node: NodeId, id: PackageId, service: usize) {
        if self.nodes[node.index()].life == Life::Up {
            self.run_core(node, |core, now| core.handle_service_exit(now, id, service));
        }
    }

    /// Gives a package command on `node` (as cmrunpkg, cmhaltpkg or cmmodpkg would).
    /// A forwarded command's answer comes later as [`Event::CommandAnswered`] in the trace.
    pub fn command(&mut self, node: NodeId, command: Command) -> Result<Taken, Refusal> {
        if self.nodes[node.index()].life != Life::Up {
            return Err(Refusal::ClusterNotRunning);
        }
        let mut answer = Err(Refusal::ClusterNotRunning);
        self.run_core(node, |core, now| answer = core.handle_command(now, command));
        answer
    }

    /// Previews package commands on `node` (as their -t does): what they would start and
    /// halt, nothing done ([`Node::preview_commands`]).
    pub fn preview(
        &mut self,
        node: NodeId,
        commands: &[Command],
    ) -> Result<crate::packages::Previewed, Refusal> {
        if self.nodes[node.index()].life != Life::Up {
            return Err(Refusal::ClusterNotRunning);
        }
        let mut answer = Err(Refusal::ClusterNotRunning);
        self.run_core(node, |core, now| {
            answer = core.preview_commands(now, commands);
        });
        answer
    }

    /// Sets (or deletes) a value of the shared map on `node`, as the node's agent would.
    pub fn share(
        &mut self,
        node: NodeId,
        key: &str,
        value: Option<&str>,
    ) -> Result<Taken, Refusal> {
        if self.nodes[node.index()].life != Life::Up {
            return Err(Refusal::ClusterNotRunning);
        }
        let mut answer = Err(Refusal::ClusterNotRunning);
        let (key, value) = (key.to_owned(), value.map(str::to_owned));
        self.run_core(node, |core, now| {
            answer = core.handle_share(now, key, value);
        });
        answer
    }

    /// cmapplyconf on `node`: the cluster file (None: the simulator's own) and every
    /// package file.
    pub fn apply(
        &mut self,
        node: NodeId,
        cluster: Option<&str>,
        packages: &[String],
    ) -> Result<Taken, Refusal> {
        self.apply_based(node, None, cluster, packages)
    }

    /// cmapplyconf on `node` of files merged into generation `base` (None: not checked).
    pub fn apply_based(
        &mut self,
        node: NodeId,
        base: Option<u64>,
        cluster: Option<&str>,
        packages: &[String],
    ) -> Result<Taken, Refusal> {
        let base = base.map(|generation| crate::core::Base {
            generation,
            number: None,
        });
        self.apply_on(node, base, cluster, packages)
    }

    /// cmapplyconf on `node` of files merged into `base`, as GetConfiguration gave it.
    pub fn apply_on(
        &mut self,
        node: NodeId,
        base: Option<crate::core::Base>,
        cluster: Option<&str>,
        packages: &[String],
    ) -> Result<Taken, Refusal> {
        if self.nodes[node.index()].life != Life::Up {
            return Err(Refusal::ClusterNotRunning);
        }
        let (cluster, packages) = self.parse_files(cluster, packages)?;
        self.apply_read(node, base, cluster, packages)
    }

    /// The cluster file `cluster` (None: the simulator's own) and the package files, parsed.
    fn parse_files(
        &self,
        cluster: Option<&str>,
        packages: &[String],
    ) -> Result<(ClusterConfig, Vec<PackageConfig>), Refusal> {
        let text = cluster.map_or_else(|| cluster_file(&self.options), str::to_owned);
        let cluster = parse(&text, "given.ascii")
            .map_err(|findings| Refusal::InvalidConfiguration {
                reason: format!("{findings:?}"),
            })?
            .config;
        let packages = packages
            .iter()
            .map(|text| {
                parse_package(text, "given.conf")
                    .map(|checked| checked.config)
                    .map_err(|findings| Refusal::InvalidConfiguration {
                        reason: format!("{findings:?}"),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((cluster, packages))
    }

    /// cmcheckconf on halted `node` of the cluster file (None: the simulator's own) and
    /// every package file ([`Node::check_halted`]).
    pub fn check_halted(
        &mut self,
        node: NodeId,
        cluster: Option<&str>,
        packages: &[String],
    ) -> Result<Taken, Refusal> {
        if self.nodes[node.index()].life != Life::Up {
            return Err(Refusal::ClusterNotRunning);
        }
        let (cluster, packages) = self.parse_files(cluster, packages)?;
        let mut answer = Err(Refusal::ClusterNotRunning);
        self.run_core(node, |core, now| {
            answer = core.check_halted(now, cluster, packages);
        });
        answer
    }

    /// cmdeleteconf (the whole cluster) on `node`.
    pub fn delete_cluster(&mut self, node: NodeId) -> Result<Taken, Refusal> {
        if self.nodes[node.index()].life != Life::Up {
            return Err(Refusal::ClusterNotRunning);
        }
        let mut answer = Err(Refusal::ClusterNotRunning);
        self.run_core(node, |core, now| {
            answer = core.handle_delete_cluster(now);
        });
        answer
    }

    /// cmapplyconf on `node` of the configuration it has in effect with MEMBER_TIMEOUT
    /// `timeout` (the rest unchanged).
    pub fn apply_member_timeout(
        &mut self,
        node: NodeId,
        timeout: Duration,
    ) -> Result<Taken, Refusal> {
        let (mut cluster, packages) = self
            .config_in_effect(node)
            .ok_or(Refusal::ClusterNotRunning)?;
        cluster.member_timeout = timeout;
        self.apply_config(node, cluster, packages)
    }

    /// What cmgetconf gives on `node` (up, configured): the cluster and package files of the
    /// generation in effect there, as written (deleted nodes left out).
    pub fn config_in_effect(&self, node: NodeId) -> Option<(ClusterConfig, Vec<PackageConfig>)> {
        let settings = self.core(node)?.settings();
        Some((settings.config.as_written(), (*settings.packages).clone()))
    }

    /// cmapplyconf on `node` of files already read (as [`Simulation::config_in_effect`]
    /// gives them, edited).
    pub fn apply_config(
        &mut self,
        node: NodeId,
        cluster: ClusterConfig,
        packages: Vec<PackageConfig>,
    ) -> Result<Taken, Refusal> {
        self.apply_read(node, None, cluster, packages)
    }

    /// cmapplyconf on `node` (up) of files read, merged into `base`.
    fn apply_read(
        &mut self,
        node: NodeId,
        base: Option<crate::core::Base>,
        cluster: ClusterConfig,
        packages: Vec<PackageConfig>,
    ) -> Result<Taken, Refusal> {
        if self.nodes[node.index()].life != Life::Up {
            return Err(Refusal::ClusterNotRunning);
        }
        let mut answer = Err(Refusal::ClusterNotRunning);
        self.run_core(node, |core, now| {
            answer = core.handle_apply(now, base, cluster, packages);
        });
        answer
    }

    /// The configuration generation in effect on `node`, as shown (None: down).
    pub fn generation(&self, node: NodeId) -> Option<u64> {
        self.core(node).map(|c| c.settings().config_sequence)
    }

    /// The number of the configuration generation in effect on `node` (None: down).
    pub fn generation_number(&self, node: NodeId) -> Option<u64> {
        self.core(node).map(|c| c.settings().config_generation)
    }

    /// cmruncl -n on `node` (started already): form with `nodes`.
    pub fn run_cluster(&mut self, node: NodeId, nodes: NodeSet) -> Result<(), Refusal> {
        if self.nodes[node.index()].life != Life::Up {
            return Err(Refusal::ClusterNotRunning);
        }
        let mut answer = Err(Refusal::ClusterNotRunning);
        self.run_core(node, |core, now| {
            answer = core.handle_run_cluster(now, nodes);
        });
        answer
    }

    /// cmruncl -t on `node` for `nodes`: what the cluster formed with them would start
    /// where, nothing done ([`Node::formation_preview_basis`]).
    pub fn preview_run_cluster(
        &mut self,
        node: NodeId,
        nodes: NodeSet,
    ) -> Result<crate::packages::Previewed, Refusal> {
        if self.nodes[node.index()].life != Life::Up {
            return Err(Refusal::ClusterNotRunning);
        }
        let mut answer = Err(Refusal::ClusterNotRunning);
        self.run_core(node, |core, now| {
            answer = core
                .formation_preview_basis(now, nodes)
                .map(|basis| basis.preview(&[]));
        });
        answer
    }

    /// cmrunnode given to `node`'s daemon, halted and still there: it starts a new life
    /// ([`Event::StartAgain`]), as [`Simulation::run_node`] does from outside.
    pub fn run_node_command(&mut self, node: NodeId) -> Result<(), Refusal> {
        if self.nodes[node.index()].life != Life::Up {
            return Err(Refusal::ClusterNotRunning);
        }
        let mut answer = Err(Refusal::ClusterNotRunning);
        self.run_core(node, |core, now| answer = core.handle_run_node(now));
        answer
    }

    /// cmrunnode `node` given on `on` ([`Node::handle_run_other_node`]).
    pub fn run_other_node(&mut self, on: NodeId, node: NodeId) -> Result<(), Refusal> {
        if self.nodes[on.index()].life != Life::Up {
            return Err(Refusal::ClusterNotRunning);
        }
        let mut answer = Err(Refusal::ClusterNotRunning);
        self.run_core(on, |core, now| {
            answer = core.handle_run_other_node(now, node);
        });
        answer
    }

    /// cmhaltnode [-f] on `node`.
    pub fn halt_node(&mut self, node: NodeId, force: bool) -> Result<(), Refusal> {
        if self.nodes[node.index()].life != Life::Up {
            return Err(Refusal::ClusterNotRunning);
        }
        let mut answer = Err(Refusal::ClusterNotRunning);
        self.run_core(node, |core, now| answer = core.handle_halt_node(now, force));
        answer
    }

    /// cmhaltnode [-f | -d] `node` given on `on` (another member, or `node` itself).
    pub fn halt_other(
        &mut self,
        on: NodeId,
        node: NodeId,
        force: bool,
        detach: bool,
    ) -> Result<Taken, Refusal> {
        if self.nodes[on.index()].life != Life::Up {
            return Err(Refusal::ClusterNotRunning);
        }
        let mut answer = Err(Refusal::ClusterNotRunning);
        self.run_core(on, |core, now| {
            answer = core.handle_halt_other(now, node, force, detach);
        });
        answer
    }

    /// cmhaltnode -d on `node`.
    pub fn detach_node(&mut self, node: NodeId) -> Result<(), Refusal> {
        if self.nodes[node.index()].life != Life::Up {
            return Err(Refusal::ClusterNotRunning);
        }
        let mut answer = Err(Refusal::ClusterNotRunning);
        self.run_core(node, |core, now| answer = core.handle_detach_node(now));
        answer
    }

    /// cmhaltcl -d given on `node`.
    pub fn detach_cluster(&mut self, node: NodeId) -> Result<(), Refusal> {
        if self.nodes[node.index()].life != Life::Up {
            return Err(Refusal::ClusterNotRunning);
        }
        let mut answer = Err(Refusal::ClusterNotRunning);
        self.run_core(node, |core, now| answer = core.handle_detach_cluster(now));
        answer
    }

    /// cmrunnode on `node` whose daemon halted (cmhaltnode, cmhaltcl, -d or not): the
    /// daemon starts again in a new life, and the package processes it left running
    /// (detached) run on. A node that is down boots instead.
    pub fn run_node(&mut self, node: NodeId) {
        self.stop_halted(node);
        self.start(node);
    }

    /// The processes of `package` on `node` die without any daemon noticing (it is
    /// detached there): found dead when the node re-attaches it.
    /// Nothing happens where a daemon monitors it (see [`Simulation::kill_service`]).
    pub fn kill_package(&mut self, node: NodeId, package: &str) {
        let Some(core) = self.nodes[node.index()].core.as_ref() else {
            return;
        };
        let unmonitored = core.phase() == Phase::Halted
            || core.packages().catalog().find(package).is_some_and(|id| {
                core.packages()
                    .report()
                    .contains(&(id, crate::packages::InstanceState::Detached))
            });
        if unmonitored {
            self.owners.retain(|(p, n, _)| p != package || *n != node);
        }
    }

    /// cmhaltcl [-f] given on `node`.
    pub fn halt_cluster(&mut self, node: NodeId, force: bool) -> Result<(), Refusal> {
        if self.nodes[node.index()].life != Life::Up {
            return Err(Refusal::ClusterNotRunning);
        }
        let mut answer = Err(Refusal::ClusterNotRunning);
        self.run_core(node, |core, now| {
            answer = core.handle_halt_cluster(now, force);
        });
        answer
    }

    /// cmsetresource on `node` (which must be up).
    pub fn set_resource(
        &mut self,
        node: NodeId,
        name: &str,
        setting: ResourceValue,
    ) -> Result<(), ResourceError> {
        assert_eq!(self.nodes[node.index()].life, Life::Up, "{node} is not up");
        let mut answer = Ok(());
        self.run_core(node, |core, now| {
            answer = core.handle_resource(now, name, setting);
        });
        answer
    }

    /// The subnet monitor of `node` (which must be up) tells that monitored subnet `subnet`
    /// is up or down there.
    pub fn set_subnet(&mut self, node: NodeId, subnet: std::net::IpAddr, up: bool) {
        self.set_subnet_state(node, subnet, up.into());
    }

    /// The subnet monitor of `node` (which must be up) tells the state of monitored subnet
    /// `subnet` there, absent included.
    pub fn set_subnet_state(
        &mut self,
        node: NodeId,
        subnet: std::net::IpAddr,
        state: crate::packages::SubnetState,
    ) {
        assert_eq!(self.nodes[node.index()].life, Life::Up, "{node} is not up");
        self.run_core(node, |core, now| core.handle_subnet(now, subnet, state));
    }

    /// The number of packages.
    pub fn package_count(&self) -> usize {
        self.catalog.packages.len()
    }

    /// The packages.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn schedule_watchdog(&mut self, node: NodeId, incarnation: Incarnation) {
        let sim_node = &mut self.nodes[node.index()];
        let Some(deadline) = sim_node.watchdog else {
            return;
        };
        sim_node.watchdog_generation += 1;
        let generation = sim_node.watchdog_generation;
        let delay = real_delay(sim_node, self.now, deadline);
        self.schedule(
            delay,
            Scheduled::Watchdog {
                node,
                incarnation,
                generation,
            },
        );
    }

    fn send(&mut self, from: NodeId, to: NodeId, network: usize, envelope: Envelope) {
        if to.index() >= self.options.nodes || self.network.cut[from.index()][to.index()][network] {
            return;
        }
        if !self.network.drop_kinds.is_empty() {
            let kind = envelope.message.kind();
            if self
                .network
                .drop_kinds
                .iter()
                .any(|&(n, k)| n == from && k == kind)
            {
                return;
            }
        }
        if self.chance(self.network.replay) && !self.replayable.is_empty() {
            let pick = (self.rng.next_u64() % self.replayable.len() as u64) as usize;
            let (old_to, old_network, old) = self.replayable[pick].clone();
            let delay = self.delay();
            self.post(old_to, old_network, old, delay);
        }
        if self.replayable.len() < REPLAYABLE_MAX {
            self.replayable.push((to, network, envelope.clone()));
        } else {
            let slot = (self.rng.next_u64() % REPLAYABLE_MAX as u64) as usize;
            self.replayable[slot] = (to, network, envelope.clone());
        }
        if self.chance(self.network.loss) {
            return;
        }
        if self.chance(self.network.duplicate) {
            let delay = self.delay();
            self.post(to, network, envelope.clone(), delay);
        }
        let delay = self.delay();
        self.post(to, network, envelope, delay);
    }

    fn post(&mut self, to: NodeId, network: usize, envelope: Envelope, delay: Duration) {
        let incarnation = self.nodes[to.index()].incarnation;
        self.schedule(
            delay,
            Scheduled::Node {
                node: to,
                incarnation,
                generation: 0,
                pending: Pending::Deliver {
                    network,
                    envelope: Box::new(envelope),
                },
            },
        );
    }

    fn disk_request(&mut self, node: NodeId, incarnation: Incarnation, request: DiskRequest) {
        if self.disk.hung {
            return;
        }
        let block = match &request {
            DiskRequest::Read { block, .. } | DiskRequest::Write { block, .. } => *block,
        };
        let (id, result) = if self.disk.failing || self.disk.failing_blocks.contains(&block) {
            (request.id(), Err(DiskFailure("EIO".to_owned())))
        } else {
            match request {
                DiskRequest::Read { id, block } => {
                    let data = self.disk.blocks.get(usize::from(block)).copied();
                    match data {
                        Some(data) => (id, Ok(DiskReply::Read(Box::new(data)))),
                        None => (id, Err(DiskFailure("beyond the end".to_owned()))),
                    }
                }
                DiskRequest::Write { id, block, data } => {
                    match self.disk.blocks.get_mut(usize::from(block)) {
                        Some(slot) => {
                            *slot = *data;
                            (id, Ok(DiskReply::Written))
                        }
                        None => (id, Err(DiskFailure("beyond the end".to_owned()))),
                    }
                }
            }
        };
        let latency = self.disk.latency;
        self.schedule_answer(node, incarnation, latency, Pending::Disk { id, result });
    }

    fn quorum_server_request(
        &mut self,
        node: NodeId,
        incarnation: Incarnation,
        id: u64,
        ask: QuorumServerAsk,
    ) {
        if !self.quorum_server.up || self.quorum_server.unreachable_from.contains(node) {
            return;
        }
        let answer = match ask {
            QuorumServerAsk::Ping => QuorumServerAnswer::Pong,
            QuorumServerAsk::Acquire { instance, group } => {
                let granted = *self.quorum_server.grants.entry(instance.0).or_insert(group);
                if granted == group || self.quorum_server.grant_everyone {
                    QuorumServerAnswer::Granted
                } else {
                    QuorumServerAnswer::Denied
                }
            }
        };
        let delay = self.delay() * 2;
        self.schedule_answer(
            node,
            incarnation,
            delay,
            Pending::QuorumServer {
                id,
                answer: Ok(answer),
            },
        );
    }

    fn delay(&mut self) -> Duration {
        // Exponential extra delay by inversion of a uniform draw.
        let uniform = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let extra = -(1.0 - uniform).ln() * self.network.delay_mean_extra.as_secs_f64();
        self.network.delay_min + Duration::from_secs_f64(extra.min(3600.0))
    }

    fn chance(&mut self, probability: f64) -> bool {
        probability > 0.0
            && ((self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < probability
    }

    /// Draws a number in `0..bound` from the simulation's seed (for randomized schedules).
    pub fn random(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.rng.next_u64() % bound
        }
    }
}

/// The most events a paused node holds for its resumption (a socket buffer).
const INBOX_MAX: usize = 4096;

/// Old packets kept for replays.
const REPLAYABLE_MAX: usize = 256;

struct NodeLives<'a>(&'a [SimNode], u64);

impl NodeLives<'_> {
    /// Whether the life runs at all (quorate or not): a package it started runs on until
    /// the node is reset.
    fn alive_at_all(&self, node: NodeId, incarnation: Incarnation) -> bool {
        self.0.get(node.index()).is_some_and(|n| {
            let reset_pending = n.frozen
                && n.watchdog
                    .is_some_and(|deadline| local_time(n, self.1) >= deadline);
            n.incarnation == incarnation && n.life != Life::Down && !reset_pending
        })
    }
}

impl Lives for NodeLives<'_> {
    /// A node may run packages once it has been quorate in a membership, until it is
    /// reset or halts gracefully (a halted core does nothing, and halts only once it holds
    /// no package). A frozen node whose watchdog deadline has passed runs
    /// nothing: it is reset the moment it resumes, before any of its processes is scheduled.
    fn alive(&self, node: NodeId, incarnation: Incarnation) -> bool {
        self.alive_at_all(node, incarnation)
            && self.0.get(node.index()).is_some_and(|n| {
                n.quorate_once && n.core.as_ref().is_none_or(|c| c.phase() != Phase::Halted)
            })
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The node's monotonic clock at real time `real`.
fn local_time(node: &SimNode, real: u64) -> Instant {
    let skew = i128::from(real) * i128::from(node.rate_ppm) / 1_000_000;
    Instant((i128::from(node.offset) + i128::from(real) + skew) as u64)
}

/// The real time from `real_now` until the node's clock shows `local` (at least one
/// nanosecond later, so the event runs after the current one).
fn real_delay(node: &SimNode, real_now: u64, local: Instant) -> Duration {
    let elapsed_local = i128::from(local.0) - i128::from(node.offset);
    let real = elapsed_local * 1_000_000 / (1_000_000 + i128::from(node.rate_ppm)) + 1;
    let delay = (real - i128::from(real_now)).max(1);
    Duration::from_nanos(u64::try_from(delay).unwrap_or(u64::MAX))
}
