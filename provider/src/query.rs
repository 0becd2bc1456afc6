//! Queries in the server: ExecQuery and OpenQueryInstances (WQL, DMTF:CQL) and the DMTF:FQL
//! filters of the pull operations (DSP0212), over the instances of the query's class; and the
//! checks of the names a query uses, which indication filters share.

use std::sync::Arc;

use cim_schema::model::{Class, Instance, Name, ObjectPath, Property};
use cim_schema::query::{
    ElementTest, Expression, Filter, NamespaceSchema, Operand, PathSegment, PropertyPath,
    QueryError, QueryErrorKind, QueryLanguage, SelectQuery,
};
use cim_schema::repository::Repository;
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

    /// Checks the filter's names against `root`, the class of the instances an enumeration
    /// filters, in the request's namespace (see [`check_filter_names`]).
    pub(crate) fn check_names(
        &self,
        op: &Operation<'_>,
        root: &Name,
    ) -> Result<(), OperationError> {
        check_filter_names(
            op.manager.repository(),
            &[&op.context.namespace],
            &self.filter,
            Some(root),
        )
    }

    /// Checks the filter's names for an association traversal, whose results are of
    /// `result_class` (any class when `None`) in any namespace this server serves.
    pub(crate) fn check_traversal_names(
        &self,
        op: &Operation<'_>,
        result_class: Option<&Name>,
    ) -> Result<(), OperationError> {
        let mut namespaces: Vec<&str> = vec![&op.context.namespace];
        namespaces.extend(
            op.manager
                .namespaces()
                .map(Name::as_str)
                .filter(|namespace| *namespace != &*op.context.namespace),
        );
        check_filter_names(
            op.manager.repository(),
            &namespaces,
            &self.filter,
            result_class,
        )
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
                    "query language {language:?} is not supported: pull operations filter with \
                     DMTF:FQL"
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
            "query language {language:?} is not supported: queries are WQL or DMTF:CQL"
        )));
    };
    let query = SelectQuery::parse(language, &text).map_err(|e| query_error(&e))?;
    check_selection(op.manager.repository(), &op.context.namespace, &query)?;
    check_condition(op.manager.repository(), &op.context.namespace, &query)?;
    Ok(query)
}

/// Checks what ExecQuery checks of a parsed query in `namespace`: its FROM class exists and
/// has every property of the SELECT list (CIM_ERR_INVALID_QUERY otherwise).
pub(crate) fn check_selection(
    repository: &Repository,
    namespace: &str,
    query: &SelectQuery,
) -> Result<(), OperationError> {
    let Some(class) = repository.class(namespace, query.class_name().as_str()) else {
        return Err(OperationError::InvalidQuery(format!(
            "class {} does not exist in namespace {namespace}",
            query.class_name()
        )));
    };
    if let Some(properties) = query.selected_properties() {
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
    Ok(())
}

/// Checks the names of a parsed query's WHERE condition in `namespace` (CIM_ERR_INVALID_QUERY
/// otherwise): each property path names a property of the FROM class or of one of its
/// subclasses (the instances a query takes may be of a subclass), each `ISA` and `Class::`
/// scope names a class, and only embedded objects are stepped into.
///
/// A step into an embedded object is checked against the class its `EmbeddedInstance`
/// qualifier names, or the classes that the condition tests that object against with `ISA`
/// (`SourceInstance ISA HP_SGPackage AND SourceInstance.Name = 'db'`); an embedded object of
/// no known class (`SourceInstance.NodeState` alone) may hold any property.
pub(crate) fn check_condition(
    repository: &Repository,
    namespace: &str,
    query: &SelectQuery,
) -> Result<(), OperationError> {
    let Some(condition) = query.condition() else {
        return Ok(());
    };
    let checker = ConditionNames {
        repository,
        namespace,
        from: Some((query.class_name(), query.alias())),
        roots: vec![query.class_name().clone()],
        any_class: false,
        narrowed: Vec::new(),
    };
    checker.check(condition)
}

/// Checks the names of an FQL filter (DSP0212) as [`check_condition`] checks a query's: each
/// property path names a property of `root` (the class the filtered instances are of) or of
/// one of its subclasses, and only embedded objects are stepped into; with no `root` (an
/// association traversal without ResultClass), of any class. A misspelt name is
/// CIM_ERR_INVALID_QUERY, not a filter that quietly matches nothing (`Nmae = 'db'`) or
/// everything (`Nmae IS NULL`).
///
/// The filter is checked in each of `namespaces`, the request's first, and is valid when it
/// is valid in one: the objects an association traversal finds may live in another namespace
/// (CIM_ElementConformsToProfile in root/interop names root/cimv2's HP_SGCluster, a
/// CIM_ComputerSystem there). The error told is the first namespace's.
pub(crate) fn check_filter_names(
    repository: &Repository,
    namespaces: &[&str],
    filter: &Filter,
    root: Option<&Name>,
) -> Result<(), OperationError> {
    let mut first_error = None;
    for &namespace in namespaces {
        let (roots, any_class) = match root {
            Some(class) if repository.class(namespace, class.as_str()).is_some() => {
                (vec![class.clone()], false)
            }
            Some(_) => continue,
            // Every class is a subclass of a root class, which `property` looks through.
            None => match repository.class_names(namespace, None, false) {
                Ok(names) => (names.into_iter().cloned().collect(), true),
                Err(_) => continue,
            },
        };
        let checker = ConditionNames {
            repository,
            namespace,
            from: None,
            roots,
            any_class,
            narrowed: Vec::new(),
        };
        match checker.check(filter.condition()) {
            Ok(()) => return Ok(()),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| {
        OperationError::InvalidQuery(match root {
            Some(class) => format!("class {class} does not exist"),
            None => "no namespace to check the filter in".to_owned(),
        })
    }))
}

impl ConditionNames<'_> {
    /// Checks every name of `condition`.
    fn check(mut self, condition: &Expression) -> Result<(), OperationError> {
        let mut tests = Vec::new();
        each_expression(condition, &mut |expression| {
            if let Expression::Isa { path, class_name } = expression {
                tests.push((path, class_name));
            }
        });
        for (path, class_name) in tests {
            self.class(class_name)?;
            let segments = self.unrooted(path);
            if !segments.is_empty() {
                self.narrowed.push((path_key(segments), class_name.clone()));
            }
        }
        let mut paths = Vec::new();
        each_expression(condition, &mut |expression| match expression {
            Expression::Comparison { left, right, .. } => {
                paths.extend(
                    [left, right]
                        .into_iter()
                        .filter_map(|operand| match operand {
                            Operand::Property(path) => Some(path),
                            Operand::Literal(_) => None,
                        }),
                );
            }
            Expression::Like {
                operand: Operand::Property(path),
                ..
            }
            | Expression::IsNull {
                operand: Operand::Property(path),
                ..
            }
            | Expression::Isa { path, .. } => paths.push(path),
            Expression::Quantified { path, test, .. } => {
                paths.push(path);
                if let ElementTest::Comparison {
                    right: Operand::Property(right),
                    ..
                } = test
                {
                    paths.push(right);
                }
            }
            _ => {}
        });
        paths.into_iter().try_for_each(|path| self.path(path))
    }
}

/// Calls `visit` on `expression` and on every expression inside it.
fn each_expression<'a>(expression: &'a Expression, visit: &mut impl FnMut(&'a Expression)) {
    visit(expression);
    match expression {
        Expression::And(items) | Expression::Or(items) => {
            for item in items {
                each_expression(item, visit);
            }
        }
        Expression::Not(inner) => each_expression(inner, visit),
        _ => {}
    }
}

/// How a property path is named in the `ISA` tests of a condition (case-insensitive).
fn path_key(segments: &[PathSegment]) -> String {
    segments
        .iter()
        .map(|segment| segment.to_string().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(".")
}

/// The state of [`check_condition`].
struct ConditionNames<'a> {
    repository: &'a Repository,
    namespace: &'a str,
    /// The FROM class of a query and its alias, which may start a path (`Pkg.Name`); none
    /// for a filter.
    from: Option<(&'a Name, Option<&'a Name>)>,
    /// The classes the condition's instances are of.
    roots: Vec<Name>,
    /// True when `roots` are all the namespace's root classes: any class's instances.
    any_class: bool,
    /// The classes `path ISA Class` tests embedded objects against, by [`path_key`].
    narrowed: Vec<(String, Name)>,
}

impl ConditionNames<'_> {
    /// The class of that name, or CIM_ERR_INVALID_QUERY.
    fn class(&self, name: &Name) -> Result<&Class, OperationError> {
        self.repository
            .class(self.namespace, name.as_str())
            .ok_or_else(|| {
                OperationError::InvalidQuery(format!(
                    "class {name} does not exist in namespace {}",
                    self.namespace
                ))
            })
    }

    /// The path without its first step when that names the queried instance itself (the
    /// FROM class or its alias, and no property of it), as the evaluation reads it.
    fn unrooted<'p>(&self, path: &'p PropertyPath) -> &'p [PathSegment] {
        let segments = path.segments.as_slice();
        let Some((class_name, alias)) = self.from else {
            return segments;
        };
        match segments.first() {
            Some(first)
                if first.scope.is_none()
                    && first.index.is_none()
                    && (first.name == *class_name || alias == Some(&first.name))
                    && self
                        .property(std::slice::from_ref(class_name), &first.name)
                        .is_none() =>
            {
                &segments[1..]
            }
            _ => segments,
        }
    }

    /// The declaration of `name` in one of `classes` or one of their subclasses.
    fn property(&self, classes: &[Name], name: &Name) -> Option<&Property> {
        classes.iter().find_map(|class_name| {
            let class = self.repository.class(self.namespace, class_name.as_str())?;
            class.property(name.as_str()).or_else(|| {
                self.repository
                    .class_names(self.namespace, Some(class_name.as_str()), true)
                    .ok()?
                    .into_iter()
                    .filter_map(|sub| self.repository.class(self.namespace, sub.as_str()))
                    .find_map(|sub| sub.property(name.as_str()))
            })
        })
    }

    /// Checks one property path.
    fn path(&self, path: &PropertyPath) -> Result<(), OperationError> {
        let segments = self.unrooted(path);
        // The classes the current step's object may be of; none known: anything goes.
        let mut classes = self.roots.clone();
        for (position, segment) in segments.iter().enumerate() {
            if let Some(scope) = &segment.scope {
                classes = vec![self.class(scope)?.name.clone()];
            }
            if classes.is_empty() {
                return Ok(());
            }
            let Some(declared) = self.property(&classes, &segment.name) else {
                if self.any_class && position == 0 {
                    return Err(OperationError::InvalidQuery(format!(
                        "{path}: no class in namespace {} has a property {}",
                        self.namespace, segment.name
                    )));
                }
                let names: Vec<&str> = classes.iter().map(Name::as_str).collect();
                return Err(OperationError::InvalidQuery(format!(
                    "{path}: class {} has no property {}",
                    names.join(" or "),
                    segment.name
                )));
            };
            if position + 1 == segments.len() {
                break;
            }
            let embedded_instance = declared
                .qualifiers
                .get("EmbeddedInstance")
                .and_then(|q| q.value.as_ref()?.as_str());
            if declared.embedded_object.is_none()
                && embedded_instance.is_none()
                && !declared.qualifiers.is_true("EmbeddedObject")
            {
                return Err(OperationError::InvalidQuery(format!(
                    "{path}: property {} is not an embedded object",
                    segment.name
                )));
            }
            let key = path_key(&segments[..=position]);
            classes = self
                .narrowed
                .iter()
                .filter(|(narrowed, _)| *narrowed == key)
                .map(|(_, class)| class.clone())
                .collect();
            if classes.is_empty() {
                if let Some(class) = embedded_instance {
                    classes.push(self.class(&Name::new(class))?.name.clone());
                }
            }
        }
        Ok(())
    }
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
    let spelling = crate::cimom::namespace_spelling(&op.call.namespace);
    Ok(instances.filter_map(move |item| match item {
        Err(error) => Some(Err(error)),
        Ok((path, instance)) => {
            let instance = crate::cimom::spelt_instance(spelling.as_ref(), instance);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(namespaces: &[&str], filter: &str, root: Option<&str>) -> Result<(), OperationError> {
        let repository = cim_schema::shipped::repository().expect("the shipped schema");
        let filter = Filter::parse(filter).expect("a filter");
        let root = root.map(Name::new);
        check_filter_names(&repository, namespaces, &filter, root.as_ref())
    }

    fn invalid(result: &Result<(), OperationError>) -> bool {
        matches!(result, Err(OperationError::InvalidQuery(_)))
    }

    #[test]
    fn filter_names_are_checked_against_the_class_and_its_subclasses() {
        let cimv2 = &["root/cimv2"][..];
        assert!(check(cimv2, "ClusterStatus = 'up'", Some("HP_SGCluster")).is_ok());
        // A property only a subclass has: some of the instances may have it.
        assert!(check(cimv2, "ClusterStatus = 'up'", Some("CIM_ComputerSystem")).is_ok());
        assert!(check(
            cimv2,
            "Name = 'c' AND NOT (Caption IS NULL)",
            Some("HP_SGCluster")
        )
        .is_ok());
        assert!(invalid(&check(
            cimv2,
            "ClusterStatsu = 'up'",
            Some("HP_SGCluster")
        )));
        assert!(invalid(&check(
            cimv2,
            "ClusterStatsu IS NULL",
            Some("HP_SGCluster")
        )));
        assert!(invalid(&check(
            cimv2,
            "ClusterStatus = 'up'",
            Some("HP_SGPackage")
        )));
    }

    #[test]
    fn a_traversals_filter_is_valid_in_any_namespace_its_results_may_come_from() {
        // CIM_ElementConformsToProfile in root/interop leads to root/cimv2's HP_SGCluster.
        let both = &["root/interop", "root/cimv2"][..];
        let interop = &["root/interop"][..];
        assert!(check(both, "ClusterStatus = 'up'", None).is_ok());
        assert!(check(both, "ClusterStatus = 'up'", Some("CIM_ComputerSystem")).is_ok());
        assert!(invalid(&check(interop, "ClusterStatus = 'up'", None)));
        assert!(invalid(&check(both, "ClusterStatsu = 'up'", None)));
        // A class only another namespace has is checked there.
        assert!(check(
            both,
            "PackageType = 'x' OR Name = 'db'",
            Some("HP_SGPackage")
        )
        .is_ok());
        assert!(invalid(&check(both, "Nmae = 'db'", Some("HP_SGPackage"))));
        match check(both, "NoSuchProperty = 1", None) {
            Err(OperationError::InvalidQuery(text)) => {
                assert!(
                    text.contains("root/interop"),
                    "the first namespace's error: {text}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_filter_steps_into_embedded_objects_only() {
        let interop = &["root/interop"][..];
        assert!(invalid(&check(
            interop,
            "ManagedElement.Name = 'x'",
            Some("CIM_ElementConformsToProfile")
        )));
    }
}
