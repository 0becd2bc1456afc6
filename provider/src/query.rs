//! Queries in the server: ExecQuery and OpenQueryInstances (WQL, DMTF:CQL) and the DMTF:FQL
//! filters of the pull operations (DSP0212), over the instances of the query's class.

use std::sync::Arc;

use cim_schema::model::{Instance, Name, ObjectPath};
use cim_schema::query::{
    Filter, NamespaceSchema, QueryError, QueryErrorKind, QueryLanguage, SelectQuery,
};
use cim_schema::xml::{Data, Object};

use crate::cimom::{ObjectManager, Shape};
use crate::error::OperationError;
use crate::operations::{Item, Items, Operation, Outcome};

/// A pull operation's FQL filter.
pub(crate) struct PullFilter {
    filter: Filter,
}

impl PullFilter {
    /// True when the instance passes the filter.
    pub(crate) fn matches(
        &self,
        manager: &Arc<ObjectManager>,
        namespace: &str,
        instance: &Instance,
    ) -> bool {
        let schema = NamespaceSchema {
            repository: manager.repository(),
            namespace,
        };
        self.filter.matches(instance, &schema)
    }
}

fn query_error(error: &QueryError) -> OperationError {
    match error.kind {
        QueryErrorKind::Syntax | QueryErrorKind::Limit => {
            OperationError::InvalidQuery(format!("{} (at byte {})", error.message, error.position))
        }
        QueryErrorKind::Unsupported => {
            OperationError::QueryLanguageNotSupported(error.message.clone())
        }
    }
}

/// The FQL filter of an Open operation, if it has one.
pub(crate) fn pull_filter(op: &Operation<'_>) -> Result<Option<PullFilter>, OperationError> {
    let language = op.string("FilterQueryLanguage")?;
    let text = op.string("FilterQuery")?;
    match (language, text) {
        (None, None) => Ok(None),
        (Some(language), Some(text)) => {
            if QueryLanguage::from_name(&language) != Some(QueryLanguage::Fql) {
                return Err(OperationError::QueryLanguageNotSupported(format!(
                    "{language}: pull operations filter with DMTF:FQL"
                )));
            }
            let filter = Filter::parse(&text).map_err(|e| query_error(&e))?;
            Ok(Some(PullFilter { filter }))
        }
        _ => Err(OperationError::parameter(
            "FilterQueryLanguage and FilterQuery go together",
        )),
    }
}

/// A WQL or CQL query and the class it selects from, checked against the namespace.
fn select(
    op: &Operation<'_>,
    language_param: &str,
    query_param: &str,
) -> Result<SelectQuery, OperationError> {
    let language = op
        .string(language_param)?
        .ok_or_else(|| OperationError::parameter(format!("{language_param} is required")))?;
    let text = op
        .string(query_param)?
        .ok_or_else(|| OperationError::parameter(format!("{query_param} is required")))?;
    let Some(language @ (QueryLanguage::Wql | QueryLanguage::Cql)) =
        QueryLanguage::from_name(&language)
    else {
        return Err(OperationError::QueryLanguageNotSupported(format!(
            "{language}: queries are WQL or DMTF:CQL"
        )));
    };
    let query = SelectQuery::parse(language, &text).map_err(|e| query_error(&e))?;
    if op
        .manager
        .repository()
        .class(&op.context.namespace, query.class_name().as_str())
        .is_none()
    {
        return Err(OperationError::InvalidQuery(format!(
            "class {} does not exist in namespace {}",
            query.class_name(),
            op.context.namespace
        )));
    }
    if let Some(properties) = query.selected_properties() {
        let class = op
            .manager
            .class(&op.context.namespace, query.class_name().as_str())?;
        if let Some(unknown) = properties
            .iter()
            .find(|p| class.property(p.as_str()).is_none())
        {
            return Err(OperationError::InvalidQuery(format!(
                "class {} has no property {unknown}",
                class.name
            )));
        }
    }
    Ok(query)
}

/// The instances a query selects, projected, with their paths.
fn selected(
    op: &Operation<'_>,
    query: SelectQuery,
) -> Result<
    impl Iterator<Item = Result<(cim_schema::model::InstancePath, Instance), OperationError>> + Send,
    OperationError,
> {
    let class: Name = op
        .manager
        .class(&op.context.namespace, query.class_name().as_str())?
        .name
        .clone();
    let instances = op.shaped_instances(
        &class,
        Shape {
            deep_inheritance: true,
            ..Shape::default()
        },
        true,
    )?;
    let manager = op.manager.clone();
    let namespace = op.context.namespace.clone();
    Ok(instances.filter_map(move |item| match item {
        Err(error) => Some(Err(error)),
        Ok((path, instance)) => {
            let schema = NamespaceSchema {
                repository: manager.repository(),
                namespace: &namespace,
            };
            query
                .matches(&instance, &schema)
                .then(|| Ok((path, query.project(&instance))))
        }
    }))
}

/// ExecQuery: `VALUE.OBJECTWITHPATH` items.
pub(crate) fn exec_query(op: &Operation<'_>) -> Result<Outcome, OperationError> {
    op.allow(&["QueryLanguage", "Query"])?;
    let query = select(op, "QueryLanguage", "Query")?;
    let items = selected(op, query)?;
    Ok(Outcome::Stream(Box::new(items.map(|item| {
        item.map(|(path, instance)| {
            Item::Data(Data::ObjectWithPath(
                ObjectPath::Instance(path),
                Object::Instance(instance),
            ))
        })
    }))))
}

/// OpenQueryInstances: `INSTANCE` items (DSP0200 returns query results without paths).
pub(crate) fn open_query(op: &Operation<'_>) -> Result<Items, OperationError> {
    if op.boolean("ReturnQueryResultClass", false)? {
        return Err(OperationError::NotSupported(
            "ReturnQueryResultClass is not supported".into(),
        ));
    }
    let query = select(op, "FilterQueryLanguage", "FilterQuery")?;
    let items = selected(op, query)?;
    Ok(Box::new(items.map(|item| {
        item.map(|(_, instance)| Item::Data(Data::Instance(instance)))
    })))
}
