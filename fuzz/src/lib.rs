//! Shared set-up for the fuzz targets and for `examples/write_seeds.rs`, which records honest
//! transcripts as seed inputs: both must build exactly the same offers, parties and drivers,
//! so that a recorded transcript replays against the fuzzed side message for message.
#![forbid(unsafe_code)]

use blindlink_protocol::{
    FieldScoring, Message, Mode, ModeConfig, ModeDriver, Parameters, PartyData, PartyRecord, Role,
    SchemaDescriptor, SessionId, SessionOffer, derive_blocking_key, new_driver,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The match key of the fuzzed set-ups (the synthetic scenario's ID key, so that recorded seed
/// transcripts keep their handshake parameters).
pub const KEY: &str = "my_number";

#[path = "../../crates/protocol/examples/scenario/scoring.rs"]
mod scoring;

/// The compared fields of the fuzzed `validate` and `fuzzy` set-ups: the synthetic scenario's
/// five fields and weights, so that recorded seed transcripts keep their parameters.
#[must_use]
pub fn fields() -> Vec<FieldScoring> {
    scoring::field_scoring()
}

/// The defaults of `mode` with [`KEY`] and [`fields`].
#[must_use]
pub fn mode_config(mode: Mode) -> ModeConfig {
    ModeConfig::new(mode, vec![KEY.to_owned()], fields())
}

/// The linkage secret every fuzzed party holds.
pub const SECRET: &[u8] = b"blindlink fuzz linkage secret";

/// The session id of the fuzzed handshakes.
pub const SESSION: SessionId = SessionId::from_bytes([0x11; 16]);

/// The offer both sides of a fuzzed handshake make: exact mode, a two-field schema and the
/// parameters of the default exact configuration.
#[must_use]
pub fn handshake_offer() -> SessionOffer {
    SessionOffer {
        mode: Mode::Exact,
        schema: SchemaDescriptor::new([("name_kana", "text"), ("date_of_birth", "date")])
            .expect("a valid schema"),
        parameters: mode_config(Mode::Exact)
            .parameters()
            .unwrap_or_else(|_| Parameters::default()),
    }
}

/// The mode driver set-ups a fuzz input can pick: every mode, both roles.
pub const DRIVER_SETUPS: usize = Mode::ALL.len() * 2;

/// The configuration, data and role of set-up `selector % DRIVER_SETUPS`.
#[must_use]
pub fn driver_setup(selector: u8) -> (ModeConfig, PartyData, Role) {
    let selector = usize::from(selector) % DRIVER_SETUPS;
    let mode = Mode::ALL[selector / 2];
    let role = if selector.is_multiple_of(2) {
        Role::Initiator
    } else {
        Role::Responder
    };
    let mut config = mode_config(mode);
    // Small CLKs keep the fuzzed messages small.
    match &mut config {
        ModeConfig::Fuzzy(c) => {
            c.blocking_key = Some(derive_blocking_key(SECRET));
            c.filter_bits = 64;
        }
        ModeConfig::ClkExchange(c) => {
            c.reveal_decodable_encodings = true;
            c.filter_bits = 64;
        }
        _ => {}
    }
    let keys = config.keys().len();
    let fields = config.field_names().len();
    let records = (0..3u8)
        .map(|i| {
            // Side-dependent data with one shared record, so honest runs link something.
            let shared = i == 0;
            let tag = if shared {
                0
            } else {
                i + 10 * u8::from(role == Role::Responder)
            };
            PartyRecord {
                id: format!("record-{i}"),
                keys: (0..keys)
                    .map(|_| Some(format!("key-{tag}").into_bytes()))
                    .collect(),
                clk: config.filter_bits().map(|bits| filter(tag, bits)),
                fields: (0..fields).map(|f| field_tokens(tag, f)).collect(),
            }
        })
        .collect();
    (config, PartyData::from_records(records), role)
}

/// The driver of a set-up, with its RNG seeded from the role so that runs are reproducible.
///
/// # Panics
/// When the set-up is invalid: a bug in this file, not in the code under test.
#[must_use]
pub fn driver(config: &ModeConfig, data: PartyData, role: Role) -> ModeDriver {
    let mut rng = ChaCha20Rng::from_seed([u8::from(role == Role::Responder) + 1; 32]);
    new_driver(role, config, data, &mut rng).expect("a valid fuzz set-up")
}

/// The tokens of field `field` of a record tagged `tag`: equal for the shared record, and
/// sharing some tokens across tags so that scores are neither 0 nor 1.
fn field_tokens(tag: u8, field: usize) -> Vec<Vec<u8>> {
    (0..3u8)
        .map(|t| vec![field as u8, t, if t == 0 { 0 } else { tag }])
        .collect()
}

/// A filter of `bits` bits with a pattern derived from `tag`.
fn filter(tag: u8, bits: usize) -> Vec<u8> {
    (0..bits / 8)
        .map(|i| (i as u8).wrapping_mul(37) ^ tag.wrapping_mul(101))
        .collect()
}

/// Splits a fuzz input into frames, each prefixed by its length as a big-endian `u16`; a
/// short last frame takes what is left.
pub fn frames(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if data.len() < 2 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([data[0], data[1]])).min(data.len() - 2);
        let (frame, rest) = data[2..].split_at(len);
        data = rest;
        Some(frame)
    })
}

/// Appends `frame` to a transcript in the format [`frames`] reads.
///
/// # Panics
/// For a frame over 65,535 bytes (seed transcripts are small).
pub fn push_frame(transcript: &mut Vec<u8>, frame: &[u8]) {
    let len = u16::try_from(frame.len()).expect("seed frames are under 64 KiB");
    transcript.extend_from_slice(&len.to_be_bytes());
    transcript.extend_from_slice(frame);
}

/// Encodes a message a driver or handshake produced: our own messages must always encode.
///
/// # Panics
/// When they do not: that is a bug in the code under test.
#[must_use]
pub fn encode_own(message: &Message) -> Vec<u8> {
    let frame = message.encode().unwrap_or_else(|e| {
        panic!(
            "our own {} message does not encode: {e}",
            message.kind().name()
        )
    });
    assert_eq!(
        Message::decode(&frame).as_ref(),
        Ok(message),
        "our own {} message does not decode back",
        message.kind().name()
    );
    frame
}
