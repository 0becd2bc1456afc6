//! The cluster's notices (the event catalogue of serviceguard.md 1.6(b), `Notice` in the
//! cluster crate) as HP_SGAlertIndication properties: EventID, AlertType, PerceivedSeverity,
//! the element concerned, the states before and after, and a message. Pure: the names come
//! from the snapshot of the generation the notice was told in; when and with which sequence
//! an alert is delivered is the indication service's.

use std::time::SystemTime;

use cim_schema::model::{InstancePath, KeyBinding, Name, Value};
use cimguard_cluster::core::NodeId;
use cimguard_cluster::status::{Health, Notice, Snapshot};

use crate::package_jobs::timestamp;
use crate::serviceguard::CIMV2;

/// One alert, before it is numbered for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The cluster's name.
    pub cluster: String,
    /// The catalogue's EventID.
    pub event_id: &'static str,
    /// CIM_AlertIndication.AlertType (2 Communications, 4 Processing, 5 Device, 7 Model
    /// Change).
    pub alert_type: u16,
    /// PerceivedSeverity (2 Information, 3 Degraded/Warning, 4 Minor, 5 Major, 6 Critical,
    /// 7 Fatal).
    pub severity: u16,
    /// The node concerned.
    pub node: Option<String>,
    /// The package concerned.
    pub package: Option<String>,
    /// The service concerned.
    pub service: Option<String>,
    /// Status and state before (no state for the cluster, resources, networks).
    pub previous: Option<(String, Option<String>)>,
    /// Status and state after.
    pub new: Option<(String, Option<String>)>,
    /// The instance the alert is about (AlertingManagedElement).
    pub element: InstancePath,
    /// One line for an operator.
    pub message: String,
    /// The IndicationIdentifier of the alerts this one follows from (CorrelatedIndications):
    /// a failover names the PackageFailed or NodeFailed before it.
    pub correlated: Vec<String>,
}

/// The IndicationIdentifier of the alert of notice `number` told in life `life` of `node`'s
/// daemon, in cluster `cluster`: `cimguard:<cluster>:<node>:<life>:<number>`. Each agent
/// names its alerts so, and another node's agent names one it follows alike.
pub fn identifier(cluster: &str, node: &str, life: u64, number: u64) -> String {
    format!("cimguard:{cluster}:{node}:{life}:{number}")
}

/// The alert of `notice`, with names from `snapshot` (the cluster's view when it was told).
pub fn alert(notice: &Notice, snapshot: &Snapshot) -> Alert {
    let cluster = snapshot.name.as_str();
    let node_name = |node: NodeId| snapshot.node_name(node).to_owned();
    let package_name = |id| snapshot.package_name(id);
    let service_of = |id, index: usize| snapshot.service_row(id, index).map(|s| s.name.clone());
    let resource_of = |id, index: usize| snapshot.resource_row(id, index).map(|r| r.name.clone());
    let service_name =
        |id, index: usize| service_of(id, index).unwrap_or_else(|| format!("service {index}"));
    // A failover package's service is one instance wherever it runs; a multi-node package
    // has one per node, named with it (as the Serviceguard provider names them).
    let failover = |id| {
        snapshot
            .package_row(id)
            .is_none_or(|p| p.kind.keyword() == "failover")
    };
    let resource_name =
        |id, index: usize| resource_of(id, index).unwrap_or_else(|| format!("resource {index}"));
    let pair = |status: &str, state: &str| Some((status.to_owned(), Some(state.to_owned())));
    let only = |status: &str| Some((status.to_owned(), None));
    let cluster_path = path(
        "HP_SGCluster",
        &[("CreationClassName", "HP_SGCluster"), ("Name", cluster)],
    );
    let node_path = |name: &str| {
        path(
            "HP_SGNode",
            &[("CreationClassName", "HP_SGNode"), ("Name", name)],
        )
    };
    let package_path = |name: &str| {
        path(
            "HP_SGPackage",
            &[
                ("SystemCreationClassName", "HP_SGCluster"),
                ("SystemName", cluster),
                ("CreationClassName", "HP_SGPackage"),
                ("Name", name),
            ],
        )
    };
    let mut alert = Alert {
        cluster: cluster.to_owned(),
        event_id: notice.event_id(),
        alert_type: 4,
        severity: 2,
        node: None,
        package: None,
        service: None,
        previous: None,
        new: None,
        element: cluster_path,
        message: String::new(),
        correlated: Vec::new(),
    };
    match notice {
        Notice::ClusterUp { before, after }
        | Notice::ClusterHalted { before, after }
        | Notice::ClusterReformed { before, after } => {
            alert.previous = only(before.status.as_str());
            alert.new = only(after.status.as_str());
            if matches!(notice, Notice::ClusterReformed { .. }) {
                alert.alert_type = 2;
                alert.severity = 3;
            }
        }
        Notice::ClusterConfigChanged { .. } => {
            alert.alert_type = 7;
        }
        Notice::NodeJoined {
            node,
            before,
            after,
        }
        | Notice::NodeHalted {
            node,
            before,
            after,
        }
        | Notice::NodeDetached {
            node,
            before,
            after,
        }
        | Notice::NodeFailed {
            node,
            before,
            after,
            ..
        } => {
            let name = node_name(*node);
            alert.previous = pair(before.status.as_str(), before.state.as_str());
            alert.new = pair(after.status.as_str(), after.state.as_str());
            alert.element = node_path(&name);
            match notice {
                Notice::NodeJoined { .. } | Notice::NodeHalted { .. } => {}
                Notice::NodeDetached { .. } => alert.severity = 3,
                _ => {
                    alert.alert_type = 2;
                    alert.severity = 5;
                }
            }
            alert.node = Some(name);
        }
        Notice::PackageStarted {
            package,
            node,
            before,
            after,
        }
        | Notice::PackageHalted {
            package,
            node,
            before,
            after,
        } => {
            let (name, on) = (package_name(*package), node_name(*node));
            alert.previous = pair(before.status.as_str(), before.state.as_str());
            alert.new = pair(after.status.as_str(), after.state.as_str());
            alert.element = package_path(&name);
            alert.package = Some(name);
            alert.node = Some(on);
        }
        Notice::PackageFailed {
            package,
            node,
            before,
            after,
            ..
        } => {
            let (name, on) = (package_name(*package), node_name(*node));
            alert.severity = 6;
            alert.previous = pair(before.status.as_str(), before.state.as_str());
            alert.new = pair(after.status.as_str(), after.state.as_str());
            alert.element = package_path(&name);
            alert.package = Some(name);
            alert.node = Some(on);
        }
        Notice::PackageFailover {
            package,
            after,
            follows,
            ..
        } => {
            if let Some(failure) = follows {
                alert.correlated.push(identifier(
                    cluster,
                    snapshot.node_name(failure.node),
                    failure.incarnation,
                    failure.number,
                ));
            }
            let (name, on) = (package_name(*package), node_name(*after));
            alert.severity = 5;
            alert.element = package_path(&name);
            alert.package = Some(name);
            alert.node = Some(on);
        }
        Notice::PackageFailback { package, after, .. } => {
            let (name, on) = (package_name(*package), node_name(*after));
            alert.element = package_path(&name);
            alert.package = Some(name);
            alert.node = Some(on);
        }
        Notice::PackageSwitchingChanged {
            package,
            before,
            after,
        } => {
            let name = package_name(*package);
            alert.alert_type = 7;
            alert.element = package_path(&name);
            let words = |auto_run: bool| if auto_run { "enabled" } else { "disabled" };
            alert.previous = only(words(before.auto_run));
            alert.new = only(words(after.auto_run));
            alert.package = Some(name);
        }
        Notice::ServiceFailed {
            package,
            service,
            node,
            before,
            after,
        }
        | Notice::ServiceRestarted {
            package,
            service,
            node,
            before,
            after,
        } => {
            let (name, on) = (package_name(*package), node_name(*node));
            let failover = failover(*package);
            let service = service_name(*package, *service);
            let instance = if failover {
                format!("{name}:{service}")
            } else {
                format!("{name}:{service}:{on}")
            };
            alert.previous = only(before.status.as_str());
            alert.new = only(after.status.as_str());
            alert.element = path(
                "HP_SGPackageService",
                &[
                    ("SystemCreationClassName", "HP_SGCluster"),
                    ("SystemName", cluster),
                    ("CreationClassName", "HP_SGPackageService"),
                    ("Name", &instance),
                ],
            );
            if matches!(notice, Notice::ServiceFailed { .. }) {
                // With no restart left the package fails: Major (serviceguard.md 6.7).
                alert.severity = if notice.exhausts_restarts(snapshot) {
                    5
                } else {
                    4
                };
            }
            alert.package = Some(name);
            alert.service = Some(service);
            alert.node = Some(on);
        }
        Notice::GenericResourceChanged {
            package,
            resource,
            node,
            before,
            after,
            ..
        } => {
            let (name, on) = (package_name(*package), node_name(*node));
            let resource = resource_name(*package, *resource);
            alert.severity = 3;
            alert.previous = only(before.as_str());
            alert.new = only(after.as_str());
            // The resource as it is on that node (HP_SGGenericResource's key).
            alert.element = path(
                "HP_SGGenericResource",
                &[(
                    "InstanceID",
                    &crate::serviceguard::generic_resource_id(cluster, &resource, &on),
                )],
            );
            alert.package = Some(name);
            alert.node = Some(on);
        }
        Notice::QuorumServerUnreachable { before, after }
        | Notice::QuorumServerReachable { before, after }
        | Notice::LockLunUnhealthy { before, after } => {
            let me = node_name(snapshot.observer);
            alert.previous = only(before.as_str());
            alert.new = only(after.as_str());
            // The tie-breaker as this node sees it (HP_SGQuorumDevice's key).
            alert.element = path(
                "HP_SGQuorumDevice",
                &[(
                    "InstanceID",
                    &crate::serviceguard::quorum_device_id(cluster, &me),
                )],
            );
            match notice {
                Notice::QuorumServerUnreachable { .. } => {
                    alert.alert_type = 2;
                    alert.severity = 4;
                }
                Notice::QuorumServerReachable { .. } => alert.alert_type = 2,
                _ => {
                    alert.alert_type = 5;
                    alert.severity = 4;
                }
            }
            alert.node = Some(me);
        }
        Notice::QuorumLost { before, after, .. } => {
            let me = node_name(snapshot.observer);
            alert.alert_type = 2;
            alert.severity = 7;
            alert.previous = only(before.status.as_str());
            alert.new = only(after.status.as_str());
            alert.element = node_path(&me);
            alert.node = Some(me);
        }
        Notice::NetworkInterfaceDown {
            node,
            before,
            after,
            ..
        }
        | Notice::NetworkInterfaceUp {
            node,
            before,
            after,
            ..
        }
        | Notice::SubnetDown {
            node,
            before,
            after,
            ..
        }
        | Notice::SubnetUp {
            node,
            before,
            after,
            ..
        } => {
            let down = matches!(
                notice,
                Notice::NetworkInterfaceDown { .. } | Notice::SubnetDown { .. }
            );
            link(
                &mut alert,
                node_name(*node),
                node_path,
                (*before, *after),
                down,
            );
        }
    }
    alert.message = notice.message(snapshot);
    alert
}

impl Alert {
    /// The HP_SGAlertIndication properties of this alert, told at `time` in a cluster of
    /// configuration generation `generation`, identified by `identifier` (unique among the
    /// cluster's alerts), its element's URI naming `host`.
    pub fn properties(
        &self,
        generation: u64,
        identifier: &str,
        time: SystemTime,
        host: &str,
    ) -> Vec<(&'static str, Option<Value>)> {
        let text = |t: &str| Some(Value::String(t.to_owned()));
        let cluster = self.cluster.as_str();
        let mut element = self.element.clone();
        element.namespace = Some(CIMV2.to_owned());
        element.host = Some(host.to_owned());
        let when = Value::Datetime(timestamp(time));
        vec![
            ("IndicationIdentifier", text(identifier)),
            ("IndicationTime", Some(when.clone())),
            ("EventTime", Some(when)),
            ("EventID", text(self.event_id)),
            ("AlertType", Some(Value::Uint16(self.alert_type))),
            ("PerceivedSeverity", Some(Value::Uint16(self.severity))),
            // 1 Other, said in ProbableCauseDescription.
            ("ProbableCause", Some(Value::Uint16(1))),
            ("ProbableCauseDescription", text(self.event_id)),
            (
                "AlertingManagedElement",
                element.to_wbem_uri().ok().map(Value::String),
            ),
            // 2 CIMObjectPath.
            ("AlertingElementFormat", Some(Value::Uint16(2))),
            ("SystemCreationClassName", text("HP_SGCluster")),
            ("SystemName", text(cluster)),
            ("ProviderName", text("cimguard")),
            ("OwningEntity", text("cimguard")),
            ("MessageID", text(self.event_id)),
            ("Message", text(&self.message)),
            ("Description", text(&self.message)),
            ("ClusterName", text(cluster)),
            ("NodeName", self.node.clone().map(Value::String)),
            ("PackageName", self.package.clone().map(Value::String)),
            ("ServiceName", self.service.clone().map(Value::String)),
            (
                "PreviousStatus",
                self.previous
                    .as_ref()
                    .map(|(s, _)| Value::String(s.clone())),
            ),
            (
                "PreviousState",
                self.previous
                    .as_ref()
                    .and_then(|(_, s)| s.clone().map(Value::String)),
            ),
            (
                "NewStatus",
                self.new.as_ref().map(|(s, _)| Value::String(s.clone())),
            ),
            (
                "NewState",
                self.new
                    .as_ref()
                    .and_then(|(_, s)| s.clone().map(Value::String)),
            ),
            ("ConfigGeneration", Some(Value::Uint64(generation))),
            (
                "CorrelatedIndications",
                (!self.correlated.is_empty()).then(|| {
                    Value::Array(
                        self.correlated
                            .iter()
                            .map(|id| Some(Value::String(id.clone())))
                            .collect(),
                    )
                }),
            ),
        ]
    }
}

/// A node's link (a heartbeat network or a monitored subnet) went down (severity 4) or came
/// up again (2): a Communications alert about node `on`, the message made of "down" or
/// "up again".
fn link(
    alert: &mut Alert,
    on: String,
    node_path: impl Fn(&str) -> InstancePath,
    (before, after): (Health, Health),
    down: bool,
) {
    alert.alert_type = 2;
    alert.severity = if down { 4 } else { 2 };
    alert.previous = Some((before.as_str().to_owned(), None));
    alert.new = Some((after.as_str().to_owned(), None));
    alert.element = node_path(&on);
    alert.node = Some(on);
}

/// An instance path of `class` with string keys.
fn path(class: &str, keys: &[(&str, &str)]) -> InstancePath {
    let mut path = InstancePath::new(Name::new(class));
    for (name, value) in keys {
        path.keybindings.push(KeyBinding {
            name: Name::new(*name),
            value: Value::String((*value).to_owned()),
        });
    }
    path
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cimguard_cluster::core::{NodeId, NodeSet};
    use cimguard_cluster::sim::{Options, Simulation};

    use super::*;

    /// A formed three-node cluster running dbpkg (a service, n1 first) and webpkg, which
    /// depends on it.
    fn cluster() -> Simulation {
        let mut sim = crate::serviceguard::tests::formed(&["package_name webpkg\n\
            node_name n2\nnode_name n3\nnode_name n1\ndependency_name db\n\
            dependency_condition dbpkg = up\ndependency_location any_node\n"]);
        let ready = sim
            .run_until(Duration::from_secs(90), |s| {
                !s.running_on("webpkg").is_empty()
            })
            .unwrap();
        assert!(ready, "webpkg did not start");
        sim
    }

    /// The alerts of the notices told so far with `event_id`, each with the names of the
    /// node that told it.
    fn alerts(sim: &Simulation, event_id: &str) -> Vec<Alert> {
        sim.notices()
            .iter()
            .filter(|r| r.notice.event_id() == event_id)
            .map(|r| alert(&r.notice, &sim.status(r.node).expect("a snapshot")))
            .collect()
    }

    #[test]
    fn the_catalogue_s_types_and_severities_and_the_element_concerned() {
        let mut sim = cluster();
        let started = alerts(&sim, "PackageStarted");
        let db = started
            .iter()
            .find(|a| a.package.as_deref() == Some("dbpkg"))
            .expect("dbpkg's start");
        assert_eq!((db.alert_type, db.severity), (4, 2));
        assert_eq!(db.node.as_deref(), Some("n1"));
        assert_eq!(db.message, "package dbpkg started on node n1");
        assert_eq!(
            db.new,
            Some(("up".to_owned(), Some("running".to_owned()))),
            "{db:?}"
        );
        assert_eq!(db.element.class_name.as_str(), "HP_SGPackage");
        let up = &alerts(&sim, "ClusterUp")[0];
        assert_eq!((up.alert_type, up.severity), (4, 2));
        assert_eq!(up.element.class_name.as_str(), "HP_SGCluster");

        // n1 dies: the node fails (2 Communications, 5 Major), dbpkg fails over (4, 5),
        // webpkg's dependency failed (PackageFailed: 4, 6).
        sim.crash(NodeId(0));
        let told = |s: &Simulation, id: &str| s.notices().iter().any(|r| r.notice.event_id() == id);
        assert!(sim
            .run_until(Duration::from_secs(90), |s| told(s, "PackageFailover")
                && told(s, "PackageFailed"))
            .unwrap());
        let failed = &alerts(&sim, "NodeFailed")[0];
        assert_eq!((failed.alert_type, failed.severity), (2, 5));
        assert_eq!(failed.node.as_deref(), Some("n1"));
        assert_eq!(failed.element.class_name.as_str(), "HP_SGNode");
        assert_eq!(failed.message, "node n1 failed");
        let failover = &alerts(&sim, "PackageFailover")[0];
        assert_eq!((failover.alert_type, failover.severity), (4, 5));
        assert!(
            failover
                .message
                .starts_with("package dbpkg fails over from node n1 to node"),
            "{}",
            failover.message
        );
        // It follows the NodeFailed, named as its teller's agent names it.
        let node_failed = sim
            .notices()
            .iter()
            .find(|r| r.notice.event_id() == "NodeFailed")
            .unwrap();
        let teller = sim.status(node_failed.node).unwrap();
        let expected = identifier(
            &teller.name,
            teller.node_name(node_failed.node),
            node_failed.incarnation.0,
            node_failed.number,
        );
        assert_eq!(failover.correlated, std::slice::from_ref(&expected));
        let properties = failover.properties(1, "x", std::time::UNIX_EPOCH, "h");
        let correlated = properties
            .iter()
            .find(|(name, _)| *name == "CorrelatedIndications")
            .unwrap();
        assert_eq!(
            correlated.1,
            Some(Value::Array(vec![Some(Value::String(expected))]))
        );
        // An alert that follows none has it NULL.
        assert!(failed.correlated.is_empty());
        let reformed = &alerts(&sim, "ClusterReformed")[0];
        assert_eq!((reformed.alert_type, reformed.severity), (2, 3));
        for failed in alerts(&sim, "PackageFailed") {
            assert_eq!((failed.alert_type, failed.severity), (4, 6));
            assert!(
                failed.message.contains("failed on node"),
                "{}",
                failed.message
            );
        }
    }

    #[test]
    fn a_service_alert_names_the_service_instance_of_its_node_in_a_multi_node_package() {
        let mut options = Options::new(3, 12);
        options.packages = vec![
            "package_name dbpkg\nnode_name n1\nnode_name n2\n\
             service_name db_monitor\nservice_cmd \"sleep 1000\"\nservice_restart 3\n"
                .into(),
            "package_name monpkg\npackage_type multi_node\nnode_name *\n\
             service_name mon\nservice_cmd \"sleep 1000\"\nservice_restart 3\n"
                .into(),
        ];
        let mut sim = Simulation::new(options);
        sim.start_all();
        assert!(sim
            .run_until(Duration::from_secs(90), |s| s.formed(NodeSet::first(3))
                && s.running_on("monpkg").len() == 3
                && !s.running_on("dbpkg").is_empty())
            .unwrap());
        sim.run_for(Duration::from_secs(3)).unwrap();
        sim.kill_service(NodeId(1), "monpkg", 0);
        sim.kill_service(NodeId(0), "dbpkg", 0);
        let told = |s: &Simulation| {
            s.notices()
                .iter()
                .filter(|r| r.notice.event_id() == "ServiceRestarted")
                .count()
                >= 2
        };
        let ok = sim.run_until(Duration::from_secs(30), told).unwrap();
        let ids: Vec<&str> = sim.notices().iter().map(|r| r.notice.event_id()).collect();
        assert!(ok, "{ids:?}");
        let mut names: Vec<String> = alerts(&sim, "ServiceRestarted")
            .iter()
            .map(|a| {
                assert_eq!(a.element.class_name.as_str(), "HP_SGPackageService");
                a.element
                    .key("Name")
                    .and_then(|v| match v {
                        Value::String(name) => Some(name.to_string()),
                        _ => None,
                    })
                    .expect("a Name key")
            })
            .collect();
        names.sort();
        // The names HP_SGPackageService instances have: one per node for monpkg.
        assert_eq!(names, ["dbpkg:db_monitor", "monpkg:mon:n2"]);
    }

    #[test]
    fn a_service_failure_with_no_restart_left_is_major() {
        let mut options = Options::new(3, 14);
        options.packages = vec!["package_name dbpkg\nnode_name n1\nnode_name n2\n\
             service_name once\nservice_cmd \"sleep 1000\"\nservice_restart none\n\
             service_name twice\nservice_cmd \"sleep 1000\"\nservice_restart 1\n"
            .into()];
        let mut sim = Simulation::new(options);
        sim.start_all();
        assert!(sim
            .run_until(Duration::from_secs(90), |s| s.formed(NodeSet::first(3))
                && !s.running_on("dbpkg").is_empty())
            .unwrap());
        sim.run_for(Duration::from_secs(3)).unwrap();
        let on = *sim.running_on("dbpkg").iter().next().as_ref().unwrap();
        // A restart left: Minor.
        sim.kill_service(on, "dbpkg", 1);
        let failed = |s: &Simulation, n: usize| {
            s.notices()
                .iter()
                .filter(|r| r.notice.event_id() == "ServiceFailed")
                .count()
                >= n
        };
        assert!(sim
            .run_until(Duration::from_secs(10), |s| failed(s, 1))
            .unwrap());
        sim.run_for(Duration::from_secs(2)).unwrap();
        // None left: Major, and the package fails.
        sim.kill_service(on, "dbpkg", 0);
        assert!(sim
            .run_until(Duration::from_secs(10), |s| failed(s, 2))
            .unwrap());
        let alerts = alerts(&sim, "ServiceFailed");
        let of = |service: &str| {
            alerts
                .iter()
                .find(|a| a.service.as_deref() == Some(service))
                .unwrap_or_else(|| panic!("no alert of {service}: {alerts:?}"))
        };
        assert_eq!(of("twice").severity, 4);
        assert_eq!(of("once").severity, 5);
        assert!(
            of("once").message.ends_with("no restart left"),
            "{}",
            of("once").message
        );
    }

    #[test]
    fn a_generic_resource_alert_names_the_resource_instance_of_its_node() {
        let mut options = Options::new(3, 13);
        options.packages = vec!["package_name dbpkg\nnode_name n1\nnode_name n2\n\
             generic_resource_name sfm_disk\n"
            .into()];
        let mut sim = Simulation::new(options);
        sim.start_all();
        assert!(sim
            .run_until(Duration::from_secs(90), |s| s.formed(NodeSet::first(3)))
            .unwrap());
        sim.set_resource(
            NodeId(1),
            "sfm_disk",
            cimguard_cluster::packages::ResourceValue::Status(true),
        )
        .unwrap();
        let told = |s: &Simulation| {
            s.notices()
                .iter()
                .any(|r| r.notice.event_id() == "GenericResourceChanged")
        };
        assert!(sim.run_until(Duration::from_secs(10), told).unwrap());
        let changed = &alerts(&sim, "GenericResourceChanged")[0];
        assert_eq!(changed.element.class_name.as_str(), "HP_SGGenericResource");
        // The key HP_SGGenericResource has for the resource on n2.
        assert_eq!(
            changed.element.key("InstanceID"),
            Some(&Value::String(crate::serviceguard::generic_resource_id(
                "simulated",
                "sfm_disk",
                "n2"
            )))
        );
        assert_eq!(changed.node.as_deref(), Some("n2"));
    }

    #[test]
    fn network_and_subnet_alerts_name_the_node_and_say_down_or_up_again() {
        use cimguard_cluster::status::Health;
        let sim = cluster();
        let snapshot = sim.status(NodeId(0)).expect("a snapshot");
        let subnet: std::net::IpAddr = "192.0.2.0".parse().unwrap();
        let said = |notice: Notice| {
            let alert = alert(&notice, &snapshot);
            (
                alert.alert_type,
                alert.severity,
                alert.node,
                alert.element.class_name.as_str().to_owned(),
                alert.new,
                alert.message,
            )
        };
        let (up, down) = (Health::Up, Health::Down);
        assert_eq!(
            said(Notice::NetworkInterfaceDown {
                node: NodeId(1),
                network: 1,
                before: up,
                after: down
            }),
            (
                2,
                4,
                Some("n2".into()),
                "HP_SGNode".into(),
                Some(("down".into(), None)),
                "heartbeat network 1 of node n2 is down".into()
            )
        );
        assert_eq!(
            said(Notice::NetworkInterfaceUp {
                node: NodeId(1),
                network: 1,
                before: down,
                after: up
            }),
            (
                2,
                2,
                Some("n2".into()),
                "HP_SGNode".into(),
                Some(("up".into(), None)),
                "heartbeat network 1 of node n2 is up again".into()
            )
        );
        assert_eq!(
            said(Notice::SubnetDown {
                node: NodeId(2),
                subnet,
                before: up,
                after: down
            }),
            (
                2,
                4,
                Some("n3".into()),
                "HP_SGNode".into(),
                Some(("down".into(), None)),
                "monitored subnet 192.0.2.0 is down on node n3".into()
            )
        );
        assert_eq!(
            said(Notice::SubnetUp {
                node: NodeId(2),
                subnet,
                before: down,
                after: up
            }),
            (
                2,
                2,
                Some("n3".into()),
                "HP_SGNode".into(),
                Some(("up".into(), None)),
                "monitored subnet 192.0.2.0 is up again on node n3".into()
            )
        );
    }

    #[test]
    fn an_alert_s_properties_name_the_element_as_a_wbem_uri() {
        let sim = cluster();
        let db = alerts(&sim, "PackageStarted")
            .into_iter()
            .find(|a| a.package.as_deref() == Some("dbpkg"))
            .expect("dbpkg's start");
        let at = std::time::UNIX_EPOCH + Duration::from_secs(86_400);
        let properties = db.properties(3, "cimguard:simulated:7", at, "node1");
        let get = |name: &str| {
            properties
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| v.clone())
        };
        assert_eq!(
            get("AlertingManagedElement"),
            Some(Value::String(
                "//node1/root/cimv2:HP_SGPackage.SystemCreationClassName=\"HP_SGCluster\",\
                 SystemName=\"simulated\",CreationClassName=\"HP_SGPackage\",Name=\"dbpkg\""
                    .into()
            ))
        );
        assert_eq!(get("EventID"), Some(Value::String("PackageStarted".into())));
        assert_eq!(get("PerceivedSeverity"), Some(Value::Uint16(2)));
        assert_eq!(get("ConfigGeneration"), Some(Value::Uint64(3)));
        assert_eq!(
            get("IndicationTime"),
            Some(Value::Datetime(
                cim_schema::model::Datetime::parse("19700102000000.000000+000").unwrap()
            ))
        );
        assert_eq!(get("ServiceName"), None);
        // Every property is one of HP_SGAlertIndication's, of its type.
        let repository = cim_schema::shipped::repository().expect("the shipped schema");
        let class = repository
            .class(CIMV2, "HP_SGAlertIndication")
            .expect("HP_SGAlertIndication");
        for (name, value) in &properties {
            let declared = class
                .property(name)
                .unwrap_or_else(|| panic!("HP_SGAlertIndication has no {name}"));
            if let Some(value) = value {
                assert_eq!(value.cim_type(), Some(declared.cim_type.clone()), "{name}");
            }
        }
    }
}
