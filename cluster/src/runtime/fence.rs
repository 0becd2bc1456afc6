//! The process fence: the safety timer of a machine without a watchdog device (this one,
//! the demo, the tests). A separate watcher process holds the deadline; the daemon pets it
//! through a pipe. When the deadline passes without a pet, or the daemon's end of the pipe
//! closes while the timer is armed (the daemon died), the watcher logs why and kills, with
//! SIGKILL, the daemon's process group and every package process group it was told of, at
//! once. Being another process, it fences a daemon that is stopped (SIGSTOP) or hung as
//! surely as one that runs.
//!
//! Protocol, one line each on the watcher's standard input:
//!
//! ```text
//! pet-until <nanoseconds> arm, or move the deadline to that CLOCK_MONOTONIC time
//! disarm                 no deadline (a graceful halt)
//! group <pgid>           also kill this process group when fencing
//! forget <pgid>          not any more (the package halted)
//! ```
//!
//! The deadline is absolute, on the clock both processes share (CLOCK_MONOTONIC), so a pet
//! the watcher reads late (it was not scheduled) still ends where the cluster core counted
//! on it, never later; and before fencing for an expired deadline the watcher reads the pets
//! already waiting for it, so that being starved itself does not fence a daemon that petted
//! in time.
//!
//! [`watch`] is the watcher's main loop, for the daemon binary to run in a child of its own;
//! [`Fence`] is the daemon's side.

use std::collections::BTreeSet;
use std::io::{self, BufRead, Write};
use std::process::{Child, ChildStdin};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::time::{clock_gettime, ClockId};
use nix::unistd::Pid;

/// How long the watcher, finding its deadline passed, waits for a pet already sent.
const EXPIRY_RECHECK: Duration = Duration::from_millis(20);

/// Now on CLOCK_MONOTONIC, which every process of the host shares (`std::time::Instant`
/// reads the same clock but cannot be sent to another process).
fn monotonic_now() -> Duration {
    clock_gettime(ClockId::CLOCK_MONOTONIC).map_or(Duration::ZERO, Duration::from)
}

/// What ended [`watch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The deadline passed: the groups were killed.
    Fenced {
        /// Why.
        reason: &'static str,
        /// The process groups signalled.
        groups: Vec<i32>,
    },
    /// The daemon closed the pipe while disarmed (a graceful stop).
    Released,
}

/// The watcher: reads the protocol from `input` and fences the daemon's process group
/// `daemon` (and the groups it is told of) as described in the module documentation.
pub fn watch(input: impl BufRead + Send + 'static, daemon: i32) -> Ended {
    let (lines, commands) = mpsc::channel::<Option<String>>();
    std::thread::spawn(move || {
        for line in input.lines() {
            let Ok(line) = line else { break };
            if lines.send(Some(line)).is_err() {
                return;
            }
        }
        let _ = lines.send(None);
    });
    let mut deadline: Option<Duration> = None;
    let mut groups: BTreeSet<i32> = BTreeSet::new();
    groups.insert(daemon);
    let fence = |reason: &'static str, groups: &BTreeSet<i32>| {
        eprintln!(
            "cimguard fence: {reason}: killing process groups {:?}",
            groups.iter().collect::<Vec<_>>()
        );
        for &group in groups {
            let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
        }
        Ended::Fenced {
            reason,
            groups: groups.iter().copied().collect(),
        }
    };
    loop {
        let next = match deadline {
            Some(at) => {
                let now = monotonic_now();
                if now >= at {
                    // A pet sent in time may be waiting, unread while this process was not
                    // scheduled: it moves the deadline to where the daemon put it.
                    // (The reader thread may need a moment to pass it on after a stall of
                    // both: the wait is within the core's FENCE_MARGIN.)
                    match commands.recv_timeout(EXPIRY_RECHECK) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            return fence("the safety timer expired", &groups)
                        }
                        other => other,
                    }
                } else {
                    commands.recv_timeout(at - now)
                }
            }
            None => commands
                .recv()
                .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match next {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                if deadline.is_some() {
                    return fence("the daemon went away with its safety timer armed", &groups);
                }
                return Ended::Released;
            }
            Ok(Some(line)) => {
                let mut words = line.split_whitespace();
                match (words.next(), words.next().map(str::parse::<u64>)) {
                    (Some("pet-until"), Some(Ok(nanos))) => {
                        deadline = Some(Duration::from_nanos(nanos));
                    }
                    (Some("disarm"), None) => deadline = None,
                    (Some("group"), Some(Ok(group))) if group > 1 => {
                        groups.insert(group as i32);
                    }
                    (Some("forget"), Some(Ok(group))) if group as i32 != daemon => {
                        groups.remove(&(group as i32));
                    }
                    _ => eprintln!("cimguard fence: ignored an unknown request: {line:?}"),
                }
            }
        }
    }
}

/// The daemon's side of a process fence: the watcher child and the pipe to it.
#[derive(Debug)]
pub struct Fence {
    child: Child,
    pipe: ChildStdin,
}

impl Fence {
    /// Takes a watcher started with a piped standard input (running [`watch`]), in a
    /// process group of its own (else it would kill itself with the daemon's group).
    pub fn new(mut child: Child) -> io::Result<Fence> {
        let pipe = child
            .stdin
            .take()
            .ok_or_else(|| io::Error::other("the fence watcher has no standard input pipe"))?;
        Ok(Fence { child, pipe })
    }

    fn send(&mut self, line: &str) -> io::Result<()> {
        self.pipe.write_all(line.as_bytes())?;
        self.pipe.flush()
    }

    /// Arms the timer, or moves its deadline, to `within` from now (sent as a time on
    /// CLOCK_MONOTONIC, so the watcher's reading it late changes nothing).
    pub fn pet(&mut self, within: Duration) -> io::Result<()> {
        let until = monotonic_now() + within;
        self.send(&format!("pet-until {}\n", until.as_nanos()))
    }

    /// Disarms it (a graceful halt).
    pub fn disarm(&mut self) -> io::Result<()> {
        self.send("disarm\n")
    }

    /// Kills process group `group` too when fencing (a package's services).
    pub fn add_group(&mut self, group: i32) -> io::Result<()> {
        self.send(&format!("group {group}\n"))
    }

    /// Stops killing process group `group` (the package halted).
    pub fn forget_group(&mut self, group: i32) -> io::Result<()> {
        self.send(&format!("forget {group}\n"))
    }

    /// The watcher process.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Closes the pipe, as the daemon's exit would, and gives back the watcher: armed, it
    /// fences at once; disarmed, it ends.
    pub fn close(self) -> Child {
        drop(self.pipe);
        self.child
    }
}
