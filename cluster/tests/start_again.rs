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

/// cmruncl naming fewer nodes than a quorum of the cluster's last membership (a cluster
/// halted as a whole) is refused, and so is its preview: the nodes would form and halt at
/// once, and each new life would do so again. Nothing starts, nothing is reset. With one
/// more node it forms.
#[test]
fn cmruncl_naming_no_quorum_of_the_last_membership_is_refused() {
    let mut sim = formed_cluster(3, 15);
    sim.halt_cluster(NodeId(0), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| (0..3).all(|n| halted(s, n)))
        .unwrap());
    let lives: Vec<u64> = (0..3).map(|n| incarnation(&sim, n)).collect();
    let alone = set(&[0]);
    let refusal = Refusal::RunClusterNotQuorate {
        named: alone,
        last: NodeSet::first(3),
        lock: false,
    };
    assert_eq!(sim.run_cluster(NodeId(0), alone), Err(refusal.clone()));
    assert_eq!(sim.preview_run_cluster(NodeId(0), alone), Err(refusal));
    sim.run_for(seconds(10)).unwrap();
    assert!((0..3).all(|n| halted(&sim, n) && incarnation(&sim, n) == lives[n as usize]));
    assert_eq!(sim.watchdog_resets, 0);
    // Two of the three: a quorum.
    let two = set(&[0, 2]);
    sim.run_cluster(NodeId(0), two).unwrap();
    assert!(sim
        .run_until(seconds(10), |s| [0, 2]
            .iter()
            .all(|&n| incarnation(s, n) > lives[n as usize] && !halted(s, n)))
        .unwrap());
    sim.run_cluster(NodeId(0), two).unwrap();
    assert!(sim.run_until(seconds(60), |s| s.formed(two)).unwrap());
    assert_eq!(sim.watchdog_resets, 0);
}

/// A node named by cmruncl that did not get the command's Start (cut off then, or still in
/// its earlier life after a cmapplyconf that changed the nodes) is told again until it is
/// heard, and the cluster forms with it.
#[test]
fn cmruncl_tells_a_named_node_that_missed_the_start_again_until_it_is_heard() {
    let mut sim = formed_cluster(3, 15);
    sim.halt_cluster(NodeId(0), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| (0..3).all(|n| halted(s, n)))
        .unwrap());
    let lives: Vec<u64> = (0..3).map(|n| incarnation(&sim, n)).collect();
    sim.partition(&[set(&[0, 1]), set(&[2])]);
    sim.run_cluster(NodeId(0), NodeSet::first(3)).unwrap();
    assert!(sim
        .run_until(seconds(10), |s| (0..2)
            .all(|n| incarnation(s, n) > lives[n as usize] && !halted(s, n)))
        .unwrap());
    // Given again on the new life (as the command does), still without n3.
    sim.run_cluster(NodeId(0), NodeSet::first(3)).unwrap();
    sim.run_for(seconds(5)).unwrap();
    assert!(halted(&sim, 2), "n3 heard no Start");
    sim.heal();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(NodeSet::first(3)))
        .unwrap());
    assert!(incarnation(&sim, 2) > lives[2]);
    assert_eq!(sim.watchdog_resets, 0);
}

/// A node halted while an online cmapplyconf changed the configuration has an older
/// generation: cmrunnode given for it on a member still starts it (it goes by its name,
/// as node numbers mean the same nodes only within one generation), and it joins.
#[test]
fn cmrunnode_from_a_member_starts_a_halted_node_of_an_older_generation() {
    let mut sim = formed_cluster(3, 16);
    sim.halt_node(NodeId(2), false).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(set(&[0, 1])) && halted(s, 2))
        .unwrap());
    let before = sim.generation(NodeId(0)).unwrap();
    let added = "package_name newpkg\nnode_name n1\nnode_name n2\nnode_name n3\n".to_owned();
    sim.apply(NodeId(0), None, &[added]).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.generation(NodeId(0)) > Some(before))
        .unwrap());
    assert_eq!(
        sim.generation(NodeId(2)),
        Some(before),
        "halted, it kept its own"
    );
    let life = incarnation(&sim, 2);
    sim.run_other_node(NodeId(0), NodeId(2)).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(NodeSet::first(3))
            && s.generation(NodeId(2)) == s.generation(NodeId(0)))
        .unwrap());
    assert!(incarnation(&sim, 2) > life);
}

/// The (package, node) pairs where each package of `sim` runs.
fn placement(sim: &Simulation, packages: &[&str]) -> Vec<(String, u32)> {
    let mut placed: Vec<(String, u32)> = packages
        .iter()
        .flat_map(|p| sim.running_on(p).iter().map(move |n| (p.to_string(), n.0)))
        .collect();
    placed.sort();
    placed
}

#[test]
fn cmruncl_t_previews_the_placement_that_cmruncl_then_makes() {
    const PACKAGES: [&str; 5] = ["apkg", "bpkg", "cpkg", "dpkg", "monpkg"];
    let mut options = Options::new(3, 14);
    options.packages = vec![
        "package_name apkg\nnode_name n1\nnode_name n2\nnode_name n3\n".into(),
        "package_name bpkg\nnode_name n3\nnode_name n2\n".into(),
        "package_name cpkg\nnode_name n1\nauto_run no\n".into(),
        "package_name dpkg\nnode_name n2\nnode_name n1\n\
         dependency_name a\ndependency_condition apkg = up\ndependency_location any_node\n"
            .into(),
        "package_name monpkg\npackage_type multi_node\nnode_name n1\nnode_name n2\nnode_name n3\n"
            .into(),
    ];
    let mut sim = Simulation::new(options);
    sim.start_all();
    assert!(sim
        .run_until(seconds(90), |s| s.formed(NodeSet::first(3))
            && !s.running_on("dpkg").is_empty())
        .unwrap());
    // A running node refuses it, as it refuses cmruncl.
    assert_eq!(
        sim.preview_run_cluster(NodeId(1), NodeSet::first(3)),
        Err(Refusal::AlreadyMember)
    );
    sim.halt_cluster(NodeId(0), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| (0..3).all(|n| halted(s, n)))
        .unwrap());

    // cmruncl -t -n n1 -n n2 on n2: n3 left out, so bpkg starts on n2; dpkg once apkg
    // runs; cpkg (auto_run no) nowhere.
    let named = set(&[0, 1]);
    let previewed = sim.preview_run_cluster(NodeId(1), named).unwrap();
    assert!(previewed.refused.is_empty());
    assert!(previewed.planned.iter().all(|p| p.start), "{previewed:?}");
    let catalog = sim.catalog().clone();
    let mut preview: Vec<(String, u32)> = previewed
        .planned
        .iter()
        .map(|p| (catalog.package(p.package).name.clone(), p.node.0))
        .collect();
    preview.sort();
    let expected: Vec<(String, u32)> = [
        ("apkg", 0),
        ("bpkg", 1),
        ("dpkg", 1),
        ("monpkg", 0),
        ("monpkg", 1),
    ]
    .iter()
    .map(|(p, n)| (p.to_string(), *n))
    .collect();
    assert_eq!(preview, expected);
    // dpkg after the apkg it needs.
    let at = |name: &str| {
        previewed
            .planned
            .iter()
            .position(|p| catalog.package(p.package).name == name)
            .unwrap()
    };
    assert!(at("apkg") < at("dpkg"));
    // Nothing was done: every node is still halted.
    assert!((0..3).all(|n| halted(&sim, n)));
    // A node not named: refused as cmruncl refuses it.
    assert_eq!(
        sim.preview_run_cluster(NodeId(2), named),
        Err(Refusal::RunClusterNotNamed { node: NodeId(2) })
    );

    // cmruncl -n n1 -n n2 makes exactly that placement.
    sim.run_cluster(NodeId(1), named).unwrap();
    assert!(sim
        .run_until(seconds(10), |s| (0..2).all(|n| !halted(s, n)))
        .unwrap());
    sim.run_cluster(NodeId(1), named).unwrap();
    assert!(sim
        .run_until(seconds(90), |s| s.formed(named)
            && placement(s, &PACKAGES) == expected)
        .unwrap());
    sim.run_for(seconds(5)).unwrap();
    assert_eq!(placement(&sim, &PACKAGES), expected);
}

#[test]
fn the_lowest_node_joining_again_does_not_commit_its_own_joining() {
    // The agents' lifecycle indications rely on it: the node that committed the membership
    // tells them, from its model of the cluster before the change; a joiner has none.
    let mut sim = formed_cluster(3, 15);
    let members = set(&[1, 2]);
    sim.halt_node(NodeId(0), true).unwrap();
    assert!(sim
        .run_until(seconds(30), |s| s.formed(members) && halted(s, 0))
        .unwrap());
    sim.run_node_command(NodeId(0)).unwrap();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(NodeSet::first(3)))
        .unwrap());
    let epoch = sim.status(NodeId(0)).unwrap().epoch;
    assert!(members.contains(epoch.coordinator()), "{epoch}");
    // Killed and started again: the same.
    sim.crash(NodeId(0));
    assert!(sim.run_until(seconds(60), |s| s.formed(members)).unwrap());
    sim.start(NodeId(0));
    assert!(sim
        .run_until(seconds(90), |s| s.formed(NodeSet::first(3)))
        .unwrap());
    let epoch = sim.status(NodeId(0)).unwrap().epoch;
    assert!(members.contains(epoch.coordinator()), "{epoch}");
}
