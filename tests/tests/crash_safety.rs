//! Crash safety of what the agent keeps: `cmwbemd` is killed with SIGKILL while a client
//! creates indication filters, destinations and subscriptions as fast as it can, again and
//! again at different moments, and started again in the same folder each time. It must start,
//! keep every object whose creation it answered, and hold no subscription whose filter or
//! destination is missing.
//!
//! (The outbox's own kill test is `indications/tests/crash.rs`; the agent killed with
//! indications queued is in `cluster_indications.rs`; the cluster's are in
//! `cluster_apply.rs` and `cluster_packages.rs`.)
//!
//! Needs the binary: `cargo build --bin cmwbemd`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cim_schema::model::Value;
use cim_schema::xml::{decode, Body, Data, Limits, Response};
use cimguard_tests::agent::Agent;
use cimguard_tests::raw_http::{self, Connection};
use cimguard_tests::requests::instance_name_of;

fn body(method: &str, params: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><CIM CIMVERSION=\"2.0\" DTDVERSION=\"2.0\">\
         <MESSAGE ID=\"1\" PROTOCOLVERSION=\"1.0\"><SIMPLEREQ><IMETHODCALL NAME=\"{method}\">\
         <LOCALNAMESPACEPATH><NAMESPACE NAME=\"root\"/><NAMESPACE NAME=\"interop\"/>\
         </LOCALNAMESPACEPATH>{params}</IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>"
    )
}

fn request(method: &str, params: &str) -> Vec<u8> {
    let body = body(method, params);
    raw_http::request(
        "POST",
        "/cimom",
        "localhost",
        &[
            ("Content-Type", "application/xml; charset=\"utf-8\""),
            ("CIMOperation", "MethodCall"),
            ("CIMMethod", method),
            ("CIMObject", "root/interop"),
        ],
        Some(body.as_bytes()),
    )
}

/// The returned objects of a successful intrinsic call, or why there are none.
fn call(connection: &mut Connection, method: &str, params: &str) -> Result<Vec<Data>, String> {
    let response = connection
        .request(&request(method, params))
        .map_err(|e| e.to_string())?;
    if response.status != 200 {
        return Err(format!("HTTP {}", response.status));
    }
    let message = decode(&response.body, &Limits::DEFAULT).map_err(|e| e.to_string())?;
    match message.body {
        Body::Response(Response::IMethod(response)) => match response.result {
            Ok(result) => Ok(result.return_value.unwrap_or_default()),
            Err(error) => Err(format!("CIM error {}: {:?}", error.code, error.description)),
        },
        other => Err(format!("not an intrinsic response: {other:?}")),
    }
}

fn instance(class: &str, properties: &[(&str, &str)]) -> String {
    let properties: String = properties
        .iter()
        .map(|(name, value)| {
            format!("<PROPERTY NAME=\"{name}\" TYPE=\"string\"><VALUE>{value}</VALUE></PROPERTY>")
        })
        .collect();
    format!(
        "<IPARAMVALUE NAME=\"NewInstance\"><INSTANCE CLASSNAME=\"{class}\">{properties}\
         </INSTANCE></IPARAMVALUE>"
    )
}

/// The `INSTANCENAME` text of a created instance's returned path.
fn returned_name(data: &[Data]) -> Result<String, String> {
    match data.first() {
        Some(Data::InstanceName(path)) => instance_name_of(path),
        other => Err(format!("CreateInstance returned {other:?}")),
    }
}

/// Creates filter, destination and subscription number `n`; the `n` once all three were
/// answered.
fn create_triple(connection: &mut Connection, n: u64) -> Result<u64, String> {
    let filter = call(
        connection,
        "CreateInstance",
        &instance(
            "CIM_IndicationFilter",
            &[
                ("Name", &format!("filter-{n}")),
                ("QueryLanguage", "WQL"),
                ("Query", "SELECT * FROM CIM_InstModification"),
            ],
        ),
    )?;
    let handler = call(
        connection,
        "CreateInstance",
        &instance(
            "CIM_ListenerDestinationCIMXML",
            &[
                ("Name", &format!("handler-{n}")),
                // Loopback's discard port: nothing is ever delivered, nothing leaves the host.
                ("Destination", "http://127.0.0.1:9/"),
            ],
        ),
    )?;
    let subscription = format!(
        "<IPARAMVALUE NAME=\"NewInstance\"><INSTANCE CLASSNAME=\"CIM_IndicationSubscription\">\
         <PROPERTY.REFERENCE NAME=\"Filter\" REFERENCECLASS=\"CIM_IndicationFilter\">\
         <VALUE.REFERENCE>{}</VALUE.REFERENCE></PROPERTY.REFERENCE>\
         <PROPERTY.REFERENCE NAME=\"Handler\" REFERENCECLASS=\"CIM_ListenerDestination\">\
         <VALUE.REFERENCE>{}</VALUE.REFERENCE></PROPERTY.REFERENCE></INSTANCE></IPARAMVALUE>",
        returned_name(&filter)?,
        returned_name(&handler)?
    );
    call(connection, "CreateInstance", &subscription)?;
    Ok(n)
}

fn name_key(path: &cim_schema::model::InstancePath) -> Option<String> {
    match path.key("Name") {
        Some(Value::String(name)) => Some(name.clone()),
        _ => None,
    }
}

/// The names of the instances of `class`, and for subscriptions the names their Filter and
/// Handler references carry.
fn names(connection: &mut Connection, class: &str) -> Vec<(Option<String>, Vec<String>)> {
    let data = call(
        connection,
        "EnumerateInstanceNames",
        &format!("<IPARAMVALUE NAME=\"ClassName\"><CLASSNAME NAME=\"{class}\"/></IPARAMVALUE>"),
    )
    .unwrap_or_else(|e| panic!("EnumerateInstanceNames {class}: {e}"));
    data.iter()
        .map(|item| match item {
            Data::InstanceName(path) => {
                let referenced = ["Filter", "Handler"]
                    .iter()
                    .filter_map(|key| match path.key(key) {
                        Some(Value::Reference(target)) => match target.as_ref() {
                            cim_schema::model::ObjectPath::Instance(target) => name_key(target),
                            cim_schema::model::ObjectPath::Class(_) => None,
                        },
                        _ => None,
                    })
                    .collect();
                (name_key(path), referenced)
            }
            other => panic!("not an instance name: {other:?}"),
        })
        .collect()
}

#[test]
fn an_agent_killed_while_subscriptions_are_made_keeps_every_answered_one_and_no_dangling_one() {
    let folder = tempfile::tempdir().expect("tempdir");
    let answered = Arc::new(Mutex::new(BTreeSet::<u64>::new()));
    let mut next = 0u64;
    for round in 0..8u64 {
        let agent = Agent::start_in(folder.path(), &["--danger-allow-anonymous"])
            .unwrap_or_else(|e| panic!("round {round}: the agent does not start again: {e}"));
        // Check what the last kill left.
        let mut connection = Connection::plain(agent.http).expect("connect");
        let filters: BTreeSet<String> = names(&mut connection, "CIM_IndicationFilter")
            .into_iter()
            .filter_map(|(name, _)| name)
            .collect();
        let handlers: BTreeSet<String> = names(&mut connection, "CIM_ListenerDestinationCIMXML")
            .into_iter()
            .filter_map(|(name, _)| name)
            .collect();
        let subscriptions = names(&mut connection, "CIM_IndicationSubscription");
        let subscribed: BTreeSet<String> = subscriptions
            .iter()
            .filter_map(|(_, referenced)| referenced.first().cloned())
            .collect();
        for (_, referenced) in &subscriptions {
            assert_eq!(referenced.len(), 2, "round {round}: {referenced:?}");
            assert!(
                filters.contains(&referenced[0]) && handlers.contains(&referenced[1]),
                "round {round}: a subscription of {referenced:?} outlived its filter or handler"
            );
        }
        for n in answered.lock().unwrap().iter() {
            assert!(
                filters.contains(&format!("filter-{n}"))
                    && handlers.contains(&format!("handler-{n}"))
                    && subscribed.contains(&format!("filter-{n}")),
                "round {round}: the answered subscription {n} is gone"
            );
        }
        // Create as fast as one connection can, and kill the agent in the middle.
        let address = agent.http;
        let writer_answered = Arc::clone(&answered);
        let first = next;
        let writer = std::thread::spawn(move || {
            let Ok(mut connection) = Connection::plain(address) else {
                return first;
            };
            let mut n = first;
            while let Ok(done) = create_triple(&mut connection, n) {
                writer_answered.lock().unwrap().insert(done);
                n += 1;
            }
            n
        });
        std::thread::sleep(Duration::from_millis(150 + (round * 131) % 500));
        // Dropping the handle is kill -9 (SIGKILL), then a wait.
        drop(agent);
        // The next round starts after whatever the writer tried last, answered or not.
        next = writer.join().expect("the writer") + 1;
    }
    assert!(
        answered.lock().unwrap().len() >= 16,
        "too few subscriptions were made to test anything: {}",
        answered.lock().unwrap().len()
    );
}
