//! Arbitrary bytes into the MOF compiler, as a main file that may include itself. Any outcome
//! but a panic, a hang or runaway memory is fine.
#![no_main]

use cim_schema::mof::{self, MemoryResolver, SourceFile};
use cim_schema::repository::Repository;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut repository = Repository::new();
    let mut resolver = MemoryResolver::new();
    // The input can `#pragma include("fuzz.mof")` itself: include cycles must be caught too.
    resolver.insert("fuzz.mof", data.to_vec());
    let source = SourceFile::new("fuzz.mof", data.to_vec());
    let _ = mof::compile(&mut repository, "root/fuzz", &[source], &mut resolver);
});
