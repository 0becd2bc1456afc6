//! The CIM-XML codec (DSP0201 2.4) for DSP0200 1.4 operation and export messages.
//!
//! - [`message`]: the messages in memory ([`Message`], [`Request`], [`Response`],
//!   [`ExportRequest`], ...), and [`Data`], what a parameter or return value holds.
//! - [`decode`] a whole message, or one element with [`decode_instance`], [`decode_class`],
//!   [`decode_instance_path`], [`decode_object_path`], [`decode_value`], [`decode_data`],
//!   [`decode_qualifier_declaration`], [`decode_embedded`]; all bounded by [`Limits`] and
//!   failing with a located [`DecodeError`] that maps to a DSP0200 `CIMError` header.
//! - [`encode`] a whole message, or write elements one by one with an [`Encoder`], or stream
//!   an enumeration with [`begin_imethod_response`].
//!
//! Values whose type the XML does not state (`IPARAMVALUE`, `PARAMVALUE` without
//! `PARAMTYPE`) decode to [`Untyped`] text for the operation layer to type against the
//! operation's signature or the class. Untyped numeric `KEYVALUE`s take the widest type (see
//! [`crate::model::KeyBinding`]). See [`text`](self) for how characters XML cannot carry are
//! handled.
//!
//! ```
//! use cim_schema::xml::{decode, encode, Body, Data, Limits, Request};
//!
//! let request = br#"<?xml version="1.0" encoding="utf-8"?>
//! <CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="1001" PROTOCOLVERSION="1.0">
//! <SIMPLEREQ><IMETHODCALL NAME="EnumerateInstances">
//! <LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="cimv2"/></LOCALNAMESPACEPATH>
//! <IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="HP_SGPackage"/></IPARAMVALUE>
//! </IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>"#;
//! let message = decode(request, &Limits::DEFAULT).unwrap();
//! let Body::Request(Request::IMethodCall(call)) = &message.body else { panic!() };
//! assert_eq!(call.namespace, "root/cimv2");
//! assert!(matches!(call.param("classname"), Some(Data::ClassName(name)) if name == "HP_SGPackage"));
//! let again = decode(&encode(&message).unwrap(), &Limits::DEFAULT).unwrap();
//! assert_eq!(again, message);
//! ```

mod decode;
mod encode;
mod error;
mod limits;
pub mod message;
mod text;

pub use decode::{
    decode, decode_class, decode_data, decode_embedded, decode_export_responses, decode_instance,
    decode_instance_path, decode_object_path, decode_qualifier_declaration, decode_value,
};
pub use encode::{
    begin_imethod_response, encode, encode_spelled, Encoder, IMethodResponseWriter,
    NamespaceSpelling,
};
pub use error::{DecodeError, EncodeError, Limit, Location};
pub use limits::{
    Limits, ATTRIBUTE_BYTES_MAX_DEFAULT, DEPTH_MAX_CEILING, DEPTH_MAX_DEFAULT,
    ELEMENTS_MAX_DEFAULT, EMBEDDED_DEPTH_MAX_DEFAULT, INPUT_BYTES_MAX_DEFAULT,
    TEXT_BYTES_MAX_DEFAULT,
};
pub use message::{
    Body, CimError, Data, ExportRequest, ExportResponse, IMethodCall, IMethodResponse,
    IMethodReturn, IParamValue, Message, MethodCall, MethodResponse, MethodReturn, Object,
    ParamValue, Request, Response, ReturnValue, Untyped,
};
