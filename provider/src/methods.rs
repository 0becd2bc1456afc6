//! Extrinsic methods (InvokeMethod): the target checked against the `CIMObject` header, the
//! parameters typed against the method's declaration, the provider of the target's class
//! called, and its output typed back for the response.

use std::sync::Arc;

use cim_schema::model::{CimType, Class, Method, ObjectPath, Value};
use cim_schema::xml::{Data, MethodCall, MethodResponse, MethodReturn, ParamValue, ReturnValue};

use crate::cimom::{typed_path, ObjectManager};
use crate::error::OperationError;
use crate::provider::{same_keys, RequestContext};

/// True when the `CIMObject` header (`root/cimv2:Class.Key="v"`, URI-unescaped) names the
/// same target as the body's `LOCALCLASSPATH` or `LOCALINSTANCEPATH`.
pub fn object_header_matches(header: &str, target: &ObjectPath) -> bool {
    let text = format!("/{}", header.trim_start_matches('/'));
    let Ok(parsed) = text.parse::<ObjectPath>() else {
        return false;
    };
    let same_namespace = match (parsed.namespace(), target.namespace()) {
        (Some(a), Some(b)) => a
            .trim_matches('/')
            .eq_ignore_ascii_case(b.trim_matches('/')),
        _ => false,
    };
    same_namespace
        && match (&parsed, target) {
            (ObjectPath::Class(a), ObjectPath::Class(b)) => a.class_name == b.class_name,
            (ObjectPath::Instance(a), ObjectPath::Instance(b)) => {
                same_keys(a, b) || same_unnamed_key(a, b)
            }
            _ => false,
        }
}

/// True when `body` holds the one unnamed key a DSP0201 `INSTANCENAME` may have (a lone
/// `KEYVALUE`) and `header` names one key with that value: the class's only key, named in
/// the header as a WBEM URI must.
fn same_unnamed_key(
    header: &cim_schema::model::InstancePath,
    body: &cim_schema::model::InstancePath,
) -> bool {
    match (&header.keybindings[..], &body.keybindings[..]) {
        ([named], [unnamed]) => {
            header.class_name == body.class_name
                && unnamed.name.as_str().is_empty()
                && cim_schema::model::key_values_match(&named.value, &unnamed.value)
        }
        _ => false,
    }
}

/// Runs an extrinsic method call and builds its response.
pub fn invoke(
    manager: &ObjectManager,
    principal: &crate::auth::Principal,
    call: &MethodCall,
) -> MethodResponse {
    MethodResponse {
        name: call.name.clone(),
        result: run(manager, principal, call).map_err(|error| error.to_cim_error()),
    }
}

/// The namespace, class and method a call names. DSP0200 lists no CIM_ERR_INVALID_CLASS
/// for InvokeMethod: a target of a class that does not exist is not found; a method the
/// class lacks is CIM_ERR_METHOD_NOT_FOUND.
pub(crate) fn target_method<'m>(
    manager: &'m ObjectManager,
    call: &MethodCall,
) -> Result<(Arc<str>, &'m Class, &'m Method), OperationError> {
    let namespace = manager.namespace(call.target.namespace().unwrap_or_default())?;
    let class = manager
        .class(&namespace, call.target.class_name().as_str())
        .map_err(|error| match error {
            OperationError::InvalidClass(class) => {
                OperationError::NotFound(format!("no class {class} to invoke a method of"))
            }
            other => other,
        })?;
    let method = class.method(call.name.as_str()).ok_or_else(|| {
        OperationError::MethodNotFound(format!("class {} has no method {}", class.name, call.name))
    })?;
    Ok((namespace, class, method))
}

fn run(
    manager: &ObjectManager,
    principal: &crate::auth::Principal,
    call: &MethodCall,
) -> Result<MethodReturn, OperationError> {
    let (namespace, class, method) = target_method(manager, call)?;
    let target = match &call.target {
        ObjectPath::Instance(path) => ObjectPath::Instance(typed_path(class, path)?),
        ObjectPath::Class(path) => {
            if !method.qualifiers.is_true("Static") {
                return Err(OperationError::parameter(format!(
                    "method {} is not static: invoke it on an instance",
                    method.name
                )));
            }
            ObjectPath::Class(path.clone())
        }
    };
    let mut params = Vec::new();
    for given in &call.params {
        let declared = method.parameter(given.name.as_str()).ok_or_else(|| {
            OperationError::parameter(format!(
                "method {} has no parameter {}",
                method.name, given.name
            ))
        })?;
        if declared
            .qualifiers
            .get("In")
            .is_some_and(|q| q.value == Some(Value::Boolean(false)))
        {
            return Err(OperationError::parameter(format!(
                "parameter {} is not an input",
                given.name
            )));
        }
        if params.iter().any(|(name, _)| *name == declared.name) {
            return Err(OperationError::parameter(format!(
                "parameter {} is given twice",
                given.name
            )));
        }
        let value =
            typed_value(&given.value, &declared.cim_type, declared.is_array).map_err(|reason| {
                OperationError::parameter(format!("parameter {}: {reason}", given.name))
            })?;
        params.push((declared.name.clone(), value));
    }
    let context = RequestContext::new(principal, namespace.clone());
    let provider = manager
        .provider(&namespace, class.name.as_str())
        .ok_or_else(|| {
            OperationError::NotSupported(format!("class {} has no method provider", class.name))
        })?;
    let output = provider
        .invoke(&context, &target, method, params)
        .map_err(|error| match (error, &target) {
            // A method the provider does not implement, on an instance that does not exist:
            // the instance's absence is the answer a client can act on (DSP0200 lists
            // CIM_ERR_NOT_FOUND for a target that does not exist). Asked only then, so that
            // a method that runs pays no second lookup.
            (OperationError::NotSupported(text), ObjectPath::Instance(path)) => {
                match provider.get(&context, path) {
                    Err(not_found @ OperationError::NotFound(_)) => not_found,
                    _ => OperationError::NotSupported(text),
                }
            }
            (error, _) => error,
        })?;
    let mut out_params = Vec::new();
    for (name, value) in output.out_params {
        // A NULL output parameter is left out (the response's PARAMVALUEs are any number):
        // to pywbem an absent one reads as None all the same, and pywbemcli 1.x stops with
        // a TypeError printing a NULL string parameter.
        let Some(value) = value else {
            continue;
        };
        let declared = method.parameter(name.as_str());
        out_params.push(ParamValue {
            name,
            param_type: declared.map(|d| d.cim_type.clone()),
            embedded_object: declared.and_then(|d| d.embedded_object),
            value: Data::Value(value),
        });
    }
    Ok(MethodReturn {
        return_value: Some(ReturnValue {
            param_type: Some(method.return_type.clone()),
            embedded_object: None,
            value: output.return_value.map_or(Data::Null, Data::Value),
        }),
        params: out_params,
    })
}

/// A parameter's value typed as declared. An untyped `VALUE` (a `PARAMVALUE` without
/// `PARAMTYPE`, as sblim wbemcli sends) is parsed as the declared type; a typed one (with
/// `PARAMTYPE`, a reference, an embedded object) must already be of that type: DSP0200 makes
/// a value of another type CIM_ERR_INVALID_PARAMETER, and a provider that took a string for a
/// uint16 would read a wrong-typed parameter as absent or as another value.
pub(crate) fn typed_value(
    data: &Data,
    cim_type: &CimType,
    is_array: bool,
) -> Result<Option<Value>, String> {
    let value = match data {
        Data::Null => return Ok(None),
        Data::Untyped(text) => text.to_value(cim_type)?,
        Data::Value(value) => value.clone(),
        Data::InstanceName(path) => Value::Reference(Box::new(ObjectPath::Instance(path.clone()))),
        Data::InstancePath(path) => Value::Reference(Box::new(ObjectPath::Instance(path.clone()))),
        Data::ObjectPath(path) => Value::Reference(Box::new(path.clone())),
        Data::Instance(instance) => Value::Instance(Box::new(instance.clone())),
        _ => return Err("this kind of value is not accepted here".into()),
    };
    if value.is_array() != is_array {
        return Err(if is_array {
            "expected an array".into()
        } else {
            "expected a scalar".into()
        });
    }
    let misfit = match &value {
        Value::Array(items) => items.iter().flatten().find(|item| !fits(cim_type, item)),
        scalar => Some(scalar).filter(|scalar| !fits(cim_type, scalar)),
    };
    if let Some(misfit) = misfit {
        return Err(format!(
            "expected a {} value, given a {} value",
            cim_type.as_str(),
            misfit.cim_type().map_or("untyped", |given| given.as_str())
        ));
    }
    Ok(Some(value))
}

/// True when a scalar is of the declared type: a reference of any class fits a reference (the
/// provider checks the class it needs), an embedded object fits a string.
fn fits(declared: &CimType, value: &Value) -> bool {
    match (declared, value) {
        (CimType::Reference(_), Value::Reference(_)) => true,
        (CimType::String, Value::Instance(_) | Value::Class(_)) => true,
        (declared, value) => value.cim_type().as_ref() == Some(declared),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cim_schema::model::{ClassPath, InstancePath};

    fn instance(keys: &[(&str, Value)]) -> ObjectPath {
        let mut path = InstancePath::new("HP_SGPackage").in_namespace("root/cimv2");
        for (name, value) in keys {
            path = path.with_key(*name, value.clone());
        }
        ObjectPath::Instance(path)
    }

    #[test]
    fn a_typed_parameter_must_be_of_the_declared_type_and_an_untyped_one_parse_as_it() {
        use cim_schema::xml::Untyped;
        let untyped = |text: &str| Data::Untyped(Untyped::Scalar(text.into()));
        let uint16 = CimType::Uint16;
        // Typed (PARAMTYPE): only the declared type.
        assert_eq!(
            typed_value(&Data::Value(Value::Uint16(2)), &uint16, false),
            Ok(Some(Value::Uint16(2)))
        );
        assert_eq!(
            typed_value(&Data::Value(Value::String("2".into())), &uint16, false),
            Err("expected a uint16 value, given a string value".into())
        );
        assert_eq!(
            typed_value(&Data::Value(Value::Uint32(2)), &uint16, false),
            Err("expected a uint16 value, given a uint32 value".into())
        );
        assert_eq!(
            typed_value(
                &Data::Value(Value::String("abc".into())),
                &CimType::Datetime,
                false
            ),
            Err("expected a datetime value, given a string value".into())
        );
        // An array's elements are checked, NULL ones aside.
        let texts = Value::Array(vec![Some(Value::String("n1".into())), None]);
        assert_eq!(
            typed_value(&Data::Value(texts.clone()), &CimType::String, true),
            Ok(Some(texts))
        );
        let mixed = Value::Array(vec![
            Some(Value::String("n1".into())),
            Some(Value::Uint32(2)),
        ]);
        assert!(typed_value(&Data::Value(mixed), &CimType::String, true).is_err());
        // Untyped (no PARAMTYPE): parsed as the declared type when the text is of it.
        assert_eq!(
            typed_value(&untyped("3"), &uint16, false),
            Ok(Some(Value::Uint16(3)))
        );
        assert!(typed_value(&untyped("two"), &uint16, false).is_err());
        assert!(typed_value(&untyped("70000"), &uint16, false).is_err());
        assert!(typed_value(&untyped("abc"), &CimType::Datetime, false).is_err());
        assert_eq!(
            typed_value(&untyped("TRUE"), &CimType::Boolean, false),
            Ok(Some(Value::Boolean(true)))
        );
        // An embedded instance is a string; a reference fits a reference of any class.
        let embedded = Data::Instance(cim_schema::model::Instance::new("CIM_Job"));
        assert!(typed_value(&embedded, &CimType::String, false).is_ok());
        assert!(typed_value(&embedded, &uint16, false).is_err());
        let reference = Data::InstanceName(InstancePath::new("HP_SGPackageJob"));
        assert!(typed_value(
            &reference,
            &CimType::Reference(Some("CIM_ConcreteJob".into())),
            false
        )
        .is_ok());
        assert!(typed_value(&reference, &CimType::String, false).is_err());
        assert_eq!(typed_value(&Data::Null, &uint16, false), Ok(None));
    }

    #[test]
    fn a_lone_unnamed_key_in_the_body_matches_the_header_that_names_it() {
        let mut unnamed = InstancePath::new("HP_SGPackage").in_namespace("root/cimv2");
        unnamed.keybindings.push(cim_schema::model::KeyBinding {
            name: cim_schema::model::Name::new(""),
            value: Value::String("pkg1".into()),
        });
        let target = ObjectPath::Instance(unnamed);
        assert!(object_header_matches(
            r#"root/cimv2:HP_SGPackage.Name="pkg1""#,
            &target
        ));
        assert!(!object_header_matches(
            r#"root/cimv2:HP_SGPackage.Name="pkg2""#,
            &target
        ));
        assert!(!object_header_matches(
            r#"root/cimv2:HP_SGPackage.Name="pkg1",Other="x""#,
            &target
        ));
    }

    #[test]
    fn the_cimobject_header_must_name_the_body_target() {
        let package = instance(&[("Name", Value::String("pkg1".into()))]);
        assert!(object_header_matches(
            r#"root/cimv2:HP_SGPackage.Name="pkg1""#,
            &package
        ));
        assert!(object_header_matches(
            r#"root/cimv2:hp_sgpackage.name="pkg1""#,
            &package
        ));
        assert!(!object_header_matches(
            r#"root/cimv2:HP_SGPackage.Name="pkg2""#,
            &package
        ));
        assert!(!object_header_matches(
            r#"root/interop:HP_SGPackage.Name="pkg1""#,
            &package
        ));
        assert!(!object_header_matches("root/cimv2:HP_SGPackage", &package));
        assert!(!object_header_matches("not a path", &package));
        // An untyped number in the header matches the key however wide the body's type is.
        let numbered = instance(&[("Id", Value::Uint16(5))]);
        assert!(object_header_matches(
            "root/cimv2:HP_SGPackage.Id=5",
            &numbered
        ));
        let mut class = ClassPath::new("HP_SGPackage");
        class.namespace = Some("root/cimv2".into());
        assert!(object_header_matches(
            "root/cimv2:HP_SGPackage",
            &ObjectPath::Class(class)
        ));
    }
}
