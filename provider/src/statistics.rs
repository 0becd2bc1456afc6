//! The WBEM server's statistics by operation type (CIM_CIMOMStatisticalData), gathered while
//! CIM_ObjectManager.GatherStatisticalData is true, as OpenPegasus gathers them; `pywbemcli
//! statistics server-on` turns them on and `statistics server-show` reads them.
//!
//! Gathering is off at start. While it is off a request costs one atomic load here, and the
//! instances show zeros (DMTF: they "MUST show zero values" then). Turning it on or off starts
//! every counter again from zero: the interval of the figures starts when it was last turned
//! on. While it is on, every response also carries DSP0200's `WBEMServerResponseTime` header
//! (microseconds), which pywbem reads into its `last_server_response_time`.
//!
//! What counts: an operation is a request that passed the HTTP checks, authentication and
//! decoding (a request refused before its body was read names no operation). Its time runs
//! from the request's arrival to the end of its response: the operation itself (providers
//! and shaping) is ProviderElapsedTime, the rest (checks, body, decoding, encoding, sending)
//! CimomElapsedTime. A streamed enumeration makes its instances while it sends them, so that
//! part counts as the server's. Sizes are the bytes of the request and response, their
//! HTTP headers included: the headers as this server sets them, without what hyper adds
//! (`Date`, `Content-Length` or `Transfer-Encoding`) or the framing of chunks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// One type of operation: the `OperationType` value and, for 1 (Other), the operation's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationKind {
    /// CIM_CIMOMStatisticalData.OperationType.
    pub operation_type: u16,
    /// The operation's name (OtherOperationType when `operation_type` is 1).
    pub name: &'static str,
}

/// Every type counted, in the order of the instances. The intrinsic operations DMTF's
/// ValueMap names keep their values; the pull operations and extrinsic methods, which it does
/// not name, are "Other" (1) with their name; an intrinsic name this server does not know is
/// "Unknown" (0).
pub const KINDS: &[OperationKind] = &[
    kind(3, "GetClass"),
    kind(4, "GetInstance"),
    kind(5, "DeleteClass"),
    kind(6, "DeleteInstance"),
    kind(7, "CreateClass"),
    kind(8, "CreateInstance"),
    kind(9, "ModifyClass"),
    kind(10, "ModifyInstance"),
    kind(11, "EnumerateClasses"),
    kind(12, "EnumerateClassNames"),
    kind(13, "EnumerateInstances"),
    kind(14, "EnumerateInstanceNames"),
    kind(15, "ExecQuery"),
    kind(16, "Associators"),
    kind(17, "AssociatorNames"),
    kind(18, "References"),
    kind(19, "ReferenceNames"),
    kind(20, "GetProperty"),
    kind(21, "SetProperty"),
    kind(22, "GetQualifier"),
    kind(23, "SetQualifier"),
    kind(24, "DeleteQualifier"),
    kind(25, "EnumerateQualifiers"),
    kind(1, "InvokeMethod"),
    kind(1, "OpenEnumerateInstances"),
    kind(1, "OpenEnumerateInstancePaths"),
    kind(1, "OpenAssociatorInstances"),
    kind(1, "OpenAssociatorInstancePaths"),
    kind(1, "OpenReferenceInstances"),
    kind(1, "OpenReferenceInstancePaths"),
    kind(1, "OpenQueryInstances"),
    kind(1, "PullInstancesWithPath"),
    kind(1, "PullInstancePaths"),
    kind(1, "PullInstances"),
    kind(1, "CloseEnumeration"),
    kind(1, "EnumerationCount"),
    kind(0, "Unknown"),
];

const fn kind(operation_type: u16, name: &'static str) -> OperationKind {
    OperationKind {
        operation_type,
        name,
    }
}

/// The index in [`KINDS`] of an extrinsic method call.
pub const INVOKE_METHOD: usize = 23;

const _: () = {
    assert!(KINDS[INVOKE_METHOD].operation_type == 1);
    assert!(KINDS[KINDS.len() - 1].operation_type == 0);
};

/// The index in [`KINDS`] of the type named `name` (as ElementName shows it).
pub fn kind_named(name: &str) -> Option<usize> {
    KINDS.iter().position(|k| k.name == name)
}

/// The index in [`KINDS`] of an intrinsic operation named `name` (case-insensitive, as
/// DSP0200 names them); "Unknown" for a name not in the list.
pub fn intrinsic_kind(name: &str) -> usize {
    let unknown = KINDS.len() - 1;
    KINDS
        .iter()
        .enumerate()
        .find(|(i, k)| *i != INVOKE_METHOD && *i != unknown && k.name.eq_ignore_ascii_case(name))
        .map_or(unknown, |(i, _)| i)
}

/// The counters of one operation type.
#[derive(Debug, Default)]
struct Counters {
    operations: AtomicU64,
    cimom_nanos: AtomicU64,
    provider_nanos: AtomicU64,
    request_bytes: AtomicU64,
    response_bytes: AtomicU64,
}

/// What one operation type shows: CIM_CIMOMStatisticalData's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Figures {
    /// NumberOfOperations.
    pub operations: u64,
    /// CimomElapsedTime.
    pub cimom: Duration,
    /// ProviderElapsedTime.
    pub provider: Duration,
    /// RequestSize.
    pub request_bytes: u64,
    /// ResponseSize.
    pub response_bytes: u64,
}

/// Which of an operation type's figures to reset (ResetSelectedStats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    /// NumberOfOperations.
    Operations,
    /// CimomElapsedTime.
    CimomTime,
    /// ProviderElapsedTime.
    ProviderTime,
    /// RequestSize.
    RequestSize,
    /// ResponseSize.
    ResponseSize,
}

impl Figure {
    /// Every figure, with the CIM_CIMOMStatisticalData property that holds it.
    pub const ALL: [(&'static str, Figure); 5] = [
        ("NumberOfOperations", Figure::Operations),
        ("CimomElapsedTime", Figure::CimomTime),
        ("ProviderElapsedTime", Figure::ProviderTime),
        ("RequestSize", Figure::RequestSize),
        ("ResponseSize", Figure::ResponseSize),
    ];

    /// The figure a CIM_CIMOMStatisticalData property holds, by its name (case-insensitive).
    pub fn by_property(name: &str) -> Option<Figure> {
        Figure::ALL
            .into_iter()
            .find(|(property, _)| property.eq_ignore_ascii_case(name))
            .map(|(_, figure)| figure)
    }
}

/// The server's statistics (see the module documentation).
#[derive(Debug)]
pub struct Statistics {
    gathering: AtomicBool,
    /// Counts the changes of `gathering`: a request is counted only into the period it
    /// started in.
    epoch: AtomicU64,
    /// When gathering was last turned on (or off).
    since: Mutex<SystemTime>,
    counters: Vec<Counters>,
}

impl Default for Statistics {
    fn default() -> Statistics {
        Statistics::new()
    }
}

impl Statistics {
    /// Statistics with gathering off.
    pub fn new() -> Statistics {
        Statistics {
            gathering: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            since: Mutex::new(SystemTime::now()),
            counters: KINDS.iter().map(|_| Counters::default()).collect(),
        }
    }

    /// Whether gathering is on (CIM_ObjectManager.GatherStatisticalData).
    pub fn gathering(&self) -> bool {
        self.gathering.load(Ordering::Relaxed)
    }

    /// Turns gathering on or off; a change starts every counter again from zero. Returns
    /// whether it changed.
    pub fn set_gathering(&self, on: bool) -> bool {
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        if self.gathering.load(Ordering::SeqCst) == on {
            return false;
        }
        // A new period: requests of the old one are no longer counted, and the counters are
        // zero before anything of the new one can count.
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for counters in &self.counters {
            for counter in counters.all() {
                counter.store(0, Ordering::SeqCst);
            }
        }
        *since = SystemTime::now();
        self.gathering.store(on, Ordering::SeqCst);
        true
    }

    /// The current gathering period, while gathering is on: what [`Tally::new`] takes.
    pub fn period(&self) -> Option<u64> {
        self.gathering().then(|| self.epoch.load(Ordering::SeqCst))
    }

    /// When gathering was last turned on or off (StartStatisticTime).
    pub fn since(&self) -> SystemTime {
        *self.since.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one operation of `kind` (an index in [`KINDS`]) that started in `period`, if
    /// gathering is still on in that period.
    pub fn record(
        &self,
        period: u64,
        kind: usize,
        (cimom, provider): (Duration, Duration),
        bytes: (u64, u64),
    ) {
        if self.period() != Some(period) {
            return;
        }
        let Some(counters) = self.counters.get(kind) else {
            return;
        };
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // Counters wrap around at their limit, as DMTF wants of them.
        counters.operations.fetch_add(1, Ordering::Relaxed);
        counters
            .cimom_nanos
            .fetch_add(nanos(cimom), Ordering::Relaxed);
        counters
            .provider_nanos
            .fetch_add(nanos(provider), Ordering::Relaxed);
        counters.request_bytes.fetch_add(bytes.0, Ordering::Relaxed);
        counters
            .response_bytes
            .fetch_add(bytes.1, Ordering::Relaxed);
    }

    /// The figures of `kind` (zeros while gathering is off).
    pub fn figures(&self, kind: usize) -> Figures {
        let Some(counters) = self.counters.get(kind).filter(|_| self.gathering()) else {
            return Figures::default();
        };
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Figures {
            operations: get(&counters.operations),
            cimom: Duration::from_nanos(get(&counters.cimom_nanos)),
            provider: Duration::from_nanos(get(&counters.provider_nanos)),
            request_bytes: get(&counters.request_bytes),
            response_bytes: get(&counters.response_bytes),
        }
    }

    /// Sets the given figures of `kind` to zero (ResetSelectedStats).
    pub fn reset(&self, kind: usize, figures: &[Figure]) {
        let Some(counters) = self.counters.get(kind) else {
            return;
        };
        for figure in figures {
            let counter = match figure {
                Figure::Operations => &counters.operations,
                Figure::CimomTime => &counters.cimom_nanos,
                Figure::ProviderTime => &counters.provider_nanos,
                Figure::RequestSize => &counters.request_bytes,
                Figure::ResponseSize => &counters.response_bytes,
            };
            counter.store(0, Ordering::Relaxed);
        }
    }
}

impl Counters {
    fn all(&self) -> [&AtomicU64; 5] {
        [
            &self.operations,
            &self.cimom_nanos,
            &self.provider_nanos,
            &self.request_bytes,
            &self.response_bytes,
        ]
    }
}

/// One request on its way while gathering is on: it is counted when dropped, which is when
/// its response has been sent whole, or given up (a client gone in the middle of a stream).
#[derive(Debug)]
pub struct Tally {
    statistics: std::sync::Arc<Statistics>,
    period: u64,
    kind: usize,
    started: Instant,
    provider: Duration,
    request_bytes: u64,
    response_bytes: u64,
}

impl Tally {
    /// A request of `kind` that arrived at `started` in gathering period `period`,
    /// `request_bytes` long, whose operation took `provider`.
    pub fn new(
        statistics: std::sync::Arc<Statistics>,
        period: u64,
        kind: usize,
        started: Instant,
        provider: Duration,
        request_bytes: u64,
    ) -> Tally {
        Tally {
            statistics,
            period,
            kind,
            started,
            provider,
            request_bytes,
            response_bytes: 0,
        }
    }

    /// Adds `bytes` to the response's size.
    pub fn sent(&mut self, bytes: u64) {
        self.response_bytes = self.response_bytes.saturating_add(bytes);
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        let total = self.started.elapsed();
        self.statistics.record(
            self.period,
            self.kind,
            (total.saturating_sub(self.provider), self.provider),
            (self.request_bytes, self.response_bytes),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn kinds_are_found_by_name_and_unknown_names_are_unknown() {
        assert_eq!(KINDS[intrinsic_kind("getinstance")].operation_type, 4);
        assert_eq!(
            KINDS[intrinsic_kind("EnumerateQualifiers")].operation_type,
            25
        );
        let pull = KINDS[intrinsic_kind("OpenEnumerateInstances")];
        assert_eq!(
            (pull.operation_type, pull.name),
            (1, "OpenEnumerateInstances")
        );
        assert_eq!(KINDS[intrinsic_kind("Frobnicate")].operation_type, 0);
        // InvokeMethod is no intrinsic operation.
        assert_eq!(KINDS[intrinsic_kind("InvokeMethod")].operation_type, 0);
        assert_eq!(KINDS[INVOKE_METHOD].name, "InvokeMethod");
    }

    #[test]
    fn nothing_counts_while_off_and_a_change_starts_from_zero() {
        let statistics = Arc::new(Statistics::new());
        let kind = intrinsic_kind("GetInstance");
        assert_eq!(statistics.period(), None);
        statistics.record(
            0,
            kind,
            (Duration::from_millis(1), Duration::ZERO),
            (10, 20),
        );
        assert_eq!(statistics.figures(kind), Figures::default());
        assert!(statistics.set_gathering(true));
        assert!(!statistics.set_gathering(true));
        let period = statistics.period().unwrap();
        let mut tally = Tally::new(
            statistics.clone(),
            period,
            kind,
            Instant::now() - Duration::from_millis(5),
            Duration::from_millis(2),
            100,
        );
        tally.sent(300);
        tally.sent(50);
        drop(tally);
        let figures = statistics.figures(kind);
        assert_eq!(figures.operations, 1);
        assert_eq!((figures.request_bytes, figures.response_bytes), (100, 350));
        assert_eq!(figures.provider, Duration::from_millis(2));
        assert!(figures.cimom >= Duration::from_millis(3));
        statistics.reset(kind, &[Figure::ResponseSize]);
        assert_eq!(statistics.figures(kind).response_bytes, 0);
        assert_eq!(statistics.figures(kind).operations, 1);
        // Off shows zeros, and on again starts from zero: a request of the earlier period
        // that ends in the new one is not counted.
        let late = Tally::new(
            statistics.clone(),
            period,
            kind,
            Instant::now(),
            Duration::ZERO,
            1,
        );
        assert!(statistics.set_gathering(false));
        assert_eq!(statistics.figures(kind), Figures::default());
        statistics.set_gathering(true);
        drop(late);
        assert_eq!(statistics.figures(kind), Figures::default());
        assert_eq!(kind_named("GetInstance"), Some(kind));
    }
}
