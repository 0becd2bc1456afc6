//! The intrinsic operations against the standard object manager (shipped schema, interop
//! provider, subscription store), without HTTP: parameters, errors, shaping, pull contexts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cim_schema::model::{InstancePath, Name, Value};
use cim_schema::xml::{Data, IMethodCall, IParamValue, Untyped};
use cimguard_provider::auth::{AuthMethod, Principal, Role};
use cimguard_provider::cimom::{ObjectManager, Shape};
use cimguard_provider::error::{code, OperationError};
use cimguard_provider::interop::{standard_object_manager, InteropSettings};
use cimguard_provider::operations::{execute, Outcome};
use cimguard_provider::pull::{ContextLimits, Contexts};

fn settings() -> InteropSettings {
    InteropSettings {
        product: "cimguard".into(),
        version: "0.1.0".into(),
        system_name: "node1".into(),
        profiles: Vec::new(),
        indication_service: Default::default(),
        indication_counters: Default::default(),
    }
}

fn manager() -> Arc<ObjectManager> {
    Arc::new(standard_object_manager("node1", &settings()).unwrap())
}

fn principal(name: &str) -> Principal {
    Principal {
        name: name.into(),
        role: Role::Monitor,
        method: AuthMethod::Basic,
    }
}

fn call(name: &str, namespace: &str, params: Vec<(&str, Data)>) -> IMethodCall {
    IMethodCall {
        name: Name::new(name),
        namespace: namespace.into(),
        params: params
            .into_iter()
            .map(|(n, v)| IParamValue::new(n, v))
            .collect(),
    }
}

fn class(name: &str) -> Data {
    Data::ClassName(Name::new(name))
}

fn text(value: &str) -> Data {
    Data::Untyped(Untyped::Scalar(value.into()))
}

/// The items of an outcome, drained.
fn items(outcome: Outcome) -> Vec<Data> {
    match outcome {
        Outcome::Void => Vec::new(),
        Outcome::Items(items) => items,
        Outcome::Pull(batch) => pull_result(Outcome::Pull(batch)).0,
        Outcome::Stream(items) => items.map(|item| item.unwrap().into_data()).collect(),
    }
}

fn run(
    manager: &Arc<ObjectManager>,
    contexts: &Arc<Contexts>,
    call: &IMethodCall,
) -> Result<Outcome, OperationError> {
    execute(manager, contexts, &principal("alice"), call)
}

/// EnumerateInstances of `class_name` in `namespace`, drained.
fn enumerate(
    manager: &Arc<ObjectManager>,
    contexts: &Arc<Contexts>,
    namespace: &str,
    class_name: &str,
) -> Vec<Data> {
    items(
        run(
            manager,
            contexts,
            &call(
                "EnumerateInstances",
                namespace,
                vec![("ClassName", class(class_name))],
            ),
        )
        .unwrap(),
    )
}

fn error_code(result: Result<Outcome, OperationError>) -> u32 {
    match result {
        Ok(_) => 0,
        Err(error) => error.code(),
    }
}

#[test]
fn errors_have_the_dsp0200_codes() {
    let manager = manager();
    let contexts = Arc::new(Contexts::new(ContextLimits::default()));
    let cases = [
        (
            call(
                "GetClass",
                "root/cimv2",
                vec![("ClassName", class("No_Such"))],
            ),
            code::NOT_FOUND,
        ),
        (
            call(
                "EnumerateClassNames",
                "root/cimv2",
                vec![("ClassName", class("No_Such"))],
            ),
            code::INVALID_CLASS,
        ),
        (
            call(
                "EnumerateInstances",
                "root/nowhere",
                vec![("ClassName", class("CIM_Namespace"))],
            ),
            code::INVALID_NAMESPACE,
        ),
        (
            call(
                "EnumerateInstances",
                "root/interop",
                vec![("ClassName", class("No_Such"))],
            ),
            code::INVALID_CLASS,
        ),
        (
            call(
                "EnumerateInstances",
                "root/interop",
                vec![("ClassName", class("CIM_Namespace")), ("Bogus", text("1"))],
            ),
            code::INVALID_PARAMETER,
        ),
        (
            call(
                "EnumerateInstances",
                "root/interop",
                vec![
                    ("ClassName", class("CIM_Namespace")),
                    ("DeepInheritance", text("maybe")),
                ],
            ),
            code::INVALID_PARAMETER,
        ),
        (
            call(
                "DeleteClass",
                "root/cimv2",
                vec![("ClassName", class("HP_SGPackage"))],
            ),
            code::NOT_SUPPORTED,
        ),
        (
            call("SetQualifier", "root/cimv2", vec![]),
            code::NOT_SUPPORTED,
        ),
        (
            call("FrobnicateInstances", "root/cimv2", vec![]),
            code::NOT_SUPPORTED,
        ),
        (
            call(
                "GetQualifier",
                "root/cimv2",
                vec![("QualifierName", text("NoSuchQualifier"))],
            ),
            code::NOT_FOUND,
        ),
        (
            call(
                "ExecQuery",
                "root/interop",
                vec![
                    ("QueryLanguage", text("WQL")),
                    ("Query", text("SELECT FROM")),
                ],
            ),
            code::INVALID_QUERY,
        ),
        (
            call(
                "ExecQuery",
                "root/interop",
                vec![
                    ("QueryLanguage", text("SQL-99")),
                    ("Query", text("SELECT * FROM CIM_Namespace")),
                ],
            ),
            code::QUERY_LANGUAGE_NOT_SUPPORTED,
        ),
        (
            call(
                "PullInstancesWithPath",
                "root/interop",
                vec![
                    ("EnumerationContext", text("nope")),
                    ("MaxObjectCount", text("1")),
                ],
            ),
            code::INVALID_ENUMERATION_CONTEXT,
        ),
        (
            call(
                "OpenEnumerateInstances",
                "root/interop",
                vec![
                    ("ClassName", class("CIM_Namespace")),
                    ("ContinueOnError", text("TRUE")),
                ],
            ),
            code::CONTINUATION_ON_ERROR_NOT_SUPPORTED,
        ),
        (
            call(
                "OpenEnumerateInstances",
                "root/interop",
                vec![
                    ("ClassName", class("CIM_Namespace")),
                    ("OperationTimeout", text("100000")),
                ],
            ),
            code::INVALID_OPERATION_TIMEOUT,
        ),
        (
            call(
                "OpenEnumerateInstances",
                "root/interop",
                vec![
                    ("ClassName", class("CIM_Namespace")),
                    ("OperationTimeout", text("0")),
                ],
            ),
            code::INVALID_OPERATION_TIMEOUT,
        ),
        (
            call(
                "OpenEnumerateInstances",
                "root/interop",
                vec![
                    ("ClassName", class("CIM_Namespace")),
                    ("FilterQueryLanguage", text("WQL")),
                    ("FilterQuery", text("Name = 'x'")),
                ],
            ),
            code::QUERY_LANGUAGE_NOT_SUPPORTED,
        ),
        (
            call(
                "CreateInstance",
                "root/interop",
                vec![(
                    "NewInstance",
                    Data::Instance(cim_schema::model::Instance::new("CIM_Namespace")),
                )],
            ),
            code::NOT_SUPPORTED,
        ),
    ];
    for (call, expected) in cases {
        assert_eq!(
            error_code(run(&manager, &contexts, &call)),
            expected,
            "{}",
            call.name
        );
    }
}

#[test]
fn the_interop_namespace_answers_under_its_alias_too() {
    let manager = manager();
    let contexts = Arc::new(Contexts::new(ContextLimits::default()));
    for namespace in ["root/interop", "interop", "/root/interop/"] {
        let found = enumerate(&manager, &contexts, namespace, "CIM_ObjectManager");
        assert_eq!(found.len(), 1, "{namespace}");
    }
}

#[test]
fn the_indication_service_shows_its_settings_and_live_counters() {
    use std::sync::atomic::Ordering;
    let counters = Arc::new(cimguard_provider::interop::IndicationCounters::default());
    let settings = InteropSettings {
        indication_counters: counters.clone(),
        ..settings()
    };
    let manager = Arc::new(standard_object_manager("node1", &settings).unwrap());
    let contexts = Arc::new(Contexts::new(ContextLimits::default()));
    let service = || {
        let found = enumerate(&manager, &contexts, "root/interop", "CIM_IndicationService");
        assert_eq!(found.len(), 1);
        let Data::NamedInstance(path, instance) = &found[0] else {
            panic!("{found:?}")
        };
        assert!(path.class_name.matches("CIMGuard_IndicationService"));
        instance.clone()
    };
    let first = service();
    assert_eq!(
        first.value("DeliveryRetryAttempts"),
        Some(&Value::Uint16(3))
    );
    assert_eq!(first.value("IndicationsDropped"), Some(&Value::Uint64(0)));
    // The counters are read at each request.
    counters.dropped.store(7, Ordering::Relaxed);
    counters.delivered.store(1234, Ordering::Relaxed);
    counters.failing.store(2, Ordering::Relaxed);
    let later = service();
    assert_eq!(later.value("IndicationsDropped"), Some(&Value::Uint64(7)));
    assert_eq!(
        later.value("IndicationsDelivered"),
        Some(&Value::Uint64(1234))
    );
    assert_eq!(later.value("FailingDestinations"), Some(&Value::Uint32(2)));
}

#[test]
fn keys_are_typed_against_the_class() {
    let manager = manager();
    let contexts = Arc::new(Contexts::new(ContextLimits::default()));
    let names = items(
        run(
            &manager,
            &contexts,
            &call(
                "EnumerateInstanceNames",
                "root/interop",
                vec![("ClassName", class("CIM_Namespace"))],
            ),
        )
        .unwrap(),
    );
    let Data::InstanceName(path) = &names[0] else {
        panic!("{names:?}")
    };
    let found = items(
        run(
            &manager,
            &contexts,
            &call(
                "GetInstance",
                "root/interop",
                vec![("InstanceName", Data::InstanceName(path.clone()))],
            ),
        )
        .unwrap(),
    );
    assert_eq!(found.len(), 1);
    let wrong_key = InstancePath::new("CIM_Namespace").with_key("Nonsense", "x");
    assert_eq!(
        error_code(run(
            &manager,
            &contexts,
            &call(
                "GetInstance",
                "root/interop",
                vec![("InstanceName", Data::InstanceName(wrong_key))]
            )
        )),
        code::INVALID_PARAMETER
    );
    let missing = path.clone().with_key("Name", "root/none");
    let mut missing = missing;
    missing
        .keybindings
        .retain(|k| !k.name.matches("Name") || k.value == Value::String("root/none".into()));
    assert_eq!(
        error_code(run(
            &manager,
            &contexts,
            &call(
                "GetInstance",
                "root/interop",
                vec![("InstanceName", Data::InstanceName(missing))]
            )
        )),
        code::NOT_FOUND
    );
}

#[test]
fn property_list_deep_inheritance_and_class_origin_shape_instances() {
    let manager = manager();
    let contexts = Arc::new(Contexts::new(ContextLimits::default()));
    let listed = items(
        run(
            &manager,
            &contexts,
            &call(
                "EnumerateInstances",
                "root/interop",
                vec![
                    ("ClassName", class("CIM_ObjectManager")),
                    (
                        "PropertyList",
                        Data::Untyped(Untyped::Array(vec![Some("ElementName".into())])),
                    ),
                    ("IncludeClassOrigin", text("TRUE")),
                ],
            ),
        )
        .unwrap(),
    );
    let Data::NamedInstance(_, instance) = &listed[0] else {
        panic!()
    };
    assert_eq!(instance.properties.len(), 1);
    assert_eq!(
        instance
            .property("ElementName")
            .unwrap()
            .class_origin
            .as_ref()
            .map(Name::as_str),
        Some("CIM_ManagedElement")
    );
    // From a superclass without deep inheritance: only the superclass's properties.
    let shallow = items(
        run(
            &manager,
            &contexts,
            &call(
                "EnumerateInstances",
                "root/interop",
                vec![
                    ("ClassName", class("CIM_WBEMService")),
                    ("DeepInheritance", text("FALSE")),
                ],
            ),
        )
        .unwrap(),
    );
    let object_manager = shallow
        .iter()
        .find_map(|d| match d {
            Data::NamedInstance(_, i) if i.class_name.matches("CIM_ObjectManager") => Some(i),
            _ => None,
        })
        .expect("the object manager is a CIM_WBEMService");
    assert!(object_manager.property("GatherStatisticalData").is_none());
    assert!(object_manager.property("ElementName").is_some());
}

#[test]
fn shaping_copies_a_shared_instance_only_when_it_changes_it() {
    let manager = manager();
    let contexts = Arc::new(Contexts::new(ContextLimits::default()));
    let whole = |manager: &Arc<ObjectManager>| {
        let listed = items(
            run(
                manager,
                &contexts,
                &call(
                    "EnumerateInstances",
                    "root/interop",
                    vec![("ClassName", class("CIM_ObjectManager"))],
                ),
            )
            .unwrap(),
        );
        let Data::NamedInstance(_, instance) = &listed[0] else {
            panic!()
        };
        instance.clone()
    };
    let before = whole(&manager);
    assert!(before.properties.len() > 1);
    assert!(before.properties.values().all(|p| p.class_origin.is_none()));
    // A shaped request must not change the provider's instance that the next request shares.
    let shaped = items(
        run(
            &manager,
            &contexts,
            &call(
                "EnumerateInstances",
                "root/interop",
                vec![
                    ("ClassName", class("CIM_ObjectManager")),
                    (
                        "PropertyList",
                        Data::Untyped(Untyped::Array(vec![Some("ElementName".into())])),
                    ),
                    ("IncludeClassOrigin", text("TRUE")),
                ],
            ),
        )
        .unwrap(),
    );
    assert!(matches!(&shaped[0], Data::NamedInstance(_, i) if i.properties.len() == 1));
    assert_eq!(whole(&manager), before);

    let shared = Arc::new(before.clone());
    let requested = before.class_name.clone();
    let keep_all = Shape {
        deep_inheritance: true,
        ..Shape::default()
    };
    let same = manager.shape("root/interop", shared.clone(), &requested, &keep_all);
    assert!(Arc::ptr_eq(&same, &shared), "nothing to change: no copy");
    let with_origin = Shape {
        include_class_origin: true,
        ..keep_all
    };
    let copied = manager.shape("root/interop", shared.clone(), &requested, &with_origin);
    assert!(!Arc::ptr_eq(&copied, &shared));
    assert!(copied.properties.values().any(|p| p.class_origin.is_some()));
    assert_eq!(*shared, before, "the shared instance is left as it was");
}

#[test]
fn associations_resolve_in_both_directions() {
    let manager = manager();
    let contexts = Arc::new(Contexts::new(ContextLimits::default()));
    let names = items(
        run(
            &manager,
            &contexts,
            &call(
                "EnumerateInstanceNames",
                "root/interop",
                vec![("ClassName", class("CIM_ObjectManager"))],
            ),
        )
        .unwrap(),
    );
    let Data::InstanceName(object_manager) = &names[0] else {
        panic!()
    };
    let profiles = items(
        run(
            &manager,
            &contexts,
            &call(
                "AssociatorNames",
                "root/interop",
                vec![
                    ("ObjectName", Data::InstanceName(object_manager.clone())),
                    ("AssocClass", class("CIM_ElementConformsToProfile")),
                    ("ResultRole", text("ConformantStandard")),
                ],
            ),
        )
        .unwrap(),
    );
    assert_eq!(profiles.len(), 1, "{profiles:?}");
    let Data::ObjectPath(cim_schema::model::ObjectPath::Instance(profile)) = &profiles[0] else {
        panic!()
    };
    let back = items(
        run(
            &manager,
            &contexts,
            &call(
                "AssociatorNames",
                "root/interop",
                vec![
                    ("ObjectName", Data::InstanceName(profile.clone())),
                    ("ResultClass", class("CIM_ObjectManager")),
                ],
            ),
        )
        .unwrap(),
    );
    assert_eq!(back.len(), 1);
    let none = items(
        run(
            &manager,
            &contexts,
            &call(
                "References",
                "root/interop",
                vec![
                    ("ObjectName", Data::InstanceName(profile.clone())),
                    ("Role", text("ManagedElement")),
                ],
            ),
        )
        .unwrap(),
    );
    assert!(none.is_empty());
}

/// The items, the `EnumerationContext` and `EndOfSequence` of an Open or Pull.
fn pull_result(outcome: Outcome) -> (Vec<Data>, Option<String>, bool) {
    let Outcome::Pull(mut batch) = outcome else {
        panic!("not a pull outcome")
    };
    let items: Vec<Data> = batch
        .by_ref()
        .map(|item| item.unwrap().into_data())
        .collect();
    let batch = *batch;
    let params = batch.finish();
    let context = match &params[0].value {
        Data::Untyped(Untyped::Scalar(id)) => Some(id.clone()),
        _ => None,
    };
    let end = matches!(&params[1].value, Data::Untyped(Untyped::Scalar(t)) if t == "TRUE");
    (items, context, end)
}

fn pull_params(outcome: Outcome) -> (Option<String>, bool) {
    let (_, context, end) = pull_result(outcome);
    (context, end)
}

#[test]
fn pull_contexts_run_to_the_end_close_and_expire() {
    let manager = manager();
    let limits = ContextLimits {
        open_contexts_per_principal_max: 2,
        ..ContextLimits::default()
    };
    let contexts = Arc::new(Contexts::new(limits));
    let open = |timeout: &str| {
        call(
            "OpenEnumerateInstancePaths",
            "root/interop",
            vec![
                ("ClassName", class("CIM_Namespace")),
                ("MaxObjectCount", text("1")),
                ("OperationTimeout", text(timeout)),
            ],
        )
    };
    let first = run(&manager, &contexts, &open("60")).unwrap();
    let (id, end) = pull_params(first);
    assert!(!end);
    let id = id.unwrap();
    let pull = call(
        "PullInstancePaths",
        "root/interop",
        vec![
            ("EnumerationContext", text(&id)),
            ("MaxObjectCount", text("100")),
        ],
    );
    let (rest, context, end) = pull_result(run(&manager, &contexts, &pull).unwrap());
    assert_eq!((context, end), (None, true));
    // The two namespaces, root/interop and root/cimv2: one opened, one pulled.
    assert_eq!(rest.len(), 1);
    assert_eq!(
        error_code(run(&manager, &contexts, &pull)),
        code::INVALID_ENUMERATION_CONTEXT
    );
    // Another user cannot use someone's context.
    let (id, _) = pull_params(run(&manager, &contexts, &open("60")).unwrap());
    let theirs = call(
        "PullInstancePaths",
        "root/interop",
        vec![
            ("EnumerationContext", text(id.as_deref().unwrap())),
            ("MaxObjectCount", text("1")),
        ],
    );
    assert_eq!(
        execute(&manager, &contexts, &principal("bob"), &theirs)
            .err()
            .map(|e| e.code()),
        Some(code::INVALID_ENUMERATION_CONTEXT)
    );
    // The per-user bound.
    let (_second, _) = pull_params(run(&manager, &contexts, &open("1")).unwrap());
    assert_eq!(
        error_code(run(&manager, &contexts, &open("60"))),
        code::SERVER_LIMITS_EXCEEDED
    );
    // A context unused for its timeout expires and frees its place.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match run(&manager, &contexts, &open("60")) {
            Ok(_) => break,
            Err(error) => assert_eq!(error.code(), code::SERVER_LIMITS_EXCEEDED),
        }
        assert!(Instant::now() < deadline, "the context never expired");
        std::thread::sleep(Duration::from_millis(50));
    }
    let close = call(
        "CloseEnumeration",
        "root/interop",
        vec![("EnumerationContext", text(id.as_deref().unwrap()))],
    );
    assert!(matches!(
        run(&manager, &contexts, &close),
        Ok(Outcome::Void)
    ));
}

#[test]
fn queries_select_and_project() {
    let manager = manager();
    let contexts = Arc::new(Contexts::new(ContextLimits::default()));
    let found = items(
        run(
            &manager,
            &contexts,
            &call(
                "ExecQuery",
                "root/interop",
                vec![
                    ("QueryLanguage", text("DMTF:CQL")),
                    (
                        "Query",
                        text("SELECT Name FROM CIM_Namespace WHERE Name LIKE 'root/.*'"),
                    ),
                ],
            ),
        )
        .unwrap(),
    );
    assert_eq!(found.len(), 2);
    let Data::ObjectWithPath(_, cim_schema::xml::Object::Instance(instance)) = &found[0] else {
        panic!()
    };
    assert_eq!(instance.properties.len(), 1);
    let filtered = items(
        run(
            &manager,
            &contexts,
            &call(
                "OpenEnumerateInstances",
                "root/interop",
                vec![
                    ("ClassName", class("CIM_Namespace")),
                    ("FilterQueryLanguage", text("DMTF:FQL")),
                    ("FilterQuery", text("Name = 'root/cimv2'")),
                    ("MaxObjectCount", text("10")),
                ],
            ),
        )
        .unwrap(),
    );
    assert_eq!(filtered.len(), 1);
}

#[test]
fn a_batch_dropped_before_its_response_is_written_closes_its_context() {
    let manager = manager();
    let contexts = Arc::new(Contexts::new(ContextLimits::default()));
    let open = call(
        "OpenEnumerateInstancePaths",
        "root/interop",
        vec![
            ("ClassName", class("CIM_Namespace")),
            ("MaxObjectCount", text("1")),
        ],
    );
    let (id, end) = pull_params(run(&manager, &contexts, &open).unwrap());
    assert!(!end);
    assert_eq!(contexts.len(), 1);
    let pull = call(
        "PullInstancePaths",
        "root/interop",
        vec![
            ("EnumerationContext", text(id.as_deref().unwrap())),
            ("MaxObjectCount", text("1")),
        ],
    );
    // The response of this pull fails to be written: its batch is dropped unfinished.
    drop(run(&manager, &contexts, &pull).unwrap());
    assert!(contexts.is_empty());
    assert_eq!(
        error_code(run(&manager, &contexts, &pull)),
        code::INVALID_ENUMERATION_CONTEXT
    );
}

#[test]
fn a_central_instance_outside_interop_reaches_its_profile_from_its_own_namespace() {
    let mut cluster = InstancePath::new("HP_SGCluster").in_namespace("root/cimv2");
    cluster.host = Some("node1".into());
    cluster.keybindings.push(cim_schema::model::KeyBinding {
        name: "CreationClassName".into(),
        value: Value::String("HP_SGCluster".into()),
    });
    cluster.keybindings.push(cim_schema::model::KeyBinding {
        name: "Name".into(),
        value: Value::String("cluster1".into()),
    });
    let mut settings = settings();
    settings.profiles.push(cimguard_provider::interop::Profile {
        organization: 1,
        other_organization: Some("cimguard".into()),
        name: "Serviceguard Cluster".into(),
        version: "1.0.0".into(),
        central: vec![cluster.clone()],
        references: Vec::new(),
    });
    let manager = Arc::new(standard_object_manager("node1", &settings).unwrap());
    let contexts = Arc::new(Contexts::new(ContextLimits::default()));
    let from_cluster = |operation: &str, filter: (&str, Data)| {
        items(
            run(
                &manager,
                &contexts,
                &call(
                    operation,
                    "root/cimv2",
                    vec![("ObjectName", Data::InstanceName(cluster.clone())), filter],
                ),
            )
            .unwrap(),
        )
    };
    let references = from_cluster(
        "ReferenceNames",
        ("ResultClass", class("CIM_ElementConformsToProfile")),
    );
    assert_eq!(references.len(), 1, "{references:?}");
    let profiles = from_cluster(
        "AssociatorNames",
        ("AssocClass", class("CIM_ElementConformsToProfile")),
    );
    let [Data::ObjectPath(cim_schema::model::ObjectPath::Instance(profile))] = &profiles[..] else {
        panic!("{profiles:?}")
    };
    assert_eq!(profile.class_name.as_str(), "CIM_RegisteredProfile");
    assert_eq!(profile.namespace.as_deref(), Some("root/interop"));
    // The interop side is unchanged: one conformance per profile's central instance.
    let in_interop = enumerate(
        &manager,
        &contexts,
        "root/interop",
        "CIM_ElementConformsToProfile",
    );
    assert_eq!(in_interop.len(), 3, "{in_interop:?}");
    let in_cimv2 = enumerate(
        &manager,
        &contexts,
        "root/cimv2",
        "CIM_ElementConformsToProfile",
    );
    assert_eq!(in_cimv2.len(), 1, "{in_cimv2:?}");
}

#[test]
fn an_unnamed_key_names_the_only_key_of_its_class() {
    let manager = manager();
    let contexts = Arc::new(Contexts::new(ContextLimits::default()));
    let names = |class_name: &str| {
        items(
            run(
                &manager,
                &contexts,
                &call(
                    "EnumerateInstanceNames",
                    "root/interop",
                    vec![("ClassName", class(class_name))],
                ),
            )
            .unwrap(),
        )
    };
    let get = |path: InstancePath| {
        run(
            &manager,
            &contexts,
            &call(
                "GetInstance",
                "root/interop",
                vec![("InstanceName", Data::InstanceName(path))],
            ),
        )
    };
    // As a decoded INSTANCENAME holds `<KEYVALUE>` without its KEYBINDING.
    let unnamed = |path: &InstancePath| {
        let mut unnamed = InstancePath::new(path.class_name.clone());
        unnamed.keybindings.push(cim_schema::model::KeyBinding {
            name: Name::new(""),
            value: path.keybindings[0].value.clone(),
        });
        unnamed
    };
    let Data::InstanceName(profile) = &names("CIM_RegisteredProfile")[0] else {
        panic!()
    };
    assert_eq!(profile.keybindings.len(), 1);
    assert_eq!(items(get(unnamed(profile)).unwrap()).len(), 1);
    // A class with several keys cannot take one unnamed key.
    let Data::InstanceName(namespace) = &names("CIM_Namespace")[0] else {
        panic!()
    };
    assert!(namespace.keybindings.len() > 1);
    assert_eq!(error_code(get(unnamed(namespace))), code::INVALID_PARAMETER);
}
