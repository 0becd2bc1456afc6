//! Enumeration contexts of the pull operations (DSP0200 1.4 5.3.3): opened by `Open*`, read
//! by `Pull*`, closed by `CloseEnumeration` or by expiry. A context holds a lazy sequence, not
//! its results, so a large enumeration is pulled with bounded server memory.
//!
//! Bounds: contexts in all ([`ContextLimits::open_contexts_max`]) and per principal
//! ([`ContextLimits::open_contexts_per_principal_max`]), objects per response
//! ([`ContextLimits::objects_per_response_max`]; DSP0200 lets a server return fewer than
//! MaxObjectCount) and the OperationTimeout a client may ask for.

use std::collections::HashMap;
use std::iter::Peekable;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cim_schema::model::{Instance, InstancePath};
use cim_schema::xml::{Data, ParamValue, Untyped};

use crate::error::OperationError;
use crate::operations::{Item, Items, Operation, Outcome};
use crate::provider::RequestContext;

/// The bounds on enumeration contexts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextLimits {
    /// Open contexts in all.
    pub open_contexts_max: usize,
    /// Open contexts of one principal.
    pub open_contexts_per_principal_max: usize,
    /// Objects in one Open or Pull response, whatever MaxObjectCount asks.
    pub objects_per_response_max: u32,
    /// The inactivity timeout when the client gives none.
    pub operation_timeout_default: Duration,
    /// The largest OperationTimeout a client may ask for.
    pub operation_timeout_max: Duration,
}

impl Default for ContextLimits {
    fn default() -> Self {
        ContextLimits {
            open_contexts_max: 1024,
            open_contexts_per_principal_max: 64,
            objects_per_response_max: 10_000,
            operation_timeout_default: Duration::from_secs(60),
            operation_timeout_max: Duration::from_secs(600),
        }
    }
}

/// Which Open operation made a context (Pull*s must match it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullKind {
    /// OpenEnumerateInstances
    Instances,
    /// OpenEnumerateInstancePaths
    InstancePaths,
    /// OpenAssociatorInstances
    Associators,
    /// OpenAssociatorInstancePaths
    AssociatorPaths,
    /// OpenReferenceInstances
    References,
    /// OpenReferenceInstancePaths
    ReferencePaths,
    /// OpenQueryInstances
    Query,
}

impl PullKind {
    fn returns_paths(self) -> bool {
        matches!(
            self,
            PullKind::InstancePaths | PullKind::AssociatorPaths | PullKind::ReferencePaths
        )
    }
}

/// The parameters common to every Open operation.
#[derive(Debug, Clone, Copy)]
pub struct PullRequest {
    /// MaxObjectCount (0 when absent, as DSP0200 says for Open).
    pub max_object_count: u32,
    /// OperationTimeout in seconds (`None`: absent or NULL, the server's default).
    pub operation_timeout: Option<u32>,
}

impl PullRequest {
    /// Reads and checks an Open operation's parameters.
    pub(crate) fn parse(op: &Operation<'_>, kind: PullKind) -> Result<PullRequest, OperationError> {
        let mut allowed = vec![
            "FilterQueryLanguage",
            "FilterQuery",
            "OperationTimeout",
            "ContinueOnError",
            "MaxObjectCount",
        ];
        allowed.extend(match kind {
            PullKind::Instances => &[
                "ClassName",
                "DeepInheritance",
                "IncludeClassOrigin",
                "PropertyList",
            ][..],
            PullKind::InstancePaths => &["ClassName"][..],
            PullKind::Associators => &[
                "InstanceName",
                "AssocClass",
                "ResultClass",
                "Role",
                "ResultRole",
                "IncludeClassOrigin",
                "PropertyList",
            ][..],
            PullKind::AssociatorPaths => &[
                "InstanceName",
                "AssocClass",
                "ResultClass",
                "Role",
                "ResultRole",
            ][..],
            PullKind::References => &[
                "InstanceName",
                "ResultClass",
                "Role",
                "IncludeClassOrigin",
                "PropertyList",
            ][..],
            PullKind::ReferencePaths => &["InstanceName", "ResultClass", "Role"][..],
            PullKind::Query => &["ReturnQueryResultClass"][..],
        });
        op.allow(&allowed)?;
        if op.boolean("ContinueOnError", false)? {
            return Err(OperationError::ContinuationOnErrorNotSupported);
        }
        Ok(PullRequest {
            max_object_count: op.uint32("MaxObjectCount")?.unwrap_or(0),
            operation_timeout: op.uint32("OperationTimeout")?,
        })
    }
}

/// One open context.
struct Entry {
    principal: Arc<str>,
    namespace: Arc<str>,
    kind: PullKind,
    items: Peekable<Items>,
    timeout: Duration,
    expires: Instant,
}

/// The open enumeration contexts of a server.
pub struct Contexts {
    limits: ContextLimits,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Contexts taken out of `entries` by a Pull in progress, by principal.
    in_use: HashMap<String, Arc<str>>,
    next_id: u64,
}

impl Contexts {
    /// No open context.
    pub fn new(limits: ContextLimits) -> Contexts {
        Contexts {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    /// How many contexts are open.
    pub fn len(&self) -> usize {
        let state = self.lock();
        state.entries.len() + state.in_use.len()
    }

    /// True when no context is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves only the map of contexts, which stays
        // consistent between statements: go on with it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs an Open operation: the first items and, unless they were all, a new context.
    pub(crate) fn open(
        self: &Arc<Self>,
        op: &Operation<'_>,
        kind: PullKind,
        request: PullRequest,
    ) -> Result<Outcome, OperationError> {
        // DSP0200 5.3.2: NULL lets the server choose; 0 asks for a context that never expires,
        // which a server may refuse with CIM_ERR_INVALID_OPERATION_TIMEOUT. Contexts here
        // always expire, so that one a client forgets cannot hold its place for ever.
        let timeout = match request.operation_timeout {
            None => self.limits.operation_timeout_default,
            Some(0) => {
                return Err(OperationError::InvalidOperationTimeout(format!(
                    "OperationTimeout 0 (never expire) is not accepted: enumeration contexts \
                     here expire, after at most {} seconds; leave it NULL for the default of {} s",
                    self.limits.operation_timeout_max.as_secs(),
                    self.limits.operation_timeout_default.as_secs()
                )))
            }
            Some(seconds) => {
                let asked = Duration::from_secs(u64::from(seconds));
                if asked > self.limits.operation_timeout_max {
                    return Err(OperationError::InvalidOperationTimeout(format!(
                        "OperationTimeout is at most {} seconds here",
                        self.limits.operation_timeout_max.as_secs()
                    )));
                }
                asked
            }
        };
        self.check_room(&op.context.principal)?;
        let items: Peekable<Items> = sequence(op, kind)?.peekable();
        let id = {
            let mut state = self.lock();
            state.next_id += 1;
            let id = format!("{}-{:x}", state.next_id, random_suffix());
            state
                .in_use
                .insert(id.clone(), op.context.principal.clone());
            id
        };
        let entry = Entry {
            principal: op.context.principal.clone(),
            namespace: op.context.namespace.clone(),
            kind,
            items,
            timeout,
            expires: Instant::now() + timeout,
        };
        let remaining = request
            .max_object_count
            .min(self.limits.objects_per_response_max);
        Ok(Outcome::Pull(Box::new(PullBatch {
            contexts: self.clone(),
            id,
            entry: Some(entry),
            remaining,
        })))
    }

    /// Fails with CIM_ERR_SERVER_LIMITS_EXCEEDED when no context can be opened for the
    /// principal; drops expired contexts first.
    fn check_room(&self, principal: &Arc<str>) -> Result<(), OperationError> {
        let mut state = self.lock();
        let now = Instant::now();
        state.entries.retain(|_, entry| entry.expires > now);
        let total = state.entries.len() + state.in_use.len();
        if total >= self.limits.open_contexts_max {
            return Err(OperationError::ServerLimitsExceeded(format!(
                "the server holds its maximum of {} open enumeration contexts",
                self.limits.open_contexts_max
            )));
        }
        let own = state
            .entries
            .values()
            .filter(|e| e.principal == *principal)
            .count()
            + state
                .in_use
                .values()
                .filter(|p| ***p == **principal)
                .count();
        if own >= self.limits.open_contexts_per_principal_max {
            return Err(OperationError::ServerLimitsExceeded(format!(
                "at most {} open enumeration contexts per user",
                self.limits.open_contexts_per_principal_max
            )));
        }
        Ok(())
    }

    /// Runs a Pull operation on context `id`.
    pub(crate) fn pull(
        self: &Arc<Self>,
        context: &RequestContext,
        id: &str,
        max: u32,
        kinds: &[PullKind],
    ) -> Result<Outcome, OperationError> {
        let entry = self.take(context, id)?;
        if !kinds.contains(&entry.kind) {
            // DSP0200: a Pull that does not match the Open closes the context.
            self.release(id);
            return Err(OperationError::InvalidEnumerationContext(format!(
                "enumeration context {id} was opened by another kind of operation"
            )));
        }
        Ok(Outcome::Pull(Box::new(PullBatch {
            contexts: self.clone(),
            id: id.to_owned(),
            entry: Some(entry),
            remaining: max.min(self.limits.objects_per_response_max),
        })))
    }

    /// CloseEnumeration.
    pub(crate) fn close(&self, context: &RequestContext, id: &str) -> Result<(), OperationError> {
        self.take(context, id)?;
        self.release(id);
        Ok(())
    }

    /// Takes the context out of the table for the caller (a concurrent Pull on it fails).
    fn take(&self, context: &RequestContext, id: &str) -> Result<Entry, OperationError> {
        let invalid = || {
            OperationError::InvalidEnumerationContext(format!(
                "enumeration context {id:?} is not open (unknown, expired, closed or in use)"
            ))
        };
        let mut state = self.lock();
        let now = Instant::now();
        let entry = state.entries.remove(id).ok_or_else(invalid)?;
        if entry.expires <= now {
            return Err(invalid());
        }
        if entry.principal != context.principal || *entry.namespace != *context.namespace {
            state.entries.insert(id.to_owned(), entry);
            return Err(invalid());
        }
        state.in_use.insert(id.to_owned(), entry.principal.clone());
        Ok(entry)
    }

    fn release(&self, id: &str) {
        self.lock().in_use.remove(id);
    }
}

/// The items of one Open or Pull response, taken from its context while the response is
/// written (so a batch is never held in memory as objects), then the context's output
/// parameters. Until [`PullBatch::finish`] the context is in use; a batch dropped before it
/// (the response failed) closes the context.
pub struct PullBatch {
    contexts: Arc<Contexts>,
    id: String,
    entry: Option<Entry>,
    remaining: u32,
}

impl Iterator for PullBatch {
    type Item = Result<Item, OperationError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let entry = self.entry.as_mut()?;
        match entry.items.next()? {
            Ok(item) => {
                self.remaining -= 1;
                Some(Ok(item))
            }
            Err(error) => {
                // DSP0200 without ContinueOnError: an error ends the enumeration.
                self.entry = None;
                self.contexts.release(&self.id);
                Some(Err(error))
            }
        }
    }
}

impl PullBatch {
    /// Returns the context to the table (or closes it at the end of the sequence) and gives
    /// the `EnumerationContext` and `EndOfSequence` output parameters.
    pub fn finish(mut self) -> Vec<ParamValue> {
        let mut context = None;
        if let Some(mut entry) = self.entry.take() {
            let mut state = self.contexts.lock();
            state.in_use.remove(&self.id);
            if entry.items.peek().is_some() {
                entry.expires = Instant::now() + entry.timeout;
                state.entries.insert(self.id.clone(), entry);
                context = Some(self.id.clone());
            }
        }
        let end = context.is_none();
        vec![
            ParamValue::new(
                "EnumerationContext",
                match context {
                    Some(id) => Data::Untyped(Untyped::Scalar(id)),
                    None => Data::Null,
                },
            ),
            ParamValue::new(
                "EndOfSequence",
                Data::Untyped(Untyped::Scalar(if end { "TRUE" } else { "FALSE" }.into())),
            ),
        ]
    }
}

impl Drop for PullBatch {
    fn drop(&mut self) {
        if self.entry.take().is_some() {
            self.contexts.release(&self.id);
        }
    }
}

/// A value that makes context ids hard to guess across server restarts.
fn random_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

/// The lazy sequence an Open operation enumerates.
fn sequence(op: &Operation<'_>, kind: PullKind) -> Result<Items, OperationError> {
    if kind == PullKind::Query {
        return crate::query::open_query(op);
    }
    let filter = crate::query::pull_filter(op)?;
    match kind {
        PullKind::Instances | PullKind::InstancePaths => {
            let class = op.existing_class("ClassName")?;
            if let Some(filter) = &filter {
                filter.check_names(op, &class)?;
            }
            let shape = crate::cimom::Shape {
                deep_inheritance: op.boolean("DeepInheritance", true)?,
                include_class_origin: op.boolean("IncludeClassOrigin", false)?,
                property_list: op.property_list()?,
                ..Default::default()
            };
            let paths_only = kind.returns_paths();
            let instances = op.manager.instances(op.context, &class)?;
            let namespace = op.context.namespace.clone();
            let manager = op.manager.clone();
            let spelling = crate::cimom::namespace_spelling(&op.call.namespace);
            // The filter chooses among whole instances; DeepInheritance and PropertyList only
            // trim the properties of those it chose (DSP0200 5.3.2.1).
            Ok(Box::new(instances.filter_map(move |item| match item {
                Err(error) => Some(Err(error)),
                Ok((path, instance)) => {
                    if let Some(filter) = &filter {
                        let instance =
                            crate::cimom::spelt_instance(spelling.as_ref(), instance.clone());
                        if !filter.matches(&manager, &namespace, &instance) {
                            return None;
                        }
                    }
                    let instance = manager.shape(&namespace, instance, &class, &shape);
                    Some(Ok(with_path(path, instance, paths_only)))
                }
            })))
        }
        PullKind::Associators
        | PullKind::AssociatorPaths
        | PullKind::References
        | PullKind::ReferencePaths => {
            let target = op.association_target()?;
            let associators = matches!(kind, PullKind::Associators | PullKind::AssociatorPaths);
            let association_filter = op.association_filter(associators)?;
            if let Some(filter) = &filter {
                // The results are of ResultClass (for References, the association class).
                filter.check_traversal_names(op, association_filter.result_class.as_ref())?;
            }
            let found = if associators {
                op.associated(&target, &association_filter)?
            } else {
                let found = op.referencing(&target, &association_filter)?;
                found.into_iter().map(|(p, i)| (p, Some(i))).collect()
            };
            let shape = crate::cimom::Shape {
                deep_inheritance: true,
                include_class_origin: op.boolean("IncludeClassOrigin", false)?,
                property_list: op.property_list()?,
                ..Default::default()
            };
            let paths_only = kind.returns_paths();
            let manager = op.manager.clone();
            let namespace = op.context.namespace.clone();
            Ok(Box::new(found.into_iter().filter_map(
                move |(path, instance)| {
                    let Some(instance) = instance else {
                        // An object another provider serves (see `associated`): named by
                        // the paths operations when no filter needs its properties.
                        return (paths_only && filter.is_none())
                            .then(|| Ok(Item::Data(Data::InstancePath(path))));
                    };
                    if let Some(filter) = &filter {
                        if !filter.matches(&manager, &namespace, &instance) {
                            return None;
                        }
                    }
                    let class = instance.class_name.clone();
                    let instance = manager.shape(&namespace, instance, &class, &shape);
                    Some(Ok(with_path(path, instance, paths_only)))
                },
            )))
        }
        PullKind::Query => crate::query::open_query(op),
    }
}

fn with_path(path: InstancePath, instance: Arc<Instance>, paths_only: bool) -> Item {
    if paths_only {
        Item::Data(Data::InstancePath(path))
    } else {
        Item::InstanceWithPath(path, instance)
    }
}
