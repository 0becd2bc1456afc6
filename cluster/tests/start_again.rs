//! A halted node whose daemon stays (cmcld's default): cmrunnode starts it again as a new
//! life, which joins the running cluster; cmruncl given on a node of a halted cluster starts
//! the named halted nodes again ([`Message::Start`]), and given again on the new life forms
//! the cluster with them. Running, starting and fenced nodes refuse.
//!
//! [`Message::Start`]: cimguard_cluster::core::Message::Start

mod common;

use common::{seconds, set};

use cimguard_cluster::core::{NodeId, NodeSet, Phase};
use cimguard_cluster::packages::Refusal;
use cimguard_cluster::sim::{Life, Options, Simulation};
use cimguard_cluster::status::ClusterStatus;

fn formed_cluster(nodes: usize, seed: u64) -> Simulation {
    let mut sim = Simulation::new(Options::new(nodes, seed));
    sim.start_all();
    let all = NodeSet::first(nodes);
    assert!(sim.run_until(seconds(90), |s| s.formed(all)).unwrap());
    sim
}

fn halted(sim: &Simulation, node: u32) -> bool {
    sim.life(NodeId(node)) == Life::Up
        && sim.core(NodeId(node)).map(|c| c.phase()) == Some(Phase::Halted)
}

fn incarnation(sim: &Simulation, node: u32) -> u64 {
    sim.core(NodeId(node)).map_or(0, |c| c.incarnation().0)
}

#[test]
fn cmrunnode_starts_a_halted_node_again_and_it_joins() {
    let mut sim = formed_cluster(3, 11);
    // A running node refuses it.
    assert_eq!(sim.run_node_command(NodeId(2)), Err(Refusal::AlreadyMember));
    sim.halt_node(NodeId(2), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[0, 1])) && halted(s, 2))
        .unwrap());
    // The halted node's own view: it is halted, the cluster may run on without it.
    let view = sim.status(NodeId(2)).unwrap();
    assert_eq!(view.status, ClusterStatus::Unknown);
    let life = incarnation(&sim, 2);
    sim.run_node_command(NodeId(2)).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(NodeSet::first(3)))
        .unwrap());
    assert!(incarnation(&sim, 2) > life, "a new life");
    assert_eq!(sim.watchdog_resets, 0);
}

#[test]
fn cmruncl_on_a_halted_cluster_starts_the_named_nodes_and_forms_with_them() {
    let mut sim = formed_cluster(3, 12);
    sim.halt_cluster(NodeId(0), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| (0..3).all(|n| halted(s, n)))
        .unwrap());
    assert_eq!(
        sim.status(NodeId(1)).unwrap().status,
        ClusterStatus::Down,
        "a cluster halted as a whole is known to be down"
    );
    let lives: Vec<u64> = (0..3).map(|n| incarnation(&sim, n)).collect();
    // cmruncl -n n1 -n n2 on n2 (not the lowest, which coordinates the forming): both
    // start again; n3 stays halted.
    let named = set(&[0, 1]);
    sim.run_cluster(NodeId(1), named).unwrap();
    assert!(sim
        .run_until(seconds(10), |s| (0..2)
            .all(|n| incarnation(s, n) > lives[n as usize] && !halted(s, n)))
        .unwrap());
    assert!(halted(&sim, 2), "a node not named stays halted");
    // Given again on the new life, it forms the cluster with them.
    sim.run_cluster(NodeId(1), named).unwrap();
    assert!(sim.run_until(seconds(60), |s| s.formed(named)).unwrap());
    assert!(halted(&sim, 2));
    // The halted node hears the new cluster's heartbeats and shows it as its members do.
    sim.run_for(seconds(2)).unwrap();
    let snapshot = sim.status(NodeId(2)).unwrap();
    assert_eq!(snapshot.status, ClusterStatus::Up);
    assert_eq!(snapshot.nodes[2].condition.state.as_str(), "halted");
    // The third joins with cmrunnode.
    sim.run_node_command(NodeId(2)).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(NodeSet::first(3)))
        .unwrap());
    assert_eq!(sim.watchdog_resets, 0);
}

#[test]
fn cmruncl_without_names_on_a_halted_cluster_starts_every_node() {
    let mut sim = formed_cluster(3, 13);
    sim.halt_cluster(NodeId(2), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| (0..3).all(|n| halted(s, n)))
        .unwrap());
    // Every configured node named (what cmruncl without -n sends): each starts again, and
    // with every node back they form the cluster on their own.
    sim.run_cluster(NodeId(1), NodeSet::first(3)).unwrap();
    assert!(sim
        .run_until(seconds(90), |s| s.formed(NodeSet::first(3)))
        .unwrap());
}
