//! The CIM-XML encoder: writes DSP0201 elements straight into a byte buffer, with no
//! intermediate tree, and a streaming writer for large enumeration responses.
//!
//! Output is compact (no whitespace between elements), UTF-8, and always well-formed XML 1.0
//! (see [`super::text`] for how strings are escaped).

mod object;
mod stream;

use std::mem;

use crate::model::{
    CimType, ClassPath, EmbeddedKind, InstancePath, KeyBinding, Name, ObjectPath, Value,
};

use super::error::EncodeError;
use super::message::embedded_kind_of;
use super::message::{
    Body, CimError, Data, ExportRequest, ExportResponse, IMethodCall, IMethodResponse, IParamValue,
    Message, MethodCall, MethodResponse, ParamValue, Request, Response, ReturnValue, Untyped,
    CIM_VERSION, DTD_VERSION,
};
use super::text;

pub use stream::{begin_imethod_response, IMethodResponseWriter};

/// Encodes a whole message as [`encode`] does, with the namespace names of its paths written
/// as `spelling` says.
pub fn encode_spelled(
    message: &Message,
    spelling: NamespaceSpelling,
) -> Result<Vec<u8>, EncodeError> {
    let mut encoder = Encoder::new();
    encoder.spell_namespace(spelling);
    encoder.message(message)?;
    Ok(encoder.into_bytes())
}

/// The XML declaration every message starts with.
const XML_DECLARATION: &[u8] = b"<?xml version=\"1.0\" encoding=\"utf-8\" ?>";

/// Writes CIM-XML elements into a growing byte buffer.
///
/// Each method appends one element. A method that fails may leave part of its element in the
/// buffer; [`IMethodResponseWriter`] undoes that for its items.
#[derive(Clone, Debug, Default)]
pub struct Encoder {
    out: Vec<u8>,
    /// How the namespaces of paths are written; `None`: as the paths name them.
    spelling: Option<Box<NamespaceSpelling>>,
}

/// One namespace that has several names (`root/interop` and `interop`), written in the
/// paths of a response the way the request named it, and in the `Name` of the
/// `CIM_Namespace` instance that stands for it (its property and its key): a client that
/// lists the namespaces through one name finds that namespace once, by the name it used.
///
/// A client compares the paths it gets with paths it built in the namespace it addressed:
/// pywbem's subscription manager recognises its own subscriptions by comparing their
/// `Filter` and `Handler` references with the paths of its filters and destinations, and
/// it addresses the interop namespace as `interop` where the server stores `root/interop`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceSpelling {
    /// Every name of the namespace, without leading or trailing `/`.
    names: Vec<String>,
    /// The name written for all of them.
    spelling: String,
}

impl NamespaceSpelling {
    /// Writes each of `names` (compared without case and without leading or trailing `/`)
    /// as `spelling`.
    pub fn new<S: Into<String>>(
        names: impl IntoIterator<Item = S>,
        spelling: impl Into<String>,
    ) -> NamespaceSpelling {
        NamespaceSpelling {
            names: names
                .into_iter()
                .map(|name| name.into().trim_matches('/').to_owned())
                .collect(),
            spelling: spelling.into().trim_matches('/').to_owned(),
        }
    }

    /// The class whose `Name` is a namespace name.
    pub const NAMESPACE_CLASS: &'static str = "CIM_Namespace";

    /// The `Name` of a `CIM_Namespace` written as the spelling says: `Some` when `class` is
    /// CIM_Namespace, `name` its `Name` and `value` one of the names spelt otherwise.
    pub fn namespace_name(&self, class: &Name, name: &Name, value: &Value) -> Option<Value> {
        if !class.matches(Self::NAMESPACE_CLASS) || !name.matches("Name") {
            return None;
        }
        let Value::String(text) = value else {
            return None;
        };
        let spelt = self.spell(text);
        (spelt != text).then(|| Value::String(spelt.to_owned()))
    }

    /// The name to write for `namespace`.
    pub fn spell<'a>(&'a self, namespace: &'a str) -> &'a str {
        let trimmed = namespace.trim_matches('/');
        if self
            .names
            .iter()
            .any(|name| name.eq_ignore_ascii_case(trimmed))
        {
            &self.spelling
        } else {
            namespace
        }
    }
}

/// Whole-message encoding: `<?xml ..?><CIM ..><MESSAGE ..>..</CIM>`.
pub fn encode(message: &Message) -> Result<Vec<u8>, EncodeError> {
    let mut encoder = Encoder::new();
    encoder.message(message)?;
    Ok(encoder.into_bytes())
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// An empty encoder whose buffer has room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Encoder {
        Encoder {
            out: Vec::with_capacity(capacity),
            spelling: None,
        }
    }

    /// Writes the names of one namespace in paths as `spelling` says, from now on.
    pub fn spell_namespace(&mut self, spelling: NamespaceSpelling) {
        self.spelling = Some(Box::new(spelling));
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.out
    }

    /// How many bytes are buffered.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// True when nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Takes the bytes written so far, leaving the buffer empty (to send a chunk).
    pub fn take(&mut self) -> Vec<u8> {
        // The next piece is likely the size of this one.
        let capacity = self.out.len();
        mem::replace(&mut self.out, Vec::with_capacity(capacity))
    }

    /// The buffer.
    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    fn attribute(&mut self, name: &[u8], value: &str) {
        self.out.push(b' ');
        self.out.extend_from_slice(name);
        self.out.extend_from_slice(b"=\"");
        text::escape_attribute(&mut self.out, value);
        self.out.push(b'"');
    }

    fn flag(&mut self, name: &[u8], value: bool) {
        self.out.push(b' ');
        self.out.extend_from_slice(name);
        self.out
            .extend_from_slice(if value { b"=\"true\"" } else { b"=\"false\"" });
    }

    fn start_named(&mut self, tag: &[u8], name: &str) {
        self.out.push(b'<');
        self.out.extend_from_slice(tag);
        self.attribute(b"NAME", name);
    }

    fn end(&mut self, tag: &[u8]) {
        self.out.extend_from_slice(b"</");
        self.out.extend_from_slice(tag);
        self.out.push(b'>');
    }

    // ----- messages -----

    /// A whole message, with the XML declaration.
    pub fn message(&mut self, message: &Message) -> Result<(), EncodeError> {
        self.begin_message(&message.id, &message.protocol_version);
        match &message.body {
            Body::Request(request) => {
                self.raw(b"<SIMPLEREQ>");
                match request {
                    Request::IMethodCall(call) => self.imethod_call(call)?,
                    Request::MethodCall(call) => self.method_call(call)?,
                }
                self.raw(b"</SIMPLEREQ>");
            }
            Body::Response(response) => {
                self.raw(b"<SIMPLERSP>");
                match response {
                    Response::IMethod(response) => self.imethod_response(response)?,
                    Response::Method(response) => self.method_response(response)?,
                }
                self.raw(b"</SIMPLERSP>");
            }
            Body::ExportRequest(request) => {
                self.raw(b"<SIMPLEEXPREQ>");
                self.export_request(request)?;
                self.raw(b"</SIMPLEEXPREQ>");
            }
            Body::ExportResponse(response) => {
                self.raw(b"<SIMPLEEXPRSP>");
                self.export_response(response)?;
                self.raw(b"</SIMPLEEXPRSP>");
            }
        }
        self.end_message();
        Ok(())
    }

    /// The XML declaration, `<CIM ..>` and `<MESSAGE ID=.. PROTOCOLVERSION=..>`.
    pub fn begin_message(&mut self, id: &str, protocol_version: &str) {
        self.raw(XML_DECLARATION);
        self.raw(b"<CIM");
        self.attribute(b"CIMVERSION", CIM_VERSION);
        self.attribute(b"DTDVERSION", DTD_VERSION);
        self.raw(b"><MESSAGE");
        self.attribute(b"ID", id);
        self.attribute(b"PROTOCOLVERSION", protocol_version);
        self.raw(b">");
    }

    /// `</MESSAGE></CIM>`.
    pub fn end_message(&mut self) {
        self.raw(b"</MESSAGE></CIM>");
    }

    /// `IMETHODCALL`.
    pub fn imethod_call(&mut self, call: &IMethodCall) -> Result<(), EncodeError> {
        self.start_named(b"IMETHODCALL", call.name.as_str());
        self.raw(b">");
        self.local_namespace_path(&call.namespace);
        for param in &call.params {
            self.iparam_value(param)?;
        }
        self.end(b"IMETHODCALL");
        Ok(())
    }

    /// `IPARAMVALUE`.
    pub fn iparam_value(&mut self, param: &IParamValue) -> Result<(), EncodeError> {
        self.named_data(b"IPARAMVALUE", &param.name, &param.value)
    }

    fn named_data(&mut self, tag: &[u8], name: &Name, value: &Data) -> Result<(), EncodeError> {
        self.start_named(tag, name.as_str());
        if let Data::Null = value {
            self.raw(b"/>");
            return Ok(());
        }
        if let Data::Value(value) = value {
            if let Some(kind) = embedded_kind_of(value) {
                self.embedded_attribute(kind);
            }
        }
        self.raw(b">");
        self.data(value, name.as_str())?;
        self.end(tag);
        Ok(())
    }

    /// `METHODCALL` on a `LOCALCLASSPATH` or `LOCALINSTANCEPATH`.
    pub fn method_call(&mut self, call: &MethodCall) -> Result<(), EncodeError> {
        self.start_named(b"METHODCALL", call.name.as_str());
        self.raw(b">");
        match &call.target {
            ObjectPath::Class(path) => self.local_class_path(path)?,
            ObjectPath::Instance(path) => self.local_instance_path(path)?,
        }
        for param in &call.params {
            self.param_value(param)?;
        }
        self.end(b"METHODCALL");
        Ok(())
    }

    /// `PARAMVALUE NAME PARAMTYPE EmbeddedObject`.
    pub fn param_value(&mut self, param: &ParamValue) -> Result<(), EncodeError> {
        self.start_named(b"PARAMVALUE", param.name.as_str());
        self.typed_data(
            b"PARAMVALUE",
            param.name.as_str(),
            param.param_type.as_ref(),
            param.embedded_object,
            &param.value,
        )
    }

    /// `RETURNVALUE PARAMTYPE EmbeddedObject`.
    pub fn return_value(&mut self, value: &ReturnValue) -> Result<(), EncodeError> {
        self.raw(b"<RETURNVALUE");
        self.typed_data(
            b"RETURNVALUE",
            "RETURNVALUE",
            value.param_type.as_ref(),
            value.embedded_object,
            &value.value,
        )
    }

    /// The attributes and content of `PARAMVALUE` or `RETURNVALUE`, after its open tag name.
    fn typed_data(
        &mut self,
        tag: &[u8],
        name: &str,
        param_type: Option<&CimType>,
        embedded: Option<EmbeddedKind>,
        value: &Data,
    ) -> Result<(), EncodeError> {
        if let Some(param_type) = param_type {
            let spelling = match param_type {
                CimType::Reference(_) => "reference",
                other => other.as_str(),
            };
            self.attribute(b"PARAMTYPE", spelling);
        }
        let embedded = match value {
            Data::Value(value) => {
                if let Some(declared) = param_type {
                    check_value(name, declared, embedded, value)?;
                }
                embedded.or_else(|| embedded_kind_of(value))
            }
            _ => embedded,
        };
        if let Some(kind) = embedded {
            self.embedded_attribute(kind);
        }
        if let Data::Null = value {
            self.raw(b"/>");
            return Ok(());
        }
        self.raw(b">");
        match value {
            Data::Value(value) => self.value_declared(value, param_type, name)?,
            other => self.data(other, name)?,
        }
        self.end(tag);
        Ok(())
    }

    fn embedded_attribute(&mut self, kind: EmbeddedKind) {
        self.raw(match kind {
            EmbeddedKind::Object => b" EmbeddedObject=\"object\"",
            EmbeddedKind::Instance => b" EmbeddedObject=\"instance\"",
        });
    }

    /// `IMETHODRESPONSE`: `ERROR`, or `IRETURNVALUE` (omitted when `None`) and `PARAMVALUE`s.
    pub fn imethod_response(&mut self, response: &IMethodResponse) -> Result<(), EncodeError> {
        self.start_named(b"IMETHODRESPONSE", response.name.as_str());
        self.raw(b">");
        match &response.result {
            Err(error) => self.error(error)?,
            Ok(success) => {
                if let Some(items) = &success.return_value {
                    self.ireturn_value(items)?;
                }
                for param in &success.params {
                    self.param_value(param)?;
                }
            }
        }
        self.end(b"IMETHODRESPONSE");
        Ok(())
    }

    /// `IRETURNVALUE` with its items.
    pub fn ireturn_value(&mut self, items: &[Data]) -> Result<(), EncodeError> {
        self.raw(b"<IRETURNVALUE>");
        for item in items {
            self.data(item, "IRETURNVALUE")?;
        }
        self.raw(b"</IRETURNVALUE>");
        Ok(())
    }

    /// `METHODRESPONSE`: `ERROR`, or `RETURNVALUE` and `PARAMVALUE`s.
    pub fn method_response(&mut self, response: &MethodResponse) -> Result<(), EncodeError> {
        self.start_named(b"METHODRESPONSE", response.name.as_str());
        self.raw(b">");
        match &response.result {
            Err(error) => self.error(error)?,
            Ok(success) => {
                if let Some(value) = &success.return_value {
                    self.return_value(value)?;
                }
                for param in &success.params {
                    self.param_value(param)?;
                }
            }
        }
        self.end(b"METHODRESPONSE");
        Ok(())
    }

    /// `EXPMETHODCALL` with `EXPPARAMVALUE`s.
    pub fn export_request(&mut self, request: &ExportRequest) -> Result<(), EncodeError> {
        self.start_named(b"EXPMETHODCALL", request.name.as_str());
        self.raw(b">");
        for param in &request.params {
            self.named_data(b"EXPPARAMVALUE", &param.name, &param.value)?;
        }
        self.end(b"EXPMETHODCALL");
        Ok(())
    }

    /// `EXPMETHODRESPONSE`: `ERROR` or an optional `IRETURNVALUE`.
    pub fn export_response(&mut self, response: &ExportResponse) -> Result<(), EncodeError> {
        self.start_named(b"EXPMETHODRESPONSE", response.name.as_str());
        match &response.result {
            Ok(None) => self.raw(b"/>"),
            Ok(Some(items)) => {
                self.raw(b">");
                self.ireturn_value(items)?;
                self.end(b"EXPMETHODRESPONSE");
            }
            Err(error) => {
                self.raw(b">");
                self.error(error)?;
                self.end(b"EXPMETHODRESPONSE");
            }
        }
        Ok(())
    }

    /// `ERROR CODE DESCRIPTION` with its `INSTANCE`s.
    pub fn error(&mut self, error: &CimError) -> Result<(), EncodeError> {
        self.raw(b"<ERROR CODE=\"");
        text::write_integer(&mut self.out, error.code);
        self.raw(b"\"");
        if let Some(description) = &error.description {
            self.attribute(b"DESCRIPTION", description);
        }
        if error.instances.is_empty() {
            self.raw(b"/>");
            return Ok(());
        }
        self.raw(b">");
        for instance in &error.instances {
            self.instance(instance)?;
        }
        self.end(b"ERROR");
        Ok(())
    }

    /// Any [`Data`] as its element; `context` names the holder in errors. [`Data::Null`]
    /// writes nothing.
    pub fn data(&mut self, data: &Data, context: &str) -> Result<(), EncodeError> {
        match data {
            Data::Null => {}
            Data::Value(value) => self.value(value, context)?,
            Data::Untyped(untyped) => self.untyped(untyped),
            Data::ClassName(name) => self.class_name(name),
            Data::InstanceName(path) => self.instance_name(path)?,
            Data::QualifierDeclaration(declaration) => self.qualifier_declaration(declaration)?,
            Data::Class(class) => self.class(class)?,
            Data::Instance(instance) => self.instance(instance)?,
            Data::NamedInstance(path, instance) => self.named_instance(path, instance)?,
            Data::InstancePath(path) => self.instance_path(path)?,
            Data::ObjectPath(path) => self.object_path(path)?,
            Data::InstanceWithPath(path, instance) => self.instance_with_path(path, instance)?,
            Data::ObjectWithPath(path, object) => self.object_with_path(path, object)?,
            Data::Object(object) => self.value_object(object)?,
            Data::ObjectWithLocalPath(path, object) => {
                self.object_with_local_path(path, object)?;
            }
        }
        Ok(())
    }

    fn untyped(&mut self, untyped: &Untyped) {
        match untyped {
            Untyped::Scalar(text) => {
                self.raw(b"<VALUE>");
                text::escape_text(&mut self.out, text);
                self.raw(b"</VALUE>");
            }
            Untyped::Array(items) => {
                self.raw(b"<VALUE.ARRAY>");
                for item in items {
                    match item {
                        Some(text) => {
                            self.raw(b"<VALUE>");
                            text::escape_text(&mut self.out, text);
                            self.raw(b"</VALUE>");
                        }
                        None => self.raw(b"<VALUE.NULL/>"),
                    }
                }
                self.raw(b"</VALUE.ARRAY>");
            }
        }
    }
}

/// True when a scalar matches a declared type (embedded objects are `string`).
fn scalar_matches(declared: &CimType, embedded: Option<EmbeddedKind>, value: &Value) -> bool {
    match (declared, value) {
        (CimType::String, Value::String(_)) => embedded.is_none(),
        (CimType::String, Value::Instance(_)) => true,
        (CimType::String, Value::Class(_)) => embedded != Some(EmbeddedKind::Instance),
        (CimType::Boolean, Value::Boolean(_))
        | (CimType::Uint8, Value::Uint8(_))
        | (CimType::Sint8, Value::Sint8(_))
        | (CimType::Uint16, Value::Uint16(_))
        | (CimType::Sint16, Value::Sint16(_))
        | (CimType::Uint32, Value::Uint32(_))
        | (CimType::Sint32, Value::Sint32(_))
        | (CimType::Uint64, Value::Uint64(_))
        | (CimType::Sint64, Value::Sint64(_))
        | (CimType::Real32, Value::Real32(_))
        | (CimType::Real64, Value::Real64(_))
        | (CimType::Char16, Value::Char16(_))
        | (CimType::Datetime, Value::Datetime(_))
        | (CimType::Reference(_), Value::Reference(_)) => true,
        _ => false,
    }
}

/// Checks a value (scalar or array) against its declared type.
fn check_value(
    element: &str,
    declared: &CimType,
    embedded: Option<EmbeddedKind>,
    value: &Value,
) -> Result<(), EncodeError> {
    let matches = match value {
        Value::Array(items) => items
            .iter()
            .flatten()
            .all(|item| scalar_matches(declared, embedded, item)),
        scalar => scalar_matches(declared, embedded, scalar),
    };
    if matches {
        Ok(())
    } else {
        Err(EncodeError::TypeMismatch {
            element: element.to_owned(),
            declared: match embedded {
                Some(_) => format!("{declared} (embedded object)"),
                None => declared.to_string(),
            },
        })
    }
}

impl Encoder {
    // ----- values -----

    /// A value as `VALUE`, `VALUE.ARRAY`, `VALUE.REFERENCE` or `VALUE.REFARRAY`; `context`
    /// names the holder in errors. An array is a `VALUE.REFARRAY` when any element is a
    /// reference (NULLs say nothing of the type); use [`Encoder::value_declared`] when the
    /// declared type is known, so that an array of NULL references is one too.
    pub fn value(&mut self, value: &Value, context: &str) -> Result<(), EncodeError> {
        self.value_declared(value, None, context)
    }

    /// [`Encoder::value`] for a holder of a known type: an array declared of references is a
    /// `VALUE.REFARRAY` whatever its elements (all NULL, or NULL first).
    pub fn value_declared(
        &mut self,
        value: &Value,
        declared: Option<&CimType>,
        context: &str,
    ) -> Result<(), EncodeError> {
        match value {
            Value::Reference(path) => self.value_reference(path),
            Value::Array(items) => {
                let references = declared.is_some_and(CimType::is_reference)
                    || items
                        .iter()
                        .flatten()
                        .any(|v| matches!(v, Value::Reference(_)));
                if references {
                    self.value_refarray(items, context)
                } else {
                    self.value_array(items, context)
                }
            }
            scalar => {
                self.raw(b"<VALUE>");
                self.scalar_text(scalar, context)?;
                self.raw(b"</VALUE>");
                Ok(())
            }
        }
    }

    fn value_array(&mut self, items: &[Option<Value>], context: &str) -> Result<(), EncodeError> {
        self.raw(b"<VALUE.ARRAY>");
        for item in items {
            match item {
                Some(value) => {
                    self.raw(b"<VALUE>");
                    self.scalar_text(value, context)?;
                    self.raw(b"</VALUE>");
                }
                None => self.raw(b"<VALUE.NULL/>"),
            }
        }
        self.raw(b"</VALUE.ARRAY>");
        Ok(())
    }

    fn value_refarray(
        &mut self,
        items: &[Option<Value>],
        context: &str,
    ) -> Result<(), EncodeError> {
        self.raw(b"<VALUE.REFARRAY>");
        for item in items {
            match item {
                Some(Value::Reference(path)) => self.value_reference(path)?,
                Some(_) => {
                    return Err(EncodeError::TypeMismatch {
                        element: context.to_owned(),
                        declared: "reference array".to_owned(),
                    })
                }
                None => self.raw(b"<VALUE.NULL/>"),
            }
        }
        self.raw(b"</VALUE.REFARRAY>");
        Ok(())
    }

    /// The text of a scalar inside `VALUE` (embedded objects as escaped XML).
    fn scalar_text(&mut self, value: &Value, context: &str) -> Result<(), EncodeError> {
        let out = &mut self.out;
        match value {
            Value::Boolean(true) => out.extend_from_slice(b"TRUE"),
            Value::Boolean(false) => out.extend_from_slice(b"FALSE"),
            Value::Uint8(v) => text::write_integer(out, *v),
            Value::Sint8(v) => text::write_integer(out, *v),
            Value::Uint16(v) => text::write_integer(out, *v),
            Value::Sint16(v) => text::write_integer(out, *v),
            Value::Uint32(v) => text::write_integer(out, *v),
            Value::Sint32(v) => text::write_integer(out, *v),
            Value::Uint64(v) => text::write_integer(out, *v),
            Value::Sint64(v) => text::write_integer(out, *v),
            Value::Real32(v) => text::write_real32(out, *v),
            Value::Real64(v) => text::write_real64(out, *v),
            Value::Char16(v) => text::write_char16(out, *v),
            Value::String(s) => text::escape_text(out, s),
            Value::Datetime(d) => out.extend_from_slice(d.as_str().as_bytes()),
            Value::Instance(instance) => {
                let mut inner = Encoder::new();
                inner.instance(instance)?;
                escape_utf8(out, &inner.out);
            }
            Value::Class(class) => {
                let mut inner = Encoder::new();
                inner.class(class)?;
                escape_utf8(out, &inner.out);
            }
            Value::Reference(_) | Value::Array(_) => {
                return Err(EncodeError::Unrepresentable {
                    element: context.to_owned(),
                    reason: "a reference or an array cannot be an element of an array",
                })
            }
        }
        Ok(())
    }
}

/// Escapes encoder output (always UTF-8: it is built from `&str` pieces and ASCII markup).
fn escape_utf8(out: &mut Vec<u8>, xml: &[u8]) {
    match std::str::from_utf8(xml) {
        Ok(text) => text::escape_text(out, text),
        // Unreachable by construction; writing the lossy form keeps the encoder panic-free.
        Err(_) => text::escape_text(out, &String::from_utf8_lossy(xml)),
    }
}

impl Encoder {
    // ----- paths -----

    /// `LOCALNAMESPACEPATH`: one `NAMESPACE` per `/`-separated segment.
    pub fn local_namespace_path(&mut self, namespace: &str) {
        let spelling = self.spelling.take();
        let namespace = spelling
            .as_deref()
            .map_or(namespace, |s| s.spell(namespace));
        self.raw(b"<LOCALNAMESPACEPATH>");
        let mut any = false;
        for segment in namespace.split('/').filter(|s| !s.is_empty()) {
            self.start_named(b"NAMESPACE", segment);
            self.raw(b"/>");
            any = true;
        }
        if !any {
            // DSP0201 requires at least one NAMESPACE; an empty namespace has no other form.
            self.raw(b"<NAMESPACE NAME=\"\"/>");
        }
        self.raw(b"</LOCALNAMESPACEPATH>");
        self.spelling = spelling;
    }

    /// `NAMESPACEPATH` (`HOST` + `LOCALNAMESPACEPATH`).
    pub fn namespace_path(&mut self, host: &str, namespace: &str) {
        self.raw(b"<NAMESPACEPATH><HOST>");
        text::escape_text(&mut self.out, host);
        self.raw(b"</HOST>");
        self.local_namespace_path(namespace);
        self.raw(b"</NAMESPACEPATH>");
    }

    /// `CLASSNAME NAME=..`.
    pub fn class_name(&mut self, name: &Name) {
        self.start_named(b"CLASSNAME", name.as_str());
        self.raw(b"/>");
    }

    /// `CLASSPATH` (needs host and namespace).
    pub fn class_path(&mut self, path: &ClassPath) -> Result<(), EncodeError> {
        let (Some(host), Some(namespace)) = (&path.host, &path.namespace) else {
            return Err(unrepresentable(
                &path.class_name,
                "a CLASSPATH needs a host and a namespace",
            ));
        };
        self.raw(b"<CLASSPATH>");
        self.namespace_path(host, namespace);
        self.class_name(&path.class_name);
        self.raw(b"</CLASSPATH>");
        Ok(())
    }

    /// `LOCALCLASSPATH` (needs a namespace; a host is ignored).
    pub fn local_class_path(&mut self, path: &ClassPath) -> Result<(), EncodeError> {
        let Some(namespace) = &path.namespace else {
            return Err(unrepresentable(
                &path.class_name,
                "a LOCALCLASSPATH needs a namespace",
            ));
        };
        self.raw(b"<LOCALCLASSPATH>");
        self.local_namespace_path(namespace);
        self.class_name(&path.class_name);
        self.raw(b"</LOCALCLASSPATH>");
        Ok(())
    }

    /// `INSTANCENAME` with its `KEYBINDING`s (host and namespace are not written).
    pub fn instance_name(&mut self, path: &InstancePath) -> Result<(), EncodeError> {
        self.out.extend_from_slice(b"<INSTANCENAME");
        self.attribute(b"CLASSNAME", path.class_name.as_str());
        if path.keybindings.is_empty() {
            self.raw(b"/>");
            return Ok(());
        }
        self.raw(b">");
        match &path.keybindings[..] {
            // The one unnamed key a decoded INSTANCENAME may hold (DSP0201 `KEYVALUE?`).
            [only] if only.name.as_str().is_empty() => self.key_value(only)?,
            keybindings => {
                let spelling = self
                    .spelling
                    .as_deref()
                    .filter(|_| path.class_name.matches(NamespaceSpelling::NAMESPACE_CLASS))
                    .cloned();
                for keybinding in keybindings {
                    let respelt = spelling.as_ref().and_then(|spelling| {
                        spelling.namespace_name(
                            &path.class_name,
                            &keybinding.name,
                            &keybinding.value,
                        )
                    });
                    match respelt {
                        Some(value) => self.keybinding(&KeyBinding {
                            name: keybinding.name.clone(),
                            value,
                        })?,
                        None => self.keybinding(keybinding)?,
                    }
                }
            }
        }
        self.raw(b"</INSTANCENAME>");
        Ok(())
    }

    /// `KEYBINDING` with a `KEYVALUE VALUETYPE TYPE` or a `VALUE.REFERENCE`.
    pub fn keybinding(&mut self, keybinding: &KeyBinding) -> Result<(), EncodeError> {
        self.start_named(b"KEYBINDING", keybinding.name.as_str());
        self.raw(b">");
        self.key_value(keybinding)?;
        self.raw(b"</KEYBINDING>");
        Ok(())
    }

    /// A key's `KEYVALUE VALUETYPE TYPE` or `VALUE.REFERENCE`.
    fn key_value(&mut self, keybinding: &KeyBinding) -> Result<(), EncodeError> {
        let (value_type, cim_type): (&[u8], &[u8]) = match &keybinding.value {
            Value::Reference(path) => return self.value_reference(path),
            Value::String(_) => (b"string", b"string"),
            Value::Char16(_) => (b"string", b"char16"),
            Value::Datetime(_) => (b"string", b"datetime"),
            Value::Boolean(_) => (b"boolean", b"boolean"),
            Value::Instance(_) | Value::Class(_) | Value::Array(_) => {
                return Err(unrepresentable(
                    &keybinding.name,
                    "a key value is a scalar and not an embedded object",
                ))
            }
            number => (
                b"numeric",
                number
                    .cim_type()
                    .map_or("uint64", |t| t.as_str())
                    .as_bytes(),
            ),
        };
        self.raw(b"<KEYVALUE VALUETYPE=\"");
        self.raw(value_type);
        self.raw(b"\" TYPE=\"");
        self.raw(cim_type);
        self.raw(b"\">");
        self.scalar_text(&keybinding.value, keybinding.name.as_str())?;
        self.raw(b"</KEYVALUE>");
        Ok(())
    }

    /// `INSTANCEPATH` (needs host and namespace).
    pub fn instance_path(&mut self, path: &InstancePath) -> Result<(), EncodeError> {
        let (Some(host), Some(namespace)) = (&path.host, &path.namespace) else {
            return Err(unrepresentable(
                &path.class_name,
                "an INSTANCEPATH needs a host and a namespace",
            ));
        };
        self.raw(b"<INSTANCEPATH>");
        self.namespace_path(host, namespace);
        self.instance_name(path)?;
        self.raw(b"</INSTANCEPATH>");
        Ok(())
    }

    /// `LOCALINSTANCEPATH` (needs a namespace; a host is ignored).
    pub fn local_instance_path(&mut self, path: &InstancePath) -> Result<(), EncodeError> {
        let Some(namespace) = &path.namespace else {
            return Err(unrepresentable(
                &path.class_name,
                "a LOCALINSTANCEPATH needs a namespace",
            ));
        };
        self.raw(b"<LOCALINSTANCEPATH>");
        self.local_namespace_path(namespace);
        self.instance_name(path)?;
        self.raw(b"</LOCALINSTANCEPATH>");
        Ok(())
    }

    /// `OBJECTPATH` (`INSTANCEPATH` or `CLASSPATH`).
    pub fn object_path(&mut self, path: &ObjectPath) -> Result<(), EncodeError> {
        self.raw(b"<OBJECTPATH>");
        match path {
            ObjectPath::Class(path) => self.class_path(path)?,
            ObjectPath::Instance(path) => self.instance_path(path)?,
        }
        self.raw(b"</OBJECTPATH>");
        Ok(())
    }

    /// `VALUE.REFERENCE`: the full, local or bare form of the path, by what it has (host and
    /// namespace; namespace only; neither). A host without a namespace is dropped, as
    /// DSP0201 has no form for it.
    pub fn value_reference(&mut self, path: &ObjectPath) -> Result<(), EncodeError> {
        self.raw(b"<VALUE.REFERENCE>");
        match path {
            ObjectPath::Class(path) => match (&path.host, &path.namespace) {
                (Some(_), Some(_)) => self.class_path(path)?,
                (None, Some(_)) => self.local_class_path(path)?,
                (_, None) => self.class_name(&path.class_name),
            },
            ObjectPath::Instance(path) => match (&path.host, &path.namespace) {
                (Some(_), Some(_)) => self.instance_path(path)?,
                (None, Some(_)) => self.local_instance_path(path)?,
                (_, None) => self.instance_name(path)?,
            },
        }
        self.raw(b"</VALUE.REFERENCE>");
        Ok(())
    }
}

fn unrepresentable(name: &Name, reason: &'static str) -> EncodeError {
    EncodeError::Unrepresentable {
        element: name.as_str().to_owned(),
        reason,
    }
}
