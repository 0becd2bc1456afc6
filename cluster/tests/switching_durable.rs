//! A change of the package switching table (cmmodpkg -d/-e/-m, cmhaltpkg's AUTO_RUN) is
//! answered only once every member holds it, and is never lost to a coordinator failing
//! after the answer, nor to a new coordinator whose own copy is older than a member's.

mod common;

use common::{answer_to, answers, seconds, set, warning_to};

use cimguard_cluster::core::{Instant, NodeId, NodeSet, Taken};
use cimguard_cluster::packages::{unconfirmed_text, Command, InstanceState, Manager, PackageId};
use cimguard_cluster::sim::{Options, Simulation};

fn package(name: &str, nodes: &[u32]) -> String {
    let mut text = format!("package_name {name}\n");
    for n in nodes {
        text.push_str(&format!("node_name n{n}\n"));
    }
    text.push_str("service_name s\nservice_cmd /bin/s\n");
    text
}

/// Three nodes, n1 coordinating, with the packages running on n1.
fn formed(seed: u64, packages: &[&str]) -> Simulation {
    let mut options = Options::new(3, seed);
    options.packages = packages.iter().map(|p| package(p, &[1, 2, 3])).collect();
    let mut sim = Simulation::new(options);
    sim.start_all();
    assert!(sim
        .run_until(seconds(90), |s| s.formed(NodeSet::first(3))
            && packages.iter().all(|p| s.running_on(p) == set(&[0])))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    sim
}

fn disable(package: PackageId) -> Command {
    Command::Disable {
        package,
        node: None,
    }
}

fn held(taken: Taken) -> u64 {
    match taken {
        Taken::Forwarded(serial) => serial,
        other => panic!("{other:?}: not held for the members"),
    }
}

fn auto_run(sim: &Simulation, observer: u32, package: PackageId) -> bool {
    sim.core(NodeId(observer))
        .unwrap()
        .packages()
        .table()
        .package(package)
        .auto_run
}

/// cmmodpkg -d on the coordinator is answered once both other members hold it: the
/// coordinator crashing the moment it answers loses nothing, and the package, switching
/// disabled, does not fail over. Given at eight moments of the heartbeat interval.
#[test]
fn a_coordinator_crashing_as_it_answers_a_switching_change_loses_nothing() {
    for step in 0..8u64 {
        let mut sim = formed(40 + step, &["pkgA"]);
        let a = sim.package("pkgA");
        let interval = sim.timing().heartbeat_interval;
        sim.run_for(interval * step as u32 / 8).unwrap();
        let serial = held(sim.command(NodeId(0), disable(a)).unwrap());
        assert!(
            sim.run_until(seconds(10), |s| !answers(s, 0).is_empty())
                .unwrap(),
            "step {step}: no answer"
        );
        assert_eq!(answers(&sim, 0), vec![(serial, None)], "step {step}");
        // Answered: each member holds it.
        for observer in 1..3 {
            assert!(
                !auto_run(&sim, observer, a),
                "step {step}: n{}",
                observer + 1
            );
        }
        sim.crash(NodeId(0));
        assert!(sim
            .run_until(seconds(60), |s| s.formed(set(&[1, 2])))
            .unwrap());
        // Long past the fence: nothing started it elsewhere.
        sim.run_for(seconds(40)).unwrap();
        assert!(
            sim.running_on("pkgA").is_empty(),
            "step {step}: failed over"
        );
        for observer in 1..3 {
            assert!(
                !auto_run(&sim, observer, a),
                "step {step}: n{}",
                observer + 1
            );
        }
    }
}

/// The old coordinator's last change reached n3, not n2, before it crashed (unanswered):
/// n2, coordinating next, takes n3's newer copy; the package, switching disabled, does not
/// fail over, and maintenance mode of the package that ran on the failed node ends.
#[test]
fn a_change_only_a_member_holds_survives_the_coordinator() {
    let mut sim = formed(7, &["pkgA", "pkgM"]);
    let (a, m) = (sim.package("pkgA"), sim.package("pkgM"));
    // pkgM in maintenance mode on n1.
    sim.command(NodeId(0), disable(m)).unwrap();
    sim.run_for(seconds(2)).unwrap();
    sim.command(
        NodeId(0),
        Command::Maintenance {
            package: m,
            on: true,
            node: None,
        },
    )
    .unwrap();
    assert!(sim
        .run_until(seconds(5), |s| (0..3).all(|n| s
            .core(NodeId(n))
            .unwrap()
            .packages()
            .table()
            .package(m)
            .maintenance))
        .unwrap());
    // n1's heartbeats reach n3 only: its cmmodpkg -d of pkgA too.
    sim.cut_oneway(NodeId(0), NodeId(1));
    let serial = held(sim.command(NodeId(0), disable(a)).unwrap());
    assert!(sim.run_until(seconds(5), |s| !auto_run(s, 2, a)).unwrap());
    assert!(auto_run(&sim, 1, a));
    // Not answered: n2 does not hold it.
    assert!(answers(&sim, 0).iter().all(|(s, _)| *s != serial));
    sim.crash(NodeId(0));
    sim.heal();
    assert!(sim
        .run_until(seconds(60), |s| s.formed(set(&[1, 2])))
        .unwrap());
    sim.run_for(seconds(40)).unwrap();
    for observer in 1..3 {
        let table = sim.core(NodeId(observer)).unwrap().packages().table();
        assert!(!table.package(a).auto_run, "n{}: pkgA", observer + 1);
        // Maintenance mode ended with its node all the same.
        assert!(!table.package(m).maintenance, "n{}: pkgM", observer + 1);
    }
    assert!(sim.running_on("pkgA").is_empty(), "pkgA failed over");
}

/// A member that does not take the change (its heartbeats do not come back, but it is not
/// yet out of the membership) keeps the answer held, and at the end of the wait the
/// command is answered carried out, with a warning naming that member.
#[test]
fn a_change_a_member_does_not_confirm_is_told_unconfirmed() {
    let mut sim = formed(11, &["pkgA"]);
    let a = sim.package("pkgA");
    sim.cut_oneway(NodeId(2), NodeId(0));
    let serial = held(sim.command(NodeId(0), disable(a)).unwrap());
    // Carried out, not refused, with the warning naming the member.
    assert_eq!(answer_to(&mut sim, 0, serial), None);
    assert_eq!(
        warning_to(&sim, 0, serial),
        Some(unconfirmed_text(set(&[2])))
    );
    // It was made all the same.
    assert!(!auto_run(&sim, 0, a) && !auto_run(&sim, 1, a));
}

/// A coordinator halted by cmhaltnode -f while it holds a change that n2 holds and n3 has
/// not confirmed answers it carried out, with no warning: the next coordinator takes the
/// newest copy among the members, n2's. (Were no member to hold it, the answer would be
/// that it may or may not have been kept, `Refusal::CoordinatorHalted`: that arises with
/// the coordinator fenced, as it cannot halt gracefully without hearing the members, and
/// the simulator drops a fenced node's own answers with it.)
#[test]
fn a_coordinator_halting_while_a_member_holds_a_change_answers_it_carried_out() {
    let mut options = Options::new(3, 12);
    options.member_timeout = std::time::Duration::from_secs(3);
    options.packages = vec![package("pkgA", &[1, 2, 3])];
    let mut sim = Simulation::new(options);
    sim.start_all();
    assert!(sim
        .run_until(seconds(90), |s| s.formed(NodeSet::first(3))
            && s.running_on("pkgA") == set(&[0]))
        .unwrap());
    sim.run_for(seconds(3)).unwrap();
    let a = sim.package("pkgA");
    sim.cut_oneway(NodeId(2), NodeId(0));
    let serial = held(sim.command(NodeId(0), disable(a)).unwrap());
    sim.halt_node(NodeId(0), true).unwrap();
    assert_eq!(answer_to(&mut sim, 0, serial), None, "n2 holds it");
    assert_eq!(warning_to(&sim, 0, serial), None);
    assert!(!auto_run(&sim, 1, a));
}

/// The package manager of a coordinator new to a membership whose own copy of the
/// switching table is older than a member's (the old coordinator's last change, a cmmodpkg
/// -d of pkgA, reached n3 and not n2), where the old coordinator's failure changes the
/// table (pkgM, in maintenance mode on it, leaves maintenance): n2 adopts n3's copy first
/// and makes its change to that, stamped newer than both once every member reported,
/// rather than overrule n3's copy with its own older one.
#[test]
fn a_new_coordinator_adopts_a_members_newer_copy_before_it_changes_the_table() {
    let sim = formed(3, &["pkgA", "pkgM"]);
    let catalog = std::sync::Arc::new(sim.catalog().clone());
    let (a, m) = (sim.package("pkgA"), sim.package("pkgM"));
    let (n1, n2, n3) = (NodeId(0), NodeId(1), NodeId(2));
    let now = Instant::from_nanos(1_000_000_000);
    let mut manager = Manager::new(n2, catalog);
    // Membership 1 of all three: n1 runs both packages, pkgM disabled and in maintenance.
    manager.on_membership(1, NodeSet::first(3), NodeSet::EMPTY, NodeSet::EMPTY);
    let running = [(a, InstanceState::Running), (m, InstanceState::Running)];
    manager.on_report(n1, &running, (0, 0), &[], &[]);
    let mut switching = manager.switching();
    switching[m.index()].auto_run = false;
    switching[m.index()].maintenance = true;
    manager.on_switching((1, 3), &switching);
    assert!(manager.table().package(m).maintenance);
    // n1 disabled pkgA too; only n3 holds that copy.
    let mut newer = switching.clone();
    newer[a.index()].auto_run = false;
    // n1 failed: membership 2 of n2 and n3, n2 coordinating.
    manager.on_membership(2, set(&[1, 2]), set(&[0]), NodeSet::EMPTY);
    manager.on_report(n3, &[], (0, 0), &[], &[]);
    manager.on_switching((1, 4), &newer);
    manager.coordinate(now, set(&[1, 2]), NodeSet::EMPTY);
    let table = manager.table();
    assert!(!table.package(a).auto_run, "n3's cmmodpkg -d of pkgA lost");
    assert!(!table.package(m).maintenance, "pkgM still in maintenance");
    let version = manager.switching_version();
    assert!(version > (1, 4), "{version:?} does not outrank n3's copy");
}

/// The same where the change n3 alone holds is the maintenance mode of the package that ran
/// on the failed coordinator: n2's own copy has it off, n3's on; the mode ends with its node
/// all the same once n2 adopts n3's copy.
#[test]
fn maintenance_of_a_package_on_the_failed_node_ends_in_an_adopted_copy() {
    let sim = formed(3, &["pkgA", "pkgM"]);
    let catalog = std::sync::Arc::new(sim.catalog().clone());
    let m = sim.package("pkgM");
    let (n1, n2, n3) = (NodeId(0), NodeId(1), NodeId(2));
    let now = Instant::from_nanos(1_000_000_000);
    let mut manager = Manager::new(n2, catalog);
    manager.on_membership(1, NodeSet::first(3), NodeSet::EMPTY, NodeSet::EMPTY);
    manager.on_report(n1, &[(m, InstanceState::Running)], (0, 0), &[], &[]);
    let mut switching = manager.switching();
    switching[m.index()].auto_run = false;
    manager.on_switching((1, 3), &switching);
    // n1 put pkgM in maintenance mode; only n3 holds that copy.
    let mut newer = switching.clone();
    newer[m.index()].maintenance = true;
    manager.on_membership(2, set(&[1, 2]), set(&[0]), NodeSet::EMPTY);
    manager.on_report(n3, &[], (0, 0), &[], &[]);
    manager.on_switching((1, 4), &newer);
    manager.coordinate(now, set(&[1, 2]), NodeSet::EMPTY);
    assert!(
        !manager.table().package(m).maintenance,
        "still in maintenance"
    );
    assert!(!manager.table().package(m).auto_run);
    assert!(manager.switching_version() > (1, 4));
}
