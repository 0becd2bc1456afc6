//! The complete DMTF CIM Schema 2.41 compiles without error, and the resolved classes agree
//! with facts read from its MOF files (superclasses, keys, inherited properties and their
//! types, qualifier values).
//!
//! The schema is compiled through `mof::compile`, the path `cimguard mof check` takes, with the
//! files served from memory.

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use cim_schema::model::{CimType, Class, Value};
use cim_schema::mof::{compile, Compiled, MemoryResolver, SourceFile};
use cim_schema::repository::Repository;

const SCHEMA_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/dmtf/cim-schema-2.41"
);
const ENTRY: &str = "cim_schema_2.41.0.mof";
const NAMESPACE: &str = "root/cimv2";
const CLASS_COUNT: usize = 1438;

/// The schema's files by path relative to the schema directory.
fn schema_resolver() -> MemoryResolver {
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
    walk(Path::new(SCHEMA_DIR), "", &mut resolver);
    resolver
}

/// The schema, compiled once for all the tests of this file.
fn schema() -> &'static (Repository, Vec<Compiled>) {
    static SCHEMA: OnceLock<(Repository, Vec<Compiled>)> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let entry = fs::read(Path::new(SCHEMA_DIR).join(ENTRY)).unwrap();
        let mut repository = Repository::new();
        let compiled = compile(
            &mut repository,
            NAMESPACE,
            &[SourceFile::new(ENTRY, entry)],
            &mut schema_resolver(),
        )
        .unwrap_or_else(|errors| panic!("the DMTF schema does not compile:\n{errors}"));
        (repository, compiled)
    })
}

fn class(name: &str) -> &'static Class {
    schema()
        .0
        .class(NAMESPACE, name)
        .unwrap_or_else(|| panic!("no class {name}"))
}

#[test]
fn the_whole_schema_compiles() {
    let (repository, compiled) = schema();
    let classes = compiled
        .iter()
        .filter(|c| matches!(c, Compiled::Class { .. }))
        .count();
    assert_eq!(classes, CLASS_COUNT);
    let namespace = repository.namespace(NAMESPACE).unwrap();
    assert_eq!(namespace.classes.len(), CLASS_COUNT);
    // qualifiers.mof declares 56 qualifiers, qualifiers_optional.mof 14.
    assert_eq!(namespace.qualifiers.len(), 70);
}

/// What the MOF files say about one class, resolved: its own and inherited elements.
struct Fact {
    class: &'static str,
    superclass: Option<&'static str>,
    /// Every key property, own or inherited.
    keys: &'static [&'static str],
    /// Some properties, own and inherited: name, type as MOF writes it, array or not.
    properties: &'static [(&'static str, &'static str, bool)],
}

const FACTS: &[Fact] = &[
    Fact {
        class: "CIM_ComputerSystem",
        superclass: Some("CIM_System"),
        keys: &["CreationClassName", "Name"],
        properties: &[
            ("NameFormat", "string", false),
            ("CommunicationStatus", "uint16", false),
            ("InstallDate", "datetime", false),
        ],
    },
    Fact {
        class: "CIM_ParticipatingCS",
        superclass: Some("CIM_Dependency"),
        keys: &["Antecedent", "Dependent"],
        properties: &[
            ("Antecedent", "CIM_ComputerSystem REF", false),
            ("Dependent", "CIM_Cluster REF", false),
        ],
    },
    Fact {
        class: "CIM_System",
        superclass: Some("CIM_EnabledLogicalElement"),
        keys: &["CreationClassName", "Name"],
        properties: &[
            ("CreationClassName", "string", false),
            ("PrimaryStatus", "uint16", false),
            ("Caption", "string", false),
        ],
    },
    Fact {
        class: "CIM_ManagedElement",
        superclass: None,
        keys: &[],
        properties: &[("InstanceID", "string", false)],
    },
    Fact {
        class: "CIM_LogicalDevice",
        superclass: Some("CIM_EnabledLogicalElement"),
        keys: &[
            "CreationClassName",
            "DeviceID",
            "SystemCreationClassName",
            "SystemName",
        ],
        properties: &[
            ("SystemCreationClassName", "string", false),
            ("Description", "string", false),
            ("EnabledDefault", "uint16", false),
        ],
    },
    Fact {
        class: "CIM_Processor",
        superclass: Some("CIM_LogicalDevice"),
        keys: &[
            "CreationClassName",
            "DeviceID",
            "SystemCreationClassName",
            "SystemName",
        ],
        properties: &[
            ("Role", "string", false),
            ("OperationalStatus", "uint16", true),
            ("CreationClassName", "string", false),
        ],
    },
    Fact {
        class: "CIM_EthernetPort",
        superclass: Some("CIM_NetworkPort"),
        keys: &[
            "CreationClassName",
            "DeviceID",
            "SystemCreationClassName",
            "SystemName",
        ],
        properties: &[
            ("PortType", "uint16", false),
            ("MaxQuiesceTime", "uint64", false),
            ("ElementName", "string", false),
        ],
    },
    Fact {
        class: "CIM_IPProtocolEndpoint",
        superclass: Some("CIM_ProtocolEndpoint"),
        keys: &[
            "CreationClassName",
            "Name",
            "SystemCreationClassName",
            "SystemName",
        ],
        properties: &[
            ("IPv4Address", "string", false),
            ("RequestedState", "uint16", false),
            ("OperationalStatus", "uint16", true),
        ],
    },
    Fact {
        class: "CIM_SystemDevice",
        superclass: Some("CIM_SystemComponent"),
        keys: &["GroupComponent", "PartComponent"],
        properties: &[
            ("GroupComponent", "CIM_System REF", false),
            ("PartComponent", "CIM_LogicalDevice REF", false),
        ],
    },
    Fact {
        class: "CIM_HostedService",
        superclass: Some("CIM_HostedDependency"),
        keys: &["Antecedent", "Dependent"],
        properties: &[
            ("Antecedent", "CIM_System REF", false),
            ("Dependent", "CIM_Service REF", false),
        ],
    },
    Fact {
        class: "CIM_Service",
        superclass: Some("CIM_EnabledLogicalElement"),
        keys: &[
            "CreationClassName",
            "Name",
            "SystemCreationClassName",
            "SystemName",
        ],
        properties: &[
            ("SystemCreationClassName", "string", false),
            ("Caption", "string", false),
            ("Description", "string", false),
        ],
    },
    Fact {
        class: "CIM_OperatingSystem",
        superclass: Some("CIM_EnabledLogicalElement"),
        keys: &["CreationClassName", "CSCreationClassName", "CSName", "Name"],
        properties: &[
            ("CSCreationClassName", "string", false),
            ("EnabledState", "uint16", false),
            ("TransitioningToState", "uint16", false),
        ],
    },
    Fact {
        class: "CIM_InstalledOS",
        superclass: Some("CIM_SystemComponent"),
        keys: &["GroupComponent", "PartComponent"],
        properties: &[
            ("GroupComponent", "CIM_ComputerSystem REF", false),
            ("PartComponent", "CIM_OperatingSystem REF", false),
        ],
    },
    Fact {
        class: "CIM_RegisteredProfile",
        superclass: Some("CIM_RegisteredSpecification"),
        keys: &["InstanceID"],
        properties: &[
            ("ImplementedFeatures", "string", true),
            ("Caption", "string", false),
            ("ElementName", "string", false),
        ],
    },
    Fact {
        class: "CIM_ElementConformsToProfile",
        superclass: None,
        keys: &["ConformantStandard", "ManagedElement"],
        properties: &[
            ("ConformantStandard", "CIM_RegisteredProfile REF", false),
            ("ManagedElement", "CIM_ManagedElement REF", false),
        ],
    },
    Fact {
        class: "CIM_Indication",
        superclass: None,
        keys: &[],
        properties: &[("IndicationIdentifier", "string", false)],
    },
    Fact {
        class: "CIM_InstCreation",
        superclass: Some("CIM_InstIndication"),
        keys: &[],
        properties: &[
            ("CorrelatedIndications", "string", true),
            ("SourceInstance", "string", false),
        ],
    },
    Fact {
        class: "CIM_AlertIndication",
        superclass: Some("CIM_ProcessIndication"),
        keys: &[],
        properties: &[
            ("Description", "string", false),
            ("OtherSeverity", "string", false),
            ("IndicationIdentifier", "string", false),
        ],
    },
    Fact {
        class: "CIM_IndicationFilter",
        superclass: Some("CIM_ManagedElement"),
        keys: &[
            "CreationClassName",
            "Name",
            "SystemCreationClassName",
            "SystemName",
        ],
        properties: &[
            ("SystemCreationClassName", "string", false),
            ("InstanceID", "string", false),
            ("ElementName", "string", false),
        ],
    },
    Fact {
        class: "CIM_ListenerDestinationCIMXML",
        superclass: Some("CIM_ListenerDestination"),
        keys: &[
            "CreationClassName",
            "Name",
            "SystemCreationClassName",
            "SystemName",
        ],
        properties: &[
            ("Destination", "string", false),
            ("OtherProtocol", "string", false),
            ("Protocol", "uint16", false),
        ],
    },
    Fact {
        class: "CIM_IndicationSubscription",
        superclass: Some("CIM_AbstractIndicationSubscription"),
        keys: &["Filter", "Handler"],
        properties: &[
            ("Filter", "CIM_IndicationFilter REF", false),
            ("RepeatNotificationPolicy", "uint16", false),
            ("OnFatalErrorPolicy", "uint16", false),
            ("Handler", "CIM_ListenerDestination REF", false),
        ],
    },
    Fact {
        class: "CIM_StorageVolume",
        superclass: Some("CIM_StorageExtent"),
        keys: &[
            "CreationClassName",
            "DeviceID",
            "SystemCreationClassName",
            "SystemName",
        ],
        properties: &[
            ("Name", "string", false),
            ("MaxQuiesceTime", "uint64", false),
            ("DataOrganization", "uint16", false),
        ],
    },
    Fact {
        class: "CIM_DiskDrive",
        superclass: Some("CIM_MediaAccessDevice"),
        keys: &[
            "CreationClassName",
            "DeviceID",
            "SystemCreationClassName",
            "SystemName",
        ],
        properties: &[
            ("PowerManagementSupported", "boolean", false),
            ("ElementName", "string", false),
        ],
    },
    Fact {
        class: "CIM_PhysicalPackage",
        superclass: Some("CIM_PhysicalElement"),
        keys: &["CreationClassName", "Tag"],
        properties: &[
            ("RemovalConditions", "uint16", false),
            ("StatusDescriptions", "string", true),
            ("Caption", "string", false),
        ],
    },
    Fact {
        class: "CIM_Chassis",
        superclass: Some("CIM_PhysicalFrame"),
        keys: &["CreationClassName", "Tag"],
        properties: &[
            ("NumberOfPowerCords", "uint16", false),
            ("Weight", "real32", false),
            ("Status", "string", false),
        ],
    },
    Fact {
        class: "CIM_SoftwareIdentity",
        superclass: Some("CIM_LogicalElement"),
        keys: &["InstanceID"],
        properties: &[
            ("InstanceID", "string", false),
            ("Name", "string", false),
            ("StatusDescriptions", "string", true),
        ],
    },
    Fact {
        class: "CIM_Account",
        superclass: Some("CIM_EnabledLogicalElement"),
        keys: &[
            "CreationClassName",
            "Name",
            "SystemCreationClassName",
            "SystemName",
        ],
        properties: &[
            ("SystemCreationClassName", "string", false),
            ("InstallDate", "datetime", false),
            ("TimeOfLastStateChange", "datetime", false),
        ],
    },
    Fact {
        class: "CIM_Namespace",
        superclass: Some("CIM_ManagedElement"),
        keys: &[
            "CreationClassName",
            "Name",
            "ObjectManagerCreationClassName",
            "ObjectManagerName",
            "SystemCreationClassName",
            "SystemName",
        ],
        properties: &[
            ("SystemCreationClassName", "string", false),
            ("InstanceID", "string", false),
            ("Description", "string", false),
        ],
    },
    Fact {
        class: "CIM_ObjectManager",
        superclass: Some("CIM_WBEMService"),
        keys: &[
            "CreationClassName",
            "Name",
            "SystemCreationClassName",
            "SystemName",
        ],
        properties: &[
            ("GatherStatisticalData", "boolean", false),
            ("OperatingStatus", "uint16", false),
            ("TransitioningToState", "uint16", false),
        ],
    },
    Fact {
        class: "CIM_ConcreteJob",
        superclass: Some("CIM_Job"),
        keys: &["InstanceID"],
        properties: &[
            ("InstanceID", "string", false),
            ("PrimaryStatus", "uint16", false),
            ("Status", "string", false),
        ],
    },
    Fact {
        class: "CIM_Dependency",
        superclass: None,
        keys: &["Antecedent", "Dependent"],
        properties: &[
            ("Antecedent", "CIM_ManagedElement REF", false),
            ("Dependent", "CIM_ManagedElement REF", false),
        ],
    },
    Fact {
        class: "CIM_SystemComponent",
        superclass: Some("CIM_Component"),
        keys: &["GroupComponent", "PartComponent"],
        properties: &[
            ("GroupComponent", "CIM_System REF", false),
            ("PartComponent", "CIM_ManagedSystemElement REF", false),
        ],
    },
    Fact {
        class: "CIM_Fan",
        superclass: Some("CIM_CoolingDevice"),
        keys: &[
            "CreationClassName",
            "DeviceID",
            "SystemCreationClassName",
            "SystemName",
        ],
        properties: &[
            ("VariableSpeed", "boolean", false),
            ("MaxQuiesceTime", "uint64", false),
            ("AdditionalAvailability", "uint16", true),
        ],
    },
    Fact {
        class: "CIM_FileSystem",
        superclass: Some("CIM_EnabledLogicalElement"),
        keys: &["CreationClassName", "CSCreationClassName", "CSName", "Name"],
        properties: &[
            ("CSCreationClassName", "string", false),
            ("StatusDescriptions", "string", true),
            ("OperatingStatus", "uint16", false),
        ],
    },
    Fact {
        class: "CIM_LogicalFile",
        superclass: Some("CIM_LogicalElement"),
        keys: &[
            "CreationClassName",
            "CSCreationClassName",
            "CSName",
            "FSCreationClassName",
            "FSName",
            "Name",
        ],
        properties: &[
            ("CSCreationClassName", "string", false),
            ("Caption", "string", false),
            ("HealthState", "uint16", false),
        ],
    },
    Fact {
        class: "CIM_SettingData",
        superclass: Some("CIM_ManagedElement"),
        keys: &["InstanceID"],
        properties: &[
            ("InstanceID", "string", false),
            ("Caption", "string", false),
            ("Description", "string", false),
        ],
    },
    Fact {
        class: "CIM_ElementSettingData",
        superclass: None,
        keys: &["ManagedElement", "SettingData"],
        properties: &[
            ("ManagedElement", "CIM_ManagedElement REF", false),
            ("SettingData", "CIM_SettingData REF", false),
        ],
    },
];

#[test]
fn resolved_classes_agree_with_the_mof_files() {
    assert!(FACTS.len() >= 30);
    let mut failures = Vec::new();
    for fact in FACTS {
        let class = class(fact.class);
        let superclass = class.superclass.as_ref().map(|s| s.as_str());
        if !superclass.eq_ignore_ascii_case_opt(fact.superclass) {
            failures.push(format!("{}: superclass {superclass:?}", fact.class));
        }
        let mut keys: Vec<String> = class.keys().map(|p| p.name.to_string()).collect();
        keys.sort_by_key(|k| k.to_lowercase());
        let expected: Vec<String> = fact.keys.iter().map(|k| k.to_string()).collect();
        if keys != expected {
            failures.push(format!(
                "{}: keys {keys:?}, expected {expected:?}",
                fact.class
            ));
        }
        for &(name, cim_type, is_array) in fact.properties {
            match class.property(name) {
                None => failures.push(format!("{}: no property {name}", fact.class)),
                Some(property) => {
                    let actual = (property.cim_type.to_string(), property.is_array);
                    if actual != (cim_type.to_owned(), is_array) {
                        failures.push(format!("{}.{name}: {actual:?}", fact.class));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

trait EqIgnoreCaseOpt {
    fn eq_ignore_ascii_case_opt(&self, other: Option<&str>) -> bool;
}

impl EqIgnoreCaseOpt for Option<&str> {
    fn eq_ignore_ascii_case_opt(&self, other: Option<&str>) -> bool {
        match (self, other) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            (None, None) => true,
            _ => false,
        }
    }
}

fn strings(value: Option<&Value>) -> Vec<&str> {
    value
        .and_then(Value::as_array)
        .unwrap_or(&[])
        .iter()
        .map(|v| v.as_ref().and_then(Value::as_str).unwrap_or("NULL"))
        .collect()
}

#[test]
fn value_maps_and_defaults_are_typed() {
    // CIM_EnabledLogicalElement.mof: EnabledState, ValueMap of 13 strings, default 5.
    let element = class("CIM_EnabledLogicalElement");
    let enabled_state = element.property("EnabledState").unwrap();
    assert_eq!(enabled_state.cim_type, CimType::Uint16);
    assert_eq!(enabled_state.value, Some(Value::Uint16(5)));
    let value_map = enabled_state.qualifiers.get("ValueMap").unwrap();
    assert_eq!(value_map.cim_type, CimType::String);
    assert!(value_map.is_array);
    let map = strings(value_map.value.as_ref());
    assert_eq!(map.len(), 13);
    assert_eq!((map[0], map[12]), ("0", "32768..65535"));
    let values = enabled_state.qualifiers.get("Values").unwrap();
    assert!(values.flavor.translatable);
    assert_eq!(strings(values.value.as_ref())[2], "Enabled");

    // CIM_ManagedSystemElement.mof: OperationalStatus uint16[], ValueMap "0".."19", "..", "0x8000..".
    let operational = class("CIM_ManagedSystemElement")
        .property("OperationalStatus")
        .unwrap();
    assert!(operational.is_array);
    let map = strings(
        operational
            .qualifiers
            .get("valuemap")
            .unwrap()
            .value
            .as_ref(),
    );
    assert_eq!(map.len(), 22);
    assert_eq!(map[21], "0x8000..");

    // CIM_EthernetPort.mof: PortType's ValueMap starts "0", "1", "50".
    let port_type = class("CIM_EthernetPort").property("PortType").unwrap();
    let map = strings(port_type.qualifiers.get("ValueMap").unwrap().value.as_ref());
    assert_eq!(&map[..3], ["0", "1", "50"]);

    // Defaults of other types: CIM_PhysicalPackage.RemovalConditions = 2,
    // CIM_ObjectManager.GatherStatisticalData = true.
    assert_eq!(
        class("CIM_PhysicalPackage")
            .property("RemovalConditions")
            .unwrap()
            .value,
        Some(Value::Uint16(2))
    );
    assert_eq!(
        class("CIM_ObjectManager")
            .property("GatherStatisticalData")
            .unwrap()
            .value,
        Some(Value::Boolean(true))
    );
}

#[test]
fn methods_parameters_and_meta_qualifiers() {
    // CIM_EnabledLogicalElement.RequestStateChange(uint16 RequestedState,
    //     [IN (false), OUT] CIM_ConcreteJob REF Job, datetime TimeoutPeriod) : uint32
    let method = class("CIM_EnabledLogicalElement")
        .method("RequestStateChange")
        .unwrap();
    assert_eq!(method.return_type, CimType::Uint32);
    let names: Vec<&str> = method.parameters.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["RequestedState", "Job", "TimeoutPeriod"]);
    let job = method.parameter("Job").unwrap();
    assert_eq!(
        job.cim_type,
        CimType::Reference(Some("CIM_ConcreteJob".into()))
    );
    assert_eq!(
        job.qualifiers.get("In").unwrap().value,
        Some(Value::Boolean(false))
    );
    assert_eq!(
        job.qualifiers.get("Out").unwrap().value,
        Some(Value::Boolean(true))
    );
    assert_eq!(
        method.parameter("TimeoutPeriod").unwrap().cim_type,
        CimType::Datetime
    );

    assert!(class("CIM_Dependency").is_association());
    assert!(class("CIM_Indication").is_indication());
    assert!(class("CIM_ManagedElement").is_abstract());
    assert!(!class("CIM_ComputerSystem").is_association());
    // CIM_InstCreation.SourceInstance is an embedded instance (EmbeddedInstance on
    // CIM_InstIndication).
    assert!(class("CIM_InstIndication")
        .property("SourceInstance")
        .unwrap()
        .embedded_object
        .is_some());
}
