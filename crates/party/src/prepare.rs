//! A party's config, schema, secret and records → what a session takes: the mode
//! configuration both sides must agree on, the handshake offer (mode, schema descriptor,
//! parameters), the records as [`PartyData`] (shared by all sessions through an [`Arc`]) and
//! the report's notes about the input.
//!
//! The schema descriptor names every match key as `key:<name>` with its normalisation (the
//! steps of each column joined by `,`, columns by `+`; past
//! [`MAX_FIELD_NAME_BYTES`](blindlink_protocol::MAX_FIELD_NAME_BYTES) bytes,
//! `sha256:` and the first 16 bytes of its SHA-256 in hex) and every schema field as `clk`;
//! the parameters are the mode's ([`ModeConfig::parameters`]) plus `schema.sha256`, the
//! schema file's digest, `shard = "I/N"` for a sharded session and (first) `stage = "K/M"`
//! for a stage of a sharded cascade ([`crate::shard`]).

use std::sync::Arc;

use blindlink_encoding::{LinkageSecret, SchemaDocument};
use blindlink_protocol::{
    ModeConfig, Parameters, PartyData, Role, SchemaDescriptor, SessionOffer, derive_blocking_key,
};
use sha2::Digest as _;

use crate::records::{PartyRecords, uses_field_tokens};
use crate::scoring::{compared_fields, field_tokenizer, validate_comparisons};
use crate::{PartyConfig, PartyError};

/// The mode configuration, handshake offer and protocol data of one party.
#[derive(Debug, Clone)]
pub struct PreparedParty {
    /// What both sides must agree on.
    pub mode_config: ModeConfig,
    /// What the handshake commits to.
    pub offer: SessionOffer,
    /// The records as the protocol takes them, shared by every session of this party.
    pub data: Arc<PartyData>,
    /// Lines for the report about the input (rows without a key...) and the warnings.
    pub notes: Vec<String>,
    /// Warnings to print before the run (also in `notes`): the compared fields that got their
    /// token kind's default comparison levels (`validate`).
    pub warnings: Vec<String>,
}

/// The mode configuration of `config` over `schema`: its match keys, validate's comparisons
/// from the schema ([`validate_comparisons`]: declared levels, else the token kind's, and
/// m/u fixed where the schema gives them), fuzzy's field scoring ([`compared_fields`]), the
/// thresholds (validate's on the match probability) and MinHash parameters, the blocking key
/// derived from `secret` (fuzzy); the initiator compares.
///
/// # Errors
/// A `[[linkage.validate_field]]` names no schema field, the schema's comparison levels are
/// invalid, or the mode configuration is invalid (`clk-exchange` without `[linkage]
/// reveal_decodable_encodings = true`, say).
pub fn mode_config(
    config: &PartyConfig,
    schema: &SchemaDocument,
    secret: &[u8],
) -> Result<ModeConfig, PartyError> {
    let shown = config.source.display().to_string();
    let mode = config.mode;
    let first_key = || {
        config
            .match_keys
            .first()
            .map(|k| k.name.clone())
            .ok_or_else(|| {
                PartyError::whole(&shown, format!("mode {mode} needs an [[input.match_key]]"))
            })
    };
    let compared = || {
        compared_fields(
            schema,
            &config.validate_fields,
            &shown,
            &config.schema.display().to_string(),
        )
    };
    let filter_bits = schema.schema.filter_bits();
    let mode_config = match ModeConfig::new(mode, Vec::new(), Vec::new()) {
        ModeConfig::Cardinality(mut c) => {
            c.key = first_key()?;
            ModeConfig::Cardinality(c)
        }
        ModeConfig::Exact(mut c) => {
            c.keys = config.match_keys.iter().map(|k| k.name.clone()).collect();
            // A stage of a sharded cascade runs its own key only (crate::shard).
            if let Some(stage) = config.stage {
                c.keys = config
                    .match_keys
                    .get(stage.round() as usize)
                    .map(|k| vec![k.name.clone()])
                    .unwrap_or_default();
            }
            ModeConfig::Exact(c)
        }
        ModeConfig::Validate(mut c) => {
            c.key = first_key()?;
            // Still checked, so a misspelt entry is an error whatever the mode.
            compared()?;
            let validate = validate_comparisons(schema, &config.schema.display().to_string())?;
            c.comparisons = validate.comparisons;
            c.em = validate.em;
            if let Some(threshold) = config.validate_threshold {
                c.threshold = threshold;
            }
            c.comparing = Role::Initiator;
            ModeConfig::Validate(c)
        }
        ModeConfig::Fuzzy(mut c) => {
            c.filter_bits = filter_bits;
            c.fields = compared()?;
            if let Some(threshold) = config.fuzzy_threshold {
                c.threshold = threshold;
            }
            if let Some(bands) = config.fuzzy_bands {
                c.lsh.bands = bands;
            }
            if let Some(minima) = config.fuzzy_minima_per_band {
                c.lsh.bits_per_band = minima;
            }
            if let Some(blocking) = config.fuzzy_blocking {
                c.blocking = blocking;
            }
            if let Some(share) = config.fuzzy_common_share {
                c.common_share = share;
            }
            if let Some(max_pairs) = config.fuzzy_max_pairs {
                c.max_pairs = max_pairs;
            }
            if let Some(exact_stage) = config.fuzzy_exact_stage {
                c.exact_stage = exact_stage;
            }
            c.blocking_key = Some(derive_blocking_key(secret));
            c.comparing = Role::Initiator;
            ModeConfig::Fuzzy(c)
        }
        ModeConfig::ClkExchange(mut c) => {
            c.filter_bits = filter_bits;
            if let Some(threshold) = config.fuzzy_threshold {
                c.dice_threshold = threshold;
            }
            c.reveal_decodable_encodings = config.reveal_decodable_encodings;
            c.comparing = Role::Initiator;
            ModeConfig::ClkExchange(c)
        }
    };
    mode_config
        .check()
        .map_err(|e| PartyError::whole(&shown, e.to_string()))?;
    Ok(mode_config)
}

/// What the handshake commits to for `config`, `schema` and `mode_config` (see the module
/// docs).
///
/// # Errors
/// A key or field name the handshake cannot carry, or too many of them.
pub fn offer(
    config: &PartyConfig,
    schema: &SchemaDocument,
    mode_config: &ModeConfig,
) -> Result<SessionOffer, PartyError> {
    let shown = config.source.display().to_string();
    let mut descriptor: Vec<(String, String)> = config
        .match_keys
        .iter()
        .map(|k| {
            let kind = k
                .columns
                .iter()
                .map(|c| c.normalise.join(","))
                .collect::<Vec<_>>()
                .join("+");
            (format!("key:{}", k.name), short_kind(&kind))
        })
        .collect();
    descriptor.extend(
        schema
            .schema
            .field_names()
            .into_iter()
            .map(|f| (f.to_owned(), "clk".to_owned())),
    );
    let schema_descriptor = SchemaDescriptor::new(descriptor).map_err(|e| PartyError::Input {
        context: format!("schema {}", config.schema.display()),
        reason: e.to_string(),
    })?;
    let mut parameters: Vec<(String, String)> = mode_config
        .parameters()
        .map_err(|e| PartyError::whole(&shown, e.to_string()))?
        .entries()
        .to_vec();
    parameters.push(("schema.sha256".to_owned(), hex::encode(schema.digest)));
    if let Some(shard) = config.shard {
        parameters.push((crate::shard::SHARD_PARAMETER.to_owned(), shard.to_string()));
        if let Some(key) = &config.shard_key {
            parameters.push(("shard.key".to_owned(), key.clone()));
        }
    }
    if let Some(stage) = config.stage {
        // First: a side on another stage hears that, not only that its key differs.
        parameters.insert(
            0,
            (crate::shard::STAGE_PARAMETER.to_owned(), stage.to_string()),
        );
    }
    Ok(SessionOffer {
        mode: config.mode,
        schema: schema_descriptor,
        parameters: Parameters::new(parameters)
            .map_err(|e| PartyError::whole(&shown, e.to_string()))?,
    })
}

/// Builds the mode configuration, the offer and the protocol data of one party.
///
/// # Errors
/// As [`mode_config`] and [`offer`], and the mode needs CLKs or field tokens that `records`
/// lacks.
pub fn prepare(
    config: &PartyConfig,
    schema: &SchemaDocument,
    secret: &[u8],
    records: &PartyRecords,
) -> Result<PreparedParty, PartyError> {
    let shown = config.source.display().to_string();
    let mode = config.mode;
    let mode_config = mode_config(config, schema, secret)?;
    if mode_config.filter_bits().is_some() && records.clk_bytes == 0 {
        return Err(PartyError::whole(
            &shown,
            format!("mode {mode} needs CLKs but none were encoded"),
        ));
    }
    if uses_field_tokens(mode) && records.fields.len() != records.ids.len() {
        return Err(PartyError::whole(
            &shown,
            format!("mode {mode} compares field tokens but none were read"),
        ));
    }
    let offer = offer(config, schema, &mode_config)?;
    let warnings = warnings(config, schema)?;
    let mut notes = records.notes();
    notes.extend(warnings.iter().cloned());
    // The tokenizer the fields were read with: the same schema and secret.
    let tokenizer = if uses_field_tokens(mode) {
        let secret = LinkageSecret::from_bytes(secret.to_vec())
            .map_err(|e| PartyError::whole(&shown, e.to_string()))?;
        field_tokenizer(mode, schema, &secret, &config.schema.display().to_string())?
    } else {
        None
    };
    let data = records
        .party_data(&mode_config, tokenizer.as_ref())
        .map_err(|e| PartyError::whole(&shown, e))?;
    Ok(PreparedParty {
        data: Arc::new(data),
        notes,
        warnings,
        mode_config,
        offer,
    })
}

/// What the user should hear before the run: in `validate`, the fields that declare no
/// comparison levels (their token kind's apply), and `[[linkage.validate_field]]` weights,
/// which validate does not use.
fn warnings(config: &PartyConfig, schema: &SchemaDocument) -> Result<Vec<String>, PartyError> {
    if config.mode != blindlink_protocol::Mode::Validate {
        return Ok(Vec::new());
    }
    let schema_file = config.schema.display().to_string();
    let mut out: Vec<String> = validate_comparisons(schema, &schema_file)?
        .defaults_warning(&schema_file)
        .into_iter()
        .collect();
    if !config.validate_fields.is_empty() {
        out.push(format!(
            "warning: validate: {} has [[linkage.validate_field]] weights, which only fuzzy uses; \
             validate scores with the comparison levels of schema {schema_file}",
            config.source.display()
        ));
    }
    Ok(out)
}

/// A field type for the handshake descriptor: the normalisation text, or its hash when long.
fn short_kind(kind: &str) -> String {
    if kind.len() <= blindlink_protocol::MAX_FIELD_NAME_BYTES {
        kind.to_owned()
    } else {
        let digest = sha2::Sha256::digest(kind.as_bytes());
        format!("sha256:{}", hex::encode(&digest[..16]))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use blindlink_protocol::Mode;

    use super::*;
    use crate::{LiteralAddresses, MatchKeyColumn, PartyCommand};

    const SCHEMA: &str = "version = 1\n[filter]\nbits = 64\n\
        [[field]]\ncolumn = \"surname\"\nnormalise = [\"nfkc\"]\n\
        tokens = { kind = \"ngram\", n = 2 }\nbits_per_token = 4\n\
        [[field]]\ncolumn = \"dob\"\nnormalise = [\"date\"]\ntokens = { kind = \"exact\" }\n\
        bits_per_token = 4\n";

    fn config(mode: &str, extra: &str) -> PartyConfig {
        let text = format!(
            "name = \"registry\"\nmode = \"{mode}\"\n[server]\nlisten = \"127.0.0.1:7443\"\n\
             allowed_peers = [\"insurer\"]\n[tls]\ninsecure_loopback = true\n[linkage]\n\
             schema = \"s.toml\"\nkey_file = \"k\"\n{extra}\n[input]\ncsv = \"c.csv\"\n\
             id_column = \"id\"\n[[input.match_key]]\nname = \"number\"\n\
             columns = [{{ column = \"n\", normalise = [\"digits-only\"] }}]\n\
             [[input.match_key]]\nname = \"name+dob\"\ncolumns = [{{ column = \"surname\", \
             normalise = [\"nfkc\", \"katakana\", \"halfwidth-kana\", \"long-vowel-fold\", \
             \"strip-whitespace\"] }}, {{ column = \"dob\", normalise = [\"date\"] }}]\n\
             [output]\ndir = \"o\"\n"
        );
        PartyConfig::parse(
            &text,
            Path::new("p/registry.toml"),
            PartyCommand::Serve,
            &LiteralAddresses,
        )
        .unwrap()
    }

    fn records() -> PartyRecords {
        let mut number = MatchKeyColumn::new("number");
        number.push(Ok(b"\x01\x00\x00\x001".to_vec()), 2);
        PartyRecords {
            ids: vec!["r1".to_owned()],
            match_keys: vec![number],
            rows_read: 1,
            fields: {
                let mut fields = blindlink_protocol::FieldTokenColumn::default();
                fields.push(&[vec![b"ab".to_vec()], vec![b"1985-04-03".to_vec()]]);
                fields
            },
            ..PartyRecords::default()
        }
    }

    /// The offer names the keys with their normalisation (hashed when long), the schema's
    /// fields as `clk`, the mode's parameters and the schema's digest.
    #[test]
    fn handshake_offer() {
        let schema = SchemaDocument::parse(SCHEMA).unwrap();
        let config = config("validate", "validate_threshold = 0.8");
        let prepared = prepare(&config, &schema, b"secret", &records()).unwrap();
        let descriptor: Vec<String> = prepared
            .offer
            .schema
            .fields()
            .iter()
            .map(|f| format!("{}={}", f.name, f.kind))
            .collect();
        let long = "nfkc,katakana,halfwidth-kana,long-vowel-fold,strip-whitespace+date";
        let digest = sha2::Sha256::digest(long.as_bytes());
        assert_eq!(
            descriptor,
            [
                "key:number=digits-only".to_owned(),
                format!("key:name+dob=sha256:{}", hex::encode(&digest[..16])),
                "surname=clk".to_owned(),
                "dob=clk".to_owned(),
            ]
        );
        let parameters = prepared.offer.parameters.entries();
        assert_eq!(parameters[0], ("mode.keys".to_owned(), "number".to_owned()));
        assert_eq!(
            parameters.last().unwrap(),
            &("schema.sha256".to_owned(), hex::encode(schema.digest))
        );
        assert!(
            parameters.contains(&("validate.threshold".to_owned(), "0.8".to_owned())),
            "{parameters:?}"
        );
        // No levels in the schema: the token kind's (dob's one exact token vetoes), warned.
        let ModeConfig::Validate(validate) = &prepared.mode_config else {
            panic!("{:?}", prepared.mode_config)
        };
        let levels = |f: usize| -> Vec<(&str, bool)> {
            validate.comparisons.fields[f]
                .levels
                .iter()
                .map(|l| (l.label.as_str(), l.veto))
                .collect()
        };
        assert_eq!(
            levels(0),
            [
                ("exact", false),
                ("dice>=0.9", false),
                ("dice>=0.7", false),
                ("different", false)
            ]
        );
        assert_eq!(levels(1), [("exact", false), ("different", true)]);
        assert_eq!(
            prepared.warnings,
            [
                "warning: validate: schema p/s.toml declares no comparison levels for surname, dob; \
              they get their token kind's defaults (surname: exact / dice>=0.9 / dice>=0.7 / \
              different; dob: exact / different (veto))"
            ]
        );
        assert_eq!(prepared.notes.last(), prepared.warnings.last());
        assert_eq!(
            prepared.data.record(0).unwrap().keys,
            [Some(b"\x01\x00\x00\x001".to_vec())]
        );
        assert_eq!(prepared.data.fields(0).len(), 2);
        assert_eq!(prepared.offer.mode, Mode::Validate);
    }

    #[test]
    fn modes_that_lack_their_inputs_are_refused() {
        let schema = SchemaDocument::parse(SCHEMA).unwrap();
        let check = |mode: &str, extra: &str, expected: &str| {
            let got = prepare(&config(mode, extra), &schema, b"secret", &records())
                .map(|_| "ok".to_owned())
                .unwrap_or_else(|e| e.to_string());
            assert_eq!(got, expected, "{mode}");
        };
        check("exact", "", "ok");
        check(
            "fuzzy",
            "",
            "p/registry.toml: mode fuzzy needs CLKs but none were encoded",
        );
        check(
            "validate",
            "[[linkage.validate_field]]\nname = \"address\"\nweight = 1.0",
            "p/registry.toml: linkage.validate_field 'address' is not a field of schema \
             p/s.toml (its fields: surname, dob)",
        );
    }
}
