//! The process fence, with real processes: a watcher that is not petted in time, or whose
//! daemon goes away armed, kills the daemon's process group and the package groups it was
//! told of; a disarmed one kills nothing; a stopped daemon is fenced all the same.

use std::io::BufReader;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cimguard_cluster::runtime::fence::{watch, Fence};

/// The watcher, run by the test binary itself when CIMGUARD_FENCE_WATCH names the daemon's
/// process group.
#[test]
fn watcher_for_the_fence_tests() {
    let Ok(group) = std::env::var("CIMGUARD_FENCE_WATCH") else {
        return;
    };
    let ended = watch(BufReader::new(std::io::stdin()), group.parse().unwrap());
    println!("ended: {ended:?}");
}

/// A process in a process group of its own, standing for the daemon or a package.
fn victim() -> Child {
    Command::new("sleep")
        .arg("1000")
        .process_group(0)
        .spawn()
        .unwrap()
}

/// A watcher fencing `daemon`, in a process group of its own.
fn start_fence(daemon: &Child) -> Fence {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "watcher_for_the_fence_tests",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CIMGUARD_FENCE_WATCH", daemon.id().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    Fence::new(child).unwrap()
}

/// Whether `child` ends within `limit` (it is reaped if so).
fn ends_within(child: &mut Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn a_timer_not_petted_in_time_kills_the_daemon_and_its_packages() {
    let mut daemon = victim();
    let mut package = victim();
    let mut other = victim();
    let mut fence = start_fence(&daemon);
    fence.add_group(package.id() as i32).unwrap();
    for _ in 0..5 {
        fence.pet(Duration::from_secs(2)).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    // Petted in time so far: everything runs.
    assert!(daemon.try_wait().unwrap().is_none());
    // No more pets: both groups die, a group it was not told of lives on.
    assert!(ends_within(&mut daemon, Duration::from_secs(10)));
    assert!(ends_within(&mut package, Duration::from_secs(10)));
    assert!(other.try_wait().unwrap().is_none());
    other.kill().unwrap();
    other.wait().unwrap();
    assert!(ends_within(fence.child(), Duration::from_secs(5)));
}

#[test]
fn a_stopped_daemon_is_fenced_all_the_same() {
    let mut daemon = victim();
    let mut fence = start_fence(&daemon);
    fence.pet(Duration::from_millis(300)).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .unwrap();
    assert!(ends_within(&mut daemon, Duration::from_secs(5)));
    assert!(ends_within(fence.child(), Duration::from_secs(5)));
}

#[test]
fn a_daemon_gone_while_armed_is_fenced_at_once_and_a_disarmed_one_is_not() {
    // Armed for a minute, then the pipe closes (the daemon died): fenced at once.
    let mut daemon = victim();
    let mut package = victim();
    let mut fence = start_fence(&daemon);
    fence.add_group(package.id() as i32).unwrap();
    fence.pet(Duration::from_secs(60)).unwrap();
    let mut watcher = fence.close();
    assert!(ends_within(&mut package, Duration::from_secs(5)));
    assert!(ends_within(&mut daemon, Duration::from_secs(5)));
    assert!(ends_within(&mut watcher, Duration::from_secs(5)));

    // Disarmed (a graceful halt), then the pipe closes: nothing is killed.
    let mut daemon = victim();
    let mut fence = start_fence(&daemon);
    fence.pet(Duration::from_secs(5)).unwrap();
    fence.disarm().unwrap();
    // Disarmed: closing the pipe ends the watcher, and it kills nothing.
    let mut watcher = fence.close();
    assert!(ends_within(&mut watcher, Duration::from_secs(5)));
    assert!(daemon.try_wait().unwrap().is_none());
    daemon.kill().unwrap();
    daemon.wait().unwrap();
}

#[test]
fn a_pet_sent_in_time_counts_even_if_the_watcher_reads_it_late() {
    // The watcher is stopped (as a starved process would be) across its deadline, and the
    // daemon pets it meanwhile: once it runs again, it reads that pet before fencing.
    let mut daemon = victim();
    let mut fence = start_fence(&daemon);
    fence.pet(Duration::from_millis(500)).unwrap();
    // The watcher has read the first pet when it holds a deadline: give it the time to.
    std::thread::sleep(Duration::from_millis(200));
    let watcher = nix::unistd::Pid::from_raw(fence.child().id() as i32);
    nix::sys::signal::kill(watcher, nix::sys::signal::Signal::SIGSTOP).unwrap();
    fence.pet(Duration::from_secs(60)).unwrap();
    // Well past the first deadline.
    std::thread::sleep(Duration::from_millis(800));
    nix::sys::signal::kill(watcher, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert!(
        !ends_within(&mut daemon, Duration::from_secs(1)),
        "fenced although petted in time"
    );
    fence.disarm().unwrap();
    let mut watcher = fence.close();
    assert!(ends_within(&mut watcher, Duration::from_secs(5)));
    daemon.kill().unwrap();
    daemon.wait().unwrap();
}
