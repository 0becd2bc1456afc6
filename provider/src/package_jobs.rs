//! The jobs of HP_SGPackage.RequestStateChange (HP_SGPackageJob, a CIM_ConcreteJob): a run
//! or halt that had not ended when the method returned goes on being waited for here, the way
//! cmrunpkg and cmhaltpkg wait ([`PackageWait`]), and its job tells the client how it ended.
//! Kept in memory: a job is the agent's, and a restarted agent has none.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use cim_schema::model::{Datetime, Value};
use cimguard_cluster::package_wait::{Goal, PackageWait, Progress};

use crate::serviceguard::ClusterSource;

/// How long a finished job stays (CIM_ConcreteJob.TimeBeforeRemoval's default).
pub const TIME_BEFORE_REMOVAL: Duration = Duration::from_secs(300);

/// The most finished jobs kept: the oldest go first.
pub const FINISHED_MAX: usize = 256;

/// How long the daemon may not answer before a job ends in an exception.
const DAEMON_SILENT_MAX: Duration = Duration::from_secs(30);

/// How a job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// The run or halt goes on (JobState 4).
    Running,
    /// It ended well, on these nodes (JobState 7).
    Completed(Vec<String>),
    /// It did not, and why (JobState 10).
    Exception(String),
}

/// One job.
#[derive(Debug, Clone)]
pub struct Job {
    /// Its number on this agent.
    pub number: u64,
    /// Its InstanceID: `cimguard:<cluster>:job:<node>:<number>`.
    pub id: String,
    /// The package.
    pub package: String,
    /// The node given (NodeName).
    pub node: Option<String>,
    /// 2 run, 3 halt.
    pub requested: u16,
    /// Who asked.
    pub owner: String,
    /// When it was asked.
    pub submitted: SystemTime,
    /// When it ended.
    pub ended: Option<(Instant, SystemTime)>,
    /// How it stands.
    pub state: JobState,
}

impl Job {
    /// The properties of its HP_SGPackageJob instance, `now` for ElapsedTime.
    pub fn properties(&self, now: SystemTime) -> Vec<(&'static str, Option<Value>)> {
        let verb = if self.requested == 2 { "run" } else { "halt" };
        let (job_state, status, percent, error_code) = match &self.state {
            JobState::Running => (
                4,
                format!("{verb} of {} in progress", self.package),
                0,
                None,
            ),
            JobState::Completed(nodes) if nodes.is_empty() => (
                7,
                match &self.node {
                    Some(node) => format!("package {} halted on {node}", self.package),
                    None => format!("package {} halted", self.package),
                },
                100,
                Some(0),
            ),
            JobState::Completed(nodes) => (
                7,
                format!(
                    "package {} is running on {}",
                    self.package,
                    nodes.join(", ")
                ),
                100,
                Some(0),
            ),
            JobState::Exception(reason) => (10, reason.clone(), 100, Some(4)),
        };
        let changed = self.ended.map_or(self.submitted, |(_, at)| at);
        let elapsed = self
            .ended
            .map_or(now, |(_, at)| at)
            .duration_since(self.submitted)
            .unwrap_or_default();
        let running_on = match &self.state {
            JobState::Completed(nodes) => Some(Value::Array(
                nodes
                    .iter()
                    .map(|n| Some(Value::String(n.clone())))
                    .collect(),
            )),
            _ => None,
        };
        let error = match &self.state {
            JobState::Exception(reason) => Some(Value::String(reason.clone())),
            _ => None,
        };
        vec![
            ("InstanceID", Some(Value::String(self.id.clone()))),
            ("Name", Some(Value::String("RequestStateChange".into()))),
            (
                "ElementName",
                Some(Value::String(format!("{verb} {}", self.package))),
            ),
            (
                "Caption",
                Some(Value::String(match &self.node {
                    Some(node) => format!("{verb} package {} on {node}", self.package),
                    None => format!("{verb} package {}", self.package),
                })),
            ),
            ("PackageName", Some(Value::String(self.package.clone()))),
            ("NodeName", self.node.clone().map(Value::String)),
            ("RequestedState", Some(Value::Uint16(self.requested))),
            ("RunningOn", running_on),
            ("JobState", Some(Value::Uint16(job_state))),
            ("JobStatus", Some(Value::String(status))),
            ("PercentComplete", Some(Value::Uint16(percent))),
            ("ErrorCode", error_code.map(Value::Uint16)),
            ("ErrorDescription", error),
            ("Owner", Some(Value::String(self.owner.clone()))),
            (
                "TimeSubmitted",
                Some(Value::Datetime(timestamp(self.submitted))),
            ),
            (
                "StartTime",
                Some(Value::Datetime(timestamp(self.submitted))),
            ),
            (
                "TimeOfLastStateChange",
                Some(Value::Datetime(timestamp(changed))),
            ),
            ("ElapsedTime", Some(Value::Datetime(interval(elapsed)))),
            (
                "TimeBeforeRemoval",
                Some(Value::Datetime(interval(TIME_BEFORE_REMOVAL))),
            ),
            // Removed by itself TimeBeforeRemoval after it ended (or by DeleteInstance).
            ("DeleteOnCompletion", Some(Value::Boolean(true))),
            ("JobRunTimes", Some(Value::Uint32(1))),
            // UTC: the timestamps above are.
            ("LocalOrUtcTime", Some(Value::Uint16(2))),
            (
                "OperationalStatus",
                Some(Value::Array(
                    match &self.state {
                        JobState::Running => vec![2],
                        JobState::Completed(_) => vec![2, 17],
                        JobState::Exception(_) => vec![6, 17],
                    }
                    .into_iter()
                    .map(|n| Some(Value::Uint16(n)))
                    .collect(),
                )),
            ),
        ]
    }
}

/// What [`Jobs::remove`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The job is gone.
    Removed,
    /// There is no such job (any more).
    NoSuchJob,
    /// The job is still running: it stays.
    StillRunning,
}

/// The jobs of one agent, and the waits of those running: one poller thread reads the
/// cluster's view for all of them while any runs.
#[derive(Debug, Default)]
pub struct Jobs {
    next: u64,
    list: Vec<Job>,
    /// The running jobs' waits, by job number.
    waits: Vec<(u64, PackageWait)>,
    /// Whether the poller thread runs.
    polling: bool,
}

impl Jobs {
    /// The jobs kept now (finished ones past their removal time are dropped first).
    pub fn current(&mut self, now: Instant) -> Vec<Job> {
        self.prune(now);
        self.list.clone()
    }

    /// Removes the job whose InstanceID is `id` if it has finished.
    pub fn remove(&mut self, id: &str) -> Removal {
        let Some(index) = self.list.iter().position(|j| j.id == id) else {
            return Removal::NoSuchJob;
        };
        if self.list[index].state == JobState::Running {
            return Removal::StillRunning;
        }
        self.list.remove(index);
        Removal::Removed
    }

    fn prune(&mut self, now: Instant) {
        self.list.retain(|job| {
            job.ended
                .is_none_or(|(at, _)| now.saturating_duration_since(at) < TIME_BEFORE_REMOVAL)
        });
        let finished = self.list.iter().filter(|j| j.ended.is_some()).count();
        let mut excess = finished.saturating_sub(FINISHED_MAX);
        self.list.retain(|job| {
            if excess > 0 && job.ended.is_some() {
                excess -= 1;
                return false;
            }
            true
        });
    }

    fn finish(&mut self, number: u64, state: JobState) {
        tracing::info!(job = number, ?state, "serviceguard provider: job ended");
        self.waits.retain(|(n, _)| *n != number);
        if let Some(job) = self.list.iter_mut().find(|j| j.number == number) {
            job.state = state;
            job.ended = Some((Instant::now(), SystemTime::now()));
        }
    }
}

/// Waits for `wait` to end with views read from `source`, until `deadline` at most: the
/// progress, and the wait to go on with while it is [`Progress::Waiting`].
pub fn wait_until(
    source: &dyn ClusterSource,
    wait: &mut PackageWait,
    deadline: Instant,
) -> Progress {
    let mut silent_since: Option<Instant> = None;
    loop {
        let now = Instant::now();
        match source.status() {
            Ok(status) => {
                silent_since = None;
                match wait.observe(&status.cluster, now) {
                    Progress::Waiting => {}
                    ended => return ended,
                }
            }
            Err(reason) => {
                if now.saturating_duration_since(*silent_since.get_or_insert(now))
                    >= DAEMON_SILENT_MAX
                {
                    return Progress::Failed(format!(
                        "whether package {} ended its {} cannot be told: {reason}",
                        wait.package(),
                        if matches!(wait.goal(), Goal::Run(_)) {
                            "start"
                        } else {
                            "halt"
                        }
                    ));
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Progress::Waiting;
        }
        std::thread::sleep(wait.next_poll().min(left));
    }
}

/// Starts a job that goes on with `wait` (the poller reads views from `source`) and returns
/// its InstanceID (`id_prefix` and its number).
pub fn start(
    jobs: &Arc<Mutex<Jobs>>,
    source: Arc<dyn ClusterSource>,
    wait: PackageWait,
    requested: u16,
    owner: &str,
    id_prefix: &str,
) -> String {
    let mut table = jobs.lock().unwrap_or_else(PoisonError::into_inner);
    table.prune(Instant::now());
    table.next += 1;
    let number = table.next;
    let id = format!("{id_prefix}{number}");
    table.list.push(Job {
        number,
        id: id.clone(),
        package: wait.package().to_owned(),
        node: wait.goal().node().map(str::to_owned),
        requested,
        owner: owner.to_owned(),
        submitted: SystemTime::now(),
        ended: None,
        state: JobState::Running,
    });
    table.waits.push((number, wait));
    if !table.polling {
        let shared = jobs.clone();
        let spawned = std::thread::Builder::new()
            .name("package-jobs".into())
            .spawn(move || poll(&shared, source.as_ref()));
        match spawned {
            Ok(_) => table.polling = true,
            Err(error) => {
                tracing::error!(%error, "serviceguard provider: no thread for the jobs");
                table.finish(
                    number,
                    JobState::Exception(format!("the agent could not wait for the end: {error}")),
                );
            }
        }
    }
    id
}

/// The poller: while jobs run, reads the view once per interval (the shortest any running
/// job asks) and gives it to every running job's wait; ends when none runs.
fn poll(jobs: &Arc<Mutex<Jobs>>, source: &dyn ClusterSource) {
    // A panic here must not leave jobs running for ever: they end in an exception.
    struct Guard<'a>(&'a Arc<Mutex<Jobs>>);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let mut table = self.0.lock().unwrap_or_else(PoisonError::into_inner);
                let running: Vec<u64> = table.waits.iter().map(|(n, _)| *n).collect();
                for number in running {
                    table.finish(
                        number,
                        JobState::Exception("the agent's job poller failed".into()),
                    );
                }
                table.polling = false;
            }
        }
    }
    let _guard = Guard(jobs);
    let mut silent_since: Option<Instant> = None;
    loop {
        let pause = {
            let mut table = jobs.lock().unwrap_or_else(PoisonError::into_inner);
            let pause = table.waits.iter_mut().map(|(_, w)| w.next_poll()).min();
            let Some(pause) = pause else {
                table.polling = false;
                return;
            };
            pause
        };
        std::thread::sleep(pause);
        let status = source.status();
        let now = Instant::now();
        let mut table = jobs.lock().unwrap_or_else(PoisonError::into_inner);
        let ended: Vec<(u64, JobState)> = match &status {
            Ok(status) => {
                silent_since = None;
                table
                    .waits
                    .iter_mut()
                    .filter_map(|(number, wait)| match wait.observe(&status.cluster, now) {
                        Progress::Waiting => None,
                        Progress::Done(nodes) => Some((*number, JobState::Completed(nodes))),
                        Progress::Failed(reason) => Some((*number, JobState::Exception(reason))),
                    })
                    .collect()
            }
            Err(reason)
                if now.saturating_duration_since(*silent_since.get_or_insert(now))
                    >= DAEMON_SILENT_MAX =>
            {
                table
                    .waits
                    .iter()
                    .map(|(number, wait)| {
                        let verb = if matches!(wait.goal(), Goal::Run(_)) {
                            "start"
                        } else {
                            "halt"
                        };
                        (
                            *number,
                            JobState::Exception(format!(
                                "whether package {} ended its {verb} cannot be told: {reason}",
                                wait.package()
                            )),
                        )
                    })
                    .collect()
            }
            Err(_) => Vec::new(),
        };
        for (number, state) in ended {
            table.finish(number, state);
        }
    }
}

/// A CIM timestamp (UTC) of `at`.
pub fn timestamp(at: SystemTime) -> Datetime {
    let at = time::OffsetDateTime::from(at);
    Datetime::timestamp(
        (
            u16::try_from(at.year()).unwrap_or(0),
            u8::from(at.month()),
            at.day(),
        ),
        (at.hour(), at.minute(), at.second()),
        at.microsecond(),
        0,
    )
    // Every field above is in range for the 25-character form (years 0-9999).
    .unwrap_or_else(|_| Datetime::parse("19700101000000.000000+000").expect("a valid constant"))
}

/// The point in time a CIM timestamp names; none for an interval or a timestamp with unknown
/// fields.
pub fn system_time(datetime: &Datetime) -> Option<SystemTime> {
    let cim_schema::model::DatetimeFields::Timestamp {
        year: Some(year),
        month: Some(month),
        day: Some(day),
        hour: Some(hour),
        minute: Some(minute),
        second: Some(second),
        microseconds,
        utc_offset_minutes,
    } = datetime.fields()
    else {
        return None;
    };
    let date =
        time::Date::from_calendar_date(i32::from(year), time::Month::try_from(month).ok()?, day)
            .ok()?;
    let micros = microseconds.map_or(0, |(value, digits)| {
        value * 10u32.pow(6u32.saturating_sub(u32::from(digits)))
    });
    let at = date
        .with_hms_micro(hour, minute, second.min(59), micros)
        .ok()?
        .assume_offset(
            time::UtcOffset::from_whole_seconds(i32::from(utc_offset_minutes) * 60).ok()?,
        );
    Some(SystemTime::from(at))
}

/// A CIM interval of `span` (at most 99999999 days).
pub fn interval(span: Duration) -> Datetime {
    let secs = span.as_secs();
    let days = u32::try_from(secs / 86_400)
        .unwrap_or(u32::MAX)
        .min(99_999_999);
    let field = |n: u64| u8::try_from(n).unwrap_or(0);
    Datetime::interval(
        days,
        (
            field(secs / 3600 % 24),
            field(secs / 60 % 60),
            field(secs % 60),
        ),
        span.subsec_micros(),
    )
    .unwrap_or_else(|_| Datetime::parse("00000000000000.000000:000").expect("a valid constant"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(number: u64, ended: Option<Instant>) -> Job {
        Job {
            number,
            id: format!("cimguard:c:job:node1:{number}"),
            package: "dbpkg".into(),
            node: None,
            requested: 2,
            owner: "admin".into(),
            submitted: SystemTime::UNIX_EPOCH,
            ended: ended.map(|at| (at, SystemTime::UNIX_EPOCH + Duration::from_secs(90))),
            state: if ended.is_some() {
                JobState::Completed(vec!["node1".into()])
            } else {
                JobState::Running
            },
        }
    }

    #[test]
    fn finished_jobs_go_after_their_removal_time_and_running_ones_stay() {
        let start = Instant::now();
        let mut jobs = Jobs {
            next: 2,
            list: vec![job(1, Some(start)), job(2, None)],
            ..Jobs::default()
        };
        assert_eq!(jobs.current(start).len(), 2);
        let later = start + TIME_BEFORE_REMOVAL;
        let left: Vec<u64> = jobs.current(later).iter().map(|j| j.number).collect();
        assert_eq!(left, vec![2]);
        assert_eq!(jobs.remove("cimguard:c:job:node1:2"), Removal::StillRunning);
        assert_eq!(jobs.remove("cimguard:c:job:node1:7"), Removal::NoSuchJob);
    }

    #[test]
    fn the_oldest_finished_jobs_go_beyond_the_limit() {
        let now = Instant::now();
        let mut jobs = Jobs::default();
        for number in 0..(FINISHED_MAX as u64 + 3) {
            jobs.list.push(job(number, Some(now)));
        }
        jobs.list.push(job(999, None));
        let kept = jobs.current(now);
        assert_eq!(kept.len(), FINISHED_MAX + 1);
        assert_eq!(kept[0].number, 3);
        assert!(kept.iter().any(|j| j.number == 999));
    }

    #[test]
    fn a_job_reads_as_dmtf_says_while_running_and_after() {
        let mut running = job(4, None);
        let props = running.properties(SystemTime::UNIX_EPOCH + Duration::from_secs(3725));
        let get = |props: &[(&str, Option<Value>)], name: &str| {
            props
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| v.clone())
        };
        assert_eq!(get(&props, "JobState"), Some(Value::Uint16(4)));
        assert_eq!(
            get(&props, "InstanceID"),
            Some(Value::String("cimguard:c:job:node1:4".into()))
        );
        assert_eq!(
            get(&props, "ElapsedTime"),
            Some(Value::Datetime(
                Datetime::parse("00000000010205.000000:000").unwrap()
            ))
        );
        running.state = JobState::Exception("unable to start package dbpkg on node node1".into());
        running.ended = Some((
            Instant::now(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(5),
        ));
        let props = running.properties(SystemTime::now());
        assert_eq!(get(&props, "JobState"), Some(Value::Uint16(10)));
        assert_eq!(get(&props, "ErrorCode"), Some(Value::Uint16(4)));
        assert_eq!(
            get(&props, "ElapsedTime"),
            Some(Value::Datetime(
                Datetime::parse("00000000000005.000000:000").unwrap()
            ))
        );
        assert_eq!(
            get(&props, "TimeOfLastStateChange"),
            Some(Value::Datetime(
                Datetime::parse("19700101000005.000000+000").unwrap()
            ))
        );
    }
}
