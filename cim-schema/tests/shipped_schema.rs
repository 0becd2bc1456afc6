//! The schema cimguard ships compiles into root/cimv2 and root/interop; its DMTF classes agree
//! with the DMTF CIM Schema 2.41 (compiled by the same compiler) in everything clients rely on;
//! its HP classes have the keys, superclasses, properties and methods of serviceguard.md
//! section 1.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use cim_schema::model::{CimType, Class, Name, Value};
use cim_schema::mof::{compile, MemoryResolver, NoIncludes, SourceFile};
use cim_schema::repository::Repository;
use cim_schema::shipped::{self, ShippedError, CIMV2, ENTRY, FILES, INTEROP};

const MOF_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/mof");
const DMTF_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/dmtf/cim-schema-2.41"
);
const DMTF_ENTRY: &str = "cim_schema_2.41.0.mof";

/// The DMTF classes loaded into both namespaces (dmtf.mof).
const DMTF_CORE: &[&str] = &[
    "CIM_ManagedElement",
    "CIM_ManagedSystemElement",
    "CIM_LogicalElement",
    "CIM_EnabledLogicalElement",
    "CIM_Error",
    "CIM_Job",
    "CIM_ConcreteJob",
    "CIM_System",
    "CIM_ComputerSystem",
    "CIM_Cluster",
    "CIM_Service",
    "CIM_ClusteringService",
    "CIM_ServiceAccessPoint",
    "CIM_ProtocolEndpoint",
    "CIM_IPProtocolEndpoint",
    "CIM_SoftwareIdentity",
    "CIM_Capabilities",
    "CIM_Dependency",
    "CIM_HostedDependency",
    "CIM_ParticipatingCS",
    "CIM_HostedService",
    "CIM_HostedClusterService",
    "CIM_HostedAccessPoint",
    "CIM_LogicalIdentity",
    "CIM_ProvidesServiceToElement",
    "CIM_ServiceServiceDependency",
    "CIM_Component",
    "CIM_ServiceComponent",
    "CIM_SystemComponent",
    "CIM_ElementCapabilities",
    "CIM_Indication",
    "CIM_InstIndication",
    "CIM_InstCreation",
    "CIM_InstDeletion",
    "CIM_InstModification",
    "CIM_ProcessIndication",
    "CIM_AlertIndication",
];

/// The DMTF classes of root/interop only (interop.mof).
const DMTF_INTEROP: &[&str] = &[
    "CIM_IndicationFilter",
    "CIM_ListenerDestination",
    "CIM_ListenerDestinationCIMXML",
    "CIM_AbstractIndicationSubscription",
    "CIM_IndicationSubscription",
    "CIM_IndicationService",
    "CIM_IndicationServiceCapabilities",
    "CIM_WBEMService",
    "CIM_ObjectManager",
    "CIM_ObjectManagerCommunicationMechanism",
    "CIM_StatisticalData",
    "CIM_CIMOMStatisticalData",
    "CIM_Namespace",
    "CIM_ReferencedSpecification",
    "CIM_ReferencedProfile",
];

/// The profile registration classes of both namespaces (profiles.mof).
const DMTF_PROFILES: &[&str] = &[
    "CIM_RegisteredSpecification",
    "CIM_RegisteredProfile",
    "CIM_ElementConformsToProfile",
];

/// The HP classes of root/cimv2 only (hp.mof).
const HP: &[&str] = &[
    "HP_Cluster",
    "HP_Node",
    "HP_ParticipatingCS",
    "HP_ClusterSoftware",
    "HP_NodeIdentity",
    "HP_SGCluster",
    "HP_SGNode",
    "HP_SGParticipatingCS",
    "HP_SGClusterSoftware",
    "HP_SGNodeIdentity",
    "HP_SGIPProtocolEndpoint",
    "HP_SGClusterIPProtocolEndpoint",
    "HP_SGPackage",
    "HP_SGClusterPackage",
    "HP_SGClusteringService",
    "HP_SGHostedClusterService",
    "HP_SGPackageNode",
    "HP_SGPackageService",
    "HP_SGPackageServiceComponent",
    "HP_SGPackageDependency",
    "HP_SGGenericResource",
    "HP_SGQuorumDevice",
    "HP_SGPackageJob",
    "HP_SGAlertIndication",
];

/// The standard qualifiers of DMTF's qualifiers.mof.
const QUALIFIER_COUNT: usize = 56;

/// Qualifiers whose value a client may act on: they must be as DMTF has them, whether written
/// in our MOF or inherited.
const COMPARED_QUALIFIERS: &[&str] = &[
    "Key",
    "Required",
    "Override",
    "Weak",
    "Propagated",
    "Aggregate",
    "Write",
    "Deprecated",
    "Min",
    "Max",
    "MaxLen",
    "MinValue",
    "MaxValue",
    "ArrayType",
    "EmbeddedInstance",
    "EmbeddedObject",
    "PUnit",
    "Units",
    "ValueMap",
    "Values",
];

const COMPARED_PARAMETER_QUALIFIERS: &[&str] = &[
    "In",
    "Out",
    "Required",
    "ArrayType",
    "EmbeddedInstance",
    "EmbeddedObject",
    "ValueMap",
    "Values",
];

const CLASS_FLAGS: &[&str] = &[
    "Abstract",
    "Association",
    "Indication",
    "Aggregation",
    "Exception",
];

fn shipped() -> &'static Repository {
    static SHIPPED: OnceLock<Repository> = OnceLock::new();
    SHIPPED.get_or_init(|| shipped::repository().unwrap_or_else(|error| panic!("{error}")))
}

/// The DMTF schema's files by path relative to its directory.
fn dmtf_resolver() -> MemoryResolver {
    fn walk(dir: &Path, prefix: &str, resolver: &mut MemoryResolver) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                walk(&entry.path(), &format!("{name}/"), resolver);
            } else if name.ends_with(".mof") {
                resolver.insert(name, fs::read(entry.path()).unwrap());
            }
        }
    }
    let mut resolver = MemoryResolver::new();
    walk(Path::new(DMTF_DIR), "", &mut resolver);
    resolver
}

/// The DMTF CIM Schema 2.41, compiled by our compiler into root/cimv2.
fn dmtf() -> &'static Repository {
    static DMTF: OnceLock<Repository> = OnceLock::new();
    DMTF.get_or_init(|| {
        let entry = fs::read(Path::new(DMTF_DIR).join(DMTF_ENTRY)).unwrap();
        let mut repository = Repository::new();
        compile(
            &mut repository,
            CIMV2,
            &[SourceFile::new(DMTF_ENTRY, entry)],
            &mut dmtf_resolver(),
        )
        .unwrap_or_else(|errors| panic!("the DMTF schema does not compile:\n{errors}"));
        repository
    })
}

fn class(namespace: &str, name: &str) -> &'static Class {
    shipped()
        .class(namespace, name)
        .unwrap_or_else(|| panic!("no class {name} in {namespace}"))
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|name| name.to_ascii_lowercase()).collect()
}

fn class_names(namespace: &str) -> BTreeSet<String> {
    shipped()
        .namespace(namespace)
        .unwrap()
        .classes
        .keys()
        .map(|name| name.as_str().to_ascii_lowercase())
        .collect()
}

fn strings(value: Option<&Value>) -> Vec<&str> {
    value
        .and_then(Value::as_array)
        .unwrap_or(&[])
        .iter()
        .map(|v| v.as_ref().and_then(Value::as_str).unwrap_or("NULL"))
        .collect()
}

fn qualifier_value<'a>(
    list: &'a cim_schema::model::QualifierList,
    name: &str,
) -> Option<&'a Value> {
    list.get(name).and_then(|q| q.value.as_ref())
}

// --- The schema compiles, into the right namespaces --------------------------------------------

#[test]
fn each_namespace_holds_its_include_files() {
    let core: BTreeSet<String> = &names(DMTF_CORE) | &names(DMTF_PROFILES);
    let cimv2: BTreeSet<String> = &core | &names(HP);
    let interop: BTreeSet<String> =
        &(&core | &names(DMTF_INTEROP)) | &names(&["CIMGuard_IndicationService"]);
    assert_eq!(class_names(CIMV2), cimv2);
    assert_eq!(class_names(INTEROP), interop);
    for namespace in [CIMV2, INTEROP] {
        let declared = &shipped().namespace(namespace).unwrap().qualifiers;
        assert_eq!(declared.len(), QUALIFIER_COUNT, "{namespace}");
    }
    // Indication filters in either namespace can name the indication classes.
    for namespace in [CIMV2, INTEROP] {
        assert!(shipped().is_a(namespace, "CIM_InstModification", "CIM_Indication"));
        assert!(shipped().is_a(namespace, "CIM_AlertIndication", "CIM_Indication"));
    }
    assert!(shipped().is_a(CIMV2, "HP_SGAlertIndication", "CIM_Indication"));
    // Only these two namespaces exist.
    let namespaces: BTreeSet<String> = shipped()
        .namespace_names()
        .map(|name| name.as_str().to_owned())
        .collect();
    assert_eq!(
        namespaces,
        BTreeSet::from([CIMV2.to_owned(), INTEROP.to_owned()])
    );
}

#[test]
fn the_embedded_files_are_the_mof_directory() {
    fn walk(dir: &Path, prefix: &str, found: &mut BTreeSet<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                walk(&entry.path(), &format!("{name}/"), found);
            } else if name.ends_with(".mof") {
                found.insert(name);
            }
        }
    }
    let mut on_disk = BTreeSet::new();
    walk(Path::new(MOF_DIR), "", &mut on_disk);
    let embedded: BTreeSet<String> = FILES.iter().map(|(path, _)| (*path).to_owned()).collect();
    assert_eq!(
        embedded, on_disk,
        "FILES in shipped.rs must list every .mof file"
    );
    for (path, text) in FILES {
        let disk = fs::read_to_string(Path::new(MOF_DIR).join(path)).unwrap();
        assert_eq!(*text, disk, "{path}");
    }
    assert!(FILES.iter().any(|(path, _)| *path == ENTRY));
}

#[test]
fn every_file_is_included_once_per_namespace() {
    // Compiling the namespaces' include files separately gives the same classes as the entry
    // file: nothing depends on include order across namespaces, and no file is left out.
    let mut resolver = shipped::shipped_resolver();
    for (namespace, file) in [(CIMV2, "root-cimv2.mof"), (INTEROP, "root-interop.mof")] {
        let text = FILES.iter().find(|(path, _)| *path == file).unwrap().1;
        let mut repository = Repository::new();
        compile(
            &mut repository,
            namespace,
            &[SourceFile::new(file, text.as_bytes())],
            &mut resolver,
        )
        .unwrap_or_else(|errors| panic!("{errors}"));
        let compiled: BTreeSet<String> = repository
            .namespace(namespace)
            .unwrap()
            .classes
            .keys()
            .map(|name| name.as_str().to_ascii_lowercase())
            .collect();
        assert_eq!(compiled, class_names(namespace), "{file}");
    }
    // Every file but the entry is included: qualifiers.mof, dmtf.mof and profiles.mof once
    // per namespace, every other file once.
    let mut included: BTreeMap<String, usize> = BTreeMap::new();
    for (_, text) in FILES {
        for line in text.lines().filter(|l| l.starts_with("#pragma include")) {
            let target = line.split('"').nth(1).unwrap();
            *included.entry(target.to_owned()).or_default() += 1;
        }
    }
    for (path, _) in FILES.iter().filter(|(path, _)| *path != ENTRY) {
        let expected = if ["qualifiers.mof", "dmtf.mof", "profiles.mof"].contains(path) {
            2
        } else {
            1
        };
        assert_eq!(included.get(*path).copied(), Some(expected), "{path}");
    }
    assert_eq!(
        included.len(),
        FILES.len() - 1,
        "an include names a missing file"
    );
}

// --- The DMTF classes agree with DMTF 2.41 --------------------------------------------------------

/// Differences between one shipped class and the same class in DMTF 2.41, as messages.
fn compare_with_dmtf(namespace: &str, name: &str) -> Vec<String> {
    let ours = class(namespace, name);
    let theirs = dmtf()
        .class(CIMV2, name)
        .unwrap_or_else(|| panic!("DMTF 2.41 has no {name}"));
    let mut failures = Vec::new();
    let mut fail = |what: String| failures.push(format!("{namespace}:{name}: {what}"));
    if ours.superclass != theirs.superclass {
        fail(format!(
            "superclass {:?}, DMTF {:?}",
            ours.superclass, theirs.superclass
        ));
    }
    for flag in CLASS_FLAGS {
        if ours.qualifiers.is_true(flag) != theirs.qualifiers.is_true(flag) {
            fail(format!("qualifier {flag} differs"));
        }
    }
    let our_description = qualifier_value(&ours.qualifiers, "Description");
    if our_description.is_none()
        || our_description == qualifier_value(&theirs.qualifiers, "Description")
    {
        fail("the class description must be ours and present".to_owned());
    }
    let local = |class: &Class| -> BTreeSet<String> {
        class
            .properties
            .values()
            .filter(|p| !p.propagated)
            .map(|p| p.name.as_str().to_ascii_lowercase())
            .collect()
    };
    if local(ours) != local(theirs) {
        fail(format!(
            "local properties differ: ours only {:?}, DMTF only {:?}",
            local(ours).difference(&local(theirs)).collect::<Vec<_>>(),
            local(theirs).difference(&local(ours)).collect::<Vec<_>>()
        ));
    }
    for theirs_property in theirs.properties.values() {
        let Some(ours_property) = ours.property(theirs_property.name.as_str()) else {
            fail(format!("no property {}", theirs_property.name));
            continue;
        };
        let property = &theirs_property.name;
        if ours_property.name.as_str() != property.as_str() {
            fail(format!("{property} spelt {}", ours_property.name));
        }
        if ours_property.cim_type != theirs_property.cim_type
            || ours_property.is_array != theirs_property.is_array
            || ours_property.array_size != theirs_property.array_size
        {
            fail(format!("{property}: type differs"));
        }
        if ours_property.is_key() != theirs_property.is_key() {
            fail(format!("{property}: key-ness differs"));
        }
        if ours_property.value != theirs_property.value {
            fail(format!("{property}: default differs"));
        }
        if ours_property.class_origin != theirs_property.class_origin {
            fail(format!("{property}: class origin differs"));
        }
        for qualifier in COMPARED_QUALIFIERS {
            let (a, b) = (
                qualifier_value(&ours_property.qualifiers, qualifier),
                qualifier_value(&theirs_property.qualifiers, qualifier),
            );
            if a != b {
                fail(format!("{property}: {qualifier} is {a:?}, DMTF {b:?}"));
            }
        }
    }
    if ours.properties.len() != theirs.properties.len() {
        fail("property count differs".to_owned());
    }
    compare_methods(ours, theirs, &mut fail);
    failures
}

fn compare_methods(ours: &Class, theirs: &Class, fail: &mut impl FnMut(String)) {
    for theirs_method in theirs.methods.values() {
        let method = &theirs_method.name;
        let Some(ours_method) = ours.method(method.as_str()) else {
            fail(format!("no method {method}"));
            continue;
        };
        if ours_method.return_type != theirs_method.return_type {
            fail(format!("{method}: return type differs"));
        }
        for qualifier in ["ValueMap", "Values", "Deprecated", "Static"] {
            if qualifier_value(&ours_method.qualifiers, qualifier)
                != qualifier_value(&theirs_method.qualifiers, qualifier)
            {
                fail(format!("{method}: {qualifier} differs"));
            }
        }
        let signature = |m: &cim_schema::model::Method| -> Vec<(String, CimType, bool)> {
            m.parameters
                .iter()
                .map(|p| (p.name.as_str().to_owned(), p.cim_type.clone(), p.is_array))
                .collect()
        };
        if signature(ours_method) != signature(theirs_method) {
            fail(format!("{method}: parameters differ"));
            continue;
        }
        for (a, b) in ours_method.parameters.iter().zip(&theirs_method.parameters) {
            for qualifier in COMPARED_PARAMETER_QUALIFIERS {
                if qualifier_value(&a.qualifiers, qualifier)
                    != qualifier_value(&b.qualifiers, qualifier)
                {
                    fail(format!("{method}({}): {qualifier} differs", a.name));
                }
            }
        }
    }
    if ours.methods.len() != theirs.methods.len() {
        fail("method count differs".to_owned());
    }
}

#[test]
fn dmtf_classes_agree_with_dmtf_2_41() {
    let mut failures = Vec::new();
    for name in DMTF_CORE.iter().chain(DMTF_PROFILES) {
        failures.extend(compare_with_dmtf(CIMV2, name));
        failures.extend(compare_with_dmtf(INTEROP, name));
    }
    for name in DMTF_INTEROP {
        failures.extend(compare_with_dmtf(INTEROP, name));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_comparison_sees_a_wrong_value_map() {
    // A shipped class with one Values entry changed must be reported: the comparison above is
    // not vacuous.
    let entry = FILES
        .iter()
        .find(|(path, _)| *path == "dmtf/CIM_Cluster.mof")
        .unwrap()
        .1;
    assert!(entry.contains("\"Degraded\""));
    let mut resolver = shipped::shipped_resolver();
    resolver.insert(
        "dmtf/CIM_Cluster.mof",
        entry.replace("\"Degraded\"", "\"Impaired\"").into_bytes(),
    );
    let text = FILES
        .iter()
        .find(|(path, _)| *path == "root-cimv2.mof")
        .unwrap()
        .1;
    let mut repository = Repository::new();
    compile(
        &mut repository,
        CIMV2,
        &[SourceFile::new("root-cimv2.mof", text.as_bytes())],
        &mut resolver,
    )
    .unwrap();
    let ours = repository.class(CIMV2, "CIM_Cluster").unwrap();
    let theirs = dmtf().class(CIMV2, "CIM_Cluster").unwrap();
    let (a, b) = (
        ours.property("ClusterState").unwrap(),
        theirs.property("ClusterState").unwrap(),
    );
    assert_ne!(
        qualifier_value(&a.qualifiers, "Values"),
        qualifier_value(&b.qualifiers, "Values")
    );
}

// --- The HP classes follow serviceguard.md --------------------------------------------------------

/// A row of serviceguard.md 1.2: a class, its direct superclass, a further ancestor, and its
/// keys (with the referenced class for references).
struct Row {
    class: &'static str,
    superclass: &'static str,
    ancestor: &'static str,
    keys: &'static [(&'static str, Option<&'static str>)],
}

const SYSTEM_KEYS: &[(&str, Option<&str>)] = &[("CreationClassName", None), ("Name", None)];
const SERVICE_KEYS: &[(&str, Option<&str>)] = &[
    ("SystemCreationClassName", None),
    ("SystemName", None),
    ("CreationClassName", None),
    ("Name", None),
];
const INSTANCE_ID: &[(&str, Option<&str>)] = &[("InstanceID", None)];

const ROWS: &[Row] = &[
    Row {
        class: "HP_SGCluster",
        superclass: "HP_Cluster",
        ancestor: "CIM_Cluster",
        keys: SYSTEM_KEYS,
    },
    Row {
        class: "HP_Cluster",
        superclass: "CIM_Cluster",
        ancestor: "CIM_ComputerSystem",
        keys: SYSTEM_KEYS,
    },
    Row {
        class: "HP_SGNode",
        superclass: "HP_Node",
        ancestor: "CIM_ComputerSystem",
        keys: SYSTEM_KEYS,
    },
    Row {
        class: "HP_Node",
        superclass: "CIM_ComputerSystem",
        ancestor: "CIM_System",
        keys: SYSTEM_KEYS,
    },
    Row {
        class: "HP_SGParticipatingCS",
        superclass: "HP_ParticipatingCS",
        ancestor: "CIM_ParticipatingCS",
        keys: &[
            ("Antecedent", Some("HP_SGNode")),
            ("Dependent", Some("HP_SGCluster")),
        ],
    },
    Row {
        class: "HP_ParticipatingCS",
        superclass: "CIM_ParticipatingCS",
        ancestor: "CIM_Dependency",
        keys: &[
            ("Antecedent", Some("HP_Node")),
            ("Dependent", Some("HP_Cluster")),
        ],
    },
    Row {
        class: "HP_SGNodeIdentity",
        superclass: "HP_NodeIdentity",
        ancestor: "CIM_LogicalIdentity",
        keys: &[
            ("SystemElement", Some("CIM_ComputerSystem")),
            ("SameElement", Some("HP_SGNode")),
        ],
    },
    Row {
        class: "HP_NodeIdentity",
        superclass: "CIM_LogicalIdentity",
        ancestor: "CIM_LogicalIdentity",
        keys: &[
            ("SystemElement", Some("CIM_ComputerSystem")),
            ("SameElement", Some("HP_Node")),
        ],
    },
    Row {
        class: "HP_SGClusterSoftware",
        superclass: "HP_ClusterSoftware",
        ancestor: "CIM_SoftwareIdentity",
        keys: INSTANCE_ID,
    },
    Row {
        class: "HP_ClusterSoftware",
        superclass: "CIM_SoftwareIdentity",
        ancestor: "CIM_LogicalElement",
        keys: INSTANCE_ID,
    },
    Row {
        class: "HP_SGPackage",
        superclass: "CIM_Service",
        ancestor: "CIM_EnabledLogicalElement",
        keys: SERVICE_KEYS,
    },
    Row {
        class: "HP_SGClusterPackage",
        superclass: "CIM_HostedService",
        ancestor: "CIM_Dependency",
        keys: &[
            ("Antecedent", Some("HP_SGCluster")),
            ("Dependent", Some("HP_SGPackage")),
        ],
    },
    Row {
        class: "HP_SGIPProtocolEndpoint",
        superclass: "CIM_IPProtocolEndpoint",
        ancestor: "CIM_ServiceAccessPoint",
        keys: SERVICE_KEYS,
    },
    Row {
        class: "HP_SGClusterIPProtocolEndpoint",
        superclass: "CIM_HostedAccessPoint",
        ancestor: "CIM_Dependency",
        keys: &[
            ("Antecedent", Some("HP_SGCluster")),
            ("Dependent", Some("HP_SGIPProtocolEndpoint")),
        ],
    },
    Row {
        class: "HP_SGClusteringService",
        superclass: "CIM_ClusteringService",
        ancestor: "CIM_Service",
        keys: SERVICE_KEYS,
    },
    Row {
        class: "HP_SGHostedClusterService",
        superclass: "CIM_HostedClusterService",
        ancestor: "CIM_HostedService",
        keys: &[
            ("Antecedent", Some("HP_SGCluster")),
            ("Dependent", Some("HP_SGClusteringService")),
        ],
    },
    Row {
        class: "HP_SGPackageNode",
        superclass: "CIM_Dependency",
        ancestor: "CIM_Dependency",
        keys: &[
            ("Antecedent", Some("HP_SGNode")),
            ("Dependent", Some("HP_SGPackage")),
        ],
    },
    Row {
        class: "HP_SGPackageService",
        superclass: "CIM_Service",
        ancestor: "CIM_EnabledLogicalElement",
        keys: SERVICE_KEYS,
    },
    Row {
        class: "HP_SGPackageServiceComponent",
        superclass: "CIM_ServiceComponent",
        ancestor: "CIM_Component",
        keys: &[
            ("GroupComponent", Some("HP_SGPackage")),
            ("PartComponent", Some("HP_SGPackageService")),
        ],
    },
    Row {
        class: "HP_SGPackageDependency",
        superclass: "CIM_ServiceServiceDependency",
        ancestor: "CIM_Dependency",
        keys: &[
            ("Antecedent", Some("HP_SGPackage")),
            ("Dependent", Some("HP_SGPackage")),
        ],
    },
    Row {
        class: "HP_SGGenericResource",
        superclass: "CIM_EnabledLogicalElement",
        ancestor: "CIM_ManagedElement",
        keys: INSTANCE_ID,
    },
    Row {
        class: "HP_SGQuorumDevice",
        superclass: "CIM_EnabledLogicalElement",
        ancestor: "CIM_ManagedElement",
        keys: INSTANCE_ID,
    },
    Row {
        class: "HP_SGPackageJob",
        superclass: "CIM_ConcreteJob",
        ancestor: "CIM_Job",
        keys: INSTANCE_ID,
    },
    Row {
        class: "HP_SGAlertIndication",
        superclass: "CIM_AlertIndication",
        ancestor: "CIM_Indication",
        keys: &[],
    },
];

#[test]
fn hp_classes_have_the_superclasses_and_keys_of_section_1_2() {
    assert_eq!(ROWS.len(), HP.len(), "one row per HP class");
    let mut failures = Vec::new();
    for row in ROWS {
        let class = class(CIMV2, row.class);
        if class.superclass.as_ref().map(Name::as_str) != Some(row.superclass) {
            failures.push(format!("{}: superclass {:?}", row.class, class.superclass));
        }
        if !shipped().is_a(CIMV2, row.class, row.ancestor) {
            failures.push(format!("{} is not a {}", row.class, row.ancestor));
        }
        let keys: Vec<(String, Option<String>)> = class
            .keys()
            .map(|p| {
                let target = match &p.cim_type {
                    CimType::Reference(target) => target.as_ref().map(|t| t.as_str().to_owned()),
                    _ => None,
                };
                (p.name.as_str().to_owned(), target)
            })
            .collect();
        let expected: Vec<(String, Option<String>)> = row
            .keys
            .iter()
            .map(|(name, target)| ((*name).to_owned(), target.map(str::to_owned)))
            .collect();
        let (mut sorted_keys, mut sorted_expected) = (keys.clone(), expected);
        sorted_keys.sort();
        sorted_expected.sort();
        if sorted_keys != sorted_expected {
            failures.push(format!("{}: keys {keys:?}", row.class));
        }
        let has_references = class.properties.values().any(|p| p.cim_type.is_reference());
        if class.is_association() != has_references {
            failures.push(format!("{}: association flag is wrong", row.class));
        }
        let description = qualifier_value(&class.qualifiers, "Description");
        if description
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            failures.push(format!("{}: no description", row.class));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(class(CIMV2, "HP_SGParticipatingCS").is_association());
    assert!(class(CIMV2, "HP_SGPackageServiceComponent")
        .qualifiers
        .is_true("Aggregation"));
    // Enumerating a generic HP parent finds the Serviceguard instances.
    for (parent, child) in [
        ("HP_Cluster", "HP_SGCluster"),
        ("HP_Node", "HP_SGNode"),
        ("HP_ParticipatingCS", "HP_SGParticipatingCS"),
        ("HP_ClusterSoftware", "HP_SGClusterSoftware"),
        ("HP_NodeIdentity", "HP_SGNodeIdentity"),
    ] {
        assert!(shipped().is_a(CIMV2, child, parent), "{child}");
    }
}

#[test]
fn hp_classes_override_inherited_properties_only_on_purpose() {
    // A vendor property that reuses an inherited name (CIM_ManagedSystemElement.Status, say)
    // would silently change the DMTF property; each reuse must say Override.
    let mut failures = Vec::new();
    for name in HP {
        let class = class(CIMV2, name);
        let superclass = class.superclass.as_ref().unwrap();
        let parent = shipped().class(CIMV2, superclass.as_str()).unwrap();
        let local = class.properties.values().filter(|p| !p.propagated);
        for property in local {
            let inherited = parent.property(property.name.as_str()).is_some();
            let overrides = property
                .qualifiers
                .get("Override")
                .is_some_and(|q| !q.propagated && q.value.is_some());
            if inherited != overrides {
                failures.push(format!("{name}.{}", property.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Asserts that `class` has each property with that type and array-ness, own or inherited.
fn assert_properties(class_name: &str, expected: &[(&str, &str, bool)]) {
    let class = class(CIMV2, class_name);
    let mut failures = Vec::new();
    for (name, cim_type, is_array) in expected {
        match class.property(name) {
            None => failures.push(format!("{class_name}.{name} is missing")),
            Some(p) if p.cim_type.to_string() != *cim_type || p.is_array != *is_array => {
                failures.push(format!(
                    "{class_name}.{name} is {}{}",
                    p.cim_type,
                    if p.is_array { "[]" } else { "" }
                ));
            }
            Some(p) if p.name.as_str() != *name => {
                failures.push(format!("{class_name}.{name} is spelt {}", p.name));
            }
            Some(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn hp_sg_cluster_node_and_membership_have_the_properties_of_section_1_3() {
    assert_properties(
        "HP_SGCluster",
        &[
            ("Name", "string", false),
            ("ElementName", "string", false),
            ("ClusterStatus", "string", false),
            ("Summary", "string", false),
            ("ClusterState", "uint16", false),
            ("EnabledState", "uint16", false),
            ("OperationalStatus", "uint16", true),
            ("StatusDescriptions", "string", true),
            ("MaxNumberOfNodes", "uint32", false),
            ("Interconnect", "string", false),
            ("InterconnectAddress", "string", false),
            ("QuorumType", "string", false),
            ("MemberTimeout", "uint64", false),
            ("AutoStartTimeout", "uint64", false),
            ("NetworkPollingInterval", "uint64", false),
            ("QsPollingInterval", "uint64", false),
            ("MaxConfiguredPackages", "uint32", false),
            ("ConfigGeneration", "uint64", false),
            ("ClusterCoordinator", "string", false),
            ("Dedicated", "uint16", true),
            ("NameFormat", "string", false),
        ],
    );
    assert_properties(
        "HP_SGNode",
        &[
            ("Name", "string", false),
            ("NodeStatus", "string", false),
            ("NodeState", "string", false),
            ("Summary", "string", false),
            ("NodeId", "uint32", false),
            ("IsClusterCoordinator", "boolean", false),
            ("EnabledState", "uint16", false),
            ("OperationalStatus", "uint16", true),
            ("HeartbeatIPs", "string", true),
            ("ClusterName", "string", false),
        ],
    );
    assert_properties(
        "HP_SGParticipatingCS",
        &[
            ("StateOfNode", "uint16", false),
            ("RoleOfNode", "uint16", false),
        ],
    );
    // The cmviewcl words are value maps, so clients can see the vocabulary.
    let node = class(CIMV2, "HP_SGNode");
    let states = strings(qualifier_value(
        &node.property("NodeState").unwrap().qualifiers,
        "ValueMap",
    ));
    assert_eq!(
        states,
        [
            "running",
            "reforming",
            "halted",
            "failed",
            "unknown",
            "detached"
        ]
    );
    let cluster = class(CIMV2, "HP_SGCluster");
    let statuses = strings(qualifier_value(
        &cluster.property("ClusterStatus").unwrap().qualifiers,
        "ValueMap",
    ));
    assert_eq!(statuses, ["up", "down", "starting", "unknown"]);
}

#[test]
fn hp_sg_package_has_the_properties_of_section_1_3() {
    assert_properties(
        "HP_SGPackage",
        &[
            ("Name", "string", false),
            ("PackageType", "string", false),
            ("PackageStatus", "string", false),
            ("PackageState", "string", false),
            ("Summary", "string", false),
            ("AutoRun", "boolean", false),
            ("CurrentNode", "string", false),
            ("NodeNames", "string", true),
            ("FailoverPolicy", "string", false),
            ("FailbackPolicy", "string", false),
            ("Priority", "uint32", false),
            ("NodeFailFastEnabled", "boolean", false),
            ("RunScriptTimeout", "uint32", false),
            ("HaltScriptTimeout", "uint32", false),
            ("LastHaltFailed", "boolean", false),
            ("EnabledState", "uint16", false),
            ("RequestedState", "uint16", false),
            ("OperationalStatus", "uint16", true),
            ("Started", "boolean", false),
            ("ElementName", "string", false),
        ],
    );
    let package = class(CIMV2, "HP_SGPackage");
    let node_names = package.property("NodeNames").unwrap();
    assert_eq!(
        qualifier_value(&node_names.qualifiers, "ArrayType").and_then(Value::as_str),
        Some("Ordered")
    );
    let states = strings(qualifier_value(
        &package.property("PackageState").unwrap().qualifiers,
        "ValueMap",
    ));
    for state in [
        "running",
        "halted",
        "failed",
        "halt_aborted",
        "detached",
        "maintenance",
        "blocked",
    ] {
        assert!(states.contains(&state), "{state}");
    }
}

#[test]
fn the_extension_classes_have_the_properties_of_section_1_2() {
    assert_properties(
        "HP_SGPackageNode",
        &[
            ("Order", "uint16", false),
            ("NodeType", "string", false),
            ("SwitchingEnabled", "boolean", false),
            ("IsCurrent", "boolean", false),
        ],
    );
    assert_properties(
        "HP_SGPackageService",
        &[
            ("Name", "string", false),
            ("ServiceStatus", "string", false),
            ("Restarts", "uint32", false),
            ("MaxRestarts", "uint32", false),
            ("PID", "uint32", false),
        ],
    );
    assert_properties(
        "HP_SGPackageDependency",
        &[
            ("TypeOfDependency", "uint16", false),
            ("DependencyName", "string", false),
            ("Location", "string", false),
            ("Satisfied", "boolean", false),
        ],
    );
    assert_properties(
        "HP_SGGenericResource",
        &[
            ("Name", "string", false),
            ("NodeName", "string", false),
            ("EvaluationType", "string", false),
            ("UpCriteria", "string", false),
            ("ResourceStatus", "string", false),
            ("ResourceValue", "uint32", false),
            ("EnabledState", "uint16", false),
        ],
    );
    assert_properties(
        "HP_SGQuorumDevice",
        &[
            ("Name", "string", false),
            ("DeviceType", "string", false),
            ("DeviceStatus", "string", false),
            ("DeviceState", "string", false),
        ],
    );
    assert_properties(
        "HP_SGPackageJob",
        &[
            ("PackageName", "string", false),
            ("NodeName", "string", false),
            ("RequestedState", "uint16", false),
            ("RunningOn", "string", true),
            ("JobState", "uint16", false),
            ("ErrorDescription", "string", false),
            ("TimeBeforeRemoval", "datetime", false),
        ],
    );
    assert_properties(
        "HP_SGClusteringService",
        &[
            ("CoordinatorNode", "string", false),
            ("ConfigGeneration", "uint64", false),
        ],
    );
    // TypeOfDependency keeps DMTF's 3 and 4, which = up and = down map to.
    let dependency = class(CIMV2, "HP_SGPackageDependency");
    let type_of = &dependency.property("TypeOfDependency").unwrap().qualifiers;
    let map = strings(qualifier_value(type_of, "ValueMap"));
    let values = strings(qualifier_value(type_of, "Values"));
    let position = |code: &str| map.iter().position(|v| *v == code).unwrap();
    assert_eq!(values[position("3")], "Service Must Be Started");
    assert_eq!(values[position("4")], "Service Must Not Be Started");
}

#[test]
fn hp_sg_alert_indication_has_the_properties_of_section_1_6() {
    let alert = class(CIMV2, "HP_SGAlertIndication");
    assert!(alert.is_indication());
    assert!(!alert.is_abstract());
    assert_properties(
        "HP_SGAlertIndication",
        &[
            ("IndicationIdentifier", "string", false),
            ("IndicationTime", "datetime", false),
            ("EventTime", "datetime", false),
            ("EventID", "string", false),
            ("AlertType", "uint16", false),
            ("PerceivedSeverity", "uint16", false),
            ("ProbableCause", "uint16", false),
            ("ProbableCauseDescription", "string", false),
            ("AlertingManagedElement", "string", false),
            ("AlertingElementFormat", "uint16", false),
            ("SystemCreationClassName", "string", false),
            ("SystemName", "string", false),
            ("ProviderName", "string", false),
            ("OwningEntity", "string", false),
            ("MessageID", "string", false),
            ("Message", "string", false),
            ("MessageArguments", "string", true),
            ("CorrelatedIndications", "string", true),
            ("SequenceContext", "string", false),
            ("SequenceNumber", "sint64", false),
            ("ClusterName", "string", false),
            ("NodeName", "string", false),
            ("PackageName", "string", false),
            ("ServiceName", "string", false),
            ("PreviousStatus", "string", false),
            ("PreviousState", "string", false),
            ("NewStatus", "string", false),
            ("NewState", "string", false),
            ("ConfigGeneration", "uint64", false),
        ],
    );
    let events = strings(qualifier_value(
        &alert.property("EventID").unwrap().qualifiers,
        "ValueMap",
    ));
    for event in [
        "ClusterConfigChanged",
        "ClusterUp",
        "ClusterHalted",
        "ClusterReformed",
        "NodeJoined",
        "NodeHalted",
        "NodeDetached",
        "NodeFailed",
        "PackageStarted",
        "PackageHalted",
        "PackageFailed",
        "PackageFailover",
        "PackageFailback",
        "PackageSwitchingChanged",
        "ServiceFailed",
        "ServiceRestarted",
        "GenericResourceChanged",
        "QuorumServerUnreachable",
        "QuorumServerReachable",
        "LockLunUnhealthy",
        "QuorumLost",
        "NetworkInterfaceDown",
        "NetworkInterfaceUp",
    ] {
        assert!(events.contains(&event), "{event}");
    }
    // The DMTF enumerations section 1.6(b) uses are inherited intact.
    let codes = |property: &str| {
        let qualifiers = &alert.property(property).unwrap().qualifiers;
        strings(qualifier_value(qualifiers, "ValueMap"))
            .into_iter()
            .zip(strings(qualifier_value(qualifiers, "Values")))
            .map(|(code, value)| (code.to_owned(), value.to_owned()))
            .collect::<Vec<_>>()
    };
    assert!(codes("AlertType").contains(&("7".to_owned(), "Model Change".to_owned())));
    assert!(
        codes("PerceivedSeverity").contains(&("7".to_owned(), "Fatal/NonRecoverable".to_owned()))
    );
    assert!(codes("AlertingElementFormat").contains(&("2".to_owned(), "CIMObjectPath".to_owned())));
}

#[test]
fn the_methods_of_section_1_5() {
    const RETURN_CODES: [&str; 6] = ["0", "1", "2", "4", "5", "4096"];
    let package = class(CIMV2, "HP_SGPackage");
    // RequestStateChange is overridden to take the node of cmrunpkg -n.
    let request = package.method("RequestStateChange").unwrap();
    assert!(!request.propagated);
    let names: Vec<&str> = request.parameters.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "RequestedState",
            "Job",
            "TimeoutPeriod",
            "NodeName",
            "Message"
        ]
    );
    for (name, parameters) in [
        (
            "SetAutoRun",
            &[("Enabled", CimType::Boolean), ("Message", CimType::String)][..],
        ),
        (
            "SetNodeSwitching",
            &[
                ("NodeName", CimType::String),
                ("Enabled", CimType::Boolean),
                ("Message", CimType::String),
            ][..],
        ),
    ] {
        let method = package.method(name).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(method.return_type, CimType::Uint32, "{name}");
        assert_eq!(
            strings(qualifier_value(&method.qualifiers, "ValueMap")),
            RETURN_CODES
        );
        let found: Vec<(&str, &CimType)> = method
            .parameters
            .iter()
            .map(|p| (p.name.as_str(), &p.cim_type))
            .collect();
        let wanted: Vec<(&str, &CimType)> = parameters.iter().map(|(n, t)| (*n, t)).collect();
        assert_eq!(found, wanted, "{name}");
        // Every parameter is an input but Message, the reason of a refusal.
        assert!(method
            .parameters
            .iter()
            .all(|p| p.qualifiers.is_true("In") != (p.name.as_str() == "Message")));
    }
    let service = class(CIMV2, "HP_SGPackage");
    assert!(service.method("StartService").is_some() && service.method("StopService").is_some());
    let resource = class(CIMV2, "HP_SGGenericResource");
    let set_status = resource.method("SetStatus").unwrap();
    assert_eq!(
        strings(qualifier_value(&set_status.qualifiers, "ValueMap")),
        RETURN_CODES
    );
    let found: Vec<(&str, &CimType)> = set_status
        .parameters
        .iter()
        .map(|p| (p.name.as_str(), &p.cim_type))
        .collect();
    assert_eq!(
        found,
        [
            ("Status", &CimType::String),
            ("Value", &CimType::Uint32),
            ("Message", &CimType::String)
        ]
    );
}

// --- Using the schema -------------------------------------------------------------------------------

#[test]
fn the_example_instance_of_section_1_7_compiles() {
    let example = br#"
        instance of HP_SGPackage {
          SystemCreationClassName = "HP_SGCluster";  SystemName = "prodcl";
          CreationClassName = "HP_SGPackage";  Name = "dbpkg";
          ElementName = "Example database";  PackageType = "failover";
          PackageStatus = "up";  PackageState = "running";  Summary = "ok";  AutoRun = TRUE;
          CurrentNode = "hpnode1";  NodeNames = {"hpnode1", "hpnode2"};
          FailoverPolicy = "configured_node";  FailbackPolicy = "manual";  Priority = 20;
          EnabledState = 2;  OperationalStatus = {2};  Started = TRUE;
        };
    "#;
    let source = SourceFile::new("example.mof", example.as_slice());
    let repository = shipped::repository_with(CIMV2, &[source], &mut NoIncludes).unwrap();
    let instances = repository.instances(CIMV2, "HP_SGPackage", true).unwrap();
    assert_eq!(instances.len(), 1);
    let (path, package) = instances[0];
    assert_eq!(package.value("Priority"), Some(&Value::Uint32(20)));
    assert_eq!(path.keybindings.len(), 4, "{path:?}");
}

#[test]
fn extra_mof_builds_on_the_shipped_schema_and_reports_its_own_errors() {
    let site = SourceFile::new(
        "site.mof",
        b"#pragma namespace (\"root/interop\")\nclass Site_Destination : CIM_ListenerDestinationCIMXML { string Team; };".as_slice(),
    );
    let repository = shipped::repository_with(CIMV2, &[site], &mut NoIncludes).unwrap();
    assert!(repository.is_a(INTEROP, "Site_Destination", "CIM_ListenerDestination"));
    assert!(repository.class(CIMV2, "Site_Destination").is_none());

    let broken = SourceFile::new(
        "broken.mof",
        b"class Site_X : HP_NoSuchClass { };".as_slice(),
    );
    match shipped::repository_with(CIMV2, &[broken], &mut NoIncludes) {
        Err(ShippedError::Extra(errors)) => {
            assert_eq!(errors.0.len(), 1);
            assert_eq!(errors.0[0].file, "broken.mof");
            assert!(errors.to_string().starts_with("broken.mof:1:"), "{errors}");
        }
        other => panic!("expected an extra-mof error, got {other:?}"),
    }
}
