//! The association queries behind Associators, AssociatorNames, References and ReferenceNames
//! (DSP0200 5.3.2.x): at class level, which associations can link a class to which others
//! through which roles; at instance level, which stored association instances reference an
//! instance and what they lead to.

use super::{resolve, AssociationRole, Namespace, Repository, RepositoryError};
use crate::model::{CimType, Class, Instance, InstancePath, Name, NameKey, ObjectPath, Value};

/// The filters of the association operations; `None` does not filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AssociationFilter<'a> {
    /// AssocClass: only associations that are this class or a subclass of it.
    pub assoc_class: Option<&'a str>,
    /// ResultClass: only other ends that can be (a subclass of) this class.
    pub result_class: Option<&'a str>,
    /// Role: only through the reference property of this name on the source side.
    pub role: Option<&'a str>,
    /// ResultRole: only to the reference property of this name on the other side.
    pub result_role: Option<&'a str>,
}

/// One way an association class links a source class to another end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationLink<'a> {
    /// The association class.
    pub association: &'a Name,
    /// Its reference property that can point at the source (the Role).
    pub role: &'a Name,
    /// Its reference property that points at the other end (the ResultRole).
    pub result_role: &'a Name,
    /// The class the other end's reference is declared to point at.
    pub result_class: &'a Name,
}

impl Repository {
    /// The association classes with a reference property that can point at an instance of
    /// `class`: one declared to reference `class` or one of its superclasses. Each is given
    /// once per such reference property (the role).
    pub fn associations_referencing(
        &self,
        namespace: &str,
        class: &str,
    ) -> Result<Vec<AssociationRole<'_>>, RepositoryError> {
        let ns = self.namespace_ref(namespace)?;
        let mut current = ns
            .classes
            .get(&NameKey(class))
            .ok_or_else(|| RepositoryError::InvalidClass(class.to_owned()))?;
        let mut roles = Vec::new();
        // The class and its superclasses, each looked up in the index of reference targets:
        // a few lookups per class instead of a scan of every association.
        loop {
            if let Some(entries) = ns.referenced_by.get(&current.name) {
                roles.extend(entries.iter().map(|(association, role)| AssociationRole {
                    association,
                    role,
                    reference_class: &current.name,
                }));
            }
            match current.superclass.as_ref().and_then(|s| ns.classes.get(s)) {
                Some(parent) => current = parent,
                None => break,
            }
        }
        // In the order of the associations, then of their reference properties.
        roles.sort_by_key(|r| {
            let association = ns.classes.get_full(r.association);
            (
                association.map(|(i, _, _)| i),
                association.and_then(|(_, _, c)| c.properties.get_index_of(r.role)),
            )
        });
        Ok(roles)
    }

    /// Class-level Associators and References: every (association, role, result role) that
    /// can link an instance of `class` to another object, filtered as DSP0200 filters.
    /// ResultClass keeps an end whose declared class is the result class, a subclass of it, or
    /// a superclass of it (such an end can hold an instance of the result class).
    pub fn association_links(
        &self,
        namespace: &str,
        class: &str,
        filter: &AssociationFilter<'_>,
    ) -> Result<Vec<AssociationLink<'_>>, RepositoryError> {
        let ns = self.namespace_ref(namespace)?;
        let roles = self.associations_referencing(namespace, class)?;
        let mut links = Vec::new();
        for found in roles {
            let Some(association) = ns.classes.get(found.association) else {
                continue;
            };
            if !matches_association(ns, association, found.role, filter) {
                continue;
            }
            for (result_role, target) in references(association) {
                if result_role == found.role
                    || !filter.result_role.is_none_or(|r| result_role.matches(r))
                    || !filter.result_class.is_none_or(|r| {
                        resolve::is_a(ns, target.as_str(), r)
                            || resolve::is_a(ns, r, target.as_str())
                    })
                {
                    continue;
                }
                links.push(AssociationLink {
                    association: &association.name,
                    role: found.role,
                    result_role,
                    result_class: target,
                });
            }
        }
        Ok(links)
    }

    /// Instance-level References: the stored association instances with a reference property
    /// (named `filter.role`, if given) whose value is `target`, of `filter.assoc_class` (or a
    /// subclass) if given. ResultClass and ResultRole do not apply to References.
    pub fn references_to<'a>(
        &'a self,
        namespace: &str,
        target: &InstancePath,
        filter: &AssociationFilter<'_>,
    ) -> Result<Vec<&'a (InstancePath, Instance)>, RepositoryError> {
        let ns = self.namespace_ref(namespace)?;
        // A stored instance's own path has its keys typed as its class declares them, as the
        // references stored in association instances do.
        let target = self
            .instance_at(namespace, target)
            .map_or(target, |(path, _)| path);
        Ok(ns
            .instances
            .iter()
            .filter(|(path, instance)| {
                ns.classes.get(&path.class_name).is_some_and(|class| {
                    class.is_association()
                        && filter
                            .assoc_class
                            .is_none_or(|a| resolve::is_a(ns, class.name.as_str(), a))
                        && instance.properties.values().any(|p| {
                            filter.role.is_none_or(|r| p.name.matches(r))
                                && points_at(p.value.as_ref(), target)
                        })
                })
            })
            .collect())
    }

    /// Instance-level Associators: the stored instances reached from `target` through the
    /// association instances [`Repository::references_to`] finds, by their other reference
    /// properties (named `filter.result_role`, if given), keeping those of
    /// `filter.result_class` (or a subclass) if given. Each is given once.
    pub fn associators_of<'a>(
        &'a self,
        namespace: &str,
        target: &InstancePath,
        filter: &AssociationFilter<'_>,
    ) -> Result<Vec<&'a (InstancePath, Instance)>, RepositoryError> {
        let ns = self.namespace_ref(namespace)?;
        let target = self
            .instance_at(namespace, target)
            .map_or(target, |(path, _)| path);
        let mut found: Vec<&'a (InstancePath, Instance)> = Vec::new();
        for (_, association) in self.references_to(namespace, target, filter)? {
            for property in association.properties.values() {
                if filter
                    .result_role
                    .is_some_and(|r| !property.name.matches(r))
                    || points_at(property.value.as_ref(), target)
                {
                    continue;
                }
                let Some(Value::Reference(path)) = &property.value else {
                    continue;
                };
                let ObjectPath::Instance(path) = path.as_ref() else {
                    continue;
                };
                let Some(entry) = self.instance_at(namespace, path) else {
                    continue;
                };
                let wanted = filter
                    .result_class
                    .is_none_or(|r| resolve::is_a(ns, entry.0.class_name.as_str(), r));
                if wanted && !found.iter().any(|f| std::ptr::eq(*f, entry)) {
                    found.push(entry);
                }
            }
        }
        Ok(found)
    }
}

/// Records the reference properties of an association being added in the index of reference
/// targets. `class` is resolved, so an Association qualifier inherited from a superclass counts.
/// An ordinary class may have references too (DSP0004 3.0), but it is no association: the
/// association operations do not follow it, so it is not indexed.
pub(super) fn index_references(ns: &mut Namespace, class: &Class) {
    if !class.is_association() {
        return;
    }
    for (role, target) in references(class) {
        ns.referenced_by
            .entry(target.clone())
            .or_default()
            .push((class.name.clone(), role.clone()));
    }
}

/// Removes the reference properties of a class being deleted from the index.
pub(super) fn unindex_references(ns: &mut Namespace, class: &Class) {
    for (_, target) in references(class) {
        if let Some(entries) = ns.referenced_by.get_mut(target) {
            entries.retain(|(association, _)| *association != class.name);
            if entries.is_empty() {
                ns.referenced_by.remove(target);
            }
        }
    }
}

/// The reference properties of a class with the class each is declared to point at.
fn references(class: &Class) -> impl Iterator<Item = (&Name, &Name)> {
    class
        .properties
        .values()
        .filter_map(|property| match &property.cim_type {
            CimType::Reference(Some(target)) => Some((&property.name, target)),
            _ => None,
        })
}

/// True when an association passes the AssocClass and Role filters through `role`.
fn matches_association(
    ns: &Namespace,
    association: &Class,
    role: &Name,
    filter: &AssociationFilter<'_>,
) -> bool {
    filter
        .assoc_class
        .is_none_or(|a| resolve::is_a(ns, association.name.as_str(), a))
        && filter.role.is_none_or(|r| role.matches(r))
}

/// True when a property value is a reference to the instance at `target` (host and
/// namespace compared only when both paths have them).
fn points_at(value: Option<&Value>, target: &InstancePath) -> bool {
    match value {
        Some(Value::Reference(path)) => match path.as_ref() {
            ObjectPath::Instance(path) => path.same_instance(target),
            ObjectPath::Class(_) => false,
        },
        _ => false,
    }
}
