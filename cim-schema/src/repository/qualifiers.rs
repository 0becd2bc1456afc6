//! Checking a class's qualifiers against the namespace's qualifier declarations (DSP0004 5.6).
//!
//! The MOF compiler types and scopes qualifiers as it reads them; a class that arrives another
//! way (CreateClass over CIM-XML) is checked here before [`Repository::add_class`].
//!
//! Whatever the source, [`Repository::add_class`] applies the declarations' flavors to the
//! qualifiers of a class ([`apply_declared_flavors`]): a CIM-XML `QUALIFIER` without flavor
//! attributes has the DSP0201 defaults (EnableOverride, ToSubclass), which would otherwise make
//! a Restricted `Abstract` propagate and a DisableOverride `Key` overridable.

use super::{Namespace, Repository, RepositoryError};
use crate::model::{Class, Flavor, QualifierList, Value};
// The scope check names element kinds as the model does.
use crate::model::QualifierTarget as Target;

impl Repository {
    /// Checks every qualifier of a class as declared (class, properties, methods, parameters)
    /// against the namespace's declarations: declared, of the declared type and array-ness,
    /// with a value of that type, and allowed by the declaration's scope on that element. A class
    /// is an association or an indication by its own qualifiers or by its superclass, as the
    /// MOF compiler decides ([`Target::of_class`]).
    pub fn check_qualifiers(&self, namespace: &str, class: &Class) -> Result<(), RepositoryError> {
        let ns = self.namespace_ref(namespace)?;
        let superclass = class.superclass.as_ref().and_then(|s| ns.classes.get(s));
        let class_target =
            Target::of_class(class.is_association(), class.is_indication(), superclass);
        check_list(ns, &class.qualifiers, class_target, &|| {
            format!("class {}", class.name)
        })?;
        for property in class.properties.values() {
            let target = if property.cim_type.is_reference() {
                Target::Reference
            } else {
                Target::Property
            };
            check_list(ns, &property.qualifiers, target, &|| {
                format!("property {}.{}", class.name, property.name)
            })?;
        }
        for method in class.methods.values() {
            let element = || format!("method {}.{}", class.name, method.name);
            check_list(ns, &method.qualifiers, Target::Method, &element)?;
            for parameter in &method.parameters {
                check_list(ns, &parameter.qualifiers, Target::Parameter, &|| {
                    format!("{} parameter {}", element(), parameter.name)
                })?;
            }
        }
        Ok(())
    }
}

/// Checks the qualifiers of one element; `element` names it in errors (formatted only then).
fn check_list(
    ns: &Namespace,
    list: &QualifierList,
    target: Target,
    element: &dyn Fn() -> String,
) -> Result<(), RepositoryError> {
    for qualifier in list.iter() {
        let declaration = ns
            .qualifiers
            .get(&qualifier.name)
            .ok_or_else(|| RepositoryError::InvalidQualifier(qualifier.name.to_string()))?;
        let is_declared_type =
            |value: &Value| value.cim_type().as_ref() == Some(&declaration.cim_type);
        let value_fits = qualifier.value.as_ref().is_none_or(|value| match value {
            Value::Array(items) => {
                declaration.is_array && items.iter().flatten().all(is_declared_type)
            }
            scalar => !declaration.is_array && is_declared_type(scalar),
        });
        if qualifier.cim_type != declaration.cim_type
            || qualifier.is_array != declaration.is_array
            || !value_fits
        {
            return Err(RepositoryError::Invalid(format!(
                "{}: qualifier {} is declared {}{}",
                element(),
                declaration.name,
                declaration.cim_type,
                if declaration.is_array { "[]" } else { "" }
            )));
        }
        if !target.allowed_by(&declaration.scope) {
            return Err(RepositoryError::Invalid(format!(
                "{}: qualifier {} is not allowed on {}",
                element(),
                declaration.name,
                target.describe()
            )));
        }
    }
    Ok(())
}

/// Applies the flavors of the namespace's qualifier declarations to every qualifier of a class
/// (class, properties, methods, parameters); a qualifier with no declaration is left as it is.
///
/// A declaration's DisableOverride and Restricted hold for every use of the qualifier, and so do
/// its Translatable and ToInstance: a use keeps only the flavors its declaration allows. The MOF
/// compiler starts each use from its declaration's flavors, so its classes are unchanged here;
/// a class decoded from CIM-XML, whose absent flavor attributes are the DTD's defaults, ends up
/// with the same flavors as the same class compiled from MOF.
pub(super) fn apply_declared_flavors(ns: &Namespace, class: &mut Class) {
    let apply = |list: &mut QualifierList| {
        for qualifier in list.0.values_mut() {
            if let Some(declaration) = ns.qualifiers.get(&qualifier.name) {
                qualifier.flavor = restrict(qualifier.flavor, declaration.flavor);
            }
        }
    };
    apply(&mut class.qualifiers);
    for property in class.properties.values_mut() {
        apply(&mut property.qualifiers);
    }
    for method in class.methods.values_mut() {
        apply(&mut method.qualifiers);
        for parameter in &mut method.parameters {
            apply(&mut parameter.qualifiers);
        }
    }
}

/// The flavors of a use as its declaration allows them.
fn restrict(used: Flavor, declared: Flavor) -> Flavor {
    Flavor {
        overridable: used.overridable && declared.overridable,
        to_subclass: used.to_subclass && declared.to_subclass,
        translatable: used.translatable || declared.translatable,
        to_instance: used.to_instance || declared.to_instance,
    }
}
