//! Queries in the server: ExecQuery and OpenQueryInstances (WQL, DMTF:CQL) and the FQL
//! filters of the pull operations (DSP0212).

use std::sync::Arc;

use cim_schema::model::Instance;

use crate::cimom::ObjectManager;
use crate::error::OperationError;
use crate::operations::{Items, Operation};

/// A pull operation's filter.
pub(crate) struct PullFilter {}

impl PullFilter {
    /// True when the instance passes the filter.
    pub(crate) fn matches(
        &self,
        manager: &Arc<ObjectManager>,
        namespace: &str,
        instance: &Instance,
    ) -> bool {
        let _ = (manager, namespace, instance);
        true
    }
}

/// Checks FilterQueryLanguage and FilterQuery of an Open operation.
pub(crate) fn check_filter(op: &Operation<'_>) -> Result<(), OperationError> {
    pull_filter(op).map(|_| ())
}

/// The filter of an Open operation, if it has one.
pub(crate) fn pull_filter(op: &Operation<'_>) -> Result<Option<PullFilter>, OperationError> {
    if op.call.param("FilterQuery").is_some() || op.call.param("FilterQueryLanguage").is_some() {
        return Err(OperationError::FilteredEnumerationNotSupported(
            "filtered enumerations are not supported yet".into(),
        ));
    }
    Ok(None)
}

/// OpenQueryInstances.
pub(crate) fn open_query(op: &Operation<'_>) -> Result<Items, OperationError> {
    let _ = op;
    Err(OperationError::NotSupported(
        "OpenQueryInstances is not supported yet".into(),
    ))
}
