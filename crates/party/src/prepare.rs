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
//! schema file's digest.

use std::sync::Arc;

use blindlink_encoding::SchemaDocument;
use blindlink_protocol::{
    ModeConfig, Parameters, PartyData, Role, SchemaDescriptor, SessionOffer, derive_blocking_key,
};
use sha2::Digest as _;

use crate::records::{PartyRecords, uses_field_tokens};
use crate::scoring::compared_fields;
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
    /// Lines for the report about the input (rows without a key...).
    pub notes: Vec<String>,
}

/// The mode configuration of `config` over `schema`: its match keys, the compared fields'
/// scoring ([`compared_fields`]), its thresholds and MinHash parameters, the blocking key
/// derived from `secret` (fuzzy); the initiator compares.
///
/// # Errors
/// A `[[linkage.validate_field]]` names no schema field, or the mode configuration is invalid
/// (`clk-exchange` without `[linkage] reveal_decodable_encodings = true`, say).
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
    let mode_config = match ModeConfig::new(mode) {
        ModeConfig::Cardinality(mut c) => {
            c.key = first_key()?;
            ModeConfig::Cardinality(c)
        }
        ModeConfig::Exact(mut c) => {
            c.keys = config.match_keys.iter().map(|k| k.name.clone()).collect();
            ModeConfig::Exact(c)
        }
        ModeConfig::Validate(mut c) => {
            c.key = first_key()?;
            c.fields = compared()?;
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
    Ok(PreparedParty {
        data: Arc::new(records.party_data(&mode_config)),
        notes: records.notes(&config.input_csv.display().to_string()),
        mode_config,
        offer,
    })
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
