//! The class repository: namespaces holding qualifier declarations, classes and instances, with
//! inheritance resolved.
//!
//! SKELETON: the signatures below are the contract the MOF compiler builds against. The bodies
//! are placeholders that store without resolving or validating; the repository work replaces
//! them (and adds the queries the intrinsic operations need).

use indexmap::IndexMap;

use crate::model::{Class, Instance, InstancePath, Name, NameKey, QualifierDeclaration};

/// Why a repository operation was refused. A refused operation leaves the repository unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RepositoryError {
    /// The namespace does not exist.
    #[error("namespace {0} does not exist")]
    InvalidNamespace(String),
    /// A class, qualifier or instance of that name already exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The class (or superclass, or referenced class) does not exist.
    #[error("class {0} does not exist")]
    InvalidClass(String),
    /// The element breaks a rule of DSP0004 (the message says which).
    #[error("{0}")]
    Invalid(String),
}

/// One namespace.
#[derive(Debug, Clone, Default)]
pub struct Namespace {
    /// Qualifier declarations by name.
    pub qualifiers: IndexMap<Name, QualifierDeclaration>,
    /// Classes by name, resolved (inherited elements included, class origins set).
    pub classes: IndexMap<Name, Class>,
    /// Instances with their paths, in insertion order.
    pub instances: Vec<(InstancePath, Instance)>,
}

/// Namespaces by name (case-insensitive: `root/cimv2` and `ROOT/CIMV2` are the same).
#[derive(Debug, Clone, Default)]
pub struct Repository {
    namespaces: IndexMap<Name, Namespace>,
}

impl Repository {
    /// An empty repository with no namespace.
    pub fn new() -> Repository {
        Repository::default()
    }

    /// Creates a namespace; creating one that exists is not an error.
    pub fn create_namespace(&mut self, namespace: &str) {
        self.namespaces.entry(Name::new(namespace)).or_default();
    }

    /// The namespace of that name.
    pub fn namespace(&self, namespace: &str) -> Option<&Namespace> {
        self.namespaces.get(&NameKey(namespace))
    }

    /// Adds or replaces a qualifier declaration.
    pub fn set_qualifier(
        &mut self,
        namespace: &str,
        declaration: QualifierDeclaration,
    ) -> Result<(), RepositoryError> {
        let ns = self.namespace_mut(namespace)?;
        ns.qualifiers.insert(declaration.name.clone(), declaration);
        Ok(())
    }

    /// The qualifier declaration of that name.
    pub fn qualifier(&self, namespace: &str, name: &str) -> Option<&QualifierDeclaration> {
        self.namespace(namespace)?.qualifiers.get(&NameKey(name))
    }

    /// Adds a class as declared (its own elements only, qualifier values typed and flavors set
    /// from the declarations) and resolves it against its superclass.
    pub fn add_class(&mut self, namespace: &str, class: Class) -> Result<(), RepositoryError> {
        let ns = self.namespace_mut(namespace)?;
        if ns.classes.contains_key(&class.name) {
            return Err(RepositoryError::AlreadyExists(class.name.to_string()));
        }
        ns.classes.insert(class.name.clone(), class);
        Ok(())
    }

    /// The resolved class of that name.
    pub fn class(&self, namespace: &str, name: &str) -> Option<&Class> {
        self.namespace(namespace)?.classes.get(&NameKey(name))
    }

    /// Adds an instance of an existing class and returns its path (built from its keys).
    pub fn add_instance(
        &mut self,
        namespace: &str,
        instance: Instance,
    ) -> Result<InstancePath, RepositoryError> {
        let ns = self.namespace_mut(namespace)?;
        let path = InstancePath::new(instance.class_name.clone()).in_namespace(namespace);
        ns.instances.push((path.clone(), instance));
        Ok(path)
    }

    fn namespace_mut(&mut self, namespace: &str) -> Result<&mut Namespace, RepositoryError> {
        self.namespaces
            .get_mut(&NameKey(namespace))
            .ok_or_else(|| RepositoryError::InvalidNamespace(namespace.to_owned()))
    }
}
