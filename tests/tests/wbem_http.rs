//! DSP0200 on the wire: the `cmwbemd` binary started on loopback and spoken to byte by byte
//! over HTTP/1.1 and HTTPS. Each test starts its own agent (killed when the test ends) and
//! checks status codes, headers (`CIMError`, `Allow`, `WWW-Authenticate`, `Trailer`,
//! `Content-Encoding`), chunked and gzipped bodies, connection limits, timeouts and shutdown.
//!
//! Needs the binary: `cargo build --bin cmwbemd` before `cargo test -p cimguard-tests --test
//! wbem_http` (`cargo test --workspace` builds it).

use std::io::Read;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cim_schema::xml::{decode, Body, Data, IMethodResponse, Limits, Message, Response};
use cimguard_provider::auth::THROTTLE_DELAY_INITIAL;
use cimguard_tests::agent::Agent;
use cimguard_tests::raw_http::{self, Connection, RawResponse, TlsVersion};

/// How long the server may take to close a connection it should close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The DSP0200 M-POST extension URI.
const MAPPING_URI: &str = "http://www.dmtf.org/cim/mapping/http/v1.0";

fn start(arguments: &[&str]) -> Agent {
    Agent::start(arguments).unwrap_or_else(|error| panic!("{error}"))
}

/// An agent that takes requests without credentials.
fn anonymous() -> Agent {
    start(&["--danger-allow-anonymous"])
}

/// `<NAMESPACE>` elements for `root/cimv2`.
fn namespace_elements(namespace: &str) -> String {
    namespace
        .split('/')
        .map(|segment| format!("<NAMESPACE NAME=\"{segment}\"/>"))
        .collect()
}

/// A whole intrinsic request message.
fn imethod_message(id: &str, method: &str, namespace: &str, params: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <CIM CIMVERSION=\"2.0\" DTDVERSION=\"2.0\"><MESSAGE ID=\"{id}\" PROTOCOLVERSION=\"1.0\">\
         <SIMPLEREQ><IMETHODCALL NAME=\"{method}\"><LOCALNAMESPACEPATH>{}</LOCALNAMESPACEPATH>\
         {params}</IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>",
        namespace_elements(namespace)
    )
}

/// A boolean `IPARAMVALUE`.
fn flag(name: &str, value: bool) -> String {
    format!(
        "<IPARAMVALUE NAME=\"{name}\"><VALUE>{}</VALUE></IPARAMVALUE>",
        if value { "TRUE" } else { "FALSE" }
    )
}

/// A request as bytes to come: verb, headers in order, body.
#[derive(Clone)]
struct Call {
    verb: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Call {
    /// POST of an intrinsic method with the headers DSP0200 asks for.
    fn intrinsic(id: &str, method: &str, namespace: &str, params: &str) -> Call {
        Call {
            verb: "POST".into(),
            headers: vec![
                (
                    "Content-Type".into(),
                    "application/xml; charset=\"utf-8\"".into(),
                ),
                ("CIMProtocolVersion".into(), "1.0".into()),
                ("CIMOperation".into(), "MethodCall".into()),
                ("CIMMethod".into(), method.into()),
                ("CIMObject".into(), namespace.into()),
            ],
            body: imethod_message(id, method, namespace, params).into_bytes(),
        }
    }

    /// EnumerateClassNames of root/interop: a small request that always succeeds.
    fn small(id: &str) -> Call {
        Call::intrinsic(id, "EnumerateClassNames", "root/interop", "")
    }

    /// The large response of the tests: every class of root/cimv2 with qualifiers, class
    /// origins and inherited members (over 256 KiB).
    fn large(id: &str) -> Call {
        let params = [
            flag("DeepInheritance", true),
            flag("IncludeQualifiers", true),
            flag("IncludeClassOrigin", true),
            flag("LocalOnly", false),
        ]
        .concat();
        Call::intrinsic(id, "EnumerateClasses", "root/cimv2", &params)
    }

    /// Sets header `name` (replacing one of any case) to `value`.
    fn header(mut self, name: &str, value: &str) -> Call {
        self = self.without(name);
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Removes header `name` (any case).
    fn without(mut self, name: &str) -> Call {
        self.headers
            .retain(|(header, _)| !header.eq_ignore_ascii_case(name));
        self
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Call {
        self.body = body.into();
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        raw_http::request(
            &self.verb,
            "/cimom",
            "localhost",
            &headers,
            Some(&self.body),
        )
    }
}

/// Sends `call` on a new plain connection and reads the response.
fn exchange(address: SocketAddr, call: &Call) -> RawResponse {
    let mut connection =
        Connection::plain(address).unwrap_or_else(|e| panic!("connect {address}: {e}"));
    connection
        .request(&call.bytes())
        .unwrap_or_else(|e| panic!("request to {address}: {e}"))
}

/// The decoded CIM-XML message of a 200 response (gunzipped when it says gzip).
fn message(response: &RawResponse) -> Message {
    assert_eq!(
        response.status,
        200,
        "{} {:?}\n{}",
        response.reason,
        response.headers,
        response.body_text()
    );
    assert_eq!(response.header("CIMOperation"), Some("MethodResponse"));
    let content_type = response.header("Content-Type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/xml"),
        "content type {content_type}"
    );
    let body = plain_body(response);
    decode(&body, &Limits::DEFAULT).unwrap_or_else(|error| {
        panic!(
            "the response is not valid cim-xml: {error}\n{}",
            String::from_utf8_lossy(&body[..body.len().min(2000)])
        )
    })
}

/// The body, gunzipped when `Content-Encoding: gzip`.
fn plain_body(response: &RawResponse) -> Vec<u8> {
    match response.header("Content-Encoding") {
        None => response.body.clone(),
        Some(coding) if coding.eq_ignore_ascii_case("gzip") => gunzip(&response.body),
        Some(other) => panic!("unexpected content encoding {other}"),
    }
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut plain)
        .unwrap_or_else(|e| panic!("the body does not gunzip: {e}"));
    plain
}

/// The intrinsic response of a message.
fn imethod(message: &Message) -> &IMethodResponse {
    match &message.body {
        Body::Response(Response::IMethod(response)) => response,
        other => panic!("not an IMETHODRESPONSE: {other:?}"),
    }
}

/// The objects of a successful intrinsic response's IRETURNVALUE.
fn returned(message: &Message) -> &[Data] {
    let response = imethod(message);
    match &response.result {
        Ok(result) => result
            .return_value
            .as_deref()
            .unwrap_or_else(|| panic!("{} returned no IRETURNVALUE", response.name)),
        Err(error) => panic!("{} failed: {error:?}", response.name),
    }
}

/// Asserts a body-less protocol error: `status` and, when given, the `CIMError` header.
fn assert_refused(response: &RawResponse, status: u16, cim_error: Option<&str>) {
    assert_eq!(
        (response.status, response.header("CIMError")),
        (status, cim_error),
        "headers {:?}, body {}",
        response.headers,
        response.body_text()
    );
    assert_ne!(
        response.header("CIMOperation"),
        Some("MethodResponse"),
        "a refused request has no CIM-XML response"
    );
}

// ------------------------------------------------------------------ DSP0200 CIMError cases

#[test]
fn a_request_without_cimoperation_or_with_another_value_is_unsupported_operation() {
    let agent = anonymous();
    let missing = exchange(agent.http, &Call::small("1").without("CIMOperation"));
    assert_refused(&missing, 400, Some("unsupported-operation"));
    let response = Call::small("2").header("CIMOperation", "MethodResponse");
    assert_refused(
        &exchange(agent.http, &response),
        400,
        Some("unsupported-operation"),
    );
    // The same request with the header intact succeeds: the header alone made the difference.
    let message = message(&exchange(agent.http, &Call::small("3")));
    assert_eq!(message.id, "3");
}

#[test]
fn a_cimmethod_header_disagreeing_with_the_body_is_header_mismatch() {
    let agent = anonymous();
    let call = Call::small("1").header("CIMMethod", "EnumerateClasses");
    assert_refused(&exchange(agent.http, &call), 400, Some("header-mismatch"));
    let missing = Call::small("2").without("CIMMethod");
    assert_refused(
        &exchange(agent.http, &missing),
        400,
        Some("header-mismatch"),
    );
}

#[test]
fn a_cimobject_header_disagreeing_with_the_body_namespace_is_header_mismatch() {
    let agent = anonymous();
    let call = Call::small("1").header("CIMObject", "root/cimv2");
    assert_refused(&exchange(agent.http, &call), 400, Some("header-mismatch"));
    let missing = Call::small("2").without("CIMObject");
    assert_refused(
        &exchange(agent.http, &missing),
        400,
        Some("header-mismatch"),
    );
}

#[test]
fn two_authorization_headers_are_a_bad_request() {
    let agent = anonymous();
    let basic = raw_http::basic("user", "password");
    let mut call = Call::small("1").header("Authorization", &basic);
    call.headers.push(("Authorization".into(), basic.clone()));
    assert_refused(&exchange(agent.http, &call), 400, None);
    // One is taken (anonymous: not checked).
    let one = Call::small("2").header("Authorization", &basic);
    assert_eq!(message(&exchange(agent.http, &one)).id, "2");
}

#[test]
fn malformed_xml_is_request_not_well_formed() {
    let agent = anonymous();
    let body = imethod_message("1", "EnumerateClassNames", "root/interop", "");
    let truncated = body.replace("</SIMPLEREQ>", "</SIMPLERE>");
    let call = Call::small("1").body(truncated);
    assert_refused(
        &exchange(agent.http, &call),
        400,
        Some("request-not-well-formed"),
    );
}

#[test]
fn well_formed_xml_that_is_not_cim_xml_is_request_not_valid() {
    let agent = anonymous();
    let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><CIM CIMVERSION=\"2.0\" \
                DTDVERSION=\"2.0\"><MESSAGE ID=\"1\" PROTOCOLVERSION=\"1.0\"><SIMPLEREQ>\
                <NOT_AN_ELEMENT_OF_DSP0201/></SIMPLEREQ></MESSAGE></CIM>";
    let call = Call::small("1").body(body);
    assert_refused(&exchange(agent.http, &call), 400, Some("request-not-valid"));
}

#[test]
fn cimprotocolversion_2_is_unsupported_protocol_version() {
    let agent = anonymous();
    let call = Call::small("1").header("CIMProtocolVersion", "2.0");
    assert_refused(
        &exchange(agent.http, &call),
        501,
        Some("unsupported-protocol-version"),
    );
    // Any 1.x is accepted.
    let call = Call::small("2").header("CIMProtocolVersion", "1.1");
    assert_eq!(message(&exchange(agent.http, &call)).id, "2");
}

#[test]
fn message_protocolversion_2_is_unsupported_protocol_version() {
    let agent = anonymous();
    let body = imethod_message("1", "EnumerateClassNames", "root/interop", "")
        .replace("PROTOCOLVERSION=\"1.0\"", "PROTOCOLVERSION=\"2.0\"");
    let response = exchange(agent.http, &Call::small("1").body(body));
    assert_refused(&response, 501, Some("unsupported-protocol-version"));
}

#[test]
fn cimversion_3_is_unsupported_cim_version() {
    let agent = anonymous();
    let body = imethod_message("1", "EnumerateClassNames", "root/interop", "")
        .replace("CIMVERSION=\"2.0\"", "CIMVERSION=\"3.0\"");
    let response = exchange(agent.http, &Call::small("1").body(body));
    assert_refused(&response, 501, Some("unsupported-cim-version"));
}

#[test]
fn dtdversion_3_is_unsupported_dtd_version() {
    let agent = anonymous();
    let body = imethod_message("1", "EnumerateClassNames", "root/interop", "")
        .replace("DTDVERSION=\"2.0\"", "DTDVERSION=\"3.0\"");
    let response = exchange(agent.http, &Call::small("1").body(body));
    assert_refused(&response, 501, Some("unsupported-dtd-version"));
}

#[test]
fn a_cimbatch_header_is_multiple_requests_unsupported() {
    let agent = anonymous();
    let call = Call::small("1").header("CIMBatch", "CIMBatch");
    assert_refused(
        &exchange(agent.http, &call),
        501,
        Some("multiple-requests-unsupported"),
    );
}

#[test]
fn a_multireq_body_is_multiple_requests_unsupported() {
    let agent = anonymous();
    let call = "<IMETHODCALL NAME=\"EnumerateClassNames\"><LOCALNAMESPACEPATH>\
                <NAMESPACE NAME=\"root\"/><NAMESPACE NAME=\"interop\"/></LOCALNAMESPACEPATH>\
                </IMETHODCALL>";
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><CIM CIMVERSION=\"2.0\" DTDVERSION=\"2.0\">\
         <MESSAGE ID=\"1\" PROTOCOLVERSION=\"1.0\"><MULTIREQ><SIMPLEREQ>{call}</SIMPLEREQ>\
         <SIMPLEREQ>{call}</SIMPLEREQ></MULTIREQ></MESSAGE></CIM>"
    );
    let response = exchange(agent.http, &Call::small("1").body(body));
    assert_refused(&response, 501, Some("multiple-requests-unsupported"));
}

#[test]
fn a_content_type_other_than_xml_in_utf8_is_415() {
    let agent = anonymous();
    for content_type in [
        "text/plain",
        "application/json",
        "application/xml; charset=iso-8859-1",
    ] {
        let call = Call::small("1").header("Content-Type", content_type);
        let response = exchange(agent.http, &call);
        assert_eq!(response.status, 415, "content type {content_type}");
    }
    // text/xml is as good as application/xml.
    let call = Call::small("2").header("Content-Type", "text/xml; charset=utf-8");
    assert_eq!(message(&exchange(agent.http, &call)).id, "2");
}

#[test]
fn get_is_405_with_allow() {
    let agent = anonymous();
    let mut connection = Connection::plain(agent.http).unwrap();
    let response = connection
        .request(&raw_http::request("GET", "/cimom", "localhost", &[], None))
        .unwrap();
    assert_eq!(response.status, 405, "{:?}", response.headers);
    let allow = response.header("Allow").unwrap_or_default();
    let methods: Vec<&str> = allow.split(',').map(str::trim).collect();
    assert!(
        methods.contains(&"POST") && methods.contains(&"M-POST"),
        "Allow: {allow}"
    );
    for method in ["PUT", "DELETE", "OPTIONS"] {
        let request = raw_http::request(method, "/cimom", "localhost", &[], Some(b""));
        let response = connection.request(&request).unwrap();
        assert_eq!(response.status, 405, "{method}");
        assert!(response.header("Allow").is_some(), "{method}");
    }
}

#[test]
fn a_body_over_body_bytes_max_is_413() {
    let agent = start(&["--danger-allow-anonymous", "--body-bytes-max", "1024"]);
    // Under the limit: served.
    let small = Call::small("1");
    assert!(small.body.len() < 1024);
    assert_eq!(message(&exchange(agent.http, &small)).id, "1");
    // Over it with Content-Length: refused (padding after the root element is legal XML).
    let mut padded = small.body;
    padded.resize(4096, b' ');
    let large = Call::small("2").body(padded.clone());
    let response = exchange(agent.http, &large);
    assert_eq!(response.status, 413, "{:?}", response.headers);
    // Over it in chunks (no Content-Length to refuse up front): refused too.
    let mut chunked = format!(
        "POST /cimom HTTP/1.1\r\nHost: localhost\r\n{}Transfer-Encoding: chunked\r\n\r\n",
        large
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect::<String>()
    )
    .into_bytes();
    for piece in padded.chunks(512) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let mut connection = Connection::plain(agent.http).unwrap();
    let response = connection.request(&chunked).unwrap();
    assert_eq!(response.status, 413, "{:?}", response.headers);
    // Announced over it with Expect: 100-continue: refused at once, never asked to send.
    let expecting = format!(
        "POST /cimom HTTP/1.1\r\nHost: localhost\r\n{}Expect: 100-continue\r\n\
         Content-Length: 4096\r\n\r\n",
        large
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect::<String>()
    );
    let mut connection = Connection::plain(agent.http).unwrap();
    connection.send(expecting.as_bytes()).unwrap();
    let response = connection.read_response().unwrap();
    assert_eq!(response.status, 413, "{:?}", response.headers);
    // The body is not read: the connection closes, and the response says so.
    assert_eq!(response.header("Connection"), Some("close"));
    connection
        .wait_closed(CLOSE_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
}

/// A request refused before its body is read (a wrong password here) has its body read all
/// the same, so that its connection stays open and the refusal is not lost to a reset; one
/// whose client waits to be asked for its body is not asked, and is told the connection
/// closes.
#[test]
fn a_request_refused_before_its_body_is_read_keeps_its_connection() {
    let folder = tempfile::tempdir().unwrap();
    let users = folder.path().join("users");
    cimguard_tests::agent::users_file(&users, &[("operator", "MONITOR", "right horse")])
        .unwrap_or_else(|e| panic!("{e}"));
    let agent = start(&["--users-file", users.to_str().unwrap()]);
    let wrong = raw_http::basic("operator", "wrong horse");
    // A megabyte: far more than the socket buffers hold, which a reset would lose.
    let mut padded = Call::small("1").body;
    padded.resize(1 << 20, b' ');
    let mut connection = Connection::plain(agent.http).unwrap();
    let refused = connection
        .request(
            &Call::small("1")
                .body(padded)
                .header("Authorization", &wrong)
                .bytes(),
        )
        .unwrap();
    assert_eq!(refused.status, 401, "{:?}", refused.headers);
    assert_eq!(refused.header("Connection"), None, "{:?}", refused.headers);
    let right =
        Call::small("2").header("Authorization", &raw_http::basic("operator", "right horse"));
    assert_eq!(
        message(&connection.request(&right.bytes()).unwrap()).id,
        "2"
    );
    // With Expect: 100-continue, only the head is sent until the server asks.
    let expecting = Call::small("3")
        .header("Authorization", &wrong)
        .header("Expect", "100-continue")
        .bytes();
    let head_end = expecting
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    let mut connection = Connection::plain(agent.http).unwrap();
    connection.send(&expecting[..head_end]).unwrap();
    let response = connection.read_response().unwrap();
    assert_eq!(response.status, 401, "{:?}", response.headers);
    assert_eq!(response.header("Connection"), Some("close"));
    connection
        .wait_closed(CLOSE_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn xml_deeper_than_xml_depth_max_is_request_not_valid() {
    // CIM > MESSAGE > SIMPLEREQ > IMETHODCALL > LOCALNAMESPACEPATH > NAMESPACE is depth 6.
    let agent = start(&["--danger-allow-anonymous", "--xml-depth-max", "6"]);
    assert_eq!(message(&exchange(agent.http, &Call::small("1"))).id, "1");
    // IPARAMVALUE > INSTANCENAME > KEYBINDING > KEYVALUE reaches depth 8.
    let params = "<IPARAMVALUE NAME=\"InstanceName\"><INSTANCENAME CLASSNAME=\"CIM_Namespace\">\
                  <KEYBINDING NAME=\"Name\"><KEYVALUE VALUETYPE=\"string\">root/cimv2</KEYVALUE>\
                  </KEYBINDING></INSTANCENAME></IPARAMVALUE>";
    let call = Call::intrinsic("2", "GetInstance", "root/interop", params);
    let response = exchange(agent.http, &call);
    assert_refused(&response, 400, Some("request-not-valid"));
    let detail = response.header("PGErrorDetail").unwrap_or_default();
    assert!(detail.contains("depth"), "PGErrorDetail: {detail}");
}

/// The deepest nesting an agent may be configured for (256) is decoded without exhausting
/// the stack of the thread that decodes it (about 900 levels once aborted the agent); a
/// deeper one is refused at start.
#[test]
fn the_deepest_nesting_allowed_is_decoded_and_a_deeper_limit_is_refused() {
    let program = cimguard_tests::agent::binary("cmwbemd").unwrap_or_else(|e| panic!("{e}"));
    let refused = std::process::Command::new(&program)
        .args(["--xml-depth-max", "257", "--http", "127.0.0.1:0"])
        .output()
        .expect("cmwbemd runs");
    assert!(
        !refused.status.success()
            && String::from_utf8_lossy(&refused.stderr).contains("from 1 to 256"),
        "{refused:?}"
    );
    let agent = start(&["--danger-allow-anonymous", "--xml-depth-max", "256"]);
    // GetInstance of a reference key holding a reference key ...: 82 instance names of
    // three levels each under the 5 of the request, depth 251.
    let mut name = "<INSTANCENAME CLASSNAME=\"CIM_Namespace\"><KEYBINDING NAME=\"Name\">\
                    <KEYVALUE VALUETYPE=\"string\">x</KEYVALUE></KEYBINDING></INSTANCENAME>"
        .to_owned();
    for _ in 0..81 {
        name = format!(
            "<INSTANCENAME CLASSNAME=\"CIM_Namespace\"><KEYBINDING NAME=\"Name\">\
             <VALUE.REFERENCE>{name}</VALUE.REFERENCE></KEYBINDING></INSTANCENAME>"
        );
    }
    let params = format!("<IPARAMVALUE NAME=\"InstanceName\">{name}</IPARAMVALUE>");
    let call = Call::intrinsic("2", "GetInstance", "root/interop", &params);
    let response = exchange(agent.http, &call);
    assert_ne!(
        response.header("CIMError"),
        Some("request-not-valid"),
        "{:?}",
        response.headers
    );
    // Answered (not found, or a bad key), and the agent still serves.
    assert!(imethod(&message(&response)).result.is_err());
    assert_eq!(message(&exchange(agent.http, &Call::small("3"))).id, "3");
}

/// An association operation's ObjectName, or a pull operation's InstanceName, that is an
/// instance name without keys names no instance: CIM_ERR_INVALID_PARAMETER (sblim wbemcli
/// sends one for a class path, pywbem for a CIMInstanceName without keys; neither could read
/// the class paths of the class's associations), while the class name itself is answered.
#[test]
fn an_instance_name_without_keys_is_invalid_parameter() {
    let agent = anonymous();
    let call = |id: &str, method: &str, param: &str, name: &str| {
        // The association: AssocClass of Associators, ResultClass of References.
        let filter = if method.contains("Associator") {
            "AssocClass"
        } else {
            "ResultClass"
        };
        let params = format!(
            "<IPARAMVALUE NAME=\"{param}\">{name}</IPARAMVALUE>\
             <IPARAMVALUE NAME=\"{filter}\"><CLASSNAME NAME=\"CIM_ElementConformsToProfile\"/>\
             </IPARAMVALUE>"
        );
        let call = Call::intrinsic(id, method, "root/interop", &params);
        message(&exchange(agent.http, &call))
    };
    let keyless = "<INSTANCENAME CLASSNAME=\"CIM_RegisteredProfile\"/>";
    for method in [
        "AssociatorNames",
        "Associators",
        "ReferenceNames",
        "References",
    ] {
        let refused = call("1", method, "ObjectName", keyless);
        let result = &imethod(&refused).result;
        assert!(
            matches!(result, Err(e) if e.code == 4),
            "{method}: {result:?}"
        );
        let class = call(
            "2",
            method,
            "ObjectName",
            "<CLASSNAME NAME=\"CIM_RegisteredProfile\"/>",
        );
        assert!(!returned(&class).is_empty(), "{method} of the class");
    }
    for method in ["OpenAssociatorInstancePaths", "OpenReferenceInstances"] {
        let refused = call("3", method, "InstanceName", keyless);
        let result = &imethod(&refused).result;
        assert!(
            matches!(result, Err(e) if e.code == 4),
            "{method}: {result:?}"
        );
    }
}

/// GetProperty answers one property's value, nothing for NULL, CIM_ERR_NO_SUCH_PROPERTY for
/// a name the class lacks; SetProperty of a value that does not parse as the property's type
/// is CIM_ERR_TYPE_MISMATCH.
#[test]
fn get_property_and_set_property() {
    let agent = anonymous();
    let profile = "<IPARAMVALUE NAME=\"InstanceName\"><INSTANCENAME \
                   CLASSNAME=\"CIM_RegisteredProfile\"><KEYBINDING NAME=\"InstanceID\">\
                   <KEYVALUE VALUETYPE=\"string\">DMTF+Indications+1.2.2</KEYVALUE></KEYBINDING>\
                   </INSTANCENAME></IPARAMVALUE>";
    let get = |id: &str, name: &str| {
        let params = format!(
            "{profile}<IPARAMVALUE NAME=\"PropertyName\"><VALUE>{name}</VALUE></IPARAMVALUE>"
        );
        let call = Call::intrinsic(id, "GetProperty", "root/interop", &params);
        message(&exchange(agent.http, &call))
    };
    let named = get("1", "registeredname");
    assert_eq!(
        returned(&named),
        [Data::Untyped(cim_schema::xml::Untyped::Scalar(
            "Indications".into()
        ))]
    );
    assert!(returned(&get("2", "Caption")).is_empty());
    let missing = get("3", "NoSuchProperty");
    assert!(
        matches!(&imethod(&missing).result, Err(e) if e.code == 12),
        "{missing:?}"
    );
    let params = format!(
        "{profile}<IPARAMVALUE NAME=\"PropertyName\"><VALUE>RegisteredOrganization</VALUE>\
         </IPARAMVALUE><IPARAMVALUE NAME=\"NewValue\"><VALUE>not a number</VALUE></IPARAMVALUE>"
    );
    let call = Call::intrinsic("4", "SetProperty", "root/interop", &params);
    let refused = message(&exchange(agent.http, &call));
    assert!(
        matches!(&imethod(&refused).result, Err(e) if e.code == 13),
        "{refused:?}"
    );
}

/// An instance name giving one key twice (in any case) is a bad parameter, whether or not
/// either value would name an instance.
#[test]
fn an_instance_name_with_a_key_given_twice_is_invalid_parameter() {
    let agent = anonymous();
    let key = |name: &str, value: &str| {
        format!("<KEYBINDING NAME=\"{name}\"><KEYVALUE VALUETYPE=\"string\">{value}</KEYVALUE></KEYBINDING>")
    };
    for (id, keys) in [
        ("1", key("Name", "root/cimv2")),
        ("2", key("Name", "root/cimv2") + &key("NAME", "root/cimv2")),
        ("3", key("Name", "root/cimv2") + &key("name", "nowhere")),
    ] {
        let params = format!(
            "<IPARAMVALUE NAME=\"InstanceName\"><INSTANCENAME CLASSNAME=\"CIM_Namespace\">\
             {keys}</INSTANCENAME></IPARAMVALUE>"
        );
        let call = Call::intrinsic(id, "GetInstance", "root/interop", &params);
        let response = message(&exchange(agent.http, &call));
        let result = &imethod(&response).result;
        if id == "1" {
            // One key alone: the path lacks the other keys of CIM_Namespace, and so names
            // no instance.
            assert!(
                matches!(result, Err(e) if e.code == 4
                    && e.description.as_deref().unwrap_or_default().contains("lacks the keys")),
                "{result:?}"
            );
        } else {
            let Err(error) = result else {
                panic!("{id}: {result:?}")
            };
            assert_eq!(error.code, 4, "CIM_ERR_INVALID_PARAMETER: {error:?}");
            let description = error.description.as_deref().unwrap_or_default();
            assert!(description.contains("twice"), "{description}");
        }
    }
}

#[test]
fn xml_with_more_elements_than_xml_elements_max_is_request_not_valid() {
    // The small request has 7 elements; four boolean parameters add 8.
    let agent = start(&["--danger-allow-anonymous", "--xml-elements-max", "10"]);
    assert_eq!(message(&exchange(agent.http, &Call::small("1"))).id, "1");
    let response = exchange(agent.http, &Call::large("2"));
    assert_refused(&response, 400, Some("request-not-valid"));
    let detail = response.header("PGErrorDetail").unwrap_or_default();
    assert!(detail.contains("element"), "PGErrorDetail: {detail}");
}

/// OpenEnumerateInstances of CIM_Namespace in root/interop returning nothing yet.
fn open_namespaces(id: &str) -> Call {
    Call::intrinsic(
        id,
        "OpenEnumerateInstances",
        "root/interop",
        "<IPARAMVALUE NAME=\"ClassName\"><CLASSNAME NAME=\"CIM_Namespace\"/></IPARAMVALUE>\
         <IPARAMVALUE NAME=\"MaxObjectCount\"><VALUE>0</VALUE></IPARAMVALUE>",
    )
}

/// The EnumerationContext a pull operation returned.
fn enumeration_context(message: &Message) -> String {
    let response = imethod(message);
    let Ok(result) = &response.result else {
        panic!("{} failed: {:?}", response.name, response.result)
    };
    result
        .params
        .iter()
        .find(|param| param.name.matches("EnumerationContext"))
        .and_then(|param| match &param.value {
            Data::Untyped(text) => text.as_str().map(str::to_owned),
            Data::Value(value) => value.as_str().map(str::to_owned),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no EnumerationContext in {result:?}"))
}

#[test]
fn contexts_beyond_open_contexts_per_principal_max_are_server_limits_exceeded() {
    let agent = start(&[
        "--danger-allow-anonymous",
        "--open-contexts-per-principal-max",
        "1",
    ]);
    let first = message(&exchange(agent.http, &open_namespaces("1")));
    let context = enumeration_context(&first);
    let second = message(&exchange(agent.http, &open_namespaces("2")));
    match &imethod(&second).result {
        Err(error) => assert_eq!(error.code, 27, "CIM_ERR_SERVER_LIMITS_EXCEEDED: {error:?}"),
        Ok(result) => panic!("a second context opened: {result:?}"),
    }
    // Closing the first makes room again.
    let close = Call::intrinsic(
        "3",
        "CloseEnumeration",
        "root/interop",
        &format!("<IPARAMVALUE NAME=\"EnumerationContext\"><VALUE>{context}</VALUE></IPARAMVALUE>"),
    );
    assert!(imethod(&message(&exchange(agent.http, &close)))
        .result
        .is_ok());
    let third = message(&exchange(agent.http, &open_namespaces("4")));
    enumeration_context(&third);
}

/// A client that stops reading its responses loses its connection after the send timeout,
/// and with it the slot it held: with one connection allowed, another client is served
/// again. (Without the timeout the slot and the response were held for ever.)
#[test]
fn a_client_that_stops_reading_loses_its_connection_after_the_send_timeout() {
    let agent = start(&[
        "--danger-allow-anonymous",
        "--send-timeout",
        "2",
        "--connections-max",
        "1",
    ]);
    let mut stalled = Connection::plain(agent.http).expect("connect");
    // Far more than the sockets' buffers hold (each response is over 256 KiB), never read.
    let requests: Vec<u8> = (0..64)
        .flat_map(|i| Call::large(&i.to_string()).header("TE", "trailers").bytes())
        .collect();
    stalled.send(&requests).expect("the requests are sent");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let served = Connection::plain(agent.http)
            .and_then(|mut other| other.request(&Call::small("x").bytes()))
            .is_ok_and(|response| response.status == 200);
        if served {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stalled client still holds the only connection"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Large requests are decoded off the runtime's workers: with two workers busy decoding two
/// 16 MiB requests (seconds each here), a small request on another connection is answered
/// before either of them.
#[test]
fn a_small_request_is_answered_while_large_ones_are_decoded() {
    let agent = Agent::start_env(
        &["--danger-allow-anonymous"],
        &[("TOKIO_WORKER_THREADS", "2")],
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let values = "<VALUE>a</VALUE>".repeat(1_000_000);
    let large = Call::intrinsic(
        "big",
        "EnumerateInstanceNames",
        "root/interop",
        &format!(
            "<IPARAMVALUE NAME=\"ClassName\"><CLASSNAME NAME=\"CIM_Namespace\"/></IPARAMVALUE>\
             <IPARAMVALUE NAME=\"Unknown\"><VALUE.ARRAY>{values}</VALUE.ARRAY></IPARAMVALUE>"
        ),
    );
    let order = std::sync::Mutex::new(Vec::new());
    let (sent, bodies_in) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        for k in 0..2 {
            let (large, order, sent) = (&large, &order, sent.clone());
            scope.spawn(move || {
                let mut connection = Connection::plain(agent.http).expect("connect");
                // Written whole: the agent has read all but what the sockets buffer.
                connection
                    .send(&large.bytes())
                    .expect("the large request is sent");
                sent.send(()).expect("the test waits");
                let answered = connection.read_response().expect("an answer");
                order
                    .lock()
                    .unwrap()
                    .push(format!("large {k}: {}", answered.status));
            });
        }
        for _ in 0..2 {
            bodies_in
                .recv_timeout(Duration::from_secs(60))
                .expect("the large requests are sent");
        }
        // One after another while the large ones are decoded (seconds each here): every
        // one is answered before either large one.
        for i in 0..5 {
            let small = exchange(agent.http, &Call::small(&i.to_string()));
            order
                .lock()
                .unwrap()
                .push(format!("small: {}", small.status));
        }
    });
    let order = order.into_inner().unwrap();
    assert_eq!(order.len(), 7);
    assert!(order[..5].iter().all(|o| o == "small: 200"), "{order:?}");
    assert!(order[5..].iter().all(|o| o.ends_with(": 200")), "{order:?}");
}

/// What a request quotes back in an error is clipped: a 1 MB element name is refused with
/// a PGErrorDetail header of about a kilobyte (a client refuses a header line over 64 KiB,
/// and each such answer once cost the agent 6 times the request), and a 1 MB forged
/// enumeration context with an ERROR description of about a kilobyte.
#[test]
fn what_an_error_quotes_of_a_request_is_clipped() {
    let agent = anonymous();
    let name = "A".repeat(1 << 20);
    let body = imethod_message("1", "EnumerateClassNames", "root/interop", "")
        .replace("<SIMPLEREQ>", &format!("<SIMPLEREQ><{name}/>"));
    let refused = exchange(agent.http, &Call::small("1").body(body));
    assert_refused(&refused, 400, Some("request-not-valid"));
    let detail = refused.header("PGErrorDetail").unwrap_or_default();
    assert!(
        (100..4096).contains(&detail.len()) && detail.contains("bytes%20in%20all"),
        "{} bytes: {}",
        detail.len(),
        &detail[..detail.len().min(300)]
    );
    let forged = "x".repeat(1 << 20);
    let pull = Call::intrinsic(
        "2",
        "PullInstancesWithPath",
        "root/interop",
        &format!(
            "<IPARAMVALUE NAME=\"EnumerationContext\"><VALUE>{forged}</VALUE></IPARAMVALUE>\
             <IPARAMVALUE NAME=\"MaxObjectCount\"><VALUE>1</VALUE></IPARAMVALUE>"
        ),
    );
    let answered = exchange(agent.http, &pull);
    assert!(answered.body.len() < 8192, "{} bytes", answered.body.len());
    match &imethod(&message(&answered)).result {
        Err(error) => {
            assert_eq!(error.code, 21, "{error:?}");
            let description = error.description.as_deref().unwrap_or_default();
            assert!(description.len() < 2048, "{} bytes", description.len());
        }
        Ok(result) => panic!("a forged context was taken: {result:?}"),
    }
}

// ------------------------------------------------------------------ M-POST

#[test]
fn m_post_with_man_and_prefixed_headers_is_served() {
    let agent = anonymous();
    let mut call = Call::small("73");
    call.verb = "M-POST".into();
    call.headers = vec![
        (
            "Content-Type".into(),
            "application/xml; charset=\"utf-8\"".into(),
        ),
        ("Man".into(), format!("{MAPPING_URI} ; ns=73")),
        ("73-CIMProtocolVersion".into(), "1.0".into()),
        ("73-CIMOperation".into(), "MethodCall".into()),
        ("73-CIMMethod".into(), "EnumerateClassNames".into()),
        ("73-CIMObject".into(), "root/interop".into()),
    ];
    let response = exchange(agent.http, &call);
    // Answered within the extension (DSP0200, RFC 2774 5.1): Ext, no-cache, the declaration
    // again, and the CIM headers under the request's prefix.
    assert_eq!(response.status, 200, "{:?}", response.headers);
    assert_eq!(response.header("73-CIMOperation"), Some("MethodResponse"));
    assert_eq!(response.header("CIMOperation"), None);
    assert_eq!(response.header("Ext"), Some(""));
    assert_eq!(response.header("Cache-Control"), Some("no-cache"));
    assert_eq!(
        response.header("Man"),
        Some(&*format!("{MAPPING_URI}; ns=73"))
    );
    let served = decode(&plain_body(&response), &Limits::DEFAULT).unwrap();
    assert_eq!(served.id, "73");
    assert_eq!(imethod(&served).name.as_str(), "EnumerateClassNames");
    let names = returned(&served);
    assert!(!names.is_empty());
    assert!(names.iter().all(|data| matches!(data, Data::ClassName(_))));
    // The URI may be quoted and the spaces left out.
    let quoted = call
        .clone()
        .header("Man", &format!("\"{MAPPING_URI}\";ns=73"));
    let response = exchange(agent.http, &quoted);
    assert_eq!(response.header("73-CIMOperation"), Some("MethodResponse"));
    assert_eq!(
        decode(&plain_body(&response), &Limits::DEFAULT).unwrap().id,
        "73"
    );
    // The prefix counts: a prefixed header disagreeing with the body is still a mismatch,
    // told under the prefix.
    let mismatched = call.header("73-CIMObject", "root/cimv2");
    let response = exchange(agent.http, &mismatched);
    assert_eq!(response.status, 400, "{:?}", response.headers);
    assert_eq!(response.header("73-CIMError"), Some("header-mismatch"));
    assert_eq!(response.header("Ext"), Some(""));
}

#[test]
fn m_post_without_man_is_510() {
    let agent = anonymous();
    let mut call = Call::small("1");
    call.verb = "M-POST".into();
    let response = exchange(agent.http, &call);
    assert_eq!(response.status, 510, "{:?}", response.headers);
    // A Man header naming another extension is no better.
    let call = call.header("Man", "http://example.invalid/other ; ns=73");
    assert_eq!(exchange(agent.http, &call).status, 510);
}

// ------------------------------------------------------------------ responses

#[test]
fn a_void_operation_succeeds_without_ireturnvalue_and_echoes_the_message_id() {
    let agent = anonymous();
    let opened = message(&exchange(agent.http, &open_namespaces("open-4711")));
    assert_eq!(opened.id, "open-4711");
    assert!(
        returned(&opened).is_empty(),
        "MaxObjectCount=0 returns nothing"
    );
    let context = enumeration_context(&opened);

    let close = Call::intrinsic(
        "close-4712",
        "CloseEnumeration",
        "root/interop",
        &format!("<IPARAMVALUE NAME=\"EnumerationContext\"><VALUE>{context}</VALUE></IPARAMVALUE>"),
    );
    let response = exchange(agent.http, &close);
    let text = response.body_text();
    let closed = message(&response);
    assert_eq!(closed.id, "close-4712");
    assert_eq!(imethod(&closed).name.as_str(), "CloseEnumeration");
    match &imethod(&closed).result {
        Ok(result) => {
            assert_eq!(result.return_value, None, "{text}");
            assert!(result.params.is_empty(), "{text}");
        }
        Err(error) => panic!("CloseEnumeration failed: {error:?}"),
    }
    assert!(!text.contains("IRETURNVALUE"), "{text}");

    // Closed means gone: a second close is a CIM error, carried in a 200 response.
    let again = message(&exchange(agent.http, &close));
    match &imethod(&again).result {
        Err(error) => assert_eq!(error.code, 21, "CIM_ERR_INVALID_ENUMERATION_CONTEXT"),
        Ok(result) => panic!("a closed context closed again: {result:?}"),
    }
}

#[test]
fn a_failing_delete_instance_is_a_cim_error_in_a_200_response() {
    let agent = anonymous();
    let params = "<IPARAMVALUE NAME=\"InstanceName\"><INSTANCENAME CLASSNAME=\"CIM_Namespace\">\
                  <KEYBINDING NAME=\"Name\"><KEYVALUE VALUETYPE=\"string\">no/such/namespace\
                  </KEYVALUE></KEYBINDING></INSTANCENAME></IPARAMVALUE>";
    let call = Call::intrinsic("del-9", "DeleteInstance", "root/interop", params);
    let deleted = message(&exchange(agent.http, &call));
    assert_eq!(deleted.id, "del-9");
    assert_eq!(imethod(&deleted).name.as_str(), "DeleteInstance");
    let error = imethod(&deleted)
        .result
        .as_ref()
        .expect_err("deleting what does not exist fails");
    assert!((1..=28).contains(&error.code), "{error:?}");
}

// ------------------------------------------------------------------ chunking and gzip

#[test]
fn a_large_response_is_chunked_with_the_cimstatuscode_trailer_when_te_trailers() {
    let agent = anonymous();
    let chunked = exchange(agent.http, &Call::large("c1").header("TE", "trailers"));
    assert!(
        chunked.chunked,
        "a {}-byte response was not chunked; headers {:?}",
        chunked.body.len(),
        chunked.headers
    );
    assert!(
        chunked.body.len() > 256 * 1024,
        "{} bytes",
        chunked.body.len()
    );
    assert!(chunked.chunks > 1, "{} chunks", chunked.chunks);
    assert_eq!(chunked.header("Content-Length"), None);
    let announced: Vec<String> = chunked
        .header("Trailer")
        .unwrap_or_default()
        .split(',')
        .map(|field| field.trim().to_ascii_lowercase())
        .collect();
    assert!(
        announced.contains(&"cimstatuscode".to_owned())
            && announced.contains(&"cimstatuscodedescription".to_owned()),
        "Trailer: {announced:?}"
    );
    // A success may end without trailers; if it sends CIMStatusCode, it must say 0.
    if let Some(code) = chunked.trailer("CIMStatusCode") {
        assert_eq!(code, "0", "trailers {:?}", chunked.trailers);
    }
    let streamed = message(&chunked);
    assert_eq!(streamed.id, "c1");
    let classes = returned(&streamed);
    assert!(
        classes.iter().all(|data| matches!(data, Data::Class(_))),
        "only classes"
    );

    // Without TE the same response comes whole, with Content-Length, and decodes the same.
    let whole = exchange(agent.http, &Call::large("c1"));
    assert!(!whole.chunked);
    assert_eq!(
        whole.header("Content-Length"),
        Some(whole.body.len().to_string().as_str())
    );
    assert_eq!(whole.header("Trailer"), None);
    assert_eq!(message(&whole), streamed);
    eprintln!(
        "{} classes, {} bytes in {} chunks",
        classes.len(),
        chunked.body.len(),
        chunked.chunks
    );
}

#[test]
fn a_response_under_the_stream_threshold_has_content_length_even_with_te_trailers() {
    let agent = anonymous();
    // The classes with qualifiers but without class origins and inherited members.
    let params = [
        flag("DeepInheritance", true),
        flag("IncludeQualifiers", true),
    ]
    .concat();
    let call =
        Call::intrinsic("s1", "EnumerateClasses", "root/cimv2", &params).header("TE", "trailers");
    let response = exchange(agent.http, &call);
    eprintln!(
        "EnumerateClasses root/cimv2 DeepInheritance IncludeQualifiers: {} bytes",
        response.body.len()
    );
    if response.body.len() < 256 * 1024 {
        assert!(!response.chunked, "{:?}", response.headers);
        assert!(response.header("Content-Length").is_some());
    }
    assert!(!returned(&message(&response)).is_empty());
}

#[test]
fn a_large_response_is_gzipped_when_the_client_accepts_gzip() {
    let agent = anonymous();
    let response = exchange(
        agent.http,
        &Call::large("g1").header("Accept-Encoding", "gzip"),
    );
    assert_eq!(response.header("Content-Encoding"), Some("gzip"));
    assert!(!response.chunked);
    let plain = gunzip(&response.body);
    assert!(
        response.body.len() * 2 < plain.len(),
        "{} bytes gzipped from {}",
        response.body.len(),
        plain.len()
    );
    let gzipped = message(&response);
    assert_eq!(gzipped.id, "g1");
    assert_eq!(gzipped, message(&exchange(agent.http, &Call::large("g1"))));
}

#[test]
fn small_responses_and_clients_not_accepting_gzip_get_no_gzip() {
    let agent = anonymous();
    // Small: an error response, well under a kilobyte.
    let missing = Call::intrinsic(
        "1",
        "GetClass",
        "root/cimv2",
        "<IPARAMVALUE NAME=\"ClassName\"><CLASSNAME NAME=\"No_Such_Class\"/></IPARAMVALUE>",
    )
    .header("Accept-Encoding", "gzip");
    let response = exchange(agent.http, &missing);
    assert!(response.body.len() < 1024, "{} bytes", response.body.len());
    assert_eq!(response.header("Content-Encoding"), None);
    assert!(imethod(&message(&response)).result.is_err());
    // Large, but gzip not offered, refused with q=0, or only other codings offered.
    for accept in [
        None,
        Some("gzip;q=0"),
        Some("gzip; q=0.0, identity"),
        Some("gzip;Q=0"),
        Some("br"),
    ] {
        let mut call = Call::large("2");
        if let Some(accept) = accept {
            call = call.header("Accept-Encoding", accept);
        }
        let response = exchange(agent.http, &call);
        assert_eq!(
            response.header("Content-Encoding"),
            None,
            "Accept-Encoding: {accept:?}"
        );
        assert!(!returned(&message(&response)).is_empty());
    }
}

#[test]
fn a_large_response_can_be_chunked_and_gzipped_together() {
    let agent = anonymous();
    let call = Call::large("cg")
        .header("TE", "trailers")
        .header("Accept-Encoding", "gzip");
    let response = exchange(agent.http, &call);
    assert!(response.chunked, "{:?}", response.headers);
    assert_eq!(response.header("Content-Encoding"), Some("gzip"));
    let streamed = message(&response);
    assert_eq!(streamed.id, "cg");
    assert_eq!(streamed, message(&exchange(agent.http, &Call::large("cg"))));
}

// ------------------------------------------------------------------ connections

#[test]
fn several_requests_share_one_keep_alive_connection() {
    let agent = anonymous();
    let mut connection = Connection::plain(agent.http).unwrap();
    for id in ["k1", "k2", "k3"] {
        let response = connection.request(&Call::small(id).bytes()).unwrap();
        assert_eq!(message(&response).id, id);
        assert_ne!(
            response
                .header("Connection")
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("close")
        );
    }
    // Errors don't cost the connection either.
    let refused = connection
        .request(&Call::small("k4").without("CIMOperation").bytes())
        .unwrap();
    assert_refused(&refused, 400, Some("unsupported-operation"));
    // A large chunked response, then a small one after it.
    let large = connection
        .request(&Call::large("k5").header("TE", "trailers").bytes())
        .unwrap();
    assert!(large.chunked);
    assert_eq!(message(&large).id, "k5");
    let response = connection.request(&Call::small("k6").bytes()).unwrap();
    assert_eq!(message(&response).id, "k6");
}

#[test]
fn a_connection_sending_half_a_header_is_closed_after_the_header_read_timeout() {
    let agent = start(&["--danger-allow-anonymous", "--header-read-timeout", "1"]);
    // Before connecting: the server's timer cannot have started earlier.
    let started = Instant::now();
    let mut connection = Connection::plain(agent.http).unwrap();
    connection
        .send(b"POST /cimom HTTP/1.1\r\nHost: localhost\r\nCIMOperation: Meth")
        .unwrap();
    let received = connection
        .wait_closed(CLOSE_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900),
        "closed after {elapsed:?}, before the timeout"
    );
    // Whatever the server said before closing (a 408 or nothing), it served nothing.
    let text = String::from_utf8_lossy(&received);
    assert!(!text.contains("MethodResponse"), "{text}");
    // The server still serves others.
    assert_eq!(message(&exchange(agent.http, &Call::small("2"))).id, "2");
}

#[test]
fn a_chunked_request_body_is_served() {
    let agent = anonymous();
    let call = Call::small("chunked-request");
    let mut bytes = format!(
        "POST /cimom HTTP/1.1\r\nHost: localhost\r\n{}Transfer-Encoding: chunked\r\n\r\n",
        call.headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect::<String>()
    )
    .into_bytes();
    for piece in call.body.chunks(100) {
        bytes.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        bytes.extend_from_slice(piece);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"0\r\n\r\n");
    let mut connection = Connection::plain(agent.http).unwrap();
    let response = connection.request(&bytes).unwrap();
    assert_eq!(message(&response).id, "chunked-request");
}

#[test]
fn a_header_trickling_in_byte_by_byte_is_cut_off_at_the_header_read_timeout() {
    let agent = start(&["--danger-allow-anonymous", "--header-read-timeout", "1"]);
    // Before connecting: the server's timer cannot have started earlier.
    let started = Instant::now();
    let mut connection = Connection::plain(agent.http).unwrap();
    let header =
        b"POST /cimom HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut closed = false;
    for byte in header.iter().cycle() {
        // One byte every 100 ms: each arrives well within any per-read timeout, the whole
        // header never does. A write fails once the server has closed.
        if connection.send(&[*byte]).is_err() {
            closed = true;
            break;
        }
        if connection.wait_closed(Duration::from_millis(100)).is_ok() {
            closed = true;
            break;
        }
        assert!(
            started.elapsed() < CLOSE_TIMEOUT,
            "a trickling header kept the connection open for {CLOSE_TIMEOUT:?}"
        );
    }
    assert!(closed);
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_header_read_timeout() {
    let agent = start(&["--danger-allow-anonymous", "--header-read-timeout", "1"]);
    let mut connection = Connection::plain(agent.http).unwrap();
    // Before the request: the server's timer for the next one starts after it has read
    // this one, perhaps before its answer reaches us.
    let started = Instant::now();
    let response = connection.request(&Call::small("1").bytes()).unwrap();
    assert_eq!(message(&response).id, "1");
    let received = connection
        .wait_closed(CLOSE_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let agent = anonymous();
    let mut connection = Connection::plain(agent.http).unwrap();
    let mut bytes = Call::small("p1").bytes();
    bytes.extend(Call::large("p2").header("TE", "trailers").bytes());
    bytes.extend(Call::small("p3").bytes());
    connection.send(&bytes).unwrap();
    for id in ["p1", "p2", "p3"] {
        let response = connection.read_response().unwrap();
        assert_eq!(message(&response).id, id);
    }
}

#[test]
fn an_oversized_request_head_is_431_and_the_connection_closes() {
    let agent = anonymous();
    let huge = "a".repeat(1024 * 1024);
    let call = Call::small("1").header("X-Padding", &huge);
    let mut connection = Connection::plain(agent.http).unwrap();
    // The server may answer and close before it has read all of it: a failed write is fine.
    let _ = connection.send(&call.bytes());
    let response = connection.read_response().unwrap();
    assert_eq!(response.status, 431, "{:?}", response.headers);
    connection
        .wait_closed(CLOSE_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    // So is a head of many small fields.
    let mut call = Call::small("2");
    for index in 0..200 {
        call = call.header(&format!("X-Field-{index}"), "a");
    }
    assert_eq!(exchange(agent.http, &call).status, 431);
    assert_eq!(message(&exchange(agent.http, &Call::small("3"))).id, "3");
}

/// The head of a request announcing `Content-Length: 1000`, and the first bytes of its body.
fn stalled_request() -> Vec<u8> {
    let call = Call::small("stalled");
    let mut bytes = b"POST /cimom HTTP/1.1\r\nHost: localhost\r\n".to_vec();
    for (name, value) in &call.headers {
        bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    bytes.extend_from_slice(b"Content-Length: 1000\r\n\r\n<?xml");
    bytes
}

#[test]
fn a_request_whose_body_stalls_is_cut_off() {
    let agent = start(&[
        "--danger-allow-anonymous",
        "--header-read-timeout",
        "1",
        "--body-read-timeout",
        "1",
    ]);
    let mut connection = Connection::plain(agent.http).unwrap();
    connection.send(&stalled_request()).unwrap();
    let started = Instant::now();
    connection
        .wait_closed(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("a stalled request body: {e}"));
    eprintln!("closed after {:?}", started.elapsed());
}

#[test]
fn sigterm_ends_the_agent_promptly_even_with_a_request_stalled() {
    let mut agent = anonymous();
    let mut connection = Connection::plain(agent.http).unwrap();
    connection.send(&stalled_request()).unwrap();
    // Another request served after it: the agent runs and has had the stalled head.
    assert_eq!(message(&exchange(agent.http, &Call::small("1"))).id, "1");
    let status = agent
        .terminate(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "exit status {status}");
}

#[test]
fn a_connection_beyond_connections_max_is_closed_while_the_others_work() {
    let sockets = tempfile::tempdir().expect("a temporary directory");
    let local = sockets.path().join("cimxml.sock");
    let local_arg = local.display().to_string();
    let agent = start(&[
        "--danger-allow-anonymous",
        "--connections-max",
        "2",
        "--local-socket",
        &local_arg,
    ]);
    let mut first = Connection::plain(agent.http).unwrap();
    let mut second = Connection::plain(agent.http).unwrap();
    // A response on each proves the server holds both.
    assert_eq!(
        message(&first.request(&Call::small("1").bytes()).unwrap()).id,
        "1"
    );
    assert_eq!(
        message(&second.request(&Call::small("2").bytes()).unwrap()).id,
        "2"
    );
    let mut third = Connection::plain(agent.http).unwrap();
    let started = Instant::now();
    let received = third
        .wait_closed(CLOSE_TIMEOUT)
        .unwrap_or_else(|e| panic!("the third connection: {e}"));
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed only after {:?}",
        started.elapsed()
    );
    // The local socket (root's cm* commands) has permits of its own: served all the same.
    let mut stream = std::os::unix::net::UnixStream::connect(&local)
        .unwrap_or_else(|e| panic!("the local socket {}: {e}", local.display()));
    stream
        .set_read_timeout(Some(raw_http::READ_TIMEOUT))
        .expect("a read timeout");
    std::io::Write::write_all(
        &mut stream,
        &Call::small("L").header("Connection", "close").bytes(),
    )
    .expect("the request is sent");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("the answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("<MESSAGE ID=\"L\""),
        "{answer}"
    );
    assert_eq!(
        message(&first.request(&Call::small("3").bytes()).unwrap()).id,
        "3"
    );
    assert_eq!(
        message(&second.request(&Call::small("4").bytes()).unwrap()).id,
        "4"
    );
    // Once one of the two closes, a new connection is served again.
    drop(first);
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    loop {
        let mut connection = Connection::plain(agent.http).unwrap();
        if let Ok(response) = connection.request(&Call::small("5").bytes()) {
            assert_eq!(message(&response).id, "5");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no connection served after one of the two closed"
        );
    }
}

// ------------------------------------------------------------------ HTTPS

fn over_tls(version: TlsVersion) {
    let agent = anonymous();
    let mut connection = Connection::tls(agent.https, &agent.ca_path(), "localhost", version)
        .unwrap_or_else(|e| panic!("{e}"));
    let expected = match version {
        TlsVersion::Tls12 => rustls::ProtocolVersion::TLSv1_2,
        TlsVersion::Tls13 => rustls::ProtocolVersion::TLSv1_3,
    };
    assert_eq!(connection.tls_version(), Some(expected));
    for id in ["t1", "t2"] {
        let response = connection.request(&Call::small(id).bytes()).unwrap();
        let message = message(&response);
        assert_eq!(message.id, id);
        assert!(!returned(&message).is_empty());
    }
    // The certificate names 127.0.0.1 as well as localhost.
    let mut by_address = Connection::tls(agent.https, &agent.ca_path(), "127.0.0.1", version)
        .unwrap_or_else(|e| panic!("{e}"));
    let response = by_address.request(&Call::small("t3").bytes()).unwrap();
    assert_eq!(message(&response).id, "t3");
}

#[test]
fn https_with_tls_1_2_serves_requests() {
    over_tls(TlsVersion::Tls12);
}

#[test]
fn https_with_tls_1_3_serves_requests() {
    over_tls(TlsVersion::Tls13);
}

#[test]
fn plain_http_to_the_https_port_fails_cleanly() {
    let agent = anonymous();
    let mut connection = Connection::plain(agent.https).unwrap();
    connection.send(&Call::small("1").bytes()).unwrap();
    let received = connection
        .wait_closed(CLOSE_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !received.starts_with(b"HTTP/"),
        "an http answer on the https port: {}",
        String::from_utf8_lossy(&received)
    );
    // The listener is unharmed.
    let mut tls = Connection::tls(
        agent.https,
        &agent.ca_path(),
        "localhost",
        TlsVersion::Tls13,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        message(&tls.request(&Call::small("2").bytes()).unwrap()).id,
        "2"
    );
}

// ------------------------------------------------------------------ authentication

#[test]
fn without_credentials_a_request_is_401_with_a_basic_challenge() {
    let folder = tempfile::tempdir().unwrap();
    let users = folder.path().join("users");
    std::fs::write(&users, "# no users yet\n").unwrap();
    let agent = start(&["--users-file", users.to_str().unwrap()]);
    let response = exchange(agent.http, &Call::small("1"));
    assert_eq!(response.status, 401, "{:?}", response.headers);
    let challenge = response.header("WWW-Authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Basic realm=\""),
        "WWW-Authenticate: {challenge}"
    );
    assert_ne!(response.header("CIMOperation"), Some("MethodResponse"));
    // Over HTTPS too.
    let mut tls = Connection::tls(
        agent.https,
        &agent.ca_path(),
        "localhost",
        TlsVersion::Tls13,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let response = tls.request(&Call::small("2").bytes()).unwrap();
    assert_eq!(response.status, 401);
    assert!(response.header("WWW-Authenticate").is_some());
}

#[test]
fn basic_credentials_are_checked_and_repeated_failures_throttled() {
    let folder = tempfile::tempdir().unwrap();
    let users = folder.path().join("users");
    cimguard_tests::agent::users_file(&users, &[("operator", "MONITOR", "right horse")])
        .unwrap_or_else(|e| panic!("{e}"));
    let agent = start(&["--users-file", users.to_str().unwrap()]);
    let right =
        Call::small("1").header("Authorization", &raw_http::basic("operator", "right horse"));
    let response = exchange(agent.http, &right);
    assert_eq!(response.status, 200, "{:?}", response.headers);
    let wrong =
        Call::small("2").header("Authorization", &raw_http::basic("operator", "wrong horse"));
    let unknown =
        Call::small("3").header("Authorization", &raw_http::basic("nobody", "right horse"));
    let mut failure_sent = Instant::now();
    for call in [&wrong, &unknown, &wrong, &unknown, &wrong] {
        failure_sent = Instant::now();
        let response = exchange(agent.http, call);
        assert_eq!(response.status, 401, "{:?}", response.headers);
        assert!(response.header("WWW-Authenticate").is_some());
    }
    // The fifth failure refuses this peer for THROTTLE_DELAY_INITIAL from when its request
    // arrived (after we sent it), and each further failure doubles the refusal. A slow
    // password check (argon2 on a loaded machine) may outlast it: the next wrong login is
    // then checked (401) and refuses for twice as long. So a wrong login is 429 unless at
    // least the previous failure's refusal passed from sending that failure to this answer;
    // a few doublings outlast any check.
    let mut refusal = THROTTLE_DELAY_INITIAL;
    let throttled = loop {
        let sent = Instant::now();
        let response = exchange(agent.http, &wrong);
        if response.status == 429 {
            break response;
        }
        let since = failure_sent.elapsed();
        assert_eq!(response.status, 401, "{:?}", response.headers);
        assert!(
            since >= refusal,
            "a wrong login checked {since:?} after the previous failure, within its \
             refusal of {refusal:?}"
        );
        assert!(
            refusal < THROTTLE_DELAY_INITIAL * 16,
            "never throttled: each check outlasted the refusal before it (the last {refusal:?})"
        );
        refusal *= 2;
        failure_sent = sent;
    };
    let retry: u64 = throttled
        .header("Retry-After")
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!(retry >= 1);
    let malformed = Call::small("4").header("Authorization", "Basic !!!not base64");
    assert_eq!(exchange(agent.http, &malformed).status, 401);
}

#[test]
fn a_client_certificate_from_the_client_ca_authenticates_its_user() {
    let folder = tempfile::tempdir().unwrap();
    let users = folder.path().join("users");
    cimguard_tests::agent::users_file(
        &users,
        &[
            ("operator", "MONITOR", "operator's password"),
            ("admin", "FULL_ADMIN", "admin's password"),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // A separate CA that issues the client certificates.
    let names = cimguard_certs::ServerNames {
        dns_names: vec!["client-ca".into()],
        ip_addresses: Vec::new(),
    };
    let client_ca = cimguard_certs::ensure(&folder.path().join("client-ca"), &names).unwrap();
    let (certificate, key) =
        cimguard_certs::issue_client_certificate(&client_ca, "operator", folder.path()).unwrap();
    let (stranger, stranger_key) =
        cimguard_certs::issue_client_certificate(&client_ca, "stranger", folder.path()).unwrap();
    let agent = start(&[
        "--users-file",
        users.to_str().unwrap(),
        "--client-ca",
        client_ca.ca_cert.to_str().unwrap(),
    ]);
    let mut known = Connection::tls_as(
        agent.https,
        &agent.ca_path(),
        "localhost",
        TlsVersion::Tls13,
        Some((&certificate, &key)),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let response = known.request(&Call::small("1").bytes()).unwrap();
    assert_eq!(response.status, 200, "{:?}", response.headers);
    // Credentials sent with the certificate must hold, and name its user.
    let with = |id: &str, user: &str, password: &str| {
        Call::small(id)
            .header("Authorization", &raw_http::basic(user, password))
            .bytes()
    };
    let response = known
        .request(&with("1a", "operator", "operator's password"))
        .unwrap();
    assert_eq!(response.status, 200, "{:?}", response.headers);
    for (id, user, password) in [
        ("1b", "operator", "a wrong password"),
        ("1c", "admin", "admin's password"),
    ] {
        let response = known.request(&with(id, user, password)).unwrap();
        assert_eq!(
            response.status, 401,
            "{user} with the certificate of operator: {:?}",
            response.headers
        );
    }
    // A certificate whose name is no user falls back to Basic, which is missing here.
    let mut unknown = Connection::tls_as(
        agent.https,
        &agent.ca_path(),
        "localhost",
        TlsVersion::Tls12,
        Some((&stranger, &stranger_key)),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        unknown.request(&Call::small("2").bytes()).unwrap().status,
        401
    );
    // Without a certificate: Basic as usual.
    let mut plain = Connection::tls(
        agent.https,
        &agent.ca_path(),
        "localhost",
        TlsVersion::Tls13,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        plain.request(&Call::small("3").bytes()).unwrap().status,
        401
    );
}

// ------------------------------------------------------------------ shutdown

#[test]
fn sigterm_ends_the_agent_with_status_0() {
    let mut agent = anonymous();
    // An idle keep-alive connection must not hold the shutdown up.
    let mut idle = Connection::plain(agent.http).unwrap();
    assert_eq!(
        message(&idle.request(&Call::small("1").bytes()).unwrap()).id,
        "1"
    );
    let status = agent
        .terminate(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        agent.log()
    );
    // The idle connection was closed, not left dangling.
    idle.wait_closed(CLOSE_TIMEOUT)
        .unwrap_or_else(|e| panic!("the idle connection: {e}"));
}
