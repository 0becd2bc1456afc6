//! The subscription store of the interop namespace (DSP1054): indication filters, CIM-XML
//! listener destinations and the subscriptions between them, created, modified and deleted by
//! clients, owned by the user who created them, and kept across restarts in one CIM-XML file
//! written atomically before an operation answers.
//!
//! Delivery of indications to the destinations is not here: the indication service reads the
//! store through [`SubscriptionStore::snapshot`].
//!
//! Ownership: a user may change and delete only what they created; FULL_ADMIN may change
//! anything. Everyone may read everything (MONITOR reads everything).
//!
//! What a client creates or modifies is checked against the schema of the object manager the
//! store is installed in, and refused whole: a filter's query must name classes and
//! properties of its source namespaces (CIM_ERR_INVALID_QUERY), which must be served; the
//! system keys of filters and destinations are the server's; enumerated properties hold
//! values of their ValueMap, and destinations use CIM-XML (CIM_ERR_INVALID_PARAMETER).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cim_schema::model::{
    Datetime, Instance, InstancePath, KeyBinding, Name, ObjectPath, Property, Value,
};
use cim_schema::query::{QueryLanguage, SelectQuery};
use cim_schema::repository::Repository;
use cim_schema::xml::{
    decode, encode, Body, Data, IMethodResponse, IMethodReturn, Limits, Message, ParamValue,
    Response,
};

use crate::auth::Role;
use crate::cimom::ObjectManager;
use crate::error::OperationError;
use crate::interop::INTEROP;
use crate::provider::{InstanceProvider, Instances, RequestContext};

/// Filters, destinations and subscriptions held at most, all users together.
pub const SUBSCRIPTION_OBJECTS_MAX: usize = 4096;

/// Filters, destinations and subscriptions one user may hold.
pub const SUBSCRIPTION_OBJECTS_PER_PRINCIPAL_MAX: usize = 256;

/// The filter class.
pub const FILTER: &str = "CIM_IndicationFilter";
/// The destination class.
pub const DESTINATION: &str = "CIM_ListenerDestinationCIMXML";
/// The subscription class.
pub const SUBSCRIPTION: &str = "CIM_IndicationSubscription";

/// A subscription's properties that the server sets, which ModifyInstance leaves as they are.
const SERVER_OWNED: &[&str] = &[
    "SubscriptionStartTime",
    "TimeOfLastStateChange",
    "SubscriptionTimeRemaining",
];

/// One stored object.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The user who created it.
    pub owner: String,
    /// Its path (keys only, no host or namespace).
    pub path: InstancePath,
    /// Its properties.
    pub instance: Instance,
}

/// A map kept by the whole cluster (the node daemons' shared map), where the store keeps its
/// records under keys of its own.
pub trait SharedRecords: Send + Sync {
    /// Sets the value at `key` cluster-wide (deletes it with `None`); returns once the
    /// cluster holds the change.
    fn put(&self, key: &str, value: Option<String>) -> Result<(), String>;
    /// Every value, by key, unless the copy named `unless` is still the current one (then
    /// `None`); with the name of the copy read.
    #[allow(clippy::type_complexity)]
    fn values(
        &self,
        unless: Option<(u64, u64)>,
    ) -> Result<Option<((u64, u64), Vec<(String, String)>)>, String>;
}

/// The prefix of the store's keys in the shared map.
const SHARED_PREFIX: &str = "subscription:";

/// An enabled subscription as the indication service needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Active {
    /// The user who created the subscription.
    pub owner: String,
    /// The filter's Name (IndicationFilterName of what it sends).
    pub filter_name: String,
    /// The filter's query.
    pub query: String,
    /// The query's language (WQL or DMTF:CQL).
    pub language: String,
    /// The namespaces whose indications the filter takes (none: any).
    pub source_namespaces: Vec<String>,
    /// The destination's path (class and keys): its queue's key.
    pub destination: String,
    /// The destination's URL.
    pub url: String,
    /// When the subscription was last enabled: events before it are not sent to it.
    pub since: Option<std::time::SystemTime>,
}

/// Why the store could not load its file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be read or written.
    #[error("subscription store {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a store this server wrote.
    #[error("subscription store {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The store: in memory, mirrored to a file.
pub struct SubscriptionStore {
    file: Option<PathBuf>,
    system_name: String,
    records: Mutex<Vec<Record>>,
    /// The cluster's shared map, when the records are kept there (every agent of the
    /// cluster then serves the same subscriptions).
    shared: Option<Arc<dyn SharedRecords>>,
    /// The copy of the shared map the records were last read from.
    copy: Mutex<Option<(u64, u64)>>,
    /// Whether the records are known: a file store always; a shared one once a read of the
    /// shared map succeeded, and while the last one did (the indication service drops no
    /// queue on an unknown store's word).
    known: std::sync::atomic::AtomicBool,
    /// Serializes changes, which wait for the cluster without holding the records.
    writing: Mutex<()>,
    /// The classes and namespaces filters and destinations are checked against, set when
    /// the store is installed in an object manager (a store not installed checks only the
    /// syntax of queries).
    schema: std::sync::OnceLock<Schema>,
}

/// What the store checks filters and destinations against: the object manager's.
struct Schema {
    /// The object manager's classes (shared with it).
    repository: Arc<Repository>,
    /// The namespaces served, as the repository spells them.
    namespaces: Vec<String>,
}

impl Schema {
    /// The served namespace `requested` names (slashes around it and aliases allowed), as the
    /// repository spells it.
    fn namespace(&self, requested: &str) -> Option<&str> {
        let aliased = crate::cimom::unaliased(requested);
        self.namespaces
            .iter()
            .find(|name| name.eq_ignore_ascii_case(aliased))
            .map(String::as_str)
    }
}

impl SubscriptionStore {
    /// A store kept in `file` (loaded now when it exists), or in memory only when `None`.
    pub fn open(file: Option<PathBuf>, system_name: &str) -> Result<SubscriptionStore, StoreError> {
        let records = match &file {
            Some(path) if path.exists() => tidy(load(path)?),
            _ => Vec::new(),
        };
        Ok(SubscriptionStore {
            file,
            system_name: system_name.to_owned(),
            records: Mutex::new(records),
            shared: None,
            copy: Mutex::new(None),
            known: std::sync::atomic::AtomicBool::new(true),
            writing: Mutex::new(()),
            schema: std::sync::OnceLock::new(),
        })
    }

    /// A store whose records the cluster keeps in its shared map: a subscription made at
    /// any node is served, and its indications sent, by every node's agent, and outlives
    /// the node it was made at.
    pub fn shared(shared: Arc<dyn SharedRecords>, system_name: &str) -> SubscriptionStore {
        let store = SubscriptionStore {
            file: None,
            system_name: system_name.to_owned(),
            records: Mutex::new(Vec::new()),
            shared: Some(shared),
            copy: Mutex::new(None),
            known: std::sync::atomic::AtomicBool::new(false),
            writing: Mutex::new(()),
            schema: std::sync::OnceLock::new(),
        };
        store.refresh();
        store
    }

    /// Reads the records again from the shared map if it changed. A copy older than the one
    /// held (read by a request that was overtaken by another) is not installed: the records
    /// only move forward, and a change this store made stays shown once it was. False when
    /// the shared map could not be read.
    fn refresh(&self) -> bool {
        let Some(shared) = &self.shared else {
            return true;
        };
        let known = *self
            .copy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ok = std::sync::atomic::Ordering::Relaxed;
        match crate::serviceguard::blocking(|| shared.values(known)) {
            // The copy held is still the current one: as whole as it was.
            Ok(None) => true,
            Ok(Some((copy, values))) => {
                let mut records = Vec::new();
                let mut whole = true;
                for (key, value) in values {
                    if !key.starts_with(SHARED_PREFIX) {
                        continue;
                    }
                    match decode_records(value.as_bytes()) {
                        Ok(mut decoded) => records.append(&mut decoded),
                        Err(reason) => {
                            whole = false;
                            tracing::error!(%key, %reason, "a shared subscription record is unreadable; left out");
                        }
                    }
                }
                let records = tidy(records);
                let mut held = self.lock();
                let mut held_copy = self
                    .copy
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                // (incarnation, changes): a daemon's later life has a greater incarnation.
                if held_copy.is_some_and(|held_copy| copy <= held_copy) {
                    return true;
                }
                *held = records;
                *held_copy = Some(copy);
                // With a record left out, a destination missing is no deletion.
                self.known.store(whole, ok);
                true
            }
            Err(error) => {
                let was_known = self.known.swap(false, ok);
                // The next read takes the whole map, whichever copy it is.
                *self
                    .copy
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
                // Told once as they become unreadable; before they were ever read (the agent
                // starts before its daemon's socket exists) and while they stay so, quietly.
                if was_known {
                    tracing::warn!(%error, "the cluster's subscriptions could not be read; serving the last copy");
                } else {
                    tracing::debug!(%error, "the cluster's subscriptions could not be read");
                }
                false
            }
        }
    }

    /// Registers the store as the provider of the three classes in `root/interop`.
    pub fn install(self: &Arc<Self>, manager: &mut ObjectManager) -> Result<(), OperationError> {
        for class in [FILTER, DESTINATION, SUBSCRIPTION] {
            manager.register(INTEROP, class, self.clone())?;
        }
        let _ = self.schema.set(Schema {
            repository: manager.shared_repository(),
            namespaces: manager
                .namespaces()
                .map(|n| n.as_str().to_owned())
                .collect(),
        });
        Ok(())
    }

    /// A copy of everything stored.
    pub fn snapshot(&self) -> Vec<Record> {
        self.refresh();
        self.lock().clone()
    }

    /// The enabled subscriptions, each with its filter and destination (a subscription
    /// whose filter or destination is gone is left out).
    pub fn active(&self) -> Vec<Active> {
        self.refresh();
        let records = self.lock();
        let find = |class: &str, reference: Option<&Value>| -> Option<&Record> {
            let Some(Value::Reference(path)) = reference else {
                return None;
            };
            let ObjectPath::Instance(path) = path.as_ref() else {
                return None;
            };
            records
                .iter()
                .find(|r| r.path.class_name.matches(class) && same(&r.path, path))
        };
        let text = |record: &Record, name: &str| {
            record
                .instance
                .value(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let mut active = Vec::new();
        for record in records.iter() {
            if !record.path.class_name.matches(SUBSCRIPTION) {
                continue;
            }
            // 2 Enabled, 3 Enabled Degraded; 4 Disabled and the rest send nothing.
            if !matches!(
                record.instance.value("SubscriptionState"),
                Some(Value::Uint16(2 | 3)) | None
            ) {
                continue;
            }
            // Past its SubscriptionDuration, nothing more is sent (the store deletes it).
            if remaining(&record.instance, std::time::SystemTime::now()) == Some(0) {
                continue;
            }
            let (Some(filter), Some(handler)) = (
                find(FILTER, record.path.key("Filter")),
                find(DESTINATION, record.path.key("Handler")),
            ) else {
                continue;
            };
            let (Some(filter_name), Some(query), Some(language), Some(url)) = (
                text(filter, "Name"),
                text(filter, "Query"),
                text(filter, "QueryLanguage"),
                text(handler, "Destination"),
            ) else {
                continue;
            };
            let mut source_namespaces = source_namespaces(&filter.instance);
            if source_namespaces.is_empty() {
                // DSP1054: without SourceNamespaces (or SourceNamespace), indications are
                // taken from the filter's own namespace.
                source_namespaces.push(INTEROP.to_owned());
            }
            let since = match record.instance.value("TimeOfLastStateChange") {
                Some(Value::Datetime(at)) => crate::package_jobs::system_time(at),
                _ => None,
            };
            active.push(Active {
                owner: record.owner.clone(),
                filter_name,
                query,
                language,
                source_namespaces,
                destination: crate::provider::path_text(&handler.path),
                url,
                since,
            });
        }
        active
    }

    /// Deletes the subscriptions whose SubscriptionDuration has ended (DSP1054); how many.
    /// Nothing is written when none has.
    pub fn remove_expired(&self) -> usize {
        let ended = |record: &Record, now| {
            record.path.class_name.matches(SUBSCRIPTION)
                && remaining(&record.instance, now) == Some(0)
        };
        let now = std::time::SystemTime::now();
        if !self.lock().iter().any(|r| ended(r, now)) {
            return 0;
        }
        let result = self.commit(|records| {
            let before = records.len();
            records.retain(|r| !ended(r, now));
            Ok(before - records.len())
        });
        match result {
            Ok(count) => {
                if count > 0 {
                    tracing::info!(
                        count,
                        "subscriptions past their SubscriptionDuration deleted"
                    );
                }
                count
            }
            Err(error) => {
                tracing::warn!(%error, "subscriptions past their SubscriptionDuration could not be deleted yet");
                0
            }
        }
    }

    /// Applies SubscriptionRemovalAction `action` to the subscriptions of the listener of
    /// the destination at path `name` (as [`destinations`](Self::destinations) gives it),
    /// which failed for the whole removal interval: 2 deletes them, 3 disables them
    /// (SubscriptionState 4), anything else leaves them. The listener's subscriptions are
    /// those of every destination with its URL (see [`listener_subscriptions`]).
    pub fn destination_failed(&self, name: &str, action: u16) {
        if action != 2 && action != 3 {
            return;
        }
        let result = self.commit(|records| {
            let paths = listener_subscriptions(records, name);
            let now = now();
            if action == 2 {
                records.retain(|r| !paths.iter().any(|p| same(p, &r.path)));
            } else {
                for record in records.iter_mut() {
                    if paths.iter().any(|p| same(p, &record.path)) {
                        disable(record, now);
                    }
                }
            }
            Ok(paths.len())
        });
        match result {
            Ok(count) => tracing::warn!(
                destination = name,
                subscriptions = count,
                action = if action == 2 { "deleted" } else { "disabled" },
                "subscriptions of a failed listener destination"
            ),
            Err(error) => tracing::error!(
                destination = name,
                %error,
                "the removal action could not be applied"
            ),
        }
    }

    /// Applies each subscription's OnFatalErrorPolicy (DSP1054) to the subscriptions of the
    /// listener of the destination at path `name` (as [`destinations`](Self::destinations)
    /// gives it), whose delivery is failing: `outage`. The caller calls it once the outage
    /// counts more failed attempts than DeliveryRetryAttempts; `retries` is how long those
    /// retries take (DeliveryRetryAttempts times DeliveryRetryInterval).
    ///
    /// A subscription whose policy is 3 (Disable) is disabled (SubscriptionState 4), one
    /// whose policy is 4 (Remove) is deleted, when [`fatal_error_due`] says so. 2 (Ignore)
    /// and none leave it: its indications stay queued for the listener. What it did:
    /// (subscriptions disabled, subscriptions deleted).
    pub fn apply_fatal_error_policy(
        &self,
        name: &str,
        outage: &cimguard_indications::Outage,
        retries: std::time::Duration,
    ) -> Result<(usize, usize), OperationError> {
        let due = |records: &[Record]| -> Vec<(InstancePath, u16)> {
            let paths = listener_subscriptions(records, name);
            records
                .iter()
                .filter(|r| paths.iter().any(|p| same(p, &r.path)))
                .filter_map(|r| {
                    let policy = fatal_error_due(&r.instance, outage, retries)?;
                    Some((r.path.clone(), policy))
                })
                .collect()
        };
        if due(&self.lock()).is_empty() {
            return Ok((0, 0));
        }
        let due = self.commit(|records| {
            let due = due(records);
            let policy = |path: &InstancePath| {
                due.iter()
                    .find(|(p, _)| same(p, path))
                    .map(|(_, policy)| *policy)
            };
            records.retain(|r| policy(&r.path) != Some(FATAL_REMOVE));
            let now = now();
            for record in records.iter_mut() {
                if policy(&record.path) == Some(FATAL_DISABLE) {
                    disable(record, now);
                }
            }
            Ok(due)
        })?;
        let deleted = due.iter().filter(|(_, p)| *p == FATAL_REMOVE).count();
        for (path, policy) in &due {
            tracing::warn!(
                subscription = %crate::provider::path_text(path),
                destination = name,
                failed_attempts = outage.failures,
                "the listener keeps failing: subscription {} by its OnFatalErrorPolicy",
                if *policy == FATAL_REMOVE { "deleted" } else { "disabled" }
            );
        }
        Ok((due.len() - deleted, deleted))
    }

    /// Every listener destination: its path (class and keys, the key of its queue) and its
    /// Destination URL.
    pub fn destinations(&self) -> Vec<(String, String)> {
        self.refresh();
        self.lock()
            .iter()
            .filter(|r| r.path.class_name.matches(DESTINATION))
            .filter_map(|r| {
                Some((
                    crate::provider::path_text(&r.path),
                    r.instance.value("Destination")?.as_str()?.to_owned(),
                ))
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Record>> {
        // Records are replaced whole under the lock; a panic elsewhere leaves them consistent.
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies `change` to a copy of the records, writes the copy to the file, then keeps it:
    /// a failure leaves both the memory and the file as they were.
    fn commit<T>(
        &self,
        change: impl FnOnce(&mut Vec<Record>) -> Result<T, OperationError>,
    ) -> Result<T, OperationError> {
        let _writing = crate::serviceguard::blocking(|| {
            self.writing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        });
        self.refresh();
        if !self.known.load(std::sync::atomic::Ordering::Relaxed) {
            // Writing from a copy that may be stale could bring back what was deleted.
            return Err(OperationError::Failed(
                "the cluster's subscriptions cannot be read now; try again".into(),
            ));
        }
        let records = self.lock().clone();
        let mut next = records.clone();
        let result = change(&mut next)?;
        if let Some(shared) = &self.shared {
            // The records are not held meanwhile: readers go on with the copy they have.
            crate::serviceguard::blocking(|| write_shared(shared.as_ref(), &records, &next))
                .map_err(|error| {
                    tracing::error!(%error, "the cluster did not take a subscription change");
                    OperationError::Failed(format!(
                        "the cluster did not take the change (subscriptions are kept by the \
                         cluster, which must be running): {error}"
                    ))
                })?;
            // The daemon answers a change once its own copy shows it: the copy read now
            // holds it, and every change made elsewhere meanwhile. `next` does not hold the
            // latter, so it is kept only when the copy cannot be read.
            if !self.refresh() {
                let mut held = self.lock();
                *held = next;
                *self
                    .copy
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
            }
            return Ok(result);
        } else if let Some(path) = &self.file {
            save(path, &next).map_err(|error| {
                tracing::error!(%error, "the subscription store could not be written");
                OperationError::Failed("the subscription store could not be written".into())
            })?;
        }
        *self.lock() = next;
        Ok(result)
    }

    /// True when the records are known (see the `known` field): a destination missing from
    /// [`destinations`](Self::destinations) was deleted.
    pub fn known(&self) -> bool {
        self.known.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The instance with its keys filled in and its properties checked for its class.
    fn prepare(
        &self,
        context: &RequestContext,
        mut instance: Instance,
    ) -> Result<Instance, OperationError> {
        let class = instance.class_name.clone();
        let defaults: Vec<(&str, Value)> = vec![
            (
                "SystemCreationClassName",
                Value::String("CIM_ComputerSystem".into()),
            ),
            ("SystemName", Value::String(self.system_name.clone())),
            ("CreationClassName", Value::String(class.to_string())),
        ];
        if class.matches(FILTER) || class.matches(DESTINATION) {
            // The system keys name this server, whatever the client wrote (pywbem's
            // subscription manager writes the CIM_ObjectManager's SystemName): a different
            // value is refused rather than stored, and the server's spelling is kept.
            for (name, value) in defaults {
                if let Some(given) = instance.value(name) {
                    let same = given
                        .as_str()
                        .zip(value.as_str())
                        .is_some_and(|(given, own)| given.eq_ignore_ascii_case(own));
                    if !same {
                        return Err(OperationError::parameter(format!(
                            "{name} of a {class} is the server's ({}), not {:?}",
                            value.as_str().unwrap_or_default(),
                            given.as_str().unwrap_or("a non-string value")
                        )));
                    }
                }
                instance.set(Property::new(
                    name,
                    cim_schema::model::CimType::String,
                    Some(value),
                ));
            }
            if instance
                .value("Name")
                .and_then(Value::as_str)
                .is_some_and(|name| name.trim().is_empty())
            {
                return Err(OperationError::parameter(format!(
                    "the Name of a {class} is empty: give one, or none and the server makes one"
                )));
            }
            // A destination is permanent unless the client says otherwise, as OpenPegasus
            // makes it (DSP1054): it lasts until it is deleted.
            if class.matches(DESTINATION) && instance.value("PersistenceType").is_none() {
                instance.set(Property::new(
                    "PersistenceType",
                    cim_schema::model::CimType::Uint16,
                    Some(Value::Uint16(2)),
                ));
            }
            if instance.value("Name").is_none() {
                let name = format!("cimguard:{}:{}", context.principal, unique());
                instance.set(Property::new(
                    "Name",
                    cim_schema::model::CimType::String,
                    Some(Value::String(name)),
                ));
            }
        }
        self.check_value_maps(&instance)?;
        if class.matches(FILTER) {
            self.check_filter(&instance)?;
            // Shown as it is taken: the namespaces its indications come from, the deprecated
            // SourceNamespace's, or else its own (pywbemcli lists SourceNamespaces).
            if !matches!(instance.value("SourceNamespaces"), Some(Value::Array(_))) {
                let sources = match source_namespaces(&instance).as_slice() {
                    [] => vec![INTEROP.to_owned()],
                    named => named.to_vec(),
                };
                let mut property = Property::new(
                    "SourceNamespaces",
                    cim_schema::model::CimType::String,
                    Some(Value::Array(
                        sources
                            .into_iter()
                            .map(|s| Some(Value::String(s)))
                            .collect(),
                    )),
                );
                property.is_array = true;
                instance.set(property);
            }
        } else if class.matches(DESTINATION) {
            check_destination(&instance)?;
        } else if class.matches(SUBSCRIPTION) {
            check_policies(&instance, None)?;
            if instance.value("SubscriptionState").is_none() {
                instance.set(Property::new(
                    "SubscriptionState",
                    cim_schema::model::CimType::Uint16,
                    Some(Value::Uint16(2)),
                ));
            }
            if instance.value("OnFatalErrorPolicy").is_none() {
                instance.set(Property::new(
                    "OnFatalErrorPolicy",
                    cim_schema::model::CimType::Uint16,
                    Some(Value::Uint16(2)),
                ));
            }
            let at = now();
            instance.set(Property::new(
                "TimeOfLastStateChange",
                cim_schema::model::CimType::Datetime,
                Some(Value::Datetime(at)),
            ));
            // The server's, whatever the client wrote (DSP1054).
            instance.set(Property::new(
                "SubscriptionStartTime",
                cim_schema::model::CimType::Datetime,
                Some(Value::Datetime(at)),
            ));
            instance.set(Property::new(
                "SubscriptionTimeRemaining",
                cim_schema::model::CimType::Uint64,
                None,
            ));
        }
        Ok(instance)
    }

    /// Every property of `instance` whose class declares a ValueMap must hold values it
    /// lists (CIM_ERR_INVALID_PARAMETER otherwise, naming the property and the value).
    fn check_value_maps(&self, instance: &Instance) -> Result<(), OperationError> {
        let Some(class) = self.schema.get().and_then(|schema| {
            schema
                .repository
                .class(INTEROP, instance.class_name.as_str())
        }) else {
            return Ok(());
        };
        for property in instance.properties.values() {
            let Some(value) = &property.value else {
                continue;
            };
            let Some(Value::Array(entries)) = class
                .property(property.name.as_str())
                .and_then(|declared| declared.qualifiers.get("ValueMap")?.value.as_ref())
            else {
                continue;
            };
            let values: Vec<&Value> = match value {
                Value::Array(items) => items.iter().flatten().collect(),
                single => vec![single],
            };
            if let Some(outside) = values.into_iter().find(|v| !in_value_map(entries, v)) {
                let allowed: Vec<&str> = entries
                    .iter()
                    .filter_map(|e| e.as_ref()?.as_str())
                    .collect();
                return Err(OperationError::parameter(format!(
                    "{} {}: not in its ValueMap ({})",
                    property.name,
                    outside.as_integer().map_or_else(
                        || format!("{:?}", outside.as_str().unwrap_or_default()),
                        |number| number.to_string()
                    ),
                    allowed.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// A filter's query must parse, in WQL or DMTF:CQL, and select from an indication class
    /// of its source namespaces (CIM_ERR_INVALID_QUERY for a class, property or ISA class
    /// that does not exist there, as ExecQuery checks them). A filter on an existing class that
    /// is no indication, such as HP_SGPackage, would make a subscription that never fires: it
    /// is refused with CIM_ERR_INVALID_PARAMETER, as OpenPegasus does. So is a source
    /// namespace the server does not serve.
    fn check_filter(&self, instance: &Instance) -> Result<(), OperationError> {
        let query = instance
            .value("Query")
            .and_then(Value::as_str)
            .ok_or_else(|| OperationError::parameter("a filter needs a Query"))?;
        let language = instance
            .value("QueryLanguage")
            .and_then(Value::as_str)
            .ok_or_else(|| OperationError::parameter("a filter needs a QueryLanguage"))?;
        let Some(language @ (QueryLanguage::Wql | QueryLanguage::Cql)) =
            QueryLanguage::from_name(language)
        else {
            return Err(OperationError::QueryLanguageNotSupported(format!(
                "query language {language:?} is not supported: filters are WQL or DMTF:CQL"
            )));
        };
        let parsed = SelectQuery::parse(language, query).map_err(|error| {
            OperationError::InvalidQuery(format!("{} (at byte {})", error.message, error.position))
        })?;
        let Some(schema) = self.schema.get() else {
            return Ok(());
        };
        let mut sources = Vec::new();
        for named in source_namespaces(instance) {
            let served = schema.namespace(&named).ok_or_else(|| {
                OperationError::parameter(format!(
                    "source namespace {named:?} is not a namespace of this server ({})",
                    schema.namespaces.join(", ")
                ))
            })?;
            sources.push(served);
        }
        let defaulted = sources.is_empty();
        if defaulted {
            // DSP1054: the filter's own namespace.
            sources.push(INTEROP);
        }
        let from = parsed.class_name().as_str();
        let repository = &schema.repository;
        let known: Vec<&str> = schema
            .namespaces
            .iter()
            .map(String::as_str)
            .filter(|namespace| repository.class(namespace, from).is_some())
            .collect();
        if known.is_empty() {
            return Err(OperationError::InvalidQuery(format!(
                "class {from} does not exist"
            )));
        }
        if !known
            .iter()
            .any(|namespace| repository.is_a(namespace, from, "CIM_Indication"))
        {
            return Err(OperationError::parameter(format!(
                "{from} is not an indication class (a subclass of CIM_Indication): a filter \
                 on it would select no indication"
            )));
        }
        let mut first_error = None;
        for namespace in &sources {
            if !repository.is_a(namespace, from, "CIM_Indication") {
                continue;
            }
            let checked = crate::query::check_selection(repository, namespace, &parsed)
                .and_then(|()| crate::query::check_condition(repository, namespace, &parsed));
            match checked {
                Ok(()) => return Ok(()),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| {
            let why = if defaulted {
                " (a filter without SourceNamespaces takes the indications of its own \
                 namespace: name the namespaces the indications come from)"
            } else {
                ""
            };
            OperationError::InvalidQuery(format!(
                "class {from} does not exist in the filter's source namespace {}{why}",
                sources.join(", ")
            ))
        }))
    }
}

/// The path of a stored instance: its class's keys (refs without host, so that a client's
/// path with or without host finds it).
fn path_of(instance: &Instance) -> Result<InstancePath, OperationError> {
    let keys: &[&str] = if instance.class_name.matches(SUBSCRIPTION) {
        &["Filter", "Handler"]
    } else {
        &[
            "CreationClassName",
            "Name",
            "SystemCreationClassName",
            "SystemName",
        ]
    };
    let mut path = InstancePath::new(instance.class_name.clone());
    for key in keys {
        let value = instance
            .value(key)
            .cloned()
            .ok_or_else(|| OperationError::parameter(format!("key property {key} is required")))?;
        path.keybindings.push(KeyBinding {
            name: Name::new(*key),
            value: local_reference(value),
        });
    }
    Ok(path)
}

/// A reference without its host, in root/interop when it names no namespace, its namespace
/// written as the server does (`interop` and `/root/interop/` are `root/interop`).
fn local_reference(value: Value) -> Value {
    match value {
        Value::Reference(path) => match *path {
            ObjectPath::Instance(mut path) => {
                path.host = None;
                let namespace = match path.namespace.as_deref() {
                    None => INTEROP,
                    Some(named) => crate::cimom::unaliased(named),
                };
                if namespace.eq_ignore_ascii_case(INTEROP) {
                    path.namespace = Some(INTEROP.to_owned());
                } else if path.namespace.as_deref() != Some(namespace) {
                    path.namespace = Some(namespace.to_owned());
                }
                Value::Reference(Box::new(ObjectPath::Instance(path)))
            }
            other => Value::Reference(Box::new(other)),
        },
        other => other,
    }
}

fn same(a: &InstancePath, b: &InstancePath) -> bool {
    a.class_name == b.class_name
        && a.keybindings.len() == b.keybindings.len()
        && a.keybindings.iter().all(|k| {
            b.key(k.name.as_str()).is_some_and(|v| {
                let left = local_reference(k.value.clone());
                let right = local_reference(v.clone());
                match (&left, &right) {
                    (Value::Reference(l), Value::Reference(r)) => match (l.as_ref(), r.as_ref()) {
                        (ObjectPath::Instance(l), ObjectPath::Instance(r)) => {
                            l.namespace.as_deref().map(str::to_ascii_lowercase)
                                == r.namespace.as_deref().map(str::to_ascii_lowercase)
                                && same(l, r)
                        }
                        _ => false,
                    },
                    _ => cim_schema::model::key_values_match(&left, &right),
                }
            })
        })
}

/// The namespaces a filter names in SourceNamespaces and SourceNamespace (deprecated), as
/// written; none when it names none.
fn source_namespaces(filter: &Instance) -> Vec<String> {
    let mut namespaces: Vec<String> = match filter.value("SourceNamespaces") {
        Some(Value::Array(values)) => values
            .iter()
            .filter_map(|v| v.as_ref()?.as_str())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    if let Some(single) = filter.value("SourceNamespace").and_then(Value::as_str) {
        namespaces.push(single.to_owned());
    }
    namespaces
}

/// The values a ValueMap qualifier allows: `value` is one of its entries or in one of its
/// ranges (`"7..9"`, `"..9"`, `"7.."`; a bare `".."` allows what no other entry names, as
/// DSP0004 reserves it).
fn in_value_map(entries: &[Option<Value>], value: &Value) -> bool {
    let entries: Vec<&str> = entries
        .iter()
        .filter_map(|e| e.as_ref()?.as_str())
        .map(str::trim)
        .collect();
    let Some(value) = value.as_integer() else {
        return value
            .as_str()
            .is_some_and(|text| entries.contains(&text) || entries.contains(&".."));
    };
    let bound = |text: &str| text.trim().parse::<i128>().ok();
    entries.iter().any(|entry| match entry.split_once("..") {
        None => bound(entry) == Some(value),
        Some((low, high)) => {
            let low = if low.trim().is_empty() {
                Some(i128::MIN)
            } else {
                bound(low)
            };
            let high = if high.trim().is_empty() {
                Some(i128::MAX)
            } else {
                bound(high)
            };
            low.zip(high)
                .is_some_and(|(low, high)| low <= value && value <= high)
        }
    })
}

fn check_destination(instance: &Instance) -> Result<(), OperationError> {
    let destination = instance
        .value("Destination")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            OperationError::parameter("a listener destination needs a Destination URL")
        })?;
    // The parser delivery uses: what is accepted here can be sent to.
    cimguard_indications::delivery::Target::parse(destination)
        .map_err(|error| OperationError::parameter(error.to_string()))?;
    // The class is the CIM-XML destination and indications are only ever sent as CIM-XML
    // export requests: another protocol is an invalid value for it (a WS-Management listener
    // is a CIM_ListenerDestinationWSManagement, which this server does not serve). NULL is
    // the class default, 2.
    match instance.value("Protocol").map(Value::as_integer) {
        None | Some(Some(2)) => Ok(()),
        Some(protocol) => Err(OperationError::parameter(format!(
            "Protocol {}: a {DESTINATION} is delivered with CIM-XML (2) only",
            protocol.map_or_else(|| "?".to_owned(), |p| p.to_string())
        ))),
    }
}

/// A subscription's OnFatalErrorPolicy must be one the server carries out:
/// CIM_ERR_NOT_SUPPORTED for Other (1), whose meaning only OtherOnFatalErrorPolicy's text
/// would tell (as OpenPegasus answers). Checked when it is set or changed (`before`: the
/// subscription as stored), so that one stored before is still modified. Values outside
/// the ValueMaps are refused before, as invalid. RepeatNotificationPolicy is taken as
/// OpenPegasus takes it, whatever its value: every indication is sent.
fn check_policies(
    subscription: &Instance,
    before: Option<&Instance>,
) -> Result<(), OperationError> {
    let policy = subscription.value("OnFatalErrorPolicy");
    let changed = before.is_none_or(|before| before.value("OnFatalErrorPolicy") != policy);
    if changed && policy.and_then(Value::as_integer) == Some(1) {
        return Err(OperationError::NotSupported(
            "OnFatalErrorPolicy 1 (Other) is not supported: 2 (Ignore), 3 (Disable) and 4 \
             (Remove) are"
                .into(),
        ));
    }
    Ok(())
}

fn owned_by(record: &Record, context: &RequestContext) -> Result<(), OperationError> {
    if record.owner == *context.principal || context.role == Role::FullAdmin {
        Ok(())
    } else {
        Err(OperationError::AccessDenied(format!(
            "{} belongs to user {}",
            crate::provider::path_text(&record.path),
            record.owner
        )))
    }
}

impl InstanceProvider for SubscriptionStore {
    fn enumerate(
        &self,
        _context: &RequestContext,
        class: &Name,
    ) -> Result<Instances, OperationError> {
        self.refresh();
        let found: Vec<_> = self
            .lock()
            .iter()
            .filter(|r| r.path.class_name == *class)
            .map(|r| Ok((r.path.clone(), Arc::new(shown(&r.instance)))))
            .collect();
        Ok(Box::new(found.into_iter()))
    }

    fn get(
        &self,
        _context: &RequestContext,
        path: &InstancePath,
    ) -> Result<Instance, OperationError> {
        self.refresh();
        self.lock()
            .iter()
            .find(|r| same(&r.path, path))
            .map(|r| shown(&r.instance))
            .ok_or_else(|| crate::provider::not_found(path))
    }

    fn create(
        &self,
        context: &RequestContext,
        instance: Instance,
    ) -> Result<InstancePath, OperationError> {
        let mut instance = self.prepare(context, instance)?;
        let path = path_of(&instance)?;
        if instance.class_name.matches(SUBSCRIPTION) {
            // Shown as the path names them: no host, the server's namespace spelling (a
            // reference naming `interop` is followed by References of root/interop's filter).
            local_references(&mut instance);
        }
        self.commit(|records| {
            if records.iter().any(|r| same(&r.path, &path)) {
                return Err(OperationError::AlreadyExists(format!("{} exists already", crate::provider::path_text(&path))));
            }
            if records.len() >= SUBSCRIPTION_OBJECTS_MAX {
                return Err(OperationError::ServerLimitsExceeded(format!(
                    "the server holds its maximum of {SUBSCRIPTION_OBJECTS_MAX} filters, destinations and subscriptions"
                )));
            }
            if records.iter().filter(|r| r.owner == *context.principal).count()
                >= SUBSCRIPTION_OBJECTS_PER_PRINCIPAL_MAX
            {
                return Err(OperationError::ServerLimitsExceeded(format!(
                    "at most {SUBSCRIPTION_OBJECTS_PER_PRINCIPAL_MAX} filters, destinations and subscriptions per user"
                )));
            }
            if instance.class_name.matches(SUBSCRIPTION) {
                for (role, class) in [("Filter", FILTER), ("Handler", DESTINATION)] {
                    let Some(Value::Reference(target)) = path.key(role) else {
                        return Err(OperationError::parameter(format!("{role} must be a reference")));
                    };
                    let ObjectPath::Instance(target) = target.as_ref() else {
                        return Err(OperationError::parameter(format!("{role} must name an instance")));
                    };
                    // Filters and destinations live in root/interop only: a reference to
                    // another namespace names nothing (and would make a second subscription
                    // of the same pair that pywbem cannot follow back).
                    let namespace = target.namespace.as_deref().unwrap_or(INTEROP);
                    if !crate::cimom::unaliased(namespace).eq_ignore_ascii_case(INTEROP) {
                        return Err(OperationError::parameter(format!(
                            "{role} {} names namespace {namespace}: filters and destinations \
                             are in {INTEROP}",
                            crate::provider::path_text(target)
                        )));
                    }
                    if !target.class_name.matches(class) {
                        return Err(OperationError::parameter(format!(
                            "{role} {} is not a {class}",
                            crate::provider::path_text(target)
                        )));
                    }
                    let mut local = target.clone();
                    local.namespace = None;
                    if !records.iter().any(|r| same(&r.path, &local)) {
                        return Err(OperationError::parameter(format!(
                            "{role} {} does not exist",
                            crate::provider::path_text(target)
                        )));
                    }
                }
            }
            records.push(Record {
                owner: context.principal.to_string(),
                path: path.clone(),
                instance,
            });
            Ok(())
        })?;
        Ok(path)
    }

    fn modify(
        &self,
        context: &RequestContext,
        path: &InstancePath,
        instance: Instance,
        property_list: Option<&[Name]>,
    ) -> Result<(), OperationError> {
        self.commit(|records| {
            let record = records
                .iter_mut()
                .find(|r| same(&r.path, path))
                .ok_or_else(|| crate::provider::not_found(path))?;
            owned_by(record, context)?;
            let mut next = record.instance.clone();
            // What the server keeps of a subscription (DSP1054: its start, its last change of
            // state, the time it has left) stays the server's, whatever a client sends back
            // (pywbemcli's `instance modify` sends the whole instance it read).
            let server_owned = |name: &Name| {
                record.path.class_name.matches(SUBSCRIPTION)
                    && SERVER_OWNED.iter().any(|owned| name.matches(owned))
            };
            for property in instance.properties.values() {
                if property_list.is_some_and(|list| !list.contains(&property.name))
                    || server_owned(&property.name)
                {
                    continue;
                }
                if path.key(property.name.as_str()).is_some() {
                    let unchanged = next
                        .value(property.name.as_str())
                        .zip(property.value.as_ref())
                        .is_some_and(|(old, new)| {
                            cim_schema::model::key_values_match(
                                &local_reference(old.clone()),
                                &local_reference(new.clone()),
                            )
                        });
                    if !unchanged {
                        return Err(OperationError::parameter(format!(
                            "key property {} cannot change",
                            property.name
                        )));
                    }
                    continue;
                }
                next.set(property.clone());
            }
            if let Some(list) = property_list {
                for name in list {
                    // Listed and not given: set to NULL (DSP0200), and still shown.
                    if instance.property(name.as_str()).is_none()
                        && path.key(name.as_str()).is_none()
                        && !server_owned(name)
                    {
                        if let Some(property) = next
                            .properties
                            .get_mut(&cim_schema::model::NameKey(name.as_str()))
                        {
                            property.value = None;
                        }
                    }
                }
            }
            self.check_value_maps(&next)?;
            if next.class_name.matches(FILTER) {
                self.check_filter(&next)?;
            } else if next.class_name.matches(DESTINATION) {
                check_destination(&next)?;
            } else if next.class_name.matches(SUBSCRIPTION) {
                check_policies(&next, Some(&record.instance))?;
                if next.value("SubscriptionState") != record.instance.value("SubscriptionState") {
                    next.set(Property::new(
                        "TimeOfLastStateChange",
                        cim_schema::model::CimType::Datetime,
                        Some(Value::Datetime(now())),
                    ));
                }
            }
            record.instance = next;
            Ok(())
        })
    }

    fn delete(&self, context: &RequestContext, path: &InstancePath) -> Result<(), OperationError> {
        self.commit(|records| {
            let index = records
                .iter()
                .position(|r| same(&r.path, path))
                .ok_or_else(|| crate::provider::not_found(path))?;
            owned_by(&records[index], context)?;
            let target = &records[index].path;
            let referenced = records.iter().any(|r| {
                r.path.class_name.matches(SUBSCRIPTION)
                    && r.path.keybindings.iter().any(|k| match &k.value {
                        Value::Reference(p) => match p.as_ref() {
                            ObjectPath::Instance(p) => {
                                let mut local = p.clone();
                                local.namespace = None;
                                same(&local, target)
                            }
                            ObjectPath::Class(_) => false,
                        },
                        _ => false,
                    })
            });
            if referenced {
                return Err(OperationError::Failed(format!(
                    "{} is used by a subscription: delete the subscription first",
                    crate::provider::path_text(target)
                )));
            }
            records.remove(index);
            Ok(())
        })
    }
}

/// The current time as a CIM timestamp in UTC.
/// A subscription's seconds left before its SubscriptionDuration ends (0: ended), counted
/// from its SubscriptionStartTime; none when it has no duration (NULL or 0: for ever).
fn remaining(subscription: &Instance, now: std::time::SystemTime) -> Option<u64> {
    let duration = match subscription.value("SubscriptionDuration") {
        Some(Value::Uint64(seconds)) if *seconds > 0 => *seconds,
        _ => return None,
    };
    let start = match subscription.value("SubscriptionStartTime") {
        Some(Value::Datetime(at)) => crate::package_jobs::system_time(at)?,
        _ => return None,
    };
    let end = start.checked_add(std::time::Duration::from_secs(duration))?;
    Some(end.duration_since(now).map_or(0, |left| {
        left.as_secs() + u64::from(left.subsec_nanos() > 0)
    }))
}

/// An instance as served: a subscription with a duration shows the time it has left.
fn shown(instance: &Instance) -> Instance {
    let mut instance = instance.clone();
    if let Some(left) = remaining(&instance, std::time::SystemTime::now()) {
        instance.set(Property::new(
            "SubscriptionTimeRemaining",
            cim_schema::model::CimType::Uint64,
            Some(Value::Uint64(left)),
        ));
    }
    instance
}

fn now() -> Datetime {
    crate::package_jobs::timestamp(std::time::SystemTime::now())
}

/// OnFatalErrorPolicy's Disable.
const FATAL_DISABLE: u16 = 3;
/// OnFatalErrorPolicy's Remove.
const FATAL_REMOVE: u16 = 4;

/// The policy `subscription` meets for `outage` (3 Disable or 4 Remove; Ignore and none
/// never act), if it is due: the subscription is enabled, an attempt that began after the
/// subscription took its state failed, and the failed attempts since the later of the
/// outage's start and that change span at least `retries` (DeliveryRetryAttempts times
/// DeliveryRetryInterval: an early retry, brought forward by new indications, does not cut
/// the retries short) and the subscription's FailureTriggerTimeInterval. A subscription made
/// or enabled again during an outage thus waits for failures of its own.
fn fatal_error_due(
    subscription: &Instance,
    outage: &cimguard_indications::Outage,
    retries: std::time::Duration,
) -> Option<u16> {
    let policy = subscription
        .value("OnFatalErrorPolicy")
        .and_then(Value::as_integer)
        .and_then(|policy| u16::try_from(policy).ok())
        .filter(|policy| *policy == FATAL_DISABLE || *policy == FATAL_REMOVE)?;
    let enabled = matches!(
        subscription
            .value("SubscriptionState")
            .and_then(Value::as_integer),
        None | Some(2 | 3)
    );
    if !enabled {
        return None;
    }
    let changed = match subscription.value("TimeOfLastStateChange") {
        Some(Value::Datetime(at)) => crate::package_jobs::system_time(at),
        _ => None,
    }
    .unwrap_or(std::time::UNIX_EPOCH);
    if outage.last <= changed {
        return None;
    }
    let trigger = match subscription.value("FailureTriggerTimeInterval") {
        Some(Value::Uint64(seconds)) => std::time::Duration::from_secs(*seconds),
        _ => std::time::Duration::ZERO,
    };
    let failing = outage
        .last
        .duration_since(outage.since.max(changed))
        .unwrap_or_default();
    (failing >= retries.max(trigger)).then_some(policy)
}

/// The subscriptions that send to the listener of the destination at path `name`: those of
/// every destination with its Destination URL. One listener with several subscriptions to
/// one query (one per node, as pywbem makes them) gets each indication through the first
/// of them only, so only that destination's delivery fails for all of them.
fn listener_subscriptions(records: &[Record], name: &str) -> Vec<InstancePath> {
    fn url(record: &Record) -> Option<&str> {
        record.instance.value("Destination").and_then(Value::as_str)
    }
    let Some(failing) = records.iter().find(|r| {
        r.path.class_name.matches(DESTINATION) && crate::provider::path_text(&r.path) == name
    }) else {
        return Vec::new();
    };
    let handlers: Vec<&InstancePath> = records
        .iter()
        .filter(|r| {
            r.path.class_name.matches(DESTINATION)
                && (same(&r.path, &failing.path) || url(r).is_some() && url(r) == url(failing))
        })
        .map(|r| &r.path)
        .collect();
    records
        .iter()
        .filter(|r| {
            r.path.class_name.matches(SUBSCRIPTION)
                && matches!(r.path.key("Handler"), Some(Value::Reference(p))
                    if matches!(p.as_ref(), ObjectPath::Instance(p)
                        if handlers.iter().any(|h| same(p, h))))
        })
        .map(|r| r.path.clone())
        .collect()
}

/// Sets a subscription's SubscriptionState to 4 (Disabled), changed at `at`.
fn disable(record: &mut Record, at: Datetime) {
    record.instance.set(Property::new(
        "SubscriptionState",
        cim_schema::model::CimType::Uint16,
        Some(Value::Uint16(4)),
    ));
    record.instance.set(Property::new(
        "TimeOfLastStateChange",
        cim_schema::model::CimType::Datetime,
        Some(Value::Datetime(at)),
    ));
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!("{micros:x}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// The file: a CIM-XML `IMETHODRESPONSE` whose `IRETURNVALUE` holds the instances and whose
/// `Owners` output parameter holds their owners in the same order.
fn save(path: &Path, records: &[Record]) -> std::io::Result<()> {
    write_atomically(path, &encode_records(records)?)
}

/// Writes to the shared map the records that differ between `before` and `after`.
fn write_shared(
    shared: &dyn SharedRecords,
    before: &[Record],
    after: &[Record],
) -> Result<(), String> {
    let key = |record: &Record| {
        format!(
            "{SHARED_PREFIX}{}",
            crate::provider::path_text(&record.path)
        )
    };
    for record in after {
        if before.iter().any(|b| b == record) {
            continue;
        }
        let bytes = encode_records(std::slice::from_ref(record)).map_err(|e| e.to_string())?;
        let text = String::from_utf8(bytes).map_err(|e| e.to_string())?;
        shared.put(&key(record), Some(text))?;
    }
    for record in before {
        if !after.iter().any(|a| a.path == record.path) {
            shared.put(&key(record), None)?;
        }
    }
    Ok(())
}

/// The records as one CIM-XML document (the file's format, and each shared value's).
fn encode_records(records: &[Record]) -> std::io::Result<Vec<u8>> {
    let message = Message::new(
        "subscriptions",
        Body::Response(Response::IMethod(IMethodResponse {
            name: Name::new("SubscriptionStore"),
            result: Ok(IMethodReturn {
                return_value: Some(
                    records
                        .iter()
                        .map(|r| Data::NamedInstance(r.path.clone(), r.instance.clone()))
                        .collect(),
                ),
                params: vec![ParamValue::typed(
                    "Owners",
                    Some(Value::Array(
                        records
                            .iter()
                            .map(|r| Some(Value::String(r.owner.clone())))
                            .collect(),
                    )),
                )],
            }),
        })),
    );
    encode(&message).map_err(std::io::Error::other)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let directory = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(directory)?;
    let temporary = directory.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("subscriptions")
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(directory)?.sync_all()
}

/// Records as this version stores them: a subscription's references (its keys and its
/// Filter and Handler properties) without host and with the server's spelling of their
/// namespace, and one record per path. Records written by earlier versions could hold a
/// client's spelling (`interop`, `/root/interop`, a host); two that differ only so are one
/// subscription, and the later copy is dropped (it would deliver every indication twice).
fn tidy(records: Vec<Record>) -> Vec<Record> {
    let mut kept: Vec<Record> = Vec::with_capacity(records.len());
    for mut record in records {
        if record.path.class_name.matches(SUBSCRIPTION) {
            for binding in &mut record.path.keybindings {
                binding.value = local_reference(binding.value.clone());
            }
            local_references(&mut record.instance);
        }
        if kept.iter().any(|k| same(&k.path, &record.path)) {
            tracing::warn!(
                path = %crate::provider::path_text(&record.path),
                "a stored subscription names the same filter and destination as another; \
                 the copy is dropped"
            );
            continue;
        }
        kept.push(record);
    }
    kept
}

/// A subscription's Filter and Handler properties as [`local_reference`] writes them.
fn local_references(instance: &mut Instance) {
    for role in ["Filter", "Handler"] {
        if let Some(property) = instance
            .properties
            .get_mut(&cim_schema::model::NameKey(role))
        {
            if let Some(value) = property.value.take() {
                property.value = Some(local_reference(value));
            }
        }
    }
}

fn load(path: &Path) -> Result<Vec<Record>, StoreError> {
    let bytes = std::fs::read(path).map_err(|source| StoreError::Io {
        path: path.to_owned(),
        source,
    })?;
    decode_records(&bytes).map_err(|reason| StoreError::Corrupt {
        path: path.to_owned(),
        reason,
    })
}

/// The records of a document [`encode_records`] wrote.
fn decode_records(bytes: &[u8]) -> Result<Vec<Record>, String> {
    let corrupt = |reason: String| reason;
    let limits = Limits {
        input_bytes_max: usize::MAX,
        elements_max: usize::MAX,
        ..Limits::DEFAULT
    };
    let message = decode(bytes, &limits).map_err(|e| corrupt(e.to_string()))?;
    let Body::Response(Response::IMethod(IMethodResponse {
        result: Ok(IMethodReturn {
            return_value,
            params,
        }),
        ..
    })) = message.body
    else {
        return Err(corrupt("not a subscription store".into()));
    };
    let owners: Vec<String> = match params.first().map(|p| &p.value) {
        Some(Data::Value(Value::Array(owners))) => owners
            .iter()
            .map(|o| {
                o.as_ref()
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect(),
        Some(Data::Untyped(cim_schema::xml::Untyped::Array(owners))) => owners
            .iter()
            .map(|o| o.clone().unwrap_or_default())
            .collect(),
        _ => Vec::new(),
    };
    let items = return_value.unwrap_or_default();
    if owners.len() != items.len() {
        return Err(corrupt("owners and instances differ in number".into()));
    }
    items
        .into_iter()
        .zip(owners)
        .map(|(item, owner)| match item {
            Data::NamedInstance(path, instance) => Ok(Record {
                owner,
                path,
                instance,
            }),
            _ => Err(corrupt("an item is not a named instance".into())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cim_schema::model::CimType;

    fn context(principal: &str, role: Role) -> RequestContext {
        RequestContext {
            principal: Arc::from(principal),
            role,
            namespace: Arc::from(INTEROP),
        }
    }

    fn filter(name: &str, query: &str) -> Instance {
        Instance::new(FILTER)
            .with(Property::new(
                "Name",
                CimType::String,
                Some(Value::String(name.into())),
            ))
            .with(Property::new(
                "Query",
                CimType::String,
                Some(Value::String(query.into())),
            ))
            .with(Property::new(
                "QueryLanguage",
                CimType::String,
                Some(Value::String("WQL".into())),
            ))
    }

    fn destination(name: &str) -> Instance {
        Instance::new(DESTINATION)
            .with(Property::new(
                "Name",
                CimType::String,
                Some(Value::String(name.into())),
            ))
            .with(Property::new(
                "Destination",
                CimType::String,
                Some(Value::String("https://127.0.0.1:5999".into())),
            ))
    }

    fn reference(path: &InstancePath) -> Value {
        Value::Reference(Box::new(ObjectPath::Instance(path.clone())))
    }

    fn subscription(filter: &InstancePath, handler: &InstancePath) -> Instance {
        Instance::new(SUBSCRIPTION)
            .with(Property::new(
                "Filter",
                CimType::Reference(None),
                Some(reference(filter)),
            ))
            .with(Property::new(
                "Handler",
                CimType::Reference(None),
                Some(reference(handler)),
            ))
    }

    const QUERY: &str = "SELECT * FROM CIM_InstModification";

    /// A filter shows the namespaces it takes indications from: its SourceNamespaces, else
    /// its deprecated SourceNamespace, else its own.
    #[test]
    fn a_filter_shows_its_source_namespaces() {
        let store = SubscriptionStore::open(None, "node1").unwrap();
        let alice = context("alice", Role::Monitor);
        let sources = |path: &InstancePath| {
            store
                .get(&alice, path)
                .unwrap()
                .value("SourceNamespaces")
                .cloned()
        };
        let own = store.create(&alice, filter("own", QUERY)).unwrap();
        assert_eq!(
            sources(&own),
            Some(Value::Array(vec![Some(Value::String(INTEROP.into()))]))
        );
        let single = store
            .create(
                &alice,
                filter("single", QUERY).with(Property::new(
                    "SourceNamespace",
                    CimType::String,
                    Some(Value::String("root/interop".into())),
                )),
            )
            .unwrap();
        assert_eq!(
            sources(&single),
            Some(Value::Array(vec![Some(Value::String(
                "root/interop".into()
            ))]))
        );
    }

    fn with_u16(instance: Instance, name: &str, value: u16) -> Instance {
        instance.with(Property::new(
            name,
            CimType::Uint16,
            Some(Value::Uint16(value)),
        ))
    }

    /// A listener that keeps failing disables or deletes the subscriptions whose
    /// OnFatalErrorPolicy says so, once the failures span the retries and their
    /// FailureTriggerTimeInterval; Ignore and no policy leave theirs. So do failures that
    /// began before the subscription took its state. Another destination with the same URL
    /// is the same listener; one with another URL is not.
    #[test]
    fn a_failing_listener_meets_each_subscriptions_on_fatal_error_policy() {
        use std::time::{Duration, SystemTime};
        let store = SubscriptionStore::open(None, "node1").unwrap();
        let alice = context("alice", Role::Monitor);
        let d = store.create(&alice, destination("d")).unwrap();
        let twin = store.create(&alice, destination("twin")).unwrap();
        let other = store
            .create(
                &alice,
                destination("other").with(Property::new(
                    "Destination",
                    CimType::String,
                    Some(Value::String("https://127.0.0.1:5998".into())),
                )),
            )
            .unwrap();
        let mut made = Vec::new();
        for (name, handler, policy, trigger) in [
            ("none", &d, None, None),
            ("ignore", &d, Some(2), None),
            ("disable", &d, Some(3), None),
            ("remove", &d, Some(4), None),
            ("later", &d, Some(4), Some(3600)),
            ("twin", &twin, Some(4), None),
            ("other", &other, Some(4), None),
        ] {
            let f = store.create(&alice, filter(name, QUERY)).unwrap();
            let mut s = subscription(&f, handler);
            if let Some(policy) = policy {
                s = with_u16(s, "OnFatalErrorPolicy", policy);
            }
            if let Some(seconds) = trigger {
                s.set(Property::new(
                    "FailureTriggerTimeInterval",
                    CimType::Uint64,
                    Some(Value::Uint64(seconds)),
                ));
            }
            made.push((name, store.create(&alice, s).unwrap()));
        }
        let name = crate::provider::path_text(&d);
        let retries = Duration::from_secs(90);
        let fatal = |outage| {
            store
                .apply_fatal_error_policy(&name, &outage, retries)
                .unwrap()
        };
        let now = SystemTime::now();
        // Failures that began before the subscriptions were made.
        let old = cimguard_indications::Outage {
            since: now - Duration::from_secs(600),
            last: now - Duration::from_secs(300),
            failures: 9,
        };
        assert_eq!(fatal(old), (0, 0));
        // Failures since, but for less than the retries take.
        let short = cimguard_indications::Outage {
            since: now,
            last: now + Duration::from_secs(89),
            failures: 9,
        };
        assert_eq!(fatal(short), (0, 0));
        // Failures since, for as long as the retries take.
        let outage = cimguard_indications::Outage {
            last: now + Duration::from_secs(90),
            ..short
        };
        assert_eq!(fatal(outage), (1, 2));
        let state = |path: &InstancePath| {
            store
                .get(&alice, path)
                .ok()
                .map(|i| i.value("SubscriptionState").cloned())
        };
        let states: Vec<_> = made.iter().map(|(n, p)| (*n, state(p))).collect();
        let enabled = Some(Some(Value::Uint16(2)));
        assert_eq!(
            states,
            [
                ("none", enabled.clone()),
                ("ignore", enabled.clone()),
                ("disable", Some(Some(Value::Uint16(4)))),
                ("remove", None),
                ("later", enabled.clone()),
                ("twin", None),
                ("other", enabled),
            ]
        );
        // Done once: the disabled one is not disabled again.
        assert_eq!(fatal(outage), (0, 0));
        // An hour into the outage, the one that waits its FailureTriggerTimeInterval goes.
        let hour = cimguard_indications::Outage {
            last: now + Duration::from_secs(3600),
            ..outage
        };
        assert_eq!(fatal(hour), (0, 1));
        // Enabled again while the outage goes on, it waits for failures of its own, for as
        // long as the retries take.
        let disabled = &made[2].1;
        let enable = with_u16(Instance::new(SUBSCRIPTION), "SubscriptionState", 2);
        let before = SystemTime::now();
        store
            .modify(
                &alice,
                disabled,
                enable,
                Some(&[Name::new("SubscriptionState")]),
            )
            .unwrap();
        let enabled_at = SystemTime::now();
        // An attempt that began before, and failed after (it was under way).
        let under_way = cimguard_indications::Outage {
            since: before - Duration::from_secs(3600),
            last: before - Duration::from_secs(1),
            failures: 99,
        };
        assert_eq!(fatal(under_way), (0, 0));
        let soon = cimguard_indications::Outage {
            last: enabled_at + Duration::from_secs(60),
            ..outage
        };
        assert_eq!(fatal(soon), (0, 0));
        let later = cimguard_indications::Outage {
            last: enabled_at + Duration::from_secs(91),
            ..outage
        };
        assert_eq!(fatal(later), (1, 0));
    }

    /// OnFatalErrorPolicy Other is refused (CIM_ERR_NOT_SUPPORTED) when made or set, while
    /// a subscription that holds it already can still be modified otherwise;
    /// RepeatNotificationPolicy takes any value of its ValueMap.
    #[test]
    fn on_fatal_error_policy_other_is_not_supported() {
        let store = SubscriptionStore::open(None, "node1").unwrap();
        let alice = context("alice", Role::Monitor);
        let d = store.create(&alice, destination("d")).unwrap();
        let f = store.create(&alice, filter("f", QUERY)).unwrap();
        let refused = store
            .create(
                &alice,
                with_u16(subscription(&f, &d), "OnFatalErrorPolicy", 1),
            )
            .unwrap_err();
        assert!(
            matches!(&refused, OperationError::NotSupported(text) if text.contains("OnFatalErrorPolicy")),
            "{refused:?}"
        );
        let s = store
            .create(
                &alice,
                with_u16(subscription(&f, &d), "RepeatNotificationPolicy", 3),
            )
            .unwrap();
        let set = |name: &str, value: u16| {
            store.modify(
                &alice,
                &s,
                with_u16(Instance::new(SUBSCRIPTION), name, value),
                Some(&[Name::new(name)]),
            )
        };
        let refused = set("OnFatalErrorPolicy", 1).unwrap_err();
        assert!(
            matches!(refused, OperationError::NotSupported(_)),
            "{refused:?}"
        );
        // One stored with Other (an older version took it) can still be disabled.
        store
            .commit(|records| {
                for record in records.iter_mut().filter(|r| same(&r.path, &s)) {
                    record.instance = with_u16(record.instance.clone(), "OnFatalErrorPolicy", 1);
                }
                Ok(())
            })
            .unwrap();
        set("SubscriptionState", 4).unwrap();
        assert_eq!(
            store.get(&alice, &s).unwrap().value("SubscriptionState"),
            Some(&Value::Uint16(4))
        );
    }

    /// A subscription's start, last change of state and time left stay the server's,
    /// whatever ModifyInstance sends (with a PropertyList naming them or not).
    #[test]
    fn a_subscriptions_own_times_stay_the_servers() {
        let store = SubscriptionStore::open(None, "node1").unwrap();
        let alice = context("alice", Role::Monitor);
        let f = store.create(&alice, filter("f", QUERY)).unwrap();
        let d = store.create(&alice, destination("d")).unwrap();
        let s = store.create(&alice, subscription(&f, &d)).unwrap();
        let before = store.get(&alice, &s).unwrap();
        let old = Datetime::parse("20000101000000.000000+000").unwrap();
        let mut sent = before.clone();
        for name in ["SubscriptionStartTime", "TimeOfLastStateChange"] {
            sent.set(Property::new(
                name,
                CimType::Datetime,
                Some(Value::Datetime(old)),
            ));
        }
        sent.set(Property::new(
            "SubscriptionTimeRemaining",
            CimType::Uint64,
            Some(Value::Uint64(5)),
        ));
        store.modify(&alice, &s, sent.clone(), None).unwrap();
        let names = [
            Name::new("SubscriptionStartTime"),
            Name::new("TimeOfLastStateChange"),
            Name::new("SubscriptionTimeRemaining"),
        ];
        // Listed and not given (NULL otherwise), then listed and given.
        store
            .modify(&alice, &s, Instance::new(SUBSCRIPTION), Some(&names))
            .unwrap();
        store.modify(&alice, &s, sent, Some(&names)).unwrap();
        let after = store.get(&alice, &s).unwrap();
        for name in &names {
            assert_eq!(
                after.value(name.as_str()),
                before.value(name.as_str()),
                "{name}"
            );
        }
    }

    /// Records an earlier version stored with a client's spelling of the references are
    /// read as this one writes them, and two that differ only so are one subscription.
    #[test]
    fn stored_spellings_of_one_subscription_are_read_as_one() {
        let store = SubscriptionStore::open(None, "node1").unwrap();
        let alice = context("alice", Role::Monitor);
        let f = store.create(&alice, filter("f", QUERY)).unwrap();
        let d = store.create(&alice, destination("d")).unwrap();
        let s = store.create(&alice, subscription(&f, &d)).unwrap();
        let mut records = store.snapshot();
        let original = records[2].clone();
        let mut spelt = original.clone();
        let respell = |value: &mut Value| {
            if let Value::Reference(path) = value {
                if let ObjectPath::Instance(path) = path.as_mut() {
                    path.namespace = Some("/INTEROP/".into());
                    path.host = Some("client.example".into());
                }
            }
        };
        for binding in &mut spelt.path.keybindings {
            respell(&mut binding.value);
        }
        for role in ["Filter", "Handler"] {
            let mut property = spelt.instance.property(role).unwrap().clone();
            respell(property.value.as_mut().unwrap());
            spelt.instance.set(property);
        }
        records[2] = spelt.clone();
        records.push(spelt);
        let tidied = tidy(records);
        assert_eq!(tidied.len(), 3, "{tidied:?}");
        assert_eq!(tidied[2], original);
        assert!(same(&tidied[2].path, &s));
    }

    /// A subscription's references name a filter and a destination of root/interop, in
    /// either spelling or without namespace; one naming another namespace, or the wrong
    /// class, names nothing.
    #[test]
    fn a_subscription_names_its_filter_and_destination_in_root_interop() {
        let store = SubscriptionStore::open(None, "node1").unwrap();
        let alice = context("alice", Role::Monitor);
        let f = store.create(&alice, filter("f", QUERY)).unwrap();
        let d = store.create(&alice, destination("d")).unwrap();
        let in_namespace = |path: &InstancePath, namespace: &str| {
            let mut path = path.clone();
            path.namespace = Some(namespace.to_owned());
            path
        };
        for (filter, handler, wrong) in [
            (
                in_namespace(&f, "root/cimv2"),
                d.clone(),
                "namespace root/cimv2",
            ),
            (
                f.clone(),
                in_namespace(&d, "root/nowhere"),
                "namespace root/nowhere",
            ),
            (d.clone(), d.clone(), "is not a CIM_IndicationFilter"),
            (
                f.clone(),
                f.clone(),
                "is not a CIM_ListenerDestinationCIMXML",
            ),
        ] {
            match store.create(&alice, subscription(&filter, &handler)) {
                Err(OperationError::InvalidParameter(text)) => {
                    assert!(text.contains(wrong), "{text}");
                }
                other => panic!("{wrong}: {other:?}"),
            }
        }
        let s = store
            .create(&alice, subscription(&in_namespace(&f, "interop"), &d))
            .unwrap();
        // The same pair in the other spelling is the same subscription.
        let again = subscription(&f, &in_namespace(&d, "/root/interop"));
        assert!(matches!(
            store.create(&alice, again),
            Err(OperationError::AlreadyExists(_))
        ));
        assert!(store.get(&alice, &s).is_ok());
        assert_eq!(store.snapshot().len(), 3);
    }

    #[test]
    fn what_is_created_survives_a_restart() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("subscriptions.xml");
        let store = SubscriptionStore::open(Some(file.clone()), "node1").unwrap();
        let alice = context("alice", Role::Monitor);
        let f = store.create(&alice, filter("f", QUERY)).unwrap();
        let d = store.create(&alice, destination("d")).unwrap();
        let s = store.create(&alice, subscription(&f, &d)).unwrap();
        let reopened = SubscriptionStore::open(Some(file), "node1").unwrap();
        assert_eq!(reopened.snapshot(), store.snapshot());
        let loaded = reopened.get(&alice, &s).unwrap();
        assert_eq!(loaded.value("SubscriptionState"), Some(&Value::Uint16(2)));
        assert_eq!(reopened.snapshot()[0].owner, "alice");
        assert_eq!(f.key("SystemName"), Some(&Value::String("node1".into())));
    }

    #[test]
    fn a_subscription_ends_after_its_duration() {
        let store = SubscriptionStore::open(None, "node1").unwrap();
        let alice = context("alice", Role::Monitor);
        let f = store.create(&alice, filter("f", QUERY)).unwrap();
        let d = store.create(&alice, destination("d")).unwrap();
        let d2 = store.create(&alice, destination("d2")).unwrap();
        let short = subscription(&f, &d).with(Property::new(
            "SubscriptionDuration",
            CimType::Uint64,
            Some(Value::Uint64(1)),
        ));
        let short = store.create(&alice, short).unwrap();
        let forever = store.create(&alice, subscription(&f, &d2)).unwrap();
        let shown = store.get(&alice, &short).unwrap();
        assert!(matches!(
            shown.value("SubscriptionStartTime"),
            Some(Value::Datetime(_))
        ));
        assert!(matches!(
            shown.value("SubscriptionTimeRemaining"),
            Some(Value::Uint64(0 | 1))
        ));
        assert_eq!(
            store
                .get(&alice, &forever)
                .unwrap()
                .value("SubscriptionTimeRemaining"),
            None
        );
        // Once the second is over it sends nothing, shows 0 left, and is deleted.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while store.active().len() == 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let active = store.active();
        assert_eq!(active.len(), 1);
        assert!(
            active[0].destination.contains("d2"),
            "{}",
            active[0].destination
        );
        assert_eq!(
            store
                .get(&alice, &short)
                .unwrap()
                .value("SubscriptionTimeRemaining"),
            Some(&Value::Uint64(0))
        );
        assert_eq!(store.remove_expired(), 1);
        assert!(store.get(&alice, &short).is_err());
        assert!(store.get(&alice, &forever).is_ok());
        assert_eq!(store.remove_expired(), 0);
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        let directory = tempfile::tempdir().unwrap();
        // The parent of the store file is a regular file: every write fails.
        let blocker = directory.path().join("blocker");
        std::fs::write(&blocker, b"").unwrap();
        let store = SubscriptionStore::open(Some(blocker.join("subscriptions.xml")), "n").unwrap();
        let error = store
            .create(&context("alice", Role::Monitor), filter("f", QUERY))
            .unwrap_err();
        assert!(matches!(error, OperationError::Failed(_)));
        assert!(store.snapshot().is_empty());
    }

    #[test]
    fn owners_change_their_own_objects_and_full_admin_any() {
        let store = SubscriptionStore::open(None, "n").unwrap();
        let alice = context("alice", Role::Monitor);
        let bob = context("bob", Role::Monitor);
        let root = context("root", Role::FullAdmin);
        let f = store.create(&alice, filter("f", QUERY)).unwrap();
        assert!(matches!(
            store.delete(&bob, &f),
            Err(OperationError::AccessDenied(_))
        ));
        let changed = filter("f", "SELECT * FROM CIM_InstCreation");
        assert!(matches!(
            store.modify(&bob, &f, changed.clone(), None),
            Err(OperationError::AccessDenied(_))
        ));
        store.modify(&alice, &f, changed, None).unwrap();
        assert_eq!(
            store.get(&bob, &f).unwrap().value("Query"),
            Some(&Value::String("SELECT * FROM CIM_InstCreation".into()))
        );
        // A property listed and not given is set to NULL, and still shown.
        let named = filter("f", QUERY).with(Property::new(
            "ElementName",
            CimType::String,
            Some(Value::String("named".into())),
        ));
        store.modify(&alice, &f, named, None).unwrap();
        store
            .modify(
                &alice,
                &f,
                filter("f", QUERY),
                Some(&[Name::new("ElementName")]),
            )
            .unwrap();
        let shown = store.get(&alice, &f).unwrap();
        let property = shown.property("ElementName").expect("ElementName shown");
        assert_eq!(property.value, None);
        store.delete(&root, &f).unwrap();
        assert!(matches!(
            store.get(&alice, &f),
            Err(OperationError::NotFound(_))
        ));
    }

    #[test]
    fn bad_objects_are_refused() {
        let store = SubscriptionStore::open(None, "n").unwrap();
        let alice = context("alice", Role::Monitor);
        assert!(matches!(
            store.create(&alice, filter("f", "SELECT FROM")),
            Err(OperationError::InvalidQuery(_))
        ));
        let mut wrong_language = filter("g", QUERY);
        wrong_language.set(Property::new(
            "QueryLanguage",
            CimType::String,
            Some(Value::String("XQL".into())),
        ));
        assert!(matches!(
            store.create(&alice, wrong_language.clone()),
            Err(OperationError::QueryLanguageNotSupported(_))
        ));
        // An empty language is named as such.
        wrong_language.set(Property::new(
            "QueryLanguage",
            CimType::String,
            Some(Value::String(String::new())),
        ));
        match store.create(&alice, wrong_language) {
            Err(OperationError::QueryLanguageNotSupported(text)) => {
                assert_eq!(
                    text,
                    "query language \"\" is not supported: filters are WQL or DMTF:CQL"
                );
            }
            other => panic!("{other:?}"),
        }
        let mut ftp = destination("d");
        ftp.set(Property::new(
            "Destination",
            CimType::String,
            Some(Value::String("ftp://x".into())),
        ));
        assert!(matches!(
            store.create(&alice, ftp),
            Err(OperationError::InvalidParameter(_))
        ));
        let f = store.create(&alice, filter("f", QUERY)).unwrap();
        let missing = InstancePath::new(DESTINATION).with_key("Name", "nowhere");
        assert!(matches!(
            store.create(&alice, subscription(&f, &missing)),
            Err(OperationError::InvalidParameter(_))
        ));
        assert!(matches!(
            store.create(&alice, filter("f", QUERY)),
            Err(OperationError::AlreadyExists(_))
        ));
        assert_eq!(store.snapshot().len(), 1);
    }

    /// A store installed in an object manager over the shipped schema, as the agent has it.
    fn installed(system_name: &str) -> Arc<SubscriptionStore> {
        let repository = cim_schema::shipped::repository().unwrap();
        let mut manager = ObjectManager::new(repository, system_name);
        let store = Arc::new(SubscriptionStore::open(None, system_name).unwrap());
        store.install(&mut manager).unwrap();
        store
    }

    fn uint16(instance: Instance, name: &str, value: u16) -> Instance {
        instance.with(Property::new(
            name,
            CimType::Uint16,
            Some(Value::Uint16(value)),
        ))
    }

    fn sources(instance: Instance, namespaces: &[&str]) -> Instance {
        instance.with(Property::new(
            "SourceNamespaces",
            CimType::String,
            Some(Value::Array(
                namespaces
                    .iter()
                    .map(|n| Some(Value::String((*n).into())))
                    .collect(),
            )),
        ))
    }

    #[test]
    fn an_installed_store_checks_filters_against_the_schema() {
        let store = installed("node1");
        let alice = context("alice", Role::Monitor);
        let cimv2 = |name: &str, query: &str| sources(filter(name, query), &["root/cimv2"]);
        for query in [
            "SELECT * FROM CIM_InstModification WHERE Bogus = 1",
            "SELECT * FROM CIM_InstModification WHERE SourceInstance ISA HP_SGPackage \
             AND SourceInstance.Bogus = 1",
            "SELECT * FROM CIM_NoSuchIndication",
        ] {
            assert!(
                matches!(
                    store.create(&alice, cimv2("f", query)),
                    Err(OperationError::InvalidQuery(_))
                ),
                "{query}"
            );
        }
        assert!(matches!(
            store.create(&alice, cimv2("f", "SELECT * FROM HP_SGPackage")),
            Err(OperationError::InvalidParameter(_))
        ));
        assert!(matches!(
            store.create(&alice, sources(filter("f", QUERY), &["root/nope"])),
            Err(OperationError::InvalidParameter(_))
        ));
        // Without SourceNamespaces, the filter's namespace: the cluster's classes are not there.
        assert!(matches!(
            store.create(&alice, filter("f", "SELECT * FROM HP_SGAlertIndication")),
            Err(OperationError::InvalidQuery(_))
        ));
        assert!(store.snapshot().is_empty());
        store
            .create(
                &alice,
                cimv2(
                    "f",
                    "SELECT * FROM CIM_InstModification \
                     WHERE SourceInstance.NodeState <> PreviousInstance.NodeState",
                ),
            )
            .unwrap();
    }

    #[test]
    fn an_installed_store_refuses_values_outside_value_maps_and_other_systems() {
        let store = installed("node1");
        let alice = context("alice", Role::Monitor);
        assert!(matches!(
            store.create(&alice, uint16(destination("d"), "Protocol", 4)),
            Err(OperationError::InvalidParameter(_))
        ));
        assert!(matches!(
            store.create(&alice, uint16(destination("d"), "PersistenceType", 0)),
            Err(OperationError::InvalidParameter(_))
        ));
        let elsewhere = destination("d").with(Property::new(
            "SystemName",
            CimType::String,
            Some(Value::String("node2".into())),
        ));
        assert!(matches!(
            store.create(&alice, elsewhere),
            Err(OperationError::InvalidParameter(_))
        ));
        let upper = destination("d").with(Property::new(
            "SystemName",
            CimType::String,
            Some(Value::String("NODE1".into())),
        ));
        let d = store.create(&alice, upper).unwrap();
        assert_eq!(d.key("SystemName"), Some(&Value::String("node1".into())));
        let f = store.create(&alice, filter("f", QUERY)).unwrap();
        assert!(matches!(
            store.create(
                &alice,
                uint16(subscription(&f, &d), "SubscriptionState", 99)
            ),
            Err(OperationError::InvalidParameter(_))
        ));
        let s = store.create(&alice, subscription(&f, &d)).unwrap();
        let changed = uint16(Instance::new(SUBSCRIPTION), "SubscriptionState", 99);
        assert!(matches!(
            store.modify(&alice, &s, changed, None),
            Err(OperationError::InvalidParameter(_))
        ));
        assert_eq!(
            store.get(&alice, &s).unwrap().value("SubscriptionState"),
            Some(&Value::Uint16(2))
        );
        assert_eq!(store.snapshot().len(), 3);
    }

    #[test]
    fn a_filter_without_source_namespaces_takes_its_own_namespace() {
        let store = SubscriptionStore::open(None, "n").unwrap();
        let alice = context("alice", Role::Monitor);
        let f = store.create(&alice, filter("f", QUERY)).unwrap();
        let g = store
            .create(&alice, sources(filter("g", QUERY), &["root/cimv2"]))
            .unwrap();
        let d = store.create(&alice, destination("d")).unwrap();
        store.create(&alice, subscription(&f, &d)).unwrap();
        store.create(&alice, subscription(&g, &d)).unwrap();
        let mut taken: Vec<(String, Vec<String>)> = store
            .active()
            .into_iter()
            .map(|a| (a.filter_name, a.source_namespaces))
            .collect();
        taken.sort();
        assert_eq!(
            taken,
            [
                ("f".to_owned(), vec![INTEROP.to_owned()]),
                ("g".to_owned(), vec!["root/cimv2".to_owned()])
            ]
        );
    }

    #[test]
    fn value_maps_have_entries_and_ranges() {
        let map = |entries: &[&str]| -> Vec<Option<Value>> {
            entries
                .iter()
                .map(|e| Some(Value::String((*e).into())))
                .collect()
        };
        let protocol = map(&["1", "2", "3", "4", "5", "6", ".."]);
        assert!(in_value_map(&protocol, &Value::Uint16(2)));
        assert!(in_value_map(&protocol, &Value::Uint16(99)));
        let state = map(&["0", "1", "2", "3", "4"]);
        assert!(in_value_map(&state, &Value::Uint16(4)));
        assert!(!in_value_map(&state, &Value::Uint16(99)));
        let ranges = map(&["2", "5..7", "32768.."]);
        assert!(in_value_map(&ranges, &Value::Uint16(6)));
        assert!(in_value_map(&ranges, &Value::Uint16(40000)));
        assert!(!in_value_map(&ranges, &Value::Uint16(8)));
        assert!(!in_value_map(&map(&["a", "b"]), &Value::String("c".into())));
        assert!(in_value_map(&map(&["a", "b"]), &Value::String("b".into())));
    }

    #[test]
    fn a_filter_in_use_cannot_be_deleted_and_keys_cannot_change() {
        let store = SubscriptionStore::open(None, "n").unwrap();
        let alice = context("alice", Role::Monitor);
        let f = store.create(&alice, filter("f", QUERY)).unwrap();
        let d = store.create(&alice, destination("d")).unwrap();
        let s = store.create(&alice, subscription(&f, &d)).unwrap();
        assert!(matches!(
            store.delete(&alice, &f),
            Err(OperationError::Failed(_))
        ));
        assert!(matches!(
            store.modify(&alice, &f, filter("renamed", QUERY), None),
            Err(OperationError::InvalidParameter(_))
        ));
        store.delete(&alice, &s).unwrap();
        store.delete(&alice, &f).unwrap();
        assert_eq!(store.snapshot().len(), 1);
    }
}
