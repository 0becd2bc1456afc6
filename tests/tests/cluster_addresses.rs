//! Networks in real namespaces (root needed): a package's relocatable address moves with it
//! on failover and neighbours follow it (gratuitous ARP for IPv4, an unsolicited neighbour
//! advertisement for IPv6), a package whose ip_subnet is on no interface fails to start, and
//! a monitored subnet going down with its interface fails its package over. Node K is 10.9N.0.K
//! on ethN (and fd00:90::K on eth0 where a test adds it); the hub namespace, 10.90.0.100 on
//! network 0, is the client.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use cimguard_cluster::packages::SubnetState;
use cimguard_cluster::runtime::daemon::{Reply, Request};
use cimguard_tests::cluster::TestCluster;

const MEMBER_TIMEOUT: Duration = Duration::from_secs(3);
/// Generous bounds for a loaded CI machine; timings are the benchmark's business.
const BOUND: Duration = Duration::from_secs(60);
/// The relocatable address, on network 0 (10.90.0.0/24).
const ADDRESS: &str = "10.90.0.200";
/// The IPv6 relocatable address, on network 0 (fd00:90::/64, which the IPv6 test adds).
const ADDRESS_V6: &str = "fd00:90::200";
/// Where the package's service answers.
const PORT: u16 = 8200;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

/// A service that answers every connection on relocatable address `address` with its node's
/// name. It binds that address, so it also shows the address is there before services start.
fn answering_service(cluster: &TestCluster, address: &str) -> String {
    let path = cluster.path().join("answer.py");
    let family = if address.contains(':') {
        "AF_INET6"
    } else {
        "AF_INET"
    };
    std::fs::write(
        &path,
        format!(
            "import os, socket\n\
             s = socket.socket(socket.{family})\n\
             s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('{address}', {PORT}))\n\
             s.listen()\n\
             while True:\n\
             \x20   c, _ = s.accept()\n\
             \x20   c.sendall((os.environ['SG_NODE'] + '\\n').encode())\n\
             \x20   c.close()\n"
        ),
    )
    .unwrap();
    format!("exec python3 {}", path.display())
}

/// Connects from the hub to `address`; the name the service there answers.
fn ask(cluster: &TestCluster, address: &str) -> Result<String, String> {
    let output = cluster
        .namespaces()
        .hub_command(Path::new("python3"))
        .arg("-c")
        .arg(
            "import socket, sys\n\
             s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)\n\
             print(s.makefile().readline().strip())",
        )
        .arg(address)
        .arg(PORT.to_string())
        .output()
        .map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Whether node `k` has `address` (with its prefix length) on eth0.
fn holds(cluster: &TestCluster, k: usize, address: &str) -> bool {
    cluster
        .namespaces()
        .addresses(k, 0)
        .contains(&address.to_string())
}

fn holds_address(cluster: &TestCluster, k: usize) -> bool {
    holds(cluster, k, &format!("{ADDRESS}/24"))
}

fn address() -> IpAddr {
    ADDRESS.parse().unwrap()
}

/// Starts every node and waits until node 1 sees all of them up.
/// Monitored subnet `subnet`'s state on node `k`, as its monitor last told it.
fn monitored(cluster: &TestCluster, k: usize, subnet: IpAddr) -> Option<SubnetState> {
    cluster
        .status(k)
        .ok()
        .and_then(|s| s.monitored_subnets.get(&subnet).copied())
}

fn formed(cluster: &mut TestCluster, nodes: &[&str]) {
    cluster.start_all();
    let all = names(nodes);
    cluster.wait_for(BOUND, "the cluster forms", |c| {
        c.members(1).is_some_and(|(members, _)| members == all)
    });
}

#[test]
fn a_relocatable_address_moves_with_its_package_and_neighbours_follow_it() {
    let mut cluster = TestCluster::configure_in_namespaces(3, MEMBER_TIMEOUT, "", "");
    let service = answering_service(&cluster, ADDRESS);
    cluster.add_package(
        "pkgA",
        &format!(
            "package_name pkgA\nnode_name n1\nnode_name n2\nnode_name n3\nauto_run yes\n\
             ip_subnet 10.90.0.0\nip_address {ADDRESS}\n\
             service_name answer\nservice_cmd \"{service}\"\n"
        ),
    );
    formed(&mut cluster, &["n1", "n2", "n3"]);
    cluster.wait_for(BOUND, "pkgA answers from n1 on its address", |c| {
        c.owners(1, "pkgA") == Some(names(&["n1"])) && ask(c, ADDRESS).as_deref() == Ok("n1")
    });
    let namespaces = cluster.namespaces();
    assert!(
        holds_address(&cluster, 1),
        "{:?}",
        namespaces.addresses(1, 0)
    );
    assert!(!holds_address(&cluster, 2));
    let n2_mac = namespaces.mac(2, 0);
    assert_eq!(
        namespaces.hub_neighbour(address()),
        Some(namespaces.mac(1, 0))
    );

    // n1 dies without a word. Its address stays on its interface, as on a fenced host that
    // has not rebooted yet; it would still answer ARP for it.
    cluster.signal(1, "KILL");
    cluster.wait_for(BOUND, "n1's daemon is gone", |c| c.exited(1).is_some());
    cluster.wait_for(BOUND, "pkgA runs on n2 with the address", |c| {
        c.owners(2, "pkgA") == Some(names(&["n2"])) && holds_address(c, 2)
    });
    assert!(holds_address(&cluster, 1), "n1 keeps its stale address");
    // Nothing from the hub asked for the address meanwhile: only n2's gratuitous ARP can have
    // moved the hub's entry to n2's MAC address.
    cluster.wait_for(BOUND, "the hub's neighbour entry moves to n2", |c| {
        c.namespaces().hub_neighbour(address()) == Some(n2_mac.clone())
    });
    cluster.wait_for(BOUND, "a new connection reaches n2", |c| {
        ask(c, ADDRESS).as_deref() == Ok("n2")
    });

    // cmhaltpkg takes the address off n2.
    let reply = cluster
        .request(
            2,
            &Request::HaltPackage {
                package: "pkgA".into(),
                node: None,
            },
        )
        .unwrap();
    assert_eq!(reply, Reply::Done);
    cluster.wait_for(BOUND, "pkgA halts and n2 drops the address", |c| {
        c.owners(2, "pkgA") == Some(Vec::new()) && !holds_address(c, 2)
    });
    assert!(cluster.log(2).contains(&format!(
        "package pkgA: ip_address {ADDRESS}/24 removed from eth0"
    )));

    // n1 comes back and removes what its earlier life left.
    cluster.start(1);
    cluster.wait_for(BOUND, "n1 removes its stale address", |c| {
        !holds_address(c, 1)
    });
    cluster.wait_for(BOUND, "n1 says why", |c| {
        c.log(1).contains(&format!(
            "removed {ADDRESS}/24 from eth0: a relocatable address of a package this node does not run"
        ))
    });
}

#[test]
fn a_package_whose_subnet_is_on_no_interface_fails_to_start_and_says_why() {
    let mut cluster = TestCluster::configure_in_namespaces(3, MEMBER_TIMEOUT, "", "");
    cluster.add_package(
        "pkgB",
        "package_name pkgB\nnode_name n1\nauto_run yes\n\
         ip_subnet 10.99.0.0\nip_address 10.99.0.5\n\
         service_name svc\nservice_cmd \"exec sleep 1000\"\n",
    );
    formed(&mut cluster, &["n1", "n2", "n3"]);
    cluster.wait_for(BOUND, "pkgB fails on n1", |c| {
        c.status(1).is_ok_and(|status| {
            status
                .cluster
                .packages
                .iter()
                .find(|p| p.name == "pkgB")
                .is_some_and(|p| p.nodes[0].instance.state.as_str() == "failed")
        })
    });
    let why = "cannot add the relocatable addresses: \
               no interface of this node has an address on ip_subnet 10.99.0.0";
    let script_log = std::fs::read_to_string(cluster.dir(1).join("log/pkgB.log")).unwrap();
    assert!(script_log.contains(why), "{script_log}");
    // cmcld's log says so too (written as the failure is reported, which the status may
    // show first).
    let said = format!("package pkgB: {why}");
    cluster.wait_for(BOUND, "n1's log saying why pkgB failed", |c| {
        c.log(1).contains(&said)
    });
    // Its service never started.
    assert!(!script_log.contains("service svc started"), "{script_log}");
}

#[test]
fn a_monitored_subnet_going_down_fails_its_package_over_and_the_status_follows_the_link() {
    let mut cluster = TestCluster::configure_in_namespaces(3, MEMBER_TIMEOUT, "", "");
    cluster.add_package(
        "pkgC",
        "package_name pkgC\nnode_name n1\nnode_name n2\nauto_run yes\n\
         monitored_subnet 10.91.0.0\n\
         service_name svc\nservice_cmd \"exec sleep 1000\"\n",
    );
    formed(&mut cluster, &["n1", "n2", "n3"]);
    let subnet: IpAddr = "10.91.0.0".parse().unwrap();
    let monitor = |c: &TestCluster, k: usize| monitored(c, k, subnet);
    // The subnet's status on node `on` for pkgC, as node `k` shows it.
    let row = |c: &TestCluster, k: usize, on: &str| {
        let status = c.status(k).ok()?;
        let package = status.cluster.packages.iter().find(|p| p.name == "pkgC")?;
        let node = package.nodes.iter().find(|n| n.name == on)?;
        let subnet = node.subnets.iter().find(|s| s.subnet == subnet)?;
        Some((subnet.status.as_str().to_string(), node.switching))
    };
    cluster.wait_for(BOUND, "pkgC runs on n1, which sees 10.91.0.0 up", |c| {
        monitor(c, 1) == Some(SubnetState::Up) && c.owners(1, "pkgC") == Some(names(&["n1"]))
    });

    // Down on n1 only (its first heartbeat network keeps it in the cluster): the package
    // fails there and moves to n2; every node shows the subnet down on n1.
    cluster.namespaces().set_link(1, 1, false).unwrap();
    cluster.wait_for(BOUND, "pkgC fails over to n2", |c| {
        c.owners(2, "pkgC") == Some(names(&["n2"]))
    });
    cluster.wait_for(BOUND, "n1 and n2 show 10.91.0.0 down on n1", |c| {
        monitor(c, 1) == Some(SubnetState::Down)
            && row(c, 1, "n1") == Some(("down".into(), true))
            && row(c, 2, "n1") == Some(("down".into(), true))
    });
    assert_eq!(monitor(&cluster, 2), Some(SubnetState::Up));
    assert_eq!(row(&cluster, 2, "n2"), Some(("up".into(), true)));
    let log = cluster.log(1);
    assert!(log.contains("monitored subnet 10.91.0.0 went down on this node"));
    // The notices in words, under their event IDs.
    assert!(
        log.contains("NetworkInterfaceDown: monitored subnet 10.91.0.0 is down on node n1"),
        "{log}"
    );
    assert!(
        log.contains(
            "PackageFailed: package pkgC failed on node n1: monitored subnet 10.91.0.0 went down"
        ),
        "{log}"
    );
    let line = cluster.status(2).unwrap().cluster.to_line();
    assert!(
        line.contains("package:pkgC|node:n1|subnet:10.91.0.0|status=down\n"),
        "{line}"
    );
    assert!(
        line.contains("package:pkgC|subnet:10.91.0.0|status=up\n"),
        "{line}"
    );

    // Up again: the status follows; the package stays on n2 (failback_policy manual).
    cluster.namespaces().set_link(1, 1, true).unwrap();
    cluster.wait_for(BOUND, "n1 and n2 show 10.91.0.0 up on n1 again", |c| {
        monitor(c, 1) == Some(SubnetState::Up)
            && row(c, 1, "n1") == Some(("up".into(), true))
            && row(c, 2, "n1") == Some(("up".into(), true))
    });
    assert!(
        cluster
            .log(1)
            .contains("monitored subnet 10.91.0.0 is up again on node n1"),
        "{}",
        cluster.log(1)
    );
    assert_eq!(cluster.owners(2, "pkgC"), Some(names(&["n2"])));
    // The address stays on a downed interface: only the link state made the difference.
    assert!(cluster
        .namespaces()
        .addresses(1, 1)
        .contains(&"10.91.0.1/24".to_string()));
}

/// Cross-subnet: n1 has 10.95.0.0/24 and n2 has 10.96.0.0/24, each on its second network's
/// interface. A package monitoring both as PARTIAL runs on either node, each watching the
/// subnet it has, and fails over when n1's goes down; a package monitoring 10.95.0.0 FULL
/// stays off n2, which does not have it, though n2 comes first in its node list.
#[test]
fn partial_monitored_subnets_are_watched_only_where_they_are_configured() {
    let mut cluster = TestCluster::configure_in_namespaces(3, MEMBER_TIMEOUT, "", "");
    let namespaces = cluster.namespaces();
    for (k, address) in [(1, "10.95.0.1/24"), (2, "10.96.0.2/24")] {
        namespaces
            .ip(
                &namespaces.node(k),
                &["addr", "add", address, "dev", "eth1"],
            )
            .unwrap();
    }
    cluster.add_package(
        "pkgP",
        "package_name pkgP\nnode_name n1\nnode_name n2\nauto_run yes\n\
         monitored_subnet 10.95.0.0\nmonitored_subnet_access PARTIAL\n\
         monitored_subnet 10.96.0.0\nmonitored_subnet_access PARTIAL\n\
         service_name svc\nservice_cmd \"exec sleep 1000\"\n",
    );
    cluster.add_package(
        "pkgF",
        "package_name pkgF\nnode_name n2\nnode_name n1\nauto_run yes\n\
         monitored_subnet 10.95.0.0\n\
         service_name svc\nservice_cmd \"exec sleep 1000\"\n",
    );
    formed(&mut cluster, &["n1", "n2", "n3"]);
    let (ours, theirs): (IpAddr, IpAddr) =
        ("10.95.0.0".parse().unwrap(), "10.96.0.0".parse().unwrap());
    let monitor = monitored;
    // The subnets shown for pkgP on node `on`, as n3 sees them.
    let rows = |c: &TestCluster, on: &str| {
        let status = c.status(3).ok()?;
        let package = status.cluster.packages.iter().find(|p| p.name == "pkgP")?;
        let node = package.nodes.iter().find(|n| n.name == on)?;
        Some(
            node.subnets
                .iter()
                .map(|s| (s.subnet, s.status.as_str().to_string()))
                .collect::<Vec<_>>(),
        )
    };
    cluster.wait_for(
        BOUND,
        "pkgP on n1, pkgF on n1 (n2 lacks its FULL subnet)",
        |c| {
            c.owners(3, "pkgP") == Some(names(&["n1"]))
                && c.owners(3, "pkgF") == Some(names(&["n1"]))
        },
    );
    assert_eq!(monitor(&cluster, 1, ours), Some(SubnetState::Up));
    assert_eq!(monitor(&cluster, 1, theirs), Some(SubnetState::Absent));
    assert_eq!(monitor(&cluster, 2, ours), Some(SubnetState::Absent));
    assert_eq!(monitor(&cluster, 2, theirs), Some(SubnetState::Up));
    // Each node's subnets reach n3 with its heartbeats.
    cluster.wait_for(BOUND, "n3 shows each node's own subnet only", |c| {
        rows(c, "n1") == Some(vec![(ours, "up".to_string())])
            && rows(c, "n2") == Some(vec![(theirs, "up".to_string())])
    });
    assert!(cluster
        .log(2)
        .contains("monitored subnet 10.95.0.0 is not configured (no interface has an address on it) on this node"));

    // n1's subnet goes down: pkgP fails over to n2, which watches only its own; pkgF has
    // nowhere to go.
    cluster.namespaces().set_link(1, 1, false).unwrap();
    cluster.wait_for(BOUND, "pkgP fails over to n2", |c| {
        c.owners(3, "pkgP") == Some(names(&["n2"]))
    });
    cluster.wait_for(BOUND, "pkgF is down", |c| {
        c.owners(3, "pkgF") == Some(Vec::new())
    });
    assert_eq!(monitor(&cluster, 1, ours), Some(SubnetState::Down));
    assert_eq!(rows(&cluster, "n1"), Some(vec![(ours, "down".to_string())]));
}

#[test]
fn an_ipv6_relocatable_address_moves_and_neighbours_follow_the_advertisement() {
    let mut cluster = TestCluster::configure_in_namespaces(3, MEMBER_TIMEOUT, "", "");
    // IPv6 on network 0: fd00:90::K on each node, fd00:90::100 on the hub (no duplicate
    // address detection: the test's own addresses are unique).
    let namespaces = cluster.namespaces();
    let hub = namespaces.hub_namespace();
    namespaces
        .ip(
            &hub,
            &["addr", "add", "fd00:90::100/64", "dev", "br0", "nodad"],
        )
        .unwrap();
    for k in 1..=3 {
        let node = namespaces.node(k);
        let own = format!("fd00:90::{k}/64");
        namespaces
            .ip(&node, &["addr", "add", &own, "dev", "eth0", "nodad"])
            .unwrap();
    }
    let service = answering_service(&cluster, ADDRESS_V6);
    cluster.add_package(
        "pkgA",
        &format!(
            "package_name pkgA\nnode_name n1\nnode_name n2\nnode_name n3\nauto_run yes\n\
             ip_subnet fd00:90::\nip_address {ADDRESS_V6}\n\
             service_name answer\nservice_cmd \"{service}\"\n"
        ),
    );
    formed(&mut cluster, &["n1", "n2", "n3"]);
    let relocatable = format!("{ADDRESS_V6}/64");
    cluster.wait_for(BOUND, "pkgA answers from n1 on its IPv6 address", |c| {
        c.owners(1, "pkgA") == Some(names(&["n1"]))
            && holds(c, 1, &relocatable)
            && ask(c, ADDRESS_V6).as_deref() == Ok("n1")
    });
    let namespaces = cluster.namespaces();
    let address: IpAddr = ADDRESS_V6.parse().unwrap();
    let n2_mac = namespaces.mac(2, 0);
    assert_eq!(
        namespaces.hub_neighbour(address),
        Some(namespaces.mac(1, 0))
    );

    cluster.signal(1, "KILL");
    cluster.wait_for(BOUND, "n1's daemon is gone", |c| c.exited(1).is_some());
    cluster.wait_for(BOUND, "pkgA runs on n2 with the IPv6 address", |c| {
        c.owners(2, "pkgA") == Some(names(&["n2"])) && holds(c, 2, &relocatable)
    });
    assert!(
        holds(&cluster, 1, &relocatable),
        "n1 keeps its stale address"
    );
    // Only n2's unsolicited neighbour advertisement can have moved the hub's entry.
    cluster.wait_for(BOUND, "the hub's neighbour entry moves to n2", |c| {
        c.namespaces().hub_neighbour(address) == Some(n2_mac.clone())
    });
    cluster.wait_for(BOUND, "a new connection reaches n2", |c| {
        ask(c, ADDRESS_V6).as_deref() == Ok("n2")
    });
    let reply = cluster
        .request(
            2,
            &Request::HaltPackage {
                package: "pkgA".into(),
                node: None,
            },
        )
        .unwrap();
    assert_eq!(reply, Reply::Done);
    cluster.wait_for(BOUND, "pkgA halts and n2 drops the address", |c| {
        c.owners(2, "pkgA") == Some(Vec::new()) && !holds(c, 2, &relocatable)
    });
}

#[test]
fn a_detached_package_keeps_its_address_when_the_daemon_starts_again() {
    let mut cluster = TestCluster::configure_in_namespaces(3, MEMBER_TIMEOUT, "", "");
    let service = answering_service(&cluster, ADDRESS);
    cluster.add_package(
        "pkgA",
        &format!(
            "package_name pkgA\nnode_name n1\nnode_name n2\nnode_name n3\nauto_run yes\n\
             ip_subnet 10.90.0.0\nip_address {ADDRESS}\n\
             service_name answer\nservice_cmd \"{service}\"\n"
        ),
    );
    formed(&mut cluster, &["n1", "n2", "n3"]);
    cluster.wait_for(BOUND, "pkgA answers from n1 on its address", |c| {
        c.owners(1, "pkgA") == Some(names(&["n1"])) && ask(c, ADDRESS).as_deref() == Ok("n1")
    });

    // cmhaltnode -d: the daemon leaves, the package runs on, detached, with its address.
    let reply = cluster
        .request(
            1,
            &Request::HaltNode {
                force: false,
                detach: true,
                node: None,
            },
        )
        .unwrap();
    assert_eq!(reply, Reply::Done);
    cluster.wait_for(BOUND, "n1's daemon ends", |c| c.exited(1).is_some());
    assert!(holds_address(&cluster, 1));
    assert_eq!(ask(&cluster, ADDRESS).as_deref(), Ok("n1"));

    // Started again, the daemon keeps the address of the package it re-attaches: its clean
    // start is over once it answers.
    cluster.start(1);
    cluster.wait_for(BOUND, "n1's new life answers", |c| c.status(1).is_ok());
    assert!(holds_address(&cluster, 1), "{}", cluster.log(1));
    assert!(!cluster.log(1).contains(&format!("removed {ADDRESS}/24")));
    cluster.wait_for(BOUND, "n1 re-attaches pkgA", |c| {
        c.owners(1, "pkgA") == Some(names(&["n1"]))
            && c.status(1).is_ok_and(|status| {
                status
                    .cluster
                    .packages
                    .iter()
                    .find(|p| p.name == "pkgA")
                    .is_some_and(|p| p.nodes[0].instance.state.as_str() == "running")
            })
    });
    assert_eq!(ask(&cluster, ADDRESS).as_deref(), Ok("n1"));
}
