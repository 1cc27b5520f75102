//! The per-field tokens that `validate` and `fuzzy` compare through the protocol's grouped PSI
//! cardinality: for every compared field of a record (each field of the native schema, in its
//! order), the field's token multiset — q-grams of a name or an address, the one normalised
//! value of a date of birth or a sex — from [`FieldTokenizer`], which takes them from the very
//! normalisation and tokenisation steps the CLK encoder hashes. No filter is built for them and
//! none crosses the wire: the peer only ever sees them hashed to the group and blinded with a
//! fresh scalar of the session.

use std::path::Path;

use anyhow::bail;
use blindlink_encoding::{FieldTokenizer, LinkageSecret, Schema, SchemaDocument};
use blindlink_protocol::{FieldScoring, Mode};

/// Whether `mode` compares the records' field tokens.
#[must_use]
pub const fn uses_field_tokens(mode: Mode) -> bool {
    matches!(mode, Mode::Validate | Mode::Fuzzy)
}

/// The tokenizer of `schema` when `mode` compares field tokens, else `None`.
///
/// # Errors
/// The mode compares field tokens and `schema` (read from `schema_path`) is a clkhash schema,
/// which has no native fields to take tokens from.
pub fn field_tokenizer(
    mode: Mode,
    schema: &SchemaDocument,
    secret: &LinkageSecret,
    schema_path: &Path,
) -> anyhow::Result<Option<FieldTokenizer>> {
    if !uses_field_tokens(mode) {
        return Ok(None);
    }
    if matches!(schema.schema, Schema::Clkhash(_)) {
        bail!(
            "schema {}: mode {mode} compares the fields' tokens, which need a native schema \
             (this is a clkhash schema; clk-exchange can use it)",
            schema_path.display()
        );
    }
    Ok(Some(FieldTokenizer::new(schema, secret)?))
}

/// The scoring of every compared field: each field of the schema (`field_names`, the
/// tokenizer's order), with the weight and veto of its `[[linkage.validate_field]]` entry if
/// the config has one, else the built-in default for that name
/// ([`FieldScoring::defaults`]), else weight 1 and no veto.
///
/// # Errors
/// A `[[linkage.validate_field]]` names no field of the schema.
pub fn compared_fields(
    field_names: &[&str],
    configured: &[FieldScoring],
    config_path: &Path,
    schema_path: &Path,
) -> anyhow::Result<Vec<FieldScoring>> {
    if let Some(field) = configured
        .iter()
        .find(|f| !field_names.contains(&f.name.as_str()))
    {
        bail!(
            "{}: linkage.validate_field '{}' is not a field of schema {} (its fields: {})",
            config_path.display(),
            field.name,
            schema_path.display(),
            field_names.join(", ")
        );
    }
    let defaults = FieldScoring::defaults();
    Ok(field_names
        .iter()
        .map(|name| {
            configured
                .iter()
                .chain(&defaults)
                .find(|f| f.name == *name)
                .cloned()
                .unwrap_or_else(|| FieldScoring::weighted(name, 1.0))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use blindlink_encoding::FieldTokenScratch;

    #[test]
    fn compared_fields_take_the_config_then_the_defaults() {
        let configured = [FieldScoring {
            veto_below: Some(0.8),
            ..FieldScoring::weighted("surname", 3.0)
        }];
        let got = compared_fields(
            &["surname", "sex", "postcode"],
            &configured,
            Path::new("p.toml"),
            Path::new("s.toml"),
        )
        .unwrap();
        let sex = FieldScoring::defaults()
            .into_iter()
            .find(|f| f.name == "sex")
            .unwrap();
        assert_eq!(
            got,
            [
                configured[0].clone(),
                sex,
                FieldScoring::weighted("postcode", 1.0)
            ]
        );
        let err = compared_fields(
            &["sex"],
            &configured,
            Path::new("p.toml"),
            Path::new("s.toml"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "p.toml: linkage.validate_field 'surname' is not a field of schema s.toml (its fields: sex)"
        );
    }

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
