//! Helpers shared by the simulator test files.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use std::time::Duration;

use cimguard_cluster::core::{EnrolmentOutcome, Event, NodeId, NodeSet, Taken};
use cimguard_cluster::packages::Command;
use cimguard_cluster::sim::{NoticeRecord, Options, Simulation};

/// A failover package file: `name` on nodes `nodes` (NODE_NAMEs n1, n2, ...), in that
/// order, with one service.
pub fn package(name: &str, nodes: &[u32]) -> String {
    let mut text = format!("package_name {name}\n");
    for n in nodes {
        text.push_str(&format!("node_name n{n}\n"));
    }
    text.push_str("service_name s\nservice_cmd /bin/s\n");
    text
}

/// The node set of these node numbers.
pub fn set(nodes: &[u32]) -> NodeSet {
    nodes.iter().map(|&n| NodeId(n)).collect()
}

/// `s` seconds.
pub fn seconds(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The notices told so far with this EventID, in order.
pub fn notices(sim: &Simulation, id: &str) -> Vec<NoticeRecord> {
    sim.notices()
        .iter()
        .filter(|r| r.notice.event_id() == id)
        .cloned()
        .collect()
}

/// Why `command` given on `node` was refused, as the client hears it: at once (named for
/// its package, as the daemon tells it), or in the coordinator's answer to a forwarded
/// command (waited for, at most 10 s); `None` when it was carried out.
pub fn refusal(sim: &mut Simulation, node: u32, command: Command) -> Option<String> {
    let name = sim
        .catalog()
        .packages
        .get(command.package().index())
        .map(|def| def.name.clone());
    match sim.command(NodeId(node), command) {
        Err(refusal) => Some(match name {
            Some(name) => refusal.naming(&name).to_string(),
            None => refusal.to_string(),
        }),
        Ok(Taken::Forwarded(serial)) => answer_to(sim, node, serial),
        Ok(_) => None,
    }
}

/// The coordinator's answer to the command `node` forwarded as `serial` (waited for, at
/// most 10 s): why it was refused, `None` when carried out.
pub fn answer_to(sim: &mut Simulation, node: u32, serial: u64) -> Option<String> {
    let heard = sim
        .run_until(seconds(10), |s| {
            answers(s, node)
                .iter()
                .any(|(answered, _)| *answered == serial)
        })
        .unwrap();
    assert!(heard, "no answer to command {serial} on node {node}");
    answers(sim, node)
        .into_iter()
        .find(|(answered, _)| *answered == serial)
        .and_then(|(_, refusal)| refusal)
}

/// The answers to forwarded (or held) commands `node` heard so far: (serial, refusal).
pub fn answers(sim: &Simulation, node: u32) -> Vec<(u64, Option<String>)> {
    sim.trace()
        .iter()
        .filter(|r| r.node == NodeId(node))
        .filter_map(|r| match &r.event {
            Event::CommandAnswered {
                serial, refusal, ..
            } => Some((*serial, refusal.clone())),
            _ => None,
        })
        .collect()
}

/// The warning the command `node` forwarded as `serial` was carried out with, if it was
/// answered so (not waited for).
pub fn warning_to(sim: &Simulation, node: u32, serial: u64) -> Option<String> {
    sim.trace()
        .iter()
        .filter(|r| r.node == NodeId(node))
        .find_map(|r| match &r.event {
            Event::CommandAnswered {
                serial: answered,
                warning,
                ..
            } if *answered == serial => warning.clone(),
            _ => None,
        })
}

/// The cluster file of the simulator's hosts (n1, n2, ...), and the same without n4.
pub fn files_without_n4(options: &Options) -> (String, String) {
    let text = cimguard_cluster::sim::cluster_file(options);
    let without_n4 = text[..text.find("NODE_NAME n4\n").expect("n4")].to_owned();
    (text, without_n4)
}

/// The answer node `node` told for command `serial` (of its current life: given after
/// trace record `since`): its refusal and warning (None: not yet).
pub fn answer_since(
    sim: &Simulation,
    node: u32,
    (serial, since): (u64, usize),
) -> Option<(Option<String>, Option<String>)> {
    sim.trace()[since..]
        .iter()
        .rev()
        .find_map(|r| match &r.event {
            Event::CommandAnswered {
                serial: s,
                refusal,
                warning,
            } if r.node == NodeId(node) && *s == serial => Some((refusal.clone(), warning.clone())),
            _ => None,
        })
}

/// The answer node `node` tells for command `serial` (given after trace record `since`),
/// waited for at most `within`: its refusal and warning.
pub fn await_answer(
    sim: &mut Simulation,
    node: u32,
    serial: (u64, usize),
    within: Duration,
) -> (Option<String>, Option<String>) {
    let heard = sim
        .run_until(within, |s| answer_since(s, node, serial).is_some())
        .unwrap();
    assert!(heard, "no answer to command {} on node {node}", serial.0);
    answer_since(sim, node, serial).expect("answered")
}

/// How the change of the nodes answered as `serial` on `node` ended.
pub fn enrolment_outcome(sim: &Simulation, node: u32, serial: u64) -> EnrolmentOutcome {
    sim.core(NodeId(node))
        .and_then(|c| c.enrolment_outcome(serial))
        .cloned()
        .expect("an outcome")
}

/// Node `from`'s heartbeat as it arrives at node `to`, forged: running at `epoch` with
/// `members`, halting nothing and echoing nothing; `edit` makes what else a test needs.
pub fn forged_heartbeat(
    sim: &Simulation,
    (from, to): (u32, u32),
    (epoch, members): (cimguard_cluster::core::Epoch, NodeSet),
    edit: impl FnOnce(&mut cimguard_cluster::core::Heartbeat),
) -> cimguard_cluster::core::Envelope {
    use cimguard_cluster::core::{cluster_id, Envelope, Heartbeat, Instant, Leaving, Message};
    use cimguard_cluster::core::{Phase, Term};
    let (receiver, sender) = (
        sim.core(NodeId(to)).unwrap(),
        sim.core(NodeId(from)).unwrap(),
    );
    let mut heartbeat = Heartbeat {
        sequence: 1,
        sent_at: Instant(1),
        term: Term {
            lease: seconds(11),
            grace: seconds(1),
        },
        phase: Phase::Running,
        epoch,
        members,
        reach: members,
        echo: None,
        heard: None,
        packages: Vec::new(),
        restarts: Vec::new(),
        failures: Vec::new(),
        resources: Vec::new(),
        switching: Vec::new(),
        switching_version: (0, 0),
        executed: (0, 0),
        leaving: Leaving::No,
        lock: cimguard_cluster::status::Health::Unknown,
        lock_refusal: None,
    };
    edit(&mut heartbeat);
    Envelope {
        cluster_id: cluster_id("simulated"),
        config_generation: sender.settings().config_generation,
        from: NodeId(from),
        from_incarnation: sender.incarnation(),
        to_incarnation: receiver.incarnation(),
        message: Message::Heartbeat(heartbeat),
    }
}
