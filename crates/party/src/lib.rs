//! One party of a blindlink linkage, as values: its config (the party TOML, parsed from text
//! with the file and key, or line, of every error), the match-key byte format, the binding of
//! its input's columns (a CSV file or a PostgreSQL query, [`InputSource`]), its records, built
//! row by row from any source by [`RecordsBuilder`], and their conversion to the protocol's
//! `PartyData`, the mode configuration and handshake offer it brings to a session
//! ([`prepare()`]), and what it writes afterwards (the rows of `links.csv`, the ledger's JSON, the text of `report.txt`).
//!
//! It is the layer a front end builds on: the `blindlink` CLI reads the files, runs the
//! encoders over the rows, drives the network and writes the outputs; a second front end (a
//! Python package, a service wrapper) gets byte-identical match keys, handshake offers and
//! outputs by calling the same functions.
//!
//! The crate is sans-IO: it opens no file and no socket (a config names paths; the caller
//! reads them), and resolving a host name is left to a [`ConfigHost`] the caller provides.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod binding;
pub mod builder;
pub mod config;
mod error;
pub mod keys;
pub mod prepare;
pub mod records;
pub mod report;
pub mod scoring;
pub mod shard;
pub mod source;

pub use binding::{ColumnBinding, InputColumns};
pub use builder::{
    BATCH_ROWS, InputOptions, RecordSource, RecordsBuilder, RecordsSpec, RowSharder,
};
pub use config::{
    ConfigHost, EraDates, InvalidRows, KeyColumn, LiteralAddresses, MAX_IDLE_SECONDS,
    MAX_SESSION_MINUTES, MatchKeySpec, PartyCommand, PartyConfig, SessionLimits, TlsFiles,
};
pub use error::PartyError;
pub use keys::{Keyless, MatchKeyEncoder, has_date_step, join_parts};
pub use prepare::{PreparedParty, mode_config, offer, prepare};
pub use records::{
    KeylessRow, LISTED_KEYLESS_ROWS, MatchKeyColumn, PartyRecords, RejectedRow, Rejects, uses_clks,
    uses_field_tokens,
};
pub use report::{
    EXPLANATIONS_FILE, EXPLANATIONS_HEADER, LEDGER_FILE, LINKS_FILE, LINKS_HEADER, MODEL_FILE,
    REJECTS_FILE, REPORT_FILE, TRANSCRIPT_FILE, counts_line, explanation_rows, ledger_json,
    link_rows, model_json, report_text, write_ledger_json,
};
pub use scoring::{
    ValidateComparisons, compared_fields, default_scoring, field_tokenizer, validate_comparisons,
};
pub use shard::{
    CascadeStage, Shard, ShardAssigner, check_output_entries, check_shardable, check_stage,
    keep_key_column, keep_stage_key, retain_carried, retain_shard,
};
pub use source::{InputSource, PasswordSource, PostgresInput, PostgresSpec};
