//! The CIM-XML decoder: whole messages and standalone element fragments, bounded by
//! [`Limits`].
//!
//! Element names and attribute names are case-sensitive, as XML makes them; attribute values
//! with fixed vocabularies (`true`, `TRUE`, `instance`) and CIM type names are not.
//! Unknown attributes are ignored (`xml:lang`, vendor extensions); unknown elements are not
//! valid.

mod member;
mod object;
mod parser;
mod path;

use crate::model::{
    CimType, Class, EmbeddedKind, Instance, InstancePath, Name, ObjectPath, QualifierDeclaration,
    Value,
};

use self::parser::{Element, Parser, Result};
use super::error::DecodeError;
use super::limits::Limits;
use super::message::{
    Body, CimError, Data, ExportRequest, ExportResponse, IMethodCall, IMethodResponse,
    IMethodReturn, IParamValue, Message, MethodCall, MethodResponse, MethodReturn, ParamValue,
    Request, Response, ReturnValue,
};

/// Decodes a whole message (`<CIM><MESSAGE>..`): a simple request or response, or an export
/// request or response. A batch (`MULTIREQ`, `MULTIEXPREQ`) gives
/// [`DecodeError::MultipleRequestsUnsupported`].
pub fn decode(input: &[u8], limits: &Limits) -> std::result::Result<Message, DecodeError> {
    decode_message(input, limits).map_err(|error| match error {
        DecodeError::NotWellFormed { .. } | DecodeError::LimitExceeded { .. } => error,
        // Refused for what it says: unless it is not even well-formed XML.
        other => Parser::well_formedness_error(input, *limits).unwrap_or(other),
    })
}

fn decode_message(input: &[u8], limits: &Limits) -> std::result::Result<Message, DecodeError> {
    let mut parser = Parser::new(input, *limits)?;
    let root = parser.root()?;
    if root.name != b"CIM" {
        return Err(parser.not_valid(format!("the root element is {}, not CIM", root.name_str())));
    }
    let message = parser.cim(&root)?;
    parser.end_document()?;
    Ok(message)
}

/// Decodes the answer to an export request: the one `EXPMETHODRESPONSE` of a `SIMPLEEXPRSP`,
/// or those of a `MULTIEXPRSP` (the answer to a `MULTIEXPREQ`), in order.
pub fn decode_export_responses(
    input: &[u8],
    limits: &Limits,
) -> std::result::Result<Vec<ExportResponse>, DecodeError> {
    let mut parser = Parser::new(input, *limits)?;
    let root = parser.root()?;
    if root.name != b"CIM" {
        return Err(parser.not_valid(format!("the root element is {}, not CIM", root.name_str())));
    }
    parser.open_message(&root)?;
    let element = parser.required_child("SIMPLEEXPRSP or MULTIEXPRSP")?;
    let responses = match element.name {
        b"SIMPLEEXPRSP" => vec![parser.export_response()?],
        b"MULTIEXPRSP" => {
            let mut all = Vec::new();
            while let Some(child) = parser.child()? {
                if child.name != b"SIMPLEEXPRSP" {
                    return Err(parser.unexpected(&child));
                }
                all.push(parser.export_response()?);
            }
            // The loop's end closed MULTIEXPRSP.
            all
        }
        _ => return Err(parser.unexpected(&element)),
    };
    parser.end_empty()?; // MESSAGE
    parser.end_empty()?; // CIM
    parser.end_document()?;
    Ok(responses)
}

/// Decodes a standalone fragment whose root element `decode_root` handles (and closes).
fn fragment<'a, T>(
    input: &'a [u8],
    limits: &Limits,
    decode_root: impl FnOnce(&mut Parser<'a>, &Element<'a>) -> Result<T>,
) -> std::result::Result<T, DecodeError> {
    let mut parser = Parser::new(input, *limits)?;
    let root = parser.root()?;
    let value = decode_root(&mut parser, &root)?;
    parser.end_document()?;
    Ok(value)
}

/// Decodes an `INSTANCE` element.
pub fn decode_instance(
    input: &[u8],
    limits: &Limits,
) -> std::result::Result<Instance, DecodeError> {
    fragment(input, limits, |parser, root| match root.name {
        b"INSTANCE" => parser.instance(root),
        _ => Err(parser.unexpected(root)),
    })
}

/// Decodes a `CLASS` element.
pub fn decode_class(input: &[u8], limits: &Limits) -> std::result::Result<Class, DecodeError> {
    fragment(input, limits, |parser, root| match root.name {
        b"CLASS" => parser.class(root),
        _ => Err(parser.unexpected(root)),
    })
}

/// Decodes a `QUALIFIER.DECLARATION` element.
pub fn decode_qualifier_declaration(
    input: &[u8],
    limits: &Limits,
) -> std::result::Result<QualifierDeclaration, DecodeError> {
    fragment(input, limits, |parser, root| match root.name {
        b"QUALIFIER.DECLARATION" => parser.qualifier_declaration(root),
        _ => Err(parser.unexpected(root)),
    })
}

/// Decodes an `INSTANCENAME`, `LOCALINSTANCEPATH` or `INSTANCEPATH` element.
pub fn decode_instance_path(
    input: &[u8],
    limits: &Limits,
) -> std::result::Result<InstancePath, DecodeError> {
    fragment(input, limits, |parser, root| {
        match parser.any_path(root)? {
            Some(ObjectPath::Instance(path)) => Ok(path),
            _ => Err(parser.unexpected(root)),
        }
    })
}

/// Decodes any path element (`OBJECTPATH`, `VALUE.REFERENCE`, `INSTANCEPATH`,
/// `LOCALINSTANCEPATH`, `INSTANCENAME`, `CLASSPATH`, `LOCALCLASSPATH`, `CLASSNAME`).
pub fn decode_object_path(
    input: &[u8],
    limits: &Limits,
) -> std::result::Result<ObjectPath, DecodeError> {
    fragment(input, limits, |parser, root| match root.name {
        b"OBJECTPATH" => parser.object_path(),
        b"VALUE.REFERENCE" => parser.value_reference(),
        _ => parser
            .any_path(root)?
            .ok_or_else(|| parser.unexpected(root)),
    })
}

/// Decodes a `VALUE`, `VALUE.ARRAY`, `VALUE.REFERENCE` or `VALUE.REFARRAY` as a value of
/// `cim_type` (the element type for arrays; ignored for references), with `embedded` for
/// string values holding embedded objects.
pub fn decode_value(
    input: &[u8],
    cim_type: &CimType,
    embedded: Option<EmbeddedKind>,
    limits: &Limits,
) -> std::result::Result<Value, DecodeError> {
    fragment(input, limits, |parser, root| match root.name {
        b"VALUE" | b"VALUE.ARRAY" | b"VALUE.REFERENCE" | b"VALUE.REFARRAY" => {
            match parser.data(root, Some(cim_type), embedded)? {
                Data::Value(value) => Ok(value),
                _ => Err(parser.not_valid("not a value")),
            }
        }
        _ => Err(parser.unexpected(root)),
    })
}

/// Decodes any element a parameter may hold (`VALUE`, `INSTANCE`, `VALUE.NAMEDINSTANCE`,
/// `OBJECTPATH`, ...) as [`Data`], leaving `VALUE` and `VALUE.ARRAY` untyped.
pub fn decode_data(input: &[u8], limits: &Limits) -> std::result::Result<Data, DecodeError> {
    fragment(input, limits, |parser, root| parser.data(root, None, None))
}

/// Decodes the text of an embedded object (the unescaped content of a `VALUE` with
/// `EmbeddedObject`), as the operation layer needs for an untyped parameter it knows to be
/// one: [`Value::Instance`], or with [`EmbeddedKind::Object`] also [`Value::Class`].
pub fn decode_embedded(
    text: &str,
    kind: EmbeddedKind,
    limits: &Limits,
) -> std::result::Result<Value, DecodeError> {
    let mut parser = Parser::new(text.as_bytes(), *limits)?;
    let root = parser.root()?;
    let value = match (root.name, kind) {
        (b"INSTANCE", _) => Value::Instance(Box::new(parser.instance(&root)?)),
        (b"CLASS", EmbeddedKind::Object) => Value::Class(Box::new(parser.class(&root)?)),
        _ => return Err(parser.unexpected(&root)),
    };
    parser.end_document()?;
    Ok(value)
}

/// The `NAME`, `PARAMTYPE` and `EmbeddedObject` attributes of `PARAMVALUE` or `RETURNVALUE`.
type ParamTyping<'a> = (
    Option<std::borrow::Cow<'a, str>>,
    Option<CimType>,
    Option<EmbeddedKind>,
);

/// True for `major` or `major.anything`.
fn has_major(version: &str, major: &str) -> bool {
    version
        .strip_prefix(major)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

impl<'a> Parser<'a> {
    /// An opened `CIM`, which this closes.
    fn cim(&mut self, root: &Element<'a>) -> Result<Message> {
        let (id, protocol_version) = self.open_message(root)?;
        let body = self.body()?;
        self.end_empty()?; // MESSAGE
        self.end_empty()?; // CIM
        Ok(Message {
            id,
            protocol_version,
            body,
        })
    }

    /// Checks an opened `CIM`'s versions and opens its `MESSAGE`: the message's ID and
    /// protocol version.
    fn open_message(&mut self, root: &Element<'a>) -> Result<(String, String)> {
        let [cim_version, dtd_version] = self.attributes(root, [b"CIMVERSION", b"DTDVERSION"])?;
        let cim_version = self.required(cim_version, root, "CIMVERSION")?;
        if !has_major(&cim_version, "2") {
            return Err(DecodeError::UnsupportedCimVersion {
                version: cim_version.into_owned(),
                at: self.location(),
            });
        }
        let dtd_version = self.required(dtd_version, root, "DTDVERSION")?;
        if !has_major(&dtd_version, "2") {
            return Err(DecodeError::UnsupportedDtdVersion {
                version: dtd_version.into_owned(),
                at: self.location(),
            });
        }
        let message = self.required_child("MESSAGE")?;
        if message.name != b"MESSAGE" {
            return Err(self.unexpected(&message));
        }
        let [id, protocol_version] = self.attributes(&message, [b"ID", b"PROTOCOLVERSION"])?;
        let id = self.required(id, &message, "ID")?.into_owned();
        let protocol_version = self
            .required(protocol_version, &message, "PROTOCOLVERSION")?
            .into_owned();
        if !has_major(&protocol_version, "1") {
            return Err(DecodeError::UnsupportedProtocolVersion {
                version: protocol_version,
                at: self.location(),
            });
        }
        Ok((id, protocol_version))
    }

    /// The child of `MESSAGE`.
    fn body(&mut self) -> Result<Body> {
        let element = self.required_child("SIMPLEREQ")?;
        let body = match element.name {
            b"SIMPLEREQ" => Body::Request(self.simple_request()?),
            b"SIMPLERSP" => Body::Response(self.simple_response()?),
            b"SIMPLEEXPREQ" => Body::ExportRequest(self.export_request()?),
            b"SIMPLEEXPRSP" => Body::ExportResponse(self.export_response()?),
            b"MULTIREQ" | b"MULTIEXPREQ" => {
                return Err(DecodeError::MultipleRequestsUnsupported {
                    at: self.location(),
                })
            }
            _ => return Err(self.unexpected(&element)),
        };
        Ok(body)
    }

    /// The child of `SIMPLEREQ` (opened), which this closes. `CORRELATOR`s are skipped.
    fn simple_request(&mut self) -> Result<Request> {
        loop {
            let element = self.required_child("IMETHODCALL or METHODCALL")?;
            let request = match element.name {
                b"CORRELATOR" => {
                    self.skip_correlator()?;
                    continue;
                }
                b"IMETHODCALL" => Request::IMethodCall(self.imethod_call(&element)?),
                b"METHODCALL" => Request::MethodCall(self.method_call(&element)?),
                _ => return Err(self.unexpected(&element)),
            };
            self.end_empty()?;
            return Ok(request);
        }
    }

    /// `CORRELATOR NAME TYPE` with a `VALUE` (DSP0201 2.4): read and dropped.
    fn skip_correlator(&mut self) -> Result<()> {
        let child = self.required_child("VALUE")?;
        if child.name != b"VALUE" {
            return Err(self.unexpected(&child));
        }
        self.text()?;
        self.end_empty()
    }

    fn imethod_call(&mut self, element: &Element<'a>) -> Result<IMethodCall> {
        let [name] = self.attributes(element, [b"NAME"])?;
        let name = Name::new(self.required(name, element, "NAME")?);
        let child = self.required_child("LOCALNAMESPACEPATH")?;
        if child.name != b"LOCALNAMESPACEPATH" {
            return Err(self.unexpected(&child));
        }
        let namespace = self.local_namespace_path()?;
        // Enumerations carry five or six parameters: grow once at most.
        let mut params = Vec::with_capacity(8);
        while let Some(child) = self.child()? {
            if child.name != b"IPARAMVALUE" {
                return Err(self.unexpected(&child));
            }
            params.push(self.iparam_value(&child)?);
        }
        Ok(IMethodCall {
            name,
            namespace,
            params,
        })
    }

    /// An opened `IPARAMVALUE` or `EXPPARAMVALUE`, which this closes.
    fn iparam_value(&mut self, element: &Element<'a>) -> Result<IParamValue> {
        let [name] = self.attributes(element, [b"NAME"])?;
        let name = Name::new(self.required(name, element, "NAME")?);
        let value = self.optional_data(None, None)?;
        Ok(IParamValue { name, value })
    }

    /// The optional single content element of a parameter; closes the parameter.
    fn optional_data(
        &mut self,
        typing: Option<&CimType>,
        embedded: Option<EmbeddedKind>,
    ) -> Result<Data> {
        let Some(child) = self.child()? else {
            return Ok(Data::Null);
        };
        let data = self.data(&child, typing, embedded)?;
        self.end_empty()?;
        Ok(data)
    }

    fn method_call(&mut self, element: &Element<'a>) -> Result<MethodCall> {
        let [name] = self.attributes(element, [b"NAME"])?;
        let name = Name::new(self.required(name, element, "NAME")?);
        let child = self.required_child("LOCALCLASSPATH or LOCALINSTANCEPATH")?;
        let target = match child.name {
            b"LOCALCLASSPATH" => ObjectPath::Class(self.local_class_path()?),
            b"LOCALINSTANCEPATH" => ObjectPath::Instance(self.local_instance_path()?),
            _ => return Err(self.unexpected(&child)),
        };
        let mut params = Vec::new();
        while let Some(child) = self.child()? {
            if child.name != b"PARAMVALUE" {
                return Err(self.unexpected(&child));
            }
            params.push(self.param_value(&child)?);
        }
        Ok(MethodCall {
            name,
            target,
            params,
        })
    }

    /// The `PARAMTYPE` and `EmbeddedObject` attributes of `PARAMVALUE` or `RETURNVALUE`.
    fn param_typing(&self, element: &Element<'a>) -> Result<ParamTyping<'a>> {
        let [name, param_type, embedded, legacy] = self.attributes(
            element,
            [b"NAME", b"PARAMTYPE", b"EmbeddedObject", b"EMBEDDEDOBJECT"],
        )?;
        let param_type = match param_type.as_deref() {
            None => None,
            Some(text) if text.eq_ignore_ascii_case("reference") => Some(CimType::Reference(None)),
            Some(text) => Some(
                CimType::from_keyword(text)
                    .ok_or_else(|| self.not_valid(format!("unknown PARAMTYPE {text:?}")))?,
            ),
        };
        Ok((name, param_type, self.embedded_kind(embedded, legacy)?))
    }

    /// An opened `PARAMVALUE`, which this closes.
    fn param_value(&mut self, element: &Element<'a>) -> Result<ParamValue> {
        let (name, param_type, embedded_object) = self.param_typing(element)?;
        let name = Name::new(self.required(name, element, "NAME")?);
        let value = self.optional_data(param_type.as_ref(), embedded_object)?;
        Ok(ParamValue {
            name,
            param_type,
            embedded_object,
            value,
        })
    }

    /// The child of `SIMPLERSP` (opened), which this closes.
    fn simple_response(&mut self) -> Result<Response> {
        let element = self.required_child("IMETHODRESPONSE or METHODRESPONSE")?;
        let [name] = self.attributes(&element, [b"NAME"])?;
        let name = Name::new(self.required(name, &element, "NAME")?);
        let response = match element.name {
            b"IMETHODRESPONSE" => Response::IMethod(IMethodResponse {
                name,
                result: self.imethod_result()?,
            }),
            b"METHODRESPONSE" => Response::Method(MethodResponse {
                name,
                result: self.method_result()?,
            }),
            _ => return Err(self.unexpected(&element)),
        };
        self.end_empty()?;
        Ok(response)
    }

    /// The content of `IMETHODRESPONSE`, which this closes.
    fn imethod_result(&mut self) -> Result<std::result::Result<IMethodReturn, CimError>> {
        let mut success = IMethodReturn::default();
        while let Some(child) = self.child()? {
            match child.name {
                b"ERROR" if success.return_value.is_none() && success.params.is_empty() => {
                    let error = self.error(&child)?;
                    self.end_empty()?;
                    return Ok(Err(error));
                }
                b"IRETURNVALUE" if success.return_value.is_none() && success.params.is_empty() => {
                    success.return_value = Some(self.ireturn_value()?);
                }
                b"PARAMVALUE" => success.params.push(self.param_value(&child)?),
                _ => return Err(self.unexpected(&child)),
            }
        }
        Ok(Ok(success))
    }

    /// The content of `METHODRESPONSE`, which this closes.
    fn method_result(&mut self) -> Result<std::result::Result<MethodReturn, CimError>> {
        let mut success = MethodReturn::default();
        while let Some(child) = self.child()? {
            match child.name {
                b"ERROR" if success.return_value.is_none() && success.params.is_empty() => {
                    let error = self.error(&child)?;
                    self.end_empty()?;
                    return Ok(Err(error));
                }
                b"RETURNVALUE" if success.return_value.is_none() && success.params.is_empty() => {
                    let (_, param_type, embedded_object) = self.param_typing(&child)?;
                    let value = self.optional_data(param_type.as_ref(), embedded_object)?;
                    success.return_value = Some(ReturnValue {
                        param_type,
                        embedded_object,
                        value,
                    });
                }
                b"PARAMVALUE" => success.params.push(self.param_value(&child)?),
                _ => return Err(self.unexpected(&child)),
            }
        }
        Ok(Ok(success))
    }

    /// An opened `IRETURNVALUE`, which this closes: items all of one element kind.
    fn ireturn_value(&mut self) -> Result<Vec<Data>> {
        let mut items: Vec<Data> = Vec::new();
        while let Some(child) = self.child()? {
            let item = self.data(&child, None, None)?;
            if let Some(first) = items.first() {
                if std::mem::discriminant(first) != std::mem::discriminant(&item) {
                    return Err(self.not_valid("IRETURNVALUE mixes element kinds"));
                }
            }
            items.push(item);
        }
        Ok(items)
    }

    /// An opened `ERROR`, which this closes.
    fn error(&mut self, element: &Element<'a>) -> Result<CimError> {
        let [code, description] = self.attributes(element, [b"CODE", b"DESCRIPTION"])?;
        let code_text = self.required(code, element, "CODE")?;
        let code = code_text
            .trim()
            .parse::<u32>()
            .map_err(|_| self.not_valid(format!("CODE={code_text:?} is not a status code")))?;
        let mut instances = Vec::new();
        while let Some(child) = self.child()? {
            if child.name != b"INSTANCE" {
                return Err(self.unexpected(&child));
            }
            instances.push(self.instance(&child)?);
        }
        Ok(CimError {
            code,
            description: description.map(|d| d.into_owned()),
            instances,
        })
    }

    /// The child of `SIMPLEEXPREQ` (opened), which this closes.
    fn export_request(&mut self) -> Result<ExportRequest> {
        let element = self.required_child("EXPMETHODCALL")?;
        if element.name != b"EXPMETHODCALL" {
            return Err(self.unexpected(&element));
        }
        let [name] = self.attributes(&element, [b"NAME"])?;
        let name = Name::new(self.required(name, &element, "NAME")?);
        let mut params = Vec::new();
        while let Some(child) = self.child()? {
            if child.name != b"EXPPARAMVALUE" {
                return Err(self.unexpected(&child));
            }
            params.push(self.iparam_value(&child)?);
        }
        self.end_empty()?;
        Ok(ExportRequest { name, params })
    }

    /// The child of `SIMPLEEXPRSP` (opened), which this closes.
    fn export_response(&mut self) -> Result<ExportResponse> {
        let element = self.required_child("EXPMETHODRESPONSE")?;
        if element.name != b"EXPMETHODRESPONSE" {
            return Err(self.unexpected(&element));
        }
        let [name] = self.attributes(&element, [b"NAME"])?;
        let name = Name::new(self.required(name, &element, "NAME")?);
        let result = match self.child()? {
            None => Ok(None),
            Some(child) => {
                let result = match child.name {
                    b"ERROR" => Err(self.error(&child)?),
                    b"IRETURNVALUE" => Ok(Some(self.ireturn_value()?)),
                    _ => return Err(self.unexpected(&child)),
                };
                self.end_empty()?;
                result
            }
        };
        self.end_empty()?;
        Ok(ExportResponse { name, result })
    }
}
