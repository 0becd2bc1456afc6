//! cmapplyconf against three real `cmcld` processes on loopback, each serving its WBEM agent:
//! files that are the configuration in effect change nothing and say so at once, on a node
//! that does not coordinate too; files merged into a generation that is no longer in effect
//! are refused (compare-and-swap), so that one operator's change never undoes another's.
//!
//! Needs `cargo build --bins` (cmcld and the commands) and, for the direct method call, the
//! venv of `scripts/test` with pywbem (the test fails, never skips, without them).

use std::process::Output;
use std::time::Duration;

use cimguard_tests::cluster::TestCluster;
use cimguard_tests::pyagent::{client_command, describe, output_within};

const MEMBER_TIMEOUT: Duration = Duration::from_secs(2);
/// Long enough for a formation and a configuration change under CI load.
const BOUND: Duration = Duration::from_secs(60);

const ADMIN: (&str, &str) = ("admin", "admin-secret-1");
const MONITOR: (&str, &str) = ("watcher", "monitor-secret-1");

fn package(name: &str) -> String {
    format!(
        "package_name {name}\npackage_type failover\nnode_name n1\nnode_name n2\nnode_name n3\n\
         auto_run no\nservice_name {name}_svc\nservice_cmd \"exec sleep 100000\"\n"
    )
}

fn formed() -> TestCluster {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.with_agents(&[(ADMIN.0, "FULL_ADMIN", ADMIN.1)]);
    cluster.add_package("pkgA", &package("pkgA"));
    cluster.add_package("pkgB", &package("pkgB"));
    cluster.start_all();
    cluster.wait_for(BOUND, "a formed cluster of three", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    cluster
}

/// Runs the command `name ARGS` against node `k`'s agent as the administrator.
fn command(cluster: &TestCluster, k: usize, name: &str, args: &[&str]) -> Output {
    cluster.agent_command(k, ADMIN, name, args, Duration::from_secs(120))
}

/// `name ARGS`, which must succeed: its standard output.
fn succeeds(cluster: &TestCluster, k: usize, name: &str, args: &[&str]) -> String {
    let output = command(cluster, k, name, args);
    assert!(
        output.status.success(),
        "{name} {args:?} failed:\n{}\n{}",
        describe(&output),
        cluster.log(k)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// The configuration generation in effect on every node (panics unless they agree).
fn generation(cluster: &TestCluster) -> u64 {
    let generations: Vec<u64> = (1..=3)
        .map(|k| {
            cluster
                .status(k)
                .unwrap_or_else(|e| panic!("n{k}: {e}"))
                .cluster
                .generation
        })
        .collect();
    assert!(
        generations.windows(2).all(|w| w[0] == w[1]),
        "{generations:?}"
    );
    generations[0]
}

/// A node that does not coordinate the cluster (1-based).
fn not_coordinating(cluster: &TestCluster) -> usize {
    let snapshot = cluster.status(1).unwrap().cluster;
    let coordinator = snapshot.coordinator.expect("a coordinator");
    (1..=3)
        .find(|&k| k - 1 != coordinator.0 as usize)
        .expect("three nodes")
}

/// The static method `method` of HP_SGClusteringService through node `k`'s agent, called
/// with pywbem as any CIM client would, with `params` (a JSON object: a string, a list of
/// strings, or `{"uint64": N}` each): the return value and the output parameters, as JSON.
fn invoke_with_pywbem(
    cluster: &TestCluster,
    k: usize,
    method: &str,
    params: &serde_json::Value,
) -> serde_json::Value {
    const SCRIPT: &str = r#"
import json, sys
import pywbem
url, ca, user, password, method, params = sys.argv[1:7]
def typed(value):
    return pywbem.Uint64(value["uint64"]) if isinstance(value, dict) else value
connection = pywbem.WBEMConnection(url, (user, password), default_namespace="root/cimv2",
                                   ca_certs=ca, timeout=120)
value, out = connection.InvokeMethod(
    method, "HP_SGClusteringService",
    **{name: typed(v) for name, v in json.loads(params).items()})
print(json.dumps({"return": int(value),
                  "out": {name: (v if v is None or isinstance(v, (bool, str)) else str(v))
                          for name, v in out.items()}}))
"#;
    let python = cimguard_tests::python().unwrap_or_else(|e| panic!("{e}"));
    let mut command = client_command(python);
    command
        .arg("-c")
        .arg(SCRIPT)
        .arg(cluster.agent_url(k))
        .arg(cluster.agent_ca(k))
        .arg(ADMIN.0)
        .arg(ADMIN.1)
        .arg(method)
        .arg(params.to_string());
    let output = output_within(&mut command, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert!(output.status.success(), "pywbem: {}", describe(&output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(&output)))
}

/// ApplyConfiguration of `packages` merged into generation `base`, through pywbem.
fn apply_with_pywbem(
    cluster: &TestCluster,
    k: usize,
    base: u64,
    packages: &[String],
) -> serde_json::Value {
    let params = serde_json::json!({"BaseGeneration": {"uint64": base}, "PackageFiles": packages});
    invoke_with_pywbem(cluster, k, "ApplyConfiguration", &params)
}

#[test]
fn cmapplyconf_of_the_configuration_in_effect_changes_nothing_and_a_stale_one_is_refused() {
    let mut cluster = formed();
    let work = tempfile::tempdir().unwrap();
    let file = |name: &str| work.path().join(name).display().to_string();
    let k = not_coordinating(&cluster);
    let before = generation(&cluster);

    // The files in effect, read with cmgetconf and applied again on a node that does not
    // coordinate: unchanged, exit 0, nothing distributed.
    std::fs::write(
        file("cluster.ascii"),
        succeeds(&cluster, k, "cmgetconf", &[]),
    )
    .unwrap();
    succeeds(
        &cluster,
        k,
        "cmgetconf",
        &["-p", "pkgA", &file("pkgA.conf")],
    );
    succeeds(
        &cluster,
        k,
        "cmgetconf",
        &["-p", "pkgB", &file("pkgB.conf")],
    );
    let unchanged = succeeds(
        &cluster,
        k,
        "cmapplyconf",
        &["-f", "-P", &file("pkgA.conf")],
    );
    assert!(
        unchanged.contains("No changes to the cluster configuration")
            && unchanged.contains(&format!("generation {before}")),
        "{unchanged}"
    );
    let whole = succeeds(
        &cluster,
        k,
        "cmapplyconf",
        &[
            "-f",
            "-C",
            &file("cluster.ascii"),
            "-P",
            &file("pkgB.conf"),
            "-P",
            &file("pkgA.conf"),
        ],
    );
    assert!(
        whole.contains("No changes to the cluster configuration"),
        "{whole}"
    );
    assert_eq!(generation(&cluster), before);

    // Two files for one package: refused with the second file's line, nothing applied,
    // never the last file winning.
    std::fs::write(file("pkgC.conf"), package("pkgC")).unwrap();
    std::fs::write(
        file("pkgC_fb.conf"),
        package("pkgC").replace("node_name n1\n", ""),
    )
    .unwrap();
    let twice = command(
        &cluster,
        k,
        "cmapplyconf",
        &["-f", "-P", &file("pkgC.conf"), "-P", &file("pkgC_fb.conf")],
    );
    let said = describe(&twice);
    assert_eq!(twice.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "{}:1: error: PACKAGE_NAME: package pkgC is also defined in {}",
            file("pkgC_fb.conf"),
            file("pkgC.conf")
        )) && !said.contains("Completed the cluster update"),
        "{said}"
    );
    // The findings as cmcheckconf prints them, the command's name on its last word only.
    let stderr = String::from_utf8_lossy(&twice.stderr);
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    assert!(
        lines.len() >= 2
            && lines.last().is_some_and(|l| l.starts_with("cmapplyconf: "))
            && lines[..lines.len() - 1]
                .iter()
                .all(|l| !l.starts_with("cmapplyconf: ")),
        "{stderr}"
    );
    assert_eq!(generation(&cluster), before);

    // A real change: pkgC added, a new generation everywhere.
    let applied = succeeds(
        &cluster,
        k,
        "cmapplyconf",
        &["-f", "-P", &file("pkgC.conf")],
    );
    assert!(
        applied.contains("Completed the cluster update"),
        "{applied}"
    );
    cluster.wait_for(BOUND, "the new generation on every node", |c| {
        (1..=3).all(|j| c.status(j).is_ok_and(|s| s.cluster.generation > before))
    });
    let after = generation(&cluster);

    // Another operator merged into the generation read before pkgC came: refused (4) with
    // the reason, and pkgC stays.
    let old_set = [package("pkgA"), package("pkgB")];
    let answer = apply_with_pywbem(&cluster, k, before, &old_set);
    assert_eq!(answer["return"], 4, "{answer}");
    let message = answer["out"]["Message"].as_str().unwrap_or_default();
    assert!(
        message.contains("cmgetconf") && message.contains(&format!("generation {after}")),
        "{answer}"
    );
    assert_eq!(generation(&cluster), after);
    let listed = succeeds(&cluster, k, "cmgetconf", &["-p", "pkgC"]);
    assert!(listed.contains("pkgC"), "{listed}");

    // The set in effect, through a CIM client: unchanged, nothing distributed.
    let in_effect = [package("pkgA"), package("pkgB"), package("pkgC")];
    let answer = apply_with_pywbem(&cluster, k, after, &in_effect);
    assert_eq!(answer["return"], 0, "{answer}");
    assert_eq!(answer["out"]["Unchanged"], true, "{answer}");
    assert_eq!(generation(&cluster), after);

    // No package files, with or without the cluster file: the packages in effect, as no
    // cluster file is the cluster file in effect (never "no package": every one deleted).
    let cluster_file = std::fs::read_to_string(file("cluster.ascii")).unwrap();
    for params in [
        serde_json::json!({}),
        serde_json::json!({"ClusterFile": cluster_file}),
    ] {
        let answer = invoke_with_pywbem(&cluster, k, "ApplyConfiguration", &params);
        assert_eq!(answer["return"], 0, "{params}: {answer}");
        assert_eq!(answer["out"]["Unchanged"], true, "{params}: {answer}");
        let answer = invoke_with_pywbem(&cluster, k, "CheckConfiguration", &params);
        assert_eq!(answer["return"], 0, "{params}: {answer}");
        assert!(answer["out"]["Message"].is_null(), "{params}: {answer}");
    }
    assert_eq!(generation(&cluster), after);

    // Based on the generation in effect, the same call is taken: pkgC goes.
    let answer = apply_with_pywbem(&cluster, k, after, &old_set);
    assert_eq!(answer["return"], 0, "{answer}");
    assert!(answer["out"]["Unchanged"].is_null(), "{answer}");
    cluster.wait_for(BOUND, "pkgC deleted on every node", |c| {
        (1..=3).all(|j| {
            c.status(j).is_ok_and(|s| {
                s.cluster.generation > after && s.cluster.packages.iter().all(|p| p.name != "pkgC")
            })
        })
    });

    // An empty PackageFiles (not an absent one) is no package at all: every one deleted.
    let last = generation(&cluster);
    let answer = apply_with_pywbem(&cluster, k, last, &[]);
    assert_eq!(answer["return"], 0, "{answer}");
    cluster.wait_for(BOUND, "every package deleted on every node", |c| {
        (1..=3).all(|j| {
            c.status(j)
                .is_ok_and(|s| s.cluster.generation > last && s.cluster.packages.is_empty())
        })
    });
}

#[test]
fn cmhaltnode_takes_node_names_exactly() {
    let cluster = formed();
    let k = not_coordinating(&cluster);
    let other = (1..=3).find(|&j| j != k).expect("three nodes");
    // NODE_NAME is a host name as configured: another spelling names no node, in the agent
    // as in the daemon, and nothing halts.
    let upper = format!("N{other}");
    let answer = invoke_with_pywbem(
        &cluster,
        k,
        "HaltNode",
        &serde_json::json!({"NodeName": upper}),
    );
    assert_eq!(answer["return"], 5, "{answer}");
    let message = answer["out"]["Message"].as_str().unwrap_or_default();
    assert!(message.contains("is not a node"), "{answer}");
    let output = command(&cluster, k, "cmhaltnode", &[&upper]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("is not a node"),
        "{}",
        describe(&output)
    );
    assert!((1..=3).all(|j| cluster.members(j).is_some_and(|(m, _)| m.len() == 3)));
}

/// The packages node `k` has in its configuration, sorted.
fn package_names(cluster: &TestCluster, k: usize) -> Option<Vec<String>> {
    let status = cluster.status(k).ok()?;
    let mut names: Vec<String> = status
        .cluster
        .packages
        .iter()
        .map(|p| p.name.clone())
        .collect();
    names.sort();
    Some(names)
}

#[test]
fn a_node_killed_while_cmapplyconf_distributes_leaves_one_configuration_everywhere() {
    let mut cluster = formed();
    let work = tempfile::tempdir().unwrap();
    // Each round kills another node at another moment of a cmapplyconf that adds a package:
    // a node that only receives, the coordinator, the node whose agent runs the command.
    for (round, (kind, delay)) in [
        ("receiver", 60),
        ("coordinator", 120),
        ("agent", 200),
        ("coordinator", 30),
        ("receiver", 350),
    ]
    .into_iter()
    .enumerate()
    {
        let coordinator = cluster
            .status(1)
            .unwrap()
            .cluster
            .coordinator
            .expect("a coordinator")
            .0 as usize
            + 1;
        let k = not_coordinating(&cluster);
        let receiver = (1..=3)
            .find(|&j| j != k && j != coordinator)
            .expect("three nodes");
        let victim = match kind {
            "receiver" => receiver,
            "coordinator" => coordinator,
            _ => k,
        };
        let before = generation(&cluster);
        let name = format!("pkgK{round}");
        let file = work.path().join(format!("{name}.conf"));
        std::fs::write(&file, package(&name)).unwrap();
        let file = file.display().to_string();
        let output = std::thread::scope(|scope| {
            let apply = scope.spawn(|| command(&cluster, k, "cmapplyconf", &["-f", "-P", &file]));
            std::thread::sleep(Duration::from_millis(delay));
            cluster.signal(victim, "KILL");
            apply.join().expect("cmapplyconf's thread")
        });
        cluster.wait_for(BOUND, "the killed daemon gone", |c| {
            c.exited(victim).is_some()
        });
        cluster.start(victim);
        cluster.wait_for(BOUND, "three members and one configuration again", |c| {
            (1..=3).all(|j| c.members(j).is_some_and(|(m, _)| m.len() == 3))
                && (1..=3)
                    .map(|j| c.status(j).ok().map(|s| s.cluster.generation))
                    .collect::<Option<Vec<_>>>()
                    .is_some_and(|g| g.windows(2).all(|w| w[0] == w[1]))
                && (1..=3)
                    .map(|j| package_names(c, j))
                    .collect::<Option<Vec<_>>>()
                    .is_some_and(|p| p.windows(2).all(|w| w[0] == w[1]))
        });
        let after = generation(&cluster);
        let names = package_names(&cluster, 1).unwrap();
        let added = names.contains(&name);
        eprintln!(
            "round {round}: killed the {kind} (n{victim}) {delay} ms in: cmapplyconf {}, \
             generation {before} -> {after}",
            if output.status.success() {
                "succeeded".to_string()
            } else {
                format!(
                    "failed ({})",
                    String::from_utf8_lossy(&output.stderr).trim()
                )
            }
        );
        // The package is there exactly when the generation moved on, and whenever the command
        // said it was applied.
        assert_eq!(
            added,
            after > before,
            "round {round} ({kind}): generation {before} -> {after}, packages {names:?}"
        );
        if output.status.success() {
            assert!(
                added,
                "round {round}: cmapplyconf said it was applied, but {name} is not in {names:?}:\n{}",
                describe(&output)
            );
        } else {
            // The victim stays down until the command returns, so the command learns what
            // became of its configuration from the membership that forms without the victim:
            // it never waits out its 60 s for a generation that cannot come, nor its daemon
            // the 10 s for an answer from a coordinator that is gone.
            let said = String::from_utf8_lossy(&output.stderr);
            assert!(
                !said.contains("within 60 s") && !said.contains("did not answer within"),
                "round {round} ({kind}): cmapplyconf waited for a lost configuration:\n{}",
                describe(&output)
            );
        }
    }
}

/// Whether every node's daemon is there and shows the cluster halted as a whole.
fn all_halted(cluster: &TestCluster) -> bool {
    (1..=3).all(|k| {
        cluster.status(k).is_ok_and(|s| {
            s.cluster.status.as_str() == "down"
                && s.cluster
                    .nodes
                    .iter()
                    .all(|n| n.condition.state.as_str() == "halted")
        })
    })
}

#[test]
fn cmapplyconf_with_the_cluster_halted_changes_member_timeout_and_heartbeat_addresses() {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.with_agents(&[(ADMIN.0, "FULL_ADMIN", ADMIN.1)]);
    cluster.add_package("pkgA", &package("pkgA"));
    cluster.stay_after_halt();
    cluster.start_all();
    cluster.wait_for(BOUND, "a formed cluster of three", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    let before = generation(&cluster);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("cluster.ascii").display().to_string();
    // The second heartbeat network moves from 127.0.1.K to 127.0.2.K, and MEMBER_TIMEOUT
    // from 2 s to 3 s: parameters a running cluster cannot change.
    let text = std::fs::read_to_string(cluster.dir(1).join("cluster.ascii")).unwrap();
    let changed = text
        .replace("MEMBER_TIMEOUT 2000000", "MEMBER_TIMEOUT 3000000")
        .replace("127.0.1.", "127.0.2.");
    assert!(changed.contains("MEMBER_TIMEOUT 3000000") && changed.contains("127.0.2.3"));
    std::fs::write(&file, &changed).unwrap();
    let refused = command(&cluster, 2, "cmapplyconf", &["-C", &file]);
    assert!(!refused.status.success(), "{}", describe(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("while the cluster is halted"),
        "{}",
        describe(&refused)
    );
    // Nor on a node halted while the cluster runs on the others: each command says where
    // to give it (once n3 has heard the others run since it halted).
    succeeds(&cluster, 3, "cmhaltnode", &[]);
    let mut said = (String::new(), String::new());
    cluster.wait_for(
        BOUND,
        "n3 halted, refusing as the cluster runs elsewhere",
        |c| {
            let run = |name| {
                let output =
                    c.agent_command(3, ADMIN, name, &["-C", &file], Duration::from_secs(30));
                // A refusal only (the report of cmcheckconf is on its standard output).
                if output.status.success() {
                    return String::new();
                }
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                )
            };
            said = (run("cmcheckconf"), run("cmapplyconf"));
            said.0
                .contains("the cluster runs on other nodes without this one")
                && said
                    .1
                    .contains("the cluster runs on other nodes without this one")
        },
    );
    assert!(
        said.0.contains("give cmcheckconf on a node that runs it"),
        "{}",
        said.0
    );
    assert!(
        said.1.contains("apply the files on a node that runs it") && said.1.contains("cmrunnode"),
        "{}",
        said.1
    );
    assert_eq!(generation(&cluster), before);
    // n3 joins again, so that each node sees the others halt.
    succeeds(&cluster, 3, "cmrunnode", &[]);
    cluster.wait_for(BOUND, "the three formed again", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });

    succeeds(&cluster, 1, "cmhaltcl", &["-f"]);
    cluster.wait_for(BOUND, "every node halted, its daemon still there", |c| {
        all_halted(c)
    });
    // A HEARTBEAT_IP that is no address of its node (one of the documentation networks that
    // this host has no address of: it is only bound, and that fails) is refused by each node
    // offered the change, and by the node given it for its own; so too by cmcheckconf, which
    // asks every node as cmapplyconf does. Nothing is applied.
    let said = |output: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    for (k, node, address) in [(2, "n3", "127.0.2.3"), (2, "n2", "127.0.2.2")] {
        let foreign = work.path().join(format!("foreign-{node}.ascii"));
        let wrong = ["203.0.113.", "198.51.100.", "192.0.2."]
            .iter()
            .map(|network| address.replace("127.0.2.", network))
            .find(|a| std::net::UdpSocket::bind((a.as_str(), 0)).is_err())
            .expect("a documentation address this host does not have");
        std::fs::write(&foreign, changed.replace(address, &wrong)).unwrap();
        let foreign = foreign.display().to_string();
        let refused = command(&cluster, k, "cmapplyconf", &["-C", &foreign]);
        let why = format!("{node} cannot send heartbeats from HEARTBEAT_IP {wrong}");
        assert!(
            !refused.status.success() && said(&refused).contains(&why),
            "{}\n{}",
            describe(&refused),
            cluster.logs()
        );
        assert_eq!(generation(&cluster), before, "nothing applied");
        let checked = command(&cluster, k, "cmcheckconf", &["-C", &foreign]);
        assert!(
            !checked.status.success() && said(&checked).contains(&why),
            "{}",
            describe(&checked)
        );
        assert_eq!(generation(&cluster), before, "nothing applied");
    }
    // Files every node takes: cmcheckconf finds nothing, and the generation cmapplyconf
    // gives after it is the next one.
    let checked = succeeds(&cluster, 3, "cmcheckconf", &["-C", &file]);
    assert!(
        checked.contains("cmcheckconf: Verification completed"),
        "{checked}"
    );
    let out = succeeds(&cluster, 2, "cmapplyconf", &["-C", &file]);
    assert_completed(&out, before + 1);
    // In effect on every halted node, and written into every state directory.
    for k in 1..=3 {
        let status = cluster.status(k).unwrap();
        assert_eq!(
            status.cluster.generation,
            before + 1,
            "n{k}: {}",
            cluster.logs()
        );
        assert_eq!(
            status.cluster.member_timeout,
            Duration::from_secs(3),
            "n{k}"
        );
        let written = std::fs::read_to_string(cluster.dir(k).join("cluster.ascii")).unwrap();
        let timeout = written
            .lines()
            .any(|l| l.split_whitespace().eq(["MEMBER_TIMEOUT", "3000000"]));
        assert!(timeout && written.contains("127.0.2.1"), "n{k}: {written}");
        assert!(cluster.dir(k).join("packages/pkgA.conf").is_file(), "n{k}");
    }

    // cmdeleteconf -p deletes a package the same way; the whole cluster's configuration
    // only when told so (-f, with no terminal to ask on).
    let whole = command(&cluster, 1, "cmdeleteconf", &[]);
    assert!(!whole.status.success(), "{}", describe(&whole));
    assert!(
        String::from_utf8_lossy(&whole.stderr).contains("give -f to do so"),
        "{}",
        describe(&whole)
    );
    // Taken at once: a running heartbeat sent before the cmhaltcl that comes late (overtaken
    // on the other network) speaks of the cluster that halted, not of one that runs.
    let deleted = command(&cluster, 1, "cmdeleteconf", &["-p", "pkgA"]);
    assert!(
        deleted.status.success(),
        "{}\n{}",
        describe(&deleted),
        cluster.logs()
    );
    for k in 1..=3 {
        assert_eq!(
            cluster.status(k).unwrap().cluster.generation,
            before + 2,
            "n{k}"
        );
        assert!(!cluster.dir(k).join("packages/pkgA.conf").exists(), "n{k}");
    }

    // n2's files edited by hand back to the old ones: its next life writes them again from the
    // generation in effect rather than start on the old addresses.
    std::fs::write(cluster.dir(2).join("cluster.ascii"), &text).unwrap();

    // cmruncl: every node starts a new life on the new addresses and forms the cluster,
    // its heartbeats passing on both networks.
    succeeds(&cluster, 3, "cmruncl", &["-w", "none"]);
    cluster.wait_for(BOUND, "the cluster formed again, both networks up", |c| {
        (1..=3).all(|k| {
            c.status(k).is_ok_and(|s| {
                let moved = s.cluster.nodes.iter().all(|n| {
                    n.interfaces.iter().any(|i| {
                        i.status.as_str() == "up"
                            && i.addresses
                                .iter()
                                .any(|(a, _)| a.to_string().starts_with("127.0.2."))
                    })
                });
                s.cluster.status.as_str() == "up"
                    && s.cluster
                        .nodes
                        .iter()
                        .all(|n| n.condition.status.as_str() == "up")
                    && moved
            })
        })
    });
    assert_eq!(generation(&cluster), before + 2);
    let rewritten = std::fs::read_to_string(cluster.dir(2).join("cluster.ascii")).unwrap();
    assert!(rewritten.contains("127.0.2.2"), "{rewritten}");
    assert!(
        cluster.log(2).contains("written again from it"),
        "{}",
        cluster.log(2)
    );
    let status = cluster.status(1).unwrap();
    assert_eq!(status.cluster.member_timeout, Duration::from_secs(3));
    assert!(status.cluster.packages.is_empty());
}

#[test]
fn cmapplyconf_changes_member_timeout_while_the_cluster_runs() {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.with_agents(&[(ADMIN.0, "FULL_ADMIN", ADMIN.1)]);
    let service = cluster.exclusive_service("pkgA");
    cluster.add_package(
        "pkgA",
        &format!(
            "package_name pkgA\nnode_name n3\nnode_name n1\nnode_name n2\nauto_run yes\n\
             service_name svc\nservice_cmd \"{service}\"\n"
        ),
    );
    cluster.start_all();
    cluster.wait_for(BOUND, "a formed cluster of three, pkgA on n3", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
            && c.owners(1, "pkgA") == Some(vec!["n3".to_owned()])
    });
    let before = generation(&cluster);
    let epoch = cluster.members(1).unwrap().1;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("cluster.ascii").display().to_string();
    let text = std::fs::read_to_string(cluster.dir(1).join("cluster.ascii")).unwrap();
    let changed = text.replace("MEMBER_TIMEOUT 2000000", "MEMBER_TIMEOUT 4000000");
    assert!(changed.contains("MEMBER_TIMEOUT 4000000"));
    std::fs::write(&file, &changed).unwrap();
    let checked = succeeds(&cluster, 2, "cmcheckconf", &["-C", &file]);
    assert!(
        checked.contains("cmcheckconf: Verification completed"),
        "{checked}"
    );
    let out = succeeds(&cluster, 2, "cmapplyconf", &["-f", "-C", &file]);
    let after = generation(&cluster);
    assert!(after > before);
    assert!(
        out.contains(&format!(
            "Completed the cluster update (configuration generation {after})"
        )),
        "{out}"
    );
    // In effect on every member (each persisted it; its files are written from it when it
    // starts again), the package still where it was, and the failover the status promises
    // follows the new timing.
    for k in 1..=3 {
        let status = cluster.status(k).unwrap();
        assert_eq!(
            status.cluster.member_timeout,
            Duration::from_secs(4),
            "n{k}"
        );
        assert!(status.failover_bound_seconds > 4.0, "n{k}");
    }
    assert_eq!(cluster.owners(1, "pkgA"), Some(vec!["n3".to_owned()]));
    let view = succeeds(&cluster, 1, "cmviewcl", &["-v", "-f", "line"]);
    assert!(view.contains("member_timeout=4000000"), "{view}");

    // n3 stops at once, its last heartbeats announcing the new lease: the others re-form
    // without it and start pkgA only once its safety timer has killed it, never while its
    // instance holds the package's lock.
    cluster.signal(3, "STOP");
    cluster.wait_for(BOUND, "n1 and n2 re-form without n3", |c| {
        (1..=2).all(|k| {
            c.members(k)
                .is_some_and(|(m, e)| m.len() == 2 && e != epoch)
        })
    });
    cluster.wait_for(BOUND, "n3 is killed by its safety timer", |c| {
        c.exited(3)
            .is_some_and(|status| std::os::unix::process::ExitStatusExt::signal(&status) == Some(9))
    });
    cluster.wait_for(BOUND, "pkgA starts on n1", |c| {
        c.owners(1, "pkgA") == Some(vec!["n1".to_owned()])
    });
    assert_eq!(cluster.double_starts("pkgA"), Vec::<String>::new());
}

#[test]
fn a_node_told_to_end_during_a_cmapplyconf_with_the_cluster_halted_ends_after_it() {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.with_agents(&[(ADMIN.0, "FULL_ADMIN", ADMIN.1)]);
    cluster.stay_after_halt();
    cluster.start_all();
    cluster.wait_for(BOUND, "a formed cluster of three", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    let before = generation(&cluster);
    succeeds(&cluster, 1, "cmhaltcl", &["-f"]);
    cluster.wait_for(BOUND, "every node halted, its daemon still there", |c| {
        all_halted(c)
    });
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("cluster.ascii").display().to_string();
    let text = std::fs::read_to_string(cluster.dir(1).join("cluster.ascii")).unwrap();
    std::fs::write(
        &file,
        text.replace("MEMBER_TIMEOUT 2000000", "MEMBER_TIMEOUT 3000000"),
    )
    .unwrap();
    // n3 is stopped, so that n1's offer waits for it (up to 4 s): n1 is told to end (a
    // system shutdown) meanwhile. It ends only once the change is over, everywhere.
    cluster.signal(3, "STOP");
    let output = std::thread::scope(|scope| {
        let applying = scope.spawn(|| command(&cluster, 1, "cmapplyconf", &["-C", &file]));
        let logged = |what: &str| {
            let deadline = std::time::Instant::now() + BOUND;
            while !cluster.log(1).contains(what) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "n1 never said {what:?}:\n{}",
                    cluster.logs()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        logged("the new configuration is offered to every node");
        cluster.signal(1, "TERM");
        logged("ending once the configuration change on its way");
        cluster.signal(3, "CONT");
        applying.join().expect("cmapplyconf ran")
    });
    assert!(
        output.status.success()
            && String::from_utf8_lossy(&output.stdout).contains(&format!(
                "Completed the cluster update (configuration generation {})",
                before + 1
            )),
        "{}\n{}",
        describe(&output),
        cluster.logs()
    );
    cluster.wait_for(BOUND, "n1 ends", |c| c.exited(1).is_some());
    for k in 1..=3 {
        let written = std::fs::read_to_string(cluster.dir(k).join("cluster.ascii")).unwrap();
        assert!(
            written
                .lines()
                .any(|l| l.split_whitespace().eq(["MEMBER_TIMEOUT", "3000000"])),
            "n{k}: {written}"
        );
    }
    for k in 2..=3 {
        assert_eq!(cluster.status(k).unwrap().cluster.generation, before + 1);
    }
}

/// A two-node cluster with a lock LUN renamed by cmapplyconf with the cluster halted: the
/// lock blocks its nodes wrote under the old name are cleared at the commit (each node its
/// own), so the lock still breaks the tie afterwards: with n2 killed, n1 wins the lock and
/// runs on alone rather than halting for a lock "of another cluster".
#[test]
fn a_cluster_renamed_with_the_cluster_halted_keeps_its_lock_lun_usable() {
    let lun = tempfile::NamedTempFile::new().unwrap();
    lun.as_file().set_len(1 << 20).unwrap();
    let mut cluster = TestCluster::configure_with_node_lines(
        2,
        MEMBER_TIMEOUT,
        "",
        &format!(" CLUSTER_LOCK_LUN {}\n", lun.path().display()),
    );
    cluster.with_agents(&[(ADMIN.0, "FULL_ADMIN", ADMIN.1)]);
    cluster.stay_after_halt();
    cluster.start_all();
    let both = |c: &TestCluster| (1..=2).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 2));
    cluster.wait_for(BOUND, "a formed cluster of two", |c| both(c));
    // n2 killed: n1 takes the lock (writing its block) and runs alone; n2 comes back.
    let alone = |c: &TestCluster| {
        c.members(1)
            .is_some_and(|(m, _)| m == vec!["n1".to_owned()])
    };
    cluster.signal(2, "KILL");
    cluster.wait_for(BOUND, "n1 wins the lock and runs alone", |c| alone(c));
    cluster.start(2);
    cluster.wait_for(BOUND, "both members again", |c| both(c));

    succeeds(&cluster, 1, "cmhaltcl", &["-f"]);
    cluster.wait_for(BOUND, "both nodes halted, their daemons still there", |c| {
        (1..=2).all(|k| {
            c.status(k)
                .is_ok_and(|s| s.cluster.status.as_str() == "down")
        })
    });
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("cluster.ascii").display().to_string();
    let text = std::fs::read_to_string(cluster.dir(1).join("cluster.ascii")).unwrap();
    let renamed = text.replace("CLUSTER_NAME testcluster", "CLUSTER_NAME renamed");
    assert_ne!(renamed, text);
    std::fs::write(&file, &renamed).unwrap();
    succeeds(&cluster, 2, "cmapplyconf", &["-C", &file]);
    let cleared = |c: &TestCluster, k: usize| {
        c.log(k)
            .matches("cleared this node's block of the lock LUN")
            .count()
    };
    // n1 clears the block it wrote under the old name; n2 never wrote one.
    cluster.wait_for(BOUND, "n1 cleared its lock block", |c| cleared(c, 1) == 1);
    assert_eq!(cleared(&cluster, 2), 0);
    // n2 as if stopped between persisting the generation and writing its files, before it
    // cleared its block: its block the old name's again, its files the old ones. Its next
    // life writes the files again from the generation in effect and clears the block.
    {
        use cimguard_cluster::disk_paxos::{Ballot, LockBlock};
        use std::os::unix::fs::FileExt;
        let old = LockBlock {
            instance: 1,
            mbal: Ballot(1),
            bal: Ballot(1),
            value: 5,
        }
        .encode(cimguard_cluster::core::cluster_id("testcluster"));
        lun.as_file().write_all_at(&old[..], 4096).unwrap();
        lun.as_file().sync_all().unwrap();
    }
    std::fs::write(cluster.dir(2).join("cluster.ascii"), &text).unwrap();
    succeeds(&cluster, 1, "cmruncl", &["-w", "none"]);
    cluster.wait_for(BOUND, "the renamed cluster formed", |c| {
        both(c)
            && c.status(1)
                .is_ok_and(|s| s.cluster.name == "renamed" && s.cluster.status.as_str() == "up")
    });
    assert_eq!(cleared(&cluster, 2), 1, "{}", cluster.log(2));
    cluster.signal(2, "KILL");
    cluster.wait_for(BOUND, "n1 wins the lock again and runs alone", |c| {
        alone(c) || c.exited(1).is_some()
    });
    assert!(
        cluster.exited(1).is_none() && alone(&cluster),
        "n1 lost the lock of the renamed cluster:\n{}",
        cluster.log(1)
    );
}

/// The cluster file `text` with its nodes' blocks in the order `order` (NODE_NAMEs), those
/// not named left out.
/// Asserts that cmapplyconf said it completed as configuration generation `generation`.
fn assert_completed(out: &str, generation: u64) {
    assert!(
        out.contains(&format!(
            "Completed the cluster update (configuration generation {generation})"
        )),
        "{out}"
    );
}

/// Waits until n4's daemon, deleted from the cluster, goes on unconfigured: its files
/// removed, and its agent saying so once it answers again (it follows its daemon's new
/// life).
fn wait_n4_unconfigured(cluster: &mut TestCluster) {
    cluster.wait_for(BOUND, "n4 unconfigured, its files removed", |c| {
        c.log(4).contains("the daemon goes on unconfigured")
            && !c.dir(4).join("cluster.ascii").exists()
    });
    cluster.wait_for(BOUND, "n4's agent telling it is not configured", |c| {
        String::from_utf8_lossy(&command(c, 4, "cmviewcl", &[]).stderr)
            .contains("node n4 is not configured in a cluster")
    });
}

fn with_nodes(text: &str, order: &[&str]) -> String {
    let first = text.find("NODE_NAME ").expect("a node");
    let (head, nodes) = text.split_at(first);
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in nodes.lines() {
        if let Some(name) = line.strip_prefix("NODE_NAME ") {
            blocks.push((name.trim().to_owned(), String::new()));
        }
        let block = &mut blocks.last_mut().expect("in a block").1;
        block.push_str(line);
        block.push('\n');
    }
    let mut out = head.to_owned();
    for name in order {
        let (_, block) = blocks
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} in {text}"));
        out.push_str(block);
    }
    out
}

#[test]
fn cmapplyconf_with_the_cluster_halted_deletes_and_reorders_nodes() {
    let mut cluster = TestCluster::configure(4, MEMBER_TIMEOUT, "");
    cluster.with_agents(&[(ADMIN.0, "FULL_ADMIN", ADMIN.1)]);
    let four = "package_name pkgA\npackage_type failover\nnode_name n1\nnode_name n2\n\
                node_name n3\nnode_name n4\nauto_run yes\nservice_name pkgA_svc\n\
                service_cmd \"exec sleep 100000\"\n";
    cluster.add_package("pkgA", four);
    cluster.stay_after_halt();
    cluster.start_all();
    cluster.wait_for(BOUND, "a formed cluster of four", |c| {
        (1..=4).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 4))
    });
    succeeds(&cluster, 1, "cmhaltcl", &["-f"]);
    cluster.wait_for(BOUND, "every node halted, its daemon still there", |c| {
        (1..=4).all(|k| {
            c.status(k).is_ok_and(|s| {
                s.cluster.status.as_str() == "down"
                    && s.cluster
                        .nodes
                        .iter()
                        .all(|n| n.condition.state.as_str() == "halted")
            })
        })
    });
    let before = cluster.status(1).unwrap().cluster.generation;
    let work = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(cluster.dir(1).join("cluster.ascii")).unwrap();
    // n4 deleted, n2 first: every node but n3 is numbered otherwise.
    let cluster_file = work.path().join("cluster.ascii");
    std::fs::write(&cluster_file, with_nodes(&text, &["n2", "n1", "n3"])).unwrap();
    let cluster_file = cluster_file.display().to_string();
    let three = four.replace("node_name n4\n", "");
    let package_file = work.path().join("pkgA.conf");
    std::fs::write(&package_file, &three).unwrap();
    let package_file = package_file.display().to_string();

    // A package still naming n4 is refused, and so is the change given on n4.
    let refused_saying = |k: usize, args: &[&str], words: &str| {
        let refused = command(&cluster, k, "cmapplyconf", args);
        assert!(!refused.status.success(), "{}", describe(&refused));
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains(words),
            "{}",
            describe(&refused)
        );
    };
    refused_saying(1, &["-C", &cluster_file], "n4");
    refused_saying(
        4,
        &["-C", &cluster_file, "-P", &package_file],
        "delete n4, the node",
    );

    let out = succeeds(
        &cluster,
        1,
        "cmapplyconf",
        &["-C", &cluster_file, "-P", &package_file],
    );
    assert_completed(&out, before + 1);
    // cmapplyconf returned once n1's new life answered: cmruncl there may follow at once,
    // and starts the others as soon as their new lives are there.
    succeeds(&cluster, 1, "cmruncl", &["-w", "none"]);
    // The cluster of three forms, numbered anew, and the package runs.
    cluster.wait_for(BOUND, "the cluster of three formed, pkgA up", |c| {
        (1..=3).all(|k| {
            c.status(k).is_ok_and(|s| {
                let names: Vec<&str> = s.cluster.nodes.iter().map(|n| n.name.as_str()).collect();
                names == ["n2", "n1", "n3"]
                    && s.cluster.generation == before + 1
                    && s.cluster.status.as_str() == "up"
                    && s.cluster
                        .nodes
                        .iter()
                        .all(|n| n.condition.status.as_str() == "up")
                    && s.cluster
                        .packages
                        .iter()
                        .any(|p| p.name == "pkgA" && p.condition.status.as_str() == "up")
            })
        })
    });
    // Each started a new life (the same process), halted, with the new nodes, then another
    // one for cmruncl.
    for k in 1..=3 {
        // The process the test started is still there: it executed itself again.
        assert!(cluster.exited(k).is_none(), "n{k}: {}", cluster.log(k));
        assert!(
            cluster
                .log(k)
                .contains("starting again as a new life, halted"),
            "n{k}: {}",
            cluster.log(k)
        );
        let written = std::fs::read_to_string(cluster.dir(k).join("cluster.ascii")).unwrap();
        assert!(!written.contains("NODE_NAME n4"), "n{k}: {written}");
    }

    // n4's daemon goes on unconfigured, the same process: its configuration removed, its
    // key and certificates kept.
    cluster.wait_for(BOUND, "n4 unconfigured", |c| {
        c.log(4).contains("not configured in a cluster: waiting")
    });
    assert!(cluster.exited(4).is_none(), "{}", cluster.log(4));
    for gone in ["cluster.ascii", "packages", "shared"] {
        assert!(!cluster.dir(4).join(gone).exists(), "n4's {gone}");
    }
    for kept in ["control.pem", "cluster.key", "acceptor"] {
        assert!(cluster.dir(4).join(kept).exists(), "n4's {kept}");
    }
    assert!(
        cluster.log(4).contains("deleted from cluster"),
        "{}",
        cluster.log(4)
    );
    // Its old files put back (a crash before their removal, or a copy restored): it does
    // not start from them, but removes them, as it would have, and goes on unconfigured.
    stop_unconfigured_n4(&mut cluster);
    std::fs::write(cluster.dir(4).join("cluster.ascii"), &text).unwrap();
    let packages = cluster.dir(4).join("packages");
    std::fs::create_dir_all(&packages).unwrap();
    std::fs::write(packages.join("pkgA.conf"), "package_name pkgA\n").unwrap();
    cluster.start(4);
    cluster.wait_for(BOUND, "n4 unconfigured again", |c| {
        c.log(4)
            .split_once("before this start")
            .is_some_and(|(_, after)| after.contains("not configured in a cluster: waiting"))
    });
    assert!(cluster.exited(4).is_none(), "{}", cluster.log(4));
    for gone in ["cluster.ascii", "packages"] {
        assert!(!cluster.dir(4).join(gone).exists(), "n4's {gone}");
    }
    // Files of another cluster put there (or a daemon started under another name): not the
    // deleted node's own, so they stay, and the daemon does not start, saying why.
    stop_unconfigured_n4(&mut cluster);
    let other: String = text
        .lines()
        .map(|line| {
            if line.starts_with("CLUSTER_NAME") {
                "CLUSTER_NAME othercluster\n".to_owned()
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    std::fs::write(cluster.dir(4).join("cluster.ascii"), &other).unwrap();
    cluster.start(4);
    cluster.wait_for(BOUND, "n4's daemon refuses to start", |c| {
        c.exited(4).is_some()
    });
    assert!(!cluster.exited(4).unwrap().success());
    assert!(
        cluster.log(4).contains("node n4 is not in cluster"),
        "{}",
        cluster.log(4)
    );
    assert_eq!(
        std::fs::read_to_string(cluster.dir(4).join("cluster.ascii")).unwrap(),
        other
    );
}

/// n4's daemon, which says it is not configured in a cluster, told to end: it ends well.
fn stop_unconfigured_n4(cluster: &mut TestCluster) {
    let unconfigured = cluster.status(4).unwrap_err();
    assert!(
        unconfigured.contains("node n4 is not configured in a cluster"),
        "{unconfigured}"
    );
    cluster.signal(4, "TERM");
    cluster.wait_for(BOUND, "n4's daemon ends", |c| c.exited(4).is_some());
    assert!(cluster.exited(4).unwrap().success(), "{}", cluster.log(4));
}

/// pkgA on n1 to n3, started automatically.
const PKG_A_THREE: &str = "package_name pkgA\npackage_type failover\nnode_name n1\nnode_name n2\n\
                           node_name n3\nauto_run yes\nservice_name pkgA_svc\n\
                           service_cmd \"exec sleep 100000\"\n";

/// Four nodes configured as a cluster of n1 to n3 with pkgA ([`PKG_A_THREE`]), n4 with
/// the authority's certificate and a key that is not the cluster's, but no cluster file
/// (its cmcld runs unconfigured); every daemon started, staying after a halt.
struct N4Outside {
    cluster: TestCluster,
    /// The cluster file of the four.
    four_text: String,
    /// n4's key file, and the cluster's key to write there.
    key: std::path::PathBuf,
    right_key: Vec<u8>,
}

fn n4_outside() -> N4Outside {
    let mut cluster = TestCluster::configure(4, MEMBER_TIMEOUT, "");
    cluster.with_agents(&[(ADMIN.0, "FULL_ADMIN", ADMIN.1)]);
    let four_text = std::fs::read_to_string(cluster.dir(1).join("cluster.ascii")).unwrap();
    let three_text = with_nodes(&four_text, &["n1", "n2", "n3"]);
    for k in 1..=3 {
        std::fs::write(cluster.dir(k).join("cluster.ascii"), &three_text).unwrap();
    }
    std::fs::remove_file(cluster.dir(4).join("cluster.ascii")).unwrap();
    let key = cluster.dir(4).join("cluster.key");
    let right_key = std::fs::read(&key).unwrap();
    std::fs::write(&key, [7u8; 32]).unwrap();
    for k in 1..=3 {
        let dir = cluster.dir(k).join("packages");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pkgA.conf"), PKG_A_THREE).unwrap();
    }
    cluster.stay_after_halt();
    cluster.start_all();
    N4Outside {
        cluster,
        four_text,
        key,
        right_key,
    }
}

#[test]
fn cmapplyconf_with_the_cluster_halted_adds_a_node_whose_cmcld_runs_unconfigured() {
    // The cluster is n1 to n3 (pkgA, auto_run); n4 has the authority's certificate and a
    // key, no cluster file. Its key is not the cluster's, at first.
    let N4Outside {
        mut cluster,
        four_text,
        key,
        right_key,
    } = n4_outside();
    cluster.wait_for(BOUND, "a cluster of three, n4 unconfigured", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
            && c.log(4).contains("not configured in a cluster: waiting")
    });
    // Its agent says so.
    let viewed = command(&cluster, 4, "cmviewcl", &[]);
    assert!(!viewed.status.success());
    assert!(
        String::from_utf8_lossy(&viewed.stderr).contains("node n4 is not configured in a cluster"),
        "{}",
        describe(&viewed)
    );
    // Adding a node is done with the cluster halted.
    succeeds(&cluster, 1, "cmhaltcl", &["-f"]);
    cluster.wait_for(BOUND, "every node halted, its daemon still there", |c| {
        (1..=3).all(|k| {
            c.status(k)
                .is_ok_and(|s| s.cluster.status.as_str() == "down")
        })
    });
    let before = cluster.status(1).unwrap().cluster.generation;
    let work = tempfile::tempdir().unwrap();
    let cluster_file = work.path().join("cluster.ascii");
    std::fs::write(&cluster_file, &four_text).unwrap();
    let cluster_file = cluster_file.display().to_string();
    let package_file = work.path().join("pkgA.conf");
    std::fs::write(
        &package_file,
        PKG_A_THREE.replace("node_name n3\n", "node_name n3\nnode_name n4\n"),
    )
    .unwrap();
    let package_file = package_file.display().to_string();

    // n4's key is not the cluster's: refused in words, nothing applied anywhere.
    let refused = command(
        &cluster,
        1,
        "cmapplyconf",
        &["-C", &cluster_file, "-P", &package_file],
    );
    assert!(!refused.status.success(), "{}", describe(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("n4's cluster.key is not the cluster's"),
        "{}",
        describe(&refused)
    );
    assert_eq!(cluster.status(1).unwrap().cluster.generation, before);
    assert!(!cluster.dir(4).join("cluster.ascii").exists());

    // With the cluster's key (the daemon reads it as it starts), the change goes through.
    std::fs::write(&key, &right_key).unwrap();
    cluster.signal(4, "TERM");
    cluster.wait_for(BOUND, "n4's daemon ends", |c| c.exited(4).is_some());
    cluster.start(4);
    cluster.wait_for(BOUND, "n4 unconfigured again", |c| {
        c.log(4)
            .matches("not configured in a cluster: waiting")
            .count()
            == 2
    });
    let out = succeeds(
        &cluster,
        1,
        "cmapplyconf",
        &["-C", &cluster_file, "-P", &package_file],
    );
    assert_completed(&out, before + 1);
    // cmrunnode on n4 at once: its daemon may still be unconfigured for a second; the
    // command waits for its new life, and says what the halted cluster needs.
    let early = command(&cluster, 4, "cmrunnode", &[]);
    assert!(!early.status.success(), "{}", describe(&early));
    assert!(
        String::from_utf8_lossy(&early.stderr).contains("cmruncl starts it"),
        "{}",
        describe(&early)
    );
    // n4 starts again as a node of the cluster, halted, the same process.
    cluster.wait_for(BOUND, "n4 halted in the cluster", |c| {
        c.status(4)
            .is_ok_and(|s| s.cluster.generation == before + 1 && s.cluster.nodes.len() == 4)
    });
    assert!(cluster.exited(4).is_none(), "{}", cluster.log(4));
    assert!(
        cluster.log(4).contains("added to cluster testcluster"),
        "{}",
        cluster.log(4)
    );
    let written = std::fs::read_to_string(cluster.dir(4).join("cluster.ascii")).unwrap();
    assert!(
        written
            .lines()
            .any(|l| l.split_whitespace().eq(["NODE_NAME", "n4"])),
        "{written}"
    );
    assert!(cluster.dir(4).join("packages/pkgA.conf").exists());

    // cmruncl forms the cluster of four, and the package may run on n4.
    succeeds(&cluster, 1, "cmruncl", &["-w", "none"]);
    cluster.wait_for(BOUND, "the cluster of four formed, pkgA up", |c| {
        (1..=4).all(|k| {
            c.status(k).is_ok_and(|s| {
                s.cluster.status.as_str() == "up"
                    && s.cluster.generation == before + 1
                    && s.cluster.nodes.len() == 4
                    && s.cluster
                        .nodes
                        .iter()
                        .all(|n| n.condition.status.as_str() == "up")
                    && s.cluster
                        .packages
                        .iter()
                        .any(|p| p.name == "pkgA" && p.condition.status.as_str() == "up")
            })
        })
    });
    succeeds(&cluster, 1, "cmhaltpkg", &["pkgA"]);
    succeeds(&cluster, 1, "cmrunpkg", &["-n", "n4", "pkgA"]);
    cluster.wait_for(BOUND, "pkgA on n4", |c| {
        c.owners(1, "pkgA").is_some_and(|o| o == ["n4"])
    });
}

#[test]
fn the_first_cmapplyconf_on_unconfigured_nodes_creates_the_cluster() {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.with_agents(&[
        (ADMIN.0, "FULL_ADMIN", ADMIN.1),
        (MONITOR.0, "MONITOR", MONITOR.1),
    ]);
    let text = std::fs::read_to_string(cluster.dir(1).join("cluster.ascii")).unwrap();
    // Every node has the cluster key and its certificate, no cluster file.
    for k in 1..=3 {
        std::fs::remove_file(cluster.dir(k).join("cluster.ascii")).unwrap();
    }
    cluster.stay_after_halt();
    cluster.start(1);
    cluster.start(2);
    cluster.wait_for(BOUND, "n1 and n2 unconfigured", |c| {
        (1..=2).all(|k| c.log(k).contains("not configured in a cluster: waiting"))
    });
    let work = tempfile::tempdir().unwrap();
    let cluster_file = work.path().join("cluster.ascii");
    std::fs::write(&cluster_file, &text).unwrap();
    let cluster_file = cluster_file.display().to_string();
    let package_file = work.path().join("pkgA.conf");
    std::fs::write(
        &package_file,
        "package_name pkgA\npackage_type failover\nnode_name n1\nnode_name n2\nnode_name n3\n\
         auto_run yes\nservice_name pkgA_svc\nservice_cmd \"exec sleep 100000\"\n",
    )
    .unwrap();
    let package_file = package_file.display().to_string();
    let args = ["-C", cluster_file.as_str(), "-P", package_file.as_str()];

    // Without a cluster file there is nothing to create.
    let refused = command(&cluster, 1, "cmapplyconf", &["-P", &package_file]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("give the cluster file (-C)"),
        "{}",
        describe(&refused)
    );
    // Only a FULL_ADMIN checks or creates a cluster: the monitor is refused, with no check
    // of the files alone in its place.
    for name in ["cmcheckconf", "cmapplyconf"] {
        let refused = cluster.agent_command(1, MONITOR, name, &args, Duration::from_secs(120));
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&refused.stdout),
            String::from_utf8_lossy(&refused.stderr)
        );
        assert!(
            !refused.status.success() && said.contains("CIM_ERR_ACCESS_DENIED"),
            "{name} as the monitor: {}",
            describe(&refused)
        );
        assert!(!said.contains("Verification completed"), "{said}");
        if name == "cmcheckconf" {
            assert!(said.contains("needs FULL_ADMIN"), "{said}");
        }
    }
    // n3's daemon is not running: cmcheckconf, which asks every node of the file, says so,
    // and cmapplyconf creates nothing anywhere.
    let checked = command(&cluster, 1, "cmcheckconf", &args);
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(
        !checked.status.success()
            && said.contains("cmcheckconf: n3 did not answer (127.0.0.3:")
            && !said.contains("nothing was applied"),
        "{}",
        describe(&checked)
    );
    let refused = command(&cluster, 1, "cmapplyconf", &args);
    assert!(!refused.status.success(), "{}", describe(&refused));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("n3 did not answer (127.0.0.3:")
            && said.contains("cannot connect")
            && said.contains("nothing was applied"),
        "{}",
        describe(&refused)
    );
    for k in 1..=2 {
        assert!(!cluster.dir(k).join("cluster.ascii").exists(), "n{k}");
    }

    // With every node's cmcld there, cmcheckconf finds what only n2 can tell (a
    // HEARTBEAT_IP its host does not have: a documentation address, only bound), then
    // nothing, and leaves every node unconfigured.
    cluster.start(3);
    cluster.wait_for(BOUND, "n3 unconfigured", |c| {
        c.log(3).contains("not configured in a cluster: waiting")
    });
    let wrong = ["203.0.113.2", "198.51.100.2", "192.0.2.2"]
        .into_iter()
        .find(|a| std::net::UdpSocket::bind((*a, 0)).is_err())
        .expect("a documentation address this host does not have");
    assert!(text.contains("HEARTBEAT_IP 127.0.0.2\n"), "{text}");
    let foreign = work.path().join("foreign.ascii");
    std::fs::write(
        &foreign,
        text.replace(
            "HEARTBEAT_IP 127.0.0.2\n",
            &format!("HEARTBEAT_IP {wrong}\n"),
        ),
    )
    .unwrap();
    let foreign = foreign.display().to_string();
    let checked = command(
        &cluster,
        1,
        "cmcheckconf",
        &["-C", &foreign, "-P", &package_file],
    );
    assert!(
        !checked.status.success()
            && String::from_utf8_lossy(&checked.stdout).contains(&format!(
                "n2 cannot send heartbeats from HEARTBEAT_IP {wrong}"
            )),
        "{}",
        describe(&checked)
    );
    let checked = succeeds(
        &cluster,
        3,
        "cmcheckconf",
        &["-v", "-C", &cluster_file, "-P", &package_file],
    );
    assert!(
        checked.contains("checked on every node of the cluster the files would create")
            && checked.contains("cmcheckconf: Verification completed with no errors found."),
        "{checked}"
    );
    for k in 1..=3 {
        assert!(!cluster.dir(k).join("cluster.ascii").exists(), "n{k}");
        assert!(
            cluster
                .log(k)
                .contains("not configured in a cluster: waiting"),
            "n{k}"
        );
    }
    // The first cmapplyconf creates the cluster: each node starts again as a node of it,
    // halted.
    let out = succeeds(&cluster, 1, "cmapplyconf", &args);
    assert!(
        out.contains("Completed the cluster creation (configuration generation 1)"),
        "{out}"
    );
    cluster.wait_for(BOUND, "three halted nodes of the new cluster", |c| {
        (1..=3).all(|k| {
            c.status(k).is_ok_and(|s| {
                s.cluster.name == "testcluster"
                    && s.cluster.generation == 1
                    && s.cluster.nodes.len() == 3
                    && s.cluster.status.as_str() == "down"
            })
        })
    });
    for k in 1..=3 {
        assert!(cluster.exited(k).is_none(), "n{k} executed itself again");
        assert!(cluster.dir(k).join("packages/pkgA.conf").exists(), "n{k}");
    }
    // cmruncl starts it.
    let up = |c: &TestCluster| {
        (1..=3).all(|k| {
            c.status(k).is_ok_and(|s| {
                s.cluster.status.as_str() == "up"
                    && s.cluster
                        .nodes
                        .iter()
                        .all(|n| n.condition.status.as_str() == "up")
                    && s.cluster
                        .packages
                        .iter()
                        .any(|p| p.name == "pkgA" && p.condition.status.as_str() == "up")
            })
        })
    };
    succeeds(&cluster, 1, "cmruncl", &["-w", "none"]);
    cluster.wait_for(BOUND, "the cluster up, pkgA up", |c| up(c));
    let epoch = cluster.members(1).expect("up").1;

    // cmdeleteconf: refused while the cluster runs; halted, every node goes back to
    // unconfigured, the same process, its key and certificate kept.
    let refused = command(&cluster, 2, "cmdeleteconf", &["-f"]);
    assert!(!refused.status.success(), "{}", describe(&refused));
    succeeds(&cluster, 1, "cmhaltcl", &["-f"]);
    cluster.wait_for(BOUND, "the cluster halted", |c| {
        (1..=3).all(|k| {
            c.status(k)
                .is_ok_and(|s| s.cluster.status.as_str() == "down")
        })
    });
    let out = succeeds(&cluster, 2, "cmdeleteconf", &["-f"]);
    assert!(out.contains("Completed the cluster deletion"), "{out}");
    cluster.wait_for(BOUND, "every node unconfigured", |c| {
        (1..=3).all(|k| {
            c.status(k)
                .is_err_and(|e| e.contains(&format!("node n{k} is not configured in a cluster")))
        })
    });
    for k in 1..=3 {
        assert!(cluster.exited(k).is_none(), "n{k}: {}", cluster.log(k));
        for gone in ["cluster.ascii", "packages"] {
            assert!(!cluster.dir(k).join(gone).exists(), "n{k}'s {gone}");
        }
        for kept in ["cluster.key", "control.pem", "acceptor"] {
            assert!(cluster.dir(k).join(kept).exists(), "n{k}'s {kept}");
        }
    }
    // A daemon stopped before it removed its files (put back here) removes them as it
    // starts, and goes on unconfigured.
    cluster.signal(1, "TERM");
    cluster.wait_for(BOUND, "n1's daemon ends", |c| c.exited(1).is_some());
    std::fs::write(cluster.dir(1).join("cluster.ascii"), &text).unwrap();
    cluster.start(1);
    cluster.wait_for(BOUND, "n1 unconfigured again", |c| {
        c.status(1)
            .is_err_and(|e| e.contains("node n1 is not configured in a cluster"))
    });
    assert!(!cluster.dir(1).join("cluster.ascii").exists());
    // And the cluster is made again, given on another node: it proposes above every epoch
    // of before.
    let out = succeeds(&cluster, 3, "cmapplyconf", &args);
    assert!(out.contains("Completed the cluster creation"), "{out}");
    // Its generation is shown after the deleted cluster's, as the answer says, and the
    // command found this node's new life showing it (it waits for that).
    assert!(!out.contains("did not answer"), "{out}");
    let made: u64 = out
        .split("configuration generation ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no generation in {out}"));
    cluster.wait_for(BOUND, "three halted nodes again", |c| {
        (1..=3).all(|k| {
            c.status(k).is_ok_and(|s| {
                s.cluster.nodes.len() == 3
                    && s.cluster.status.as_str() == "down"
                    && s.cluster.generation == made
            })
        })
    });
    succeeds(&cluster, 3, "cmruncl", &["-w", "none"]);
    cluster.wait_for(BOUND, "the cluster up again, pkgA up", |c| up(c));
    let again = cluster.members(1).expect("up").1;
    assert!(again > epoch, "epoch {again} after {epoch}");
}

#[test]
fn cmdeleteconf_clears_the_lock_blocks_so_a_cluster_made_again_under_another_name_wins_the_lock() {
    let lun = tempfile::NamedTempFile::new().unwrap();
    lun.as_file().set_len(1 << 20).unwrap();
    let mut cluster = TestCluster::configure_with_node_lines(
        2,
        MEMBER_TIMEOUT,
        "",
        &format!(" CLUSTER_LOCK_LUN {}\n", lun.path().display()),
    );
    cluster.with_agents(&[(ADMIN.0, "FULL_ADMIN", ADMIN.1)]);
    cluster.stay_after_halt();
    let text = std::fs::read_to_string(cluster.dir(1).join("cluster.ascii")).unwrap();
    cluster.start_all();
    let both = |c: &TestCluster| (1..=2).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 2));
    let alone = |c: &TestCluster| {
        c.members(1)
            .is_some_and(|(m, _)| m == vec!["n1".to_owned()])
    };
    cluster.wait_for(BOUND, "a formed cluster of two", |c| both(c));
    // n2 killed: n1 takes the lock, writing its block; n2 comes back.
    cluster.signal(2, "KILL");
    cluster.wait_for(BOUND, "n1 wins the lock and runs alone", |c| alone(c));
    let block = |offset: u64| {
        use std::os::unix::fs::FileExt;
        let mut bytes = [0u8; 512];
        lun.as_file().read_exact_at(&mut bytes, offset).unwrap();
        bytes
    };
    assert_ne!(block(0), [0u8; 512], "n1 wrote its block");
    cluster.start(2);
    cluster.wait_for(BOUND, "both members again", |c| both(c));
    succeeds(&cluster, 1, "cmhaltcl", &["-f"]);
    cluster.wait_for(BOUND, "both halted", |c| {
        (1..=2).all(|k| {
            c.status(k)
                .is_ok_and(|s| s.cluster.status.as_str() == "down")
        })
    });

    // The deletion clears each node's block.
    let out = succeeds(&cluster, 2, "cmdeleteconf", &["-f"]);
    assert!(out.contains("Completed the cluster deletion"), "{out}");
    cluster.wait_for(BOUND, "n1 cleared its block", |c| {
        c.log(1)
            .contains("cmdeleteconf: cleared this node's block of the lock LUN")
    });
    assert_eq!(block(0), [0u8; 512]);

    // Made again under another name on the same LUN, its lock breaks ties.
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("cluster.ascii");
    std::fs::write(
        &file,
        text.replace("CLUSTER_NAME testcluster", "CLUSTER_NAME again"),
    )
    .unwrap();
    let file = file.display().to_string();
    cluster.wait_for(BOUND, "both unconfigured", |c| {
        (1..=2).all(|k| {
            c.status(k)
                .is_err_and(|e| e.contains("is not configured in a cluster"))
        })
    });
    let out = succeeds(&cluster, 1, "cmapplyconf", &["-C", &file]);
    assert!(out.contains("Completed the cluster creation"), "{out}");
    succeeds(&cluster, 1, "cmruncl", &["-w", "none"]);
    cluster.wait_for(BOUND, "the cluster made again formed", |c| {
        both(c) && c.status(1).is_ok_and(|s| s.cluster.name == "again")
    });
    cluster.signal(2, "KILL");
    cluster.wait_for(BOUND, "n1 wins the lock of the cluster made again", |c| {
        alone(c) || c.exited(1).is_some()
    });
    assert!(alone(&cluster), "{}", cluster.logs());
}

#[test]
fn cmapplyconf_adds_a_node_to_the_running_cluster_and_deletes_it_once_halted() {
    // The cluster is n1 to n3 and runs pkgA; n4 has the authority's certificate and a key
    // (not the cluster's, at first), no cluster file.
    let N4Outside {
        mut cluster,
        four_text,
        key,
        right_key,
    } = n4_outside();
    cluster.wait_for(
        BOUND,
        "a cluster of three running pkgA, as each member sees it (a change waits while it \
         starts, and the node given the command checks that first), n4 unconfigured",
        |c| {
            (1..=3).all(|k| {
                c.members(k).is_some_and(|(m, _)| m.len() == 3)
                    && c.status(k).is_ok_and(|s| {
                        s.cluster
                            .packages
                            .iter()
                            .any(|p| p.name == "pkgA" && p.condition.state.as_str() == "running")
                    })
            }) && c.log(4).contains("not configured in a cluster: waiting")
        },
    );
    let owner = cluster.owners(1, "pkgA").unwrap();
    let before = generation(&cluster);
    let pids: Vec<u32> = (1..=3).map(|k| cluster.pid(k)).collect();
    let work = tempfile::tempdir().unwrap();
    // n4 listed first: a running cluster numbers the nodes it adds after its own.
    let cluster_file = work.path().join("cluster.ascii");
    std::fs::write(
        &cluster_file,
        with_nodes(&four_text, &["n4", "n1", "n2", "n3"]),
    )
    .unwrap();
    let cluster_file = cluster_file.display().to_string();
    let package_file = work.path().join("pkgA.conf");
    std::fs::write(
        &package_file,
        PKG_A_THREE.replace("node_name n3\n", "node_name n3\nnode_name n4\n"),
    )
    .unwrap();
    let package_file = package_file.display().to_string();
    let args = ["-C", cluster_file.as_str(), "-P", package_file.as_str()];
    // Given on a node that does not coordinate: the change goes to the coordinator.
    let k = not_coordinating(&cluster);

    // n4's key is not the cluster's: refused in words, nothing applied anywhere.
    let refused = command(&cluster, k, "cmapplyconf", &args);
    assert!(!refused.status.success(), "{}", describe(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("n4's cluster.key is not the cluster's"),
        "{}",
        describe(&refused)
    );
    assert_eq!(generation(&cluster), before);
    assert!(!cluster.dir(4).join("cluster.ascii").exists());

    // With the cluster's key, n4 is added while the cluster runs: pkgA stays where it runs,
    // the members' daemons go on, n4's starts again as a node of the cluster, halted.
    std::fs::write(&key, &right_key).unwrap();
    cluster.signal(4, "TERM");
    cluster.wait_for(BOUND, "n4's daemon ends", |c| c.exited(4).is_some());
    cluster.start(4);
    cluster.wait_for(BOUND, "n4 unconfigured again", |c| {
        c.log(4)
            .matches("not configured in a cluster: waiting")
            .count()
            == 2
    });
    let out = succeeds(&cluster, k, "cmapplyconf", &args);
    // cmrunnode n4 given on a member as soon as the command returns, as a script would:
    // n4's daemon may still be between its unconfigured life and its new one (halted),
    // which the first word to start does not reach; it is told again until it starts.
    succeeds(&cluster, k, "cmrunnode", &["n4"]);
    assert_completed(&out, before + 1);
    assert!(!out.contains("did not"), "{out}");
    assert_eq!(generation(&cluster), before + 1);
    assert_eq!(cluster.owners(1, "pkgA").as_ref(), Some(&owner));
    for k in 1..=3 {
        assert_eq!(cluster.pid(k), pids[k - 1]);
        assert!(cluster.exited(k).is_none(), "{}", cluster.log(k));
        assert!(
            cluster.log(k).contains("nodes added to the cluster: n4"),
            "{}",
            cluster.log(k)
        );
    }
    cluster.wait_for(BOUND, "n4 in the cluster's generation", |c| {
        c.status(4).is_ok_and(|s| {
            s.cluster.generation == before + 1
                && s.cluster
                    .nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .eq(["n1", "n2", "n3", "n4"])
        })
    });
    // It started halted, as an added node does (cmrunnode joined it).
    assert!(
        cluster
            .log(4)
            .contains("starting again as a node of it, halted"),
        "{}",
        cluster.log(4)
    );
    // n4's files, with the nodes in the cluster's order.
    let written = std::fs::read_to_string(cluster.dir(4).join("cluster.ascii")).unwrap();
    let names: Vec<&str> = written
        .lines()
        .filter_map(|l| l.strip_prefix("NODE_NAME "))
        .map(str::trim)
        .collect();
    assert_eq!(names, ["n1", "n2", "n3", "n4"], "{written}");
    assert!(cluster.dir(4).join("packages/pkgA.conf").exists());
    // The same files again: nothing to do. n4, a member, refuses the exchange as a
    // configured node (passed over: not told as "not reached").
    let again = succeeds(&cluster, 1, "cmapplyconf", &args);
    assert!(!again.contains("not reached"), "{again}");
    assert!(
        again.contains("No changes to the cluster configuration"),
        "{again}"
    );

    // n4 joined; pkgA may run there.
    cluster.wait_for(BOUND, "a cluster of four", |c| {
        (1..=4).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 4))
    });
    succeeds(&cluster, 1, "cmhaltpkg", &["pkgA"]);
    succeeds(&cluster, 1, "cmrunpkg", &["-n", "n4", "pkgA"]);
    cluster.wait_for(BOUND, "pkgA on n4", |c| {
        c.owners(1, "pkgA").is_some_and(|o| o == ["n4"])
    });

    // Deleted while the cluster runs: refused while n4 is a member, saying what to do.
    std::fs::write(&cluster_file, with_nodes(&four_text, &["n1", "n2", "n3"])).unwrap();
    std::fs::write(&package_file, PKG_A_THREE).unwrap();
    let refused = command(&cluster, k, "cmapplyconf", &args);
    assert!(!refused.status.success(), "{}", describe(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("halt it first (cmhaltnode n4)"),
        "{}",
        describe(&refused)
    );
    assert_eq!(generation(&cluster), before + 1);
    // Halted (pkgA moved back first), n4 is deleted: the members go on, each numbering n4
    // as deleted and showing three nodes; n4's daemon removes its files and goes on
    // unconfigured.
    succeeds(&cluster, 1, "cmhaltpkg", &["pkgA"]);
    succeeds(&cluster, 1, "cmrunpkg", &["-n", "n1", "pkgA"]);
    succeeds(&cluster, 4, "cmhaltnode", &[]);
    cluster.wait_for(BOUND, "n4 halted, out of the cluster", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    let out = succeeds(&cluster, k, "cmapplyconf", &args);
    assert_completed(&out, before + 2);
    assert!(!out.contains("not told"), "{out}");
    for k in 1..=3 {
        assert_eq!(cluster.pid(k), pids[k - 1]);
        assert_eq!(cluster.members(k).map(|(m, _)| m.len()), Some(3));
    }
    wait_n4_unconfigured(&mut cluster);
    for k in 1..=3 {
        let status = cluster.status(k).unwrap().cluster;
        let names: Vec<&str> = status.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["n1", "n2", "n3"], "on n{k}");
        let written = std::fs::read_to_string(cluster.dir(k).join("cluster.ascii")).unwrap();
        assert!(!written.contains("NODE_NAME n4"), "{written}");
    }
    // The same files again: nothing to change, n4 (told already) passed over.
    let again = succeeds(&cluster, 2, "cmapplyconf", &args);
    // (n4 named as a word: the files' paths, which warnings name, may hold "n4".)
    let names_n4 = again
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| word == "n4");
    assert!(
        again.contains("No changes to the cluster configuration") && !names_n4,
        "{again}"
    );
    assert_eq!(generation(&cluster), before + 2);
}

/// A formed cluster of four (the daemons stay after a halt) whose n4 then went down: the
/// cluster, its generation, and the path of the cluster file of n1..n3 written in `work`.
fn four_then_n4_down(work: &std::path::Path) -> (TestCluster, u64, String) {
    let mut cluster = TestCluster::configure(4, MEMBER_TIMEOUT, "");
    cluster.with_agents(&[(ADMIN.0, "FULL_ADMIN", ADMIN.1)]);
    cluster.stay_after_halt();
    cluster.start_all();
    cluster.wait_for(BOUND, "a formed cluster of four", |c| {
        (1..=4).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 4))
    });
    let four_text = std::fs::read_to_string(cluster.dir(1).join("cluster.ascii")).unwrap();
    let before = generation(&cluster);
    cluster.signal(4, "KILL");
    cluster.wait_for(BOUND, "n4 down, out of the cluster", |c| {
        c.exited(4).is_some() && (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    let cluster_file = work.join("cluster.ascii");
    std::fs::write(&cluster_file, with_nodes(&four_text, &["n1", "n2", "n3"])).unwrap();
    (cluster, before, cluster_file.display().to_string())
}

#[test]
fn cmapplyconf_deletes_a_node_that_is_down_and_tells_it_when_given_again() {
    let work = tempfile::tempdir().unwrap();
    let (mut cluster, before, cluster_file) = four_then_n4_down(work.path());
    let args = ["-C", cluster_file.as_str()];
    // In effect in the cluster, but n4 was not told: exit 1, naming it.
    let partial = command(&cluster, 2, "cmapplyconf", &args);
    assert!(!partial.status.success(), "{}", describe(&partial));
    let said = String::from_utf8_lossy(&partial.stderr);
    assert!(
        said.contains("were not told so: n4 did not answer")
            && said.contains("give the same cmapplyconf again"),
        "{}",
        describe(&partial)
    );
    assert_eq!(generation(&cluster), before + 1);
    for k in 1..=3 {
        let status = cluster.status(k).unwrap().cluster;
        let names: Vec<&str> = status.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["n1", "n2", "n3"], "on n{k}");
    }
    // n4's cmcld starts again from the files of before: the cluster does not take it, and
    // its coordinator, hearing it, tells it; it goes on unconfigured.
    cluster.start(4);
    wait_n4_unconfigured(&mut cluster);
    assert!((1..=3).all(|k| cluster.members(k).is_some_and(|(m, _)| m.len() == 3)));
    // Given again, the files change nothing, and n4 is passed over.
    let out = succeeds(&cluster, 1, "cmapplyconf", &args);
    assert!(
        out.contains("No changes to the cluster configuration") && !out.contains("n4"),
        "{out}"
    );
    assert_eq!(generation(&cluster), before + 1);
    // A package file alone merges into the configuration in effect, n4's number in it.
    let package_file = work.path().join("pkgC.conf");
    std::fs::write(&package_file, package("pkgC")).unwrap();
    let package_file = package_file.display().to_string();
    succeeds(&cluster, 3, "cmcheckconf", &["-P", package_file.as_str()]);
    let out = succeeds(&cluster, 3, "cmapplyconf", &["-P", package_file.as_str()]);
    assert!(out.contains("Completed the cluster update"), "{out}");
    assert_eq!(generation(&cluster), before + 2);
}

/// How many new lives node `k`'s daemon started (a halted cmapplyconf that numbered the
/// nodes anew).
fn new_lives(cluster: &TestCluster, k: usize) -> usize {
    cluster
        .log(k)
        .matches("starting again as a new life, halted")
        .count()
}

#[test]
fn a_node_deleted_while_down_keeps_its_number_through_a_halted_cmapplyconf_until_it_is_told() {
    // n4 goes down, and is deleted while the cluster runs: it is not told.
    let work = tempfile::tempdir().unwrap();
    let (mut cluster, _, cluster_file) = four_then_n4_down(work.path());
    let args = ["-C", cluster_file.as_str()];
    let partial = command(&cluster, 2, "cmapplyconf", &args);
    assert!(
        String::from_utf8_lossy(&partial.stderr).contains("n4 did not answer"),
        "{}",
        describe(&partial)
    );
    let deleted = generation(&cluster);

    // Halted, n4 still down: the same files given with the cluster halted keep the nodes'
    // numbers, n4's unused, and say why: the generation in effect, given again as it is; no
    // daemon starts a new life for it.
    succeeds(&cluster, 1, "cmhaltcl", &["-f"]);
    cluster.wait_for(BOUND, "n1..n3 halted, their daemons still there", |c| {
        all_halted(c)
    });
    let lives: Vec<usize> = (1..=3).map(|k| new_lives(&cluster, k)).collect();
    let out = succeeds(&cluster, 1, "cmapplyconf", &args);
    assert!(
        out.contains("n4 (") && out.contains("keep their numbers"),
        "{out}"
    );
    assert_completed(&out, deleted);
    assert_eq!(
        (1..=3).map(|k| new_lives(&cluster, k)).collect::<Vec<_>>(),
        lives
    );
    succeeds(&cluster, 1, "cmruncl", &["-w", "none"]);
    cluster.wait_for(BOUND, "the cluster of three formed", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    // n4's cmcld starts again from the files of before its deletion: the running cluster
    // hears it under the number it kept and tells it; it goes on unconfigured.
    cluster.start(4);
    wait_n4_unconfigured(&mut cluster);
    assert!((1..=3).all(|k| cluster.members(k).is_some_and(|(m, _)| m.len() == 3)));

    // Told now: the next cmapplyconf with the cluster halted finds n4 unconfigured over the
    // configuration exchange and numbers the nodes anew (each daemon starts a new life),
    // with nothing to warn of.
    succeeds(&cluster, 1, "cmhaltcl", &["-f"]);
    cluster.wait_for(BOUND, "n1..n3 halted again", |c| all_halted(c));
    let out = succeeds(&cluster, 1, "cmapplyconf", &args);
    assert!(!out.contains("keep their numbers"), "{out}");
    assert_completed(&out, deleted + 1);
    // cmapplyconf returned once n1's new life answered (the names shown are the same: it
    // waits for the generation), so cmruncl there may follow at once.
    assert_eq!(new_lives(&cluster, 1), lives[0] + 1);
    assert_eq!(cluster.status(1).unwrap().cluster.generation, deleted + 1);
    succeeds(&cluster, 1, "cmruncl", &["-w", "none"]);
    cluster.wait_for(BOUND, "n2, n3 in new lives, numbered anew", |c| {
        (2..=3).all(|k| new_lives(c, k) == lives[k - 1] + 1)
    });
    cluster.wait_for(BOUND, "the cluster of three formed again", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    assert_eq!(generation(&cluster), deleted + 1);
}
