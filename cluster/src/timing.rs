//! The cluster's timing, derived from MEMBER_TIMEOUT and the tie-breaker's settings, and the
//! survivors' wait that makes fencing safe (serviceguard.md decision 6, cluster.md S3).
//!
//! How the pieces fit (all durations on a node's own monotonic clock):
//!
//! - A node sends a heartbeat to every peer on every heartbeat network every
//!   `heartbeat_interval` = min(MEMBER_TIMEOUT / 8, 1 s) (Serviceguard: min(MEMBER_TIMEOUT /
//!   4, 1 s), the same from 8 s up; see [`heartbeat_interval`]).
//! - A peer silent for MEMBER_TIMEOUT on every network is lost.
//! - A node holds a **quorum lease**: a running peer echoes, in its heartbeats, the send time
//!   (on this node's clock) of the last heartbeat it received from this node. The node is
//!   quorate until `lease` after the send time echoed by the peers that make up a majority of
//!   its membership. Because the echoed time is the node's own, message delays only shorten
//!   the lease; no clocks are compared.
//! - A node echoes a peer only while the peer shows that it hears this node: every heartbeat
//!   also acknowledges the latest send time heard from its receiver (in any phase, whether
//!   or not it echoes), and a peer whose heartbeats keep arriving for `ack_stale_max` (one
//!   and a half heartbeat intervals) without acknowledging a newer one is echoed no more. A
//!   peer that stopped hearing its members (a one-way loss) is then echoed by no one from
//!   about three heartbeat intervals after it went deaf, long before it is found out, and the
//!   survivors' wait counts from that last echo rather than from its departure. The rule
//!   counts heartbeats, not delays, so a slow but steady network keeps its echoes. The lease
//!   is MEMBER_TIMEOUT less those intervals (at least half of MEMBER_TIMEOUT), so that the
//!   wait ends no later after a one-way loss than after a two-way one.
//! - The node pets its safety timer only while the lease holds, and every pet sets the timer
//!   to expire a **grace** after the end of the lease. So a pause shorter than the lease
//!   costs nothing, and a node is certainly gone `(lease + grace) / (1 - drift)` of real time
//!   after the last moment a survivor echoed it.
//! - The grace depends on whether a lease may lapse through a re-formation the node survives.
//!   That happens only to a group of exactly half of its membership, which goes on by winning
//!   the tie-breaker: in a membership of even size with a lock LUN or a quorum server, the
//!   re-formation, lock included, must fit in the grace (`safety_grace`, derived from the
//!   re-formation budget and the lock timeout). In any other membership a node whose lease
//!   lapsed is in no quorate group, and the grace only covers the pet's way to the timer and
//!   scheduling (`short_grace`). The grace travels with the send time it belongs to and comes
//!   back in the echo (core::Echo); it falls back from the long to the short one no faster
//!   than time passes, so the latest echo bounds every earlier one.
//! - The survivors measure that bound on their own clocks (which may run fast by `drift`):
//!   [`Timing::fence_bound`] of the grace echoed. A survivor that last echoed the lost node
//!   `s` ago waits `fence_bound - s`; the group waits for the largest such value before
//!   starting the lost node's packages.
//! - A configuration whose longest safety timer (lease plus `safety_grace`) exceeds what a
//!   watchdog accepts is rejected.

use std::time::Duration;

use crate::config::cluster::{ClusterConfig, ClusterLock};
use crate::config::{Diagnostic, Severity};
use crate::core::Term;

/// The clock-rate error allowed between any two nodes' monotonic clocks: 1000 ppm (0.1 %),
/// twice the ±500 ppm that cluster.md scenario 32 injects. Crystal oscillators are within
/// ±100 ppm; NTP refuses to discipline clocks beyond 500 ppm.
pub const CLOCK_DRIFT_PPM: u64 = 1000;

/// The longest safety timer cimguard will arm (lease plus grace). Softdog takes up to
/// 65535 s, many hardware watchdogs far less (the runtime then pets with the device's
/// maximum, which only makes the timer fire earlier); beyond ten minutes a lost node's
/// packages would stay down for too long to call the cluster highly available.
pub const SAFETY_TIMEOUT_MAX: Duration = Duration::from_secs(600);

/// The longest heartbeat interval (Serviceguard's: one second).
pub const HEARTBEAT_INTERVAL_MAX: Duration = Duration::from_secs(1);

/// The margin added to every fence bound for the time between the core's decision to pet and
/// the pet reaching the timer, and for scheduling.
pub const FENCE_MARGIN: Duration = Duration::from_millis(100);

/// The heartbeat interval for `member_timeout`: min(MEMBER_TIMEOUT / 8, 1 s). Serviceguard
/// sends every min(MEMBER_TIMEOUT / 4, 1 s), the same from 8 s up (the default 14 s
/// included). Below that cimguard sends twice as often: the lease is MEMBER_TIMEOUT less two
/// and a half intervals, and must outlast the first round of echoes in a new membership (two
/// intervals) and a peer's stall; with a quarter it would be half of MEMBER_TIMEOUT, one and a
/// half intervals at 3 s, shorter than that round. An eighth leaves five and a half.
pub fn heartbeat_interval(member_timeout: Duration) -> Duration {
    (member_timeout / 8).min(HEARTBEAT_INTERVAL_MAX)
}

/// The timing of one cluster, derived from its configuration by [`Timing::derive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// MEMBER_TIMEOUT: silence after which a peer is lost.
    pub member_timeout: Duration,
    /// Heartbeat period: [`heartbeat_interval`] of MEMBER_TIMEOUT.
    pub heartbeat_interval: Duration,
    /// How long an echo keeps a node quorate: MEMBER_TIMEOUT less two and a half heartbeat
    /// intervals (the most an echo may follow a one-way loss, see [`Timing::failover_bound`]),
    /// at least half of MEMBER_TIMEOUT.
    pub lease: Duration,
    /// How long a peer's heartbeats may keep arriving without acknowledging a newer heartbeat
    /// of this node while this node still echoes it: one and a half heartbeat intervals (two
    /// heartbeats in a row; one alone happens when the two nodes' heartbeats cross).
    pub ack_stale_max: Duration,
    /// How long the membership candidate must stay unchanged before the coordinator proposes
    /// it (one heartbeat interval: time for every node's reachability to be heard).
    pub settle: Duration,
    /// How long a coordinator waits for the answers to a proposal and a member for the commit.
    pub propose_timeout: Duration,
    /// How long a tie-break may take: the quorum server timeout (0.1 x MEMBER_TIMEOUT for two
    /// nodes, 0.2 x for more, plus QS_TIMEOUT_EXTENSION), 0.2 x MEMBER_TIMEOUT for a lock LUN,
    /// zero without a lock.
    pub lock_timeout: Duration,
    /// How long after the end of its quorum lease a node's safety timer resets it, in a
    /// membership of even size with a tie-breaker (the long grace: a re-formation with the
    /// lock fits in it).
    pub safety_grace: Duration,
    /// The grace in any other membership: half a heartbeat interval, at least
    /// [`FENCE_MARGIN`].
    pub short_grace: Duration,
    /// The clock-rate error allowed, in parts per million.
    pub drift_ppm: u64,
    /// AUTO_START_TIMEOUT: how long a starting node waits for all configured nodes.
    pub auto_start_timeout: Duration,
    /// QS_POLLING_INTERVAL (zero without a quorum server).
    pub quorum_server_polling_interval: Duration,
    /// How often a member reads the lock LUN to check its health (zero: no lock LUN):
    /// NETWORK_POLLING_INTERVAL x [`LOCK_CHECK_POLLS`].
    pub lock_check_interval: Duration,
}

/// The lock LUN is read every this many NETWORK_POLLING_INTERVALs (a minute by default).
pub const LOCK_CHECK_POLLS: u32 = 30;

impl Timing {
    /// The timing of `config`, or the reasons it cannot be made safe.
    pub fn derive(config: &ClusterConfig, file: &str) -> Result<Timing, Vec<Diagnostic>> {
        let member_timeout = config.member_timeout;
        let heartbeat_interval = heartbeat_interval(member_timeout);
        let (lock_timeout, quorum_server_polling_interval) = match &config.lock {
            ClusterLock::None => (Duration::ZERO, Duration::ZERO),
            ClusterLock::LockLun => (member_timeout / 5, Duration::ZERO),
            ClusterLock::QuorumServer {
                polling_interval,
                timeout_extension,
                ..
            } => {
                let share = if config.in_cluster().count() <= 2 {
                    10
                } else {
                    5
                };
                (
                    member_timeout / share + *timeout_extension,
                    *polling_interval,
                )
            }
        };
        let settle = heartbeat_interval;
        // Long enough for a round trip on a slow network (a fifth of MEMBER_TIMEOUT), never
        // less than two heartbeats.
        let propose_timeout = (heartbeat_interval * 2).max(member_timeout / 5);
        // Settle, one proposal round, the lock, then one heartbeat round trip in the new
        // membership before the first echo renews the lease, and one interval of slack.
        let safety_grace = (settle + propose_timeout + lock_timeout + heartbeat_interval * 3)
            .max(Duration::from_secs(1));
        let lease = member_timeout
            .saturating_sub(heartbeat_interval * 5 / 2)
            .max(member_timeout / 2);
        let safety_timeout = lease + safety_grace;
        let timing = Timing {
            member_timeout,
            heartbeat_interval,
            lease,
            ack_stale_max: heartbeat_interval * 3 / 2,
            settle,
            propose_timeout,
            lock_timeout,
            safety_grace,
            short_grace: (heartbeat_interval / 2).max(FENCE_MARGIN),
            drift_ppm: CLOCK_DRIFT_PPM,
            auto_start_timeout: config.auto_start_timeout,
            quorum_server_polling_interval,
            lock_check_interval: match config.lock {
                ClusterLock::LockLun => config.network_polling_interval * LOCK_CHECK_POLLS,
                _ => Duration::ZERO,
            },
        };
        if safety_timeout > SAFETY_TIMEOUT_MAX {
            let parameter = match config.lock {
                ClusterLock::QuorumServer { .. } => "QS_TIMEOUT_EXTENSION",
                _ => "MEMBER_TIMEOUT",
            };
            return Err(vec![Diagnostic {
                severity: Severity::Error,
                file: file.to_owned(),
                line: 0,
                parameter: Some(parameter.to_owned()),
                reason: format!(
                    "the safety timer would need {:.1} s (the quorum lease {:.1} s, re-formation \
                     {:.1} s and the lock timeout {:.1} s), more than {} s: lower \
                     MEMBER_TIMEOUT or QS_TIMEOUT_EXTENSION",
                    safety_timeout.as_secs_f64(),
                    lease.as_secs_f64(),
                    (safety_grace - lock_timeout).as_secs_f64(),
                    lock_timeout.as_secs_f64(),
                    SAFETY_TIMEOUT_MAX.as_secs()
                ),
            }]);
        }
        Ok(timing)
    }

    /// The grace of a node's safety timer: the long one when its membership may go on with
    /// exactly half of it (`long`), the short one otherwise.
    pub fn grace(&self, long: bool) -> Duration {
        if long {
            self.safety_grace
        } else {
            self.short_grace
        }
    }

    /// The lease and the grace (`long` or short) of this timing, as a node announces them.
    pub fn term(&self, long: bool) -> Term {
        Term {
            lease: self.lease,
            grace: self.grace(long),
        }
    }

    /// How long after a survivor last echoed a node (measured on the survivor's clock) that
    /// node is certainly reset, when the echo carried `term`: `((lease + grace) / (1 -
    /// drift) + margin) x (1 + drift)`. See the module documentation. The term is the echoed
    /// node's, not this timing's: only the drift comes from here.
    pub fn fence_bound(&self, term: Term) -> Duration {
        let slow = self.stretch(term.lease.saturating_add(term.grace));
        let fast = slow + FENCE_MARGIN;
        fast + fast * (self.drift_ppm as u32) / 1_000_000
    }

    /// The longest fence bound of this timing: an echo with its lease and the long grace.
    pub fn fence_bound_max(&self) -> Duration {
        self.fence_bound(self.term(true))
    }

    /// How far ahead a healthy node's pets reach at the least: the lease and the short
    /// grace, less the age of the echo the lease counts from (up to two heartbeat
    /// intervals). A watchdog device needs it long enough (runtime::watchdog).
    pub fn pet_horizon(&self) -> Duration {
        (self.lease + self.short_grace).saturating_sub(self.heartbeat_interval * 2)
    }

    /// `duration / (1 - drift)`: the most real time a clock running slow can take to count
    /// `duration`.
    fn stretch(&self, duration: Duration) -> Duration {
        let ppm = self.drift_ppm.min(999_999);
        let nanos = duration.as_nanos() * 1_000_000 / u128::from(1_000_000 - ppm);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// The longest a failover can take after a node stops or stops hearing its peers, with
    /// the grace of its membership (`long`: even size, with a tie-breaker): detection
    /// (MEMBER_TIMEOUT) and the settling of the candidate, after at most one heartbeat
    /// interval since the last heartbeat heard; or the survivors' wait, whichever ends later.
    /// The wait counts from the last echo, at most three heartbeat intervals after the fault:
    /// the deaf node acknowledges a heartbeat sent before it, in its next heartbeat, and two
    /// more of its heartbeats (`ack_stale_max`) arrive without a newer acknowledgement.
    pub fn failover_bound(&self, long: bool) -> Duration {
        (self.heartbeat_interval + self.member_timeout + self.settle)
            .max(self.heartbeat_interval * 3 + self.fence_bound(self.term(long)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::cluster::parse;

    fn cluster(nodes: usize, extra: &str) -> ClusterConfig {
        let mut text = String::from("CLUSTER_NAME c\n");
        text.push_str(extra);
        for n in 1..=nodes {
            text.push_str(&format!(
                "NODE_NAME n{n}\n NETWORK_INTERFACE eth0\n  HEARTBEAT_IP 10.0.0.{n}\n NETWORK_INTERFACE eth1\n  HEARTBEAT_IP 10.0.1.{n}\n"
            ));
        }
        match parse(&text, "c.ascii") {
            Ok(checked) => checked.config,
            Err(findings) => panic!("{text}\n{findings:?}"),
        }
    }

    #[test]
    fn default_member_timeout_gives_serviceguard_failover_time() {
        let config = cluster(3, "MEMBER_TIMEOUT 14000000\n");
        let timing = Timing::derive(&config, "c").unwrap();
        assert_eq!(timing.heartbeat_interval, Duration::from_secs(1));
        assert_eq!(timing.lock_timeout, Duration::ZERO);
        // Serviceguard documents 18-22 s of failover at MEMBER_TIMEOUT 14 s; the target is
        // MEMBER_TIMEOUT + 2 s in an odd membership, and the lock's re-formation budget more
        // in an even one.
        let odd = timing.failover_bound(false).as_secs_f64();
        assert!((15.0..=16.0).contains(&odd), "{odd}");
        let even = timing.failover_bound(true).as_secs_f64();
        assert!((18.0..=26.0).contains(&even), "{even}");
    }

    #[test]
    fn short_member_timeout_shortens_the_heartbeat() {
        let config = cluster(3, "MEMBER_TIMEOUT 3000000\n");
        let timing = Timing::derive(&config, "c").unwrap();
        assert_eq!(timing.heartbeat_interval, Duration::from_millis(375));
        // The lease outlasts the first round of echoes in a new membership (two intervals)
        // with room to spare.
        assert!(timing.lease >= timing.heartbeat_interval * 5);
        let config = cluster(3, "MEMBER_TIMEOUT 8000000\n");
        let timing = Timing::derive(&config, "c").unwrap();
        assert_eq!(timing.heartbeat_interval, Duration::from_secs(1));
    }

    #[test]
    fn the_fast_profile_fails_over_within_one_and_a_half_seconds() {
        let config = cluster(3, "MEMBER_TIMEOUT 1000000\n");
        let timing = Timing::derive(&config, "c").unwrap();
        assert_eq!(timing.heartbeat_interval, Duration::from_millis(125));
        // The lease leaves more than half of MEMBER_TIMEOUT of stall after an echo that is a
        // heartbeat interval old; a failover, a one-way loss included, fits in 1.5 s.
        assert!(timing.lease - timing.heartbeat_interval > timing.member_timeout / 2);
        let bound = timing.failover_bound(false).as_secs_f64();
        assert!(bound < 1.5, "{bound}");
        // The default profile's lease still covers a long stall.
        let config = cluster(3, "MEMBER_TIMEOUT 14000000\n");
        let timing = Timing::derive(&config, "c").unwrap();
        assert_eq!(timing.lease, Duration::from_millis(11_500));
    }

    #[test]
    fn quorum_server_timeout_follows_the_node_count() {
        let two = cluster(
            2,
            "MEMBER_TIMEOUT 14000000\nQS_HOST qs\nQS_TIMEOUT_EXTENSION 2000000\n",
        );
        let timing = Timing::derive(&two, "c").unwrap();
        assert_eq!(timing.lock_timeout, Duration::from_millis(1400 + 2000));
        let three = cluster(3, "MEMBER_TIMEOUT 14000000\nQS_HOST qs\n");
        let timing = Timing::derive(&three, "c").unwrap();
        assert_eq!(timing.lock_timeout, Duration::from_millis(2800));
    }

    #[test]
    fn fence_bound_covers_lease_safety_timer_and_drift() {
        let config = cluster(3, "MEMBER_TIMEOUT 14000000\n");
        let timing = Timing::derive(&config, "c").unwrap();
        for long in [false, true] {
            let slowest = (timing.lease + timing.grace(long)).as_secs_f64() / (1.0 - 0.001);
            assert!(timing.fence_bound(timing.term(long)).as_secs_f64() > slowest * 1.001);
        }
        assert!(timing.short_grace < timing.safety_grace);
    }

    #[test]
    fn a_safety_timer_beyond_a_watchdog_is_rejected() {
        let config = cluster(
            2,
            "MEMBER_TIMEOUT 300000000\nQS_HOST qs\nQS_TIMEOUT_EXTENSION 300000000\n",
        );
        let findings = Timing::derive(&config, "c.ascii").unwrap_err();
        assert_eq!(
            findings[0].parameter.as_deref(),
            Some("QS_TIMEOUT_EXTENSION")
        );
        assert!(
            findings[0].reason.contains("safety timer"),
            "{}",
            findings[0]
        );
    }
}
