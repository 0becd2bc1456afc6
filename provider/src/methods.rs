//! Extrinsic methods (InvokeMethod): the target checked against the `CIMObject` header, the
//! parameters typed against the method's declaration, the provider of the target's class
//! called, and its output typed back for the response.

use cim_schema::model::{ObjectPath, Value};
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
            (ObjectPath::Instance(a), ObjectPath::Instance(b)) => same_keys(a, b),
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

fn run(
    manager: &ObjectManager,
    principal: &crate::auth::Principal,
    call: &MethodCall,
) -> Result<MethodReturn, OperationError> {
    let namespace = manager.namespace(call.target.namespace().unwrap_or_default())?;
    let class = manager.class(&namespace, call.target.class_name().as_str())?;
    let method = class.method(call.name.as_str()).ok_or_else(|| {
        OperationError::MethodNotFound(format!("class {} has no method {}", class.name, call.name))
    })?;
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
    let output = provider.invoke(&context, &target, method, params)?;
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

/// A parameter's value typed as declared.
fn typed_value(
    data: &Data,
    cim_type: &cim_schema::model::CimType,
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
    Ok(Some(value))
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
