//! The indication service: the cluster's events become CIM indications for the subscriptions
//! of `root/interop`, the outbox keeps them, delivery sends them.
//!
//! - A reader thread follows the node daemon's numbered notices (the event catalogue,
//!   serviceguard.md 1.6(b)) behind a cursor. Each notice becomes an HP_SGAlertIndication
//!   ([`crate::alerts`]); every enabled subscription whose filter takes it gets a copy,
//!   projected to the filter's select list, in its destination's queue. The queued copies
//!   and the cursor are committed in one transaction: after a crash the reader goes on from
//!   exactly where the outbox stopped, so nothing is lost or queued twice.
//! - A second thread looks at the cluster's model as soon as the daemon shows a change of
//!   the membership or the packages (`Request::StatusChange`), and at least every
//!   [`LIFECYCLE_EVERY`], and queues the lifecycle indications of what changed; on its own
//!   thread, so that a notice no longer waits for a look (a model built and compared).
//! - A manager task runs one [`Delivery`] per listener destination of the store, and drops
//!   the queue of a destination that was deleted.
//!
//! Only what this node's daemon tells is sent from here. Notices about the whole cluster are
//! told by one node only (see `cimguard_cluster::status`), so a listener subscribed on every
//! node hears each once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cim_schema::model::{Class, Instance, InstancePath, Name, Property, Value};
use cim_schema::query::{QueryLanguage, Schema, SelectQuery};
use cim_schema::xml::{encode, Body, ExportRequest, Message};
use cimguard_certs::ClientTlsSettings;
use cimguard_cluster::core::Epoch;
use cimguard_cluster::runtime::daemon::NumberedNotice;
use cimguard_cluster::status::{ClusterStatus, NodeState, Snapshot};
use cimguard_indications::{Batch, Delivery, Outbox, Outcome, Policy, Stats, Target};
use tokio::sync::watch;

use crate::cimom::ObjectManager;
use crate::interop::IndicationCounters;
use crate::serviceguard::{ClusterSource, ServiceguardProvider, CIMV2};
use crate::subscriptions::{Active, SubscriptionStore};

/// The alert class every notice becomes.
pub const ALERT_CLASS: &str = "HP_SGAlertIndication";

/// The outbox mark that holds the reader's cursor: the daemon's life and the last notice
/// number queued (8 bytes little-endian each).
const CURSOR_MARK: &str = "notices";

/// How long the reader waits before asking again a daemon that answered at once with no
/// notice (the daemon normally holds the request until it tells one).
pub const POLL: Duration = Duration::from_millis(50);

/// How long the reader waits before asking again a daemon that does not answer.
const RETRY: Duration = Duration::from_millis(500);

/// How often the manager compares the running deliveries with the store's destinations.
const MANAGE_EVERY: Duration = Duration::from_millis(200);

/// How long the manager waits before applying OnFatalErrorPolicy again after the store
/// refused the change.
const FATAL_RETRY: Duration = Duration::from_secs(30);

/// What the indication service is built from.
#[derive(Clone, Debug)]
pub struct IndicationSettings {
    /// The outbox database.
    pub outbox: PathBuf,
    /// The most indications a destination's queue holds.
    pub capacity: u64,
    /// Retries and timeouts of delivery.
    pub policy: Policy,
    /// SubscriptionRemovalAction: what becomes of the subscriptions of a destination that
    /// failed for the whole removal interval (2 delete, 3 disable, 4 nothing).
    pub removal_action: u16,
    /// What HTTPS listeners are verified against.
    pub tls: ClientTlsSettings,
    /// Where the service counts what it does (CIMGuard_IndicationService, /metrics).
    pub counters: Arc<IndicationCounters>,
}

/// The running indication service; [`stop`](Self::stop) ends it.
pub struct IndicationService {
    outbox: Outbox,
    counters: Arc<IndicationCounters>,
    deliveries: Deliveries,
    stop_reader: Arc<AtomicBool>,
    /// The notice reader and the lifecycle looker.
    readers: Vec<std::thread::JoinHandle<()>>,
    stop_manager: watch::Sender<bool>,
    manager: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for IndicationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndicationService").finish_non_exhaustive()
    }
}

impl IndicationService {
    /// Opens the outbox and starts the reader and the deliveries (on the current tokio
    /// runtime).
    pub fn start(
        manager: &ObjectManager,
        (source, serviceguard): (Arc<dyn ClusterSource>, Arc<ServiceguardProvider>),
        store: Arc<SubscriptionStore>,
        settings: &IndicationSettings,
    ) -> Result<IndicationService, String> {
        let outbox = Outbox::open(&settings.outbox, settings.capacity)
            .map_err(|e| format!("the indication outbox {}: {e}", settings.outbox.display()))?;
        let tls = cimguard_certs::client_config(&settings.tls)
            .map_err(|e| format!("the indication TLS client: {e}"))?;
        let alert_class = manager
            .class(CIMV2, ALERT_CLASS)
            .map_err(|e| format!("{ALERT_CLASS}: {e}"))?
            .clone();
        let class = |name: &str| {
            manager
                .class(CIMV2, name)
                .cloned()
                .map_err(|e| format!("{name}: {e}"))
        };
        let lifecycle = Lifecycle {
            serviceguard,
            creation: class("CIM_InstCreation")?,
            deletion: class("CIM_InstDeletion")?,
            modification: class("CIM_InstModification")?,
            previous: None,
            coordinated: false,
            uncoordinated_since: None,
            life: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_micros()),
            told: 0,
        };
        let counters = settings.counters.clone();
        let stop_reader = Arc::new(AtomicBool::new(false));
        // Built once, read by both threads.
        let ancestry = Arc::new(Ancestry::of(manager));
        let reader = |lifecycle| Reader {
            source: source.clone(),
            store: store.clone(),
            outbox: outbox.clone(),
            alert_class: alert_class.clone(),
            ancestry: ancestry.clone(),
            host: manager.host().to_owned(),
            queries: HashMap::new(),
            counters: counters.clone(),
            lifecycle,
        };
        let (notices, looker) = (reader(None), reader(Some(lifecycle)));
        let mut readers = Vec::new();
        let stop = stop_reader.clone();
        readers.push(
            std::thread::Builder::new()
                .name("indication-reader".into())
                .spawn(move || notices.run(&stop))
                .map_err(|e| format!("the indication reader: {e}"))?,
        );
        let stop = stop_reader.clone();
        let spawned = std::thread::Builder::new()
            .name("indication-look".into())
            .spawn(move || looker.run(&stop));
        match spawned {
            Ok(thread) => readers.push(thread),
            Err(e) => {
                stop_reader.store(true, Ordering::Relaxed);
                for reader in readers {
                    let _ = reader.join();
                }
                return Err(format!("the indication lifecycle looker: {e}"));
            }
        }
        let (stop_manager, stopped) = watch::channel(false);
        let deliveries = Arc::new(Mutex::new(HashMap::new()));
        let manager = tokio::spawn(manage(
            outbox.clone(),
            store,
            tls,
            settings.policy.clone(),
            settings.removal_action,
            (deliveries.clone(), counters.clone()),
            stopped,
        ));
        Ok(IndicationService {
            outbox,
            counters,
            deliveries,
            stop_reader,
            readers,
            stop_manager,
            manager: Some(manager),
        })
    }

    /// The outbox (its queues and drop counts).
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The service's counters.
    pub fn counters(&self) -> &IndicationCounters {
        &self.counters
    }

    /// Each destination's delivery counters, by destination Name.
    pub fn deliveries(&self) -> Vec<(String, Arc<Stats>)> {
        let mut all: Vec<_> = self
            .deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Stops reading and delivering; what is queued stays in the outbox.
    pub async fn stop(mut self) {
        self.stop_reader.store(true, Ordering::Relaxed);
        let _ = self.stop_manager.send(true);
        if let Some(manager) = self.manager.take() {
            let _ = manager.await;
        }
        for reader in std::mem::take(&mut self.readers) {
            let _ = tokio::task::spawn_blocking(move || reader.join()).await;
        }
    }
}

/// The class hierarchy of `root/cimv2` as a [`Schema`], copied once from the repository (the
/// reader thread cannot borrow the object manager).
#[derive(Debug, Default)]
struct Ancestry {
    /// Lower-cased class name -> its lower-cased superclasses, nearest first.
    superclasses: HashMap<String, Vec<String>>,
}

impl Ancestry {
    fn of(manager: &ObjectManager) -> Ancestry {
        let repository = manager.repository();
        let mut superclasses = HashMap::new();
        if let Ok(names) = repository.class_names(CIMV2, None, true) {
            for name in names {
                let chain = repository
                    .superclasses(CIMV2, name.as_str())
                    .map(|chain| {
                        chain
                            .into_iter()
                            .map(|n| n.as_str().to_ascii_lowercase())
                            .collect()
                    })
                    .unwrap_or_default();
                superclasses.insert(name.as_str().to_ascii_lowercase(), chain);
            }
        }
        Ancestry { superclasses }
    }
}

impl Schema for Ancestry {
    fn is_a(&self, class: &str, ancestor: &str) -> bool {
        class.eq_ignore_ascii_case(ancestor)
            || self
                .superclasses
                .get(&class.to_ascii_lowercase())
                .is_some_and(|chain| chain.iter().any(|c| c.eq_ignore_ascii_case(ancestor)))
    }
}

/// Follows the daemon's notices and queues their indications; or, with a [`Lifecycle`],
/// looks at the model and queues the lifecycle indications.
struct Reader {
    source: Arc<dyn ClusterSource>,
    store: Arc<SubscriptionStore>,
    outbox: Outbox,
    alert_class: Class,
    ancestry: Arc<Ancestry>,
    host: String,
    /// Parsed filters by (language, query); `None` for one that does not parse.
    queries: HashMap<(String, String), Option<Arc<SelectQuery>>>,
    counters: Arc<IndicationCounters>,
    lifecycle: Option<Lifecycle>,
}

/// One instance that appeared (no `before`), went (no `after`) or changed.
struct Change<'a> {
    key: &'a String,
    path: &'a InstancePath,
    before: Option<&'a Arc<Instance>>,
    after: Option<&'a Arc<Instance>>,
}

/// How often the lifecycle of the cluster's instances is looked at.
const LIFECYCLE_EVERY: Duration = Duration::from_millis(250);

/// The least time between two looks at the model, however fast the daemon shows changes.
const LIFECYCLE_SPACING: Duration = Duration::from_millis(10);

/// How long an agent that coordinated keeps the model it last told from while its node shows
/// no coordinator and the cluster not down (a cmhaltcl on its way).
const UNCOORDINATED_HOLD: Duration = Duration::from_secs(30);

/// How long the reader asks the daemon to hold a notices request that has none to give.
const NOTICES_WAIT: Duration = Duration::from_millis(250);

/// The lifecycle indications (CIM_InstCreation, CIM_InstDeletion, CIM_InstModification) of
/// the HP_SG* instances: successive models compared, every [`LIFECYCLE_EVERY`] whether or
/// not a subscription wants them. Every agent keeps comparing, and only the agent of the
/// node that committed the membership in effect sends them (the model is the cluster's, and
/// would otherwise be told once per node); that node was a member before the change (a
/// joining node never commits its own joining), so it compares with a model of the cluster
/// as it ran, and the change is told once and as it was. The models compared leave a
/// re-formation in progress out ([`ServiceguardProvider::settled`]): two coordinators
/// telling its passing states to one listener could be heard out of order.
struct Lifecycle {
    serviceguard: Arc<ServiceguardProvider>,
    creation: Class,
    deletion: Class,
    modification: Class,
    /// The last model, by path text.
    previous: Option<HashMap<String, (InstancePath, Arc<Instance>)>>,
    /// This node coordinated the membership at the last look (it told the changes then).
    coordinated: bool,
    /// Since when it shows no coordinator, having coordinated, without the cluster down.
    uncoordinated_since: Option<Instant>,
    /// This agent's start (microseconds since the epoch): in identifiers.
    life: u128,
    /// Lifecycle indications made so far.
    told: u64,
}

impl Reader {
    fn run(mut self, stop: &AtomicBool) {
        if let Some(mut lifecycle) = self.lifecycle.take() {
            // Looked at on every change the daemon shows (a package failing, starting) and
            // at least every LIFECYCLE_EVERY, but not more often than LIFECYCLE_SPACING.
            let mut changes = 0;
            let mut fresh = false;
            while !stop.load(Ordering::Relaxed) {
                let looked = Instant::now();
                self.look(&mut lifecycle, fresh);
                match lifecycle
                    .serviceguard
                    .status_change(changes, LIFECYCLE_EVERY)
                {
                    Ok(now) => {
                        fresh = now != changes;
                        changes = now;
                        if let Some(rest) = LIFECYCLE_SPACING.checked_sub(looked.elapsed()) {
                            pause(stop, rest);
                        }
                    }
                    Err(_) => {
                        fresh = false;
                        pause(stop, LIFECYCLE_EVERY);
                    }
                }
            }
            return;
        }
        let (mut life, mut after) = match self.outbox.mark(CURSOR_MARK) {
            Ok(Some(bytes)) => decode_cursor(&bytes).map_or((None, 0), |(l, a)| (Some(l), a)),
            Ok(None) => (None, 0),
            Err(error) => {
                tracing::error!(%error, "the indication cursor cannot be read; starting from the daemon's first kept notice");
                (None, 0)
            }
        };
        // Whether the daemon answered yet (the agent starts before its daemon's socket
        // exists: not answering then is no news), and whether its silence was told.
        let (mut answered, mut silent, mut told) = (false, false, false);
        while !stop.load(Ordering::Relaxed) {
            // The daemon holds the request until it tells a notice: no notice waits for a
            // poll. The wait is short enough for the reader to see `stop` soon.
            let asked = Instant::now();
            let wait = NOTICES_WAIT;
            let mut reply = match self.source.notices(after, wait) {
                Ok(reply) => {
                    if told {
                        tracing::info!("the cluster daemon answers again; reading its notices");
                    }
                    (answered, silent, told) = (true, false, false);
                    reply
                }
                Err(error) => {
                    if !silent && answered {
                        tracing::warn!(%error, "no notices from the cluster daemon; asking again");
                        told = true;
                    } else if !silent {
                        tracing::debug!(%error, "no notices from the cluster daemon yet; asking again");
                    }
                    silent = true;
                    pause(stop, RETRY);
                    continue;
                }
            };
            if life != Some(reply.incarnation) {
                if let Some(old) = life {
                    tracing::info!(
                        old,
                        new = reply.incarnation,
                        "the cluster daemon began a new life; reading its notices from its first"
                    );
                }
                life = Some(reply.incarnation);
                if after != 0 {
                    after = 0;
                    continue;
                }
            }
            let Some(first) = reply.notices.first() else {
                // The daemon waited for one; one that answered at once is not asked again
                // at once.
                if asked.elapsed() < wait / 2 {
                    pause(stop, POLL);
                }
                continue;
            };
            if first.number > after + 1 {
                let missed = first.number - after - 1;
                self.counters
                    .notices_missed
                    .fetch_add(missed, Ordering::Relaxed);
                tracing::error!(
                    missed,
                    after,
                    "notices were missed: the daemon no longer kept them"
                );
            }
            // The status the daemon gave with the notices, or (from a daemon that does not
            // give it) asked for now.
            let given = reply.status.take().map(|status| Ok(*status));
            let snapshot = match given.unwrap_or_else(|| self.source.status().map(|s| s.cluster)) {
                Ok(snapshot) => snapshot,
                Err(error) => {
                    tracing::warn!(%error, "no cluster status to name the notices' elements; asking again");
                    pause(stop, RETRY);
                    continue;
                }
            };
            let last = reply.notices.last().map_or(after, |n| n.number);
            let Some(mut batch) = self.batch(&reply.notices, &snapshot, reply.incarnation) else {
                // The subscriptions are not known now: the notices wait for them.
                pause(stop, RETRY);
                continue;
            };
            batch.mark(CURSOR_MARK, encode_cursor(reply.incarnation, last));
            let queued = batch.len() as u64;
            match self.outbox.commit_blocking(batch) {
                Ok(()) => {
                    after = last;
                    self.counters
                        .notices_read
                        .fetch_add(reply.notices.len() as u64, Ordering::Relaxed);
                    self.counters.queued.fetch_add(queued, Ordering::Relaxed);
                }
                Err(error) => {
                    tracing::error!(%error, "indications could not be queued; trying again");
                    pause(stop, RETRY);
                }
            }
        }
    }

    /// Compares the cluster's instances with the last look, and queues the lifecycle
    /// indications of what changed for the subscriptions that take them.
    fn look(&mut self, lifecycle: &mut Lifecycle, fresh: bool) {
        let active = self.store.active();
        self.prune_queries(&active);
        let wants = active.iter().any(|subscription| {
            self.query(subscription).is_some_and(|query| {
                let from = query.class_name().as_str();
                [
                    "CIM_InstCreation",
                    "CIM_InstDeletion",
                    "CIM_InstModification",
                ]
                .iter()
                .any(|class| self.ancestry.is_a(class, from))
            })
        });
        // The model is looked at even while no subscription wants its changes: one made
        // now must hear of a change made a moment later, which needs the model before it.
        // A re-formation is left out: its passing states would be told by the coordinator
        // before it and by the one after, whose indications may cross on the way. What it
        // changes (the nodes reforming, the cluster starting) stays as this agent last saw
        // it until the new membership shows; everything else is taken as it is.
        let current = lifecycle.serviceguard.settled(fresh);
        let Ok(current) = current else {
            return;
        };
        let snapshot = current.snapshot;
        let mut now: HashMap<String, (InstancePath, Arc<Instance>)> = current
            .instances
            .into_iter()
            .map(|(path, instance)| (crate::provider::path_text(&path), (path, instance)))
            .collect();
        if let Some(previous) = &lifecycle.previous {
            for key in &current.passing {
                if let Some(before) = previous.get(key) {
                    now.insert(key.clone(), before.clone());
                }
            }
        }
        // The coordinator tells the changes. When the cluster halts as a whole (cmhaltcl) no
        // node coordinates any more: the one that did tells that last change (the cluster
        // and its nodes going down), which no other would; until its view says the cluster
        // is down it keeps the model it last told from. A coordinator that leaves a cluster
        // running on (cmhaltnode) does not tell it: once it shows the running cluster again
        // another node coordinates, and tells it.
        // The teller is the node that committed the membership in effect, not its lowest
        // member: a node that joins (or starts again) never commits its own joining, so the
        // member that did tells the change from the model it saw before it; a joiner's model
        // from before (its packages and peers unknown while it started) would tell changes
        // that never were. Losing the teller, the survivor that commits the new membership
        // tells from its own model before the change.
        // (A halted node showing a member's view, of a membership it committed before it
        // halted, is no member: it does not tell.)
        let own = snapshot
            .nodes
            .iter()
            .find(|row| row.id == snapshot.observer);
        let member = own.is_some_and(|row| {
            matches!(
                row.condition.state,
                NodeState::Running | NodeState::Reforming
            )
        });
        let coordinates = member
            && snapshot.coordinator.is_some()
            && snapshot.epoch != Epoch::NONE
            && snapshot.epoch.coordinator() == snapshot.observer;
        let uncoordinated = lifecycle.coordinated && snapshot.coordinator.is_none();
        if uncoordinated && snapshot.status != ClusterStatus::Down {
            // Not for long: a node that lost the cluster some other way (fenced, or left
            // without a view of the cluster running on) takes the model as it is again.
            let since = *lifecycle
                .uncoordinated_since
                .get_or_insert_with(Instant::now);
            if since.elapsed() < UNCOORDINATED_HOLD {
                return;
            }
            lifecycle.coordinated = false;
        }
        lifecycle.uncoordinated_since = None;
        let halted_with_cluster = uncoordinated && snapshot.status == ClusterStatus::Down;
        lifecycle.coordinated = coordinates;
        let Some(previous) = lifecycle.previous.replace(now) else {
            return;
        };
        if !wants || !(coordinates || halted_with_cluster) {
            return;
        }
        let Some(now) = lifecycle.previous.as_ref() else {
            return;
        };
        let mut changes: Vec<Change<'_>> = Vec::new();
        for (key, (path, instance)) in now {
            match previous.get(key) {
                None => changes.push(Change {
                    key,
                    path,
                    before: None,
                    after: Some(instance),
                }),
                Some((_, old)) if **old != **instance => changes.push(Change {
                    key,
                    path,
                    before: Some(old),
                    after: Some(instance),
                }),
                Some(_) => {}
            }
        }
        for (key, (path, old)) in &previous {
            if !now.contains_key(key) {
                changes.push(Change {
                    key,
                    path,
                    before: Some(old),
                    after: None,
                });
            }
        }
        if changes.is_empty() {
            return;
        }
        changes.sort_by(|a, b| a.key.cmp(b.key));
        let at = SystemTime::now();
        let when = Value::Datetime(crate::package_jobs::timestamp(at));
        let mut indications = Vec::new();
        for Change {
            path,
            before,
            after,
            ..
        } in changes
        {
            lifecycle.told += 1;
            let identifier = format!(
                "cimguard:{}:{}:{:x}:{}",
                snapshot.name,
                snapshot.node_name(snapshot.observer),
                lifecycle.life,
                lifecycle.told
            );
            let mut model_path = path.clone();
            model_path.namespace = Some(CIMV2.to_owned());
            model_path.host = Some(self.host.clone());
            let embedded = |i: &Arc<Instance>| Some(Value::Instance(Box::new((**i).clone())));
            let mut values = vec![
                ("IndicationIdentifier", Some(Value::String(identifier))),
                ("IndicationTime", Some(when.clone())),
                (
                    "SourceInstanceModelPath",
                    model_path.to_wbem_uri().ok().map(Value::String),
                ),
                ("SourceInstanceHost", Some(Value::String(self.host.clone()))),
            ];
            let class = match (before, after) {
                (None, after) => {
                    values.push(("SourceInstance", after.and_then(embedded)));
                    &lifecycle.creation
                }
                (before, None) => {
                    values.push(("SourceInstance", before.and_then(embedded)));
                    &lifecycle.deletion
                }
                (before, after) => {
                    values.push(("SourceInstance", after.and_then(embedded)));
                    values.push(("PreviousInstance", before.and_then(embedded)));
                    &lifecycle.modification
                }
            };
            indications.push(typed(class, values));
        }
        let mut batch = Batch::new();
        for indication in &indications {
            self.offer(&active, indication, at, &mut batch);
        }
        if batch.is_empty() {
            return;
        }
        let queued = batch.len() as u64;
        match self.outbox.commit_blocking(batch) {
            Ok(()) => {
                self.counters.queued.fetch_add(queued, Ordering::Relaxed);
            }
            Err(error) => {
                tracing::error!(%error, "lifecycle indications could not be queued; they are lost");
            }
        }
    }

    /// The indications of `notices` for every subscription that takes them.
    fn batch(
        &mut self,
        notices: &[NumberedNotice],
        snapshot: &Snapshot,
        life: u64,
    ) -> Option<Batch> {
        let active = self.store.active();
        self.prune_queries(&active);
        if !self.store.known() {
            return None;
        }
        let mut batch = Batch::new();
        if active.is_empty() {
            return Some(batch);
        }
        for numbered in notices {
            let at = UNIX_EPOCH + Duration::from_millis(numbered.at_ms);
            let alert = crate::alerts::alert(&numbered.notice, snapshot);
            let identifier = crate::alerts::identifier(
                &snapshot.name,
                snapshot.node_name(snapshot.observer),
                life,
                numbered.number,
            );
            let indication = typed(
                &self.alert_class,
                alert.properties(snapshot.generation, &identifier, at, &self.host),
            );
            self.offer(&active, &indication, at, &mut batch);
        }
        Some(batch)
    }

    /// Queues `indication`, made at `at`, for each subscription in `active` that takes it.
    ///
    /// A listener that subscribed at every node (with pywbem, a subscription manager per
    /// node) has a subscription per node: the same query sent to the same URL, through
    /// filters and destinations of their own. The subscriptions are the cluster's, so each
    /// would take every indication; it is queued for the first of them only, and the
    /// listener hears each event once (serviceguard.md 1.6: no duplicates for a subscriber
    /// registered on every node). Two different queries that both take it are two copies.
    fn offer(
        &mut self,
        active: &[Active],
        indication: &Instance,
        at: SystemTime,
        batch: &mut Batch,
    ) {
        let mut queued: std::collections::HashSet<(&str, &str, &str)> =
            std::collections::HashSet::new();
        for subscription in active {
            let same = (
                subscription.url.as_str(),
                subscription.language.as_str(),
                subscription.query.as_str(),
            );
            if queued.contains(&same) {
                continue;
            }
            if subscription.since.is_some_and(|since| at < since) {
                continue;
            }
            if !subscription.source_namespaces.is_empty()
                && !subscription
                    .source_namespaces
                    .iter()
                    .any(|n| n.trim_matches('/').eq_ignore_ascii_case(CIMV2))
            {
                continue;
            }
            let Some(query) = self.query(subscription) else {
                continue;
            };
            if !self
                .ancestry
                .is_a(indication.class_name.as_str(), query.class_name().as_str())
                || !query.matches(indication, &*self.ancestry)
            {
                continue;
            }
            let mut copy = query.project(indication);
            copy.set(Property::new(
                "IndicationFilterName",
                cim_schema::model::CimType::String,
                Some(Value::String(subscription.filter_name.clone())),
            ));
            batch.append(
                &subscription.destination,
                Box::new(move |context, sequence| export_message(copy, context, sequence)),
            );
            queued.insert(same);
        }
    }

    /// Forgets the parsed queries no active subscription has.
    fn prune_queries(&mut self, active: &[Active]) {
        if self.queries.len() <= active.len() {
            return;
        }
        let used: std::collections::HashSet<(&str, &str)> = active
            .iter()
            .map(|a| (a.language.as_str(), a.query.as_str()))
            .collect();
        self.queries
            .retain(|(language, query), _| used.contains(&(language.as_str(), query.as_str())));
    }

    /// The parsed filter of `subscription` (parsed once per distinct query).
    fn query(&mut self, subscription: &Active) -> Option<Arc<SelectQuery>> {
        let key = (subscription.language.clone(), subscription.query.clone());
        self.queries
            .entry(key)
            .or_insert_with(|| {
                let language = QueryLanguage::from_name(&subscription.language)?;
                match SelectQuery::parse(language, &subscription.query) {
                    Ok(query) => Some(Arc::new(query)),
                    Err(error) => {
                        // The store checks queries at creation; a stored one that no longer
                        // parses takes nothing.
                        tracing::error!(
                            filter = %subscription.filter_name,
                            query = %subscription.query,
                            error = %error.message,
                            "a filter's query does not parse; it takes no indication"
                        );
                        None
                    }
                }
            })
            .clone()
    }
}

/// An instance of `class` with `values`, each typed as the class declares it (a name the
/// class lacks is left out: the values come from this crate's own tables).
fn typed(class: &Class, values: Vec<(&'static str, Option<Value>)>) -> Instance {
    let mut instance = Instance::new(class.name.clone());
    for (name, value) in values {
        let Some(declared) = class.property(name) else {
            tracing::error!(class = %class.name, property = name, "no such property");
            continue;
        };
        let mut property = Property::new(declared.name.clone(), declared.cim_type.clone(), value);
        property.is_array = declared.is_array;
        instance.set(property);
    }
    instance
}

/// The CIM-XML ExportIndication request of `indication`, numbered `sequence` in `context`.
fn export_message(mut indication: Instance, context: &str, sequence: i64) -> Vec<u8> {
    indication.set(Property::new(
        "SequenceContext",
        cim_schema::model::CimType::String,
        Some(Value::String(context.to_owned())),
    ));
    indication.set(Property::new(
        "SequenceNumber",
        cim_schema::model::CimType::Sint64,
        Some(Value::Sint64(sequence)),
    ));
    let class_name: Name = indication.class_name.clone();
    let message = |instance: Instance| {
        encode(&Message::new(
            sequence.to_string(),
            Body::ExportRequest(ExportRequest::indication(instance)),
        ))
    };
    message(indication).unwrap_or_else(|error| {
        // The instances are typed from their classes; this is a bug, and the listener
        // still hears that something happened, in sequence.
        tracing::error!(%error, class = %class_name, sequence, "an indication could not be encoded");
        let mut bare = Instance::new(class_name);
        bare.set(Property::new(
            "SequenceContext",
            cim_schema::model::CimType::String,
            Some(Value::String(context.to_owned())),
        ));
        bare.set(Property::new(
            "SequenceNumber",
            cim_schema::model::CimType::Sint64,
            Some(Value::Sint64(sequence)),
        ));
        message(bare).unwrap_or_default()
    })
}

fn encode_cursor(life: u64, number: u64) -> Vec<u8> {
    let mut bytes = life.to_le_bytes().to_vec();
    bytes.extend_from_slice(&number.to_le_bytes());
    bytes
}

fn decode_cursor(bytes: &[u8]) -> Option<(u64, u64)> {
    Some((
        u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?),
        u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?),
    ))
}

/// Sleeps `span` in short steps, returning early once `stop` is set.
fn pause(stop: &AtomicBool, span: Duration) {
    let step = Duration::from_millis(10);
    let mut left = span;
    while !stop.load(Ordering::Relaxed) && !left.is_zero() {
        let now = step.min(left);
        std::thread::sleep(now);
        left -= now;
    }
}

/// A running delivery: its URL, its stop switch, its task.
struct Running {
    url: String,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Outcome>,
}

/// Each destination's delivery counters, by destination Name.
type Deliveries = Arc<Mutex<HashMap<String, Arc<Stats>>>>;

/// Sets the counters that come from the outbox and the deliveries.
fn tally(
    counters: &IndicationCounters,
    outbox: &Outbox,
    deliveries: &Mutex<HashMap<String, Arc<Stats>>>,
    (mut delivered, mut failures): (u64, u64),
    running: &HashMap<String, Running>,
) {
    let mut failing = 0;
    for (name, stats) in deliveries
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
    {
        delivered += stats.delivered.load(Ordering::Relaxed);
        failures += stats.failed_attempts.load(Ordering::Relaxed);
        // A destination with no delivery running (its URL changed to one that cannot be
        // used) is not failing now.
        if running.contains_key(name) {
            failing += u64::from(stats.failing.load(Ordering::Relaxed));
        }
    }
    let pending = outbox
        .destinations()
        .iter()
        .map(|(_, info)| info.pending())
        .sum();
    counters.delivered.store(delivered, Ordering::Relaxed);
    counters
        .delivery_failures
        .store(failures, Ordering::Relaxed);
    counters.failing.store(failing, Ordering::Relaxed);
    counters.pending.store(pending, Ordering::Relaxed);
    counters.dropped.store(outbox.dropped(), Ordering::Relaxed);
    counters
        .destinations
        .store(running.len() as u64, Ordering::Relaxed);
}

/// Keeps one delivery per destination of the store; drops the queues of deleted ones.
async fn manage(
    outbox: Outbox,
    store: Arc<SubscriptionStore>,
    tls: Arc<rustls::ClientConfig>,
    policy: Policy,
    removal_action: u16,
    (deliveries, counters): (Deliveries, Arc<IndicationCounters>),
    mut stop: watch::Receiver<bool>,
) {
    let mut running: HashMap<String, Running> = HashMap::new();
    // Destinations found missing by a read of a known store, by how many reads in a row:
    // a queue is dropped only on the second (a store that is not known drops nothing).
    let mut missing: HashMap<String, u32> = HashMap::new();
    // Destinations whose URL cannot be sent to, reported once.
    let mut unusable: HashMap<String, String> = HashMap::new();
    // Delivered and failed counts of destinations that are gone.
    let mut retired = (0, 0);
    // Failing destinations whose OnFatalErrorPolicy could not be applied: when to try again.
    let mut fatal_retry: HashMap<String, Instant> = HashMap::new();
    loop {
        tally(&counters, &outbox, &deliveries, retired, &running);
        let wanted: HashMap<String, String> = store.destinations().into_iter().collect();
        if !store.known() {
            // Not read yet (the daemon is starting), or the last read failed: the deliveries
            // go on as they are, and nothing is dropped on this word.
            missing.clear();
            tokio::select! {
                () = tokio::time::sleep(MANAGE_EVERY) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
            continue;
        }
        // Subscriptions past their SubscriptionDuration go (they already send nothing).
        store.remove_expired();
        // A listener that failed its first attempt and every retry of DeliveryRetryAttempts
        // is a fatal error for the subscriptions whose OnFatalErrorPolicy says to disable or
        // delete them.
        let outages: Vec<(String, cimguard_indications::Outage)> = deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(name, _)| running.contains_key(*name))
            .filter_map(|(name, stats)| Some((name.clone(), stats.outage()?)))
            .filter(|(_, outage)| outage.failures > u32::from(policy.retry_attempts))
            .collect();
        fatal_retry.retain(|name, _| outages.iter().any(|(n, _)| n == name));
        let retries = policy.retry_interval * u32::from(policy.retry_attempts);
        for (name, outage) in outages {
            if fatal_retry
                .get(&name)
                .is_some_and(|at| Instant::now() < *at)
            {
                continue;
            }
            if let Err(error) = store.apply_fatal_error_policy(&name, &outage, retries) {
                // Tried again later, not at every look: a store that refuses writes would
                // fill the log.
                tracing::warn!(destination = %name, %error, "OnFatalErrorPolicy could not be applied yet");
                fatal_retry.insert(name, Instant::now() + FATAL_RETRY);
            }
        }
        // Gone or moved: stop; gone: drop the queue.
        let stale: Vec<String> = running
            .iter()
            .filter(|(name, r)| wanted.get(*name) != Some(&r.url) || r.task.is_finished())
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            let Some(r) = running.remove(&name) else {
                continue;
            };
            let _ = r.stop.send(true);
            if let Ok(Outcome::RemovalDue { error }) = r.task.await {
                // SubscriptionRemovalAction applies to the destination's subscriptions.
                tracing::error!(
                    destination = %name,
                    %error,
                    "the listener failed for the whole removal interval"
                );
                store.destination_failed(&name, removal_action);
            }
        }
        for (name, _) in outbox.destinations() {
            if wanted.contains_key(&name) {
                missing.remove(&name);
                continue;
            }
            let reads = missing.entry(name.clone()).or_default();
            *reads += 1;
            if *reads >= 2 {
                missing.remove(&name);
                let gone = deliveries
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&name);
                if let Some(stats) = gone {
                    retired.0 += stats.delivered.load(Ordering::Relaxed);
                    retired.1 += stats.failed_attempts.load(Ordering::Relaxed);
                }
                if let Err(error) = outbox.remove(&name).await {
                    tracing::error!(destination = %name, %error, "a deleted destination's queue could not be dropped");
                }
            }
        }
        for (name, url) in wanted {
            if running.contains_key(&name) {
                continue;
            }
            let target = match Target::parse(&url) {
                Ok(target) => target,
                Err(error) => {
                    if unusable.get(&name) != Some(&url) {
                        tracing::error!(destination = %name, %error, "indications cannot be sent to this destination");
                        unusable.insert(name, url);
                    }
                    continue;
                }
            };
            unusable.remove(&name);
            let stats = deliveries
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(name.clone())
                .or_default()
                .clone();
            let delivery = Delivery {
                outbox: outbox.clone(),
                key: name.clone(),
                target,
                tls: tls.clone(),
                policy: policy.clone(),
                stats,
            };
            let (stop, stopped) = watch::channel(false);
            let task = tokio::spawn(delivery.run(stopped));
            running.insert(name, Running { url, stop, task });
        }
        tokio::select! {
            () = tokio::time::sleep(MANAGE_EVERY) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
    }
    for (_, r) in running {
        let _ = r.stop.send(true);
        let _ = r.task.await;
    }
}
