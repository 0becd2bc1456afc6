//! What the agent refuses of the filters, listener destinations and subscriptions a client
//! creates or modifies in root/interop (DSP1054, DSP0200, DSP0004), seen from pywbem: the CIM
//! status code it gets, and that nothing was stored or changed.
//!
//! Each test starts its own `cmwbemd` (anonymous, no cluster: the classes it checks against
//! are the shipped schema's) and runs a list of steps with pywbem through the driver below,
//! which prints one JSON line per step.
//!
//! Needs `cargo build --bin cmwbemd` and the venv of `scripts/test python` (the test fails,
//! never skips, without them).

use std::time::Duration;

use cimguard_tests::pyagent::{client_command, describe, output_within, Agent};
use serde_json::{json, Value};

/// How long one run of the driver may take.
const DRIVER_TIMEOUT: Duration = Duration::from_secs(120);

/// The pywbem driver: `python -c DRIVER URL CA STEPS`. STEPS is a JSON list; each step is
/// one operation, and prints `{"code": N, "description": "...", "value": ...}` (code 0: it
/// succeeded). The string `$SYSTEM` in a property value stands for the CIM_ObjectManager's
/// SystemName; a created instance's path is kept under the step's `label`.
const DRIVER: &str = r#"
import json, sys, warnings
warnings.simplefilter("ignore")
from pywbem import (WBEMConnection, WBEMServer, WBEMSubscriptionManager, CIMInstance,
                    CIMProperty, CIMError)

url, ca, steps = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
conn = WBEMConnection(url, None, default_namespace="root/interop", ca_certs=ca, timeout=60)
system = conn.EnumerateInstances("CIM_ObjectManager")[0]["SystemName"]
paths = {}

def value_of(raw):
    if raw == "$SYSTEM":
        return system
    if isinstance(raw, list):
        return [value_of(item) for item in raw]
    return raw

def properties_of(step):
    types = step.get("types", {})
    properties = [CIMProperty(name, value_of(raw), type=types.get(name))
                  for name, raw in step.get("properties", {}).items()]
    properties += [CIMProperty(name, paths[label], type="reference")
                   for name, label in step.get("refs", {}).items()]
    return properties

def plain(value):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, list):
        return [plain(item) for item in value]
    return str(value)

def run(step):
    op = step["op"]
    if op == "create":
        instance = CIMInstance(step["class"])
        for prop in properties_of(step):
            instance.properties[prop.name] = prop
        path = conn.CreateInstance(instance)
        paths[step.get("label", "")] = path
        return {name: plain(value) for name, value in path.keybindings.items()
                if not hasattr(value, "keybindings")}
    if op == "modify":
        instance = conn.GetInstance(paths[step["of"]])
        changed = properties_of(step)
        for prop in changed:
            instance.properties[prop.name] = prop
        conn.ModifyInstance(instance, PropertyList=[p.name for p in changed])
        return None
    if op == "get":
        return plain(conn.GetInstance(paths[step["of"]])[step["property"]])
    if op == "names":
        return sorted(str(i.get("Name")) for i in conn.EnumerateInstances(step["class"]))
    if op == "count":
        return len(conn.EnumerateInstanceNames(step["class"]))
    if op == "manager":
        # pywbem's own subscription flow, as pywbemcli runs it, then its clean-up.
        manager = WBEMSubscriptionManager("validation")
        server_id = manager.add_server(WBEMServer(conn))
        destination = manager.add_destination(server_id, "http://127.0.0.1:9", owned=True,
                                              destination_id="d")
        made = manager.add_filter(server_id, step["source_namespaces"], step["query"],
                                  owned=True, filter_id="f")
        manager.add_subscriptions(server_id, made.path, [destination.path], owned=True)
        got = [plain(made["SystemName"]), plain(destination["SystemName"])]
        manager.remove_server(server_id)
        return got
    raise ValueError(op)

for step in steps:
    try:
        value = run(step)
        print(json.dumps({"code": 0, "description": "", "value": value}), flush=True)
    except CIMError as error:
        print(json.dumps({"code": error.status_code, "description": error.status_description,
                          "value": None}), flush=True)
"#;

/// What one step got.
#[derive(Debug)]
struct Outcome {
    code: u64,
    description: String,
    value: Value,
}

/// Runs `steps` with pywbem against `agent`; one outcome per step.
fn run(agent: &Agent, steps: &[Value]) -> Vec<Outcome> {
    let interpreter = cimguard_tests::python().unwrap_or_else(|error| panic!("{error}"));
    let mut command = client_command(interpreter);
    command
        .arg("-c")
        .arg(DRIVER)
        .arg(agent.url())
        .arg(agent.ca_path())
        .arg(Value::Array(steps.to_vec()).to_string());
    let output = output_within(&mut command, DRIVER_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        output.status.success(),
        "the pywbem driver failed:\n{}\n--- agent log\n{}",
        describe(&output),
        agent.log()
    );
    let outcomes: Vec<Outcome> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let parsed: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            Outcome {
                code: parsed["code"].as_u64().unwrap_or(u64::MAX),
                description: parsed["description"].as_str().unwrap_or("").to_owned(),
                value: parsed["value"].clone(),
            }
        })
        .collect();
    assert_eq!(outcomes.len(), steps.len(), "{}", describe(&output));
    outcomes
}

/// Asserts that step `index` of `steps` got `code`.
fn expect_code(steps: &[Value], outcomes: &[Outcome], index: usize, code: u64) {
    assert_eq!(
        outcomes[index].code, code,
        "step {index} {}: got {:?}",
        steps[index], outcomes[index]
    );
}

fn start() -> Agent {
    Agent::start(&["--danger-allow-anonymous"]).unwrap_or_else(|e| panic!("{e}"))
}

/// A CreateInstance of a WQL filter named `name` with `query`, from root/cimv2.
fn filter(name: &str, query: &str) -> Value {
    filter_from(name, query, json!(["root/cimv2"]))
}

/// The same from `namespaces` (JSON null: no SourceNamespaces).
fn filter_from(name: &str, query: &str, namespaces: Value) -> Value {
    let mut properties = json!({
        "SystemCreationClassName": "CIM_ComputerSystem",
        "SystemName": "$SYSTEM",
        "CreationClassName": "CIM_IndicationFilter",
        "Name": name,
        "Query": query,
        "QueryLanguage": "WQL",
    });
    if !namespaces.is_null() {
        properties["SourceNamespaces"] = namespaces;
    }
    json!({"op": "create", "label": name, "class": "CIM_IndicationFilter",
           "properties": properties})
}

/// A CreateInstance of a CIM-XML destination named `name`, with `extra` properties of type
/// uint16.
fn destination(name: &str, extra: &Value) -> Value {
    let mut properties = json!({
        "SystemCreationClassName": "CIM_ComputerSystem",
        "SystemName": "$SYSTEM",
        "CreationClassName": "CIM_ListenerDestinationCIMXML",
        "Name": name,
        "Destination": "http://127.0.0.1:9",
    });
    let mut types = json!({});
    for (key, value) in extra.as_object().into_iter().flatten() {
        properties[key] = value.clone();
        types[key] = json!("uint16");
    }
    json!({"op": "create", "label": name, "class": "CIM_ListenerDestinationCIMXML",
           "properties": properties, "types": types})
}

/// A CreateInstance of a subscription from filter `filter` to destination `handler` (step
/// labels), with `extra` properties of type uint16.
fn subscription(label: &str, filter: &str, handler: &str, extra: &Value) -> Value {
    let mut types = json!({});
    for key in extra.as_object().into_iter().flatten().map(|(k, _)| k) {
        types[key] = json!("uint16");
    }
    json!({"op": "create", "label": label, "class": "CIM_IndicationSubscription",
           "refs": {"Filter": filter, "Handler": handler},
           "properties": extra, "types": types})
}

fn names(class: &str) -> Value {
    json!({"op": "names", "class": class})
}

#[test]
fn a_filter_whose_query_names_what_the_schema_lacks_is_refused_with_invalid_query() {
    let agent = start();
    let refused = [
        "SELECT * FROM CIM_InstModification WHERE Bogus = 1",
        "SELECT Bogus FROM CIM_InstModification",
        "SELECT * FROM CIM_NoSuchIndication",
        "SELECT * FROM CIM_InstModification WHERE SourceInstance ISA HP_NoSuchClass",
        "SELECT * FROM CIM_InstModification \
         WHERE SourceInstance ISA HP_SGPackage AND SourceInstance.Bogus = 'x'",
        "SELECT * FROM CIM_InstModification WHERE IndicationTime.Name = 'x'",
        "SELECT * FROM CIM_InstModification WHERE CIM_NoSuchClass::Name = 'x'",
        "SELECT * FROM CIM_AlertIndication WHERE NOT (Bogus IS NULL)",
        "SELECT FROM WHERE",
    ];
    let accepted = [
        "SELECT * FROM CIM_InstModification WHERE SourceInstance ISA HP_SGPackage",
        "SELECT * FROM CIM_InstModification \
         WHERE SourceInstance.NodeState <> PreviousInstance.NodeState",
        "SELECT * FROM HP_SGAlertIndication WHERE EventID = 'PackageFailed'",
        "SELECT * FROM CIM_InstModification \
         WHERE SourceInstance ISA HP_SGPackage AND SourceInstance.Name = 'dbpkg'",
        "SELECT * FROM CIM_InstModification \
         WHERE SourceInstance ISA HP_SGNode OR SourceInstance ISA HP_SGPackage",
        // A property of a subclass: HP_SGAlertIndication's alerts are CIM_AlertIndications.
        "SELECT * FROM CIM_AlertIndication WHERE ClusterName = 'testcluster'",
        "SELECT EventID, IndicationTime FROM CIM_AlertIndication WHERE CIM_AlertIndication.EventID LIKE 'Package%'",
    ];
    let mut steps: Vec<Value> = Vec::new();
    for (n, query) in refused.iter().enumerate() {
        steps.push(filter(&format!("refused-{n}"), query));
    }
    let mut language = filter("xql", "SELECT * FROM CIM_InstModification");
    language["properties"]["QueryLanguage"] = json!("XQL");
    steps.push(language);
    // Without SourceNamespaces the filter's own namespace (root/interop) is the source, and
    // the cluster's classes are not there.
    steps.push(filter_from(
        "defaulted",
        "SELECT * FROM HP_SGAlertIndication",
        Value::Null,
    ));
    steps.push(names("CIM_IndicationFilter"));
    let nothing_stored = steps.len() - 1;
    for (n, query) in accepted.iter().enumerate() {
        steps.push(filter(&format!("accepted-{n}"), query));
    }
    let mut cql = filter(
        "cql",
        "SELECT * FROM CIM_InstModification AS m WHERE m.SourceInstance ISA HP_SGNode \
         AND m.SourceInstance.Name = 'n1'",
    );
    cql["properties"]["QueryLanguage"] = json!("DMTF:CQL");
    steps.push(cql);
    steps.push(filter_from(
        "interop",
        "SELECT * FROM CIM_InstCreation",
        Value::Null,
    ));
    // A ModifyInstance is checked as a CreateInstance, and changes nothing when refused.
    steps.push(json!({"op": "modify", "of": "accepted-2",
                      "properties": {"Query": "SELECT * FROM HP_SGAlertIndication WHERE Bogus = 1"}}));
    steps.push(json!({"op": "get", "of": "accepted-2", "property": "Query"}));
    steps.push(names("CIM_IndicationFilter"));

    let outcomes = run(&agent, &steps);
    for index in 0..refused.len() {
        expect_code(&steps, &outcomes, index, 15);
    }
    assert!(
        outcomes[0].description.contains("Bogus"),
        "{:?}",
        outcomes[0]
    );
    expect_code(&steps, &outcomes, refused.len(), 14);
    expect_code(&steps, &outcomes, refused.len() + 1, 15);
    assert!(
        outcomes[refused.len() + 1]
            .description
            .contains("root/interop"),
        "{:?}",
        outcomes[refused.len() + 1]
    );
    assert_eq!(
        outcomes[nothing_stored].value,
        json!([]),
        "a refused filter was stored"
    );
    let first_accepted = nothing_stored + 1;
    for index in first_accepted..first_accepted + accepted.len() + 2 {
        expect_code(&steps, &outcomes, index, 0);
    }
    let modify = first_accepted + accepted.len() + 2;
    expect_code(&steps, &outcomes, modify, 15);
    assert_eq!(
        outcomes[modify + 1].value,
        json!("SELECT * FROM HP_SGAlertIndication WHERE EventID = 'PackageFailed'"),
        "a refused ModifyInstance changed the query"
    );
    assert_eq!(
        outcomes[modify + 2].value.as_array().map(Vec::len),
        Some(accepted.len() + 2),
        "{:?}",
        outcomes[modify + 2]
    );
}

#[test]
fn a_source_namespace_the_server_does_not_serve_is_refused() {
    let agent = start();
    let query = "SELECT * FROM CIM_InstModification";
    let mut single = filter_from("single", query, Value::Null);
    single["properties"]["SourceNamespace"] = json!("root/nope");
    let steps = vec![
        filter_from("nope", query, json!(["root/nope"])),
        filter_from("mixed", query, json!(["root/cimv2", "root/nope"])),
        single,
        names("CIM_IndicationFilter"),
        // Served namespaces, also as an alias and with slashes.
        filter_from("cimv2", query, json!(["root/cimv2"])),
        filter_from("both", query, json!(["/root/cimv2/", "interop"])),
        json!({"op": "modify", "of": "cimv2",
               "properties": {"SourceNamespaces": ["root/nope"]}}),
        json!({"op": "get", "of": "cimv2", "property": "SourceNamespaces"}),
    ];
    let outcomes = run(&agent, &steps);
    for index in 0..3 {
        expect_code(&steps, &outcomes, index, 4);
        assert!(
            outcomes[index].description.contains("root/nope"),
            "{:?}",
            outcomes[index]
        );
    }
    assert_eq!(outcomes[3].value, json!([]), "a refused filter was stored");
    expect_code(&steps, &outcomes, 4, 0);
    expect_code(&steps, &outcomes, 5, 0);
    expect_code(&steps, &outcomes, 6, 4);
    assert_eq!(outcomes[7].value, json!(["root/cimv2"]));
}

#[test]
fn the_system_keys_of_filters_and_destinations_are_the_servers() {
    let agent = start();
    let query = "SELECT * FROM CIM_InstModification";
    let mut other_system = filter("other-system", query);
    other_system["properties"]["SystemName"] = json!("other");
    let mut other_class = filter("other-class", query);
    other_class["properties"]["SystemCreationClassName"] = json!("HP_SGCluster");
    let mut other_creation = filter("other-creation", query);
    other_creation["properties"]["CreationClassName"] = json!("CIM_ListenerDestinationCIMXML");
    let mut other_destination = destination("other-destination", &json!({}));
    other_destination["properties"]["SystemName"] = json!("other");
    let mut bare = filter("bare", query);
    for key in ["SystemCreationClassName", "SystemName", "CreationClassName"] {
        bare["properties"]
            .as_object_mut()
            .map(|properties| properties.remove(key));
    }
    let steps = vec![
        other_system,
        other_class,
        other_creation,
        other_destination,
        names("CIM_IndicationFilter"),
        names("CIM_ListenerDestinationCIMXML"),
        // The server's values, given or left out.
        filter("given", query),
        bare,
        json!({"op": "get", "of": "bare", "property": "SystemName"}),
        json!({"op": "manager", "source_namespaces": "root/cimv2",
               "query": "SELECT * FROM HP_SGAlertIndication"}),
        json!({"op": "count", "class": "CIM_IndicationSubscription"}),
    ];
    let outcomes = run(&agent, &steps);
    for index in 0..4 {
        expect_code(&steps, &outcomes, index, 4);
    }
    assert!(
        outcomes[0].description.contains("SystemName"),
        "{:?}",
        outcomes[0]
    );
    assert_eq!(outcomes[4].value, json!([]), "a refused filter was stored");
    assert_eq!(
        outcomes[5].value,
        json!([]),
        "a refused destination was stored"
    );
    expect_code(&steps, &outcomes, 6, 0);
    expect_code(&steps, &outcomes, 7, 0);
    assert_eq!(outcomes[6].value["SystemName"], outcomes[8].value);
    assert!(outcomes[8].value.as_str().is_some_and(|s| !s.is_empty()));
    expect_code(&steps, &outcomes, 9, 0);
    assert_eq!(
        outcomes[9].value,
        json!([outcomes[8].value, outcomes[8].value])
    );
    assert_eq!(
        outcomes[10].value,
        json!(0),
        "remove_server left a subscription"
    );
}

#[test]
fn enumerated_values_outside_their_value_map_are_refused() {
    let agent = start();
    let steps = vec![
        // 0..4: destinations
        destination("ws-management", &json!({"Protocol": 4})),
        destination("other-protocol", &json!({"Protocol": 1})),
        destination("persistence", &json!({"PersistenceType": 7})),
        names("CIM_ListenerDestinationCIMXML"),
        // 4..7
        destination("d", &json!({"Protocol": 2, "PersistenceType": 3})),
        filter("f", "SELECT * FROM CIM_InstModification"),
        json!({"op": "modify", "of": "d", "properties": {"Protocol": 4},
               "types": {"Protocol": "uint16"}}),
        json!({"op": "get", "of": "d", "property": "Protocol"}),
        // 8..12: subscriptions
        subscription("state", "f", "d", &json!({"SubscriptionState": 99})),
        subscription("fatal", "f", "d", &json!({"OnFatalErrorPolicy": 0})),
        subscription("repeat", "f", "d", &json!({"RepeatNotificationPolicy": 9})),
        json!({"op": "count", "class": "CIM_IndicationSubscription"}),
        subscription("s", "f", "d", &json!({"OnFatalErrorPolicy": 2})),
        // 13..17
        json!({"op": "modify", "of": "s", "properties": {"SubscriptionState": 99},
               "types": {"SubscriptionState": "uint16"}}),
        json!({"op": "get", "of": "s", "property": "SubscriptionState"}),
        json!({"op": "modify", "of": "s", "properties": {"SubscriptionState": 4},
               "types": {"SubscriptionState": "uint16"}}),
        json!({"op": "get", "of": "s", "property": "SubscriptionState"}),
        // 17..21: OnFatalErrorPolicy Other, in its ValueMap, is not supported; a
        // RepeatNotificationPolicy is taken, as OpenPegasus takes it
        filter("f2", "SELECT * FROM CIM_InstModification"),
        subscription("other-fatal", "f2", "d", &json!({"OnFatalErrorPolicy": 1})),
        json!({"op": "modify", "of": "s", "properties": {"OnFatalErrorPolicy": 1},
               "types": {"OnFatalErrorPolicy": "uint16"}}),
        subscription(
            "suppress",
            "f2",
            "d",
            &json!({"RepeatNotificationPolicy": 3}),
        ),
        json!({"op": "count", "class": "CIM_IndicationSubscription"}),
    ];
    let outcomes = run(&agent, &steps);
    for index in [17, 20] {
        expect_code(&steps, &outcomes, index, 0);
    }
    for index in [18, 19] {
        expect_code(&steps, &outcomes, index, 7);
    }
    assert_eq!(outcomes[21].value, json!(2), "{:?}", outcomes[21]);
    for index in [0, 1, 2, 6, 8, 9, 10, 13] {
        expect_code(&steps, &outcomes, index, 4);
    }
    assert!(
        outcomes[0].description.contains("Protocol"),
        "{:?}",
        outcomes[0]
    );
    assert!(outcomes[8].description.contains("99"), "{:?}", outcomes[8]);
    assert_eq!(
        outcomes[3].value,
        json!([]),
        "a refused destination was stored"
    );
    for index in [4, 5, 12, 15] {
        expect_code(&steps, &outcomes, index, 0);
    }
    assert_eq!(
        outcomes[7].value,
        json!(2),
        "a refused ModifyInstance changed Protocol"
    );
    assert_eq!(
        outcomes[11].value,
        json!(0),
        "a refused subscription was stored"
    );
    assert_eq!(
        outcomes[14].value,
        json!(2),
        "a refused ModifyInstance changed the state"
    );
    assert_eq!(outcomes[16].value, json!(4));
    // The audit names what CreateInstance made by the path the server gave it, and what
    // it refused by its class.
    let log = agent.log();
    assert!(
        log.lines()
            .any(|line| line.contains(r#"operation="CreateInstance""#)
                && line.contains(r#"target="CIM_IndicationSubscription""#)
                && line.contains("ok=false")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|line| line.contains(r#"operation="CreateInstance""#)
                && line.contains(r#"target="/root/interop:CIM_ListenerDestinationCIMXML."#)
                && line.contains(r#"Name=\"d\""#)
                && line.contains("ok=true")),
        "{log}"
    );
}
