//! `SchemaDocument::parse` on arbitrary text (native TOML, or clkhash JSON when it starts with
//! `{`): never panics. A schema that parses builds an encoder (under a fixed secret) and
//! encodes a few records without panicking: a schema that was accepted must be usable or
//! rejected with an error, never crash the encoder.
#![no_main]

use blindlink_encoding::format::MAX_FILTER_BITS;
use blindlink_encoding::{ClkEncoder, EncoderScratch, LinkageSecret, SchemaDocument};
use libfuzzer_sys::fuzz_target;

/// Values that reach the common token kinds and normalisation steps (text, dates, numbers,
/// sex codes, empty for missing values).
const VALUES: [&str; 5] = ["Yamada 太郎", "1985-04-03", "42", "", "F"];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(document) = SchemaDocument::parse(text) else {
        return;
    };
    let schema = &document.schema;
    let columns = schema.columns();
    let _ = schema.field_names();
    let _ = schema.warnings();
    let bound = schema
        .bind_header(&columns)
        .expect("a schema binds a header made of its own columns");
    assert!(bound.iter().all(|&position| position < columns.len()));
    let filter_bits = schema.filter_bits();
    if filter_bits == 0 || filter_bits > MAX_FILTER_BITS {
        // Schemas bound their own sizes; encoding a huge filter would only slow the fuzzer.
        return;
    }
    let secret = LinkageSecret::from_bytes(b"fuzz secret".to_vec()).expect("non-empty secret");
    let Ok(encoder) = ClkEncoder::new(&document, &secret) else {
        return;
    };
    assert_eq!(encoder.filter_bits(), filter_bits);
    let mut scratch = EncoderScratch::default();
    let mut out = vec![0u8; encoder.bytes_per_clk()];
    for (index, value) in VALUES.iter().enumerate() {
        let values = vec![*value; columns.len()];
        let _ = encoder.encode(&values, index as u64, &mut scratch, &mut out);
    }
});
