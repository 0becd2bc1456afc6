//! Property tests of the CIM-XML codec: value -> XML -> value for every type, objects,
//! paths and messages; and that no input makes the decoder panic.

mod common;

use cim_schema::model::{CimType, EmbeddedKind, InstancePath, ObjectPath, Value};
use cim_schema::xml::{
    decode, decode_class, decode_data, decode_instance, decode_object_path, decode_value, encode,
    Body, Data, Encoder, ExportRequest, IMethodCall, IMethodResponse, IMethodReturn, IParamValue,
    Limits, Message, MethodCall, MethodResponse, MethodReturn, ParamValue, Request, Response,
    ReturnValue, Untyped,
};
use proptest::collection::vec;
use proptest::prelude::*;

use common::*;

fn encode_value(value: &Value) -> Vec<u8> {
    let mut encoder = Encoder::new();
    encoder.value(value, "test").unwrap();
    encoder.into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn values_of_every_type_round_trip((cim_type, value) in arb_typed_value()) {
        let xml = encode_value(&value);
        let back = decode_value(&xml, &cim_type, None, &Limits::DEFAULT)
            .map_err(|e| TestCaseError::fail(format!("{e} in {}", String::from_utf8_lossy(&xml))))?;
        prop_assert_eq!(back, value);
    }

    #[test]
    fn reals_keep_their_bits(bits in any::<u64>(), bits32 in any::<u32>()) {
        let value = f64::from_bits(bits);
        let back = decode_value(&encode_value(&Value::Real64(value)), &CimType::Real64, None, &Limits::DEFAULT).unwrap();
        let Value::Real64(back) = back else { panic!("not a real64") };
        prop_assert!(back.to_bits() == value.to_bits() || (value.is_nan() && back.is_nan()));
        let value = f32::from_bits(bits32);
        let back = decode_value(&encode_value(&Value::Real32(value)), &CimType::Real32, None, &Limits::DEFAULT).unwrap();
        let Value::Real32(back) = back else { panic!("not a real32") };
        prop_assert!(back.to_bits() == value.to_bits() || (value.is_nan() && back.is_nan()));
    }

    #[test]
    fn references_round_trip(path in arb_object_path(2)) {
        let value = Value::Reference(Box::new(path.clone()));
        let xml = encode_value(&value);
        prop_assert_eq!(decode_object_path(&xml, &Limits::DEFAULT).unwrap(), path);
        let array = Value::Array(vec![Some(value), None]);
        let back = decode_value(&encode_value(&array), &CimType::Reference(None), None, &Limits::DEFAULT).unwrap();
        prop_assert_eq!(back, array);
    }

    #[test]
    fn instances_round_trip(instance in arb_instance(2)) {
        let mut encoder = Encoder::new();
        encoder.instance(&instance).unwrap();
        let xml = encoder.into_bytes();
        let back = decode_instance(&xml, &Limits::DEFAULT)
            .map_err(|e| TestCaseError::fail(format!("{e} in {}", String::from_utf8_lossy(&xml))))?;
        prop_assert_eq!(back, instance);
    }

    #[test]
    fn embedded_instances_round_trip_as_values(instance in arb_instance(1)) {
        let value = Value::Instance(Box::new(instance));
        let back = decode_value(&encode_value(&value), &CimType::String, Some(EmbeddedKind::Instance), &Limits::DEFAULT).unwrap();
        prop_assert_eq!(back, value);
    }

    #[test]
    fn classes_round_trip(class in arb_class()) {
        let mut encoder = Encoder::new();
        encoder.class(&class).unwrap();
        let xml = encoder.into_bytes();
        let back = decode_class(&xml, &Limits::DEFAULT)
            .map_err(|e| TestCaseError::fail(format!("{e} in {}", String::from_utf8_lossy(&xml))))?;
        prop_assert_eq!(back, class);
    }

    #[test]
    fn instance_paths_round_trip_in_every_form(path in arb_instance_path(2)) {
        let mut encoder = Encoder::new();
        encoder.instance_name(&path).unwrap();
        let name_only = InstancePath { host: None, namespace: None, ..path.clone() };
        prop_assert_eq!(decode_data(encoder.as_bytes(), &Limits::DEFAULT).unwrap(), Data::InstanceName(name_only));
        if path.namespace.is_some() && path.host.is_some() {
            let mut encoder = Encoder::new();
            encoder.object_path(&ObjectPath::Instance(path.clone())).unwrap();
            prop_assert_eq!(decode_data(encoder.as_bytes(), &Limits::DEFAULT).unwrap(), Data::ObjectPath(ObjectPath::Instance(path)));
        }
    }

    #[test]
    fn request_messages_round_trip(
        id in "[0-9]{1,6}",
        namespace in arb_namespace(),
        instance in arb_instance(1),
        path in arb_instance_path(1),
        flags in vec(any::<bool>(), 0..3),
        typed in arb_typed_value(),
    ) {
        let mut params = vec![
            IParamValue::new("NewInstance", Data::Instance(instance)),
            IParamValue::new("InstanceName", Data::InstanceName(InstancePath { host: None, namespace: None, ..path.clone() })),
            IParamValue::new("PropertyList", Data::Untyped(Untyped::Array(vec![Some("Name".into()), None]))),
            IParamValue::new("Void", Data::Null),
        ];
        for (index, flag) in flags.iter().enumerate() {
            params.push(IParamValue::new(format!("Flag{index}"), Data::Untyped(Untyped::Scalar(if *flag { "TRUE" } else { "FALSE" }.into()))));
        }
        let call = Message::new(id.clone(), Body::Request(Request::IMethodCall(IMethodCall { name: "CreateInstance".into(), namespace: namespace.clone(), params })));
        prop_assert_eq!(decode(&encode(&call).unwrap(), &Limits::DEFAULT).unwrap(), call);

        let mut target = path;
        target.host = None;
        target.namespace = Some(namespace);
        let (cim_type, value) = typed;
        let mut param = ParamValue::typed("Arg", Some(value));
        param.param_type = Some(cim_type);
        let extrinsic = Message::new(id, Body::Request(Request::MethodCall(MethodCall {
            name: "RequestStateChange".into(),
            target: ObjectPath::Instance(target),
            params: vec![param, ParamValue::new("Untyped", Data::Untyped(Untyped::Scalar(" 7 ".into())))],
        })));
        prop_assert_eq!(decode(&encode(&extrinsic).unwrap(), &Limits::DEFAULT).unwrap(), extrinsic);
    }

    #[test]
    fn response_messages_round_trip(
        items in vec((arb_instance_path(1), arb_instance(1)), 0..4),
        void in any::<bool>(),
        code in 1u32..29,
        description in arb_string(),
    ) {
        let return_value = (!void).then(|| items.iter().map(|(p, i)| {
            Data::NamedInstance(InstancePath { host: None, namespace: None, ..p.clone() }, i.clone())
        }).collect());
        let params = vec![
            ParamValue::typed("EnumerationContext", Some(Value::from("ctx-1"))),
            ParamValue::typed("EndOfSequence", Some(Value::Boolean(void))),
        ];
        let ok = Message::new("1", Body::Response(Response::IMethod(IMethodResponse {
            name: "EnumerateInstances".into(),
            result: Ok(IMethodReturn { return_value, params }),
        })));
        prop_assert_eq!(decode(&encode(&ok).unwrap(), &Limits::DEFAULT).unwrap(), ok);
        let error = cim_schema::xml::CimError {
            code,
            description: Some(description),
            instances: items.into_iter().map(|(_, i)| i).collect(),
        };
        let failed = Message::new("2", Body::Response(Response::Method(MethodResponse {
            name: "m".into(),
            result: Err(error),
        })));
        prop_assert_eq!(decode(&encode(&failed).unwrap(), &Limits::DEFAULT).unwrap(), failed);
        let method = Message::new("3", Body::Response(Response::Method(MethodResponse {
            name: "m".into(),
            result: Ok(MethodReturn { return_value: Some(ReturnValue::typed(Some(Value::Uint32(code)))), params: vec![] }),
        })));
        prop_assert_eq!(decode(&encode(&method).unwrap(), &Limits::DEFAULT).unwrap(), method);
    }

    #[test]
    fn export_requests_round_trip(indication in arb_instance(2)) {
        let message = Message::new("7", Body::ExportRequest(ExportRequest::indication(indication)));
        prop_assert_eq!(decode(&encode(&message).unwrap(), &Limits::DEFAULT).unwrap(), message);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes, &Limits::DEFAULT);
        let _ = decode_instance(&bytes, &Limits::DEFAULT);
        let _ = decode_data(&bytes, &Limits::DEFAULT);
    }

    #[test]
    fn damaged_messages_never_panic(
        instance in arb_instance(1),
        edits in vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let message = Message::new("1", Body::ExportRequest(ExportRequest::indication(instance)));
        let mut bytes = encode(&message).unwrap();
        for (index, byte, kind) in edits {
            if bytes.is_empty() { break; }
            let at = index.index(bytes.len());
            match kind {
                0 => bytes[at] = byte,
                1 => { bytes.remove(at); }
                _ => bytes.insert(at, byte),
            }
        }
        let _ = decode(&bytes, &Limits::DEFAULT);
    }
}
