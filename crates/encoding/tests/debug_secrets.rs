//! Printing an encoder with `{:?}` (a log line, an error context) shows no key material.

use blindlink_encoding::{ClkEncoder, LinkageSecret, SchemaDocument};

/// Key bytes as `Debug` would print them: a `[1, 2, ...]` list of the secret's first bytes.
fn looks_like(bytes: &[u8]) -> String {
    format!("{:?}", &bytes[..8])
        .trim_end_matches(']')
        .to_owned()
}

#[test]
fn debug_output_of_encoders_holds_no_secret() {
    let secret = b"correct horse battery staple, thirty-two bytes".to_vec();
    for schema in ["examples/schema.toml", "examples/clkhash-schema.json"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(schema);
        let document = SchemaDocument::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
        let encoder = ClkEncoder::new(
            &document,
            &LinkageSecret::from_bytes(secret.clone()).unwrap(),
        )
        .unwrap();
        let printed = format!("{encoder:?}");
        assert!(!printed.contains("correct horse"), "{schema}: {printed}");
        assert!(!printed.contains(&looks_like(&secret)), "{schema}");
        // The encoder prints its kind, field count, filter length and the (public) schema digest;
        // derived keys would add a byte list per field.
        assert!(printed.len() < 400, "{schema}: {printed}");
    }
}
