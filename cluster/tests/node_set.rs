//! The core of a node configured in no cluster ([`Unconfigured`], cmclconfd's part): which
//! offers of a halted cmapplyconf that adds it it takes, what it persists and writes at the
//! commit, and when it starts its new life.

use std::sync::Arc;

use cimguard_cluster::config::Generation;
use cimguard_cluster::core::{
    cluster_id, Action, Envelope, Epoch, Event, Incarnation, Instant, Message, NodeId, Persisted,
    Unconfigured,
};

/// A generation of nodes n1 to n4 (`number` and shown as `sequence`).
fn generation(number: u64, sequence: u64) -> Arc<Generation> {
    let text = cimguard_cluster::sim::cluster_file(&cimguard_cluster::sim::Options::new(4, 1));
    let cluster = cimguard_cluster::config::cluster::parse(&text, "c.ascii")
        .expect("the simulator's cluster file")
        .config;
    Arc::new(Generation {
        number,
        sequence,
        cluster,
        packages: Vec::new(),
    })
}

fn at(seconds: f64) -> Instant {
    Instant::from_nanos((seconds * 1e9) as u64)
}

/// `message` from node n1 (life 5).
fn from_n1(config: &Generation, message: Message) -> Envelope {
    Envelope {
        cluster_id: cluster_id(&config.cluster.name),
        config_generation: 1,
        from: NodeId(0),
        from_incarnation: Incarnation(5),
        to_incarnation: Incarnation(0),
        message,
    }
}

/// The answer's refusal (None: taken) and promise.
fn answer(envelope: Option<Envelope>) -> (Option<String>, Epoch) {
    match envelope.expect("an answer").message {
        Message::ConfigAnswer {
            refusal, epoch_max, ..
        } => (refusal, epoch_max),
        other => panic!("not an answer: {other:?}"),
    }
}

fn actions(core: &mut Unconfigured) -> Vec<Action> {
    std::iter::from_fn(|| core.poll_action()).collect()
}

fn offer(config: &Arc<Generation>, serial: u64) -> Message {
    Message::ConfigOffer {
        serial,
        config: config.clone(),
    }
}

#[test]
fn an_unconfigured_node_takes_an_offer_naming_it_from_a_node_of_the_generation() {
    let promised = Epoch::new(9, NodeId(3));
    let earlier = Persisted {
        epoch_max: promised,
        ..Persisted::default()
    };
    let config = generation(6, 4);
    let mut core = Unconfigured::new("N4", Incarnation(2), earlier);

    // Not from a node of the generation, nor from itself.
    let (refusal, _) =
        answer(core.handle_request(at(1.0), "n9", from_n1(&config, offer(&config, 1))));
    assert!(refusal.is_some_and(|r| r.contains("not from n9")));
    let (refusal, _) =
        answer(core.handle_request(at(1.0), "n4", from_n1(&config, offer(&config, 1))));
    assert!(refusal.is_some());
    // Not a generation that names it.
    let mut other = Unconfigured::new("n5", Incarnation(1), Persisted::default());
    let (refusal, _) =
        answer(other.handle_request(at(1.0), "n1", from_n1(&config, offer(&config, 1))));
    assert!(refusal.is_some_and(|r| r.contains("n5 is not a node of cluster simulated")),);
    // Nor an envelope of another cluster.
    let mut foreign = from_n1(&config, offer(&config, 1));
    foreign.cluster_id ^= 1;
    assert!(answer(core.handle_request(at(1.0), "n1", foreign))
        .0
        .is_some());
    assert!(
        actions(&mut core).is_empty(),
        "nothing persisted for a refusal"
    );
    assert!(!core.changing(at(1.0)));

    // From n1: taken, its promise told, the generation's floor persisted first.
    let reply = core.handle_request(at(2.0), "N1", from_n1(&config, offer(&config, 1)));
    let envelope = reply.clone().expect("an answer");
    assert_eq!(envelope.to_incarnation, Incarnation(5));
    assert_eq!(envelope.from, NodeId(3), "numbered as the offer numbers it");
    assert_eq!(answer(reply), (None, promised));
    match actions(&mut core).as_slice() {
        [Action::Persist(p)] => assert_eq!(p.sequence_floor, 4),
        other => panic!("{other:?}"),
    }
    assert!(core.changing(at(2.0)));
    // Another giver meanwhile is refused; the same one again is answered.
    let (refusal, _) =
        answer(core.handle_request(at(3.0), "n2", from_n1(&config, offer(&config, 7))));
    assert!(refusal.is_some_and(|r| r.contains("another configuration change")));
    assert_eq!(
        answer(core.handle_request(at(3.0), "n1", from_n1(&config, offer(&config, 1)))).0,
        None
    );
    // The offer expires on its own (held 30 s).
    assert!(core.changing(at(30.0)));
    core.handle_timeout(at(40.0));
    assert!(!core.changing(at(40.0)));
    let commit = Message::ConfigCommit {
        serial: 1,
        number: 6,
        epoch_floor: Epoch::new(12, NodeId(1)),
    };
    let (refusal, _) = answer(core.handle_request(at(40.0), "n1", from_n1(&config, commit)));
    assert!(refusal.is_some_and(|r| r.contains("holds no offer")));
}

#[test]
fn the_commit_is_persisted_with_the_floor_then_written_and_the_new_life_follows() {
    let config = generation(6, 4);
    let mut core = Unconfigured::new(
        "n4",
        Incarnation(1),
        Persisted {
            epoch_max: Epoch::new(3, NodeId(0)),
            ..Persisted::default()
        },
    );
    assert_eq!(
        answer(core.handle_request(at(1.0), "n2", from_n1(&config, offer(&config, 3)))).0,
        None
    );
    actions(&mut core);
    let floor = Epoch::new(12, NodeId(1));
    let commit = || Message::ConfigCommit {
        serial: 3,
        number: 6,
        epoch_floor: floor,
    };
    // A commit of another number, or another serial, is not this offer's.
    let wrong = Message::ConfigCommit {
        serial: 3,
        number: 5,
        epoch_floor: floor,
    };
    assert!(
        answer(core.handle_request(at(1.5), "n2", from_n1(&config, wrong)))
            .0
            .is_some()
    );
    assert!(
        answer(core.handle_request(at(1.5), "n1", from_n1(&config, commit())))
            .0
            .is_some(),
        "another giver's"
    );

    assert_eq!(
        answer(core.handle_request(at(2.0), "n2", from_n1(&config, commit()))).0,
        None
    );
    match actions(&mut core).as_slice() {
        [Action::Persist(p), Action::WriteConfiguration(written)] => {
            assert_eq!(p.epoch_max, floor, "raised to the floor");
            assert_eq!(p.config.as_ref(), Some(&config));
            assert_eq!(p.sequence_floor, 4);
            assert!(p.installed.is_none() && p.accepted.is_empty());
            assert_eq!(written, &config);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(core.committed(), Some(&config));
    // The commit again (its answer lost) is answered taken, and writes nothing more.
    assert_eq!(
        answer(core.handle_request(at(2.5), "n2", from_n1(&config, commit()))).0,
        None
    );
    assert!(actions(&mut core).is_empty());
    // An offer of another giver now is refused: this node is starting with the other.
    let (refusal, _) =
        answer(core.handle_request(at(2.5), "n3", from_n1(&config, offer(&config, 1))));
    assert!(refusal.is_some_and(|r| r.contains("took another configuration")));
    // A second after the commit, the new life.
    assert_eq!(core.poll_timeout(), Some(at(3.0)));
    core.handle_timeout(at(2.9));
    assert!(actions(&mut core).is_empty());
    core.handle_timeout(at(3.0));
    assert_eq!(
        actions(&mut core),
        [Action::Event(Event::Reconfigured { retired: false })]
    );
    core.handle_timeout(at(4.0));
    assert!(actions(&mut core).is_empty(), "told once");
}

#[test]
fn a_withdrawn_offer_is_dropped_at_once() {
    let config = generation(2, 2);
    let mut core = Unconfigured::new("n4", Incarnation(1), Persisted::default());
    assert_eq!(
        answer(core.handle_request(at(1.0), "n1", from_n1(&config, offer(&config, 8)))).0,
        None
    );
    // Another giver's withdrawal, or of another serial, changes nothing.
    core.handle_request(
        at(1.1),
        "n2",
        from_n1(&config, Message::ConfigWithdraw { serial: 8 }),
    );
    core.handle_request(
        at(1.1),
        "n1",
        from_n1(&config, Message::ConfigWithdraw { serial: 9 }),
    );
    assert!(core.changing(at(1.2)));
    core.handle_request(
        at(1.2),
        "n1",
        from_n1(&config, Message::ConfigWithdraw { serial: 8 }),
    );
    assert!(!core.changing(at(1.2)));
    // Another node's offer is taken at once.
    assert_eq!(
        answer(core.handle_request(at(1.3), "n3", from_n1(&config, offer(&config, 1)))).0,
        None
    );
}

#[test]
fn a_clusters_deletion_finds_nothing_to_delete_on_an_unconfigured_node() {
    // A node that missed cmdeleteconf gives it again: the others, unconfigured by now, say
    // yes to it and to its commit, and take nothing.
    let mut deleted = (*generation(9, 7)).clone();
    deleted.cluster.nodes.clear();
    let deleted = Arc::new(deleted);
    let mut core = Unconfigured::new("n4", Incarnation(1), Persisted::default());
    assert_eq!(
        answer(core.handle_request(at(1.0), "n3", from_n1(&deleted, offer(&deleted, 2)))).0,
        None
    );
    let commit = Message::ConfigCommit {
        serial: 2,
        number: 9,
        epoch_floor: Epoch::new(1, NodeId(0)),
    };
    assert_eq!(
        answer(core.handle_request(at(1.5), "n3", from_n1(&deleted, commit))).0,
        None
    );
    assert!(
        actions(&mut core).is_empty(),
        "nothing persisted or written"
    );
    assert!(!core.changing(at(1.5)));
    assert!(core.committed().is_none());
    // A commit of another serial is not the deletion's.
    let other = Message::ConfigCommit {
        serial: 3,
        number: 9,
        epoch_floor: Epoch::new(1, NodeId(0)),
    };
    assert!(
        answer(core.handle_request(at(2.0), "n3", from_n1(&deleted, other)))
            .0
            .is_some()
    );
}
