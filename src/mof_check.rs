//! `cimguard mof check`: compiles MOF files into a fresh repository, validates it, and prints
//! what they define, or the errors (located for the compiler's).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cim_schema::mof::{self, Compiled, IncludeResolver, SourceFile};
use cim_schema::repository::Repository;

/// The namespace `mof check` compiles into until a `#pragma namespace` switches.
pub const DEFAULT_NAMESPACE: &str = "root/cimv2";

/// Reads includes from the including file's directory first, then from the `-I` directories in
/// order.
pub struct DirectoryResolver {
    /// The `-I` directories.
    pub include_dirs: Vec<PathBuf>,
}

impl IncludeResolver for DirectoryResolver {
    fn resolve(&mut self, name: &str, including_file: &str) -> Result<SourceFile, String> {
        let own_dir = Path::new(including_file)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let candidates = std::iter::once(own_dir).chain(self.include_dirs.iter().cloned());
        for dir in candidates {
            let path = dir.join(name);
            if path.is_file() {
                return read(&path);
            }
        }
        Err("not found next to the including file nor in any -I directory".to_owned())
    }
}

fn read(path: &Path) -> Result<SourceFile, String> {
    let text = fs::read(path).map_err(|e| e.to_string())?;
    Ok(SourceFile::new(path.display().to_string(), text))
}

/// Runs the command: prints one line per compiled element and a summary on stdout, or the errors
/// on stderr (exit status 1): those of the compiler, else those [`Repository::validate`] finds.
pub fn run(include_dirs: Vec<PathBuf>, files: &[PathBuf]) -> ExitCode {
    let mut sources = Vec::with_capacity(files.len());
    for file in files {
        match read(file) {
            Ok(source) => sources.push(source),
            Err(reason) => {
                eprintln!("{}: error: cannot read: {reason}", file.display());
                return ExitCode::FAILURE;
            }
        }
    }
    let mut repository = Repository::new();
    let mut resolver = DirectoryResolver { include_dirs };
    match mof::compile(&mut repository, DEFAULT_NAMESPACE, &sources, &mut resolver) {
        Ok(compiled) => {
            let problems = validate(&repository);
            if !problems.is_empty() {
                for problem in &problems {
                    eprintln!("error: {problem}");
                }
                eprintln!("{} error(s)", problems.len());
                return ExitCode::FAILURE;
            }
            let mut out = std::io::stdout().lock();
            // A closed stdout (`| head`) is not an error of the MOF.
            let _ = print_compiled(&mut out, &compiled);
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in &errors.0 {
                eprintln!(
                    "{}:{}:{}: error: {}",
                    error.file, error.line, error.column, error.kind
                );
            }
            eprintln!("{} error(s)", errors.0.len());
            ExitCode::FAILURE
        }
    }
}

/// What [`Repository::validate`] finds once everything is compiled (the classes that method
/// parameters and `EmbeddedInstance` qualifiers name, which an include order may declare
/// later), in every namespace the files wrote into, as `namespace: problem` lines.
fn validate(repository: &Repository) -> Vec<String> {
    let mut problems = Vec::new();
    for namespace in repository.namespace_names() {
        match repository.validate(namespace.as_str()) {
            Ok(found) => problems.extend(found.iter().map(|p| format!("{namespace}: {p}"))),
            // The namespace was just listed; report rather than assume.
            Err(error) => problems.push(format!("{namespace}: {error}")),
        }
    }
    problems
}

fn print_compiled(out: &mut impl Write, compiled: &[Compiled]) -> std::io::Result<()> {
    let (mut qualifiers, mut classes, mut instances) = (0, 0, 0);
    for item in compiled {
        match item {
            Compiled::Qualifier { .. } => qualifiers += 1,
            Compiled::Class { .. } => classes += 1,
            Compiled::Instance { .. } => instances += 1,
        }
        writeln!(out, "{item}")?;
    }
    writeln!(
        out,
        "compiled {qualifiers} qualifier declarations, {classes} classes, {instances} instances"
    )
}
