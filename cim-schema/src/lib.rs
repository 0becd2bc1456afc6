//! `cim-schema`: the Common Information Model in memory, in MOF and in XML, with no IO.
//!
//! - [`model`]: names (case-insensitive, spelling kept), types and values, qualifiers, classes,
//!   instances and object paths, datetimes and WBEM URIs (DSP0004, DSP0207).
//! - [`mof`]: the MOF compiler (DSP0221) that turns MOF text into qualifier declarations,
//!   classes and instances, with located errors.
//! - [`repository`]: namespaces of classes with inheritance resolved, validation, and the
//!   queries the intrinsic operations need.
//! - [`query`]: WQL, DMTF:CQL and DMTF:FQL queries (DSP0202, DSP0212), parsed and evaluated.
//! - [`xml`]: the CIM-XML codec (DSP0201) for DSP0200 operation and export messages: a streaming
//!   encoder and a bounded decoder.
//!
//! It does not read files or sockets itself: callers hand it text and get text back (the MOF
//! compiler asks its caller for included files through a trait).
//!
//! ```
//! use cim_schema::model::{CimType, Instance, Property, Value};
//!
//! let package = Instance::new("HP_SGPackage")
//!     .with(Property::new("Name", CimType::String, Some(Value::from("dbpkg"))));
//! assert_eq!(package.value("name"), Some(&Value::from("dbpkg")));
//! ```

pub mod model;
pub mod mof;
pub mod query;
pub mod repository;
pub mod shipped;
pub mod xml;
