//! The interop namespace (DSP1033 Profile Registration, DSP0200's `root/interop`): the object
//! manager, its CIM-XML communication mechanism, one CIM_Namespace per namespace served, the
//! registered profiles and the associations between them, so that a client such as pywbem's
//! `WBEMServer` finds the interop namespace, the namespaces, the brand, the version and the
//! profiles with no special case.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cim_schema::model::{
    Class, Instance, InstancePath, KeyBinding, Name, ObjectPath, Property, Value,
};

use crate::cimom::ObjectManager;
use crate::error::OperationError;
use crate::package_jobs::{interval, timestamp};
use crate::provider::{InstanceProvider, Instances, MethodOutput, RequestContext};
use crate::statistics::{Figure, Statistics, KINDS};

/// The interop namespace as the repository spells it.
pub const INTEROP: &str = "root/interop";

/// The classes the interop provider serves.
pub const CLASSES: &[&str] = &[
    "CIM_ObjectManager",
    "CIM_ObjectManagerCommunicationMechanism",
    "CIM_Namespace",
    "CIM_RegisteredProfile",
    "CIM_ElementConformsToProfile",
    "CIM_ReferencedProfile",
    INDICATION_SERVICE_CLASS,
    "CIM_IndicationServiceCapabilities",
    "CIM_ElementCapabilities",
    STATISTICS_CLASS,
];

/// The class of the server's statistics by operation type.
pub const STATISTICS_CLASS: &str = "CIM_CIMOMStatisticalData";

/// The one property of CIM_ObjectManager a client may modify.
const GATHER: &str = "GatherStatisticalData";

/// The class of the indication service's instance: CIM_IndicationService with counters.
pub const INDICATION_SERVICE_CLASS: &str = "CIMGuard_IndicationService";

/// The name of the DMTF Indications profile (DSP1054) as registered.
pub const INDICATIONS_PROFILE: &str = "Indications";

/// The name of the DMTF Profile Registration profile (DSP1033) as registered.
pub const PROFILE_REGISTRATION: &str = "Profile Registration";

/// How many times the indication service retries a delivery (`DeliveryRetryAttempts`).
pub const DELIVERY_RETRY_ATTEMPTS: u16 = 3;

/// Seconds between delivery retries (`DeliveryRetryInterval`).
pub const DELIVERY_RETRY_INTERVAL_SECONDS: u32 = 30;

/// What happens to a subscription whose destination stays unreachable
/// (`SubscriptionRemovalAction`: 2 = remove, 3 = disable, 4 = ignore).
pub const SUBSCRIPTION_REMOVAL_ACTION: u16 = 3;

/// Seconds of failed deliveries before the removal action (`SubscriptionRemovalTimeInterval`).
pub const SUBSCRIPTION_REMOVAL_TIME_INTERVAL_SECONDS: u32 = 2_592_000;

/// A profile this server implements, for CIM_RegisteredProfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// `RegisteredOrganization` (2 = DMTF, 1 = Other).
    pub organization: u16,
    /// `OtherRegisteredOrganization`, for organization 1.
    pub other_organization: Option<String>,
    /// `RegisteredName`.
    pub name: String,
    /// `RegisteredVersion`.
    pub version: String,
    /// The central or scoping instances that conform to it (with their namespaces).
    pub central: Vec<InstancePath>,
    /// The profiles it references (by `name`), for CIM_ReferencedProfile.
    pub references: Vec<String>,
}

/// What the indication service has done: CIMGuard_IndicationService's counters (and the
/// agent's /metrics). The indication service keeps them; the interop provider reads them at
/// each request.
#[derive(Debug, Default)]
pub struct IndicationCounters {
    /// NoticesRead.
    pub notices_read: AtomicU64,
    /// NoticesMissed.
    pub notices_missed: AtomicU64,
    /// IndicationsQueued.
    pub queued: AtomicU64,
    /// IndicationsDelivered.
    pub delivered: AtomicU64,
    /// DeliveryFailures.
    pub delivery_failures: AtomicU64,
    /// IndicationsDropped (since the outbox was created).
    pub dropped: AtomicU64,
    /// IndicationsPending.
    pub pending: AtomicU64,
    /// Destinations.
    pub destinations: AtomicU64,
    /// FailingDestinations.
    pub failing: AtomicU64,
}

impl IndicationCounters {
    /// The counters as (CIMGuard_IndicationService property, value, is a counter), in the
    /// class's order.
    pub fn values(&self) -> [(&'static str, u64, bool); 9] {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        [
            ("NoticesRead", get(&self.notices_read), true),
            ("NoticesMissed", get(&self.notices_missed), true),
            ("IndicationsQueued", get(&self.queued), true),
            ("IndicationsDelivered", get(&self.delivered), true),
            ("DeliveryFailures", get(&self.delivery_failures), true),
            ("IndicationsDropped", get(&self.dropped), true),
            ("IndicationsPending", get(&self.pending), false),
            ("Destinations", get(&self.destinations), false),
            ("FailingDestinations", get(&self.failing), false),
        ]
    }
}

/// A counter's value typed as CIMGuard_IndicationService declares it.
fn counter_value(name: &str, value: u64) -> Value {
    match name {
        "Destinations" | "FailingDestinations" => {
            Value::Uint32(u32::try_from(value).unwrap_or(u32::MAX))
        }
        _ => Value::Uint64(value),
    }
}

/// What the interop provider says about the server.
#[derive(Debug, Clone)]
pub struct InteropSettings {
    /// The product name (`ElementName` of CIM_ObjectManager).
    pub product: String,
    /// The product version.
    pub version: String,
    /// The system name (`SystemName` keys): the node's host name.
    pub system_name: String,
    /// The profiles registered beside DMTF Profile Registration.
    pub profiles: Vec<Profile>,
    /// What CIM_IndicationService says of delivery.
    pub indication_service: IndicationServiceValues,
    /// What the indication service has done, read at each request.
    pub indication_counters: Arc<IndicationCounters>,
}

/// CIM_IndicationService's delivery properties: what the indication service does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndicationServiceValues {
    /// DeliveryRetryAttempts.
    pub retry_attempts: u16,
    /// DeliveryRetryInterval, in seconds.
    pub retry_interval_seconds: u32,
    /// SubscriptionRemovalAction (2 remove, 3 disable, 4 ignore).
    pub removal_action: u16,
    /// SubscriptionRemovalTimeInterval, in seconds.
    pub removal_interval_seconds: u32,
}

impl Default for IndicationServiceValues {
    fn default() -> IndicationServiceValues {
        IndicationServiceValues {
            retry_attempts: DELIVERY_RETRY_ATTEMPTS,
            retry_interval_seconds: DELIVERY_RETRY_INTERVAL_SECONDS,
            removal_action: SUBSCRIPTION_REMOVAL_ACTION,
            removal_interval_seconds: SUBSCRIPTION_REMOVAL_TIME_INTERVAL_SECONDS,
        }
    }
}

/// Serves the interop classes from instances built once at start, with the indication
/// service's counters read at each request.
pub struct InteropProvider {
    /// By creation class.
    instances: indexmap::IndexMap<Name, Vec<(InstancePath, Arc<Instance>)>>,
    counters: Arc<IndicationCounters>,
    /// The server's statistics, read at each request; gathering is turned on and off
    /// through CIM_ObjectManager.GatherStatisticalData.
    statistics: Arc<Statistics>,
}

impl InteropProvider {
    /// Builds the interop instances for `manager`'s classes and namespaces, and registers the
    /// provider for [`CLASSES`] in `root/interop`.
    pub fn install(
        manager: &mut ObjectManager,
        settings: &InteropSettings,
    ) -> Result<(), OperationError> {
        let mut instances: indexmap::IndexMap<Name, Vec<_>> = indexmap::IndexMap::new();
        for (path, instance) in build(manager, settings)? {
            instances
                .entry(path.class_name.clone())
                .or_default()
                .push((path, Arc::new(instance)));
        }
        let provider = Arc::new(InteropProvider {
            instances,
            counters: settings.indication_counters.clone(),
            statistics: manager.statistics().clone(),
        });
        for class in CLASSES {
            manager.register(INTEROP, class, provider.clone())?;
        }
        // A central instance in another namespace (the cluster in root/cimv2) reaches its
        // profile from there too: the same CIM_ElementConformsToProfile instances are served
        // in that namespace, their references naming their namespaces.
        let mut elsewhere: indexmap::IndexMap<String, Vec<_>> = indexmap::IndexMap::new();
        let conformances = provider
            .instances
            .get(&Name::new("CIM_ElementConformsToProfile"))
            .into_iter()
            .flatten();
        for (path, instance) in conformances {
            let Some(Value::Reference(element)) = instance.value("ManagedElement") else {
                continue;
            };
            let ObjectPath::Instance(element) = element.as_ref() else {
                continue;
            };
            let Some(written) = element.namespace.as_deref() else {
                continue;
            };
            // As the server spells it (case, slashes): one provider per namespace.
            let Ok(namespace) = manager.namespace(written) else {
                tracing::warn!(
                    namespace = written,
                    "a registered profile's central instance names a namespace this server \
                     does not serve"
                );
                continue;
            };
            let namespace = namespace.to_string();
            if namespace.eq_ignore_ascii_case(INTEROP) {
                continue;
            }
            let mut path = path.clone();
            path.namespace = Some(namespace.clone());
            elsewhere
                .entry(namespace)
                .or_default()
                .push((path, instance.clone()));
        }
        for (namespace, instances) in elsewhere {
            if manager
                .repository()
                .class(&namespace, "CIM_ElementConformsToProfile")
                .is_none()
            {
                tracing::warn!(
                    namespace,
                    "a central instance's namespace has no CIM_ElementConformsToProfile: its \
                     profile is reached from root/interop only"
                );
                continue;
            }
            let mut by_class = indexmap::IndexMap::new();
            by_class.insert(Name::new("CIM_ElementConformsToProfile"), instances);
            let conformance = Arc::new(InteropProvider {
                instances: by_class,
                counters: provider.counters.clone(),
                statistics: provider.statistics.clone(),
            });
            manager.register(&namespace, "CIM_ElementConformsToProfile", conformance)?;
        }
        Ok(())
    }
}

impl InstanceProvider for InteropProvider {
    fn enumerate(
        &self,
        _context: &RequestContext,
        class: &Name,
    ) -> Result<Instances, OperationError> {
        let mut found = self.instances.get(class).cloned().unwrap_or_default();
        if class
            .as_str()
            .eq_ignore_ascii_case(INDICATION_SERVICE_CLASS)
        {
            let counters = self.counters.values();
            for (_, instance) in &mut found {
                let instance = Arc::make_mut(instance);
                for (name, value, _) in counters {
                    set_value(instance, name, counter_value(name, value));
                }
            }
        } else if class.as_str().eq_ignore_ascii_case("CIM_ObjectManager") {
            // The shared instance is copied only when the switch differs from what it says,
            // so the common request answers it as it is shared.
            let gathering = Value::Boolean(self.statistics.gathering());
            for (_, instance) in &mut found {
                let current = instance.property(GATHER).and_then(|p| p.value.as_ref());
                if current != Some(&gathering) {
                    set_value(Arc::make_mut(instance), GATHER, gathering.clone());
                }
            }
        } else if class.as_str().eq_ignore_ascii_case(STATISTICS_CLASS) {
            let since = timestamp(self.statistics.since());
            let now = timestamp(std::time::SystemTime::now());
            for (_, instance) in &mut found {
                let Some(kind) = statistics_kind(instance) else {
                    continue;
                };
                let figures = self.statistics.figures(kind);
                let instance = Arc::make_mut(instance);
                for (name, value) in [
                    ("StartStatisticTime", Value::Datetime(since)),
                    ("StatisticTime", Value::Datetime(now)),
                    ("NumberOfOperations", Value::Uint64(figures.operations)),
                    ("CimomElapsedTime", Value::Datetime(interval(figures.cimom))),
                    (
                        "ProviderElapsedTime",
                        Value::Datetime(interval(figures.provider)),
                    ),
                    ("RequestSize", Value::Uint64(figures.request_bytes)),
                    ("ResponseSize", Value::Uint64(figures.response_bytes)),
                ] {
                    set_value(instance, name, value);
                }
            }
        }
        Ok(Box::new(found.into_iter().map(Ok)))
    }

    /// CIM_ObjectManager.GatherStatisticalData, and only it, may change (FULL_ADMIN, as every
    /// modification; audited by the service).
    fn modify(
        &self,
        context: &RequestContext,
        path: &InstancePath,
        instance: Instance,
        property_list: Option<&[Name]>,
    ) -> Result<(), OperationError> {
        if !path
            .class_name
            .as_str()
            .eq_ignore_ascii_case("CIM_ObjectManager")
        {
            return Err(OperationError::NotSupported(format!(
                "instances of {} cannot be modified",
                path.class_name
            )));
        }
        let current = self.get(context, path)?;
        let mut gather = None;
        for property in instance.properties.values() {
            if property_list.is_some_and(|list| !list.contains(&property.name)) {
                continue;
            }
            if property.name.as_str().eq_ignore_ascii_case(GATHER) {
                match property.value {
                    Some(Value::Boolean(on)) => gather = Some(on),
                    _ => {
                        return Err(OperationError::parameter(format!(
                            "{GATHER} must be true or false"
                        )))
                    }
                }
            } else if current.value(property.name.as_str()) == property.value.as_ref() {
                continue;
            } else if path.key(property.name.as_str()).is_some() {
                return Err(OperationError::parameter(format!(
                    "key property {} cannot change",
                    property.name
                )));
            } else {
                return Err(OperationError::NotSupported(format!(
                    "CIM_ObjectManager.{} cannot be modified: only {GATHER} can",
                    property.name
                )));
            }
        }
        if let Some(list) = property_list {
            if let Some(missing) = list
                .iter()
                .find(|name| instance.property(name.as_str()).is_none())
            {
                return Err(OperationError::parameter(format!(
                    "{missing} is in the PropertyList but not in the instance"
                )));
            }
        }
        if let Some(on) = gather {
            if self.statistics.set_gathering(on) {
                tracing::info!(
                    principal = %context.principal,
                    "statistics gathering turned {}",
                    if on { "on" } else { "off" }
                );
            }
        }
        Ok(())
    }

    /// ResetSelectedStats of a CIM_CIMOMStatisticalData instance: "All" (first element) or
    /// the names of the figures to set to zero.
    fn invoke(
        &self,
        context: &RequestContext,
        target: &ObjectPath,
        method: &cim_schema::model::Method,
        params: Vec<(Name, Option<Value>)>,
    ) -> Result<MethodOutput, OperationError> {
        let ObjectPath::Instance(path) = target else {
            return Err(OperationError::parameter(format!(
                "method {} is not static: invoke it on an instance",
                method.name
            )));
        };
        if !method
            .name
            .as_str()
            .eq_ignore_ascii_case("ResetSelectedStats")
            || !path
                .class_name
                .as_str()
                .eq_ignore_ascii_case(STATISTICS_CLASS)
        {
            return Err(OperationError::NotSupported(format!(
                "method {} is not supported by this provider",
                method.name
            )));
        }
        let kind = self
            .instances
            .get(&Name::new(STATISTICS_CLASS))
            .into_iter()
            .flatten()
            .find(|(candidate, _)| crate::provider::same_keys(candidate, path))
            .and_then(|(_, instance)| statistics_kind(instance))
            .ok_or_else(|| crate::provider::not_found(path))?;
        let selected: Vec<String> = match params
            .into_iter()
            .find(|(name, _)| name.as_str().eq_ignore_ascii_case("SelectedStatistics"))
            .and_then(|(_, value)| value)
        {
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Some(Value::String(text)) => Ok(text),
                    _ => Err(OperationError::parameter(
                        "SelectedStatistics holds a NULL element",
                    )),
                })
                .collect::<Result<_, _>>()?,
            _ => Vec::new(),
        };
        let figures: Vec<Figure> = match selected.first() {
            None => {
                return Err(OperationError::parameter(
                    "SelectedStatistics names no statistic: give \"All\" or property names",
                ))
            }
            Some(first) if first.eq_ignore_ascii_case("All") => {
                Figure::ALL.iter().map(|(_, figure)| *figure).collect()
            }
            Some(_) => selected
                .iter()
                .map(|name| {
                    Figure::by_property(name).ok_or_else(|| {
                        OperationError::parameter(format!(
                            "SelectedStatistics: {name} is not a statistic of {STATISTICS_CLASS}"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        self.statistics.reset(kind, &figures);
        tracing::info!(
            principal = %context.principal,
            operation = KINDS[kind].name,
            "statistics reset"
        );
        Ok(MethodOutput {
            return_value: Some(Value::Uint32(0)),
            out_params: Vec::new(),
        })
    }
}

/// The operation type (an index in [`KINDS`]) a CIM_CIMOMStatisticalData instance shows, by
/// its ElementName.
fn statistics_kind(instance: &Instance) -> Option<usize> {
    match instance.value("ElementName") {
        Some(Value::String(name)) => crate::statistics::kind_named(name),
        _ => None,
    }
}

/// Sets a property the instance's class declares (the instance already holds it).
fn set_value(instance: &mut Instance, name: &str, value: Value) {
    if let Some(declared) = instance.property(name) {
        let mut property = declared.clone();
        property.value = Some(value);
        instance.set(property);
    }
}

/// Builds one instance of `class` from `(property, value)` pairs, typed by the class; its path
/// has the class's keys.
struct Builder<'a> {
    manager: &'a ObjectManager,
}

impl Builder<'_> {
    fn class(&self, name: &str) -> Result<&Class, OperationError> {
        self.manager.class(INTEROP, name)
    }

    fn instance(
        &self,
        class_name: &str,
        values: Vec<(&str, Value)>,
    ) -> Result<(InstancePath, Instance), OperationError> {
        let class = self.class(class_name)?;
        let mut instance = Instance::new(class.name.clone());
        for (name, value) in values {
            let declared = class.property(name).ok_or_else(|| {
                tracing::error!(
                    class = class_name,
                    property = name,
                    "interop: no such property"
                );
                OperationError::Failed("the interop namespace is misconfigured".into())
            })?;
            let mut property = Property::new(
                declared.name.clone(),
                declared.cim_type.clone(),
                Some(value),
            );
            property.is_array = declared.is_array;
            instance.set(property);
        }
        let mut path = InstancePath::new(class.name.clone());
        for key in class.keys() {
            let value = instance.value(key.name.as_str()).cloned().ok_or_else(|| {
                tracing::error!(class = class_name, key = %key.name, "interop: key without value");
                OperationError::Failed("the interop namespace is misconfigured".into())
            })?;
            path.keybindings.push(KeyBinding {
                name: key.name.clone(),
                value,
            });
        }
        Ok((path, instance))
    }
}

fn string(text: impl Into<String>) -> Value {
    Value::String(text.into())
}

fn strings(texts: &[&str]) -> Value {
    Value::Array(texts.iter().map(|t| Some(string(*t))).collect())
}

fn uint16s(numbers: &[u16]) -> Value {
    Value::Array(numbers.iter().map(|n| Some(Value::Uint16(*n))).collect())
}

/// A reference to an object of this server: its namespace (root/interop unless it names
/// one) and no host, as SFCB, OpenPegasus's CMPI providers and pywbem's mock server write
/// them; a client that compares the reference with a path it got back without host (pywbemcli
/// `instance shrub`) finds it.
fn reference(mut path: InstancePath) -> Value {
    if path.namespace.is_none() {
        path.namespace = Some(INTEROP.to_owned());
    }
    path.host = None;
    Value::Reference(Box::new(ObjectPath::Instance(path)))
}

/// The `InstanceID` of a registered profile.
fn profile_id(profile: &Profile) -> String {
    let organization = match profile.organization {
        2 => "DMTF",
        _ => profile.other_organization.as_deref().unwrap_or("Other"),
    };
    format!(
        "{organization}+{}+{}",
        profile.name.replace(' ', "_"),
        profile.version
    )
}

fn build(
    manager: &ObjectManager,
    settings: &InteropSettings,
) -> Result<Vec<(InstancePath, Instance)>, OperationError> {
    let builder = Builder { manager };
    let system = settings.system_name.clone();
    let manager_name = format!("{}:{}", settings.product, system);
    let mut out = Vec::new();
    let object_manager = builder.instance(
        "CIM_ObjectManager",
        vec![
            ("SystemCreationClassName", string("CIM_ComputerSystem")),
            ("SystemName", string(&system)),
            ("CreationClassName", string("CIM_ObjectManager")),
            ("Name", string(&manager_name)),
            ("ElementName", string(&settings.product)),
            (
                "Description",
                string(format!(
                    "{} WBEM server version {}",
                    settings.product, settings.version
                )),
            ),
            ("Started", Value::Boolean(true)),
            ("EnabledState", Value::Uint16(2)),
            ("RequestedState", Value::Uint16(12)),
            ("OperationalStatus", uint16s(&[2])),
            ("GatherStatisticalData", Value::Boolean(false)),
        ],
    )?;
    let object_manager_path = object_manager.0.clone();
    out.push(object_manager);
    // One instance per operation type, in KINDS order (the figures are read at each request).
    for kind in KINDS {
        let mut values = vec![
            (
                "InstanceID",
                string(format!(
                    "CIM_CIMOMStatisticalData:{manager_name}:{}",
                    kind.name
                )),
            ),
            ("ElementName", string(kind.name)),
            ("OperationType", Value::Uint16(kind.operation_type)),
            (
                "StartStatisticTime",
                Value::Datetime(timestamp(std::time::SystemTime::now())),
            ),
            (
                "StatisticTime",
                Value::Datetime(timestamp(std::time::SystemTime::now())),
            ),
            (
                "SampleInterval",
                Value::Datetime(interval(std::time::Duration::ZERO)),
            ),
            ("NumberOfOperations", Value::Uint64(0)),
            (
                "CimomElapsedTime",
                Value::Datetime(interval(std::time::Duration::ZERO)),
            ),
            (
                "ProviderElapsedTime",
                Value::Datetime(interval(std::time::Duration::ZERO)),
            ),
            ("RequestSize", Value::Uint64(0)),
            ("ResponseSize", Value::Uint64(0)),
        ];
        if kind.operation_type == 1 {
            values.push(("OtherOperationType", string(kind.name)));
        }
        let (path, mut instance) = builder.instance(STATISTICS_CLASS, values)?;
        if kind.operation_type != 1 {
            // NULL for the types DMTF names, as its description wants.
            instance.set(Property::new(
                Name::new("OtherOperationType"),
                cim_schema::model::CimType::String,
                None,
            ));
        }
        out.push((path, instance));
    }
    let counters = settings
        .indication_counters
        .values()
        .map(|(name, value, _)| (name, counter_value(name, value)));
    let indication_service = builder.instance(
        INDICATION_SERVICE_CLASS,
        [
            ("SystemCreationClassName", string("CIM_ComputerSystem")),
            ("SystemName", string(&system)),
            ("CreationClassName", string(INDICATION_SERVICE_CLASS)),
            ("Name", string(format!("{manager_name}:indications"))),
            ("ElementName", string("cimguard indication service")),
            ("FilterCreationEnabled", Value::Boolean(true)),
            (
                "DeliveryRetryAttempts",
                Value::Uint16(settings.indication_service.retry_attempts),
            ),
            (
                "DeliveryRetryInterval",
                Value::Uint32(settings.indication_service.retry_interval_seconds),
            ),
            (
                "SubscriptionRemovalAction",
                Value::Uint16(settings.indication_service.removal_action),
            ),
            (
                "SubscriptionRemovalTimeInterval",
                Value::Uint32(settings.indication_service.removal_interval_seconds),
            ),
            ("EnabledState", Value::Uint16(2)),
            ("OperationalStatus", uint16s(&[2])),
            ("Started", Value::Boolean(true)),
        ]
        .into_iter()
        .chain(counters)
        .collect(),
    )?;
    let indication_service_path = indication_service.0.clone();
    out.push(indication_service);
    let objects_max =
        u32::try_from(crate::subscriptions::SUBSCRIPTION_OBJECTS_MAX).unwrap_or(u32::MAX);
    let capabilities = builder.instance(
        "CIM_IndicationServiceCapabilities",
        vec![
            (
                "InstanceID",
                string(format!("{manager_name}:indications:capabilities")),
            ),
            (
                "ElementName",
                string("cimguard indication service capabilities"),
            ),
            ("FilterCreationEnabledIsSettable", Value::Boolean(false)),
            ("DeliveryRetryAttemptsIsSettable", Value::Boolean(false)),
            ("DeliveryRetryIntervalIsSettable", Value::Boolean(false)),
            ("SubscriptionRemovalActionIsSettable", Value::Boolean(false)),
            (
                "SubscriptionRemovalTimeIntervalIsSettable",
                Value::Boolean(false),
            ),
            ("MaxListenerDestinations", Value::Uint32(objects_max)),
            ("MaxActiveSubscriptions", Value::Uint32(objects_max)),
            ("SubscriptionsPersisted", Value::Boolean(true)),
        ],
    )?;
    out.push(builder.instance(
        "CIM_ElementCapabilities",
        vec![
            ("ManagedElement", reference(indication_service_path.clone())),
            ("Capabilities", reference(capabilities.0.clone())),
        ],
    )?);
    out.push(capabilities);
    out.push(builder.instance(
        "CIM_ObjectManagerCommunicationMechanism",
        vec![
            ("SystemCreationClassName", string("CIM_ComputerSystem")),
            ("SystemName", string(&system)),
            (
                "CreationClassName",
                string("CIM_ObjectManagerCommunicationMechanism"),
            ),
            ("Name", string(format!("{manager_name}:cim-xml"))),
            ("ElementName", string("CIM-XML over HTTPS")),
            ("CommunicationMechanism", Value::Uint16(2)),
            // What this server does, in DSP0200's functional groups: not Schema
            // Manipulation nor Qualifier Declaration (the schema is read-only:
            // CIM_ERR_NOT_SUPPORTED), nor Pulled Read Count (EnumerationCount).
            (
                "FunctionalProfilesSupported",
                uint16s(&[2, 3, 5, 6, 7, 9, 10, 12]),
            ),
            (
                "FunctionalProfileDescriptions",
                strings(&[
                    "Basic Read",
                    "Basic Write",
                    "Instance Manipulation",
                    "Association Traversal",
                    "Query Execution",
                    "Indications",
                    "Pulled Read",
                    "Pulled Query Execution",
                ]),
            ),
            ("MultipleOperationsSupported", Value::Boolean(false)),
            // 3 = Basic; 4 = Digest is not offered; 1 = Other (TLS client certificates).
            ("AuthenticationMechanismsSupported", uint16s(&[3, 1])),
            (
                "AuthenticationMechanismDescriptions",
                strings(&["Basic", "TLS client certificate"]),
            ),
            ("Version", string("1.4.0")),
            ("AdvertiseTypes", uint16s(&[2])),
            ("OperationalStatus", uint16s(&[2])),
            ("EnabledState", Value::Uint16(2)),
        ],
    )?);
    // One per namespace: a client that found the interop namespace as `interop` (pywbem tries
    // that name first) sees its Name written so (the response's namespace spelling), and
    // finds it once among the namespaces, as one that asked through `root/interop` does.
    for namespace in manager.namespaces() {
        out.push(builder.instance(
            "CIM_Namespace",
            vec![
                ("SystemCreationClassName", string("CIM_ComputerSystem")),
                ("SystemName", string(&system)),
                (
                    "ObjectManagerCreationClassName",
                    string("CIM_ObjectManager"),
                ),
                ("ObjectManagerName", string(&manager_name)),
                ("CreationClassName", string("CIM_Namespace")),
                ("Name", string(namespace.as_str())),
                // 2 = CIM 2.x schema classes.
                ("ClassInfo", Value::Uint16(2)),
                ("ClassType", Value::Uint16(2)),
                ("ClassTypeVersion", string("2.41.0")),
            ],
        )?);
    }
    let registration = Profile {
        organization: 2,
        other_organization: None,
        name: PROFILE_REGISTRATION.into(),
        version: "1.0.0".into(),
        central: vec![object_manager_path.in_namespace(INTEROP)],
        references: Vec::new(),
    };
    let indications = Profile {
        organization: 2,
        other_organization: None,
        name: INDICATIONS_PROFILE.into(),
        version: "1.2.2".into(),
        central: vec![indication_service_path.in_namespace(INTEROP)],
        references: vec![PROFILE_REGISTRATION.into()],
    };
    let mut profiles = vec![registration, indications];
    profiles.extend(settings.profiles.iter().cloned());
    let mut profile_paths = Vec::new();
    for profile in &profiles {
        let mut values = vec![
            ("InstanceID", string(profile_id(profile))),
            (
                "RegisteredOrganization",
                Value::Uint16(profile.organization),
            ),
            ("RegisteredName", string(&profile.name)),
            ("RegisteredVersion", string(&profile.version)),
            // 2 = Not Advertised (no SLP on this server).
            ("AdvertiseTypes", uint16s(&[2])),
            ("ElementName", string(&profile.name)),
        ];
        if let Some(other) = &profile.other_organization {
            values.push(("OtherRegisteredOrganization", string(other)));
        }
        let (path, instance) = builder.instance("CIM_RegisteredProfile", values)?;
        profile_paths.push(path.clone());
        out.push((path, instance));
    }
    for (profile, path) in profiles.iter().zip(&profile_paths) {
        for central in &profile.central {
            out.push(builder.instance(
                "CIM_ElementConformsToProfile",
                vec![
                    ("ConformantStandard", reference(path.clone())),
                    ("ManagedElement", reference(central.clone())),
                ],
            )?);
        }
        for referenced in &profile.references {
            let Some(index) = profiles.iter().position(|p| p.name == *referenced) else {
                tracing::error!(profile = %profile.name, referenced, "interop: unknown referenced profile");
                return Err(OperationError::Failed(
                    "the interop namespace is misconfigured".into(),
                ));
            };
            out.push(builder.instance(
                "CIM_ReferencedProfile",
                vec![
                    ("Antecedent", reference(profile_paths[index].clone())),
                    ("Dependent", reference(path.clone())),
                ],
            )?);
        }
    }
    Ok(out)
}

/// The object manager of a node's WBEM agent: the shipped schema (root/cimv2 and root/interop)
/// with the interop provider installed. The Serviceguard profile is registered by the cluster
/// provider once it knows its central instance.
pub fn standard_object_manager(
    host: &str,
    settings: &InteropSettings,
) -> Result<ObjectManager, OperationError> {
    let repository = cim_schema::shipped::repository().map_err(|error| {
        tracing::error!(%error, "the shipped schema does not compile");
        OperationError::Failed("the shipped schema does not compile".into())
    })?;
    let mut manager = ObjectManager::new(repository, host);
    InteropProvider::install(&mut manager, settings)?;
    Ok(manager)
}
