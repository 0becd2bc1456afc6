//! The bad-input catalogue: over a hundred malformed, hostile or merely wrong requests sent to
//! one `cmwbemd` over plain HTTP on loopback, byte for byte as a broken or malicious client
//! would send them. Each case states the exact answer DSP0200 asks for (an HTTP status and
//! `CIMError` header, or a CIM-XML response carrying one CIM status code, or a closed
//! connection for a client too slow to finish its request), and after every case the agent
//! must still answer a good request. Every case runs even when an earlier one fails, and the
//! failure lists all that did.
//!
//! Needs the binary: `cargo build --bin cmwbemd` before `cargo test -p cimguard-tests --test
//! bad_input` (`cargo test --workspace` builds it).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cim_schema::xml::{decode, Body, Limits, Response};
use cimguard_tests::agent::Agent;
use cimguard_tests::raw_http::{Connection, RawResponse};
use cimguard_tests::requests::{instance_name, iparam, namespace_elements, system_element_name};

/// The agent's limits in this test: small enough to reach quickly.
const BODY_BYTES_MAX: usize = 256 * 1024;
const HEADER_READ_TIMEOUT_SECONDS: u64 = 2;
const BODY_READ_TIMEOUT_SECONDS: u64 = 2;
/// How long a slow case may take to be cut off, at most.
const CUT_OFF_WITHIN: Duration = Duration::from_secs(15);

// CIM status codes (DSP0200 table 3).
const CIM_ERR_INVALID_NAMESPACE: u32 = 3;
const CIM_ERR_INVALID_PARAMETER: u32 = 4;
const CIM_ERR_INVALID_CLASS: u32 = 5;
const CIM_ERR_NOT_FOUND: u32 = 6;
const CIM_ERR_NOT_SUPPORTED: u32 = 7;
const CIM_ERR_NO_SUCH_PROPERTY: u32 = 12;
const CIM_ERR_TYPE_MISMATCH: u32 = 13;
const CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED: u32 = 14;
const CIM_ERR_INVALID_QUERY: u32 = 15;
const CIM_ERR_METHOD_NOT_FOUND: u32 = 17;
const CIM_ERR_INVALID_ENUMERATION_CONTEXT: u32 = 21;

/// What the agent must answer.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// An HTTP error status, with this `CIMError` header (or none), and no CIM-XML body.
    Refused(u16, Option<&'static str>),
    /// A 200 CIM-XML response to the request's message ID whose (i)method response is an
    /// `ERROR` with this CIM status code.
    CimError(u32),
    /// The connection is closed (after at most a 408 or 400) before the request is whole: the
    /// client is too slow or its bytes end.
    CutOff,
}

/// The `CIMError` header of a response; the answer to an M-POST carries it under the
/// request's prefix, which its `Man` header repeats (`NN-CIMError`).
fn cim_error_of(response: &RawResponse) -> Option<&str> {
    let prefix = response
        .header("Man")
        .and_then(|man| man.split_once("ns="))
        .map(|(_, ns)| ns.trim());
    match prefix {
        Some(ns) => response.header(&format!("{ns}-CIMError")),
        None => response.header("CIMError"),
    }
}

/// How the bytes are sent.
#[derive(Clone, Copy, Debug)]
enum Pace {
    /// All at once.
    Whole,
    /// One byte every this long, until the agent closes the connection.
    Trickle(Duration),
    /// All at once, then the connection stays open and silent.
    ThenSilence,
}

struct Case {
    name: String,
    bytes: Vec<u8>,
    pace: Pace,
    expect: Expect,
}

// ------------------------------------------------------------------ building requests

const ID: &str = "1001";

/// A whole message around `inner` (what goes in `SIMPLEREQ`).
fn message(inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<CIM CIMVERSION=\"2.0\" DTDVERSION=\"2.0\">\
         <MESSAGE ID=\"{ID}\" PROTOCOLVERSION=\"1.0\"><SIMPLEREQ>{inner}</SIMPLEREQ></MESSAGE></CIM>"
    )
}

/// An intrinsic call's body.
fn imethod_body(method: &str, namespace: &str, params: &str) -> String {
    message(&format!(
        "<IMETHODCALL NAME=\"{method}\"><LOCALNAMESPACEPATH>{}</LOCALNAMESPACEPATH>{params}\
         </IMETHODCALL>",
        namespace_elements(namespace)
    ))
}

/// An HTTP request: the verb, the headers in order, the body (with its Content-Length unless
/// the headers say Transfer-Encoding or Content-Length already).
fn http(verb: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("{verb} /cimom HTTP/1.1\r\nHost: localhost\r\n").into_bytes();
    for (name, value) in headers {
        bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    let framed = headers.iter().any(|(name, _)| {
        name.eq_ignore_ascii_case("Transfer-Encoding")
            || name.eq_ignore_ascii_case("Content-Length")
    });
    if !framed {
        bytes.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(body);
    bytes
}

/// The headers of a POST of intrinsic `method` to `namespace`.
fn cim_headers(method: &str, namespace: &str) -> Vec<(String, String)> {
    vec![
        (
            "Content-Type".into(),
            "application/xml; charset=\"utf-8\"".into(),
        ),
        ("CIMProtocolVersion".into(), "1.0".into()),
        ("CIMOperation".into(), "MethodCall".into()),
        ("CIMMethod".into(), method.into()),
        ("CIMObject".into(), namespace.into()),
    ]
}

fn post(headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    http("POST", &headers, body)
}

/// A POST of intrinsic `method` with the right headers and `body`.
fn post_body(method: &str, namespace: &str, body: &str) -> Vec<u8> {
    post(&cim_headers(method, namespace), body.as_bytes())
}

/// A POST of intrinsic `method` with the right headers and the parameters `params`.
fn intrinsic(method: &str, namespace: &str, params: &str) -> Vec<u8> {
    post_body(method, namespace, &imethod_body(method, namespace, params))
}

/// The good request's headers with `name` changed to `value` (`None` removes it).
fn with_header(name: &str, value: Option<&str>) -> Vec<u8> {
    let mut headers = cim_headers("EnumerateClassNames", "root/interop");
    headers.retain(|(header, _)| !header.eq_ignore_ascii_case(name));
    if let Some(value) = value {
        headers.push((name.into(), value.into()));
    }
    post(&headers, good_body().as_bytes())
}

fn good_body() -> String {
    imethod_body("EnumerateClassNames", "root/interop", "")
}

fn classname(name: &str) -> String {
    iparam("ClassName", &format!("<CLASSNAME NAME=\"{name}\"/>"))
}

fn value(text: &str) -> String {
    format!("<VALUE>{text}</VALUE>")
}

/// A `CIM_ListenerDestinationCIMXML` for CreateInstance with extra properties.
fn destination(extra: &str) -> String {
    iparam(
        "NewInstance",
        &format!(
            "<INSTANCE CLASSNAME=\"CIM_ListenerDestinationCIMXML\">\
             <PROPERTY NAME=\"Name\" TYPE=\"string\"><VALUE>bad-input</VALUE></PROPERTY>{extra}\
             </INSTANCE>"
        ),
    )
}

/// A `CIM_IndicationFilter` for CreateInstance with this language and query.
fn filter(language: &str, query: &str) -> String {
    iparam(
        "NewInstance",
        &format!(
            "<INSTANCE CLASSNAME=\"CIM_IndicationFilter\">\
             <PROPERTY NAME=\"Name\" TYPE=\"string\"><VALUE>bad-input</VALUE></PROPERTY>\
             <PROPERTY NAME=\"QueryLanguage\" TYPE=\"string\"><VALUE>{language}</VALUE></PROPERTY>\
             <PROPERTY NAME=\"Query\" TYPE=\"string\"><VALUE>{query}</VALUE></PROPERTY>\
             </INSTANCE>"
        ),
    )
}

/// An extrinsic call on a class path.
fn method_call(class: &str, method: &str, params: &str) -> Vec<u8> {
    let body = message(&format!(
        "<METHODCALL NAME=\"{method}\"><LOCALCLASSPATH><LOCALNAMESPACEPATH>{}\
         </LOCALNAMESPACEPATH><CLASSNAME NAME=\"{class}\"/></LOCALCLASSPATH>{params}</METHODCALL>",
        namespace_elements("root/cimv2")
    ));
    let mut headers = cim_headers(method, "root/cimv2");
    headers.push(("CIMObject".into(), format!("root/cimv2:{class}")));
    headers.retain(|(name, value)| name != "CIMObject" || value.contains(':'));
    post(&headers, body.as_bytes())
}

/// An extrinsic call on an instance path.
fn instance_method_call(path: &str, object: &str, method: &str, params: &str) -> Vec<u8> {
    let body = message(&format!(
        "<METHODCALL NAME=\"{method}\"><LOCALINSTANCEPATH><LOCALNAMESPACEPATH>{}\
         </LOCALNAMESPACEPATH>{path}</LOCALINSTANCEPATH>{params}</METHODCALL>",
        namespace_elements("root/cimv2")
    ));
    let mut headers = cim_headers(method, "root/cimv2");
    headers.retain(|(name, _)| name != "CIMObject");
    headers.push(("CIMObject".into(), object.into()));
    post(&headers, body.as_bytes())
}

/// `body` sent in chunks of `size` bytes.
fn chunked(headers: &[(String, String)], body: &[u8], size: usize) -> Vec<u8> {
    let mut headers = headers.to_vec();
    headers.push(("Transfer-Encoding".into(), "chunked".into()));
    let mut framed = Vec::new();
    for piece in body.chunks(size) {
        framed.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        framed.extend_from_slice(piece);
        framed.extend_from_slice(b"\r\n");
    }
    framed.extend_from_slice(b"0\r\n\r\n");
    post(&headers, &framed)
}

// ------------------------------------------------------------------ the catalogue

fn catalogue() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |name: &str, bytes: Vec<u8>, expect: Expect| {
        cases.push(Case {
            name: name.to_string(),
            bytes,
            pace: Pace::Whole,
            expect,
        });
    };
    use Expect::*;
    let not_well_formed = Refused(400, Some("request-not-well-formed"));
    let not_valid = Refused(400, Some("request-not-valid"));
    let unsupported_operation = Refused(400, Some("unsupported-operation"));
    let header_mismatch = Refused(400, Some("header-mismatch"));

    // --- HTTP methods and framing
    for verb in ["GET", "PUT", "DELETE", "PATCH", "HEAD"] {
        add(
            &format!("{verb} instead of POST"),
            http(verb, &[], b""),
            Refused(405, None),
        );
    }
    add(
        "a request line that is not HTTP",
        b"HELLO THERE\r\n\r\n".to_vec(),
        Refused(400, None),
    );
    add(
        "a TLS ClientHello on the plain port",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage".to_vec(),
        Refused(400, None),
    );
    add(
        "a header line without a colon",
        b"POST /cimom HTTP/1.1\r\nHost: localhost\r\nCIMOperation MethodCall\r\n\r\n".to_vec(),
        Refused(400, None),
    );
    add(
        "a Content-Length that is not a number",
        post(
            &[("Content-Length".into(), "twelve".into())],
            good_body().as_bytes(),
        ),
        Refused(400, None),
    );
    add(
        "two different Content-Length headers",
        {
            let mut headers = cim_headers("EnumerateClassNames", "root/interop");
            headers.push(("Content-Length".into(), good_body().len().to_string()));
            headers.push(("Content-Length".into(), "5".into()));
            post(&headers, good_body().as_bytes())
        },
        Refused(400, None),
    );
    add(
        "a chunk size that is not hexadecimal",
        {
            let mut bytes = post(
                &[
                    cim_headers("EnumerateClassNames", "root/interop"),
                    vec![("Transfer-Encoding".into(), "chunked".into())],
                ]
                .concat(),
                b"",
            );
            bytes.extend_from_slice(b"zz\r\n<CIM/>\r\n0\r\n\r\n");
            bytes
        },
        Refused(400, None),
    );
    add(
        "a transfer coding other than chunked",
        post(
            &[
                cim_headers("EnumerateClassNames", "root/interop"),
                vec![("Transfer-Encoding".into(), "gzip".into())],
            ]
            .concat(),
            good_body().as_bytes(),
        ),
        // RFC 9112 6.3: a request whose final coding is not chunked has no length it can
        // be read by; the answer is 400 and the connection closes.
        Refused(400, None),
    );
    add(
        "a request head over the size limit",
        with_header("X-Padding", Some(&"a".repeat(1024 * 1024))),
        Refused(431, None),
    );
    add(
        "a request head of too many fields",
        {
            let mut headers = cim_headers("EnumerateClassNames", "root/interop");
            for index in 0..200 {
                headers.push((format!("X-Field-{index}"), "a".into()));
            }
            post(&headers, good_body().as_bytes())
        },
        Refused(431, None),
    );
    add(
        "a body over the body limit, with Content-Length",
        post(
            &cim_headers("EnumerateClassNames", "root/interop"),
            format!("{}{}", good_body(), " ".repeat(BODY_BYTES_MAX)).as_bytes(),
        ),
        Refused(413, Some("request-not-valid")),
    );
    add(
        "a body over the body limit, chunked",
        chunked(
            &cim_headers("EnumerateClassNames", "root/interop"),
            format!("{}{}", good_body(), " ".repeat(BODY_BYTES_MAX)).as_bytes(),
            16 * 1024,
        ),
        Refused(413, Some("request-not-valid")),
    );
    add(
        "a gzip-encoded request body",
        {
            use std::io::Write;
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(good_body().as_bytes()).unwrap();
            let mut headers = cim_headers("EnumerateClassNames", "root/interop");
            headers.push(("Content-Encoding".into(), "gzip".into()));
            post(&headers, &encoder.finish().unwrap())
        },
        Refused(415, Some("header-mismatch")),
    );
    add(
        "a request body in a transfer coding other than chunked (gzip, chunked)",
        {
            use std::io::Write;
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(good_body().as_bytes()).unwrap();
            let gzipped = encoder.finish().unwrap();
            let mut framed = format!("{:x}\r\n", gzipped.len()).into_bytes();
            framed.extend_from_slice(&gzipped);
            framed.extend_from_slice(b"\r\n0\r\n\r\n");
            let mut headers = cim_headers("EnumerateClassNames", "root/interop");
            headers.push(("Transfer-Encoding".into(), "gzip, chunked".into()));
            post(&headers, &framed)
        },
        Refused(501, None),
    );
    add(
        "a POST to the asterisk-form target (*), which only OPTIONS takes",
        {
            let good = post(
                &cim_headers("EnumerateClassNames", "root/interop"),
                good_body().as_bytes(),
            );
            let text = String::from_utf8(good).unwrap();
            text.replacen("POST /cimom ", "POST * ", 1).into_bytes()
        },
        Refused(400, None),
    );

    add(
        "an HTTP/1.1 request without Host",
        {
            let good = post(
                &cim_headers("EnumerateClassNames", "root/interop"),
                good_body().as_bytes(),
            );
            let text = String::from_utf8(good).unwrap();
            text.replacen("Host: localhost\r\n", "", 1).into_bytes()
        },
        Refused(400, None),
    );

    add(
        "a GET /metrics over HTTP/1.1 without Host",
        b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
        Refused(400, None),
    );

    add(
        "two Host headers",
        post(
            &[
                cim_headers("EnumerateClassNames", "root/interop"),
                vec![("Host".into(), "elsewhere".into())],
            ]
            .concat(),
            good_body().as_bytes(),
        ),
        Refused(400, None),
    );

    // --- content negotiation (DSP0200 7.1)
    let not_acceptable = Refused(406, Some("header-mismatch"));
    for (name, value) in [
        ("Accept", "application/json"),
        ("Accept", "text/xml;q=0"),
        ("Accept-Charset", "iso-8859-1"),
        ("Accept-Range", "bytes=0-10"),
    ] {
        add(
            &format!("{name}: {value}"),
            with_header(name, Some(value)),
            not_acceptable,
        );
    }

    // --- CIM headers (DSP0200 7.2)
    add(
        "no CIMOperation",
        with_header("CIMOperation", None),
        unsupported_operation,
    );
    add(
        "CIMObject twice with different values",
        {
            let mut headers = cim_headers("EnumerateClassNames", "root/interop");
            headers.push(("CIMObject".into(), "root/cimv2".into()));
            post(&headers, good_body().as_bytes())
        },
        header_mismatch,
    );
    add(
        "CIMOperation MethodResponse",
        with_header("CIMOperation", Some("MethodResponse")),
        unsupported_operation,
    );
    add(
        "CIMOperation ExportMethodCall to a CIM server",
        with_header("CIMOperation", Some("ExportMethodCall")),
        unsupported_operation,
    );
    add(
        "CIMOperation empty",
        with_header("CIMOperation", Some("")),
        unsupported_operation,
    );
    add(
        "no CIMMethod",
        with_header("CIMMethod", None),
        header_mismatch,
    );
    add(
        "CIMMethod naming another method",
        with_header("CIMMethod", Some("EnumerateClasses")),
        header_mismatch,
    );
    add(
        "CIMMethod with a broken escape",
        with_header("CIMMethod", Some("Enumerate%FFClassNames")),
        header_mismatch,
    );
    add(
        "no CIMObject",
        with_header("CIMObject", None),
        header_mismatch,
    );
    add(
        "CIMObject naming another namespace",
        with_header("CIMObject", Some("root/cimv2")),
        header_mismatch,
    );
    add(
        "CIMObject with a raw byte over 127",
        {
            let mut bytes = with_header("CIMObject", Some("root/interop-XX"));
            let at = bytes.windows(2).position(|w| w == b"XX").unwrap();
            bytes[at] = 0xE9;
            bytes[at + 1] = b'e';
            bytes
        },
        header_mismatch,
    );
    for version in ["2.0", "0.9", "one"] {
        add(
            &format!("CIMProtocolVersion {version}"),
            with_header("CIMProtocolVersion", Some(version)),
            Refused(501, Some("unsupported-protocol-version")),
        );
    }
    add(
        "a CIMBatch header",
        with_header("CIMBatch", Some("")),
        Refused(501, Some("multiple-requests-unsupported")),
    );
    for content_type in [
        "text/plain",
        "application/json",
        "application/xml; charset=iso-8859-1",
        "application/xml; charset=utf-16",
        "multipart/form-data; boundary=x",
    ] {
        add(
            &format!("Content-Type {content_type}"),
            with_header("Content-Type", Some(content_type)),
            Refused(415, Some("header-mismatch")),
        );
    }

    // --- M-POST (DSP0200 7.2.2)
    let mpost = |man: Option<&str>, prefix: &str| {
        let mut headers: Vec<(String, String)> = cim_headers("EnumerateClassNames", "root/interop")
            .into_iter()
            .map(|(name, value)| {
                if name.starts_with("CIM") {
                    (format!("{prefix}{name}"), value)
                } else {
                    (name, value)
                }
            })
            .collect();
        if let Some(man) = man {
            headers.push(("Man".into(), man.into()));
        }
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        http("M-POST", &headers, good_body().as_bytes())
    };
    const MAPPING: &str = "http://www.dmtf.org/cim/mapping/http/v1.0";
    add("M-POST without Man", mpost(None, "73-"), Refused(510, None));
    add(
        "M-POST with Man of another extension",
        mpost(Some("http://example.invalid/ext; ns=73"), "73-"),
        Refused(510, None),
    );
    add(
        "M-POST declaring an unknown mandatory extension beside DSP0200's",
        mpost(
            Some(&format!(
                "{MAPPING}; ns=73, http://example.invalid/x; ns=74"
            )),
            "73-",
        ),
        Refused(510, None),
    );
    add(
        "M-POST with Man without ns",
        mpost(Some(MAPPING), "73-"),
        Refused(510, None),
    );
    add(
        "M-POST with a ns that is not a number",
        mpost(Some(&format!("{MAPPING}; ns=ab")), "ab-"),
        Refused(510, None),
    );
    add(
        "M-POST with headers under another prefix",
        mpost(Some(&format!("{MAPPING}; ns=73")), "74-"),
        unsupported_operation,
    );
    add(
        "M-POST with headers unprefixed",
        mpost(Some(&format!("{MAPPING}; ns=73")), ""),
        unsupported_operation,
    );

    // --- XML that is not well-formed
    let body = good_body();
    add(
        "an empty body",
        post_body("EnumerateClassNames", "root/interop", ""),
        not_well_formed,
    );
    add(
        "only the XML declaration",
        post_body(
            "EnumerateClassNames",
            "root/interop",
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>",
        ),
        not_well_formed,
    );
    for fraction in [1, 3, 5, 7, 9] {
        let cut = body.len() * fraction / 10;
        add(
            &format!("the message cut at {}0%", fraction),
            post_body("EnumerateClassNames", "root/interop", &body[..cut]),
            not_well_formed,
        );
    }
    add(
        "the message without its last byte",
        post_body(
            "EnumerateClassNames",
            "root/interop",
            &body[..body.len() - 1],
        ),
        not_well_formed,
    );
    let broken = |from: &str, to: &str| {
        let text = body.replacen(from, to, 1);
        assert_ne!(text, body, "{from} is not in the good body");
        post_body("EnumerateClassNames", "root/interop", &text)
    };
    add(
        "a mismatched end tag",
        broken("</SIMPLEREQ>", "</SIMPLERSP>"),
        not_well_formed,
    );
    add(
        "an attribute value without its closing quote",
        broken("ID=\"1001\"", "ID=\"1001"),
        not_well_formed,
    );
    add(
        "an attribute without a value",
        broken("ID=\"1001\"", "ID"),
        not_well_formed,
    );
    add(
        "an attribute given twice",
        broken("ID=\"1001\"", "ID=\"1001\" ID=\"1002\""),
        not_well_formed,
    );
    add(
        "two root elements",
        post_body(
            "EnumerateClassNames",
            "root/interop",
            &format!("{body}<CIM CIMVERSION=\"2.0\" DTDVERSION=\"2.0\"/>"),
        ),
        not_well_formed,
    );
    add(
        "text after the root element",
        post_body(
            "EnumerateClassNames",
            "root/interop",
            &format!("{body}trailing"),
        ),
        not_well_formed,
    );
    add(
        "an element name starting with a digit",
        broken("<SIMPLEREQ>", "<SIMPLEREQ><1X/>"),
        not_well_formed,
    );
    add(
        "an unescaped < in an attribute value",
        broken("ID=\"1001\"", "ID=\"10<01\""),
        not_well_formed,
    );
    add(
        "an unescaped & in text",
        post_body(
            "GetClass",
            "root/cimv2",
            &imethod_body(
                "GetClass",
                "root/cimv2",
                &iparam("ClassName", &value("a & b")),
            ),
        ),
        not_well_formed,
    );
    add(
        "an undefined entity",
        post_body(
            "GetClass",
            "root/cimv2",
            &imethod_body(
                "GetClass",
                "root/cimv2",
                &iparam("ClassName", &value("&nbsp;")),
            ),
        ),
        not_well_formed,
    );
    for (what, reference) in [
        ("a reference to character 0", "&#0;"),
        ("a reference to a surrogate", "&#xD800;"),
        ("a reference beyond Unicode", "&#x110000;"),
        ("a reference to a C0 control", "&#x1;"),
    ] {
        add(
            what,
            post_body(
                "GetClass",
                "root/cimv2",
                &imethod_body(
                    "GetClass",
                    "root/cimv2",
                    &iparam("ClassName", &value(&format!("a{reference}b"))),
                ),
            ),
            not_well_formed,
        );
    }
    let raw = |bytes: &[u8]| {
        let text = imethod_body("GetClass", "root/cimv2", &iparam("ClassName", &value("@@")));
        let at = text.find("@@").unwrap();
        let mut body = text.as_bytes()[..at].to_vec();
        body.extend_from_slice(bytes);
        body.extend_from_slice(&text.as_bytes()[at + 2..]);
        post(&cim_headers("GetClass", "root/cimv2"), &body)
    };
    add("a NUL byte in text", raw(b"a\0b"), not_well_formed);
    add("a C0 control byte in text", raw(b"a\x07b"), not_well_formed);
    add("a lone continuation byte", raw(b"a\x80b"), not_well_formed);
    add(
        "a truncated UTF-8 sequence",
        raw(b"a\xE2\x82"),
        not_well_formed,
    );
    add(
        "an overlong UTF-8 encoding of /",
        raw(b"a\xC0\xAFb"),
        not_well_formed,
    );
    add(
        "a UTF-8 encoded surrogate",
        raw(b"a\xED\xA0\x80b"),
        not_well_formed,
    );
    add("bytes FE and FF", raw(b"\xFE\xFF"), not_well_formed);
    add(
        "invalid UTF-8 in an attribute value",
        {
            let mut bytes = post_body("EnumerateClassNames", "root/interop", &body);
            let at = bytes.windows(4).position(|w| w == b"1001").unwrap();
            bytes[at] = 0xFF;
            bytes
        },
        not_well_formed,
    );
    add(
        "a body in UTF-16",
        post(
            &cim_headers("EnumerateClassNames", "root/interop"),
            &body
                .replace("utf-8", "utf-16")
                .encode_utf16()
                .flat_map(|unit| unit.to_le_bytes())
                .collect::<Vec<u8>>(),
        ),
        not_well_formed,
    );
    add(
        "an unterminated comment",
        broken("<SIMPLEREQ>", "<SIMPLEREQ><!-- no end"),
        not_well_formed,
    );
    add(
        "an unterminated CDATA section",
        broken("<SIMPLEREQ>", "<SIMPLEREQ><![CDATA[ no end"),
        not_well_formed,
    );
    add(
        "an unterminated processing instruction",
        broken("<SIMPLEREQ>", "<SIMPLEREQ><?pi no end"),
        not_well_formed,
    );
    add(
        "an XML declaration after the start",
        broken("<CIM ", "<?xml version=\"1.0\"?><CIM "),
        not_well_formed,
    );

    // --- DOCTYPE and entities: no DTD is read, no entity is expanded. The decoder refuses
    // a document type declaration with an internal subset as it reads it, before anything it
    // declares is used, and says not well-formed; one that only names the DTD by its external
    // identifier (as some generators write) declares nothing, and is skipped unread.
    let doctype = |subset: &str, text: &str| {
        let body = imethod_body("GetClass", "root/cimv2", &iparam("ClassName", &value(text)));
        let body = body.replacen("<CIM ", &format!("<!DOCTYPE CIM {subset}>\n<CIM "), 1);
        post_body("GetClass", "root/cimv2", &body)
    };
    let mut laughs = String::from("[<!ENTITY lol \"lol\">");
    for level in 1..10 {
        let previous = if level == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", level - 1)
        };
        laughs.push_str(&format!(
            "<!ENTITY lol{level} \"{}\">",
            format!("&{previous};").repeat(10)
        ));
    }
    laughs.push(']');
    add(
        "a billion laughs",
        doctype(&laughs, "&lol9;"),
        not_well_formed,
    );
    add(
        "an external entity (XXE) naming /etc/passwd",
        doctype("[<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]", "&xxe;"),
        not_well_formed,
    );
    add(
        "a parameter entity fetched from a URL",
        doctype(
            "[<!ENTITY % remote SYSTEM \"http://127.0.0.1:9/evil.dtd\"> %remote;]",
            "x",
        ),
        not_well_formed,
    );
    add(
        "a quadratic blowup entity",
        doctype(
            &format!("[<!ENTITY a \"{}\">]", "x".repeat(50_000)),
            &"&a;".repeat(2_000),
        ),
        not_well_formed,
    );
    add(
        "an external DTD, named and never read: the request is answered",
        doctype("SYSTEM \"http://127.0.0.1:9/cim.dtd\"", "HP_SGNothing"),
        CimError(CIM_ERR_NOT_FOUND),
    );
    add(
        "two document type declarations",
        doctype(
            "SYSTEM \"cim.dtd\">\n<!DOCTYPE CIM SYSTEM \"cim.dtd\"",
            "HP_SGNothing",
        ),
        not_well_formed,
    );

    // --- XML that is not CIM-XML (DSP0201)
    let invalid_body = |text: &str| post_body("EnumerateClassNames", "root/interop", text);
    add(
        "a root element other than CIM",
        invalid_body("<?xml version=\"1.0\"?><HTML><BODY/></HTML>"),
        not_valid,
    );
    add(
        "CIM without CIMVERSION",
        broken(" CIMVERSION=\"2.0\"", ""),
        not_valid,
    );
    add(
        "CIM without DTDVERSION",
        broken(" DTDVERSION=\"2.0\"", ""),
        not_valid,
    );
    add("MESSAGE without ID", broken(" ID=\"1001\"", ""), not_valid);
    add(
        "MESSAGE without PROTOCOLVERSION",
        broken(" PROTOCOLVERSION=\"1.0\"", ""),
        not_valid,
    );
    add(
        "CIM without MESSAGE",
        invalid_body("<CIM CIMVERSION=\"2.0\" DTDVERSION=\"2.0\"/>"),
        not_valid,
    );
    add(
        "a response message sent as a request",
        invalid_body(
            &body
                .replace("<SIMPLEREQ>", "<SIMPLERSP>")
                .replace("</SIMPLEREQ>", "</SIMPLERSP>"),
        ),
        not_valid,
    );
    add("an empty SIMPLEREQ", broken_inner(""), not_valid);
    add(
        "IMETHODCALL without NAME",
        broken(" NAME=\"EnumerateClassNames\"", ""),
        not_valid,
    );
    add(
        "IMETHODCALL without LOCALNAMESPACEPATH",
        broken_inner("<IMETHODCALL NAME=\"EnumerateClassNames\"></IMETHODCALL>"),
        not_valid,
    );
    add(
        "an empty LOCALNAMESPACEPATH",
        broken_inner(
            "<IMETHODCALL NAME=\"EnumerateClassNames\"><LOCALNAMESPACEPATH/></IMETHODCALL>",
        ),
        not_valid,
    );
    add(
        "NAMESPACE without NAME",
        broken("<NAMESPACE NAME=\"root\"/>", "<NAMESPACE/>"),
        not_valid,
    );
    add(
        "an unknown element in IMETHODCALL",
        broken("</IMETHODCALL>", "<BOGUS/></IMETHODCALL>"),
        not_valid,
    );
    add(
        "IPARAMVALUE without NAME",
        post_body(
            "GetClass",
            "root/cimv2",
            &imethod_body(
                "GetClass",
                "root/cimv2",
                "<IPARAMVALUE><CLASSNAME NAME=\"CIM_ManagedElement\"/></IPARAMVALUE>",
            ),
        ),
        not_valid,
    );
    add(
        "an element inside VALUE",
        post_body(
            "GetClass",
            "root/cimv2",
            &imethod_body(
                "GetClass",
                "root/cimv2",
                &iparam("LocalOnly", "<VALUE><VALUE>TRUE</VALUE></VALUE>"),
            ),
        ),
        not_valid,
    );
    add(
        "IMETHODCALL directly in MESSAGE",
        invalid_body(&body.replace("<SIMPLEREQ>", "").replace("</SIMPLEREQ>", "")),
        not_valid,
    );
    add(
        "CLASSNAME without NAME",
        intrinsic(
            "GetClass",
            "root/cimv2",
            &iparam("ClassName", "<CLASSNAME/>"),
        ),
        not_valid,
    );
    add(
        "INSTANCENAME without CLASSNAME",
        intrinsic(
            "GetInstance",
            "root/interop",
            &iparam("InstanceName", "<INSTANCENAME><KEYBINDING NAME=\"Name\"><KEYVALUE>x</KEYVALUE></KEYBINDING></INSTANCENAME>"),
        ),
        not_valid,
    );
    add(
        "KEYBINDING without a value",
        intrinsic(
            "GetInstance",
            "root/interop",
            &iparam(
                "InstanceName",
                "<INSTANCENAME CLASSNAME=\"CIM_Namespace\"><KEYBINDING NAME=\"Name\"/></INSTANCENAME>",
            ),
        ),
        not_valid,
    );
    add(
        "KEYVALUE with an unknown VALUETYPE",
        intrinsic(
            "GetInstance",
            "root/interop",
            &iparam(
                "InstanceName",
                "<INSTANCENAME CLASSNAME=\"CIM_Namespace\"><KEYBINDING NAME=\"Name\">\
                 <KEYVALUE VALUETYPE=\"colour\">x</KEYVALUE></KEYBINDING></INSTANCENAME>",
            ),
        ),
        not_valid,
    );
    add(
        "PROPERTY with an unknown TYPE",
        intrinsic(
            "CreateInstance",
            "root/interop",
            &destination("<PROPERTY NAME=\"Destination\" TYPE=\"url\"><VALUE>x</VALUE></PROPERTY>"),
        ),
        not_valid,
    );
    add(
        "a uint8 property of 300",
        intrinsic(
            "CreateInstance",
            "root/interop",
            &destination(
                "<PROPERTY NAME=\"Protocol\" TYPE=\"uint8\"><VALUE>300</VALUE></PROPERTY>",
            ),
        ),
        not_valid,
    );
    add(
        "a uint16 property of abc",
        intrinsic(
            "CreateInstance",
            "root/interop",
            &destination(
                "<PROPERTY NAME=\"Protocol\" TYPE=\"uint16\"><VALUE>abc</VALUE></PROPERTY>",
            ),
        ),
        not_valid,
    );
    add(
        "a boolean property of maybe",
        intrinsic(
            "CreateInstance",
            "root/interop",
            &destination(
                "<PROPERTY NAME=\"Flag\" TYPE=\"boolean\"><VALUE>maybe</VALUE></PROPERTY>",
            ),
        ),
        not_valid,
    );
    add(
        "a datetime property that is not a datetime",
        intrinsic(
            "CreateInstance",
            "root/interop",
            &destination(
                "<PROPERTY NAME=\"When\" TYPE=\"datetime\"><VALUE>yesterday</VALUE></PROPERTY>",
            ),
        ),
        not_valid,
    );
    add(
        "a char16 property of two characters",
        intrinsic(
            "CreateInstance",
            "root/interop",
            &destination("<PROPERTY NAME=\"C\" TYPE=\"char16\"><VALUE>ab</VALUE></PROPERTY>"),
        ),
        not_valid,
    );
    add(
        "an embedded instance that is not XML",
        intrinsic(
            "CreateInstance",
            "root/interop",
            &destination(
                "<PROPERTY NAME=\"E\" TYPE=\"string\" EmbeddedObject=\"instance\">\
                 <VALUE>not &lt;xml</VALUE></PROPERTY>",
            ),
        ),
        not_valid,
    );
    add(
        "an element name in a namespace prefix",
        invalid_body(
            &body
                .replace("<SIMPLEREQ>", "<c:SIMPLEREQ xmlns:c=\"urn:x\">")
                .replace("</SIMPLEREQ>", "</c:SIMPLEREQ>"),
        ),
        not_valid,
    );
    add(
        "an attribute value of 128 KiB",
        broken("ID=\"1001\"", &format!("ID=\"{}\"", "9".repeat(128 * 1024))),
        not_valid,
    );
    add(
        "elements nested 10,000 deep",
        broken(
            "<SIMPLEREQ>",
            &format!(
                "<SIMPLEREQ>{}{}",
                "<X>".repeat(10_000),
                "</X>".repeat(10_000)
            ),
        ),
        not_valid,
    );
    add(
        "embedded instances nested 8 deep",
        {
            let mut inner = "<INSTANCE CLASSNAME=\"X\"/>".to_string();
            for _ in 0..8 {
                let escaped = inner
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;");
                inner = format!(
                    "<INSTANCE CLASSNAME=\"X\"><PROPERTY NAME=\"E\" TYPE=\"string\" \
                     EmbeddedObject=\"instance\"><VALUE>{escaped}</VALUE></PROPERTY></INSTANCE>"
                );
            }
            intrinsic(
                "CreateInstance",
                "root/interop",
                &iparam("NewInstance", &inner),
            )
        },
        not_valid,
    );
    add(
        "CIMVERSION 3.0",
        broken("CIMVERSION=\"2.0\"", "CIMVERSION=\"3.0\""),
        Refused(501, Some("unsupported-cim-version")),
    );
    add(
        "DTDVERSION 3.0",
        broken("DTDVERSION=\"2.0\"", "DTDVERSION=\"3.0\""),
        Refused(501, Some("unsupported-dtd-version")),
    );
    add(
        "PROTOCOLVERSION 2.0",
        broken("PROTOCOLVERSION=\"1.0\"", "PROTOCOLVERSION=\"2.0\""),
        Refused(501, Some("unsupported-protocol-version")),
    );
    add(
        "a MULTIREQ body",
        invalid_body(
            &body
                .replace("<SIMPLEREQ>", "<MULTIREQ><SIMPLEREQ>")
                .replace(
                    "</SIMPLEREQ>",
                    "</SIMPLEREQ><SIMPLEREQ></SIMPLEREQ></MULTIREQ>",
                ),
        ),
        Refused(501, Some("multiple-requests-unsupported")),
    );
    add(
        "an export request to a CIM server",
        invalid_body(&format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<CIM CIMVERSION=\"2.0\" DTDVERSION=\"2.0\">\
             <MESSAGE ID=\"{ID}\" PROTOCOLVERSION=\"1.0\"><SIMPLEEXPREQ>\
             <EXPMETHODCALL NAME=\"ExportIndication\"><EXPPARAMVALUE NAME=\"NewIndication\">\
             <INSTANCE CLASSNAME=\"CIM_AlertIndication\"/></EXPPARAMVALUE></EXPMETHODCALL>\
             </SIMPLEEXPREQ></MESSAGE></CIM>"
        )),
        not_valid,
    );

    // --- CIM operations with wrong parameters, names, namespaces and paths
    add(
        "an unknown intrinsic method",
        intrinsic("EnumerateEverything", "root/interop", ""),
        CimError(CIM_ERR_NOT_SUPPORTED),
    );
    for namespace in ["root/nothing", "nothing", "root/cimv2/deeper"] {
        add(
            &format!("EnumerateClassNames of namespace {namespace}"),
            intrinsic("EnumerateClassNames", namespace, ""),
            CimError(CIM_ERR_INVALID_NAMESPACE),
        );
    }
    add(
        "GetClass of an unknown class",
        intrinsic("GetClass", "root/cimv2", &classname("HP_SGNothing")),
        CimError(CIM_ERR_NOT_FOUND),
    );
    add(
        "GetClass without ClassName",
        intrinsic("GetClass", "root/cimv2", ""),
        CimError(CIM_ERR_INVALID_PARAMETER),
    );
    add(
        "GetClass with ClassName as a VALUE that is no class name",
        intrinsic(
            "GetClass",
            "root/cimv2",
            &iparam("ClassName", &value("no class!")),
        ),
        CimError(CIM_ERR_INVALID_PARAMETER),
    );
    add(
        "GetClass with ClassName as an INSTANCENAME",
        intrinsic(
            "GetClass",
            "root/cimv2",
            &iparam("ClassName", &instance_name("HP_SGCluster", "Name", "x")),
        ),
        CimError(CIM_ERR_INVALID_PARAMETER),
    );
    add(
        "GetClass with an unknown parameter",
        intrinsic(
            "GetClass",
            "root/cimv2",
            &format!(
                "{}{}",
                classname("HP_SGCluster"),
                iparam("Colour", &value("red"))
            ),
        ),
        CimError(CIM_ERR_INVALID_PARAMETER),
    );
    add(
        "GetClass with ClassName twice",
        intrinsic(
            "GetClass",
            "root/cimv2",
            &format!("{}{}", classname("HP_SGCluster"), classname("HP_SGNode")),
        ),
        CimError(CIM_ERR_INVALID_PARAMETER),
    );
    add(
        "GetClass with LocalOnly maybe",
        intrinsic(
            "GetClass",
            "root/cimv2",
            &format!(
                "{}{}",
                classname("HP_SGCluster"),
                iparam("LocalOnly", &value("maybe"))
            ),
        ),
        CimError(CIM_ERR_INVALID_PARAMETER),
    );
    add(
        "GetClass with LocalOnly as an array",
        intrinsic(
            "GetClass",
            "root/cimv2",
            &format!(
                "{}{}",
                classname("HP_SGCluster"),
                iparam(
                    "LocalOnly",
                    "<VALUE.ARRAY><VALUE>TRUE</VALUE></VALUE.ARRAY>"
                )
            ),
        ),
        CimError(CIM_ERR_INVALID_PARAMETER),
    );
    add(
        "GetClass with a PropertyList of a scalar",
        intrinsic(
            "GetClass",
            "root/cimv2",
            &format!(
                "{}{}",
                classname("HP_SGCluster"),
                iparam("PropertyList", &value("Name"))
            ),
        ),
        CimError(CIM_ERR_INVALID_PARAMETER),
    );
    add(
        "EnumerateInstances of an unknown class",
        intrinsic(
            "EnumerateInstances",
            "root/cimv2",
            &classname("HP_SGNothing"),
        ),
        CimError(CIM_ERR_INVALID_CLASS),
    );
    add(
        "EnumerateInstanceNames of an unknown class",
        intrinsic(
            "EnumerateInstanceNames",
            "root/cimv2",
            &classname("HP_SGNothing"),
        ),
        CimError(CIM_ERR_INVALID_CLASS),
    );
    add(
        "EnumerateClasses of an unknown class",
        intrinsic("EnumerateClasses", "root/cimv2", &classname("HP_SGNothing")),
        CimError(CIM_ERR_INVALID_CLASS),
    );
    add(
        "GetInstance of an unknown class",
        intrinsic(
            "GetInstance",
            "root/interop",
            &iparam("InstanceName", &instance_name("CIM_Nothing", "Name", "x")),
        ),
        CimError(CIM_ERR_INVALID_CLASS),
    );
    add(
        "GetInstance of a destination that does not exist",
        intrinsic(
            "GetInstance",
            "root/interop",
            &iparam(
                "InstanceName",
                &system_element_name(
                    "CIM_ListenerDestinationCIMXML",
                    "localhost",
                    "no-such-destination",
                ),
            ),
        ),
        CimError(CIM_ERR_NOT_FOUND),
    );
    add(
        "DeleteInstance of a filter that does not exist",
        intrinsic(
            "DeleteInstance",
            "root/interop",
            &iparam(
                "InstanceName",
                &system_element_name("CIM_IndicationFilter", "localhost", "no-such-filter"),
            ),
        ),
        CimError(CIM_ERR_NOT_FOUND),
    );
    add(
        // `wbemcli di ..CIM_IndicationFilter.Name="f"`: one key of four names no instance.
        "DeleteInstance of a filter named by one of its keys",
        intrinsic(
            "DeleteInstance",
            "root/interop",
            &iparam(
                "InstanceName",
                &instance_name("CIM_IndicationFilter", "Name", "no-such-filter"),
            ),
        ),
        CimError(CIM_ERR_INVALID_PARAMETER),
    );
    add(
        "GetInstance without InstanceName",
        intrinsic("GetInstance", "root/interop", ""),
        CimError(CIM_ERR_INVALID_PARAMETER),
    );
    add(
        "ExecQuery in an unknown language",
        intrinsic(
            "ExecQuery",
            "root/cimv2",
            &format!(
                "{}{}",
                iparam("QueryLanguage", &value("SQL")),
                iparam("Query", &value("SELECT * FROM HP_SGCluster"))
            ),
        ),
        CimError(CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED),
    );
    for (what, query) in [
        ("with a syntax error", "SELECT FROM WHERE"),
        (
            "with an unclosed string",
            "SELECT * FROM HP_SGCluster WHERE Name = 'x",
        ),
        (
            "with trailing words",
            "SELECT * FROM HP_SGCluster garbage garbage",
        ),
        (
            "nested 1,000 deep",
            &format!(
                "SELECT * FROM HP_SGCluster WHERE {}Name = 'x'{}",
                "(".repeat(1000),
                ")".repeat(1000)
            ),
        ),
    ] {
        add(
            &format!("ExecQuery {what}"),
            intrinsic(
                "ExecQuery",
                "root/cimv2",
                &format!(
                    "{}{}",
                    iparam("QueryLanguage", &value("WQL")),
                    iparam("Query", &value(query))
                ),
            ),
            CimError(CIM_ERR_INVALID_QUERY),
        );
    }
    // DSP0200 lists no CIM_ERR_INVALID_CLASS for ExecQuery: a FROM class that does not
    // exist makes the query invalid.
    add(
        "ExecQuery of an unknown class",
        intrinsic(
            "ExecQuery",
            "root/cimv2",
            &format!(
                "{}{}",
                iparam("QueryLanguage", &value("WQL")),
                iparam("Query", &value("SELECT * FROM HP_SGNothing"))
            ),
        ),
        CimError(CIM_ERR_INVALID_QUERY),
    );
    add(
        "ExecQuery without Query",
        intrinsic(
            "ExecQuery",
            "root/cimv2",
            &iparam("QueryLanguage", &value("WQL")),
        ),
        CimError(CIM_ERR_INVALID_PARAMETER),
    );
    add(
        "OpenEnumerateInstances with an unknown filter language",
        intrinsic(
            "OpenEnumerateInstances",
            "root/cimv2",
            &format!(
                "{}{}{}",
                classname("HP_SGCluster"),
                iparam("FilterQueryLanguage", &value("XPath")),
                iparam("FilterQuery", &value("//x"))
            ),
        ),
        CimError(CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED),
    );
    add(
        "OpenEnumerateInstances with a filter that does not parse",
        intrinsic(
            "OpenEnumerateInstances",
            "root/cimv2",
            &format!(
                "{}{}{}",
                classname("HP_SGCluster"),
                iparam("FilterQueryLanguage", &value("DMTF:FQL")),
                iparam("FilterQuery", &value("Name = = 'x'"))
            ),
        ),
        CimError(CIM_ERR_INVALID_QUERY),
    );
    for count in ["-1", "abc", "99999999999999999999"] {
        add(
            &format!("OpenEnumerateInstances with MaxObjectCount {count}"),
            intrinsic(
                "OpenEnumerateInstances",
                "root/cimv2",
                &format!(
                    "{}{}",
                    classname("HP_SGCluster"),
                    iparam("MaxObjectCount", &value(count))
                ),
            ),
            CimError(CIM_ERR_INVALID_PARAMETER),
        );
    }
    add(
        "PullInstancesWithPath of an unknown context",
        intrinsic(
            "PullInstancesWithPath",
            "root/cimv2",
            &format!(
                "{}{}",
                iparam("EnumerationContext", &value("no-such-context")),
                iparam("MaxObjectCount", &value("10"))
            ),
        ),
        CimError(CIM_ERR_INVALID_ENUMERATION_CONTEXT),
    );
    add(
        "CloseEnumeration of an unknown context",
        intrinsic(
            "CloseEnumeration",
            "root/cimv2",
            &iparam("EnumerationContext", &value("no-such-context")),
        ),
        CimError(CIM_ERR_INVALID_ENUMERATION_CONTEXT),
    );
    add(
        "CreateInstance of a filter in an unknown language",
        intrinsic(
            "CreateInstance",
            "root/interop",
            &filter("SQL", "SELECT * FROM CIM_Indication"),
        ),
        CimError(CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED),
    );
    add(
        "CreateInstance of a filter whose query does not parse",
        intrinsic(
            "CreateInstance",
            "root/interop",
            &filter("WQL", "SELECT * FRM"),
        ),
        CimError(CIM_ERR_INVALID_QUERY),
    );
    add(
        "CreateInstance of a destination without Destination",
        intrinsic("CreateInstance", "root/interop", &destination("")),
        CimError(CIM_ERR_INVALID_PARAMETER),
    );
    for url in [
        "ftp://127.0.0.1/x",
        "not a url",
        "http://",
        "https://127.0.0.1:99999/",
    ] {
        add(
            &format!("CreateInstance of a destination to {url}"),
            intrinsic(
                "CreateInstance",
                "root/interop",
                &destination(&format!(
                    "<PROPERTY NAME=\"Destination\" TYPE=\"string\"><VALUE>{url}</VALUE></PROPERTY>"
                )),
            ),
            CimError(CIM_ERR_INVALID_PARAMETER),
        );
    }
    add(
        "CreateInstance of a destination with Destination of the wrong type",
        intrinsic(
            "CreateInstance",
            "root/interop",
            &destination(
                "<PROPERTY NAME=\"Destination\" TYPE=\"uint32\"><VALUE>7</VALUE></PROPERTY>",
            ),
        ),
        // As OpenPegasus answers: more precise than DSP0200's catch-all INVALID_PARAMETER.
        CimError(CIM_ERR_TYPE_MISMATCH),
    );
    add(
        "CreateInstance of a destination with a property its class lacks",
        intrinsic(
            "CreateInstance",
            "root/interop",
            &destination("<PROPERTY NAME=\"Colour\" TYPE=\"string\"><VALUE>red</VALUE></PROPERTY>"),
        ),
        CimError(CIM_ERR_NO_SUCH_PROPERTY),
    );
    add(
        "CreateInstance of a subscription to a filter that does not exist",
        intrinsic(
            "CreateInstance",
            "root/interop",
            &iparam(
                "NewInstance",
                &format!(
                    "<INSTANCE CLASSNAME=\"CIM_IndicationSubscription\">\
                     <PROPERTY.REFERENCE NAME=\"Filter\" REFERENCECLASS=\"CIM_IndicationFilter\">\
                     <VALUE.REFERENCE>{}</VALUE.REFERENCE></PROPERTY.REFERENCE>\
                     <PROPERTY.REFERENCE NAME=\"Handler\" REFERENCECLASS=\"CIM_ListenerDestinationCIMXML\">\
                     <VALUE.REFERENCE>{}</VALUE.REFERENCE></PROPERTY.REFERENCE></INSTANCE>",
                    instance_name("CIM_IndicationFilter", "Name", "no-such-filter"),
                    instance_name("CIM_ListenerDestinationCIMXML", "Name", "no-such-destination"),
                ),
            ),
        ),
        // DSP1054: a Filter or Handler that does not exist is an invalid parameter.
        CimError(CIM_ERR_INVALID_PARAMETER),
    );
    add(
        "CreateInstance of a class in a namespace without it",
        intrinsic(
            "CreateInstance",
            "root/cimv2",
            &iparam(
                "NewInstance",
                "<INSTANCE CLASSNAME=\"CIM_IndicationFilter\"/>",
            ),
        ),
        CimError(CIM_ERR_INVALID_CLASS),
    );
    add(
        "CreateInstance without NewInstance",
        intrinsic("CreateInstance", "root/interop", ""),
        CimError(CIM_ERR_INVALID_PARAMETER),
    );
    add(
        "ModifyInstance of a destination that does not exist",
        intrinsic(
            "ModifyInstance",
            "root/interop",
            &iparam(
                "ModifiedInstance",
                &format!(
                    "<VALUE.NAMEDINSTANCE>{}<INSTANCE CLASSNAME=\"CIM_ListenerDestinationCIMXML\">\
                     <PROPERTY NAME=\"Destination\" TYPE=\"string\"><VALUE>http://127.0.0.1:9</VALUE>\
                     </PROPERTY></INSTANCE></VALUE.NAMEDINSTANCE>",
                    system_element_name(
                        "CIM_ListenerDestinationCIMXML",
                        "localhost",
                        "no-such-destination"
                    )
                ),
            ),
        ),
        CimError(CIM_ERR_NOT_FOUND),
    );
    for (method, params) in [
        ("CreateClass", iparam("NewClass", "<CLASS NAME=\"X_New\"/>")),
        ("DeleteClass", classname("HP_SGCluster")),
        (
            "SetQualifier",
            iparam(
                "QualifierDeclaration",
                "<QUALIFIER.DECLARATION NAME=\"X\" TYPE=\"boolean\"/>",
            ),
        ),
        ("DeleteQualifier", iparam("QualifierName", &value("Key"))),
    ] {
        add(
            &format!("{method}, which changes the schema"),
            intrinsic(method, "root/cimv2", &params),
            CimError(CIM_ERR_NOT_SUPPORTED),
        );
    }
    add(
        "AssociatorNames of an object in an unknown class",
        intrinsic(
            "AssociatorNames",
            "root/cimv2",
            &iparam("ObjectName", &instance_name("HP_SGNothing", "Name", "x")),
        ),
        // DSP0200 lists no CIM_ERR_INVALID_CLASS for the association operations.
        CimError(CIM_ERR_INVALID_PARAMETER),
    );
    add(
        "References with an unknown ResultClass",
        intrinsic(
            "ReferenceNames",
            "root/cimv2",
            &format!(
                "{}{}",
                iparam("ObjectName", "<CLASSNAME NAME=\"HP_SGCluster\"/>"),
                iparam("ResultClass", "<CLASSNAME NAME=\"HP_SGNothing\"/>")
            ),
        ),
        CimError(CIM_ERR_INVALID_PARAMETER),
    );
    add(
        "an extrinsic method that the class lacks",
        method_call("HP_SGCluster", "Explode", ""),
        CimError(CIM_ERR_METHOD_NOT_FOUND),
    );
    add(
        "an extrinsic method on an unknown class",
        method_call("HP_SGNothing", "Explode", ""),
        // DSP0200 lists no CIM_ERR_INVALID_CLASS for InvokeMethod: the target is not found.
        CimError(CIM_ERR_NOT_FOUND),
    );
    add(
        "a method of a class no provider serves on an agent without a cluster",
        instance_method_call(
            &system_element_name("HP_SGPackage", "localhost", "no-such-package"),
            "root/cimv2:HP_SGPackage.SystemCreationClassName=\"CIM_ComputerSystem\",\
             SystemName=\"localhost\",CreationClassName=\"HP_SGPackage\",Name=\"no-such-package\"",
            "RequestStateChange",
            "<PARAMVALUE NAME=\"RequestedState\" PARAMTYPE=\"uint16\"><VALUE>2</VALUE></PARAMVALUE>",
        ),
        CimError(CIM_ERR_NOT_SUPPORTED),
    );
    add(
        "a method parameter that is not a number",
        instance_method_call(
            &instance_name("HP_SGPackage", "Name", "no-such-package"),
            "root/cimv2:HP_SGPackage.Name=\"no-such-package\"",
            "RequestStateChange",
            "<PARAMVALUE NAME=\"RequestedState\" PARAMTYPE=\"uint16\"><VALUE>on</VALUE></PARAMVALUE>",
        ),
        not_valid,
    );

    // --- Slow and stalled clients
    let good = post_body("EnumerateClassNames", "root/interop", &good_body());
    let head_end = good.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    cases.push(Case {
        name: "headers sent byte by byte, forever".into(),
        bytes: b"POST /cimom HTTP/1.1\r\nHost: localhost\r\n"
            .iter()
            .chain(b"X-Slow: ".iter())
            .chain([b'a'; 4096].iter())
            .copied()
            .collect(),
        pace: Pace::Trickle(Duration::from_millis(50)),
        expect: CutOff,
    });
    cases.push(Case {
        name: "half a head, then silence".into(),
        bytes: good[..head_end / 2].to_vec(),
        pace: Pace::ThenSilence,
        expect: CutOff,
    });
    cases.push(Case {
        name: "the head, then half the body, then silence".into(),
        bytes: good[..head_end + (good.len() - head_end) / 2].to_vec(),
        pace: Pace::ThenSilence,
        expect: Refused(408, None),
    });
    cases.push(Case {
        name: "the body sent byte by byte, slower than the body timeout".into(),
        bytes: {
            let mut bytes = good.clone();
            bytes.extend(std::iter::repeat_n(b' ', 4096));
            let length = good.len() - head_end + 4096;
            String::from_utf8(bytes)
                .unwrap()
                .replacen(
                    &format!("Content-Length: {}", good.len() - head_end),
                    &format!("Content-Length: {length}"),
                    1,
                )
                .into_bytes()
        },
        pace: Pace::Trickle(Duration::from_millis(20)),
        // The agent answers 408 and closes, but the bytes still arriving reset the
        // connection, which may discard the answer before the client reads it.
        expect: CutOff,
    });
    cases
}

/// `broken` for the element inside SIMPLEREQ.
fn broken_inner(inner: &str) -> Vec<u8> {
    post_body("EnumerateClassNames", "root/interop", &message(inner))
}

// ------------------------------------------------------------------ running a case

/// Sends one case and checks the answer; `Err` says what differed.
fn run(address: SocketAddr, case: &Case) -> Result<(), String> {
    let mut connection = Connection::plain(address).map_err(|e| format!("connect: {e}"))?;
    let started = Instant::now();
    let answer = match case.pace {
        Pace::Whole | Pace::ThenSilence => {
            // The agent may answer and close before it has read everything: a failed write
            // is fine, what it answered is what counts.
            let _ = connection.send(&case.bytes);
            read_answer(&mut connection)
        }
        Pace::Trickle(every) => {
            let mut closed = false;
            for byte in &case.bytes {
                if connection.send(&[*byte]).is_err() {
                    closed = true;
                    break;
                }
                std::thread::sleep(every);
                if started.elapsed() > CUT_OFF_WITHIN {
                    return Err(format!("still reading after {CUT_OFF_WITHIN:?}"));
                }
            }
            if !closed {
                return Err("the agent took the whole trickle".into());
            }
            read_answer(&mut connection)
        }
    };
    if started.elapsed() > CUT_OFF_WITHIN {
        return Err(format!("answered after {:?}", started.elapsed()));
    }
    match (case.expect, answer) {
        (Expect::CutOff, Answer::Closed) => Ok(()),
        (Expect::CutOff, Answer::Response(response)) if matches!(response.status, 400 | 408) => {
            Ok(())
        }
        (Expect::Refused(status, cim_error), Answer::Response(response)) => {
            let got = (response.status, cim_error_of(&response));
            if got != (status, cim_error) {
                return Err(format!(
                    "answered {} {:?} with CIMError {:?}: {}",
                    response.status,
                    response.reason,
                    cim_error_of(&response),
                    detail(&response)
                ));
            }
            if response.header("CIMOperation") == Some("MethodResponse") {
                return Err("a refused request got a CIM-XML response".into());
            }
            Ok(())
        }
        (Expect::CimError(code), Answer::Response(response)) => {
            if response.status != 200 {
                return Err(format!(
                    "answered {} with CIMError {:?}, not 200 with CIM error {code}: {}",
                    response.status,
                    response.header("CIMError"),
                    detail(&response)
                ));
            }
            let message = decode(&response.body, &Limits::DEFAULT)
                .map_err(|e| format!("the 200 response is not CIM-XML: {e}"))?;
            if message.id != ID {
                return Err(format!("the response's message ID is {:?}", message.id));
            }
            let result = match &message.body {
                Body::Response(Response::IMethod(response)) => response.result.as_ref().err(),
                Body::Response(Response::Method(response)) => response.result.as_ref().err(),
                other => return Err(format!("not a method response: {other:?}")),
            };
            match result {
                Some(error) if error.code == code => Ok(()),
                Some(error) => Err(format!(
                    "CIM error {} ({:?}), not {code}",
                    error.code, error.description
                )),
                None => Err(format!("succeeded, not CIM error {code}")),
            }
        }
        (expect, Answer::Closed) => Err(format!("closed without an answer, not {expect:?}")),
        (expect, Answer::Failed(why)) => Err(format!("{why}, not {expect:?}")),
        (Expect::CutOff, Answer::Response(response)) => Err(format!(
            "answered {} instead of cutting off: {}",
            response.status,
            detail(&response)
        )),
    }
}

enum Answer {
    Response(RawResponse),
    Closed,
    Failed(String),
}

fn read_answer(connection: &mut Connection) -> Answer {
    match connection.read_response() {
        Ok(response) => Answer::Response(response),
        Err(error)
            if matches!(
                error.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ) =>
        {
            Answer::Closed
        }
        Err(error) => Answer::Failed(format!("reading the answer failed: {error}")),
    }
}

fn detail(response: &RawResponse) -> String {
    let mut text = response
        .header("PGErrorDetail")
        .map(|d| format!("detail {d:?} "))
        .unwrap_or_default();
    let body = response.body_text();
    text.push_str(&body.chars().take(300).collect::<String>());
    text
}

/// The agent still answers a good request on a new connection.
fn still_answers(address: SocketAddr) -> Result<(), String> {
    let mut connection = Connection::plain(address).map_err(|e| format!("connect: {e}"))?;
    let response = connection
        .request(&post_body(
            "EnumerateClassNames",
            "root/interop",
            &good_body(),
        ))
        .map_err(|e| format!("the good request failed: {e}"))?;
    if response.status != 200 {
        return Err(format!("the good request got {}", response.status));
    }
    let message = decode(&response.body, &Limits::DEFAULT)
        .map_err(|e| format!("the good request's answer is not CIM-XML: {e}"))?;
    match &message.body {
        Body::Response(Response::IMethod(answer)) if answer.result.is_ok() => Ok(()),
        other => Err(format!("the good request failed: {other:?}")),
    }
}

#[test]
fn every_bad_input_gets_its_exact_answer_and_the_agent_still_answers() {
    let agent = Agent::start(&[
        "--danger-allow-anonymous",
        "--body-bytes-max",
        &BODY_BYTES_MAX.to_string(),
        "--header-read-timeout",
        &HEADER_READ_TIMEOUT_SECONDS.to_string(),
        "--body-read-timeout",
        &BODY_READ_TIMEOUT_SECONDS.to_string(),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    still_answers(agent.http).unwrap_or_else(|e| panic!("before any case: {e}"));
    let cases = catalogue();
    assert!(
        cases.len() >= 100,
        "the catalogue has {} cases",
        cases.len()
    );
    let mut names = std::collections::HashSet::new();
    for case in &cases {
        assert!(
            names.insert(case.name.as_str()),
            "two cases named {:?}",
            case.name
        );
    }
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(why) = run(agent.http, case) {
            failures.push(format!("{}: {why}", case.name));
        }
        if let Err(why) = still_answers(agent.http) {
            failures.push(format!("after {}: {why}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}\nagent log tail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n"),
        agent
            .log()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Wrong arguments to the operator commands are usage errors: exit status 2 and a line
/// that names what is wrong, before any agent is asked (none is at the URL given).
#[test]
fn wrong_arguments_to_the_commands_exit_with_status_2() {
    let cases: &[(&str, &[&str], &str)] = &[
        ("cmviewcl", &["-r", "foo"], "not a release"),
        ("cmviewcl", &["-r", "A.11.09"], "A.11.16 or later"),
        ("cmviewcl", &["--no-such-option"], "--no-such-option"),
        ("cmquerycl", &[], "give the nodes of a new cluster"),
        ("cmquerycl", &["-n", "bad name!"], "bad name!"),
        ("cmrunpkg", &[], "Usage"),
    ];
    let mut failures = Vec::new();
    for (name, args, said) in cases {
        let program = cimguard_tests::agent::binary(name).unwrap_or_else(|e| panic!("{e}"));
        let output = std::process::Command::new(program)
            .args(*args)
            .env("CIMGUARD_URL", "https://127.0.0.1:9")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("the command runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.code() != Some(2) || !stderr.contains(said) {
            failures.push(format!("{name} {args:?}: {:?} {stderr}", output.status));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
