//! A failover package that may run on a failed node starts elsewhere only once that node is
//! fenced. "May run there" is what the package's node list allowed while the node was last
//! heard, not only what the list allows now: a configuration generation carried on by a
//! membership takes effect as it is (checked against what ran when it was applied, not
//! now), so it may take a node off the list of a package that runs there.

mod common;

use std::sync::Arc;

use common::{package, set};

use cimguard_cluster::core::{Instant, NodeId, NodeSet};
use cimguard_cluster::packages::{
    Catalog, Command, InstanceState, Manager, Order, Output, Refusal,
};
use cimguard_cluster::sim::{Options, Simulation};

/// The catalog of three nodes with pkgA on `nodes`.
fn catalog(nodes: &[u32]) -> Arc<Catalog> {
    let mut options = Options::new(3, 1);
    options.packages = vec![package("pkgA", nodes)];
    Arc::new(Simulation::new(options).catalog().clone())
}

const N1: NodeId = NodeId(0);
const N3: NodeId = NodeId(2);

/// cmrunpkg -n n1 pkgA, checked on the coordinator n1 with n1 and n2 up.
fn run_on_n1(manager: &Manager) -> Result<(), Refusal> {
    let package = manager.catalog().find("pkgA").unwrap();
    manager.check_command(set(&[0, 1]), &Command::Run { package, node: N1 })
}

/// Whether the coordinator, placing now, orders pkgA started (on n1, the first of its list).
fn places_pkg_a(manager: &mut Manager) -> bool {
    manager.take_outputs();
    manager.coordinate(
        Instant::from_nanos(1_000_000_000),
        set(&[0, 1]),
        NodeSet::EMPTY,
    );
    let a = manager.catalog().find("pkgA").unwrap();
    manager.take_outputs().iter().any(|o| {
        matches!(o, Output::Order { to: N1, order: Order::Start(package), .. } if *package == a)
    })
}

/// Membership `epoch` of n1 and n2 takes n3 as failed; n2 reports (running nothing).
fn n3_fails(manager: &mut Manager, epoch: u64) {
    manager.on_membership(epoch, set(&[0, 1]), set(&[2]), NodeSet::EMPTY);
    manager.on_report(NodeId(1), &[], (0, 0), &[], &[]);
}

/// pkgA waits for n3's fence: cmrunpkg says so, and the coordinator does not place it.
fn waits_for_n3(manager: &mut Manager) {
    assert_eq!(
        run_on_n1(manager),
        Err(Refusal::AwaitingFence { nodes: set(&[2]) })
    );
    assert!(!places_pkg_a(manager), "started while n3 may run it");
}

/// n3 runs pkgA and reports it; a generation carried on takes n3 off pkgA's list, with the
/// membership that takes n3 as failed. n1, coordinating, starts pkgA only once n3 is fenced.
#[test]
fn a_package_on_a_failed_node_taken_off_its_list_waits_for_the_fence() {
    let mut manager = Manager::new(N1, catalog(&[1, 2, 3]));
    manager.on_membership(1, NodeSet::first(3), NodeSet::EMPTY, NodeSet::EMPTY);
    let a = manager.catalog().find("pkgA").unwrap();
    for node in [NodeId(1), N3] {
        let running: &[_] = if node == N3 {
            &[(a, InstanceState::Running)]
        } else {
            &[]
        };
        manager.on_report(node, running, (0, 0), &[], &[]);
    }
    manager.reconfigure(catalog(&[1, 2]));
    n3_fails(&mut manager, 2);
    waits_for_n3(&mut manager);
    manager.on_takeover_allowed(N3);
    assert_eq!(run_on_n1(&manager), Ok(()));
    assert!(places_pkg_a(&mut manager));
}

/// The same seen by n1 in a new life: it joins with the generation carried on and never
/// heard n3, which ran pkgA under the list before.
#[test]
fn a_joiner_that_never_heard_the_failed_node_waits_for_its_fence_too() {
    let mut manager = Manager::new(N1, catalog(&[1, 2, 3]));
    manager.reconfigure(catalog(&[1, 2]));
    n3_fails(&mut manager, 2);
    waits_for_n3(&mut manager);
    manager.on_takeover_allowed(N3);
    assert!(places_pkg_a(&mut manager));
}

/// A node taken off the list that reports under the new list (running nothing) is no
/// longer waited for when it fails later.
#[test]
fn a_node_off_the_list_that_reported_since_is_not_waited_for() {
    let mut manager = Manager::new(N1, catalog(&[1, 2, 3]));
    manager.on_membership(1, NodeSet::first(3), NodeSet::EMPTY, NodeSet::EMPTY);
    manager.reconfigure(catalog(&[1, 2]));
    manager.on_membership(2, NodeSet::first(3), NodeSet::EMPTY, NodeSet::EMPTY);
    for node in [NodeId(1), N3] {
        manager.on_report(node, &[], (0, 0), &[], &[]);
    }
    n3_fails(&mut manager, 3);
    assert_eq!(run_on_n1(&manager), Ok(()));
}

/// One that reports it still runs pkgA under the new list is waited for when it fails.
#[test]
fn a_node_off_the_list_that_still_runs_the_package_is_waited_for() {
    let mut manager = Manager::new(N1, catalog(&[1, 2, 3]));
    manager.on_membership(1, NodeSet::first(3), NodeSet::EMPTY, NodeSet::EMPTY);
    let a = manager.catalog().find("pkgA").unwrap();
    manager.reconfigure(catalog(&[1, 2]));
    manager.on_membership(2, NodeSet::first(3), NodeSet::EMPTY, NodeSet::EMPTY);
    manager.on_report(NodeId(1), &[], (0, 0), &[], &[]);
    manager.on_report(N3, &[(a, InstanceState::Running)], (0, 0), &[], &[]);
    n3_fails(&mut manager, 3);
    waits_for_n3(&mut manager);
}

/// n1 in a new life, started from its files with the generation that took n3 off pkgA's
/// list already in effect, joins a membership that takes n3 as failed: n1 was never a
/// member with n3 and cannot know by which list it ran, so pkgA waits for n3's fence.
#[test]
fn a_node_never_a_member_with_a_failed_life_waits_for_it_in_every_package() {
    let mut manager = Manager::new(N1, catalog(&[1, 2]));
    n3_fails(&mut manager, 2);
    waits_for_n3(&mut manager);
    manager.on_takeover_allowed(N3);
    assert_eq!(run_on_n1(&manager), Ok(()));
}

/// n3, taken off pkgA's list and then taken as failed, is a member again in the same life
/// (it had missed a commit): nothing waits for it, but if it fails again before it reports
/// under the new list, pkgA waits for its fence.
#[test]
fn a_node_back_in_the_same_life_counts_off_the_list_until_it_reports() {
    let mut manager = Manager::new(N1, catalog(&[1, 2, 3]));
    manager.on_membership(1, NodeSet::first(3), NodeSet::EMPTY, NodeSet::EMPTY);
    manager.reconfigure(catalog(&[1, 2]));
    n3_fails(&mut manager, 2);
    manager.on_membership(3, NodeSet::first(3), NodeSet::EMPTY, NodeSet::EMPTY);
    manager.on_back(N3);
    manager.on_report(NodeId(1), &[], (0, 0), &[], &[]);
    assert_eq!(run_on_n1(&manager), Ok(()));
    n3_fails(&mut manager, 4);
    waits_for_n3(&mut manager);
}
