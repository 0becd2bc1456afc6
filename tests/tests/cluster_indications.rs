//! The cluster's events as CIM indications: three real `cmcld` processes on loopback, each
//! serving its WBEM agent, subscribed to by pywbem's `WBEMSubscriptionManager` and heard by
//! pywbem's `WBEMListener` (`tests/python/listener.py`).
//!
//! Needs `cargo build --bin cmcld --bin cimguard` and the venv of `scripts/test` (the test
//! fails, never skips, without them).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cimguard_cluster::packages::ResourceValue;
use cimguard_cluster::runtime::daemon::{Reply, Request};
use cimguard_tests::cluster::TestCluster;
use cimguard_tests::ports::free_port;
use cimguard_tests::pyagent::client_script;
use serde_json::{json, Value};

const MEMBER_TIMEOUT: Duration = Duration::from_secs(2);

/// Long enough for a formation, a start and a failover under CI load.
const BOUND: Duration = Duration::from_secs(60);

const ADMIN: (&str, &str) = ("admin", "admin-secret-1");
const MONITOR: (&str, &str) = ("watcher", "monitor-secret-1");

/// The demo's shape with the administrator and the monitor as the agents' users, started.
fn demo_cluster() -> TestCluster {
    TestCluster::demo(
        MEMBER_TIMEOUT,
        &[
            (ADMIN.0, "FULL_ADMIN", ADMIN.1),
            (MONITOR.0, "MONITOR", MONITOR.1),
        ],
    )
}

/// The demo cluster whose daemons (and their agents) stay once halted, as cmcld does by
/// default, started.
fn staying_demo_cluster() -> TestCluster {
    TestCluster::staying_demo(
        MEMBER_TIMEOUT,
        &[
            (ADMIN.0, "FULL_ADMIN", ADMIN.1),
            (MONITOR.0, "MONITOR", MONITOR.1),
        ],
    )
}

/// The demo cluster formed, its generic resource up everywhere, dbpkg's service on n1.
fn dbpkg_running_on_n1() -> TestCluster {
    dbpkg_comes_up_on_n1(demo_cluster())
}

/// [`dbpkg_running_on_n1`] with one difference: dbpkg also has an external script whose
/// stop waits while the returned hold file exists (the test creates and removes it), so
/// that dbpkg's halt can be kept from ending.
fn dbpkg_running_on_n1_with_a_held_stop() -> (TestCluster, std::path::PathBuf) {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.with_agents(&[
        (ADMIN.0, "FULL_ADMIN", ADMIN.1),
        (MONITOR.0, "MONITOR", MONITOR.1),
    ]);
    cluster.add_demo_packages();
    let hold = cluster.root().join("dbpkg-stop.hold");
    let script = cluster.script(
        "dbpkg.sh",
        &format!(
            "[ \"$1\" = stop ] || exit 0\nwhile [ -e '{}' ]; do sleep 0.05; done\nexit 0",
            hold.display()
        ),
    );
    let demo = std::fs::read_to_string(cluster.dir(1).join("packages").join("dbpkg.conf"))
        .expect("the demo's dbpkg");
    cluster.add_package(
        "dbpkg",
        &format!("{demo}external_script {}\n", script.display()),
    );
    cluster.start_all();
    (dbpkg_comes_up_on_n1(cluster), hold)
}

/// `cluster` (the demo's shape, started) formed, its generic resource up everywhere,
/// dbpkg's service on n1.
fn dbpkg_comes_up_on_n1(mut cluster: TestCluster) -> TestCluster {
    cluster.wait_for(BOUND, "a formed cluster", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    for k in 1..=3 {
        let output = cluster.agent_command(
            k,
            ADMIN,
            "cmsetresource",
            &["-r", "sfm_disk", "-s", "up"],
            BOUND,
        );
        assert!(output.status.success(), "{output:?}");
    }
    cluster.wait_for(BOUND, "dbpkg's service on n1", |c| {
        c.owners(1, "dbpkg").unwrap_or_default() == ["n1"] && c.db_pid(1).is_some()
    });
    cluster
}

/// Kills dbpkg's service on n1 three times: service_restart 2, so the third exhausts the
/// restarts and dbpkg fails over.
fn exhaust_dbpkg_restarts(cluster: &mut TestCluster) {
    for _ in 0..2 {
        let old = cluster.db_pid(1).expect("the service runs");
        kill(old);
        cluster.wait_for(BOUND, "the service restarted", |c| {
            c.db_pid(1).is_some_and(|new| new != old)
        });
    }
    kill(cluster.db_pid(1).expect("the service runs"));
}

/// A pywbem listener subscribed to one node's agent: what it printed, line by line.
struct Listener {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<Value>>>,
    /// The port it listens on.
    port: u16,
}

impl Listener {
    /// Starts `listener.py` on a free port, subscribed to node `k`'s agent as `user` with
    /// `query`; returns once the subscription exists.
    fn subscribe(cluster: &TestCluster, k: usize, user: (&str, &str), query: &str) -> Listener {
        Listener::subscribe_over(cluster, k, user, query, None)
    }

    /// The same, listening over HTTPS with `tls`'s server certificate if given.
    fn subscribe_over(
        cluster: &TestCluster,
        k: usize,
        user: (&str, &str),
        query: &str,
        tls: Option<&cimguard_certs::TlsPaths>,
    ) -> Listener {
        let mut command = cluster.agent_script(k, "listener.py", user);
        if let Some(tls) = tls {
            command
                .arg("--https-cert")
                .arg(&tls.server_cert)
                .arg("--https-key")
                .arg(&tls.server_key);
        }
        Listener::subscribed(command, query)
    }

    /// Runs `command` (listener.py with its agents and user) on a free port, subscribing
    /// with `query`; returns once the subscription exists.
    fn subscribed(mut command: std::process::Command, query: &str) -> Listener {
        let port = free_port();
        command
            .arg("--listen-port")
            .arg(port.to_string())
            .arg("--query")
            .arg(query)
            .arg("--manager-id")
            .arg(format!("cimguardtest{port}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        Listener::spawn(command, port, BOUND, "subscribed")
    }

    /// Starts `listener.py` on a free port, subscribed as `user` with `query` at every
    /// node's agent, as a pywbem user does: one subscription manager, a server per node, the
    /// same filter and destination ids; returns once the subscriptions exist.
    fn subscribe_everywhere(cluster: &TestCluster, user: (&str, &str), query: &str) -> Listener {
        let mut command = cluster.agent_script(1, "listener.py", user);
        for k in 2..=3 {
            command
                .arg("--also")
                .arg(cluster.agent_url(k))
                .arg(cluster.agent_ca(k));
        }
        Listener::subscribed(command, query)
    }

    /// Runs `command` (listener.py on `port`) and waits up to `bound` for its line with key
    /// `first`.
    fn spawn(
        mut command: std::process::Command,
        port: u16,
        bound: Duration,
        first: &str,
    ) -> Listener {
        let mut child = command.spawn().expect("listener.py starts");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("listener.py printed {line:?}: {e}"));
                sink.lock().unwrap().push(value);
            }
        });
        let mut listener = Listener {
            child,
            stdin,
            lines,
            port,
        };
        listener.wait(bound, first, |lines| {
            lines.iter().any(|l| l.get(first).is_some())
        });
        listener
    }

    /// Kills the listener process (kill -9): its subscription stays.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stdin = None;
    }

    /// Closes standard input and waits for the process to end.
    fn close(self) {
        drop(self);
    }

    /// Waits until `done` holds of the lines printed so far (failing after `bound`).
    fn wait(&mut self, bound: Duration, what: &str, done: impl Fn(&[Value]) -> bool) {
        let deadline = Instant::now() + bound;
        loop {
            if done(&self.lines.lock().unwrap()) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("listener.py exited ({status}) before {what}");
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {bound:?}; the listener printed {:?}",
                self.lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The Name of the filter it created.
    fn filter_name(&self) -> Value {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find_map(|l| l.get("subscribed").map(|s| s["filter"].clone()))
            .unwrap_or_default()
    }

    /// The indications received so far.
    fn indications(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.get("class").is_some())
            .cloned()
            .collect()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Closing standard input makes it remove its subscription and stop.
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kill(pid: u32) {
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
}

/// The indications of `listener` whose EventID is `event` and PackageName `package`.
fn events<'a>(indications: &'a [Value], event: &str, package: &str) -> Vec<&'a Value> {
    indications
        .iter()
        .filter(|i| {
            i["properties"]["EventID"] == event && i["properties"]["PackageName"] == package
        })
        .collect()
}

/// A listener's indications come from the agents of the nodes that told them, each agent
/// numbering them in a sequence context of its own: in each context, the numbers 0, 1, 2, ...
/// in order.
fn assert_numbered(indications: &[Value]) {
    let mut next: std::collections::BTreeMap<String, u64> = Default::default();
    for indication in indications {
        let context = indication["properties"]["SequenceContext"]
            .as_str()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| panic!("no SequenceContext: {indication}"))
            .to_owned();
        let wanted = next.entry(context).or_default();
        assert_eq!(
            indication["properties"]["SequenceNumber"], *wanted,
            "{indications:#?}"
        );
        *wanted += 1;
    }
}

#[test]
fn a_failed_package_is_heard_once_by_each_listener_whichever_node_it_subscribed_at() {
    let mut cluster = dbpkg_running_on_n1();
    // The monitor subscribes on every node, to the alerts about packages failing and moving.
    let query = "SELECT * FROM HP_SGAlertIndication \
                 WHERE EventID = 'PackageFailed' OR EventID = 'PackageFailover'";
    let mut listeners: Vec<Listener> = (1..=3)
        .map(|k| Listener::subscribe(&cluster, k, MONITOR, query))
        .collect();
    exhaust_dbpkg_restarts(&mut cluster);
    cluster.wait_for(BOUND, "dbpkg on n2", |c| {
        c.owners(3, "dbpkg").unwrap_or_default() == ["n2"]
    });
    // n1 saw dbpkg fail; the package coordinator (n1, the lowest member) moved it.
    // Subscriptions are the cluster's: each listener, whichever node it subscribed at,
    // hears each event once, from the node that told it (n1 saw dbpkg fail, and as package
    // coordinator moved it).
    for (k, listener) in listeners.iter_mut().enumerate() {
        listener.wait(
            BOUND,
            "dbpkg's PackageFailed and PackageFailover",
            |lines| {
                let heard: Vec<Value> = lines
                    .iter()
                    .filter(|l| l.get("class").is_some())
                    .cloned()
                    .collect();
                !events(&heard, "PackageFailed", "dbpkg").is_empty()
                    && !events(&heard, "PackageFailover", "dbpkg").is_empty()
            },
        );
        let heard = listener.indications();
        let failed = events(&heard, "PackageFailed", "dbpkg");
        assert_eq!(failed.len(), 1, "n{}: {heard:#?}", k + 1);
        let failed = &failed[0]["properties"];
        assert_eq!(failed["NodeName"], "n1");
        assert_eq!(failed["PerceivedSeverity"], 6);
        assert_eq!(failed["AlertType"], 4);
        assert_eq!(failed["ClusterName"], "testcluster");
        // The filter pywbem created, by the name it gave it.
        assert_eq!(failed["IndicationFilterName"], listener.filter_name());
        let failover = events(&heard, "PackageFailover", "dbpkg");
        assert_eq!(failover.len(), 1, "{heard:#?}");
        assert_eq!(failover[0]["properties"]["NodeName"], "n2");
        assert_eq!(
            failed["SequenceContext"], failover[0]["properties"]["SequenceContext"],
            "both from n1's agent"
        );
        // The failover points at the failure it follows.
        assert_eq!(
            failover[0]["properties"]["CorrelatedIndications"],
            json!([failed["IndicationIdentifier"].clone()]),
            "{heard:#?}"
        );
        assert!(failed["CorrelatedIndications"].is_null(), "{failed:#?}");
        assert_numbered(&heard);
    }
    // n1's agent sent both to each of the three: its indication service says so, with
    // nothing dropped or missed, in CIM and in /metrics.
    let mut service = Value::Null;
    cluster.wait_for(BOUND, "n1's agent counts its deliveries", |c| {
        let found = c.cim(
            1,
            MONITOR,
            &json!({"op": "enumerate", "class": "CIM_IndicationService", "namespace": "root/interop"}),
        );
        service = found[0].clone();
        service["properties"]["IndicationsDelivered"]
            .as_u64()
            .is_some_and(|n| n >= 6)
    });
    assert_eq!(service["path"]["class"], "CIMGuard_IndicationService");
    let counters = &service["properties"];
    assert_eq!(counters["IndicationsDropped"], 0, "{service}");
    assert_eq!(counters["NoticesMissed"], 0, "{service}");
    assert_eq!(counters["DeliveryFailures"], 0, "{service}");
    assert_eq!(counters["Destinations"], 3, "{service}");
    let metrics = cluster.cim(1, MONITOR, &json!({"op": "metrics"}));
    let text = metrics["text"].as_str().unwrap_or_default();
    assert!(
        text.lines()
            .any(|l| l == "cimguard_indications_dropped_total 0")
            && text.lines().any(|l| l
                .strip_prefix("cimguard_indications_delivered_total ")
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n >= 6)),
        "{text}"
    );
    listeners.clear();
}

/// A `cmwbemd` serving node `k`'s daemon from a process of its own, on 127.0.0.1 at `port`,
/// its state (subscriptions, outbox, TLS material) in `dir`. Its log is appended to
/// `dir/cmwbemd.log`.
struct Wbemd {
    child: Child,
}

impl Wbemd {
    fn start(cluster: &TestCluster, k: usize, dir: &std::path::Path, port: u16) -> Wbemd {
        std::fs::create_dir_all(dir).expect("cmwbemd's directory");
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(dir.join("cmwbemd.log"))
            .expect("cmwbemd's log");
        let mut child = std::process::Command::new(
            cimguard_tests::agent::binary("cmwbemd").unwrap_or_else(|e| panic!("{e}")),
        )
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--cluster-socket")
        .arg(cluster.dir(k).join("cmcld.sock"))
        .arg("--state-dir")
        .arg(dir)
        .arg("--tls-dir")
        .arg(dir.join("tls"))
        .arg("--users-file")
        .arg(cluster.path().join("users"))
        .args(["--indication-retry-interval", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("cmwbemd starts");
        // It prints `listening https ADDRESS` once it serves.
        let stdout = child.stdout.take().expect("piped stdout");
        let (said, heard) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = said.send(line);
            }
        });
        let line = heard
            .recv_timeout(BOUND)
            .unwrap_or_else(|e| panic!("cmwbemd did not say it listens: {e}"));
        assert!(line.starts_with("listening https"), "{line}");
        Wbemd { child }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Wbemd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pywbem listener that only listens (its subscription exists already) on `port`.
fn listen_only(port: u16) -> Listener {
    let mut command = client_script("listener.py").unwrap_or_else(|e| panic!("{e}"));
    command
        .arg("--listen-port")
        .arg(port.to_string())
        .arg("--listen-only")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    Listener::spawn(command, port, BOUND, "listening")
}

#[test]
fn indications_queued_through_a_listener_outage_and_an_agent_kill_arrive_in_order_once() {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.with_agents(&[
        (ADMIN.0, "FULL_ADMIN", ADMIN.1),
        (MONITOR.0, "MONITOR", MONITOR.1),
    ]);
    // Node 1's agent is a cmwbemd of its own (one agent per node: each sends what its
    // node's daemon tells).
    cluster.without_agent.insert(1);
    // A package that never starts, with a generic resource to turn up and down: each turn is
    // a GenericResourceChanged alert from the node where it is set.
    cluster.add_package(
        "probepkg",
        "package_name probepkg\npackage_type failover\nnode_name n1\nnode_name n2\n\
         auto_run no\ngeneric_resource_name probe\n\
         generic_resource_evaluation_type during_package_start\n",
    );
    cluster.start_all();
    cluster.wait_for(BOUND, "a formed cluster", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    let wbemd_dir = cluster.path().join("wbemd");
    let wbemd_port = free_port();
    let wbemd = Wbemd::start(&cluster, 1, &wbemd_dir, wbemd_port);
    // A permanent subscription (--keep): it outlives the listener process.
    let listener_port = free_port();
    let mut command = client_script("listener.py").unwrap_or_else(|e| panic!("{e}"));
    command
        .arg("--url")
        .arg(format!("https://127.0.0.1:{wbemd_port}"))
        .arg("--ca-certs")
        .arg(wbemd_dir.join("tls").join("ca.pem"))
        .arg("--user")
        .arg(MONITOR.0)
        .arg("--password")
        .arg(MONITOR.1)
        .arg("--listen-port")
        .arg(listener_port.to_string())
        .arg("--query")
        .arg("SELECT * FROM HP_SGAlertIndication WHERE EventID = 'GenericResourceChanged'")
        .arg("--keep")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut listener = Listener::spawn(command, listener_port, BOUND, "subscribed");
    let mut up = false;
    let mut turn = |cluster: &TestCluster| {
        up = !up;
        // cmsetresource on node 1, through its daemon's admin socket.
        let reply = cluster.request(
            1,
            &Request::SetResource {
                name: "probe".into(),
                value: ResourceValue::Status(up),
            },
        );
        assert_eq!(reply, Ok(Reply::Done));
    };
    // One turn heard while the listener is up.
    turn(&cluster);
    listener.wait(BOUND, "the first indication", |lines| {
        lines.iter().any(|l| l.get("class").is_some())
    });
    // The listener goes away (kill -9) for 90 s; 20 turns happen meanwhile, and the agent is
    // killed (kill -9) and started again after the tenth.
    let outage = Instant::now();
    let before = listener.indications();
    listener.kill();
    for _ in 0..10 {
        turn(&cluster);
    }
    wbemd.kill();
    let _wbemd = Wbemd::start(&cluster, 1, &wbemd_dir, wbemd_port);
    for _ in 0..10 {
        turn(&cluster);
    }
    // The outage lasts 90 s, as a monitoring station's restart might.
    if let Some(left) = Duration::from_secs(90).checked_sub(outage.elapsed()) {
        std::thread::sleep(left);
    }
    let mut back = listen_only(listener_port);
    back.wait(BOUND, "the 20 indications queued in the outage", |lines| {
        lines
            .iter()
            .filter(|l| l["properties"]["SequenceNumber"] == 20)
            .count()
            >= 1
    });
    let mut after = back.indications();
    // The listener was killed (kill -9) right after printing the first indication, which
    // pywbem does before it answers: if the answer never left, the agent rightly sends that
    // one again, with the same context and number, for the listener to recognize.
    let key = |i: &Value| {
        (
            i["properties"]["SequenceContext"].clone(),
            i["properties"]["SequenceNumber"].clone(),
        )
    };
    if let (Some(last), Some(first)) = (before.last(), after.first()) {
        if key(last) == key(first) {
            after.remove(0);
        }
    }
    let mut heard = before;
    heard.extend(after.iter().cloned());
    assert_eq!(heard.len(), 21, "{heard:#?}");
    // One context, numbers 0 to 20 in order: nothing lost, nothing twice.
    assert_numbered(&heard);
    // The turns in the order they were made: up, down, up, ...
    for (k, indication) in heard.iter().enumerate() {
        let wanted = if k % 2 == 0 { "up" } else { "down" };
        assert_eq!(
            indication["properties"]["NewStatus"], wanted,
            "indication {k}: {heard:#?}"
        );
        assert_eq!(indication["properties"]["PackageName"], "probepkg");
    }
    back.close();
}

#[test]
fn killing_the_node_a_subscription_was_made_at_leaves_it_heard_node_failed_and_failover_once() {
    let mut cluster = demo_cluster();
    cluster.wait_for(BOUND, "a formed cluster", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    for k in 1..=3 {
        let reply = cluster.request(
            k,
            &Request::SetResource {
                name: "sfm_disk".into(),
                value: ResourceValue::Status(true),
            },
        );
        assert_eq!(reply, Ok(Reply::Done));
    }
    cluster.wait_for(BOUND, "dbpkg on n1", |c| {
        c.owners(2, "dbpkg").unwrap_or_default() == ["n1"]
    });
    // Subscribed at n1, which runs dbpkg and coordinates the cluster.
    let query = "SELECT * FROM HP_SGAlertIndication \
                 WHERE EventID = 'NodeFailed' OR EventID = 'PackageFailover'";
    let mut listener = Listener::subscribe(&cluster, 1, MONITOR, query);
    cluster.signal(1, "KILL");
    let _ = cluster.exited(1);
    // n2, the coordinator of the new membership, tells both; the listener hears each once.
    listener.wait(
        BOUND,
        "NodeFailed of n1 and dbpkg's PackageFailover",
        |lines| {
            let heard: Vec<Value> = lines
                .iter()
                .filter(|l| l.get("class").is_some())
                .cloned()
                .collect();
            heard
                .iter()
                .any(|i| i["properties"]["EventID"] == "NodeFailed")
                && !events(&heard, "PackageFailover", "dbpkg").is_empty()
        },
    );
    // Whatever else was told by then (webpkg may move too), its NodeFailed is there once.
    cluster.wait_for(BOUND, "dbpkg running on n2", |c| {
        c.owners(2, "dbpkg").unwrap_or_default() == ["n2"]
    });
    let heard = listener.indications();
    let failed: Vec<&Value> = heard
        .iter()
        .filter(|i| i["properties"]["EventID"] == "NodeFailed")
        .collect();
    assert_eq!(failed.len(), 1, "{heard:#?}");
    assert_eq!(failed[0]["properties"]["NodeName"], "n1");
    let failover = events(&heard, "PackageFailover", "dbpkg");
    assert_eq!(failover.len(), 1, "{heard:#?}");
    assert_eq!(failover[0]["properties"]["NodeName"], "n2");
    // It follows n1's failure, as n2's agent told it.
    assert_eq!(
        failover[0]["properties"]["CorrelatedIndications"],
        json!([failed[0]["properties"]["IndicationIdentifier"].clone()]),
        "{heard:#?}"
    );
    assert_numbered(&heard);
    // Its agent is gone with n1: the listener stops without removing the subscription.
    listener.kill();
}

#[test]
fn halting_a_package_is_heard_as_one_modification_of_its_instance() {
    let mut cluster = demo_cluster();
    cluster.wait_for(BOUND, "monpkg running on every node", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
            && c.owners(3, "monpkg").unwrap_or_default().len() == 3
    });
    let query = "SELECT * FROM CIM_InstModification WHERE SourceInstance ISA HP_SGPackage";
    let mut listener = Listener::subscribe(&cluster, 3, MONITOR, query);
    let output = cluster.agent_command(2, ADMIN, "cmhaltpkg", &["monpkg"], BOUND);
    assert!(output.status.success(), "{output:?}");
    let halted = |i: &Value| {
        let now = &i["properties"]["SourceInstance"];
        let before = &i["properties"]["PreviousInstance"];
        now["properties"]["Name"] == "monpkg"
            && now["properties"]["PackageState"] == "halted"
            && before["properties"]["PackageState"] != "halted"
    };
    listener.wait(BOUND, "monpkg's modification to halted", |lines| {
        lines.iter().any(halted)
    });
    // Another change after it, so that a second copy would have arrived by now.
    let output = cluster.agent_command(2, ADMIN, "cmrunpkg", &["monpkg"], BOUND);
    assert!(output.status.success(), "{output:?}");
    listener.wait(BOUND, "monpkg's modification to running", |lines| {
        lines.iter().any(|i| {
            let now = &i["properties"]["SourceInstance"];
            now["properties"]["Name"] == "monpkg" && now["properties"]["PackageState"] == "running"
        })
    });
    let heard = listener.indications();
    let to_halted: Vec<&Value> = heard.iter().filter(|i| halted(i)).collect();
    assert_eq!(to_halted.len(), 1, "{heard:#?}");
    let modification = &to_halted[0]["properties"];
    assert_eq!(to_halted[0]["class"], "CIM_InstModification");
    assert_eq!(modification["SourceInstance"]["class"], "HP_SGPackage");
    assert!(modification["SourceInstanceModelPath"]
        .as_str()
        .is_some_and(|p| p.contains("HP_SGPackage") && p.contains("monpkg")));
    assert_eq!(modification["IndicationFilterName"], listener.filter_name());
    // Every one is about a package, as the filter asks.
    assert!(heard
        .iter()
        .all(|i| i["properties"]["SourceInstance"]["class"] == "HP_SGPackage"));
    assert_numbered(&heard);
    listener.close();
}

#[test]
fn halting_the_cluster_is_heard_as_one_modification_of_the_cluster_to_down() {
    let mut cluster = staying_demo_cluster();
    cluster.wait_for(BOUND, "a formed cluster of three", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    let query = "SELECT * FROM CIM_InstModification WHERE SourceInstance ISA HP_SGCluster";
    let mut listener = Listener::subscribe(&cluster, 3, MONITOR, query);
    let output = cluster.agent_command(2, ADMIN, "cmhaltcl", &["-f"], BOUND);
    assert!(output.status.success(), "{output:?}");
    let down = |i: &Value| {
        let now = &i["properties"]["SourceInstance"]["properties"];
        let before = &i["properties"]["PreviousInstance"]["properties"];
        now["ClusterStatus"] == "down" && before["ClusterStatus"] != "down"
    };
    listener.wait(BOUND, "the cluster's modification to down", |lines| {
        lines.iter().any(down)
    });
    // Started again: its modification to up follows, so a second copy would be here by now.
    let output = cluster.agent_command(1, ADMIN, "cmruncl", &[], BOUND);
    assert!(output.status.success(), "{output:?}");
    listener.wait(BOUND, "the cluster's modification to up", |lines| {
        lines.iter().any(|i| {
            i["properties"]["SourceInstance"]["properties"]["ClusterStatus"] == "up"
                && i["properties"]["PreviousInstance"]["properties"]["ClusterStatus"] != "up"
        })
    });
    let heard = listener.indications();
    let to_down: Vec<&Value> = heard.iter().filter(|i| down(i)).collect();
    assert_eq!(to_down.len(), 1, "{heard:#?}");
    assert_eq!(
        to_down[0]["properties"]["SourceInstance"]["class"],
        "HP_SGCluster"
    );
    assert_numbered(&heard);
    listener.close();
}

#[test]
fn cmapplyconf_is_heard_once_as_cluster_config_changed() {
    let mut cluster = demo_cluster();
    cluster.wait_for(BOUND, "a formed cluster", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    // ClusterReformed too: the change rides on a re-formation of the same members, which
    // changes no membership and is not told as one.
    let query = "SELECT * FROM HP_SGAlertIndication WHERE EventID = 'ClusterConfigChanged' \
                 OR EventID = 'ClusterReformed'";
    let changed = |l: &Value| l["properties"]["EventID"] == "ClusterConfigChanged";
    let mut listener = Listener::subscribe(&cluster, 3, MONITOR, query);
    // newpkg with `nodes`, applied through node `k`.
    let file = cluster.path().join("newpkg.conf");
    let apply = |k: usize, nodes: &str| {
        std::fs::write(
            &file,
            format!("package_name newpkg\npackage_type failover\n{nodes}auto_run no\n"),
        )
        .expect("the package file");
        let output = cluster.agent_command(
            k,
            ADMIN,
            "cmapplyconf",
            &["-f", "-P", &file.display().to_string()],
            BOUND,
        );
        assert!(output.status.success(), "{output:?}");
    };
    // A new package, applied through n2.
    apply(2, "node_name n3\nnode_name n2\n");
    listener.wait(BOUND, "ClusterConfigChanged", |lines| {
        lines.iter().any(changed)
    });
    // A second change, through n1, so that a second copy of the first would have come by
    // its end.
    apply(1, "node_name n2\nnode_name n3\n");
    listener.wait(BOUND, "the second ClusterConfigChanged", |lines| {
        lines.iter().filter(|l| changed(l)).count() >= 2
    });
    let heard = listener.indications();
    assert_eq!(heard.len(), 2, "{heard:#?}");
    assert!(heard.iter().all(changed), "{heard:#?}");
    // Each names the generation it brought, the second the next one.
    let generations: Vec<u64> = heard
        .iter()
        .filter_map(|i| i["properties"]["ConfigGeneration"].as_u64())
        .collect();
    assert!(
        generations.len() == 2 && generations[1] == generations[0] + 1,
        "{heard:#?}"
    );
    for indication in &heard {
        assert_eq!(indication["properties"]["ClusterName"], "testcluster");
        assert_eq!(indication["properties"]["AlertType"], 7, "Model Change");
    }
    assert_numbered(&heard);
    listener.close();
}

#[test]
fn an_https_listener_hears_only_if_its_certificate_is_trusted() {
    // Two listeners' certificates for 127.0.0.1, from two authorities: the agents trust
    // only the first (--indication-ca).
    let names = cimguard_certs::ServerNames {
        dns_names: vec!["localhost".into()],
        ip_addresses: vec![std::net::Ipv4Addr::LOCALHOST.into()],
    };
    let tls = tempfile::tempdir().expect("tempdir");
    let trusted = cimguard_certs::ensure(&tls.path().join("trusted"), &names).expect("tls");
    let untrusted = cimguard_certs::ensure(&tls.path().join("untrusted"), &names).expect("tls");
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.with_agents(&[
        (ADMIN.0, "FULL_ADMIN", ADMIN.1),
        (MONITOR.0, "MONITOR", MONITOR.1),
    ]);
    cluster.add_demo_packages();
    for k in 1..=3 {
        cluster.daemon_args.insert(
            k,
            vec![
                "--indication-ca".into(),
                trusted.ca_cert.display().to_string(),
            ],
        );
    }
    cluster.start_all();
    cluster.wait_for(BOUND, "dbpkg up on n1", |c| {
        c.owners(1, "dbpkg").unwrap_or_default() == ["n1"]
    });
    let query = "SELECT * FROM HP_SGAlertIndication WHERE EventID = 'PackageSwitchingChanged'";
    let mut good = Listener::subscribe_over(&cluster, 1, MONITOR, query, Some(&trusted));
    let bad = Listener::subscribe_over(&cluster, 2, MONITOR, query, Some(&untrusted));
    let bad_port = bad.port;
    let output = cluster.agent_command(1, ADMIN, "cmmodpkg", &["-d", "dbpkg"], BOUND);
    assert!(output.status.success(), "{output:?}");
    good.wait(BOUND, "the trusted listener hears the change", |lines| {
        lines
            .iter()
            .any(|l| l["properties"]["EventID"] == "PackageSwitchingChanged")
    });
    // The agent that told it logged its failure to the other listener (TLS: unknown
    // issuer), whose only attempt so far it was (the next comes 30 s later).
    let listener = format!("127.0.0.1:{bad_port}");
    cluster.wait_for(BOUND, "the failed delivery logged", |c| {
        (1..=3).any(|k| {
            c.log(k).lines().any(|line| {
                line.contains("indication delivery failed")
                    && line.contains(&listener)
                    && line.contains("TLS")
            })
        })
    });
    assert!(bad.indications().is_empty(), "{:?}", bad.indications());
    assert_eq!(good.indications().len(), 1, "{:?}", good.indications());
}

/// A listener that refuses every attempt is a fatal error for its subscriptions (DSP1054's
/// OnFatalErrorPolicy): once the agent that told the event has tried DeliveryRetryAttempts
/// times more, a subscription with Disable is disabled, one with Remove is deleted, and
/// Ignore's stays as it was; so does a Remove whose FailureTriggerTimeInterval (an hour)
/// has not passed. Any node's agent shows the result: the subscriptions are the cluster's.
#[test]
fn a_listener_that_keeps_failing_meets_each_subscriptions_on_fatal_error_policy() {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.with_agents(&[
        (ADMIN.0, "FULL_ADMIN", ADMIN.1),
        (MONITOR.0, "MONITOR", MONITOR.1),
    ]);
    cluster.add_demo_packages();
    for k in 1..=3 {
        cluster.daemon_args.insert(
            k,
            [
                "--indication-retry-interval",
                "1",
                "--indication-retry-attempts",
                "1",
            ]
            .map(String::from)
            .to_vec(),
        );
    }
    cluster.start_all();
    cluster.wait_for(BOUND, "a formed cluster", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    let query = "SELECT * FROM HP_SGAlertIndication WHERE EventID = 'PackageSwitchingChanged'";
    // Ports nothing listens on: every attempt is refused. Each subscription has a listener
    // of its own but "twin", a second subscription of "remove"'s listener to the same query
    // (as a listener subscribed at two nodes has): that listener is sent each indication
    // once, through one of them, and both meet their policy.
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    for (name, port, properties) in [
        (
            "ignore",
            ports[0],
            json!({"OnFatalErrorPolicy": ["uint16", 2]}),
        ),
        (
            "disable",
            ports[1],
            json!({"OnFatalErrorPolicy": ["uint16", 3]}),
        ),
        (
            "remove",
            ports[2],
            json!({"OnFatalErrorPolicy": ["uint16", 4]}),
        ),
        (
            "twin",
            ports[2],
            json!({"OnFatalErrorPolicy": ["uint16", 4]}),
        ),
        (
            "later",
            ports[3],
            json!({"OnFatalErrorPolicy": ["uint16", 4],
                   "FailureTriggerTimeInterval": ["uint64", 3600]}),
        ),
    ] {
        let refused = format!("http://127.0.0.1:{port}");
        let made = cluster.cim(
            1,
            MONITOR,
            &json!({"op": "subscribe", "name": name, "query": query,
                    "destination": refused, "properties": properties}),
        );
        assert_eq!(made["class"], "CIM_IndicationSubscription", "{made}");
    }
    let output = cluster.agent_command(1, ADMIN, "cmmodpkg", &["-d", "dbpkg"], BOUND);
    assert!(output.status.success(), "{output:?}");
    // Each subscription's state, by its filter's name (none: deleted).
    let states = |c: &TestCluster, k: usize| -> Vec<(String, Value)> {
        let found = c.cim(
            k,
            MONITOR,
            &json!({"op": "enumerate", "class": "CIM_IndicationSubscription",
                    "namespace": "root/interop"}),
        );
        let mut states: Vec<(String, Value)> = found
            .as_array()
            .unwrap_or_else(|| panic!("{found}"))
            .iter()
            .map(|s| {
                (
                    s["path"]["keys"]["Filter"]["keys"]["Name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    s["properties"]["SubscriptionState"].clone(),
                )
            })
            .collect();
        states.sort_by(|a, b| a.0.cmp(&b.0));
        states
    };
    let wanted: Vec<(String, Value)> = [("disable", 4), ("ignore", 2), ("later", 2)]
        .iter()
        .map(|(name, state)| ((*name).to_owned(), json!(state)))
        .collect();
    let deadline = Instant::now() + BOUND;
    loop {
        let now = states(&cluster, 1);
        if now == wanted {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the fatal error policies not applied within {BOUND:?}: {now:?}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for k in 2..=3 {
        assert_eq!(states(&cluster, k), wanted, "node {k}'s agent");
    }
    assert!(
        cluster
            .logs()
            .lines()
            .any(|line| line.contains("by its OnFatalErrorPolicy") && line.contains("remove")),
        "{}",
        cluster.logs()
    );
}

/// A listener subscribed at every node (as pywbem's subscription manager does it, one
/// server per node) has three subscriptions, all the cluster's: it hears each event once.
#[test]
fn a_listener_subscribed_at_every_node_hears_each_event_once() {
    let mut cluster = demo_cluster();
    cluster.wait_for(BOUND, "dbpkg up on n1", |c| {
        c.owners(1, "dbpkg").unwrap_or_default() == ["n1"]
    });
    let query = "SELECT * FROM HP_SGAlertIndication WHERE EventID = 'PackageSwitchingChanged'";
    let mut listener = Listener::subscribe_everywhere(&cluster, MONITOR, query);
    let subscriptions = cluster.cim(
        2,
        ADMIN,
        &json!({"op": "enumerate", "namespace": "root/interop",
                "class": "CIM_IndicationSubscription"}),
    );
    assert_eq!(
        subscriptions.as_array().map(Vec::len),
        Some(3),
        "{subscriptions}"
    );
    for (round, args) in [["-d", "dbpkg"], ["-e", "dbpkg"]].iter().enumerate() {
        let output = cluster.agent_command(1, ADMIN, "cmmodpkg", args, BOUND);
        assert!(output.status.success(), "{output:?}");
        listener.wait(BOUND, "the switching change", |lines| {
            lines
                .iter()
                .filter(|l| l["properties"]["EventID"] == "PackageSwitchingChanged")
                .count()
                > round
        });
    }
    // Copies of the first change, had any been queued, came before the second one.
    let heard = listener.indications();
    assert_eq!(heard.len(), 2, "{heard:#?}");
    assert_numbered(&heard);
}

/// Subscription objects are kept by the cluster, whichever node's agent takes them: a client
/// reads its own write back at once from the node it wrote through, coordinator or not, while
/// clients at every node write at the same time.
#[test]
fn each_agent_reads_back_at_once_the_subscription_writes_it_took_while_all_write() {
    use cimguard_tests::pyagent::{describe, output_within};
    let mut cluster = demo_cluster();
    cluster.wait_for(BOUND, "a formed cluster", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    let (threads, rounds) = (6, 12);
    let writers: Vec<_> = (1..=3)
        .map(|k| {
            let mut command = cluster.agent_script(k, "own_writes.py", MONITOR);
            command.args([
                "--tag",
                &format!("own-n{k}"),
                "--threads",
                &threads.to_string(),
                "--rounds",
                &rounds.to_string(),
            ]);
            std::thread::spawn(move || output_within(&mut command, Duration::from_secs(300)))
        })
        .collect();
    for (k, writer) in (1..=3).zip(writers) {
        let output = writer
            .join()
            .expect("the writer thread")
            .unwrap_or_else(|e| panic!("n{k}: {e}\n{}", cluster.logs()));
        assert!(output.status.success(), "n{k}: {}", describe(&output));
        let summary: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("n{k}: {e}: {}", describe(&output)));
        eprintln!("n{k}: {summary}");
        let done = summary["errors"] == json!([]) && summary["rounds"] == threads * rounds;
        assert!(
            done,
            "n{k}: {summary}, {} rounds expected\n{}\n{}",
            threads * rounds,
            describe(&output),
            cluster.logs()
        );
    }
    // Every node's agent comes to serve none of them (each was deleted).
    cluster.wait_for(BOUND, "no filter left", |c| {
        (1..=3).all(|k| {
            let found = c.cim(
                k,
                MONITOR,
                &json!({"op": "enumerate", "class": "CIM_IndicationFilter", "namespace": "root/interop"}),
            );
            found.as_array().is_some_and(|filters| {
                !filters.iter().any(|f| {
                    f["properties"]["Name"]
                        .as_str()
                        .is_some_and(|name| name.starts_with("own-"))
                })
            })
        })
    });
}

#[test]
fn a_node_that_halts_and_joins_again_is_heard_without_changes_that_never_were() {
    let mut cluster = staying_demo_cluster();
    cluster.wait_for(BOUND, "a formed cluster", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    let query = "SELECT * FROM CIM_InstModification \
                 WHERE SourceInstance ISA HP_SGNode OR SourceInstance ISA HP_SGPackage";
    let mut listener = Listener::subscribe(&cluster, 3, MONITOR, query);
    // n1 (the lowest node: it coordinates again once back) leaves and comes back.
    let output = cluster.agent_command(2, ADMIN, "cmhaltnode", &["-f", "n1"], BOUND);
    assert!(output.status.success(), "{output:?}");
    cluster.wait_for(BOUND, "n2 and n3 without n1", |c| {
        (2..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 2))
    });
    let output = cluster.agent_command(2, ADMIN, "cmrunnode", &["n1"], BOUND);
    assert!(output.status.success(), "{output:?}");
    cluster.wait_for(BOUND, "n1 back", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
            && c.owners(1, "monpkg").unwrap_or_default().len() == 3
    });
    // A change after it all: once it is heard, so is everything before it.
    let output = cluster.agent_command(2, ADMIN, "cmhaltpkg", &["monpkg"], BOUND);
    assert!(output.status.success(), "{output:?}");
    listener.wait(BOUND, "monpkg halted", |lines| {
        lines.iter().any(|i| {
            let now = &i["properties"]["SourceInstance"]["properties"];
            now["Name"] == "monpkg" && now["PackageState"] == "halted"
        })
    });
    let heard = listener.indications();
    let node = |i: &Value| {
        let now = &i["properties"]["SourceInstance"];
        (now["class"] == "HP_SGNode").then(|| now["properties"]["Name"].clone())
    };
    // n1 is heard leaving and coming back.
    assert!(
        heard.iter().any(|i| node(i) == Some(json!("n1"))
            && i["properties"]["SourceInstance"]["properties"]["NodeState"] == "running"),
        "{heard:#?}"
    );
    // Each change starts from what the listener was last told of that instance: no
    // change is told twice, and none from a view the cluster never had.
    let mut told: std::collections::HashMap<String, Value> = std::collections::HashMap::new();
    for i in &heard {
        let path = i["properties"]["SourceInstanceModelPath"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let before = &i["properties"]["PreviousInstance"]["properties"];
        if let Some(last) = told.get(&path) {
            assert_eq!(before, last, "{path}: {heard:#?}");
        }
        told.insert(
            path,
            i["properties"]["SourceInstance"]["properties"].clone(),
        );
    }
    // n2 and n3 ran throughout: they are heard running only. A re-formation is told by
    // its outcome, so no node is heard reforming, and n1 is heard going from running to
    // halted and back.
    for i in &heard {
        if let Some(name) = node(i) {
            for which in ["PreviousInstance", "SourceInstance"] {
                let state = &i["properties"][which]["properties"]["NodeState"];
                let expected: &[&str] = if name == json!("n1") {
                    &["running", "halted"]
                } else {
                    &["running"]
                };
                assert!(
                    expected.iter().any(|e| state == e),
                    "{name} {which} {state}: {heard:#?}"
                );
            }
        }
    }
    assert_numbered(&heard);
    listener.close();
}

#[test]
fn a_failover_is_heard_step_by_step_as_modifications_of_the_package() {
    let (mut cluster, hold) = dbpkg_running_on_n1_with_a_held_stop();
    let query = "SELECT * FROM CIM_InstModification WHERE SourceInstance ISA HP_SGPackage";
    let mut listener = Listener::subscribe(&cluster, 2, MONITOR, query);
    // The agent compares status snapshots: dbpkg's halt on n1 is kept from ending (its stop
    // script waits while the hold file is there) until the listener has heard dbpkg leave
    // running, so that no snapshot can miss it however briefly the agent gets the CPU. The
    // service restarts before the failover run no stop script.
    std::fs::write(&hold, "").expect("the hold file");
    exhaust_dbpkg_restarts(&mut cluster);
    listener.wait(BOUND, "dbpkg heard leaving running", |lines| {
        lines.iter().any(|i| {
            let now = &i["properties"]["SourceInstance"]["properties"];
            now["Name"] == "dbpkg" && now["PackageState"].as_str().is_some_and(|s| s != "running")
        })
    });
    std::fs::remove_file(&hold).expect("the hold file removed");
    let on_n2 = |i: &Value| {
        let now = &i["properties"]["SourceInstance"]["properties"];
        now["Name"] == "dbpkg" && now["PackageState"] == "running" && now["CurrentNode"] == "n2"
    };
    listener.wait(BOUND, "dbpkg running on n2", |lines| {
        lines.iter().any(on_n2)
    });
    let heard = listener.indications();
    let states: Vec<String> = heard
        .iter()
        .filter(|i| i["properties"]["SourceInstance"]["properties"]["Name"] == "dbpkg")
        .map(|i| {
            let state = |which: &str| {
                i["properties"][which]["properties"]["PackageState"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            };
            format!("{}->{}", state("PreviousInstance"), state("SourceInstance"))
        })
        .collect();
    // Not one running -> running jump: the package is heard leaving running, and its
    // modifications chain (each starts where the one before ended).
    assert!(
        states
            .first()
            .is_some_and(|s| s.starts_with("running->") && s != "running->running"),
        "{states:?}"
    );
    for pair in states.windows(2) {
        let ended = pair[0].split("->").nth(1).unwrap_or_default();
        assert!(pair[1].starts_with(&format!("{ended}->")), "{states:?}");
    }
    listener.close();
}
