//! The object manager: the class repository (read-only while serving), the instance providers
//! registered by namespace and class, and the shaping of instances by the DSP0200 options.
//! The intrinsic operations themselves are in [`crate::operations`].

use std::sync::Arc;

use cim_schema::model::{
    CimType, Class, Instance, InstancePath, KeyBinding, Name, NameKey, ObjectPath, Property, Value,
};
use cim_schema::repository::Repository;
use indexmap::IndexMap;

use crate::error::OperationError;
use crate::provider::{InstanceProvider, Instances, RequestContext};

/// Namespace names that are answered as another namespace: `interop` is `root/interop`, the
/// name pywbem tries first.
pub const NAMESPACE_ALIASES: &[(&str, &str)] = &[("interop", "root/interop")];

/// The namespace name `requested` stands for: slashes around it removed, an alias resolved
/// (`interop` is `root/interop`).
pub fn unaliased(requested: &str) -> &str {
    let trimmed = requested.trim_matches('/');
    NAMESPACE_ALIASES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(trimmed))
        .map_or(trimmed, |(_, target)| target)
}

/// How the paths of a response to a request addressed to `requested` name its namespace: when
/// that namespace has an alias, every name of it is written as the request wrote it, so that a
/// client finds in the references it gets the paths it built (pywbem's subscription manager
/// recognises its subscriptions so). `None` for a namespace with one name.
pub fn namespace_spelling(requested: &str) -> Option<cim_schema::xml::NamespaceSpelling> {
    let trimmed = requested.trim_matches('/');
    NAMESPACE_ALIASES
        .iter()
        .find(|(alias, target)| {
            alias.eq_ignore_ascii_case(trimmed) || target.eq_ignore_ascii_case(trimmed)
        })
        .map(|(alias, target)| cim_schema::xml::NamespaceSpelling::new([*alias, *target], trimmed))
}

/// `instance` as a response spelt by `spelling` shows it: a CIM_Namespace's Name, a namespace
/// name, as the request named that namespace (the encoder writes it so; a query or filter
/// that compares it sees it so too). Other instances are handed back as they are.
pub fn spelt_instance(
    spelling: Option<&cim_schema::xml::NamespaceSpelling>,
    instance: Arc<Instance>,
) -> Arc<Instance> {
    let Some(spelling) = spelling else {
        return instance;
    };
    let spelt = instance
        .value("Name")
        .and_then(|value| spelling.namespace_name(&instance.class_name, &Name::new("Name"), value));
    let Some(spelt) = spelt else {
        return instance;
    };
    let mut instance = Arc::unwrap_or_clone(instance);
    if let Some(property) = instance.properties.get_mut(&NameKey("Name")) {
        property.value = Some(spelt);
    }
    Arc::new(instance)
}

/// The classes, the providers and the identity of this object manager.
pub struct ObjectManager {
    repository: Arc<Repository>,
    providers: IndexMap<Name, IndexMap<Name, Arc<dyn InstanceProvider>>>,
    /// The host name written into `INSTANCEPATH`s and `OBJECTPATH`s.
    host: Arc<str>,
    /// [`ObjectManager::served_classes`] by namespace and class, filled on first use: the
    /// classes and providers do not change once serving starts, and walking the superclass
    /// chains of every served class on every request is measurable.
    served: std::sync::RwLock<ServedCache>,
    /// What the server has spent by operation type (CIM_CIMOMStatisticalData).
    statistics: Arc<crate::statistics::Statistics>,
}

/// Served classes by namespace, then by requested class.
type ServedCache = IndexMap<Name, IndexMap<Name, Arc<[Name]>>>;

/// What the DSP0200 options keep of an instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    /// Only properties that the requested class itself declares or overrides (deprecated by
    /// DSP0200 for instances; applied only when a client asks for it explicitly).
    pub local_only: bool,
    /// Keep the properties that subclasses of the requested class add.
    pub deep_inheritance: bool,
    /// Keep property and instance qualifiers.
    pub include_qualifiers: bool,
    /// Write `CLASSORIGIN` on each property.
    pub include_class_origin: bool,
    /// Keep only these properties; `None` keeps all.
    pub property_list: Option<Vec<Name>>,
}

impl ObjectManager {
    /// An object manager over `repository` (its classes and qualifier declarations), naming
    /// itself `host` in full paths.
    pub fn new(repository: Repository, host: impl Into<Arc<str>>) -> ObjectManager {
        ObjectManager {
            repository: Arc::new(repository),
            providers: IndexMap::new(),
            host: host.into(),
            served: std::sync::RwLock::new(IndexMap::new()),
            statistics: Arc::default(),
        }
    }

    /// The server's statistics by operation type: the listener counts into them, the
    /// interop provider shows them.
    pub fn statistics(&self) -> &Arc<crate::statistics::Statistics> {
        &self.statistics
    }

    /// Registers `provider` for the instances whose creation class is `class` in `namespace`.
    /// The class must exist; a second registration for the same class replaces the first.
    pub fn register(
        &mut self,
        namespace: &str,
        class: &str,
        provider: Arc<dyn InstanceProvider>,
    ) -> Result<(), OperationError> {
        let class = self
            .repository
            .class(namespace, class)
            .ok_or_else(|| OperationError::InvalidClass(format!("{namespace}:{class}")))?;
        self.providers
            .entry(Name::new(namespace))
            .or_default()
            .insert(class.name.clone(), provider);
        self.served
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        Ok(())
    }

    /// The class repository.
    pub fn repository(&self) -> &Repository {
        &self.repository
    }

    /// The repository, shared (for a part that keeps it).
    pub fn shared_repository(&self) -> Arc<Repository> {
        self.repository.clone()
    }

    /// The host name of full paths.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The namespaces served, as the repository spells them.
    pub fn namespaces(&self) -> impl Iterator<Item = &Name> {
        self.repository.namespace_names()
    }

    /// The canonical spelling of a requested namespace (leading and trailing slashes removed,
    /// aliases resolved), or CIM_ERR_INVALID_NAMESPACE.
    pub fn namespace(&self, requested: &str) -> Result<Arc<str>, OperationError> {
        let aliased = unaliased(requested);
        self.repository
            .namespace_names()
            .find(|name| name.matches(aliased))
            .map(Arc::<str>::from)
            .ok_or_else(|| OperationError::InvalidNamespace(requested.to_owned()))
    }

    /// The resolved class, or CIM_ERR_INVALID_CLASS.
    pub fn class(&self, namespace: &str, name: &str) -> Result<&Class, OperationError> {
        self.repository
            .class(namespace, name)
            .ok_or_else(|| OperationError::InvalidClass(name.to_owned()))
    }

    /// The provider of instances of exactly `class`.
    pub fn provider(&self, namespace: &str, class: &str) -> Option<&Arc<dyn InstanceProvider>> {
        self.providers
            .get(&NameKey(namespace))
            .and_then(|by_class| by_class.get(&NameKey(class)))
    }

    /// `class` and its subclasses (all generations) that have a provider, in repository order.
    pub fn served_classes(&self, namespace: &str, class: &Name) -> Arc<[Name]> {
        let cached = self
            .served
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&NameKey(namespace))
            .and_then(|by_class| by_class.get(&NameKey(class.as_str())))
            .cloned();
        if let Some(served) = cached {
            return served;
        }
        let served: Arc<[Name]> = match self.providers.get(&NameKey(namespace)) {
            None => Arc::from(Vec::new()),
            Some(by_class) => by_class
                .keys()
                .filter(|served| {
                    self.repository
                        .is_a(namespace, served.as_str(), class.as_str())
                })
                .cloned()
                .collect(),
        };
        self.served
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(Name::new(namespace))
            .or_default()
            .insert(class.clone(), served.clone());
        served
    }

    /// Every instance of `class` and its subclasses, lazily, each with a full path (host and
    /// namespace). A provider's error ends the sequence with that error.
    pub fn instances(
        &self,
        context: &RequestContext,
        class: &Name,
    ) -> Result<Instances, OperationError> {
        let parts = self.provided(context, class)?;
        let host = self.host.to_string();
        let namespace = context.namespace.to_string();
        Ok(Box::new(parts.into_iter().flatten().map(move |item| {
            item.map(|(mut path, instance)| {
                path.host = Some(host.clone());
                path.namespace = Some(namespace.clone());
                (path, instance)
            })
        })))
    }

    /// Like [`ObjectManager::instances`], with local paths (no host and no namespace), for
    /// the responses that carry local names (EnumerateInstances, EnumerateInstanceNames): no
    /// host and namespace strings are made for each instance only to be dropped.
    pub fn local_instances(
        &self,
        context: &RequestContext,
        class: &Name,
    ) -> Result<Instances, OperationError> {
        let parts = self.provided(context, class)?;
        Ok(Box::new(parts.into_iter().flatten().map(|item| {
            item.map(|(mut path, instance)| {
                path.host = None;
                path.namespace = None;
                (path, instance)
            })
        })))
    }

    /// The enumerations of the providers of `class` and its subclasses.
    fn provided(
        &self,
        context: &RequestContext,
        class: &Name,
    ) -> Result<Vec<Instances>, OperationError> {
        let mut parts = Vec::new();
        for served in self.served_classes(&context.namespace, class).iter() {
            if let Some(provider) = self.provider(&context.namespace, served.as_str()) {
                parts.push(provider.enumerate(context, served)?);
            }
        }
        Ok(parts)
    }

    /// The instance at `path` (keys typed against its class), from its class's provider.
    pub fn instance(
        &self,
        context: &RequestContext,
        path: &InstancePath,
    ) -> Result<Instance, OperationError> {
        let class = self.class(&context.namespace, path.class_name.as_str())?;
        let path = typed_path(class, path)?;
        let provider = self
            .provider(&context.namespace, class.name.as_str())
            .ok_or_else(|| crate::provider::not_found(&path))?;
        provider.get(context, &path)
    }

    /// Reduces `instance` as `shape` asks, for a request about `requested` (a superclass of
    /// the instance's class, or the class itself). The instance is copied only when the shape
    /// changes it: a provider's instance without qualifiers or class origins, asked for whole
    /// (the common request), is answered as it is shared.
    pub fn shape(
        &self,
        namespace: &str,
        mut instance: Arc<Instance>,
        requested: &Name,
        shape: &Shape,
    ) -> Arc<Instance> {
        // The classes are looked up only for the options that need them.
        let instance_class = if shape.include_class_origin {
            self.repository
                .class(namespace, instance.class_name.as_str())
        } else {
            None
        };
        let requested_class = if !shape.deep_inheritance || shape.local_only {
            self.repository.class(namespace, requested.as_str())
        } else {
            None
        };
        let keep = |name: &Name| {
            let listed = shape
                .property_list
                .as_ref()
                .is_none_or(|list| list.iter().any(|n| n == name));
            let inherited_enough = shape.deep_inheritance
                || requested_class.is_none_or(|c| c.property(name.as_str()).is_some());
            let local = !shape.local_only
                || requested_class
                    .is_none_or(|c| c.property(name.as_str()).is_some_and(|p| !p.propagated));
            listed && inherited_enough && local
        };
        let class_origin = |property: &Property| {
            instance_class
                .and_then(|c| c.property(property.name.as_str()))
                .and_then(|p| p.class_origin.as_ref())
        };
        let unchanged = (shape.include_qualifiers || instance.qualifiers.is_empty())
            && instance.properties.iter().all(|(name, property)| {
                keep(name)
                    && !property.propagated
                    && (shape.include_qualifiers || property.qualifiers.is_empty())
                    && property.class_origin.as_ref() == class_origin(property)
            });
        if unchanged {
            return instance;
        }
        let shaped = Arc::make_mut(&mut instance);
        shaped.properties.retain(|name, _| keep(name));
        if !shape.include_qualifiers {
            shaped.qualifiers = Default::default();
        }
        for property in shaped.properties.values_mut() {
            property.propagated = false;
            if !shape.include_qualifiers {
                property.qualifiers = Default::default();
            }
            property.class_origin = class_origin(property).cloned();
        }
        instance
    }
}

/// `path` with its keybindings typed as the class declares its keys, so that a client's
/// untyped `KEYVALUE` (decoded as the widest number, or as a string) matches the provider's.
/// A key the class does not declare (a property that is not a key included), or a value of the
/// wrong kind, is CIM_ERR_INVALID_PARAMETER.
pub fn typed_path(class: &Class, path: &InstancePath) -> Result<InstancePath, OperationError> {
    let mut typed = path.clone();
    typed.class_name = class.name.clone();
    unalias_path(&mut typed);
    // An INSTANCENAME with one unnamed KEYVALUE (DSP0201) names the class's only key.
    if let [binding] = &mut typed.keybindings[..] {
        if binding.name.as_str().is_empty() {
            let keys: Vec<_> = class.keys().collect();
            let [key] = &keys[..] else {
                return Err(OperationError::parameter(format!(
                    "an instance name with an unnamed key fits a class with one key; {} has {}",
                    class.name,
                    keys.len()
                )));
            };
            binding.name = key.name.clone();
        }
    }
    for binding in &mut typed.keybindings {
        let property = class
            .property(binding.name.as_str())
            .filter(|property| property.is_key())
            .ok_or_else(|| {
                OperationError::parameter(format!(
                    "class {} has no key property {}",
                    class.name, binding.name
                ))
            })?;
        binding.name = property.name.clone();
        binding.value = typed_key(binding, &property.cim_type)?;
    }
    // Two values for one key name no instance: the request is at fault, not the lookup.
    for (index, binding) in typed.keybindings.iter().enumerate() {
        if typed.keybindings[..index]
            .iter()
            .any(|earlier| earlier.name == binding.name)
        {
            return Err(OperationError::parameter(format!(
                "the instance name gives key {} twice",
                binding.name
            )));
        }
    }
    // Nor does a name without all of its class's keys (`wbemcli gi
    // ..HP_SGPackage.Name="dbpkg"` gives one of four), or without any: CIM_ERR_NOT_FOUND
    // would tell a monitoring tool that the object went away when the request named none.
    let missing: Vec<&str> = class
        .keys()
        .filter(|key| typed.key(key.name.as_str()).is_none())
        .map(|key| key.name.as_str())
        .collect();
    if !missing.is_empty() {
        let keys = if missing.len() == 1 { "key" } else { "keys" };
        return Err(OperationError::parameter(format!(
            "the instance name of {} lacks the {keys} {}",
            class.name,
            missing.join(", ")
        )));
    }
    Ok(typed)
}

/// Resolves the namespace aliases in `path` and in the references among its keys, at any
/// depth: the answers to a request through `interop` spell `root/interop` so, and a client
/// gives those paths back (GetInstance of an association's own path) or mixes the spellings;
/// the providers' references say `root/interop`.
fn unalias_path(path: &mut InstancePath) {
    if let Some(namespace) = &mut path.namespace {
        unalias_namespace(namespace);
    }
    // A CIM_Namespace's Name is a namespace name: `interop` names root/interop's.
    let names_a_namespace = path
        .class_name
        .matches(cim_schema::xml::NamespaceSpelling::NAMESPACE_CLASS);
    for binding in &mut path.keybindings {
        if names_a_namespace && binding.name.matches("Name") {
            if let Value::String(name) = &mut binding.value {
                unalias_namespace(name);
            }
        }
        if let Value::Reference(reference) = &mut binding.value {
            match reference.as_mut() {
                ObjectPath::Instance(inner) => unalias_path(inner),
                ObjectPath::Class(class) => {
                    if let Some(namespace) = &mut class.namespace {
                        unalias_namespace(namespace);
                    }
                }
            }
        }
    }
}

fn unalias_namespace(namespace: &mut String) {
    let resolved = unaliased(namespace);
    if resolved != namespace.as_str() {
        *namespace = resolved.to_owned();
    }
}

/// One keybinding's value converted to the declared type.
fn typed_key(binding: &KeyBinding, cim_type: &CimType) -> Result<Value, OperationError> {
    let mismatch = || {
        OperationError::parameter(format!(
            "key {} does not hold a {} value",
            binding.name,
            cim_type.as_str()
        ))
    };
    if binding.value.cim_type().as_ref() == Some(cim_type) {
        return Ok(binding.value.clone());
    }
    if let Some(number) = binding.value.as_integer() {
        return Value::from_integer(cim_type, number).ok_or_else(mismatch);
    }
    match (&binding.value, cim_type) {
        (Value::String(text), CimType::Datetime) => cim_schema::model::Datetime::parse(text)
            .map(Value::Datetime)
            .map_err(|_| mismatch()),
        (Value::Reference(_), CimType::Reference(_)) => Ok(binding.value.clone()),
        _ => Err(mismatch()),
    }
}
