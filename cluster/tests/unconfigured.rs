//! A node configured in no cluster (its cmcld runs unconfigured, as Serviceguard's
//! cmclconfd): the check of a cluster's creation (cmcheckconf -C given on it) holds nothing,
//! so it stands in the way of no other node's creation or check, and gives way to a creation.

use std::sync::Arc;

use cimguard_cluster::config::Generation;
use cimguard_cluster::core::{
    cluster_id, Action, Envelope, Event, Incarnation, Instant, Message, NodeId, Persisted,
    Unconfigured,
};
use cimguard_cluster::sim::{cluster_file, Options};

/// The simulator's cluster of three (n1, n2, n3), as a generation its creation offers.
fn generation() -> Arc<Generation> {
    let text = cluster_file(&Options::new(3, 1));
    let cluster = cimguard_cluster::config::cluster::parse(&text, "cluster.ascii")
        .expect("the simulator's cluster file")
        .config;
    Arc::new(Generation {
        number: 1,
        sequence: 1,
        cluster,
        packages: Vec::new(),
    })
}

/// What `core` has to do, in order.
fn actions(core: &mut Unconfigured) -> Vec<Action> {
    std::iter::from_fn(|| core.poll_action()).collect()
}

/// A request of node `from` (numbered `index` in the file) over the exchange.
fn request(config: &Arc<Generation>, index: u32, message: Message) -> Envelope {
    Envelope {
        cluster_id: cluster_id(&config.cluster.name),
        config_generation: 0,
        from: NodeId(index),
        from_incarnation: Incarnation(5),
        to_incarnation: Incarnation(0),
        message,
    }
}

/// The refusal in an answer over the exchange (None: taken).
fn refusal(answer: Option<Envelope>) -> Option<String> {
    match answer.expect("answered").message {
        Message::ConfigAnswer {
            commit: false,
            refusal,
            ..
        } => refusal,
        other => panic!("not an answer to an offer or a check: {other:?}"),
    }
}

/// The answer `core` told for its command `serial`: Some(refusal), None if not told.
fn answered(actions: &[Action], serial: u64) -> Option<Option<String>> {
    actions.iter().find_map(|a| match a {
        Action::Event(Event::CommandAnswered {
            serial: s, refusal, ..
        }) if *s == serial => Some(refusal.clone()),
        _ => None,
    })
}

#[test]
fn a_creation_check_holds_nothing_and_gives_way_to_a_creation() {
    let config = generation();
    let now = Instant::from_nanos(1_000_000_000);
    let mut n1 = Unconfigured::new("n1", Incarnation(1), Persisted::default());
    let check = n1
        .handle_check_create(now, config.cluster.clone(), Vec::new())
        .expect("checked");
    // The other nodes are asked to check it: nothing is persisted, nothing offered.
    let sent = actions(&mut n1);
    let asked: Vec<&str> = sent
        .iter()
        .filter_map(|a| match a {
            Action::Exchange { to, envelope, .. } => {
                assert!(
                    matches!(envelope.message, Message::ConfigCheck { .. }),
                    "{envelope:?}"
                );
                Some(to.as_str())
            }
            Action::Persist(_) | Action::WriteConfiguration(_) => panic!("{a:?}"),
            _ => None,
        })
        .collect();
    assert_eq!(asked, ["n2", "n3"]);
    assert!(!n1.changing(now));

    // Meanwhile n1 answers n2's own check, and takes n2's creation: its check gives way.
    let answer = n1.handle_request(
        now,
        "n2",
        request(
            &config,
            1,
            Message::ConfigCheck {
                serial: 1,
                config: config.clone(),
            },
        ),
    );
    assert_eq!(refusal(answer), None);
    assert_eq!(answered(&actions(&mut n1), check), None, "still checking");
    let answer = n1.handle_request(
        now,
        "n2",
        request(
            &config,
            1,
            Message::ConfigOffer {
                serial: 2,
                config: config.clone(),
            },
        ),
    );
    assert_eq!(refusal(answer), None);
    let told = answered(&actions(&mut n1), check)
        .expect("answered")
        .expect("not checked");
    assert!(
        told.starts_with("a cmapplyconf given on another node was taken meanwhile")
            && told.ends_with("check them again"),
        "{told}"
    );
    assert!(n1.changing(now), "the offer is held");

    // A creation given on a node whose check is on its way ends the check and goes on.
    let mut n3 = Unconfigured::new("n3", Incarnation(1), Persisted::default());
    let check = n3
        .handle_check_create(now, config.cluster.clone(), Vec::new())
        .expect("checked");
    let creation = n3
        .handle_create(now, config.cluster.clone(), Vec::new())
        .expect("created");
    let sent = actions(&mut n3);
    let told = answered(&sent, check)
        .expect("answered")
        .expect("not checked");
    assert!(
        told.starts_with("another cmcheckconf or a cmapplyconf was given on this node"),
        "{told}"
    );
    assert_eq!(answered(&sent, creation), None, "the creation goes on");
    assert!(sent.iter().any(|a| matches!(
        a,
        Action::Exchange { envelope, .. } if matches!(envelope.message, Message::ConfigOffer { .. })
    )));
}
