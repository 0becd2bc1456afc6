//! Inheritance resolution (DSP0004 5.1.2, 5.6.1.3) and the GetClass reductions.

use indexmap::IndexMap;

use super::{ClassQuery, Namespace, RepositoryError};
use crate::model::{CimType, Class, Method, Name, NameKey, Property, Qualifier, QualifierList};

/// Resolves a class as declared against its superclass, checking the rules that make a class
/// valid in `namespace`. Nothing is changed here: the caller stores the result.
pub(super) fn resolve(namespace: &Namespace, class: Class) -> Result<Class, RepositoryError> {
    let superclass =
        match &class.superclass {
            None => None,
            Some(name) => Some(namespace.classes.get(name).ok_or_else(|| {
                RepositoryError::InvalidSuperclass {
                    class: class.name.to_string(),
                    superclass: name.to_string(),
                }
            })?),
        };
    let context = class.name.to_string();
    let qualifiers = merge_qualifiers(
        superclass.map(|s| &s.qualifiers),
        class.qualifiers,
        &context,
    )?;
    let mut resolved = Class {
        name: class.name,
        superclass: class.superclass,
        qualifiers,
        properties: IndexMap::new(),
        methods: IndexMap::new(),
    };
    if let Some(superclass) = superclass {
        if resolved.is_association() != superclass.is_association() {
            return Err(RepositoryError::Invalid(format!(
                "class {} and its superclass {} must both be associations or neither",
                resolved.name, superclass.name
            )));
        }
        resolved.properties = superclass
            .properties
            .iter()
            .map(|(name, property)| (name.clone(), inherit_property(property)))
            .collect();
        resolved.methods = superclass
            .methods
            .iter()
            .map(|(name, method)| (name.clone(), inherit_method(method)))
            .collect();
    }
    let superclass_has_keys = superclass.is_some_and(|s| s.keys().next().is_some());
    for (_, property) in class.properties {
        add_property(namespace, &mut resolved, property, superclass_has_keys)?;
    }
    for (_, method) in class.methods {
        add_method(&mut resolved, method)?;
    }
    Ok(resolved)
}

/// Adds one declared property to the class being resolved, as a new property or an override.
fn add_property(
    namespace: &Namespace,
    class: &mut Class,
    mut property: Property,
    superclass_has_keys: bool,
) -> Result<(), RepositoryError> {
    let context = format!("property {}.{}", class.name, property.name);
    if let CimType::Reference(target) = &property.cim_type {
        if !class.is_association() {
            return Err(RepositoryError::Invalid(format!(
                "{context} is a reference, but only associations have reference properties"
            )));
        }
        if let Some(target) = target {
            if *target != class.name && !namespace.classes.contains_key(target) {
                return Err(RepositoryError::InvalidClass(target.to_string()));
            }
        }
    }
    property.propagated = false;
    property.class_origin = Some(class.name.clone());
    match class.properties.get(&property.name) {
        Some(inherited) => {
            check_override_type(namespace, inherited, &property, &context)?;
            property.qualifiers =
                merge_qualifiers(Some(&inherited.qualifiers), property.qualifiers, &context)?;
        }
        None if property.is_key() && superclass_has_keys => {
            return Err(RepositoryError::Invalid(format!(
                "{context} adds a key, but the superclass already has keys"
            )));
        }
        None => {}
    }
    class.properties.insert(property.name.clone(), property);
    Ok(())
}

/// Adds one declared method to the class being resolved, as a new method or an override.
fn add_method(class: &mut Class, mut method: Method) -> Result<(), RepositoryError> {
    let context = format!("method {}.{}", class.name, method.name);
    method.propagated = false;
    method.class_origin = Some(class.name.clone());
    if let Some(inherited) = class.methods.get(&method.name) {
        method.qualifiers =
            merge_qualifiers(Some(&inherited.qualifiers), method.qualifiers, &context)?;
        for parameter in &mut method.parameters {
            if let Some(old) = inherited.parameter(parameter.name.as_str()) {
                let context = format!("{context} parameter {}", parameter.name);
                let local = std::mem::take(&mut parameter.qualifiers);
                parameter.qualifiers = merge_qualifiers(Some(&old.qualifiers), local, &context)?;
            }
        }
    }
    class.methods.insert(method.name.clone(), method);
    Ok(())
}

/// An overriding property keeps its type: the same type and array-ness, and for a reference
/// the same class or a subclass of it.
fn check_override_type(
    namespace: &Namespace,
    inherited: &Property,
    property: &Property,
    context: &str,
) -> Result<(), RepositoryError> {
    let compatible = match (&inherited.cim_type, &property.cim_type) {
        (CimType::Reference(Some(old)), CimType::Reference(Some(new))) => {
            is_a(namespace, new.as_str(), old.as_str()) || new == old
        }
        (CimType::Reference(_), CimType::Reference(_)) => true,
        (old, new) => old == new,
    };
    if !compatible || inherited.is_array != property.is_array {
        return Err(RepositoryError::Invalid(format!(
            "{context} overrides a {}{} property with a {}{} one",
            inherited.cim_type,
            if inherited.is_array { "[]" } else { "" },
            property.cim_type,
            if property.is_array { "[]" } else { "" },
        )));
    }
    Ok(())
}

/// A superclass property as a subclass inherits it: propagated, with its propagating qualifiers.
fn inherit_property(property: &Property) -> Property {
    Property {
        name: property.name.clone(),
        cim_type: property.cim_type.clone(),
        is_array: property.is_array,
        array_size: property.array_size,
        value: property.value.clone(),
        qualifiers: propagate(&property.qualifiers),
        class_origin: property.class_origin.clone(),
        propagated: true,
        embedded_object: property.embedded_object,
    }
}

/// A superclass method as a subclass inherits it.
fn inherit_method(method: &Method) -> Method {
    Method {
        name: method.name.clone(),
        return_type: method.return_type.clone(),
        parameters: method.parameters.clone(),
        qualifiers: propagate(&method.qualifiers),
        class_origin: method.class_origin.clone(),
        propagated: true,
    }
}

/// The qualifiers that propagate (ToSubclass), marked as propagated.
fn propagate(qualifiers: &QualifierList) -> QualifierList {
    QualifierList(
        qualifiers
            .iter()
            .filter(|q| q.flavor.to_subclass)
            .map(|q| {
                (
                    q.name.clone(),
                    Qualifier {
                        propagated: true,
                        ..q.clone()
                    },
                )
            })
            .collect(),
    )
}

/// The qualifiers of an element that overrides (or a class that inherits from) one with
/// `inherited` qualifiers: the inherited ones that propagate, then the local ones, which
/// replace inherited ones of the same name unless those are DisableOverride with another value.
fn merge_qualifiers(
    inherited: Option<&QualifierList>,
    local: QualifierList,
    context: &str,
) -> Result<QualifierList, RepositoryError> {
    let Some(inherited) = inherited else {
        return Ok(local);
    };
    let mut merged = propagate(inherited);
    for (name, mut qualifier) in local.0 {
        if let Some(old) = merged.0.get(&name) {
            if !old.flavor.overridable && old.value != qualifier.value {
                return Err(RepositoryError::Invalid(format!(
                    "{context}: qualifier {name} is DisableOverride and cannot change its value"
                )));
            }
        }
        qualifier.propagated = false;
        merged.0.insert(name, qualifier);
    }
    Ok(merged)
}

/// True when `class` is `ancestor` or inherits from it, in `namespace`.
pub(super) fn is_a(namespace: &Namespace, class: &str, ancestor: &str) -> bool {
    let mut current = namespace.classes.get(&NameKey(class));
    // The chain is finite: a class can only name a superclass that existed before it.
    while let Some(c) = current {
        if c.name.matches(ancestor) {
            return true;
        }
        current = c.superclass.as_ref().and_then(|s| namespace.classes.get(s));
    }
    false
}

/// GetClass's reductions of a resolved class.
pub(super) fn filter_class(class: &Class, query: &ClassQuery) -> Class {
    let wanted = |name: &Name| {
        query
            .property_list
            .as_ref()
            .is_none_or(|list| list.iter().any(|p| name.matches(p)))
    };
    let mut out = Class {
        name: class.name.clone(),
        superclass: class.superclass.clone(),
        qualifiers: class.qualifiers.clone(),
        properties: class
            .properties
            .iter()
            .filter(|(name, p)| wanted(name) && !(query.local_only && p.propagated))
            .map(|(name, p)| (name.clone(), p.clone()))
            .collect(),
        methods: class
            .methods
            .iter()
            .filter(|(_, m)| !(query.local_only && m.propagated))
            .map(|(name, m)| (name.clone(), m.clone()))
            .collect(),
    };
    if query.local_only {
        out.qualifiers.0.retain(|_, q| !q.propagated);
    }
    if !query.include_qualifiers {
        out.qualifiers = QualifierList::new();
        for property in out.properties.values_mut() {
            property.qualifiers = QualifierList::new();
        }
        for method in out.methods.values_mut() {
            method.qualifiers = QualifierList::new();
            for parameter in &mut method.parameters {
                parameter.qualifiers = QualifierList::new();
            }
        }
    }
    if !query.include_class_origin {
        out.properties
            .values_mut()
            .for_each(|p| p.class_origin = None);
        out.methods.values_mut().for_each(|m| m.class_origin = None);
    }
    out
}
