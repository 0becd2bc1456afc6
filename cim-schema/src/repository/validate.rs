//! The whole-namespace check: every class a class names exists.
//!
//! [`Repository::add_class`] checks what it can when a class arrives: its superclass and the
//! targets of its reference properties exist. A method may take or return references to, and
//! an element may embed instances of, classes declared later in a schema's include order, and
//! a class can be deleted while others still name it; so those names are checked here, over
//! the namespace as it stands, once loading is over.

use super::{Repository, RepositoryError};
use crate::model::{CimType, Class, NameKey, QualifierList, Value};

/// The qualifier that names the class of an embedded instance (DSP0004).
const EMBEDDED_INSTANCE: &str = "EmbeddedInstance";

impl Repository {
    /// Checks that every class named by the namespace's classes exists: the targets of
    /// reference properties, of reference parameters and return types, and the classes named
    /// by `EmbeddedInstance` qualifiers. Returns every problem found (empty when none), each
    /// as [`RepositoryError::InvalidReference`].
    pub fn validate(&self, namespace: &str) -> Result<Vec<RepositoryError>, RepositoryError> {
        let ns = self.namespace_ref(namespace)?;
        let exists = |name: &str| ns.classes.contains_key(&NameKey(name));
        let mut problems = Vec::new();
        for class in ns.classes.values() {
            for_each_named_class(class, &mut |element, target| {
                if !exists(target) {
                    problems.push(RepositoryError::InvalidReference {
                        element,
                        target: target.to_owned(),
                    });
                }
            });
        }
        Ok(problems)
    }
}

/// Calls `visit(element, class name)` for every class name a class's own (not propagated)
/// elements use, so that a problem is reported once, where it is declared.
fn for_each_named_class(class: &Class, visit: &mut dyn FnMut(String, &str)) {
    for property in class.properties.values().filter(|p| !p.propagated) {
        let element = || format!("property {}.{}", class.name, property.name);
        if let CimType::Reference(Some(target)) = &property.cim_type {
            visit(element(), target.as_str());
        }
        if let Some(target) = embedded_instance(&property.qualifiers) {
            visit(element(), target);
        }
    }
    for method in class.methods.values().filter(|m| !m.propagated) {
        let element = format!("method {}.{}", class.name, method.name);
        if let CimType::Reference(Some(target)) = &method.return_type {
            visit(element.clone(), target.as_str());
        }
        if let Some(target) = embedded_instance(&method.qualifiers) {
            visit(element.clone(), target);
        }
        for parameter in &method.parameters {
            let element = || format!("{element} parameter {}", parameter.name);
            if let CimType::Reference(Some(target)) = &parameter.cim_type {
                visit(element(), target.as_str());
            }
            if let Some(target) = embedded_instance(&parameter.qualifiers) {
                visit(element(), target);
            }
        }
    }
}

/// The class an `EmbeddedInstance` qualifier names, if the element has one with a value.
fn embedded_instance(qualifiers: &QualifierList) -> Option<&str> {
    qualifiers
        .get(EMBEDDED_INSTANCE)
        .and_then(|q| q.value.as_ref())
        .and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Method, Name, Parameter, Property, Qualifier};

    #[test]
    fn named_classes_are_visited_where_declared() {
        let mut class = Class::new("A", None);
        class.add_property(Property::new(
            "R",
            CimType::Reference(Some(Name::new("T1"))),
            None,
        ));
        let mut inherited = Property::new("S", CimType::Reference(Some(Name::new("T9"))), None);
        inherited.propagated = true;
        class.add_property(inherited);
        let mut parameter = Parameter {
            name: Name::new("P"),
            cim_type: CimType::String,
            is_array: false,
            array_size: None,
            qualifiers: QualifierList::new(),
            embedded_object: None,
        };
        parameter.qualifiers.insert(Qualifier::new(
            EMBEDDED_INSTANCE,
            CimType::String,
            Some(Value::from("T3")),
        ));
        let method = Method {
            name: Name::new("M"),
            return_type: CimType::Reference(Some(Name::new("T2"))),
            parameters: vec![parameter],
            qualifiers: QualifierList::new(),
            class_origin: None,
            propagated: false,
        };
        class.methods.insert(method.name.clone(), method);
        let mut seen = Vec::new();
        for_each_named_class(&class, &mut |element, target| {
            seen.push(format!("{element} -> {target}"));
        });
        assert_eq!(
            seen,
            [
                "property A.R -> T1",
                "method A.M -> T2",
                "method A.M parameter P -> T3"
            ]
        );
    }
}
