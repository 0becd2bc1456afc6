//! How a run or a halt of a package is waited for, the way Serviceguard's cmrunpkg and
//! cmhaltpkg wait: until the run or halt the cluster took has ended, with the nodes the
//! package then runs on, or with why it did not end well (a failed start, an aborted halt, a
//! start that stopped, no end within the script's timeout). Sans-IO: the caller reads the
//! cluster's view however it reads it (the commands over CIM, the agent from its daemon),
//! gives each [`Snapshot`] to [`PackageWait::observe`] with the time it was read, and waits
//! [`PackageWait::next_poll`] before the next read.

use std::time::{Duration, Instant};

use crate::config::package::PackageType;
use crate::status::{ClusterStatus, PackageRow, PackageState, Snapshot};

/// How often the view is read at first; the interval grows to [`POLL_MAX`] (each read costs
/// the agent a model and the daemon a status).
pub const POLL_FIRST: Duration = Duration::from_millis(100);

/// The longest interval between two reads of the view.
pub const POLL_MAX: Duration = Duration::from_secs(1);

/// How long the view may be unknown (the node asked is re-forming, or out of the cluster)
/// before the wait says it cannot tell how the run or halt ended.
pub const UNKNOWN_WAIT: Duration = Duration::from_secs(30);

/// How long a halt_aborted package given a halt again may show no change before the wait
/// takes it as aborted again (the halt ended before the view showed it halting).
pub const UNCHANGED_ABORT_WAIT: Duration = Duration::from_secs(10);

/// How long the wait lasts when the package's script has no timeout (no_timeout); with
/// one, the timeout and [`WAIT_MARGIN`].
pub const NO_TIMEOUT_WAIT: Duration = Duration::from_secs(600);

/// What a script timeout is given on top: the services' halt, the other nodes' news.
pub const WAIT_MARGIN: Duration = Duration::from_secs(60);

/// How long a package may show no sign of a run that was taken (halted on every node, no
/// start_wait) before the wait says it did not start: the news of a command forwarded to the
/// package coordinator comes back within a few heartbeats.
pub const START_SEEN_WAIT: Duration = Duration::from_secs(15);

/// What is waited for, with the node given (`-n`, NodeName).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Goal {
    /// The end of a run (cmrunpkg).
    Run(Option<String>),
    /// The end of a halt (cmhaltpkg).
    Halt(Option<String>),
}

impl Goal {
    /// The node given, if any.
    pub fn node(&self) -> Option<&str> {
        let (Goal::Run(node) | Goal::Halt(node)) = self;
        node.as_deref()
    }

    fn verb(&self) -> &'static str {
        match self {
            Goal::Run(_) => "start",
            Goal::Halt(_) => "halt",
        }
    }
}

/// What one read of the view says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Not ended yet: read the view again after [`PackageWait::next_poll`].
    Waiting,
    /// Ended well: the nodes the package runs on (none after a halt).
    Done(Vec<String>),
    /// Did not end well, and why (one line).
    Failed(String),
}

/// Each node's instance state of `row`, by node name.
pub fn instance_states(row: &PackageRow) -> Vec<(String, PackageState)> {
    row.nodes
        .iter()
        .map(|n| (n.name.clone(), n.instance.state))
        .collect()
}

/// Whether `state` means a package holds something on its node (runs, or is between), or
/// may (unknown: the viewing node cannot tell, so nothing is concluded from it).
pub fn active(state: PackageState) -> bool {
    !matches!(
        state,
        PackageState::Halted
            | PackageState::Failed
            | PackageState::Blocked
            | PackageState::RelocateWait
    )
}

/// Whether nothing of a package runs (or is between states) on the nodes `wanted`.
pub fn out_of_cascade(states: &[(String, PackageState)], wanted: &dyn Fn(&str) -> bool) -> bool {
    !states.iter().any(|(n, s)| wanted(n) && active(*s))
}

/// One wait for the end of a run or halt of one package.
#[derive(Debug, Clone)]
pub struct PackageWait {
    name: String,
    goal: Goal,
    /// Each node's instance state before the request: a failure left from earlier is not
    /// taken for this one's.
    before: Vec<(String, PackageState)>,
    started: Instant,
    /// The nodes whose instance state moved since the request.
    changed: Vec<String>,
    seen_active: bool,
    bound: Duration,
    poll: Duration,
    unknown_since: Option<Instant>,
}

impl PackageWait {
    /// A wait for `goal` of package `row` as it was before the request, begun at `now`.
    pub fn new(row: &PackageRow, goal: Goal, now: Instant) -> PackageWait {
        PackageWait {
            name: row.name.clone(),
            goal,
            before: instance_states(row),
            started: now,
            changed: Vec::new(),
            seen_active: false,
            bound: NO_TIMEOUT_WAIT,
            poll: POLL_FIRST,
            unknown_since: None,
        }
    }

    /// The package waited for.
    pub fn package(&self) -> &str {
        &self.name
    }

    /// What is waited for.
    pub fn goal(&self) -> &Goal {
        &self.goal
    }

    /// How long to wait before the next read of the view (it grows with each call).
    pub fn next_poll(&mut self) -> Duration {
        let poll = self.poll;
        self.poll = (self.poll * 3 / 2).min(POLL_MAX);
        poll
    }

    /// Judges one view of the cluster, read at `now`.
    pub fn observe(&mut self, snapshot: &Snapshot, now: Instant) -> Progress {
        let name = self.name.clone();
        let Some(row) = snapshot.packages.iter().find(|p| p.name == name) else {
            return Progress::Failed(format!("package {name} does not exist"));
        };
        let timeout = match self.goal {
            Goal::Run(_) => row.run_script_timeout,
            Goal::Halt(_) => row.halt_script_timeout,
        };
        self.bound = timeout.map_or(self.bound, |t| t + WAIT_MARGIN);
        let states = instance_states(row);
        for (node, state) in &states {
            let was = self.before.iter().find(|(n, _)| n == node).map(|(_, s)| *s);
            if was != Some(*state) && !self.changed.contains(node) {
                self.changed.push(node.clone());
            }
        }
        let elapsed = now.saturating_duration_since(self.started);
        let known = snapshot.status != ClusterStatus::Unknown
            && !states.iter().any(|(_, s)| *s == PackageState::Unknown);
        if known {
            self.unknown_since = None;
        } else if now.saturating_duration_since(*self.unknown_since.get_or_insert(now))
            >= UNKNOWN_WAIT
        {
            return Progress::Failed(format!(
                "the cluster has been unknown to this node for {} s: whether package {name} \
                 ended its {} cannot be told here (see cmviewcl on a member)",
                UNKNOWN_WAIT.as_secs(),
                self.goal.verb()
            ));
        }
        let node = self.goal.node();
        let wanted = |n: &str| node.is_none_or(|want| want == n);
        // A failure on a node counts once that node's state moved since the request.
        let failed_on = states.iter().find(|(n, state)| {
            wanted(n)
                && matches!(state, PackageState::Failed | PackageState::HaltAborted)
                && self.changed.contains(n)
        });
        if known {
            match self.goal {
                Goal::Run(_) => {
                    // A failure on the node asked for is this run's, even if the package then
                    // starts elsewhere.
                    if let Some((node, state)) = failed_on {
                        return Progress::Failed(format!(
                            "unable to start package {name} on node {node}: it is {state} \
                             there (its log says why; cmmodpkg -e -n {node} {name} re-enables \
                             the node)",
                            state = state.as_str()
                        ));
                    }
                    let running: Vec<String> = states
                        .iter()
                        .filter(|(_, s)| *s == PackageState::Running)
                        .map(|(n, _)| n.clone())
                        .collect();
                    let starting = states.iter().any(|(n, s)| {
                        wanted(n)
                            && matches!(
                                s,
                                PackageState::Starting
                                    | PackageState::StartWait
                                    | PackageState::Changing
                            )
                    });
                    let target_active = states.iter().any(|(n, s)| wanted(n) && active(*s));
                    let done = match node {
                        Some(want) => running.iter().any(|n| n == want),
                        None => !running.is_empty() && !starting,
                    };
                    // A failover package the cluster's policy placed elsewhere (its
                    // dependencies, failback) runs all the same.
                    let elsewhere = row.kind == PackageType::Failover && !running.is_empty();
                    // Ended once the coordinator has heard it too, where the observer ran it: a
                    // command given right after is judged by the coordinator's table.
                    if done || (elsewhere && !starting) {
                        return self.ended(snapshot, Progress::Done(running), elapsed);
                    }
                    if self.seen_active && !target_active {
                        return Progress::Failed(format!(
                            "package {name} stopped starting: it is {} (see cmviewcl -v -p \
                             {name})",
                            row.condition.state.as_str()
                        ));
                    }
                    self.seen_active |= target_active;
                    if !self.seen_active && elapsed >= START_SEEN_WAIT {
                        return Progress::Failed(format!(
                            "package {name} did not start: it is {} after {} s",
                            row.condition.state.as_str(),
                            START_SEEN_WAIT.as_secs()
                        ));
                    }
                }
                Goal::Halt(_) => {
                    if let Some((node, state)) = failed_on {
                        return Progress::Failed(format!(
                            "unable to halt package {name} on node {node}: it is {state} \
                             there (a halt step failed; see its log, then run cmhaltpkg again)",
                            state = state.as_str()
                        ));
                    }
                    if out_of_cascade(&states, &wanted) {
                        return self.ended(snapshot, Progress::Done(Vec::new()), elapsed);
                    }
                    // Given again to a halt_aborted package: a halt that aborted again before
                    // any view showed it halting leaves nothing changed.
                    let aborted_again = states.iter().find(|(n, s)| {
                        wanted(n) && *s == PackageState::HaltAborted && !self.changed.contains(n)
                    });
                    if let Some((node, _)) = aborted_again {
                        if self.changed.is_empty() && elapsed >= UNCHANGED_ABORT_WAIT {
                            return Progress::Failed(format!(
                                "unable to halt package {name} on node {node}: it is still \
                                 halt_aborted there (a halt step failed again; see its log)"
                            ));
                        }
                    }
                }
            }
        }
        if elapsed >= self.bound {
            return Progress::Failed(format!(
                "package {name} did not {} within {} s: it is {} (see cmviewcl -v -p {name})",
                self.goal.verb(),
                self.bound.as_secs(),
                row.condition.state.as_str()
            ));
        }
        Progress::Waiting
    }

    /// `done` once the package coordinator has heard the observer's report of it
    /// ([`Snapshot::reports_heard`]); until then, waiting (done all the same past the
    /// bound: it ended).
    fn ended(&self, snapshot: &Snapshot, done: Progress, elapsed: Duration) -> Progress {
        if snapshot.reports_heard || elapsed >= self.bound {
            done
        } else {
            Progress::Waiting
        }
    }
}
