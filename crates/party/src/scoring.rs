//! Which fields `validate` and `fuzzy` compare, and how each counts: the per-field tokens come
//! from the native schema through [`FieldTokenizer`] (the very normalisation and tokenisation
//! the CLK encoder hashes); the scoring of each field comes from the party config's
//! `[[linkage.validate_field]]` entries, and a field the config does not list gets a rule
//! from its token kind: weight 1, and a field whose one token is its whole value (`tokens = {
//! kind = "exact" }`: a date of birth, a sex) is a veto field that must agree (veto below 1),
//! since two such values agree completely or not at all. The library knows no field names:
//! the example schema's weights live in `examples/peers/*.toml`.

use blindlink_encoding::{FieldTokenizer, LinkageSecret, Schema, SchemaDocument};
use blindlink_protocol::{FieldScoring, Mode};

use crate::PartyError;
use crate::records::uses_field_tokens;

/// The tokenizer of `schema` (shown as `schema_file`) when `mode` compares field tokens, else
/// `None`.
///
/// # Errors
/// The mode compares field tokens and `schema` is a clkhash schema, which has no native fields
/// to take tokens from; or the tokenizer cannot be built.
pub fn field_tokenizer(
    mode: Mode,
    schema: &SchemaDocument,
    secret: &LinkageSecret,
    schema_file: &str,
) -> Result<Option<FieldTokenizer>, PartyError> {
    if !uses_field_tokens(mode) {
        return Ok(None);
    }
    let fail = |reason: String| PartyError::Input {
        context: format!("schema {schema_file}"),
        reason,
    };
    if matches!(schema.schema, Schema::Clkhash(_)) {
        return Err(fail(format!(
            "mode {mode} compares the fields' tokens, which need a native schema (this is a \
             clkhash schema; clk-exchange can use it)"
        )));
    }
    FieldTokenizer::new(schema, secret)
        .map(Some)
        .map_err(|e| fail(e.to_string()))
}

/// The scoring of a field the config does not list: weight 1, and a veto below 1 for a field
/// whose one token is its whole normalised value.
#[must_use]
pub fn default_scoring(name: &str, exact_token: bool) -> FieldScoring {
    FieldScoring {
        veto_below: exact_token.then_some(1.0),
        ..FieldScoring::weighted(name, 1.0)
    }
}

/// The scoring of every field of `schema`, in its order: the `configured` entry
/// (`[[linkage.validate_field]]`) for the field if there is one, else [`default_scoring`].
///
/// # Errors
/// A configured entry names no field of the schema (`config_file: linkage.validate_field
/// '...' is not a field of schema ...`).
pub fn compared_fields(
    schema: &SchemaDocument,
    configured: &[FieldScoring],
    config_file: &str,
    schema_file: &str,
) -> Result<Vec<FieldScoring>, PartyError> {
    let fields: Vec<(&str, bool)> = match &schema.schema {
        Schema::Native(native) => native
            .fields
            .iter()
            .map(|f| (f.column.as_str(), f.has_exact_token()))
            .collect(),
        Schema::Clkhash(_) => schema
            .schema
            .field_names()
            .into_iter()
            .map(|name| (name, false))
            .collect(),
    };
    if let Some(field) = configured
        .iter()
        .find(|c| !fields.iter().any(|(name, _)| *name == c.name))
    {
        return Err(PartyError::whole(
            config_file,
            format!(
                "linkage.validate_field '{}' is not a field of schema {schema_file} (its \
                 fields: {})",
                field.name,
                fields
                    .iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(fields
        .iter()
        .map(|&(name, exact)| {
            configured
                .iter()
                .find(|c| c.name == name)
                .cloned()
                .unwrap_or_else(|| default_scoring(name, exact))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "version = 1\n[filter]\nbits = 64\n\
        [[field]]\ncolumn = \"surname\"\nnormalise = [\"nfkc\"]\n\
        tokens = { kind = \"ngram\", n = 2 }\nbits_per_token = 4\n\
        [[field]]\ncolumn = \"sex\"\nnormalise = [\"sex\"]\ntokens = { kind = \"exact\" }\n\
        bits_per_token = 4\n\
        [[field]]\ncolumn = \"postcode\"\ntokens = { kind = \"ngram\", n = 1 }\n\
        bits_per_token = 4\n";

    #[test]
    fn configured_fields_then_the_token_kind_rule() {
        let schema = SchemaDocument::parse(SCHEMA).unwrap();
        let configured = [FieldScoring {
            veto_below: Some(0.8),
            ..FieldScoring::weighted("surname", 3.0)
        }];
        let got = compared_fields(&schema, &configured, "p.toml", "s.toml").unwrap();
        assert_eq!(
            got,
            [
                configured[0].clone(),
                FieldScoring {
                    veto_below: Some(1.0),
                    ..FieldScoring::weighted("sex", 1.0)
                },
                FieldScoring::weighted("postcode", 1.0)
            ]
        );
        let unknown = [FieldScoring::weighted("name_kana", 2.0)];
        let err = compared_fields(&schema, &unknown, "p.toml", "s.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "p.toml: linkage.validate_field 'name_kana' is not a field of schema s.toml (its \
             fields: surname, sex, postcode)"
        );
    }

    #[test]
    fn only_validate_and_fuzzy_take_tokens() {
        let schema = SchemaDocument::parse(SCHEMA).unwrap();
        let secret = LinkageSecret::from_bytes(b"example".to_vec()).unwrap();
        for (mode, takes) in [
            (Mode::Cardinality, false),
            (Mode::Exact, false),
            (Mode::Validate, true),
            (Mode::Fuzzy, true),
            (Mode::ClkExchange, false),
        ] {
            let tokenizer = field_tokenizer(mode, &schema, &secret, "s.toml").unwrap();
            assert_eq!(tokenizer.is_some(), takes, "{mode}");
        }
    }
}
