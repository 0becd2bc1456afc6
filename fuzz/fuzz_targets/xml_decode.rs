//! Arbitrary bytes into the CIM-XML decoder: whole messages and every standalone fragment
//! entry point. Any outcome but a panic, a hang or runaway memory is fine.
#![no_main]

use cim_schema::xml::{self, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let _ = xml::decode(data, &limits);
    let _ = xml::decode_instance(data, &limits);
    let _ = xml::decode_class(data, &limits);
    let _ = xml::decode_instance_path(data, &limits);
    let _ = xml::decode_object_path(data, &limits);
    let _ = xml::decode_qualifier_declaration(data, &limits);
});
