//! Shared helpers of the cim-schema integration tests and benchmarks: sample objects and
//! proptest strategies for the CIM model.
// Each test binary and the benchmark use a different subset of these helpers.
#![allow(dead_code)]

use cim_schema::model::{
    Char16, CimType, Class, ClassPath, Datetime, EmbeddedKind, Flavor, Instance, InstancePath,
    KeyBinding, Method, Name, ObjectPath, Parameter, Property, Qualifier, QualifierList, Value,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// An HP_SGPackage instance as serviceguard.md §1.3 and §1.7 describe it, about 25
/// properties, with its instance name. `index` varies the names and numbers.
pub fn sg_package(index: usize) -> (InstancePath, Instance) {
    let name = format!("pkg{index:05}");
    let path = InstancePath::new("HP_SGPackage")
        .with_key("CreationClassName", "HP_SGPackage")
        .with_key("Name", name.as_str())
        .with_key("SystemCreationClassName", "HP_SGCluster")
        .with_key("SystemName", "prodcl");
    let string = |n: &str, v: &str| Property::new(n, CimType::String, Some(Value::from(v)));
    let strings = |n: &str, v: &[&str]| {
        Property::new(
            n,
            CimType::String,
            Some(Value::Array(
                v.iter().map(|s| Some(Value::from(*s))).collect(),
            )),
        )
    };
    let boolean = |n: &str, v: bool| Property::new(n, CimType::Boolean, Some(Value::from(v)));
    let uint16 = |n: &str, v: u16| Property::new(n, CimType::Uint16, Some(Value::from(v)));
    let node = format!("hpnode{}", index % 4 + 1);
    let instance = Instance::new("HP_SGPackage")
        .with(string("SystemCreationClassName", "HP_SGCluster"))
        .with(string("SystemName", "prodcl"))
        .with(string("CreationClassName", "HP_SGPackage"))
        .with(string("Name", &name))
        .with(string(
            "ElementName",
            "Example database <primary> & \"replica\"",
        ))
        .with(string("Caption", "Serviceguard package"))
        .with(string(
            "Description",
            "A failover package of the prodcl cluster",
        ))
        .with(string("PackageType", "failover"))
        .with(string("PackageStatus", "up"))
        .with(string("PackageState", "running"))
        .with(string("Summary", "ok"))
        .with(boolean("AutoRun", true))
        .with(string("CurrentNode", &node))
        .with(strings("NodeNames", &["hpnode1", "hpnode2", "hpnode3"]))
        .with(string("FailoverPolicy", "configured_node"))
        .with(string("FailbackPolicy", "manual"))
        .with(Property::new(
            "Priority",
            CimType::Uint32,
            Some(Value::Uint32(20 + index as u32 % 100)),
        ))
        .with(boolean("NodeFailFastEnabled", false))
        .with(Property::new("RunScriptTimeout", CimType::Uint32, None))
        .with(Property::new(
            "HaltScriptTimeout",
            CimType::Uint32,
            Some(Value::Uint32(300)),
        ))
        .with(boolean("LastHaltFailed", false))
        .with(uint16("EnabledState", 2))
        .with(uint16("RequestedState", 12))
        .with(Property::new(
            "OperationalStatus",
            CimType::Uint16,
            Some(Value::Array(vec![Some(Value::Uint16(2))])),
        ))
        .with(strings("StatusDescriptions", &["OK"]))
        .with(boolean("Started", true))
        .with(Property::new(
            "TimeOfLastStateChange",
            CimType::Datetime,
            Some(Value::Datetime(
                Datetime::parse("20261122230520.585089+000").expect("a valid datetime"),
            )),
        ));
    (path, instance)
}

// ----- proptest strategies -----

/// A CIM identifier.
pub fn arb_name() -> impl Strategy<Value = Name> {
    "[A-Za-z_][A-Za-z0-9_]{0,12}".prop_map(Name::from)
}

/// Any string XML 1.0 can carry: markup characters, quotes, TAB/LF/CR, non-ASCII.
pub fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[\\PC\t\n\r<>&\"']{0,24}",
        "[ a-z<>&;\\]]{0,12}",
        Just("]]>&amp;<![CDATA[x]]>".to_owned()),
    ]
}

/// A char16 XML can carry (no controls other than TAB/LF/CR, no surrogates, no U+FFFE/F).
pub fn arb_char16() -> impl Strategy<Value = Char16> {
    prop_oneof![
        Just(Char16(u16::from(b'<'))),
        Just(Char16(u16::from(b'&'))),
        Just(Char16(0x0D)),
        Just(Char16(0x20)),
        (0x20u16..0xD800).prop_map(Char16),
        (0xE000u16..0xFFFE).prop_map(Char16),
    ]
}

/// Timestamps and intervals with and without asterisk wildcards.
pub fn arb_datetime() -> impl Strategy<Value = Datetime> {
    let timestamp = (
        0u32..=9999,
        1u32..=12,
        1u32..=31,
        0u32..=23,
        0u32..=59,
        0u32..=60,
        0u32..1_000_000,
        prop_oneof![Just('+'), Just('-')],
        0u32..=999,
    )
        .prop_map(|(y, mo, d, h, mi, s, us, sign, off)| {
            format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}.{us:06}{sign}{off:03}")
        });
    let interval = (
        0u32..=99_999_999,
        0u32..=23,
        0u32..=59,
        0u32..=59,
        0u32..1_000_000,
    )
        .prop_map(|(d, h, mi, s, us)| format!("{d:08}{h:02}{mi:02}{s:02}.{us:06}:000"));
    (prop_oneof![timestamp, interval], 0usize..=12).prop_map(|(text, wildcards)| {
        // Wildcard the least significant characters: microseconds first, then whole fields.
        let mut bytes = text.into_bytes();
        let positions = [20, 19, 18, 17, 16, 15];
        for &p in positions.iter().take(wildcards.min(6)) {
            bytes[p] = b'*';
        }
        let fields: [(usize, usize); 6] = [(12, 2), (10, 2), (8, 2), (6, 2), (4, 2), (0, 4)];
        if wildcards > 6 {
            for &(start, len) in fields.iter().take(wildcards - 6) {
                if bytes[21] == b':' && start < 8 {
                    bytes[..8].fill(b'*');
                    break;
                }
                bytes[start..start + len].fill(b'*');
            }
        }
        let text = String::from_utf8(bytes).expect("ascii");
        Datetime::parse(&text).expect("a generated datetime is valid")
    })
}

/// Reals including infinities, zeros of both signs and subnormals (no NaN: it is not equal
/// to itself; the NaN round trip is tested on its own).
pub fn arb_real64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("not NaN", |v| !v.is_nan()),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(f64::MIN_POSITIVE / 3.0),
        Just(5e-324),
    ]
}

/// As [`arb_real64`] for `real32`.
pub fn arb_real32() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<f32>().prop_filter("not NaN", |v| !v.is_nan()),
        Just(f32::INFINITY),
        Just(f32::NEG_INFINITY),
        Just(-0.0f32),
        Just(1e-45f32),
    ]
}

/// Every non-reference scalar type.
pub fn arb_scalar_type() -> impl Strategy<Value = CimType> {
    prop_oneof![
        Just(CimType::Boolean),
        Just(CimType::Uint8),
        Just(CimType::Sint8),
        Just(CimType::Uint16),
        Just(CimType::Sint16),
        Just(CimType::Uint32),
        Just(CimType::Sint32),
        Just(CimType::Uint64),
        Just(CimType::Sint64),
        Just(CimType::Real32),
        Just(CimType::Real64),
        Just(CimType::Char16),
        Just(CimType::String),
        Just(CimType::Datetime),
    ]
}

/// A scalar of the given (non-reference) type.
pub fn arb_scalar(cim_type: &CimType) -> BoxedStrategy<Value> {
    match cim_type {
        CimType::Boolean => any::<bool>().prop_map(Value::Boolean).boxed(),
        CimType::Uint8 => any::<u8>().prop_map(Value::Uint8).boxed(),
        CimType::Sint8 => any::<i8>().prop_map(Value::Sint8).boxed(),
        CimType::Uint16 => any::<u16>().prop_map(Value::Uint16).boxed(),
        CimType::Sint16 => any::<i16>().prop_map(Value::Sint16).boxed(),
        CimType::Uint32 => any::<u32>().prop_map(Value::Uint32).boxed(),
        CimType::Sint32 => any::<i32>().prop_map(Value::Sint32).boxed(),
        CimType::Uint64 => any::<u64>().prop_map(Value::Uint64).boxed(),
        CimType::Sint64 => any::<i64>().prop_map(Value::Sint64).boxed(),
        CimType::Real32 => arb_real32().prop_map(Value::Real32).boxed(),
        CimType::Real64 => arb_real64().prop_map(Value::Real64).boxed(),
        CimType::Char16 => arb_char16().prop_map(Value::Char16).boxed(),
        CimType::String => arb_string().prop_map(Value::String).boxed(),
        CimType::Datetime => arb_datetime().prop_map(Value::Datetime).boxed(),
        CimType::Reference(_) => arb_object_path(1)
            .prop_map(|p| Value::Reference(Box::new(p)))
            .boxed(),
    }
}

/// A type with a value of it: scalar, or array with NULL elements.
pub fn arb_typed_value() -> impl Strategy<Value = (CimType, Value)> {
    (arb_scalar_type(), any::<bool>()).prop_flat_map(|(cim_type, array)| {
        let scalar = arb_scalar(&cim_type);
        let value = if array {
            vec(proptest::option::weighted(0.8, scalar), 0..5)
                .prop_map(Value::Array)
                .boxed()
        } else {
            scalar
        };
        (Just(cim_type), value)
    })
}

/// A namespace of one to three segments.
pub fn arb_namespace() -> impl Strategy<Value = String> {
    vec("[a-zA-Z0-9_]{1,8}", 1..4).prop_map(|segments| segments.join("/"))
}

/// A key value: every scalar kind a key may have, and references nesting to `depth`.
pub fn arb_key_value(depth: u32) -> BoxedStrategy<Value> {
    let scalar = prop_oneof![
        arb_scalar_type().prop_flat_map(|t| arb_scalar(&t)),
        arb_string().prop_map(Value::String),
    ];
    if depth == 0 {
        scalar.boxed()
    } else {
        prop_oneof![
            4 => scalar,
            1 => arb_object_path(depth - 1).prop_map(|p| Value::Reference(Box::new(p))),
        ]
        .boxed()
    }
}

/// An instance path with any of the three locality forms.
pub fn arb_instance_path(depth: u32) -> BoxedStrategy<InstancePath> {
    (
        arb_name(),
        vec((arb_name(), arb_key_value(depth)), 0..4),
        proptest::option::of(arb_namespace()),
        proptest::option::of("[a-z0-9.-]{1,12}(:[0-9]{1,5})?"),
    )
        .prop_map(|(class_name, keys, namespace, host)| {
            let mut path = InstancePath::new(class_name);
            for (name, value) in keys {
                if path.key(name.as_str()).is_none() {
                    path.keybindings.push(KeyBinding { name, value });
                }
            }
            // A host without a namespace has no CIM-XML form.
            path.host = host.filter(|_| namespace.is_some());
            path.namespace = namespace;
            path
        })
        .boxed()
}

/// A class path with any of the three locality forms.
pub fn arb_class_path() -> impl Strategy<Value = ClassPath> {
    (
        arb_name(),
        proptest::option::of(arb_namespace()),
        proptest::option::of("[a-z0-9.-]{1,12}"),
    )
        .prop_map(|(class_name, namespace, host)| ClassPath {
            host: host.filter(|_| namespace.is_some()),
            namespace,
            class_name,
        })
}

/// A class or instance path.
pub fn arb_object_path(depth: u32) -> BoxedStrategy<ObjectPath> {
    prop_oneof![
        arb_class_path().prop_map(ObjectPath::Class),
        arb_instance_path(depth).prop_map(ObjectPath::Instance),
    ]
    .boxed()
}

/// A qualifier with a scalar or array value (or NULL) and any flavors.
pub fn arb_qualifier() -> impl Strategy<Value = Qualifier> {
    (
        arb_name(),
        arb_typed_value(),
        any::<bool>(),
        any::<[bool; 5]>(),
    )
        .prop_map(|(name, (cim_type, value), null, flags)| {
            let value = (!null).then_some(value);
            Qualifier {
                name,
                is_array: value.as_ref().is_some_and(Value::is_array),
                cim_type,
                value,
                flavor: Flavor {
                    overridable: flags[0],
                    to_subclass: flags[1],
                    translatable: flags[2],
                    to_instance: flags[3],
                },
                propagated: flags[4],
            }
        })
}

fn qualifier_list(qualifiers: Vec<Qualifier>) -> QualifierList {
    let mut list = QualifierList::new();
    for qualifier in qualifiers {
        list.insert(qualifier);
    }
    list
}

/// A property of any kind: scalar, array (with NULLs), NULL, reference, embedded instances
/// nested to `depth`.
pub fn arb_property(depth: u32) -> BoxedStrategy<Property> {
    let plain = (arb_name(), arb_typed_value(), any::<bool>())
        .prop_map(|(name, (cim_type, value), null)| {
            let is_array = value.is_array();
            let mut property = Property::new(name, cim_type, (!null).then_some(value));
            property.is_array = is_array;
            property
        })
        .boxed();
    let reference = (
        arb_name(),
        proptest::option::of(arb_name()),
        arb_object_path(1),
    )
        .prop_map(|(name, class, path)| {
            Property::new(
                name,
                CimType::Reference(class),
                Some(Value::Reference(Box::new(path))),
            )
        });
    let decorated = (
        plain.clone(),
        vec(arb_qualifier(), 0..2),
        proptest::option::of(arb_name()),
        any::<bool>(),
    )
        .prop_map(|(mut property, qualifiers, origin, propagated)| {
            property.qualifiers = qualifier_list(qualifiers);
            property.class_origin = origin;
            property.propagated = propagated;
            property
        });
    if depth == 0 {
        return prop_oneof![4 => plain, 1 => reference, 1 => decorated].boxed();
    }
    let embedded = (
        arb_name(),
        vec(
            proptest::option::weighted(0.8, arb_instance(depth - 1)),
            0..3,
        ),
        any::<bool>(),
    )
        .prop_map(|(name, instances, array)| {
            let value = if array {
                Value::Array(
                    instances
                        .into_iter()
                        .map(|i| i.map(|i| Value::Instance(Box::new(i))))
                        .collect(),
                )
            } else {
                match instances.into_iter().flatten().next() {
                    Some(instance) => Value::Instance(Box::new(instance)),
                    None => Value::Instance(Box::new(Instance::new("Empty"))),
                }
            };
            let mut property = Property::new(name, CimType::String, Some(value));
            property.embedded_object = Some(EmbeddedKind::Instance);
            property
        });
    prop_oneof![4 => plain, 1 => reference, 1 => decorated, 1 => embedded].boxed()
}

/// An instance with qualifiers sometimes and properties of every kind, embedded instances
/// nested to `depth`.
pub fn arb_instance(depth: u32) -> BoxedStrategy<Instance> {
    (
        arb_name(),
        vec(arb_qualifier(), 0..2),
        vec(arb_property(depth), 0..6),
    )
        .prop_map(|(class_name, qualifiers, properties)| {
            let mut instance = Instance::new(class_name);
            instance.qualifiers = qualifier_list(qualifiers);
            for property in properties {
                instance.set(property);
            }
            instance
        })
        .boxed()
}

/// A parameter of any of the four kinds.
pub fn arb_parameter() -> impl Strategy<Value = Parameter> {
    (
        arb_name(),
        prop_oneof![arb_scalar_type().prop_map(Some), Just(None)],
        proptest::option::of(arb_name()),
        any::<bool>(),
        proptest::option::of(0u32..64),
        vec(arb_qualifier(), 0..2),
    )
        .prop_map(
            |(name, scalar, class, is_array, size, qualifiers)| Parameter {
                name,
                cim_type: scalar.unwrap_or(CimType::Reference(class)),
                is_array,
                array_size: size.filter(|_| is_array),
                // Qualifiers named EmbeddedObject/EmbeddedInstance would imply a kind; the
                // generated names are random identifiers, which in practice never are.
                qualifiers: qualifier_list(qualifiers),
                embedded_object: None,
            },
        )
        .prop_filter("no implied embedded kind", |p| {
            p.qualifiers.get("EmbeddedObject").is_none()
                && p.qualifiers.get("EmbeddedInstance").is_none()
        })
}

/// A class with qualifiers, properties (with default values) and methods.
pub fn arb_class() -> impl Strategy<Value = Class> {
    (
        arb_name(),
        proptest::option::of(arb_name()),
        vec(arb_qualifier(), 0..3),
        vec(arb_property(0), 0..5),
        vec(
            (
                arb_name(),
                arb_scalar_type(),
                vec(arb_parameter(), 0..3),
                vec(arb_qualifier(), 0..2),
                proptest::option::of(arb_name()),
                any::<bool>(),
            ),
            0..3,
        ),
    )
        .prop_map(|(name, superclass, qualifiers, properties, methods)| {
            let mut class = Class::new(name, superclass);
            class.qualifiers = qualifier_list(qualifiers);
            for property in properties {
                class.add_property(property);
            }
            for (name, return_type, parameters, qualifiers, origin, propagated) in methods {
                class.methods.insert(
                    name.clone(),
                    Method {
                        name,
                        return_type,
                        parameters,
                        qualifiers: qualifier_list(qualifiers),
                        class_origin: origin,
                        propagated,
                    },
                );
            }
            class
        })
}
