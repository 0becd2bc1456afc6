//! The shared map: a value set on any member reaches every member, survives the node it was
//! set on, reaches a node that was down when it was set, and is refused outside a quorate
//! cluster.

mod common;

use std::time::Duration;

use common::answers;

use cimguard_cluster::core::{NodeId, NodeSet, Taken};
use cimguard_cluster::packages::Refusal;
use cimguard_cluster::sim::{Options, Simulation};

fn values(sim: &Simulation, node: NodeId) -> Vec<(String, String)> {
    sim.core(node)
        .map(|core| {
            core.shared()
                .values()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn formed(nodes: usize, seed: u64) -> Simulation {
    let mut options = Options::new(nodes, seed);
    options.through_wire = true;
    let mut sim = Simulation::new(options);
    sim.start_all();
    sim.run_until(Duration::from_secs(60), |s| s.formed(NodeSet::first(nodes)))
        .expect("no violation");
    assert!(sim.formed(NodeSet::first(nodes)));
    sim
}

#[test]
fn a_value_set_on_any_member_reaches_every_member_and_outlives_its_node() {
    for seed in 0..5 {
        let mut sim = formed(3, seed);
        // On the coordinator (n1, the lowest member): done at once.
        assert_eq!(sim.share(NodeId(0), "a", Some("1")), Ok(Taken::Done));
        // On another member: forwarded, answered by the coordinator.
        let Ok(Taken::Forwarded(serial)) = sim.share(NodeId(2), "b", Some("2")) else {
            panic!("forwarded");
        };
        sim.run_until(Duration::from_secs(5), |s| {
            (0..3).all(|n| values(s, NodeId(n)).len() == 2) && !answers(s, 2).is_empty()
        })
        .expect("no violation");
        for n in 0..3 {
            assert_eq!(
                values(&sim, NodeId(n)),
                pairs(&[("a", "1"), ("b", "2")]),
                "seed {seed}, n{}",
                n + 1
            );
        }
        assert_eq!(answers(&sim, 2), vec![(serial, None)]);
        // The node it was set on fails: the others keep it, and a change goes on.
        sim.crash(NodeId(2));
        sim.run_until(Duration::from_secs(60), |s| {
            (0..2).all(|n| s.members(NodeId(n)) == NodeSet::first(2))
        })
        .expect("no violation");
        assert_eq!(
            sim.share(NodeId(1), "b", None).map(|_| ()),
            Ok(()),
            "seed {seed}"
        );
        sim.run_until(Duration::from_secs(5), |s| {
            (0..2).all(|n| values(s, NodeId(n)) == pairs(&[("a", "1")]))
        })
        .expect("no violation");
        // It comes back with its old copy, and takes the newer one when it joins.
        sim.restart(NodeId(2));
        sim.run_until(Duration::from_secs(60), |s| {
            s.formed(NodeSet::first(3)) && values(s, NodeId(2)) == pairs(&[("a", "1")])
        })
        .expect("no violation");
        assert_eq!(values(&sim, NodeId(2)), pairs(&[("a", "1")]), "seed {seed}");
    }
}

#[test]
fn what_only_a_restarted_node_had_reaches_the_others_when_it_joins() {
    let mut sim = formed(3, 11);
    assert!(sim.share(NodeId(0), "kept", Some("x")).is_ok());
    sim.run_until(Duration::from_secs(5), |s| values(s, NodeId(2)).len() == 1)
        .expect("no violation");
    // Every node goes down; n3 comes back first with its copy, then the others, who
    // persisted theirs too: nobody loses it.
    for n in 0..3 {
        sim.crash(NodeId(n));
    }
    for n in (0..3).rev() {
        sim.restart(NodeId(n));
    }
    sim.run_until(Duration::from_secs(120), |s| {
        s.formed(NodeSet::first(3)) && (0..3).all(|n| values(s, NodeId(n)).len() == 1)
    })
    .expect("no violation");
    for n in 0..3 {
        assert_eq!(values(&sim, NodeId(n)), pairs(&[("kept", "x")]));
    }
}

#[test]
fn changes_are_refused_outside_a_quorate_cluster_and_beyond_the_bounds() {
    let mut sim = formed(3, 3);
    assert!(matches!(
        sim.share(NodeId(0), "", Some("x")),
        Err(Refusal::Shared(_))
    ));
    assert!(matches!(
        sim.share(NodeId(0), "k", Some(&"x".repeat(70_000))),
        Err(Refusal::Shared(_))
    ));
    // Alone on one side of a partition, n3 has no quorum.
    let mut alone = NodeSet::EMPTY;
    alone.insert(NodeId(2));
    sim.partition(&[NodeSet::first(2), alone]);
    sim.run_until(Duration::from_secs(60), |s| {
        s.members(NodeId(0)) == NodeSet::first(2)
    })
    .expect("no violation");
    assert_eq!(
        sim.share(NodeId(2), "k", Some("v")),
        Err(Refusal::ClusterNotRunning)
    );
}
