//! Turns personal identifiers into CLKs: keyed-hash Bloom-filter encodings that two
//! organisations can compare with Dice similarity without exchanging the identifiers.
//!
//! Design: a record flows through one pipeline, `normalise → tokenise → keyed hash → Bloom
//! filter → harden`, configured entirely by a schema. Two schema dialects are accepted and
//! detected from the document itself: blindlink's native TOML schema (keyed SHA3 hashing,
//! Japanese normalisation, RBF and per-field layouts, hardening) and clkhash's linkage schema
//! v3 (JSON), whose CLKs are byte-identical to clkhash 0.18.3. The crate performs no I/O: it
//! takes values as `&str` and returns bytes, and [`mod@format`] reads and writes CLK files through
//! `std::io::Read`/`Write` handed in by the caller. Bit positions always come from explicit
//! keyed hashes of the token bytes, never from `std::hash`, so encodings are reproducible
//! across machines and versions.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
pub mod format;
pub mod normalise;

pub use error::EncodingError;

mod bits;
mod cache;
pub mod clkhash;
mod encoder;
pub mod field_tokens;
pub mod harden;
mod keyed;
pub mod native;
mod secret;
pub mod stats;

pub use encoder::{ClkEncoder, EncoderScratch, Schema, SchemaDocument, find_column};
pub use field_tokens::{FIELD_TOKEN_BYTES, FieldTokenScratch, FieldTokenizer, FieldTokens};
pub use keyed::{DOMAIN, PurposeHasher};
pub use secret::{LinkageSecret, MIN_SECRET_BYTES};
