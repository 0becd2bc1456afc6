//! What the agent promises of its transport and of who may do what (SECURITY.md), checked
//! from outside: the TLS versions and suites `openssl s_client` can get, and the whole matrix
//! of roles against every operation and method.
//!
//! Needs the binaries (`cargo build --bins`) and `openssl` on the PATH.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use cim_schema::xml::{decode, Body, Limits, Response};
use cimguard_tests::agent::{users_file, Agent};
use cimguard_tests::raw_http::{self, Connection, RawResponse, TlsVersion};
use cimguard_tests::requests::{instance_name, iparam, namespace_elements};

// ------------------------------------------------------------------ TLS

/// What `openssl s_client` got: whether the handshake completed, the protocol and the suite.
struct Handshake {
    established: bool,
    protocol: String,
    suite: String,
    output: String,
}

fn s_client(address: SocketAddr, ca: &Path, options: &[&str]) -> Handshake {
    let output = Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(address.to_string())
        .args(["-servername", "localhost", "-brief", "-CAfile"])
        .arg(ca)
        .args(options)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("openssl s_client: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|value| value.trim().to_string())
            .unwrap_or_default()
    };
    Handshake {
        established: text.contains("CONNECTION ESTABLISHED"),
        protocol: field("Protocol version:"),
        suite: field("Ciphersuite:"),
        output: text,
    }
}

#[test]
fn openssl_gets_only_tls_1_2_or_1_3_with_forward_secret_suites() {
    let agent = Agent::start(&["--danger-allow-anonymous"]).unwrap_or_else(|e| panic!("{e}"));
    let ca = agent.ca_path();
    // The client's own floor is lowered (SECLEVEL=0) so that it really offers the old ones.
    for (what, options) in [
        ("TLS 1.0", &["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"][..]),
        ("TLS 1.1", &["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"][..]),
        (
            "TLS 1.2 with RSA key exchange only",
            &[
                "-tls1_2",
                "-cipher",
                "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256:AES256-SHA256:AES128-SHA:AES256-SHA:@SECLEVEL=0",
            ][..],
        ),
        (
            "TLS 1.2 with finite-field DHE only",
            &["-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"][..],
        ),
        (
            "TLS 1.2 with CBC and SHA-1 ECDHE suites only",
            &[
                "-tls1_2",
                "-cipher",
                "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:@SECLEVEL=0",
            ][..],
        ),
        (
            "TLS 1.2 with NULL and export suites",
            &["-tls1_2", "-cipher", "NULL:EXPORT:@SECLEVEL=0"][..],
        ),
    ] {
        let handshake = s_client(agent.https, &ca, options);
        assert!(
            !handshake.established,
            "{what} was accepted ({} {}):\n{}",
            handshake.protocol, handshake.suite, handshake.output
        );
    }
    for (what, options, protocol) in [
        ("TLS 1.2 by default", &["-tls1_2"][..], "TLSv1.2"),
        (
            "TLS 1.2 with ECDHE-AESGCM",
            &[
                "-tls1_2",
                "-cipher",
                "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256",
            ][..],
            "TLSv1.2",
        ),
        (
            "TLS 1.2 with ChaCha20",
            &[
                "-tls1_2",
                "-cipher",
                "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
            ][..],
            "TLSv1.2",
        ),
        ("TLS 1.3", &["-tls1_3"][..], "TLSv1.3"),
        ("whatever the client likes best", &[][..], "TLSv1.3"),
    ] {
        let handshake = s_client(agent.https, &ca, options);
        assert!(
            handshake.established && handshake.protocol == protocol,
            "{what}: {}",
            handshake.output
        );
        // TLS 1.3 suites are all forward secret; a 1.2 suite must say ECDHE.
        assert!(
            protocol == "TLSv1.3" || handshake.suite.starts_with("ECDHE-"),
            "{what} got {}",
            handshake.suite
        );
    }
}

// ------------------------------------------------------------------ roles

const MONITOR: (&str, &str) = ("watcher", "watcher pass 1");
const PACKAGE_ADMIN: (&str, &str) = ("pkgops", "pkgops pass 2");
const FULL_ADMIN: (&str, &str) = ("root-ops", "root-ops pass 3");
/// A MONITOR whose subscription the others try to delete.
const OWNER: (&str, &str) = ("owner", "owner pass 4");

const CIM_ERR_ACCESS_DENIED: u32 = 2;
const CIM_ERR_NOT_SUPPORTED: u32 = 7;

/// Who may do a thing.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
enum Needs {
    /// Any authenticated user.
    Monitor,
    /// PACKAGE_ADMIN or FULL_ADMIN.
    PackageAdmin,
    /// FULL_ADMIN only.
    FullAdmin,
    /// Nobody: not supported here (the schema is read-only), CIM_ERR_NOT_SUPPORTED for all.
    Nobody,
}

struct Operation {
    name: String,
    method: String,
    object: String,
    body: String,
    needs: Needs,
    /// Whoever may run it succeeds (not merely: is not denied).
    succeeds: bool,
}

fn message(id: usize, inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><CIM CIMVERSION=\"2.0\" DTDVERSION=\"2.0\">\
         <MESSAGE ID=\"{id}\" PROTOCOLVERSION=\"1.0\"><SIMPLEREQ>{inner}</SIMPLEREQ></MESSAGE></CIM>"
    )
}

fn classname(name: &str) -> String {
    format!("<CLASSNAME NAME=\"{name}\"/>")
}

fn value(text: &str) -> String {
    format!("<VALUE>{text}</VALUE>")
}

fn filter_instance(name: &str) -> String {
    format!(
        "<INSTANCE CLASSNAME=\"CIM_IndicationFilter\">\
         <PROPERTY NAME=\"Name\" TYPE=\"string\"><VALUE>{name}</VALUE></PROPERTY>\
         <PROPERTY NAME=\"QueryLanguage\" TYPE=\"string\"><VALUE>WQL</VALUE></PROPERTY>\
         <PROPERTY NAME=\"Query\" TYPE=\"string\"><VALUE>SELECT * FROM CIM_InstModification</VALUE></PROPERTY>\
         </INSTANCE>"
    )
}

/// Every intrinsic operation DSP0200 defines and every extrinsic method of the schema, with
/// the least role that may run it. `user` names the filter a user creates and deletes as its
/// own.
fn operations() -> Vec<Operation> {
    let mut list = Vec::new();
    let mut intrinsic = |method: &str, namespace: &str, params: String, needs: Needs| {
        list.push(Operation {
            name: format!("{method} in {namespace}"),
            method: method.into(),
            object: namespace.into(),
            body: format!(
                "<IMETHODCALL NAME=\"{method}\"><LOCALNAMESPACEPATH>{}</LOCALNAMESPACEPATH>{params}\
                 </IMETHODCALL>",
                namespace_elements(namespace)
            ),
            needs,
            succeeds: false,
        });
    };
    use Needs::*;
    let cluster = || iparam("ClassName", &classname("HP_SGCluster"));
    let package = || instance_name("HP_SGPackage", "Name", "dbpkg");
    intrinsic("EnumerateClassNames", "root/cimv2", String::new(), Monitor);
    intrinsic("EnumerateClasses", "root/cimv2", String::new(), Monitor);
    intrinsic("GetClass", "root/cimv2", cluster(), Monitor);
    intrinsic(
        "EnumerateInstances",
        "root/interop",
        iparam("ClassName", &classname("CIM_Namespace")),
        Monitor,
    );
    intrinsic(
        "EnumerateInstanceNames",
        "root/interop",
        iparam("ClassName", &classname("CIM_Namespace")),
        Monitor,
    );
    intrinsic(
        "GetInstance",
        "root/cimv2",
        iparam("InstanceName", &package()),
        Monitor,
    );
    intrinsic(
        "GetProperty",
        "root/cimv2",
        iparam("InstanceName", &package()) + &iparam("PropertyName", &value("Name")),
        Monitor,
    );
    intrinsic(
        "ExecQuery",
        "root/interop",
        iparam("QueryLanguage", &value("WQL"))
            + &iparam("Query", &value("SELECT * FROM CIM_Namespace")),
        Monitor,
    );
    intrinsic(
        "Associators",
        "root/cimv2",
        iparam("ObjectName", &package()),
        Monitor,
    );
    intrinsic(
        "AssociatorNames",
        "root/cimv2",
        iparam("ObjectName", &package()),
        Monitor,
    );
    intrinsic(
        "References",
        "root/cimv2",
        iparam("ObjectName", &package()),
        Monitor,
    );
    intrinsic(
        "ReferenceNames",
        "root/cimv2",
        iparam("ObjectName", &package()),
        Monitor,
    );
    intrinsic(
        "GetQualifier",
        "root/cimv2",
        iparam("QualifierName", &value("Key")),
        Monitor,
    );
    intrinsic("EnumerateQualifiers", "root/cimv2", String::new(), Monitor);
    intrinsic(
        "OpenEnumerateInstances",
        "root/interop",
        iparam("ClassName", &classname("CIM_Namespace")),
        Monitor,
    );
    intrinsic(
        "OpenEnumerateInstancePaths",
        "root/interop",
        iparam("ClassName", &classname("CIM_Namespace")),
        Monitor,
    );
    intrinsic(
        "OpenAssociatorInstances",
        "root/cimv2",
        iparam("InstanceName", &package()),
        Monitor,
    );
    intrinsic(
        "OpenAssociatorInstancePaths",
        "root/cimv2",
        iparam("InstanceName", &package()),
        Monitor,
    );
    intrinsic(
        "OpenReferenceInstances",
        "root/cimv2",
        iparam("InstanceName", &package()),
        Monitor,
    );
    intrinsic(
        "OpenReferenceInstancePaths",
        "root/cimv2",
        iparam("InstanceName", &package()),
        Monitor,
    );
    intrinsic(
        "OpenQueryInstances",
        "root/interop",
        iparam("FilterQueryLanguage", &value("DMTF:CQL"))
            + &iparam("FilterQuery", &value("SELECT * FROM CIM_Namespace"))
            + &iparam("ReturnQueryResultClass", &value("FALSE")),
        Monitor,
    );
    intrinsic(
        "PullInstancesWithPath",
        "root/interop",
        iparam("EnumerationContext", &value("none")) + &iparam("MaxObjectCount", &value("1")),
        Monitor,
    );
    intrinsic(
        "EnumerationCount",
        "root/interop",
        iparam("EnumerationContext", &value("none")),
        Monitor,
    );
    intrinsic(
        "CloseEnumeration",
        "root/interop",
        iparam("EnumerationContext", &value("none")),
        Monitor,
    );
    // Subscriptions: one's own, by anyone.
    intrinsic(
        "CreateInstance",
        "root/interop",
        iparam("NewInstance", &filter_instance("{user}")),
        Monitor,
    );

    intrinsic(
        "ModifyInstance",
        "root/interop",
        iparam(
            "ModifiedInstance",
            &format!(
                "<VALUE.NAMEDINSTANCE>{}{}</VALUE.NAMEDINSTANCE>",
                "{own path}",
                filter_instance("{user}")
            ),
        ) + &iparam(
            "PropertyList",
            "<VALUE.ARRAY><VALUE>Query</VALUE></VALUE.ARRAY>",
        ),
        Monitor,
    );
    intrinsic(
        "DeleteInstance",
        "root/interop",
        iparam("InstanceName", "{own path}"),
        Monitor,
    );

    // Another user's subscription: FULL_ADMIN only (the last to try deletes it).
    intrinsic(
        "DeleteInstance",
        "root/interop",
        iparam("InstanceName", "{owner's path}"),
        FullAdmin,
    );

    // The cluster's instances and the schema: FULL_ADMIN only.
    intrinsic(
        "CreateInstance",
        "root/cimv2",
        iparam(
            "NewInstance",
            "<INSTANCE CLASSNAME=\"HP_SGPackage\"><PROPERTY NAME=\"Name\" TYPE=\"string\"><VALUE>x</VALUE></PROPERTY></INSTANCE>",
        ),
        FullAdmin,
    );
    intrinsic(
        "ModifyInstance",
        "root/cimv2",
        iparam(
            "ModifiedInstance",
            &format!(
                "<VALUE.NAMEDINSTANCE>{}<INSTANCE CLASSNAME=\"HP_SGPackage\"/></VALUE.NAMEDINSTANCE>",
                package()
            ),
        ),
        FullAdmin,
    );
    intrinsic(
        "DeleteInstance",
        "root/cimv2",
        iparam("InstanceName", &package()),
        FullAdmin,
    );
    // Turning the server's statistics on (CIM_ObjectManager.GatherStatisticalData).
    intrinsic(
        "ModifyInstance",
        "root/interop",
        iparam(
            "ModifiedInstance",
            &format!(
                "<VALUE.NAMEDINSTANCE>{}<INSTANCE CLASSNAME=\"CIM_ObjectManager\">\
                 <PROPERTY NAME=\"GatherStatisticalData\" TYPE=\"boolean\"><VALUE>TRUE</VALUE>\
                 </PROPERTY></INSTANCE></VALUE.NAMEDINSTANCE>",
                instance_name("CIM_ObjectManager", "Name", "cimguard:x")
            ),
        ),
        FullAdmin,
    );
    intrinsic(
        "SetProperty",
        "root/cimv2",
        iparam("InstanceName", &package())
            + &iparam("PropertyName", &value("Name"))
            + &iparam("NewValue", &value("y")),
        FullAdmin,
    );
    intrinsic(
        "SetProperty",
        "root/interop",
        iparam(
            "InstanceName",
            &instance_name("CIM_ObjectManager", "Name", "cimguard:x"),
        ) + &iparam("PropertyName", &value("GatherStatisticalData"))
            + &iparam("NewValue", &value("TRUE")),
        FullAdmin,
    );
    intrinsic(
        "CreateClass",
        "root/cimv2",
        iparam("NewClass", "<CLASS NAME=\"X_New\"/>"),
        Nobody,
    );
    intrinsic(
        "ModifyClass",
        "root/cimv2",
        iparam(
            "ModifiedClass",
            "<CLASS NAME=\"HP_SGCluster\" SUPERCLASS=\"CIM_Cluster\"/>",
        ),
        Nobody,
    );
    intrinsic("DeleteClass", "root/cimv2", cluster(), Nobody);
    intrinsic(
        "SetQualifier",
        "root/cimv2",
        iparam(
            "QualifierDeclaration",
            "<QUALIFIER.DECLARATION NAME=\"X\" TYPE=\"boolean\"/>",
        ),
        Nobody,
    );
    intrinsic(
        "DeleteQualifier",
        "root/cimv2",
        iparam("QualifierName", &value("Key")),
        Nobody,
    );
    // The subscription operations succeed for whoever may run them.
    for operation in &mut list {
        operation.succeeds = ["{user}", "{own path}", "{owner's path}"]
            .iter()
            .any(|placeholder| operation.body.contains(placeholder));
    }

    let mut extrinsic = |class: &str,
                         method: &str,
                         on: Option<&str>,
                         params: &str,
                         needs: Needs| {
        // The server's own classes are in root/interop, the cluster's in root/cimv2: a
        // method is looked up in its class's namespace before the role is checked.
        let namespace = if class.starts_with("CIM_CIMOM") {
            "root/interop"
        } else {
            "root/cimv2"
        };
        let (path, object) = match on {
            Some(key) => (
                format!(
                    "<LOCALINSTANCEPATH><LOCALNAMESPACEPATH>{}</LOCALNAMESPACEPATH>{}</LOCALINSTANCEPATH>",
                    namespace_elements(namespace),
                    instance_name(class, "Name", key)
                ),
                format!("{namespace}:{class}.Name=\"{key}\""),
            ),
            None => (
                format!(
                    "<LOCALCLASSPATH><LOCALNAMESPACEPATH>{}</LOCALNAMESPACEPATH>{}</LOCALCLASSPATH>",
                    namespace_elements(namespace),
                    classname(class)
                ),
                format!("{namespace}:{class}"),
            ),
        };
        list.push(Operation {
            name: format!("{class}.{method}"),
            method: method.into(),
            object,
            body: format!("<METHODCALL NAME=\"{method}\">{path}{params}</METHODCALL>"),
            needs,
            succeeds: false,
        });
    };
    for method in [
        "SetAutoRun",
        "SetNodeSwitching",
        "RequestStateChange",
        "ResetRestarts",
        "SetMaintenance",
    ] {
        extrinsic("HP_SGPackage", method, Some("dbpkg"), "", PackageAdmin);
    }
    extrinsic(
        "HP_SGGenericResource",
        "SetStatus",
        Some("sfm_disk"),
        "",
        PackageAdmin,
    );
    for method in ["GetView", "GetConfiguration"] {
        extrinsic(
            "HP_SGClusteringService",
            method,
            Some("cluster"),
            "",
            Monitor,
        );
    }
    for method in [
        "RunCluster",
        "RunNode",
        "HaltCluster",
        "HaltNode",
        "ApplyConfiguration",
    ] {
        extrinsic(
            "HP_SGClusteringService",
            method,
            Some("cluster"),
            "",
            FullAdmin,
        );
    }
    for method in [
        "OpenConformantInstances",
        "PullConformantInstances",
        "CloseConformantInstances",
        "GetCentralInstances",
    ] {
        extrinsic("CIM_RegisteredProfile", method, None, "", Monitor);
    }
    // The server's statistics (served in root/interop).
    extrinsic(
        "CIM_CIMOMStatisticalData",
        "ResetSelectedStats",
        None,
        "",
        FullAdmin,
    );
    list
}

/// The request of `operation` by `user`; `owner_path` is the `INSTANCENAME` of the owner's
/// filter, which also gives the keys of the user's own.
fn request(
    operation: &Operation,
    id: usize,
    user: &str,
    authorization: Option<&str>,
    owner_path: &str,
) -> Vec<u8> {
    let own_path = owner_path.replace("owned-by-owner", &format!("own-{user}"));
    let body = message(
        id,
        &operation
            .body
            .replace("{own path}", &own_path)
            .replace("{owner's path}", owner_path)
            .replace("{user}", &format!("own-{user}")),
    );
    let mut headers = vec![
        ("Content-Type", "application/xml; charset=\"utf-8\""),
        ("CIMOperation", "MethodCall"),
        ("CIMMethod", operation.method.as_str()),
        ("CIMObject", operation.object.as_str()),
    ];
    if let Some(authorization) = authorization {
        headers.push(("Authorization", authorization));
    }
    raw_http::request(
        "POST",
        "/cimom",
        "localhost",
        &headers,
        Some(body.as_bytes()),
    )
}

/// The CIM error code of a 200 CIM-XML response, `None` for a success.
fn cim_error(response: &RawResponse) -> Result<Option<u32>, String> {
    if response.status != 200 {
        return Err(format!(
            "HTTP {} {:?}",
            response.status,
            response.header("CIMError")
        ));
    }
    let message = decode(&response.body, &Limits::DEFAULT).map_err(|e| e.to_string())?;
    Ok(match &message.body {
        Body::Response(Response::IMethod(r)) => r.result.as_ref().err().map(|e| e.code),
        Body::Response(Response::Method(r)) => r.result.as_ref().err().map(|e| e.code),
        other => return Err(format!("not a method response: {other:?}")),
    })
}

fn exchange(agent: &Agent, bytes: &[u8]) -> RawResponse {
    let mut connection = Connection::tls(
        agent.https,
        &agent.ca_path(),
        "localhost",
        TlsVersion::Tls13,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    connection.request(bytes).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_role_gets_exactly_the_operations_and_methods_it_may_run() {
    let folder = tempfile::tempdir().unwrap();
    let users = folder.path().join("users");
    users_file(
        &users,
        &[
            (MONITOR.0, "MONITOR", MONITOR.1),
            (PACKAGE_ADMIN.0, "PACKAGE_ADMIN", PACKAGE_ADMIN.1),
            (FULL_ADMIN.0, "FULL_ADMIN", FULL_ADMIN.1),
            (OWNER.0, "MONITOR", OWNER.1),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let agent =
        Agent::start(&["--users-file", users.to_str().unwrap()]).unwrap_or_else(|e| panic!("{e}"));
    let operations = operations();
    assert!(operations.len() >= 50, "{} operations", operations.len());

    // The subscription the others try to delete.
    let owner = raw_http::basic(OWNER.0, OWNER.1);
    let create = Operation {
        name: "the owner's filter".into(),
        method: "CreateInstance".into(),
        object: "root/interop".into(),
        body: format!(
            "<IMETHODCALL NAME=\"CreateInstance\"><LOCALNAMESPACEPATH>{}</LOCALNAMESPACEPATH>{}</IMETHODCALL>",
            namespace_elements("root/interop"),
            iparam("NewInstance", &filter_instance("owned-by-owner"))
        ),
        needs: Needs::Monitor,
        succeeds: true,
    };
    let response = exchange(&agent, &request(&create, 1, OWNER.0, Some(&owner), ""));
    assert_eq!(cim_error(&response), Ok(None), "{}", response.body_text());
    // Its path, with every key, as CreateInstance returned it.
    let text = response.body_text();
    let owner_path = text
        .find("<INSTANCENAME")
        .zip(text.find("</INSTANCENAME>"))
        .map(|(start, end)| text[start..end + "</INSTANCENAME>".len()].to_string())
        .unwrap_or_else(|| panic!("no INSTANCENAME in {text}"));

    let mut failures = Vec::new();
    let mut id = 10;
    // Without credentials, or with a wrong password: nothing at all (and the failures stay
    // below the throttle: two per user name).
    for operation in &operations {
        id += 1;
        let response = exchange(&agent, &request(operation, id, "nobody", None, &owner_path));
        if response.status != 401 {
            failures.push(format!(
                "{} without credentials: HTTP {}",
                operation.name, response.status
            ));
        }
    }
    for (index, operation) in operations.iter().take(2).enumerate() {
        id += 1;
        let wrong = raw_http::basic(MONITOR.0, &format!("wrong {index}"));
        let response = exchange(
            &agent,
            &request(operation, id, "nobody", Some(&wrong), &owner_path),
        );
        if response.status != 401 {
            failures.push(format!(
                "{} with a wrong password: HTTP {}",
                operation.name, response.status
            ));
        }
    }
    for (role, (user, password)) in [
        (Needs::Monitor, MONITOR),
        (Needs::PackageAdmin, PACKAGE_ADMIN),
        (Needs::FullAdmin, FULL_ADMIN),
    ] {
        let authorization = raw_http::basic(user, password);
        for operation in &operations {
            id += 1;
            let response = exchange(
                &agent,
                &request(operation, id, user, Some(&authorization), &owner_path),
            );
            let outcome = cim_error(&response);
            let allowed = operation.needs <= role;
            let fine = match &outcome {
                Ok(code) if operation.needs == Needs::Nobody => {
                    *code == Some(CIM_ERR_NOT_SUPPORTED)
                }
                Ok(code) if allowed && operation.succeeds => code.is_none(),
                Ok(code) if allowed => *code != Some(CIM_ERR_ACCESS_DENIED),
                Ok(code) => *code == Some(CIM_ERR_ACCESS_DENIED),
                Err(_) => false,
            };
            if !fine {
                failures.push(format!(
                    "{} as {role:?}: {} ({outcome:?}): {}",
                    operation.name,
                    if allowed {
                        "should be allowed"
                    } else {
                        "should be denied"
                    },
                    response.body_text().chars().take(300).collect::<String>()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of the matrix's answers are wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
