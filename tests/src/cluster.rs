//! A cluster of real `cmcld` processes for a test, on loopback addresses (node K heartbeats on
//! 127.0.0.K and 127.0.1.K) or in network namespaces ([`crate::netns`]); two heartbeat
//! networks, so MEMBER_TIMEOUT may be short. Every node has its
//! own state directory in a fresh temporary folder, and the test talks to each daemon through
//! its admin socket. Dropping the cluster kills every daemon (their safety-timer watchers then
//! end too).
//!
//! Like [`crate::agent`], this builds nothing: `cargo test --workspace` builds `cmcld`.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use cimguard_cluster::runtime::daemon::{DaemonStatus, Reply, Request, HEARTBEAT_PORT};

use crate::agent::binary;
use crate::netns::Namespaces;

/// The heartbeat key every node of a test cluster shares.
pub const KEY: [u8; 32] = *b"cimguard test cluster key 32 byt";

/// A cluster of `cmcld` processes.
pub struct TestCluster {
    directory: tempfile::TempDir,
    nodes: usize,
    /// The heartbeat port.
    pub port: u16,
    children: Vec<Option<Child>>,
    namespaces: Option<Namespaces>,
    /// The `cmcld` to start instead of the debug build [`binary`] finds (the benchmarks use
    /// a release build).
    program: Option<PathBuf>,
    /// The port of the nodes' WBEM agents (node K on 127.0.0.K), when they run one.
    agent_port: Option<u16>,
    /// The daemons end when their node halts (`--exit-on-halt`), so that a test sees a
    /// halt as the process's exit; [`TestCluster::stay_after_halt`] turns it off.
    exit_on_halt: bool,
    /// More arguments for node K's later-started daemons, by K.
    pub daemon_args: std::collections::BTreeMap<usize, Vec<String>>,
    /// Nodes whose daemons run no agent even with [`TestCluster::with_agents`] (a test
    /// serves them with a `cmwbemd` of its own).
    pub without_agent: std::collections::BTreeSet<usize>,
}

impl TestCluster {
    /// Writes the configuration of `nodes` nodes on loopback addresses with MEMBER_TIMEOUT
    /// `member_timeout` and the extra cluster file lines `extra`; starts no daemon.
    pub fn configure(nodes: usize, member_timeout: Duration, extra: &str) -> TestCluster {
        TestCluster::build(nodes, member_timeout, extra, "", None)
    }

    /// [`TestCluster::configure`] with `node_extra` added to each node's block of the cluster
    /// file (a CLUSTER_LOCK_LUN line, say).
    pub fn configure_with_node_lines(
        nodes: usize,
        member_timeout: Duration,
        extra: &str,
        node_extra: &str,
    ) -> TestCluster {
        TestCluster::build(nodes, member_timeout, extra, node_extra, None)
    }

    /// The same in network namespaces of their own ([`Namespaces`]), each node's block of
    /// the cluster file with `node_extra` added (a CLUSTER_LOCK_LUN line, say). Panics
    /// when the namespaces cannot be made (not root, no `ip`).
    pub fn configure_in_namespaces(
        nodes: usize,
        member_timeout: Duration,
        extra: &str,
        node_extra: &str,
    ) -> TestCluster {
        let namespaces = Namespaces::create(nodes, 2).unwrap_or_else(|e| panic!("{e}"));
        TestCluster::build(nodes, member_timeout, extra, node_extra, Some(namespaces))
    }

    fn build(
        nodes: usize,
        member_timeout: Duration,
        extra: &str,
        node_extra: &str,
        namespaces: Option<Namespaces>,
    ) -> TestCluster {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let mut text = format!(
            "CLUSTER_NAME testcluster\nMEMBER_TIMEOUT {}\n{extra}",
            member_timeout.as_micros()
        );
        for k in 1..=nodes {
            let (first, second) = match &namespaces {
                Some(ns) => (
                    format!("eth0\n  HEARTBEAT_IP {}", ns.address(k, 0)),
                    format!("eth1\n  HEARTBEAT_IP {}", ns.address(k, 1)),
                ),
                None => (
                    format!("lo\n  HEARTBEAT_IP 127.0.0.{k}"),
                    format!("lo1\n  HEARTBEAT_IP 127.0.1.{k}"),
                ),
            };
            text.push_str(&format!(
                "NODE_NAME n{k}\n NETWORK_INTERFACE {first}\n NETWORK_INTERFACE {second}\n{node_extra}"
            ));
        }
        // The control channel's material: one authority for the cluster, a certificate per
        // node naming it and its heartbeat addresses.
        let authority =
            cimguard_certs::ensure_cluster_authority(&directory.path().join("ca"), "testcluster")
                .expect("the cluster authority");
        for k in 1..=nodes {
            let dir = directory.path().join(format!("n{k}"));
            std::fs::create_dir_all(&dir).expect("a node directory");
            let addresses: Vec<std::net::IpAddr> = match &namespaces {
                Some(ns) => vec![ns.address(k, 0), ns.address(k, 1)],
                None => vec![
                    format!("127.0.0.{k}").parse().expect("an address"),
                    format!("127.0.1.{k}").parse().expect("an address"),
                ],
            };
            cimguard_certs::issue_node_certificate(&authority, &format!("n{k}"), &addresses, &dir)
                .expect("the node's certificate");
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .expect("node directory permissions");
            std::fs::write(dir.join("cluster.ascii"), &text).expect("the cluster file");
            let key = dir.join("cluster.key");
            std::fs::write(&key, KEY).expect("the key");
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
                .expect("key permissions");
        }
        let port = if namespaces.is_some() {
            HEARTBEAT_PORT
        } else {
            crate::ports::free_port()
        };
        TestCluster {
            directory,
            nodes,
            port,
            children: (0..nodes).map(|_| None).collect(),
            namespaces,
            program: None,
            exit_on_halt: true,
            daemon_args: std::collections::BTreeMap::new(),
            agent_port: None,
            without_agent: Default::default(),
        }
    }

    /// Every node started from now on runs its WBEM agent on 127.0.0.K (node K) at one free
    /// port, with the users file `users` of (name, role, password) written in the cluster's
    /// folder. Loopback clusters only.
    pub fn with_agents(&mut self, users: &[(&str, &str, &str)]) {
        assert!(self.namespaces.is_none(), "agents run in loopback clusters");
        crate::agent::users_file(&self.users_path(), users).unwrap_or_else(|e| panic!("{e}"));
        self.agent_port = Some(crate::ports::free_port());
    }

    /// The users file of [`TestCluster::with_agents`].
    fn users_path(&self) -> PathBuf {
        self.directory.path().join("users")
    }

    /// The URL of node `k`'s WBEM agent.
    pub fn agent_url(&self, k: usize) -> String {
        let port = self.agent_port.expect("agents configured");
        format!("https://127.0.0.{k}:{port}")
    }

    /// The authority of node `k`'s agent certificate.
    pub fn agent_ca(&self, k: usize) -> PathBuf {
        self.dir(k).join("tls").join("ca.pem")
    }

    /// The namespaces, for a cluster made with [`TestCluster::configure_in_namespaces`].
    pub fn namespaces(&self) -> &Namespaces {
        self.namespaces.as_ref().expect("a cluster in namespaces")
    }

    /// Node `k` drops what it receives from `from` on `networks` (replacing its earlier
    /// rules; nothing given: it drops nothing).
    pub fn drop_input(&self, k: usize, from: &[usize], networks: &[usize]) {
        let ns = self.namespaces();
        let rules = if from.is_empty() {
            Vec::new()
        } else {
            vec![ns.drop_from(from, networks)]
        };
        ns.set_input_rules(k, &rules)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// A partition into `groups` on every network: each node drops what comes from nodes
    /// outside its group.
    pub fn partition(&self, groups: &[&[usize]]) {
        for group in groups {
            let others: Vec<usize> = (1..=self.nodes).filter(|j| !group.contains(j)).collect();
            for k in *group {
                self.drop_input(*k, &others, &[0, 1]);
            }
        }
    }

    /// Adds package file `text` as `packages/NAME.conf` on every node (before they start).
    pub fn add_package(&self, name: &str, text: &str) {
        for k in 1..=self.nodes {
            let dir = self.dir(k).join("packages");
            std::fs::create_dir_all(&dir).expect("the packages directory");
            std::fs::write(dir.join(format!("{name}.conf")), text).expect("the package file");
        }
    }

    /// Adds the demo's packages (on three nodes n1 to n3): dbpkg (a service that writes its
    /// pid to `$SGRUN/db.pid`, two restarts, the generic resource sfm_disk), webpkg (depends
    /// on dbpkg, fails back automatically) and monpkg (multi-node).
    pub fn add_demo_packages(&self) {
        self.add_package(
            "dbpkg",
            "package_name dbpkg\npackage_description Example database\npackage_type failover\n\
             node_name n1\nnode_name n2\nnode_name n3\nauto_run yes\n\
             service_name db_monitor\nservice_cmd \"echo $$ > $SGRUN/db.pid; exec sleep 100000\"\n\
             service_restart 2\n\
             generic_resource_name sfm_disk\ngeneric_resource_evaluation_type during_package_start\n",
        );
        self.add_package(
            "webpkg",
            "package_name webpkg\npackage_type failover\nnode_name n2\nnode_name n3\nnode_name n1\n\
             auto_run yes\nfailback_policy automatic\nservice_name web\n\
             service_cmd \"exec sleep 100000\"\n\
             dependency_name db\ndependency_condition dbpkg = up\ndependency_location any_node\n",
        );
        self.add_package(
            "monpkg",
            "package_name monpkg\npackage_type multi_node\nnode_name n1\nnode_name n2\n\
             node_name n3\nauto_run yes\nservice_name mon\nservice_cmd \"exec sleep 100000\"\n",
        );
    }

    /// A three-node cluster of the demo's shape ([`TestCluster::add_demo_packages`]), with
    /// agents for `users` ([`TestCluster::with_agents`]), started.
    pub fn demo(member_timeout: Duration, users: &[(&str, &str, &str)]) -> TestCluster {
        TestCluster::demo_shaped(member_timeout, users, false)
    }

    /// [`TestCluster::demo`] whose daemons (and their agents) stay once halted, as cmcld
    /// does by default ([`TestCluster::stay_after_halt`]).
    pub fn staying_demo(member_timeout: Duration, users: &[(&str, &str, &str)]) -> TestCluster {
        TestCluster::demo_shaped(member_timeout, users, true)
    }

    fn demo_shaped(
        member_timeout: Duration,
        users: &[(&str, &str, &str)],
        stay: bool,
    ) -> TestCluster {
        let mut cluster = TestCluster::configure(3, member_timeout, "");
        cluster.with_agents(users);
        cluster.add_demo_packages();
        if stay {
            cluster.stay_after_halt();
        }
        cluster.start_all();
        cluster
    }

    /// The pid of dbpkg's service on node `k` (the demo's service writes it at each start),
    /// if it runs.
    pub fn db_pid(&self, k: usize) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.dir(k).join("db.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }

    /// The Python client `script` (tests/python) pointed at node `k`'s agent as `user`:
    /// `--url`, `--ca-certs`, `--user` and `--password` given.
    pub fn agent_script(&self, k: usize, script: &str, user: (&str, &str)) -> Command {
        let mut command = crate::pyagent::client_script(script).unwrap_or_else(|e| panic!("{e}"));
        command
            .arg("--url")
            .arg(self.agent_url(k))
            .arg("--ca-certs")
            .arg(self.agent_ca(k))
            .arg("--user")
            .arg(user.0)
            .arg("--password")
            .arg(user.1);
        command
    }

    /// One operation of `tests/python/cluster_cim.py` (pywbem) on node `k`'s agent as
    /// `user`; the JSON answer.
    pub fn cim(&self, k: usize, user: (&str, &str), op: &serde_json::Value) -> serde_json::Value {
        use crate::pyagent::{describe, output_within};
        let mut command = self.agent_script(k, "cluster_cim.py", user);
        command.arg(op.to_string());
        let output = output_within(&mut command, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        assert!(
            output.status.success(),
            "cluster_cim.py {op} failed:\n{}\n{}",
            describe(&output),
            self.log(k)
        );
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", describe(&output)))
    }

    /// Writes an executable shell script `name` with body `body` in the cluster's folder; its
    /// path.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.directory.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("the script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("script permissions");
        path
    }

    /// Where node `k` sees `package` active, by node name (empty: nowhere), as long as node
    /// `k` answers and is up.
    pub fn owners(&self, k: usize, package: &str) -> Option<Vec<String>> {
        let status = self.status(k).ok()?;
        let cluster = status.cluster;
        if cluster.status.as_str() != "up" {
            return None;
        }
        let row = cluster.packages.iter().find(|p| p.name == package)?;
        Some(
            row.owners
                .iter()
                .filter_map(|n| cluster.nodes.get(n.index()).map(|r| r.name.clone()))
                .collect(),
        )
    }

    /// The cluster's folder: every node's directory, the users file, the scripts.
    pub fn root(&self) -> &Path {
        self.directory.path()
    }

    /// The state directory of node `k` (1-based).
    pub fn dir(&self, k: usize) -> PathBuf {
        self.directory.path().join(format!("n{k}"))
    }

    /// A service_cmd that runs while it holds an exclusive lock on `package`'s lock file,
    /// shared by every node (the namespaces share the file system). An instance that
    /// starts while another still runs cannot take it and records a double start
    /// ([`TestCluster::double_starts`]): the check that a package never runs on two nodes
    /// at once, at the level of its processes. The service's pid is in `$SGRUN/svc.pid`.
    pub fn exclusive_service(&self, package: &str) -> String {
        let base = self.directory.path().display();
        format!(
            "echo $$ > $SGRUN/svc.pid; flock -n {base}/{package}.lock sleep 100000 || \
             echo $SG_NODE >> {base}/{package}.double"
        )
    }

    /// The nodes on which an [`TestCluster::exclusive_service`] of `package` started while
    /// another instance held its lock.
    pub fn double_starts(&self, package: &str) -> Vec<String> {
        std::fs::read_to_string(self.directory.path().join(format!("{package}.double")))
            .map(|text| text.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Starts `program` as every later-started node's daemon, instead of the build
    /// [`binary`] finds.
    pub fn use_program(&mut self, program: &Path) {
        self.program = Some(program.to_path_buf());
    }

    /// Later-started daemons stay when their node halts, as cmcld does by default: their
    /// admin socket and agent answer, and cmrunnode or cmruncl starts them again.
    pub fn stay_after_halt(&mut self) {
        self.exit_on_halt = false;
    }

    /// Starts the daemon of node `k` (its log goes to `cmcld.log` in its directory,
    /// appended across lives).
    pub fn start(&mut self, k: usize) {
        let program = match &self.program {
            Some(program) => program.clone(),
            None => binary("cmcld").unwrap_or_else(|e| panic!("{e}")),
        };
        let dir = self.dir(k);
        let log = File::options()
            .create(true)
            .append(true)
            .open(dir.join("cmcld.log"))
            .expect("the node's log");
        let mut command = match &self.namespaces {
            Some(ns) => ns.command(k, &program),
            None => Command::new(program),
        };
        let child = command
            .arg("--state-dir")
            .arg(&dir)
            .arg("--node")
            .arg(format!("n{k}"))
            .arg("--heartbeat-port")
            .arg(self.port.to_string())
            .args(
                self.agent_port
                    .iter()
                    .filter(|_| !self.without_agent.contains(&k))
                    .flat_map(|port| {
                        [
                            "--wbem-listen".to_owned(),
                            format!("127.0.0.{k}:{port}"),
                            "--users-file".to_owned(),
                            self.users_path().display().to_string(),
                        ]
                    }),
            )
            .args(self.exit_on_halt.then_some("--exit-on-halt"))
            // Unconfigured (no cluster file), a loopback node listens for a cmapplyconf
            // that adds it on its own addresses: every address is every node's.
            .args(
                self.namespaces
                    .is_none()
                    .then(|| {
                        [
                            "--config-listen".to_owned(),
                            format!("127.0.0.{k}"),
                            "--config-listen".to_owned(),
                            format!("127.0.1.{k}"),
                        ]
                    })
                    .into_iter()
                    .flatten(),
            )
            .args(self.daemon_args.get(&k).into_iter().flatten())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("cmcld starts");
        self.children[k - 1] = Some(child);
    }

    /// Starts every node.
    pub fn start_all(&mut self) {
        for k in 1..=self.nodes {
            self.start(k);
        }
    }

    /// The process id of node `k`'s daemon.
    pub fn pid(&self, k: usize) -> u32 {
        self.children[k - 1].as_ref().expect("node started").id()
    }

    /// Sends `signal` (a `kill` name such as KILL, STOP, CONT) to node `k`'s daemon.
    pub fn signal(&self, k: usize, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid(k).to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} node {k}");
    }

    /// Whether node `k`'s daemon has ended; its exit status if so (reaped).
    pub fn exited(&mut self, k: usize) -> Option<ExitStatus> {
        self.children[k - 1]
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
    }

    /// Runs the cm* command `name ARGS` against node `k`'s agent over HTTPS as `user`
    /// (name, password), at most `bound` (panics with the nodes' logs past it).
    pub fn agent_command(
        &self,
        k: usize,
        user: (&str, &str),
        name: &str,
        args: &[&str],
        bound: Duration,
    ) -> std::process::Output {
        let program = binary(name).unwrap_or_else(|e| panic!("{e}"));
        let mut command = crate::pyagent::client_command(program);
        command
            .args(args)
            .env("CIMGUARD_URL", self.agent_url(k))
            .env("CIMGUARD_USER", user.0)
            .env("CIMGUARD_PASSWORD", user.1)
            .env("CIMGUARD_CA", self.agent_ca(k));
        crate::pyagent::output_within(&mut command, bound)
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    /// Sends `request` to node `k`'s admin socket.
    pub fn request(&self, k: usize, request: &Request) -> Result<Reply, String> {
        let path = self.dir(k).join("cmcld.sock");
        let stream = UnixStream::connect(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
        let mut line = serde_json::to_string(request).map_err(|e| e.to_string())?;
        line.push('\n');
        writer
            .write_all(line.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        BufReader::new(stream)
            .read_line(&mut answer)
            .map_err(|e| e.to_string())?;
        serde_json::from_str(&answer).map_err(|e| format!("{e}: {answer}"))
    }

    /// Node `k`'s status, or why there is none (not running, not answering).
    pub fn status(&self, k: usize) -> Result<DaemonStatus, String> {
        match self.request(k, &Request::Status)? {
            Reply::Status(status) => Ok(*status),
            other => Err(format!("not a status: {other:?}")),
        }
    }

    /// The members node `k` sees up, by name, and the epoch: None when it is not up.
    pub fn members(&self, k: usize) -> Option<(Vec<String>, u64)> {
        let status = self.status(k).ok()?;
        let cluster = status.cluster;
        if cluster.status.as_str() != "up" {
            return None;
        }
        let up = cluster
            .nodes
            .iter()
            .filter(|n| n.condition.status.as_str() == "up")
            .map(|n| n.name.clone())
            .collect();
        Some((up, cluster.epoch.0))
    }

    /// Waits at most `timeout` for `condition`; panics with `what` and every log if it never
    /// holds.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        what: &str,
        mut condition: impl FnMut(&mut Self) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            if condition(self) {
                return;
            }
            if Instant::now() >= deadline {
                panic!("{what}: not within {timeout:?}\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every node's log.
    pub fn logs(&self) -> String {
        (1..=self.nodes)
            .map(|k| {
                let text =
                    std::fs::read_to_string(self.dir(k).join("cmcld.log")).unwrap_or_default();
                format!("--- n{k} ---\n{text}")
            })
            .collect()
    }

    /// Node `k`'s log.
    pub fn log(&self, k: usize) -> String {
        std::fs::read_to_string(self.dir(k).join("cmcld.log")).unwrap_or_default()
    }

    /// The temporary folder holding every node's directory.
    pub fn path(&self) -> &Path {
        self.directory.path()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
