//! The Serviceguard provider: the cluster as the node's daemon sees it, served as the HP_SG*
//! classes of `root/cimv2` (serviceguard.md, sections 1.2 to 1.5), and the package and
//! generic resource methods, which become the daemon's commands.
//!
//! The provider reads the node daemon's status ([`ClusterSource`]; in a node, its admin socket)
//! and builds every instance from that one snapshot, so that the instances of one request agree
//! with each other and with what `cmviewcl` prints from the same status. A snapshot serves the
//! requests that arrive within [`FRESH_FOR`] of its fetch; one fetch at a time is made, so a
//! burst of requests costs the daemon's timing thread one status, not one each.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cim_schema::model::{
    Class, Datetime, Instance, InstancePath, KeyBinding, Method, Name, ObjectPath, Property, Value,
};
use cimguard_cluster::config::package::PackageType;
use cimguard_cluster::package_wait::{Goal, PackageWait, Progress};
use cimguard_cluster::packages::ResourceValue;
use cimguard_cluster::runtime::admin::AdminClient;
use cimguard_cluster::runtime::daemon::{
    AccessView, DaemonStatus, FileText, NumberedNotice, PlannedAction, PreviewCommand, Reply,
    Request, PREVIEW_COMMANDS_MAX,
};
use cimguard_cluster::status::{LockRow, Snapshot};

use crate::access::{self, AccessPolicySource, PolicyCache, Resolver};
use crate::auth::Role;
use crate::cimom::ObjectManager;
use crate::error::OperationError;
use crate::package_jobs::{self, Jobs, Removal};
use crate::provider::{InstanceProvider, Instances, MethodOutput, RequestContext};

/// The namespace of the cluster model.
pub const CIMV2: &str = "root/cimv2";

/// The classes this provider serves (their instances' creation classes).
pub const CLASSES: &[&str] = &[
    "HP_SGCluster",
    "HP_SGNode",
    "HP_SGParticipatingCS",
    "HP_SGNodeIdentity",
    "HP_SGClusterSoftware",
    "HP_SGIPProtocolEndpoint",
    "HP_SGClusterIPProtocolEndpoint",
    "HP_SGPackage",
    "HP_SGClusterPackage",
    "HP_SGClusteringService",
    "HP_SGHostedClusterService",
    "HP_SGPackageNode",
    "HP_SGPackageService",
    "HP_SGPackageServiceComponent",
    "HP_SGPackageDependency",
    "HP_SGGenericResource",
    "HP_SGQuorumDevice",
    "HP_SGPackageJob",
    // The agent's own host, which HP_SGNodeIdentity ties its node to: this agent is the
    // host's object manager, so nothing else would serve it.
    "CIM_ComputerSystem",
];

/// How long a snapshot answers requests that arrive after it was fetched.
pub const FRESH_FOR: Duration = Duration::from_millis(20);

/// Where the cluster's state comes from and where commands go: the node daemon.
pub trait ClusterSource: Send + Sync {
    /// The daemon's current status, or why there is none.
    fn status(&self) -> Result<DaemonStatus, String>;
    /// Carries out `request` (a command), or says why it could not be sent.
    fn command(&self, request: &Request) -> Result<Reply, String>;
    /// The notices the daemon's current life told after number `after`, oldest first. When
    /// `after` is the last one told, the daemon waits up to `wait` for the next before it
    /// answers with none, so a reader hears of a notice as soon as it is told.
    fn notices(&self, after: u64, wait: Duration) -> Result<Notices, String>;
    /// The number of the latest change of the cluster's membership and packages as the
    /// daemon shows them, once it is past `after`, or after `wait` (the same number) with
    /// none. A source that cannot tell waits `wait` and answers `after`.
    fn status_change(&self, after: u64, wait: Duration) -> Result<u64, String> {
        std::thread::sleep(wait);
        Ok(after)
    }
    /// The values of the cluster's shared map by key, with the name of the copy read, unless
    /// the copy named `unless` is still the current one (`None`). A quick read, never held
    /// up by a command under way. A source without one says so.
    #[allow(clippy::type_complexity)]
    fn shared_values(
        &self,
        unless: Option<(u64, u64)>,
    ) -> Result<Option<((u64, u64), Vec<(String, String)>)>, String> {
        let _ = unless;
        Err("no shared map".into())
    }
}

/// What [`ClusterSource::notices`] answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Notices {
    /// The daemon's life: numbers start again at 1 in a new one.
    pub incarnation: u64,
    /// The number of the last notice told in this life.
    pub told: u64,
    /// The notices after the number asked for (a bounded number of them), oldest first.
    pub notices: Vec<NumberedNotice>,
    /// The cluster's status when the daemon answered, with the notices (none from a daemon
    /// of an earlier release, or with no notices).
    pub status: Option<Box<Snapshot>>,
}

/// How long RequestStateChange waits by default for the run or halt to end before it
/// answers 4096 with an HP_SGPackageJob that goes on waiting: most packages start or halt
/// within it, and a client's call is not held for a script's minutes.
pub const METHOD_WAIT: Duration = Duration::from_secs(10);

/// The longest RequestStateChange waits before it answers with a job: a client's call (the
/// cm* commands allow 360 s) must outlast a command's own time and this.
pub const METHOD_WAIT_MAX: Duration = Duration::from_secs(20);

/// The longest a command may take: a cluster or node halt, or a configuration change, may
/// wait minutes for packages' scripts.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(330);

/// The daemon's admin socket as a [`ClusterSource`]: one connection for the status, another
/// for commands, so that a long command does not hold up the reads.
#[derive(Debug)]
pub struct AdminSocket {
    status: Mutex<AdminClient>,
    commands: Mutex<AdminClient>,
    notices: Mutex<AdminClient>,
    shared: Mutex<AdminClient>,
    changes: Mutex<AdminClient>,
}

impl AdminSocket {
    /// The socket at `path` (`cmcld.sock` in the daemon's state directory).
    pub fn new(path: impl Into<std::path::PathBuf>) -> AdminSocket {
        let path = path.into();
        AdminSocket {
            status: Mutex::new(AdminClient::new(path.clone())),
            notices: Mutex::new(AdminClient::new(path.clone())),
            changes: Mutex::new(AdminClient::new(path.clone())),
            shared: Mutex::new(AdminClient::new(path.clone()).with_timeout(COMMAND_TIMEOUT)),
            commands: Mutex::new(AdminClient::new(path).with_timeout(COMMAND_TIMEOUT)),
        }
    }
}

impl ClusterSource for AdminSocket {
    fn status(&self) -> Result<DaemonStatus, String> {
        let mut client = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        match client.request(&Request::Status) {
            Ok(Reply::Status(status)) => Ok(*status),
            // In the daemon's words: a node configured in no cluster says so.
            Ok(Reply::Error(reason) | Reply::Refused(reason)) => Err(reason),
            Ok(other) => Err(format!(
                "the cluster daemon answered a status request with {other:?}"
            )),
            Err(e) => Err(format!("the cluster daemon does not answer: {e}")),
        }
    }

    fn command(&self, request: &Request) -> Result<Reply, String> {
        let mut client = self.commands.lock().unwrap_or_else(PoisonError::into_inner);
        client
            .request(request)
            .map_err(|e| format!("the cluster daemon does not answer: {e}"))
    }

    fn shared_values(
        &self,
        unless: Option<(u64, u64)>,
    ) -> Result<Option<((u64, u64), Vec<(String, String)>)>, String> {
        // On the status connection: quick requests only (a command, or a shared map write
        // waiting for the cluster, would hold up every model built).
        shared_values_on(&self.status, unless)
    }

    fn notices(&self, after: u64, wait: Duration) -> Result<Notices, String> {
        let mut client = self.notices.lock().unwrap_or_else(PoisonError::into_inner);
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        let request = Request::Notices {
            after,
            wait_ms,
            with_status: true,
        };
        match client.request(&request) {
            Ok(Reply::Notices {
                incarnation,
                told,
                notices,
                status,
            }) => Ok(Notices {
                incarnation,
                told,
                notices,
                status,
            }),
            Ok(other) => Err(format!("the cluster daemon answered {other:?} to notices")),
            Err(e) => Err(format!("the cluster daemon does not answer: {e}")),
        }
    }

    fn status_change(&self, after: u64, wait: Duration) -> Result<u64, String> {
        let mut client = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        match client.request(&Request::StatusChange { after, wait_ms }) {
            Ok(Reply::StatusChange { changes }) => Ok(changes),
            Ok(other) => Err(format!(
                "the cluster daemon answered {other:?} to a change wait"
            )),
            Err(e) => Err(format!("the cluster daemon does not answer: {e}")),
        }
    }
}

/// The daemon's shared map keeps the subscription store's records.
impl crate::subscriptions::SharedRecords for AdminSocket {
    fn put(&self, key: &str, value: Option<String>) -> Result<(), String> {
        let mut client = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        let request = Request::Share {
            key: key.to_owned(),
            value,
        };
        match client.request(&request) {
            Ok(Reply::Done) => Ok(()),
            Ok(Reply::Refused(reason) | Reply::Error(reason)) => Err(reason),
            Ok(other) => Err(format!("the cluster daemon answered {other:?}")),
            Err(e) => Err(format!("the cluster daemon does not answer: {e}")),
        }
    }

    fn values(
        &self,
        unless: Option<(u64, u64)>,
    ) -> Result<Option<((u64, u64), Vec<(String, String)>)>, String> {
        shared_values_on(&self.shared, unless)
    }
}

/// The shared map's values through the admin connection `client` (see
/// [`ClusterSource::shared_values`]).
#[allow(clippy::type_complexity)]
fn shared_values_on(
    client: &Mutex<AdminClient>,
    unless: Option<(u64, u64)>,
) -> Result<Option<((u64, u64), Vec<(String, String)>)>, String> {
    let mut client = client.lock().unwrap_or_else(PoisonError::into_inner);
    match client.request(&Request::Shared { unless }) {
        Ok(Reply::Shared { copy, values }) => Ok(values.map(|values| (copy, values))),
        Ok(other) => Err(format!("the cluster daemon answered {other:?}")),
        Err(e) => Err(format!("the cluster daemon does not answer: {e}")),
    }
}

/// Runs `work`, which may block on the daemon (or decode a large request for a while),
/// without stalling the other tasks of a multi-thread runtime's worker.
pub(crate) fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// The cluster's instances at one moment ([`ServiceguardProvider::settled`]).
#[derive(Debug, Clone)]
pub struct Current {
    /// The status they were built from.
    pub snapshot: Arc<Snapshot>,
    /// Every instance, with its path.
    pub instances: Vec<(InstancePath, Arc<Instance>)>,
    /// While the observer re-forms the cluster: the instances (by path text) the
    /// re-formation shows otherwise than `instances` do, which are built as if it were over
    /// ([`Snapshot::settled`]). What was last seen of them stands until it is.
    pub passing: Vec<String>,
}

/// Every instance of one snapshot, by creation class (lower-cased).
#[derive(Default)]
struct Model {
    by_class: HashMap<String, Vec<(InstancePath, Arc<Instance>)>>,
    /// The node whose view this is.
    observer: String,
    /// The snapshot the instances were built from (HP_SGClusteringService.GetView).
    snapshot: Option<Arc<Snapshot>>,
    /// The process ids of the services on the observing node, by package and service.
    service_pids: BTreeMap<String, BTreeMap<String, u32>>,
}

/// The Serviceguard provider.
pub struct ServiceguardProvider {
    source: Arc<dyn ClusterSource>,
    /// The served classes, by lower-cased name, to type the instances.
    classes: HashMap<String, Class>,
    /// This agent's host name: the name of its own computer system.
    host: String,
    /// The product version (HP_SGClusterSoftware).
    version: String,
    /// The last snapshot's instances and when it was fetched.
    cache: Mutex<Option<(Instant, Arc<Model>)>>,
    /// The access policy, fetched apart from the model: an authentication never builds the
    /// model.
    access: PolicyCache,
    /// Resolves the access policy's host names.
    resolver: Resolver,
    /// The state last requested of each package through this agent (RequestedState; 5 "No
    /// Change" before any), and whether the cluster's shared map took it: one it did not
    /// take is newer than what the map holds.
    requested: Mutex<HashMap<String, (u16, bool)>>,
    /// The state last requested of each package through any node's agent, as the cluster's
    /// shared map holds it (keys [`REQUESTED_PREFIX`]), with the copy it was read from.
    shared_requested: Mutex<Option<SharedRequested>>,
    /// Whether the requested states of deleted packages are being deleted from the shared
    /// map (one such deletion at a time).
    forgetting: Arc<AtomicBool>,
    /// The runs and halts that had not ended when RequestStateChange returned.
    jobs: Arc<Mutex<Jobs>>,
    /// How long RequestStateChange waits for the end ([`METHOD_WAIT`] by default).
    method_wait: Duration,
    /// When this provider started (microseconds since the epoch): in job keys.
    life: u128,
}

/// The requested states the shared map holds, by package, with the copy they were read
/// from.
type SharedRequested = ((u64, u64), HashMap<String, u16>);

/// The prefix of the keys under which the cluster's shared map keeps each package's
/// RequestedState (`requested:PACKAGE` = "2" or "3").
const REQUESTED_PREFIX: &str = "requested:";

/// The cluster's access policy, as the daemon has it in effect; none while the daemon does
/// not answer (the users file's roles stand alone then).
impl AccessPolicySource for ServiceguardProvider {
    fn cluster_role(&self, user: &str, peer: IpAddr) -> Option<Role> {
        // Most requests find the policy fresh and its names resolved: answered on the worker,
        // which a block_in_place would hand to a new thread each time.
        match self.access.held(Instant::now()) {
            Some(None) => return None,
            Some(Some(view)) if access::resolves_from_memory(&view, &self.resolver) => {
                return access::cluster_role(&view, user, peer, &self.resolver);
            }
            _ => {}
        }
        // Off the runtime's workers: the policy may be fetched and a host name resolved.
        blocking(|| {
            let view = self.access_view()?;
            access::cluster_role(&view, user, peer, &self.resolver)
        })
    }

    fn package_admin(&self, user: &str, peer: IpAddr, package: &str) -> bool {
        blocking(|| {
            self.access_view().is_some_and(|view| {
                access::package_admin(&view, user, peer, package, &self.resolver)
            })
        })
    }
}

impl ServiceguardProvider {
    /// The policy in effect, from the daemon's status at most [`access::POLICY_FRESH_FOR`]
    /// old (the model is not built from it); none while the daemon does not answer.
    fn access_view(&self) -> Option<Arc<AccessView>> {
        self.access.view(Instant::now(), || {
            self.source
                .status()
                .map(|status| (status.cluster.generation, status.access))
        })
    }
}

impl ServiceguardProvider {
    /// Registers a provider over `source` for [`CLASSES`] in `root/cimv2` of `manager`;
    /// RequestStateChange waits `method_wait` for a run or halt to end.
    pub fn install(
        manager: &mut ObjectManager,
        source: Arc<dyn ClusterSource>,
        version: &str,
        method_wait: Duration,
    ) -> Result<Arc<ServiceguardProvider>, OperationError> {
        let mut classes = HashMap::new();
        for name in CLASSES {
            let class = manager.class(CIMV2, name)?.clone();
            classes.insert(name.to_ascii_lowercase(), class);
        }
        let provider = Arc::new(ServiceguardProvider {
            source,
            classes,
            host: manager.host().to_owned(),
            version: version.to_owned(),
            cache: Mutex::new(None),
            access: PolicyCache::default(),
            resolver: Resolver::default(),
            requested: Mutex::new(HashMap::new()),
            shared_requested: Mutex::new(None),
            forgetting: Arc::new(AtomicBool::new(false)),
            jobs: Arc::default(),
            method_wait: method_wait.min(METHOD_WAIT_MAX),
            life: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros()),
        });
        for name in CLASSES {
            manager.register(CIMV2, name, provider.clone())?;
        }
        Ok(provider)
    }

    /// Every instance of the cluster as this node's daemon shows it now, with the snapshot
    /// they were built from, but with a re-formation in progress left out
    /// ([`Snapshot::settled`]): what the lifecycle indications compare, successive ones.
    /// `fresh`: from a snapshot fetched now, not one cached (the state a change was just
    /// heard of).
    pub fn settled(&self, fresh: bool) -> Result<Current, OperationError> {
        if fresh {
            *self.cache.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
        let model = self.model()?;
        let Some(settled) = model.snapshot.as_deref().and_then(Snapshot::settled) else {
            return Self::current_of(&model);
        };
        let mut current = Self::current_of(&self.build(&settled, &model.service_pids)?)?;
        let shown: HashMap<String, &Arc<Instance>> = model
            .by_class
            .values()
            .flatten()
            .map(|(path, instance)| (crate::provider::path_text(path), instance))
            .collect();
        current.passing = current
            .instances
            .iter()
            .map(|(path, instance)| (crate::provider::path_text(path), instance))
            .filter(|(key, instance)| shown.get(key).is_none_or(|s| s != instance))
            .map(|(key, _)| key)
            .collect();
        Ok(current)
    }

    fn current_of(model: &Model) -> Result<Current, OperationError> {
        let snapshot = model
            .snapshot
            .clone()
            .ok_or_else(|| OperationError::Failed("the cluster daemon gave no status".into()))?;
        let mut instances = Vec::new();
        for served in model.by_class.values() {
            instances.extend(served.iter().cloned());
        }
        Ok(Current {
            snapshot,
            instances,
            passing: Vec::new(),
        })
    }

    /// [`ClusterSource::status_change`] of the daemon.
    pub fn status_change(&self, after: u64, wait: Duration) -> Result<u64, String> {
        self.source.status_change(after, wait)
    }

    /// The instances of a snapshot fetched at most [`FRESH_FOR`] before this call.
    fn model(&self) -> Result<Arc<Model>, OperationError> {
        // A fresh model is handed out on the worker: most requests find one, and a
        // block_in_place hands the worker to a new thread each time.
        if let Ok(cache) = self.cache.try_lock() {
            if let Some((fetched, model)) = cache.as_ref() {
                if *fetched + FRESH_FOR >= Instant::now() {
                    return Ok(model.clone());
                }
            }
        }
        // The lock is taken inside: a request waiting for another's fetch waits off the
        // runtime's workers too.
        blocking(|| self.model_blocking())
    }

    fn model_blocking(&self) -> Result<Arc<Model>, OperationError> {
        let arrival = Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((fetched, model)) = cache.as_ref() {
            if *fetched + FRESH_FOR >= arrival {
                return Ok(model.clone());
            }
        }
        let fetched = Instant::now();
        let status = self.source.status().map_err(OperationError::Failed)?;
        // The policy of the generation this model shows: a client that waited for it here
        // (cmapplyconf) is authorized by it from now on.
        self.access
            .offer(fetched, status.cluster.generation, status.access);
        self.refresh_requested(&status.cluster);
        let model = Arc::new(self.build(&status.cluster, &status.service_pids)?);
        *cache = Some((fetched, model.clone()));
        Ok(model)
    }

    /// Reads the requested states from the cluster's shared map again if its copy changed
    /// (kept as it was when the map cannot be read). The states of packages no longer
    /// configured are forgotten, here and in the map: a package created again under the
    /// same name starts with none, and the keys do not fill the map.
    fn refresh_requested(&self, snapshot: &Snapshot) {
        let configured = |package: &str| snapshot.packages.iter().any(|p| p.name == package);
        self.requested
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|package, _| configured(package));
        let mut shared = self
            .shared_requested
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let unless = shared.as_ref().map(|(copy, _)| *copy);
        if let Ok(Some((copy, values))) = self.source.shared_values(unless) {
            let mut deleted = Vec::new();
            let states = values
                .iter()
                .filter_map(|(key, value)| {
                    let package = key.strip_prefix(REQUESTED_PREFIX)?;
                    if !configured(package) {
                        deleted.push(key.clone());
                        return None;
                    }
                    Some((package.to_owned(), value.parse().ok()?))
                })
                .collect();
            *shared = Some((copy, states));
            if !deleted.is_empty() {
                self.forget_shared(deleted);
            }
        }
    }

    /// Deletes `keys` from the cluster's shared map, off this request: the command
    /// connection may be behind a long command. Best effort: a deletion that fails is tried
    /// again once the map changed and still holds them.
    fn forget_shared(&self, keys: Vec<String>) {
        if self.forgetting.swap(true, Ordering::AcqRel) {
            return;
        }
        let source = self.source.clone();
        let forgetting = self.forgetting.clone();
        let spawned = std::thread::Builder::new()
            .name("forget-requested".into())
            .spawn(move || {
                for key in keys {
                    let delete = Request::Share {
                        key: key.clone(),
                        value: None,
                    };
                    if let Err(e) = source.command(&delete) {
                        tracing::debug!(key, error = %e, "serviceguard provider: not deleted");
                        break;
                    }
                }
                forgetting.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.forgetting.store(false, Ordering::Release);
        }
    }

    /// RequestedState of `package`: the state last requested through this agent that the
    /// shared map did not take, else the state last requested through any node's agent (the
    /// shared map's), else through this one, else 5 (No Change).
    fn requested_state(&self, package: &str) -> u16 {
        let own = self
            .requested
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(package)
            .copied();
        if let Some((state, false)) = own {
            return state;
        }
        let shared = self
            .shared_requested
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(|(_, states)| states.get(package).copied());
        shared.or(own.map(|(state, _)| state)).unwrap_or(5)
    }

    /// Forgets the snapshot and the access policy: a command changed the cluster (a
    /// cmapplyconf, its policy).
    fn invalidate(&self) {
        *self.cache.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.access.forget();
    }

    fn build(
        &self,
        snapshot: &Snapshot,
        service_pids: &BTreeMap<String, BTreeMap<String, u32>>,
    ) -> Result<Model, OperationError> {
        let mut builder = ModelBuilder {
            provider: self,
            snapshot,
            service_pids,
            model: Model {
                observer: snapshot.node_name(snapshot.observer).to_owned(),
                snapshot: Some(Arc::new(snapshot.clone())),
                service_pids: service_pids.clone(),
                ..Model::default()
            },
        };
        builder.all()?;
        Ok(builder.model)
    }

    /// HP_SGClusterSoftware, which needs no cluster.
    fn software(&self) -> Result<(InstancePath, Instance), OperationError> {
        let mut numbers = self
            .version
            .split('.')
            .map(|part| part.parse::<u16>().unwrap_or(0));
        let (major, minor, revision) = (
            numbers.next().unwrap_or(0),
            numbers.next().unwrap_or(0),
            numbers.next().unwrap_or(0),
        );
        self.instance(
            "HP_SGClusterSoftware",
            vec![
                (
                    "InstanceID",
                    Some(string(format!("cimguard:Serviceguard:{}", self.version))),
                ),
                ("ElementName", Some(string("cimguard Serviceguard"))),
                ("Name", Some(string("cimguard"))),
                ("Manufacturer", Some(string("cimguard"))),
                ("VersionString", Some(string(&self.version))),
                ("MajorVersion", Some(Value::Uint16(major))),
                ("MinorVersion", Some(Value::Uint16(minor))),
                ("RevisionNumber", Some(Value::Uint16(revision))),
                ("BuildNumber", Some(Value::Uint16(0))),
                ("IsEntity", Some(Value::Boolean(true))),
                ("Classifications", Some(uint16s(&[3]))),
            ],
        )
    }

    /// One instance of `class_name` from `(property, value)` pairs, typed by the class; its
    /// path has the class's keys.
    fn instance(
        &self,
        class_name: &str,
        values: Vec<(&str, Option<Value>)>,
    ) -> Result<(InstancePath, Instance), OperationError> {
        let misconfigured = |what: String| {
            tracing::error!(class = class_name, "serviceguard provider: {what}");
            OperationError::Failed(format!("the {class_name} provider is misconfigured"))
        };
        let class = self
            .classes
            .get(&class_name.to_ascii_lowercase())
            .ok_or_else(|| misconfigured("no such class".into()))?;
        let mut instance = Instance::new(class.name.clone());
        for (name, value) in values {
            let declared = class
                .property(name)
                .ok_or_else(|| misconfigured(format!("no property {name}")))?;
            let mut property =
                Property::new(declared.name.clone(), declared.cim_type.clone(), value);
            property.is_array = declared.is_array;
            instance.set(property);
        }
        let mut path = InstancePath::new(class.name.clone());
        for key in class.keys() {
            let value = instance
                .value(key.name.as_str())
                .cloned()
                .ok_or_else(|| misconfigured(format!("key {} without a value", key.name)))?;
            path.keybindings.push(KeyBinding {
                name: key.name.clone(),
                value,
            });
        }
        Ok((path, instance))
    }

    /// A reference to `path` in `root/cimv2` of this server: without host, as references to
    /// local objects are written (see `interop::reference`).
    fn reference(&self, path: &InstancePath) -> Value {
        let mut path = path.clone();
        path.namespace = Some(CIMV2.to_owned());
        path.host = None;
        Value::Reference(Box::new(ObjectPath::Instance(path)))
    }

    /// HP_SGClusteringService.GetView: the snapshot every instance is built from, as JSON.
    fn view(&self) -> Result<MethodOutput, OperationError> {
        let model = self.model()?;
        let view = model
            .snapshot
            .as_ref()
            .map(|snapshot| serde_json::to_string(snapshot.as_ref()))
            .transpose()
            .map_err(|e| OperationError::Failed(format!("the view does not encode: {e}")))?;
        Ok(MethodOutput {
            return_value: Some(Value::Uint32(if view.is_some() { 0 } else { 2 })),
            out_params: vec![(Name::new("View"), view.map(Value::String))],
        })
    }

    /// Carries out a command and maps the daemon's answer to the methods' return codes
    /// (0 done, 4 refused, 2 any other failure), the reason in the output parameter Message.
    fn command(&self, request: &Request) -> Result<MethodOutput, OperationError> {
        let reply = blocking(|| self.source.command(request));
        self.invalidate();
        self.outcome(request, reply)
    }

    /// The method's outcome for the daemon's `reply` to `request`.
    fn outcome(
        &self,
        request: &Request,
        reply: Result<Reply, String>,
    ) -> Result<MethodOutput, OperationError> {
        match reply {
            Ok(Reply::Done) => Ok(MethodOutput {
                return_value: Some(Value::Uint32(0)),
                out_params: vec![(Name::new("Message"), None)],
            }),
            // Carried out: 0, with what the caller should know in Message.
            Ok(Reply::Warned(warning)) => {
                tracing::warn!(request = request.name(), %warning, "serviceguard provider: carried out with a warning");
                Ok(MethodOutput {
                    return_value: Some(Value::Uint32(0)),
                    out_params: vec![(Name::new("Message"), Some(string(warning)))],
                })
            }
            Ok(Reply::Refused(reason)) => {
                tracing::info!(request = request.name(), %reason, "serviceguard provider: refused");
                Ok(not_done(4, reason))
            }
            Ok(Reply::Error(reason)) => {
                tracing::warn!(request = request.name(), %reason, "serviceguard provider: command failed");
                Ok(not_done(2, reason))
            }
            Ok(
                Reply::Status(_)
                | Reply::Configuration { .. }
                | Reply::Unchanged
                | Reply::UnchangedWith { .. }
                | Reply::InEffect { .. }
                | Reply::Preview { .. }
                | Reply::Findings(_)
                | Reply::Notices { .. }
                | Reply::StatusChange { .. }
                | Reply::Shared { .. },
            ) => Ok(not_done(2, "the daemon answered with something else")),
            Err(reason) => Err(OperationError::Failed(reason)),
        }
    }
}

impl ServiceguardProvider {
    /// RequestStateChange's answer once the cluster took the run or halt: waits, as cmrunpkg
    /// and cmhaltpkg do, up to `method_wait` for its end (0, or 4 and why), then answers
    /// 4096 with an HP_SGPackageJob that goes on waiting.
    fn wait_for_end(
        &self,
        context: &RequestContext,
        model: &Model,
        before: &cimguard_cluster::status::PackageRow,
        goal: Goal,
        requested: u16,
    ) -> MethodOutput {
        let ended = |progress: Progress| match progress {
            Progress::Failed(reason) => {
                tracing::info!(%reason, "serviceguard provider: a run or halt did not end well");
                not_done(4, reason)
            }
            _ => MethodOutput {
                return_value: Some(Value::Uint32(0)),
                out_params: vec![(Name::new("Message"), None)],
            },
        };
        let mut wait = PackageWait::new(before, goal, Instant::now());
        let deadline = Instant::now() + self.method_wait;
        let progress =
            blocking(|| package_jobs::wait_until(self.source.as_ref(), &mut wait, deadline));
        self.invalidate();
        if progress != Progress::Waiting {
            return ended(progress);
        }
        // The agent's start in the key: a job number of an earlier life of the agent never
        // names one of this life.
        let prefix = format!(
            "cimguard:{}:job:{}:{:x}-",
            model.snapshot.as_ref().map_or("", |s| s.name.as_str()),
            model.observer,
            self.life
        );
        let id = package_jobs::start(
            &self.jobs,
            self.source.clone(),
            wait,
            requested,
            &context.principal,
            &prefix,
        );
        let mut path = InstancePath::new(Name::new("HP_SGPackageJob"));
        path.keybindings.push(KeyBinding {
            name: Name::new("InstanceID"),
            value: Value::String(id),
        });
        MethodOutput {
            return_value: Some(Value::Uint32(4096)),
            out_params: vec![
                (Name::new("Job"), Some(self.reference(&path))),
                (Name::new("Message"), None),
            ],
        }
    }

    /// The static methods of HP_SGClusteringService: the cluster commands.
    fn cluster_method(
        &self,
        method: &str,
        params: &[(Name, Option<Value>)],
    ) -> Result<MethodOutput, OperationError> {
        let params = Params(params);
        let flag = |name: &str| params.boolean(name).map(Option::unwrap_or_default);
        let request = match method.to_ascii_lowercase().as_str() {
            "getview" => return self.view(),
            "getconfiguration" => {
                let reply = blocking(|| self.source.command(&Request::Configuration));
                return match reply {
                    Ok(Reply::Configuration {
                        cluster,
                        packages,
                        generation,
                        number,
                    }) => Ok(MethodOutput {
                        return_value: Some(Value::Uint32(0)),
                        out_params: vec![
                            (Name::new("ClusterFile"), Some(string(cluster))),
                            (Name::new("PackageFiles"), Some(strings(&packages))),
                            (Name::new("Generation"), Some(Value::Uint64(generation))),
                            (Name::new("GenerationNumber"), number.map(Value::Uint64)),
                            (Name::new("Message"), None),
                        ],
                    }),
                    other => self.outcome(&Request::Configuration, other),
                };
            }
            "previewpackagecommands" => {
                let operations = params.strings("Operations")?;
                let packages = params.strings("PackageNames")?;
                let nodes = params.strings("NodeNames")?;
                if operations.len() > PREVIEW_COMMANDS_MAX {
                    return Ok(not_done(
                        5,
                        format!(
                            "{} commands: a preview takes at most {PREVIEW_COMMANDS_MAX}",
                            operations.len()
                        ),
                    ));
                }
                if operations.is_empty() || packages.len() != operations.len() {
                    return Ok(not_done(
                        5,
                        "Operations and PackageNames must give one command each, at least one",
                    ));
                }
                if !nodes.is_empty() && nodes.len() != operations.len() {
                    return Ok(not_done(
                        5,
                        "NodeNames must give a node (or \"\") for each command",
                    ));
                }
                let mut commands = Vec::with_capacity(operations.len());
                for (index, (operation, package)) in operations.iter().zip(packages).enumerate() {
                    let node = nodes.get(index).filter(|n| !n.is_empty()).cloned();
                    commands.push(match operation.to_ascii_lowercase().as_str() {
                        "run" => PreviewCommand::Run { package, node },
                        "halt" => PreviewCommand::Halt { package, node },
                        "enable" => PreviewCommand::Enable { package, node },
                        "disable" => PreviewCommand::Disable { package, node },
                        _ => {
                            return Ok(not_done(
                                5,
                                format!("{operation} is not run, halt, enable or disable"),
                            ))
                        }
                    });
                }
                let request = Request::Preview { commands };
                return match blocking(|| self.source.command(&request)) {
                    Ok(Reply::Preview { actions, refused }) => {
                        let column = |f: &dyn Fn(&PlannedAction) -> String| {
                            strings(&actions.iter().map(f).collect::<Vec<_>>())
                        };
                        // Some refused: 4, with the others' actions all the same (the
                        // commands go on to the next package after one refused).
                        let (code, message) = if refused.is_empty() {
                            (0, None)
                        } else {
                            (4, Some(string(refused.join("\n"))))
                        };
                        Ok(MethodOutput {
                            return_value: Some(Value::Uint32(code)),
                            out_params: vec![
                                (
                                    Name::new("ActionKinds"),
                                    Some(column(&|a| {
                                        if a.start { "start" } else { "halt" }.to_owned()
                                    })),
                                ),
                                (
                                    Name::new("ActionPackages"),
                                    Some(column(&|a| a.package.clone())),
                                ),
                                (Name::new("ActionNodes"), Some(column(&|a| a.node.clone()))),
                                (Name::new("Refusals"), Some(strings(&refused))),
                                (Name::new("Message"), message),
                            ],
                        })
                    }
                    // Refused as a whole (the cluster is not running here).
                    Ok(Reply::Refused(reason)) => Ok(not_done(4, reason)),
                    other => self.outcome(&request, other),
                };
            }
            "previewruncluster" => {
                let nodes = params.strings("NodeNames")?;
                // Exactly as NODE_NAME is configured, as cmruncl compares.
                let model = self.model()?;
                let Some(snapshot) = model.snapshot.as_ref() else {
                    return Ok(not_done(4, "the cluster daemon does not answer"));
                };
                if let Some(node) = nodes
                    .iter()
                    .find(|n| !snapshot.nodes.iter().any(|c| &c.name == *n))
                {
                    return Ok(not_done(5, format!("{node} is not a node of this cluster")));
                }
                let request = Request::PreviewRunCluster { nodes };
                return match blocking(|| self.source.command(&request)) {
                    Ok(Reply::Preview { actions, .. }) => {
                        let column = |f: &dyn Fn(&PlannedAction) -> String| {
                            strings(&actions.iter().map(f).collect::<Vec<_>>())
                        };
                        Ok(MethodOutput {
                            return_value: Some(Value::Uint32(0)),
                            out_params: vec![
                                (
                                    Name::new("ActionPackages"),
                                    Some(column(&|a| a.package.clone())),
                                ),
                                (Name::new("ActionNodes"), Some(column(&|a| a.node.clone()))),
                                (Name::new("Message"), None),
                            ],
                        })
                    }
                    // Refused (a node of a running cluster, as cmruncl is).
                    Ok(Reply::Refused(reason)) => Ok(not_done(4, reason)),
                    other => self.outcome(&request, other),
                };
            }
            "runcluster" => Request::RunCluster {
                nodes: params.strings("NodeNames")?,
            },
            "runnode" => match params.string("NodeName")? {
                None => Request::RunNode,
                Some(node) => {
                    // The agent's own node starts itself; another is told to (exactly as
                    // NODE_NAME is configured, as cmhaltnode compares).
                    let model = self.model()?;
                    let Some(snapshot) = model.snapshot.as_ref() else {
                        return Ok(not_done(4, "the cluster daemon does not answer"));
                    };
                    if !snapshot.nodes.iter().any(|n| n.name == node) {
                        return Ok(not_done(5, format!("{node} is not a node of this cluster")));
                    }
                    if snapshot.node_name(snapshot.observer) == node {
                        Request::RunNode
                    } else {
                        Request::RunOtherNode { node }
                    }
                }
            },
            "haltcluster" | "haltnode" => {
                let (force, detach) = (flag("Force")?, flag("Detach")?);
                let node = params.string("NodeName")?;
                if force && detach {
                    return Ok(not_done(5, "Force and Detach exclude each other"));
                }
                if method.eq_ignore_ascii_case("haltcluster") {
                    Request::HaltCluster { force, detach }
                } else {
                    // cmhaltnode halts the agent's own node, or another member, which halts
                    // as if given it itself.
                    if let Some(node) = &node {
                        // A daemon that does not answer is told as such (CIM_ERR_FAILED),
                        // not as an unknown node. Node names compare exactly, as the
                        // daemon's lookup does (NODE_NAME is a host name as configured).
                        let model = self.model()?;
                        let known = model
                            .snapshot
                            .as_ref()
                            .is_some_and(|s| s.nodes.iter().any(|n| n.name == *node));
                        if !known {
                            return Ok(not_done(
                                5,
                                format!("{node} is not a node of this cluster"),
                            ));
                        }
                    }
                    Request::HaltNode {
                        force,
                        detach,
                        node,
                    }
                }
            }
            "deleteconfiguration" => {
                let request = Request::DeleteCluster;
                let reply = blocking(|| self.source.command(&request));
                self.invalidate();
                return match reply {
                    Ok(Reply::InEffect {
                        generation,
                        warning,
                        ..
                    }) => Ok(in_effect_as(generation, warning, None)),
                    other => self.outcome(&request, other),
                };
            }
            "applyconfiguration" | "checkconfiguration" => {
                let name = params.string("ClusterFileName")?;
                let cluster = params.string("ClusterFile")?.map(|text| FileText {
                    name: name.unwrap_or_else(|| "cluster.ascii".into()),
                    text,
                });
                // PackageFiles absent (or NULL): the packages in effect, as an absent
                // ClusterFile is the cluster file in effect; an empty array: no package.
                let texts = params.strings_given("PackageFiles")?;
                let names = params.strings("PackageFileNames")?;
                if !names.is_empty() && names.len() != texts.as_ref().map_or(0, Vec::len) {
                    return Ok(not_done(
                        5,
                        "PackageFileNames must name every one of PackageFiles",
                    ));
                }
                let packages = texts.map(|texts| {
                    texts
                        .into_iter()
                        .enumerate()
                        .map(|(i, text)| FileText {
                            name: names
                                .get(i)
                                .cloned()
                                .unwrap_or_else(|| format!("package-{}.conf", i + 1)),
                            text,
                        })
                        .collect()
                });
                if method.eq_ignore_ascii_case("checkconfiguration") {
                    let request = Request::CheckApply { cluster, packages };
                    return match blocking(|| self.source.command(&request)) {
                        // Findings and refusals are the answer asked for, not failures (a
                        // daemon that fails to answer is 2, as for any method).
                        Ok(Reply::Findings(findings)) => Ok(not_done(5, findings)),
                        Ok(Reply::Refused(reason)) => Ok(not_done(4, reason)),
                        other => self.outcome(&request, other),
                    };
                }
                let base = params.uint64("BaseGeneration")?;
                let base_number = params.uint64("BaseGenerationNumber")?;
                let request = Request::Apply {
                    cluster,
                    packages,
                    base,
                    base_number,
                };
                // Files that do not check are an invalid parameter, with every finding.
                let reply = blocking(|| self.source.command(&request));
                self.invalidate();
                return match reply {
                    Ok(Reply::Error(findings)) => Ok(not_done(5, findings)),
                    // Done, with nothing to distribute: no new generation follows. Unchanged
                    // is true or null, never false: pywbem reads every boolean output
                    // parameter with a value as true.
                    Ok(Reply::Unchanged) => Ok(MethodOutput {
                        return_value: Some(Value::Uint32(0)),
                        out_params: vec![
                            (Name::new("Unchanged"), Some(Value::Boolean(true))),
                            (Name::new("Message"), None),
                        ],
                    }),
                    // The same, with what the caller should know (nodes of the
                    // configuration the exchange did not reach).
                    Ok(Reply::UnchangedWith { note }) => Ok(MethodOutput {
                        return_value: Some(Value::Uint32(0)),
                        out_params: vec![
                            (Name::new("Unchanged"), Some(Value::Boolean(true))),
                            (Name::new("Message"), Some(string(note))),
                        ],
                    }),
                    // The cluster halted: in effect everywhere already, as this generation
                    // (the daemon may end right after, on a shutdown it held back for this).
                    Ok(Reply::InEffect {
                        generation,
                        warning,
                        not_configured,
                    }) => Ok(in_effect_as(generation, warning, Some(not_configured))),
                    other => self.outcome(&request, other),
                };
            }
            _ => {
                return Err(OperationError::NotSupported(format!(
                    "method {method} of HP_SGClusteringService is not supported"
                )))
            }
        };
        self.command(&request)
    }
}

/// A method's outcome when a change is in effect as `generation` (a change of the halted
/// cluster, on every node; nodes added to the running cluster, in the cluster): 0, with it in
/// Generation, in Message what the caller should know and, for ApplyConfiguration
/// (`not_configured` given), the nodes added that did not take it in NodesNotConfigured
/// (null when none).
fn in_effect_as(
    generation: u64,
    warning: Option<String>,
    not_configured: Option<Vec<String>>,
) -> MethodOutput {
    let mut out_params = vec![
        (Name::new("Generation"), Some(Value::Uint64(generation))),
        (Name::new("Message"), warning.map(string)),
    ];
    if let Some(nodes) = not_configured {
        out_params.push((
            Name::new("NodesNotConfigured"),
            (!nodes.is_empty()).then(|| strings(&nodes)),
        ));
    }
    MethodOutput {
        return_value: Some(Value::Uint32(0)),
        out_params,
    }
}

/// A method's outcome when it was not carried out: `code` and why, in Message.
fn not_done(code: u32, message: impl Into<String>) -> MethodOutput {
    MethodOutput {
        return_value: Some(Value::Uint32(code)),
        out_params: vec![(Name::new("Message"), Some(Value::String(message.into())))],
    }
}

/// A method's input parameters, each read by name (in any case) as the type the MOF declares
/// it: a value of another type is CIM_ERR_INVALID_PARAMETER (DSP0200), never read as absent
/// or as a refusal. The server already types a request's parameters so
/// ([`crate::methods`]); this keeps a direct caller of the provider to the same rule.
#[derive(Clone, Copy)]
struct Params<'a>(&'a [(Name, Option<Value>)]);

impl<'a> Params<'a> {
    /// The parameter's value; none when it is absent or NULL.
    fn value(self, name: &str) -> Option<&'a Value> {
        self.0
            .iter()
            .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_ref())
    }

    /// The parameter as `take` reads it; CIM_ERR_INVALID_PARAMETER saying "`name` must be
    /// `what`" when it cannot.
    fn typed<T>(
        self,
        name: &str,
        what: &str,
        take: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, OperationError> {
        match self.value(name) {
            None => Ok(None),
            Some(value) => take(value)
                .map(Some)
                .ok_or_else(|| OperationError::parameter(format!("{name} must be {what}"))),
        }
    }

    fn string(self, name: &str) -> Result<Option<String>, OperationError> {
        self.typed(name, "a string", |v| v.as_str().map(str::to_owned))
    }

    fn boolean(self, name: &str) -> Result<Option<bool>, OperationError> {
        self.typed(name, "a boolean", |v| match v {
            Value::Boolean(b) => Some(*b),
            _ => None,
        })
    }

    fn uint16(self, name: &str) -> Result<Option<u16>, OperationError> {
        self.typed(name, "a uint16", |v| match v {
            Value::Uint16(n) => Some(*n),
            _ => None,
        })
    }

    fn uint32(self, name: &str) -> Result<Option<u32>, OperationError> {
        self.typed(name, "a uint32", |v| match v {
            Value::Uint32(n) => Some(*n),
            _ => None,
        })
    }

    fn uint64(self, name: &str) -> Result<Option<u64>, OperationError> {
        self.typed(name, "a uint64", |v| match v {
            Value::Uint64(n) => Some(*n),
            _ => None,
        })
    }

    /// A datetime interval (a timestamp is no period).
    fn interval(self, name: &str) -> Result<Option<&'a Datetime>, OperationError> {
        self.typed(name, "a datetime interval", |v| match v {
            Value::Datetime(d) if d.is_interval() => Some(d),
            _ => None,
        })
    }

    /// An array of strings, none of them NULL; empty when absent.
    fn strings(self, name: &str) -> Result<Vec<String>, OperationError> {
        Ok(self.strings_given(name)?.unwrap_or_default())
    }

    /// An array of strings, none of them NULL; None when absent or NULL (an empty array is
    /// given, and empty).
    fn strings_given(self, name: &str) -> Result<Option<Vec<String>>, OperationError> {
        self.typed(name, "an array of strings", |v| match v {
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Some(Value::String(text)) => Some(text.clone()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>(),
            _ => None,
        })
    }
}

impl InstanceProvider for ServiceguardProvider {
    /// DeleteInstance of a finished HP_SGPackageJob (the others are the cluster's).
    fn delete(&self, _context: &RequestContext, path: &InstancePath) -> Result<(), OperationError> {
        let job = path
            .class_name
            .as_str()
            .eq_ignore_ascii_case("HP_SGPackageJob");
        let Some(Value::String(id)) = path.key("InstanceID").filter(|_| job) else {
            return Err(OperationError::NotSupported(format!(
                "instances of {} are the cluster's: its commands change them",
                path.class_name
            )));
        };
        let removed = self
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        match removed {
            Removal::Removed => Ok(()),
            Removal::NoSuchJob => Err(crate::provider::not_found(path)),
            Removal::StillRunning => Err(OperationError::Failed(
                "the job is still running: delete it once it has ended".into(),
            )),
        }
    }

    fn enumerate(
        &self,
        _context: &RequestContext,
        class: &Name,
    ) -> Result<Instances, OperationError> {
        let key = class.as_str().to_ascii_lowercase();
        if key == "hp_sgclustersoftware" {
            // Served without the daemon: what is installed does not need a cluster.
            let (path, instance) = self.software()?;
            return Ok(Box::new(std::iter::once(Ok((path, Arc::new(instance))))));
        }
        if key == "hp_sgpackagejob" {
            // The agent's own: served without the daemon.
            let jobs = self
                .jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .current(Instant::now());
            let now = std::time::SystemTime::now();
            let instances = jobs
                .iter()
                .map(|job| {
                    self.instance("HP_SGPackageJob", job.properties(now))
                        .map(|(path, instance)| (path, Arc::new(instance)))
                })
                .collect::<Vec<_>>();
            return Ok(Box::new(instances.into_iter()));
        }
        let model = self.model()?;
        let found = model.by_class.get(&key).cloned().unwrap_or_default();
        Ok(Box::new(found.into_iter().map(Ok)))
    }

    fn invoke(
        &self,
        context: &RequestContext,
        target: &ObjectPath,
        method: &Method,
        params: Vec<(Name, Option<Value>)>,
    ) -> Result<MethodOutput, OperationError> {
        let path = match target {
            ObjectPath::Instance(path) => path,
            // The cluster's methods are static: a client need not know the cluster's name.
            ObjectPath::Class(class)
                if class
                    .class_name
                    .as_str()
                    .eq_ignore_ascii_case("HP_SGClusteringService") =>
            {
                return self.cluster_method(method.name.as_str(), &params);
            }
            ObjectPath::Class(_) => {
                return Err(OperationError::NotSupported(format!(
                    "method {} is not static: invoke it on an instance",
                    method.name
                )))
            }
        };
        let given = Params(&params);
        let key = |name: &str| match path.key(name) {
            Some(Value::String(text)) => Ok(text.clone()),
            _ => Err(OperationError::parameter(format!(
                "the instance path has no {name} key"
            ))),
        };
        if path
            .class_name
            .as_str()
            .eq_ignore_ascii_case("HP_SGPackageJob")
        {
            // A run or halt cannot be taken back halfway; its job only reports.
            return Err(OperationError::NotSupported(format!(
                "method {} of HP_SGPackageJob is not supported: a job reports a run or halt, \
                 which cannot be stopped halfway",
                method.name
            )));
        }
        // The instance must exist (a wrong package name is CIM_ERR_NOT_FOUND, not a refusal).
        let model = self.model()?;
        let exists = model
            .by_class
            .get(&path.class_name.as_str().to_ascii_lowercase())
            .is_some_and(|found| {
                found
                    .iter()
                    .any(|(p, _)| crate::provider::same_keys(p, path))
            });
        if !exists {
            return Err(crate::provider::not_found(path));
        }
        let class = path.class_name.as_str();
        let method_name = method.name.as_str();
        if class.eq_ignore_ascii_case("HP_SGPackage") {
            let package = key("Name")?;
            let node = given.string("NodeName")?;
            // A node that is not one of the package's is an invalid parameter (5).
            if let Some(node) = &node {
                let listed = model
                    .by_class
                    .get("hp_sgpackage")
                    .and_then(|found| {
                        found
                            .iter()
                            .find(|(p, _)| crate::provider::same_keys(p, path))
                    })
                    .is_some_and(|(_, instance)| match instance.value("NodeNames") {
                        Some(Value::Array(names)) => names
                            .iter()
                            .any(|n| matches!(n, Some(Value::String(n)) if n == node)),
                        _ => false,
                    });
                if !listed {
                    return Ok(not_done(
                        5,
                        format!("{node} is not a node of package {package}"),
                    ));
                }
            }
            // Each node's state of the package before the request: the wait for its end
            // judges what changed since.
            let before = model
                .snapshot
                .as_ref()
                .and_then(|s| s.packages.iter().find(|p| p.name == package).cloned());
            let target = node.clone().or_else(|| {
                // Without NodeName, a multi-node package's instance runs on this node.
                before
                    .as_ref()
                    .is_some_and(|row| row.kind != PackageType::Failover)
                    .then(|| model.observer.clone())
            });
            let node_given = node.clone();
            let enabled = || {
                given
                    .boolean("Enabled")?
                    .ok_or_else(|| OperationError::parameter("Enabled (boolean) is required"))
            };
            let request = if method_name.eq_ignore_ascii_case("RequestStateChange") {
                // A run or halt is bounded by the package's script timeouts, not by the
                // client's: DMTF's answer for a TimeoutPeriod not honoured is 4098.
                let zero = |d: &Datetime| {
                    d.is_interval() && d.as_str().bytes().all(|b| matches!(b, b'0' | b'.' | b':'))
                };
                let timeout = given.interval("TimeoutPeriod")?;
                let requested = given.uint16("RequestedState")?;
                if timeout.is_some_and(|period| !zero(period)) {
                    return Ok(not_done(
                        4098,
                        "TimeoutPeriod is not supported: a run or halt is bounded by the \
                         package's run and halt script timeouts (give none, or 0)",
                    ));
                }
                match requested {
                    Some(2) => Request::RunPackage { package, node },
                    // cmhaltpkg's semantics, refusal included: not while packages that depend
                    // on it run (they are halted first, by name, as cmhaltpkg needs them).
                    Some(3) => Request::HaltPackage { package, node },
                    _ => return Ok(not_done(5, "RequestedState must be 2 (run) or 3 (halt)")),
                }
            } else if method_name.eq_ignore_ascii_case("ResetRestarts") {
                let service = given
                    .string("ServiceName")?
                    .ok_or_else(|| OperationError::parameter("ServiceName (string) is required"))?;
                // A service the package does not have is an invalid parameter (5), as a node
                // not in its node list is. Every node row lists the package's services.
                let known = before.as_ref().is_none_or(|row| {
                    row.nodes
                        .iter()
                        .flat_map(|n| &n.services)
                        .any(|s| s.name == service)
                });
                if !known {
                    return Ok(not_done(
                        5,
                        format!("{service} is not a service of package {package}"),
                    ));
                }
                Request::ResetRestarts { package, service }
            } else if method_name.eq_ignore_ascii_case("SetMaintenance") {
                Request::Maintenance {
                    package,
                    on: enabled()?,
                    node,
                }
            } else if method_name.eq_ignore_ascii_case("SetAutoRun") {
                if enabled()? {
                    Request::EnablePackage {
                        package,
                        node: None,
                    }
                } else {
                    Request::DisablePackage {
                        package,
                        node: None,
                    }
                }
            } else if method_name.eq_ignore_ascii_case("SetNodeSwitching") {
                let Some(node) = node else {
                    return Err(OperationError::parameter("NodeName is required"));
                };
                if enabled()? {
                    Request::EnablePackage {
                        package,
                        node: Some(node),
                    }
                } else {
                    Request::DisablePackage {
                        package,
                        node: Some(node),
                    }
                }
            } else {
                return Err(OperationError::NotSupported(format!(
                    "method {method_name} of HP_SGPackage is not supported"
                )));
            };
            let requested = match &request {
                Request::RunPackage { package, .. } => Some((package.clone(), 2)),
                Request::HaltPackage { package, .. } => Some((package.clone(), 3)),
                _ => None,
            };
            let mut output = self.command(&request)?;
            // RequestedState: the last state requested through any node's agent and taken by
            // the cluster (however the run or halt then ends), kept in the cluster's shared
            // map so that every agent tells the same; this agent's own record stands in
            // where that map cannot be read or written.
            if let (Some((package, state)), Some(Value::Uint32(0))) =
                (&requested, &output.return_value)
            {
                let share = Request::Share {
                    key: format!("{REQUESTED_PREFIX}{package}"),
                    value: Some(state.to_string()),
                };
                let shared = match blocking(|| self.source.command(&share)) {
                    Ok(Reply::Done) => true,
                    other => {
                        tracing::warn!(
                            package = package.as_str(),
                            answer = ?other,
                            "serviceguard provider: RequestedState kept by this agent only"
                        );
                        false
                    }
                };
                self.requested
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(package.clone(), (*state, shared));
                self.invalidate();
            }
            if let (Some((_, state)), Some(before), Some(Value::Uint32(0))) =
                (&requested, &before, &output.return_value)
            {
                let goal = if *state == 2 {
                    Goal::Run(target)
                } else {
                    Goal::Halt(node_given)
                };
                // A warning of the command itself (cmhaltpkg's AUTO_RUN change not confirmed
                // by every member) stays in Message unless the wait has a reason of its own.
                let warning = output.out_params.iter().find_map(|(name, value)| {
                    (name.as_str() == "Message")
                        .then(|| value.clone())
                        .flatten()
                });
                output = self.wait_for_end(context, &model, before, goal, *state);
                if let Some(warning) = warning {
                    for (name, value) in &mut output.out_params {
                        if name.as_str() == "Message" && value.is_none() {
                            *value = Some(warning.clone());
                        }
                    }
                }
            }
            return Ok(output);
        }
        if class.eq_ignore_ascii_case("HP_SGClusteringService") {
            return self.cluster_method(method_name, &params);
        }
        if class.eq_ignore_ascii_case("HP_SGGenericResource")
            && method_name.eq_ignore_ascii_case("SetStatus")
        {
            let instance = model
                .by_class
                .get("hp_sggenericresource")
                .and_then(|found| {
                    found
                        .iter()
                        .find(|(p, _)| crate::provider::same_keys(p, path))
                })
                .map(|(_, instance)| instance.clone())
                .ok_or_else(|| crate::provider::not_found(path))?;
            let text = |name: &str| match instance.value(name) {
                Some(Value::String(text)) => Some(text.clone()),
                _ => None,
            };
            // cmsetresource sets a resource on the node it runs on: so does this agent.
            if text("NodeName").as_deref() != Some(model.observer.as_str()) {
                return Ok(not_done(
                    4,
                    format!(
                        "the resource is {}'s: set it through that node's agent (this is {})",
                        text("NodeName").unwrap_or_default(),
                        model.observer
                    ),
                ));
            }
            let name = text("ElementName").unwrap_or_default();
            let value = match (given.string("Status")?, given.uint32("Value")?) {
                (Some(status), None) => match status.as_str() {
                    "up" => ResourceValue::Status(true),
                    "down" => ResourceValue::Status(false),
                    // A value the method does not take is its return code 5, as for Value
                    // and RequestStateChange (a parameter of the wrong type stays
                    // CIM_ERR_INVALID_PARAMETER).
                    _ => return Ok(not_done(5, "Status must be \"up\" or \"down\"")),
                },
                (None, Some(value)) if (1..=2_147_483_647).contains(&value) => {
                    ResourceValue::Value(i64::from(value))
                }
                (None, Some(_)) => {
                    return Ok(not_done(5, "Value must be 1 to 2147483647"));
                }
                _ => {
                    return Ok(not_done(
                        5,
                        "give either Status (\"up\" or \"down\") or Value",
                    ))
                }
            };
            return self.command(&Request::SetResource { name, value });
        }
        Err(OperationError::NotSupported(format!(
            "method {method_name} of {class} is not supported"
        )))
    }
}

fn string(text: impl Into<String>) -> Value {
    Value::String(text.into())
}

fn strings<S: AsRef<str>>(texts: &[S]) -> Value {
    Value::Array(texts.iter().map(|t| Some(string(t.as_ref()))).collect())
}

fn uint16s(numbers: &[u16]) -> Value {
    Value::Array(numbers.iter().map(|n| Some(Value::Uint16(*n))).collect())
}

fn micros(duration: Duration) -> Value {
    Value::Uint64(u64::try_from(duration.as_micros()).unwrap_or(u64::MAX))
}

fn seconds(duration: Duration) -> Value {
    Value::Uint32(u32::try_from(duration.as_secs()).unwrap_or(u32::MAX))
}

/// `IPv4_<address>` or `IPv6_<address>`.
fn endpoint_name(address: IpAddr) -> String {
    match address {
        IpAddr::V4(a) => format!("IPv4_{a}"),
        IpAddr::V6(a) => format!("IPv6_{a}"),
    }
}

/// DMTF EnabledState, OperationalStatus of a package state (serviceguard.md 1.4).
fn package_dmtf(state: &str) -> (u16, &'static [u16]) {
    match state {
        "running" => (2, &[2]),
        "detached" => (2, &[13]),
        "reconfiguring" | "reconfigure_wait" => (2, &[2]),
        "starting" | "start_wait" | "changing" => (10, &[8]),
        "halting" | "halt_wait" => (4, &[9]),
        "failing" | "fail_wait" => (4, &[6, 9]),
        "failed" => (3, &[6]),
        // The halt stopped at a failing module: parts of the package may still run, so it is
        // neither enabled nor disabled (EnabledState 1 Other, OtherEnabledState says which).
        "halt_aborted" => (1, &[6, 3]),
        "maintenance" => (9, &[11]),
        "unknown" => (0, &[0]),
        // halted, relocate_wait, blocked
        _ => (3, &[10]),
    }
}

/// A generic resource on one node, gathered from the packages that use it.
struct ResourceEntry {
    name: String,
    node: String,
    before: bool,
    status: &'static str,
    value: Option<i64>,
    packages: Vec<String>,
    /// Each package's generic_resource_up_criteria for it (None: a simple resource there).
    criteria: Vec<(String, Option<String>)>,
}

/// HP_SGCluster.InterconnectAddress: the heartbeat subnets, in network order, as this host's
/// interfaces give them for the observing node's HEARTBEAT_IPs (`192.168.1.0/24,
/// 192.168.2.0/24`); None when none of them is an address of this host (the view of another
/// node).
fn interconnect_address(snapshot: &Snapshot) -> Option<String> {
    let node = snapshot.nodes.iter().find(|n| n.id == snapshot.observer)?;
    let mut heartbeats: Vec<(usize, IpAddr)> = node
        .interfaces
        .iter()
        .flat_map(|i| i.addresses.iter())
        .filter_map(|(address, network)| network.map(|n| (n, *address)))
        .collect();
    heartbeats.sort();
    let local: Vec<(IpAddr, u32)> = nix::ifaddrs::getifaddrs()
        .ok()?
        .filter_map(|i| {
            let address = socket_ip(i.address.as_ref()?)?;
            let prefix = match i.netmask.as_ref().and_then(socket_ip) {
                Some(IpAddr::V4(mask)) => u32::from(mask).count_ones(),
                Some(IpAddr::V6(mask)) => u128::from(mask).count_ones(),
                None => return None,
            };
            Some((address, prefix))
        })
        .collect();
    // The network address of an address within a prefix.
    let network = |address: IpAddr, prefix: u32| -> IpAddr {
        match address {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
                Ipv4Addr::from(u32::from(a) & mask).into()
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
                Ipv6Addr::from(u128::from(a) & mask).into()
            }
        }
    };
    let mut subnets: Vec<String> = Vec::new();
    for (_, address) in heartbeats {
        // The interface subnet that holds the address, the most specific one (a HEARTBEAT_IP
        // is an interface's own address; on loopback 127.0.0.2 is within lo's 127.0.0.0/8).
        let holding = local
            .iter()
            .filter(|(a, prefix)| {
                a.is_ipv4() == address.is_ipv4()
                    && network(*a, *prefix) == network(address, *prefix)
            })
            .max_by_key(|(_, prefix)| *prefix);
        let Some(&(_, prefix)) = holding else {
            continue;
        };
        let subnet = format!("{}/{prefix}", network(address, prefix));
        if !subnets.contains(&subnet) {
            subnets.push(subnet);
        }
    }
    (!subnets.is_empty()).then(|| subnets.join(", "))
}

/// The IP address of a socket address from getifaddrs.
fn socket_ip(address: &nix::sys::socket::SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    address.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}

/// HP_SGGenericResource's InstanceID: resource `name` as node `node` of `cluster` has it.
pub(crate) fn generic_resource_id(cluster: &str, name: &str, node: &str) -> String {
    format!("cimguard:{cluster}:{name}:{node}")
}

/// HP_SGQuorumDevice's InstanceID: the cluster's tie-breaker as node `node` sees it.
pub(crate) fn quorum_device_id(cluster: &str, node: &str) -> String {
    format!("cimguard:{cluster}:quorum:{node}")
}

/// HP_SGGenericResource.UpCriteria of a resource from its packages' criteria: the one they
/// share (`<80`), or each package's when they differ (`pkgA <80, pkgB >=10`); None for a
/// simple resource.
fn up_criteria(criteria: &[(String, Option<String>)]) -> Option<String> {
    let given: Vec<(&str, &str)> = criteria
        .iter()
        .filter_map(|(package, c)| c.as_deref().map(|c| (package.as_str(), c)))
        .collect();
    let (_, first) = given.first()?;
    if given.iter().all(|(_, c)| c == first) {
        return Some((*first).to_owned());
    }
    Some(
        given
            .iter()
            .map(|(package, c)| format!("{package} {c}"))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// Builds a [`Model`] from a snapshot.
struct ModelBuilder<'a> {
    provider: &'a ServiceguardProvider,
    snapshot: &'a Snapshot,
    /// The process ids of the services on the observing node, by package and service.
    service_pids: &'a BTreeMap<String, BTreeMap<String, u32>>,
    model: Model,
}

impl ModelBuilder<'_> {
    fn add(&mut self, (path, instance): (InstancePath, Instance)) -> InstancePath {
        self.model
            .by_class
            .entry(path.class_name.as_str().to_ascii_lowercase())
            .or_default()
            .push((path.clone(), Arc::new(instance)));
        path
    }

    fn instance(
        &self,
        class: &str,
        values: Vec<(&str, Option<Value>)>,
    ) -> Result<(InstancePath, Instance), OperationError> {
        self.provider.instance(class, values)
    }

    fn reference(&self, path: &InstancePath) -> Option<Value> {
        Some(self.provider.reference(path))
    }

    fn all(&mut self) -> Result<(), OperationError> {
        let s = self.snapshot;
        let cluster_name = s.name.clone();
        let coordinator = s.coordinator.map(|id| s.node_name(id).to_owned());
        let (cluster_state, enabled, operational): (u16, u16, &[u16]) =
            match (s.status.as_str(), s.summary.as_str()) {
                ("up", "ok") => (2, 2, &[2]),
                ("up", _) => (4, 2, &[3]),
                ("starting", _) => (1, 10, &[8]),
                ("down", _) => (3, 3, &[10]),
                _ => (0, 0, &[13]),
            };
        let quorum_type = match s.lock {
            LockRow::None => "none",
            LockRow::QuorumServer { .. } => "quorum_server",
            LockRow::LockLun { .. } => "lock_lun",
        };
        let cluster = self.instance(
            "HP_SGCluster",
            vec![
                ("CreationClassName", Some(string("HP_SGCluster"))),
                ("Name", Some(string(&cluster_name))),
                ("ElementName", Some(string(&cluster_name))),
                ("NameFormat", Some(string("Other"))),
                ("Dedicated", Some(uint16s(&[0]))),
                ("ClusterStatus", Some(string(s.status.as_str()))),
                ("Summary", Some(string(s.summary.as_str()))),
                ("ClusterState", Some(Value::Uint16(cluster_state))),
                ("EnabledState", Some(Value::Uint16(enabled))),
                ("RequestedState", Some(Value::Uint16(12))),
                ("OperationalStatus", Some(uint16s(operational))),
                (
                    "StatusDescriptions",
                    Some(strings(&[format!(
                        "cluster {}, summary {}",
                        s.status, s.summary
                    )])),
                ),
                ("MaxNumberOfNodes", Some(Value::Uint32(16))),
                ("Interconnect", Some(string("Ethernet"))),
                ("InterconnectAddress", interconnect_address(s).map(string)),
                ("QuorumType", Some(string(quorum_type))),
                ("MemberTimeout", Some(micros(s.member_timeout))),
                ("AutoStartTimeout", Some(micros(s.auto_start_timeout))),
                (
                    "NetworkPollingInterval",
                    Some(micros(s.network_polling_interval)),
                ),
                ("QsPollingInterval", s.qs_polling_interval.map(micros)),
                (
                    "MaxConfiguredPackages",
                    Some(Value::Uint32(s.max_configured_packages)),
                ),
                ("ConfigGeneration", Some(Value::Uint64(s.generation))),
                ("ClusterCoordinator", coordinator.clone().map(string)),
            ],
        )?;
        let cluster = self.add(cluster);

        let service = self.instance(
            "HP_SGClusteringService",
            vec![
                ("SystemCreationClassName", Some(string("HP_SGCluster"))),
                ("SystemName", Some(string(&cluster_name))),
                ("CreationClassName", Some(string("HP_SGClusteringService"))),
                ("Name", Some(string("cmcld"))),
                ("ElementName", Some(string("cmcld"))),
                ("Started", Some(Value::Boolean(s.status.as_str() == "up"))),
                ("EnabledState", Some(Value::Uint16(enabled))),
                ("OperationalStatus", Some(uint16s(operational))),
                ("CoordinatorNode", coordinator.map(string)),
                ("ConfigGeneration", Some(Value::Uint64(s.generation))),
            ],
        )?;
        let service = self.add(service);
        let hosted = self.instance(
            "HP_SGHostedClusterService",
            vec![
                ("Antecedent", self.reference(&cluster)),
                ("Dependent", self.reference(&service)),
            ],
        )?;
        self.add(hosted);

        self.quorum_devices(&cluster_name)?;

        let mut node_paths = HashMap::new();
        for node in &s.nodes {
            let state = node.condition.state.as_str();
            let (node_enabled, node_operational, state_of_node): (u16, &[u16], u16) =
                match (node.condition.status.as_str(), state) {
                    ("up", "running") => (2, &[2], 4),
                    (_, "reforming") => (10, &[8], 2),
                    (_, "failed") => (3, &[6], 5),
                    (_, "halted" | "detached") => (3, &[10], 5),
                    _ => (0, &[0], 0),
                };
            let heartbeat_ips: Vec<String> = node
                .interfaces
                .iter()
                .flat_map(|i| i.addresses.iter())
                .filter(|(_, network)| network.is_some())
                .map(|(address, _)| address.to_string())
                .collect();
            let row = self.instance(
                "HP_SGNode",
                vec![
                    ("CreationClassName", Some(string("HP_SGNode"))),
                    ("Name", Some(string(&node.name))),
                    ("ElementName", Some(string(&node.name))),
                    ("NameFormat", Some(string("IP"))),
                    ("NodeStatus", Some(string(node.condition.status.as_str()))),
                    ("NodeState", Some(string(state))),
                    ("Summary", Some(string(node.summary.as_str()))),
                    ("NodeId", Some(Value::Uint32(node.id.0 + 1))),
                    (
                        "IsClusterCoordinator",
                        Some(Value::Boolean(s.coordinator == Some(node.id))),
                    ),
                    ("EnabledState", Some(Value::Uint16(node_enabled))),
                    ("OperationalStatus", Some(uint16s(node_operational))),
                    ("HeartbeatIPs", Some(strings(&heartbeat_ips))),
                    ("ClusterName", Some(string(&cluster_name))),
                ],
            )?;
            let node_path = self.add(row);
            let participating = self.instance(
                "HP_SGParticipatingCS",
                vec![
                    ("Antecedent", self.reference(&node_path)),
                    ("Dependent", self.reference(&cluster)),
                    ("StateOfNode", Some(Value::Uint16(state_of_node))),
                    ("RoleOfNode", Some(Value::Uint16(2))),
                ],
            )?;
            self.add(participating);
            // The host computer system as the operating system's provider names it: this
            // agent's own host (the system its object manager names too) for its node, the
            // NODE_NAME (Serviceguard's nodes are named by host name) for the others.
            let host = if node.name == self.model.observer {
                self.provider.host.clone()
            } else {
                node.name.clone()
            };
            let system = InstancePath::new(Name::new("CIM_ComputerSystem"))
                .with_key("CreationClassName", string("CIM_ComputerSystem"))
                .with_key("Name", string(&host));
            if node.name == self.model.observer {
                // Served here, so that the association resolves both ways (Associators gives
                // what AssociatorNames names); another node's is served by its own agent.
                let own = self.instance(
                    "CIM_ComputerSystem",
                    vec![
                        ("CreationClassName", Some(string("CIM_ComputerSystem"))),
                        ("Name", Some(string(&host))),
                        ("NameFormat", Some(string("IP"))),
                        ("ElementName", Some(string(&host))),
                        (
                            "Description",
                            Some(string(format!(
                                "The host of Serviceguard node {} (HP_SGNodeIdentity)",
                                node.name
                            ))),
                        ),
                    ],
                )?;
                self.add(own);
            }
            // Another node's computer system is served on that node: its path names that host
            // (this node's is served here, and named without host as every local reference).
            let mut system_reference = self.reference(&system);
            if node.name != self.model.observer {
                if let Some(Value::Reference(reference)) = &mut system_reference {
                    if let ObjectPath::Instance(path) = reference.as_mut() {
                        path.host = Some(host.clone());
                    }
                }
            }
            let identity = self.instance(
                "HP_SGNodeIdentity",
                vec![
                    ("SystemElement", system_reference),
                    ("SameElement", self.reference(&node_path)),
                ],
            )?;
            self.add(identity);
            for interface in &node.interfaces {
                for (address, network) in &interface.addresses {
                    let role = if network.is_some() {
                        "heartbeat"
                    } else {
                        "stationary"
                    };
                    let up = node.condition.status.as_str() == "up";
                    self.endpoint(
                        &cluster,
                        ("HP_SGNode", &node.name),
                        *address,
                        role,
                        Some(&interface.name),
                        None,
                        up.then_some(node.name.as_str()),
                    )?;
                }
            }
            node_paths.insert(node.name.clone(), node_path);
        }

        let mut package_paths = HashMap::new();
        for package in &s.packages {
            let owners: Vec<&str> = package.owners.iter().map(|n| s.node_name(n)).collect();
            let state = package.condition.state.as_str();
            let (package_enabled, package_operational) = package_dmtf(state);
            let node_names: Vec<&str> = package.nodes.iter().map(|n| n.name.as_str()).collect();
            let description = if package.description.is_empty() {
                package.name.clone()
            } else {
                package.description.clone()
            };
            let row = self.instance(
                "HP_SGPackage",
                vec![
                    ("SystemCreationClassName", Some(string("HP_SGCluster"))),
                    ("SystemName", Some(string(&cluster_name))),
                    ("CreationClassName", Some(string("HP_SGPackage"))),
                    ("Name", Some(string(&package.name))),
                    ("ElementName", Some(string(description))),
                    ("PackageType", Some(string(package.kind.keyword()))),
                    (
                        "PackageStatus",
                        Some(string(package.condition.status.as_str())),
                    ),
                    ("PackageState", Some(string(state))),
                    ("Summary", Some(string(package.summary.as_str()))),
                    ("AutoRun", Some(Value::Boolean(package.auto_run))),
                    // One node for a failover package; a multi-node package runs on several
                    // at once, so it has no one current node: CurrentNodes lists them.
                    (
                        "CurrentNode",
                        match owners.as_slice() {
                            [one] if package.kind.keyword() == "failover" => Some(string(*one)),
                            _ => None,
                        },
                    ),
                    ("CurrentNodes", Some(strings(&owners))),
                    ("NodeNames", Some(strings(&node_names))),
                    (
                        "FailoverPolicy",
                        Some(string(package.failover_policy.keyword())),
                    ),
                    (
                        "FailbackPolicy",
                        Some(string(package.failback_policy.keyword())),
                    ),
                    ("Priority", package.priority.map(Value::Uint32)),
                    (
                        "NodeFailFastEnabled",
                        Some(Value::Boolean(package.node_fail_fast)),
                    ),
                    ("RunScriptTimeout", package.run_script_timeout.map(seconds)),
                    (
                        "HaltScriptTimeout",
                        package.halt_script_timeout.map(seconds),
                    ),
                    (
                        "LastHaltFailed",
                        Some(Value::Boolean(state == "halt_aborted")),
                    ),
                    ("EnabledState", Some(Value::Uint16(package_enabled))),
                    (
                        "OtherEnabledState",
                        (package_enabled == 1).then(|| string("Partially Down (halt aborted)")),
                    ),
                    (
                        "RequestedState",
                        Some(Value::Uint16(self.provider.requested_state(&package.name))),
                    ),
                    ("OperationalStatus", Some(uint16s(package_operational))),
                    ("Started", Some(Value::Boolean(state == "running"))),
                ],
            )?;
            let package_path = self.add(row);
            let hosted = self.instance(
                "HP_SGClusterPackage",
                vec![
                    ("Antecedent", self.reference(&cluster)),
                    ("Dependent", self.reference(&package_path)),
                ],
            )?;
            self.add(hosted);
            for (address, _subnet) in &package.ip_addresses {
                self.endpoint(
                    &cluster,
                    ("HP_SGCluster", &cluster_name),
                    *address,
                    "relocatable",
                    None,
                    Some(&package.name),
                    owners.first().copied(),
                )?;
            }
            for row in &package.nodes {
                if let Some(node_path) = node_paths.get(&row.name) {
                    let link = self.instance(
                        "HP_SGPackageNode",
                        vec![
                            ("Antecedent", self.reference(node_path)),
                            ("Dependent", self.reference(&package_path)),
                            (
                                "Order",
                                Some(Value::Uint16(u16::try_from(row.order).unwrap_or(u16::MAX))),
                            ),
                            (
                                "NodeType",
                                Some(string(if row.order == 1 {
                                    "Primary"
                                } else {
                                    "Alternate"
                                })),
                            ),
                            ("SwitchingEnabled", Some(Value::Boolean(row.switching))),
                            ("IsCurrent", Some(Value::Boolean(row.current))),
                        ],
                    )?;
                    self.add(link);
                }
            }
            // The services exist while the package is configured: a failover package's once
            // (on the node it runs on, or its primary node while it runs nowhere, down), a
            // multi-node package's on each of its nodes.
            for row in package.script_rows() {
                for service in &row.services {
                    // A failover package's service is one, wherever it runs; a multi-node
                    // package has one per node.
                    let name = if package.kind.keyword() == "failover" {
                        format!("{}:{}", package.name, service.name)
                    } else {
                        format!("{}:{}:{}", package.name, service.name, row.name)
                    };
                    let status = service.condition.status.as_str();
                    // Down where the package runs is an error; where it does not run, the
                    // service is only stopped, as the package is.
                    let (service_enabled, service_operational): (u16, &[u16]) = match status {
                        "up" => (2, &[2]),
                        "down" if row.current => (3, &[6]),
                        "down" => (3, &[10]),
                        _ => (0, &[0]),
                    };
                    let part = self.instance(
                        "HP_SGPackageService",
                        vec![
                            ("SystemCreationClassName", Some(string("HP_SGCluster"))),
                            ("SystemName", Some(string(&cluster_name))),
                            ("CreationClassName", Some(string("HP_SGPackageService"))),
                            ("Name", Some(string(name))),
                            ("ElementName", Some(string(&service.name))),
                            ("PackageName", Some(string(&package.name))),
                            ("ServiceStatus", Some(string(status))),
                            ("Restarts", Some(Value::Uint32(service.condition.restarts))),
                            ("MaxRestarts", service.max_restarts.map(Value::Uint32)),
                            ("FailFastEnabled", Some(Value::Boolean(service.fail_fast))),
                            (
                                "HaltTimeout",
                                Some(Value::Uint32(
                                    u32::try_from(service.halt_timeout.as_secs())
                                        .unwrap_or(u32::MAX),
                                )),
                            ),
                            (
                                "NodeName",
                                (row.current || package.kind.keyword() != "failover")
                                    .then(|| string(&row.name)),
                            ),
                            // Known on the node where it runs (this agent's daemon started it).
                            (
                                "PID",
                                (row.name == self.model.observer)
                                    .then(|| self.service_pids.get(&package.name))
                                    .flatten()
                                    .and_then(|pids| pids.get(&service.name))
                                    .map(|pid| Value::Uint32(*pid)),
                            ),
                            ("Started", Some(Value::Boolean(status == "up"))),
                            ("EnabledState", Some(Value::Uint16(service_enabled))),
                            ("OperationalStatus", Some(uint16s(service_operational))),
                        ],
                    )?;
                    let part = self.add(part);
                    let component = self.instance(
                        "HP_SGPackageServiceComponent",
                        vec![
                            ("GroupComponent", self.reference(&package_path)),
                            ("PartComponent", self.reference(&part)),
                        ],
                    )?;
                    self.add(component);
                }
            }
            package_paths.insert(package.name.clone(), package_path);
        }

        // Dependencies, once every package has its path.
        for package in &s.packages {
            for dependency in &package.dependencies {
                let (Some(dependent), Some(antecedent)) = (
                    package_paths.get(&package.name),
                    package_paths.get(&dependency.name),
                ) else {
                    continue;
                };
                let condition = dependency.condition.keyword();
                let link = self.instance(
                    "HP_SGPackageDependency",
                    vec![
                        ("Antecedent", self.reference(antecedent)),
                        ("Dependent", self.reference(dependent)),
                        (
                            "TypeOfDependency",
                            Some(Value::Uint16(if condition == "down" { 4 } else { 3 })),
                        ),
                        (
                            "DependencyName",
                            Some(string(if dependency.label.is_empty() {
                                &dependency.name
                            } else {
                                &dependency.label
                            })),
                        ),
                        ("Location", Some(string(dependency.location.keyword()))),
                        ("Satisfied", Some(Value::Boolean(dependency.satisfied))),
                    ],
                )?;
                self.add(link);
            }
        }

        // Generic resources: one per resource and node, with the packages that use it.
        let mut resources: Vec<ResourceEntry> = Vec::new();
        for package in &s.packages {
            for row in &package.nodes {
                for resource in &row.resources {
                    match resources
                        .iter_mut()
                        .find(|r| r.name == resource.name && r.node == row.name)
                    {
                        Some(entry) => {
                            entry.packages.push(package.name.clone());
                            entry
                                .criteria
                                .push((package.name.clone(), resource.up_criteria.clone()));
                        }
                        None => resources.push(ResourceEntry {
                            name: resource.name.clone(),
                            node: row.name.clone(),
                            before: resource.before_package_start,
                            status: resource.status.as_str(),
                            value: resource.value,
                            packages: vec![package.name.clone()],
                            criteria: vec![(package.name.clone(), resource.up_criteria.clone())],
                        }),
                    }
                }
            }
        }
        for ResourceEntry {
            name,
            node,
            before,
            status,
            value,
            packages,
            criteria,
        } in resources
        {
            let up_criteria = up_criteria(&criteria);
            let (resource_enabled, resource_operational): (u16, &[u16]) = match status {
                "up" => (2, &[2]),
                "down" => (3, &[6]),
                _ => (0, &[0]),
            };
            let row = self.instance(
                "HP_SGGenericResource",
                vec![
                    (
                        "InstanceID",
                        Some(string(generic_resource_id(&cluster_name, &name, &node))),
                    ),
                    ("ElementName", Some(string(&name))),
                    ("Name", Some(string(&name))),
                    ("NodeName", Some(string(&node))),
                    (
                        "EvaluationType",
                        Some(string(if before {
                            "before_package_start"
                        } else {
                            "during_package_start"
                        })),
                    ),
                    ("UpCriteria", up_criteria.map(string)),
                    ("ResourceStatus", Some(string(status))),
                    (
                        "ResourceValue",
                        // 0 is no value (1 to 2147483647 are): an extended resource not set yet.
                        value
                            .filter(|v| *v > 0)
                            .map(|v| Value::Uint32(u32::try_from(v).unwrap_or(u32::MAX))),
                    ),
                    ("PackageNames", Some(strings(&packages))),
                    ("EnabledState", Some(Value::Uint16(resource_enabled))),
                    ("OperationalStatus", Some(uint16s(resource_operational))),
                ],
            )?;
            self.add(row);
        }
        Ok(())
    }

    /// HP_SGQuorumDevice: the cluster lock as each node sees it (the observer's own view,
    /// the others' as their heartbeats last told it).
    fn quorum_devices(&mut self, cluster_name: &str) -> Result<(), OperationError> {
        let s = self.snapshot;
        for node in &s.nodes {
            let Some(lock) = &node.lock else {
                continue;
            };
            let (kind, name, addresses, state) = match &s.lock {
                LockRow::None => return Ok(()),
                LockRow::QuorumServer { host, .. } => (
                    "quorum_server",
                    host.clone(),
                    vec![host.clone()],
                    Some(cimguard_cluster::status::quorum_server_state(
                        lock.status,
                        lock.refusal,
                    )),
                ),
                LockRow::LockLun { .. } => (
                    "lock_lun",
                    cimguard_cluster::status::lun_text(lock.device.as_deref()),
                    Vec::new(),
                    None,
                ),
            };
            self.quorum_device(
                cluster_name,
                &node.name,
                (kind, &name, &addresses),
                lock.status.as_str(),
                state,
                lock.refusal.is_some(),
            )?;
        }
        Ok(())
    }

    /// One HP_SGQuorumDevice: the lock of `kind` named `name` as node `node` sees it.
    fn quorum_device(
        &mut self,
        cluster_name: &str,
        node: &str,
        (kind, name, addresses): (&str, &str, &[String]),
        status: &str,
        state: Option<&str>,
        refused: bool,
    ) -> Result<(), OperationError> {
        // A quorum server that refuses this node answers (up) but is no tie-breaker for it.
        let (device_enabled, device_operational): (u16, &[u16]) = match status {
            "up" if refused => (2, &[6]),
            "up" => (2, &[2]),
            "down" => (3, &[6]),
            _ => (0, &[0]),
        };
        let row = self.instance(
            "HP_SGQuorumDevice",
            vec![
                (
                    "InstanceID",
                    Some(string(quorum_device_id(cluster_name, node))),
                ),
                ("Name", Some(string(name))),
                ("ElementName", Some(string(name))),
                ("DeviceType", Some(string(kind))),
                ("NodeName", Some(string(node))),
                ("Addresses", Some(strings(addresses))),
                ("DeviceStatus", Some(string(status))),
                ("DeviceState", state.map(string)),
                ("EnabledState", Some(Value::Uint16(device_enabled))),
                ("OperationalStatus", Some(uint16s(device_operational))),
            ],
        )?;
        self.add(row);
        Ok(())
    }

    /// An IP endpoint of `system` (class, name) and its HP_SGClusterIPProtocolEndpoint.
    #[allow(clippy::too_many_arguments)]
    fn endpoint(
        &mut self,
        cluster: &InstancePath,
        system: (&str, &str),
        address: IpAddr,
        role: &str,
        interface: Option<&str>,
        package: Option<&str>,
        current: Option<&str>,
    ) -> Result<(), OperationError> {
        let (v4, v6, if_type) = match address {
            IpAddr::V4(a) => (Some(string(a.to_string())), None, 4096),
            IpAddr::V6(a) => (None, Some(string(a.to_string())), 4097),
        };
        let row = self.instance(
            "HP_SGIPProtocolEndpoint",
            vec![
                ("SystemCreationClassName", Some(string(system.0))),
                ("SystemName", Some(string(system.1))),
                ("CreationClassName", Some(string("HP_SGIPProtocolEndpoint"))),
                ("Name", Some(string(endpoint_name(address)))),
                ("ElementName", Some(string(address.to_string()))),
                ("Address", Some(string(address.to_string()))),
                ("IPv4Address", v4),
                ("IPv6Address", v6),
                ("ProtocolIFType", Some(Value::Uint16(if_type))),
                ("AddressRole", Some(string(role))),
                ("InterfaceName", interface.map(string)),
                ("PackageName", package.map(string)),
                ("CurrentNode", current.map(string)),
                (
                    "EnabledState",
                    Some(Value::Uint16(if current.is_some() { 2 } else { 3 })),
                ),
            ],
        )?;
        let endpoint = self.add(row);
        let link = self.instance(
            "HP_SGClusterIPProtocolEndpoint",
            vec![
                ("Antecedent", self.reference(cluster)),
                ("Dependent", self.reference(&endpoint)),
            ],
        )?;
        self.add(link);
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cimguard_cluster::core::{NodeId, NodeSet};
    use cimguard_cluster::status::{NodeState, Summary};

    #[test]
    fn an_addition_in_effect_names_the_nodes_that_did_not_take_it() {
        let out = |output: &MethodOutput, name: &str| {
            output
                .out_params
                .iter()
                .find(|(n, _)| n.as_str() == name)
                .map(|(_, v)| v.clone())
        };
        let partial = in_effect_as(5, Some("n4 did not answer".into()), Some(vec!["n4".into()]));
        assert_eq!(partial.return_value, Some(Value::Uint32(0)));
        assert_eq!(out(&partial, "Generation"), Some(Some(Value::Uint64(5))));
        assert_eq!(
            out(&partial, "Message"),
            Some(Some(string("n4 did not answer")))
        );
        assert_eq!(
            out(&partial, "NodesNotConfigured"),
            Some(Some(strings(&["n4"])))
        );
        // Every node took it: null; a cmdeleteconf's outcome has no such parameter.
        let whole = in_effect_as(5, None, Some(Vec::new()));
        assert_eq!(out(&whole, "NodesNotConfigured"), Some(None));
        assert_eq!(out(&whole, "Message"), Some(None));
        assert_eq!(
            out(&in_effect_as(5, None, None), "NodesNotConfigured"),
            None
        );
    }

    /// A daemon that does not answer.
    struct Silent;

    impl ClusterSource for Silent {
        fn status(&self) -> Result<DaemonStatus, String> {
            Err("the cluster daemon does not answer: connection refused".into())
        }

        fn command(&self, _request: &Request) -> Result<Reply, String> {
            Err("the cluster daemon does not answer: connection refused".into())
        }

        fn notices(&self, _after: u64, _wait: Duration) -> Result<Notices, String> {
            Err("the cluster daemon does not answer: connection refused".into())
        }
    }

    /// A daemon whose status is a simulated cluster's, as node n1 sees it: dbpkg (service
    /// db_monitor) runs on n1. It takes every command, and keeps them.
    struct Simulated {
        status: DaemonStatus,
        commands: Mutex<Vec<Request>>,
        /// What the daemon answers to commands (None: Done).
        reply: Mutex<Option<Reply>>,
        /// The cluster's shared map (the copy's name counts its changes), which Share
        /// commands change.
        shared: Mutex<((u64, u64), BTreeMap<String, String>)>,
    }

    impl Simulated {
        fn new() -> Simulated {
            Simulated::with(&[])
        }

        /// The same with `more` packages beside dbpkg.
        fn with(more: &[&str]) -> Simulated {
            let sim = formed(more);
            Simulated::of(sim.status(NodeId(0)).expect("n1's status"))
        }

        /// A daemon whose status is `cluster`.
        fn of(cluster: Snapshot) -> Simulated {
            Simulated {
                status: DaemonStatus {
                    node: "n1".into(),
                    incarnation: 1,
                    pid: 1,
                    cluster,
                    safety_timer: "simulated".into(),
                    memory_locked: Ok(()),
                    realtime: Ok(()),
                    datagrams_rejected: BTreeMap::new(),
                    messages_undecodable: 0,
                    messages_too_large: 0,
                    control: Default::default(),
                    failover_bound_seconds: 0.0,
                    monitored_subnets: BTreeMap::new(),
                    access: AccessView::default(),
                    service_pids: BTreeMap::new(),
                },
                commands: Mutex::new(Vec::new()),
                reply: Mutex::new(None),
                shared: Mutex::new(((1, 0), BTreeMap::new())),
            }
        }

        fn commands(&self) -> Vec<Request> {
            self.commands.lock().expect("not poisoned").clone()
        }
    }

    /// A simulated 3-node cluster, formed, with dbpkg (service db_monitor) running on n1
    /// and `more` packages (the alerts' tests use it too).
    pub(crate) fn formed(more: &[&str]) -> cimguard_cluster::sim::Simulation {
        use cimguard_cluster::sim::{Options, Simulation};
        let mut options = Options::new(3, 11);
        options.packages = vec![
            "package_name dbpkg\nnode_name n1\nnode_name n2\nnode_name n3\n\
                 service_name db_monitor\nservice_cmd \"sleep 1000\"\nservice_restart 1\n"
                .into(),
        ];
        options.packages.extend(more.iter().map(|&p| p.to_owned()));
        let mut sim = Simulation::new(options);
        sim.start_all();
        let ready = sim
            .run_until(Duration::from_secs(90), |s| {
                s.formed(NodeSet::first(3))
                    && s.running_on("dbpkg") == [NodeId(0)].into_iter().collect()
            })
            .expect("the simulation runs");
        assert!(ready, "the cluster or dbpkg did not start");
        sim
    }

    impl ClusterSource for Simulated {
        fn status(&self) -> Result<DaemonStatus, String> {
            Ok(self.status.clone())
        }

        fn command(&self, request: &Request) -> Result<Reply, String> {
            self.commands
                .lock()
                .expect("not poisoned")
                .push(request.clone());
            let reply = self.reply.lock().expect("not poisoned").clone();
            if let (Request::Share { key, value }, None) = (request, &reply) {
                let mut shared = self.shared.lock().expect("not poisoned");
                shared.0 .1 += 1;
                match value {
                    Some(value) => shared.1.insert(key.clone(), value.clone()),
                    None => shared.1.remove(key),
                };
            }
            Ok(reply.unwrap_or(Reply::Done))
        }

        fn notices(&self, _after: u64, _wait: Duration) -> Result<Notices, String> {
            Err("no notices here".into())
        }

        fn shared_values(
            &self,
            unless: Option<(u64, u64)>,
        ) -> Result<Option<((u64, u64), Vec<(String, String)>)>, String> {
            let shared = self.shared.lock().expect("not poisoned");
            if unless == Some(shared.0) {
                return Ok(None);
            }
            let values = shared.1.iter().map(|(k, v)| (k.clone(), v.clone()));
            Ok(Some((shared.0, values.collect())))
        }
    }

    /// An object manager serving the provider over `source`, and dbpkg's path.
    fn serving(source: Arc<Simulated>) -> (ObjectManager, Arc<ServiceguardProvider>, InstancePath) {
        serving_waiting(source, METHOD_WAIT)
    }

    /// As [`serving`], with RequestStateChange waiting `wait` for a run or halt to end.
    fn serving_waiting(
        source: Arc<Simulated>,
        wait: Duration,
    ) -> (ObjectManager, Arc<ServiceguardProvider>, InstancePath) {
        let repository = cim_schema::shipped::repository().expect("the shipped schema");
        let mut manager = ObjectManager::new(repository, "node1");
        let provider = ServiceguardProvider::install(&mut manager, source, "test", wait)
            .expect("the provider installs");
        let context = context(Role::FullAdmin);
        let (path, _) = provider
            .enumerate(&context, &Name::new("HP_SGPackage"))
            .expect("the packages")
            .map(|found| found.expect("a package"))
            .find(|(path, _)| path.key("Name") == Some(&string("dbpkg")))
            .expect("dbpkg");
        (manager, provider, path)
    }

    fn principal(role: Role) -> crate::auth::Principal {
        crate::auth::Principal {
            name: "root".into(),
            role,
            method: crate::auth::AuthMethod::Basic,
        }
    }

    fn context(role: Role) -> RequestContext {
        RequestContext::new(&principal(role), Arc::from(CIMV2))
    }

    /// A parameter as a client sends it: with PARAMTYPE (typed, as pywbem does) or without
    /// (its text only, as sblim wbemcli may).
    fn typed(name: &str, value: Value) -> cim_schema::xml::ParamValue {
        cim_schema::xml::ParamValue {
            name: Name::new(name),
            param_type: value.cim_type(),
            embedded_object: None,
            value: cim_schema::xml::Data::Value(value),
        }
    }

    fn untyped(name: &str, text: &str) -> cim_schema::xml::ParamValue {
        cim_schema::xml::ParamValue {
            name: Name::new(name),
            param_type: None,
            embedded_object: None,
            value: cim_schema::xml::Data::Untyped(cim_schema::xml::Untyped::Scalar(text.into())),
        }
    }

    /// Invokes `method` on `target` with `params` as a CIM-XML request does: the CIM error, or
    /// the return value and Message.
    fn call(
        manager: &ObjectManager,
        target: &InstancePath,
        method: &str,
        params: Vec<cim_schema::xml::ParamValue>,
    ) -> Result<(Option<Value>, Option<String>), cim_schema::xml::CimError> {
        let mut target = target.clone();
        target.namespace = Some(CIMV2.into());
        target.host = None;
        let call = cim_schema::xml::MethodCall {
            name: Name::new(method),
            target: ObjectPath::Instance(target),
            params,
        };
        let response = crate::methods::invoke(manager, &principal(Role::FullAdmin), &call);
        response.result.map(|returned| {
            let value = returned.return_value.and_then(|r| match r.value {
                cim_schema::xml::Data::Value(value) => Some(value),
                _ => None,
            });
            let message = returned.params.into_iter().find_map(|p| match p.value {
                cim_schema::xml::Data::Value(Value::String(text)) if p.name == "Message" => {
                    Some(text)
                }
                _ => None,
            });
            (value, message)
        })
    }

    #[test]
    fn a_parameter_of_the_wrong_type_is_an_invalid_parameter_and_nothing_is_done() {
        let source = Arc::new(Simulated::new());
        let (manager, provider, dbpkg) = serving(source.clone());
        let refused = [
            (
                "RequestStateChange",
                vec![typed("RequestedState", string("2"))],
            ),
            (
                "RequestStateChange",
                vec![typed("RequestedState", Value::Uint32(2))],
            ),
            (
                "RequestStateChange",
                vec![
                    typed("RequestedState", Value::Uint16(3)),
                    typed("TimeoutPeriod", string("abc")),
                ],
            ),
            // A timestamp is no period.
            (
                "RequestStateChange",
                vec![
                    typed("RequestedState", Value::Uint16(3)),
                    typed(
                        "TimeoutPeriod",
                        Value::Datetime(
                            Datetime::parse("20240101000000.000000+000").expect("a timestamp"),
                        ),
                    ),
                ],
            ),
            (
                "RequestStateChange",
                vec![
                    typed("RequestedState", Value::Uint16(3)),
                    typed("NodeName", Value::Uint32(3)),
                ],
            ),
            // Untyped text that is not of the declared type.
            ("RequestStateChange", vec![untyped("RequestedState", "two")]),
            (
                "RequestStateChange",
                vec![
                    untyped("RequestedState", "3"),
                    untyped("TimeoutPeriod", "abc"),
                ],
            ),
            ("SetAutoRun", vec![typed("Enabled", string("yes"))]),
            ("SetAutoRun", vec![typed("Enabled", Value::Uint16(1))]),
            ("SetMaintenance", vec![typed("Enabled", string("true"))]),
            (
                "ResetRestarts",
                vec![typed("ServiceName", Value::Uint32(0))],
            ),
            (
                "SetNodeSwitching",
                vec![
                    typed("NodeName", string("n2")),
                    typed("Enabled", string("false")),
                ],
            ),
        ];
        for (method, params) in refused {
            let said = format!("{method} {params:?}");
            match call(&manager, &dbpkg, method, params) {
                Err(error) => assert_eq!(error.code, 4, "{said}: {error:?}"),
                Ok(answer) => panic!("{said} answered {answer:?}"),
            }
        }
        assert_eq!(source.commands(), [], "a refused call changed nothing");
        // The provider, called with parameters no request typed, reads them the same way.
        let provider_said = |method: &str, params: Vec<(&str, Value)>| {
            let method = manager
                .class(CIMV2, "HP_SGPackage")
                .expect("HP_SGPackage")
                .method(method)
                .expect("the method")
                .clone();
            let params = params
                .into_iter()
                .map(|(name, value)| (Name::new(name), Some(value)))
                .collect();
            provider.invoke(
                &context(Role::FullAdmin),
                &ObjectPath::Instance(dbpkg.clone()),
                &method,
                params,
            )
        };
        for params in [
            vec![("RequestedState", string("2"))],
            vec![("RequestedState", Value::Uint32(2))],
            vec![
                ("RequestedState", Value::Uint16(3)),
                ("TimeoutPeriod", string("abc")),
            ],
        ] {
            let said = format!("{params:?}");
            match provider_said("RequestStateChange", params) {
                Err(OperationError::InvalidParameter(why)) => {
                    assert!(why.contains("must be a"), "{said}: {why}");
                }
                other => panic!("{said}: {other:?}"),
            }
        }
        assert_eq!(source.commands(), [], "a refused call changed nothing");

        // Untyped values whose text is of the declared type are taken: the interval is read
        // (not 0: 4098), and so is the boolean (the command is sent).
        assert_eq!(
            call(
                &manager,
                &dbpkg,
                "RequestStateChange",
                vec![
                    untyped("RequestedState", "3"),
                    untyped("TimeoutPeriod", "00000000000030.000000:000"),
                ],
            )
            .expect("an answer")
            .0,
            Some(Value::Uint32(4098))
        );
        assert_eq!(source.commands(), []);
        assert_eq!(
            call(
                &manager,
                &dbpkg,
                "SetAutoRun",
                vec![untyped("Enabled", "false")]
            )
            .expect("an answer"),
            (Some(Value::Uint32(0)), None)
        );
        assert_eq!(
            source.commands(),
            [Request::DisablePackage {
                package: "dbpkg".into(),
                node: None
            }]
        );
    }

    #[test]
    fn reset_restarts_of_a_service_the_package_does_not_have_is_an_invalid_parameter() {
        let source = Arc::new(Simulated::new());
        let (manager, _provider, dbpkg) = serving(source.clone());
        assert_eq!(
            call(
                &manager,
                &dbpkg,
                "ResetRestarts",
                vec![typed("ServiceName", string("no_such_service"))]
            )
            .expect("an answer"),
            (
                Some(Value::Uint32(5)),
                Some("no_such_service is not a service of package dbpkg".into())
            )
        );
        assert_eq!(source.commands(), [], "nothing was sent to the daemon");
        assert_eq!(
            call(
                &manager,
                &dbpkg,
                "ResetRestarts",
                vec![typed("ServiceName", string("db_monitor"))]
            )
            .expect("an answer"),
            (Some(Value::Uint32(0)), None)
        );
        assert_eq!(
            source.commands(),
            [Request::ResetRestarts {
                package: "dbpkg".into(),
                service: "db_monitor".into()
            }]
        );
    }

    /// A switching change carried out that not every member confirmed holding returns 0
    /// (it was made) with the warning in Message, and the refusal of one is still 4.
    #[test]
    fn a_change_carried_out_with_a_warning_returns_0_and_the_warning() {
        let source = Arc::new(Simulated::new());
        // No wait for a halt's end: it does not end here (the status stays as it is).
        let (manager, _provider, dbpkg) = serving_waiting(source.clone(), Duration::ZERO);
        let warning = "the change was made on the package coordinator, but n3 had not \
                       confirmed holding it when the wait ended";
        *source.reply.lock().expect("not poisoned") = Some(Reply::Warned(warning.into()));
        for (method, params) in [
            ("SetAutoRun", vec![typed("Enabled", Value::Boolean(false))]),
            (
                "SetNodeSwitching",
                vec![
                    typed("NodeName", string("n2")),
                    typed("Enabled", Value::Boolean(false)),
                ],
            ),
        ] {
            assert_eq!(
                call(&manager, &dbpkg, method, params).expect("an answer"),
                (Some(Value::Uint32(0)), Some(warning.into())),
                "{method}"
            );
        }
        // A halt that goes on (4096, its job) keeps the warning of the command too.
        assert_eq!(
            call(
                &manager,
                &dbpkg,
                "RequestStateChange",
                vec![typed("RequestedState", Value::Uint16(3))]
            )
            .expect("an answer"),
            (Some(Value::Uint32(4096)), Some(warning.into()))
        );
        *source.reply.lock().expect("not poisoned") = Some(Reply::Refused("no".into()));
        assert_eq!(
            call(
                &manager,
                &dbpkg,
                "SetAutoRun",
                vec![typed("Enabled", Value::Boolean(true))]
            )
            .expect("an answer"),
            (Some(Value::Uint32(4)), Some("no".into()))
        );
    }

    /// RequestedState is the cluster's shared map's; the states kept there for packages no
    /// longer configured are deleted from it, and other keys are left alone.
    #[test]
    fn requested_states_of_packages_no_longer_configured_leave_the_shared_map() {
        let source = Arc::new(Simulated::new());
        {
            let mut shared = source.shared.lock().expect("not poisoned");
            shared.0 = (1, 1);
            for (key, value) in [
                ("requested:dbpkg", "3"),
                ("requested:oldpkg", "2"),
                ("other", "x"),
            ] {
                shared.1.insert(key.into(), value.into());
            }
        }
        let (_manager, provider, _dbpkg) = serving(source.clone());
        let requested = |provider: &ServiceguardProvider, package: &str| {
            provider
                .settled(true)
                .expect("the instances")
                .instances
                .into_iter()
                .find(|(path, _)| {
                    path.class_name == "HP_SGPackage" && path.key("Name") == Some(&string(package))
                })
                .and_then(|(_, instance)| instance.property("RequestedState")?.value.clone())
        };
        assert_eq!(requested(&provider, "dbpkg"), Some(Value::Uint16(3)));
        let deadline = Instant::now() + Duration::from_secs(10);
        let deleted = loop {
            let keys: Vec<String> = {
                let shared = source.shared.lock().expect("not poisoned");
                shared.1.keys().cloned().collect()
            };
            if !keys.contains(&"requested:oldpkg".to_owned()) || Instant::now() > deadline {
                break keys;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(deleted, ["other", "requested:dbpkg"]);
        assert_eq!(
            source.commands(),
            [Request::Share {
                key: "requested:oldpkg".into(),
                value: None
            }]
        );
        // The map changed; read again, it still gives dbpkg's.
        provider.invalidate();
        assert_eq!(requested(&provider, "dbpkg"), Some(Value::Uint16(3)));
    }

    #[test]
    fn halt_node_through_a_daemon_that_does_not_answer_says_so() {
        let repository = cim_schema::shipped::repository().expect("the shipped schema");
        let mut manager = ObjectManager::new(repository, "node1");
        let provider =
            ServiceguardProvider::install(&mut manager, Arc::new(Silent), "test", METHOD_WAIT)
                .expect("the provider installs");
        let params = [(Name::new("NodeName"), Some(string("n2")))];
        match provider.cluster_method("HaltNode", &params) {
            Err(OperationError::Failed(why)) => {
                assert!(why.contains("does not answer"), "{why}");
            }
            Err(other) => panic!("{other:?}"),
            Ok(output) => panic!("{:?}", output.out_params),
        }
    }

    #[test]
    fn a_service_shows_its_fail_fast_and_halt_timeout() {
        let source = Arc::new(Simulated::with(&[
            "package_name webpkg\nnode_name n2\nauto_run no\n\
             service_name web\nservice_cmd \"sleep 1000\"\nservice_fail_fast_enabled yes\n\
             service_halt_timeout 45\n",
        ]));
        let (_, provider, _) = serving(source);
        let services: Vec<(InstancePath, Arc<Instance>)> = provider
            .enumerate(&context(Role::Monitor), &Name::new("HP_SGPackageService"))
            .expect("the services")
            .map(|found| found.expect("a service"))
            .collect();
        let of = |name: &str| {
            let (_, instance) = services
                .iter()
                .find(|(_, i)| i.value("Name") == Some(&string(name)))
                .unwrap_or_else(|| panic!("no {name}"));
            (
                instance.value("FailFastEnabled").cloned(),
                instance.value("HaltTimeout").cloned(),
            )
        };
        assert_eq!(
            of("webpkg:web"),
            (Some(Value::Boolean(true)), Some(Value::Uint32(45)))
        );
        // Defaults: no fail-fast, no wait between SIGTERM and SIGKILL.
        assert_eq!(
            of("dbpkg:db_monitor"),
            (Some(Value::Boolean(false)), Some(Value::Uint32(0)))
        );
    }

    /// HP_SGQuorumDevice: the lock LUN as every node sees it, served by any node's agent
    /// (each node's path; the others' health as their heartbeats told it).
    #[test]
    fn the_quorum_device_is_shown_as_every_node_sees_it() {
        use cimguard_cluster::core::Tiebreaker;
        use cimguard_cluster::sim::{Options, Simulation};
        let mut options = Options::new(3, 12);
        options.tiebreaker = Tiebreaker::LockLun;
        options.packages = vec![
            "package_name dbpkg\nnode_name n1\nservice_name db_monitor\n\
                                 service_cmd \"sleep 1000\"\n"
                .into(),
        ];
        let mut sim = Simulation::new(options);
        sim.start_all();
        let up = sim
            .run_until(Duration::from_secs(150), |s| {
                s.formed(NodeSet::first(3))
                    && s.status(NodeId(0)).is_some_and(|status| {
                        status
                            .nodes
                            .iter()
                            .all(|n| n.lock.as_ref().is_some_and(|l| l.status.as_str() == "up"))
                    })
            })
            .expect("the simulation runs");
        assert!(up, "the lock LUN was not seen up by every node");
        let source = Arc::new(Simulated::of(sim.status(NodeId(0)).unwrap()));
        let (_, provider, _) = serving(source);
        let mut devices: Vec<(Value, Value, Value, Value)> = provider
            .enumerate(&context(Role::Monitor), &Name::new("HP_SGQuorumDevice"))
            .expect("the devices")
            .map(|found| {
                let (_, instance) = found.expect("a device");
                let value = |name| {
                    instance
                        .value(name)
                        .cloned()
                        .unwrap_or(Value::Boolean(false))
                };
                (
                    value("NodeName"),
                    value("Name"),
                    value("DeviceStatus"),
                    value("InstanceID"),
                )
            })
            .collect();
        devices.sort_by_key(|d| format!("{:?}", d.0));
        let expected: Vec<(Value, Value, Value, Value)> = ["n1", "n2", "n3"]
            .iter()
            .map(|node| {
                (
                    string(*node),
                    string("/dev/sdlock"),
                    string("up"),
                    string(quorum_device_id("simulated", node)),
                )
            })
            .collect();
        assert_eq!(devices, expected);
    }

    #[test]
    fn a_generic_resource_shows_its_up_criteria_and_a_simple_one_none() {
        let source = Arc::new(Simulated::with(&[
            "package_name cpupkg\nnode_name n2\nnode_name n3\nauto_run no\n\
             generic_resource_name cpu_load\ngeneric_resource_up_criteria <80\n\
             generic_resource_name disk\n",
            "package_name batch\nnode_name n2\nauto_run no\n\
             generic_resource_name cpu_load\ngeneric_resource_up_criteria >=10\n",
        ]));
        let (_, provider, _) = serving(source);
        let resources: Vec<(InstancePath, Arc<Instance>)> = provider
            .enumerate(&context(Role::Monitor), &Name::new("HP_SGGenericResource"))
            .expect("the resources")
            .map(|found| found.expect("a resource"))
            .collect();
        let criteria = |name: &str, node: &str| {
            let (_, instance) = resources
                .iter()
                .find(|(_, i)| {
                    i.value("Name") == Some(&string(name))
                        && i.value("NodeName") == Some(&string(node))
                })
                .unwrap_or_else(|| panic!("no {name} on {node}"));
            instance.value("UpCriteria").cloned()
        };
        assert_eq!(criteria("cpu_load", "n3"), Some(string("<80")));
        // Two packages with criteria of their own for the same resource on n2.
        assert_eq!(
            criteria("cpu_load", "n2"),
            Some(string("batch >=10, cpupkg <80"))
        );
        assert_eq!(criteria("disk", "n2"), None);
    }

    #[test]
    fn the_computer_system_of_a_node_is_named_by_associator_names_though_not_served_here() {
        let source = Arc::new(Simulated::new());
        let (manager, provider, _) = serving(source);
        let manager = Arc::new(manager);
        let contexts = Arc::new(crate::pull::Contexts::new(Default::default()));
        let (node, _) = provider
            .enumerate(&context(Role::Monitor), &Name::new("HP_SGNode"))
            .expect("the nodes")
            .map(|found| found.expect("a node"))
            .next()
            .expect("a node");
        let run = |operation: &str, params: Vec<(&str, cim_schema::xml::Data)>| {
            let mut call = cim_schema::xml::IMethodCall {
                name: Name::new(operation),
                namespace: CIMV2.into(),
                params: vec![cim_schema::xml::IParamValue::new(
                    "ObjectName",
                    cim_schema::xml::Data::InstanceName(node.clone()),
                )],
            };
            for (name, value) in params {
                call.params
                    .push(cim_schema::xml::IParamValue::new(name, value));
            }
            match crate::operations::execute(&manager, &contexts, &principal(Role::Monitor), &call)
            {
                Ok(crate::operations::Outcome::Items(items)) => items,
                other => panic!("{operation}: {:?}", other.err()),
            }
        };
        let identity = || {
            (
                "AssocClass",
                cim_schema::xml::Data::ClassName(Name::new("HP_SGNodeIdentity")),
            )
        };
        let references = run(
            "ReferenceNames",
            vec![(
                "ResultClass",
                cim_schema::xml::Data::ClassName(Name::new("HP_SGNodeIdentity")),
            )],
        );
        assert_eq!(references.len(), 1, "{references:?}");
        // The association names the agent's own host, which it serves: AssociatorNames
        // names it, and Associators gives that very instance.
        let names = run("AssociatorNames", vec![identity()]);
        let [cim_schema::xml::Data::ObjectPath(ObjectPath::Instance(system))] = &names[..] else {
            panic!("{names:?}")
        };
        assert_eq!(system.class_name.as_str(), "CIM_ComputerSystem");
        assert!(
            system.namespace.is_some() && system.host.is_some(),
            "{system:?}"
        );
        let objects = run("Associators", vec![identity()]);
        let [cim_schema::xml::Data::ObjectWithPath(ObjectPath::Instance(path), _)] = &objects[..]
        else {
            panic!("{objects:?}")
        };
        assert_eq!(path.class_name.as_str(), "CIM_ComputerSystem");
        assert_eq!(path.keybindings, system.keybindings);
    }

    /// The HP_SGNode and HP_SGCluster instances of what `provider` compares, by path.
    fn nodes_and_cluster(provider: &ServiceguardProvider) -> BTreeMap<String, Arc<Instance>> {
        provider
            .settled(true)
            .expect("the instances")
            .instances
            .into_iter()
            .filter(|(path, _)| ["HP_SGNode", "HP_SGCluster"].contains(&path.class_name.as_str()))
            .map(|(path, instance)| (crate::provider::path_text(&path), instance))
            .collect()
    }

    #[test]
    fn the_lifecycle_compares_a_model_without_the_reformation_in_progress() {
        let mut sim = formed(&[]);
        let settled = sim
            .run_until(Duration::from_secs(60), |s| {
                s.status(NodeId(0))
                    .is_some_and(|status| status.summary == Summary::Ok)
            })
            .expect("the simulation runs");
        assert!(settled, "dbpkg never came up");
        let (_, provider, _) = serving(Arc::new(Simulated::of(sim.status(NodeId(0)).unwrap())));
        let before = nodes_and_cluster(&provider);
        // n3 leaves: n1, the coordinator, re-forms the cluster without it.
        sim.halt_node(NodeId(2), false).expect("n3 halts");
        let own_state = |s: &cimguard_cluster::sim::Simulation| {
            s.status(NodeId(0))
                .map(|status| status.nodes[0].condition.state)
        };
        let reforming = sim
            .run_until(Duration::from_secs(60), |s| {
                own_state(s) == Some(NodeState::Reforming)
            })
            .expect("the simulation runs");
        assert!(reforming, "n1 never re-formed");
        let (_, provider, _) = serving(Arc::new(Simulated::of(sim.status(NodeId(0)).unwrap())));
        // Served as it is: the nodes reforming.
        let n1 = provider
            .enumerate(&context(Role::Monitor), &Name::new("HP_SGNode"))
            .expect("the nodes")
            .map(|found| found.expect("a node").1)
            .find(|node| node.value("Name") == Some(&string("n1")))
            .expect("n1");
        assert_eq!(n1.value("NodeState"), Some(&string("reforming")));
        // Compared as it ran before; what the re-formation shows otherwise is named, so
        // that the looker keeps what it last saw of it (a cluster it saw unknown, say, does
        // not come back up for the time of the re-formation).
        assert_eq!(nodes_and_cluster(&provider), before);
        let passing = provider.settled(true).expect("the instances").passing;
        for key in before.keys() {
            assert!(passing.contains(key), "{key} not in {passing:?}");
        }
        assert!(
            !passing.iter().any(|key| key.starts_with("HP_SGPackage.")),
            "{passing:?}"
        );
        // Once the new membership is installed, its change shows: n3 halted, the cluster
        // degraded, nothing else.
        let formed = sim
            .run_until(Duration::from_secs(60), |s| {
                own_state(s) == Some(NodeState::Running)
                    && s.members(NodeId(0)) == NodeSet::first(2)
            })
            .expect("the simulation runs");
        assert!(formed, "n1 and n2 never formed without n3");
        let (_, provider, _) = serving(Arc::new(Simulated::of(sim.status(NodeId(0)).unwrap())));
        let after = nodes_and_cluster(&provider);
        let changed: BTreeMap<&String, &Arc<Instance>> = after
            .iter()
            .filter(|(path, instance)| before.get(*path) != Some(*instance))
            .collect();
        let state = |class: &str, property: &str| {
            changed
                .iter()
                .find(|(path, _)| path.starts_with(class))
                .and_then(|(_, instance)| instance.value(property).cloned())
        };
        assert_eq!(changed.len(), 2, "{:?}", changed.keys());
        assert_eq!(
            state("HP_SGNode.Name=\"n3\"", "NodeState"),
            Some(string("halted"))
        );
        assert_eq!(state("HP_SGCluster.", "Summary"), Some(string("degraded")));
    }
}
