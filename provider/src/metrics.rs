//! `GET /metrics`: what a Prometheus server scrapes from the agent (text exposition format
//! 0.0.4), behind the same authentication as CIM requests. The numbers come from a
//! [`Metrics`] source: in a node, the cluster daemon's status ([`ClusterMetrics`]).

use std::fmt::Write as _;
use std::sync::Arc;

use cimguard_cluster::runtime::daemon::DaemonStatus;
use cimguard_cluster::status::Health;

use crate::interop::IndicationCounters;
use crate::serviceguard::ClusterSource;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Where the metrics come from.
pub trait Metrics: Send + Sync {
    /// The metrics in the text exposition format, or why there are none.
    fn render(&self) -> Result<String, String>;
}

/// The cluster daemon's status as metrics, and the agent's indication service's counters.
pub struct ClusterMetrics {
    source: Arc<dyn ClusterSource>,
    indications: Option<Arc<IndicationCounters>>,
}

impl ClusterMetrics {
    /// Metrics of the daemon behind `source`.
    pub fn new(source: Arc<dyn ClusterSource>) -> ClusterMetrics {
        ClusterMetrics {
            source,
            indications: None,
        }
    }

    /// The same, with the indication service's counters.
    pub fn with_indications(mut self, counters: Arc<IndicationCounters>) -> ClusterMetrics {
        self.indications = Some(counters);
        self
    }
}

impl Metrics for ClusterMetrics {
    fn render(&self) -> Result<String, String> {
        // The agent's own counters are shown even when the daemon does not answer: that is
        // when missed notices and pending indications matter.
        let mut out = match (self.source.status(), &self.indications) {
            (Ok(status), _) => render(&status),
            (Err(_), Some(_)) => String::new(),
            (Err(error), None) => return Err(error),
        };
        if let Some(counters) = &self.indications {
            render_indications(&mut out, counters);
        }
        Ok(out)
    }
}

/// The indication service's counters, as CIMGuard_IndicationService shows them: counters end
/// in `_total`, gauges do not.
pub fn render_indications(out: &mut String, counters: &IndicationCounters) {
    for (property, value, counter) in counters.values() {
        let (name, help) = match property {
            "NoticesRead" => (
                "cimguard_indication_notices_read_total",
                "Cluster notices the agent read from its daemon since it started.",
            ),
            "NoticesMissed" => (
                "cimguard_indication_notices_missed_total",
                "Notices the daemon no longer kept when the agent asked for them, since it started.",
            ),
            "IndicationsQueued" => (
                "cimguard_indications_queued_total",
                "Indications queued for delivery since the agent started.",
            ),
            "IndicationsDelivered" => (
                "cimguard_indications_delivered_total",
                "Indications the listeners took since the agent started.",
            ),
            "DeliveryFailures" => (
                "cimguard_indication_delivery_failures_total",
                "Indication delivery attempts that failed since the agent started.",
            ),
            "IndicationsDropped" => (
                "cimguard_indications_dropped_total",
                "Indications dropped undelivered since the outbox was created (queue full, destination removed).",
            ),
            "IndicationsPending" => (
                "cimguard_indications_pending",
                "Indications queued and not yet delivered.",
            ),
            "Destinations" => (
                "cimguard_indication_destinations",
                "Listener destinations with a delivery running.",
            ),
            _ => (
                "cimguard_indication_destinations_failing",
                "Listener destinations whose last delivery attempt failed.",
            ),
        };
        family(out, name, if counter { "counter" } else { "gauge" }, help);
        let _ = writeln!(out, "{name} {value}");
    }
}

/// A label value escaped as the format wants (backslash, double quote, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes `# HELP` and `# TYPE` of one metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn flag(on: bool) -> u8 {
    u8::from(on)
}

/// The text exposition of `status`.
pub fn render(status: &DaemonStatus) -> String {
    let mut out = String::new();
    let c = &status.cluster;
    let cluster = label(&c.name);
    family(
        &mut out,
        "cimguard_cluster_up",
        "gauge",
        "1 when the cluster is up as this node sees it.",
    );
    let _ = writeln!(
        out,
        "cimguard_cluster_up{{cluster=\"{cluster}\"}} {}",
        flag(c.status.as_str() == "up")
    );
    family(
        &mut out,
        "cimguard_cluster_info",
        "gauge",
        "The cluster's status and summary as cmviewcl shows them (always 1).",
    );
    let _ = writeln!(
        out,
        "cimguard_cluster_info{{cluster=\"{cluster}\",status=\"{}\",summary=\"{}\",observer=\"{}\"}} 1",
        c.status,
        c.summary,
        label(&status.node)
    );
    family(
        &mut out,
        "cimguard_cluster_config_generation",
        "gauge",
        "The configuration generation (cmapplyconf adds one).",
    );
    let _ = writeln!(
        out,
        "cimguard_cluster_config_generation{{cluster=\"{cluster}\"}} {}",
        c.generation
    );
    family(
        &mut out,
        "cimguard_cluster_membership_epoch",
        "counter",
        "The membership epoch: it grows with every re-formation.",
    );
    let _ = writeln!(
        out,
        "cimguard_cluster_membership_epoch{{cluster=\"{cluster}\"}} {}",
        c.epoch.0
    );
    family(
        &mut out,
        "cimguard_node_up",
        "gauge",
        "1 when the node is a running member.",
    );
    for node in &c.nodes {
        let _ = writeln!(
            out,
            "cimguard_node_up{{cluster=\"{cluster}\",node=\"{}\",state=\"{}\"}} {}",
            label(&node.name),
            node.condition.state,
            flag(node.condition.status.as_str() == "up")
        );
    }
    family(
        &mut out,
        "cimguard_interface_up",
        "gauge",
        "1 while heartbeats pass on the interface, 0 when they do not (unknown: absent).",
    );
    for node in &c.nodes {
        for interface in &node.interfaces {
            let value = match interface.status {
                Health::Up => 1,
                Health::Down => 0,
                Health::Unknown => continue,
            };
            let _ = writeln!(
                out,
                "cimguard_interface_up{{cluster=\"{cluster}\",node=\"{}\",interface=\"{}\"}} {value}",
                label(&node.name),
                label(&interface.name)
            );
        }
    }
    family(
        &mut out,
        "cimguard_package_up",
        "gauge",
        "1 when the package is up (running somewhere).",
    );
    for package in &c.packages {
        let owners: Vec<&str> = package.owners.iter().map(|n| c.node_name(n)).collect();
        let _ = writeln!(
            out,
            "cimguard_package_up{{cluster=\"{cluster}\",package=\"{}\",status=\"{}\",state=\"{}\",node=\"{}\"}} {}",
            label(&package.name),
            package.condition.status,
            package.condition.state,
            label(&owners.join(",")),
            flag(package.condition.status.as_str() == "up")
        );
    }
    family(
        &mut out,
        "cimguard_package_auto_run",
        "gauge",
        "1 when the package's global switching (AUTO_RUN) is enabled.",
    );
    for package in &c.packages {
        let _ = writeln!(
            out,
            "cimguard_package_auto_run{{cluster=\"{cluster}\",package=\"{}\"}} {}",
            label(&package.name),
            flag(package.auto_run)
        );
    }
    family(
        &mut out,
        "cimguard_service_restarts",
        "gauge",
        "Restarts of a package's service on a node since the counter was last reset.",
    );
    for package in &c.packages {
        // Where the package runs: elsewhere its services are down with no restarts to count.
        for row in package.nodes.iter().filter(|row| row.current) {
            for service in &row.services {
                let _ = writeln!(
                    out,
                    "cimguard_service_restarts{{cluster=\"{cluster}\",package=\"{}\",service=\"{}\",node=\"{}\"}} {}",
                    label(&package.name),
                    label(&service.name),
                    label(&row.name),
                    service.condition.restarts
                );
            }
        }
    }
    family(
        &mut out,
        "cimguard_heartbeat_datagrams_rejected_total",
        "counter",
        "Heartbeat datagrams this node dropped, by reason (forged, replayed, foreign, ...).",
    );
    for (reason, count) in &status.datagrams_rejected {
        let _ = writeln!(
            out,
            "cimguard_heartbeat_datagrams_rejected_total{{reason=\"{}\"}} {count}",
            label(reason)
        );
    }
    family(
        &mut out,
        "cimguard_control_frames_received_total",
        "counter",
        "Control channel frames this node received, by message kind.",
    );
    for (kind, count) in &status.control.received_by_kind {
        let _ = writeln!(
            out,
            "cimguard_control_frames_received_total{{kind=\"{}\"}} {count}",
            label(kind)
        );
    }
    family(
        &mut out,
        "cimguard_control_frames_not_sent_total",
        "counter",
        "Control channel frames this node could not send.",
    );
    let _ = writeln!(
        out,
        "cimguard_control_frames_not_sent_total {}",
        status.control.frames_not_sent
    );
    family(
        &mut out,
        "cimguard_daemon_realtime",
        "gauge",
        "1 when the daemon's timing thread runs under SCHED_RR.",
    );
    let _ = writeln!(
        out,
        "cimguard_daemon_realtime {}",
        flag(status.realtime.is_ok())
    );
    family(
        &mut out,
        "cimguard_daemon_memory_locked",
        "gauge",
        "1 when the daemon's memory is locked (mlockall).",
    );
    let _ = writeln!(
        out,
        "cimguard_daemon_memory_locked {}",
        flag(status.memory_locked.is_ok())
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serviceguard::Notices;
    use cimguard_cluster::runtime::daemon::{Reply, Request};

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    /// A daemon that does not answer.
    struct Silent;

    impl ClusterSource for Silent {
        fn status(&self) -> Result<DaemonStatus, String> {
            Err("the cluster daemon does not answer".into())
        }
        fn command(&self, _request: &Request) -> Result<Reply, String> {
            Err("the cluster daemon does not answer".into())
        }
        fn notices(&self, _after: u64, _wait: std::time::Duration) -> Result<Notices, String> {
            Err("the cluster daemon does not answer".into())
        }
    }

    #[test]
    fn the_indication_counters_are_shown_when_the_daemon_does_not_answer() {
        assert!(ClusterMetrics::new(Arc::new(Silent)).render().is_err());
        let counters = Arc::new(IndicationCounters::default());
        counters
            .pending
            .store(42, std::sync::atomic::Ordering::Relaxed);
        let text = ClusterMetrics::new(Arc::new(Silent))
            .with_indications(counters)
            .render()
            .expect("the agent's own counters");
        assert!(
            text.lines().any(|l| l == "cimguard_indications_pending 42"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE cimguard_indications_dropped_total counter"),
            "{text}"
        );
    }
}
