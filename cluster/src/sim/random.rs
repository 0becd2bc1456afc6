//! Randomized runs: a seed picks a cluster shape and a schedule of mixed faults; after the
//! faults stop, every node must end up in one membership (cluster.md L1). The invariants are
//! checked after every event throughout.

use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::{Life, Options, Simulation};
use crate::config::cluster::{ClusterConfig, NodeConfig};
use crate::core::{NodeId, NodeSet, Phase, Sabotage, Taken, Tiebreaker};
use crate::packages::{Command, ResourceValue};
use check_l1::liveness;

/// What one randomized run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Faults injected.
    pub faults: u64,
    /// Events processed.
    pub steps: u64,
    /// Simulated time.
    pub simulated: Duration,
    /// Memberships installed (all nodes).
    pub memberships: u64,
    /// Takeovers checked against S3.
    pub takeovers: u64,
    /// Resets by a watchdog.
    pub watchdog_resets: u64,
    /// The operator's steps deleting and adding the last node (cmhaltnode, cmapplyconf,
    /// cmrunnode, cmhaltcl, cmruncl), refused ones included.
    #[serde(default)]
    pub node_set_steps: u64,
    /// Times the operator gave the node-set change again after the faults, for a node it
    /// did not reach.
    #[serde(default)]
    pub given_again: u64,
}

/// The options a seed picks: 2 to 5 nodes (one seed in five: 6 to 8), two networks, MEMBER_TIMEOUT 3 or 5 s, any
/// tie-breaker the node count allows, and a reboot 5-20 s after a node goes down.
pub fn options(seed: u64, sabotage: Sabotage) -> Options {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let mut pick = |bound: u64| rng.next_u64() % bound;
    // Mostly small clusters, sometimes up to eight nodes.
    let nodes = if pick(5) == 0 {
        6 + pick(3) as usize
    } else {
        2 + pick(4) as usize
    };
    let mut options = Options::new(nodes, seed);
    options.member_timeout = Duration::from_secs(if pick(2) == 0 { 3 } else { 5 });
    options.tiebreaker = match pick(3) {
        // Two nodes need a lock (the cluster file says so).
        0 if nodes > 2 => Tiebreaker::None,
        0 | 1 if nodes <= 4 => Tiebreaker::LockLun,
        _ => Tiebreaker::QuorumServer,
    };
    options.reboot_after = Some(Duration::from_secs(5 + pick(16)));
    options.sabotage = sabotage;
    let packages = pick(4);
    for p in 0..packages {
        // Each package may run on a random, rotated subset of the nodes.
        let first = pick(nodes as u64) as usize;
        let count = 1 + pick(nodes as u64) as usize;
        let mut text = format!(
            "package_name pkg{p}
"
        );
        for k in 0..count {
            text.push_str(&format!("node_name n{}\n", (first + k) % nodes + 1));
        }
        if pick(2) == 0 {
            text.push_str("failover_policy min_package_node\n");
        }
        if pick(3) == 0 {
            text.push_str("failback_policy automatic\n");
        }
        text.push_str("service_name s\nservice_cmd /bin/s\n");
        text.push_str(
            [
                "service_restart none\n",
                "service_restart 2\n",
                "service_restart unlimited\n",
            ][pick(3) as usize],
        );
        options.packages.push(text);
    }
    // Generic resources, drawn after the packages so that the packages stay as they were:
    // `disk` simple and before_package_start, `load` extended and during_package_start.
    for text in &mut options.packages {
        match pick(4) {
            0 => text.push_str(
                "generic_resource_name disk\ngeneric_resource_evaluation_type before_package_start\n",
            ),
            1 => text.push_str("generic_resource_name load\ngeneric_resource_up_criteria <80\n"),
            _ => {}
        }
    }
    // Dependencies on pkg0, anywhere: a dependent fails with it and follows it.
    for text in options.packages.iter_mut().skip(1) {
        if pick(3) == 0 {
            text.push_str(
                "dependency_name d\ndependency_condition pkg0 = up\ndependency_location any_node\n",
            );
        }
    }
    // A monitored subnet, drawn last so that everything above stays as it was.
    for text in &mut options.packages {
        if pick(3) == 0 {
            text.push_str(&format!("monitored_subnet {SUBNET}\n"));
        }
    }
    // Where the last node is deleted and added again, no package runs on it alone: its
    // deletion takes it out of the packages' node lists.
    if node_set_changes(seed, nodes).is_some() {
        let alone = format!("node_name n{nodes}\n");
        for text in &mut options.packages {
            if text.matches("node_name ").count() == 1 && text.contains(&alone) {
                *text = text.replace(&alone, &format!("{alone}node_name n1\n"));
            }
        }
    }
    options
}

/// How a seed that changes the node set begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastNode {
    /// The last node is in the cluster.
    Inside,
    /// The last node runs unconfigured: the cluster of all the nodes had it deleted with the
    /// cluster halted.
    Outside,
}

/// Whether seed `seed` (of `nodes` nodes) deletes its last node from the running cluster and
/// adds it again among the faults, and how it begins: one seed in three of three nodes or
/// more, drawn apart from the run's randomness so that the other seeds run as before. Only
/// the last node: a cluster halted numbers its nodes anew, and the simulator keeps its hosts
/// numbered as the first node list.
pub fn node_set_changes(seed: u64, nodes: usize) -> Option<LastNode> {
    let mut own = ChaCha8Rng::seed_from_u64(seed ^ 0x6e6f_6465_7365_7473);
    if nodes < 3 || own.next_u64() % 3 != 0 {
        return None;
    }
    Some(if own.next_u64() % 2 == 0 {
        LastNode::Inside
    } else {
        LastNode::Outside
    })
}

/// The operator of a seed that changes the node set: cmgetconf on another node, the last
/// node's NODE_NAME block taken out of the files or put back, cmapplyconf; cmhaltnode first,
/// as the refusal to delete a member says; cmrunnode once added; and, to add again a node
/// deleted while the cluster ran, cmhaltcl, cmapplyconf and cmruncl.
struct NodeSetChanges {
    /// The last node.
    last: NodeId,
    /// Its NODE_NAME block, as the seed's cluster file has it.
    block: NodeConfig,
    /// The packages whose files name it.
    packages: Vec<String>,
}

impl NodeSetChanges {
    fn new(sim: &Simulation) -> NodeSetChanges {
        let nodes = sim.options.nodes;
        let text = super::cluster_file(&sim.options);
        let cluster = crate::config::cluster::parse(&text, "simulated.ascii")
            .expect("the simulator's cluster file")
            .config;
        let block = cluster.nodes[nodes - 1].clone();
        let line = format!("node_name {}\n", block.name);
        let packages = sim
            .options
            .packages
            .iter()
            .filter(|text| text.contains(&line))
            .filter_map(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("package_name "))
                    .map(str::to_owned)
            })
            .collect();
        NodeSetChanges {
            last: NodeId(nodes as u32 - 1),
            block,
            packages,
        }
    }

    /// The files with the last node left out.
    fn without(&self, (mut cluster, mut packages): Files) -> Files {
        cluster.nodes.retain(|n| n.name != self.block.name);
        for package in &mut packages {
            package.nodes.retain(|n| *n != self.block.name);
        }
        (cluster, packages)
    }

    /// The files with the last node added (after the others), and named in its packages.
    fn with(&self, (mut cluster, mut packages): Files) -> Files {
        let name = &self.block.name;
        if !cluster.nodes.iter().any(|n| n.name == *name) {
            cluster.nodes.push(self.block.clone());
        }
        for package in &mut packages {
            // An empty list is `*`: every node already.
            if self.packages.contains(&package.name)
                && !package.nodes.is_empty()
                && !package.nodes.contains(name)
            {
                package.nodes.push(name.clone());
            }
        }
        (cluster, packages)
    }

    /// The cluster of all the nodes halted, the files without the last node applied, and the
    /// others run (cmhaltcl, cmapplyconf, cmruncl): the last node runs unconfigured.
    fn leave_out_last(&self, sim: &mut Simulation) -> Result<(), super::check::Violation> {
        let others = NodeSet::first(self.last.index());
        let first = NodeId(0);
        let halted =
            |s: &Simulation, n: NodeId| s.core(n).is_some_and(|c| c.phase() == Phase::Halted);
        let _ = sim.halt_cluster(first, true);
        let budget = sim.timing().member_timeout * 20;
        if !sim.run_until(budget, |s| (0..=self.last.0).all(|n| halted(s, NodeId(n))))? {
            return Err(violation(
                sim,
                "SETUP",
                "cmhaltcl did not halt every node".into(),
            ));
        }
        // Until no node hears the cluster run any more.
        sim.run_for(sim.timing().member_timeout * 4)?;
        let files = self.without(sim.config_in_effect(first).expect("n1 is up"));
        let given = sim.apply_config(first, files.0, files.1);
        if !matches!(given, Ok(Taken::Forwarded(_))) {
            return Err(violation(
                sim,
                "SETUP",
                format!("cmapplyconf without the last node: {given:?}"),
            ));
        }
        let last = self.last;
        if !sim.run_until(budget, |s| {
            others.iter().all(|n| {
                halted(s, n)
                    && s.core(n)
                        .is_some_and(|c| c.settings().nodes == last.index())
            }) && s.unconfigured(last)
        })? {
            return Err(violation(
                sim,
                "SETUP",
                "the last node was not left out".into(),
            ));
        }
        let _ = sim.run_cluster(first, others);
        if !sim.run_until(budget, |s| s.formed(others))? {
            return Err(violation(
                sim,
                "SETUP",
                "cmruncl did not form the others".into(),
            ));
        }
        Ok(())
    }

    /// One step of the operator's, given on a node other than the last, chosen by `rng`.
    fn act(&self, sim: &mut Simulation, rng: &mut ChaCha8Rng) {
        let last = self.last;
        let giver = NodeId((rng.next_u64() % u64::from(last.0)) as u32);
        let pick = rng.next_u64() % 4;
        let Some(files) = sim.config_in_effect(giver) else {
            return;
        };
        let Some(settings) = sim.core(giver).map(|c| c.settings().clone()) else {
            return;
        };
        let deleted_online = settings.config.nodes.iter().any(|n| n.deleted);
        let in_effect = files.0.nodes.iter().any(|n| n.name == self.block.name);
        let giver_halted = sim.core(giver).is_some_and(|c| c.phase() == Phase::Halted);
        let last_phase = sim.core(last).map(|c| c.phase());
        // Refusals (a member deleted, a node added again while the cluster runs, an addition
        // with a lock LUN, a change under way, a node down) are answers like any other here.
        let files = if giver_halted {
            if !deleted_online && pick == 0 {
                // cmruncl, the last node with the others if it is configured.
                let _ = sim.run_cluster(giver, settings.configured());
                return;
            }
            // With the cluster halted: its nodes numbered anew, the deleted ones dropped.
            match pick {
                1 => self.with(files),
                2 => self.without(files),
                _ => files,
            }
        } else {
            match (in_effect, last_phase) {
                (true, Some(Phase::Running)) if pick != 0 => {
                    let _ = sim.halt_node(last, pick == 1);
                    return;
                }
                (true, Some(Phase::Halted)) if pick == 0 => {
                    let _ = sim.run_node_command(last);
                    return;
                }
                (true, _) => self.without(files),
                (false, _) if deleted_online && pick == 0 => {
                    // To add it again: cmhaltcl first.
                    let _ = sim.halt_cluster(giver, true);
                    return;
                }
                // The same files again: a deleted node that was not told is.
                (false, _) if !sim.unconfigured(last) && pick == 1 => files,
                (false, _) => self.with(files),
            }
        };
        let _ = sim.apply_config(giver, files.0, files.1);
    }
}

/// A cluster file and package files, read.
type Files = (ClusterConfig, Vec<crate::config::package::PackageConfig>);

/// The subnet the randomized packages monitor.
const SUBNET: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 20, 0, 0));

/// The subnet monitor of a random up node says the subnet is up or down.
fn set_random_subnet(sim: &mut Simulation, nodes: usize) {
    if sim.catalog().subnets.is_empty() {
        return;
    }
    let node = random_node(sim, nodes);
    let up = sim.random(2) == 0;
    if sim.life(node) == Life::Up {
        sim.set_subnet(node, SUBNET, up);
    }
}

/// cmsetresource of a random setting of a random resource on a random up node.
fn set_random_resource(sim: &mut Simulation, nodes: usize) {
    let count = sim.catalog().resources.len() as u64;
    if count == 0 {
        return;
    }
    let index = sim.random(count) as usize;
    let resource = sim.catalog().resources[index].clone();
    let node = random_node(sim, nodes);
    let setting = if resource.extended {
        ResourceValue::Value([1, 50, 79, 80, 200][sim.random(5) as usize])
    } else {
        ResourceValue::Status(sim.random(3) != 0)
    };
    if sim.life(node) == Life::Up {
        sim.set_resource(node, &resource.name, setting)
            .expect("a configured resource and a valid setting");
    }
}

/// cmapplyconf on a random node: the package files, with or without an extra package (a
/// deletion is refused while it runs; refusals are answers like any other here).
fn apply_random(sim: &mut Simulation, nodes: usize) {
    let node = random_node(sim, nodes);
    let mut files = sim.options.packages.clone();
    if !files.is_empty() && sim.random(2) == 0 {
        // An online change of a package that may be running: one more service.
        let index = sim.random(files.len() as u64) as usize;
        files[index].push_str("service_name added\nservice_cmd /bin/added\n");
    }
    if sim.random(2) == 0 {
        files.push(
            "package_name extra\nnode_name *\nservice_name s\nservice_cmd /bin/s\n".to_owned(),
        );
    }
    // Now and then MEMBER_TIMEOUT changes too (3 or 5 s, as the seeds draw it), drawn
    // apart from the run's randomness so that each seed's schedule stays what it was.
    let mut own = ChaCha8Rng::seed_from_u64(sim.seed() ^ sim.now().as_nanos() as u64 ^ 0x4d54);
    let cluster = (own.next_u64() % 3 == 0).then(|| {
        let timeout = Duration::from_secs(if own.next_u64() % 2 == 0 { 3 } else { 5 });
        super::cluster_file(&sim.options).replace(
            &format!(
                "MEMBER_TIMEOUT {}\n",
                sim.options.member_timeout.as_micros()
            ),
            &format!("MEMBER_TIMEOUT {}\n", timeout.as_micros()),
        )
    });
    if sim.life(node) == Life::Up {
        let _ = sim.apply(node, cluster.as_deref(), &files);
    }
}

/// Every resource and monitored subnet up on every node (the monitors report healthy
/// again).
fn set_resources_up(sim: &mut Simulation, nodes: usize) {
    let resources = sim.catalog().resources.clone();
    let subnets = sim.catalog().subnets.clone();
    for n in 0..nodes {
        let node = NodeId(n as u32);
        if sim.life(node) != Life::Up {
            continue;
        }
        for resource in &resources {
            let setting = if resource.extended {
                ResourceValue::Value(1)
            } else {
                ResourceValue::Status(true)
            };
            sim.set_resource(node, &resource.name, setting)
                .expect("a configured resource and a valid setting");
        }
        for subnet in &subnets {
            sim.set_subnet(node, *subnet, true);
        }
    }
}

/// Runs seed `seed`: forms the cluster, injects faults for twenty MEMBER_TIMEOUTs, repairs
/// everything and checks that one membership of all nodes forms.
pub fn run(seed: u64, sabotage: Sabotage) -> Result<Summary, super::check::Violation> {
    let mut sim = Simulation::new(options(seed, sabotage));
    drive(&mut sim)
}

/// [`run`] on a simulation built from [`options`], left for inspection (its trace).
pub fn drive(sim: &mut Simulation) -> Result<Summary, super::check::Violation> {
    let nodes = sim.options.nodes;
    let member_timeout = sim.options.member_timeout;
    let start = node_set_changes(sim.seed(), nodes);
    let changes = start.map(|_| NodeSetChanges::new(sim));
    sim.start_all();
    sim.run_until(member_timeout * 10, |s| s.formed(NodeSet::first(nodes)))?;
    if let (Some(changes), Some(LastNode::Outside)) = (&changes, start) {
        changes.leave_out_last(sim)?;
    }
    // The resource monitors report healthy once the cluster runs.
    set_resources_up(sim, nodes);
    let mut faults = 0;
    let fault_phase = member_timeout * 20;
    let start = sim.now();
    let mut paused: Vec<NodeId> = Vec::new();
    let mut node_set_steps = 0;
    while sim.now() - start < fault_phase {
        inject(sim, nodes, &mut paused);
        faults += 1;
        if let Some(changes) = &changes {
            // One step in four, drawn apart from the faults.
            let mut own =
                ChaCha8Rng::seed_from_u64(sim.seed() ^ sim.now().as_nanos() as u64 ^ 0x6e53);
            if own.next_u64() % 4 == 0 {
                changes.act(sim, &mut own);
                node_set_steps += 1;
            }
        }
        let gap = member_timeout.mul_f64(0.2 + sim.random(1800) as f64 / 1000.0);
        sim.run_for(gap)?;
        if !paused.is_empty() && sim.random(2) == 0 {
            let node = paused.remove(0);
            sim.resume(node);
        }
    }
    repair(sim, nodes, &paused);
    let given_again = liveness(sim, nodes, changes.is_some())?;
    told_once(sim)?;
    Ok(Summary {
        faults,
        steps: sim.steps,
        simulated: sim.now(),
        memberships: sim.checker().memberships_installed,
        takeovers: sim.checker().takeovers_checked,
        watchdog_resets: sim.watchdog_resets,
        node_set_steps,
        given_again,
    })
}

/// Every membership installed anywhere was told exactly once, by the node that committed
/// it, as ClusterUp or ClusterReformed (a listener subscribed on every node hears each
/// re-formation once); one of the same members in the same lives as its coordinator's
/// membership before is not told at all (the membership did not change).
fn told_once(sim: &Simulation) -> Result<(), super::check::Violation> {
    use crate::core::Event;
    use crate::status::Notice;
    let mut installed: std::collections::BTreeSet<_> = sim
        .trace()
        .iter()
        .filter_map(|r| match r.event {
            Event::MembershipChanged { after_epoch, .. } => Some(after_epoch),
            _ => None,
        })
        .collect();
    let unchanged: std::collections::BTreeSet<_> = sim
        .trace()
        .iter()
        .filter_map(|r| match r.event {
            Event::MembershipChanged {
                after_epoch,
                same_lives: true,
                ..
            } if after_epoch.coordinator() == r.node => Some(after_epoch),
            _ => None,
        })
        .collect();
    let mut told = std::collections::BTreeMap::new();
    for record in sim.notices() {
        if let Notice::ClusterUp { after, .. } | Notice::ClusterReformed { after, .. } =
            record.notice
        {
            *told.entry(after.epoch).or_insert(0) += 1;
            if after.epoch.coordinator() != record.node {
                return Err(violation(
                    sim,
                    "NOTICE",
                    format!(
                        "{} told the membership {} it did not commit",
                        record.node, after.epoch
                    ),
                ));
            }
        }
    }
    for epoch in &unchanged {
        if told.contains_key(epoch) {
            return Err(violation(
                sim,
                "NOTICE",
                format!("the membership {epoch} was told, yet its members did not change"),
            ));
        }
        installed.remove(epoch);
    }
    for epoch in &installed {
        let count = told.get(epoch).copied().unwrap_or(0);
        if count != 1 {
            return Err(violation(
                sim,
                "NOTICE",
                format!("the membership {epoch} was told {count} times"),
            ));
        }
    }
    if let Some(epoch) = told.keys().find(|e| !installed.contains(e)) {
        return Err(violation(
            sim,
            "NOTICE",
            format!("the membership {epoch} was told but never installed"),
        ));
    }
    Ok(())
}

fn violation(sim: &Simulation, invariant: &'static str, detail: String) -> super::check::Violation {
    super::check::Violation {
        invariant,
        detail,
        at_seconds: sim.now().as_secs_f64(),
        seed: sim.seed(),
    }
}

fn random_package(sim: &mut Simulation) -> Option<crate::packages::PackageId> {
    let count = sim.package_count() as u64;
    (count > 0).then(|| crate::packages::PackageId(sim.random(count) as u32))
}

fn random_node(sim: &mut Simulation, nodes: usize) -> NodeId {
    NodeId(sim.random(nodes as u64) as u32)
}

fn inject(sim: &mut Simulation, nodes: usize, paused: &mut Vec<NodeId>) {
    let member_timeout = sim.timing().member_timeout;
    // One fault in eight comes with an online change of MEMBER_TIMEOUT (3 or 5 s, as the
    // seeds draw it), drawn apart from the run's randomness so that a seed's faults stay
    // the ones it drew before this was added.
    let mut own = ChaCha8Rng::seed_from_u64(sim.seed() ^ sim.now().as_nanos() as u64 ^ 0x4d54);
    if own.next_u64() % 8 == 0 {
        let node = NodeId((own.next_u64() % nodes as u64) as u32);
        let timeout = Duration::from_secs(if own.next_u64() % 2 == 0 { 3 } else { 5 });
        // Refusals (a node down, a change under way) are answers like any other here.
        let _ = sim.apply_member_timeout(node, timeout);
    }
    match sim.random(16) {
        0 => {
            let node = random_node(sim, nodes);
            sim.crash(node);
            if sim.random(2) == 0 {
                // A restart well inside MEMBER_TIMEOUT (scenario 3).
                let down = member_timeout.mul_f64(sim.random(500) as f64 / 1000.0);
                sim.run_until(down, |_| false).ok();
                sim.restart(node);
            }
        }
        1 => {
            let node = random_node(sim, nodes);
            if sim.life(node) == Life::Up {
                if sim.random(2) == 0 {
                    sim.pause(node);
                } else {
                    sim.freeze(node);
                }
                paused.push(node);
            }
        }
        2 | 3 => {
            let groups = 2 + sim.random(2) as usize;
            let mut sets = vec![NodeSet::EMPTY; groups];
            for n in 0..nodes {
                let group = sim.random(groups as u64) as usize;
                sets[group].insert(NodeId(n as u32));
            }
            sim.partition(&sets);
        }
        4 => {
            let (a, b) = (random_node(sim, nodes), random_node(sim, nodes));
            if a != b {
                sim.cut_oneway(a, b);
            }
        }
        5 => {
            let (a, b) = (random_node(sim, nodes), random_node(sim, nodes));
            if a != b {
                sim.cut_link(a, b);
            }
        }
        6 => {
            let node = random_node(sim, nodes);
            let network = sim.random(2) as usize;
            sim.cut_network(node, network);
        }
        7 => sim.heal(),
        8 => match sim.random(8) {
            0..=3 => set_random_resource(sim, nodes),
            4 => {
                // cmhaltnode [-f]; refusals are answers like any other here.
                let node = random_node(sim, nodes);
                let force = sim.random(2) == 0;
                let _ = sim.halt_node(node, force);
            }
            5 | 6 => {
                // cmhaltnode -d; now and then the processes of a detached package die
                // unnoticed, or the daemon of a halted node starts again (cmrunnode).
                let node = random_node(sim, nodes);
                match sim.random(4) {
                    0 => {
                        if let Some(package) = random_package(sim) {
                            let name = sim.catalog().package(package).name.clone();
                            sim.kill_package(node, &name);
                        }
                    }
                    1 => sim.run_node(node),
                    _ => {
                        let _ = sim.detach_node(node);
                    }
                }
            }
            _ if sim.random(4) == 0 => {
                let node = random_node(sim, nodes);
                if sim.random(2) == 0 {
                    let _ = sim.halt_cluster(node, true);
                } else {
                    let _ = sim.detach_cluster(node);
                }
            }
            _ => apply_random(sim, nodes),
        },
        9 => sim.network.loss = [0.0, 0.05, 0.2, 0.4][sim.random(4) as usize],
        10 => {
            sim.network.delay_min = member_timeout.mul_f64(sim.random(300) as f64 / 1000.0);
            sim.network.delay_mean_extra = member_timeout.mul_f64(sim.random(100) as f64 / 1000.0);
        }
        11 => {
            sim.network.duplicate = sim.random(30) as f64 / 100.0;
            sim.network.replay = sim.random(20) as f64 / 100.0;
        }
        15 => {
            if let Some(package) = random_package(sim) {
                let node = random_node(sim, nodes);
                let target = random_node(sim, nodes);
                let command = match sim.random(6) {
                    0 => Command::Run {
                        package,
                        node: target,
                    },
                    1 => Command::Halt {
                        package,
                        node: None,
                    },
                    2 => Command::Enable {
                        package,
                        node: (sim.random(2) == 0).then_some(target),
                    },
                    3 => Command::ResetRestarts {
                        package,
                        service: 0,
                    },
                    4 => Command::Maintenance {
                        package,
                        on: sim.random(2) == 0,
                        node: Some(target),
                    },
                    _ => Command::Disable {
                        package,
                        node: (sim.random(2) == 0).then_some(target),
                    },
                };
                // Refusals are answers like any other here.
                let _ = sim.command(node, command);
            }
        }
        14 if sim.random(2) == 0 => set_random_subnet(sim, nodes),
        14 => {
            if let Some(package) = random_package(sim) {
                let node = random_node(sim, nodes);
                sim.kill_service_id(node, package, 0);
            }
        }
        12 => match sim.random(4) {
            0 => sim.disk.failing = !sim.disk.failing,
            1 => sim.disk.hung = !sim.disk.hung,
            2 => sim.disk.latency = Duration::from_millis(1 + sim.random(3000)),
            _ => sim.disk.latency = Duration::from_millis(2),
        },
        _ => match sim.random(3) {
            0 => sim.quorum_server.up = !sim.quorum_server.up,
            1 => {
                let node = random_node(sim, nodes);
                sim.quorum_server.unreachable_from.insert(node);
            }
            _ => sim.quorum_server.unreachable_from = NodeSet::EMPTY,
        },
    }
}

/// Stops every fault: the network, the disk and the quorum server are healthy again, paused
/// nodes resume, and nodes that are down or gave up start again.
fn repair(sim: &mut Simulation, nodes: usize, paused: &[NodeId]) {
    sim.heal();
    sim.network.loss = 0.0;
    sim.network.duplicate = 0.0;
    sim.network.replay = 0.0;
    sim.network.delay_min = Duration::from_micros(50);
    sim.network.delay_mean_extra = Duration::from_micros(200);
    sim.disk.failing = false;
    sim.disk.hung = false;
    sim.disk.latency = Duration::from_millis(2);
    sim.quorum_server.up = true;
    sim.quorum_server.unreachable_from = NodeSet::EMPTY;
    for &node in paused {
        sim.resume(node);
    }
    // Every halted or reset node starts again (cmrunnode), after the halts under way
    // (cmhaltnode, cmhaltcl) have finished; a node started into a cluster that is still
    // halting halts with it, so this goes round until nothing halts any more.
    for _ in 0..4 {
        let _ = sim.run_for(sim.timing().member_timeout);
        let mut restarted = false;
        for n in 0..nodes {
            let node = NodeId(n as u32);
            if sim
                .core(node)
                .is_some_and(|core| core.phase() == Phase::Halted)
            {
                // cmrunnode (what it left detached runs on), or a reboot.
                if sim.random(2) == 0 {
                    sim.run_node(node);
                    restarted = true;
                    continue;
                }
                sim.crash(node);
            }
            if sim.life(node) == Life::Down {
                sim.restart(node);
                restarted = true;
            }
        }
        // A halt still under way (a node waiting for its packages, or for the members to
        // record what it detaches) is waited for, and so are an addition under way (the
        // operator waits for the cmapplyconf to answer) and a node that an addition just
        // reached (it starts halted, for cmrunnode, once its new life begins).
        let halting = (0..nodes).any(|n| {
            let node = NodeId(n as u32);
            sim.configured_soon(node)
                || sim.core(node).is_some_and(|core| {
                    core.enrolling().is_some()
                        || (core.phase() != Phase::Halted
                            && core.leaving() != crate::core::Leaving::No)
                })
        });
        if !restarted && !halting {
            break;
        }
    }
}

mod check_l1 {
    use super::*;
    use crate::sim::check::Violation;

    /// L1 for packages: every failover package that may start somewhere in the membership
    /// (AUTO_RUN on, node switching enabled on a member) runs on exactly one node.
    fn packages_placed(sim: &Simulation) -> bool {
        let Some(core) = sim.core(NodeId(0)) else {
            return false;
        };
        let table = core.packages().table();
        let catalog = core.packages().catalog();
        catalog.ids().all(|id| {
            let state = table.package(id);
            let runs = sim.running_on(&catalog.package(id).name).len();
            // A package whose dependencies do not run anywhere need not run either.
            let dependencies_run = catalog
                .package(id)
                .dependencies
                .iter()
                .all(|d| !sim.running_on(&catalog.package(d.package).name).is_empty());
            let startable = state.auto_run
                && !state.maintenance
                && dependencies_run
                && !state.switching.intersection(core.view().members).is_empty()
                && !state
                    .instances
                    .values()
                    .any(|s| *s == crate::packages::InstanceState::HaltAborted);
            if startable {
                runs == 1
            } else {
                runs <= 1
            }
        })
    }

    /// The nodes of the cluster, as the generation in effect on n1 numbers them (n1 is never
    /// deleted).
    fn configured(sim: &Simulation) -> NodeSet {
        sim.core(NodeId(0))
            .map_or(NodeSet::EMPTY, |core| core.settings().configured())
    }

    /// A cmapplyconf given with the cluster halted that some nodes did not confirm (its
    /// answer says "give the same cmapplyconf again before starting the cluster"): when no
    /// cluster runs and its nodes start with different generations, the operator halts them
    /// (cmhaltnode -f), gives the newest generation again (cmgetconf, cmapplyconf) on a node
    /// that has it, and runs the cluster (cmruncl). Whether it was needed.
    fn give_halted_again(
        sim: &mut Simulation,
        nodes: usize,
        budget: Duration,
    ) -> Result<bool, Violation> {
        let up: Vec<NodeId> = (0..nodes)
            .map(|n| NodeId(n as u32))
            .filter(|&n| sim.core(n).is_some())
            .collect();
        let number = |s: &Simulation, n: NodeId| s.core(n).map(|c| c.settings().config_generation);
        // Given on the first node of the newest generation: nodes a change added come last,
        // and a node still in an earlier generation hears only the nodes that one names.
        let best = up.iter().map(|&n| number(sim, n)).max().flatten();
        let newest = up.iter().copied().find(|&n| number(sim, n) == best);
        let Some(newest) = newest else {
            return Ok(false);
        };
        let diverged = up.iter().any(|&n| number(sim, n) != number(sim, newest));
        let running = up.iter().any(|&n| !sim.members(n).is_empty());
        if !diverged || running {
            return Ok(false);
        }
        for &node in &up {
            let _ = sim.halt_node(node, true);
        }
        let halted = |s: &Simulation| {
            up.iter()
                .all(|&n| s.core(n).is_some_and(|c| c.phase() == Phase::Halted))
        };
        if !sim.run_until(budget, halted)? {
            return Ok(false);
        }
        if let Some((cluster, packages)) = sim.config_in_effect(newest) {
            let _ = sim.apply_config(newest, cluster, packages);
        }
        // Every node of the generation in effect halted again, in it (the nodes it changed
        // start again as new lives).
        let taken = |s: &Simulation| {
            let Some(core) = s.core(newest) else {
                return false;
            };
            let (generation, cluster) = (
                core.settings().config_generation,
                core.settings().configured(),
            );
            core.phase() == Phase::Halted
                && cluster.iter().all(|n| {
                    s.core(n).is_some_and(|c| {
                        c.phase() == Phase::Halted && c.settings().config_generation == generation
                    })
                })
        };
        if sim.run_until(budget, taken)? {
            let cluster = sim
                .core(newest)
                .map_or(NodeSet::EMPTY, |c| c.settings().configured());
            // Given again until the cluster runs, as an operator does: refused while the
            // nodes the change renumbered start their new lives ("a configuration change is
            // being applied"), or not heard by a node still in its earlier life.
            let wait = sim.timing().member_timeout * 2;
            for _ in 0..10 {
                let _ = sim.run_cluster(newest, cluster);
                if sim.run_until(wait, |s| s.formed(cluster))? {
                    break;
                }
            }
        }
        Ok(true)
    }

    /// A node that a halted cmapplyconf deleted and could not tell, running configured
    /// still (out of the cluster's reach: the generation numbered the nodes without it),
    /// whose files the operator removes by hand, as that command's answer said to. Whether
    /// there was one.
    fn unconfigure_left_behind(sim: &mut Simulation, nodes: usize) -> bool {
        let cluster = configured(sim);
        // The latest such answer, and in it the nodes it names as left behind.
        let Some(said) = sim.trace().iter().rev().find_map(|r| match &r.event {
            crate::core::Event::CommandAnswered {
                refusal, warning, ..
            } => [refusal, warning]
                .into_iter()
                .flatten()
                .find(|text| text.contains("remove cluster.ascii"))
                .cloned(),
            _ => None,
        }) else {
            return false;
        };
        let named = [
            ("of the nodes it deletes, ", ": stop cmcld"),
            (
                "of the nodes deleted (while the cluster ran, or by this change), ",
                " may never have been told",
            ),
        ]
        .iter()
        .find_map(|(from, to)| {
            let start = said.find(from)? + from.len();
            let end = start + said[start..].find(to)?;
            Some(said[start..end].to_owned())
        })
        .unwrap_or_default();
        let left: Vec<NodeId> = (0..nodes)
            .map(|n| NodeId(n as u32))
            .filter(|&n| !cluster.contains(n) && sim.core(n).is_some())
            .filter(|n| {
                let name = &sim.names[n.index()];
                named
                    .split(|c: char| !c.is_alphanumeric() && c != '-')
                    .any(|word| word.eq_ignore_ascii_case(name))
            })
            .collect();
        for &node in &left {
            sim.unconfigure_by_hand(node);
        }
        !left.is_empty()
    }

    /// Every node of the cluster in one membership, and every other node running
    /// unconfigured (told that it was deleted, or not yet added).
    fn settled(sim: &Simulation, nodes: usize) -> bool {
        let cluster = configured(sim);
        !cluster.is_empty()
            && sim.formed(cluster)
            && (0..nodes).all(|n| {
                let node = NodeId(n as u32);
                cluster.contains(node) || sim.unconfigured(node)
            })
    }

    /// L1: once the faults stop, every node of the cluster is in one membership within the
    /// re-formation budget (a reboot, a safety timeout and a few MEMBER_TIMEOUTs), and every
    /// other node runs unconfigured. A node that the last node-set change did not reach
    /// (down when it was made) is reached when the operator gives the same cmapplyconf
    /// again, as its answer says to: twice at most, and only in a seed whose operator
    /// changed the node set (`operator`): in the others the cluster must form by itself.
    /// A node that a halted cmapplyconf deleted without telling it has its files removed
    /// by hand, as that answer says to, once.
    /// Returns how many times the cmapplyconf was given again.
    pub fn liveness(sim: &mut Simulation, nodes: usize, operator: bool) -> Result<u64, Violation> {
        let timing = sim.timing();
        let budget = Duration::from_secs(30) + timing.fence_bound_max() + timing.member_timeout * 6;
        let mut given_again = 0;
        let mut cleaned = false;
        loop {
            // The resource monitors of restarted nodes report again once they run, and go on
            // reporting as they poll (every two MEMBER_TIMEOUTs here): a node that fails and
            // starts again meanwhile reports too. (Seed 3184758: reported once, the node a
            // package had left restarted after it, and the package waited for ever on
            // monitors that never spoke.)
            if sim.run_until(budget, |s| settled(s, nodes))? {
                let slice = timing.member_timeout * 2;
                let mut waited = Duration::ZERO;
                let mut placed = false;
                while waited < budget && !placed {
                    set_resources_up(sim, nodes);
                    placed = sim.run_until(slice, |s| settled(s, nodes) && packages_placed(s))?;
                    waited += slice;
                }
                if placed {
                    return Ok(given_again);
                }
                break;
            }
            if !operator {
                break;
            }
            if !cleaned && unconfigure_left_behind(sim, nodes) {
                cleaned = true;
                continue;
            }
            if given_again < 2 && give_halted_again(sim, nodes, budget)? {
                given_again += 1;
                continue;
            }
            // Given again once the nodes it reached run as one cluster.
            let reached: NodeSet = configured(sim)
                .iter()
                .filter(|&n| !sim.unconfigured(n))
                .collect();
            // Only for a node that the change did not reach: the cluster must form by itself
            // otherwise.
            let missed = (0..nodes).any(|n| {
                let node = NodeId(n as u32);
                configured(sim).contains(node) == sim.unconfigured(node)
            });
            if given_again == 2 || reached.is_empty() || !missed {
                break;
            }
            if !sim.formed(reached) {
                // The cluster does not run (its nodes started again wait for every node,
                // the one not reached included): cmruncl -n with the others.
                let running = reached.iter().any(|n| !sim.members(n).is_empty());
                let first = reached.lowest().expect("not empty");
                if running || sim.run_cluster(first, reached).is_err() {
                    break;
                }
                if !sim.run_until(budget, |s| s.formed(reached))? {
                    break;
                }
            }
            given_again += 1;
            if let Some((cluster, packages)) = sim.config_in_effect(NodeId(0)) {
                let _ = sim.apply_config(NodeId(0), cluster, packages);
            }
            // A node it adds starts halted, in the cluster's generation: cmrunnode there.
            let told = |s: &Simulation| {
                (0..nodes).all(|n| {
                    let node = NodeId(n as u32);
                    if configured(s).contains(node) {
                        s.core(node).is_some()
                    } else {
                        s.unconfigured(node)
                    }
                })
            };
            if sim.run_until(budget, told)? {
                for node in configured(sim).iter() {
                    if sim.core(node).is_some_and(|c| c.phase() == Phase::Halted) {
                        let _ = sim.run_node_command(node);
                    }
                }
            }
        }
        let states: Vec<String> = (0..nodes)
            .map(|n| {
                let node = NodeId(n as u32);
                format!(
                    "{node}: {:?} {:?} {:?}{}",
                    sim.life(node),
                    sim.core(node).map(|c| c.phase()),
                    sim.core(node).map(|c| c.view().members),
                    if sim.unconfigured(node) {
                        " unconfigured"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        Err(Violation {
            invariant: "L1",
            detail: format!(
                "no single membership of the cluster's nodes {:?} with its packages placed, \
                 the others unconfigured, {:.0} s after the faults stopped (given again \
                 {given_again} times): {}",
                configured(sim),
                budget.as_secs_f64(),
                states.join("; ")
            ),
            at_seconds: sim.now().as_secs_f64(),
            seed: sim.seed(),
        })
    }
}
