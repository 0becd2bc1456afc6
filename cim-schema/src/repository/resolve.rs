//! Inheritance resolution (DSP0004 5.1.2, 5.6.1.3) and the GetClass reductions.
//!
//! A class arrives as declared: its own properties and methods, qualifier values typed and
//! flavors set from the declarations. Resolving it copies in what the superclass (already
//! resolved) passes down:
//!
//! - every property and method, marked propagated, keeping its class origin, with only the
//!   qualifiers whose flavor is ToSubclass (Restricted ones stay behind);
//! - the superclass's ToSubclass class qualifiers;
//! - for a property or method the subclass redeclares (an override, with or without the
//!   `Override` qualifier, as the DMTF schema writes them), the subclass's declaration in the
//!   inherited position, with the inherited ToSubclass qualifiers it does not restate. A
//!   DisableOverride qualifier it restates must keep its value.

use indexmap::IndexMap;

use super::{ClassQuery, Namespace, RepositoryError};
use crate::model::{
    CimType, Class, Method, Name, NameKey, Parameter, Property, Qualifier, QualifierList,
};

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
    let context = format!("class {}", class.name);
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
        // DSP0004: the subclasses of an association are associations (the Association
        // qualifier propagates and cannot be overridden), and an association does not derive
        // from a class that is not one.
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
    // DSP0004: "if the superclass has key properties (including those inherited from other
    // classes), the new subclass cannot define any additional key properties".
    let superclass_has_keys = superclass.is_some_and(|s| s.keys().next().is_some());
    for (_, property) in class.properties {
        add_property(namespace, &mut resolved, property, superclass_has_keys)?;
    }
    for (_, method) in class.methods {
        add_method(namespace, &mut resolved, method)?;
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
    // Reference properties are not limited to associations: DSP0004 3.0 allows them in
    // ordinary classes, and so do the MOF compilers clients use (pywbem's among them).
    if let CimType::Reference(Some(target)) = &property.cim_type {
        // A class may reference itself; any other target must already exist, as a superclass
        // must (the DMTF schema's include order satisfies both).
        if *target != class.name && !namespace.classes.contains_key(target) {
            return Err(RepositoryError::InvalidReference {
                element: context,
                target: target.to_string(),
            });
        }
    }
    property.propagated = false;
    match class.properties.get(&property.name) {
        Some(inherited) => {
            check_override_type(namespace, inherited, &property, &context)?;
            if property.is_key() && !inherited.is_key() && superclass_has_keys {
                return Err(RepositoryError::Invalid(format!(
                    "{context} makes an inherited property a key, but the superclass already \
                     has keys"
                )));
            }
            // The class origin stays the class that first declared the property.
            property.class_origin = inherited.class_origin.clone();
            property.qualifiers =
                merge_qualifiers(Some(&inherited.qualifiers), property.qualifiers, &context)?;
        }
        None if property.is_key() && superclass_has_keys => {
            return Err(RepositoryError::Invalid(format!(
                "{context} adds a key, but the superclass already has keys"
            )));
        }
        None => {
            property.class_origin = Some(class.name.clone());
            property.qualifiers = declared(property.qualifiers);
        }
    }
    class.properties.insert(property.name.clone(), property);
    Ok(())
}

/// Adds one declared method to the class being resolved, as a new method or an override.
fn add_method(
    namespace: &Namespace,
    class: &mut Class,
    mut method: Method,
) -> Result<(), RepositoryError> {
    let context = format!("method {}.{}", class.name, method.name);
    method.propagated = false;
    let Some(inherited) = class.methods.get(&method.name) else {
        method.class_origin = Some(class.name.clone());
        method.qualifiers = declared(method.qualifiers);
        for parameter in &mut method.parameters {
            parameter.qualifiers = declared(std::mem::take(&mut parameter.qualifiers));
        }
        class.methods.insert(method.name.clone(), method);
        return Ok(());
    };
    if !type_overrides(namespace, &inherited.return_type, &method.return_type) {
        return Err(RepositoryError::Invalid(format!(
            "{context} overrides a method returning {} with one returning {}",
            inherited.return_type, method.return_type
        )));
    }
    method.class_origin = inherited.class_origin.clone();
    method.qualifiers = merge_qualifiers(Some(&inherited.qualifiers), method.qualifiers, &context)?;
    for parameter in &mut method.parameters {
        let old = inherited
            .parameter(parameter.name.as_str())
            .map(|old| &old.qualifiers);
        let context = format!("{context} parameter {}", parameter.name);
        let local = std::mem::take(&mut parameter.qualifiers);
        parameter.qualifiers = merge_qualifiers(old, local, &context)?;
    }
    class.methods.insert(method.name.clone(), method);
    Ok(())
}

/// True when an element of type `new` may override one of type `old`: the same type, or for a
/// reference the same class or a subclass of it (DMTF associations narrow their references).
fn type_overrides(namespace: &Namespace, old: &CimType, new: &CimType) -> bool {
    match (old, new) {
        (CimType::Reference(Some(old)), CimType::Reference(Some(new))) => {
            new == old || is_a(namespace, new.as_str(), old.as_str())
        }
        (CimType::Reference(_), CimType::Reference(_)) => true,
        (old, new) => old == new,
    }
}

/// An overriding property keeps its type: the same type and array-ness, and for a reference
/// the same class or a subclass of it.
fn check_override_type(
    namespace: &Namespace,
    inherited: &Property,
    property: &Property,
    context: &str,
) -> Result<(), RepositoryError> {
    let compatible = type_overrides(namespace, &inherited.cim_type, &property.cim_type);
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

/// A superclass method as a subclass inherits it, its parameters' qualifiers propagated too.
fn inherit_method(method: &Method) -> Method {
    Method {
        name: method.name.clone(),
        return_type: method.return_type.clone(),
        parameters: method
            .parameters
            .iter()
            .map(|parameter| Parameter {
                qualifiers: propagate(&parameter.qualifiers),
                ..parameter.clone()
            })
            .collect(),
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

/// Qualifiers as the class itself states them: none propagated, whatever the caller said (a
/// class sent back by a client may carry the flags of its resolved form).
fn declared(mut qualifiers: QualifierList) -> QualifierList {
    for qualifier in qualifiers.0.values_mut() {
        qualifier.propagated = false;
    }
    qualifiers
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
        return Ok(declared(local));
    };
    let mut merged = propagate(inherited);
    for (name, mut qualifier) in local.0 {
        if let Some(old) = merged.0.get(&name) {
            if !old.flavor.overridable && old.value != qualifier.value {
                return Err(RepositoryError::OverrideDisabled {
                    element: context.to_owned(),
                    qualifier: name.to_string(),
                });
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
///
/// LocalOnly keeps the properties and methods the class declares or overrides and the class
/// qualifiers it states itself; the elements kept keep all their qualifiers, inherited ones
/// included, as DSP0200 asks only for the elements to be filtered.
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
        strip_qualifiers(&mut out);
    }
    if !query.include_class_origin {
        out.properties
            .values_mut()
            .for_each(|p| p.class_origin = None);
        out.methods.values_mut().for_each(|m| m.class_origin = None);
    }
    out
}

/// Removes the qualifiers of a class and of all its elements.
fn strip_qualifiers(class: &mut Class) {
    class.qualifiers = QualifierList::new();
    for property in class.properties.values_mut() {
        property.qualifiers = QualifierList::new();
    }
    for method in class.methods.values_mut() {
        method.qualifiers = QualifierList::new();
        for parameter in &mut method.parameters {
            parameter.qualifiers = QualifierList::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Flavor, Value};

    fn flavored(name: &str, value: bool, to_subclass: bool, overridable: bool) -> Qualifier {
        let mut q = Qualifier::new(name, CimType::Boolean, Some(Value::Boolean(value)));
        q.flavor = Flavor {
            to_subclass,
            overridable,
            ..Flavor::default()
        };
        q
    }

    fn list(qualifiers: Vec<Qualifier>) -> QualifierList {
        let mut out = QualifierList::new();
        qualifiers.into_iter().for_each(|q| out.insert(q));
        out
    }

    #[test]
    fn only_to_subclass_qualifiers_propagate() {
        let inherited = list(vec![
            flavored("Kept", true, true, true),
            flavored("Dropped", true, false, true),
        ]);
        let propagated = propagate(&inherited);
        assert_eq!(propagated.len(), 1);
        assert!(propagated.get("kept").unwrap().propagated);
    }

    #[test]
    fn local_qualifiers_replace_inherited_ones_unless_disable_override() {
        let inherited = list(vec![
            flavored("Free", true, true, true),
            flavored("Fixed", true, true, false),
        ]);
        let merged = merge_qualifiers(
            Some(&inherited),
            list(vec![
                flavored("Free", false, true, true),
                flavored("Fixed", true, true, false),
            ]),
            "class X",
        )
        .unwrap();
        let free = merged.get("Free").unwrap();
        assert_eq!(free.value, Some(Value::Boolean(false)));
        assert!(!free.propagated);
        assert!(!merged.get("Fixed").unwrap().propagated);

        let error = merge_qualifiers(
            Some(&inherited),
            list(vec![flavored("fixed", false, true, false)]),
            "class X",
        )
        .unwrap_err();
        assert!(matches!(error, RepositoryError::OverrideDisabled { .. }));
        // A Restricted DisableOverride qualifier does not reach the subclass, which may set it.
        let restricted = list(vec![flavored("Fixed", true, false, false)]);
        let merged = merge_qualifiers(
            Some(&restricted),
            list(vec![flavored("Fixed", false, false, false)]),
            "c",
        )
        .unwrap();
        assert_eq!(
            merged.get("Fixed").unwrap().value,
            Some(Value::Boolean(false))
        );
    }

    #[test]
    fn reference_overrides_may_only_narrow() {
        let mut namespace = Namespace::default();
        for (name, superclass) in [("A", None), ("B", Some("A")), ("C", None)] {
            let class = Class::new(name, superclass.map(Name::new));
            namespace.classes.insert(class.name.clone(), class);
        }
        let reference = |class: &str| CimType::Reference(Some(Name::new(class)));
        assert!(type_overrides(&namespace, &reference("A"), &reference("B")));
        assert!(type_overrides(&namespace, &reference("A"), &reference("a")));
        assert!(!type_overrides(
            &namespace,
            &reference("B"),
            &reference("A")
        ));
        assert!(!type_overrides(
            &namespace,
            &reference("A"),
            &reference("C")
        ));
        assert!(!type_overrides(
            &namespace,
            &CimType::Uint8,
            &CimType::Uint16
        ));
    }
}
