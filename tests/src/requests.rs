//! CIM-XML request bodies the benchmarks send, written out as a client such as pywbem writes
//! them, so that the process benchmark (`benches/wbem.rs`) and the in-process one
//! (`benches/request.rs`) measure the same request; and the server those in-process
//! measurements answer them with.

use bytes::Bytes;
use futures_util::FutureExt;
use http::{HeaderMap, HeaderValue, Method};
use http_body_util::BodyExt;

use cimguard_provider::auth::Principal;
use cimguard_provider::config::ServerConfig;
use cimguard_provider::http::answer;
use cimguard_provider::interop::{standard_object_manager, InteropSettings};
use cimguard_provider::service::{Peer, Service};

/// The `NAMESPACE` elements of `namespace` (`root/cimv2`: two).
pub fn namespace_elements(namespace: &str) -> String {
    namespace
        .split('/')
        .map(|segment| format!(r#"<NAMESPACE NAME="{segment}"/>"#))
        .collect()
}

/// An `IPARAMVALUE` named `name` around `inner`.
pub fn iparam(name: &str, inner: &str) -> String {
    format!(r#"<IPARAMVALUE NAME="{name}">{inner}</IPARAMVALUE>"#)
}

/// An `INSTANCENAME` of `class` with one string key.
pub fn instance_name(class: &str, key: &str, value: &str) -> String {
    format!(
        "<INSTANCENAME CLASSNAME=\"{class}\"><KEYBINDING NAME=\"{key}\">\
         <KEYVALUE VALUETYPE=\"string\">{value}</KEYVALUE></KEYBINDING></INSTANCENAME>"
    )
}

/// An `INSTANCENAME` of `class` with the four keys of a CIM_System's element (a filter, a
/// listener destination, a package): SystemCreationClassName CIM_ComputerSystem, SystemName
/// `system`, CreationClassName `class` and Name `name`.
pub fn system_element_name(class: &str, system: &str, name: &str) -> String {
    let key = |key: &str, value: &str| {
        format!(
            "<KEYBINDING NAME=\"{key}\"><KEYVALUE VALUETYPE=\"string\">{value}</KEYVALUE></KEYBINDING>"
        )
    };
    format!(
        "<INSTANCENAME CLASSNAME=\"{class}\">{}{}{}{}</INSTANCENAME>",
        key("SystemCreationClassName", "CIM_ComputerSystem"),
        key("SystemName", system),
        key("CreationClassName", class),
        key("Name", name)
    )
}

/// `path` written as an `INSTANCENAME` (as a client sends back a path it was given).
pub fn instance_name_of(path: &cim_schema::model::InstancePath) -> Result<String, String> {
    let mut encoder = cim_schema::xml::Encoder::new();
    encoder.instance_name(path).map_err(|e| e.to_string())?;
    String::from_utf8(encoder.into_bytes()).map_err(|e| e.to_string())
}

/// The body of an intrinsic method call `method` in `namespace` (`root/interop`) with
/// `params`, the `IPARAMVALUE` elements written out.
pub fn imethod_call(id: u32, method: &str, namespace: &str, params: &str) -> String {
    let namespace = namespace_elements(namespace);
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n\
         <CIM CIMVERSION=\"2.0\" DTDVERSION=\"2.0\"><MESSAGE ID=\"{id}\" PROTOCOLVERSION=\"1.0\">\
         <SIMPLEREQ><IMETHODCALL NAME=\"{method}\"><LOCALNAMESPACEPATH>{namespace}\
         </LOCALNAMESPACEPATH>{params}</IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>"
    )
}

/// The load request of the benchmarks: EnumerateInstances of CIM_ObjectManager in
/// root/interop, with the parameters a pywbem client sends.
pub fn enumerate_object_manager() -> String {
    imethod_call(
        1001,
        "EnumerateInstances",
        "root/interop",
        concat!(
            r#"<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="CIM_ObjectManager"/></IPARAMVALUE>"#,
            r#"<IPARAMVALUE NAME="DeepInheritance"><VALUE>TRUE</VALUE></IPARAMVALUE>"#,
            r#"<IPARAMVALUE NAME="LocalOnly"><VALUE>FALSE</VALUE></IPARAMVALUE>"#,
            r#"<IPARAMVALUE NAME="IncludeQualifiers"><VALUE>FALSE</VALUE></IPARAMVALUE>"#,
            r#"<IPARAMVALUE NAME="IncludeClassOrigin"><VALUE>FALSE</VALUE></IPARAMVALUE>"#,
        ),
    )
}

/// ModifyInstance of the CIM_ObjectManager named by `instance_name` (its `INSTANCENAME`
/// element) setting GatherStatisticalData to `on`, as `pywbemcli statistics server-on` does.
pub fn gather_statistics(instance_name: &str, on: bool) -> String {
    let value = if on { "TRUE" } else { "FALSE" };
    imethod_call(
        1004,
        "ModifyInstance",
        "root/interop",
        &format!(
            r#"<IPARAMVALUE NAME="ModifiedInstance"><VALUE.NAMEDINSTANCE>{instance_name}<INSTANCE CLASSNAME="CIM_ObjectManager"><PROPERTY NAME="GatherStatisticalData" TYPE="boolean"><VALUE>{value}</VALUE></PROPERTY></INSTANCE></VALUE.NAMEDINSTANCE></IPARAMVALUE><IPARAMVALUE NAME="PropertyList"><VALUE.ARRAY><VALUE>GatherStatisticalData</VALUE></VALUE.ARRAY></IPARAMVALUE>"#
        ),
    )
}

/// Associators of the registered profiles through CIM_ReferencedProfile: a traversal, as
/// pywbem's `WBEMServer` makes them.
pub fn associators_referenced_profile() -> String {
    imethod_call(
        1002,
        "Associators",
        "root/interop",
        concat!(
            r#"<IPARAMVALUE NAME="ObjectName"><CLASSNAME NAME="CIM_RegisteredProfile"/></IPARAMVALUE>"#,
            r#"<IPARAMVALUE NAME="AssocClass"><CLASSNAME NAME="CIM_ReferencedProfile"/></IPARAMVALUE>"#,
        ),
    )
}

/// EnumerateInstanceNames of the registered profiles.
pub fn enumerate_profile_names() -> String {
    imethod_call(
        1003,
        "EnumerateInstanceNames",
        "root/interop",
        r#"<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="CIM_RegisteredProfile"/></IPARAMVALUE>"#,
    )
}

/// The server as cmwbemd builds it (interop namespace, anonymous requests let in), for the
/// in-process request bench and its instruction counts.
pub fn service() -> Service {
    let settings = InteropSettings {
        product: "cimguard".into(),
        version: "0.1.0".into(),
        system_name: "node1".into(),
        profiles: Vec::new(),
        indication_service: Default::default(),
        indication_counters: Default::default(),
    };
    let manager = standard_object_manager("node1", &settings).expect("the standard manager");
    let config = ServerConfig {
        danger_allow_anonymous: true,
        ..ServerConfig::default()
    };
    Service::new(config, manager, None, None)
}

/// The CIM headers of an intrinsic method call in root/interop.
pub fn headers(method: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=\"utf-8\""),
    );
    headers.insert("CIMOperation", HeaderValue::from_static("MethodCall"));
    headers.insert(
        "CIMMethod",
        HeaderValue::from_str(method).expect("a header value"),
    );
    headers.insert("CIMObject", HeaderValue::from_static("root%2Finterop"));
    headers
}

/// One request answered and its body collected, as the listener would send it.
pub fn exchange(
    service: &Service,
    peer: &Peer,
    principal: &Principal,
    headers: &HeaderMap,
    body: &[u8],
) -> Bytes {
    let response = answer(service, peer, principal, &Method::POST, headers, body);
    assert_eq!(response.status(), http::StatusCode::OK);
    response
        .into_body()
        .collect()
        .now_or_never()
        .expect("a buffered body is ready at once")
        .expect("infallible")
        .to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requests_decode_as_the_calls_they_name() {
        for (body, method) in [
            (enumerate_object_manager(), "EnumerateInstances"),
            (associators_referenced_profile(), "Associators"),
            (enumerate_profile_names(), "EnumerateInstanceNames"),
        ] {
            let message = cim_schema::xml::decode(body.as_bytes(), &Default::default())
                .unwrap_or_else(|error| panic!("{method}: {error}"));
            let cim_schema::xml::Body::Request(cim_schema::xml::Request::IMethodCall(call)) =
                message.body
            else {
                panic!("{method}: not an intrinsic call");
            };
            assert_eq!(call.name.as_str(), method);
            assert_eq!(call.namespace, "root/interop");
        }
    }
}
