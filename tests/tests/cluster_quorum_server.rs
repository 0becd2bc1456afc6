//! Two-node clusters whose tie-breaker is a real `cmqsd` in the namespaces' hub: a split
//! leaves exactly one survivor, the first to be granted the lock (scenario 10 of cluster.md);
//! the quorum server going down changes no membership and is reported (12); a split while it
//! is down halts both halves (13).

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cimguard_cluster::core::QuorumServerRefusal as Refusal;
use cimguard_cluster::runtime::daemon::{FileText, Reply, Request};
use cimguard_cluster::status::Health;
use cimguard_tests::agent::binary;
use cimguard_tests::cluster::TestCluster;

const MEMBER_TIMEOUT: Duration = Duration::from_secs(3);
const BOUND: Duration = Duration::from_secs(60);

/// A quorum server in the hub namespace, killed when dropped.
struct QuorumServer(Child);

impl Drop for QuorumServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Configures two nodes using a quorum server in the hub, starts the server (authorizing
/// both nodes) and gives each node its authority; the daemons are not started.
fn two_nodes_with_a_quorum_server() -> (TestCluster, QuorumServer) {
    two_nodes_with_a_quorum_server_authorizing(&[1, 2])
}

/// The same, the server's authorization file listing only the nodes `authorized`.
fn two_nodes_with_a_quorum_server_authorizing(authorized: &[usize]) -> (TestCluster, QuorumServer) {
    // QS_POLLING_INTERVAL at its minimum, 10 s.
    let cluster = TestCluster::configure_in_namespaces(
        2,
        MEMBER_TIMEOUT,
        "QS_HOST 10.90.0.100\nQS_POLLING_INTERVAL 10000000\n",
        "",
    );
    let ns = cluster.namespaces();
    let dir = cluster.path().join("qs");
    std::fs::create_dir_all(&dir).unwrap();
    let authfile = dir.join("qs_authfile");
    let lines: String = authorized
        .iter()
        .map(|&k| format!("{}\n", ns.address(k, 0)))
        .collect();
    std::fs::write(&authfile, lines).unwrap();
    let program = binary("cmqsd").unwrap_or_else(|e| panic!("{e}"));
    let log = std::fs::File::create(dir.join("cmqsd.log")).unwrap();
    let mut child = ns
        .hub_command(&program)
        .arg("--listen")
        .arg(format!("{}:1238", ns.hub_address()))
        .arg("--authfile")
        .arg(&authfile)
        .arg("--tls-dir")
        .arg(dir.join("tls"))
        .arg("--name")
        .arg(ns.hub_address().to_string())
        // A server that has never granted anything may grant at once.
        .arg("--startup-quiet")
        .arg("0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("cmqsd starts");
    let stdout = child.stdout.take().unwrap();
    let (lines, listening) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let server = QuorumServer(child);
    loop {
        let line = listening
            .recv_timeout(Duration::from_secs(30))
            .expect("cmqsd says it listens");
        if line.starts_with("listening") {
            break;
        }
    }
    for k in 1..=2 {
        std::fs::copy(dir.join("tls/ca.pem"), cluster.dir(k).join("qs-ca.pem")).unwrap();
    }
    (cluster, server)
}

/// `cmquerycl -n THIS_HOST -q 10.90.0.100` run in node `k`'s namespace, trusting the
/// authority node `k` was given; the file goes to the node's directory.
fn querycl(cluster: &TestCluster, k: usize) -> std::process::Output {
    let program = binary("cmquerycl").unwrap_or_else(|e| panic!("{e}"));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    cluster
        .namespaces()
        .command(k, &program)
        .args(["-n", host.trim(), "-q", "10.90.0.100", "-C"])
        .arg(cluster.dir(k).join("queried.ascii"))
        .env("CIMGUARD_QS_CA", cluster.dir(k).join("qs-ca.pem"))
        .output()
        .expect("cmquerycl runs")
}

fn formed(cluster: &mut TestCluster) -> u64 {
    cluster.start_all();
    let both = vec!["n1".to_string(), "n2".to_string()];
    let mut epoch = 0;
    cluster.wait_for(BOUND, "two nodes form", |c| {
        match (c.members(1), c.members(2)) {
            (Some(a), Some(b)) if a == b && a.0 == both => {
                epoch = a.1;
                true
            }
            _ => false,
        }
    });
    epoch
}

/// The quorum server's status as node `k` shows it ("up", "down", "unknown").
fn quorum_server_status(cluster: &TestCluster, k: usize) -> Option<String> {
    let status = cluster.status(k).ok()?;
    match status.cluster.lock {
        cimguard_cluster::status::LockRow::QuorumServer { status, .. } => {
            Some(status.as_str().to_string())
        }
        _ => None,
    }
}

/// The quorum server's status and state lines of node `k`'s `cmviewcl -f line`.
fn quorum_server_lines(cluster: &TestCluster, k: usize) -> Option<(String, String)> {
    let line = cluster.status(k).ok()?.cluster.to_line();
    let value = |what: &str| {
        line.lines()
            .find(|l| l.starts_with("quorum_server:") && l.contains(&format!("|{what}=")))
            .and_then(|l| l.split_once('=').map(|(_, v)| v.to_owned()))
    };
    Some((value("status")?, value("state")?))
}

/// A node the quorum server's authorization file does not list sees it up but in state
/// `access denied` (serviceguard.md 4.2); the listed node sees it running.
#[test]
fn a_node_missing_from_the_authorization_file_sees_access_denied() {
    let (mut cluster, _server) = two_nodes_with_a_quorum_server_authorizing(&[1]);
    // cmquerycl -q asks the server first (serviceguard.md 4.2): it answers n1's host, and
    // refuses n2's.
    let output = querycl(&cluster, 1);
    assert!(output.status.success(), "{output:?}");
    let written = std::fs::read_to_string(cluster.dir(1).join("queried.ascii")).unwrap();
    assert!(written.contains("QS_HOST"), "{written}");
    let output = querycl(&cluster, 2);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && said.contains("refuses") && said.contains("access denied"),
        "{output:?}"
    );
    assert!(!cluster.dir(2).join("queried.ascii").exists());
    formed(&mut cluster);
    cluster.wait_for(BOUND, "n2 sees access denied, n1 running", |c| {
        quorum_server_lines(c, 2) == Some(("up".into(), "access denied".into()))
            && quorum_server_lines(c, 1) == Some(("up".into(), "running".into()))
    });
    // Each node shows the other's view too (cmviewcl -v: under each node), as told in its
    // heartbeats.
    let seen = |c: &TestCluster, observer: usize| -> Option<Vec<(Health, Option<Refusal>)>> {
        let status = c.status(observer).ok()?;
        status
            .cluster
            .nodes
            .iter()
            .map(|n| n.lock.as_ref().map(|l| (l.status, l.refusal)))
            .collect()
    };
    let expected = vec![
        (Health::Up, None),
        (Health::Up, Some(Refusal::AccessDenied)),
    ];
    cluster.wait_for(BOUND, "both nodes show both views", |c| {
        seen(c, 1).as_ref() == Some(&expected) && seen(c, 2).as_ref() == Some(&expected)
    });
    let verbose = cimguard_cluster::view::table(
        &cluster.status(1).unwrap().cluster,
        &cimguard_cluster::view::Selection {
            verbose: true,
            ..Default::default()
        },
    );
    let blocks: Vec<&str> = verbose
        .lines()
        .filter(|l| l.trim_start().starts_with("10.90.0.100"))
        .collect();
    assert_eq!(blocks.len(), 2, "{verbose}");
    assert!(blocks[0].ends_with("running"), "{verbose}");
    assert!(blocks[1].ends_with("access denied"), "{verbose}");
}

#[test]
fn scenario_10_a_two_node_split_leaves_the_node_the_quorum_server_granted() {
    let (mut cluster, _server) = two_nodes_with_a_quorum_server();
    formed(&mut cluster);
    cluster.wait_for(BOUND, "both see the quorum server up", |c| {
        (1..=2).all(|k| quorum_server_status(c, k).as_deref() == Some("up"))
    });
    cluster.partition(&[&[1], &[2]]);
    cluster.wait_for(BOUND, "one node is fenced", |c| {
        c.exited(1).is_some() || c.exited(2).is_some()
    });
    let winner = if cluster.exited(1).is_some() { 2 } else { 1 };
    cluster.wait_for(BOUND, "the winner runs alone", |c| {
        c.members(winner)
            .is_some_and(|(members, _)| members == vec![format!("n{winner}")])
    });
    std::thread::sleep(2 * MEMBER_TIMEOUT);
    assert!(
        cluster.exited(winner).is_none(),
        "both lost\n{}",
        cluster.logs()
    );
    // The survivor is the node the quorum server granted: its membership carries the lock
    // it won; the other was refused it and reset itself.
    let loser = 3 - winner;
    let won = cluster
        .log(winner)
        .lines()
        .any(|line| line.contains("MembershipChanged") && line.contains("locks: [Epoch("));
    assert!(won, "{}", cluster.log(winner));
    // It says why before it fences: the server gave the lock to the other.
    let log = cluster.log(loser);
    assert!(
        log.contains("LockNotWon") && log.contains("HeldByOther") && log.contains("LockLost"),
        "{log}"
    );
}

#[test]
fn scenarios_12_and_13_a_quorum_server_down_is_reported_and_a_split_then_halts_both() {
    let (mut cluster, server) = two_nodes_with_a_quorum_server();
    let epoch = formed(&mut cluster);
    cluster.wait_for(BOUND, "both see the quorum server up", |c| {
        (1..=2).all(|k| quorum_server_status(c, k).as_deref() == Some("up"))
    });
    // cmcheckconf -C and cmapplyconf -C of the cluster file check that the quorum server
    // answers (serviceguard.md 4.2): now it does.
    let file = FileText {
        name: "cluster.ascii".into(),
        text: std::fs::read_to_string(cluster.dir(1).join("cluster.ascii")).unwrap(),
    };
    let check = |cluster: &TestCluster| {
        cluster.request(
            1,
            &Request::CheckApply {
                cluster: Some(file.clone()),
                packages: Some(Vec::new()),
            },
        )
    };
    assert_eq!(check(&cluster), Ok(Reply::Done));
    drop(server);
    // With it down, both fail at once, saying why; the cluster runs on.
    match check(&cluster) {
        Ok(Reply::Refused(why)) => assert!(
            why.contains("the quorum server 10.90.0.100 does not answer n1"),
            "{why}"
        ),
        other => panic!("cmcheckconf -C with the quorum server down: {other:?}"),
    }
    let applied = cluster.request(
        1,
        &Request::Apply {
            cluster: Some(file.clone()),
            packages: Some(Vec::new()),
            base: None,
            base_number: None,
        },
    );
    assert!(
        matches!(&applied, Ok(Reply::Refused(why)) if why.contains("does not answer")),
        "{applied:?}"
    );
    // So does cmquerycl -q.
    let output = querycl(&cluster, 1);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && said.contains("the quorum server 10.90.0.100 does not answer"),
        "{output:?}"
    );
    // Noticed at the next poll (QS_POLLING_INTERVAL 10 s); the cluster runs on undisturbed.
    cluster.wait_for(BOUND, "both see the quorum server down", |c| {
        (1..=2).all(|k| quorum_server_status(c, k).as_deref() == Some("down"))
    });
    let both = vec!["n1".to_string(), "n2".to_string()];
    for k in 1..=2 {
        assert_eq!(cluster.members(k), Some((both.clone(), epoch)), "n{k}");
        // The event raised (an alarm for the operator).
        assert!(
            cluster.log(k).contains("QuorumServerUnreachable"),
            "n{k}: {}",
            cluster.log(k)
        );
    }
    // Scenario 13: half and no tie-breaker: both halves halt.
    cluster.partition(&[&[1], &[2]]);
    cluster.wait_for(BOUND, "both nodes halt", |c| {
        c.exited(1).is_some() && c.exited(2).is_some()
    });
}
