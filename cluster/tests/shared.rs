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

/// Runs until `condition` holds, which it must within `limit`.
fn until(sim: &mut Simulation, limit: Duration, condition: impl Fn(&Simulation) -> bool) {
    let held = sim.run_until(limit, condition).expect("no violation");
    assert!(held, "the condition did not hold within {limit:?}");
}

/// How many keys (tombstones included) each node's copy holds.
fn lens(sim: &Simulation, nodes: u32) -> Vec<usize> {
    (0..nodes)
        .map(|n| sim.core(NodeId(n)).map_or(0, |core| core.shared().len()))
        .collect()
}

#[test]
fn deleted_keys_are_forgotten_once_every_node_has_its_copy() {
    let mut sim = formed(3, 5);
    for n in 0..10 {
        assert!(sim.share(NodeId(0), &format!("k{n}"), Some("v")).is_ok());
    }
    for n in 0..8 {
        assert!(sim.share(NodeId(0), &format!("k{n}"), None).is_ok());
    }
    // One forwarded by another member (a node sends one at a time).
    assert!(sim.share(NodeId(1), "k8", None).is_ok());
    until(&mut sim, Duration::from_secs(5), |s| {
        (0..3).all(|n| values(s, NodeId(n)) == pairs(&[("k9", "v")]))
    });
    // The tombstones are purged on every node (at the coordinator's next resend of its
    // whole copy); the floor is kept.
    until(&mut sim, Duration::from_secs(120), |s| {
        lens(s, 3) == vec![1, 1, 1]
    });
    assert_eq!(lens(&sim, 3), vec![1, 1, 1]);
    for n in 0..3 {
        let core = sim.core(NodeId(n)).expect("up");
        assert_eq!(core.shared().tombstones(), 0);
        assert!(core.shared().floor() > Default::default());
        assert_eq!(values(&sim, NodeId(n)), pairs(&[("k9", "v")]));
    }
    // A deleted key set again is a new key.
    assert!(sim.share(NodeId(2), "k0", Some("again")).is_ok());
    until(&mut sim, Duration::from_secs(5), |s| {
        (0..3).all(|n| values(s, NodeId(n)).len() == 2)
    });
    assert_eq!(
        values(&sim, NodeId(1)),
        pairs(&[("k0", "again"), ("k9", "v")])
    );
}

#[test]
fn a_node_down_while_its_keys_were_deleted_and_forgotten_does_not_bring_them_back() {
    let mut sim = formed(3, 7);
    assert!(sim.share(NodeId(0), "old", Some("x")).is_ok());
    assert!(sim.share(NodeId(0), "kept", Some("y")).is_ok());
    until(&mut sim, Duration::from_secs(5), |s| {
        values(s, NodeId(2)).len() == 2
    });
    sim.crash(NodeId(2));
    until(&mut sim, Duration::from_secs(60), |s| {
        (0..2).all(|n| s.members(NodeId(n)) == NodeSet::first(2))
    });
    // With n3 down, tombstones are kept up to a bound; past it they are purged anyway, or
    // the map would fill and refuse every change.
    assert!(sim.share(NodeId(1), "old", None).is_ok());
    let many = cimguard_cluster::core::shared::ENTRIES_MAX / 4 + 1;
    for n in 0..many {
        assert!(
            sim.share(NodeId(0), &format!("gone{n}"), None).is_ok(),
            "deletion {n}"
        );
    }
    until(&mut sim, Duration::from_secs(120), |s| {
        lens(s, 2) == vec![1, 1]
    });
    assert_eq!(lens(&sim, 2), vec![1, 1]);
    // n3 comes back with "old": nobody takes it, and n3 drops it.
    sim.restart(NodeId(2));
    until(&mut sim, Duration::from_secs(120), |s| {
        s.formed(NodeSet::first(3)) && values(s, NodeId(2)) == pairs(&[("kept", "y")])
    });
    for n in 0..3 {
        assert_eq!(
            values(&sim, NodeId(n)),
            pairs(&[("kept", "y")]),
            "n{}",
            n + 1
        );
    }
    // n3 persisted the floor it took: what it dropped stays dropped across its restart.
    assert!(sim
        .core(NodeId(2))
        .is_some_and(|c| c.shared().floor() > Default::default()));
    sim.crash(NodeId(2));
    sim.restart(NodeId(2));
    until(&mut sim, Duration::from_secs(120), |s| {
        s.formed(NodeSet::first(3))
    });
    assert_eq!(values(&sim, NodeId(2)), pairs(&[("kept", "y")]));
}

#[test]
fn a_stale_copy_from_before_a_purge_cannot_bring_a_deleted_key_back() {
    // n1 keeps "old" through a whole cluster restart after which it coordinates again; the
    // others deleted it and purged the deletion while it was down.
    let mut sim = formed(3, 13);
    assert!(sim.share(NodeId(0), "old", Some("x")).is_ok());
    until(&mut sim, Duration::from_secs(5), |s| {
        (1..3).all(|n| values(s, NodeId(n)).len() == 1)
    });
    sim.crash(NodeId(0));
    until(&mut sim, Duration::from_secs(60), |s| {
        (1..3).all(|n| s.members(NodeId(n)).len() == 2)
    });
    // n2 coordinates now.
    assert_eq!(sim.share(NodeId(1), "old", None), Ok(Taken::Done));
    let many = cimguard_cluster::core::shared::ENTRIES_MAX / 4 + 1;
    for n in 0..many {
        assert!(sim.share(NodeId(1), &format!("gone{n}"), None).is_ok());
    }
    until(&mut sim, Duration::from_secs(120), |s| {
        (1..3).all(|n| {
            s.core(NodeId(n))
                .is_some_and(|c| c.shared().entries().is_empty())
        })
    });
    for n in 1..3 {
        sim.crash(NodeId(n));
    }
    for n in 0..3 {
        sim.restart(NodeId(n));
    }
    until(&mut sim, Duration::from_secs(120), |s| {
        s.formed(NodeSet::first(3)) && values(s, NodeId(0)).is_empty()
    });
    for n in 0..3 {
        assert_eq!(values(&sim, NodeId(n)), pairs(&[]), "n{}", n + 1);
    }
}

#[test]
fn a_copy_lost_on_its_way_to_the_coordinator_is_sent_again_before_any_purge() {
    // n2 coordinates while n1 is down and sets K; the frames carrying K (its change, and
    // then n2's copy at n1's return, when n1 coordinates) are lost. n1 must not purge until
    // it heard n2's copy, which n2 sends again when n1's resend shows it missing.
    let mut sim = formed(3, 21);
    sim.crash(NodeId(0));
    until(&mut sim, Duration::from_secs(60), |s| {
        (1..3).all(|n| s.members(NodeId(n)).len() == 2)
    });
    sim.network.drop_kinds.push((NodeId(1), "Shared"));
    assert_eq!(sim.share(NodeId(1), "K", Some("acked")), Ok(Taken::Done));
    sim.restart(NodeId(0));
    until(&mut sim, Duration::from_secs(120), |s| {
        s.formed(NodeSet::first(3))
    });
    sim.run_for(Duration::from_secs(2)).expect("no violation");
    sim.network.drop_kinds.clear();
    // A deletion gives n1 a tombstone to purge.
    assert_eq!(sim.share(NodeId(0), "other", None), Ok(Taken::Done));
    until(&mut sim, Duration::from_secs(180), |s| {
        (0..3).all(|n| {
            values(s, NodeId(n)) == pairs(&[("K", "acked")])
                && s.core(NodeId(n))
                    .is_some_and(|c| c.shared().tombstones() == 0)
        })
    });
}

#[test]
fn with_a_node_down_tombstones_are_kept_below_the_bound() {
    let mut sim = formed(3, 17);
    sim.crash(NodeId(2));
    until(&mut sim, Duration::from_secs(60), |s| {
        (0..2).all(|n| s.members(NodeId(n)) == NodeSet::first(2))
    });
    for n in 0..10 {
        assert!(sim.share(NodeId(0), &format!("k{n}"), Some("v")).is_ok());
        assert!(sim.share(NodeId(0), &format!("k{n}"), None).is_ok());
    }
    // Four resend rounds: nothing purged, n3 may still hold these keys.
    sim.run_for(Duration::from_secs(120)).expect("no violation");
    assert_eq!(lens(&sim, 2), vec![10, 10]);
    // Once n3 is back and its copy heard, they go.
    sim.restart(NodeId(2));
    until(&mut sim, Duration::from_secs(180), |s| {
        s.formed(NodeSet::first(3)) && lens(s, 3) == vec![0, 0, 0]
    });
}
