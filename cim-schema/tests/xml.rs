//! Integration tests of the CIM-XML codec: golden files for every element kind (encode
//! exactly to the file, decode the file back to the object), decode-only golden inputs in the
//! styles of other implementations, error classification, limits and the streaming writer.
//!
//! `UPDATE_GOLDEN=1 cargo test -p cim-schema --test xml` rewrites the golden files; review the
//! diff before committing.

mod common;

use std::path::PathBuf;

use cim_schema::model::{
    Char16, CimType, Class, ClassPath, Datetime, EmbeddedKind, Flavor, Instance, InstancePath,
    Method, Name, ObjectPath, Parameter, Property, Qualifier, QualifierDeclaration, Scope, Value,
};
use cim_schema::xml::{
    begin_imethod_response, decode, decode_class, decode_data, decode_embedded, decode_instance,
    decode_instance_path, decode_object_path, decode_value, encode, encode_spelled, Body, CimError,
    Data, DecodeError, EncodeError, Encoder, ExportRequest, ExportResponse, IMethodCall,
    IMethodResponse, IMethodReturn, IParamValue, Limit, Limits, Message, MethodCall,
    MethodResponse, MethodReturn, NamespaceSpelling, Object, ParamValue, Request, Response,
    ReturnValue, Untyped,
};

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/xml"))
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some()
}

/// Compares `actual` with the golden file, or rewrites it under UPDATE_GOLDEN.
fn check_golden(file: &str, actual: &[u8]) {
    let path = data_dir().join(file);
    if updating() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        String::from_utf8_lossy(actual),
        String::from_utf8_lossy(&expected),
        "{file} differs"
    );
}

fn datetime(text: &str) -> Datetime {
    Datetime::parse(text).unwrap()
}

fn path_cs() -> InstancePath {
    InstancePath::new("HP_SGNode")
        .with_key("CreationClassName", "HP_SGNode")
        .with_key("Name", "hpnode1")
}

fn full_path() -> InstancePath {
    let mut path = common::sg_package(1).0.in_namespace("root/cimv2");
    path.host = Some("node1.example.com:5989".into());
    path
}

fn small_instance() -> Instance {
    Instance::new("HP_SGNode")
        .with(Property::new(
            "Name",
            CimType::String,
            Some(Value::from("hpnode1")),
        ))
        .with(Property::new(
            "NodeId",
            CimType::Uint32,
            Some(Value::Uint32(1)),
        ))
}

fn rich_instance() -> Instance {
    let mut qualified = Property::new("Note", CimType::String, Some(Value::from("a < b & c")));
    qualified.qualifiers.insert(Qualifier::new(
        "Description",
        CimType::String,
        Some(Value::from("translatable")),
    ));
    qualified.class_origin = Some(Name::new("CIM_ManagedElement"));
    qualified.propagated = true;
    let mut null_array = Property::new("Empty", CimType::Sint16, None);
    null_array.is_array = true;
    let mut embedded = Property::new(
        "SourceInstance",
        CimType::String,
        Some(Value::Instance(Box::new(small_instance()))),
    );
    embedded.embedded_object = Some(EmbeddedKind::Instance);
    let mut embedded_class = Property::new(
        "Definition",
        CimType::String,
        Some(Value::Class(Box::new(Class::new("CIM_Thing", None)))),
    );
    embedded_class.embedded_object = Some(EmbeddedKind::Object);
    Instance::new("CIM_InstModification")
        .with(Property::new(
            "Flag",
            CimType::Boolean,
            Some(Value::Boolean(false)),
        ))
        .with(Property::new("U8", CimType::Uint8, Some(Value::Uint8(255))))
        .with(Property::new(
            "S8",
            CimType::Sint8,
            Some(Value::Sint8(-128)),
        ))
        .with(Property::new(
            "U64",
            CimType::Uint64,
            Some(Value::Uint64(u64::MAX)),
        ))
        .with(Property::new(
            "S64",
            CimType::Sint64,
            Some(Value::Sint64(i64::MIN)),
        ))
        .with(Property::new(
            "R32",
            CimType::Real32,
            Some(Value::Real32(0.1)),
        ))
        .with(Property::new(
            "R64",
            CimType::Real64,
            Some(Value::Real64(-1.5e-300)),
        ))
        .with(Property::new(
            "Inf",
            CimType::Real64,
            Some(Value::Real64(f64::NEG_INFINITY)),
        ))
        .with(Property::new(
            "C",
            CimType::Char16,
            Some(Value::Char16(Char16::from('<'))),
        ))
        .with(Property::new(
            "When",
            CimType::Datetime,
            Some(Value::Datetime(datetime("20261122******.******+060"))),
        ))
        .with(Property::new(
            "Interval",
            CimType::Datetime,
            Some(Value::Datetime(datetime("00000001132312.000000:000"))),
        ))
        .with(Property::new(
            "Text",
            CimType::String,
            Some(Value::from("Grüße \"x\"\r\n\t<&>")),
        ))
        .with(Property::new(
            "Codes",
            CimType::Uint16,
            Some(Value::Array(vec![
                Some(Value::Uint16(2)),
                None,
                Some(Value::Uint16(6)),
            ])),
        ))
        .with(null_array)
        .with(Property::new("Missing", CimType::String, None))
        .with(Property::new(
            "Node",
            CimType::Reference(Some(Name::new("HP_SGNode"))),
            Some(Value::Reference(Box::new(ObjectPath::Instance(path_cs())))),
        ))
        .with(qualified)
        .with(embedded)
        .with(embedded_class)
}

fn rich_class() -> Class {
    let mut class = Class::new("HP_SGPackage", Some(Name::new("CIM_Service")));
    let mut abstract_qualifier =
        Qualifier::new("Abstract", CimType::Boolean, Some(Value::Boolean(false)));
    abstract_qualifier.flavor = Flavor {
        overridable: false,
        to_subclass: false,
        translatable: false,
        to_instance: true,
    };
    class.qualifiers.insert(abstract_qualifier);
    let mut description = Qualifier::new(
        "Description",
        CimType::String,
        Some(Value::from("A package")),
    );
    description.flavor.translatable = true;
    description.propagated = true;
    class.qualifiers.insert(description);
    let mut key = Property::new("Name", CimType::String, None);
    key.qualifiers.insert(Qualifier::new(
        "Key",
        CimType::Boolean,
        Some(Value::Boolean(true)),
    ));
    key.class_origin = Some(Name::new("CIM_Service"));
    key.propagated = true;
    class.add_property(key);
    let mut nodes = Property::new("NodeNames", CimType::String, None);
    nodes.is_array = true;
    nodes.array_size = Some(16);
    class.add_property(nodes);
    class.add_property(Property::new(
        "Priority",
        CimType::Uint32,
        Some(Value::Uint32(20)),
    ));
    class.add_property(Property::new(
        "Cluster",
        CimType::Reference(Some(Name::new("HP_SGCluster"))),
        None,
    ));
    let parameter = |name: &str, cim_type: CimType, is_array: bool| Parameter {
        name: Name::new(name),
        cim_type,
        is_array,
        array_size: None,
        qualifiers: Default::default(),
        embedded_object: None,
    };
    let mut requested = parameter("RequestedState", CimType::Uint16, false);
    requested.qualifiers.insert(Qualifier::new(
        "In",
        CimType::Boolean,
        Some(Value::Boolean(true)),
    ));
    let mut job = parameter(
        "Job",
        CimType::Reference(Some(Name::new("CIM_ConcreteJob"))),
        false,
    );
    job.qualifiers.insert(Qualifier::new(
        "Out",
        CimType::Boolean,
        Some(Value::Boolean(true)),
    ));
    let method = Method {
        name: Name::new("RequestStateChange"),
        return_type: CimType::Uint32,
        parameters: vec![
            requested,
            parameter("NodeNames", CimType::String, true),
            job,
            parameter("Others", CimType::Reference(None), true),
        ],
        qualifiers: Default::default(),
        class_origin: Some(Name::new("CIM_EnabledLogicalElement")),
        propagated: false,
    };
    class.methods.insert(method.name.clone(), method);
    class
}

fn qualifier_declaration() -> QualifierDeclaration {
    QualifierDeclaration {
        name: Name::new("ValueMap"),
        cim_type: CimType::String,
        is_array: true,
        array_size: None,
        default: None,
        scope: Scope {
            property: true,
            method: true,
            parameter: true,
            ..Scope::default()
        },
        flavor: Flavor::default(),
    }
}

/// The namespace path of request goldens.
const CIMV2: &str = "root/cimv2";

fn request(id: &str, call: IMethodCall) -> Message {
    Message::new(id, Body::Request(Request::IMethodCall(call)))
}

fn response(name: &str, result: Result<IMethodReturn, CimError>) -> Message {
    Message::new(
        "1001",
        Body::Response(Response::IMethod(IMethodResponse {
            name: name.into(),
            result,
        })),
    )
}

fn untyped(text: &str) -> Data {
    Data::Untyped(Untyped::Scalar(text.into()))
}

/// What a golden file holds, and how to decode it.
enum Golden {
    Data(Data),
    Value(CimType, Option<EmbeddedKind>, Value),
    Message(Message),
}

fn golden_cases() -> Vec<(&'static str, Golden)> {
    let (package_path, package) = common::sg_package(1);
    let class_path = ClassPath {
        host: Some("node1".into()),
        namespace: Some(CIMV2.into()),
        class_name: "HP_SGPackage".into(),
    };
    let local_class_path = ClassPath {
        host: None,
        ..class_path.clone()
    };
    let local_instance = path_cs().in_namespace(CIMV2);
    let nested_key = InstancePath::new("HP_SGPackageNode")
        .with_key(
            "Antecedent",
            Value::Reference(Box::new(ObjectPath::Instance(full_path()))),
        )
        .with_key(
            "Dependent",
            Value::Reference(Box::new(ObjectPath::Instance(local_instance.clone()))),
        )
        .with_key("Order", Value::Uint16(1))
        .with_key("Primary", true)
        .with_key("Weight", Value::Real32(0.5))
        .with_key("Letter", Value::Char16(Char16::from('&')))
        .with_key(
            "Since",
            Value::Datetime(datetime("20260101000000.000000+000")),
        );
    let cim_error = Instance::new("CIM_Error")
        .with(Property::new(
            "CIMStatusCode",
            CimType::Uint32,
            Some(Value::Uint32(6)),
        ))
        .with(Property::new(
            "Message",
            CimType::String,
            Some(Value::from("no such package")),
        ));
    vec![
        (
            "value_string.xml",
            Golden::Value(
                CimType::String,
                None,
                Value::from("<a href=\"x\">&amp;</a> ]]> Ünïcødé 日本"),
            ),
        ),
        (
            "value_sint64.xml",
            Golden::Value(
                CimType::Sint64,
                None,
                Value::Sint64(-9_223_372_036_854_775_808),
            ),
        ),
        (
            "value_real64.xml",
            Golden::Value(CimType::Real64, None, Value::Real64(1e300)),
        ),
        (
            "value_real32_inf.xml",
            Golden::Value(CimType::Real32, None, Value::Real32(f32::INFINITY)),
        ),
        (
            "value_char16.xml",
            Golden::Value(CimType::Char16, None, Value::Char16(Char16::from('<'))),
        ),
        (
            "value_datetime.xml",
            Golden::Value(
                CimType::Datetime,
                None,
                Value::Datetime(datetime("20050503104354.0000**-420")),
            ),
        ),
        (
            "value_array.xml",
            Golden::Value(
                CimType::Boolean,
                None,
                Value::Array(vec![Some(true.into()), None, Some(false.into())]),
            ),
        ),
        (
            "value_reference.xml",
            Golden::Value(
                CimType::Reference(None),
                None,
                Value::Reference(Box::new(ObjectPath::Instance(full_path()))),
            ),
        ),
        (
            "value_refarray.xml",
            Golden::Value(
                CimType::Reference(None),
                None,
                Value::Array(vec![
                    Some(Value::Reference(Box::new(ObjectPath::Instance(
                        local_instance.clone(),
                    )))),
                    None,
                    Some(Value::Reference(Box::new(ObjectPath::Class(
                        local_class_path.clone(),
                    )))),
                ]),
            ),
        ),
        (
            "value_embedded_instance.xml",
            Golden::Value(
                CimType::String,
                Some(EmbeddedKind::Instance),
                Value::Instance(Box::new(small_instance())),
            ),
        ),
        (
            "classname.xml",
            Golden::Data(Data::ClassName("HP_SGPackage".into())),
        ),
        (
            "instancename.xml",
            Golden::Data(Data::InstanceName(nested_key)),
        ),
        (
            "instancepath.xml",
            Golden::Data(Data::InstancePath(full_path())),
        ),
        (
            "objectpath_class.xml",
            Golden::Data(Data::ObjectPath(ObjectPath::Class(class_path.clone()))),
        ),
        (
            "qualifier_declaration.xml",
            Golden::Data(Data::QualifierDeclaration(qualifier_declaration())),
        ),
        ("class.xml", Golden::Data(Data::Class(rich_class()))),
        (
            "instance.xml",
            Golden::Data(Data::Instance(rich_instance())),
        ),
        (
            "named_instance.xml",
            Golden::Data(Data::NamedInstance(package_path.clone(), package.clone())),
        ),
        (
            "instance_with_path.xml",
            Golden::Data(Data::InstanceWithPath(full_path(), small_instance())),
        ),
        (
            "object_with_path_class.xml",
            Golden::Data(Data::ObjectWithPath(
                ObjectPath::Class(class_path),
                Object::Class(Class::new("HP_SGPackage", None)),
            )),
        ),
        (
            "object_with_local_path.xml",
            Golden::Data(Data::ObjectWithLocalPath(
                ObjectPath::Instance(local_instance.clone()),
                Object::Instance(small_instance()),
            )),
        ),
        (
            "value_object.xml",
            Golden::Data(Data::Object(Object::Instance(small_instance()))),
        ),
        (
            "request_enumerate_instances.xml",
            Golden::Message(request(
                "1001",
                IMethodCall {
                    name: "EnumerateInstances".into(),
                    namespace: CIMV2.into(),
                    params: vec![
                        IParamValue::new("ClassName", Data::ClassName("HP_SGPackage".into())),
                        IParamValue::new("DeepInheritance", untyped("TRUE")),
                        IParamValue::new(
                            "PropertyList",
                            Data::Untyped(Untyped::Array(vec![
                                Some("Name".into()),
                                Some("PackageStatus".into()),
                            ])),
                        ),
                    ],
                },
            )),
        ),
        (
            "request_open_enumerate.xml",
            Golden::Message(request(
                "1002",
                IMethodCall {
                    name: "OpenEnumerateInstances".into(),
                    namespace: CIMV2.into(),
                    params: vec![
                        IParamValue::new("ClassName", Data::ClassName("HP_SGPackage".into())),
                        IParamValue::new("MaxObjectCount", untyped("100")),
                        IParamValue::new("OperationTimeout", untyped("60")),
                        IParamValue::new("ContinueOnError", untyped("FALSE")),
                        IParamValue::new("FilterQueryLanguage", Data::Null),
                    ],
                },
            )),
        ),
        (
            "request_create_instance.xml",
            Golden::Message(request(
                "1003",
                IMethodCall {
                    name: "CreateInstance".into(),
                    namespace: "root/interop".into(),
                    params: vec![IParamValue::new(
                        "NewInstance",
                        Data::Instance(small_instance()),
                    )],
                },
            )),
        ),
        (
            "request_method_instance.xml",
            Golden::Message(Message::new(
                "1004",
                Body::Request(Request::MethodCall(MethodCall {
                    name: "RequestStateChange".into(),
                    target: ObjectPath::Instance(package_path.clone().in_namespace(CIMV2)),
                    params: vec![
                        ParamValue::typed("RequestedState", Some(Value::Uint16(2))),
                        ParamValue::typed(
                            "NodeNames",
                            Some(Value::Array(vec![Some("hpnode2".into())])),
                        ),
                        ParamValue::typed(
                            "Settings",
                            Some(Value::Instance(Box::new(small_instance()))),
                        ),
                        ParamValue::typed(
                            "Job",
                            Some(Value::Reference(Box::new(ObjectPath::Instance(
                                local_instance.clone(),
                            )))),
                        ),
                        ParamValue::new("Untyped", untyped("42")),
                        ParamValue::typed("TimeoutPeriod", None),
                    ],
                })),
            )),
        ),
        (
            "request_method_class.xml",
            Golden::Message(Message::new(
                "1005",
                Body::Request(Request::MethodCall(MethodCall {
                    name: "Describe".into(),
                    target: ObjectPath::Class(local_class_path),
                    params: vec![],
                })),
            )),
        ),
        (
            "response_enumerate_instances.xml",
            Golden::Message(response(
                "EnumerateInstances",
                Ok(IMethodReturn {
                    return_value: Some(vec![Data::NamedInstance(package_path, package)]),
                    params: vec![],
                }),
            )),
        ),
        (
            "response_pull.xml",
            Golden::Message(response(
                "OpenEnumerateInstances",
                Ok(IMethodReturn {
                    return_value: Some(vec![Data::InstanceWithPath(full_path(), small_instance())]),
                    params: vec![
                        ParamValue::typed("EnumerationContext", Some(Value::from("ctx-42"))),
                        ParamValue::typed("EndOfSequence", Some(Value::Boolean(false))),
                    ],
                }),
            )),
        ),
        (
            "response_void.xml",
            Golden::Message(response("DeleteInstance", Ok(IMethodReturn::default()))),
        ),
        (
            "response_create_instance.xml",
            Golden::Message(response(
                "CreateInstance",
                Ok(IMethodReturn {
                    return_value: Some(vec![Data::InstanceName(path_cs())]),
                    params: vec![],
                }),
            )),
        ),
        (
            "response_error.xml",
            Golden::Message(response(
                "GetInstance",
                Err(CimError {
                    code: 6,
                    description: Some("CIM_ERR_NOT_FOUND: \"pkg\" <missing>".into()),
                    instances: vec![cim_error],
                }),
            )),
        ),
        (
            "response_method.xml",
            Golden::Message(Message::new(
                "1004",
                Body::Response(Response::Method(MethodResponse {
                    name: "RequestStateChange".into(),
                    result: Ok(MethodReturn {
                        return_value: Some(ReturnValue::typed(Some(Value::Uint32(4096)))),
                        params: vec![ParamValue::typed(
                            "Job",
                            Some(Value::Reference(Box::new(ObjectPath::Instance(
                                local_instance,
                            )))),
                        )],
                    }),
                })),
            )),
        ),
        (
            "export_request.xml",
            Golden::Message(Message::new(
                "1",
                Body::ExportRequest(ExportRequest::indication(rich_instance())),
            )),
        ),
        (
            "export_response.xml",
            Golden::Message(Message::new(
                "1",
                Body::ExportResponse(ExportResponse {
                    name: "ExportIndication".into(),
                    result: Ok(None),
                }),
            )),
        ),
        (
            "export_response_error.xml",
            Golden::Message(Message::new(
                "2",
                Body::ExportResponse(ExportResponse {
                    name: "ExportIndication".into(),
                    result: Err(CimError::new(4, "bad indication")),
                }),
            )),
        ),
    ]
}

#[test]
fn every_element_kind_encodes_to_its_golden_file_and_decodes_back() {
    for (file, golden) in golden_cases() {
        let mut encoder = Encoder::new();
        match &golden {
            Golden::Data(data) => encoder.data(data, file).unwrap(),
            Golden::Value(_, _, value) => encoder.value(value, file).unwrap(),
            Golden::Message(message) => encoder.message(message).unwrap(),
        }
        let xml = encoder.into_bytes();
        check_golden(file, &xml);
        let limits = Limits::DEFAULT;
        match golden {
            Golden::Data(data) => assert_eq!(decode_data(&xml, &limits).unwrap(), data, "{file}"),
            Golden::Value(cim_type, embedded, value) => assert_eq!(
                decode_value(&xml, &cim_type, embedded, &limits).unwrap(),
                value,
                "{file}"
            ),
            Golden::Message(message) => {
                assert_eq!(decode(&xml, &limits).unwrap(), message, "{file}");
            }
        }
    }
}

/// Inputs written the way other implementations write them (whitespace, lower-case
/// booleans, hex numbers, CDATA and legacy attribute spellings), decoded to a Debug dump.
#[test]
fn foreign_inputs_decode_to_their_golden_dumps() {
    let directory = data_dir().join("decode");
    let mut inputs: Vec<_> = std::fs::read_dir(&directory)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "xml"))
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 4, "decode goldens are missing");
    for input in inputs {
        let message = decode(&std::fs::read(&input).unwrap(), &Limits::DEFAULT)
            .unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        let name = input
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .replace(".xml", ".txt");
        check_golden(
            &format!("decode/{name}"),
            format!("{message:#?}\n").as_bytes(),
        );
    }
}

fn envelope(body: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="9" PROTOCOLVERSION="1.0">{body}</MESSAGE></CIM>"#
    )
    .into_bytes()
}

fn enumerate(params: &str) -> Vec<u8> {
    envelope(&format!(
        r#"<SIMPLEREQ><IMETHODCALL NAME="EnumerateInstances"><LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="cimv2"/></LOCALNAMESPACEPATH>{params}</IMETHODCALL></SIMPLEREQ>"#
    ))
}

fn header_of(input: &[u8]) -> &'static str {
    decode(input, &Limits::DEFAULT)
        .unwrap_err()
        .cim_error_header()
}

#[test]
fn doctype_entities_and_broken_syntax_are_not_well_formed() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "doctype with an internal subset",
            b"<!DOCTYPE CIM SYSTEM \"cim.dtd\" []><CIM CIMVERSION=\"2.0\" DTDVERSION=\"2.0\"/>"
                .to_vec(),
        ),
        (
            "a second doctype",
            b"<!DOCTYPE CIM SYSTEM \"cim.dtd\"><!DOCTYPE CIM SYSTEM \"cim.dtd\"><CIM CIMVERSION=\"2.0\" DTDVERSION=\"2.0\"/>"
                .to_vec(),
        ),
        (
            "entity declaration",
            b"<?xml version=\"1.0\"?><!DOCTYPE CIM [<!ENTITY x \"lol\">]><CIM>&x;</CIM>".to_vec(),
        ),
        (
            "unknown entity",
            enumerate("<IPARAMVALUE NAME=\"a\"><VALUE>&nbsp;</VALUE></IPARAMVALUE>"),
        ),
        ("processing instruction", enumerate("<?evil stuff?>")),
        ("element name starting with a digit", enumerate("<1X/>")),
        ("element name with a bad character", enumerate("<X=Y/>")),
        (
            "attribute name starting with a hyphen",
            enumerate("<IPARAMVALUE -NAME=\"a\"/>"),
        ),
        (
            "< in an attribute value",
            enumerate("<IPARAMVALUE NAME=\"a<b\"/>"),
        ),
        (
            "mismatched tag",
            enumerate("<IPARAMVALUE NAME=\"a\"></VALUE>"),
        ),
        (
            "mismatched tag after text",
            enumerate("<IPARAMVALUE NAME=\"a\"><VALUE>x</VALUES></IPARAMVALUE>"),
        ),
        (
            "end tag in another case",
            enumerate("<IPARAMVALUE NAME=\"a\"><VALUE>x</value></IPARAMVALUE>"),
        ),
        (
            "bad utf-8",
            enumerate("<IPARAMVALUE NAME=\"\u{00e9}\"/>")
                .into_iter()
                .map(|b| if b == 0xA9 { 0xFF } else { b })
                .collect(),
        ),
        (
            "control character",
            enumerate("<IPARAMVALUE NAME=\"a\"><VALUE>\u{1}</VALUE></IPARAMVALUE>"),
        ),
        (
            "control character reference",
            enumerate("<IPARAMVALUE NAME=\"a\"><VALUE>&#1;</VALUE></IPARAMVALUE>"),
        ),
        (
            "duplicate attribute",
            enumerate("<IPARAMVALUE NAME=\"a\" NAME=\"b\"/>"),
        ),
        ("truncated", enumerate("").split_at(60).0.to_vec()),
        ("two roots", [enumerate(""), b"<CIM/>".to_vec()].concat()),
        ("empty", Vec::new()),
    ];
    for (what, input) in cases {
        let error = decode(&input, &Limits::DEFAULT).unwrap_err();
        assert!(
            matches!(error, DecodeError::NotWellFormed { .. }),
            "{what}: {error:?}"
        );
        assert_eq!(
            error.cim_error_header(),
            "request-not-well-formed",
            "{what}"
        );
    }
}

#[test]
fn a_document_that_is_not_valid_where_it_stops_but_is_cut_short_is_not_well_formed() {
    let whole = enumerate("<IPARAMVALUE NAME=\"ClassName\"><CLASSNAME NAME=\"C\"/></IPARAMVALUE>");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("cut after the first tags", b"<CIM><MESSAGE".to_vec()),
        (
            "cut inside an attribute list",
            b"<CIM><MESSAGE ID=\"1\"".to_vec(),
        ),
        (
            "invalid, then a mismatched end tag",
            b"<CIM><MESSAGE></CIM>".to_vec(),
        ),
        ("invalid, then a second root", b"<HTML/><HTML/>".to_vec()),
        (
            "invalid, then an attribute without quotes",
            b"<HTML a=1/>".to_vec(),
        ),
        (
            "invalid, then a duplicate attribute",
            b"<HTML a=\"1\" a=\"2\"/>".to_vec(),
        ),
        (
            "invalid, then an unknown entity",
            b"<HTML>&bogus;</HTML>".to_vec(),
        ),
        (
            "invalid, then an unknown entity in an attribute",
            b"<HTML a=\"&bogus;\"/>".to_vec(),
        ),
        (
            "invalid, then a processing instruction",
            b"<HTML><?pi x?></HTML>".to_vec(),
        ),
        ("unknown element, then cut", {
            let mut cut = enumerate("<IPARAMVALUE NAME=\"a\"><BOGUS/></IPARAMVALUE>");
            cut.truncate(cut.len() - 20);
            cut
        }),
    ];
    for (what, input) in cases {
        let error = decode(&input, &Limits::DEFAULT).unwrap_err();
        assert!(
            matches!(error, DecodeError::NotWellFormed { .. }),
            "{what}: {error:?}"
        );
    }
    // The whole message decodes: the second reading is only for refused ones.
    decode(&whole, &Limits::DEFAULT).unwrap();
}

#[test]
fn well_formed_but_not_cim_xml_is_not_valid() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unknown element", enumerate("<IPARAMVALUE NAME=\"a\"><BOGUS/></IPARAMVALUE>")),
        ("missing attribute", enumerate("<IPARAMVALUE><VALUE>1</VALUE></IPARAMVALUE>")),
        ("wrong root", b"<HTML/>".to_vec()),
        ("lower-case element", enumerate("<iparamvalue NAME=\"a\"/>")),
        ("text between elements", enumerate("stray text")),
        ("bad TYPE", enumerate("<IPARAMVALUE NAME=\"a\"><INSTANCE CLASSNAME=\"C\"><PROPERTY NAME=\"p\" TYPE=\"uint128\"/></INSTANCE></IPARAMVALUE>")),
        ("out of range", enumerate("<IPARAMVALUE NAME=\"a\"><INSTANCE CLASSNAME=\"C\"><PROPERTY NAME=\"p\" TYPE=\"uint8\"><VALUE>256</VALUE></PROPERTY></INSTANCE></IPARAMVALUE>")),
        ("not a boolean", enumerate("<IPARAMVALUE NAME=\"a\"><INSTANCE CLASSNAME=\"C\"><PROPERTY NAME=\"p\" TYPE=\"boolean\"><VALUE>yes</VALUE></PROPERTY></INSTANCE></IPARAMVALUE>")),
        ("bad embedded object", enumerate("<IPARAMVALUE NAME=\"a\"><INSTANCE CLASSNAME=\"C\"><PROPERTY NAME=\"p\" TYPE=\"string\" EmbeddedObject=\"instance\"><VALUE>&lt;CLASS NAME=\"x\"/&gt;</VALUE></PROPERTY></INSTANCE></IPARAMVALUE>")),
        ("missing namespace", envelope("<SIMPLEREQ><IMETHODCALL NAME=\"x\"></IMETHODCALL></SIMPLEREQ>")),
        ("element in a value", enumerate("<IPARAMVALUE NAME=\"a\"><VALUE><VALUE/></VALUE></IPARAMVALUE>")),
        ("embedded object not well-formed", enumerate("<IPARAMVALUE NAME=\"a\"><INSTANCE CLASSNAME=\"C\"><PROPERTY NAME=\"p\" TYPE=\"string\" EmbeddedObject=\"instance\"><VALUE>&lt;INSTANCE</VALUE></PROPERTY></INSTANCE></IPARAMVALUE>")),
        ("empty namespace segment", envelope("<SIMPLEREQ><IMETHODCALL NAME=\"x\"><LOCALNAMESPACEPATH><NAMESPACE NAME=\"root\"/><NAMESPACE NAME=\"\"/></LOCALNAMESPACEPATH></IMETHODCALL></SIMPLEREQ>")),
        ("namespace with a double slash", envelope("<SIMPLEREQ><IMETHODCALL NAME=\"x\"><LOCALNAMESPACEPATH><NAMESPACE NAME=\"root//cimv2\"/></LOCALNAMESPACEPATH></IMETHODCALL></SIMPLEREQ>")),
    ];
    for (what, input) in cases {
        let error = decode(&input, &Limits::DEFAULT).unwrap_err();
        assert!(
            matches!(error, DecodeError::NotValid { .. }),
            "{what}: {error:?}"
        );
        assert_eq!(error.cim_error_header(), "request-not-valid", "{what}");
    }
}

#[test]
fn batches_and_versions_have_their_own_errors() {
    assert_eq!(
        header_of(&envelope("<MULTIREQ></MULTIREQ>")),
        "multiple-requests-unsupported"
    );
    assert_eq!(
        header_of(&envelope("<MULTIEXPREQ></MULTIEXPREQ>")),
        "multiple-requests-unsupported"
    );
    let cim3 =
        br#"<CIM CIMVERSION="3.0" DTDVERSION="2.0"><MESSAGE ID="1" PROTOCOLVERSION="1.0"/></CIM>"#;
    assert_eq!(header_of(cim3), "unsupported-cim-version");
    let dtd3 =
        br#"<CIM CIMVERSION="2.0" DTDVERSION="3.1"><MESSAGE ID="1" PROTOCOLVERSION="1.0"/></CIM>"#;
    assert_eq!(header_of(dtd3), "unsupported-dtd-version");
    let protocol2 =
        br#"<CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="1" PROTOCOLVERSION="2.0"/></CIM>"#;
    assert_eq!(header_of(protocol2), "unsupported-protocol-version");
    // Minor versions are accepted.
    let minor =
        envelope("<SIMPLEEXPRSP><EXPMETHODRESPONSE NAME=\"ExportIndication\"/></SIMPLEEXPRSP>");
    let minor = String::from_utf8(minor)
        .unwrap()
        .replace("DTDVERSION=\"2.0\"", "DTDVERSION=\"2.4\"");
    assert!(decode(minor.as_bytes(), &Limits::DEFAULT).is_ok());
}

#[test]
fn errors_carry_the_element_path_and_offset() {
    let input = enumerate("<IPARAMVALUE NAME=\"a\"><INSTANCE CLASSNAME=\"C\"><PROPERTY NAME=\"p\" TYPE=\"uint8\"><VALUE>300</VALUE></PROPERTY></INSTANCE></IPARAMVALUE>");
    let error = decode(&input, &Limits::DEFAULT).unwrap_err();
    let at = error.location();
    assert_eq!(
        at.path,
        "CIM/MESSAGE/SIMPLEREQ/IMETHODCALL/IPARAMVALUE/INSTANCE/PROPERTY/VALUE"
    );
    let value_text = input.windows(3).position(|w| w == b"300").unwrap();
    assert!(
        at.offset <= value_text + 3 && at.offset + 20 >= value_text,
        "{at}"
    );
    assert!(error.to_string().contains("out of range"), "{error}");
    // Inside an embedded object, the path continues after the carrier.
    let embedded = enumerate("<IPARAMVALUE NAME=\"a\"><INSTANCE CLASSNAME=\"C\"><PROPERTY NAME=\"p\" TYPE=\"string\" EmbeddedObject=\"instance\"><VALUE>&lt;INSTANCE CLASSNAME=\"D\"&gt;&lt;BAD/&gt;&lt;/INSTANCE&gt;</VALUE></PROPERTY></INSTANCE></IPARAMVALUE>");
    let error = decode(&embedded, &Limits::DEFAULT).unwrap_err();
    assert!(
        error
            .location()
            .path
            .ends_with("PROPERTY/VALUE!INSTANCE/BAD"),
        "{error}"
    );
}

#[test]
fn every_limit_is_enforced() {
    let deep_reference = {
        let mut path = InstancePath::new("Leaf").with_key("Id", "1");
        for _ in 0..12 {
            path = InstancePath::new("Node").with_key(
                "Next",
                Value::Reference(Box::new(ObjectPath::Instance(path))),
            );
        }
        let mut encoder = Encoder::new();
        encoder.instance_name(&path).unwrap();
        String::from_utf8(encoder.into_bytes()).unwrap()
    };
    let params = format!("<IPARAMVALUE NAME=\"InstanceName\">{deep_reference}</IPARAMVALUE>");
    let input = enumerate(&params);
    let limit = |limits: Limits| match decode(&input, &limits) {
        Err(DecodeError::LimitExceeded { limit, .. }) => Some(limit),
        Err(other) => panic!("{other}"),
        Ok(_) => None,
    };
    assert_eq!(limit(Limits::DEFAULT), None);
    assert_eq!(
        limit(Limits {
            input_bytes_max: 100,
            ..Limits::DEFAULT
        }),
        Some(Limit::InputBytes)
    );
    assert_eq!(
        limit(Limits {
            depth_max: 30,
            ..Limits::DEFAULT
        }),
        Some(Limit::Depth)
    );
    assert_eq!(
        limit(Limits {
            elements_max: 30,
            ..Limits::DEFAULT
        }),
        Some(Limit::Elements)
    );
    assert_eq!(
        limit(Limits {
            attribute_bytes_max: 8,
            ..Limits::DEFAULT
        }),
        Some(Limit::AttributeBytes)
    );

    let long_text = enumerate(&format!(
        "<IPARAMVALUE NAME=\"a\"><VALUE>{}</VALUE></IPARAMVALUE>",
        "x".repeat(1000)
    ));
    let error = decode(
        &long_text,
        &Limits {
            text_bytes_max: 999,
            ..Limits::DEFAULT
        },
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            DecodeError::LimitExceeded {
                limit: Limit::TextBytes,
                ..
            }
        ),
        "{error}"
    );

    // Embedded instances nested three deep need an embedded depth of three.
    let mut instance = small_instance();
    for _ in 0..3 {
        let mut carrier = Property::new(
            "Inner",
            CimType::String,
            Some(Value::Instance(Box::new(instance))),
        );
        carrier.embedded_object = Some(EmbeddedKind::Instance);
        instance = Instance::new("Outer").with(carrier);
    }
    let message = Message::new(
        "1",
        Body::ExportRequest(ExportRequest::indication(instance)),
    );
    let xml = encode(&message).unwrap();
    assert_eq!(
        decode(
            &xml,
            &Limits {
                embedded_depth_max: 3,
                ..Limits::DEFAULT
            }
        )
        .unwrap(),
        message
    );
    let error = decode(
        &xml,
        &Limits {
            embedded_depth_max: 2,
            ..Limits::DEFAULT
        },
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            DecodeError::LimitExceeded {
                limit: Limit::EmbeddedDepth,
                ..
            }
        ),
        "{error}"
    );
    // Elements inside embedded objects count towards the document's element limit.
    let elements = xml
        .windows(2)
        .filter(|w| w[0] == b'<' && w[1] != b'/' && w[1] != b'?')
        .count();
    let error = decode(
        &xml,
        &Limits {
            elements_max: elements + 2,
            ..Limits::DEFAULT
        },
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            DecodeError::LimitExceeded {
                limit: Limit::Elements,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn fragments_decode_on_their_own() {
    let mut encoder = Encoder::new();
    encoder.instance_path(&full_path()).unwrap();
    let xml = encoder.into_bytes();
    assert_eq!(
        decode_instance_path(&xml, &Limits::DEFAULT).unwrap(),
        full_path()
    );
    assert_eq!(
        decode_object_path(&xml, &Limits::DEFAULT).unwrap(),
        ObjectPath::Instance(full_path())
    );
    assert!(decode_instance(&xml, &Limits::DEFAULT).is_err());
    let class = decode_class(
        br#"<?xml version="1.0"?>
        <CLASS NAME="X" SUPERCLASS="Y">
          <PROPERTY NAME="A" TYPE="uint32"><VALUE> 0x1F </VALUE></PROPERTY>
        </CLASS>"#,
        &Limits::DEFAULT,
    )
    .unwrap();
    assert_eq!(class.property("a").unwrap().value, Some(Value::Uint32(31)));
    let embedded = decode_embedded(
        "<INSTANCE CLASSNAME=\"E\"/>",
        EmbeddedKind::Instance,
        &Limits::DEFAULT,
    )
    .unwrap();
    assert_eq!(embedded, Value::Instance(Box::new(Instance::new("E"))));
}

#[test]
fn untyped_values_are_typed_by_the_caller() {
    let input = enumerate(concat!(
        "<IPARAMVALUE NAME=\"DeepInheritance\"><VALUE>true</VALUE></IPARAMVALUE>",
        "<IPARAMVALUE NAME=\"MaxObjectCount\"><VALUE>0x10</VALUE></IPARAMVALUE>",
        "<IPARAMVALUE NAME=\"PropertyList\"><VALUE.ARRAY><VALUE>Name</VALUE><VALUE.NULL/></VALUE.ARRAY></IPARAMVALUE>",
    ));
    let message = decode(&input, &Limits::DEFAULT).unwrap();
    let Body::Request(Request::IMethodCall(call)) = message.body else {
        panic!("not an intrinsic call")
    };
    let Some(Data::Untyped(deep)) = call.param("deepinheritance") else {
        panic!("untyped expected")
    };
    assert_eq!(deep.as_bool(), Some(true));
    let Some(Data::Untyped(count)) = call.param("MaxObjectCount") else {
        panic!("untyped expected")
    };
    assert_eq!(count.as_u32(), Some(16));
    assert_eq!(count.to_value(&CimType::Uint8), Ok(Value::Uint8(16)));
    assert!(count.to_value(&CimType::Boolean).is_err());
    let Some(Data::Untyped(list)) = call.param("PropertyList") else {
        panic!("untyped expected")
    };
    assert_eq!(list.as_strings(), Some(vec!["Name"]));
}

#[test]
fn streaming_writer_matches_whole_message_encoding_in_chunks() {
    let packages: Vec<_> = (0..50).map(common::sg_package).collect();
    let mut writer = begin_imethod_response("1001", "EnumerateInstances");
    let mut streamed = Vec::new();
    for (path, instance) in &packages {
        writer.write_named_instance(path, instance).unwrap();
        if writer.buffered_len() > 4096 {
            streamed.extend(writer.take_chunk());
        }
    }
    // A failing item leaves no trace in the output.
    let mut bad = Instance::new("Bad");
    bad.set(Property {
        value: Some(Value::from("text")),
        ..Property::new("N", CimType::Uint32, None)
    });
    let error = writer.write_instance(&bad).unwrap_err();
    assert!(matches!(error, EncodeError::TypeMismatch { .. }), "{error}");
    let end = [ParamValue::typed(
        "EndOfSequence",
        Some(Value::Boolean(true)),
    )];
    streamed.extend(writer.finish(&end).unwrap());
    let whole = encode(&response(
        "EnumerateInstances",
        Ok(IMethodReturn {
            return_value: Some(
                packages
                    .into_iter()
                    .map(|(path, instance)| Data::NamedInstance(path, instance))
                    .collect(),
            ),
            params: end.to_vec(),
        }),
    ))
    .unwrap();
    assert_eq!(
        String::from_utf8(streamed).unwrap(),
        String::from_utf8(whole).unwrap()
    );
}

#[test]
fn every_name_of_a_namespace_is_written_as_spelled() {
    let in_namespace = |namespace: &str| {
        InstancePath::new("CIM_IndicationFilter")
            .with_key("Name", "f1")
            .in_namespace(namespace)
    };
    let subscription = InstancePath::new("CIM_IndicationSubscription").with_key(
        "Filter",
        Value::Reference(Box::new(ObjectPath::Instance(in_namespace("root/interop")))),
    );
    let mut other_host = in_namespace("/Root/Interop/");
    other_host.host = Some("node2".into());
    let mut elsewhere = in_namespace("root/cimv2");
    elsewhere.host = Some("node2".into());
    let spelling = || NamespaceSpelling::new(["interop", "root/interop"], "/interop");
    let mut writer = begin_imethod_response("1", "EnumerateInstanceNames");
    writer.spell_namespace(spelling());
    writer.write_instance_name(&subscription).unwrap();
    for path in [&other_host, &elsewhere] {
        writer.write_instance_path(path).unwrap();
    }
    let text = String::from_utf8(writer.finish(&[]).unwrap()).unwrap();
    let interop = "<LOCALNAMESPACEPATH><NAMESPACE NAME=\"interop\"/></LOCALNAMESPACEPATH>";
    assert_eq!(text.matches(interop).count(), 2, "{text}");
    assert!(
        !text.contains("NAME=\"root\"/><NAMESPACE NAME=\"interop\""),
        "{text}"
    );
    assert!(text.contains("<NAMESPACE NAME=\"cimv2\"/>"), "{text}");
    // A whole message is spelled the same way; without a spelling, paths keep their names.
    let message = response(
        "EnumerateInstanceNames",
        Ok(IMethodReturn {
            return_value: Some(vec![Data::InstancePath(other_host.clone())]),
            params: Vec::new(),
        }),
    );
    let spelled = String::from_utf8(encode_spelled(&message, spelling()).unwrap()).unwrap();
    assert!(spelled.contains(interop), "{spelled}");
    let plain = String::from_utf8(encode(&message).unwrap()).unwrap();
    assert!(
        plain.contains("<NAMESPACE NAME=\"Root\"/><NAMESPACE NAME=\"Interop\"/>"),
        "{plain}"
    );
}

#[test]
fn encoding_refuses_what_cim_xml_cannot_say() {
    let mut encoder = Encoder::new();
    let mismatched = Property::new("N", CimType::Uint32, Some(Value::from("x")));
    assert!(matches!(
        encoder.property(&mismatched),
        Err(EncodeError::TypeMismatch { .. })
    ));
    let mut plain_embedded = Property::new("E", CimType::String, Some(Value::from("x")));
    plain_embedded.embedded_object = Some(EmbeddedKind::Instance);
    assert!(matches!(
        encoder.property(&plain_embedded),
        Err(EncodeError::TypeMismatch { .. })
    ));
    let mut reference_array = Property::new("R", CimType::Reference(None), None);
    reference_array.is_array = true;
    assert!(matches!(
        encoder.property(&reference_array),
        Err(EncodeError::Unrepresentable { .. })
    ));
    let array_key = InstancePath::new("C").with_key("K", Value::Array(vec![]));
    assert!(matches!(
        encoder.instance_name(&array_key),
        Err(EncodeError::Unrepresentable { .. })
    ));
    assert!(matches!(
        encoder.instance_path(&path_cs()),
        Err(EncodeError::Unrepresentable { .. })
    ));
}

#[test]
fn forbidden_characters_are_replaced_on_output() {
    let mut encoder = Encoder::new();
    encoder.value(&Value::from("a\u{0}b\u{FFFF}"), "s").unwrap();
    assert_eq!(
        encoder.as_bytes(),
        "<VALUE>a\u{FFFD}b\u{FFFD}</VALUE>".as_bytes()
    );
    let back = decode_value(encoder.as_bytes(), &CimType::String, None, &Limits::DEFAULT).unwrap();
    assert_eq!(back, Value::from("a\u{FFFD}b\u{FFFD}"));
}

#[test]
fn nan_round_trips_as_nan() {
    let mut encoder = Encoder::new();
    encoder.value(&Value::Real64(f64::NAN), "r").unwrap();
    assert_eq!(encoder.as_bytes(), b"<VALUE>NaN</VALUE>");
    let back = decode_value(encoder.as_bytes(), &CimType::Real64, None, &Limits::DEFAULT).unwrap();
    assert!(matches!(back, Value::Real64(v) if v.is_nan()));
}

#[test]
fn reference_arrays_are_refarrays_whatever_their_first_element() {
    let reference = Value::Reference(Box::new(ObjectPath::Instance(
        InstancePath::new("CIM_X").with_key("Id", 1u32),
    )));
    let leading_null = Value::Array(vec![None, Some(reference)]);
    let mut encoder = Encoder::new();
    encoder.value(&leading_null, "refs").unwrap();
    let xml = String::from_utf8(encoder.into_bytes()).unwrap();
    assert!(
        xml.starts_with("<VALUE.REFARRAY><VALUE.NULL/><VALUE.REFERENCE>"),
        "{xml}"
    );
    let back = decode_value(
        xml.as_bytes(),
        &CimType::Reference(None),
        None,
        &Limits::DEFAULT,
    )
    .unwrap();
    assert_eq!(back, leading_null);

    // With the declared type known, an array of NULL references is a VALUE.REFARRAY too.
    let nulls = ParamValue {
        name: Name::new("Targets"),
        param_type: Some(CimType::Reference(None)),
        embedded_object: None,
        value: Data::Value(Value::Array(vec![None, None])),
    };
    let mut encoder = Encoder::new();
    encoder.param_value(&nulls).unwrap();
    let xml = String::from_utf8(encoder.into_bytes()).unwrap();
    assert_eq!(
        xml,
        "<PARAMVALUE NAME=\"Targets\" PARAMTYPE=\"reference\"><VALUE.REFARRAY>\
         <VALUE.NULL/><VALUE.NULL/></VALUE.REFARRAY></PARAMVALUE>"
    );
}

#[test]
fn export_answers_decode_one_or_many_responses_in_order() {
    let limits = Limits::default();
    let simple = br#"<CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="1" PROTOCOLVERSION="1.0"><SIMPLEEXPRSP><EXPMETHODRESPONSE NAME="ExportIndication"/></SIMPLEEXPRSP></MESSAGE></CIM>"#;
    let one = cim_schema::xml::decode_export_responses(simple, &limits).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].result, Ok(None));
    let multi = br#"<?xml version="1.0" encoding="utf-8" ?><CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="7" PROTOCOLVERSION="1.0"><MULTIEXPRSP><SIMPLEEXPRSP><EXPMETHODRESPONSE NAME="ExportIndication"/></SIMPLEEXPRSP><SIMPLEEXPRSP><EXPMETHODRESPONSE NAME="ExportIndication"><ERROR CODE="4" DESCRIPTION="bad"/></EXPMETHODRESPONSE></SIMPLEEXPRSP><SIMPLEEXPRSP><EXPMETHODRESPONSE NAME="ExportIndication"></EXPMETHODRESPONSE></SIMPLEEXPRSP></MULTIEXPRSP></MESSAGE></CIM>"#;
    let three = cim_schema::xml::decode_export_responses(multi, &limits).unwrap();
    assert_eq!(three.len(), 3);
    assert_eq!(three[0].result, Ok(None));
    assert_eq!(three[1].result.as_ref().unwrap_err().code, 4);
    assert_eq!(three[2].result, Ok(None));
    // Anything else inside MULTIEXPRSP, or an operation response, is refused.
    let wrong = br#"<CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="7" PROTOCOLVERSION="1.0"><MULTIEXPRSP><SIMPLERSP/></MULTIEXPRSP></MESSAGE></CIM>"#;
    assert!(cim_schema::xml::decode_export_responses(wrong, &limits).is_err());
    let operation = br#"<CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="7" PROTOCOLVERSION="1.0"><SIMPLERSP><IMETHODRESPONSE NAME="GetClass"/></SIMPLERSP></MESSAGE></CIM>"#;
    assert!(cim_schema::xml::decode_export_responses(operation, &limits).is_err());
}

#[test]
fn an_instance_name_with_one_unnamed_key_decodes_and_encodes_back() {
    // DSP0201: <!ELEMENT INSTANCENAME (KEYBINDING* | KEYVALUE? | VALUE.REFERENCE?)>
    let unnamed = br#"<INSTANCENAME CLASSNAME="CIM_RegisteredProfile"><KEYVALUE VALUETYPE="string">DMTF+Indications+1.2.2</KEYVALUE></INSTANCENAME>"#;
    let path = decode_instance_path(unnamed, &Limits::DEFAULT).unwrap();
    assert_eq!(path.keybindings.len(), 1);
    assert_eq!(path.keybindings[0].name.as_str(), "");
    assert_eq!(
        path.keybindings[0].value,
        Value::String("DMTF+Indications+1.2.2".into())
    );
    let mut encoder = Encoder::new();
    encoder.instance_name(&path).unwrap();
    let encoded = encoder.into_bytes();
    assert!(
        !String::from_utf8_lossy(&encoded).contains("KEYBINDING"),
        "{}",
        String::from_utf8_lossy(&encoded)
    );
    assert_eq!(
        decode_instance_path(&encoded, &Limits::DEFAULT).unwrap(),
        path
    );
    // One unnamed key only, and never beside named ones.
    for refused in [
        &br#"<INSTANCENAME CLASSNAME="C"><KEYVALUE>a</KEYVALUE><KEYVALUE>b</KEYVALUE></INSTANCENAME>"#[..],
        br#"<INSTANCENAME CLASSNAME="C"><KEYVALUE>a</KEYVALUE><KEYBINDING NAME="k"><KEYVALUE>b</KEYVALUE></KEYBINDING></INSTANCENAME>"#,
        br#"<INSTANCENAME CLASSNAME="C"><KEYBINDING NAME="k"><KEYVALUE>b</KEYVALUE></KEYBINDING><KEYVALUE>a</KEYVALUE></INSTANCENAME>"#,
    ] {
        let error = decode_instance_path(refused, &Limits::DEFAULT).unwrap_err();
        assert!(matches!(error, DecodeError::NotValid { .. }), "{error:?}");
    }
}

#[test]
fn a_doctype_that_only_names_the_dtd_is_skipped_unread() {
    let request =
        enumerate(r#"<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="CIM_Foo"/></IPARAMVALUE>"#);
    let text = String::from_utf8(request).unwrap();
    let with_doctype = text.replacen(
        "<CIM ",
        "<!DOCTYPE CIM SYSTEM \"http://www.dmtf.org/cim/mapping/xml/v2.0/CIM_DTD_V20.dtd\">\n<CIM ",
        1,
    );
    assert_ne!(with_doctype, text);
    let plain = decode(text.as_bytes(), &Limits::DEFAULT).unwrap();
    let skipped = decode(with_doctype.as_bytes(), &Limits::DEFAULT).unwrap();
    assert_eq!(plain, skipped);
}
