//! The per-field tokens that `validate` and `fuzzy` compare through the protocol's grouped PSI
//! cardinality: for every compared field of a record (each field of the native schema, in its
//! order), the field's token multiset — q-grams of a name or an address, the one normalised
//! value of a date of birth or a sex — from [`FieldTokenizer`], which takes them from the very
//! normalisation and tokenisation steps the CLK encoder hashes. No filter is built for them and
//! none crosses the wire: the peer only ever sees them hashed to the group and blinded with a
//! fresh scalar of the session.

use std::path::Path;

use blindlink_encoding::{FieldTokenizer, LinkageSecret, SchemaDocument};
use blindlink_protocol::Mode;

pub use blindlink_party::uses_field_tokens;

/// The tokenizer of `schema` when `mode` compares field tokens, else `None`
/// ([`blindlink_party::field_tokenizer`], naming the schema by `schema_path`).
///
/// # Errors
/// The mode compares field tokens and `schema` is a clkhash schema.
pub fn field_tokenizer(
    mode: Mode,
    schema: &SchemaDocument,
    secret: &LinkageSecret,
    schema_path: &Path,
) -> anyhow::Result<Option<FieldTokenizer>> {
    Ok(blindlink_party::field_tokenizer(
        mode,
        schema,
        secret,
        &schema_path.display().to_string(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use blindlink_encoding::FieldTokenScratch;

    fn example(schema: &str) -> (SchemaDocument, std::path::PathBuf) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/peers")
            .join(schema);
        let text = std::fs::read_to_string(&path).unwrap();
        (SchemaDocument::parse(&text).unwrap(), path)
    }

    fn tokens(tokenizer: &FieldTokenizer, values: &[&str]) -> Vec<blindlink_encoding::FieldTokens> {
        let mut out = Vec::new();
        tokenizer
            .tokens(values, &mut FieldTokenScratch::default(), &mut out)
            .unwrap();
        out
    }

    /// The example schemas tokenise every compared field sensibly: bigrams of the names and
    /// the address, one token for the date of birth and the sex in `schema.toml` (validate)
    /// and one per digit position of the date in `clk-schema.toml` (fuzzy), and the notations
    /// a registry and an insurer write differently give the same tokens.
    #[test]
    fn example_schemas_tokenise_each_compared_field() {
        let secret = LinkageSecret::from_bytes(b"example".to_vec()).unwrap();
        let registry = [
            "ヤマダ タロウ",
            "山田 太郎",
            "1985-04-03",
            "M",
            "東京都 千代田区 丸の内1丁目2番3号",
        ];
        let insurer = [
            "ﾔﾏﾀﾞ ﾀﾛｳ",
            "山田　太郎",
            "S60.4.3",
            "男",
            "東京都千代田区丸の内1-2-3",
        ];
        for (schema, mode, counts) in [
            ("schema.toml", Mode::Validate, [7, 5, 1, 1, 13]),
            ("clk-schema.toml", Mode::Fuzzy, [7, 5, 10, 1, 13]),
        ] {
            let (doc, path) = example(schema);
            let tokenizer = field_tokenizer(mode, &doc, &secret, &path)
                .unwrap()
                .unwrap();
            assert_eq!(
                tokenizer.field_names(),
                ["name_kana", "name_kanji", "date_of_birth", "sex", "address"]
            );
            let a = tokens(&tokenizer, &registry);
            assert_eq!(a, tokens(&tokenizer, &insurer), "{schema}");
            assert_eq!(
                a.iter().map(Vec::len).collect::<Vec<_>>(),
                counts,
                "{schema}"
            );
            let missing = tokens(&tokenizer, &["", "", "", "", ""]);
            assert!(missing.iter().all(Vec::is_empty), "{schema}");
        }
    }

    #[test]
    fn only_validate_and_fuzzy_take_tokens_and_only_from_a_native_schema() {
        let secret = LinkageSecret::from_bytes(b"example".to_vec()).unwrap();
        let (doc, path) = example("schema.toml");
        for mode in [Mode::Cardinality, Mode::Exact, Mode::ClkExchange] {
            assert!(
                field_tokenizer(mode, &doc, &secret, &path)
                    .unwrap()
                    .is_none()
            );
        }
        let febrl = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/febrl4/schema-5field.json");
        let clkhash = SchemaDocument::parse(&std::fs::read_to_string(&febrl).unwrap()).unwrap();
        assert!(
            field_tokenizer(Mode::ClkExchange, &clkhash, &secret, &febrl)
                .unwrap()
                .is_none()
        );
        let err = field_tokenizer(Mode::Fuzzy, &clkhash, &secret, Path::new("s.json")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "schema s.json: mode fuzzy compares the fields' tokens, which need a native schema \
             (this is a clkhash schema; clk-exchange can use it)"
        );
    }
}
