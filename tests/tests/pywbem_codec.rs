//! CIM-XML interoperability with pywbem (PyPI), a client nobody here wrote.
//!
//! The corpus below mirrors `tests/python/codec_interop.py` object by object, under the same
//! names. Both directions are tested:
//!
//! - cimguard to pywbem: each object is encoded with our element encoder into a folder, and
//!   `codec_interop.py check` parses every file with pywbem's own parser and compares it with
//!   pywbem's corpus object;
//! - pywbem to cimguard: `codec_interop.py emit` writes pywbem's `tocimxml()` of each object,
//!   and our element decoder must give back exactly the Rust corpus object.
//!
//! The Python interpreter is the venv that `scripts/test` creates; without it the test fails.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use cim_schema::model::{
    Char16, CimType, Class, ClassPath, Datetime, EmbeddedKind, Flavor, Instance, InstancePath,
    Method, Name, ObjectPath, Parameter, Property, Qualifier, QualifierDeclaration, QualifierList,
    Scope, Value,
};
use cim_schema::xml::{self, Encoder, Limits};

use cimguard_tests::run_python_script;

/// A string that needs every XML escape, both quotes, and characters beyond ASCII.
const AWKWARD: &str = "<&>\"' caf\u{e9} \u{65e5}\u{672c} \u{20ac}";

/// One corpus object, in the shape of the element that carries it.
#[derive(Clone, Debug, PartialEq)]
enum Object {
    Class(Class),
    Instance(Instance),
    InstancePath(InstancePath),
    ClassPath(ClassPath),
    QualifierDeclaration(QualifierDeclaration),
}

/// How a corpus object is checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Both ways.
    Both,
    /// pywbem to cimguard only: pywbem writes it but its parser cannot read it back.
    EmitOnly,
}

/// How decoded objects are compared.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Equality {
    /// `==`.
    Exact,
    /// The objects hold NaN, which is never `==` to itself: compare their `Debug` text, which
    /// spells NaN alike (and is stricter than `==` elsewhere: it sees case and `-0.0`).
    NanAware,
}

struct Entry {
    name: &'static str,
    build: fn() -> Object,
    direction: Direction,
    equality: Equality,
}

const fn entry(name: &'static str, build: fn() -> Object) -> Entry {
    Entry {
        name,
        build,
        direction: Direction::Both,
        equality: Equality::Exact,
    }
}

const CORPUS: [Entry; 19] = [
    entry("class_every_type", class_every_type),
    entry("class_association", class_association),
    entry("class_methods", class_methods),
    entry("instance_every_type", instance_every_type),
    entry("instance_datetimes", instance_datetimes),
    Entry {
        equality: Equality::NanAware,
        ..entry("instance_special_reals", instance_special_reals)
    },
    entry("instance_embedded", instance_embedded),
    entry("instance_reference", instance_reference),
    Entry {
        direction: Direction::EmitOnly,
        ..entry("instance_null_elements", instance_null_elements)
    },
    entry("path_local", path_local),
    entry("path_namespace", path_namespace),
    entry("path_host", path_host),
    entry("classname_plain", classname_plain),
    entry("classname_namespace", classname_namespace),
    entry("classname_host", classname_host),
    entry("qualifier_decl_key", qualifier_decl_key),
    entry("qualifier_decl_description", qualifier_decl_description),
    entry("qualifier_decl_valuemap", qualifier_decl_valuemap),
    entry("qualifier_decl_maxlen", qualifier_decl_maxlen),
];

// --- building blocks ------------------------------------------------------------------------

fn datetime(text: &str) -> Value {
    Value::Datetime(Datetime::parse(text).expect("corpus datetimes are valid"))
}

fn array(items: Vec<Option<Value>>) -> Option<Value> {
    Some(Value::Array(items))
}

fn string(text: &str) -> Option<Value> {
    Some(Value::from(text))
}

fn char16(c: char) -> Value {
    Value::Char16(Char16::from(c))
}

fn reference_to(class: &str) -> CimType {
    CimType::Reference(Some(Name::new(class)))
}

fn qualifier_with(
    name: &str,
    cim_type: CimType,
    value: Value,
    overridable: bool,
    to_subclass: bool,
    translatable: bool,
) -> Qualifier {
    let mut qualifier = Qualifier::new(name, cim_type, Some(value));
    qualifier.flavor = Flavor {
        overridable,
        to_subclass,
        translatable,
        to_instance: false,
    };
    qualifier
}

/// A qualifier with the default flavors.
fn qualifier(name: &str, cim_type: CimType, value: Value) -> Qualifier {
    qualifier_with(name, cim_type, value, true, true, false)
}

fn key_qualifier() -> Qualifier {
    qualifier_with(
        "Key",
        CimType::Boolean,
        Value::Boolean(true),
        false,
        true,
        false,
    )
}

fn description(text: &str) -> Qualifier {
    qualifier_with(
        "Description",
        CimType::String,
        Value::from(text),
        true,
        true,
        true,
    )
}

fn strings(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| Some(Value::from(*s))).collect())
}

fn qualifiers(list: Vec<Qualifier>) -> QualifierList {
    let mut qualifiers = QualifierList::new();
    for qualifier in list {
        qualifiers.insert(qualifier);
    }
    qualifiers
}

fn property(name: &str, cim_type: CimType, value: Option<Value>) -> Property {
    Property::new(name, cim_type, value)
}

/// An array property (`is_array` set even when the value is NULL).
fn array_property(name: &str, cim_type: CimType, value: Option<Value>) -> Property {
    Property {
        is_array: true,
        ..Property::new(name, cim_type, value)
    }
}

fn with_qualifiers(mut property: Property, list: Vec<Qualifier>) -> Property {
    property.qualifiers = qualifiers(list);
    property
}

fn embedded(mut property: Property, kind: EmbeddedKind) -> Property {
    property.embedded_object = Some(kind);
    property
}

fn class_with(name: &str, superclass: Option<&str>, properties: Vec<Property>) -> Class {
    let mut class = Class::new(name, superclass.map(Name::new));
    for property in properties {
        class.add_property(property);
    }
    class
}

fn instance_with(class_name: &str, properties: Vec<Property>) -> Instance {
    let mut instance = Instance::new(class_name);
    for property in properties {
        instance.set(property);
    }
    instance
}

fn path(class: &str, namespace: Option<&str>, host: Option<&str>) -> InstancePath {
    let mut path = InstancePath::new(class);
    path.namespace = namespace.map(str::to_owned);
    path.host = host.map(str::to_owned);
    path
}

fn reference(path: InstancePath) -> Value {
    Value::Reference(Box::new(ObjectPath::Instance(path)))
}

// --- classes --------------------------------------------------------------------------------

fn class_every_type() -> Object {
    let p = |property: Property| Property {
        class_origin: Some(Name::new("CIMG_EveryType")),
        ..property
    };
    let properties = vec![
        p(with_qualifiers(
            property("InstanceID", CimType::String, None),
            vec![key_qualifier(), description("The key.")],
        )),
        p(property(
            "Flag",
            CimType::Boolean,
            Some(Value::Boolean(true)),
        )),
        p(property("U8", CimType::Uint8, Some(Value::Uint8(255)))),
        p(property("S8", CimType::Sint8, Some(Value::Sint8(-128)))),
        p(property("U16", CimType::Uint16, Some(Value::Uint16(65535)))),
        p(property(
            "S16",
            CimType::Sint16,
            Some(Value::Sint16(-32768)),
        )),
        p(with_qualifiers(
            property("U32", CimType::Uint32, Some(Value::Uint32(u32::MAX))),
            vec![qualifier_with(
                "Units",
                CimType::String,
                Value::from("Bytes"),
                true,
                true,
                true,
            )],
        )),
        p(property(
            "S32",
            CimType::Sint32,
            Some(Value::Sint32(i32::MIN)),
        )),
        p(property(
            "U64",
            CimType::Uint64,
            Some(Value::Uint64(u64::MAX)),
        )),
        p(property(
            "S64",
            CimType::Sint64,
            Some(Value::Sint64(i64::MIN)),
        )),
        p(property("R32", CimType::Real32, Some(Value::Real32(1.5)))),
        p(property(
            "R64",
            CimType::Real64,
            Some(Value::Real64(-2.25e-10)),
        )),
        p(property("C16", CimType::Char16, Some(char16('\u{e9}')))),
        p(with_qualifiers(
            property("Text", CimType::String, string(AWKWARD)),
            vec![qualifier("MaxLen", CimType::Uint32, Value::Uint32(256))],
        )),
        p(property(
            "When",
            CimType::Datetime,
            Some(datetime("20261122230520.585089+000")),
        )),
        p(property("NoDefault", CimType::Uint32, None)),
        p(with_qualifiers(
            array_property(
                "States",
                CimType::Uint16,
                array(vec![Some(Value::Uint16(2)), Some(Value::Uint16(3))]),
            ),
            vec![
                qualifier("ValueMap", CimType::String, strings(&["2", "3", ".."])),
                qualifier_with(
                    "Values",
                    CimType::String,
                    strings(&["Enabled", "Disabled", "DMTF Reserved"]),
                    true,
                    true,
                    true,
                ),
            ],
        )),
        p(array_property(
            "Names",
            CimType::String,
            array(vec![string("a"), None, string("")]),
        )),
        p(Property {
            array_size: Some(16),
            ..array_property("Fixed", CimType::Uint8, None)
        }),
        p(array_property("Empty", CimType::Boolean, array(vec![]))),
        p(embedded(
            with_qualifiers(
                property("Settings", CimType::String, None),
                vec![qualifier(
                    "EmbeddedInstance",
                    CimType::String,
                    Value::from("CIMG_Setting"),
                )],
            ),
            EmbeddedKind::Instance,
        )),
        p(embedded(
            with_qualifiers(
                property("Anything", CimType::String, None),
                vec![qualifier(
                    "EmbeddedObject",
                    CimType::Boolean,
                    Value::Boolean(true),
                )],
            ),
            EmbeddedKind::Object,
        )),
    ];
    let mut class = class_with("CIMG_EveryType", Some("CIM_ManagedElement"), properties);
    class.qualifiers = qualifiers(vec![
        description(&format!("Every CIM type, with {AWKWARD}")),
        qualifier_with(
            "Version",
            CimType::String,
            Value::from("2.41.0"),
            false,
            false,
            false,
        ),
        qualifier_with(
            "Abstract",
            CimType::Boolean,
            Value::Boolean(false),
            false,
            false,
            false,
        ),
    ]);
    Object::Class(class)
}

fn class_association() -> Object {
    let origin = Some(Name::new("CIMG_NodeRunsPackage"));
    let key_reference = |name: &str, class: &str| Property {
        class_origin: origin.clone(),
        ..with_qualifiers(
            property(name, reference_to(class), None),
            vec![key_qualifier()],
        )
    };
    let mut class = class_with(
        "CIMG_NodeRunsPackage",
        None,
        vec![
            key_reference("Antecedent", "CIMG_Node"),
            key_reference("Dependent", "CIMG_Package"),
            Property {
                class_origin: Some(Name::new("CIMG_Dependency")),
                propagated: true,
                ..property("Since", CimType::Datetime, None)
            },
        ],
    );
    class.qualifiers = qualifiers(vec![qualifier_with(
        "Association",
        CimType::Boolean,
        Value::Boolean(true),
        false,
        true,
        false,
    )]);
    Object::Class(class)
}

fn parameter(name: &str, cim_type: CimType, is_array: bool, list: Vec<Qualifier>) -> Parameter {
    Parameter {
        name: Name::new(name),
        cim_type,
        is_array,
        array_size: None,
        qualifiers: qualifiers(list),
        embedded_object: None,
    }
}

fn class_methods() -> Object {
    let in_ = || {
        qualifier_with(
            "In",
            CimType::Boolean,
            Value::Boolean(true),
            false,
            true,
            false,
        )
    };
    let out = || {
        qualifier_with(
            "Out",
            CimType::Boolean,
            Value::Boolean(true),
            false,
            true,
            false,
        )
    };
    let origin = Some(Name::new("CIMG_Package"));
    let request_state_change = Method {
        name: Name::new("RequestStateChange"),
        return_type: CimType::Uint32,
        parameters: vec![
            parameter("RequestedState", CimType::Uint16, false, vec![in_()]),
            parameter(
                "Job",
                reference_to("CIM_ConcreteJob"),
                false,
                vec![in_(), out()],
            ),
            parameter("TimeoutPeriod", CimType::Datetime, false, vec![in_()]),
            parameter("Nodes", CimType::String, true, vec![in_()]),
            Parameter {
                array_size: Some(4),
                ..parameter("Weights", CimType::Uint8, true, vec![])
            },
            parameter("Jobs", reference_to("CIM_Job"), true, vec![]),
        ],
        qualifiers: qualifiers(vec![
            description("Starts or halts the package."),
            qualifier("ValueMap", CimType::String, strings(&["0", "1", "4096"])),
        ]),
        class_origin: origin.clone(),
        propagated: false,
    };
    let halt = Method {
        name: Name::new("Halt"),
        return_type: CimType::Boolean,
        parameters: vec![],
        qualifiers: QualifierList::new(),
        class_origin: origin.clone(),
        propagated: false,
    };
    let name = Property {
        class_origin: origin,
        ..with_qualifiers(
            property("Name", CimType::String, None),
            vec![key_qualifier()],
        )
    };
    let mut class = class_with(
        "CIMG_Package",
        Some("CIM_EnabledLogicalElement"),
        vec![name],
    );
    for method in [request_state_change, halt] {
        class.methods.insert(method.name.clone(), method);
    }
    Object::Class(class)
}

// --- instances ------------------------------------------------------------------------------

fn instance_every_type() -> Object {
    Object::Instance(instance_with(
        "CIMG_EveryType",
        vec![
            property("InstanceID", CimType::String, string("cimg:1")),
            property("Flag", CimType::Boolean, Some(Value::Boolean(false))),
            property("U8", CimType::Uint8, Some(Value::Uint8(0))),
            property("S8", CimType::Sint8, Some(Value::Sint8(127))),
            property("U16", CimType::Uint16, Some(Value::Uint16(1))),
            property("S16", CimType::Sint16, Some(Value::Sint16(-1))),
            property("U32", CimType::Uint32, Some(Value::Uint32(u32::MAX))),
            property("S32", CimType::Sint32, Some(Value::Sint32(i32::MIN))),
            property("U64", CimType::Uint64, Some(Value::Uint64(u64::MAX))),
            property("S64", CimType::Sint64, Some(Value::Sint64(i64::MIN))),
            property("R32", CimType::Real32, Some(Value::Real32(0.1))),
            property("R64", CimType::Real64, Some(Value::Real64(f64::MAX))),
            property("R64Tiny", CimType::Real64, Some(Value::Real64(5e-324))),
            property("C16", CimType::Char16, Some(char16('\u{20ac}'))),
            property("Text", CimType::String, string(AWKWARD)),
            property(
                "Lines",
                CimType::String,
                string("line one\nline two\twith a tab"),
            ),
            property("EmptyText", CimType::String, string("")),
            property("NullText", CimType::String, None),
            property(
                "When",
                CimType::Datetime,
                Some(datetime("20261122230520.585089-060")),
            ),
            array_property(
                "States",
                CimType::Uint16,
                array(vec![Some(Value::Uint16(2)), Some(Value::Uint16(65535))]),
            ),
            array_property(
                "Names",
                CimType::String,
                array(vec![string(AWKWARD), None, string("")]),
            ),
            array_property(
                "Chars",
                CimType::Char16,
                array(vec![Some(char16('a')), Some(char16('<'))]),
            ),
            array_property(
                "Flags",
                CimType::Boolean,
                array(vec![
                    Some(Value::Boolean(true)),
                    Some(Value::Boolean(false)),
                ]),
            ),
            array_property("Empty", CimType::Sint32, array(vec![])),
            array_property("NullArray", CimType::Real64, None),
        ],
    ))
}

fn instance_datetimes() -> Object {
    let d = |name: &str, text: &str| property(name, CimType::Datetime, Some(datetime(text)));
    Object::Instance(instance_with(
        "CIMG_Times",
        vec![
            d("Stamp", "20261122230520.585089+000"),
            d("East", "19991231235959.999999+720"),
            d("Interval", "00000001132312.000000:000"),
            d("LongInterval", "99999999235959.999999:000"),
            d("DayOnly", "20261122******.******+000"),
            d("Millis", "20050503104354.123***-420"),
            d("IntervalDays", "12345678******.******:000"),
            array_property(
                "Times",
                CimType::Datetime,
                array(vec![
                    Some(datetime("20261122230520.585089+000")),
                    Some(datetime("00000000000001.000000:000")),
                ]),
            ),
        ],
    ))
}

fn instance_special_reals() -> Object {
    let r32 = |name: &str, v: f32| property(name, CimType::Real32, Some(Value::Real32(v)));
    let r64 = |name: &str, v: f64| property(name, CimType::Real64, Some(Value::Real64(v)));
    Object::Instance(instance_with(
        "CIMG_Reals",
        vec![
            r32("PosInf32", f32::INFINITY),
            r32("NegInf32", f32::NEG_INFINITY),
            r32("Nan32", f32::NAN),
            r64("PosInf64", f64::INFINITY),
            r64("NegInf64", f64::NEG_INFINITY),
            r64("Nan64", f64::NAN),
            r64("NegZero", -0.0),
            array_property(
                "Mixed",
                CimType::Real64,
                array(vec![
                    Some(Value::Real64(1.0)),
                    Some(Value::Real64(f64::INFINITY)),
                    Some(Value::Real64(f64::NAN)),
                ]),
            ),
        ],
    ))
}

fn instance_embedded() -> Object {
    let town = instance_with(
        "CIMG_Town",
        vec![property("Name", CimType::String, string(AWKWARD))],
    );
    let address = instance_with(
        "CIMG_Address",
        vec![
            property("Street", CimType::String, string("Fritz & <the cat> Ave")),
            embedded(
                property(
                    "Town",
                    CimType::String,
                    Some(Value::Instance(Box::new(town.clone()))),
                ),
                EmbeddedKind::Instance,
            ),
        ],
    );
    let setting_class = class_with(
        "CIMG_Setting",
        None,
        vec![Property {
            class_origin: Some(Name::new("CIMG_Setting")),
            ..property("Value", CimType::Uint32, Some(Value::Uint32(7)))
        }],
    );
    let boxed = |instance: &Instance| Value::Instance(Box::new(instance.clone()));
    Object::Instance(instance_with(
        "CIMG_Holder",
        vec![
            embedded(
                property("Address", CimType::String, Some(boxed(&address))),
                EmbeddedKind::Instance,
            ),
            embedded(
                array_property(
                    "Addresses",
                    CimType::String,
                    array(vec![Some(boxed(&address)), None, Some(boxed(&town))]),
                ),
                EmbeddedKind::Instance,
            ),
            embedded(
                property(
                    "Object",
                    CimType::String,
                    Some(Value::Class(Box::new(setting_class))),
                ),
                EmbeddedKind::Object,
            ),
            embedded(
                property("ObjectInstance", CimType::String, Some(boxed(&town))),
                EmbeddedKind::Object,
            ),
            embedded(
                property("Nothing", CimType::String, None),
                EmbeddedKind::Instance,
            ),
        ],
    ))
}

fn instance_reference() -> Object {
    let node = path("CIMG_Node", Some("root/cimv2"), None).with_key("Name", "node1");
    let package = path("CIMG_Package", None, None).with_key("Name", "db<&>pkg");
    Object::Instance(instance_with(
        "CIMG_NodeRunsPackage",
        vec![
            property(
                "Antecedent",
                reference_to("CIMG_Node"),
                Some(reference(node)),
            ),
            property(
                "Dependent",
                reference_to("CIMG_Package"),
                Some(reference(package)),
            ),
            property("Unset", reference_to("CIMG_Node"), None),
        ],
    ))
}

fn instance_null_elements() -> Object {
    Object::Instance(instance_with(
        "CIMG_Nulls",
        vec![
            array_property(
                "States",
                CimType::Uint16,
                array(vec![
                    Some(Value::Uint16(2)),
                    None,
                    Some(Value::Uint16(65535)),
                ]),
            ),
            array_property(
                "Flags",
                CimType::Boolean,
                array(vec![
                    None,
                    Some(Value::Boolean(true)),
                    Some(Value::Boolean(false)),
                ]),
            ),
            array_property(
                "Times",
                CimType::Datetime,
                array(vec![Some(datetime("20261122230520.585089+000")), None]),
            ),
            array_property(
                "Reals",
                CimType::Real64,
                array(vec![Some(Value::Real64(0.5)), None]),
            ),
            array_property(
                "Chars",
                CimType::Char16,
                array(vec![None, Some(char16('x'))]),
            ),
            array_property("AllNull", CimType::Sint64, array(vec![None, None])),
        ],
    ))
}

// --- paths ----------------------------------------------------------------------------------

fn path_local() -> Object {
    Object::InstancePath(
        path("CIMG_Node", None, None)
            .with_key("Name", AWKWARD)
            .with_key("Port", Value::Uint16(5989))
            .with_key("Offset", Value::Sint32(-5))
            // An untyped numeric KEYVALUE takes the widest type.
            .with_key("Count", Value::Uint64(7))
            .with_key("Primary", true)
            .with_key("Standby", false),
    )
}

fn path_namespace() -> Object {
    Object::InstancePath(path("CIMG_Package", Some("root/cimv2"), None).with_key("Name", "dbpkg"))
}

fn path_host() -> Object {
    let node = path("CIMG_Node", Some("root/cimv2"), Some("node1.example:5989"))
        .with_key("Name", "node1")
        .with_key("Id", Value::Uint32(1));
    let package = path("CIMG_Package", None, None).with_key("Name", "dbpkg");
    Object::InstancePath(
        path(
            "CIMG_NodeRunsPackage",
            Some("root/cimv2"),
            Some("cluster.example:5989"),
        )
        .with_key("Antecedent", reference(node))
        .with_key("Dependent", reference(package)),
    )
}

fn class_path(namespace: Option<&str>, host: Option<&str>) -> Object {
    Object::ClassPath(ClassPath {
        host: host.map(str::to_owned),
        namespace: namespace.map(str::to_owned),
        class_name: Name::new("CIMG_Package"),
    })
}

fn classname_plain() -> Object {
    class_path(None, None)
}

fn classname_namespace() -> Object {
    class_path(Some("root/interop"), None)
}

fn classname_host() -> Object {
    class_path(Some("root/cimv2"), Some("node1:5989"))
}

// --- qualifier declarations -----------------------------------------------------------------

fn declaration(
    name: &str,
    cim_type: CimType,
    default: Option<Value>,
    scope: Scope,
    flavor: Flavor,
) -> Object {
    Object::QualifierDeclaration(QualifierDeclaration {
        name: Name::new(name),
        cim_type,
        is_array: default.as_ref().is_some_and(Value::is_array),
        array_size: None,
        default,
        scope,
        flavor,
    })
}

fn qualifier_decl_key() -> Object {
    let scope = Scope {
        property: true,
        reference: true,
        ..Scope::default()
    };
    let flavor = Flavor {
        overridable: false,
        ..Flavor::default()
    };
    declaration(
        "Key",
        CimType::Boolean,
        Some(Value::Boolean(false)),
        scope,
        flavor,
    )
}

fn qualifier_decl_description() -> Object {
    let flavor = Flavor {
        translatable: true,
        ..Flavor::default()
    };
    declaration("Description", CimType::String, None, Scope::ANY, flavor)
}

fn property_method_parameter() -> Scope {
    Scope {
        property: true,
        method: true,
        parameter: true,
        ..Scope::default()
    }
}

fn qualifier_decl_valuemap() -> Object {
    let flavor = Flavor {
        to_subclass: false,
        ..Flavor::default()
    };
    let default = strings(&["0", AWKWARD]);
    declaration(
        "ValueMap",
        CimType::String,
        Some(default),
        property_method_parameter(),
        flavor,
    )
}

fn qualifier_decl_maxlen() -> Object {
    declaration(
        "MaxLen",
        CimType::Uint32,
        Some(Value::Uint32(0)),
        property_method_parameter(),
        Flavor::default(),
    )
}

// --- the harness ----------------------------------------------------------------------------

/// Encodes an object as the element pywbem's `tocimxml()` gives for it: paths without a
/// namespace as `INSTANCENAME`/`CLASSNAME`, with a namespace as `LOCALINSTANCEPATH`/
/// `LOCALCLASSPATH`, with a host too as `INSTANCEPATH`/`CLASSPATH`.
fn encode(object: &Object) -> Vec<u8> {
    let mut encoder = Encoder::new();
    let written = match object {
        Object::Class(class) => encoder.class(class),
        Object::Instance(instance) => encoder.instance(instance),
        Object::QualifierDeclaration(declaration) => encoder.qualifier_declaration(declaration),
        Object::InstancePath(path) => match (&path.host, &path.namespace) {
            (Some(_), Some(_)) => encoder.instance_path(path),
            (_, Some(_)) => encoder.local_instance_path(path),
            _ => encoder.instance_name(path),
        },
        Object::ClassPath(path) => match (&path.host, &path.namespace) {
            (Some(_), Some(_)) => encoder.class_path(path),
            (_, Some(_)) => encoder.local_class_path(path),
            _ => {
                encoder.class_name(&path.class_name);
                Ok(())
            }
        },
    };
    if let Err(error) = written {
        panic!("our encoder refused {object:?}: {error}");
    }
    encoder.into_bytes()
}

/// Decodes one element as the kind of object `expected` is.
fn decode(xml: &[u8], expected: &Object) -> Result<Object, xml::DecodeError> {
    let limits = Limits::DEFAULT;
    Ok(match expected {
        Object::Class(_) => Object::Class(xml::decode_class(xml, &limits)?),
        Object::Instance(_) => Object::Instance(xml::decode_instance(xml, &limits)?),
        Object::QualifierDeclaration(_) => {
            Object::QualifierDeclaration(xml::decode_qualifier_declaration(xml, &limits)?)
        }
        Object::InstancePath(_) => Object::InstancePath(xml::decode_instance_path(xml, &limits)?),
        Object::ClassPath(_) => match xml::decode_object_path(xml, &limits)? {
            ObjectPath::Class(path) => Object::ClassPath(path),
            ObjectPath::Instance(path) => Object::InstancePath(path),
        },
    })
}

fn same(entry: &Entry, a: &Object, b: &Object) -> bool {
    match entry.equality {
        Equality::Exact => a == b,
        Equality::NanAware => format!("{a:?}") == format!("{b:?}"),
    }
}

/// A fresh, empty folder under Cargo's per-target temporary directory.
fn scratch_folder(name: &str) -> PathBuf {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("pywbem_codec-{name}-{}", std::process::id()));
    // A leftover from an earlier run would let stale files pass for new ones.
    let _ = fs::remove_dir_all(&folder);
    fs::create_dir_all(&folder).expect("the target temp dir is writable");
    folder
}

fn python(args: &[&OsStr]) -> String {
    let output = run_python_script("codec_interop.py", args).unwrap_or_else(|why| panic!("{why}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "codec_interop.py {args:?} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}

#[test]
fn the_two_corpora_name_the_same_objects() {
    let python_names: BTreeSet<String> = python(&[OsStr::new("list")])
        .lines()
        .map(str::to_owned)
        .collect();
    let rust_names: BTreeSet<String> = CORPUS
        .iter()
        .map(|entry| match entry.direction {
            Direction::Both => entry.name.to_owned(),
            Direction::EmitOnly => format!("emit-only {}", entry.name),
        })
        .collect();
    assert_eq!(rust_names, python_names);
}

#[test]
fn pywbem_parses_our_xml_to_the_objects_we_meant() {
    let folder = scratch_folder("ours");
    let mut written = 0;
    for entry in CORPUS.iter().filter(|e| e.direction == Direction::Both) {
        let object = (entry.build)();
        let xml = encode(&object);
        // Our own decoder must read our XML back first: a failure here is ours alone.
        match decode(&xml, &object) {
            Ok(decoded) => assert!(
                same(entry, &decoded, &object),
                "{}: our round trip differs\n  ours:    {object:?}\n  decoded: {decoded:?}",
                entry.name
            ),
            Err(error) => panic!("{}: we cannot decode our own XML: {error}", entry.name),
        }
        fs::write(folder.join(format!("{}.xml", entry.name)), &xml).expect("writable");
        written += 1;
    }
    assert!(written > 0);
    let report = python(&[OsStr::new("check"), folder.as_os_str()]);
    println!("{report}");
    let _ = fs::remove_dir_all(&folder);
}

#[test]
fn we_decode_pywbem_xml_to_the_objects_it_meant() {
    let folder = scratch_folder("pywbem");
    python(&[OsStr::new("emit"), folder.as_os_str()]);
    let mut failures = Vec::new();
    for entry in &CORPUS {
        let expected = (entry.build)();
        let file = folder.join(format!("{}.xml", entry.name));
        let xml = fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let text = String::from_utf8_lossy(&xml);
        match decode(&xml, &expected) {
            Ok(decoded) if same(entry, &decoded, &expected) => println!("ok    {}", entry.name),
            Ok(decoded) => failures.push(format!(
                "{}: differs\n  expected: {expected:?}\n  decoded:  {decoded:?}\n  xml: {text}",
                entry.name
            )),
            Err(error) => failures.push(format!("{}: {error}\n  xml: {text}", entry.name)),
        }
    }
    let _ = fs::remove_dir_all(&folder);
    assert!(
        failures.is_empty(),
        "{} of {} objects from pywbem decode wrongly:\n{}",
        failures.len(),
        CORPUS.len(),
        failures.join("\n")
    );
}
