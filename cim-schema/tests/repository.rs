//! The class repository, driven through its public API with classes built by hand: inheritance
//! by flavor, overrides, the DSP0004 rules, the queries of the intrinsic operations, instances
//! and associations. Every refused operation is checked to leave the repository unchanged.

use cim_schema::model::{
    CimType, Class, Flavor, Instance, InstancePath, Method, Name, ObjectPath, Parameter, Property,
    Qualifier, QualifierDeclaration, Scope, Value,
};
use cim_schema::repository::{AssociationFilter, ClassQuery, Repository, RepositoryError};

const NS: &str = "root/test";

// ----- builders -------------------------------------------------------------------------------

/// A qualifier with explicit flavors: `to_subclass` false is Restricted, `overridable` false is
/// DisableOverride.
fn qualifier(name: &str, value: Value, to_subclass: bool, overridable: bool) -> Qualifier {
    let mut q = Qualifier::new(
        name,
        value.cim_type().unwrap_or(CimType::String),
        Some(value),
    );
    q.flavor = Flavor {
        overridable,
        to_subclass,
        ..Flavor::default()
    };
    q
}

/// `Key`, as DMTF declares it: DisableOverride, ToSubclass.
fn key() -> Qualifier {
    qualifier("Key", Value::Boolean(true), true, false)
}

/// `Description`: EnableOverride, ToSubclass.
fn description(text: &str) -> Qualifier {
    qualifier("Description", Value::from(text), true, true)
}

/// `Abstract`, as DMTF declares it: Restricted.
fn abstract_() -> Qualifier {
    qualifier("Abstract", Value::Boolean(true), false, true)
}

/// `Association`: DisableOverride, ToSubclass.
fn association() -> Qualifier {
    qualifier("Association", Value::Boolean(true), true, false)
}

fn property(name: &str, cim_type: CimType, qualifiers: Vec<Qualifier>) -> Property {
    let mut p = Property::new(name, cim_type, None);
    for q in qualifiers {
        p.qualifiers.insert(q);
    }
    p
}

fn reference(name: &str, target: &str, qualifiers: Vec<Qualifier>) -> Property {
    property(
        name,
        CimType::Reference(Some(Name::new(target))),
        qualifiers,
    )
}

fn class(name: &str, superclass: Option<&str>, qualifiers: Vec<Qualifier>) -> Class {
    let mut c = Class::new(name, superclass.map(Name::new));
    for q in qualifiers {
        c.qualifiers.insert(q);
    }
    c
}

fn with(mut class: Class, properties: Vec<Property>) -> Class {
    for p in properties {
        class.add_property(p);
    }
    class
}

fn method(name: &str, parameters: Vec<Parameter>, qualifiers: Vec<Qualifier>) -> Method {
    let mut m = Method {
        name: Name::new(name),
        return_type: CimType::Uint32,
        parameters,
        qualifiers: Default::default(),
        class_origin: None,
        propagated: false,
    };
    for q in qualifiers {
        m.qualifiers.insert(q);
    }
    m
}

fn parameter(name: &str, cim_type: CimType, qualifiers: Vec<Qualifier>) -> Parameter {
    let mut p = Parameter {
        name: Name::new(name),
        cim_type,
        is_array: false,
        array_size: None,
        qualifiers: Default::default(),
        embedded_object: None,
    };
    for q in qualifiers {
        p.qualifiers.insert(q);
    }
    p
}

fn add_method(class: &mut Class, method: Method) {
    class.methods.insert(method.name.clone(), method);
}

/// Test_Base (abstract, keyed by Name) <- Test_Child (overrides Caption, adds Extra) <-
/// Test_Grandchild; Test_Other (keyed by Id); Test_Assoc linking Test_Base and Test_Other.
fn fixture() -> Repository {
    let mut repository = Repository::new();
    repository.create_namespace(NS);

    let mut base = with(
        class(
            "Test_Base",
            None,
            vec![abstract_(), description("the base")],
        ),
        vec![
            property("Name", CimType::String, vec![key(), description("name")]),
            property(
                "Caption",
                CimType::String,
                vec![
                    description("base caption"),
                    qualifier("MaxLen", Value::Uint32(64), true, true),
                    qualifier("Restricted_Note", Value::from("base only"), false, true),
                ],
            ),
            property("Count", CimType::Uint32, vec![]),
        ],
    );
    add_method(
        &mut base,
        method(
            "Reset",
            vec![parameter(
                "Level",
                CimType::Uint16,
                vec![
                    qualifier("In", Value::Boolean(true), true, false),
                    qualifier("Restricted_Note", Value::from("base only"), false, true),
                ],
            )],
            vec![description("reset")],
        ),
    );
    repository.add_class(NS, base).unwrap();

    let mut child = with(
        class("Test_Child", Some("Test_Base"), vec![]),
        vec![
            property("Extra", CimType::String, vec![]),
            property(
                "Caption",
                CimType::String,
                vec![
                    qualifier("Override", Value::from("Caption"), false, true),
                    description("child caption"),
                ],
            ),
        ],
    );
    add_method(&mut child, method("Stop", vec![], vec![]));
    repository.add_class(NS, child).unwrap();
    repository
        .add_class(NS, class("Test_Grandchild", Some("Test_Child"), vec![]))
        .unwrap();
    repository
        .add_class(
            NS,
            with(
                class("Test_Other", None, vec![]),
                vec![property("Id", CimType::Uint32, vec![key()])],
            ),
        )
        .unwrap();
    repository
        .add_class(
            NS,
            with(
                class("Test_Assoc", None, vec![association()]),
                vec![
                    reference("Left", "Test_Base", vec![key()]),
                    reference("Right", "Test_Other", vec![key()]),
                ],
            ),
        )
        .unwrap();
    repository
}

/// Runs an operation that must fail and checks the repository is as it was.
fn refused<T: std::fmt::Debug>(
    repository: &mut Repository,
    operation: impl FnOnce(&mut Repository) -> Result<T, RepositoryError>,
) -> RepositoryError {
    let before = repository.clone();
    let error = operation(repository).expect_err("the operation should be refused");
    assert_eq!(
        *repository, before,
        "a refused operation changed the repository"
    );
    error
}

fn names(list: Vec<&Name>) -> Vec<String> {
    list.into_iter().map(|n| n.to_string()).collect()
}

fn property_names(class: &Class) -> Vec<&str> {
    class.properties.keys().map(Name::as_str).collect()
}

// ----- inheritance ----------------------------------------------------------------------------

#[test]
fn properties_and_qualifiers_propagate_by_flavor() {
    let repository = fixture();
    let child = repository.class(NS, "test_child").unwrap();

    let name = child.property("Name").unwrap();
    assert!(name.propagated);
    assert_eq!(name.class_origin.as_ref().unwrap(), "Test_Base");
    let key = name.qualifiers.get("Key").unwrap();
    assert!(
        key.propagated,
        "an inherited qualifier is marked propagated"
    );
    assert!(child.keys().any(|k| k.name == "Name"));

    // Class qualifiers: Description (ToSubclass) propagates, Abstract (Restricted) does not.
    assert!(child.qualifiers.get("Description").unwrap().propagated);
    assert!(child.qualifiers.get("Abstract").is_none());
    assert!(!child.is_abstract());
    assert!(repository.class(NS, "Test_Base").unwrap().is_abstract());

    // Methods and their parameters' qualifiers.
    let reset = child.method("Reset").unwrap();
    assert!(reset.propagated);
    assert_eq!(reset.class_origin.as_ref().unwrap(), "Test_Base");
    assert!(reset.qualifiers.get("Description").unwrap().propagated);
    let level = reset.parameter("Level").unwrap();
    assert!(level.qualifiers.get("In").unwrap().propagated);
    assert!(level.qualifiers.get("Restricted_Note").is_none());

    let stop = child.method("Stop").unwrap();
    assert!(!stop.propagated);
    assert_eq!(stop.class_origin.as_ref().unwrap(), "Test_Child");
}

#[test]
fn an_override_keeps_its_declaration_and_the_inherited_qualifiers_it_does_not_restate() {
    let repository = fixture();
    let child = repository.class(NS, "Test_Child").unwrap();
    let caption = child.property("caption").unwrap();
    assert!(!caption.propagated);
    assert_eq!(
        caption.class_origin.as_ref().unwrap(),
        "Test_Base",
        "the class origin is the class that first declared the property"
    );
    let text = caption.qualifiers.get("Description").unwrap();
    assert_eq!(text.value, Some(Value::from("child caption")));
    assert!(!text.propagated);
    let max_len = caption.qualifiers.get("MaxLen").unwrap();
    assert!(max_len.propagated);
    assert!(caption.qualifiers.get("Restricted_Note").is_none());
    assert!(caption.qualifiers.get("Override").is_some());

    // Inherited first in superclass order (the override in its inherited place), then new.
    assert_eq!(property_names(child), ["Name", "Caption", "Count", "Extra"]);

    // One level down, the override is inherited unchanged; Override is Restricted.
    let grandchild = repository.class(NS, "Test_Grandchild").unwrap();
    let caption = grandchild.property("Caption").unwrap();
    assert!(caption.propagated);
    assert_eq!(caption.class_origin.as_ref().unwrap(), "Test_Base");
    assert_eq!(
        caption.qualifiers.get("Description").unwrap().value,
        Some(Value::from("child caption"))
    );
    assert!(caption.qualifiers.get("Override").is_none());
    assert_eq!(
        grandchild
            .property("Extra")
            .unwrap()
            .class_origin
            .as_ref()
            .unwrap(),
        "Test_Child"
    );
    assert_eq!(
        property_names(grandchild),
        ["Name", "Caption", "Count", "Extra"]
    );
}

#[test]
fn an_override_without_the_override_qualifier_is_an_override() {
    let mut repository = fixture();
    let sub = with(
        class("Test_Sub", Some("Test_Base"), vec![]),
        vec![property(
            "Count",
            CimType::Uint32,
            vec![description("counted")],
        )],
    );
    repository.add_class(NS, sub).unwrap();
    let count = repository
        .class(NS, "Test_Sub")
        .unwrap()
        .property("Count")
        .unwrap();
    assert!(!count.propagated);
    assert_eq!(count.class_origin.as_ref().unwrap(), "Test_Base");
}

#[test]
fn a_method_override_merges_parameter_qualifiers() {
    let mut repository = fixture();
    let mut sub = class("Test_Sub", Some("Test_Base"), vec![]);
    add_method(
        &mut sub,
        method(
            "Reset",
            vec![parameter(
                "Level",
                CimType::Uint16,
                vec![description("level")],
            )],
            vec![],
        ),
    );
    repository.add_class(NS, sub).unwrap();
    let reset = repository
        .class(NS, "Test_Sub")
        .unwrap()
        .method("Reset")
        .unwrap();
    assert!(!reset.propagated);
    assert_eq!(reset.class_origin.as_ref().unwrap(), "Test_Base");
    assert!(reset.qualifiers.get("Description").unwrap().propagated);
    let level = reset.parameter("Level").unwrap();
    assert!(level.qualifiers.get("In").unwrap().propagated);
    assert!(!level.qualifiers.get("Description").unwrap().propagated);
}

#[test]
fn disable_override_refuses_a_new_value_and_accepts_the_same() {
    let mut repository = fixture();
    let changed = with(
        class("Test_Sub", Some("Test_Base"), vec![]),
        vec![property(
            "Name",
            CimType::String,
            vec![qualifier("Key", Value::Boolean(false), true, false)],
        )],
    );
    let error = refused(&mut repository, |r| r.add_class(NS, changed));
    assert!(
        matches!(&error, RepositoryError::OverrideDisabled { qualifier, .. } if qualifier == "Key"),
        "{error}"
    );

    let restated = with(
        class("Test_Sub", Some("Test_Base"), vec![]),
        vec![property("Name", CimType::String, vec![key()])],
    );
    repository.add_class(NS, restated).unwrap();

    // An association cannot make its subclass a non-association.
    let not_association = class(
        "Test_SubAssoc",
        Some("Test_Assoc"),
        vec![qualifier("Association", Value::Boolean(false), true, false)],
    );
    let error = refused(&mut repository, |r| r.add_class(NS, not_association));
    assert!(
        matches!(error, RepositoryError::OverrideDisabled { .. }),
        "{error}"
    );
}

#[test]
fn restricted_qualifiers_can_be_given_anew() {
    let mut repository = fixture();
    // Abstract is Restricted, so the subclass of an abstract class is concrete unless it says
    // so itself, and may say so.
    repository
        .add_class(
            NS,
            class("Test_Abstract2", Some("Test_Base"), vec![abstract_()]),
        )
        .unwrap();
    assert!(repository
        .class(NS, "Test_Abstract2")
        .unwrap()
        .is_abstract());
    assert!(!repository.class(NS, "Test_Child").unwrap().is_abstract());
}

#[test]
fn subclasses_of_associations_are_associations() {
    let mut repository = fixture();
    repository
        .add_class(NS, class("Test_SubAssoc", Some("Test_Assoc"), vec![]))
        .unwrap();
    let sub = repository.class(NS, "Test_SubAssoc").unwrap();
    assert!(sub.is_association());
    assert!(sub.qualifiers.get("Association").unwrap().propagated);
    assert_eq!(property_names(sub), ["Left", "Right"]);

    // An association does not derive from a class that is not one.
    let error = refused(&mut repository, |r| {
        r.add_class(
            NS,
            class("Test_Bad", Some("Test_Other"), vec![association()]),
        )
    });
    assert!(matches!(error, RepositoryError::Invalid(_)), "{error}");
}

#[test]
fn key_rules() {
    let mut repository = fixture();
    // A subclass of a keyed class adds no key...
    let new_key = with(
        class("Test_Sub", Some("Test_Child"), vec![]),
        vec![property("Serial", CimType::String, vec![key()])],
    );
    let error = refused(&mut repository, |r| r.add_class(NS, new_key));
    assert!(matches!(error, RepositoryError::Invalid(_)), "{error}");
    // ...nor makes an inherited property a key...
    let key_override = with(
        class("Test_Sub", Some("Test_Child"), vec![]),
        vec![property("Extra", CimType::String, vec![key()])],
    );
    let error = refused(&mut repository, |r| r.add_class(NS, key_override));
    assert!(matches!(error, RepositoryError::Invalid(_)), "{error}");
    // ...but keys may come in below keyless classes.
    repository
        .add_class(NS, class("Test_Keyless", None, vec![]))
        .unwrap();
    repository
        .add_class(
            NS,
            with(
                class("Test_Keyed", Some("Test_Keyless"), vec![]),
                vec![property("Id", CimType::String, vec![key()])],
            ),
        )
        .unwrap();
    let keys: Vec<_> = repository
        .class(NS, "Test_Keyed")
        .unwrap()
        .keys()
        .map(|k| k.name.to_string())
        .collect();
    assert_eq!(keys, ["Id"]);
}

#[test]
fn invalid_classes_are_refused_and_change_nothing() {
    let mut repository = fixture();
    let error = refused(&mut repository, |r| {
        r.add_class(NS, class("Test_Orphan", Some("Test_Nowhere"), vec![]))
    });
    assert!(
        matches!(error, RepositoryError::InvalidSuperclass { .. }),
        "{error}"
    );

    let error = refused(&mut repository, |r| {
        r.add_class(NS, class("TEST_CHILD", None, vec![]))
    });
    assert!(
        matches!(error, RepositoryError::AlreadyExists(_)),
        "{error}"
    );

    let error = refused(&mut repository, |r| {
        r.add_class("root/none", class("X", None, vec![]))
    });
    assert!(
        matches!(error, RepositoryError::InvalidNamespace(_)),
        "{error}"
    );

    // A reference outside an association is allowed (DSP0004 3.0), but its target must exist
    // all the same.
    let stray_reference = with(
        class("Test_Stray", None, vec![]),
        vec![reference("Other", "Test_Nowhere", vec![])],
    );
    let error = refused(&mut repository, |r| r.add_class(NS, stray_reference));
    assert!(
        matches!(error, RepositoryError::InvalidReference { .. }),
        "{error}"
    );

    // A reference to a class that does not exist.
    let dangling = with(
        class("Test_Dangling", None, vec![association()]),
        vec![reference("To", "Test_Nowhere", vec![])],
    );
    let error = refused(&mut repository, |r| r.add_class(NS, dangling));
    assert!(
        matches!(&error, RepositoryError::InvalidReference { target, .. } if target == "Test_Nowhere"),
        "{error}"
    );

    // An override of another type.
    let retyped = with(
        class("Test_Retyped", Some("Test_Base"), vec![]),
        vec![property("Count", CimType::String, vec![])],
    );
    let error = refused(&mut repository, |r| r.add_class(NS, retyped));
    assert!(matches!(error, RepositoryError::Invalid(_)), "{error}");

    // A reference override may narrow its class, not widen or change it.
    let widened = with(
        class("Test_Widened", Some("Test_Assoc"), vec![]),
        vec![reference("Right", "Test_Base", vec![])],
    );
    let error = refused(&mut repository, |r| r.add_class(NS, widened));
    assert!(matches!(error, RepositoryError::Invalid(_)), "{error}");
    let narrowed = with(
        class("Test_Narrowed", Some("Test_Assoc"), vec![]),
        vec![reference("Left", "Test_Child", vec![key()])],
    );
    repository.add_class(NS, narrowed).unwrap();
}

#[test]
fn methods_may_take_references_in_any_class_and_validate_checks_them() {
    let mut repository = fixture();
    let mut service = class("Test_Service", None, vec![]);
    add_method(
        &mut service,
        method(
            "Attach",
            vec![
                parameter(
                    "Target",
                    CimType::Reference(Some(Name::new("Test_Later"))),
                    vec![],
                ),
                parameter(
                    "Setting",
                    CimType::String,
                    vec![qualifier(
                        "EmbeddedInstance",
                        Value::from("Test_Setting"),
                        true,
                        true,
                    )],
                ),
            ],
            vec![],
        ),
    );
    repository.add_class(NS, service).unwrap();
    let problems = repository.validate(NS).unwrap();
    let targets: Vec<_> = problems
        .iter()
        .map(|p| match p {
            RepositoryError::InvalidReference { target, .. } => target.clone(),
            other => panic!("unexpected problem {other}"),
        })
        .collect();
    assert_eq!(targets, ["Test_Later", "Test_Setting"]);

    repository
        .add_class(NS, class("Test_Later", None, vec![]))
        .unwrap();
    repository
        .add_class(NS, class("Test_Setting", None, vec![]))
        .unwrap();
    assert_eq!(repository.validate(NS).unwrap(), []);

    // Deleting a class that an association references leaves a problem to find.
    repository.delete_class(NS, "Test_Assoc").unwrap();
    repository.delete_class(NS, "Test_Other").unwrap();
    assert_eq!(repository.validate(NS).unwrap(), []);
    repository
        .add_class(
            NS,
            with(
                class("Test_Link", None, vec![association()]),
                vec![reference("To", "Test_Later", vec![])],
            ),
        )
        .unwrap();
    repository.delete_class(NS, "Test_Later").unwrap();
    assert_eq!(repository.validate(NS).unwrap().len(), 2);
    assert!(matches!(
        repository.validate("root/none"),
        Err(RepositoryError::InvalidNamespace(_))
    ));
}

// ----- namespaces and qualifier declarations ------------------------------------------------

#[test]
fn namespaces_are_case_insensitive_and_only_empty_ones_are_deleted() {
    let mut repository = fixture();
    repository.create_namespace("ROOT/Test");
    repository.create_namespace("root/empty");
    let listed: Vec<_> = repository.namespace_names().map(Name::to_string).collect();
    assert_eq!(listed, [NS, "root/empty"]);
    assert!(repository.class("ROOT/TEST", "Test_Base").is_some());

    let error = refused(&mut repository, |r| r.delete_namespace(NS));
    assert!(
        matches!(error, RepositoryError::NamespaceNotEmpty(_)),
        "{error}"
    );
    let error = refused(&mut repository, |r| r.delete_namespace("root/none"));
    assert!(
        matches!(error, RepositoryError::InvalidNamespace(_)),
        "{error}"
    );
    repository.delete_namespace("Root/Empty").unwrap();
    assert!(repository.namespace("root/empty").is_none());
}

#[test]
fn qualifier_declarations_are_listed_replaced_and_deleted() {
    let mut repository = fixture();
    let declaration = |name: &str| QualifierDeclaration {
        name: Name::new(name),
        cim_type: CimType::Boolean,
        is_array: false,
        array_size: None,
        default: Some(Value::Boolean(false)),
        scope: Scope::ANY,
        flavor: Flavor::default(),
    };
    repository.set_qualifier(NS, declaration("Key")).unwrap();
    repository
        .set_qualifier(NS, declaration("Abstract"))
        .unwrap();
    let mut replaced = declaration("KEY");
    replaced.default = Some(Value::Boolean(true));
    repository.set_qualifier(NS, replaced).unwrap();
    let listed: Vec<_> = repository
        .qualifiers(NS)
        .unwrap()
        .map(|d| d.name.to_string())
        .collect();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        repository.qualifier(NS, "key").unwrap().default,
        Some(Value::Boolean(true))
    );
    repository.delete_qualifier(NS, "abstract").unwrap();
    assert!(repository.qualifier(NS, "Abstract").is_none());
    let error = refused(&mut repository, |r| r.delete_qualifier(NS, "Abstract"));
    assert!(
        matches!(error, RepositoryError::InvalidQualifier(_)),
        "{error}"
    );
    let error = refused(&mut repository, |r| {
        r.set_qualifier("root/none", declaration("X"))
    });
    assert!(
        matches!(error, RepositoryError::InvalidNamespace(_)),
        "{error}"
    );
}

// ----- class queries --------------------------------------------------------------------------

#[test]
fn class_names_with_and_without_deep_inheritance() {
    let repository = fixture();
    assert_eq!(
        names(repository.class_names(NS, None, false).unwrap()),
        ["Test_Base", "Test_Other", "Test_Assoc"]
    );
    assert_eq!(repository.class_names(NS, None, true).unwrap().len(), 5);
    assert_eq!(
        names(
            repository
                .class_names(NS, Some("test_base"), false)
                .unwrap()
        ),
        ["Test_Child"]
    );
    assert_eq!(
        names(repository.class_names(NS, Some("Test_Base"), true).unwrap()),
        ["Test_Child", "Test_Grandchild"]
    );
    assert!(repository
        .class_names(NS, Some("Test_Grandchild"), true)
        .unwrap()
        .is_empty());
    assert!(matches!(
        repository.class_names(NS, Some("Test_None"), true),
        Err(RepositoryError::InvalidClass(_))
    ));
    let classes = repository
        .classes(NS, Some("Test_Base"), true, &ClassQuery::default())
        .unwrap();
    assert_eq!(classes.len(), 2);
    assert_eq!(property_names(&classes[0]), ["Caption", "Extra"]);
    assert_eq!(
        names(
            repository
                .subclasses(NS, "Test_Base")
                .unwrap()
                .iter()
                .collect()
        ),
        ["Test_Child"]
    );
}

#[test]
fn get_class_honours_each_flag() {
    let repository = fixture();
    let all = ClassQuery {
        local_only: false,
        include_qualifiers: true,
        include_class_origin: true,
        property_list: None,
    };
    let full = repository.get_class(NS, "Test_Child", &all).unwrap();
    assert_eq!(&full, repository.class(NS, "Test_Child").unwrap());

    // LocalOnly: only what the class declares or overrides, and its own class qualifiers.
    let local = repository
        .get_class(
            NS,
            "Test_Child",
            &ClassQuery {
                local_only: true,
                ..all.clone()
            },
        )
        .unwrap();
    assert_eq!(property_names(&local), ["Caption", "Extra"]);
    assert_eq!(
        local.methods.keys().map(Name::as_str).collect::<Vec<_>>(),
        ["Stop"]
    );
    assert!(local.qualifiers.is_empty());

    // IncludeQualifiers false strips every level.
    let bare = repository
        .get_class(
            NS,
            "Test_Base",
            &ClassQuery {
                include_qualifiers: false,
                ..all.clone()
            },
        )
        .unwrap();
    assert!(bare.qualifiers.is_empty());
    assert!(bare.properties.values().all(|p| p.qualifiers.is_empty()));
    let reset = bare.method("Reset").unwrap();
    assert!(reset.qualifiers.is_empty());
    assert!(reset.parameters.iter().all(|p| p.qualifiers.is_empty()));

    // IncludeClassOrigin false clears the origins.
    let no_origin = repository
        .get_class(
            NS,
            "Test_Child",
            &ClassQuery {
                include_class_origin: false,
                ..all.clone()
            },
        )
        .unwrap();
    assert!(no_origin
        .properties
        .values()
        .all(|p| p.class_origin.is_none()));
    assert!(no_origin.methods.values().all(|m| m.class_origin.is_none()));

    // PropertyList: case-insensitive; empty keeps none; methods unaffected.
    let listed = repository
        .get_class(
            NS,
            "Test_Child",
            &ClassQuery {
                property_list: Some(vec!["name".into(), "EXTRA".into(), "nope".into()]),
                ..all
            },
        )
        .unwrap();
    assert_eq!(property_names(&listed), ["Name", "Extra"]);
    assert_eq!(listed.methods.len(), 2);
    let none = repository
        .get_class(
            NS,
            "Test_Child",
            &ClassQuery {
                property_list: Some(vec![]),
                ..all
            },
        )
        .unwrap();
    assert!(none.properties.is_empty());

    // The defaults are DSP0200's: LocalOnly, IncludeQualifiers, no class origin.
    let default = repository
        .get_class(NS, "Test_Child", &ClassQuery::default())
        .unwrap();
    assert_eq!(property_names(&default), ["Caption", "Extra"]);
    assert!(default
        .properties
        .values()
        .all(|p| p.class_origin.is_none()));
    assert!(!default.property("Caption").unwrap().qualifiers.is_empty());

    assert!(matches!(
        repository.get_class(NS, "Test_None", &ClassQuery::default()),
        Err(RepositoryError::InvalidClass(_))
    ));
}

#[test]
fn superclass_chains_and_subclass_tests() {
    let repository = fixture();
    assert_eq!(
        names(repository.superclasses(NS, "Test_Grandchild").unwrap()),
        ["Test_Child", "Test_Base"]
    );
    assert!(repository.superclasses(NS, "Test_Base").unwrap().is_empty());
    assert!(repository.is_subclass(NS, "Test_Grandchild", "test_base"));
    assert!(repository.is_subclass(NS, "Test_Child", "Test_Base"));
    assert!(!repository.is_subclass(NS, "Test_Base", "Test_Base"));
    assert!(!repository.is_subclass(NS, "Test_Base", "Test_Child"));
    assert!(!repository.is_subclass(NS, "Test_Other", "Test_Base"));
    assert!(repository.is_a(NS, "Test_Base", "Test_Base"));
    assert!(repository.is_a(NS, "Test_Grandchild", "Test_Base"));
    assert!(!repository.is_a("root/none", "Test_Base", "Test_Base"));
}

#[test]
fn classes_with_subclasses_or_instances_are_not_deleted() {
    let mut repository = fixture();
    let error = refused(&mut repository, |r| r.delete_class(NS, "Test_Child"));
    assert!(
        matches!(error, RepositoryError::ClassHasChildren(_)),
        "{error}"
    );
    repository
        .add_instance(
            NS,
            Instance::new("Test_Other").with(Property::new(
                "Id",
                CimType::Uint32,
                Some(Value::Uint32(1)),
            )),
        )
        .unwrap();
    let error = refused(&mut repository, |r| r.delete_class(NS, "Test_Other"));
    assert!(
        matches!(error, RepositoryError::ClassHasInstances(_)),
        "{error}"
    );
    let error = refused(&mut repository, |r| r.delete_class(NS, "Test_None"));
    assert!(matches!(error, RepositoryError::InvalidClass(_)), "{error}");

    // Adding and deleting a class gives back the same repository.
    let before = repository.clone();
    repository
        .add_class(NS, class("Test_Leaf", Some("Test_Grandchild"), vec![]))
        .unwrap();
    repository.delete_class(NS, "TEST_LEAF").unwrap();
    assert_eq!(repository, before);
    repository.delete_class(NS, "Test_Grandchild").unwrap();
    assert!(repository.class(NS, "Test_Grandchild").is_none());
    assert!(repository.subclasses(NS, "Test_Child").unwrap().is_empty());
}

// ----- instances ------------------------------------------------------------------------------

fn child(name: &str) -> Instance {
    Instance::new("Test_Child")
        .with(Property::new(
            "Name",
            CimType::String,
            Some(Value::from(name)),
        ))
        .with(Property::new(
            "Count",
            CimType::Uint32,
            Some(Value::Uint32(3)),
        ))
}

#[test]
fn instance_paths_come_from_the_keys() {
    let mut repository = fixture();
    let path = repository.add_instance(NS, child("a")).unwrap();
    assert_eq!(path.namespace.as_deref(), Some(NS));
    assert_eq!(path.class_name, "Test_Child");
    assert_eq!(path.keybindings.len(), 1);
    assert_eq!(path.key("name"), Some(&Value::from("a")));

    // Keys in class order, typed, whatever the instance's order.
    let right = InstancePath::new("Test_Other").with_key("Id", 7u32);
    repository
        .add_instance(
            NS,
            Instance::new("Test_Other").with(Property::new(
                "Id",
                CimType::Uint32,
                Some(Value::Uint32(7)),
            )),
        )
        .unwrap();
    let link = Instance::new("Test_Assoc")
        .with(Property::new(
            "Right",
            CimType::Reference(None),
            Some(Value::Reference(Box::new(ObjectPath::Instance(right)))),
        ))
        .with(Property::new(
            "Left",
            CimType::Reference(None),
            Some(Value::Reference(Box::new(ObjectPath::Instance(path)))),
        ));
    let link_path = repository.add_instance(NS, link).unwrap();
    let key_names: Vec<_> = link_path
        .keybindings
        .iter()
        .map(|k| k.name.to_string())
        .collect();
    assert_eq!(key_names, ["Left", "Right"]);

    // A keyless concrete class has one instance, with an empty key list.
    repository
        .add_class(NS, class("Test_Singleton", None, vec![]))
        .unwrap();
    let singleton = repository
        .add_instance(NS, Instance::new("Test_Singleton"))
        .unwrap();
    assert!(singleton.keybindings.is_empty());
    let error = refused(&mut repository, |r| {
        r.add_instance(NS, Instance::new("Test_Singleton"))
    });
    assert!(
        matches!(error, RepositoryError::AlreadyExists(_)),
        "{error}"
    );
}

#[test]
fn invalid_instances_are_refused_and_change_nothing() {
    let mut repository = fixture();
    repository.add_instance(NS, child("a")).unwrap();

    let error = refused(&mut repository, |r| r.add_instance(NS, child("a")));
    assert!(
        matches!(error, RepositoryError::AlreadyExists(_)),
        "{error}"
    );

    let abstract_instance = Instance::new("Test_Base").with(Property::new(
        "Name",
        CimType::String,
        Some(Value::from("b")),
    ));
    let error = refused(&mut repository, |r| r.add_instance(NS, abstract_instance));
    assert!(
        matches!(error, RepositoryError::AbstractClass(_)),
        "{error}"
    );

    let error = refused(&mut repository, |r| {
        r.add_instance(NS, Instance::new("Test_None"))
    });
    assert!(matches!(error, RepositoryError::InvalidClass(_)), "{error}");

    let unknown = child("c").with(Property::new(
        "Color",
        CimType::String,
        Some(Value::from("red")),
    ));
    let error = refused(&mut repository, |r| r.add_instance(NS, unknown));
    assert!(
        matches!(&error, RepositoryError::NoSuchProperty { property, .. } if property == "Color"),
        "{error}"
    );

    let mistyped = child("d").with(Property::new(
        "Count",
        CimType::String,
        Some(Value::from("3")),
    ));
    let error = refused(&mut repository, |r| r.add_instance(NS, mistyped));
    assert!(
        matches!(error, RepositoryError::TypeMismatch { .. }),
        "{error}"
    );

    let scalar_for_array = child("e").with(Property::new(
        "Extra",
        CimType::String,
        Some(Value::Array(vec![])),
    ));
    let error = refused(&mut repository, |r| r.add_instance(NS, scalar_for_array));
    assert!(
        matches!(error, RepositoryError::TypeMismatch { .. }),
        "{error}"
    );

    let null_key = Instance::new("Test_Child").with(Property::new("Name", CimType::String, None));
    let error = refused(&mut repository, |r| r.add_instance(NS, null_key));
    assert!(matches!(error, RepositoryError::NullKey { .. }), "{error}");

    let error = refused(&mut repository, |r| r.add_instance("root/none", child("f")));
    assert!(
        matches!(error, RepositoryError::InvalidNamespace(_)),
        "{error}"
    );
}

#[test]
fn instances_are_found_by_path() {
    let mut repository = fixture();
    repository.add_instance(NS, child("a")).unwrap();
    repository.add_instance(NS, child("A")).unwrap();
    repository
        .add_instance(
            NS,
            Instance::new("Test_Other").with(Property::new(
                "Id",
                CimType::Uint32,
                Some(Value::Uint32(7)),
            )),
        )
        .unwrap();

    // Key names and class names in any case; values exactly.
    let lower = InstancePath::new("test_child").with_key("NAME", "a");
    assert_eq!(
        repository.instance(NS, &lower).unwrap().value("Name"),
        Some(&Value::from("a"))
    );
    let upper = InstancePath::new("Test_Child").with_key("Name", "A");
    assert_eq!(
        repository.instance(NS, &upper).unwrap().value("Name"),
        Some(&Value::from("A"))
    );
    assert!(repository
        .instance(NS, &InstancePath::new("Test_Child").with_key("Name", "b"))
        .is_none());

    // An untyped integer key (uint64, as a CIM-XML KEYVALUE decodes) finds the uint32 key.
    let untyped = InstancePath::new("Test_Other").with_key("id", 7u64);
    let (stored_path, _) = repository.instance_at(NS, &untyped).unwrap();
    assert_eq!(stored_path.key("Id"), Some(&Value::Uint32(7)));

    // Missing, extra or wrongly typed keys find nothing.
    assert!(repository
        .instance(NS, &InstancePath::new("Test_Other"))
        .is_none());
    let extra = InstancePath::new("Test_Other")
        .with_key("Id", 7u32)
        .with_key("More", 1u32);
    assert!(repository.instance(NS, &extra).is_none());
    assert!(repository
        .instance(NS, &InstancePath::new("Test_Other").with_key("Id", "7"))
        .is_none());
    assert!(repository.instance("root/none", &untyped).is_none());
}

#[test]
fn instances_are_enumerated_with_and_without_subclasses() {
    let mut repository = fixture();
    repository.add_instance(NS, child("a")).unwrap();
    repository
        .add_instance(
            NS,
            Instance::new("Test_Grandchild").with(Property::new(
                "Name",
                CimType::String,
                Some(Value::from("g")),
            )),
        )
        .unwrap();
    let shallow = repository.instances(NS, "Test_Child", false).unwrap();
    assert_eq!(shallow.len(), 1);
    let deep = repository.instances(NS, "Test_Child", true).unwrap();
    assert_eq!(deep.len(), 2);
    assert_eq!(
        repository.instances(NS, "Test_Base", true).unwrap().len(),
        2
    );
    assert!(repository
        .instances(NS, "Test_Base", false)
        .unwrap()
        .is_empty());
    assert!(matches!(
        repository.instances(NS, "Test_None", true),
        Err(RepositoryError::InvalidClass(_))
    ));
}

#[test]
fn instances_are_modified_and_deleted() {
    let mut repository = fixture();
    let a = repository.add_instance(NS, child("a")).unwrap();
    let b = repository.add_instance(NS, child("b")).unwrap();
    let c = repository.add_instance(NS, child("c")).unwrap();

    let changed = child("a").with(Property::new(
        "Extra",
        CimType::String,
        Some(Value::from("x")),
    ));
    repository.modify_instance(NS, &a, changed).unwrap();
    assert_eq!(
        repository.instance(NS, &a).unwrap().value("Extra"),
        Some(&Value::from("x"))
    );

    let error = refused(&mut repository, |r| r.modify_instance(NS, &a, child("z")));
    assert!(matches!(error, RepositoryError::Invalid(_)), "{error}");
    let error = refused(&mut repository, |r| r.modify_instance(NS, &a, child("b")));
    assert!(matches!(error, RepositoryError::Invalid(_)), "{error}");
    let mistyped = child("a").with(Property::new(
        "Count",
        CimType::String,
        Some(Value::from("3")),
    ));
    let error = refused(&mut repository, |r| r.modify_instance(NS, &a, mistyped));
    assert!(
        matches!(error, RepositoryError::TypeMismatch { .. }),
        "{error}"
    );
    let missing = InstancePath::new("Test_Child").with_key("Name", "z");
    let error = refused(&mut repository, |r| {
        r.modify_instance(NS, &missing, child("z"))
    });
    assert!(matches!(error, RepositoryError::NotFound(_)), "{error}");

    let deleted = repository.delete_instance(NS, &b).unwrap();
    assert_eq!(deleted.value("Name"), Some(&Value::from("b")));
    assert!(repository.instance(NS, &b).is_none());
    // The instances after the deleted one are still found.
    assert!(repository.instance(NS, &c).is_some());
    assert!(repository.instance(NS, &a).is_some());
    let error = refused(&mut repository, |r| r.delete_instance(NS, &b));
    assert!(matches!(error, RepositoryError::NotFound(_)), "{error}");
    // And it can be created again.
    repository.add_instance(NS, child("b")).unwrap();
    assert_eq!(
        repository.instances(NS, "Test_Child", false).unwrap().len(),
        3
    );
}

// ----- associations ---------------------------------------------------------------------------

#[test]
fn associations_referencing_a_class_through_its_superclasses() {
    let repository = fixture();
    let roles = repository
        .associations_referencing(NS, "Test_Grandchild")
        .unwrap();
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0].association, "Test_Assoc");
    assert_eq!(roles[0].role, "Left");
    assert_eq!(roles[0].reference_class, "Test_Base");
    let roles = repository
        .associations_referencing(NS, "Test_Other")
        .unwrap();
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0].role, "Right");
    assert!(repository
        .associations_referencing(NS, "Test_Assoc")
        .unwrap()
        .is_empty());
    assert!(matches!(
        repository.associations_referencing(NS, "Test_None"),
        Err(RepositoryError::InvalidClass(_))
    ));
}

#[test]
fn a_reference_in_an_ordinary_class_does_not_make_it_an_association() {
    let mut repository = fixture();
    // DSP0004 3.0 allows references outside associations; such a class links nothing.
    repository
        .add_class(
            NS,
            with(
                class("Test_Holder", None, vec![]),
                vec![reference("Target", "Test_Other", vec![])],
            ),
        )
        .unwrap();
    repository
        .add_class(NS, class("Test_HolderChild", Some("Test_Holder"), vec![]))
        .unwrap();
    let roles = repository
        .associations_referencing(NS, "Test_Other")
        .unwrap();
    let associations: Vec<&str> = roles.iter().map(|r| r.association.as_str()).collect();
    assert_eq!(associations, ["Test_Assoc"]);
    let links = repository
        .association_links(NS, "Test_Other", &AssociationFilter::default())
        .unwrap();
    assert!(links.iter().all(|l| *l.association == "Test_Assoc"));
    // A subclass of an association is one without restating the qualifier.
    repository
        .add_class(NS, class("Test_SubAssoc", Some("Test_Assoc"), vec![]))
        .unwrap();
    let roles = repository
        .associations_referencing(NS, "Test_Other")
        .unwrap();
    let associations: Vec<&str> = roles.iter().map(|r| r.association.as_str()).collect();
    assert_eq!(associations, ["Test_Assoc", "Test_SubAssoc"]);
}

#[test]
fn association_links_apply_the_filters() {
    let mut repository = fixture();
    // A narrower association: Test_Child to Test_Other.
    repository
        .add_class(
            NS,
            with(
                class("Test_ChildAssoc", Some("Test_Assoc"), vec![]),
                vec![reference("Left", "Test_Child", vec![key()])],
            ),
        )
        .unwrap();
    let all = AssociationFilter::default();
    let links = repository
        .association_links(NS, "Test_Child", &all)
        .unwrap();
    let described: Vec<_> = links
        .iter()
        .map(|l| {
            format!(
                "{}.{}->{}:{}",
                l.association, l.role, l.result_role, l.result_class
            )
        })
        .collect();
    assert_eq!(
        described,
        [
            "Test_Assoc.Left->Right:Test_Other",
            "Test_ChildAssoc.Left->Right:Test_Other"
        ]
    );
    // A Test_Base is not reached by the narrower association.
    assert_eq!(
        repository
            .association_links(NS, "Test_Base", &all)
            .unwrap()
            .len(),
        1
    );
    // From the other end.
    let back = repository
        .association_links(NS, "Test_Other", &all)
        .unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[1].result_class, "Test_Child");

    let by_class = AssociationFilter {
        assoc_class: Some("test_childassoc"),
        ..all
    };
    assert_eq!(
        repository
            .association_links(NS, "Test_Child", &by_class)
            .unwrap()
            .len(),
        1
    );
    let by_role = AssociationFilter {
        role: Some("right"),
        ..all
    };
    assert!(repository
        .association_links(NS, "Test_Child", &by_role)
        .unwrap()
        .is_empty());
    let by_result_role = AssociationFilter {
        result_role: Some("RIGHT"),
        ..all
    };
    assert_eq!(
        repository
            .association_links(NS, "Test_Child", &by_result_role)
            .unwrap()
            .len(),
        2
    );
    let by_result_role = AssociationFilter {
        result_role: Some("Left"),
        ..all
    };
    assert!(repository
        .association_links(NS, "Test_Child", &by_result_role)
        .unwrap()
        .is_empty());
    // ResultClass: the end's class, or one related to it by inheritance.
    let by_result = AssociationFilter {
        result_class: Some("Test_Other"),
        ..all
    };
    assert_eq!(
        repository
            .association_links(NS, "Test_Child", &by_result)
            .unwrap()
            .len(),
        2
    );
    let by_result = AssociationFilter {
        result_class: Some("Test_Grandchild"),
        ..all
    };
    let from_other = repository
        .association_links(NS, "Test_Other", &by_result)
        .unwrap();
    assert_eq!(
        from_other.len(),
        2,
        "an end of Test_Base or Test_Child can hold a Test_Grandchild"
    );
    let by_result = AssociationFilter {
        result_class: Some("Test_Assoc"),
        ..all
    };
    assert!(repository
        .association_links(NS, "Test_Other", &by_result)
        .unwrap()
        .is_empty());
}

#[test]
fn references_and_associators_of_stored_instances() {
    let mut repository = fixture();
    let a = repository.add_instance(NS, child("a")).unwrap();
    let b = repository.add_instance(NS, child("b")).unwrap();
    let other = repository
        .add_instance(
            NS,
            Instance::new("Test_Other").with(Property::new(
                "Id",
                CimType::Uint32,
                Some(Value::Uint32(7)),
            )),
        )
        .unwrap();
    let to = |path: &InstancePath| {
        Some(Value::Reference(Box::new(ObjectPath::Instance(
            path.clone(),
        ))))
    };
    for left in [&a, &b] {
        repository
            .add_instance(
                NS,
                Instance::new("Test_Assoc")
                    .with(Property::new("Left", CimType::Reference(None), to(left)))
                    .with(Property::new("Right", CimType::Reference(None), to(&other))),
            )
            .unwrap();
    }
    let all = AssociationFilter::default();
    // The other end's path as a client might send it: untyped key, no namespace.
    let client_path = InstancePath::new("TEST_OTHER").with_key("ID", 7u64);
    assert_eq!(
        repository
            .references_to(NS, &client_path, &all)
            .unwrap()
            .len(),
        2
    );
    assert_eq!(repository.references_to(NS, &a, &all).unwrap().len(), 1);
    let by_role = AssociationFilter {
        role: Some("Left"),
        ..all
    };
    assert!(repository
        .references_to(NS, &client_path, &by_role)
        .unwrap()
        .is_empty());

    let associators = repository.associators_of(NS, &client_path, &all).unwrap();
    let reached: Vec<_> = associators
        .iter()
        .map(|(_, i)| i.value("Name").cloned())
        .collect();
    assert_eq!(reached, [Some(Value::from("a")), Some(Value::from("b"))]);
    let from_a = repository.associators_of(NS, &a, &all).unwrap();
    assert_eq!(from_a.len(), 1);
    assert_eq!(from_a[0].0.key("Id"), Some(&Value::Uint32(7)));
    let filtered = AssociationFilter {
        result_class: Some("Test_Grandchild"),
        ..all
    };
    assert!(repository
        .associators_of(NS, &client_path, &filtered)
        .unwrap()
        .is_empty());
    let filtered = AssociationFilter {
        result_role: Some("Right"),
        ..all
    };
    assert!(repository
        .associators_of(NS, &client_path, &filtered)
        .unwrap()
        .is_empty());
}

// ----- qualifier checks -----------------------------------------------------------------------

#[test]
fn qualifiers_are_checked_against_their_declarations() {
    let mut repository = fixture();
    let declare = |repository: &mut Repository, name: &str, cim_type: CimType, scope: Scope| {
        let declaration = QualifierDeclaration {
            name: Name::new(name),
            cim_type,
            is_array: false,
            array_size: None,
            default: None,
            scope,
            flavor: Flavor::default(),
        };
        repository.set_qualifier(NS, declaration).unwrap();
    };
    let class_scope = Scope {
        class: true,
        ..Scope::default()
    };
    let property_scope = Scope {
        property: true,
        reference: true,
        ..Scope::default()
    };
    declare(&mut repository, "Key", CimType::Boolean, property_scope);
    declare(&mut repository, "Abstract", CimType::Boolean, class_scope);
    declare(
        &mut repository,
        "Association",
        CimType::Boolean,
        Scope {
            association: true,
            ..Scope::default()
        },
    );
    declare(&mut repository, "Description", CimType::String, Scope::ANY);
    declare(
        &mut repository,
        "In",
        CimType::Boolean,
        Scope {
            parameter: true,
            ..Scope::default()
        },
    );

    let good = repository.class(NS, "Test_Base").unwrap().clone();
    // Restricted_Note and MaxLen are not declared.
    let error = repository.check_qualifiers(NS, &good).unwrap_err();
    assert!(
        matches!(error, RepositoryError::InvalidQualifier(_)),
        "{error}"
    );
    declare(
        &mut repository,
        "Restricted_Note",
        CimType::String,
        Scope::ANY,
    );
    declare(&mut repository, "MaxLen", CimType::Uint32, property_scope);
    declare(&mut repository, "Override", CimType::String, property_scope);
    repository.check_qualifiers(NS, &good).unwrap();
    repository
        .check_qualifiers(NS, repository.class(NS, "Test_Assoc").unwrap())
        .unwrap();

    // A class-scoped qualifier on a property, a property-scoped one on a class.
    let misplaced = class("Test_Bad", None, vec![key()]);
    let error = repository.check_qualifiers(NS, &misplaced).unwrap_err();
    assert!(
        error.to_string().contains("not allowed on a class"),
        "{error}"
    );
    let misplaced = with(
        class("Test_Bad", None, vec![]),
        vec![property("P", CimType::String, vec![abstract_()])],
    );
    let error = repository.check_qualifiers(NS, &misplaced).unwrap_err();
    assert!(
        error.to_string().contains("not allowed on a property"),
        "{error}"
    );
    // An association takes association-scoped qualifiers and class-scoped ones.
    let error = repository
        .check_qualifiers(
            NS,
            &class(
                "Test_Bad",
                None,
                vec![
                    association(),
                    qualifier("Description", Value::from("x"), true, true),
                ],
            ),
        )
        .map(|()| "ok");
    assert_eq!(error, Ok("ok"));
    // A value of another type.
    let mistyped = class(
        "Test_Bad",
        None,
        vec![qualifier("Description", Value::Uint32(1), true, true)],
    );
    let error = repository.check_qualifiers(NS, &mistyped).unwrap_err();
    assert!(error.to_string().contains("declared string"), "{error}");
    let parameter_misplaced = {
        let mut c = class("Test_Bad", None, vec![]);
        add_method(
            &mut c,
            method(
                "M",
                vec![parameter("P", CimType::Uint8, vec![key()])],
                vec![],
            ),
        );
        c
    };
    let error = repository
        .check_qualifiers(NS, &parameter_misplaced)
        .unwrap_err();
    assert!(error.to_string().contains("parameter P"), "{error}");
}

#[test]
fn a_resolved_class_added_again_as_declared_resolves_the_same() {
    // A client may send back a class as GetClass gave it: its flags do not mislead the repository.
    let repository = fixture();
    let mut copy = Repository::new();
    copy.create_namespace(NS);
    for class in repository.namespace(NS).unwrap().classes.values() {
        let mut local = repository
            .get_class(
                NS,
                class.name.as_str(),
                &ClassQuery {
                    local_only: true,
                    include_qualifiers: true,
                    include_class_origin: true,
                    property_list: None,
                },
            )
            .unwrap();
        // Marked propagated although stated here: the repository decides.
        for property in local.properties.values_mut() {
            property.qualifiers.0.retain(|_, q| !q.propagated);
            property
                .qualifiers
                .0
                .values_mut()
                .for_each(|q| q.propagated = true);
        }
        for method in local.methods.values_mut() {
            method.qualifiers.0.retain(|_, q| !q.propagated);
            for parameter in &mut method.parameters {
                parameter.qualifiers.0.retain(|_, q| !q.propagated);
            }
        }
        copy.add_class(NS, local).unwrap();
    }
    assert_eq!(
        copy.namespace(NS).unwrap().classes,
        repository.namespace(NS).unwrap().classes
    );
}

// ----- classes from CIM-XML ---------------------------------------------------------------------

const FLAVOR_DECLARATIONS: &str = "\
    Qualifier Abstract : boolean = false, Scope(class, association, indication), \
        Flavor(Restricted);\n\
    Qualifier Key : boolean = false, Scope(property, reference), Flavor(DisableOverride);\n\
    Qualifier Description : string = null, Scope(any), Flavor(Translatable);\n";

/// A class decoded from CIM-XML whose QUALIFIERs carry no flavor attributes takes the flavors
/// of the declarations, as the same class compiled from MOF does.
#[test]
fn a_class_from_xml_takes_the_flavors_of_the_declarations() {
    use cim_schema::mof::{compile, NoIncludes, SourceFile};
    use cim_schema::xml::{decode_class, Limits};

    let base = decode_class(
        br#"<CLASS NAME="X_Base">
          <QUALIFIER NAME="Abstract" TYPE="boolean"><VALUE>TRUE</VALUE></QUALIFIER>
          <QUALIFIER NAME="Description" TYPE="string"><VALUE>base</VALUE></QUALIFIER>
          <PROPERTY NAME="Id" TYPE="string">
            <QUALIFIER NAME="Key" TYPE="boolean"><VALUE>TRUE</VALUE></QUALIFIER>
          </PROPERTY>
        </CLASS>"#,
        &Limits::DEFAULT,
    )
    .unwrap();
    // Absent flavor attributes take the DSP0201 DTD defaults.
    let decoded = base.qualifiers.get("Abstract").unwrap().flavor;
    assert_eq!(decoded, Flavor::default());
    assert!(decoded.overridable && decoded.to_subclass);
    assert!(!decoded.to_instance && !decoded.translatable);

    let mut from_mof = Repository::new();
    compile(
        &mut from_mof,
        NS,
        &[SourceFile::new(
            "x.mof",
            format!(
                "{FLAVOR_DECLARATIONS}[Abstract, Description(\"base\")] class X_Base \
                 {{ [Key] string Id; }};"
            )
            .into_bytes(),
        )],
        &mut NoIncludes,
    )
    .unwrap();
    let mut from_xml = Repository::new();
    from_xml.create_namespace(NS);
    for declaration in from_mof
        .qualifiers(NS)
        .unwrap()
        .cloned()
        .collect::<Vec<_>>()
    {
        from_xml.set_qualifier(NS, declaration).unwrap();
    }
    from_xml.check_qualifiers(NS, &base).unwrap();
    from_xml.add_class(NS, base).unwrap();
    assert_eq!(from_xml.class(NS, "X_Base"), from_mof.class(NS, "X_Base"));
    let stored = from_xml.class(NS, "X_Base").unwrap();
    assert!(
        !stored
            .qualifiers
            .get("Abstract")
            .unwrap()
            .flavor
            .to_subclass
    );
    assert!(
        stored
            .qualifiers
            .get("Description")
            .unwrap()
            .flavor
            .translatable
    );
    let id = stored.property("Id").unwrap();
    assert!(!id.qualifiers.get("Key").unwrap().flavor.overridable);

    // Abstract is Restricted: the subclass is concrete. Key is DisableOverride.
    let child = decode_class(
        br#"<CLASS NAME="X_Child" SUPERCLASS="X_Base"/>"#,
        &Limits::DEFAULT,
    )
    .unwrap();
    from_xml.add_class(NS, child).unwrap();
    assert!(!from_xml.class(NS, "X_Child").unwrap().is_abstract());
    let unkeyed = decode_class(
        br#"<CLASS NAME="X_Unkeyed" SUPERCLASS="X_Base">
          <PROPERTY NAME="Id" TYPE="string">
            <QUALIFIER NAME="Key" TYPE="boolean"><VALUE>FALSE</VALUE></QUALIFIER>
          </PROPERTY>
        </CLASS>"#,
        &Limits::DEFAULT,
    )
    .unwrap();
    let error = refused(&mut from_xml, |r| r.add_class(NS, unkeyed));
    assert!(matches!(error, RepositoryError::OverrideDisabled { .. }));
}

/// The compiler and the repository agree on what a class is: a subclass of an association (or
/// of an indication) is one without restating the qualifier, so qualifiers scoped to
/// associations (or indications) are allowed on it.
#[test]
fn the_class_kind_includes_the_superclass_for_the_scope_check() {
    use cim_schema::mof::{compile, NoIncludes, SourceFile};

    let mof = "\
        Qualifier Association : boolean = false, Scope(association), \
            Flavor(DisableOverride);\n\
        Qualifier Indication : boolean = false, Scope(class, indication), \
            Flavor(DisableOverride);\n\
        Qualifier Composition : boolean = false, Scope(association);\n\
        Qualifier Alert : boolean = false, Scope(indication);\n\
        [Association] class X_Assoc { };\n\
        [Indication] class X_Event { };\n";
    let mut repository = Repository::new();
    compile(
        &mut repository,
        NS,
        &[SourceFile::new("x.mof", mof.as_bytes().to_vec())],
        &mut NoIncludes,
    )
    .unwrap();
    let composition = qualifier("Composition", Value::Boolean(true), true, true);
    let alert = qualifier("Alert", Value::Boolean(true), true, true);
    let sub_association = class("X_SubAssoc", Some("X_Assoc"), vec![composition.clone()]);
    repository.check_qualifiers(NS, &sub_association).unwrap();
    let sub_event = class("X_SubEvent", Some("X_Event"), vec![alert.clone()]);
    repository.check_qualifiers(NS, &sub_event).unwrap();
    // The same classes from MOF: both paths accept them.
    compile(
        &mut repository,
        NS,
        &[SourceFile::new(
            "y.mof",
            b"[Composition] class X_SubAssoc : X_Assoc { };\n\
              [Alert] class X_SubEvent : X_Event { };"
                .to_vec(),
        )],
        &mut NoIncludes,
    )
    .unwrap();
    // An ordinary class still may not take them.
    let plain = class("X_Plain", None, vec![composition]);
    assert!(repository.check_qualifiers(NS, &plain).is_err());
    let plain = class("X_Plain", None, vec![alert]);
    assert!(repository.check_qualifiers(NS, &plain).is_err());
}

/// A reference key is found whatever integer width its own keys were decoded with (an untyped
/// CIM-XML KEYVALUE decodes as uint64), as InstancePath::same_instance compares them.
#[test]
fn nested_reference_keys_are_matched_by_meaning() {
    let mut repository = Repository::new();
    repository.create_namespace(NS);
    repository
        .add_class(
            NS,
            with(
                class("X_Inner", None, vec![]),
                vec![property("Id", CimType::Uint16, vec![key()])],
            ),
        )
        .unwrap();
    repository
        .add_class(
            NS,
            with(
                class("X_Outer", None, vec![]),
                vec![reference("Inner", "X_Inner", vec![key()])],
            ),
        )
        .unwrap();
    let inner = |id: Value| {
        let path = InstancePath::new("X_Inner").with_key("Id", id);
        Value::Reference(Box::new(ObjectPath::Instance(path)))
    };
    let outer = Instance::new("X_Outer").with(Property::new(
        "Inner",
        CimType::Reference(Some(Name::new("X_Inner"))),
        Some(inner(Value::Uint16(5))),
    ));
    let stored = repository.add_instance(NS, outer.clone()).unwrap();
    let untyped = InstancePath::new("X_Outer").with_key("Inner", inner(Value::Uint64(5)));
    assert!(untyped.same_instance(&stored));
    let (found, _) = repository
        .instance_at(NS, &untyped)
        .expect("found by meaning");
    assert_eq!(*found, stored);
    let error = refused(&mut repository, |r| r.add_instance(NS, outer));
    assert!(matches!(error, RepositoryError::AlreadyExists(_)));
    let other = InstancePath::new("X_Outer").with_key("Inner", inner(Value::Uint64(6)));
    assert!(repository.instance_at(NS, &other).is_none());
}
