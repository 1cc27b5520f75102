//! The linkage modes of the disclosure ladder as sans-IO [`SessionDriver`]s.
//!
//! A party describes its data once as [`PartyData`] (local ids, match keys in cascade order,
//! record-level CLKs, per-field filters) and its run as a [`ModeConfig`], whose
//! [`ModeConfig::parameters`] the handshake commits to, so two sides configured differently
//! stop before any record-derived byte is sent. [`new_driver`] returns a [`ModeDriver`] for one
//! role; after the transport has run it to the end, [`ModeDriver::outcome`] (or an
//! [`OutcomeHandle`] taken before the driver was boxed) gives the [`LinkOutcome`]: one row per
//! local record and what this side learned.
//!
//! Every logical message (a PSI message, a batch of CLKs, scores, link ids) travels as
//! [`crate::ModeChunk`]s of bounded size, reassembled under a bound of its own before it is
//! decoded; a chunk of another kind or round than the one the state expects is an
//! out-of-order error. What each mode reveals, and to whom, is written to the
//! [`DisclosureLedger`] as it happens (papers/protocol.md, "Modes", says why each disclosure is
//! needed).

mod chunks;
mod driver;
mod minhash;
mod payload;
mod score;

use std::sync::{Arc, Mutex};

use blindlink_matching::LshParameters;
use hmac::{KeyInit, Mac};
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

use crate::driver::SessionDriver;
use crate::{DisclosureLedger, DriverStep, Message, Mode, Parameters, ProtocolError, Role};

pub use minhash::{BlockingSecret, MAX_MINHASH_BANDS, MAX_MINHASH_ROWS};
pub use score::{FieldAgreement, FieldScoring, ValidateScorer};

/// Most records one party may bring to a session.
pub const MAX_RECORDS: usize = 1 << 24;
/// Most match keys in a cascade.
pub const MAX_MATCH_KEYS: usize = 8;
/// Most per-field filters per record.
pub const MAX_FIELDS: usize = 16;

/// One record of this party.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartyRecord {
    /// The local record id (written back in the link file, never sent).
    pub id: String,
    /// Normalised match-key values in the order of [`ModeConfig::keys`]; `None` when the
    /// record lacks that key.
    pub keys: Vec<Option<Vec<u8>>>,
    /// The record-level CLK (`filter_bits / 8` bytes) for `fuzzy` and `clk-exchange`.
    pub clk: Option<Vec<u8>>,
    /// Per-field filters (`field_bits / 8` bytes each) in the order of
    /// [`ValidateConfig::fields`], for `validate`; `None` (or an all-zero filter) when the field
    /// is missing.
    pub fields: Vec<Option<Vec<u8>>>,
}

/// This party's records.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartyData {
    /// The records, in input order (rows of the outcome follow it).
    pub records: Vec<PartyRecord>,
}

/// How `validate` compares the quasi-identifiers of a linked pair.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidateConfig {
    /// The per-field filters compared, in the order of [`PartyRecord::fields`], with their
    /// weights and rules. Empty: the record-level CLKs are compared instead.
    pub fields: Vec<FieldScoring>,
    /// Length of each per-field filter in bits (a multiple of 8).
    pub field_bits: usize,
    /// A pair whose weighted score is below this is flagged as a suspected wrong-person link.
    pub threshold: f64,
}

/// How `fuzzy` blocks and matches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FuzzyConfig {
    /// Pairs with a Dice coefficient below this are never linked.
    pub dice_threshold: f64,
    /// The private blocking tokens: `bands` keyed MinHash band tokens per CLK, each joining
    /// `bits_per_band` minima (MinHash rows; see papers/protocol.md for the choice of MinHash
    /// over bit sampling on sparse CLKs).
    pub lsh: LshParameters,
}

/// Everything both parties must agree on for one run, plus this side's blocking key.
#[derive(Clone)]
pub struct ModeConfig {
    /// The mode.
    pub mode: Mode,
    /// Names of the match keys in cascade order (e.g. `my_number`, `kana+dob+sex`); `validate`
    /// and `cardinality` use the first.
    pub keys: Vec<String>,
    /// Length of the record-level CLKs in bits (a multiple of 8).
    pub filter_bits: usize,
    /// Validate's scoring.
    pub validate: ValidateConfig,
    /// Fuzzy's blocking and threshold (clk-exchange uses `dice_threshold` too).
    pub fuzzy: FuzzyConfig,
    /// Cardinality: send the responder's set as a Bloom filter with this false-positive rate
    /// over the whole query instead of as raw points.
    pub cardinality_bloom_fpr: Option<f64>,
    /// The side that receives CLKs or per-field filters and compares (`validate`, `fuzzy`,
    /// `clk-exchange`).
    pub comparing: Role,
    /// Secret key of the LSH bit sampling (`fuzzy`); derive it with [`derive_blocking_key`].
    pub blocking_key: Option<BlockingSecret>,
}

impl std::fmt::Debug for ModeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModeConfig")
            .field("mode", &self.mode)
            .field("keys", &self.keys)
            .field("filter_bits", &self.filter_bits)
            .field("validate", &self.validate)
            .field("fuzzy", &self.fuzzy)
            .field("cardinality_bloom_fpr", &self.cardinality_bloom_fpr)
            .field("comparing", &self.comparing)
            .field("blocking_key", &self.blocking_key.as_ref().map(|_| ".."))
            .finish()
    }
}

impl ModeConfig {
    /// A configuration with the defaults: match key `my_number` for the modes that use one (none
    /// for `fuzzy` and `clk-exchange`), 1024-bit CLKs, the initiator
    /// compares, validate with the default per-field scoring ([`FieldScoring::defaults`],
    /// 256-bit field filters), fuzzy at Dice 0.93 with 6 MinHash bands of 10 minima, raw cardinality.
    #[must_use]
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            keys: if mode.uses_match_keys() {
                vec!["my_number".to_owned()]
            } else {
                Vec::new()
            },
            filter_bits: 1024,
            validate: ValidateConfig {
                fields: FieldScoring::defaults(),
                field_bits: 256,
                threshold: score::DEFAULT_VALIDATE_THRESHOLD,
            },
            fuzzy: FuzzyConfig {
                dice_threshold: 0.93,
                lsh: LshParameters {
                    bands: 6,
                    bits_per_band: 10,
                },
            },
            cardinality_bloom_fpr: None,
            comparing: Role::Initiator,
            blocking_key: None,
        }
    }

    /// The parameters the handshake commits to: everything that must be equal on both sides
    /// for this mode (never the blocking key, whose equality the key-check value covers).
    ///
    /// # Errors
    /// The configuration is invalid (see [`ModeConfig::check`]).
    ///
    /// # Example
    /// ```
    /// use blindlink_protocol::{Mode, ModeConfig};
    /// let params = ModeConfig::new(Mode::Exact).parameters().unwrap();
    /// assert_eq!(params.entries()[0], ("mode.keys".to_owned(), "my_number".to_owned()));
    /// ```
    pub fn parameters(&self) -> Result<Parameters, ProtocolError> {
        self.check()?;
        let mut entries: Vec<(String, String)> = Vec::new();
        if self.mode.uses_match_keys() {
            entries.push(("mode.keys".into(), self.keys.join(",")));
        }
        match self.mode {
            Mode::Cardinality => {
                let bloom = self
                    .cardinality_bloom_fpr
                    .map_or_else(|| "raw".to_owned(), |r| format!("bloom:{r}"));
                entries.push(("cardinality.set_encoding".into(), bloom));
            }
            Mode::Exact => {}
            Mode::Validate => {
                entries.push(("validate.comparing".into(), self.comparing.to_string()));
                entries.push((
                    "validate.threshold".into(),
                    self.validate.threshold.to_string(),
                ));
                if self.validate.fields.is_empty() {
                    entries.push(("filter_bits".into(), self.filter_bits.to_string()));
                } else {
                    entries.push((
                        "validate.field_bits".into(),
                        self.validate.field_bits.to_string(),
                    ));
                    let fields: Vec<String> = self
                        .validate
                        .fields
                        .iter()
                        .map(FieldScoring::describe)
                        .collect();
                    entries.push(("validate.fields".into(), fields.join(";")));
                }
            }
            Mode::Fuzzy | Mode::ClkExchange => {
                entries.push(("link.comparing".into(), self.comparing.to_string()));
                entries.push(("filter_bits".into(), self.filter_bits.to_string()));
                entries.push((
                    "link.dice_threshold".into(),
                    self.fuzzy.dice_threshold.to_string(),
                ));
                if self.mode == Mode::Fuzzy {
                    entries.push((
                        "fuzzy.minhash".into(),
                        format!("{}x{}", self.fuzzy.lsh.bands, self.fuzzy.lsh.bits_per_band),
                    ));
                }
            }
        }
        Parameters::new(entries)
    }

    /// Checks the configuration on its own.
    ///
    /// # Errors
    /// [`ProtocolError::Invalid`] naming the setting: no or too many match keys (any at all for
    /// `fuzzy` and `clk-exchange`), an invalid
    /// key name, filter lengths that are not whole bytes, thresholds outside `[0, 1]`, a
    /// fuzzy configuration without a blocking key.
    pub fn check(&self) -> Result<(), ProtocolError> {
        let invalid = |what: &'static str, reason: String| ProtocolError::Invalid { what, reason };
        if !self.mode.uses_match_keys() && !self.keys.is_empty() {
            return Err(invalid(
                "match keys",
                format!(
                    "{} links on CLKs alone and takes none ({} given)",
                    self.mode,
                    self.keys.len()
                ),
            ));
        }
        if self.mode.uses_match_keys() && (self.keys.is_empty() || self.keys.len() > MAX_MATCH_KEYS)
        {
            return Err(invalid(
                "match keys",
                format!("{} keys, expected 1 to {MAX_MATCH_KEYS}", self.keys.len()),
            ));
        }
        for key in &self.keys {
            blindlink_psi::MatchKeyName::new(key)
                .map_err(|e| invalid("match key", format!("'{key}': {e}")))?;
        }
        let bits_ok = |bits: usize| bits > 0 && bits.is_multiple_of(8) && bits <= 1 << 16;
        if (matches!(self.mode, Mode::Fuzzy | Mode::ClkExchange)
            || (self.mode == Mode::Validate && self.validate.fields.is_empty()))
            && !bits_ok(self.filter_bits)
        {
            return Err(invalid(
                "filter_bits",
                format!(
                    "{} is not a positive multiple of 8 up to 65536",
                    self.filter_bits
                ),
            ));
        }
        if self.mode == Mode::Validate {
            if !self.validate.fields.is_empty() && !bits_ok(self.validate.field_bits) {
                return Err(invalid(
                    "validate.field_bits",
                    format!(
                        "{} is not a positive multiple of 8 up to 65536",
                        self.validate.field_bits
                    ),
                ));
            }
            if self.validate.fields.len() > MAX_FIELDS {
                return Err(invalid(
                    "validate.fields",
                    format!(
                        "{} fields, over the limit of {MAX_FIELDS}",
                        self.validate.fields.len()
                    ),
                ));
            }
            for field in &self.validate.fields {
                field.check()?;
            }
            unit_interval("validate.threshold", self.validate.threshold)?;
        }
        if matches!(self.mode, Mode::Fuzzy | Mode::ClkExchange) {
            unit_interval("link.dice_threshold", self.fuzzy.dice_threshold)?;
        }
        if self.mode == Mode::Fuzzy {
            minhash::check_minhash(self.fuzzy.lsh.bands, self.fuzzy.lsh.bits_per_band)?;
        }
        if self.mode == Mode::Fuzzy && self.blocking_key.is_none() {
            return Err(invalid(
                "fuzzy configuration",
                "no blocking key (derive one from the linkage secret)".into(),
            ));
        }
        if let Some(rate) = self.cardinality_bloom_fpr {
            blindlink_psi::FalsePositiveRate::new(rate)
                .map_err(|e| invalid("cardinality.bloom_fpr", e.to_string()))?;
        }
        Ok(())
    }
}

fn unit_interval(what: &'static str, value: f64) -> Result<(), ProtocolError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(ProtocolError::Invalid {
            what,
            reason: format!("{value} is outside [0, 1]"),
        })
    }
}

/// The LSH blocking key both parties derive from their shared linkage secret:
/// HMAC-SHA-256 under the secret of the tag `blindlink/v1/protocol/lsh-blocking-key`.
///
/// # Security
/// The secret bytes are used only as an HMAC key; the result is as secret as the linkage key.
#[must_use]
pub fn derive_blocking_key(linkage_secret: &[u8]) -> BlockingSecret {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(linkage_secret)
        .unwrap_or_else(|_| unreachable!("hmac accepts keys of any length"));
    mac.update(b"blindlink/v1/protocol/lsh-blocking-key");
    let mut key = [0u8; 32];
    key.copy_from_slice(&mac.finalize().into_bytes());
    let blocking = BlockingSecret::new(key);
    zeroize::Zeroize::zeroize(&mut key);
    blocking
}

/// The status of one local record after a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkStatus {
    /// Linked to one peer record.
    Linked,
    /// Linked on the ID key, but its quasi-identifiers disagree (`validate`).
    SuspectedWrongPerson,
    /// Its key value is shared by several of this party's records, so it was not linked.
    Ambiguous,
    /// No link.
    Unmatched,
}

impl LinkStatus {
    /// The name used in link files.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Linked => "linked",
            Self::SuspectedWrongPerson => "suspected-wrong-person",
            Self::Ambiguous => "ambiguous",
            Self::Unmatched => "unmatched",
        }
    }
}

/// One local record's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkRow {
    /// The local record id.
    pub local_id: String,
    /// The link id both parties hold for this record's pair (64 hex digits), if linked
    /// (also for suspected wrong-person links).
    pub link_id: Option<String>,
    /// The mode of the run.
    pub mode: Mode,
    /// The pair's score: the validate agreement score or the Dice coefficient.
    pub score: Option<f64>,
    /// The status.
    pub status: LinkStatus,
    /// The cascade key that linked it (`exact`, `validate`).
    pub key: Option<String>,
}

/// Counts of rows by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCounts {
    /// Linked rows.
    pub linked: u64,
    /// Suspected wrong-person rows.
    pub suspected_wrong_person: u64,
    /// Ambiguous rows.
    pub ambiguous: u64,
    /// Unmatched rows.
    pub unmatched: u64,
}

/// What this side learned about the peer's data in the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Learned {
    /// The peer's distinct set size per match key (absent when it came as a Bloom filter).
    pub peer_set_sizes: Vec<(String, u64)>,
    /// The intersection size per match key (distinct values).
    pub intersection_sizes: Vec<(String, u64)>,
    /// Cardinality with a Bloom filter: the expected number of false positives counted.
    pub expected_false_positives: Option<f64>,
    /// CLKs or per-field filter sets of peer records this side received.
    pub clks_received: u64,
    /// Per-pair agreement scores this side holds (`validate`).
    pub pair_scores: u64,
}

/// The result of one side's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkOutcome {
    /// The mode.
    pub mode: Mode,
    /// This side's role.
    pub role: Role,
    /// One row per local record, in input order (empty in `cardinality` mode, which links
    /// nothing).
    pub rows: Vec<LinkRow>,
    /// Rows by status.
    pub counts: LinkCounts,
    /// What this side learned.
    pub learned: Learned,
}

impl LinkOutcome {
    pub(crate) fn new(mode: Mode, role: Role, rows: Vec<LinkRow>, learned: Learned) -> Self {
        let mut counts = LinkCounts::default();
        for row in &rows {
            match row.status {
                LinkStatus::Linked => counts.linked += 1,
                LinkStatus::SuspectedWrongPerson => counts.suspected_wrong_person += 1,
                LinkStatus::Ambiguous => counts.ambiguous += 1,
                LinkStatus::Unmatched => counts.unmatched += 1,
            }
        }
        Self {
            mode,
            role,
            rows,
            counts,
            learned,
        }
    }
}

/// A shared slot the outcome is put in when the driver finishes, for a caller that hands the
/// driver itself to a transport as a `Box<dyn SessionDriver>`.
#[derive(Debug, Clone, Default)]
pub struct OutcomeHandle(Arc<Mutex<Option<LinkOutcome>>>);

impl OutcomeHandle {
    /// The outcome, once the driver has finished.
    #[must_use]
    pub fn get(&self) -> Option<LinkOutcome> {
        self.0.lock().map_or(None, |slot| slot.clone())
    }

    fn set(&self, outcome: LinkOutcome) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(outcome);
        }
    }
}

/// One role of one mode, as a [`SessionDriver`].
pub struct ModeDriver {
    inner: driver::Machine,
    handle: OutcomeHandle,
}

impl std::fmt::Debug for ModeDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModeDriver")
            .field("mode", &self.inner.mode())
            .field("role", &self.inner.role())
            .finish_non_exhaustive()
    }
}

impl ModeDriver {
    /// The outcome, once the session has finished normally.
    #[must_use]
    pub fn outcome(&self) -> Option<LinkOutcome> {
        self.handle.get()
    }

    /// A handle that will hold the outcome once the session finishes, to keep before the
    /// driver is boxed and handed to a transport.
    #[must_use]
    pub fn outcome_handle(&self) -> OutcomeHandle {
        self.handle.clone()
    }

    fn publish(&self, step: &DriverStep) {
        if step.finished
            && let Some(outcome) = self.inner.outcome()
        {
            self.handle.set(outcome);
        }
    }
}

impl SessionDriver for ModeDriver {
    fn start(&mut self, ledger: &mut DisclosureLedger) -> Result<DriverStep, ProtocolError> {
        let step = self.inner.start(ledger)?;
        self.publish(&step);
        Ok(step)
    }

    fn handle(
        &mut self,
        message: Message,
        ledger: &mut DisclosureLedger,
    ) -> Result<DriverStep, ProtocolError> {
        let step = self.inner.handle(message, ledger)?;
        self.publish(&step);
        Ok(step)
    }
}

/// A driver for `role` running `config.mode` on `data`.
///
/// # Errors
/// [`ProtocolError::Invalid`] for an invalid configuration or data that does not fit it (a
/// record with the wrong number of keys or fields, a CLK or filter of the wrong length, too
/// many records), naming the record by its position and id.
///
/// # Security
/// `rng` must be a cryptographic RNG: the driver draws a seed from it for its PSI secrets,
/// shuffles and link ids, so a run is deterministic for a seed.
///
/// # Example
/// ```
/// use blindlink_protocol::*;
/// use rand_chacha::ChaCha20Rng;
/// use rand_core::SeedableRng;
/// let config = ModeConfig::new(Mode::Exact);
/// let record = |id: &str, key: &[u8]| PartyRecord {
///     id: id.into(), keys: vec![Some(key.to_vec())], ..PartyRecord::default() };
/// let mut a = new_driver(Role::Initiator, &config,
///     PartyData { records: vec![record("a1", b"123"), record("a2", b"456")] },
///     &mut ChaCha20Rng::from_seed([1; 32])).unwrap();
/// let mut b = new_driver(Role::Responder, &config,
///     PartyData { records: vec![record("b1", b"456")] },
///     &mut ChaCha20Rng::from_seed([2; 32])).unwrap();
/// run_in_memory(&mut a, &mut b, Mode::Exact).unwrap();
/// let (oa, ob) = (a.outcome().unwrap(), b.outcome().unwrap());
/// assert_eq!(oa.rows[1].status, LinkStatus::Linked);
/// assert_eq!(oa.rows[1].link_id, ob.rows[0].link_id);
/// assert_eq!(oa.rows[0].status, LinkStatus::Unmatched);
/// ```
pub fn new_driver<R: CryptoRng + ?Sized>(
    role: Role,
    config: &ModeConfig,
    data: PartyData,
    rng: &mut R,
) -> Result<ModeDriver, ProtocolError> {
    config.check()?;
    let inner = driver::Machine::new(role, config.clone(), data, rng)?;
    Ok(ModeDriver {
        inner,
        handle: OutcomeHandle::default(),
    })
}

/// Both ledgers of an in-memory run.
#[derive(Debug, Clone)]
pub struct InMemoryRun {
    /// The initiator's ledger.
    pub initiator: DisclosureLedger,
    /// The responder's ledger.
    pub responder: DisclosureLedger,
}

/// Runs two drivers against each other in this process, encoding and decoding every message
/// as a transport would and counting frames in each side's ledger: for tests, benchmarks and
/// `blindlink bench`. Session ids are zero and the peer names are `initiator` / `responder`.
///
/// # Errors
/// The first error either driver reports, or a driver that stops without finishing.
pub fn run_in_memory(
    initiator: &mut dyn SessionDriver,
    responder: &mut dyn SessionDriver,
    mode: Mode,
) -> Result<InMemoryRun, ProtocolError> {
    use std::collections::VecDeque;
    let session = crate::SessionId::from_bytes([0; 16]);
    let mut ledgers = [
        DisclosureLedger::new(session, Role::Initiator, mode, "responder"),
        DisclosureLedger::new(session, Role::Responder, mode, "initiator"),
    ];
    // queues[i]: frames travelling to party i.
    let mut queues: [VecDeque<Vec<u8>>; 2] = [VecDeque::new(), VecDeque::new()];
    let mut finished = [false, false];
    let drivers: [&mut dyn SessionDriver; 2] = [initiator, responder];
    for side in 0..2 {
        let step = drivers[side].start(&mut ledgers[side])?;
        send_all(step, side, &mut ledgers, &mut queues, &mut finished)?;
    }
    loop {
        let mut progressed = false;
        for side in 0..2 {
            while let Some(frame) = queues[side].pop_front() {
                progressed = true;
                if finished[side] {
                    return Err(ProtocolError::Invalid {
                        what: "in-memory run",
                        reason: format!("{} got a message after it finished", role_of(side)),
                    });
                }
                let message = Message::decode(&frame)?;
                ledgers[side].record_received(message.kind(), frame.len());
                let step = drivers[side].handle(message, &mut ledgers[side])?;
                send_all(step, side, &mut ledgers, &mut queues, &mut finished)?;
            }
        }
        if finished == [true, true] && queues.iter().all(VecDeque::is_empty) {
            let [initiator, responder] = ledgers;
            return Ok(InMemoryRun {
                initiator,
                responder,
            });
        }
        if !progressed {
            return Err(ProtocolError::PeerClosed(
                "(in-memory run stalled before both sides finished)",
            ));
        }
    }
}

fn role_of(side: usize) -> Role {
    if side == 0 {
        Role::Initiator
    } else {
        Role::Responder
    }
}

fn send_all(
    step: DriverStep,
    side: usize,
    ledgers: &mut [DisclosureLedger; 2],
    queues: &mut [std::collections::VecDeque<Vec<u8>>; 2],
    finished: &mut [bool; 2],
) -> Result<(), ProtocolError> {
    for message in step.send {
        let frame = message.encode()?;
        ledgers[side].record_sent(message.kind(), frame.len());
        queues[1 - side].push_back(frame);
    }
    if step.finished {
        finished[side] = true;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
