//! Packages under the node daemon, as real processes: a service that dies is restarted, then
//! its package fails over; a node killed with kill -9 takes its services with it (the safety
//! timer kills their process groups) and the package starts on an adoptive node; a run
//! script that fails moves the package on; a halt script that hangs keeps it from starting
//! anywhere else. Scenarios 1 and 6 (with a package), 35, 36 and 37 of cluster.md.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use cimguard_cluster::runtime::daemon::{Reply, Request};
use cimguard_tests::cluster::TestCluster;

const MEMBER_TIMEOUT: Duration = Duration::from_secs(3);
/// Generous bounds for a loaded CI machine; timings are the benchmark's business.
const BOUND: Duration = Duration::from_secs(60);

/// The service: writes its pid in its node's state directory, then sleeps.
const SERVICE: &str = "service_name svc\nservice_cmd \"echo $$ > $SGRUN/svc.pid; exec sleep 1000\"\nservice_halt_timeout 2\n";

fn package(restarts: &str, extra: &str) -> String {
    format!(
        "package_name pkgA\npackage_type failover\nnode_name n1\nnode_name n2\nnode_name n3\n\
         auto_run yes\n{SERVICE}service_restart {restarts}\n{extra}"
    )
}

fn pid(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join("svc.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The scheduling policy of process `pid`'s main thread (0 normal, 1 FIFO, 2 RR).
fn policy(pid: i32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    // Field 41 of stat; `rest` starts at field 3.
    rest.split_whitespace().nth(38)?.parse().ok()
}

fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
}

/// Alive and not a zombie.
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|end| stat[end + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

/// Starts the cluster and waits until pkgA runs on n1 with its service up; the service's pid.
fn running_on_n1(cluster: &mut TestCluster) -> i32 {
    cluster.start_all();
    let mut found = 0;
    cluster.wait_for(BOUND, "pkgA runs on n1", |c| {
        let everyone = (1..=3).all(|k| c.owners(k, "pkgA") == Some(names(&["n1"])));
        match pid(&c.dir(1)) {
            Some(p) if everyone && alive(p) => {
                found = p;
                true
            }
            _ => false,
        }
    });
    found
}

/// pkgA's row on node `k`'s view, for node `node` (0-based): (instance state, switching,
/// restarts of the service).
fn instance(cluster: &TestCluster, k: usize, node: usize) -> (String, bool, u32) {
    let status = cluster.status(k).unwrap();
    let row = status
        .cluster
        .packages
        .iter()
        .find(|p| p.name == "pkgA")
        .unwrap();
    let there = &row.nodes[node];
    let restarts = there.services.first().map_or(0, |s| s.condition.restarts);
    (
        there.instance.state.as_str().to_string(),
        there.switching,
        restarts,
    )
}

#[test]
fn a_dead_service_is_restarted_then_its_package_fails_over() {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.add_package("pkgA", &package("1", ""));
    let first = running_on_n1(&mut cluster);
    // The daemon's timing thread may run real-time; its services do not.
    assert_eq!(policy(first), Some(0), "SCHED_OTHER");
    let daemon = cluster.pid(1) as i32;
    let realtime = cluster.status(1).unwrap().realtime;
    if realtime.is_ok() {
        assert_eq!(policy(daemon), Some(2), "SCHED_RR");
    }

    kill(Pid::from_raw(first), Signal::SIGKILL).unwrap();
    let mut second = 0;
    cluster.wait_for(BOUND, "the service is restarted on n1", |c| {
        match pid(&c.dir(1)) {
            Some(p) if p != first && alive(p) => {
                second = p;
                true
            }
            _ => false,
        }
    });
    cluster.wait_for(BOUND, "n1 counts the restart", |c| instance(c, 1, 0).2 == 1);
    assert_eq!(cluster.owners(2, "pkgA"), Some(names(&["n1"])));

    // Restarts exhausted: the package fails on n1 and starts on n2, the next node.
    kill(Pid::from_raw(second), Signal::SIGKILL).unwrap();
    cluster.wait_for(BOUND, "pkgA fails over to n2", |c| {
        (1..=3).all(|k| c.owners(k, "pkgA") == Some(names(&["n2"])))
            && pid(&c.dir(2)).is_some_and(alive)
    });
    // It failed on n1, and node switching to n1 is disabled (serviceguard.md 6.1).
    cluster.wait_for(BOUND, "n1 failed and switching to it is off", |c| {
        let (state, switching, _) = instance(c, 2, 0);
        state == "failed" && !switching
    });
    // n1's package log tells it in order: each end of the service, its restart, the halt.
    let log = std::fs::read_to_string(cluster.dir(1).join("log/pkgA.log")).unwrap();
    let at = |what: &str| log.match_indices(what).map(|(i, _)| i).collect::<Vec<_>>();
    let ended = at("service svc was killed by signal SIGKILL");
    let restarted = at("service svc started (process group");
    let halting = at(": halting");
    assert!(
        ended.len() == 2
            && restarted.len() == 2
            && ended[0] < restarted[1]
            && halting.first().is_some_and(|h| ended[1] < *h),
        "{log}"
    );
}

/// Three nodes with pkgA on n1, n2, n3 whose service records a double start
/// ([`TestCluster::exclusive_service`]).
fn with_exclusive_package() -> TestCluster {
    let cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    let exclusive = cluster.exclusive_service("pkgA");
    cluster.add_package(
        "pkgA",
        &format!(
            "package_name pkgA\npackage_type failover\nnode_name n1\nnode_name n2\n\
             node_name n3\nauto_run yes\nservice_name svc\nservice_cmd \"{exclusive}\"\n\
             service_halt_timeout 2\n"
        ),
    );
    cluster
}

/// Waits until n2 and n3 see pkgA on n2 and its service runs there.
fn starts_on_n2(cluster: &mut TestCluster) {
    cluster.wait_for(BOUND, "pkgA starts on n2", |c| {
        (2..=3).all(|k| c.owners(k, "pkgA") == Some(names(&["n2"])))
            && pid(&c.dir(2)).is_some_and(alive)
    });
}

#[test]
fn a_killed_node_takes_its_services_along_and_the_package_moves() {
    let mut cluster = with_exclusive_package();
    let service = running_on_n1(&mut cluster);
    let epoch = cluster.members(2).unwrap().1;
    cluster.signal(1, "KILL");
    // The daemon's safety timer kills the service's process group at once.
    cluster.wait_for(
        Duration::from_secs(10),
        "n1's service is killed by the fence",
        |_| !alive(service),
    );
    starts_on_n2(&mut cluster);
    // Never on two nodes at once, and the survivors re-formed once.
    assert_eq!(cluster.double_starts("pkgA"), Vec::<String>::new());
    for k in 2..=3 {
        let (members, after) = cluster.members(k).unwrap();
        assert_eq!(members, names(&["n2", "n3"]));
        assert!(after > epoch);
        assert_eq!(
            cluster.log(k).matches("MembershipChanged").count(),
            2,
            "n{k}"
        );
    }
}

/// Scenario 5 with a package: n1's daemon frozen (SIGSTOP) cannot pet its safety timer, so
/// its watcher kills it and its service; the package starts on n2 only after that, never
/// on two nodes at once, and the frozen daemon never acts again.
#[test]
fn a_frozen_node_loses_its_package_only_after_its_safety_timer_killed_it() {
    let mut cluster = with_exclusive_package();
    let service = running_on_n1(&mut cluster);
    cluster.signal(1, "STOP");
    starts_on_n2(&mut cluster);
    // Killed by then (at most a zombie nobody reaped yet).
    assert!(!running(service));
    cluster.wait_for(BOUND, "n1 is killed by its safety timer", |c| {
        c.exited(1).is_some_and(|status| status.signal() == Some(9))
    });
    assert_eq!(cluster.double_starts("pkgA"), Vec::<String>::new());
}

#[test]
fn a_service_with_fail_fast_resets_its_node_and_the_package_moves() {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.add_package("pkgA", &package("none", "service_fail_fast_enabled yes\n"));
    let service = running_on_n1(&mut cluster);
    kill(Pid::from_raw(service), Signal::SIGKILL).unwrap();
    // Scenario 35 with service_fail_fast: the node is halted (reset) at once.
    cluster.wait_for(BOUND, "n1 resets itself", |c| {
        c.exited(1).is_some_and(|status| status.signal() == Some(9))
    });
    assert!(cluster.log(1).contains("FailFast"), "{}", cluster.log(1));
    starts_on_n2(&mut cluster);
}

#[test]
fn a_run_script_that_fails_moves_the_package_to_the_next_node() {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    let script = cluster.script(
        "control.sh",
        "[ \"$1\" = start ] && [ \"$SG_NODE\" = n2 ] && exit 1\nexit 0",
    );
    cluster.add_package(
        "pkgA",
        &package("none", &format!("external_script {}\n", script.display())),
    );
    let service = running_on_n1(&mut cluster);
    kill(Pid::from_raw(service), Signal::SIGKILL).unwrap();
    cluster.wait_for(BOUND, "pkgA ends on n3", |c| {
        (1..=3).all(|k| c.owners(k, "pkgA") == Some(names(&["n3"])))
            && pid(&c.dir(3)).is_some_and(alive)
    });
    // The start failed on n2: failed there, node switching disabled; n2 never ran it.
    cluster.wait_for(BOUND, "n2 failed and switching to it is off", |c| {
        instance(c, 3, 1) == ("failed".to_string(), false, 0)
    });
    assert_eq!(pid(&cluster.dir(2)), None);
    // Until cleared: cmmodpkg -e -n n2 pkgA makes n2 eligible again.
    let enable = Request::EnablePackage {
        package: "pkgA".into(),
        node: Some("n2".into()),
    };
    assert_eq!(cluster.request(1, &enable), Ok(Reply::Done));
    cluster.wait_for(BOUND, "switching to n2 is on again", |c| {
        (1..=3).all(|k| instance(c, k, 1).1)
    });
}

#[test]
fn a_halt_script_that_hangs_keeps_the_package_from_starting_elsewhere() {
    halt_script_fails_on_n1("exec sleep 1000");
}

#[test]
fn a_halt_script_that_fails_keeps_the_package_from_starting_elsewhere() {
    halt_script_fails_on_n1("exit 1");
}

/// Scenario 37: n1's halt script does `how` (hangs, or exits non-zero) when pkgA's service
/// dies there: halt_aborted, switching to n1 off, and the package starts nowhere else.
fn halt_script_fails_on_n1(how: &str) {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    let script = cluster.script(
        "control.sh",
        &format!("[ \"$1\" = stop ] && [ \"$SG_NODE\" = n1 ] && {how}\nexit 0"),
    );
    cluster.add_package(
        "pkgA",
        &package(
            "none",
            &format!(
                "external_script {}\nhalt_script_timeout 2\n",
                script.display()
            ),
        ),
    );
    let service = running_on_n1(&mut cluster);
    kill(Pid::from_raw(service), Signal::SIGKILL).unwrap();
    // The halt script is killed at its timeout; the package may still hold resources on n1,
    // so it starts nowhere else.
    cluster.wait_for(BOUND, "pkgA's halt times out or fails on n1", |c| {
        let (state, _, _) = instance(c, 1, 0);
        state == "halt_aborted" || state == "failed"
    });
    let (state, switching, _) = instance(&cluster, 1, 0);
    assert_eq!((state.as_str(), switching), ("halt_aborted", false));
    std::thread::sleep(3 * MEMBER_TIMEOUT);
    for k in 1..=3 {
        // Still held by n1 (partially down there), nowhere else.
        let owners = cluster.owners(k, "pkgA").expect("up");
        assert!(
            owners.iter().all(|n| n == "n1"),
            "node n{k} sees {owners:?}"
        );
    }
    assert_eq!(pid(&cluster.dir(2)), None);
    assert_eq!(pid(&cluster.dir(3)), None);
}

#[test]
fn a_service_that_dies_as_it_starts_fails_its_package_over() {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    // On n1 the service exits at once, before the start is even reported.
    cluster.add_package(
        "pkgA",
        "package_name pkgA\nnode_name n1\nnode_name n2\nauto_run yes\nservice_name svc\n\
         service_cmd \"[ $SG_NODE = n1 ] && exit 3; echo $$ > $SGRUN/svc.pid; exec sleep 1000\"\n\
         service_restart none\n",
    );
    cluster.start_all();
    cluster.wait_for(BOUND, "pkgA fails on n1 and runs on n2", |c| {
        (1..=3).all(|k| c.owners(k, "pkgA") == Some(names(&["n2"])))
            && pid(&c.dir(2)).is_some_and(alive)
    });
    cluster.wait_for(BOUND, "n1 failed", |c| instance(c, 1, 0).0 == "failed");
}

#[test]
fn a_generic_resource_set_down_fails_the_package_over_and_up_lets_it_run() {
    use cimguard_cluster::packages::ResourceValue;
    use cimguard_cluster::runtime::daemon::{Reply, Request};

    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.add_package(
        "pkgA",
        &package(
            "0",
            "generic_resource_name sfm_disk\ngeneric_resource_evaluation_type during_package_start\n",
        ),
    );
    cluster.start_all();
    // A simple resource is unknown until set: the package waits for it to be up.
    let set = |c: &TestCluster, k: usize, up: bool| {
        c.request(
            k,
            &Request::SetResource {
                name: "sfm_disk".into(),
                value: ResourceValue::Status(up),
            },
        )
        .unwrap()
    };
    cluster.wait_for(BOUND, "the cluster is up", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    for k in 1..=3 {
        assert_eq!(set(&cluster, k, true), Reply::Done);
    }
    cluster.wait_for(BOUND, "pkgA runs on n1", |c| {
        c.owners(1, "pkgA") == Some(names(&["n1"])) && pid(&c.dir(1)).is_some_and(alive)
    });
    // Down on n1: the package fails there and moves to n2.
    assert_eq!(set(&cluster, 1, false), Reply::Done);
    cluster.wait_for(BOUND, "pkgA moves to n2", |c| {
        (1..=3).all(|k| c.owners(k, "pkgA") == Some(names(&["n2"])))
    });
    // A resource no package names is refused with Serviceguard's reason.
    let reply = cluster
        .request(
            2,
            &Request::SetResource {
                name: "nosuch".into(),
                value: ResourceValue::Status(true),
            },
        )
        .unwrap();
    assert!(
        matches!(&reply, Reply::Refused(why) if why.contains("not configured")),
        "{reply:?}"
    );
}

#[test]
fn cmapplyconf_adds_a_package_on_every_node_and_refuses_what_serviceguard_refuses() {
    use cimguard_cluster::runtime::daemon::{FileText, Reply, Request};

    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    let pkg_a = package("0", "");
    cluster.add_package("pkgA", &pkg_a);
    running_on_n1(&mut cluster);
    let generation = |c: &TestCluster, k: usize| c.status(k).map(|s| s.cluster.generation).ok();
    assert_eq!(generation(&cluster, 2), Some(1));
    let file = |name: &str, text: &str| FileText {
        name: name.into(),
        text: text.into(),
    };
    let pkg_b = "package_name pkgB\nnode_name n2\nnode_name n3\nauto_run yes\n\
                 service_name svcb\nservice_cmd \"exec sleep 1000\"\n";

    // A broken file: refused with its findings, nothing distributed.
    let reply = cluster
        .request(
            3,
            &Request::Apply {
                cluster: None,
                packages: Some(vec![
                    file("pkgA.conf", &pkg_a),
                    file("pkgB.conf", &format!("{pkg_b}node_name n9\n")),
                ]),
                base: None,
                base_number: None,
            },
        )
        .unwrap();
    assert!(
        matches!(&reply, Reply::Error(why) if why.contains("pkgB.conf") && why.contains("n9")),
        "{reply:?}"
    );

    // Deleting a running package is refused (serviceguard.md 5.2).
    let reply = cluster
        .request(
            3,
            &Request::Apply {
                cluster: None,
                packages: Some(vec![file("pkgB.conf", pkg_b)]),
                base: None,
                base_number: None,
            },
        )
        .unwrap();
    assert!(matches!(reply, Reply::Refused(_)), "{reply:?}");

    // Adding one: a new generation on every node, the new package running, pkgA untouched.
    let service = pid(&cluster.dir(1)).unwrap();
    let reply = cluster
        .request(
            3,
            &Request::Apply {
                cluster: None,
                packages: Some(vec![file("pkgA.conf", &pkg_a), file("pkgB.conf", pkg_b)]),
                base: None,
                base_number: None,
            },
        )
        .unwrap();
    assert_eq!(reply, Reply::Done);
    cluster.wait_for(BOUND, "one new generation everywhere, pkgB on n2", |c| {
        let first = generation(c, 1);
        first.is_some_and(|g| g > 1)
            && (2..=3).all(|k| generation(c, k) == first)
            && (1..=3).all(|k| c.owners(k, "pkgB") == Some(names(&["n2"])))
    });
    assert!(alive(service));
    assert_eq!(cluster.owners(1, "pkgA"), Some(names(&["n1"])));

    // cmhaltpkg pkgB from any node halts it (and disables its AUTO_RUN); cmrunpkg -n n3
    // starts it there.
    let halt = Request::HaltPackage {
        package: "pkgB".into(),
        node: None,
    };
    // Refused while pkgB is still starting (its owners show it from the start on), as
    // Serviceguard refuses it; taken once it runs.
    cluster.wait_for(BOUND, "cmhaltpkg pkgB taken", |c| {
        c.request(1, &halt).is_ok_and(|reply| reply == Reply::Done)
    });
    cluster.wait_for(BOUND, "pkgB halted", |c| {
        (1..=3).all(|k| c.owners(k, "pkgB") == Some(Vec::new()))
    });
    let run = Request::RunPackage {
        package: "pkgB".into(),
        node: Some("n3".into()),
    };
    assert_eq!(cluster.request(1, &run).unwrap(), Reply::Done);
    cluster.wait_for(BOUND, "pkgB runs on n3", |c| {
        (1..=3).all(|k| c.owners(k, "pkgB") == Some(names(&["n3"])))
    });
    let unknown = Request::EnablePackage {
        package: "nosuch".into(),
        node: None,
    };
    assert!(matches!(
        cluster.request(2, &unknown).unwrap(),
        Reply::Error(_)
    ));
}

#[test]
fn a_node_killed_while_its_package_starts_leaves_the_package_running_once() {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    let began = cluster.root().join("start-began");
    // The start on n1 waits while the hold file is there, which it is until the test ends:
    // n1 is killed in the middle of it however slowly the test gets there. Elsewhere the
    // start is quick.
    let hold = cluster.root().join("n1-start.hold");
    std::fs::write(&hold, "").expect("the hold file");
    let script = cluster.script(
        "control.sh",
        &format!(
            "[ \"$1\" = start ] && echo \"$SG_NODE\" >> {began}\n\
             if [ \"$1\" = start ] && [ \"$SG_NODE\" = n1 ]; then\n\
             while [ -e '{hold}' ]; do sleep 0.05; done\n\
             fi\nexit 0",
            began = began.display(),
            hold = hold.display()
        ),
    );
    let service = cluster.exclusive_service("pkgA");
    cluster.add_package(
        "pkgA",
        &format!(
            "package_name pkgA\npackage_type failover\nnode_name n1\nnode_name n2\nnode_name n3\n\
             auto_run yes\nexternal_script {}\nservice_name svc\nservice_cmd \"{service}\"\n\
             service_halt_timeout 2\n",
            script.display()
        ),
    );
    cluster.start_all();
    cluster.wait_for(BOUND, "pkgA's start began on n1", |_| {
        std::fs::read_to_string(&began).is_ok_and(|text| text.lines().any(|l| l == "n1"))
    });
    // kill -9 in the middle of the run script: the safety timer takes n1's processes, the
    // others re-form and start pkgA on an adoptive node.
    cluster.signal(1, "KILL");
    cluster.wait_for(BOUND, "n1's daemon gone", |c| c.exited(1).is_some());
    cluster.wait_for(BOUND, "pkgA runs on n2 or n3", |c| {
        let owners = c.owners(2, "pkgA");
        owners
            .as_ref()
            .is_some_and(|o| o.len() == 1 && o[0] != "n1")
            && c.owners(3, "pkgA") == owners
    });
    // n1 comes back and rejoins; pkgA stays where it is, once.
    cluster.start(1);
    cluster.wait_for(BOUND, "n1 rejoined and all agree on one owner", |c| {
        let owners = c.owners(1, "pkgA");
        owners
            .as_ref()
            .is_some_and(|o| o.len() == 1 && o[0] != "n1")
            && (2..=3).all(|k| c.owners(k, "pkgA") == owners)
    });
    assert_eq!(
        cluster.double_starts("pkgA"),
        Vec::<String>::new(),
        "pkgA's service ran on two nodes at once"
    );
    // n1's start never finished: its service never ran there.
    assert_eq!(pid(&cluster.dir(1)), None);
}

/// A lone member (a one-node cluster) holds a switching change as soon as it makes it:
/// cmmodpkg -d and -e are answered at once, carried out (not given up on after the
/// daemon's wait for an answer as "may or may not have been carried out").
#[test]
fn cmmodpkg_on_a_lone_member_is_answered_at_once() {
    let mut cluster = TestCluster::configure(1, MEMBER_TIMEOUT, "");
    cluster.add_package(
        "pkgA",
        &format!("package_name pkgA\nnode_name n1\nauto_run yes\n{SERVICE}"),
    );
    cluster.start_all();
    cluster.wait_for(BOUND, "pkgA runs on n1", |c| {
        c.owners(1, "pkgA") == Some(names(&["n1"]))
    });
    let auto_run = |c: &TestCluster| {
        c.status(1).ok().and_then(|s| {
            s.cluster
                .packages
                .iter()
                .find(|p| p.name == "pkgA")
                .map(|p| p.auto_run)
        })
    };
    for enable in [false, true, false] {
        let request = if enable {
            Request::EnablePackage {
                package: "pkgA".into(),
                node: None,
            }
        } else {
            Request::DisablePackage {
                package: "pkgA".into(),
                node: None,
            }
        };
        assert_eq!(
            cluster.request(1, &request),
            Ok(Reply::Done),
            "enable {enable}"
        );
        assert_eq!(auto_run(&cluster), Some(enable));
    }
}

/// A member that does not confirm a switching change within the coordinator's wait (its
/// daemon stopped, well within MEMBER_TIMEOUT, so still a member): cmmodpkg -d is carried
/// out all the same and succeeds, with a warning naming that member on standard error; the
/// member holds the change once it runs again.
#[test]
fn cmmodpkg_a_member_does_not_confirm_is_a_warning_not_a_failure() {
    const ADMIN: (&str, &str) = ("admin", "admin-secret-1");
    // Long enough that n3 stays a member through the coordinator's 8 s wait.
    let mut cluster = TestCluster::configure(3, Duration::from_secs(24), "");
    cluster.with_agents(&[(ADMIN.0, "FULL_ADMIN", ADMIN.1)]);
    cluster.add_package("pkgA", &package("0", ""));
    cluster.start_all();
    cluster.wait_for(Duration::from_secs(120), "pkgA runs on n1", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
            && c.owners(1, "pkgA") == Some(names(&["n1"]))
    });
    let auto_run = |c: &TestCluster, k: usize| {
        c.status(k).ok().and_then(|s| {
            s.cluster
                .packages
                .iter()
                .find(|p| p.name == "pkgA")
                .map(|p| p.auto_run)
        })
    };
    let (_, epoch) = cluster.members(1).expect("n1's membership");
    cluster.signal(3, "STOP");
    let output = cluster.agent_command(
        1,
        ADMIN,
        "cmmodpkg",
        &["-d", "pkgA"],
        Duration::from_secs(60),
    );
    cluster.signal(3, "CONT");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "cmmodpkg -d failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("cmmodpkg: warning:") && stderr.contains("n3 had not confirmed"),
        "{stderr}"
    );
    assert!(
        stdout.contains("cmmodpkg: Completed successfully on all packages specified"),
        "{stdout}"
    );
    assert_eq!(auto_run(&cluster, 1), Some(false));
    // n3 was a member throughout, and takes the change once it runs again.
    cluster.wait_for(BOUND, "n3 holds AUTO_RUN disabled", |c| {
        auto_run(c, 3) == Some(false)
    });
    assert_eq!(
        cluster.members(1).map(|(m, e)| (m.len(), e)),
        Some((3, epoch))
    );
}
