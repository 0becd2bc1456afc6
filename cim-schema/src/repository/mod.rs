//! The class repository: namespaces holding qualifier declarations, classes and instances, with
//! inheritance resolved (DSP0004 5.1, 5.6).
//!
//! Classes are added as declared (their own elements only) and stored resolved: inherited
//! properties, methods and qualifiers are copied in by their flavors (ToSubclass propagates,
//! Restricted does not, DisableOverride forbids a new value), every property and method carries
//! its class origin (the class that first declared it), and elements inherited unchanged are
//! marked propagated. Every refused operation leaves the repository as it was.
//!
//! [`Repository::add_class`] checks what can be checked as a class arrives: the superclass
//! exists, the name is new, associations derive only from associations, no key is added below a
//! keyed class, references point at existing classes (references may appear in any class, as
//! DSP0004 3.0 allows, but only associations are followed by the association queries),
//! overrides keep their types, and qualifiers take the flavors their declarations allow. [`Repository::validate`] checks the rest once a schema is loaded:
//! the classes that method parameters and `EmbeddedInstance` qualifiers name, which an include
//! order may declare later.
//!
//! The queries are those the intrinsic operations of DSP0200 need: class names with
//! DeepInheritance, GetClass with LocalOnly, IncludeQualifiers, IncludeClassOrigin and
//! PropertyList, subclasses and superclasses, the associations that reference a class (with the
//! AssocClass, ResultClass, Role and ResultRole filters), and instances by path or by class.
//! Subclasses, reference targets and instance paths are indexed, so that loading a schema and
//! answering a query cost no scan of the namespace.
//!
//! ```
//! use cim_schema::model::{Class, CimType, Property};
//! use cim_schema::repository::{ClassQuery, Repository};
//!
//! let mut repository = Repository::new();
//! repository.create_namespace("root/cimv2");
//! let mut base = Class::new("CIM_ManagedElement", None);
//! base.add_property(Property::new("Caption", CimType::String, None));
//! repository.add_class("root/cimv2", base).unwrap();
//! let child = Class::new("CIM_ManagedSystemElement", Some("CIM_ManagedElement".into()));
//! repository.add_class("root/cimv2", child).unwrap();
//!
//! let resolved = repository.class("root/cimv2", "cim_managedsystemelement").unwrap();
//! let caption = resolved.property("Caption").unwrap();
//! assert!(caption.propagated);
//! assert_eq!(caption.class_origin.as_ref().unwrap(), "CIM_ManagedElement");
//! let local = repository.get_class("root/cimv2", "CIM_ManagedSystemElement",
//!     &ClassQuery { local_only: true, ..ClassQuery::default() }).unwrap();
//! assert!(local.properties.is_empty());
//! ```

mod associations;
mod instances;
mod qualifiers;
mod resolve;
mod validate;

use std::collections::HashMap;

use indexmap::IndexMap;

use crate::model::{Class, Instance, InstancePath, Name, NameKey, QualifierDeclaration};

pub use associations::{AssociationFilter, AssociationLink};

/// Why a repository operation was refused. A refused operation leaves the repository unchanged.
///
/// Each variant names the DSP0200 status code it usually becomes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RepositoryError {
    /// The namespace does not exist (CIM_ERR_INVALID_NAMESPACE).
    #[error("namespace {0} does not exist")]
    InvalidNamespace(String),
    /// The namespace still holds classes or instances and cannot be deleted (CIM_ERR_FAILED).
    #[error("namespace {0} is not empty")]
    NamespaceNotEmpty(String),
    /// A class, qualifier or instance of that name already exists (CIM_ERR_ALREADY_EXISTS).
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The class does not exist (CIM_ERR_INVALID_CLASS; CIM_ERR_NOT_FOUND for GetClass).
    #[error("class {0} does not exist")]
    InvalidClass(String),
    /// The superclass named by a new class does not exist (CIM_ERR_INVALID_SUPERCLASS).
    #[error("superclass {superclass} of class {class} does not exist")]
    InvalidSuperclass {
        /// The class being added.
        class: String,
        /// The superclass it names.
        superclass: String,
    },
    /// The instance does not exist (CIM_ERR_NOT_FOUND).
    #[error("instance {0} does not exist")]
    NotFound(String),
    /// The qualifier declaration does not exist (CIM_ERR_NOT_FOUND for GetQualifier and
    /// DeleteQualifier, CIM_ERR_INVALID_PARAMETER for a class using it).
    #[error("qualifier {0} is not declared")]
    InvalidQualifier(String),
    /// The class has subclasses and cannot be deleted (CIM_ERR_CLASS_HAS_CHILDREN).
    #[error("class {0} has subclasses")]
    ClassHasChildren(String),
    /// The class has instances and cannot be deleted (CIM_ERR_CLASS_HAS_INSTANCES).
    #[error("class {0} has instances")]
    ClassHasInstances(String),
    /// A property named by an instance does not exist in its class (CIM_ERR_NO_SUCH_PROPERTY).
    #[error("class {class} has no property {property}")]
    NoSuchProperty {
        /// The instance's class.
        class: String,
        /// The unknown property.
        property: String,
    },
    /// A value is not of the type its property declares (CIM_ERR_TYPE_MISMATCH).
    #[error("property {class}.{property} is {expected}, and its value is not")]
    TypeMismatch {
        /// The instance's class.
        class: String,
        /// The property.
        property: String,
        /// The declared type (`uint32`, `string[]`).
        expected: String,
    },
    /// A key property of a new instance is NULL (CIM_ERR_INVALID_PARAMETER).
    #[error("key {class}.{property} is NULL")]
    NullKey {
        /// The instance's class.
        class: String,
        /// The key property.
        property: String,
    },
    /// The class is abstract and cannot have instances (CIM_ERR_FAILED).
    #[error("class {0} is abstract and cannot have instances")]
    AbstractClass(String),
    /// A subclass restates a DisableOverride qualifier with another value
    /// (CIM_ERR_INVALID_PARAMETER).
    #[error("{element}: qualifier {qualifier} is DisableOverride and cannot change its value")]
    OverrideDisabled {
        /// The class or element (`property CIM_A.Name`).
        element: String,
        /// The qualifier.
        qualifier: String,
    },
    /// An element names a class that does not exist (a reference's target, an embedded
    /// instance's class) (CIM_ERR_INVALID_PARAMETER).
    #[error("{element} names class {target}, which does not exist")]
    InvalidReference {
        /// The element (`property CIM_A.Antecedent`, `method CIM_A.M parameter P`).
        element: String,
        /// The class it names.
        target: String,
    },
    /// The element breaks a rule of DSP0004 (the message says which)
    /// (CIM_ERR_INVALID_PARAMETER).
    #[error("{0}")]
    Invalid(String),
}

/// One namespace. The fields are readable for dumps and iteration; change them only through
/// [`Repository`], which keeps its indexes consistent with them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Namespace {
    /// Qualifier declarations by name.
    pub qualifiers: IndexMap<Name, QualifierDeclaration>,
    /// Classes by name, resolved (inherited elements included, class origins set), in the order
    /// they were added (so a superclass always comes before its subclasses).
    pub classes: IndexMap<Name, Class>,
    /// Instances with their paths, in insertion order.
    pub instances: Vec<(InstancePath, Instance)>,
    /// The direct subclasses of each class, in the order they were added.
    subclasses: HashMap<Name, Vec<Name>>,
    /// The positions in `instances` of the instances with each index key (see `instances.rs`).
    instance_index: HashMap<String, Vec<usize>>,
    /// The reference properties that point at each class: (association, reference property).
    referenced_by: HashMap<Name, Vec<(Name, Name)>>,
}

/// Namespaces by name (case-insensitive: `root/cimv2` and `ROOT/CIMV2` are the same).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Repository {
    namespaces: IndexMap<Name, Namespace>,
}

/// What [`Repository::get_class`] returns of a class (the GetClass parameters of DSP0200).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassQuery {
    /// Only the elements the class itself declares or overrides (not propagated ones).
    pub local_only: bool,
    /// Keep the qualifiers of the class and its elements.
    pub include_qualifiers: bool,
    /// Keep the class origin of properties and methods.
    pub include_class_origin: bool,
    /// Keep only these properties (case-insensitive); `None` keeps all.
    pub property_list: Option<Vec<String>>,
}

impl Default for ClassQuery {
    /// DSP0200's defaults: LocalOnly true, IncludeQualifiers true, IncludeClassOrigin false.
    fn default() -> Self {
        ClassQuery {
            local_only: true,
            include_qualifiers: true,
            include_class_origin: false,
            property_list: None,
        }
    }
}

/// One way an association class can reference a class: through its reference property `role`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationRole<'a> {
    /// The association class.
    pub association: &'a Name,
    /// The reference property that can point at the class.
    pub role: &'a Name,
    /// The class the reference property is declared to point at (the class or a superclass).
    pub reference_class: &'a Name,
}

impl Repository {
    /// An empty repository with no namespace.
    pub fn new() -> Repository {
        Repository::default()
    }

    /// Creates a namespace; creating one that exists is not an error.
    pub fn create_namespace(&mut self, namespace: &str) {
        if self.namespace(namespace).is_none() {
            self.namespaces
                .insert(Name::new(namespace), Namespace::default());
        }
    }

    /// Deletes an empty namespace (one with no class and no instance).
    pub fn delete_namespace(&mut self, namespace: &str) -> Result<(), RepositoryError> {
        let ns = self.namespace_ref(namespace)?;
        if !ns.classes.is_empty() || !ns.instances.is_empty() {
            return Err(RepositoryError::NamespaceNotEmpty(namespace.to_owned()));
        }
        self.namespaces.shift_remove(&NameKey(namespace));
        Ok(())
    }

    /// The namespace names, in creation order.
    pub fn namespace_names(&self) -> impl Iterator<Item = &Name> {
        self.namespaces.keys()
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

    /// The qualifier declarations of a namespace, in order.
    pub fn qualifiers(
        &self,
        namespace: &str,
    ) -> Result<impl Iterator<Item = &QualifierDeclaration>, RepositoryError> {
        Ok(self.namespace_ref(namespace)?.qualifiers.values())
    }

    /// Deletes a qualifier declaration.
    pub fn delete_qualifier(&mut self, namespace: &str, name: &str) -> Result<(), RepositoryError> {
        let ns = self.namespace_mut(namespace)?;
        ns.qualifiers
            .shift_remove(&NameKey(name))
            .map(|_| ())
            .ok_or_else(|| RepositoryError::InvalidQualifier(name.to_owned()))
    }

    /// Adds a class as declared (its own elements only, qualifier values typed) and stores it
    /// resolved against its superclass. The flavors of the namespace's qualifier declarations
    /// apply to its qualifiers, whatever the class's source (MOF, CIM-XML, code): a use keeps
    /// only the flavors its declaration allows (a Restricted or DisableOverride declaration
    /// makes every use so).
    pub fn add_class(&mut self, namespace: &str, mut class: Class) -> Result<(), RepositoryError> {
        let ns = self.namespace_ref(namespace)?;
        if ns.classes.contains_key(&class.name) {
            return Err(RepositoryError::AlreadyExists(format!(
                "class {}",
                class.name
            )));
        }
        qualifiers::apply_declared_flavors(ns, &mut class);
        let resolved = resolve::resolve(ns, class)?;
        let ns = self.namespace_mut(namespace)?;
        if let Some(superclass) = &resolved.superclass {
            ns.subclasses
                .entry(superclass.clone())
                .or_default()
                .push(resolved.name.clone());
        }
        associations::index_references(ns, &resolved);
        ns.classes.insert(resolved.name.clone(), resolved);
        Ok(())
    }

    /// The resolved class of that name.
    pub fn class(&self, namespace: &str, name: &str) -> Option<&Class> {
        self.namespace(namespace)?.classes.get(&NameKey(name))
    }

    /// GetClass: a copy of the resolved class, reduced as the query asks.
    pub fn get_class(
        &self,
        namespace: &str,
        name: &str,
        query: &ClassQuery,
    ) -> Result<Class, RepositoryError> {
        let class = self
            .namespace_ref(namespace)?
            .classes
            .get(&NameKey(name))
            .ok_or_else(|| RepositoryError::InvalidClass(name.to_owned()))?;
        Ok(resolve::filter_class(class, query))
    }

    /// Deletes a class that has no subclasses and no instances.
    pub fn delete_class(&mut self, namespace: &str, name: &str) -> Result<(), RepositoryError> {
        let ns = self.namespace_ref(namespace)?;
        let class = ns
            .classes
            .get(&NameKey(name))
            .ok_or_else(|| RepositoryError::InvalidClass(name.to_owned()))?;
        let has_subclasses = ns
            .subclasses
            .get(&class.name)
            .is_some_and(|s| !s.is_empty());
        let has_instances = ns
            .instances
            .iter()
            .any(|(path, _)| path.class_name == class.name);
        if has_subclasses {
            return Err(RepositoryError::ClassHasChildren(class.name.to_string()));
        }
        if has_instances {
            return Err(RepositoryError::ClassHasInstances(class.name.to_string()));
        }
        let name = class.name.clone();
        let ns = self.namespace_mut(namespace)?;
        let Some(class) = ns.classes.shift_remove(&name) else {
            return Err(RepositoryError::InvalidClass(name.to_string()));
        };
        ns.subclasses.remove(&name);
        if let Some(superclass) = &class.superclass {
            if let Some(siblings) = ns.subclasses.get_mut(superclass) {
                siblings.retain(|sibling| *sibling != name);
                // No empty lists: a repository after an add and a delete equals the one before.
                if siblings.is_empty() {
                    ns.subclasses.remove(superclass);
                }
            }
        }
        associations::unindex_references(ns, &class);
        Ok(())
    }

    /// EnumerateClassNames: with no class, the root classes (or every class with
    /// `deep_inheritance`); with a class, its direct subclasses (or all its descendants).
    pub fn class_names(
        &self,
        namespace: &str,
        class: Option<&str>,
        deep_inheritance: bool,
    ) -> Result<Vec<&Name>, RepositoryError> {
        let ns = self.namespace_ref(namespace)?;
        let Some(class) = class else {
            return Ok(if deep_inheritance {
                ns.classes.keys().collect()
            } else {
                ns.classes
                    .values()
                    .filter(|c| c.superclass.is_none())
                    .map(|c| &c.name)
                    .collect()
            });
        };
        let class = ns
            .classes
            .get(&NameKey(class))
            .ok_or_else(|| RepositoryError::InvalidClass(class.to_owned()))?;
        let Some(children) = ns.subclasses.get(&class.name) else {
            return Ok(Vec::new());
        };
        if !deep_inheritance {
            return Ok(children.iter().collect());
        }
        // Depth-first, parents before children, children in the order they were added.
        let mut names = Vec::new();
        let mut pending: Vec<&Name> = children.iter().rev().collect();
        while let Some(name) = pending.pop() {
            names.push(name);
            if let Some(grandchildren) = ns.subclasses.get(name) {
                pending.extend(grandchildren.iter().rev());
            }
        }
        Ok(names)
    }

    /// EnumerateClasses: like [`Repository::class_names`], each class reduced by the query.
    pub fn classes(
        &self,
        namespace: &str,
        class: Option<&str>,
        deep_inheritance: bool,
        query: &ClassQuery,
    ) -> Result<Vec<Class>, RepositoryError> {
        let names = self.class_names(namespace, class, deep_inheritance)?;
        let ns = self.namespace_ref(namespace)?;
        Ok(names
            .into_iter()
            .filter_map(|n| ns.classes.get(n))
            .map(|c| resolve::filter_class(c, query))
            .collect())
    }

    /// The superclass chain of a class, nearest first (empty for a root class).
    pub fn superclasses(&self, namespace: &str, name: &str) -> Result<Vec<&Name>, RepositoryError> {
        let ns = self.namespace_ref(namespace)?;
        let mut class = ns
            .classes
            .get(&NameKey(name))
            .ok_or_else(|| RepositoryError::InvalidClass(name.to_owned()))?;
        let mut chain = Vec::new();
        while let Some(parent) = class.superclass.as_ref().and_then(|s| ns.classes.get(s)) {
            chain.push(&parent.name);
            class = parent;
        }
        Ok(chain)
    }

    /// True when `class` is `ancestor` or one of its subclasses (both existing).
    pub fn is_a(&self, namespace: &str, class: &str, ancestor: &str) -> bool {
        self.namespace(namespace)
            .is_some_and(|ns| resolve::is_a(ns, class, ancestor))
    }

    /// True when `class` is a subclass of `ancestor`, directly or not (a class is not its own
    /// subclass; see [`Repository::is_a`] for that).
    pub fn is_subclass(&self, namespace: &str, class: &str, ancestor: &str) -> bool {
        let Some(ns) = self.namespace(namespace) else {
            return false;
        };
        ns.classes
            .get(&NameKey(class))
            .and_then(|c| c.superclass.as_ref())
            .is_some_and(|parent| resolve::is_a(ns, parent.as_str(), ancestor))
    }

    /// The direct subclasses of a class, in the order they were added.
    pub fn subclasses(&self, namespace: &str, name: &str) -> Result<&[Name], RepositoryError> {
        let ns = self.namespace_ref(namespace)?;
        let class = ns
            .classes
            .get(&NameKey(name))
            .ok_or_else(|| RepositoryError::InvalidClass(name.to_owned()))?;
        Ok(ns.subclasses.get(&class.name).map_or(&[], Vec::as_slice))
    }

    fn namespace_ref(&self, namespace: &str) -> Result<&Namespace, RepositoryError> {
        self.namespace(namespace)
            .ok_or_else(|| RepositoryError::InvalidNamespace(namespace.to_owned()))
    }

    fn namespace_mut(&mut self, namespace: &str) -> Result<&mut Namespace, RepositoryError> {
        self.namespaces
            .get_mut(&NameKey(namespace))
            .ok_or_else(|| RepositoryError::InvalidNamespace(namespace.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A <- B <- D, A <- C, E.
    fn tree() -> Repository {
        let mut repository = Repository::new();
        repository.create_namespace("root/t");
        for (name, superclass) in [
            ("A", None),
            ("B", Some("A")),
            ("C", Some("A")),
            ("D", Some("B")),
            ("E", None),
        ] {
            repository
                .add_class("root/t", Class::new(name, superclass.map(Name::new)))
                .unwrap();
        }
        repository
    }

    #[test]
    fn deep_class_names_are_depth_first_in_insertion_order() {
        let repository = tree();
        let deep: Vec<_> = repository
            .class_names("root/t", Some("a"), true)
            .unwrap()
            .into_iter()
            .map(Name::as_str)
            .collect();
        assert_eq!(deep, ["B", "D", "C"]);
        let roots: Vec<_> = repository
            .class_names("root/t", None, false)
            .unwrap()
            .into_iter()
            .map(Name::as_str)
            .collect();
        assert_eq!(roots, ["A", "E"]);
    }

    #[test]
    fn the_subclass_index_follows_deletions() {
        let mut repository = tree();
        repository.delete_class("root/t", "D").unwrap();
        assert!(repository.subclasses("root/t", "B").unwrap().is_empty());
        assert!(!repository
            .namespace("root/t")
            .unwrap()
            .subclasses
            .contains_key(&Name::new("B")));
        assert!(repository.is_subclass("root/t", "C", "A"));
        assert!(!repository.is_subclass("root/t", "D", "A"));
    }

    #[test]
    fn create_namespace_is_idempotent() {
        let mut repository = tree();
        let before = repository.clone();
        repository.create_namespace("ROOT/T");
        assert_eq!(repository, before);
    }
}
