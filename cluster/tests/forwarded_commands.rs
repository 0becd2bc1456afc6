//! Package commands and cmapplyconf given on a node that does not coordinate the packages:
//! the coordinator carries them out or refuses them, and the node that gave them hears which
//! (so cmrunpkg on any node can tell the operator, as Serviceguard does).

mod common;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use common::{answers, seconds, set};

use cimguard_cluster::config::cluster::parse;
use cimguard_cluster::config::package::parse as parse_package;
use cimguard_cluster::config::write::package_ascii;
use cimguard_cluster::config::Generation;
use cimguard_cluster::core::{
    Action, Envelope, Event, Incarnation, Instant, Leaving, Message, Node, NodeId, NodeSet,
    Persisted, Phase, Settings, Taken,
};
use cimguard_cluster::packages::{Command, Refusal};
use cimguard_cluster::sim::{cluster_file, Options, Simulation};
use cimguard_cluster::timing::Timing;

fn package(name: &str, nodes: &[u32], extra: &str) -> String {
    let mut text = format!("package_name {name}\n");
    for n in nodes {
        text.push_str(&format!("node_name n{n}\n"));
    }
    text.push_str("service_name s\nservice_cmd /bin/s\n");
    text.push_str(extra);
    text
}

fn formed(packages: Vec<String>) -> Simulation {
    let mut options = Options::new(3, 7);
    options.packages = packages;
    let mut sim = Simulation::new(options);
    sim.start_all();
    assert!(sim
        .run_until(seconds(90), |s| s.formed(NodeSet::first(3)))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    sim
}

fn serial(taken: Taken) -> u64 {
    match taken {
        Taken::Forwarded(serial) => serial,
        Taken::Done | Taken::Unchanged => panic!("{taken:?} on the node itself, not forwarded"),
    }
}

#[test]
fn the_coordinator_answers_what_it_carried_out_and_what_it_refused() {
    let mut sim = formed(vec![package("pkgA", &[1, 2, 3], "auto_run no\n")]);
    let a = sim.package("pkgA");
    // n1 coordinates: its own command is carried out at once, and answered once every
    // member holds the change.
    let disable = serial(
        sim.command(
            NodeId(0),
            Command::Disable {
                package: a,
                node: None,
            },
        )
        .unwrap(),
    );
    assert_eq!(common::answer_to(&mut sim, 0, disable), None);
    sim.run_for(seconds(2)).unwrap();
    // n2 and n3 both start the halted package, each on itself, before either hears of the
    // other: both pass their own checks, the coordinator carries out the first and refuses
    // the second.
    let on_n2 = serial(
        sim.command(
            NodeId(1),
            Command::Run {
                package: a,
                node: NodeId(1),
            },
        )
        .unwrap(),
    );
    let on_n3 = serial(
        sim.command(
            NodeId(2),
            Command::Run {
                package: a,
                node: NodeId(2),
            },
        )
        .unwrap(),
    );
    assert!(sim
        .run_until(seconds(10), |s| !answers(s, 1).is_empty()
            && !answers(s, 2).is_empty())
        .unwrap());
    sim.run_for(seconds(5)).unwrap();
    let (n2, n3) = (answers(&sim, 1), answers(&sim, 2));
    assert_eq!(n2.len(), 1, "{n2:?}");
    assert_eq!(n3.len(), 1, "{n3:?}");
    assert_eq!(n2[0].0, on_n2);
    assert_eq!(n3[0].0, on_n3);
    let refused: Vec<&String> = [&n2[0].1, &n3[0].1].into_iter().flatten().collect();
    assert_eq!(
        refused.len(),
        1,
        "one carried out, one refused: {n2:?} {n3:?}"
    );
    assert!(
        refused[0].contains("running") || refused[0].contains("starting"),
        "{}",
        refused[0]
    );
    let winner = if n2[0].1.is_none() { 1 } else { 2 };
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("pkgA") == set(&[winner]))
        .unwrap());

    // A command the package table rules out, given on a node that does not coordinate: its
    // copy of the table may be behind, so the coordinator decides and its refusal is the
    // answer.
    let again = serial(
        sim.command(
            NodeId(2),
            Command::Run {
                package: a,
                node: NodeId(2),
            },
        )
        .unwrap(),
    );
    let answer = common::answer_to(&mut sim, 2, again);
    assert!(
        answer.as_deref().is_some_and(|r| r.contains("running")),
        "{answer:?}"
    );
    // What the configuration alone rules out is refused at once, nothing forwarded.
    assert!(sim
        .command(
            NodeId(2),
            Command::Run {
                package: a,
                node: NodeId(7)
            }
        )
        .is_err());
    // A halt given on a non-coordinator is answered as carried out.
    let halt = serial(
        sim.command(
            NodeId(2),
            Command::Halt {
                package: a,
                node: None,
            },
        )
        .unwrap(),
    );
    assert!(sim
        .run_until(seconds(10), |s| answers(s, 2).len() == 3)
        .unwrap());
    assert_eq!(answers(&sim, 2)[2], (halt, None));
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("pkgA").is_empty())
        .unwrap());
}

#[test]
fn cmapplyconf_from_a_member_is_answered_by_the_coordinator() {
    let pkg_a = package("pkgA", &[1, 2, 3], "");
    let mut sim = formed(vec![pkg_a.clone()]);
    let files = [pkg_a, package("pkgB", &[2, 3], "auto_run no\n")];
    let before = sim.generation(NodeId(0)).unwrap();
    let taken = serial(sim.apply(NodeId(2), None, &files).unwrap());
    // The same files again before the first took effect: the coordinator has it pending
    // already, and says so as taken.
    let again = serial(sim.apply(NodeId(1), None, &files).unwrap());
    assert!(sim
        .run_until(seconds(10), |s| !answers(s, 2).is_empty()
            && !answers(s, 1).is_empty())
        .unwrap());
    assert_eq!(answers(&sim, 2), vec![(taken, None)]);
    assert_eq!(answers(&sim, 1), vec![(again, None)]);
    // One new generation everywhere (the two applies were one change).
    assert!(sim
        .run_until(seconds(30), |s| (0..3)
            .all(|n| s.generation(NodeId(n)) > Some(before)))
        .unwrap());
    let after = sim.generation(NodeId(0));
    sim.run_for(seconds(10)).unwrap();
    assert!((0..3).all(|n| sim.generation(NodeId(n)) == after));
    assert_eq!(sim.catalog().packages.len(), 2);
}

#[test]
fn two_different_cmapplyconf_at_once_one_is_refused_to_its_node() {
    let pkg_a = package("pkgA", &[1, 2, 3], "");
    let mut sim = formed(vec![pkg_a.clone()]);
    let with_b = [pkg_a.clone(), package("pkgB", &[2, 3], "auto_run no\n")];
    let with_c = [pkg_a, package("pkgC", &[3, 1], "auto_run no\n")];
    let on_n2 = serial(sim.apply(NodeId(1), None, &with_b).unwrap());
    let on_n3 = serial(sim.apply(NodeId(2), None, &with_c).unwrap());
    assert!(sim
        .run_until(seconds(10), |s| !answers(s, 1).is_empty()
            && !answers(s, 2).is_empty())
        .unwrap());
    let (n2, n3) = (answers(&sim, 1), answers(&sim, 2));
    assert_eq!((n2.len(), n3.len()), (1, 1), "{n2:?} {n3:?}");
    assert_eq!((n2[0].0, n3[0].0), (on_n2, on_n3));
    // The first to arrive is taken, the other refused to its node.
    let (taken, refused, refusal) = match (&n2[0].1, &n3[0].1) {
        (None, Some(why)) => ("pkgB", "pkgC", why),
        (Some(why), None) => ("pkgC", "pkgB", why),
        _ => panic!("one taken, one refused: {n2:?} {n3:?}"),
    };
    assert!(refusal.contains("configuration"), "{refusal}");
    assert!(sim
        .run_until(seconds(30), |s| s.catalog().packages.len() == 2)
        .unwrap());
    assert!(sim.catalog().find(taken).is_some());
    assert!(sim.catalog().find(refused).is_none());
}

#[test]
fn cmhaltnode_of_another_member_is_carried_out_there_and_answered() {
    let mut sim = formed(vec![package("pkgA", &[3, 1, 2], "")]);
    assert!(sim
        .run_until(seconds(30), |s| s.running_on("pkgA") == set(&[2]))
        .unwrap());
    // Without -f: n3 refuses while pkgA runs there, and n1 hears why.
    let refused = serial(sim.halt_other(NodeId(0), NodeId(2), false, false).unwrap());
    assert!(sim
        .run_until(seconds(10), |s| !answers(s, 0).is_empty())
        .unwrap());
    let (answered, why) = answers(&sim, 0)[0].clone();
    assert_eq!(answered, refused);
    assert!(
        why.as_deref().unwrap_or_default().contains("pkgA"),
        "{why:?}"
    );
    assert_eq!(sim.members(NodeId(0)), NodeSet::first(3));
    // A node that is not a member is refused at once.
    assert!(sim.halt_other(NodeId(0), NodeId(5), false, false).is_err());
    // With -f: n3 halts its package and leaves; pkgA fails over to n1.
    let halted = serial(sim.halt_other(NodeId(1), NodeId(2), true, false).unwrap());
    assert!(sim
        .run_until(seconds(10), |s| !answers(s, 1).is_empty())
        .unwrap());
    assert_eq!(answers(&sim, 1), vec![(halted, None)]);
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[0, 1]))
            && s.running_on("pkgA") == set(&[0]))
        .unwrap());
}

/// The ApplyRefused events of `node` so far.
fn apply_refusals(sim: &Simulation, node: u32) -> Vec<Refusal> {
    sim.trace()
        .iter()
        .filter(|r| r.node == NodeId(node))
        .filter_map(|r| match &r.event {
            Event::ApplyRefused { refusal } => Some(refusal.clone()),
            _ => None,
        })
        .collect()
}

fn generations(sim: &Simulation) -> Vec<Option<u64>> {
    (0..3).map(|n| sim.generation(NodeId(n))).collect()
}

#[test]
fn cmapplyconf_of_the_configuration_in_effect_is_unchanged_everywhere() {
    let (pkg_a, pkg_b) = (
        package("pkgA", &[1, 2, 3], ""),
        package("pkgB", &[2, 3], "auto_run no\n"),
    );
    let mut sim = formed(vec![pkg_a.clone(), pkg_b.clone()]);
    let before = generations(&sim);
    let current = before[0];
    // Given on a node that does not coordinate, on the coordinator, with the base it was
    // read at and without one, and with the files in another order (cmapplyconf -P of one
    // of them lists it last): unchanged at once, nothing forwarded or proposed.
    let files = [pkg_a.clone(), pkg_b.clone()];
    let reordered = [pkg_b, pkg_a];
    // As cmgetconf writes them: other lines, other layout, the same parameters.
    let written: Vec<String> = files
        .iter()
        .map(|text| package_ascii(&parse_package(text, "in-effect.conf").unwrap().config))
        .collect();
    assert_ne!(written[0], files[0]);
    assert_eq!(sim.apply(NodeId(1), None, &written), Ok(Taken::Unchanged));
    assert_eq!(sim.apply(NodeId(2), None, &files), Ok(Taken::Unchanged));
    assert_eq!(
        sim.apply_based(NodeId(2), current, None, &reordered),
        Ok(Taken::Unchanged)
    );
    assert_eq!(sim.apply(NodeId(0), None, &reordered), Ok(Taken::Unchanged));
    assert_eq!(
        sim.apply_based(NodeId(0), current, None, &files),
        Ok(Taken::Unchanged)
    );
    sim.run_for(seconds(20)).unwrap();
    assert_eq!(generations(&sim), before);
    assert!(answers(&sim, 2).is_empty(), "{:?}", answers(&sim, 2));
    assert_eq!(sim.members(NodeId(0)), NodeSet::first(3));
    // A real change after that is still taken.
    let with_c = [
        package("pkgA", &[1, 2, 3], ""),
        package("pkgC", &[3], "auto_run no\n"),
    ];
    serial(sim.apply_based(NodeId(2), current, None, &with_c).unwrap());
    assert!(sim
        .run_until(seconds(30), |s| (0..3)
            .all(|n| s.generation(NodeId(n)) > current))
        .unwrap());
    assert!(sim.catalog().find("pkgC").is_some());
}

#[test]
fn the_configuration_in_effect_while_a_change_is_on_its_way_is_not_no_change_on_the_coordinator() {
    let pkg_a = package("pkgA", &[1, 2, 3], "");
    let mut sim = formed(vec![pkg_a.clone()]);
    let before = generations(&sim);
    // n1 coordinates: a change taken there is on its way (proposed, not yet in effect)...
    let with_b = [pkg_a.clone(), package("pkgB", &[2, 3], "auto_run no\n")];
    assert_eq!(sim.apply(NodeId(0), None, &with_b), Ok(Taken::Done));
    // ...and the files in effect given there now are not "no changes": they would undo it.
    assert_eq!(
        sim.apply(NodeId(0), None, std::slice::from_ref(&pkg_a)),
        Err(Refusal::ConfigurationChanging)
    );
    // The change takes effect; then the same files are a change again, and taken.
    assert!(sim
        .run_until(seconds(30), |s| (0..3)
            .all(|n| s.generation(NodeId(n)) > before[n as usize]))
        .unwrap());
    assert_eq!(sim.catalog().packages.len(), 2);
    assert_eq!(sim.apply(NodeId(0), None, &[pkg_a]), Ok(Taken::Done));
}

#[test]
fn cmapplyconf_merged_into_an_older_generation_is_refused_not_applied() {
    let pkg_a = package("pkgA", &[1, 2, 3], "");
    let mut sim = formed(vec![pkg_a.clone()]);
    let read = sim.generation(NodeId(0)).unwrap();
    // Two operators read generation `read`; the first adds pkgB on n2.
    let with_b = [pkg_a.clone(), package("pkgB", &[2, 3], "auto_run no\n")];
    serial(
        sim.apply_based(NodeId(1), Some(read), None, &with_b)
            .unwrap(),
    );
    assert!(sim
        .run_until(seconds(30), |s| (0..3)
            .all(|n| s.generation(NodeId(n)) > Some(read)))
        .unwrap());
    let after_b = sim.generation(NodeId(0)).unwrap();
    // The second merged pkgC into what it read, without pkgB: refused at once, on a node
    // that does not coordinate and on the coordinator, and pkgB stays.
    let with_c = [pkg_a, package("pkgC", &[3, 1], "auto_run no\n")];
    let stale = Refusal::ConfigurationStale {
        base: read,
        in_effect: after_b,
    };
    let refused = Err(stale.clone());
    assert_eq!(
        sim.apply_based(NodeId(2), Some(read), None, &with_c),
        refused
    );
    assert_eq!(
        sim.apply_based(NodeId(0), Some(read), None, &with_c),
        refused
    );
    assert!(stale.to_string().contains("cmgetconf"));
    sim.run_for(seconds(10)).unwrap();
    assert!((0..3).all(|n| sim.generation(NodeId(n)) == Some(after_b)));
    assert!(sim.catalog().find("pkgB").is_some());
    assert!(sim.catalog().find("pkgC").is_none());
}

/// An Apply from `from` as a member would send it, arriving at `to`.
fn apply_message(
    sim: &Simulation,
    (from, to): (u32, u32),
    (serial, base): (u64, Option<u64>),
    packages: &[String],
) -> Envelope {
    let sender = sim.core(NodeId(from)).unwrap();
    let receiver = sim.core(NodeId(to)).unwrap();
    let packages = packages
        .iter()
        .map(|text| parse_package(text, "applied.conf").unwrap().config)
        .collect();
    Envelope {
        cluster_id: sender.settings().cluster_id,
        config_generation: sender.settings().config_generation,
        from: NodeId(from),
        from_incarnation: sender.incarnation(),
        to_incarnation: receiver.incarnation(),
        message: Message::Apply {
            epoch: sender.view().epoch,
            serial,
            base,
            config: Arc::new(Generation {
                number: 0,
                sequence: 0,
                cluster: (*sender.settings().config).clone(),
                packages,
            }),
        },
    }
}

#[test]
fn the_coordinator_refuses_an_apply_based_on_another_generation() {
    let pkg_a = package("pkgA", &[1, 2, 3], "");
    let mut sim = formed(vec![pkg_a.clone()]);
    let current = sim.generation(NodeId(0)).unwrap();
    let with_b = [pkg_a, package("pkgB", &[2, 3], "auto_run no\n")];
    // A member's Apply whose base is not the coordinator's generation (the member lagged,
    // or raced another change): refused there, whatever the member checked.
    let stale = apply_message(&sim, (2, 0), (1000, Some(current - 1)), &with_b);
    sim.forge(NodeId(0), 0, stale);
    sim.run_for(seconds(10)).unwrap();
    assert_eq!(
        apply_refusals(&sim, 0),
        vec![Refusal::ConfigurationStale {
            base: current - 1,
            in_effect: current
        }]
    );
    assert!((0..3).all(|n| sim.generation(NodeId(n)) == Some(current)));
    assert!(sim.catalog().find("pkgB").is_none());
    // The same change based on the generation in effect is taken (the compare-and-swap
    // succeeds), and a copy based on the old one after that is refused.
    let fresh = apply_message(&sim, (2, 0), (1001, Some(current)), &with_b);
    sim.forge(NodeId(0), 0, fresh);
    assert!(sim
        .run_until(seconds(30), |s| (0..3)
            .all(|n| s.generation(NodeId(n)) > Some(current)))
        .unwrap());
    assert!(sim.catalog().find("pkgB").is_some());
    let after = sim.generation(NodeId(0)).unwrap();
    let late = apply_message(&sim, (1, 0), (1, Some(current)), &[]);
    sim.forge(NodeId(0), 0, late);
    sim.run_for(seconds(10)).unwrap();
    assert_eq!(
        apply_refusals(&sim, 0).len(),
        2,
        "{:?}",
        apply_refusals(&sim, 0)
    );
    assert_eq!(
        apply_refusals(&sim, 0)[1],
        Refusal::ConfigurationStale {
            base: current,
            in_effect: after
        }
    );
    assert!(sim.catalog().find("pkgB").is_some());
}

/// Cores driven by hand, with no simulator in between: every message arrives at once, the
/// clock moves in steps of 10 ms. For what only the order of a node's actions shows.
struct Bench {
    cores: Vec<Node>,
    now: Instant,
    /// Every action taken out since formation, by node, in the order each node gave them.
    log: Vec<(usize, Action)>,
}

impl Bench {
    /// `nodes` nodes, started together, run until they form the cluster.
    fn formed(nodes: usize) -> Bench {
        let options = Options::new(nodes, 5);
        let config = parse(&cluster_file(&options), "bench.ascii")
            .unwrap()
            .config;
        let timing = Timing::derive(&config, "bench.ascii").unwrap();
        let now = Instant::from_nanos(1_000_000_000);
        let cores = (0..nodes)
            .map(|n| {
                let me = NodeId(n as u32);
                let settings = Settings::from_config(&config, timing, me, 1, n as u64 + 1);
                Node::new(settings, Incarnation(1), Persisted::default(), now)
            })
            .collect();
        let mut bench = Bench {
            cores,
            now,
            log: Vec::new(),
        };
        let everyone = NodeSet::first(nodes);
        bench.run_until(seconds(90), |b| {
            b.cores
                .iter()
                .all(|c| c.phase() == Phase::Running && c.view().members == everyone)
        });
        bench.log.clear();
        bench
    }

    /// The actions `node` has ready, taken out.
    fn take(&mut self, node: usize) -> Vec<Action> {
        let actions: Vec<Action> = std::iter::from_fn(|| self.cores[node].poll_action()).collect();
        self.log
            .extend(actions.iter().map(|action| (node, action.clone())));
        actions
    }

    /// Delivers the messages among `actions` of `from`, and whatever they cause, until no
    /// node has anything to send; the other actions, by node.
    fn deliver(&mut self, from: usize, actions: Vec<Action>) -> Vec<(usize, Action)> {
        let mut queue: VecDeque<(usize, Action)> = actions.into_iter().map(|a| (from, a)).collect();
        let mut others = Vec::new();
        while let Some((node, action)) = queue.pop_front() {
            match action {
                Action::Send {
                    to,
                    network,
                    envelope,
                } => {
                    let to = to.0 as usize;
                    self.cores[to].handle_message(self.now, network, envelope);
                    queue.extend(self.take(to).into_iter().map(|a| (to, a)));
                }
                other => others.push((node, other)),
            }
        }
        others
    }

    /// Runs until `done` holds (panics after `limit`).
    fn run_until(&mut self, limit: Duration, done: impl Fn(&Bench) -> bool) {
        let deadline = self.now + limit;
        while !done(self) {
            assert!(self.now < deadline, "not done within {limit:?}");
            self.now = self.now + Duration::from_millis(10);
            for node in 0..self.cores.len() {
                if self.cores[node]
                    .poll_timeout()
                    .is_some_and(|at| at <= self.now)
                {
                    self.cores[node].handle_timeout(self.now);
                }
                let actions = self.take(node);
                self.deliver(node, actions);
            }
        }
    }
}

/// The coordinator's state names the proposal carrying its cmapplyconf pending before the
/// Propose leaves, and no longer before any Commit of it leaves: a later life that found it
/// pending takes it for never committed (and its change for given up), so a state still
/// naming it when a Commit had left would give up a change in effect on the members.
#[test]
fn a_change_is_pending_on_disk_from_before_its_propose_to_before_its_commit() {
    let mut bench = Bench::formed(3);
    let now = bench.now;
    let cluster = parse(&cluster_file(&Options::new(3, 5)), "given.ascii")
        .unwrap()
        .config;
    let added = parse_package(&package("pkgB", &[1, 2], ""), "given.conf")
        .unwrap()
        .config;
    let taken = bench.cores[0].handle_apply(now, None, cluster, vec![added]);
    assert_eq!(taken, Ok(Taken::Done));
    bench.run_until(seconds(30), |b| {
        b.cores.iter().all(|c| c.settings().config_generation != 1)
    });
    let mine: Vec<&Action> = bench
        .log
        .iter()
        .filter(|(node, _)| *node == 0)
        .map(|(_, action)| action)
        .collect();
    let first = |sent: &dyn Fn(&Message) -> bool| {
        mine.iter()
            .position(|a| matches!(a, Action::Send { envelope, .. } if sent(&envelope.message)))
    };
    let propose = first(&|m| {
        matches!(
            m,
            Message::Propose {
                config: Some(_),
                ..
            }
        )
    })
    .expect("a Propose carrying the change");
    let Action::Send { envelope, .. } = mine[propose] else {
        unreachable!()
    };
    let Message::Propose { epoch, .. } = envelope.message else {
        unreachable!()
    };
    let commit = first(&|m| matches!(m, Message::Commit { epoch: e, .. } if *e == epoch))
        .expect("its Commit");
    let last_state = |before: usize| {
        mine[..before].iter().rev().find_map(|a| match a {
            Action::Persist(state) => Some(state.own_pending),
            _ => None,
        })
    };
    assert_eq!(last_state(propose), Some(Some(epoch)));
    assert_eq!(last_state(commit), Some(None));
}

#[test]
fn cmhaltnode_of_another_member_is_answered_before_the_halt_starts() {
    let mut bench = Bench::formed(3);
    let now = bench.now;
    let taken = bench.cores[0]
        .handle_halt_other(now, NodeId(2), false, false)
        .unwrap();
    let Taken::Forwarded(serial) = taken else {
        panic!("{taken:?}: not forwarded");
    };
    let halt = bench
        .take(0)
        .into_iter()
        .find_map(|action| match action {
            Action::Send { to, envelope, .. }
                if to == NodeId(2) && matches!(envelope.message, Message::HaltNode { .. }) =>
            {
                Some(envelope)
            }
            _ => None,
        })
        .expect("the HaltNode sent to n3");
    bench.cores[2].handle_message(now, 0, halt);
    assert_eq!(bench.cores[2].leaving(), Leaving::Node);
    // The answer leads n3's actions: should n3 close its connections right after the halt
    // starts, it is out already. Only it is delivered here.
    let actions = bench.take(2);
    let networks = bench.cores[2].settings().networks;
    assert!(actions.len() > networks, "{actions:?}");
    let (answers, rest) = actions.split_at(networks);
    for action in answers {
        assert!(
            matches!(
                action,
                Action::Send { to, envelope, .. } if *to == NodeId(0)
                    && envelope.message == Message::Answer { serial, refusal: None, warning: None }
            ),
            "{actions:?}"
        );
    }
    assert!(!rest.iter().any(|a| matches!(
        a,
        Action::Send { envelope, .. } if matches!(envelope.message, Message::Answer { .. })
    )));
    let answered = bench.deliver(2, answers.to_vec()).contains(&(
        0,
        Action::Event(Event::CommandAnswered {
            serial,
            refusal: None,
            warning: None,
        }),
    ));
    assert!(answered, "n1 did not hear the answer");
}

/// -t: a preview tells what the commands would start and halt, the placement that follows
/// included, on any node, and changes nothing.
#[test]
fn a_preview_tells_what_would_start_and_halt_and_does_nothing() {
    use cimguard_cluster::packages::{Planned, Previewed};
    let previewed = |planned, refused| Previewed { planned, refused };
    let mut sim = formed(vec![
        package("db", &[1, 2, 3], "auto_run no\n"),
        package(
            "web",
            &[2, 3, 1],
            "auto_run yes\ndependency_name db_up\ndependency_condition db = up\n\
             dependency_location any_node\n",
        ),
    ]);
    let (db, web) = (sim.package("db"), sim.package("web"));
    let start = |package, node: u32| Planned {
        package,
        node: NodeId(node),
        start: true,
    };
    let halt = |package, node: u32| Planned {
        package,
        node: NodeId(node),
        start: false,
    };
    // Nothing runs: web waits for db. Enabling db's AUTO_RUN would start it on its first
    // node, and web (AUTO_RUN on) on its own first one once db runs.
    assert!(sim.running_on("db").is_empty() && sim.running_on("web").is_empty());
    for node in 0..3 {
        assert_eq!(
            sim.preview(
                NodeId(node),
                &[Command::Enable {
                    package: db,
                    node: None
                }]
            ),
            Ok(previewed(vec![start(db, 0), start(web, 1)], vec![])),
            "previewed on node {node}"
        );
    }
    // Commands in turn, the placement acting after each, as it does while a command waits
    // for its end: run db on n3, and web starts; halt web.
    assert_eq!(
        sim.preview(
            NodeId(1),
            &[
                Command::Run {
                    package: db,
                    node: NodeId(2)
                },
                Command::Halt {
                    package: web,
                    node: None
                },
            ]
        ),
        Ok(previewed(
            vec![start(db, 2), start(web, 1), halt(web, 1)],
            vec![]
        )),
    );
    // Halting db next would be refused: web, started by then, depends on it.
    assert_eq!(
        sim.preview(
            NodeId(0),
            &[
                Command::Run {
                    package: db,
                    node: NodeId(2)
                },
                Command::Halt {
                    package: db,
                    node: None
                },
            ]
        ),
        Ok(previewed(
            vec![start(db, 2), start(web, 1)],
            vec![(
                1,
                Refusal::DependentsRunning {
                    dependents: vec!["web".into()]
                }
            )]
        )),
    );
    // A command refused is told with its index, changes nothing, and the next ones are
    // previewed, as the commands go on to the next package after one refused.
    assert_eq!(
        sim.preview(
            NodeId(2),
            &[
                Command::Run {
                    package: db,
                    node: NodeId(0)
                },
                Command::Run {
                    package: db,
                    node: NodeId(1)
                },
                Command::Halt {
                    package: web,
                    node: None
                },
            ]
        ),
        Ok(previewed(
            vec![start(db, 0), start(web, 1), halt(web, 1)],
            vec![(1, Refusal::AlreadyRunning { node: NodeId(0) })]
        )),
    );
    // Nothing was done.
    sim.run_for(seconds(5)).unwrap();
    assert!(sim.running_on("db").is_empty() && sim.running_on("web").is_empty());
}

/// A switching change (cmmodpkg -e/-d) leaves the coordinator with the next heartbeats it
/// may send, not the next periodic ones: the members hold it within a quarter of a heartbeat
/// interval and the network's delay, whenever in the interval it was given (a coordinator
/// that dies in that window loses it, so the window is kept short).
#[test]
fn a_switching_change_reaches_the_members_at_once() {
    let mut sim = formed(vec![package("pkgA", &[1, 2, 3], "auto_run no\n")]);
    let a = sim.package("pkgA");
    let interval = sim.timing().heartbeat_interval;
    let held = |s: &Simulation, enabled: bool| {
        (1..3).all(|n| {
            s.status(NodeId(n))
                .is_some_and(|status| status.packages[0].auto_run == enabled)
        })
    };
    for step in 0..8u32 {
        // Given at another moment of the heartbeat interval each time.
        sim.run_for(interval + interval * step / 8).unwrap();
        let enable = step % 2 == 0;
        let command = if enable {
            Command::Enable {
                package: a,
                node: None,
            }
        } else {
            Command::Disable {
                package: a,
                node: None,
            }
        };
        sim.command(NodeId(0), command).unwrap();
        assert!(
            sim.run_until(interval / 2, |s| held(s, enable)).unwrap(),
            "step {step}: the members did not hold AUTO_RUN {enable} within half an interval"
        );
    }
}
