//! The two-party linkage session as sans-IO state machines: the handshake, message framing,
//! the disclosure ledger and the [`SessionDriver`] seam that protocol modes implement.
//!
//! Nothing here opens a socket or a file. A transport (the `blindlink-service` crate over
//! gRPC, or a test in memory) moves frames between two parties: it calls
//! [`InitiatorHandshake::start`] / [`ResponderHandshake::handle`] with decoded messages, then
//! hands every later message to the mode's driver. Each handshake state is a type whose
//! `handle` consumes it, so an out-of-order message is a clean [`ProtocolError`], never a
//! panic. Every decoder bounds sizes before it allocates and rejects trailing bytes.
//!
//! The handshake commits both sides to the protocol version, mode, schema, parameters and the
//! linkage key (through a session- and role-bound [`KeyCheck`], never the key), and any
//! difference ends the session on both sides with an error that names it. The modes of the
//! disclosure ladder (cardinality, exact, validate, fuzzy, clk-exchange) plug in as drivers
//! ([`new_driver`], module `modes`), driving the `blindlink-psi` state machines and the
//! `blindlink-matching` kernels; the ping driver is the connectivity test vehicle.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// Lets `src/modes/tests.rs` include `examples/scenario/mod.rs`, which names this crate by its
// package name, as the example does.
#[cfg(test)]
extern crate self as blindlink_protocol;

mod driver;
mod error;
mod handshake;
mod hello;
mod ledger;
mod message;
mod mode;
mod modes;
mod session;
mod transcript;
mod wire;

/// Fellegi–Sunter scoring (comparison levels, EM, the model), as `validate` uses it: re-exported
/// so that a front end builds [`ValidateConfig::comparisons`] and reads
/// [`ValidationOutcome`] with the same types.
pub use blindlink_matching::fellegi_sunter;
pub use driver::{DriverStep, PingInitiator, PingResponder, SessionDriver};
pub use error::{
    ErrorClass, ErrorOrigin, LOCAL_ERROR_PEER_TEXT, ProtocolError, sanitise_peer_text,
};
pub use handshake::{
    AwaitingResponderHello, EstablishedSession, InitiatorHandshake, ResponderAnswer,
    ResponderHandshake, SessionOffer,
};
pub use hello::{
    FieldDescriptor, Hello, KEY_CHECK_TAG, KeyCheck, MAX_FIELD_NAME_BYTES,
    MAX_PARAMETER_NAME_BYTES, MAX_PARAMETER_VALUE_BYTES, MAX_PARAMETERS, MAX_SCHEMA_FIELDS,
    PROTOCOL_VERSION, Parameters, SHARD_PARAMETER, STAGE_PARAMETER, SchemaDescriptor,
};
pub use ledger::{
    Disclosure, DisclosureEntry, DisclosureIter, DisclosureLedger, PairName, Traffic, TrafficCount,
};
pub use message::{
    MAX_ABORT_REASON_BYTES, MAX_MODE_CHUNK_BYTES, MAX_PING_PAYLOAD_BYTES, Message, MessageKind,
    ModeChunk, Ping, max_frame_len,
};
pub use mode::Mode;
pub use modes::{
    BlockingInput, BlockingSecret, CardinalityConfig, ClkExchangeConfig, DEFAULT_COMMON_SHARE,
    DEFAULT_FUZZY_BANDS, DEFAULT_FUZZY_MAX_PAIRS, DEFAULT_FUZZY_ROWS, DEFAULT_FUZZY_THRESHOLD,
    ExactConfig, FieldAgreement, FieldReader, FieldScoring, FieldTokenColumn, FieldTokenSource,
    FieldTokens, FieldValueTokenizer, FieldView, FuzzyConfig, InMemoryRun, Learned, LinkCounts,
    LinkOutcome, LinkRow, LinkRows, LinkStatus, MAX_FIELD_TOKENS, MAX_FIELDS, MAX_FUZZY_PAIRS,
    MAX_MATCH_KEYS, MAX_MINHASH_BANDS, MAX_MINHASH_ROWS, MAX_RECORDS, MAX_TOKEN_BYTES, ModeConfig,
    ModeDriver, OutcomeHandle, PartyData, PartyRecord, ValidateConfig, ValidateScorer,
    ValidationOutcome, derive_blocking_key, fuzzy_blocking_tokens, fuzzy_candidate_pairs,
    fuzzy_exact_tokens, new_driver, run_in_memory,
};
pub use session::{Role, SessionId};
pub use transcript::{Direction, TRANSCRIPT_MAGIC, Transcript, TranscriptEntry};

#[cfg(test)]
mod tests;
