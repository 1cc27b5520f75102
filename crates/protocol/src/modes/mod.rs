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

mod cardinality;
mod chunks;
mod clk_exchange;
mod common;
mod config;
mod data;
mod exact;
mod fuzzy;
mod grouped;
mod linking;
mod payload;
mod score;
mod shell;
mod validate;

use std::sync::{Arc, Mutex};

use rand_core::{CryptoRng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::driver::SessionDriver;
use crate::transcript::{Direction, Recorder, Transcript};
use crate::{DisclosureLedger, DriverStep, Message, Mode, ProtocolError, Role};

/// The secret key of fuzzy mode's MinHash blocking (the matching crate's [`BlockingKey`]);
/// derive it with [`derive_blocking_key`].
///
/// [`BlockingKey`]: blindlink_matching::BlockingKey
pub use blindlink_matching::BlockingKey as BlockingSecret;
pub use blindlink_matching::{MAX_MINHASH_BANDS, MAX_MINHASH_ROWS};
pub use config::{
    CardinalityConfig, ClkExchangeConfig, DEFAULT_COMMON_SHARE, DEFAULT_FUZZY_BANDS,
    DEFAULT_FUZZY_MAX_PAIRS, DEFAULT_FUZZY_ROWS, DEFAULT_FUZZY_THRESHOLD, ExactConfig, FieldTokens,
    FuzzyConfig, MAX_FIELD_TOKENS, MAX_FIELDS, MAX_FUZZY_PAIRS, MAX_MATCH_KEYS, MAX_RECORDS,
    MAX_TOKEN_BYTES, ModeConfig, PartyRecord, ValidateConfig, derive_blocking_key,
};
pub use data::{
    FieldReader, FieldTokenColumn, FieldTokenSource, FieldValueTokenizer, FieldView, PartyData,
};
pub use fuzzy::{BlockingInput, fuzzy_blocking_tokens, fuzzy_candidate_pairs, fuzzy_exact_tokens};
pub use score::{FieldAgreement, FieldScoring, ValidateScorer};
pub use validate::ValidationOutcome;

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
    /// The pair's score: validate's match probability (on the side that does not compare, as
    /// received: quantised to millionths) or fuzzy's and clk-exchange's Dice coefficient.
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
    /// CLKs of peer records this side received (`clk-exchange` only; it can decode them, as
    /// it holds the linkage key).
    pub clks_received: u64,
    /// Per-pair agreement scores this side holds (`validate`).
    pub pair_scores: u64,
    /// Pairs compared field by field through the grouped PSI (`validate`, `fuzzy`).
    #[serde(default)]
    pub compared_pairs: u64,
    /// `fuzzy`'s exact stage, comparing side: pairs linked because their whole records are
    /// equal, without a field-by-field comparison.
    #[serde(default)]
    pub exact_pairs: u64,
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
    pub rows: LinkRows,
    /// Rows by status.
    pub counts: LinkCounts,
    /// What this side learned.
    pub learned: Learned,
    /// `validate`, on the comparing side: the Fellegi–Sunter model and each record's
    /// agreement pattern (never sent); `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationOutcome>,
}

impl LinkOutcome {
    pub(crate) fn new(mode: Mode, role: Role, rows: LinkRows, learned: Learned) -> Self {
        let mut counts = LinkCounts::default();
        for i in 0..rows.len() {
            match rows.status(i) {
                Some(LinkStatus::Linked) => counts.linked += 1,
                Some(LinkStatus::SuspectedWrongPerson) => counts.suspected_wrong_person += 1,
                Some(LinkStatus::Ambiguous) => counts.ambiguous += 1,
                Some(LinkStatus::Unmatched) => counts.unmatched += 1,
                None => {}
            }
        }
        Self {
            mode,
            role,
            rows,
            counts,
            learned,
            validation: None,
        }
    }
}

/// The rows of a [`LinkOutcome`], one per local record. A session keeps what it decided per
/// record in flat vectors (the link id's 32 bytes, the cascade key's index, the score, a
/// status) and a [`LinkRow`], with its `String` id and 64-hex link id, is only made when it is
/// read ([`LinkRows::get`], [`LinkRows::iter_rows`]): `links.csv` is written row by row from the
/// session's state, never from a vector of rows (~240 bytes a record).
#[derive(Clone, Default)]
pub struct LinkRows(Rows);

#[derive(Clone)]
enum Rows {
    /// Rows given as such (a merge of shards' `links.csv`, a test).
    Listed(Vec<LinkRow>),
    /// What a session decided, read with the ids of its data.
    Decided(Arc<Decided>),
}

impl Default for Rows {
    fn default() -> Self {
        Self::Listed(Vec::new())
    }
}

struct Decided {
    mode: Mode,
    data: Arc<PartyData>,
    keys: Vec<String>,
    links: Vec<Option<common::RecordLink>>,
    ambiguous: Vec<bool>,
    /// The rows once [`LinkRows::as_slice`] has made them.
    made: std::sync::OnceLock<Vec<LinkRow>>,
}

impl LinkRows {
    pub(crate) fn decided(
        mode: Mode,
        data: Arc<PartyData>,
        keys: Vec<String>,
        links: Vec<Option<common::RecordLink>>,
        ambiguous: Vec<bool>,
    ) -> Self {
        Self(Rows::Decided(Arc::new(Decided {
            mode,
            data,
            keys,
            links,
            ambiguous,
            made: std::sync::OnceLock::new(),
        })))
    }

    /// The number of rows.
    #[must_use]
    pub fn len(&self) -> usize {
        match &self.0 {
            Rows::Listed(rows) => rows.len(),
            Rows::Decided(d) => d.links.len(),
        }
    }

    /// Whether there are no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The status of row `i`, without making the row.
    #[must_use]
    pub fn status(&self, i: usize) -> Option<LinkStatus> {
        match &self.0 {
            Rows::Listed(rows) => rows.get(i).map(|r| r.status),
            Rows::Decided(d) => Some(match d.links.get(i)? {
                Some(l) if l.suspected => LinkStatus::SuspectedWrongPerson,
                Some(_) => LinkStatus::Linked,
                None if d.ambiguous.get(i).copied().unwrap_or(false) => LinkStatus::Ambiguous,
                None => LinkStatus::Unmatched,
            }),
        }
    }

    /// Row `i` (`None` past the end).
    #[must_use]
    pub fn get(&self, i: usize) -> Option<LinkRow> {
        match &self.0 {
            Rows::Listed(rows) => rows.get(i).cloned(),
            Rows::Decided(d) => {
                let status = self.status(i)?;
                let link = d.links[i];
                Some(LinkRow {
                    local_id: d.data.id(i).to_owned(),
                    link_id: link.map(|l| hex::encode(l.link_id)),
                    mode: d.mode,
                    score: link.and_then(|l| l.score),
                    status,
                    key: link
                        .and_then(|l| l.key)
                        .and_then(|k| d.keys.get(usize::from(k)).cloned()),
                })
            }
        }
    }

    /// The rows in order, each made as it is read (what `links.csv` is written from).
    pub fn iter_rows(&self) -> impl ExactSizeIterator<Item = LinkRow> + '_ {
        (0..self.len()).map(|i| self.get(i).unwrap_or_else(|| unreachable!("i < len")))
    }

    /// Every row at once, made on the first call and kept: for tests, examples and small
    /// runs (`blindlink demo`), at ~240 bytes a row; the rows also deref to this slice. A
    /// writer of a large run reads [`LinkRows::iter_rows`] instead.
    #[must_use]
    pub fn as_slice(&self) -> &[LinkRow] {
        match &self.0 {
            Rows::Listed(rows) => rows,
            Rows::Decided(d) => d.made.get_or_init(|| self.iter_rows().collect()),
        }
    }
}

impl std::ops::Deref for LinkRows {
    type Target = [LinkRow];

    fn deref(&self) -> &[LinkRow] {
        self.as_slice()
    }
}

impl From<Vec<LinkRow>> for LinkRows {
    fn from(rows: Vec<LinkRow>) -> Self {
        Self(Rows::Listed(rows))
    }
}

impl FromIterator<LinkRow> for LinkRows {
    fn from_iter<I: IntoIterator<Item = LinkRow>>(rows: I) -> Self {
        Self(Rows::Listed(rows.into_iter().collect()))
    }
}

impl PartialEq for LinkRows {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter_rows().eq(other.iter_rows())
    }
}

impl std::fmt::Debug for LinkRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter_rows()).finish()
    }
}

impl Serialize for LinkRows {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter_rows())
    }
}

impl<'de> Deserialize<'de> for LinkRows {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<LinkRow>::deserialize(deserializer).map(Self::from)
    }
}

/// A shared slot the outcome (and the transcript, when one is kept) is put in when the driver
/// finishes, for a caller that hands the driver itself to a transport as a
/// `Box<dyn SessionDriver>`.
#[derive(Debug, Clone, Default)]
pub struct OutcomeHandle(Arc<Mutex<Finished>>);

#[derive(Debug, Default)]
struct Finished {
    outcome: Option<LinkOutcome>,
    transcript: Option<Transcript>,
}

impl OutcomeHandle {
    /// The outcome, once the driver has finished.
    #[must_use]
    pub fn get(&self) -> Option<LinkOutcome> {
        self.0.lock().map_or(None, |slot| slot.outcome.clone())
    }

    /// The outcome, once the driver has finished, moved out of the handle (later calls give
    /// `None`): [`OutcomeHandle::get`] copies it, and it holds a row per record.
    #[must_use]
    pub fn take(&self) -> Option<LinkOutcome> {
        self.0.lock().map_or(None, |mut slot| slot.outcome.take())
    }

    /// The transcript, once the driver has finished, if it was asked to keep one
    /// ([`ModeDriver::keep_transcript`]); [`Transcript::to_bytes`] gives `transcript.bin`.
    #[must_use]
    pub fn transcript(&self) -> Option<Transcript> {
        self.0.lock().map_or(None, |slot| slot.transcript.clone())
    }

    fn set(&self, outcome: LinkOutcome, transcript: Option<Transcript>) {
        if let Ok(mut slot) = self.0.lock() {
            slot.outcome = Some(outcome);
            slot.transcript = transcript;
        }
    }
}

/// One role of one mode, as a [`SessionDriver`].
pub struct ModeDriver {
    inner: shell::Shell,
    mode: Mode,
    handle: OutcomeHandle,
    recorder: Option<Recorder>,
}

impl std::fmt::Debug for ModeDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModeDriver")
            .field("mode", &self.mode)
            .field("role", &self.inner.context().role)
            .finish_non_exhaustive()
    }
}

impl ModeDriver {
    /// The outcome, once the session has finished normally.
    #[must_use]
    pub fn outcome(&self) -> Option<LinkOutcome> {
        self.handle.get()
    }

    /// The outcome, once the session has finished normally, moved out of the driver (later
    /// calls, and [`ModeDriver::outcome`], give `None`).
    #[must_use]
    pub fn take_outcome(&mut self) -> Option<LinkOutcome> {
        self.handle.take()
    }

    /// A handle that will hold the outcome once the session finishes, to keep before the
    /// driver is boxed and handed to a transport.
    #[must_use]
    pub fn outcome_handle(&self) -> OutcomeHandle {
        self.handle.clone()
    }

    /// Asks the driver to record a [`Transcript`] of the session (`[output] transcript =
    /// true`): every logical message it sends and receives, and both hellos when the
    /// transport reports them through [`SessionDriver::established`]. Call before the session
    /// starts.
    pub fn keep_transcript(&mut self) {
        let role = self.inner.context().role;
        self.recorder
            .get_or_insert_with(|| Recorder::new(crate::SessionId::from_bytes([0; 16]), role));
    }

    /// The transcript so far (`None` unless [`ModeDriver::keep_transcript`] was called).
    #[must_use]
    pub fn transcript(&self) -> Option<Transcript> {
        self.recorder.as_ref().map(Recorder::transcript)
    }

    fn after(&mut self, step: &DriverStep) {
        if let Some(recorder) = &mut self.recorder {
            for message in &step.send {
                recorder.record(Direction::Sent, message);
            }
        }
        if step.finished
            && let Some(outcome) = self.inner.take_outcome()
        {
            self.handle.set(outcome, self.transcript());
        }
    }
}

impl SessionDriver for ModeDriver {
    fn established(&mut self, session: &crate::EstablishedSession) {
        if let Some(recorder) = &mut self.recorder {
            recorder.hellos(
                session.session_id,
                &session.sent_hello,
                &session.received_hello,
            );
        }
    }

    fn start(&mut self, ledger: &mut DisclosureLedger) -> Result<DriverStep, ProtocolError> {
        if let Some(recorder) = &mut self.recorder {
            recorder.set_session(ledger.session_id);
        }
        let step = self.inner.start(ledger)?;
        self.after(&step);
        Ok(step)
    }

    fn handle(
        &mut self,
        message: Message,
        ledger: &mut DisclosureLedger,
    ) -> Result<DriverStep, ProtocolError> {
        if let Some(recorder) = &mut self.recorder {
            recorder.record(Direction::Received, &message);
        }
        let step = self.inner.handle(message, ledger)?;
        self.after(&step);
        Ok(step)
    }

    fn next_message(&mut self) -> Option<Message> {
        let message = self.inner.next_message()?;
        if let Some(recorder) = &mut self.recorder {
            recorder.record(Direction::Sent, &message);
        }
        Some(message)
    }
}

/// A driver for `role` running `config.mode` on `data`: a [`PartyData`], or an
/// `Arc<PartyData>` that several sessions of one party share without copying it.
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
/// let config = ModeConfig::new(Mode::Exact, vec!["id".into()], Vec::new());
/// let record = |id: &str, key: &[u8]| PartyRecord {
///     id: id.into(), keys: vec![Some(key.to_vec())], ..PartyRecord::default() };
/// let mut a = new_driver(Role::Initiator, &config,
///     PartyData::from_records(vec![record("a1", b"123"), record("a2", b"456")]),
///     &mut ChaCha20Rng::from_seed([1; 32])).unwrap();
/// let mut b = new_driver(Role::Responder, &config,
///     PartyData::from_records(vec![record("b1", b"456")]),
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
    data: impl Into<Arc<PartyData>>,
    rng: &mut R,
) -> Result<ModeDriver, ProtocolError> {
    let data = data.into();
    config.check()?;
    config::check_data(config, &data)?;
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    rng.fill_bytes(seed.as_mut());
    let cx = common::Context::new(role, data, rand_chacha::ChaCha20Rng::from_seed(*seed));
    Ok(ModeDriver {
        inner: shell::Shell::new(cx, config.clone()),
        mode: config.mode(),
        handle: OutcomeHandle::default(),
        recorder: None,
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
        send_all(
            step,
            &mut *drivers[side],
            side,
            &mut ledgers,
            &mut queues,
            &mut finished,
        )?;
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
                send_all(
                    step,
                    &mut *drivers[side],
                    side,
                    &mut ledgers,
                    &mut queues,
                    &mut finished,
                )?;
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
    driver: &mut dyn SessionDriver,
    side: usize,
    ledgers: &mut [DisclosureLedger; 2],
    queues: &mut [std::collections::VecDeque<Vec<u8>>; 2],
    finished: &mut [bool; 2],
) -> Result<(), ProtocolError> {
    let later = std::iter::from_fn(|| driver.next_message());
    for message in step.send.into_iter().chain(later) {
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
mod fuzzy_tests;
#[cfg(test)]
mod tests;
