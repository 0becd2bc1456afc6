//! The supervisor with real processes: a service gets Serviceguard's environment; a halt
//! sends SIGTERM, then SIGKILL after service_halt_timeout to a service that ignores it, and
//! the scripts run with start and stop in order; a script past its timeout is killed.

use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use cimguard_cluster::config::package::parse;
use cimguard_cluster::packages::{Script, ScriptOutcome};
use cimguard_cluster::runtime::supervisor::{Groups, Report, Supervisor};

#[derive(Default)]
struct Recorded(Mutex<Vec<(bool, i32)>>);

impl Groups for Recorded {
    fn add(&self, group: i32) {
        self.0.lock().unwrap().push((true, group));
    }
    fn forget(&self, group: i32) {
        self.0.lock().unwrap().push((false, group));
    }
}

fn supervisor(dir: &std::path::Path) -> (Supervisor, mpsc::Receiver<Report>, Arc<Recorded>) {
    let (sender, reports) = mpsc::channel();
    let sender = Mutex::new(sender);
    let groups = Arc::new(Recorded::default());
    let supervisor = Supervisor::new("nodeA", dir, groups.clone(), move |report| {
        let _ = sender.lock().unwrap().send(report);
    });
    (supervisor, reports, groups)
}

/// The processes of group `group` that are not zombies (a container's init may leave the
/// killed children of a killed service unreaped: they are dead all the same).
fn live_members(group: i32) -> Vec<i32> {
    let mut live = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the command's closing parenthesis: state, ppid, pgrp.
        let Some(rest) = stat.rfind(')').map(|at| &stat[at + 2..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[2] == group.to_string() && fields[0] != "Z" {
            live.push(pid);
        }
    }
    live
}

fn wait_file(path: &std::path::Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never written",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn services_get_their_environment_and_a_halt_escalates_to_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("ctl.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1 $SG_PACKAGE $SG_NODE\" >> {}/order\n",
            dir.path().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // The service ignores SIGTERM from before it writes `env`: once the test has read the
    // file, a halt cannot end it before service_halt_timeout.
    let text = format!(
        "package_name pkgE\nnode_name *\nexternal_pre_script {0}\nexternal_script {0}\n\
         service_name stubborn\n\
         service_cmd \"trap '' TERM; echo $SG_PACKAGE $SG_NODE $SG_SERVICE $RESTART_COUNT > $SGRUN/env; while :; do sleep 1; done\"\n\
         service_halt_timeout 1\n",
        script.display()
    );
    let package = parse(&text, "pkgE.conf").unwrap().config;
    let (supervisor, reports, groups) = supervisor(dir.path());

    supervisor.run(&package);
    let report = reports.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(
        report,
        Report::Script {
            package: "pkgE".into(),
            script: Script::Run,
            outcome: ScriptOutcome::Succeeded
        }
    );
    assert_eq!(
        wait_file(&dir.path().join("env")),
        "pkgE nodeA stubborn 0\n"
    );
    let group = supervisor.groups()["pkgE"][0];

    // It ignores SIGTERM: the halt kills it after service_halt_timeout (1 s).
    let started = Instant::now();
    supervisor.halt(&package);
    let report = reports.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(
        report,
        Report::Script {
            package: "pkgE".into(),
            script: Script::Halt,
            outcome: ScriptOutcome::Succeeded
        }
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(live_members(group), Vec::<i32>::new());
    // Scripts: start in order, stop in reverse (both are the same file here).
    let order = std::fs::read_to_string(dir.path().join("order")).unwrap();
    assert_eq!(
        order,
        "start pkgE nodeA\nstart pkgE nodeA\nstop pkgE nodeA\nstop pkgE nodeA\n"
    );
    // The service's group was given to the safety timer, and taken back after the halt.
    let recorded = groups.0.lock().unwrap().clone();
    assert!(recorded.contains(&(true, group)) && recorded.contains(&(false, group)));
    assert!(
        reports.try_recv().is_err(),
        "a halted service's end is not a failure"
    );
}

#[test]
fn a_run_script_past_its_timeout_is_killed_with_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("slow.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nsleep 1000 &\necho $! > {}/child\nwait\n",
            dir.path().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let text = format!(
        "package_name pkgT\nnode_name *\nexternal_script {}\nrun_script_timeout 1\n",
        script.display()
    );
    let package = parse(&text, "pkgT.conf").unwrap().config;
    let (supervisor, reports, _) = supervisor(dir.path());
    supervisor.run(&package);
    let report = reports.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(
        report,
        Report::Script {
            package: "pkgT".into(),
            script: Script::Run,
            outcome: ScriptOutcome::TimedOut
        }
    );
    let child: i32 = wait_file(&dir.path().join("child")).trim().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while nix::sys::signal::kill(nix::unistd::Pid::from_raw(child), None).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the script's child outlived the timeout"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn log_level_sets_how_much_of_a_start_and_halt_the_package_log_tells() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("ctl.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (supervisor, reports, _) = supervisor(dir.path());
    let mut logs = Vec::new();
    for level in [0, 1, 2] {
        let name = format!("pkg{level}");
        let text = format!(
            "package_name {name}\nnode_name *\nexternal_script {}\nlog_level {level}\n\
             service_name idle\nservice_cmd \"sleep 1000\"\nservice_halt_timeout 5\n",
            script.display()
        );
        let package = parse(&text, "pkg.conf").unwrap().config;
        supervisor.run(&package);
        let report = reports.recv_timeout(Duration::from_secs(20)).unwrap();
        assert!(matches!(
            report,
            Report::Script {
                outcome: ScriptOutcome::Succeeded,
                ..
            }
        ));
        supervisor.halt(&package);
        let report = reports.recv_timeout(Duration::from_secs(20)).unwrap();
        assert!(matches!(
            report,
            Report::Script {
                script: Script::Halt,
                outcome: ScriptOutcome::Succeeded,
                ..
            }
        ));
        // $SGRUN/log/<package>.log, the default script_log_file.
        let log = std::fs::read_to_string(dir.path().join(format!("log/{name}.log"))).unwrap();
        logs.push(log);
    }
    let has = |log: &str, text: &str| log.lines().any(|l| l.contains(text));
    // Every level: the start and the halt, each line with its time.
    for log in &logs {
        for line in log.lines() {
            let (date, rest) = line.split_at(23);
            assert!(
                date.ends_with(" UTC") && date.as_bytes()[4] == b'-' && date.as_bytes()[13] == b':',
                "{line}"
            );
            assert!(rest.starts_with(" cmcld[nodeA]: pkg"), "{line}");
        }
        assert!(has(log, ": starting") && has(log, ": started"), "{log}");
        assert!(has(log, ": halting") && has(log, ": halted"), "{log}");
    }
    // 0: no more.
    assert!(!has(&logs[0], "running "), "{}", logs[0]);
    assert!(!has(&logs[0], "SIGTERM"), "{}", logs[0]);
    // 1: each script and service step.
    let script = script.display().to_string();
    assert!(
        has(&logs[1], &format!("running {script} start")),
        "{}",
        logs[1]
    );
    assert!(
        has(&logs[1], &format!("{script} stop: succeeded in")),
        "{}",
        logs[1]
    );
    assert!(
        has(&logs[1], "service idle: SIGTERM to process group"),
        "{}",
        logs[1]
    );
    assert!(!has(&logs[1], "/bin/sh -c"), "{}", logs[1]);
    // 2: what ran, and how it ended.
    assert!(
        has(&logs[2], "service idle: /bin/sh -c \"sleep 1000\""),
        "{}",
        logs[2]
    );
    assert!(has(&logs[2], "service idle: ended after"), "{}", logs[2]);
}

#[test]
fn an_online_change_replaces_a_service_whose_command_changed_and_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let text = |command: &str| {
        format!(
            "package_name pkgR\nnode_name *\n\
             service_name kept\nservice_cmd \"while :; do sleep 1; done\"\n\
             service_name changed\nservice_cmd \"{command}\"\n"
        )
    };
    let first = parse(
        &text("echo first > $SGRUN/changed; while :; do sleep 1; done"),
        "pkgR.conf",
    )
    .unwrap()
    .config;
    let (supervisor, reports, _) = supervisor(dir.path());
    supervisor.run(&first);
    let report = reports.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(
        matches!(
            report,
            Report::Script {
                script: Script::Run,
                outcome: ScriptOutcome::Succeeded,
                ..
            }
        ),
        "{report:?}"
    );
    assert_eq!(wait_file(&dir.path().join("changed")), "first\n");
    let before = supervisor.groups()["pkgR"].clone();
    assert_eq!(before.len(), 2, "{before:?}");

    // service_cmd of `changed` changes while the package runs: that service is stopped and
    // started again with the new command; `kept` runs on untouched.
    std::fs::remove_file(dir.path().join("changed")).unwrap();
    let second = parse(
        &text("echo second > $SGRUN/changed; while :; do sleep 1; done"),
        "pkgR.conf",
    )
    .unwrap()
    .config;
    supervisor.reconfigure(&second);
    let report = reports.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(
        report,
        Report::Script {
            package: "pkgR".into(),
            script: Script::Reconfigure,
            outcome: ScriptOutcome::Succeeded
        }
    );
    assert_eq!(wait_file(&dir.path().join("changed")), "second\n");
    let after = supervisor.groups()["pkgR"].clone();
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        after.contains(&before[0]),
        "kept runs on: {before:?} {after:?}"
    );
    assert!(
        !after.contains(&before[1]),
        "changed was replaced: {before:?} {after:?}"
    );
    assert_eq!(live_members(before[1]), Vec::<i32>::new());
    assert!(
        reports.try_recv().is_err(),
        "the replaced service's end is not a failure"
    );
    supervisor.halt(&second);
    let report = reports.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(
        matches!(
            report,
            Report::Script {
                script: Script::Halt,
                ..
            }
        ),
        "{report:?}"
    );
}
