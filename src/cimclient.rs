//! The cm* commands' CIM-XML client of the local agent (DSP0200 over HTTPS): where the agent
//! is and who asks come from `CIMGUARD_URL`, `CIMGUARD_USER`, `CIMGUARD_PASSWORD` and
//! `CIMGUARD_CA`; each call is one `POST /cimom` whose answer is decoded with the same codec
//! the agent uses.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use cim_schema::model::{InstancePath, KeyBinding, Name, ObjectPath, Value};
use cim_schema::xml::{
    decode, encode, Body, Data, Limits, Message, MethodCall, ParamValue, Request, Response, Untyped,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;

/// The agent's default address: this node's, on DSP0200's HTTPS port.
pub const DEFAULT_URL: &str = "https://127.0.0.1:5989";
/// Where a node keeps its agent's authority.
pub const DEFAULT_CA: &str = "/var/lib/cimguard/tls/ca.pem";
/// The longest a call may take (a halt that first halts dependents waits minutes).
const CALL_TIMEOUT: Duration = Duration::from_secs(360);
/// The namespace of the cluster model.
pub const CIMV2: &str = "root/cimv2";

/// A connection to one agent.
pub struct Client {
    url: String,
    authorization: String,
    agent: ureq::Agent,
}

/// The outcome of an extrinsic method: its return value and output parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Returned {
    /// The return value (the methods of the cluster classes return a uint32).
    pub value: Option<u32>,
    /// The output parameters by name.
    pub out: Vec<(String, Option<Value>)>,
}

impl Returned {
    /// The string output parameter `name`.
    pub fn out_string(&self, name: &str) -> Option<&str> {
        self.out.iter().find_map(|(n, v)| match v {
            Some(Value::String(text)) if n.eq_ignore_ascii_case(name) => Some(text.as_str()),
            _ => None,
        })
    }
}

fn variable(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Client {
    /// A client configured from the environment.
    pub fn from_env() -> Result<Client, String> {
        let url = variable("CIMGUARD_URL").unwrap_or_else(|| DEFAULT_URL.to_owned());
        let user = variable("CIMGUARD_USER")
            .ok_or("CIMGUARD_USER is not set: give the agent's user (and CIMGUARD_PASSWORD)")?;
        let password = variable("CIMGUARD_PASSWORD")
            .ok_or("CIMGUARD_PASSWORD is not set: give the password of CIMGUARD_USER")?;
        let ca = PathBuf::from(variable("CIMGUARD_CA").unwrap_or_else(|| DEFAULT_CA.to_owned()));
        Client::new(&url, &user, &password, &ca)
    }

    /// A client of the agent at `url` (https://host:port), as `user`, trusting the
    /// authorities of the PEM file `ca`.
    pub fn new(url: &str, user: &str, password: &str, ca: &PathBuf) -> Result<Client, String> {
        let url = url.trim_end_matches('/').to_owned();
        if !url.starts_with("https://") {
            return Err(format!("CIMGUARD_URL {url} is not an https:// URL"));
        }
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(ca).map_err(|e| {
            format!(
                "the agent's authority {}: {e} (set CIMGUARD_CA)",
                ca.display()
            )
        })?;
        for certificate in CertificateDer::pem_slice_iter(&pem) {
            let certificate =
                certificate.map_err(|e| format!("the agent's authority {}: {e}", ca.display()))?;
            roots
                .add(certificate)
                .map_err(|e| format!("the agent's authority {}: {e}", ca.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("{} holds no certificate", ca.display()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let agent = ureq::AgentBuilder::new()
            .tls_config(Arc::new(tls))
            .timeout(CALL_TIMEOUT)
            .build();
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Ok(Client {
            url,
            authorization: format!("Basic {credentials}"),
            agent,
        })
    }

    /// InvokeMethod `method` on the instance at `path` (in root/cimv2) with `params`.
    pub fn invoke(
        &self,
        path: &InstancePath,
        method: &str,
        params: Vec<(&str, Value)>,
    ) -> Result<Returned, String> {
        let mut target = path.clone();
        target.namespace = Some(CIMV2.to_owned());
        target.host = None;
        self.call(ObjectPath::Instance(target), method, params)
    }

    /// InvokeMethod of the static `method` of `class` (in root/cimv2).
    pub fn invoke_static(
        &self,
        class: &str,
        method: &str,
        params: Vec<(&str, Value)>,
    ) -> Result<Returned, String> {
        let mut target = cim_schema::model::ClassPath::new(class);
        target.namespace = Some(CIMV2.to_owned());
        self.call(ObjectPath::Class(target), method, params)
    }

    fn call(
        &self,
        target: ObjectPath,
        method: &str,
        params: Vec<(&str, Value)>,
    ) -> Result<Returned, String> {
        let header = target
            .to_wbem_uri()
            .map_err(|e| format!("the path of {method}'s target: {e}"))?;
        let header =
            percent_encoding::utf8_percent_encode(header.trim_start_matches('/'), HEADER_ESCAPES)
                .to_string();
        let message = Message::new(
            "1001",
            Body::Request(Request::MethodCall(MethodCall {
                name: Name::new(method),
                target,
                params: params
                    .into_iter()
                    .map(|(name, value)| ParamValue::typed(name, Some(value)))
                    .collect(),
            })),
        );
        let body = encode(&message).map_err(|e| format!("the request does not encode: {e}"))?;
        let response = self
            .agent
            .post(&format!("{}/cimom", self.url))
            .set("Content-Type", "application/xml; charset=\"utf-8\"")
            .set("CIMProtocolVersion", "1.0")
            .set("CIMOperation", "MethodCall")
            .set("CIMMethod", method)
            .set("CIMObject", &header)
            .set("Authorization", &self.authorization)
            .send_bytes(&body);
        let response = match response {
            Ok(response) => response,
            Err(ureq::Error::Status(401, _)) => {
                return Err(format!(
                    "{}: the user or password is wrong (CIMGUARD_USER, CIMGUARD_PASSWORD)",
                    self.url
                ))
            }
            Err(ureq::Error::Status(code, response)) => {
                let reason = response
                    .header("CIMError")
                    .map(str::to_owned)
                    .unwrap_or_else(|| response.status_text().to_owned());
                return Err(format!("{}: HTTP {code} {reason}", self.url));
            }
            Err(ureq::Error::Transport(e)) => {
                return Err(format!("cannot reach the agent at {}: {e}", self.url))
            }
        };
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes)
            .map_err(|e| format!("{}: the answer broke off: {e}", self.url))?;
        let message = decode(&bytes, &Limits::DEFAULT)
            .map_err(|e| format!("{}: the answer does not decode: {e}", self.url))?;
        let Body::Response(Response::Method(response)) = message.body else {
            return Err(format!("{}: the answer is not a method response", self.url));
        };
        let returned = response.result.map_err(|error| {
            format!(
                "{}{}",
                cim_error_name(error.code),
                error
                    .description
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            )
        })?;
        let value = returned.return_value.and_then(|r| match r.value {
            Data::Value(Value::Uint32(n)) => Some(n),
            Data::Untyped(Untyped::Scalar(text)) => text.parse().ok(),
            _ => None,
        });
        let out = returned
            .params
            .into_iter()
            .map(|p| {
                let value = match p.value {
                    Data::Value(value) => Some(value),
                    Data::Untyped(Untyped::Scalar(text)) => Some(Value::String(text)),
                    _ => None,
                };
                (p.name.as_str().to_owned(), value)
            })
            .collect();
        Ok(Returned { value, out })
    }
}

/// What a `CIMObject` header value escapes (DSP0200: the URI form of the object path).
const HEADER_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b':')
    .remove(b'=')
    .remove(b',')
    .remove(b'.')
    .remove(b'_')
    .remove(b'-');

/// The name of a CIM status code, for messages.
fn cim_error_name(code: u32) -> String {
    let name = match code {
        1 => "CIM_ERR_FAILED",
        2 => "CIM_ERR_ACCESS_DENIED",
        3 => "CIM_ERR_INVALID_NAMESPACE",
        4 => "CIM_ERR_INVALID_PARAMETER",
        5 => "CIM_ERR_INVALID_CLASS",
        6 => "CIM_ERR_NOT_FOUND",
        7 => "CIM_ERR_NOT_SUPPORTED",
        _ => return format!("CIM error {code}"),
    };
    name.to_owned()
}

/// The path of an instance of a class whose keys are all strings.
pub fn path(class: &str, keys: &[(&str, &str)]) -> InstancePath {
    let mut path = InstancePath::new(class);
    for (name, value) in keys {
        path.keybindings.push(KeyBinding {
            name: (*name).into(),
            value: Value::String((*value).to_owned()),
        });
    }
    path
}
