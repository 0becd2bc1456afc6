//! The MOF compiler (DSP0221, MOF 2 as the DMTF CIM Schema 2.x writes it).
//!
//! MOF text goes in; qualifier declarations, classes and instances come out in a
//! [`Repository`]. The compiler does no IO: the caller hands it the text of each file
//! ([`SourceFile`]) and reads `#pragma include` files for it through an [`IncludeResolver`].
//!
//! - Qualifier values are typed by their declarations and get the declaration's flavors with the
//!   flavors written at the use applied; a qualifier used without a declaration is an error.
//! - A class is handed to [`Repository::add_class`] as declared (its own elements only); the
//!   repository resolves inheritance. Instance values are typed by the resolved class.
//! - Every error carries its file, line and column ([`MofError`]); no input makes the compiler
//!   panic, and after an error it resumes at the next production, up to [`ERRORS_MAX`].
//!
//! ```
//! use cim_schema::mof::{compile, NoIncludes, SourceFile};
//! use cim_schema::repository::Repository;
//!
//! let text = br#"
//!     Qualifier Key : boolean = false, Scope(property, reference), Flavor(DisableOverride);
//!     class Acme_Disk { [Key] string DeviceId; uint64 Size = 0x1000; };
//!     instance of Acme_Disk { DeviceId = "sda"; Size = 512; };
//! "#;
//! let mut repository = Repository::new();
//! let source = SourceFile::new("acme.mof", text.as_slice());
//! let compiled = compile(&mut repository, "root/cimv2", &[source], &mut NoIncludes).unwrap();
//! assert_eq!(compiled.len(), 3);
//!
//! let broken = SourceFile::new("broken.mof", b"class A { uint8 X = 300; };".as_slice());
//! let errors = compile(&mut repository, "root/cimv2", &[broken], &mut NoIncludes).unwrap_err();
//! assert_eq!(errors.to_string(), "broken.mof:1:21: 300 is out of range for uint8");
//! ```

mod compiler;
mod convert;
mod error;
mod lexer;
mod literal;
mod parser;

use std::borrow::Cow;
use std::collections::HashMap;

pub use compiler::{Compiled, Compiler};
pub use error::{MofError, MofErrorKind, MofErrors};

use crate::repository::Repository;
use error::Fault;

/// How deep `#pragma include` may nest. The DMTF schema nests one level; the bound stops a
/// resolver that invents ever new files from exhausting the stack.
pub const INCLUDE_DEPTH_MAX: usize = 32;

/// How many included files one compilation reads in all. The DMTF schema includes 1440; the
/// bound stops a few files that include each other many times over (without a cycle) from
/// multiplying into billions of compilations.
pub const INCLUDED_FILES_MAX: usize = 65_536;

/// How many errors a compilation reports before it stops (one more error says it stopped).
pub const ERRORS_MAX: usize = 100;

/// The text of one MOF file and the name it is known by (used in errors and handed back to the
/// [`IncludeResolver`] as the including file). The text is bytes: a file that is not UTF-8 is
/// reported as a located error, not refused up front.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// The file's name or path.
    pub name: String,
    /// Its contents.
    pub text: Cow<'static, [u8]>,
}

impl SourceFile {
    /// A file from its name and bytes (`Vec<u8>`, or `&'static [u8]` such as
    /// `include_str!(..).as_bytes()`, which is not copied).
    pub fn new(name: impl Into<String>, text: impl Into<Cow<'static, [u8]>>) -> SourceFile {
        SourceFile {
            name: name.into(),
            text: text.into(),
        }
    }
}

/// Provides the files named by `#pragma include`; implemented by the caller, who decides where
/// files come from (directories, memory).
pub trait IncludeResolver {
    /// The file `name` as included from the file named `including_file`, or why it cannot be
    /// had. The returned file's name is the one errors inside it will show, and the one include
    /// cycles are detected by, so it should identify the file (a path, not just `name`).
    fn resolve(&mut self, name: &str, including_file: &str) -> Result<SourceFile, String>;
}

/// A resolver that refuses every include.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoIncludes;

impl IncludeResolver for NoIncludes {
    fn resolve(&mut self, _name: &str, _including_file: &str) -> Result<SourceFile, String> {
        Err("includes are not available here".to_owned())
    }
}

/// A resolver serving files from memory, by path: an include is looked for next to the including
/// file first (`Core/CIM_X.mof` included from `schema/all.mof` is `schema/Core/CIM_X.mof`), then
/// under its own name. Paths use `/`; `.` and `..` segments are resolved.
#[derive(Clone, Debug, Default)]
pub struct MemoryResolver {
    files: HashMap<String, Cow<'static, [u8]>>,
}

impl MemoryResolver {
    /// An empty resolver.
    pub fn new() -> MemoryResolver {
        MemoryResolver::default()
    }

    /// Adds (or replaces) a file.
    pub fn insert(&mut self, path: impl Into<String>, text: impl Into<Cow<'static, [u8]>>) {
        self.files.insert(path.into(), text.into());
    }
}

impl IncludeResolver for MemoryResolver {
    fn resolve(&mut self, name: &str, including_file: &str) -> Result<SourceFile, String> {
        let sibling = match including_file.rfind('/') {
            Some(slash) => format!("{}/{name}", &including_file[..slash]),
            None => name.to_owned(),
        };
        for candidate in [normalize(&sibling), normalize(name)] {
            if let Some(text) = self.files.get(&candidate) {
                return Ok(SourceFile::new(candidate, text.clone()));
            }
        }
        Err("no such file".to_owned())
    }
}

/// Resolves `.` and `..` segments of a `/` path (a `..` above the top is kept).
fn normalize(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "." | "" => {}
            ".." if segments.last().is_some_and(|s| *s != "..") => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    let joined = segments.join("/");
    if path.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

/// Compiles `sources` in order into `namespace` of `repository` (created if missing), following
/// includes through `resolver`. Returns what was added, in order, or every error found.
///
/// On error, the repository keeps what compiled before and between the errors; compile into a
/// fresh repository (or a clone) to have all or nothing.
pub fn compile(
    repository: &mut Repository,
    namespace: &str,
    sources: &[SourceFile],
    resolver: &mut dyn IncludeResolver,
) -> Result<Vec<Compiled>, MofErrors> {
    let mut compiler = Compiler::new(repository, resolver, namespace);
    for source in sources {
        compiler.compile_file(source);
    }
    compiler.finish()
}

/// Checks the syntax of one file without a repository: no include is followed and no name or
/// type is checked against declarations. Returns the errors found (empty when none).
pub fn check_syntax(source: &SourceFile) -> Vec<MofError> {
    let text = match std::str::from_utf8(&source.text) {
        Ok(text) => text,
        Err(error) => {
            return vec![locate(
                source,
                Fault::new(error.valid_up_to(), MofErrorKind::InvalidUtf8),
            )]
        }
    };
    let mut parser = parser::Parser::new(text);
    let mut errors = Vec::new();
    while let Some(production) = parser.next_production() {
        if let Err(fault) = production {
            parser.recover();
            if errors.len() == ERRORS_MAX {
                errors.push(locate(
                    source,
                    Fault::new(fault.offset, MofErrorKind::TooManyErrors),
                ));
                break;
            }
            errors.push(locate(source, fault));
        }
    }
    errors
}

fn locate(source: &SourceFile, fault: Fault) -> MofError {
    MofError::at(&source.name, &source.text, fault.offset, fault.kind)
}
