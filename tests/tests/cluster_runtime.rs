//! The node daemon as real processes: three `cmcld` on loopback addresses (two heartbeat
//! networks each, MEMBER_TIMEOUT 3 s) form a cluster, re-form without a node killed with
//! kill -9 or stopped with SIGSTOP (whose safety timer then kills it), take a restarted node
//! back in a new life, ignore forged and replayed heartbeats, and stop on cmhaltcl.
//! Scenarios 1, 2, 3, 5 and 6 of cluster.md, and the heartbeat-authentication acceptance point.

use std::net::UdpSocket;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use cimguard_cluster::core::cluster_id;
use cimguard_cluster::runtime::auth::Sealer;
use cimguard_cluster::runtime::daemon::{Reply, Request};
use cimguard_tests::cluster::{TestCluster, KEY};

const MEMBER_TIMEOUT: Duration = Duration::from_secs(3);
/// Generous bounds for a loaded CI machine; the timing itself is measured by the benchmark.
const FORM: Duration = Duration::from_secs(40);
const REFORM: Duration = Duration::from_secs(40);

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

/// Starts three nodes and waits until each sees all three up in one membership; its epoch.
fn formed() -> (TestCluster, u64) {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.start_all();
    let all = names(&["n1", "n2", "n3"]);
    let mut epoch = 0;
    cluster.wait_for(FORM, "three nodes form one cluster", |c| {
        let views: Vec<_> = (1..=3).map(|k| c.members(k)).collect();
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
    (cluster, epoch)
}

/// Waits until n1 and n2 both see exactly themselves up, in one new membership; its epoch.
fn survivors_reform(cluster: &mut TestCluster, before: u64) -> u64 {
    let two = names(&["n1", "n2"]);
    let mut epoch = 0;
    cluster.wait_for(REFORM, "n1 and n2 re-form without n3", |c| {
        match (c.members(1), c.members(2)) {
            (Some(a), Some(b)) if a == b && a.0 == two && a.1 != before => {
                epoch = a.1;
                true
            }
            _ => false,
        }
    });
    epoch
}

#[test]
fn the_admin_socket_gives_the_notices_in_order_from_a_cursor() {
    use cimguard_cluster::runtime::daemon::{Reply, Request};
    let (cluster, _) = formed();
    let ask = |after: u64, wait_ms: u64| Request::Notices {
        after,
        wait_ms,
        with_status: false,
    };
    let waiting = |after: u64, wait_ms: u64| match cluster.request(1, &ask(after, wait_ms)) {
        Ok(Reply::Notices {
            incarnation,
            told,
            notices,
            status,
        }) => {
            assert!(status.is_none(), "a status not asked for");
            (incarnation, told, notices)
        }
        other => panic!("notices: {other:?}"),
    };
    let notices = |after: u64| waiting(after, 0);
    // n1 told at least that the cluster is up (or that it joined it), numbered from 1. The
    // membership can show in its status a moment before its notice is told: the first read
    // waits for one.
    let (life, told, all) = waiting(0, 10_000);
    assert!(life >= 1);
    assert!(told >= 1 && told == all.len() as u64, "{told} {all:?}");
    let numbers: Vec<u64> = all.iter().map(|n| n.number).collect();
    assert_eq!(numbers, (1..=told).collect::<Vec<_>>());
    assert!(
        all.iter().any(|n| matches!(
            n.notice.event_id(),
            "ClusterUp" | "NodeJoined" | "ClusterReformed"
        )),
        "{all:?}"
    );
    assert!(all.iter().all(|n| n.at_ms > 1_700_000_000_000));
    // From the last one read: only newer ones (none, unless one was told meanwhile); from
    // one before it: that one first.
    let (_, _, newer) = notices(told);
    assert!(newer.iter().all(|n| n.number > told), "{newer:?}");
    let (_, _, from_last) = notices(told - 1);
    assert_eq!(from_last.first(), all.last());
    // A reader caught up waits for the next notice: here n3 halting (SIGTERM). The wait
    // ends with it (an answer at once would have none).
    let (_, told, _) = notices(0);
    let waited = std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            cluster.request(
                1,
                &Request::Notices {
                    after: told,
                    wait_ms: 10_000,
                    with_status: true,
                },
            )
        });
        cluster.signal(3, "TERM");
        waiter.join().expect("the waiting reader")
    });
    match waited {
        Ok(Reply::Notices {
            notices, status, ..
        }) => {
            assert!(!notices.is_empty(), "the wait ended with no notice");
            assert!(notices.iter().all(|n| n.number > told), "{notices:?}");
            // Asked with the status: the cluster as n1 saw it when it answered.
            let status = status.expect("the status asked for, with the notices");
            assert_eq!(status.observer, cimguard_cluster::core::NodeId(0));
            assert_eq!(status.nodes.len(), 3);
        }
        other => panic!("notices: {other:?}"),
    }
    // With none told in the wait, it ends with none.
    let (_, told, _) = notices(0);
    match cluster.request(
        1,
        &Request::Notices {
            after: told,
            wait_ms: 200,
            with_status: true,
        },
    ) {
        Ok(Reply::Notices {
            notices, status, ..
        }) => {
            assert!(notices.iter().all(|n| n.number > told), "{notices:?}");
            // No status without notices to name.
            assert_eq!(status.is_some(), !notices.is_empty());
        }
        other => panic!("notices: {other:?}"),
    }
}

#[test]
fn survivors_reform_once_after_a_kill_9_and_the_node_rejoins_in_a_new_life() {
    let (mut cluster, epoch) = formed();
    assert_eq!(cluster.status(3).unwrap().incarnation, 1);
    cluster.signal(3, "KILL");
    let after = survivors_reform(&mut cluster, epoch);
    let status = cluster.status(1).unwrap();
    let n3 = &status.cluster.nodes[2];
    assert_eq!(
        (n3.condition.status.as_str(), n3.condition.state.as_str()),
        ("down", "failed")
    );
    // The dead daemon's safety timer fenced what it left (its watcher says so in the log).
    cluster.wait_for(Duration::from_secs(10), "n3's watcher fences", |c| {
        c.log(3).contains("killed process groups")
    });
    // One re-formation: two MEMBER_TIMEOUTs later the membership is still the same.
    std::thread::sleep(2 * MEMBER_TIMEOUT);
    assert_eq!(cluster.members(1), Some((names(&["n1", "n2"]), after)));

    // Scenarios 2 and 3: started again, n3 is a new life and is let back in.
    cluster.start(3);
    let all = names(&["n1", "n2", "n3"]);
    cluster.wait_for(FORM, "n3 rejoins", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, e)| m == all && e != after))
    });
    assert_eq!(cluster.status(3).unwrap().incarnation, 2);
}

#[test]
fn a_stopped_daemon_is_killed_by_its_safety_timer_and_the_others_reform() {
    let (mut cluster, epoch) = formed();
    cluster.signal(3, "STOP");
    survivors_reform(&mut cluster, epoch);
    // Stopped, n3 cannot pet its timer: the watcher kills it before it could act again.
    cluster.wait_for(REFORM, "n3 is killed by its safety timer", |c| {
        c.exited(3).is_some_and(|status| status.signal() == Some(9))
    });
    assert!(
        cluster.log(3).contains("killed process groups"),
        "{}",
        cluster.log(3)
    );
}

#[test]
fn forged_replayed_and_foreign_heartbeats_are_dropped_and_counted() {
    let (mut cluster, epoch) = formed();
    // Three members, no cluster lock: the short grace, so a failover within
    // MEMBER_TIMEOUT + 2 s, as the status says.
    let bound = cluster.status(1).unwrap().failover_bound_seconds;
    let timeout = MEMBER_TIMEOUT.as_secs_f64();
    assert!(bound > timeout && bound <= timeout + 2.0, "{bound}");
    // From n2's own address: a spoof is told by its seal, never by where it comes from.
    let socket = UdpSocket::bind("127.0.0.2:0").unwrap();
    let target = format!("127.0.0.1:{}", cluster.port);
    let id = cluster_id("testcluster");
    let mut forger = Sealer::new(&[7u8; 32], id, 1, "n2", 1);
    let mut stranger = Sealer::new(&KEY, id, 9, "n10", 1);
    let mut foreign = Sealer::new(&KEY, cluster_id("othercluster"), 1, "n2", 1);
    // Each kind, by the reason it must be dropped for.
    type Make<'a> = Box<dyn FnMut() -> Vec<u8> + 'a>;
    let mut kinds: Vec<(&str, Make)> = vec![
        // Not a datagram of ours at all.
        ("malformed", Box::new(|| b"hello".to_vec())),
        // Sealed as n2 under another key.
        ("bad_tag", Box::new(move || forger.seal(b"CW\x01"))),
        // Sealed under the right key as n2's first life with its first sequence, which n2
        // used long ago: a replay of its first datagram to n1.
        (
            "replayed",
            Box::new(move || Sealer::new(&KEY, id, 1, "n2", 1).seal(b"CW\x01")),
        ),
        // Under the right key, from a node the cluster does not have.
        ("unknown_sender", Box::new(move || stranger.seal(b"CW\x01"))),
        // Another cluster's.
        ("foreign_cluster", Box::new(move || foreign.seal(b"CW\x01"))),
    ];
    // UDP may lose a datagram on a busy machine: each is sent again until it is counted.
    cluster.wait_for(Duration::from_secs(20), "every bad datagram counted", |c| {
        let counts = c.status(1).unwrap().datagrams_rejected;
        let mut all = true;
        for (reason, datagram) in &mut kinds {
            if counts.get(*reason).copied().unwrap_or(0) == 0 {
                all = false;
                socket.send_to(&datagram(), &target).unwrap();
            }
        }
        all
    });
    // Nothing changed: the same membership, all three up.
    std::thread::sleep(MEMBER_TIMEOUT);
    assert_eq!(
        cluster.members(1),
        Some((names(&["n1", "n2", "n3"]), epoch))
    );
}

#[test]
fn cmhaltcl_stops_every_daemon() {
    let (mut cluster, _) = formed();
    let reply = cluster
        .request(
            2,
            &Request::HaltCluster {
                force: false,
                detach: false,
            },
        )
        .unwrap();
    assert_eq!(reply, Reply::Done);
    cluster.wait_for(Duration::from_secs(30), "every daemon ends", |c| {
        (1..=3).all(|k| c.exited(k).is_some_and(|s| s.success()))
    });
    // A graceful halt disarms the safety timer: nothing was fenced.
    for k in 1..=3 {
        assert!(
            !cluster.log(k).contains("killed process groups"),
            "{}",
            cluster.log(k)
        );
    }
}

/// `--watchdog` with something that is not a watchdog device (this machine has none): the
/// daemon refuses to start, in one line that names the path, and leaves the file alone.
#[test]
fn a_watchdog_path_that_is_not_a_watchdog_is_refused_at_start() {
    let cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    let not_a_device = cluster.dir(1).join("not-a-watchdog");
    std::fs::write(&not_a_device, b"data").unwrap();
    let program = cimguard_tests::agent::binary("cmcld").unwrap();
    for (path, expected) in [
        (not_a_device.clone(), "is not a watchdog device"),
        (cluster.dir(1).join("missing"), "cannot open the watchdog"),
    ] {
        let output = std::process::Command::new(&program)
            .arg("--state-dir")
            .arg(cluster.dir(1))
            .arg("--node")
            .arg("n1")
            .arg("--watchdog")
            .arg(&path)
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    }
    assert_eq!(std::fs::read(&not_a_device).unwrap(), b"data");
}
