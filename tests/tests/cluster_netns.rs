//! The node daemon in network namespaces, with faults made by nftables rules: a symmetric
//! partition (scenario 7), a two-node split decided by the lock LUN (9), an asymmetric
//! partition (17), one of two heartbeat networks lost (19) and random loss (21) of cluster.md.
//! Each node runs in its own namespace; the test creates and removes them (root needed).

use std::path::Path;
use std::time::Duration;

use std::os::unix::process::ExitStatusExt;

use nix::sys::signal::kill;
use nix::unistd::Pid;

use cimguard_tests::cluster::TestCluster;

const MEMBER_TIMEOUT: Duration = Duration::from_secs(3);
/// Generous bounds for a loaded CI machine; timings are the benchmark's business.
const BOUND: Duration = Duration::from_secs(60);

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

fn pid(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join("svc.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
}

/// Starts every node and waits until each sees `all` up in one membership; its epoch.
fn formed(cluster: &mut TestCluster, all: &[&str]) -> u64 {
    cluster.start_all();
    let all = names(all);
    let mut epoch = 0;
    let count = all.len();
    cluster.wait_for(BOUND, "the cluster forms", |c| {
        let views: Vec<_> = (1..=count).map(|k| c.members(k)).collect();
        match &views[0] {
            Some((members, e))
                if *members == all && views.iter().all(|v| v.as_ref() == views[0].as_ref()) =>
            {
                epoch = *e;
                true
            }
            _ => false,
        }
    });
    epoch
}

/// Adds pkgA on `nodes` (in that order), auto_run, with a service that records a double
/// start ([`TestCluster::exclusive_service`]).
fn add_exclusive_package(cluster: &TestCluster, nodes: &[&str]) {
    let service = cluster.exclusive_service("pkgA");
    let nodes: String = nodes.iter().map(|n| format!("node_name {n}\n")).collect();
    cluster.add_package(
        "pkgA",
        &format!(
            "package_name pkgA\n{nodes}auto_run yes\n\
             service_name svc\nservice_cmd \"{service}\"\n"
        ),
    );
}

/// Waits until n1 and n2 see exactly themselves up in a membership after `before`.
fn n1_n2_reform(cluster: &mut TestCluster, before: u64) {
    let two = names(&["n1", "n2"]);
    cluster.wait_for(BOUND, "n1 and n2 re-form without n3", |c| {
        matches!((c.members(1), c.members(2)), (Some(a), Some(b)) if a == b && a.0 == two && a.1 != before)
    });
}

#[test]
fn scenario_7_the_majority_keeps_quorum_and_adopts_the_minority_package() {
    let mut cluster = TestCluster::configure_in_namespaces(3, MEMBER_TIMEOUT, "", "");
    add_exclusive_package(&cluster, &["n3", "n1", "n2"]);
    let epoch = formed(&mut cluster, &["n1", "n2", "n3"]);
    cluster.wait_for(BOUND, "pkgA runs on n3", |c| {
        pid(&c.dir(3)).is_some_and(alive)
    });
    let service = pid(&cluster.dir(3)).unwrap();

    cluster.partition(&[&[1, 2], &[3]]);
    n1_n2_reform(&mut cluster, epoch);
    // The minority lost quorum: it fences, and its service goes with it.
    cluster.wait_for(BOUND, "n3 is fenced", |c| {
        c.exited(3).is_some_and(|status| status.signal() == Some(9))
    });
    assert!(cluster.log(3).contains("QuorumLost"), "{}", cluster.log(3));
    cluster.wait_for(
        Duration::from_secs(5),
        "n3's service is killed with it",
        |_| !alive(service),
    );
    // The majority starts the package once n3 is certainly reset.
    cluster.wait_for(BOUND, "pkgA starts on n1", |c| {
        c.owners(1, "pkgA") == Some(names(&["n1"])) && pid(&c.dir(1)).is_some_and(alive)
    });
    // Never on two nodes at once: n1's instance took the lock n3's had held.
    assert_eq!(cluster.double_starts("pkgA"), Vec::<String>::new());
}

/// Split three times with equal timing on both sides (the loser is started again and
/// rejoins between rounds): exactly one survivor each time, never both, never none.
#[test]
fn scenario_9_a_two_node_split_leaves_exactly_one_survivor_by_the_lock_lun() {
    let lun = tempfile::NamedTempFile::new().unwrap();
    lun.as_file().set_len(1 << 20).unwrap();
    let mut cluster = TestCluster::configure_in_namespaces(
        2,
        MEMBER_TIMEOUT,
        "",
        &format!(" CLUSTER_LOCK_LUN {}\n", lun.path().display()),
    );
    formed(&mut cluster, &["n1", "n2"]);
    for round in 1..=3 {
        cluster.partition(&[&[1], &[2]]);
        // Exactly one ends; the other runs on alone.
        cluster.wait_for(BOUND, "one node is fenced", |c| {
            c.exited(1).is_some() || c.exited(2).is_some()
        });
        let (loser, winner) = if cluster.exited(1).is_some() {
            (1, 2)
        } else {
            (2, 1)
        };
        cluster.wait_for(BOUND, "the winner runs alone", |c| {
            c.members(winner)
                .is_some_and(|(members, _)| members == [format!("n{winner}")])
        });
        std::thread::sleep(2 * MEMBER_TIMEOUT);
        assert!(
            cluster.exited(winner).is_none(),
            "round {round}: both lost\n{}",
            cluster.logs()
        );
        assert!(cluster
            .exited(loser)
            .is_some_and(|status| status.signal() == Some(9)));
        // Healed, and the loser back for the next round.
        for k in 1..=2 {
            cluster.drop_input(k, &[], &[]);
        }
        cluster.start(loser);
        cluster.wait_for(BOUND, "both members again", |c| {
            (1..=2).all(|k| {
                c.members(k)
                    .is_some_and(|(members, _)| members == names(&["n1", "n2"]))
            })
        });
    }
}

#[test]
fn scenario_17_a_node_that_cannot_hear_is_isolated_and_fenced() {
    let mut cluster = TestCluster::configure_in_namespaces(3, MEMBER_TIMEOUT, "", "");
    let epoch = formed(&mut cluster, &["n1", "n2", "n3"]);
    // n3 sends, but hears nobody.
    cluster.drop_input(3, &[1, 2], &[0, 1]);
    n1_n2_reform(&mut cluster, epoch);
    cluster.wait_for(BOUND, "n3 is fenced", |c| {
        c.exited(3).is_some_and(|status| status.signal() == Some(9))
    });
    // It converged: n1 and n2 hear each other in one membership that holds, reached in a
    // bounded number of re-formations.
    let after = cluster.members(1).unwrap();
    std::thread::sleep(2 * MEMBER_TIMEOUT);
    for k in 1..=2 {
        assert_eq!(cluster.members(k).as_ref(), Some(&after), "n{k}");
        let changes = cluster.log(k).matches("MembershipChanged").count();
        // The formation, then at most two re-formations.
        assert!(
            (2..=3).contains(&changes),
            "n{k}: {changes}\n{}",
            cluster.log(k)
        );
    }
}

#[test]
fn scenario_19_losing_one_of_two_networks_changes_no_membership() {
    let mut cluster = TestCluster::configure_in_namespaces(3, MEMBER_TIMEOUT, "", "");
    let epoch = formed(&mut cluster, &["n1", "n2", "n3"]);
    // n3's first network goes silent both ways.
    cluster.drop_input(3, &[1, 2], &[0]);
    cluster.drop_input(1, &[3], &[0]);
    cluster.drop_input(2, &[3], &[0]);
    // The loss is seen and reported ...
    cluster.wait_for(BOUND, "n1 reports network 0 to n3 down", |c| {
        c.log(1)
            .contains("NetworkDown { node: NodeId(2), network: 0 }")
    });
    // ... and nothing else happens.
    std::thread::sleep(3 * MEMBER_TIMEOUT);
    let all = names(&["n1", "n2", "n3"]);
    for k in 1..=3 {
        assert_eq!(cluster.members(k), Some((all.clone(), epoch)), "n{k}");
    }
}

/// Every node drops `percent` % of the datagrams it receives.
fn lose(cluster: &TestCluster, percent: u32) {
    for k in 1..=3 {
        cluster
            .namespaces()
            .set_input_rules(
                k,
                &[format!(
                    "meta l4proto udp numgen random mod 100 < {percent} drop"
                )],
            )
            .unwrap();
    }
}

#[test]
fn scenario_21_five_and_twenty_percent_loss_change_no_membership() {
    let mut cluster = TestCluster::configure_in_namespaces(3, MEMBER_TIMEOUT, "", "");
    let epoch = formed(&mut cluster, &["n1", "n2", "n3"]);
    for percent in [5, 20] {
        lose(&cluster, percent);
        std::thread::sleep(8 * MEMBER_TIMEOUT);
        let all = names(&["n1", "n2", "n3"]);
        for k in 1..=3 {
            assert_eq!(
                cluster.members(k),
                Some((all.clone(), epoch)),
                "{percent} %: n{k}\n{}",
                cluster.logs()
            );
            assert!(cluster.exited(k).is_none());
        }
    }
}

/// 40 % loss, beyond what the timing is made for: the membership may hold or re-form, but
/// cleanly. Once the loss ends, the nodes still running agree on one membership of exactly
/// themselves, and the package never ran on two nodes at once.
#[test]
fn scenario_21_forty_percent_loss_breaks_no_invariant() {
    let mut cluster = TestCluster::configure_in_namespaces(3, MEMBER_TIMEOUT, "", "");
    add_exclusive_package(&cluster, &["n1", "n2", "n3"]);
    formed(&mut cluster, &["n1", "n2", "n3"]);
    cluster.wait_for(BOUND, "pkgA runs on n1", |c| {
        pid(&c.dir(1)).is_some_and(alive)
    });
    lose(&cluster, 40);
    std::thread::sleep(8 * MEMBER_TIMEOUT);
    lose(&cluster, 0);
    cluster.wait_for(BOUND, "the running nodes agree on themselves", |c| {
        let running: Vec<usize> = (1..=3).filter(|&k| c.exited(k).is_none()).collect();
        let names: Vec<String> = running.iter().map(|k| format!("n{k}")).collect();
        running
            .iter()
            .all(|&k| c.members(k).is_some_and(|(members, _)| members == names))
    });
    assert_eq!(cluster.double_starts("pkgA"), Vec::<String>::new());
}
