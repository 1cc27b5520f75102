//! Hostile schemas and values never panic: they parse or fail with an error.
// Test code throughout (helpers and proptest bodies included, which clippy.toml's
// allow-unwrap-in-tests does not see as tests): a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use blindlink_encoding::{ClkEncoder, EncoderScratch, LinkageSecret, SchemaDocument};
use proptest::prelude::*;

fn schema_text(name: &str) -> String {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Truncating or corrupting a valid schema at any byte gives a schema or an error.
    #[test]
    fn corrupted_schemas_do_not_panic(cut in 0usize..4000, byte in any::<u8>(), which in 0..3usize) {
        let name = ["examples/schema.toml", "examples/clkhash-schema.json", "tests/data/clkhash/numeric_formats.schema.json"][which];
        let mut text = schema_text(name).into_bytes();
        let cut = cut % text.len();
        text[cut] = byte;
        if let Ok(text) = String::from_utf8(text.clone()) {
            let _ = SchemaDocument::parse(&text);
        }
        let _ = SchemaDocument::parse(&String::from_utf8_lossy(&text[..cut]));
    }

    /// Arbitrary values through every clkhash format and comparison encode or are rejected.
    #[test]
    fn arbitrary_values_do_not_panic(values in proptest::collection::vec(".{0,12}", 8)) {
        let doc = SchemaDocument::parse(&schema_text("tests/data/clkhash/numeric_formats.schema.json")).unwrap();
        let encoder = ClkEncoder::new(&doc, &LinkageSecret::from_bytes(b"k".to_vec()).unwrap()).unwrap();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let mut out = vec![0; encoder.bytes_per_clk()];
        let _ = encoder.encode(&values, 0, &mut EncoderScratch::default(), &mut out);
        let native = SchemaDocument::parse(&schema_text("examples/schema.toml")).unwrap();
        let encoder = ClkEncoder::new(&native, &LinkageSecret::from_bytes(b"k".to_vec()).unwrap()).unwrap();
        let mut out = vec![0; encoder.bytes_per_clk()];
        let _ = encoder.encode(&values[..6], 0, &mut EncoderScratch::default(), &mut out);
    }
}
