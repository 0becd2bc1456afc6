//! DSP0200 messages in memory: requests, responses and indication exports, as DSP0201 frames
//! them (`CIM` / `MESSAGE` / `SIMPLEREQ` ...).

use crate::model::{
    CimType, Class, Datetime, EmbeddedKind, Instance, InstancePath, Name, ObjectPath,
    QualifierDeclaration, Value,
};

use super::text;

/// `DSP0201` `CIM CIMVERSION` written by the encoder.
pub const CIM_VERSION: &str = "2.0";
/// `DSP0201` `CIM DTDVERSION` written by the encoder.
pub const DTD_VERSION: &str = "2.0";
/// `DSP0200` `MESSAGE PROTOCOLVERSION` written by the encoder.
pub const PROTOCOL_VERSION: &str = "1.0";

/// A whole CIM-XML message: `<CIM><MESSAGE ID=..>` and its body.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The `MESSAGE ID`: chosen by the client, echoed by the server.
    pub id: String,
    /// The `MESSAGE PROTOCOLVERSION` (`1.0`).
    pub protocol_version: String,
    /// What the message carries.
    pub body: Body,
}

impl Message {
    /// A message with protocol version 1.0.
    pub fn new(id: impl Into<String>, body: Body) -> Message {
        Message {
            id: id.into(),
            protocol_version: PROTOCOL_VERSION.to_owned(),
            body,
        }
    }
}

/// The body of a [`Message`].
// Messages are built once per request and matched by reference; boxing the variants would
// only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// `SIMPLEREQ`
    Request(Request),
    /// `SIMPLERSP`
    Response(Response),
    /// `SIMPLEEXPREQ`
    ExportRequest(ExportRequest),
    /// `SIMPLEEXPRSP`
    ExportResponse(ExportResponse),
}

/// An operation request (`SIMPLEREQ`).
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// `IMETHODCALL`: an intrinsic operation on a namespace.
    IMethodCall(IMethodCall),
    /// `METHODCALL`: an extrinsic method on a class or an instance.
    MethodCall(MethodCall),
}

/// `IMETHODCALL NAME=..` with `LOCALNAMESPACEPATH` and `IPARAMVALUE`s.
#[derive(Clone, Debug, PartialEq)]
pub struct IMethodCall {
    /// The operation (`EnumerateInstances`).
    pub name: Name,
    /// The target namespace (`root/cimv2`).
    pub namespace: String,
    /// The parameters, in document order.
    pub params: Vec<IParamValue>,
}

impl IMethodCall {
    /// The parameter of that name (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&Data> {
        self.params
            .iter()
            .find(|p| p.name.matches(name))
            .map(|p| &p.value)
    }
}

/// `IPARAMVALUE NAME=..`: an intrinsic parameter. Its values carry no type in the XML; see
/// [`Data::Untyped`].
#[derive(Clone, Debug, PartialEq)]
pub struct IParamValue {
    /// The parameter name.
    pub name: Name,
    /// The value; [`Data::Null`] for an empty element.
    pub value: Data,
}

impl IParamValue {
    /// A parameter.
    pub fn new(name: impl Into<Name>, value: Data) -> IParamValue {
        IParamValue {
            name: name.into(),
            value,
        }
    }
}

/// `METHODCALL NAME=..` on a `LOCALCLASSPATH` or `LOCALINSTANCEPATH`.
#[derive(Clone, Debug, PartialEq)]
pub struct MethodCall {
    /// The method name.
    pub name: Name,
    /// The target: a class or instance path with a namespace and no host.
    pub target: ObjectPath,
    /// The parameters, in document order.
    pub params: Vec<ParamValue>,
}

/// `PARAMVALUE NAME=.. PARAMTYPE=.. EmbeddedObject=..`: an extrinsic method parameter, or an
/// output parameter of a response (including the pull operations' `EnumerationContext` and
/// `EndOfSequence`).
#[derive(Clone, Debug, PartialEq)]
pub struct ParamValue {
    /// The parameter name.
    pub name: Name,
    /// The `PARAMTYPE` attribute (`reference` is `CimType::Reference(None)`). When present, the
    /// decoder types `VALUE` content into [`Data::Value`]; when absent it keeps it as
    /// [`Data::Untyped`].
    pub param_type: Option<CimType>,
    /// The `EmbeddedObject` attribute. The encoder writes it also when the value is an embedded
    /// object and this is `None`.
    pub embedded_object: Option<EmbeddedKind>,
    /// The value; [`Data::Null`] for an empty element.
    pub value: Data,
}

impl ParamValue {
    /// A parameter with a typed value (`PARAMTYPE` from the value's type; `None` for NULL).
    pub fn typed(name: impl Into<Name>, value: Option<Value>) -> ParamValue {
        let param_type = value.as_ref().and_then(Value::cim_type).map(|t| match t {
            CimType::Reference(_) => CimType::Reference(None),
            other => other,
        });
        ParamValue {
            name: name.into(),
            param_type,
            embedded_object: value.as_ref().and_then(embedded_kind_of),
            value: value.map_or(Data::Null, Data::Value),
        }
    }

    /// A parameter with any content and no `PARAMTYPE`.
    pub fn new(name: impl Into<Name>, value: Data) -> ParamValue {
        ParamValue {
            name: name.into(),
            param_type: None,
            embedded_object: None,
            value,
        }
    }
}

/// The `EmbeddedObject` kind a value implies: instances are `instance`, classes `object`.
pub(crate) fn embedded_kind_of(value: &Value) -> Option<EmbeddedKind> {
    match value {
        Value::Instance(_) => Some(EmbeddedKind::Instance),
        Value::Class(_) => Some(EmbeddedKind::Object),
        Value::Array(items) => items.iter().flatten().find_map(embedded_kind_of),
        _ => None,
    }
}

/// A response (`SIMPLERSP`).
#[allow(clippy::large_enum_variant)] // as for `Body`
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    /// `IMETHODRESPONSE`
    IMethod(IMethodResponse),
    /// `METHODRESPONSE`
    Method(MethodResponse),
}

/// `IMETHODRESPONSE NAME=..`: `ERROR`, or an optional `IRETURNVALUE` and output parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct IMethodResponse {
    /// The operation name.
    pub name: Name,
    /// The outcome.
    pub result: Result<IMethodReturn, CimError>,
}

/// The successful outcome of an intrinsic operation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IMethodReturn {
    /// `IRETURNVALUE`: `None` for void operations (CreateClass, ModifyInstance, DeleteInstance,
    /// SetQualifier, ...), which must omit the element.
    pub return_value: Option<Vec<Data>>,
    /// Output `PARAMVALUE`s (`EnumerationContext`, `EndOfSequence`).
    pub params: Vec<ParamValue>,
}

/// `METHODRESPONSE NAME=..`: `ERROR`, or a return value and output parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct MethodResponse {
    /// The method name.
    pub name: Name,
    /// The outcome.
    pub result: Result<MethodReturn, CimError>,
}

/// The successful outcome of an extrinsic method.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MethodReturn {
    /// `RETURNVALUE`, if present.
    pub return_value: Option<ReturnValue>,
    /// Output `PARAMVALUE`s.
    pub params: Vec<ParamValue>,
}

/// `RETURNVALUE PARAMTYPE=..`: the value an extrinsic method returned.
#[derive(Clone, Debug, PartialEq)]
pub struct ReturnValue {
    /// The `PARAMTYPE` attribute; typing works as for [`ParamValue::param_type`].
    pub param_type: Option<CimType>,
    /// The `EmbeddedObject` attribute.
    pub embedded_object: Option<EmbeddedKind>,
    /// The value: [`Data::Null`], [`Data::Value`] or [`Data::Untyped`].
    pub value: Data,
}

impl ReturnValue {
    /// A typed return value (`PARAMTYPE` from the value's type).
    pub fn typed(value: Option<Value>) -> ReturnValue {
        let ParamValue {
            param_type,
            embedded_object,
            value,
            ..
        } = ParamValue::typed("", value);
        ReturnValue {
            param_type,
            embedded_object,
            value,
        }
    }
}

/// `ERROR CODE=.. DESCRIPTION=..`, with optional `CIM_Error` instances.
#[derive(Clone, Debug, PartialEq)]
pub struct CimError {
    /// The `CIM_ERR_*` code (1 to 28).
    pub code: u32,
    /// The description.
    pub description: Option<String>,
    /// `CIM_Error` instances with details.
    pub instances: Vec<Instance>,
}

impl CimError {
    /// An error with a code and a description.
    pub fn new(code: u32, description: impl Into<String>) -> CimError {
        CimError {
            code,
            description: Some(description.into()),
            instances: Vec::new(),
        }
    }
}

/// An indication export request (`SIMPLEEXPREQ` / `EXPMETHODCALL`).
#[derive(Clone, Debug, PartialEq)]
pub struct ExportRequest {
    /// The export method (`ExportIndication`).
    pub name: Name,
    /// The `EXPPARAMVALUE`s (`NewIndication` with an `INSTANCE`).
    pub params: Vec<IParamValue>,
}

impl ExportRequest {
    /// `ExportIndication` with `NewIndication` = the indication.
    pub fn indication(indication: Instance) -> ExportRequest {
        ExportRequest {
            name: Name::new("ExportIndication"),
            params: vec![IParamValue::new(
                "NewIndication",
                Data::Instance(indication),
            )],
        }
    }

    /// The `NewIndication` instance of an `ExportIndication` request.
    pub fn new_indication(&self) -> Option<&Instance> {
        self.params
            .iter()
            .find(|p| p.name.matches("NewIndication"))
            .and_then(|p| match &p.value {
                Data::Instance(instance) => Some(instance),
                _ => None,
            })
    }
}

/// An indication export response (`SIMPLEEXPRSP` / `EXPMETHODRESPONSE`).
#[derive(Clone, Debug, PartialEq)]
pub struct ExportResponse {
    /// The export method name.
    pub name: Name,
    /// `ERROR`, or the optional `IRETURNVALUE` content (absent for `ExportIndication`).
    pub result: Result<Option<Vec<Data>>, CimError>,
}

/// A class or an instance (`VALUE.OBJECT` and the object half of the `*WITHPATH` elements).
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    /// `CLASS`
    Class(Class),
    /// `INSTANCE`
    Instance(Instance),
}

/// The content of a parameter or of a return value: each DSP0201 element kind that
/// `IPARAMVALUE`, `PARAMVALUE`, `RETURNVALUE`, `IRETURNVALUE` and `EXPPARAMVALUE` may hold.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// No content: a NULL value.
    Null,
    /// A typed value: `VALUE` or `VALUE.ARRAY` with a known type, `VALUE.REFERENCE`
    /// (as [`Value::Reference`]) or `VALUE.REFARRAY` (as an array of references). An embedded
    /// object is [`Value::Instance`] or [`Value::Class`].
    Value(Value),
    /// `VALUE` or `VALUE.ARRAY` whose type the XML does not state; see [`Untyped`].
    Untyped(Untyped),
    /// `CLASSNAME`
    ClassName(Name),
    /// `INSTANCENAME` (a path without host and namespace).
    InstanceName(InstancePath),
    /// `QUALIFIER.DECLARATION`
    QualifierDeclaration(QualifierDeclaration),
    /// `CLASS`
    Class(Class),
    /// `INSTANCE`
    Instance(Instance),
    /// `VALUE.NAMEDINSTANCE` (`INSTANCENAME` + `INSTANCE`).
    NamedInstance(InstancePath, Instance),
    /// `INSTANCEPATH` (host and namespace required).
    InstancePath(InstancePath),
    /// `OBJECTPATH` (a class or instance path with host and namespace).
    ObjectPath(ObjectPath),
    /// `VALUE.INSTANCEWITHPATH` (`INSTANCEPATH` + `INSTANCE`).
    InstanceWithPath(InstancePath, Instance),
    /// `VALUE.OBJECTWITHPATH` (`CLASSPATH` + `CLASS` or `INSTANCEPATH` + `INSTANCE`).
    ObjectWithPath(ObjectPath, Object),
    /// `VALUE.OBJECT`
    Object(Object),
    /// `VALUE.OBJECTWITHLOCALPATH` (`LOCALCLASSPATH` + `CLASS` or `LOCALINSTANCEPATH` +
    /// `INSTANCE`).
    ObjectWithLocalPath(ObjectPath, Object),
}

/// The text of a `VALUE` or `VALUE.ARRAY` whose CIM type the XML does not give (in an
/// `IPARAMVALUE`, in a `PARAMVALUE` or `RETURNVALUE` without `PARAMTYPE`, in an
/// `IRETURNVALUE`). The operation layer knows the type (from the operation's signature or the
/// class) and calls [`Untyped::to_value`], or one of the shortcuts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Untyped {
    /// `VALUE`: its text, unescaped.
    Scalar(String),
    /// `VALUE.ARRAY`: the texts of its elements, `None` for `VALUE.NULL`.
    Array(Vec<Option<String>>),
}

impl Untyped {
    /// The value typed as `cim_type` (the element type for an array). Embedded objects are
    /// decoded with [`super::decode_embedded`] instead.
    pub fn to_value(&self, cim_type: &CimType) -> Result<Value, String> {
        match self {
            Untyped::Scalar(text) => text::parse_scalar(text, cim_type),
            Untyped::Array(items) => items
                .iter()
                .map(|item| {
                    item.as_deref()
                        .map(|text| text::parse_scalar(text, cim_type))
                        .transpose()
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
        }
    }

    /// A scalar boolean (`TRUE`/`FALSE`, any case).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Untyped::Scalar(text) => text::parse_bool(text),
            Untyped::Array(_) => None,
        }
    }

    /// A scalar's text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Untyped::Scalar(text) => Some(text),
            Untyped::Array(_) => None,
        }
    }

    /// A scalar `uint32` (`MaxObjectCount`, `OperationTimeout`).
    pub fn as_u32(&self) -> Option<u32> {
        match self.to_value(&CimType::Uint32) {
            Ok(Value::Uint32(v)) => Some(v),
            _ => None,
        }
    }

    /// An array's texts (`PropertyList`), NULL elements skipped.
    pub fn as_strings(&self) -> Option<Vec<&str>> {
        match self {
            Untyped::Array(items) => Some(items.iter().flatten().map(String::as_str).collect()),
            Untyped::Scalar(_) => None,
        }
    }

    /// A scalar datetime.
    pub fn as_datetime(&self) -> Option<Datetime> {
        self.as_str()
            .and_then(|text| Datetime::parse(text.trim()).ok())
    }
}
