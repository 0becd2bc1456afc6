//! Arbitrary bytes into the CIM-XML decoders: whole messages (operation and export requests
//! and responses), the export responses a listener sends back, and every standalone fragment
//! entry point. Any outcome but a panic, a hang or runaway memory is fine; and a message that
//! decodes and encodes decodes again to the same message.
#![no_main]

use cim_schema::xml::{self, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(message) = xml::decode(data, &limits) {
        if let Ok(encoded) = xml::encode(&message) {
            // Wider limits: escaping may lengthen a value, and an embedded object may be
            // written deeper than it was read; only the content must survive.
            let wide = Limits {
                input_bytes_max: usize::MAX,
                depth_max: usize::MAX,
                elements_max: usize::MAX,
                attribute_bytes_max: usize::MAX,
                text_bytes_max: usize::MAX,
                embedded_depth_max: usize::MAX,
            };
            let again = xml::decode(&encoded, &wide);
            // Debug, not PartialEq: a NaN value equals itself here.
            assert_eq!(
                format!("{:?}", again.as_ref().map_err(|e| e.to_string())),
                format!("{:?}", Ok::<_, String>(&message)),
                "encoded as {}",
                String::from_utf8_lossy(&encoded)
            );
        }
    }
    let _ = xml::decode_export_responses(data, &limits);
    let _ = xml::decode_instance(data, &limits);
    let _ = xml::decode_class(data, &limits);
    let _ = xml::decode_instance_path(data, &limits);
    let _ = xml::decode_object_path(data, &limits);
    let _ = xml::decode_qualifier_declaration(data, &limits);
});
