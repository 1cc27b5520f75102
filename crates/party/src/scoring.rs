//! Which fields `validate` and `fuzzy` compare, and how each counts: the per-field tokens come
//! from the native schema through [`FieldTokenizer`] (the very normalisation and tokenisation
//! the CLK encoder hashes).
//!
//! - `validate` scores pairs with Fellegi–Sunter ([`validate_comparisons`]): each field's
//!   comparison levels are declared in the schema (`levels = [...]`), and a field that
//!   declares none gets its token kind's defaults (an exact-token field such as a date or a
//!   sex code: `exact` / `different`, which vetoes), named in a warning.
//! - `fuzzy` weighs per-field Dice ([`compared_fields`]): the party config's
//!   `[[linkage.validate_field]]` entries, and a field the config does not list gets weight 1,
//!   with a veto below 1 for an exact-token field.
//!
//! The library knows no field names: the example schema's levels live in
//! `examples/peers/schema.toml`, its fuzzy weights in `examples/peers/*.toml`.

use blindlink_encoding::native::{FieldTokenKind, NativeField};
use blindlink_encoding::{FieldTokenizer, LinkageSecret, Schema, SchemaDocument};
use blindlink_protocol::fellegi_sunter::{
    ComparisonLevel, Comparisons, EmSettings, FieldComparison, FixedProbabilities, TokenKind,
};
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

/// `validate`'s Fellegi–Sunter set-up from the schema: one comparison per field, m and u
/// given in the schema, and the fields that got their token kind's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidateComparisons {
    /// One per schema field, in its order.
    pub comparisons: Comparisons,
    /// EM settings with the schema's fixed m and u (EM for the rest).
    pub em: EmSettings,
    /// The fields that declare no levels and got their token kind's defaults, in schema order.
    pub defaulted: Vec<String>,
}

impl ValidateComparisons {
    /// The warning naming the fields that got defaults, or `None` when every field declares
    /// its levels: `warning: validate: schema s.toml declares no comparison levels for
    /// surname, dob; they get their token kind's defaults (surname: exact / dice>=0.9 / ...;
    /// dob: exact / different (veto))`.
    #[must_use]
    pub fn defaults_warning(&self, schema_file: &str) -> Option<String> {
        if self.defaulted.is_empty() {
            return None;
        }
        let levels: Vec<String> = self
            .comparisons
            .fields
            .iter()
            .filter(|f| self.defaulted.contains(&f.field))
            .map(|f| {
                let levels: Vec<String> = f
                    .levels
                    .iter()
                    .map(|l| {
                        if l.veto {
                            format!("{} (veto)", l.label)
                        } else {
                            l.label.clone()
                        }
                    })
                    .collect();
                format!("{}: {}", f.field, levels.join(" / "))
            })
            .collect();
        Some(format!(
            "warning: validate: schema {schema_file} declares no comparison levels for {}; they \
             get their token kind's defaults ({})",
            self.defaulted.join(", "),
            levels.join("; ")
        ))
    }
}

fn token_kind(kind: FieldTokenKind) -> TokenKind {
    match kind {
        FieldTokenKind::Exact => TokenKind::Exact,
        FieldTokenKind::PositionalNgram => TokenKind::PositionalQGram,
        FieldTokenKind::Ngram => TokenKind::QGram,
        FieldTokenKind::Numeric => TokenKind::Numeric,
    }
}

/// One field's comparison and fixed m/u, from its declared levels or its token kind.
fn field_comparison(
    field: &NativeField,
    schema_file: &str,
) -> Result<(FieldComparison, Option<FixedProbabilities>), PartyError> {
    let Some(declared) = &field.levels else {
        let kind = token_kind(field.token_kind());
        return Ok((FieldComparison::for_token_kind(&field.column, kind), None));
    };
    let levels = declared
        .iter()
        .map(|l| ComparisonLevel {
            label: l.label.clone(),
            min_dice: l.min_dice,
            veto: l.veto,
        })
        .collect();
    let comparison =
        FieldComparison::new(&field.column, levels).map_err(|e| PartyError::Input {
            context: format!("schema {schema_file}"),
            reason: e.to_string(),
        })?;
    let given = |p: fn(&blindlink_encoding::native::DeclaredLevel) -> Option<f64>| {
        declared.iter().map(p).collect::<Option<Vec<f64>>>()
    };
    let (m, u) = (given(|l| l.m), given(|l| l.u));
    let fixed = (m.is_some() || u.is_some()).then(|| FixedProbabilities {
        field: field.column.clone(),
        m,
        u,
    });
    Ok((comparison, fixed))
}

/// `validate`'s comparisons of every field of `schema` (shown as `schema_file`), in its order:
/// the declared levels (`levels = [...]`, with m and u fixed where the schema gives them), else
/// the defaults of the field's token kind
/// ([`FieldComparison::for_token_kind`]), named in [`ValidateComparisons::defaulted`]. No field
/// name is special.
///
/// # Errors
/// The declared levels of a field are not a valid comparison (bounds not strictly decreasing,
/// the last not 0, a veto above a level without one, ...), or `schema` is a clkhash schema
/// (which has no token kinds; validate needs a native schema).
pub fn validate_comparisons(
    schema: &SchemaDocument,
    schema_file: &str,
) -> Result<ValidateComparisons, PartyError> {
    let Schema::Native(native) = &schema.schema else {
        return Err(PartyError::Input {
            context: format!("schema {schema_file}"),
            reason: "validate compares the fields' tokens, which need a native schema (this is \
                     a clkhash schema)"
                .into(),
        });
    };
    let mut fields = Vec::with_capacity(native.fields.len());
    let mut fixed = Vec::new();
    let mut defaulted = Vec::new();
    for field in &native.fields {
        if field.levels.is_none() {
            defaulted.push(field.column.clone());
        }
        let (comparison, given) = field_comparison(field, schema_file)?;
        fields.push(comparison);
        fixed.extend(given);
    }
    let comparisons = Comparisons::new(fields).map_err(|e| PartyError::Input {
        context: format!("schema {schema_file}"),
        reason: e.to_string(),
    })?;
    Ok(ValidateComparisons {
        comparisons,
        em: EmSettings {
            fixed,
            ..EmSettings::default()
        },
        defaulted,
    })
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

#[cfg(test)]
mod validate_tests {
    use super::*;

    /// Each field's levels (`name:label@min_dice[!],...`), the defaulted fields, the warning.
    type Expected<'a> = (&'a [&'a str], &'a [&'a str], Option<&'a str>);

    fn check(schema_fields: &str, expected: Result<Expected<'_>, &str>) {
        let text = format!("version = 1\n[filter]\nbits = 64\n{schema_fields}");
        let schema = SchemaDocument::parse(&text).unwrap();
        let got = validate_comparisons(&schema, "s.toml");
        match (got, expected) {
            (Ok(got), Ok((levels, defaulted, warning))) => {
                let described: Vec<String> = got
                    .comparisons
                    .fields
                    .iter()
                    .map(|f| {
                        let l: Vec<String> = f
                            .levels
                            .iter()
                            .map(|l| {
                                format!(
                                    "{}@{}{}",
                                    l.label,
                                    l.min_dice,
                                    if l.veto { "!" } else { "" }
                                )
                            })
                            .collect();
                        format!("{}:{}", f.field, l.join(","))
                    })
                    .collect();
                assert_eq!(described, levels);
                assert_eq!(got.defaulted, defaulted);
                assert_eq!(got.defaults_warning("s.toml").as_deref(), warning);
            }
            (Err(e), Err(expected)) => assert_eq!(e.to_string(), expected),
            (got, expected) => panic!("{got:?} against {expected:?}"),
        }
    }

    const DOB: &str = "[[field]]\ncolumn = \"dob\"\nnormalise = [\"date\"]\ntokens = { kind = \"exact\" }\nbits_per_token = 4\n";
    const GIVEN: &str =
        "[[field]]\ncolumn = \"given\"\ntokens = { kind = \"ngram\", n = 2 }\nbits_per_token = 4\n";

    #[test]
    fn declared_levels_else_the_token_kind_with_a_warning() {
        check(
            &format!("{DOB}{GIVEN}"),
            Ok((
                &[
                    "dob:exact@1,different@0!",
                    "given:exact@1,dice>=0.9@0.9,dice>=0.7@0.7,different@0",
                ],
                &["dob", "given"],
                Some(
                    "warning: validate: schema s.toml declares no comparison levels for dob, \
                     given; they get their token kind's defaults (dob: exact / different (veto); \
                     given: exact / dice>=0.9 / dice>=0.7 / different)",
                ),
            )),
        );
        let declared = format!(
            "{GIVEN}levels = [{{ label = \"same\", min_dice = 1.0 }}, \
             {{ label = \"other\", min_dice = 0.0, veto = true }}]\n{DOB}"
        );
        check(
            &declared,
            Ok((
                &["given:same@1,other@0!", "dob:exact@1,different@0!"],
                &["dob"],
                Some(
                    "warning: validate: schema s.toml declares no comparison levels for dob; \
                     they get their token kind's defaults (dob: exact / different (veto))",
                ),
            )),
        );
        let all_declared = format!(
            "{GIVEN}levels = [{{ label = \"same\", min_dice = 1.0 }}, \
             {{ label = \"other\", min_dice = 0.0 }}]\n"
        );
        check(&all_declared, Ok((&["given:same@1,other@0"], &[], None)));
        let rising = format!(
            "{GIVEN}levels = [{{ label = \"a\", min_dice = 0.5 }}, {{ label = \"b\", \
             min_dice = 0.7 }}, {{ label = \"c\", min_dice = 0.0 }}]\n"
        );
        check(
            &rising,
            Err(
                "schema s.toml: comparison of field 'given': level 'b' has min_dice 0.7, \
                 expected below the previous level's 0.5",
            ),
        );
    }

    #[test]
    fn fixed_m_and_u_come_from_the_schema() {
        let text = format!(
            "version = 1\n[filter]\nbits = 64\n{GIVEN}levels = [{{ label = \"same\", \
             min_dice = 1.0, u = 0.2 }}, {{ label = \"other\", min_dice = 0.0, u = 0.8 }}]\n"
        );
        let schema = SchemaDocument::parse(&text).unwrap();
        let got = validate_comparisons(&schema, "s.toml").unwrap();
        assert_eq!(
            got.em.fixed,
            [FixedProbabilities {
                field: "given".into(),
                m: None,
                u: Some(vec![0.2, 0.8]),
            }]
        );
    }
}
